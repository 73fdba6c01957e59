//! Topics (共性问题): one issue followed across years, sessions and agencies — the suggestions
//! linked to it, each with its state, class and commitments, and the topic's own counts
//! (延伸办理). The assigning office links any item; a unit keeps topics of its own, over the
//! items it holds an assignment on. An item the caller cannot see is a 404, as for none.

use banli_api::{AppError, Principal};
use banli_db::on_pool;
use banli_domain::Role;
use banli_domain::suggestion::{CommitmentState, Suggestion};
use serde::{Deserialize, Serialize};
use time::Date;
use uuid::Uuid;

use crate::app::{AppState, internal};
use crate::store::{Store, StoreError, parse_replicas};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicBody {
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// The office only: the unit the topic belongs to (default: the office's own).
    pub owner_agency_id: Option<Uuid>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    pub suggestion_id: Uuid,
}

/// A commitment of a linked item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TopicCommitment {
    pub id: Uuid,
    pub owner_agency_id: Uuid,
    pub measure: String,
    #[schema(value_type = String, format = Date)]
    pub target_date: Date,
    /// `open` or `converted`.
    pub state: String,
    /// Converted with evidence by its target date.
    pub fulfilled: bool,
    /// Open past its target date.
    pub overdue: bool,
}

/// A linked item as the topic shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TopicItem {
    pub suggestion_id: Uuid,
    pub number: String,
    pub title: String,
    pub category: String,
    pub session_id: Uuid,
    #[schema(value_type = String, format = Date)]
    pub received_on: Date,
    pub state: String,
    /// The class now (`A`, `B`, `C`, `D`), once replied.
    pub class: Option<String>,
    /// The responsible units.
    pub agency_ids: Vec<Uuid>,
    pub commitments: Vec<TopicCommitment>,
    #[schema(value_type = String, format = Date)]
    pub linked_on: Date,
}

/// The topic's counts: how far its items and their commitments are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
pub struct TopicCounts {
    pub items: u64,
    pub closed: u64,
    pub class_a: u64,
    pub commitments: u64,
    pub commitments_open: u64,
    pub commitments_overdue: u64,
    /// Converted by their target date, of those whose date has passed.
    pub commitments_fulfilled: u64,
    pub commitments_due: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TopicView {
    pub id: Uuid,
    pub owner_agency_id: Uuid,
    pub title: String,
    pub description: String,
    #[schema(value_type = String, format = Date)]
    pub created_on: Date,
    pub version: u64,
    pub counts: TopicCounts,
    pub items: Vec<TopicItem>,
}

/// A topic's row.
#[derive(Debug, Clone)]
pub struct TopicRow {
    pub id: String,
    pub owner: String,
    pub title: String,
    pub description: String,
    pub created_on: Date,
    pub version: i64,
}

type Row = (String, String, String, String, Date, i64);

fn row((id, owner, title, description, created_on, version): Row) -> TopicRow {
    TopicRow {
        id,
        owner,
        title,
        description,
        created_on,
        version,
    }
}

impl Store {
    pub async fn topic(&self, id: &str) -> Result<Option<TopicRow>, StoreError> {
        let r: Option<Row> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT id, owner_agency_id, title, description, created_on, version FROM followup_topics WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await)?;
        Ok(r.map(row))
    }

