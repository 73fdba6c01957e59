//! The metric facts per suggestion and the daily sums, written in bulk; the metrics query.

use super::*;

/// The tables of per-suggestion metrics rows, replaced whole when a suggestion's facts change.
pub(super) const FACT_TABLES: [&str; 4] = [
    "followup_facts",
    "followup_fact_classes",
    "followup_fact_feedback",
    "followup_fact_commitments",
];

/// The metrics rows of many suggestions in a few statements (SQLite): the consumer's batches.
/// The rows go in as JSON arrays (dates as `YYYY-MM-DD`, as sqlx binds them).
pub(super) async fn save_facts_many_sqlite(
    c: &mut sqlx::SqliteConnection,
    suggestions: &[&Suggestion],
) -> Result<(), sqlx::Error> {
    use serde_json::{Value, json};
    let ids: Vec<String> = suggestions.iter().map(|s| s.id.to_string()).collect();
    let ids_json = serde_json::to_string(&ids).unwrap_or_default();
    for table in FACT_TABLES {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE suggestion_id IN (SELECT value FROM json_each($1))"
        )))
        .bind(&ids_json)
        .execute(&mut *c)
        .await?;
    }
    let (mut facts, mut classes, mut feedback, mut divisions, mut commitments) = (
        Vec::<Value>::new(),
        Vec::<Value>::new(),
        Vec::<Value>::new(),
        Vec::<Value>::new(),
        Vec::<Value>::new(),
    );
    for (s, id) in suggestions.iter().zip(&ids) {
        let x = SuggestionFacts::of(s);
        for a in &x.assignments {
            facts.push(json!([
                a.agency.to_string(),
                a.assignment_id.to_string(),
                id,
                a.division.map(|d| d.to_string()),
                a.role.as_str(),
                a.role.is_responsible(),
                x.session.to_string(),
                a.assigned_on.year(),
                a.assigned_on,
                a.superseded,
                a.replied_on,
                a.effective_due,
                a.first_contact_on,
                a.first_meeting_on,
                x.key_item,
                a.led_by_principal,
                x.class_now.map(|(c, _)| c.as_str()),
                x.class_now.map(|(_, on)| on),
                x.first_b_on,
                x.converted_on,
                x.has_commitments,
                x.category,
                x.lead_deputy.to_string(),
                x.delegation,
                a.after_reply_contact_on,
                a.recess_contact_on,
                a.first_review_on,
                a.first_review_returned,
            ]));
        }
        for k in &x.commitments {
            commitments.push(json!([
                id,
                k.id.to_string(),
                k.assignment_id.to_string(),
                k.target_date,
                k.fulfilled
            ]));
        }
        for h in &x.classes {
            classes.push(json!([id, h.seq, h.on, h.class.as_str()]));
        }
        for b in &x.feedback {
            feedback.push(json!([
                id,
                b.deputy.to_string(),
                b.round,
                b.level.as_str(),
                b.on,
                b.superseded_on
            ]));
        }
        for a in &s.assignments {
            divisions.push(json!([
                a.id.to_string(),
                a.dispatch.as_ref().map(|d| d.division.to_string())
            ]));
        }
    }
    let columns = |n: usize| {
        (0..n)
            .map(|i| format!("json_extract(value, '$[{i}]')"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let inserts = [
        (
            "followup_facts (agency_id, assignment_id, suggestion_id, division_id, role, responsible, session_id, year, \
             assigned_on, superseded, replied_on, effective_due, first_contact_on, first_meeting_on, key_item, led_by_principal, \
             class_now, class_since, first_b_on, converted_on, has_commitments, category, lead_deputy_id, delegation, \
             after_reply_contact_on, recess_contact_on, first_review_on, first_review_returned)",
            28,
            "",
            facts,
        ),
        (
            "followup_fact_commitments (suggestion_id, commitment_id, assignment_id, target_date, fulfilled)",
            5,
            "",
            commitments,
        ),
        (
            "followup_fact_classes (suggestion_id, seq, on_date, class)",
            4,
            "",
            classes,
        ),
        (
            "followup_fact_feedback (suggestion_id, deputy_id, round, level, on_date, superseded_on)",
            6,
            // `WHERE true`: SQLite's parser needs it between a SELECT and ON CONFLICT.
            " WHERE true ON CONFLICT (suggestion_id, deputy_id, round) DO NOTHING",
            feedback,
        ),
    ];
    for (table, n, tail, rows) in inserts {
        if rows.is_empty() {
            continue;
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} SELECT {} FROM json_each($1){tail}",
            columns(n)
        )))
        .bind(Value::Array(rows).to_string())
        .execute(&mut *c)
        .await?;
    }
    sqlx::query(
        "UPDATE followup_deadlines SET division_id = json_extract(u.value, '$[1]') \
         FROM json_each($1) u WHERE followup_deadlines.assignment_id = json_extract(u.value, '$[0]')",
    )
    .bind(Value::Array(divisions).to_string())
    .execute(&mut *c)
    .await?;
    sqlx::query("UPDATE followup_cases SET facts_version = $2 WHERE suggestion_id IN (SELECT value FROM json_each($1))")
        .bind(&ids_json)
        .bind(FACTS_VERSION)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// The metrics rows of many suggestions in a few statements (PostgreSQL): rebuilds, imports
