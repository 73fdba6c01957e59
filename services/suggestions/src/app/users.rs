//! Accounts for people (the web console's users) beside API keys for systems: created without a
//! password, with a one-time set-password token (shown once, stored as its SHA-256); the person
//! sets a password, kept as an argon2id hash; repeated failed logins lock the account for a
//! while. Logins and failures are logged (the username and the outcome, never the password).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use banli_api::token;

use super::*;
use crate::store::User;

/// How long a set-password token is good for.
pub const SETUP_TTL: time::Duration = time::Duration::hours(72);
/// Failed logins in a row that lock an account.
pub const MAX_FAILED_LOGINS: u32 = 5;
/// How long a locked account stays locked.
pub const LOCKOUT: time::Duration = time::Duration::minutes(15);
/// How long a session lasts at most after its login (a working day and its evening).
pub const SESSION_LIFETIME: time::Duration = time::Duration::hours(12);
/// How long a session lasts unused.
pub const SESSION_IDLE: time::Duration = time::Duration::minutes(30);
/// How often a session's last use is written (not on every request).
const SESSION_TOUCH: time::Duration = time::Duration::seconds(60);
/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// A verifiable hash of nothing anyone can type: verified against when the username is unknown,
/// so that an unknown name takes as long to refuse as a wrong password.
const DUMMY_PASSWORD: &str = "banli-no-such-user-\u{1}";

fn new_secret() -> String {
    // Two v4 UUIDs: 244 bits from the operating system's CSPRNG.
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// A new one-time set-password token and the hash to store, for an account created outside
/// [`App::create_user`] (the first start's office account).
pub fn new_setup_token() -> (String, String) {
    let secret = new_secret();
    let hash = token::secret_hash(&secret);
    (secret, hash)
}

fn hash_password(password: &str) -> Result<String, AppError> {
    let salt =
        SaltString::encode_b64(Uuid::new_v4().as_bytes()).map_err(|e| AppError::internal(&e))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(&e))
}

fn password_matches(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Runs the CPU-heavy argon2 work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::internal(&e))
}

fn check_username(name: &str) -> Result<(), AppError> {
    let ok = (3..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid(
            "username must be 3 to 64 characters: letters, digits, `.`, `_`, `-` or `@`",
        ))
    }
}

impl App {
    /// Creates a person's account bound like a key of `role` (the agency for agency roles, the
    /// deputy for a deputy); answers it with its one-time set-password token (valid for
    /// [`SETUP_TTL`]; shown once).
    pub async fn create_user(
        &self,
        username: &str,
        role: Role,
        agency: Option<Uuid>,
        deputy: Option<Uuid>,
        position: Option<SignerPosition>,
    ) -> Result<(User, String), AppError> {
        check_username(username)?;
        let (agency, deputy) = self.key_binding(role, agency, deputy).await?;
        let position = Self::key_position(role, position)?;
        let secret = new_secret();
        let expires = OffsetDateTime::now_utc() + SETUP_TTL;
        let user = self
            .store()
            .create_user(
                username,
                role,
                agency,
                deputy,
                position,
                &token::secret_hash(&secret),
                expires,
            )
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists(_) => AppError::new(
                    ErrorCode::AlreadyExists,
                    format!("a user named `{username}` exists; reset its password instead"),
                ),
                e => e.into(),
            })?;
        tracing::info!(user_id = %user.id, username, role = %role, "user created");
        Ok((user, secret))
    }

    /// A new one-time set-password token for `username`; the old password and any older token
    /// stop working, and the lockout is lifted.
    pub async fn reset_password(&self, username: &str) -> Result<String, AppError> {
        let mut user = self
            .store()
            .user_by_name(username)
            .await?
            .ok_or_else(|| AppError::not_found(format!("no user is named `{username}`")))?;
        let secret = new_secret();
        user.password_hash = None;
        user.setup_hash = Some(token::secret_hash(&secret));
        user.setup_expires_at = Some(OffsetDateTime::now_utc() + SETUP_TTL);
        user.failed_logins = 0;
        user.locked_until = None;
        self.store().update_user_secrets(&user).await?;
        // Whoever was signed in with the old password is signed out.
        self.store()
            .end_user_sessions(None, Some(user.id), OffsetDateTime::now_utc())
            .await?;
        tracing::info!(user_id = %user.id, username, "password reset: a new set-password link was issued");
        Ok(secret)
    }

    /// Sets the password of the account whose one-time token is `secret`; the token is spent.
    pub async fn set_password(&self, secret: &str, password: &str) -> Result<User, AppError> {
        let refused = || {
            AppError::new(
                ErrorCode::InvalidArgument,
                "this set-password link is not valid (used already, replaced or mistyped); ask for a new one (`banli users reset-password`)",
            )
        };
        let mut user = self
            .store()
            .user_by_setup_hash(&token::secret_hash(secret))
            .await?
            .ok_or_else(refused)?;
        if user
            .setup_expires_at
            .is_none_or(|t| t < OffsetDateTime::now_utc())
        {
            return Err(AppError::new(
                ErrorCode::InvalidArgument,
                "this set-password link has expired; ask for a new one (`banli users reset-password`)",
            ));
        }
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(AppError::invalid(format!(
                "the password must have at least {MIN_PASSWORD_CHARS} characters"
            )));
        }
        if password.eq_ignore_ascii_case(&user.username) {
            return Err(AppError::invalid("the password must not be the username"));
        }
        let password = password.to_owned();
        user.password_hash = Some(blocking(move || hash_password(&password)).await??);
        user.setup_hash = None;
        user.setup_expires_at = None;
        user.failed_logins = 0;
        user.locked_until = None;
        self.store().update_user_secrets(&user).await?;
        self.store()
            .end_user_sessions(None, Some(user.id), OffsetDateTime::now_utc())
            .await?;
        tracing::info!(user_id = %user.id, username = %user.username, "password set");
        Ok(user)
    }

    /// Checks a login: the account when `password` is its password. An unknown name and a
    /// wrong password are refused alike (401, after the same work); [`MAX_FAILED_LOGINS`]
    /// failures in a row lock the account for [`LOCKOUT`] (429, saying until when).
    pub async fn check_login(&self, username: &str, password: &str) -> Result<User, AppError> {
        let wrong = || {
            AppError::new(
                ErrorCode::Unauthenticated,
                "the username or the password is wrong",
            )
        };
        let now = OffsetDateTime::now_utc();
        let user = self.store().user_by_name(username).await?;
        let Some(mut user) = user.filter(|u| u.disabled_at.is_none()) else {
            let password = password.to_owned();
            // The same work as a real check, so that timing does not tell names apart.
            blocking(move || {
                let phc = hash_password(DUMMY_PASSWORD).unwrap_or_default();
                password_matches(&password, &phc)
            })
            .await?;
            tracing::warn!(username, outcome = "unknown user", "login refused");
            return Err(wrong());
        };
        if let Some(until) = user.locked_until.filter(|t| *t > now) {
            tracing::warn!(user_id = %user.id, username, outcome = "locked", "login refused");
            return Err(AppError::new(
                ErrorCode::RateLimited,
                format!(
                    "too many failed logins: the account is locked until {} UTC; an administrator can reset it (`banli users reset-password`)",
                    until
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                ),
            ));
        }
        let Some(phc) = user.password_hash.clone() else {
            tracing::warn!(user_id = %user.id, username, outcome = "no password set", "login refused");
            return Err(wrong());
        };
        let given = password.to_owned();
        if blocking(move || password_matches(&given, &phc)).await? {
            if user.failed_logins > 0 || user.locked_until.is_some() {
                user.failed_logins = 0;
                user.locked_until = None;
                self.store().update_user_secrets(&user).await?;
            }
            tracing::info!(user_id = %user.id, username, "login");
            return Ok(user);
        }
        user.failed_logins += 1;
        if user.failed_logins >= MAX_FAILED_LOGINS {
            user.failed_logins = 0;
            user.locked_until = Some(now + LOCKOUT);
            tracing::warn!(user_id = %user.id, username, outcome = "locked", "login refused: the account is locked");
        } else {
            tracing::warn!(user_id = %user.id, username, failed = user.failed_logins, outcome = "wrong password", "login refused");
        }
        self.store().update_user_secrets(&user).await?;
        Err(wrong())
    }
}

