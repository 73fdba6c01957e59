//! Row types and their conversion to domain types.

use sqlx::FromRow;

#[derive(Debug, FromRow)]
pub(crate) struct EventRow {
    pub payload: String,
}

#[derive(Debug, FromRow)]
pub(crate) struct SummaryRow {
    pub id: String,
    pub session_id: String,
    pub number: String,
    pub state: String,
    pub version: i64,
    pub title: String,
    pub key_supervised: bool,
}