/// and the consumer's batches.
pub(super) async fn save_facts_many_postgres(
    c: &mut sqlx::PgConnection,
    suggestions: &[&Suggestion],
) -> Result<(), sqlx::Error> {
    let ids: Vec<String> = suggestions.iter().map(|s| s.id.to_string()).collect();
    for table in FACT_TABLES {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE suggestion_id = ANY($1)"
        )))
        .bind(&ids)
        .execute(&mut *c)
        .await?;
    }
    #[derive(Default)]
    struct Cols {
        agency: Vec<String>,
        assignment: Vec<String>,
        suggestion: Vec<String>,
        division: Vec<Option<String>>,
        role: Vec<&'static str>,
        responsible: Vec<bool>,
        session: Vec<String>,
        year: Vec<i32>,
        assigned_on: Vec<Date>,
        superseded: Vec<bool>,
        replied_on: Vec<Option<Date>>,
        effective_due: Vec<Option<Date>>,
        first_contact_on: Vec<Option<Date>>,
        first_meeting_on: Vec<Option<Date>>,
        key_item: Vec<bool>,
        led: Vec<bool>,
        class_now: Vec<Option<&'static str>>,
        class_since: Vec<Option<Date>>,
        first_b_on: Vec<Option<Date>>,
        converted_on: Vec<Option<Date>>,
        commitments: Vec<bool>,
        category: Vec<String>,
        deputy: Vec<String>,
        delegation: Vec<String>,
        after_reply: Vec<Option<Date>>,
        recess: Vec<Option<Date>>,
        review_on: Vec<Option<Date>>,
        review_returned: Vec<bool>,
    }
    let mut f = Cols::default();
    let (mut h_id, mut h_seq, mut h_on, mut h_class) = (vec![], vec![], vec![], vec![]);
    let (mut b_id, mut b_deputy, mut b_round, mut b_level, mut b_on, mut b_sup) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut k_id, mut k_commitment, mut k_assignment, mut k_target, mut k_fulfilled) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (s, id) in suggestions.iter().zip(&ids) {
        let x = SuggestionFacts::of(s);
        for a in &x.assignments {
            f.agency.push(a.agency.to_string());
            f.assignment.push(a.assignment_id.to_string());
            f.suggestion.push(id.clone());
            f.division.push(a.division.map(|d| d.to_string()));
            f.role.push(a.role.as_str());
            f.responsible.push(a.role.is_responsible());
            f.session.push(x.session.to_string());
            f.year.push(a.assigned_on.year());
            f.assigned_on.push(a.assigned_on);
            f.superseded.push(a.superseded);
            f.replied_on.push(a.replied_on);
            f.effective_due.push(a.effective_due);
            f.first_contact_on.push(a.first_contact_on);
            f.first_meeting_on.push(a.first_meeting_on);
            f.key_item.push(x.key_item);
            f.led.push(a.led_by_principal);
            f.class_now.push(x.class_now.map(|(c, _)| c.as_str()));
            f.class_since.push(x.class_now.map(|(_, on)| on));
            f.first_b_on.push(x.first_b_on);
            f.converted_on.push(x.converted_on);
            f.commitments.push(x.has_commitments);
            f.category.push(x.category.clone());
            f.deputy.push(x.lead_deputy.to_string());
            f.delegation.push(x.delegation.clone());
            f.after_reply.push(a.after_reply_contact_on);
            f.recess.push(a.recess_contact_on);
            f.review_on.push(a.first_review_on);
            f.review_returned.push(a.first_review_returned);
        }
        for k in &x.commitments {
            k_id.push(id.clone());
            k_commitment.push(k.id.to_string());
            k_assignment.push(k.assignment_id.to_string());
            k_target.push(k.target_date);
            k_fulfilled.push(k.fulfilled);
        }
        for c in &x.classes {
            h_id.push(id.clone());
            h_seq.push(c.seq as i32);
            h_on.push(c.on);
            h_class.push(c.class.as_str());
        }
        for b in &x.feedback {
            b_id.push(id.clone());
            b_deputy.push(b.deputy.to_string());
            b_round.push(b.round as i32);
            b_level.push(b.level.as_str());
            b_on.push(b.on);
            b_sup.push(b.superseded_on);
        }
    }
    sqlx::query(
        "INSERT INTO followup_facts (agency_id, assignment_id, suggestion_id, division_id, role, responsible, session_id, year, \
         assigned_on, superseded, replied_on, effective_due, first_contact_on, first_meeting_on, key_item, led_by_principal, \
         class_now, class_since, first_b_on, converted_on, has_commitments, category, lead_deputy_id, delegation, \
         after_reply_contact_on, recess_contact_on, first_review_on, first_review_returned) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::text[], $8::int[], \
         $9::date[], $10::bool[], $11::date[], $12::date[], $13::date[], $14::date[], $15::bool[], $16::bool[], \
         $17::text[], $18::date[], $19::date[], $20::date[], $21::bool[], $22::text[], $23::text[], $24::text[], $25::date[], $26::date[], \
         $27::date[], $28::bool[])",
    )
    .bind(&f.agency).bind(&f.assignment).bind(&f.suggestion).bind(&f.division).bind(&f.role)
    .bind(&f.responsible).bind(&f.session).bind(&f.year).bind(&f.assigned_on).bind(&f.superseded)
    .bind(&f.replied_on).bind(&f.effective_due).bind(&f.first_contact_on).bind(&f.first_meeting_on)
    .bind(&f.key_item).bind(&f.led).bind(&f.class_now).bind(&f.class_since).bind(&f.first_b_on)
    .bind(&f.converted_on)
    .bind(&f.commitments)
    .bind(&f.category)
    .bind(&f.deputy)
    .bind(&f.delegation)
    .bind(&f.after_reply)
    .bind(&f.recess)
    .bind(&f.review_on)
    .bind(&f.review_returned)
    .execute(&mut *c)
    .await?;
    sqlx::query(
        "INSERT INTO followup_fact_commitments (suggestion_id, commitment_id, assignment_id, target_date, fulfilled) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::date[], $5::bool[])",
    )
    .bind(&k_id)
    .bind(&k_commitment)
    .bind(&k_assignment)
    .bind(&k_target)
    .bind(&k_fulfilled)
    .execute(&mut *c)
    .await?;
    sqlx::query(
        "INSERT INTO followup_fact_classes (suggestion_id, seq, on_date, class) \
         SELECT * FROM UNNEST($1::text[], $2::int[], $3::date[], $4::text[])",
    )
    .bind(&h_id)
    .bind(&h_seq)
    .bind(&h_on)
    .bind(&h_class)
    .execute(&mut *c)
    .await?;
    sqlx::query(
        "INSERT INTO followup_fact_feedback (suggestion_id, deputy_id, round, level, on_date, superseded_on) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::int[], $4::text[], $5::date[], $6::date[]) \
         ON CONFLICT (suggestion_id, deputy_id, round) DO NOTHING",
    )
    .bind(&b_id).bind(&b_deputy).bind(&b_round).bind(&b_level).bind(&b_on).bind(&b_sup)
    .execute(&mut *c)
    .await?;
    let (assignments, divisions): (Vec<String>, Vec<Option<String>>) = suggestions
        .iter()
        .flat_map(|s| &s.assignments)
        .map(|a| {
            (
                a.id.to_string(),
                a.dispatch.as_ref().map(|d| d.division.to_string()),
            )
        })
        .unzip();
    sqlx::query(
        "UPDATE followup_deadlines d SET division_id = u.division_id \
         FROM UNNEST($1::text[], $2::text[]) AS u(assignment_id, division_id) WHERE d.assignment_id = u.assignment_id",
    )
    .bind(&assignments)
    .bind(&divisions)
    .execute(&mut *c)
    .await?;
    sqlx::query("UPDATE followup_cases SET facts_version = $2 WHERE suggestion_id = ANY($1)")
        .bind(&ids)
        .bind(FACTS_VERSION)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// The per-day count columns, in the order of `Counts::to_array`.
