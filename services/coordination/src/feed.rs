//! The per-agency event feed (事件订阅) for agencies' own systems: every event of the suggestions
//! an agency is party to, in one stable order, resumable from any cursor. The consumer writes an
//! agency's rows in the transaction that consumes the event; REST pages and the gRPC `Watch`
//! stream read them.

use banli_api::{AppError, ErrorCode, Principal};
use banli_domain::Role;
use banli_domain::ids::AgencyId;
use serde::Serialize;
use uuid::Uuid;

/// The most items one page holds.
pub const MAX_PAGE: u32 = 1000;

/// The feed row written once for every agency's feed (the audit log's checkpoints): no agency
/// has this id. The queries below write it out as `'00000000-0000-0000-0000-000000000000'`.
pub const EVERY_AGENCY: AgencyId = AgencyId(Uuid::nil());

/// One event in one agency's feed, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    pub agency_id: AgencyId,
    pub event_id: Uuid,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub aggregate_version: u64,
    /// RFC 3339.
    pub occurred_at: String,
    /// The event's payload, JSON.
    pub payload: String,
}

/// One event as a feed answers it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FeedRow {
    pub seq: i64,
    pub event_id: String,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub aggregate_version: i64,
    pub occurred_at: String,
    pub payload: String,
}

/// A feed item on the wire: the row with its cursor, the payload as JSON.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FeedItem {
    /// Resume after this item: pass it as `after`.
    pub cursor: String,
    pub event_id: String,
    /// e.g. `suggestion.replied`.
    pub event_type: String,
    /// `suggestion`.
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The aggregate's version after this event: per aggregate, versions arrive in order.
    pub aggregate_version: u64,
    pub occurred_at: String,
    #[schema(value_type = Object)]
    pub payload: Box<serde_json::value::RawValue>,
}

/// A page of a feed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FeedPage {
    pub agency_id: String,
    pub items: Vec<FeedItem>,
    /// Where the next call starts (`after`): the last item's cursor, or the one given when
    /// nothing is new.
    pub next_cursor: String,
}

/// A position in one agency's feed. On the wire: 48 hexadecimal digits, the agency and the
/// sequence number, so that a cursor of another agency's feed is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub agency: AgencyId,
    pub seq: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!(
            "{:032x}{:016x}",
            self.agency.0.as_u128(),
            self.seq.max(0) as u64
        )
    }

    /// Reads `after` for `agency`'s feed: absent or empty is the start; `now` is the current end.
    pub fn parse(text: &str, agency: AgencyId) -> Result<Cursor, AppError> {
        let bad = || {
            AppError::new(
                ErrorCode::MalformedRequest,
                "`after` is not a feed cursor: pass the `cursor` of an item or the `next_cursor` of a page as it came (48 hexadecimal digits), `now`, or nothing to start at the beginning",
            )
        };
        if text.is_empty() {
            return Ok(Cursor { agency, seq: 0 });
        }
        if text.len() != 48 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let owner = u128::from_str_radix(&text[..32], 16).map_err(|_| bad())?;
        let seq = u64::from_str_radix(&text[32..], 16).map_err(|_| bad())?;
        if owner != agency.0.as_u128() {
            return Err(AppError::new(
                ErrorCode::MalformedRequest,
                format!(
                    "`after` is a cursor of another agency's feed, not of {}; use the cursors of this feed",
                    agency.0
                ),
            ));
        }
        let seq = i64::try_from(seq).map_err(|_| bad())?;
        Ok(Cursor { agency, seq })
    }
}

/// Whose feed a caller reads: an agency key its own; the assigning office and auditors any
/// agency's (`agency_id` required); deputies none.
pub fn feed_of(p: &Principal, agency_id: Option<Uuid>) -> Result<AgencyId, AppError> {
    match p.role {
        Role::AssigningOffice | Role::Auditor => agency_id.map(AgencyId).ok_or_else(|| {
            AppError::malformed(
                "give `agency_id`: the office and auditors read one agency's feed at a time",
            )
        }),
        r if r.is_agency_role() => {
            let own = p
                .agency
                .ok_or_else(|| AppError::forbidden("this key is not bound to an agency"))?;
            match agency_id {
                Some(a) if a != own.0 => Err(AppError::forbidden(
                    "an agency key reads only its own agency's feed; leave agency_id out or use your own",
                )),
                _ => Ok(own),
            }
        }
        _ => Err(AppError::forbidden(
            "feeds are for agencies' systems: use an agency key (or the office's, with agency_id)",
        )),
    }
}

/// Whether a caller's feeds and task lists leave out confidential suggestions (涉密): those of
/// a reader who reads any agency's but may not read confidential items (auditors). An agency's
/// feed holds only the items it is or was party to, and the office reads everything.
pub fn hides_confidential(p: &Principal) -> bool {
    p.role.lists_without_confidential()
}

impl FeedRow {
    /// The item as readers receive it; `Err` when the stored payload is not JSON.
    pub fn item(self, agency: AgencyId) -> Result<FeedItem, String> {
        let payload = serde_json::value::RawValue::from_string(self.payload)
            .map_err(|e| format!("a feed row's payload: {e}"))?;
        Ok(FeedItem {
            cursor: Cursor {
                agency,
                seq: self.seq,
            }
            .encode(),
            event_id: self.event_id,
            event_type: self.event_type,
            aggregate_type: self.aggregate_type,
            aggregate_id: self.aggregate_id,
            aggregate_version: self.aggregate_version.max(0) as u64,
            occurred_at: self.occurred_at,
            payload,
        })
    }
}