    pub async fn topics(&self, owner: Option<&str>) -> Result<Vec<TopicRow>, StoreError> {
        let rows: Vec<Row> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT id, owner_agency_id, title, description, created_on, version FROM followup_topics \
             WHERE $1 = '' OR owner_agency_id = $1 ORDER BY created_on DESC, id DESC LIMIT 500")
            .bind(owner.unwrap_or_default())
            .fetch_all(p)
            .await)?;
        Ok(rows.into_iter().map(row).collect())
    }

    pub async fn create_topic(&self, t: TopicRow) -> Result<(), StoreError> {
        self.db()
            .write(move |pool| async move {
                on_pool!(&pool, p => sqlx::query(
                    "INSERT INTO followup_topics (id, owner_agency_id, title, description, created_on, version) VALUES ($1, $2, $3, $4, $5, 1)")
                    .bind(&t.id).bind(&t.owner).bind(&t.title).bind(&t.description).bind(t.created_on)
                    .execute(p)
                    .await
                    .map(|_| ()))?;
                Ok::<(), StoreError>(())
            })
            .await
    }

    /// Links (or, with `link` false, unlinks) an item; the topic's version moves when it changes.
    pub async fn link_topic_item(
        &self,
        topic: &str,
        suggestion: &str,
        on: Date,
        link: bool,
    ) -> Result<bool, StoreError> {
        let (topic, suggestion) = (topic.to_owned(), suggestion.to_owned());
        self.db()
            .write(move |pool| async move {
                let changed = on_pool!(&pool, p => {
                    let mut tx = p.begin().await?;
                    let n = if link {
                        sqlx::query("INSERT INTO followup_topic_items (topic_id, suggestion_id, linked_on) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                            .bind(&topic).bind(&suggestion).bind(on)
                            .execute(&mut *tx).await?.rows_affected()
                    } else {
                        sqlx::query("DELETE FROM followup_topic_items WHERE topic_id = $1 AND suggestion_id = $2")
                            .bind(&topic).bind(&suggestion)
                            .execute(&mut *tx).await?.rows_affected()
                    };
                    if n > 0 {
                        sqlx::query("UPDATE followup_topics SET version = version + 1 WHERE id = $1")
                            .bind(&topic)
                            .execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok::<bool, sqlx::Error>(n > 0)
                })?;
                Ok::<bool, StoreError>(changed)
            })
            .await
    }

    /// The linked items' replicas with the day each was linked.
    pub async fn topic_items(&self, topic: &str) -> Result<Vec<(Suggestion, Date)>, StoreError> {
        let rows: Vec<(String, Date)> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT c.replica, i.linked_on FROM followup_topic_items i JOIN followup_cases c ON c.suggestion_id = i.suggestion_id \
             WHERE i.topic_id = $1 ORDER BY i.linked_on, i.suggestion_id")
            .bind(topic)
            .fetch_all(p)
            .await)?;
        let days: Vec<Date> = rows.iter().map(|(_, d)| *d).collect();
        let replicas = parse_replicas(rows.into_iter().map(|(r, _)| (r,)).collect())?;
        Ok(replicas.into_iter().zip(days).collect())
    }

    /// The topics an agency owns or holds an item of.
    pub async fn topics_of_agency(&self, agency: &str) -> Result<Vec<TopicRow>, StoreError> {
        let rows: Vec<Row> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT id, owner_agency_id, title, description, created_on, version FROM followup_topics t \
             WHERE t.owner_agency_id = $1 OR t.id IN (SELECT i.topic_id FROM followup_topic_items i \
             JOIN followup_units u ON u.suggestion_id = i.suggestion_id WHERE u.agency_id = $1) \
             ORDER BY created_on, id")
            .bind(agency)
            .fetch_all(p)
            .await)?;
        Ok(rows.into_iter().map(row).collect())
    }

    /// Whether `agency` holds (or held) an assignment on the suggestion; any stored
    /// suggestion when `agency` is `None`.
    pub async fn sees_suggestion(
        &self,
        agency: Option<&str>,
        suggestion: &str,
    ) -> Result<bool, StoreError> {
        let r: Option<(String,)> = match agency {
            Some(a) => on_pool!(self.pool(), p => sqlx::query_as(
                "SELECT suggestion_id FROM followup_units WHERE agency_id = $1 AND suggestion_id = $2")
                .bind(a).bind(suggestion)
                .fetch_optional(p)
                .await)?,
            None => on_pool!(self.pool(), p => sqlx::query_as(
                "SELECT suggestion_id FROM followup_cases WHERE suggestion_id = $1")
                .bind(suggestion)
                .fetch_optional(p)
                .await)?,
        };
        Ok(r.is_some())
    }
}

/// Who keeps topics: the office (any), an agency's admin or leader (its own). Auditors read.
fn keeper(p: &Principal) -> Result<Option<String>, AppError> {
    match p.role {
        Role::AssigningOffice => Ok(None),
        Role::AgencyAdmin | Role::Leader => Ok(Some(
            p.agency
                .ok_or_else(|| AppError::forbidden("this key has no agency"))?
                .to_string(),
        )),
        _ => Err(AppError::forbidden(
            "topics are kept by the assigning office and by agencies' admins and leaders",
        )),
    }
}

/// The topic as `p` may see it: the office and auditors any, an agency its own (404 otherwise).
async fn visible(st: &AppState, p: &Principal, id: Uuid) -> Result<TopicRow, AppError> {
    let t = st
        .store
        .topic(&id.to_string())
        .await
        .map_err(internal)?
        .ok_or_else(|| AppError::not_found(format!("topic {id} not found")))?;
    let own = match p.role {
        Role::AssigningOffice | Role::Auditor => true,
        Role::AgencyAdmin | Role::Leader | Role::Handler => {
            p.agency.is_some_and(|a| a.to_string() == t.owner)
        }
        _ => false,
    };
    if !own {
        return Err(AppError::not_found(format!("topic {id} not found")));
    }
    Ok(t)
}

pub(crate) async fn create(
    st: &AppState,
    p: &Principal,
    body: TopicBody,
) -> Result<TopicView, AppError> {
    let mine = keeper(p)?;
    if body.title.trim().is_empty() {
        return Err(AppError::invalid("`title` is required"));
    }
    let owner = match (&mine, body.owner_agency_id) {
        (None, Some(a)) => {
            // A topic belongs to a unit that handles items here (it keeps topics of its own).
            if !st
                .store
                .knows_agency(&a.to_string())
                .await
                .map_err(internal)?
            {
                return Err(AppError::invalid(format!(
                    "`owner_agency_id`: agency {a} holds no assignment here"
                )));
            }
            a.to_string()
        }
        (None, None) => p
            .agency
            .map(|a| a.to_string())
            .ok_or_else(|| AppError::invalid("`owner_agency_id` is required for this key"))?,
        (Some(own), Some(a)) if a.to_string() != *own => {
            return Err(AppError::forbidden("a unit keeps topics of its own only"));
        }
        (Some(own), _) => own.clone(),
    };
    let id = Uuid::now_v7();
    st.store
        .create_topic(TopicRow {
            id: id.to_string(),
            owner,
            title: body.title.trim().to_owned(),
            description: body.description.trim().to_owned(),
            created_on: st.clock.today(),
            version: 1,
        })
        .await
        .map_err(internal)?;
    view(st, p, id).await
}

