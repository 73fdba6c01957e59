//! An agency's inbox: what each of its assignments owes and by when, overdue first, and the
//! supervision notices it has to acknowledge and answer.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Form, after_change};
use crate::Console;
use crate::api::Send;
use crate::i18n::Lang;
use crate::page::{self, FormState, Kind, date, field, form_problem, hidden, respond, shell};
use crate::session::Viewer;

#[derive(Debug, Deserialize)]
pub struct InboxQuery {
    c: Option<String>,
}

/// What an assignment owes next, by its state and role.
fn owes(lang: Lang, t: &Value) -> Option<&'static str> {
    let state = t["state"].as_str().unwrap_or("");
    let co = t["role"] == "co";
    Some(match state {
        "pending_sign" => lang.t("签收", "sign for it"),
        "accepted" => lang.t("交办到处室", "dispatch it to a division"),
        "adjustment_pending" => lang.t("等待调整决定", "wait for the adjustment decision"),
        "in_review" => lang.t("内部审批", "internal approval"),
        "awaiting_review" => lang.t("等待交办机关审核答复", "wait for the office's review"),
        "in_handling" | "re_handling" if co && t["opinion"] == "awaited" => {
            lang.t("提交会办意见", "send the co-handling opinion")
        }
        "in_handling" | "re_handling" if !co => lang.t("沟通并答复代表", "communicate and reply"),
        _ => return None,
    })
}

fn due_of(t: &Value) -> Option<&str> {
    if t["role"] == "co" {
        t["co_opinion_due"].as_str()
    } else {
        t["reply_due"].as_str()
    }
}

pub async fn inbox(
    State(c): State<Console>,
    viewer: Viewer,
    Query(q): Query<InboxQuery>,
) -> Response {
    render(&c, viewer, q.c.as_deref(), None).await
}