pub(super) const DAY_COLUMNS: [&str; COUNTS] = [
    "lead",
    "co",
    "separate",
    "sole",
    "live",
    "replied",
    "on_time",
    "responsible",
    "communicated",
    "met",
    "replied_responsible",
    "resolved",
    "solved_or_planned",
    "ever_b",
    "converted",
    "communicated_after_reply",
    "communicated_in_recess",
    "feedback_latest",
    "feedback_latest_good",
    "feedback_latest_satisfied",
    "feedback_first",
    "feedback_first_good",
    "commitments_due",
    "commitments_fulfilled",
    "reviewed",
    "returned",
];

/// A slice as stored: '' for every agency or role, 0 for every year, '' for no facet (kind and
/// value).
pub(super) fn day_key(k: &DayKey) -> (String, i32, &'static str, &'static str, String) {
    (
        k.agency.map(|a| a.to_string()).unwrap_or_default(),
        k.year.unwrap_or(0),
        k.role.map_or("", UnitRole::as_str),
        k.facet.as_ref().map_or("", Facet::kind),
        k.facet
            .as_ref()
            .map(|f| f.value().to_owned())
            .unwrap_or_default(),
    )
}

/// The key columns of `followup_metric_days`, in the order of [`day_key`] and the day.
pub(super) const DAY_KEY_COLUMNS: &str = "agency_id, year, role, facet, facet_value, day";

