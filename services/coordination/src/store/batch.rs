//! A consumed batch: the cases it touches loaded from one snapshot, and its effects, parkings and
//! inbox entries written in one transaction, in bulk statements.

use super::*;

/// The replicas a consumed batch moves on, written in one statement at its end: per case the
/// version it expected first and the replica it left last.
#[derive(Default)]
pub(super) struct Replicas {
    order: Vec<String>,
    rows: std::collections::HashMap<String, (u64, u64, String)>,
}

impl Replicas {
    fn note(&mut self, ch: &ReplicaChange) -> Result<(), StoreError> {
        let Some(expected) = ch.expected_replica_version else {
            return Ok(());
        };
        let id = ch.suggestion_id.to_string();
        let replica = json(&ch.replica)?;
        match self.rows.get_mut(&id) {
            Some(row) => {
                row.1 = ch.replica_version;
                row.2 = replica;
            }
            None => {
                self.order.push(id.clone());
                self.rows
                    .insert(id, (expected, ch.replica_version, replica));
            }
        }
        Ok(())
    }

    /// One UPDATE for every case; a case whose replica moved meanwhile is a conflict (the
    /// batch is delivered again).
    async fn write_sqlite(
        self,
        c: &mut sqlx::SqliteConnection,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if self.order.is_empty() {
            return Ok(());
        }
        let rows: Vec<(&str, u64, u64, &str)> = self
            .order
            .iter()
            .filter_map(|id| {
                self.rows
                    .get(id)
                    .map(|(e, v, r)| (id.as_str(), *e, *v, r.as_str()))
            })
            .collect();
        let r = sqlx::query(
            "UPDATE coordination_cases SET replica_version = x.v, replica = x.r, updated_at = $2 \
             FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS e, \
                          json_extract(value, '$[2]') AS v, json_extract(value, '$[3]') AS r FROM json_each($1)) AS x \
             WHERE coordination_cases.suggestion_id = x.id AND coordination_cases.replica_version = x.e",
        )
        .bind(serde_json::to_string(&rows).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(now)
        .execute(&mut *c)
        .await?;
        if r.rows_affected() != rows.len() as u64 {
            let (_, expected, actual, _) = rows[0];
            return Err(StoreError::Conflict { expected, actual });
        }
        Ok(())
    }
}

impl Replicas {
    /// [`Replicas::write_sqlite`] on PostgreSQL: one UPDATE from arrays.
    async fn write_postgres(
        self,
        c: &mut sqlx::PgConnection,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if self.order.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(self.order.len());
        let (mut expected, mut versions, mut replicas) = (Vec::new(), Vec::new(), Vec::new());
        for id in &self.order {
            if let Some((e, v, r)) = self.rows.get(id) {
                ids.push(id.as_str());
                expected.push(*e as i64);
                versions.push(*v as i64);
                replicas.push(r.as_str());
            }
        }
        let r = sqlx::query(
            "UPDATE coordination_cases c SET replica_version = x.v, replica = x.r, updated_at = $5 \
             FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[]) AS x(id, e, v, r) \
             WHERE c.suggestion_id = x.id AND c.replica_version = x.e",
        )
        .bind(&ids)
        .bind(&expected)
        .bind(&versions)
        .bind(&replicas)
        .bind(now)
        .execute(&mut *c)
        .await?;
        if r.rows_affected() != ids.len() as u64 {
            return Err(StoreError::Conflict {
                expected: expected[0].max(0) as u64,
                actual: versions[0].max(0) as u64,
            });
        }
        Ok(())
    }
}

/// What every applied event of a batch adds besides its own events, gathered to be written once
/// for the batch: the replicas, the task rows, the feed rows, the references and the inbox
/// entries.
#[derive(Default)]
pub(super) struct Gathered<'a> {
    applied: Vec<&'a Envelope>,
    replicas: Replicas,
    tasks: BatchTasks,
    feed: Vec<crate::feed::FeedEntry>,
    refs: Vec<(Uuid, &'static str, SuggestionId)>,
}

impl<'a> Gathered<'a> {
    fn add(
        &mut self,
        e: &'a Envelope,
        ch: &ReplicaChange,
        changed: &[Task],
    ) -> Result<(), StoreError> {
        self.replicas.note(ch)?;
        self.tasks.extend(changed);
        self.feed.extend(ch.feed.iter().cloned());
        self.refs.extend(
            refs_of(&ch.event)
                .into_iter()
                .map(|(r, k)| (r, k, ch.suggestion_id)),
        );
        self.applied.push(e);
        Ok(())
    }
}

/// The case rows a batch creates (id, replica version, replica, confidential): written first,
/// in one statement.
pub(super) fn new_cases(
    prepared: &[Prepared],
) -> Result<Vec<(String, i64, String, bool)>, StoreError> {
    prepared
        .iter()
        .filter_map(|i| match i {
            Prepared::Apply(_, ch, _, _) if ch.expected_replica_version.is_none() => Some(&**ch),
            _ => None,
        })
        .map(|c| {
            Ok((
                c.suggestion_id.to_string(),
                c.replica_version as i64,
                json(&c.replica)?,
                c.replica.details.confidential,
            ))
        })
        .collect()
}

/// SQLite has no arrays: the batch's rows go in as JSON, one statement a table.
pub(super) mod sqlite_bulk {
    use super::*;