/// Acknowledges or answers a supervision notice (督办通知) as the viewer.
pub async fn notice(
    State(c): State<Console>,
    viewer: Viewer,
    Path((nid, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !form.csrf_ok(&viewer) {
        return page::forbidden_form(viewer.lang);
    }
    let Ok(nid) = uuid::Uuid::try_parse(&nid) else {
        return page::not_found(viewer.lang, Some(&viewer));
    };
    let (path, body) = match action.as_str() {
        "acknowledge" => (format!("/v1/followup/notices/{nid}/acknowledge"), json!({})),
        "answer" => (
            format!("/v1/followup/notices/{nid}/response"),
            json!({"response": form.text("response").unwrap_or_default()}),
        ),
        _ => return page::not_found(viewer.lang, Some(&viewer)),
    };
    let send = Send {
        idempotency_key: form.text("_key"),
        if_match: form.get("_version").and_then(|v| v.parse().ok()),
    };
    let answer = c
        .call(&viewer, Method::POST, &path, Some(&body), &send, None)
        .await;
    let consistency = answer.consistency.clone();
    match answer.into_result() {
        Ok(_) => after_change("/console/inbox", consistency.as_deref()),
        Err(r) => {
            let mut state = form.state();
            state.refusal = Some(r);
            render(&c, viewer, None, Some((nid.to_string(), state))).await
        }
    }
}

async fn render(
    c: &Console,
    viewer: Viewer,
    consistency: Option<&str>,
    failed: Option<(String, FormState)>,
) -> Response {
    let lang = viewer.lang;
    // Every task, page by page (at most 2,000).
    let mut tasks: Vec<Value> = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let mut path = "/v1/coordination/tasks?page_size=200".to_owned();
        if let Some(t) = &token {
            path.push('&');
            path.push_str(&serde_urlencoded::to_string([("page_token", t)]).unwrap_or_default());
        }
        let page = match c.get(&viewer, &path, consistency).await {
            Ok(v) => v,
            Err(r) => return page::refused(lang, &viewer, &r),
        };
        tasks.extend(page["tasks"].as_array().cloned().unwrap_or_default());
        token = page["next_page_token"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let titles: HashMap<String, (String, String)> = c
        .get(&viewer, "/v1/suggestions?page_size=200", consistency)
        .await
        .ok()
        .and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|s| {
            Some((
                s["id"].as_str()?.to_owned(),
                (
                    s["number"].as_str().unwrap_or("").to_owned(),
                    s["title"].as_str().unwrap_or("").to_owned(),
                ),
            ))
        })
        .collect();
    let mut open: Vec<(&Value, &'static str)> = tasks
        .iter()
        .filter_map(|t| owes(lang, t).map(|o| (t, o)))
        .collect();
    // Overdue first, then the nearest due date.
    open.sort_by(|(a, _), (b, _)| {
        (b["overdue"] == true)
            .cmp(&(a["overdue"] == true))
            .then_with(|| due_of(a).unwrap_or("9999").cmp(due_of(b).unwrap_or("9999")))
    });
    let notices = c
        .get(&viewer, "/v1/followup/notices", consistency)
        .await
        .ok()
        .and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        // Those still waiting for the unit: issued or acknowledged, not answered.
        .filter(|n| matches!(n["state"].as_str(), Some("issued" | "acknowledged")))
        .collect::<Vec<_>>();
    // Each notice's form, its fields' ids its own.
    let notice_state = |nid: &str| {
        let mut s = failed
            .as_ref()
            .filter(|(id, _)| id == nid)
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        s.scope = Some(format!("notice-{nid}"));
        s
    };
    let body = html! {
        h2 { (lang.t("待办事项", "To do")) " " span.count { (open.len()) } }
        @if open.is_empty() {
            p { (lang.t("没有待办事项。", "Nothing is waiting for you.")) }
        } @else {
            table.inbox {
                thead { tr {
                    th scope="col" { (lang.t("建议", "Suggestion")) }
                    th scope="col" { (lang.t("方式", "Role")) }
                    th scope="col" { (lang.t("下一步", "Next")) }
                    th scope="col" { (lang.t("期限", "Due")) }
                } }
                tbody {
                    @for (t, what) in &open {
                        @let sid = t["suggestion_id"].as_str().unwrap_or("");
                        @let (number, title) = titles.get(sid).cloned().unwrap_or_default();
                        tr.overdue[t["overdue"] == true] {
                            td { a href=(format!("/console/items/{sid}")) { (number) " " (title) } }
                            td { (lang.unit_role(t["role"].as_str().unwrap_or(""))) }
                            td { (what) }
                            td {
                                (due_of(t).unwrap_or("—"))
                                @if t["overdue"] == true { " " span.badge.late { (lang.t("逾期", "overdue")) } }
                            }
                        }
                    }
                }
            }
        }
        h2 { (lang.t("督办通知", "Supervision notices")) " " span.count { (notices.len()) } }
        @if notices.is_empty() {
            p { (lang.t("没有待处理的督办通知。", "No notice is waiting.")) }
        } @else {
            @for n in &notices {
                @let nid = n["id"].as_str().unwrap_or("");
                @let version = n["version"].as_u64().unwrap_or(0);
                @let state = notice_state(nid);
                section.action id=(format!("notice-{nid}")) {
                    h3 { (date(&n["issued_on"])) " · " (lang.t("回复期限", "answer by")) " " (date(&n["response_due"])) }
                    p.text { (n["body"].as_str().unwrap_or("")) }
                    @for sid in n["suggestions"].as_array().into_iter().flatten() {
                        @let sid = sid.as_str().unwrap_or("");
                        @let (number, title) = titles.get(sid).cloned().unwrap_or_default();
                        p { a href=(format!("/console/items/{sid}")) { (number) " " (title) } }
                    }
                    (form_problem(lang, &state, &["response"], "/console/inbox"))
                    @if n["acknowledged_on"].is_null() {
                        form method="post" action=(format!("/console/notices/{nid}/acknowledge")) {
                            (hidden(&viewer, &state, Some(version)))
                            button type="submit" { (lang.t("签收通知", "Acknowledge")) }
                        }
                    } @else {
                        form method="post" action=(format!("/console/notices/{nid}/answer")) {
                            (hidden(&viewer, &state, Some(version)))
                            (field(&state, "response", lang.t("书面回复", "Written answer"), Kind::Area, true))
                            button type="submit" { (lang.t("回复", "Answer")) }
                        }
                    }
                }
            }
        }
    };
    let status = failed
        .as_ref()
        .and_then(|(_, s)| s.refusal.as_ref())
        .and_then(|r| StatusCode::from_u16(r.status).ok())
        .unwrap_or(StatusCode::OK);
    respond(
        status,
        shell(lang, Some(&viewer), lang.t("待办", "Inbox"), body),
    )
}

#[derive(Debug, Deserialize)]
pub struct FeedQuery {
    after: Option<String>,
}

/// The agency's event feed: every event of the items it is party to, in order, a page at a
/// time (what its own systems read from `/v1/feed`).
pub async fn feed(
    State(c): State<Console>,
    viewer: Viewer,
    Query(q): Query<FeedQuery>,
) -> Response {
    let lang = viewer.lang;
    let mut params = vec![("limit", "100".to_owned())];
    if let Some(a) = q.after.as_deref().filter(|a| !a.is_empty()) {
        params.push(("after", a.to_owned()));
    }
    let page = match c
        .get(
            &viewer,
            &format!(
                "/v1/feed?{}",
                serde_urlencoded::to_string(&params).unwrap_or_default()
            ),
            None,
        )
        .await
    {
        Ok(v) => v,
        Err(r) => return page::refused(lang, &viewer, &r),
    };
    let items = page["items"].as_array().cloned().unwrap_or_default();
    let body = html! {
        p.hint { (lang.t("本单位参与办理的建议的全部事件，按发生顺序排列。", "Every event of the suggestions your agency is party to, in order.")) }
        table {
            thead { tr { th scope="col" { (lang.t("时间", "When")) } th scope="col" { (lang.t("事件", "Event")) } th scope="col" { (lang.t("建议", "Suggestion")) } } }
            tbody {
                @for e in &items {
                    tr {
                        td { (e["occurred_at"].as_str().unwrap_or("").chars().take(19).collect::<String>().replace('T', " ")) }
                        td { code { (e["event_type"].as_str().unwrap_or("")) } }
                        td {
                            @if e["aggregate_type"] == "suggestion" {
                                a href=(format!("/console/items/{}", e["aggregate_id"].as_str().unwrap_or(""))) { (lang.t("查看", "open")) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = page["next_cursor"].as_str().filter(|_| !items.is_empty()) {
            p { a href=(format!("/console/feed?{}", serde_urlencoded::to_string([("after", next)]).unwrap_or_default())) { (lang.t("更多", "Later events")) " →" } }
        }
    };
    respond(
        StatusCode::OK,
        shell(lang, Some(&viewer), lang.t("动态", "Feed"), body),
    )
}
