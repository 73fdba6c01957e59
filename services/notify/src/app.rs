//! The application layer both transports call: who may read which inbox and preferences, and
//! what a preference may hold.

use banli_api::{AppError, Authenticator, Principal};
use banli_domain::Role;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::{Channel, DeliveryRow, InboxItem, Preferences, Recipient, Store};

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub auth: Authenticator,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::internal(&e)
}

pub(crate) fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Whose messages `p` reads, of the deputy or agency named: a deputy's own, an agency key's
/// own agency's contact (naming anyone else is a 403); the assigning office and auditors name
/// one.
pub(crate) fn recipient_of(
    p: &Principal,
    deputy: Option<Uuid>,
    agency: Option<Uuid>,
) -> Result<Recipient, AppError> {
    if deputy.is_some() && agency.is_some() {
        return Err(AppError::malformed(
            "name a deputy (`deputy_id`) or an agency (`agency_id`), not both",
        ));
    }
    match p.role {
        Role::Deputy => {
            let own = p
                .deputy
                .ok_or_else(|| AppError::forbidden("this deputy key is bound to no deputy"))?;
            if agency.is_some() || deputy.is_some_and(|d| d != own.0) {
                return Err(AppError::forbidden(
                    "a deputy reads their own messages and preferences only",
                ));
            }
            Ok(Recipient::Deputy(own.to_string()))
        }
        Role::AgencyAdmin | Role::Handler | Role::Leader => {
            let own = p
                .agency
                .ok_or_else(|| AppError::forbidden("this agency key is bound to no agency"))?;
            if deputy.is_some() {
                return Err(AppError::forbidden(
                    "deputies' messages are read by the deputy, the assigning office and auditors",
                ));
            }
            if agency.is_some_and(|a| a != own.0) {
                return Err(AppError::forbidden(
                    "an agency reads its own contact's messages and preferences only",
                ));
            }
            Ok(Recipient::Agency(own.to_string()))
        }
        Role::AssigningOffice | Role::Auditor => match (deputy, agency) {
            (Some(d), _) => Ok(Recipient::Deputy(d.to_string())),
            (_, Some(a)) => Ok(Recipient::Agency(a.to_string())),
            _ => Err(AppError::malformed(
                "`deputy_id` or `agency_id` is required for an office or auditor key",
            )),
        },
    }
}

/// A recipient's preferences (a deputy's, or a unit contact's) as the API shows and takes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesBody {
    /// For e-mail.
    pub email: Option<String>,
    /// For SMS, e.g. `+8613800000000`.
    pub phone: Option<String>,
    /// `email`, `sms`, `inbox` (the inbox always has every message; leaving it out only
    /// affects nothing). Default: all three.
    #[serde(default = "every_channel")]
    pub channels: Vec<Channel>,
    /// Quiet hours, `HH:MM` China Standard Time: e-mail and SMS wait until `quiet_to`. Both or
    /// neither.
    pub quiet_from: Option<String>,
    pub quiet_to: Option<String>,
    /// `zh` (default) or `en`.
    #[serde(default = "chinese")]
    pub language: String,
}

fn every_channel() -> Vec<Channel> {
    Preferences::default().channels
}

fn chinese() -> String {
    "zh".into()
}

impl From<Preferences> for PreferencesBody {
    fn from(p: Preferences) -> Self {
        PreferencesBody {
            email: p.email,
            phone: p.phone,
            channels: p.channels,
            quiet_from: p.quiet_from,
            quiet_to: p.quiet_to,
            language: p.language,
        }
    }
}

/// Checks preferences: 422 naming the field.
pub(crate) fn checked(b: PreferencesBody) -> Result<Preferences, AppError> {
    let trim = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let (email, phone) = (trim(b.email), trim(b.phone));
    if let Some(e) = &email
        && (e.len() > 254 || e.parse::<lettre::Address>().is_err())
    {
        return Err(AppError::invalid(format!(
            "`email`: `{e}` is not an e-mail address"
        )));
    }
    if let Some(ph) = &phone {
        let digits = ph.strip_prefix('+').unwrap_or(ph);
        if digits.len() < 5 || digits.len() > 20 || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return Err(AppError::invalid(format!(
                "`phone`: `{ph}` is not a phone number (digits, an optional leading +)"
            )));
        }
    }
    let (quiet_from, quiet_to) = (trim(b.quiet_from), trim(b.quiet_to));
    match (&quiet_from, &quiet_to) {
        (None, None) => {}
        (Some(f), Some(t)) => {
            for (field, v) in [("quiet_from", f), ("quiet_to", t)] {
                if !crate::deliver::valid_time(v) {
                    return Err(AppError::invalid(format!("`{field}`: `{v}` is not HH:MM")));
                }
            }
        }
        _ => {
            return Err(AppError::invalid(
                "`quiet_from` and `quiet_to` go together: both or neither",
            ));
        }
    }
    if !matches!(b.language.as_str(), "zh" | "en") {
        return Err(AppError::invalid(format!(
            "`language`: `{}` is not zh or en",
            b.language
        )));
    }
    let mut channels = b.channels;
    channels.sort();
    channels.dedup();
    Ok(Preferences {
        email,
        phone,
        channels,
        quiet_from,
        quiet_to,
        language: b.language,
    })
}