/// A signed-in person: their account and the principal their requests act as (bound like a
/// key of their role; `key_id` is the account's id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub user: User,
    pub principal: Principal,
    /// When the session ends at the latest.
    pub expires_at: OffsetDateTime,
}

/// A session's secret has this shape (64 hex digits); anything else is not looked up.
fn session_secret_shape(secret: &str) -> bool {
    secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit())
}

impl App {
    /// Starts a session for `user` (after [`App::check_login`]): its secret, for the cookie;
    /// only its SHA-256 is stored. It lasts [`SESSION_LIFETIME`] at most, [`SESSION_IDLE`] unused.
    pub async fn start_session(&self, user: &User) -> Result<String, AppError> {
        let secret = new_secret();
        let now = OffsetDateTime::now_utc();
        self.store()
            .create_user_session(
                &token::secret_hash(&secret),
                user.id,
                now,
                now + SESSION_LIFETIME,
            )
            .await?;
        tracing::info!(user_id = %user.id, username = %user.username, "session started");
        Ok(secret)
    }

    /// The person signed in with session `secret`, or `None` when it is unknown, ended,
    /// expired (absolute or idle), or its account is disabled.
    pub async fn session(&self, secret: &str) -> Result<Option<SignedIn>, AppError> {
        if !session_secret_shape(secret) {
            return Ok(None);
        }
        let hash = token::secret_hash(secret);
        let Some(s) = self.store().user_session(&hash).await? else {
            return Ok(None);
        };
        let now = OffsetDateTime::now_utc();
        if s.expires_at <= now
            || s.last_seen_at + SESSION_IDLE <= now
            || s.user.disabled_at.is_some()
        {
            self.store()
                .end_user_sessions(Some(&hash), None, now)
                .await?;
            tracing::info!(user_id = %s.user.id, username = %s.user.username, "session expired");
            return Ok(None);
        }
        if s.last_seen_at + SESSION_TOUCH <= now {
            self.store().touch_user_session(&hash, now).await?;
        }
        let principal = Principal {
            key_id: s.user.id,
            role: s.user.role,
            agency: s.user.agency_id,
            deputy: s.user.deputy_id,
            reference: None,
            client_cert: None,
            position: s.user.position,
        };
        Ok(Some(SignedIn {
            user: s.user,
            principal,
            expires_at: s.expires_at.min(now + SESSION_IDLE),
        }))
    }

    /// Ends session `secret` (signing out); unknown secrets are ignored.
    pub async fn end_session(&self, secret: &str) -> Result<(), AppError> {
        if session_secret_shape(secret) {
            self.store()
                .end_user_sessions(
                    Some(&token::secret_hash(secret)),
                    None,
                    OffsetDateTime::now_utc(),
                )
                .await?;
        }
        Ok(())
    }
}
