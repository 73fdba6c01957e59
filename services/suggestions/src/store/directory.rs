//! Sessions, deputies, agencies and divisions.

use banli_db::on_pool;
use banli_domain::directory::{Agency, Deputy, Division, Session};
use banli_domain::ids::{AgencyId, DeputyId, SessionId};
use banli_domain::suggestion::{ApprovalChain, Body};
use sqlx::FromRow;
use time::{Date, OffsetDateTime};

use super::{Store, StoreError, unique_as};

#[derive(FromRow)]
struct SessionRow {
    id: String,
    body: String,
    term: i64,
    number: i64,
    name: String,
    opens_on: Date,
    closes_on: Date,
}

#[derive(FromRow)]
struct AgencyRow {
    id: String,
    name: String,
    assigning_office: bool,
}

fn parse_id<T: std::str::FromStr>(s: &str) -> Result<T, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("`{s}` is not a valid id")))
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        let body = match r.body.as_str() {
            "npc" => Body::Npc,
            "cppcc" => Body::Cppcc,
            other => return Err(StoreError::Corrupt(format!("session body `{other}`"))),
        };
        let count = |n: i64| {
            u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("session number {n}")))
        };
        Ok(Session {
            id: parse_id(&r.id)?,
            body,
            term: count(r.term)?,
            number: count(r.number)?,
            name: r.name,
            opens_on: r.opens_on,
            closes_on: r.closes_on,
        })
    }
}

impl TryFrom<AgencyRow> for Agency {
    type Error = StoreError;
    fn try_from(r: AgencyRow) -> Result<Self, StoreError> {
        Ok(Agency {
            id: parse_id(&r.id)?,
            name: r.name,
            assigning_office: r.assigning_office,
        })
    }
}

impl Store {
    pub async fn create_session(&self, s: &Session) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let s = s.clone();
        self.write(move |pool| async move {
        on_pool!(&pool, p => sqlx::query(
            "INSERT INTO sessions (id, body, term, number, name, opens_on, closes_on, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(s.id.to_string())
        .bind(match s.body {
            Body::Npc => "npc",
            Body::Cppcc => "cppcc",
        })
        .bind(i64::from(s.term))
        .bind(i64::from(s.number))
        .bind(&s.name)
        .bind(s.opens_on)
        .bind(s.closes_on)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(unique_as("session")))?;
        Ok(())
        })
        .await
    }

