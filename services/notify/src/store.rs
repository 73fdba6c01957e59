//! The notification service's tables: the subjects its messages are worded from, recipients'
//! preferences (deputies, and units' contacts), the inbox (one row per message and recipient)
//! and the deliveries by e-mail and SMS with their outcomes. Times are Unix milliseconds.

use banli_db::{Db, Pool, WriterStopped, on_pool};
use banli_eventlog::inbox::Inbox;
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// The name of this service's migrations table (its database may be shared).
const MIGRATIONS_TABLE: &str = "notify_migrations";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Writer(#[from] WriterStopped),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// A preferences row: email, phone, channels (JSON), quiet from, quiet to, language.
type PreferencesRow = (
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
);

/// Who a message is for: a deputy, or an agency (its contact, 联络员, who hears what the unit
/// must do).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Recipient {
    Deputy(String),
    Agency(String),
}

impl Recipient {
    /// `deputy` or `agency`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Recipient::Deputy(_) => "deputy",
            Recipient::Agency(_) => "agency",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Recipient::Deputy(id) | Recipient::Agency(id) => id,
        }
    }

    fn from_row(kind: &str, id: String) -> Recipient {
        if kind == "agency" {
            Recipient::Agency(id)
        } else {
            Recipient::Deputy(id)
        }
    }
}

impl std::fmt::Display for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind(), self.id())
    }
}

/// A channel a recipient may be reached on besides the inbox.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Inbox,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Inbox => "inbox",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "email" => Some(Channel::Email),
            "sms" => Some(Channel::Sms),
            "inbox" => Some(Channel::Inbox),
            _ => None,
        }
    }
}

/// A recipient's preferences. Without a row: every channel, Chinese, no quiet hours, no addresses
/// (so e-mail and SMS are recorded as undeliverable and the inbox has every message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub channels: Vec<Channel>,
    /// `HH:MM` in China Standard Time; e-mail and SMS wait until `quiet_to`.
    pub quiet_from: Option<String>,
    pub quiet_to: Option<String>,
    /// `zh` or `en`.
    pub language: String,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            email: None,
            phone: None,
            channels: vec![Channel::Email, Channel::Sms, Channel::Inbox],
            quiet_from: None,
            quiet_to: None,
            language: "zh".into(),
        }
    }
}

/// A message for the inbox, with the deliveries it queues.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub id: String,
    pub source_event: String,
    pub recipient: Recipient,
    pub suggestion_id: String,
    pub kind: String,
    pub language: String,
    pub title: String,
    pub body: String,
    pub created_at: i64,
    pub deliveries: Vec<NewDelivery>,
}

#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub channel: Channel,
    /// `pending` or `undeliverable` (with the reason in `last_error`).
    pub state: &'static str,
    pub address: Option<String>,
    pub last_error: Option<String>,
    pub quiet_from: Option<String>,
    pub quiet_to: Option<String>,
}

/// A message in a deputy's or a unit's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InboxItem {
    pub id: String,
    pub suggestion_id: String,
    /// To deputies: `assigned`, `extension_approved`, `replied`, `re_handling`, `progress`,
    /// `closed`. To units: `unit_assigned`, `unit_extension_decided`, `unit_rated`,
    /// `unit_re_handling`, `unit_closure_decided`.
    pub kind: String,
    pub language: String,
    pub title: String,
    pub body: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub read_at: Option<i64>,
}

/// The columns `id, suggestion_id, kind, language, title, body, created_at, read_at`.
fn inbox_row<R: Row>(r: &R) -> Result<InboxItem, sqlx::Error>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    usize: sqlx::ColumnIndex<R>,
    String: for<'v> sqlx::Decode<'v, R::Database> + sqlx::Type<R::Database>,
    i64: for<'v> sqlx::Decode<'v, R::Database> + sqlx::Type<R::Database>,
{
    Ok(InboxItem {
        id: r.try_get(0)?,
        suggestion_id: r.try_get(1)?,
        kind: r.try_get(2)?,
        language: r.try_get(3)?,
        title: r.try_get(4)?,
        body: r.try_get(5)?,
        created_at: r.try_get(6)?,
        read_at: r.try_get(7)?,
    })
}

/// A delivery and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeliveryRow {
    pub notification_id: String,
    pub channel: String,
    /// The deputy the delivery is for, or
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deputy_id: Option<String>,
    /// the agency whose contact it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agency_id: Option<String>,
    pub suggestion_id: String,
    /// `pending`, `sent`, `failed` (given up after the retries) or `undeliverable`.
    pub state: String,
    pub address: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_at: i64,
    pub sent_at: Option<i64>,
    pub created_at: i64,
}