pub(crate) async fn inbox_of(
    st: &AppState,
    p: &Principal,
    deputy: Option<Uuid>,
    agency: Option<Uuid>,
    unread_only: bool,
    limit: Option<u32>,
) -> Result<Vec<InboxItem>, AppError> {
    let who = recipient_of(p, deputy, agency)?;
    let limit = limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(AppError::malformed("`limit`: 1 to 500"));
    }
    st.store
        .inbox(&who, unread_only, limit)
        .await
        .map_err(internal)
}

pub(crate) async fn mark_read(
    st: &AppState,
    p: &Principal,
    id: Uuid,
) -> Result<InboxItem, AppError> {
    if matches!(p.role, Role::AssigningOffice | Role::Auditor) {
        return Err(AppError::forbidden(
            "a deputy, or a unit, marks its own messages read",
        ));
    }
    let who = recipient_of(p, None, None)?;
    let found = st
        .store
        .mark_read(&who, &id.to_string(), now_ms())
        .await
        .map_err(internal)?;
    if !found {
        return Err(AppError::not_found(format!("message {id} not found")));
    }
    st.store
        .inbox_item(&who, &id.to_string())
        .await
        .map_err(internal)?
        .ok_or_else(|| AppError::not_found(format!("message {id} not found")))
}

/// The named recipient of a preferences path: `Deputy(id)` or `Agency(id)`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Named {
    Deputy(Uuid),
    Agency(Uuid),
}

impl Named {
    fn split(self) -> (Option<Uuid>, Option<Uuid>) {
        match self {
            Named::Deputy(d) => (Some(d), None),
            Named::Agency(a) => (None, Some(a)),
        }
    }
}

pub(crate) async fn preferences_of(
    st: &AppState,
    p: &Principal,
    named: Named,
) -> Result<PreferencesBody, AppError> {
    let (d, a) = named.split();
    let who = recipient_of(p, d, a)?;
    Ok(st
        .store
        .preferences(&who)
        .await
        .map_err(internal)?
        .unwrap_or_default()
        .into())
}

pub(crate) async fn set_preferences(
    st: &AppState,
    p: &Principal,
    named: Named,
    body: PreferencesBody,
) -> Result<PreferencesBody, AppError> {
    match p.role {
        Role::Auditor => {
            return Err(AppError::forbidden("auditors read; they change nothing"));
        }
        Role::Handler | Role::Leader => {
            return Err(AppError::forbidden(
                "a unit's contact is set by its office (an agency admin key) or the assigning office",
            ));
        }
        _ => {}
    }
    let (d, a) = named.split();
    let who = recipient_of(p, d, a)?;
    let prefs = checked(body)?;
    let set = st
        .store
        .set_preferences(&who, &prefs, now_ms())
        .await
        .map_err(internal)?;
    if !set {
        return Err(AppError::new(
            banli_api::ErrorCode::Conflict,
            format!(
                "{} is not a {}: its preferences are kept under the other kind of recipient",
                who.id(),
                who.kind()
            ),
        ));
    }
    tracing::info!(recipient = %who, channels = ?prefs.channels, "notification preferences set");
    Ok(prefs.into())
}

pub(crate) async fn deliveries_of(
    st: &AppState,
    p: &Principal,
    deputy: Option<Uuid>,
    agency: Option<Uuid>,
    suggestion: Option<Uuid>,
    state: Option<String>,
    limit: Option<u32>,
) -> Result<Vec<DeliveryRow>, AppError> {
    let who = match (p.role, deputy, agency) {
        (Role::AssigningOffice | Role::Auditor, None, None) => None,
        _ => Some(recipient_of(p, deputy, agency)?),
    };
    if let Some(s) = &state
        && !matches!(s.as_str(), "pending" | "sent" | "failed" | "undeliverable")
    {
        return Err(AppError::malformed(format!(
            "`state`: `{s}` is not pending, sent, failed or undeliverable"
        )));
    }
    let limit = limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(AppError::malformed("`limit`: 1 to 500"));
    }
    st.store
        .deliveries(
            who.as_ref(),
            suggestion.map(|s| s.to_string()).as_deref(),
            state.as_deref(),
            limit,
        )
        .await
        .map_err(internal)
}