    pub async fn get_session(&self, id: SessionId) -> Result<Session, StoreError> {
        let row: Option<SessionRow> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT id, body, term, number, name, opens_on, closes_on FROM sessions WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(p)
        .await)?;
        row.ok_or_else(|| StoreError::NotFound(format!("session {id}")))?
            .try_into()
    }

    pub async fn list_sessions(&self) -> Result<Vec<Session>, StoreError> {
        let rows: Vec<SessionRow> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT id, body, term, number, name, opens_on, closes_on FROM sessions ORDER BY opens_on DESC, id",
        )
        .fetch_all(p)
        .await)?;
        rows.into_iter().map(Session::try_from).collect()
    }

    pub async fn create_deputy(&self, d: &Deputy) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let d = d.clone();
        self.write(move |pool| async move {
        on_pool!(&pool, p => sqlx::query("INSERT INTO deputies (id, name, delegation, contact, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(d.id.to_string())
            .bind(&d.name)
            .bind(&d.delegation)
            .bind(&d.contact)
            .bind(now)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(unique_as("deputy")))?;
        Ok(())
        })
        .await
    }

    /// Which of `ids` are not in the directory, in one query.
    /// The deputies of `ids` that exist, with their delegations (代表团).
    pub async fn delegations(
        &self,
        ids: &[DeputyId],
    ) -> Result<Vec<(DeputyId, String)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        // Only numbered placeholders are spliced in; every id is bound.
        let sql = format!(
            "SELECT id, delegation FROM deputies WHERE id IN ({})",
            placeholders.join(", ")
        );
        let found: Vec<(String, String)> = on_pool!(self.pool(), p => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
            for id in ids {
                q = q.bind(id.to_string());
            }
            q.fetch_all(p).await?
        });
        Ok(found
            .into_iter()
            .filter_map(|(id, d)| Some((DeputyId(id.parse().ok()?), d)))
            .collect())
    }

    /// Every deputy, by name.
    pub async fn list_deputies(&self) -> Result<Vec<Deputy>, StoreError> {
        let rows: Vec<(String, String, String, String)> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT id, name, delegation, contact FROM deputies ORDER BY name, id",
        )
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|(id, name, delegation, contact)| {
                Ok(Deputy {
                    id: DeputyId(
                        id.parse()
                            .map_err(|_| StoreError::Corrupt(format!("deputy id {id}")))?,
                    ),
                    name,
                    delegation,
                    contact,
                })
            })
            .collect()
    }

    pub async fn get_deputy(&self, id: DeputyId) -> Result<Deputy, StoreError> {
        let row: Option<(String, String, String)> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT name, delegation, contact FROM deputies WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(p)
        .await)?;
        let (name, delegation, contact) =
            row.ok_or_else(|| StoreError::NotFound(format!("deputy {id}")))?;
        Ok(Deputy {
            id,
            name,
            delegation,
            contact,
        })
    }

    pub async fn create_agency(&self, a: &Agency) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let a = a.clone();
        // Published to the other services' replicas in the same transaction.
        self.write(move |pool| async move {
            super::export::with_export!(pool, |tx| {
                sqlx::query("INSERT INTO agencies (id, name, assigning_office, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(a.id.to_string())
                    .bind(&a.name)
                    .bind(a.assigning_office)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(unique_as("agency"))?;
            });
            Ok(())
        })
        .await?;
        self.outbox().written();
        Ok(())
    }

    pub async fn get_agency(&self, id: AgencyId) -> Result<Agency, StoreError> {
        let row: Option<AgencyRow> = on_pool!(self.pool(), p => sqlx::query_as("SELECT id, name, assigning_office FROM agencies WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(p)
            .await)?;
        row.ok_or_else(|| StoreError::NotFound(format!("agency {id}")))?
            .try_into()
    }

    pub async fn list_agencies(&self) -> Result<Vec<Agency>, StoreError> {
        let rows: Vec<AgencyRow> = on_pool!(self.pool(), p => sqlx::query_as("SELECT id, name, assigning_office FROM agencies ORDER BY name")
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(Agency::try_from).collect()
    }

    pub async fn create_division(&self, d: &Division) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let d = d.clone();
        self.write(move |pool| async move {
        let result = on_pool!(&pool, p => sqlx::query("INSERT INTO divisions (id, agency_id, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(d.id.to_string())
            .bind(d.agency_id.to_string())
            .bind(&d.name)
            .bind(now)
            .execute(p)
            .await
            .map(|_| ()));
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                Err(StoreError::NotFound(format!("agency {}", d.agency_id)))
            }
            Err(e) => Err(unique_as("division")(e)),
        }
        })
        .await
    }

    pub async fn list_divisions(&self, agency: AgencyId) -> Result<Vec<Division>, StoreError> {
        let rows: Vec<(String, String)> = on_pool!(self.pool(), p => sqlx::query_as("SELECT id, name FROM divisions WHERE agency_id = $1 ORDER BY name")
            .bind(agency.to_string())
            .fetch_all(p)
            .await)?;
        rows.into_iter()
            .map(|(id, name)| {
                Ok(Division {
                    id: parse_id(&id)?,
                    agency_id: agency,
                    name,
                })
            })
            .collect()
    }
}

impl Store {
    /// The agency's approval chain (内部审批); the empty chain when none is set (replies are
    /// issued at once).
    pub async fn approval_chain(&self, agency: AgencyId) -> Result<ApprovalChain, StoreError> {
        let row: Option<(String, bool)> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT steps, key_items_add_head FROM approval_chains WHERE agency_id = $1",
        )
        .bind(agency.to_string())
        .fetch_optional(p)
        .await)?;
        match row {
            None => Ok(ApprovalChain::default()),
            Some((steps, key_items_add_head)) => Ok(ApprovalChain {
                steps: serde_json::from_str(&steps).map_err(|_| {
                    StoreError::Corrupt(format!("approval chain of agency {agency}"))
                })?,
                key_items_add_head,
            }),
        }
    }

    /// Sets (replaces) the agency's approval chain. `NotFound` for an unknown agency. Drafts
    /// already in review keep the steps they were submitted with.
    pub async fn set_approval_chain(
        &self,
        agency: AgencyId,
        chain: &ApprovalChain,
    ) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let steps = serde_json::to_string(&chain.steps)
            .map_err(|e| StoreError::Corrupt(format!("approval chain: {e}")))?;
        let add_head = chain.key_items_add_head;
        self.write(move |pool| async move {
            let r = on_pool!(&pool, p => sqlx::query(
                "INSERT INTO approval_chains (agency_id, steps, key_items_add_head, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (agency_id) DO UPDATE SET steps = excluded.steps, key_items_add_head = excluded.key_items_add_head, updated_at = excluded.updated_at",
            )
            .bind(agency.to_string())
            .bind(&steps)
            .bind(add_head)
            .bind(now)
            .execute(p)
            .await
            .map(|_| ()));
            match r {
                Ok(()) => Ok(()),
                Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                    Err(StoreError::NotFound(format!("agency {agency}")))
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }
}
