//! A deputy's own suggestions: where each stands, and the replies waiting for a rating.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use crate::Console;
use crate::page::{self, respond, shell};
use crate::session::Viewer;

#[derive(Debug, Deserialize)]
pub struct MineQuery {
    c: Option<String>,
}

pub async fn mine(
    State(c): State<Console>,
    viewer: Viewer,
    Query(q): Query<MineQuery>,
) -> Response {
    let lang = viewer.lang;
    let items = match c
        .get(&viewer, "/v1/suggestions?page_size=200", q.c.as_deref())
        .await
    {
        Ok(v) => v["items"].as_array().cloned().unwrap_or_default(),
        Err(r) => return page::refused(lang, &viewer, &r),
    };
    let to_rate: Vec<_> = items.iter().filter(|s| s["state"] == "replied").collect();
    // What the agencies and the office told them (replies issued, progress on promises).
    let messages = c
        .get(&viewer, "/v1/inbox?limit=50", q.c.as_deref())
        .await
        .ok()
        .and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default();
    let body = html! {
        @if !to_rate.is_empty() {
            div.note role="status" {
                (lang.t("以下建议已答复，请您评价：", "These suggestions have a reply for you to rate:"))
                ul { @for s in &to_rate { li { a href=(format!("/console/items/{}", s["id"].as_str().unwrap_or(""))) { (s["title"].as_str().unwrap_or("")) } } } }
            }
        }
        @if items.is_empty() {
            p { (lang.t("您还没有提出建议。", "You have no suggestions yet.")) }
        } @else {
            ul.items {
                @for s in &items {
                    li {
                        a href=(format!("/console/items/{}", s["id"].as_str().unwrap_or(""))) {
                            span.num { (s["number"].as_str().unwrap_or("")) }
                            " " (s["title"].as_str().unwrap_or(""))
                        }
                        " " span.state { (lang.state(s["state"].as_str().unwrap_or(""))) }
                    }
                }
            }
            p.hint { (lang.t("点开一条建议可以看到承办单位、答复期限及其计算方法、答复全文。", "Open a suggestion to see its handling units, when each must reply and how that date is counted, and the replies.")) }
        }
        h2 { (lang.t("办理进展通知", "Progress reports")) }
        @if messages.is_empty() {
            p { (lang.t("暂无通知。", "Nothing yet.")) }
        } @else {
            @for m in &messages {
                article.reply {
                    h3 {
                        a href=(format!("/console/items/{}", m["suggestion_id"].as_str().unwrap_or(""))) { (m["title"].as_str().unwrap_or("")) }
                    }
                    p { (m["body"].as_str().unwrap_or("")) }
                }
            }
        }
    };
    respond(
        StatusCode::OK,
        shell(
            lang,
            Some(&viewer),
            lang.t("我的建议", "My suggestions"),
            body,
        ),
    )
}
