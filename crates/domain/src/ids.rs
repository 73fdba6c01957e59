//! Identifiers. Each entity has its own type so that an agency id can never be passed where a
//! deputy id is expected.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered id (UUIDv7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    )*};
}

id_type! {
    /// 届次/会次: a session of a People's Congress or CPPCC.
    SessionId,
    /// 代表: a deputy.
    DeputyId,
    /// 单位: an agency, or the assigning office.
    AgencyId,
    /// 处室: a division of an agency.
    DivisionId,
    /// 建议: a suggestion (or proposal).
    SuggestionId,
    /// 交办: one unit's assignment.
    AssignmentId,
    CommunicationId,
    /// 会办意见.
    OpinionId,
    /// 答复.
    ReplyId,
    /// 承诺事项.
    CommitmentId,
    /// 督办通知.
    NoticeId,
    StagePlanId,
    /// 分歧: a disagreement between units.
    DisagreementId,
    /// 会商: a consultation among the units of a suggestion.
    ConsultationId,
}
