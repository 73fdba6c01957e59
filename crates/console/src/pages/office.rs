//! The assigning office: the dashboard (counts and rates with their definitions, overdue
//! deadlines, open supervision notices, charts drawn here as SVG) and registering a suggestion.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Form, after_change};
use crate::Console;
use crate::api::Send;
use crate::i18n::Lang;
use crate::page::{
    self, FormState, Kind, date, field, form_problem, hidden, percent, raw, respond, select, shell,
};
use crate::session::Viewer;

#[derive(Debug, Deserialize)]
pub struct DashboardQuery {
    agency_id: Option<String>,
    year: Option<String>,
}

/// The rates the dashboard charts, per agency.
const CHARTED: [&str; 3] = ["reply_rate", "on_time_rate", "satisfaction_rate_broad"];

fn query(params: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(params).unwrap_or_default()
}

/// The office's dashboard for one agency (or every agency) and year.
pub async fn dashboard(
    State(c): State<Console>,
    viewer: Viewer,
    Query(q): Query<DashboardQuery>,
) -> Response {
    let lang = viewer.lang;
    let today = time::OffsetDateTime::now_utc().date();
    let year: i32 = q
        .year
        .as_deref()
        .and_then(|y| y.parse().ok())
        .unwrap_or(today.year());
    let agency = q
        .agency_id
        .clone()
        .filter(|a| uuid::Uuid::try_parse(a).is_ok());
    let agencies: Vec<(String, String)> = match c.get(&viewer, "/v1/agencies", None).await {
        Ok(v) => v
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| {
                Some(a["id"].as_str().unwrap_or(""))
                    != viewer.principal().agency.map(|x| x.to_string()).as_deref()
            })
            .filter_map(|a| Some((a["id"].as_str()?.to_owned(), a["name"].as_str()?.to_owned())))
            .collect(),
        Err(r) => return page::refused(lang, &viewer, &r),
    };
    let y = year.to_string();
    let mut scope: Vec<(&str, &str)> = vec![("year", &y)];
    if let Some(a) = &agency {
        scope.push(("agency_id", a));
    }
    let metrics = match c
        .get(&viewer, &format!("/v1/metrics?{}", query(&scope)), None)
        .await
    {
        Ok(v) => v,
        Err(r) => return page::refused(lang, &viewer, &r),
    };
    // Overdue deadlines and open notices: of one agency, or (the office reading without an
    // agency) of every agency in one call each.
    let one: Vec<(&str, &str)> = agency.iter().map(|a| ("agency_id", a.as_str())).collect();
    let list = |v: Result<serde_json::Value, crate::api::Refusal>| {
        v.ok()
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default()
    };
    let overdue = list(
        c.get(
            &viewer,
            &format!("/v1/followup/overdue?{}", query(&one)),
            None,
        )
        .await,
    );
    let mut issued = one.clone();
    issued.push(("state", "issued"));
    let notices = list(
        c.get(
            &viewer,
            &format!("/v1/followup/notices?{}", query(&issued)),
            None,
        )
        .await,
    );
    let mut per_agency = Vec::new();
    for (id, name) in &agencies {
        if let Ok(v) = c
            .get(
                &viewer,
                &format!("/v1/metrics?{}", query(&[("agency_id", id), ("year", &y)])),
                None,
            )
            .await
        {
            per_agency.push((name.clone(), v));
        }
    }
    let plan = match &agency {
        Some(a) => c
            .get(
                &viewer,
                &format!(
                    "/v1/followup/stage-plans?{}",
                    query(&[("agency_id", a), ("year", &y)])
                ),
                None,
            )
            .await
            .ok(),
        None => None,
    };
    let name_of = |id: &str| {
        agencies
            .iter()
            .find(|(a, _)| a == id)
            .map_or_else(|| id.to_owned(), |(_, n)| n.clone())
    };
    let counts = &metrics["counts"];
    let total = ["lead", "co", "separate", "sole"]
        .iter()
        .map(|k| counts[k].as_u64().unwrap_or(0))
        .sum::<u64>();
    let body = html! {
        form.filters method="get" action="/console/office" {
            label for="agency" { (lang.t("单位", "Agency")) }
            select #agency name="agency_id" {
                option value="" { (lang.t("全部单位", "Every agency")) }
                @for (id, name) in &agencies {
                    option value=(id) selected[agency.as_deref() == Some(id.as_str())] { (name) }
                }
            }
            label for="year" { (lang.t("年度", "Year")) }
            input #year name="year" type="number" min="2000" max="9999" value=(year);
            button type="submit" { (lang.t("查看", "Show")) }
        }
        section.cards aria-label=(lang.t("办理件数", "Items")) {
            div.card { p.big #total { (total) } p { (lang.t("件（主办、会办、分办、独办合计）", "items (lead, co-handling, separate and sole together)")) } }
            div.card { p.big { (counts["lead"].as_u64().unwrap_or(0)) } p { (lang.t("主办", "lead")) } }
            div.card { p.big { (counts["co"].as_u64().unwrap_or(0)) } p { (lang.t("会办", "co-handling")) } }
            div.card.warn[!overdue.is_empty()] { p.big { (overdue.len()) } p { (lang.t("项逾期", "overdue deadlines")) } }
            div.card.warn[!notices.is_empty()] { p.big { (notices.len()) } p { (lang.t("份督办通知待回复", "open supervision notices")) } }
        }
        h2 { (lang.t("办理指标", "Handling figures")) }
        p.hint { (lang.t("每项指标均由办理数据计算，列出分子、分母和定义。", "Every figure is computed from the handling data, with its numerator, denominator and definition.")) }
        table.rates {
            thead { tr { th scope="col" { (lang.t("指标", "Figure")) } th scope="col" { (lang.t("比率", "Rate")) } th scope="col" { (lang.t("分子/分母", "Of")) } th scope="col" { (lang.t("定义", "Definition")) } } }
            tbody {
                @if let Some(rates) = metrics["rates"].as_object() {
                    @for (name, r) in rates {
                        tr data-rate=(name) {
                            th scope="row" { (lang.rate(name)) }
                            td.num { (percent(r)) }
                            td.num { (r["numerator"].as_u64().unwrap_or(0)) " / " (r["denominator"].as_u64().unwrap_or(0)) }
                            td.def { (r["definition"].as_str().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        @if !per_agency.is_empty() {
            h2 { (lang.t("各单位主要指标", "Main figures by agency")) }
            (rate_chart(lang, &per_agency))
        }
        @if let Some(plan) = &plan {
            h2 { (lang.t("阶段安排", "Stages")) }
            (timeline(lang, plan, today))
        }
        h2 { (lang.t("逾期事项", "Overdue")) }
        @if overdue.is_empty() {
            p { (lang.t("没有逾期事项。", "Nothing is overdue.")) }
        } @else {
            table {
                thead { tr { th scope="col" { (lang.t("单位", "Agency")) } th scope="col" { (lang.t("事项", "What")) } th scope="col" { (lang.t("期限", "Due")) } th scope="col" { (lang.t("逾期天数", "Days late")) } } }
                tbody {
                    @for o in overdue.iter().take(20) {
                        tr {
                            td { (name_of(o["agency_id"].as_str().unwrap_or(""))) }
                            td { a href=(format!("/console/items/{}", o["suggestion_id"].as_str().unwrap_or(""))) { (o["kind"].as_str().unwrap_or("").replace('_', " ")) } }
                            td { (date(&o["due"])) }
                            td.num { (o["days_overdue"].as_i64().unwrap_or(0)) }
                        }
                    }
                }
            }
        }
        h2 { (lang.t("待回复的督办通知", "Open supervision notices")) }
        @if notices.is_empty() {
            p { (lang.t("没有待回复的督办通知。", "No notice is waiting for an answer.")) }
        } @else {
            ul.records {
                @for n in notices.iter().take(20) {
                    li {
                        (date(&n["issued_on"])) " · " (name_of(n["target"].as_str().unwrap_or(""))) " · "
                        (lang.t("回复期限", "answer by")) " " (date(&n["response_due"])) " · "
                        span.clip { (n["body"].as_str().unwrap_or("").chars().take(120).collect::<String>()) }
                    }
                }
            }
        }
    };
    respond(
        StatusCode::OK,
        shell(lang, Some(&viewer), lang.t("办理概况", "Dashboard"), body),
    )
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Grouped horizontal bars: each agency's charted rates, drawn on the server.
fn rate_chart(lang: Lang, per_agency: &[(String, Value)]) -> Markup {
    const W: f64 = 640.0;
    const LABEL: f64 = 200.0;
    const BAR: f64 = 12.0;
    let group = BAR * CHARTED.len() as f64 + 14.0;
    let h = 30.0 + group * per_agency.len() as f64;
    let colours = ["#1f5fa8", "#2f8f5b", "#c07a12"];
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {h}" role="img" aria-labelledby="chart-title" xmlns="http://www.w3.org/2000/svg"><title id="chart-title">{}</title>"#,
        xml(lang.t(
            "各单位办复率、按期办复率、满意率",
            "Reply, on-time and satisfaction rates by agency"
        ))
    );
    for (i, name) in CHARTED.iter().enumerate() {
        let x = LABEL + i as f64 * 140.0;
        svg.push_str(&format!(
            r#"<rect x="{x}" y="4" width="10" height="10" fill="{}"/><text x="{}" y="13" font-size="11">{}</text>"#,
            colours[i],
            x + 14.0,
            xml(&lang.rate(name))
        ));
    }
    for (g, (agency, m)) in per_agency.iter().enumerate() {
        let y0 = 26.0 + g as f64 * group;
        svg.push_str(&format!(
            r#"<text x="0" y="{}" font-size="12">{}</text>"#,
            y0 + group / 2.0,
            xml(agency)
        ));
        for (i, name) in CHARTED.iter().enumerate() {
            let r = &m["rates"][name];
            let value = r["value"].as_f64();
            let y = y0 + i as f64 * BAR;
            let width = value.unwrap_or(0.0).clamp(0.0, 1.0) * (W - LABEL - 60.0);
            svg.push_str(&format!(
                r#"<rect x="{LABEL}" y="{y}" width="{width:.1}" height="{}" fill="{}"/><text x="{:.1}" y="{}" font-size="10">{}</text>"#,
                BAR - 2.0,
                colours[i],
                LABEL + width + 4.0,
                y + BAR - 3.0,
                xml(&percent(r))
            ));
        }
    }
    svg.push_str("</svg>");
    html! {
        figure {
            (raw(svg))
            details {
                summary { (lang.t("图表数据", "The chart's data")) }
                table {
                    thead { tr { th scope="col" { (lang.t("单位", "Agency")) } @for n in CHARTED { th scope="col" { (lang.rate(n)) } } } }
                    tbody { @for (agency, m) in per_agency { tr { th scope="row" { (agency) } @for n in CHARTED { td.num { (percent(&m["rates"][n])) } } } } }
                }
            }
        }
    }
}

/// The stage plan as a timeline: each stage a band from its start to its end, the supervision
/// rounds as marks, today as a line.
fn timeline(lang: Lang, plan: &Value, today: time::Date) -> Markup {
    let parse = |v: &Value| {
        v.as_str().and_then(|s| {
            time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
        })
    };
    let Some(start) = parse(&plan["starts_on"]) else {
        return html! {};
    };
    let stages = plan["stages"].as_array().cloned().unwrap_or_default();
    let Some(end) = stages.last().and_then(|s| parse(&s["ends_on"])) else {
        return html! {};
    };
    let span = (end - start).whole_days().max(1) as f64;
    const W: f64 = 640.0;
    let x = |d: time::Date| {
        ((d - start).whole_days() as f64 / span).clamp(0.0, 1.0) * (W - 20.0) + 10.0
    };
    let colours = ["#dbe7f5", "#d8eedf", "#f6e6c9", "#eadcf2"];
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {W} 90" role="img" aria-labelledby="tl-title" xmlns="http://www.w3.org/2000/svg"><title id="tl-title">{}</title>"#,
        xml(lang.t("阶段时间线", "Timeline of the stages"))
    );
    let mut from = start;
    for (i, s) in stages.iter().enumerate() {
        let Some(to) = parse(&s["ends_on"]) else {
            continue;
        };
        svg.push_str(&format!(
            r##"<rect x="{:.1}" y="20" width="{:.1}" height="34" fill="{}" stroke="#889"/><text x="{:.1}" y="42" font-size="11">{}</text><text x="{:.1}" y="70" font-size="10">{}</text>"##,
            x(from),
            (x(to) - x(from)).max(1.0),
            colours[i % colours.len()],
            x(from) + 4.0,
            xml(s["name"].as_str().unwrap_or("")),
            x(to) - 56.0,
            to
        ));
        for r in s["supervision_rounds"].as_array().into_iter().flatten() {
            if let Some(d) = parse(r) {
                svg.push_str(&format!(
                    r##"<path d="M{0:.1} 14 l-4 -7 h8 z" fill="#a33"><title>{1}</title></path>"##,
                    x(d),
                    d
                ));
            }
        }
        from = to;
    }
    if today >= start && today <= end {
        svg.push_str(&format!(r##"<line x1="{0:.1}" x2="{0:.1}" y1="10" y2="60" stroke="#000" stroke-dasharray="3 2"/>"##, x(today)));
    }
    svg.push_str("</svg>");
    html! {
        figure {
            (raw(svg))
            figcaption {
                (lang.t("开始于", "From")) " " (start) "；"
                @for s in &stages { (s["name"].as_str().unwrap_or("")) " " (lang.t("至", "until")) " " (date(&s["ends_on"])) "；" }
                (lang.t("三角为督办轮次。", "triangles mark the supervision rounds."))
            }
        }
    }
}

fn register_form(
    lang: Lang,
    viewer: &Viewer,
    state: &FormState,
    sessions: &[(String, String)],
    deputies: &[(String, String)],
) -> Markup {
    const FIELDS: &[&str] = &[
        "session_id",
        "number",
        "title",
        "body",
        "category",
        "lead_deputy_id",
        "received_on",
    ];
    html! {
        (form_problem(lang, state, FIELDS, "/console/register"))
        form.card method="post" action="/console/register" {
            (hidden(viewer, state, None))
            (select(state, "session_id", lang.t("会议", "Session"), sessions))
            (field(state, "number", lang.t("建议编号", "Number"), Kind::Text, true))
            (field(state, "title", lang.t("标题", "Title"), Kind::Text, true))
            (field(state, "body", lang.t("内容", "Text"), Kind::Area, true))
            (field(state, "category", lang.t("类别", "Category"), Kind::Text, true))
            (select(state, "lead_deputy_id", lang.t("领衔代表", "Lead deputy"), deputies))
            (field(state, "received_on", lang.t("收到日期（默认今天）", "Received on (default: today)"), Kind::Date, false))
            label.check { input type="checkbox" name="key_supervised" value="true" checked[state.value("key_supervised") == "true"]; " " (lang.t("重点督办", "Key supervision")) }
            button type="submit" { (lang.t("登记并立案", "Register")) }
        }
    }
}

async fn register_choices(
    c: &Console,
    viewer: &Viewer,
) -> (Vec<(String, String)>, Vec<(String, String)>) {
    let list = |v: Result<Value, _>, label: fn(&Value) -> String| -> Vec<(String, String)> {
        v.ok()
            .and_then(|v: Value| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|x| Some((x["id"].as_str()?.to_owned(), label(x))))
            .collect()
    };
    let sessions = list(c.get(viewer, "/v1/sessions", None).await, |x| {
        x["name"].as_str().unwrap_or("").to_owned()
    });
    let deputies = list(c.get(viewer, "/v1/deputies", None).await, |x| {
        format!(
            "{}（{}）",
            x["name"].as_str().unwrap_or(""),
            x["delegation"].as_str().unwrap_or("")
        )
    });
    (sessions, deputies)
}

/// The register form.
pub async fn register_page(State(c): State<Console>, viewer: Viewer) -> Response {
    let lang = viewer.lang;
    let (sessions, deputies) = register_choices(&c, &viewer).await;
    let body = register_form(lang, &viewer, &FormState::default(), &sessions, &deputies);
    respond(
        StatusCode::OK,
        shell(
            lang,
            Some(&viewer),
            lang.t("登记建议", "Register a suggestion"),
            body,
        ),
    )
}

/// Registers a suggestion: submitted, reviewed and accepted (立案) in three calls, each with its
/// own idempotency key from the form's, then to the item to assign it.
pub async fn register(State(c): State<Console>, viewer: Viewer, body: Bytes) -> Response {
    let lang = viewer.lang;
    let form = Form::parse(&body);
    if !form.csrf_ok(&viewer) {
        return page::forbidden_form(lang);
    }
    let key = form
        .text("_key")
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut submit = json!({
        "session_id": form.text("session_id"),
        "number": form.text("number").unwrap_or_default(),
        "title": form.text("title").unwrap_or_default(),
        "body": form.text("body").unwrap_or_default(),
        "category": form.text("category").unwrap_or_default(),
        "lead_deputy_id": form.text("lead_deputy_id"),
        "key_supervised": form.get("key_supervised") == Some("true"),
    });
    if let Some(d) = form.text("received_on") {
        submit["received_on"] = json!(d);
    }
    let send = |n: u32| Send {
        idempotency_key: Some(if n == 0 {
            key.clone()
        } else {
            format!("{key}-{n}")
        }),
        if_match: None,
    };
    let answer = c
        .call(
            &viewer,
            Method::POST,
            "/v1/suggestions",
            Some(&submit),
            &send(0),
            None,
        )
        .await;
    let mut consistency = answer.consistency.clone();
    let created = match answer.into_result() {
        Ok(v) => v,
        Err(r) => {
            let (sessions, deputies) = register_choices(&c, &viewer).await;
            let mut state = form.state();
            state.refusal = Some(r.clone());
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            return respond(
                status,
                shell(
                    lang,
                    Some(&viewer),
                    lang.t("登记建议", "Register a suggestion"),
                    register_form(lang, &viewer, &state, &sessions, &deputies),
                ),
            );
        }
    };
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    for (n, (path, body)) in [
        (format!("/v1/suggestions/{id}/start-review"), json!({})),
        (
            format!("/v1/suggestions/{id}/review"),
            json!({"decision": "accept"}),
        ),
    ]
    .iter()
    .enumerate()
    {
        let a = c
            .call(
                &viewer,
                Method::POST,
                path,
                Some(body),
                &send(n as u32 + 1),
                consistency.as_deref(),
            )
            .await;
        if a.consistency.is_some() {
            consistency = a.consistency.clone();
        }
        if a.into_result().is_err() {
            // Registered but not accepted: the item's page offers the review.
            break;
        }
    }
    after_change(&format!("/console/items/{id}"), consistency.as_deref())
}

#[derive(Debug, Deserialize)]
pub struct AgencyYear {
    agency_id: Option<String>,
    year: Option<String>,
}

/// The agency picker of the ledger and report pages.
fn agency_picker(
    lang: Lang,
    action: &str,
    agencies: &[(String, String)],
    agency: Option<&str>,
    year: Option<i32>,
) -> Markup {
    html! {
        form.filters method="get" action=(action) {
            label for="agency" { (lang.t("单位", "Agency")) }
            select #agency name="agency_id" {
                @for (id, name) in agencies {
                    option value=(id) selected[agency == Some(id.as_str())] { (name) }
                }
            }
            @if let Some(y) = year {
                label for="year" { (lang.t("年度", "Year")) }
                input #year name="year" type="number" min="2000" max="9999" value=(y);
            }
            button type="submit" { (lang.t("查看", "Show")) }
        }
    }
}

/// The agency a page is about: the one asked for, else an agency's own, else the first.
fn chosen_agency(q: &AgencyYear, viewer: &Viewer, agencies: &[(String, String)]) -> Option<String> {
    q.agency_id
        .clone()
        .filter(|a| uuid::Uuid::try_parse(a).is_ok())
        .or_else(|| {
            viewer
                .principal()
                .agency
                .filter(|_| viewer.principal().role.as_str() != "assigning_office")
                .map(|a| a.to_string())
        })
        .or_else(|| agencies.first().map(|(id, _)| id.clone()))
}

async fn agencies_of(c: &Console, viewer: &Viewer) -> Vec<(String, String)> {
    let office = viewer.principal().agency.map(|a| a.to_string());
    c.get(viewer, "/v1/agencies", None)
        .await
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|a| a["id"].as_str() != office.as_deref())
        .filter_map(|a| Some((a["id"].as_str()?.to_owned(), a["name"].as_str()?.to_owned())))
        .collect()
}

/// The B-class ledger (B类建议台账) of one agency: each item's commitments, their state, target
/// date and progress.
pub async fn ledger(
    State(c): State<Console>,
    viewer: Viewer,
    Query(q): Query<AgencyYear>,
) -> Response {
    let lang = viewer.lang;
    let agencies = agencies_of(&c, &viewer).await;
    let agency = chosen_agency(&q, &viewer, &agencies);
    let ledger = match &agency {
        Some(a) => match c
            .get(
                &viewer,
                &format!("/v1/ledger?{}", query(&[("agency_id", a)])),
                None,
            )
            .await
        {
            Ok(v) => v["items"].as_array().cloned().unwrap_or_default(),
            Err(r) => return page::refused(lang, &viewer, &r),
        },
        None => Vec::new(),
    };
    let body = html! {
        (agency_picker(lang, "/console/ledger", &agencies, agency.as_deref(), None))
        @if ledger.is_empty() {
            p { (lang.t("台账中没有B类建议。", "No class-B items in the ledger.")) }
        }
        @for it in &ledger {
            article.reply {
                h3 {
                    a href=(format!("/console/items/{}", it["suggestion_id"].as_str().unwrap_or(""))) { (it["number"].as_str().unwrap_or("")) " " (it["title"].as_str().unwrap_or("")) }
                    " · " (lang.class(it["class"].as_str().unwrap_or("")))
                }
                @if let Some(on) = it["converted_at"].as_str() { p.meta { (lang.t("B类转A类：", "B → A on ")) (on) } }
                table {
                    thead { tr { th scope="col" { (lang.t("承诺事项", "Commitment")) } th scope="col" { (lang.t("期限", "Target")) } th scope="col" { (lang.t("状态", "State")) } th scope="col" { (lang.t("最近进展", "Latest progress")) } } }
                    tbody {
                        @for m in it["commitments"].as_array().into_iter().flatten() {
                            tr.overdue[m["overdue"] == true] {
                                td { (m["measure"].as_str().unwrap_or("")) }
                                td { (date(&m["target_date"])) @if m["overdue"] == true { " " span.badge.late { (lang.t("逾期", "overdue")) } } }
                                td { (lang.state(m["state"].as_str().unwrap_or(""))) }
                                td { (m["progress"].as_array().and_then(|p| p.last()).and_then(|p| p["note"].as_str()).unwrap_or("—")) }
                            }
                        }
                    }
                }
            }
        }
    };
    respond(
        StatusCode::OK,
        shell(
            lang,
            Some(&viewer),
            lang.t("B类建议台账", "Class-B ledger"),
            body,
        ),
    )
}

/// The annual handling report (年度办理工作报告) of one agency, as printable HTML.
pub async fn report(
    State(c): State<Console>,
    viewer: Viewer,
    Query(q): Query<AgencyYear>,
) -> Response {
    let lang = viewer.lang;
    let agencies = agencies_of(&c, &viewer).await;
    let year: i32 = q
        .year
        .as_deref()
        .and_then(|y| y.parse().ok())
        .unwrap_or(time::OffsetDateTime::now_utc().year() - 1);
    let agency = chosen_agency(&q, &viewer, &agencies);
    let text = match &agency {
        Some(a) => match c
            .get(
                &viewer,
                &format!(
                    "/v1/reports/annual?{}",
                    query(&[
                        ("agency_id", a),
                        ("year", &year.to_string()),
                        ("format", "markdown")
                    ])
                ),
                None,
            )
            .await
        {
            Ok(v) => v.as_str().unwrap_or_default().to_owned(),
            Err(r) => return page::refused(lang, &viewer, &r),
        },
        None => String::new(),
    };
    let body = html! {
        (agency_picker(lang, "/console/report", &agencies, agency.as_deref(), Some(year)))
        article.report { (raw(markdown(&text))) }
    };
    respond(
        StatusCode::OK,
        shell(
            lang,
            Some(&viewer),
            lang.t("年度办理报告", "Annual report"),
            body,
        ),
    )
}

/// Markdown as HTML, any HTML in it shown as text (the report quotes what people typed).
fn markdown(text: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd, html::push_html};
    // Links and images keep only their text: the report links nowhere and loads nothing.
    let events = Parser::new_ext(text, Options::ENABLE_TABLES).filter_map(|e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Some(Event::Text(h)),
        Event::Start(Tag::Link { .. } | Tag::Image { .. })
        | Event::End(TagEnd::Link | TagEnd::Image) => None,
        e => Some(e),
    });
    let mut out = String::new();
    push_html(&mut out, events);
    out
}

/// The targets a stage can set.
const TARGETS: [(&str, &str, &str); 4] = [
    ("all_signed_for", "全部签收", "all signed for"),
    ("all_communicated", "全部办前沟通", "all communicated"),
    ("all_replied", "全部答复", "all replied"),
    ("all_feedback_in", "全部反馈", "all rated"),
];

/// A stage plan (阶段安排) of one agency and year: shown as its timeline, and set with a form of
/// up to four stages (each round of supervision issues notices on the items short of the
/// stage's targets).
pub async fn stages(
    State(c): State<Console>,
    viewer: Viewer,
    Query(q): Query<AgencyYear>,
) -> Response {
    stages_page(&c, &viewer, &q, None).await
}

async fn stages_page(
    c: &Console,
    viewer: &Viewer,
    q: &AgencyYear,
    failed: Option<FormState>,
) -> Response {
    let lang = viewer.lang;
    let agencies = agencies_of(c, viewer).await;
    let today = time::OffsetDateTime::now_utc().date();
    let year: i32 = q
        .year
        .as_deref()
        .and_then(|y| y.parse().ok())
        .unwrap_or(today.year());
    let agency = chosen_agency(q, viewer, &agencies);
    let plan = match &agency {
        Some(a) => c
            .get(
                viewer,
                &format!(
                    "/v1/followup/stage-plans?{}",
                    query(&[("agency_id", a), ("year", &year.to_string())])
                ),
                None,
            )
            .await
            .ok(),
        None => None,
    };
    let state = failed.clone().unwrap_or_default();
    let body = html! {
        (agency_picker(lang, "/console/stages", &agencies, agency.as_deref(), Some(year)))
        @match &plan {
            Some(p) => (timeline(lang, p, today)),
            None => p { (lang.t("该年度尚无阶段安排。", "No stage plan for this year yet.")) },
        }
        h2 { (lang.t("设置阶段安排", "Set the stage plan")) }
        (form_problem(lang, &state, &["starts_on", "stages"], "/console/stages"))
        form.card method="post" action=(format!("/console/stages?{}", query(&[("agency_id", agency.as_deref().unwrap_or("")), ("year", &year.to_string())]))) {
            (hidden(viewer, &state, plan.as_ref().and_then(|p| p["version"].as_u64())))
            (field(&state, "starts_on", lang.t("开始日期", "Starts on"), Kind::Date, true))
            @for i in 0..4 {
                fieldset {
                    legend { (lang.t("阶段", "Stage")) " " (i + 1) @if i > 0 { " " (lang.t("（可空）", "(optional)")) } }
                    (field(&state, &format!("name{i}"), lang.t("名称", "Name"), Kind::Text, i == 0))
                    (field(&state, &format!("ends_on{i}"), lang.t("结束日期", "Ends on"), Kind::Date, i == 0))
                    div {
                        @for (t, zh, en) in TARGETS {
                            label.check { input type="checkbox" name=(format!("targets{i}")) value=(t) checked[state.values.get(&format!("targets{i}")).is_some_and(|v| v == t)]; " " (lang.t(zh, en)) " " }
                        }
                    }
                    (field(&state, &format!("rounds{i}"), lang.t("督办轮次日期（以逗号分隔）", "Supervision rounds (dates, comma-separated)"), Kind::Text, false))
                }
            }
            button type="submit" { (lang.t("保存", "Save")) }
        }
    };
    let status = state
        .refusal
        .as_ref()
        .and_then(|r| StatusCode::from_u16(r.status).ok())
        .unwrap_or(StatusCode::OK);
    respond(
        status,
        shell(lang, Some(viewer), lang.t("阶段安排", "Stage plan"), body),
    )
}

/// Sets the stage plan from the form.
pub async fn set_stages(
    State(c): State<Console>,
    viewer: Viewer,
    Query(q): Query<AgencyYear>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !form.csrf_ok(&viewer) {
        return page::forbidden_form(viewer.lang);
    }
    let mut stages = Vec::new();
    for i in 0..4 {
        let Some(name) = form.text(&format!("name{i}")) else {
            continue;
        };
        let rounds: Vec<String> = form
            .text(&format!("rounds{i}"))
            .unwrap_or_default()
            .split([',', '，', ' '])
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect();
        stages.push(json!({"name": name, "ends_on": form.text(&format!("ends_on{i}")), "targets": form.all(&format!("targets{i}")), "supervision_rounds": rounds}));
    }
    let year: Option<i32> = q.year.as_deref().and_then(|y| y.parse().ok());
    let plan = json!({"agency_id": q.agency_id, "year": year, "starts_on": form.text("starts_on"), "stages": stages});
    let send = Send {
        idempotency_key: form.text("_key"),
        if_match: form.get("_version").and_then(|v| v.parse().ok()),
    };
    let answer = c
        .call(
            &viewer,
            Method::POST,
            "/v1/followup/stage-plans",
            Some(&plan),
            &send,
            None,
        )
        .await;
    let consistency = answer.consistency.clone();
    match answer.into_result() {
        Ok(_) => after_change(
            &format!(
                "/console/stages?{}",
                query(&[
                    ("agency_id", q.agency_id.as_deref().unwrap_or("")),
                    ("year", q.year.as_deref().unwrap_or(""))
                ])
            ),
            consistency.as_deref(),
        ),
        Err(r) => {
            let mut state = form.state();
            state.refusal = Some(r);
            stages_page(&c, &viewer, &q, Some(state)).await
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_report_never_passes_html_through() {
        let html = super::markdown(
            "# 报告\n\n<script>alert(1)</script> <b>x</b>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("<table>"), "{html}");
        let html = super::markdown("[点此](javascript:alert(1)) ![](http://x.example/t.png)");
        assert!(!html.contains("href") && !html.contains("<img"), "{html}");
        assert!(html.contains("点此"), "{html}");
    }
}
