//! Accounts for people: stored with their argon2id password hash (never the password) and the
//! SHA-256 of their one-time set-password token (never the token).

use banli_db::on_pool;
use banli_domain::Role;
use banli_domain::ids::{AgencyId, DeputyId};
use banli_domain::suggestion::SignerPosition;
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError};

/// A person's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub role: Role,
    pub agency_id: Option<AgencyId>,
    pub deputy_id: Option<DeputyId>,
    /// The argon2id PHC string, once the person has set a password.
    pub password_hash: Option<String>,
    pub setup_hash: Option<String>,
    pub setup_expires_at: Option<OffsetDateTime>,
    pub failed_logins: u32,
    pub locked_until: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub disabled_at: Option<OffsetDateTime>,
    /// The position the person holds in their agency (the approval steps they decide).
    pub position: Option<SignerPosition>,
}

#[derive(FromRow)]
struct UserRow {
    id: String,
    username: String,
    role: String,
    agency_id: Option<String>,
    deputy_id: Option<String>,
    password_hash: Option<String>,
    setup_hash: Option<String>,
    setup_expires_at: Option<OffsetDateTime>,
    failed_logins: i64,
    locked_until: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    disabled_at: Option<OffsetDateTime>,
    position: Option<String>,
}

const COLUMNS: &str = "id, username, role, agency_id, deputy_id, password_hash, setup_hash, setup_expires_at, failed_logins, locked_until, created_at, disabled_at, position";

impl UserRow {
    fn into_user(self) -> Result<User, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("user {}: {what}", self.id));
        let (role, agency_id, deputy_id) = super::parse_binding(
            &format!("user {}", self.id),
            &self.role,
            self.agency_id.as_deref(),
            self.deputy_id.as_deref(),
        )?;
        Ok(User {
            id: self.id.parse().map_err(|_| corrupt("id"))?,
            role,
            agency_id,
            deputy_id,
            username: self.username,
            password_hash: self.password_hash,
            setup_hash: self.setup_hash,
            setup_expires_at: self.setup_expires_at,
            failed_logins: u32::try_from(self.failed_logins).unwrap_or(u32::MAX),
            locked_until: self.locked_until,
            created_at: self.created_at,
            disabled_at: self.disabled_at,
            position: self
                .position
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|_| corrupt("position"))?,
        })
    }
}

impl Store {
    /// Creates an account without a password, with the hash of its one-time set-password token.
    /// `AlreadyExists` for a username taken; `NotFound` for an unknown agency or deputy.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_user(
        &self,
        username: &str,
        role: Role,
        agency: Option<AgencyId>,
        deputy: Option<DeputyId>,
        position: Option<SignerPosition>,
        setup_hash: &str,
        setup_expires_at: OffsetDateTime,
    ) -> Result<User, StoreError> {
        let id = Uuid::now_v7();
        let now = OffsetDateTime::now_utc();
        let (name, hash) = (username.to_owned(), setup_hash.to_owned());
        let result = self
            .write(move |pool| async move {
                Ok::<_, StoreError>(on_pool!(&pool, p => sqlx::query(
                    "INSERT INTO users (id, username, role, agency_id, deputy_id, setup_hash, setup_expires_at, failed_logins, created_at, position) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9)",
                )
                .bind(id.to_string())
                .bind(&name)
                .bind(role.as_str())
                .bind(agency.map(|a| a.to_string()))
                .bind(deputy.map(|d| d.to_string()))
                .bind(&hash)
                .bind(setup_expires_at)
                .bind(now)
                .bind(position.map(|p| p.as_str()))
                .execute(p)
                .await
                .map(|_| ())))
            })
            .await?;
        match result {
            Ok(()) => {}
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(StoreError::AlreadyExists(format!("user {username}")));
            }
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                return Err(StoreError::NotFound(
                    if agency.is_some() { "agency" } else { "deputy" }.into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        self.user_by_name(username)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {username}")))
    }

    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = on_pool!(self.pool(), p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE username = $1"
        )))
        .bind(username.to_owned())
        .fetch_optional(p)
        .await)?;
        row.map(UserRow::into_user).transpose()
    }

    /// The account whose live one-time token has hash `setup_hash`.
    pub async fn user_by_setup_hash(&self, setup_hash: &str) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = on_pool!(self.pool(), p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE setup_hash = $1"
        )))
        .bind(setup_hash.to_owned())
        .fetch_optional(p)
        .await)?;
        row.map(UserRow::into_user).transpose()
    }

    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows: Vec<UserRow> = on_pool!(self.pool(), p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users ORDER BY username"
        )))
        .fetch_all(p)
        .await)?;
        rows.into_iter().map(UserRow::into_user).collect()
    }

    /// Writes an account's password and lockout state (after a login, a set password, a reset).
    pub async fn update_user_secrets(&self, u: &User) -> Result<(), StoreError> {
        let u = u.clone();
        self.write(move |pool| async move {
            on_pool!(&pool, p => sqlx::query(
                "UPDATE users SET password_hash = $1, setup_hash = $2, setup_expires_at = $3, failed_logins = $4, locked_until = $5 WHERE id = $6",
            )
            .bind(&u.password_hash)
            .bind(&u.setup_hash)
            .bind(u.setup_expires_at)
            .bind(i64::from(u.failed_logins))
            .bind(u.locked_until)
            .bind(u.id.to_string())
            .execute(p)
            .await
            .map(|_| ()))?;
            Ok(())
        })
        .await
    }
}