pub(crate) async fn link(
    st: &AppState,
    p: &Principal,
    id: Uuid,
    suggestion: Uuid,
    on: bool,
) -> Result<TopicView, AppError> {
    let mine = keeper(p)?;
    let t = visible(st, p, id).await?;
    if mine.as_ref().is_some_and(|m| *m != t.owner) {
        return Err(AppError::not_found(format!("topic {id} not found")));
    }
    // A unit links only what it holds an assignment on; anything else is a 404, as for none.
    if !st
        .store
        .sees_suggestion(mine.as_deref(), &suggestion.to_string())
        .await
        .map_err(internal)?
    {
        return Err(AppError::not_found(format!(
            "suggestion {suggestion} not found"
        )));
    }
    let changed = st
        .store
        .link_topic_item(&t.id, &suggestion.to_string(), st.clock.today(), on)
        .await
        .map_err(internal)?;
    if !on && !changed {
        return Err(AppError::not_found(format!(
            "suggestion {suggestion} is not linked to topic {id}"
        )));
    }
    if changed {
        tracing::info!(topic = %id, suggestion = %suggestion, linked = on, "topic item changed");
    }
    view(st, p, id).await
}

pub(crate) async fn view(st: &AppState, p: &Principal, id: Uuid) -> Result<TopicView, AppError> {
    let t = visible(st, p, id).await?;
    let today = st.clock.today();
    let hide = p.role.lists_without_confidential();
    let mut counts = TopicCounts::default();
    let mut items = Vec::new();
    for (s, linked_on) in st.store.topic_items(&t.id).await.map_err(internal)? {
        if hide && s.details.confidential {
            continue;
        }
        let commitments: Vec<TopicCommitment> = s
            .commitments
            .iter()
            .map(|c| TopicCommitment {
                id: c.id.0,
                owner_agency_id: c.owner.0,
                measure: c.measure.clone(),
                target_date: c.target_date,
                state: match c.state {
                    CommitmentState::Open => "open",
                    CommitmentState::Converted => "converted",
                }
                .to_owned(),
                fulfilled: c.fulfilled(),
                overdue: c.state == CommitmentState::Open && c.target_date < today,
            })
            .collect();
        counts.items += 1;
        counts.closed += u64::from(s.state == banli_domain::suggestion::SuggestionState::Closed);
        counts.class_a +=
            u64::from(s.current_class() == Some(banli_domain::suggestion::ReplyClass::A));
        counts.commitments += commitments.len() as u64;
        counts.commitments_open += commitments.iter().filter(|c| c.state == "open").count() as u64;
        counts.commitments_overdue += commitments.iter().filter(|c| c.overdue).count() as u64;
        let due: Vec<&TopicCommitment> = commitments
            .iter()
            .filter(|c| c.target_date <= today)
            .collect();
        counts.commitments_due += due.len() as u64;
        counts.commitments_fulfilled += due.iter().filter(|c| c.fulfilled).count() as u64;
        let mut agency_ids: Vec<Uuid> = s
            .active_assignments()
            .filter(|a| a.is_responsible())
            .map(|a| a.agency.0)
            .collect();
        agency_ids.dedup();
        items.push(TopicItem {
            suggestion_id: s.id.0,
            number: s.details.number.clone(),
            title: s.details.title.clone(),
            category: s.details.category.clone(),
            session_id: s.details.session_id.0,
            received_on: s.received_on,
            state: s.state.as_str().to_owned(),
            class: s.current_class().map(|c| c.as_str().to_owned()),
            agency_ids,
            commitments,
            linked_on,
        });
    }
    Ok(TopicView {
        id,
        owner_agency_id: t.owner.parse().unwrap_or_default(),
        title: t.title,
        description: t.description,
        created_on: t.created_on,
        version: t.version as u64,
        counts,
        items,
    })
}

pub(crate) async fn list(st: &AppState, p: &Principal) -> Result<Vec<TopicView>, AppError> {
    let owner = match p.role {
        Role::AssigningOffice | Role::Auditor => None,
        Role::AgencyAdmin | Role::Leader | Role::Handler => Some(
            p.agency
                .ok_or_else(|| AppError::forbidden("this key has no agency"))?
                .to_string(),
        ),
        _ => {
            return Err(AppError::forbidden(
                "topics are read by the office, auditors and agencies",
            ));
        }
    };
    let mut out = Vec::new();
    for t in st.store.topics(owner.as_deref()).await.map_err(internal)? {
        if let Ok(id) = t.id.parse() {
            out.push(view(st, p, id).await?);
        }
    }
    Ok(out)
}
