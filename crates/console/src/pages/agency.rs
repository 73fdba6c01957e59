//! An agency's inbox: what each of its assignments owes and by when, overdue first, and the
//! supervision notices it has to acknowledge and answer.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use crate::Console;
use crate::i18n::Lang;
use crate::page::{self, date, respond, shell};
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
    let lang = viewer.lang;
    let consistency = q.c.as_deref();
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
        .get(&viewer, "/v1/followup/notices?state=issued", consistency)
        .await
        .ok()
        .and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default();
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
            ul.records {
                @for n in &notices {
                    li {
                        (date(&n["issued_on"])) " · " (lang.t("回复期限", "answer by")) " " (date(&n["response_due"])) " · "
                        (n["body"].as_str().unwrap_or(""))
                    }
                }
            }
        }
    };
    respond(
        StatusCode::OK,
        shell(lang, Some(&viewer), lang.t("待办", "Inbox"), body),
    )
}