/// A signed-in person's session (the web console's cookie), by the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSession {
    pub user: User,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
}

impl Store {
    /// Records a session of `user_id` whose secret hashes to `id_hash`.
    pub async fn create_user_session(
        &self,
        id_hash: &str,
        user_id: Uuid,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let hash = id_hash.to_owned();
        self.write(move |pool| async move {
            on_pool!(&pool, p => sqlx::query(
                "INSERT INTO user_sessions (id_hash, user_id, created_at, expires_at, last_seen_at) VALUES ($1, $2, $3, $4, $3)",
            )
            .bind(&hash)
            .bind(user_id.to_string())
            .bind(now)
            .bind(expires_at)
            .execute(p)
            .await
            .map(|_| ()))?;
            Ok(())
        })
        .await
    }

    /// The session whose secret hashes to `id_hash`, with its account.
    pub async fn user_session(&self, id_hash: &str) -> Result<Option<UserSession>, StoreError> {
        #[derive(FromRow)]
        struct SessionRow {
            user_id: String,
            created_at: OffsetDateTime,
            expires_at: OffsetDateTime,
            last_seen_at: OffsetDateTime,
        }
        let row: Option<SessionRow> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT user_id, created_at, expires_at, last_seen_at FROM user_sessions WHERE id_hash = $1",
        )
        .bind(id_hash.to_owned())
        .fetch_optional(p)
        .await)?;
        let Some(row) = row else { return Ok(None) };
        let user: Option<UserRow> = on_pool!(self.pool(), p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE id = $1"
        )))
        .bind(&row.user_id)
        .fetch_optional(p)
        .await)?;
        let Some(user) = user else { return Ok(None) };
        Ok(Some(UserSession {
            user: user.into_user()?,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_seen_at: row.last_seen_at,
        }))
    }

    /// Marks a session used at `now`.
    pub async fn touch_user_session(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let hash = id_hash.to_owned();
        self.write(move |pool| async move {
            on_pool!(&pool, p => sqlx::query("UPDATE user_sessions SET last_seen_at = $1 WHERE id_hash = $2")
                .bind(now)
                .bind(&hash)
                .execute(p)
                .await
                .map(|_| ()))?;
            Ok(())
        })
        .await
    }

    /// Ends one session (`Some(hash)`) or every session of `user_id`, and any session past
    /// `before` (expired ones are forgotten on the way).
    pub async fn end_user_sessions(
        &self,
        id_hash: Option<&str>,
        user_id: Option<Uuid>,
        before: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let hash = id_hash.map(str::to_owned);
        self.write(move |pool| async move {
            on_pool!(&pool, p => sqlx::query(
                "DELETE FROM user_sessions WHERE id_hash = $1 OR user_id = $2 OR expires_at < $3",
            )
            .bind(&hash)
            .bind(user_id.map(|u| u.to_string()))
            .bind(before)
            .execute(p)
            .await
            .map(|_| ()))?;
            Ok(())
        })
        .await
    }
}