    pub async fn new_cases(
        c: &mut sqlx::SqliteConnection,
        cases: &[(String, i64, String, bool)],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if cases.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO coordination_cases (suggestion_id, replica_version, replica, version, state, updated_at, confidential) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), 0, $2, $3, json_extract(value, '$[3]') FROM json_each($1)",
        )
        .bind(json(&cases)?)
        .bind(json(&CoordinationCase::default())?)
        .bind(now)
        .execute(&mut *c)
        .await?;
        Ok(())
    }

    pub async fn tasks(
        c: &mut sqlx::SqliteConnection,
        tasks: BatchTasks,
    ) -> Result<(), StoreError> {
        let rows: Vec<&Task> = tasks
            .order
            .iter()
            .filter_map(|a| tasks.rows.get(a))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let rows: Vec<_> = rows
            .iter()
            .map(|t| {
                (
                    t.assignment_id.to_string(),
                    t.suggestion_id.to_string(),
                    t.agency_id.to_string(),
                    &t.role,
                    &t.state,
                    &t.opinion,
                    t.co_opinion_due,
                    t.reply_due,
                )
            })
            .collect();
        // Dates serialize as `YYYY-MM-DD`, as sqlx binds them.
        sqlx::query(
            "INSERT INTO coordination_tasks (assignment_id, suggestion_id, agency_id, role, state, opinion, co_opinion_due, reply_due) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]'), \
             json_extract(value, '$[4]'), json_extract(value, '$[5]'), json_extract(value, '$[6]'), json_extract(value, '$[7]') \
             FROM json_each($1) WHERE true \
             ON CONFLICT (assignment_id) DO UPDATE SET state = excluded.state, opinion = excluded.opinion, \
             co_opinion_due = excluded.co_opinion_due, reply_due = excluded.reply_due",
        )
        .bind(json(&rows)?)
        .execute(&mut *c)
        .await?;
        Ok(())
    }

    pub async fn refs(
        c: &mut sqlx::SqliteConnection,
        refs: &[(Uuid, &'static str, SuggestionId)],
    ) -> Result<(), StoreError> {
        if refs.is_empty() {
            return Ok(());
        }
        let rows: Vec<(String, &str, String)> = refs
            .iter()
            .map(|(r, k, s)| (r.to_string(), *k, s.to_string()))
            .collect();
        sqlx::query(
            "INSERT INTO coordination_refs (ref_id, kind, suggestion_id) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each($1) WHERE true \
             ON CONFLICT (ref_id) DO NOTHING",
        )
        .bind(json(&rows)?)
        .execute(&mut *c)
        .await?;
        Ok(())
    }
}

/// The task rows a consumed batch changes, each assignment once (as the batch left it), in
/// the order they were first changed.
#[derive(Default)]
pub(super) struct BatchTasks {
    order: Vec<Uuid>,
    rows: std::collections::HashMap<Uuid, Task>,
}

impl BatchTasks {
    fn extend(&mut self, tasks: &[Task]) {
        for t in tasks {
            if self.rows.insert(t.assignment_id, t.clone()).is_none() {
                self.order.push(t.assignment_id);
            }
        }
    }

    /// One upsert from arrays.
    async fn write_postgres(self, c: &mut sqlx::PgConnection) -> Result<(), StoreError> {
        let tasks: Vec<&Task> = self.order.iter().filter_map(|a| self.rows.get(a)).collect();
        if tasks.is_empty() {
            return Ok(());
        }
        let text = |f: &dyn Fn(&Task) -> String| tasks.iter().map(|t| f(t)).collect::<Vec<_>>();
        sqlx::query(
            "INSERT INTO coordination_tasks (assignment_id, suggestion_id, agency_id, role, state, opinion, co_opinion_due, reply_due) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::date[], $8::date[]) \
             ON CONFLICT (assignment_id) DO UPDATE SET state = excluded.state, opinion = excluded.opinion, \
             co_opinion_due = excluded.co_opinion_due, reply_due = excluded.reply_due",
        )
        .bind(text(&|t| t.assignment_id.to_string()))
        .bind(text(&|t| t.suggestion_id.to_string()))
        .bind(text(&|t| t.agency_id.to_string()))
        .bind(text(&|t| t.role.clone()))
        .bind(text(&|t| t.state.clone()))
        .bind(text(&|t| t.opinion.clone()))
        .bind(tasks.iter().map(|t| t.co_opinion_due).collect::<Vec<_>>())
        .bind(tasks.iter().map(|t| t.reply_due).collect::<Vec<_>>())
        .execute(&mut *c)
        .await?;
        Ok(())
    }
}

/// The references a batch names, in one statement (a known one stays as it is).
pub(super) async fn postgres_refs(
    c: &mut sqlx::PgConnection,
    refs: &[(Uuid, &'static str, SuggestionId)],
) -> Result<(), StoreError> {
    if refs.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = refs.iter().map(|(r, _, _)| r.to_string()).collect();
    let kinds: Vec<&str> = refs.iter().map(|(_, k, _)| *k).collect();
    let suggestions: Vec<String> = refs.iter().map(|(_, _, s)| s.to_string()).collect();
    sqlx::query(
        "INSERT INTO coordination_refs (ref_id, kind, suggestion_id) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[]) ON CONFLICT (ref_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&kinds)
    .bind(&suggestions)
    .execute(&mut *c)
    .await?;
    Ok(())
}

impl Store {
    /// [`Store::load`] for many cases at once, from one snapshot: two queries whatever their
    /// number (a consumer's batch). Cases not stored are absent from the map.
    pub async fn load_many(
        &self,
        ids: &[SuggestionId],
    ) -> Result<std::collections::HashMap<SuggestionId, CaseRecord>, StoreError> {
        let mut out = std::collections::HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let keys: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        type ManyCase = (String, i64, String, i64, String);
        type ManyOwn = (
            String,
            i64,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            OffsetDateTime,
        );
        let (cases, events): (Vec<ManyCase>, Vec<ManyOwn>) = match self.pool() {
            Pool::Sqlite(p) => {
                let list = serde_json::to_string(&keys).unwrap_or_default();
                let mut tx = p.begin().await?;
                let cases = sqlx::query_as(
                    "SELECT suggestion_id, replica_version, replica, version, state FROM coordination_cases \
                     WHERE suggestion_id IN (SELECT value FROM json_each($1))",
                )
                .bind(&list)
                .fetch_all(&mut *tx)
                .await?;
                let events = sqlx::query_as(
                    "SELECT suggestion_id, version, event_id, payload, actor, effects, status, status_reason, occurred_at FROM coordination_events \
                     WHERE suggestion_id IN (SELECT value FROM json_each($1)) AND status = 'pending' ORDER BY suggestion_id, version",
                )
                .bind(&list)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                (cases, events)
            }
            Pool::Postgres(p) => {
                let mut tx = p
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?;
                let cases = sqlx::query_as(
                    "SELECT suggestion_id, replica_version, replica, version, state FROM coordination_cases \
                     WHERE suggestion_id = ANY($1)",
                )
                .bind(&keys)
                .fetch_all(&mut *tx)
                .await?;
                let events = sqlx::query_as(
                    "SELECT suggestion_id, version, event_id, payload, actor, effects, status, status_reason, occurred_at FROM coordination_events \
                     WHERE suggestion_id = ANY($1) AND status = 'pending' ORDER BY suggestion_id, version",
                )
                .bind(&keys)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                (cases, events)
            }
        };
        let mut pending: std::collections::HashMap<String, Vec<OwnRow>> = Default::default();
        for (sid, version, event_id, payload, actor, effects, status, reason, at) in events {
            pending.entry(sid).or_default().push((
                version, event_id, payload, actor, effects, status, reason, at,
            ));
        }
        for (sid, replica_version, replica, version, state) in cases {
            let id = SuggestionId(uuid("suggestion", &sid)?);
            let mut case: CoordinationCase = parse("case", &state)?;
            case.version = version.max(0) as u64;
            out.insert(
                id,
                CaseRecord {
                    replica: parse("replica", &replica)?,
                    replica_version: replica_version.max(0) as u64,
                    case,
                    pending: own_events_of(pending.remove(&sid).unwrap_or_default())?,
                },
            );
        }
        Ok(out)
    }

    /// Writes a consumed batch — each event's effect or parking, each with its inbox entry —
    /// in one transaction.
    pub async fn apply_batch(
        &self,
        inbox: &Inbox,
        items: Vec<BatchItem>,
    ) -> Result<(), StoreError> {
        let mut prepared = Vec::with_capacity(items.len());
        for item in items {
            prepared.push(match item {
                BatchItem::Apply(e, change) => {
                    let traceparent = banli_eventlog::trace::inherited(&e.payload);
                    let rows = event_rows(
                        change.suggestion_id,
                        change.case_version,
                        &change.caused,
                        traceparent.as_deref(),
                    )?;
                    let tasks: Vec<Task> = tasks_of(&change.replica)
                        .into_iter()
                        .filter(|t| !change.tasks_before.as_ref().is_some_and(|b| b.contains(t)))
                        .collect();
                    Prepared::Apply(e, change, rows, tasks)
                }
                BatchItem::Park(e, reason, advance) => Prepared::Park(e, reason, advance),
            });
        }
        let caused = prepared
            .iter()
            .any(|p| matches!(p, Prepared::Apply(_, _, rows, _) if !rows.is_empty()));
        let fed = prepared
            .iter()
            .any(|p| matches!(p, Prepared::Apply(_, ch, _, _) if !ch.feed.is_empty()));
        let inbox = inbox.clone();
        let now = OffsetDateTime::now_utc();
        self.write(move |pool| async move {
            match &pool {
                Pool::Sqlite(p) => {
                    let mut tx = p.begin().await?;
                    // As on PostgreSQL: new cases first, each event's own writes in order,
                    // then what every event adds, once for the batch.
                    sqlite_bulk::new_cases(&mut tx, &new_cases(&prepared)?, now).await?;
                    let mut all = Gathered::default();
                    for item in &prepared {
                        match item {
                            Prepared::Apply(e, ch, rows, changed) => {
                                sqlite::apply_own(&mut tx, ch, rows, now).await?;
                                all.add(e, ch, changed)?;
                            }
                            Prepared::Park(e, reason, advance) => {
                                inbox::sqlite::park(&inbox, &mut tx, e, reason, *advance).await?;
                            }
                        }
                    }
                    all.replicas.write_sqlite(&mut tx, now).await?;
                    sqlite_bulk::tasks(&mut tx, all.tasks).await?;
                    feed::sqlite::insert(&mut tx, &all.feed).await?;
                    sqlite_bulk::refs(&mut tx, &all.refs).await?;
                    inbox::sqlite::record_applied(&inbox, &mut tx, &all.applied)
                        .await
                        .map_err(duplicate)?;
                    tx.commit().await?;
                }
                Pool::Postgres(p) => {
                    let mut tx = p.begin().await?;
                    // New cases first, in one statement; the inbox entries last, in two.
                    let cases = new_cases(&prepared)?;
                    if !cases.is_empty() {
                        let ids: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
                        let versions: Vec<i64> = cases.iter().map(|c| c.1).collect();
                        let replicas: Vec<&str> = cases.iter().map(|c| c.2.as_str()).collect();
                        let confidential: Vec<bool> = cases.iter().map(|c| c.3).collect();
                        sqlx::query("INSERT INTO coordination_cases (suggestion_id, replica_version, replica, version, state, updated_at, confidential) \
                                     SELECT x.id, x.v, x.r, 0, $4, $5, x.c FROM UNNEST($1::text[], $2::bigint[], $3::text[], $6::boolean[]) AS x(id, v, r, c)")
                            .bind(&ids)
                            .bind(&versions)
                            .bind(&replicas)
                            .bind(json(&CoordinationCase::default())?)
                            .bind(now)
                            .bind(&confidential)
                            .execute(&mut *tx)
                            .await?;
                    }
                    // Then each event's own writes in order (settled commands, reply copies),
                    // and what every event adds, once for the batch: the replicas, the task
                    // rows, the feed rows and the references.
                    let mut all = Gathered::default();
                    for item in &prepared {
                        match item {
                            Prepared::Apply(e, ch, rows, changed) => {
                                postgres::apply_own(&mut tx, ch, rows, now).await?;
                                all.add(e, ch, changed)?;
                            }
                            Prepared::Park(e, reason, advance) => {
                                inbox::postgres::park(&inbox, &mut tx, e, reason, *advance).await?;
                            }
                        }
                    }
                    all.replicas.write_postgres(&mut tx, now).await?;
                    all.tasks.write_postgres(&mut tx).await?;
                    feed::postgres::insert(&mut tx, &all.feed).await?;
                    postgres_refs(&mut tx, &all.refs).await?;
                    inbox::postgres::record_applied(&inbox, &mut tx, &all.applied)
                        .await
                        .map_err(duplicate)?;
                    tx.commit().await?;
                }
            }
            Ok(())
        })
        .await?;
        if caused {
            self.outbox.written();
        }
        if fed {
            self.feed_written();
        }
        Ok(())
    }
}