/// The summed per-day changes of suggestions not stored before, in one statement (PostgreSQL)
/// or one per slice and day (SQLite), within the caller's transaction.
pub(super) async fn add_days_postgres(
    c: &mut sqlx::PgConnection,
    sum: &DaySums,
) -> Result<(), sqlx::Error> {
    if sum.is_empty() {
        return Ok(());
    }
    let mut agency = Vec::with_capacity(sum.len());
    let mut year = Vec::with_capacity(sum.len());
    let mut role = Vec::with_capacity(sum.len());
    let mut facet = Vec::with_capacity(sum.len());
    let mut facet_value = Vec::with_capacity(sum.len());
    let mut day = Vec::with_capacity(sum.len());
    let mut cols: Vec<Vec<i64>> = (0..COUNTS).map(|_| Vec::with_capacity(sum.len())).collect();
    for ((k, d), v) in sum {
        let (a, y, r, f, fv) = day_key(k);
        agency.push(a);
        year.push(y);
        role.push(r);
        facet.push(f);
        facet_value.push(fv);
        day.push(*d);
        for (col, x) in cols.iter_mut().zip(v) {
            col.push(*x);
        }
    }
    let unnest: Vec<String> = (7..7 + COUNTS).map(|i| format!("${i}::int8[]")).collect();
    let sets: Vec<String> = DAY_COLUMNS
        .iter()
        .map(|c| format!("{c} = followup_metric_days.{c} + excluded.{c}"))
        .collect();
    let sql = format!(
        "INSERT INTO followup_metric_days ({DAY_KEY_COLUMNS}, {}) \
         SELECT * FROM UNNEST($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::date[], {}) \
         ON CONFLICT ({DAY_KEY_COLUMNS}) DO UPDATE SET {}",
        DAY_COLUMNS.join(", "),
        unnest.join(", "),
        sets.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(agency)
        .bind(year)
        .bind(role)
        .bind(facet)
        .bind(facet_value)
        .bind(day);
    for col in cols {
        q = q.bind(col);
    }
    q.execute(&mut *c).await?;
    Ok(())
}

/// Summed per-day count changes by slice and day.
pub type DaySums = std::collections::BTreeMap<(DayKey, Date), [i64; COUNTS]>;

/// [`add_days_sqlite`] and [`add_days_postgres`] by backend module name.
pub(super) mod add_days {
    pub(in crate::store) use super::add_days_postgres as postgres;
    pub(in crate::store) use super::add_days_sqlite as sqlite;
}

/// The summed per-day changes in one statement: SQLite has no arrays, so the rows go in as
/// JSON (`[agency, year, role, day, counts…]` each).
pub(super) async fn add_days_sqlite(
    c: &mut sqlx::SqliteConnection,
    sum: &DaySums,
) -> Result<(), sqlx::Error> {
    if sum.is_empty() {
        return Ok(());
    }
    let rows: Vec<serde_json::Value> = sum
        .iter()
        .map(|((k, d), v)| {
            let (agency, year, role, facet, facet_value) = day_key(k);
            let mut row = vec![
                serde_json::Value::from(agency),
                year.into(),
                role.into(),
                facet.into(),
                facet_value.into(),
                d.to_string().into(),
            ];
            row.extend(v.iter().map(|x| serde_json::Value::from(*x)));
            serde_json::Value::Array(row)
        })
        .collect();
    let cols = DAY_COLUMNS.join(", ");
    let values: Vec<String> = (0..6 + COUNTS)
        .map(|i| format!("json_extract(value, '$[{i}]')"))
        .collect();
    let sets: Vec<String> = DAY_COLUMNS
        .iter()
        .map(|c| format!("{c} = followup_metric_days.{c} + excluded.{c}"))
        .collect();
    // `WHERE true`: SQLite's parser needs it between a SELECT and ON CONFLICT.
    let sql = format!(
        "INSERT INTO followup_metric_days ({DAY_KEY_COLUMNS}, {cols}) SELECT {} FROM json_each($1) WHERE true \
         ON CONFLICT ({DAY_KEY_COLUMNS}) DO UPDATE SET {}",
        values.join(", "),
        sets.join(", ")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(serde_json::Value::Array(rows).to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// The per-day changes of many new suggestions, summed by slice and day.
pub(super) fn summed_days(
    suggestions: &[Suggestion],
) -> std::collections::BTreeMap<(DayKey, Date), [i64; COUNTS]> {
    let mut sum = std::collections::BTreeMap::new();
    for s in suggestions {
        for (k, d, c) in day_changes(s) {
            let e: &mut [i64; COUNTS] = sum.entry((k, d)).or_insert([0; COUNTS]);
            for (e, c) in e.iter_mut().zip(c) {
                *e += c;
            }
        }
    }
    sum.retain(|_, v| v.iter().any(|x| *x != 0));
    sum
}

/// One assignment as exported (CSV).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AssignmentRow {
    pub suggestion_id: String,
    pub assignment_id: String,
    pub agency_id: String,
    pub division_id: Option<String>,
    pub role: String,
    pub session_id: String,
    pub assigned_on: Date,
    pub superseded: bool,
    pub replied_on: Option<Date>,
    pub effective_due: Option<Date>,
    pub first_contact_on: Option<Date>,
    pub first_meeting_on: Option<Date>,
    pub key_item: bool,
    pub led_by_principal: bool,
    pub class_now: Option<String>,
}

/// Replicas as stored (JSON), read back.
pub fn parse_replicas(rows: Vec<(String,)>) -> Result<Vec<Suggestion>, StoreError> {
    rows.into_iter()
        .map(|(r,)| {
            serde_json::from_str(&r).map_err(|e| StoreError::Corrupt(format!("a replica: {e}")))
        })
        .collect()
}

/// The version of the metrics rows' layout; replicas whose rows are older are rebuilt at start.
pub const FACTS_VERSION: i32 = 3;

/// What a metrics query counts: an agency's (or every agency's) assignments made on or before
/// `as_of`, optionally narrowed, with their facts as of that day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsQuery {
    pub as_of: Date,
    pub agency: Option<String>,
    pub division: Option<String>,
    pub role: Option<String>,
    pub session: Option<String>,
    /// The item's category (分类).
    pub category: Option<String>,
    /// The item's lead deputy.
    pub deputy: Option<String>,
    /// The items linked to this topic (共性问题).
    pub topic: Option<String>,
    /// The items whose lead deputy was of this delegation (代表团) when they were submitted.
    pub delegation: Option<String>,
    /// The year the assignment was made.
    pub year: Option<i32>,
}

/// An item's property the metrics are broken down by, as a column of `followup_facts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupColumn {
    Category,
    Delegation,
    Deputy,
}

/// The class of an item as of `$1`: the current one unless it took effect later.
pub(super) const CLASS_AS_OF: &str = "(CASE WHEN f.class_since <= $1 THEN f.class_now ELSE \
    (SELECT h.class FROM followup_fact_classes h WHERE h.suggestion_id = f.suggestion_id AND h.on_date <= $1 \
     ORDER BY h.on_date DESC, h.seq DESC LIMIT 1) END)";

/// The counts of `banli_domain::metrics::Counts`, in its order, as one statement (one snapshot).
pub(super) fn counts_sql(q: &MetricsQuery) -> String {
    let mut conds = vec!["f.assigned_on <= $1".to_owned()];
    let mut n = 1;
    for (col, present) in [
        ("agency_id", q.agency.is_some()),
        ("division_id", q.division.is_some()),
        ("role", q.role.is_some()),
        ("session_id", q.session.is_some()),
        ("category", q.category.is_some()),
        ("lead_deputy_id", q.deputy.is_some()),
        ("topic", q.topic.is_some()),
        ("delegation", q.delegation.is_some()),
        ("year", q.year.is_some()),
    ] {
        if present {
            n += 1;
            if col == "topic" {
                conds.push(format!(
                    "f.suggestion_id IN (SELECT t.suggestion_id FROM followup_topic_items t WHERE t.topic_id = ${n})"
                ));
            } else {
                conds.push(format!("f.{col} = ${n}"));
            }
        }
    }
    let scope = conds.join(" AND ");
    let live = "NOT f.superseded";
    let resp = "NOT f.superseded AND f.responsible";
    let replied = "f.replied_on <= $1";
    let facts = [
        format!("{live} AND f.role = 'lead'"),
        format!("{live} AND f.role = 'co'"),
        format!("{live} AND f.role = 'separate'"),
        format!("{live} AND f.role = 'sole'"),
        live.to_owned(),
        format!("{live} AND {replied}"),
        format!("{live} AND {replied} AND f.replied_on <= f.effective_due"),
        resp.to_owned(),
        format!(
            "{resp} AND f.first_contact_on <= $1 AND (f.replied_on IS NULL OR f.replied_on > $1 OR f.first_contact_on <= f.replied_on)"
        ),
        format!("{resp} AND f.first_meeting_on <= $1"),
        format!("{resp} AND {replied}"),
        format!("{resp} AND {replied} AND {CLASS_AS_OF} = 'A'"),
        format!("{resp} AND {replied} AND {CLASS_AS_OF} IN ('A', 'B')"),
        format!("{resp} AND f.first_b_on <= $1"),
        format!("{resp} AND f.first_b_on <= $1 AND f.converted_on <= $1"),
        format!("{resp} AND {replied} AND f.after_reply_contact_on <= $1"),
        format!("{resp} AND f.recess_contact_on <= $1"),
    ];
    let latest = "(b.superseded_on IS NULL OR b.superseded_on > $1)";
    let good = "b.level IN ('satisfied', 'basically_satisfied')";
    let feedback = [
        latest.to_owned(),
        format!("{latest} AND {good}"),
        format!("{latest} AND b.level = 'satisfied'"),
        "b.round = 0".to_owned(),
        format!("b.round = 0 AND {good}"),
    ];
    let count = |c: &[String]| {
        c.iter()
            .map(|w| format!("COUNT(*) FILTER (WHERE {w})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let commitments = [
        "k.target_date <= $1".to_owned(),
        "k.target_date <= $1 AND k.fulfilled".to_owned(),
    ];
    let reviews = [
        format!("{resp} AND f.first_review_on <= $1"),
        format!("{resp} AND f.first_review_on <= $1 AND f.first_review_returned"),
    ];
    format!(
        "SELECT * FROM (SELECT {} FROM followup_facts f WHERE {scope}) a, \
         (SELECT {} FROM followup_fact_feedback b WHERE b.on_date <= $1 AND b.suggestion_id IN \
          (SELECT f.suggestion_id FROM followup_facts f WHERE {scope})) b, \
         (SELECT {} FROM followup_fact_commitments k WHERE k.assignment_id IN \
          (SELECT f.assignment_id FROM followup_facts f WHERE {scope} AND {live})) k, \
         (SELECT {} FROM followup_facts f WHERE {scope}) r",
        count(&facts),
        count(&feedback),
        count(&commitments),
        count(&reviews)
    )
}