/// A delivery claimed for sending.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub notification_id: String,
    pub channel: Channel,
    pub address: String,
    pub title: String,
    pub body: String,
    pub attempts: i64,
    pub quiet_from: Option<String>,
    pub quiet_to: Option<String>,
    pub created_at: i64,
}

/// What became of a claimed delivery.
#[derive(Debug, Clone)]
pub enum Outcome {
    Sent {
        at: i64,
    },
    /// Try again at `next_at`, or give up (`failed`) when `next_at` is `None`.
    Failed {
        error: String,
        next_at: Option<i64>,
    },
    /// Not now (quiet hours): wait until `next_at`, no attempt counted.
    Deferred {
        next_at: i64,
    },
}

#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    wake: std::sync::Arc<tokio::sync::Notify>,
}

impl Store {
    pub fn new(pool: Pool) -> Store {
        Store {
            db: Db::new(pool),
            wake: std::sync::Arc::new(tokio::sync::Notify::new()),
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn pool(&self) -> &Pool {
        self.db.pool()
    }

    /// Wakes this process's deliverer: new deliveries are queued.
    pub fn queued(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn wake(&self) -> &tokio::sync::Notify {
        &self.wake
    }

    pub async fn migrate(&self, inbox: &Inbox) -> Result<(), sqlx::migrate::MigrateError> {
        let mut m = match self.pool().backend() {
            banli_db::Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            banli_db::Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        m.dangerous_set_table_name(MIGRATIONS_TABLE);
        match self.pool() {
            Pool::Sqlite(p) => m.run(p).await?,
            Pool::Postgres(p) => m.run(p).await?,
        }
        inbox
            .migrate(self.pool())
            .await
            .map_err(sqlx::migrate::MigrateError::Execute)?;
        Ok(())
    }

    pub async fn preferences(&self, who: &Recipient) -> Result<Option<Preferences>, StoreError> {
        let row: Option<PreferencesRow> = on_pool!(self.pool(), p => sqlx::query_as(
                "SELECT email, phone, channels, quiet_from, quiet_to, language FROM notify_preferences \
                 WHERE recipient_id = $1 AND recipient_kind = $2")
                .bind(who.id())
                .bind(who.kind())
                .fetch_optional(p)
                .await)?;
        row.map(|(email, phone, channels, quiet_from, quiet_to, language)| {
            let channels: Vec<Channel> = serde_json::from_str(&channels)
                .map_err(|e| StoreError::Corrupt(format!("preferences of {who}: {e}")))?;
            Ok(Preferences {
                email,
                phone,
                channels,
                quiet_from,
                quiet_to,
                language,
            })
        })
        .transpose()
    }

    /// Sets a recipient's preferences; `false` when the id is another kind of recipient's.
    pub async fn set_preferences(
        &self,
        who: &Recipient,
        p: &Preferences,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (who, p) = (who.clone(), p.clone());
        let channels =
            serde_json::to_string(&p.channels).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.db
            .write(move |pool| async move {
                let n = on_pool!(&pool, c => sqlx::query(
                    "INSERT INTO notify_preferences (recipient_id, email, phone, channels, quiet_from, quiet_to, language, updated_at, recipient_kind) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (recipient_id) DO UPDATE SET email = excluded.email, \
                     phone = excluded.phone, channels = excluded.channels, quiet_from = excluded.quiet_from, \
                     quiet_to = excluded.quiet_to, language = excluded.language, updated_at = excluded.updated_at \
                     WHERE notify_preferences.recipient_kind = excluded.recipient_kind")
                    .bind(who.id()).bind(&p.email).bind(&p.phone).bind(&channels).bind(&p.quiet_from)
                    .bind(&p.quiet_to).bind(&p.language).bind(now).bind(who.kind())
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected()))?;
                Ok::<bool, StoreError>(n == 1)
            })
            .await
    }

    /// A recipient's inbox, newest first.
    pub async fn inbox(
        &self,
        who: &Recipient,
        unread_only: bool,
        limit: u32,
    ) -> Result<Vec<InboxItem>, StoreError> {
        let rows = on_pool!(self.pool(), p => sqlx::query(
            "SELECT id, suggestion_id, kind, language, title, body, created_at, read_at FROM notify_notifications \
             WHERE recipient_id = $1 AND recipient_kind = $4 AND ($2 = 0 OR read_at IS NULL) ORDER BY created_at DESC, id DESC LIMIT $3")
            .bind(who.id())
            .bind(i64::from(unread_only))
            .bind(i64::from(limit))
            .bind(who.kind())
            .fetch_all(p)
            .await
            .and_then(|rows| rows.iter().map(inbox_row).collect::<Result<Vec<_>, sqlx::Error>>()))?;
        Ok(rows)
    }

    /// One of a recipient's messages.
    pub async fn inbox_item(
        &self,
        who: &Recipient,
        id: &str,
    ) -> Result<Option<InboxItem>, StoreError> {
        let row = on_pool!(self.pool(), p => sqlx::query(
            "SELECT id, suggestion_id, kind, language, title, body, created_at, read_at FROM notify_notifications \
             WHERE recipient_id = $1 AND recipient_kind = $3 AND id = $2")
            .bind(who.id())
            .bind(id)
            .bind(who.kind())
            .fetch_optional(p)
            .await
            .and_then(|r| r.as_ref().map(inbox_row).transpose()))?;
        Ok(row)
    }

    /// Marks a message read; `false` when the recipient has no such message.
    pub async fn mark_read(&self, who: &Recipient, id: &str, now: i64) -> Result<bool, StoreError> {
        let (who, id) = (who.clone(), id.to_owned());
        self.db
            .write(move |pool| async move {
                let n = on_pool!(&pool, c => sqlx::query(
                    "UPDATE notify_notifications SET read_at = COALESCE(read_at, $3) WHERE id = $1 AND recipient_id = $2 AND recipient_kind = $4")
                    .bind(&id).bind(who.id()).bind(now).bind(who.kind())
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected()))?;
                Ok::<bool, StoreError>(n == 1)
            })
            .await
    }

    /// Deliveries, newest first, of a recipient and/or a suggestion.
    pub async fn deliveries(
        &self,
        who: Option<&Recipient>,
        suggestion: Option<&str>,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows = on_pool!(self.pool(), p => sqlx::query(
            "SELECT notification_id, channel, recipient_id, suggestion_id, state, address, attempts, last_error, next_at, sent_at, created_at, recipient_kind \
             FROM notify_deliveries WHERE ($1 = '' OR (recipient_id = $1 AND recipient_kind = $5)) AND ($2 = '' OR suggestion_id = $2) AND ($3 = '' OR state = $3) \
             ORDER BY created_at DESC, notification_id DESC, channel LIMIT $4")
            .bind(who.map(Recipient::id).unwrap_or_default())
            .bind(suggestion.unwrap_or_default())
            .bind(state.unwrap_or_default())
            .bind(i64::from(limit))
            .bind(who.map_or("", Recipient::kind))
            .fetch_all(p)
            .await
            .and_then(|rows| rows.iter().map(|r| {
                let who = Recipient::from_row(&r.try_get::<String, _>(11)?, r.try_get(2)?);
                Ok(DeliveryRow {
                notification_id: r.try_get(0)?,
                channel: r.try_get(1)?,
                deputy_id: match &who { Recipient::Deputy(d) => Some(d.clone()), _ => None },
                agency_id: match &who { Recipient::Agency(a) => Some(a.clone()), _ => None },
                suggestion_id: r.try_get(3)?,
                state: r.try_get(4)?,
                address: r.try_get(5)?,
                attempts: r.try_get::<i64, _>(6)?,
                last_error: r.try_get(7)?,
                next_at: r.try_get(8)?,
                sent_at: r.try_get(9)?,
                created_at: r.try_get(10)?,
            })}).collect::<Result<Vec<_>, sqlx::Error>>()))?;
        Ok(rows)
    }

    /// Queues notifications outside the consumer (benches, tests): each with its deliveries.
    pub async fn queue(&self, notes: Vec<NewNotification>) -> Result<u64, StoreError> {
        let n = self
            .db
            .write(move |pool| async move {
                let mut n = 0;
                match &pool {
                    Pool::Sqlite(p) => {
                        let mut tx = p.begin().await?;
                        for x in &notes {
                            n += u64::from(sqlite::insert(&mut tx, x).await?);
                        }
                        tx.commit().await?;
                    }
                    Pool::Postgres(p) => {
                        let mut tx = p.begin().await?;
                        for x in &notes {
                            n += u64::from(postgres::insert(&mut tx, x).await?);
                        }
                        tx.commit().await?;
                    }
                }
                Ok::<u64, StoreError>(n)
            })
            .await?;
        self.queued();
        Ok(n)
    }

    /// Claims up to `limit` deliveries due at `now` for `lease_ms`: a crashed process's claims
    /// come back when their lease ends.
    pub async fn claim(
        &self,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.db
            .write(move |pool| async move {
                let sql = match pool.backend() {
                    banli_db::Backend::Sqlite => {
                        "UPDATE notify_deliveries SET lease_until = $2 WHERE (notification_id, channel) IN \
                         (SELECT notification_id, channel FROM notify_deliveries WHERE state = 'pending' AND next_at <= $1 \
                          AND (lease_until IS NULL OR lease_until < $1) ORDER BY next_at LIMIT $3) \
                         RETURNING notification_id, channel, address, title, body, attempts, quiet_from, quiet_to, created_at"
                    }
                    banli_db::Backend::Postgres => {
                        "UPDATE notify_deliveries d SET lease_until = $2 FROM \
                         (SELECT notification_id, channel FROM notify_deliveries WHERE state = 'pending' AND next_at <= $1 \
                          AND (lease_until IS NULL OR lease_until < $1) ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED) c \
                         WHERE d.notification_id = c.notification_id AND d.channel = c.channel \
                         RETURNING d.notification_id, d.channel, d.address, d.title, d.body, d.attempts, d.quiet_from, d.quiet_to, d.created_at"
                    }
                };
                let rows = on_pool!(&pool, c => sqlx::query(sql)
                    .bind(now)
                    .bind(now + lease_ms)
                    .bind(i64::from(limit))
                    .fetch_all(c)
                    .await
                    .and_then(|rows| rows.iter().map(|r| {
                        let channel: String = r.try_get(1)?;
                        Ok((r.try_get::<String, _>(0)?, channel, r.try_get::<Option<String>, _>(2)?, r.try_get::<String, _>(3)?,
                            r.try_get::<String, _>(4)?, r.try_get::<i64, _>(5)?, r.try_get::<Option<String>, _>(6)?,
                            r.try_get::<Option<String>, _>(7)?, r.try_get::<i64, _>(8)?))
                    }).collect::<Result<Vec<_>, sqlx::Error>>()))?;
                Ok::<_, StoreError>(
                    rows.into_iter()
                        .filter_map(|(id, channel, address, title, body, attempts, quiet_from, quiet_to, created_at)| {
                            Some(Claimed {
                                notification_id: id,
                                channel: Channel::parse(&channel)?,
                                address: address.unwrap_or_default(),
                                title,
                                body,
                                attempts,
                                quiet_from,
                                quiet_to,
                                created_at,
                            })
                        })
                        .collect(),
                )
            })
            .await
    }

    /// Records the outcomes of claimed deliveries, in one transaction.
    pub async fn finish(
        &self,
        outcomes: Vec<(String, Channel, Outcome)>,
    ) -> Result<(), StoreError> {
        self.db
            .write(move |pool| async move {
                macro_rules! finish_on {
                    ($p:expr) => {{
                        let mut tx = $p.begin().await?;
                        for (id, channel, outcome) in &outcomes {
                            let q = match outcome {
                                Outcome::Sent { at } => sqlx::query(
                                    "UPDATE notify_deliveries SET state = 'sent', sent_at = $3, attempts = attempts + 1, \
                                     lease_until = NULL, last_error = NULL WHERE notification_id = $1 AND channel = $2")
                                    .bind(id).bind(channel.as_str()).bind(*at),
                                Outcome::Failed { error, next_at: Some(next) } => sqlx::query(
                                    "UPDATE notify_deliveries SET attempts = attempts + 1, next_at = $3, last_error = $4, \
                                     lease_until = NULL WHERE notification_id = $1 AND channel = $2")
                                    .bind(id).bind(channel.as_str()).bind(*next).bind(error),
                                Outcome::Failed { error, next_at: None } => sqlx::query(
                                    "UPDATE notify_deliveries SET state = 'failed', attempts = attempts + 1, last_error = $3, \
                                     lease_until = NULL WHERE notification_id = $1 AND channel = $2")
                                    .bind(id).bind(channel.as_str()).bind(error),
                                Outcome::Deferred { next_at } => sqlx::query(
                                    "UPDATE notify_deliveries SET next_at = $3, lease_until = NULL \
                                     WHERE notification_id = $1 AND channel = $2")
                                    .bind(id).bind(channel.as_str()).bind(*next_at),
                            };
                            q.execute(&mut *tx).await?;
                        }
                        tx.commit().await?;
                    }};
                }
                match &pool {
                    Pool::Sqlite(p) => finish_on!(p),
                    Pool::Postgres(p) => finish_on!(p),
                }
                Ok::<(), StoreError>(())
            })
            .await
    }
}

macro_rules! writes_on {
    ($module:ident, $conn:ty, $subjects:literal, $ids:ty, $bind:expr) => {
        /// The consumer's writes, inside its batch transaction.
        pub mod $module {
            use super::*;

            /// The subjects kept of these suggestions, in one statement.
            pub async fn load_subjects(
                c: &mut $conn,
                ids: &[String],
            ) -> Result<Vec<(String, String)>, sqlx::Error> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let bound: $ids = $bind(ids);
                sqlx::query_as::<_, (String, String)>($subjects)
                    .bind(bound)
                    .fetch_all(&mut *c)
                    .await
            }

            pub async fn save_subject(
                c: &mut $conn,
                id: &str,
                json: &str,
                version: i64,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO notify_subjects (suggestion_id, subject, version) VALUES ($1, $2, $3) \
                     ON CONFLICT (suggestion_id) DO UPDATE SET subject = excluded.subject, version = excluded.version",
                )
                .bind(id)
                .bind(json)
                .bind(version)
                .execute(&mut *c)
                .await?;
                Ok(())
            }

            pub async fn preferences(
                c: &mut $conn,
                who: &Recipient,
            ) -> Result<Option<Preferences>, sqlx::Error> {
                let row: Option<PreferencesRow> =
                    sqlx::query_as(
                        "SELECT email, phone, channels, quiet_from, quiet_to, language FROM notify_preferences \
                         WHERE recipient_id = $1 AND recipient_kind = $2",
                    )
                    .bind(who.id())
                    .bind(who.kind())
                    .fetch_optional(&mut *c)
                    .await?;
                Ok(row.map(|(email, phone, channels, quiet_from, quiet_to, language)| Preferences {
                    email,
                    phone,
                    channels: serde_json::from_str(&channels).unwrap_or_else(|_| Preferences::default().channels),
                    quiet_from,
                    quiet_to,
                    language,
                }))
            }

            /// The notification and its deliveries; `false` when it was written before (the
            /// same event for the same recipient: never twice).
            pub async fn insert(c: &mut $conn, n: &NewNotification) -> Result<bool, sqlx::Error> {
                let fresh = sqlx::query(
                    "INSERT INTO notify_notifications (id, source_event, recipient_id, suggestion_id, kind, language, title, body, created_at, recipient_kind) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (source_event, recipient_id, kind) DO NOTHING",
                )
                .bind(&n.id)
                .bind(&n.source_event)
                .bind(n.recipient.id())
                .bind(&n.suggestion_id)
                .bind(&n.kind)
                .bind(&n.language)
                .bind(&n.title)
                .bind(&n.body)
                .bind(n.created_at)
                .bind(n.recipient.kind())
                .execute(&mut *c)
                .await?
                .rows_affected()
                    == 1;
                if !fresh {
                    return Ok(false);
                }
                for d in &n.deliveries {
                    sqlx::query(
                        "INSERT INTO notify_deliveries (notification_id, channel, recipient_id, suggestion_id, state, address, title, body, \
                         quiet_from, quiet_to, attempts, next_at, last_error, created_at, recipient_kind) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $12, $11, $13)",
                    )
                    .bind(&n.id)
                    .bind(d.channel.as_str())
                    .bind(n.recipient.id())
                    .bind(&n.suggestion_id)
                    .bind(d.state)
                    .bind(&d.address)
                    .bind(&n.title)
                    .bind(&n.body)
                    .bind(&d.quiet_from)
                    .bind(&d.quiet_to)
                    .bind(n.created_at)
                    .bind(&d.last_error)
                    .bind(n.recipient.kind())
                    .execute(&mut *c)
                    .await?;
                }
                Ok(true)
            }
        }
    };
}

writes_on!(
    sqlite,
    sqlx::SqliteConnection,
    "SELECT suggestion_id, subject FROM notify_subjects WHERE suggestion_id IN (SELECT value FROM json_each($1))",
    String,
    |ids: &[String]| serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
);
writes_on!(
    postgres,
    sqlx::PgConnection,
    "SELECT suggestion_id, subject FROM notify_subjects WHERE suggestion_id = ANY($1)",
    Vec<String>,
    |ids: &[String]| ids.to_vec()
);
