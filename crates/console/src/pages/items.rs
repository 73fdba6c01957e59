//! Suggestions: the list the viewer is party to, one item with everything the API shows them,
//! and the actions their role takes on it — each a form posted here and sent to the API as
//! the person, with the form's idempotency key and the version the page showed.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Form, after_change};
use crate::Console;
use crate::api::Send;
use crate::i18n::Lang;
use crate::page::{
    self, FormState, Kind, date, field, form_problem, hidden, respond, select, shell,
};
use crate::session::Viewer;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    page_token: Option<String>,
    overdue: Option<String>,
}

/// The suggestions the viewer is party to.
pub async fn list(
    State(c): State<Console>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> Response {
    let lang = viewer.lang;
    let mut params: Vec<(&str, String)> = vec![("page_size", "50".into())];
    if let Some(s) = q.state.as_deref().filter(|s| !s.is_empty()) {
        params.push(("state", s.to_owned()));
    }
    if q.overdue.as_deref() == Some("1") {
        params.push(("overdue", "true".into()));
    }
    if let Some(t) = q.page_token.as_deref().filter(|s| !s.is_empty()) {
        params.push(("page_token", t.to_owned()));
    }
    let path = format!(
        "/v1/suggestions?{}",
        serde_urlencoded::to_string(&params).unwrap_or_default()
    );
    let page = match c.get(&viewer, &path, None).await {
        Ok(v) => v,
        Err(r) => return page::refused(lang, &viewer, &r),
    };
    let items = page["items"].as_array().cloned().unwrap_or_default();
    let next = page["next_page_token"].as_str();
    let body = html! {
        form.filters method="get" action="/console/items" {
            label for="state" { (lang.t("状态", "State")) }
            select #state name="state" {
                option value="" { (lang.t("全部", "All")) }
                @for s in ["registered", "assigned", "replied", "evaluated", "re_handling", "in_follow_up", "closed"] {
                    option value=(s) selected[q.state.as_deref() == Some(s)] { (lang.state(s)) }
                }
            }
            label { input type="checkbox" name="overdue" value="1" checked[q.overdue.as_deref() == Some("1")]; " " (lang.t("仅逾期", "Overdue only")) }
            button type="submit" { (lang.t("筛选", "Filter")) }
        }
        @if items.is_empty() {
            p { (lang.t("没有符合条件的建议。", "No suggestions match.")) }
        } @else {
            table {
                thead { tr { th scope="col" { (lang.t("编号", "Number")) } th scope="col" { (lang.t("标题", "Title")) } th scope="col" { (lang.t("状态", "State")) } } }
                tbody {
                    @for it in &items {
                        tr {
                            td { (it["number"].as_str().unwrap_or("")) }
                            td {
                                a href=(format!("/console/items/{}", it["id"].as_str().unwrap_or(""))) { (it["title"].as_str().unwrap_or("")) }
                                @if it["key_supervised"] == true { " " span.badge { (lang.t("重点督办", "key")) } }
                            }
                            td { (lang.state(it["state"].as_str().unwrap_or(""))) }
                        }
                    }
                }
            }
        }
        @if let Some(t) = next {
            p { a href=(format!("/console/items?{}", serde_urlencoded::to_string([("page_token", t), ("state", q.state.as_deref().unwrap_or(""))]).unwrap_or_default())) { (lang.t("下一页", "Next page")) " →" } }
        }
    };
    respond(
        StatusCode::OK,
        shell(lang, Some(&viewer), lang.t("建议", "Suggestions"), body),
    )
}

#[derive(Debug, Deserialize)]
pub struct ItemQuery {
    /// The read-your-writes token of the change just made.
    c: Option<String>,
}

/// One suggestion.
pub async fn detail(
    State(c): State<Console>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<ItemQuery>,
) -> Response {
    let Ok(id) = Uuid::try_parse(&id) else {
        return page::not_found(viewer.lang, Some(&viewer));
    };
    render(&c, &viewer, id, q.c.as_deref(), None).await
}

/// Names of the agencies and the divisions of the viewer's agency.
struct Names {
    agencies: HashMap<String, String>,
    deputy: Option<String>,
    divisions: Vec<(String, String)>,
}

async fn names(c: &Console, viewer: &Viewer, item: &Value) -> Names {
    let agencies = c
        .get(viewer, "/v1/agencies", None)
        .await
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| Some((a["id"].as_str()?.to_owned(), a["name"].as_str()?.to_owned())))
        .collect();
    let deputy = match item["lead_deputy_id"].as_str() {
        Some(d) => c
            .get(viewer, &format!("/v1/deputies/{d}"), None)
            .await
            .ok()
            .and_then(|v| v["name"].as_str().map(str::to_owned)),
        None => None,
    };
    let divisions = match viewer.principal().agency {
        Some(a) => c
            .get(viewer, &format!("/v1/agencies/{a}/divisions"), None)
            .await
            .ok()
            .and_then(|v| {
                v.as_array()
                    .cloned()
                    .or_else(|| v["items"].as_array().cloned())
            })
            .unwrap_or_default()
            .into_iter()
            .filter_map(|d| Some((d["id"].as_str()?.to_owned(), d["name"].as_str()?.to_owned())))
            .collect(),
        None => Vec::new(),
    };
    Names {
        agencies,
        deputy,
        divisions,
    }
}

/// The item's page; `failed` is a form that was refused (shown again with the API's message).
async fn render(
    c: &Console,
    viewer: &Viewer,
    id: Uuid,
    consistency: Option<&str>,
    failed: Option<(&str, FormState)>,
) -> Response {
    let lang = viewer.lang;
    let item = match c
        .get(viewer, &format!("/v1/suggestions/{id}"), consistency)
        .await
    {
        Ok(v) => v,
        Err(r) => return page::refused(lang, viewer, &r),
    };
    let names = names(c, viewer, &item).await;
    let status = failed
        .as_ref()
        .and_then(|(_, s)| s.refusal.as_ref())
        .and_then(|r| StatusCode::from_u16(r.status).ok())
        .unwrap_or(StatusCode::OK);
    let title = format!(
        "{} {}",
        item["number"].as_str().unwrap_or(""),
        item["title"].as_str().unwrap_or("")
    );
    let body = html! {
        (summary(lang, &item, &names))
        (units(lang, &item, &names))
        (history(lang, &item))
        (actions(lang, viewer, &item, &names, failed.as_ref().map(|(a, s)| (*a, s))))
    };
    respond(status, shell(lang, Some(viewer), &title, body))
}

fn summary(lang: Lang, item: &Value, names: &Names) -> Markup {
    html! {
        dl.facts {
            dt { (lang.t("状态", "State")) } dd { (lang.state(item["state"].as_str().unwrap_or(""))) }
            dt { (lang.t("领衔代表", "Lead deputy")) } dd { (names.deputy.as_deref().unwrap_or("—")) }
            dt { (lang.t("收到日期", "Received")) } dd { (date(&item["received_on"])) }
            dt { (lang.t("类别", "Category")) } dd { (item["category"].as_str().unwrap_or("")) }
            @if item["key_supervised"] == true { dt { (lang.t("督办", "Supervision")) } dd { span.badge { (lang.t("重点督办", "key item")) } } }
            @if let Some(cl) = item["current_class"].as_str() { dt { (lang.t("答复类别", "Reply class")) } dd { (lang.class(cl)) } }
        }
        details {
            summary { (lang.t("建议内容", "The suggestion")) }
            p.text { (item["body"].as_str().unwrap_or("")) }
        }
    }
}

fn units(lang: Lang, item: &Value, names: &Names) -> Markup {
    let list = item["assignments"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return html! {};
    }
    html! {
        h2 { (lang.t("承办单位", "Handling units")) }
        table {
            thead { tr {
                th scope="col" { (lang.t("单位", "Unit")) }
                th scope="col" { (lang.t("方式", "Role")) }
                th scope="col" { (lang.t("状态", "State")) }
                th scope="col" { (lang.t("答复期限", "Reply due")) }
            } }
            tbody {
                @for a in &list {
                    @let agency = a["agency_id"].as_str().unwrap_or("");
                    @let due = &a["deadlines"]["reply"];
                    tr.overdue[a["overdue"] == true] {
                        td { (names.agencies.get(agency).map_or(agency, String::as_str)) }
                        td { (lang.unit_role(a["role"].as_str().unwrap_or(""))) }
                        td { (lang.state(a["state"].as_str().unwrap_or(""))) }
                        td {
                            @if due.is_object() {
                                (date(&due["due"]))
                                @if a["overdue"] == true { " " span.badge.late { (lang.t("逾期", "overdue")) } }
                                details.why { summary { (lang.t("如何计算", "How it is counted")) } p { (due["explanation"].as_str().unwrap_or("")) } }
                            } @else { "—" }
                        }
                    }
                }
            }
        }
    }
}

fn history(lang: Lang, item: &Value) -> Markup {
    let comms = item["communications"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let opinions = item["opinions"].as_array().cloned().unwrap_or_default();
    let replies = item["replies"].as_array().cloned().unwrap_or_default();
    let feedback = item["feedback"].as_array().cloned().unwrap_or_default();
    html! {
        @if !comms.is_empty() {
            h2 { (lang.t("沟通记录", "Communications")) }
            ul.records { @for m in &comms { li { (date(&m["on"])) " · " (lang.method(m["method"].as_str().unwrap_or(""))) " · " (m["summary"].as_str().unwrap_or("")) } } }
        }
        @if !opinions.is_empty() {
            h2 { (lang.t("会办意见", "Co-handling opinions")) }
            ul.records { @for o in &opinions { li { (date(&o["on"])) " · " (o["document_number"].as_str().unwrap_or("")) " · " (o["body"].as_str().unwrap_or("")) } } }
        }
        @if !replies.is_empty() {
            h2 { (lang.t("答复", "Replies")) }
            @for r in &replies {
                article.reply {
                    h3 { (r["document_number"].as_str().unwrap_or("")) " · " (lang.class(r["class"].as_str().unwrap_or(""))) }
                    p.meta { (date(&r["on"])) " · " (lang.t("签发", "signed by")) " " (r["signer"]["name"].as_str().unwrap_or("")) }
                    p.text { (r["body"].as_str().unwrap_or("")) }
                }
            }
        }
        @if !feedback.is_empty() {
            h2 { (lang.t("代表评价", "The deputy's rating")) }
            ul.records { @for f in &feedback { li { (date(&f["on"])) " · " strong { (lang.satisfaction(f["level"].as_str().unwrap_or(""))) } " · " (f["comment"].as_str().unwrap_or("")) } } }
        }
    }
}

/// The forms of what the viewer's role may do now. The API decides; a form shown here that the
/// API refuses says why.
fn actions(
    lang: Lang,
    viewer: &Viewer,
    item: &Value,
    names: &Names,
    failed: Option<(&str, &FormState)>,
) -> Markup {
    // The forms whose field names another form on the page may share get scoped ids.
    let state_of = |action: &str| {
        let mut s = match failed {
            Some((a, s)) if a == action => s.clone(),
            _ => FormState::default(),
        };
        if SCOPED.contains(&action) {
            s.scope = Some(action.to_owned());
        }
        s
    };
    let id = item["id"].as_str().unwrap_or("");
    let version = item["version"].as_u64();
    let state = item["state"].as_str().unwrap_or("");
    let reload = format!("/console/items/{id}");
    let role = viewer.principal().role.as_str();
    let mine: Vec<Value> = match viewer.principal().agency {
        Some(a) if role != "assigning_office" => item["assignments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|x| x["agency_id"].as_str() == Some(&a.to_string()))
            .filter(|x| x["state"] != "superseded")
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let form_head = |action: &str, title: &str| {
        let s = state_of(action);
        html! {
            h3 { (title) }
            (form_problem(lang, &s, FIELDS, &reload))
            (hidden(viewer, &s, version))
        }
    };
    html! {
        @if role == "assigning_office" && state == "submitted" {
            section.action {
                form id="act-accept" method="post" action=(format!("/console/items/{id}/accept#act-accept")) {
                    (form_head("accept", lang.t("立案", "Register")))
                    button type="submit" { (lang.t("审查并立案", "Review and register")) }
                }
            }
        }
        @if role == "assigning_office" && state == "registered" {
            section.action {
                form id="act-assign" method="post" action=(format!("/console/items/{id}/assign#act-assign")) {
                    (form_head("assign", lang.t("交办", "Assign")))
                    @let opts: Vec<(String, String)> = std::iter::once((String::new(), lang.t("（请选择）", "(choose)").to_owned())).chain(names.agencies.iter().map(|(k, v)| (k.clone(), v.clone()))).collect();
                    (select(&state_of("assign"), "lead", lang.t("主办单位", "Lead agency"), &opts))
                    fieldset {
                        legend { (lang.t("会办单位（可多选）", "Co-handling agencies (any)")) }
                        @for (k, v) in &names.agencies {
                            label.check { input type="checkbox" name="co" value=(k); " " (v) }
                        }
                    }
                    button type="submit" { (lang.t("交办", "Assign")) }
                }
            }
        }
        @if role == "assigning_office" {
            @for a in item["assignments"].as_array().into_iter().flatten() {
                @let aid = a["id"].as_str().unwrap_or("");
                @let agency = names.agencies.get(a["agency_id"].as_str().unwrap_or("")).cloned().unwrap_or_default();
                @if a["adjustment"]["status"] == "pending" {
                    section.action {
                        form id=(format!("act-adjustment-decision-{aid}")) method="post" action=(format!("/console/items/{id}/adjustment-decision?assignment={aid}#act-adjustment-decision-{aid}")) {
                            (form_head("adjustment-decision", lang.t("调整申请", "Adjustment request")))
                            p { (agency) "：" (a["adjustment"]["reason"].as_str().unwrap_or("")) }
                            @let s = state_of("adjustment-decision");
                            (select(&s, "outcome", lang.t("决定", "Decision"), &[("accept".into(), lang.t("同意调整", "accept").into()), ("reject".into(), lang.t("不同意", "reject").into()), ("escalate".into(), lang.t("提请协调", "escalate").into())]))
                            @let opts: Vec<(String, String)> = std::iter::once((String::new(), lang.t("（同意时选择新承办单位）", "(on accept: the new unit)").to_owned())).chain(names.agencies.iter().map(|(k, v)| (k.clone(), v.clone()))).collect();
                            (select(&s, "agency_id", lang.t("改由", "Hand over to"), &opts))
                            (field(&s, "reason", lang.t("理由（不同意或提请协调时）", "Reason (reject or escalate)"), Kind::Text, false))
                            button type="submit" { (lang.t("决定", "Decide")) }
                        }
                    }
                }
                @if a["extension"]["status"] == "pending" {
                    section.action {
                        form id=(format!("act-extension-decision-{aid}")) method="post" action=(format!("/console/items/{id}/extension-decision?assignment={aid}#act-extension-decision-{aid}")) {
                            (form_head("extension-decision", lang.t("延期申请", "Extension request")))
                            p { (agency) "：" (lang.t("申请延期至", "asks until")) " " (date(&a["extension"]["new_due"])) " · " (a["extension"]["reason"].as_str().unwrap_or("")) }
                            fieldset {
                                legend { (lang.t("决定", "Decision")) }
                                label.check { input type="radio" name="approve" value="true" checked; " " (lang.t("同意", "Approve")) }
                                label.check { input type="radio" name="approve" value="false"; " " (lang.t("不同意", "Reject")) }
                            }
                            button type="submit" { (lang.t("决定", "Decide")) }
                        }
                    }
                }
                @if a["role"] == "co" && matches!(a["state"].as_str(), Some("in_handling" | "accepted" | "pending_sign")) && a["opinion_waived"] != true {
                    section.action {
                        form id=(format!("act-waiver-{aid}")) method="post" action=(format!("/console/items/{id}/waiver?assignment={aid}#act-waiver-{aid}")) {
                            (form_head("waiver", lang.t("免交会办意见", "Waive the co-handling opinion")))
                            p { (agency) }
                            (field(&state_of("waiver"), "reason", lang.t("理由", "Reason"), Kind::Text, true))
                            button type="submit" { (lang.t("免交", "Waive")) }
                        }
                    }
                }
            }
            @if matches!(state, "assigned" | "re_handling" | "in_follow_up" | "escalated") {
                section.action {
                    form id="act-notice" method="post" action=(format!("/console/items/{id}/notice#act-notice")) {
                        (form_head("notice", lang.t("发出督办通知", "Issue a supervision notice")))
                        @let s = state_of("notice");
                        @let units: Vec<(String, String)> = item["assignments"].as_array().into_iter().flatten().filter(|a| a["state"] != "superseded").filter_map(|a| { let id = a["agency_id"].as_str()?; Some((id.to_owned(), names.agencies.get(id).cloned().unwrap_or_else(|| id.to_owned()))) }).collect();
                        (select(&s, "target_agency_id", lang.t("督办单位", "Unit"), &units))
                        (select(&s, "level", lang.t("督办方式", "Level"), &[("reminder".into(), lang.t("提醒", "reminder").into()), ("notice".into(), lang.t("督办通知", "notice").into()), ("special_inspection".into(), lang.t("专项督查", "special inspection").into()), ("on_site_supervision".into(), lang.t("现场督办", "on-site supervision").into())]))
                        (field(&s, "body", lang.t("督办事项", "What is to be done"), Kind::Area, true))
                        (field(&s, "response_due", lang.t("书面回复期限", "Written answer by"), Kind::Date, true))
                        button type="submit" { (lang.t("发出", "Issue")) }
                    }
                }
            }
        }
        @for a in &mine {
            @let aid = a["id"].as_str().unwrap_or("");
            @let ast = a["state"].as_str().unwrap_or("");
            @let unit_role = a["role"].as_str().unwrap_or("");
            @if ast == "pending_sign" {
                section.action {
                    form id=(format!("act-sign-for-{aid}")) method="post" action=(format!("/console/items/{id}/sign-for?assignment={aid}#act-sign-for-{aid}")) {
                        (form_head("sign-for", lang.t("签收", "Sign for")))
                        p { (lang.t("签收后由本单位办理；如不属本单位职责，请在交办后五个工作日内申请调整。", "Once signed for, your unit handles it; if it is not your remit, ask for an adjustment within five working days of the assignment.")) }
                        button type="submit" { (lang.t("签收", "Sign for")) }
                    }
                }
            }
            @if ast == "accepted" {
                section.action {
                    form id=(format!("act-dispatch-{aid}")) method="post" action=(format!("/console/items/{id}/dispatch?assignment={aid}#act-dispatch-{aid}")) {
                        (form_head("dispatch", lang.t("交办到处室", "Dispatch to a division")))
                        @let s = state_of("dispatch");
                        (select(&s, "division_id", lang.t("承办处室", "Division"), &names.divisions))
                        (field(&s, "handler", lang.t("承办人", "Handler"), Kind::Text, true))
                        (field(&s, "responsible_leader", lang.t("分管领导", "Responsible leader"), Kind::Text, true))
                        (field(&s, "plan", lang.t("办理方案", "Plan"), Kind::Area, true))
                        button type="submit" { (lang.t("交办", "Dispatch")) }
                    }
                }
            }
            @if matches!(ast, "in_handling" | "re_handling" | "replied") {
                section.action {
                    form id=(format!("act-communication-{aid}")) method="post" action=(format!("/console/items/{id}/communication?assignment={aid}#act-communication-{aid}")) {
                        (form_head("communication", lang.t("记录沟通", "Record a communication")))
                        @for d in std::iter::once(&item["lead_deputy_id"]).chain(item["co_signer_ids"].as_array().into_iter().flatten()) {
                            @if let Some(d) = d.as_str() { input type="hidden" name="deputy" value=(d); }
                        }
                        @let s = state_of("communication");
                        (select(&s, "phase", lang.t("阶段", "Phase"), &[("before".into(), lang.t("办前", "before").into()), ("during".into(), lang.t("办中", "during").into()), ("after".into(), lang.t("办后", "after").into())]))
                        (select(&s, "method", lang.t("方式", "Method"), &[("visit".into(), lang.t("上门走访", "visit").into()), ("phone".into(), lang.t("电话", "phone").into()), ("symposium".into(), lang.t("座谈", "meeting").into()), ("field_research".into(), lang.t("实地调研", "field research").into()), ("letter".into(), lang.t("书面", "letter").into()), ("online_meeting".into(), lang.t("视频会议", "online meeting").into())]))
                        label.check { input type="checkbox" name="face_to_face" value="true" checked[s.value("face_to_face") == "true"]; " " (lang.t("面对面", "Face to face")) }
                        (field(&s, "summary", lang.t("沟通内容", "Summary"), Kind::Area, true))
                        button type="submit" { (lang.t("保存", "Save")) }
                    }
                }
            }
            @if matches!(ast, "in_handling" | "re_handling") && unit_role != "co" {
                section.action {
                    form id=(format!("act-reply-{aid}")) method="post" action=(format!("/console/items/{id}/reply?assignment={aid}#act-reply-{aid}")) {
                        (form_head("reply", lang.t("答复代表", "Reply to the deputy")))
                        @for o in item["opinions"].as_array().into_iter().flatten() {
                            @if let Some(o) = o["id"].as_str() { input type="hidden" name="opinion" value=(o); }
                        }
                        @let s = state_of("reply");
                        (field(&s, "document_number", lang.t("文号", "Document number"), Kind::Text, true))
                        (select(&s, "class", lang.t("答复类别", "Class"), &[("A".into(), lang.class("A").into()), ("B".into(), lang.class("B").into()), ("C".into(), lang.class("C").into())]))
                        (field(&s, "body", lang.t("答复正文", "Reply"), Kind::Area, true))
                        (field(&s, "signer_name", lang.t("签发人", "Signed by"), Kind::Text, true))
                        (select(&s, "signer_position", lang.t("签发人职务", "Signer's position"), &[("principal_head".into(), lang.t("主要负责人", "principal head").into()), ("authorized_leader".into(), lang.t("分管负责人", "authorized leader").into())]))
                        fieldset {
                            legend { (lang.t("承诺事项（B类必填）", "Commitment (required for class B)")) }
                            (field(&s, "measure", lang.t("措施", "Measure"), Kind::Text, false))
                            (field(&s, "target_date", lang.t("完成期限", "Target date"), Kind::Date, false))
                        }
                        button type="submit" { (lang.t("发出答复", "Send the reply")) }
                    }
                }
            }
            @if matches!(ast, "pending_sign" | "accepted") && a["adjustment"].is_null() {
                section.action {
                    form id=(format!("act-adjustment-request-{aid}")) method="post" action=(format!("/console/items/{id}/adjustment-request?assignment={aid}#act-adjustment-request-{aid}")) {
                        (form_head("adjustment-request", lang.t("申请调整承办单位", "Ask for another unit")))
                        @let s = state_of("adjustment-request");
                        p.hint { (lang.t("交办后五个工作日内，期限：", "Within five working days of the assignment, by ")) (date(&a["deadlines"]["objection"]["due"])) }
                        (field(&s, "reason", lang.t("理由", "Reason"), Kind::Area, true))
                        @let opts: Vec<(String, String)> = std::iter::once((String::new(), lang.t("（建议由哪个单位承办，可不选）", "(a unit to suggest, if any)").to_owned())).chain(names.agencies.iter().map(|(k, v)| (k.clone(), v.clone()))).collect();
                        (select(&s, "suggested_agency_id", lang.t("建议改由", "Suggested unit"), &opts))
                        button type="submit" { (lang.t("提交申请", "Ask")) }
                    }
                }
            }
            @if matches!(ast, "in_handling" | "re_handling") && unit_role != "co" && a["extension"]["status"] != "pending" {
                section.action {
                    form id=(format!("act-extension-request-{aid}")) method="post" action=(format!("/console/items/{id}/extension-request?assignment={aid}#act-extension-request-{aid}")) {
                        (form_head("extension-request", lang.t("申请延期答复", "Ask for more time")))
                        @let s = state_of("extension-request");
                        (field(&s, "new_due", lang.t("延至", "Until"), Kind::Date, true))
                        (field(&s, "reason", lang.t("理由", "Reason"), Kind::Area, true))
                        button type="submit" { (lang.t("提交申请", "Ask")) }
                    }
                }
            }
            @if ast == "in_review" && a["approval"]["current_step"].is_u64() {
                @let ap = &a["approval"];
                @let step = ap["current_step"].as_u64().unwrap_or(0);
                section.action {
                    h3 { (lang.t("内部审批", "Internal approval")) }
                    ol.steps {
                        @for st in ap["steps"].as_array().into_iter().flatten() {
                            li {
                                (position(lang, st["position"].as_str().unwrap_or(""))) " · "
                                @match st["decision"].as_str() {
                                    Some(d) => { (if d == "approved" { lang.t("已同意", "approved") } else { lang.t("已退回", "returned") }) " " (date(&st["decided_on"])) }
                                    None => { (lang.t("待审批，期限", "waiting, due")) " " (date(&st["due"]["due"])) @if st["overdue"] == true { " " span.badge.late { (lang.t("逾期", "overdue")) } } }
                                }
                            }
                        }
                    }
                    @if let Some(d) = ap["draft"].as_object() {
                        details open {
                            summary { (lang.t("答复稿", "The draft")) " " (d.get("document_number").and_then(Value::as_str).unwrap_or("")) }
                            p.text { (d.get("body").and_then(Value::as_str).unwrap_or("")) }
                        }
                    }
                    form id=(format!("act-approval-{aid}")) method="post" action=(format!("/console/items/{id}/approval?assignment={aid}#act-approval-{aid}")) {
                        (form_head("approval", lang.t("审批本步", "Decide this step")))
                        @let s = state_of("approval");
                        input type="hidden" name="step" value=(step);
                        fieldset {
                            legend { (lang.t("决定", "Decision")) }
                            label.check { input type="radio" name="approve" value="true" checked[s.value("approve") != "false"]; " " (lang.t("同意", "Approve")) }
                            label.check { input type="radio" name="approve" value="false" checked[s.value("approve") == "false"]; " " (lang.t("退回修改", "Return for changes")) }
                        }
                        (field(&s, "comment", lang.t("意见（退回时必填）", "Comment (required to return)"), Kind::Area, false))
                        button type="submit" { (lang.t("提交", "Send")) }
                    }
                }
            }
            @if ast == "in_handling" && unit_role == "co" {
                section.action {
                    form id=(format!("act-opinion-{aid}")) method="post" action=(format!("/console/items/{id}/opinion?assignment={aid}#act-opinion-{aid}")) {
                        (form_head("opinion", lang.t("会办意见", "Co-handling opinion")))
                        @let s = state_of("opinion");
                        (field(&s, "document_number", lang.t("文号", "Document number"), Kind::Text, true))
                        (field(&s, "body", lang.t("意见", "Opinion"), Kind::Area, true))
                        (field(&s, "signer_name", lang.t("签发人", "Signed by"), Kind::Text, true))
                        (select(&s, "signer_position", lang.t("签发人职务", "Signer's position"), &[("authorized_leader".into(), lang.t("分管负责人", "authorized leader").into()), ("principal_head".into(), lang.t("主要负责人", "principal head").into())]))
                        (field(&s, "measure", lang.t("本单位措施（无则说明理由）", "Your unit's measure (or why none)"), Kind::Text, false))
                        (field(&s, "target_date", lang.t("完成期限", "Target date"), Kind::Date, false))
                        (field(&s, "no_measure_reason", lang.t("无措施的理由", "Why no measure"), Kind::Text, false))
                        button type="submit" { (lang.t("提交意见", "Send the opinion")) }
                    }
                }
            }
        }
        @if role == "deputy" && state == "replied" {
            section.action {
                form id="act-feedback" method="post" action=(format!("/console/items/{id}/feedback#act-feedback")) {
                    (form_head("feedback", lang.t("评价答复", "Rate the reply")))
                    @let s = state_of("feedback");
                    @let levels = [("satisfied".to_owned(), lang.satisfaction("satisfied").to_owned()), ("basically_satisfied".to_owned(), lang.satisfaction("basically_satisfied").to_owned()), ("dissatisfied".to_owned(), lang.satisfaction("dissatisfied").to_owned())];
                    (select(&s, "level", lang.t("总体评价", "Overall"), &levels))
                    (select(&s, "handling", lang.t("对办理过程", "The handling"), &levels))
                    (select(&s, "result", lang.t("对办理结果", "The result"), &levels))
                    (field(&s, "comment", lang.t("意见", "Comment"), Kind::Area, false))
                    button type="submit" { (lang.t("提交评价", "Send the rating")) }
                }
            }
        }
    }
}

/// A position in an agency (an approval step's holder).
fn position(lang: Lang, p: &str) -> &'static str {
    match p {
        "principal_head" => lang.t("主要负责人", "principal head"),
        "authorized_leader" => lang.t("分管负责人", "authorized leader"),
        "division_head" => lang.t("处室负责人", "division head"),
        "staff" => lang.t("经办人员", "staff"),
        _ => "",
    }
}

/// The forms whose fields' names other forms on the same page use.
const SCOPED: &[&str] = &[
    "waiver",
    "adjustment-decision",
    "adjustment-request",
    "extension-request",
    "notice",
    "opinion",
];

/// The fields of every form, for placing the API's message next to the one it is about.
const FIELDS: &[&str] = &[
    "reason",
    "new_due",
    "response_due",
    "outcome",
    "agency_id",
    "target_agency_id",
    "lead",
    "division_id",
    "handler",
    "responsible_leader",
    "plan",
    "summary",
    "document_number",
    "body",
    "class",
    "signer",
    "measure",
    "target_date",
    "no_measure_reason",
    "comment",
    "level",
];

#[derive(Debug, Deserialize)]
pub struct ActQuery {
    assignment: Option<String>,
}

/// The API calls of an action: (method, path, body, send with If-Match).
fn calls(action: &str, id: Uuid, aid: &str, f: &Form) -> Option<Vec<(String, Value, bool)>> {
    let signer = || json!({"name": f.text("signer_name").unwrap_or_default(), "position": f.text("signer_position").unwrap_or_else(|| "authorized_leader".into())});
    let measure = || {
        f.text("measure")
            .map(|m| json!({"measure": m, "target_date": f.text("target_date")}))
    };
    Some(match action {
        "accept" => vec![
            (
                format!("/v1/suggestions/{id}/start-review"),
                json!({}),
                true,
            ),
            (
                format!("/v1/suggestions/{id}/review"),
                json!({"decision": "accept"}),
                false,
            ),
        ],
        "assign" => {
            let mut units = Vec::new();
            if let Some(l) = f.text("lead") {
                units.push(json!({"agency_id": l, "role": "lead"}));
            }
            for co in f.all("co") {
                if Some(&co) != f.get("lead").map(str::to_owned).as_ref() {
                    units.push(json!({"agency_id": co, "role": "co"}));
                }
            }
            vec![(
                format!("/v1/suggestions/{id}/assignments"),
                json!({"units": units}),
                true,
            )]
        }
        "sign-for" => vec![(
            format!("/v1/coordination/assignments/{aid}/sign-for"),
            json!({}),
            false,
        )],
        "dispatch" => vec![(
            format!("/v1/suggestions/{id}/assignments/{aid}/dispatch"),
            json!({"division_id": f.text("division_id"), "handler": f.text("handler").unwrap_or_default(), "responsible_leader": f.text("responsible_leader").unwrap_or_default(), "plan": f.text("plan").unwrap_or_default()}),
            true,
        )],
        "communication" => vec![(
            format!("/v1/suggestions/{id}/communications"),
            json!({"assignment_id": aid, "phase": f.text("phase").unwrap_or_else(|| "before".into()), "method": f.text("method").unwrap_or_else(|| "visit".into()), "face_to_face": f.get("face_to_face") == Some("true"), "deputy_ids": f.all("deputy"), "summary": f.text("summary").unwrap_or_default()}),
            true,
        )],
        "reply" => {
            let mut body = json!({"assignment_id": aid, "document_number": f.text("document_number").unwrap_or_default(), "body": f.text("body").unwrap_or_default(), "class": f.text("class").unwrap_or_else(|| "A".into()), "signer": signer(), "opinion_ids": f.all("opinion")});
            if let Some(m) = measure() {
                body["commitments"] = json!([m]);
            }
            vec![(format!("/v1/suggestions/{id}/replies"), body, true)]
        }
        "opinion" => {
            let mut body = json!({"document_number": f.text("document_number").unwrap_or_default(), "body": f.text("body").unwrap_or_default(), "signer": signer()});
            match (measure(), f.text("no_measure_reason")) {
                (Some(m), _) => {
                    body["measures"] = json!([{"measure": m["measure"], "responsible": f.text("signer_name").unwrap_or_default(), "target_date": m["target_date"]}])
                }
                (None, Some(r)) => body["no_measure_reason"] = json!(r),
                (None, None) => {}
            }
            vec![(
                format!("/v1/coordination/assignments/{aid}/opinions"),
                body,
                false,
            )]
        }
        "adjustment-decision" => {
            let mut body = json!({"outcome": f.text("outcome").unwrap_or_else(|| "accept".into())});
            if let Some(a) = f.text("agency_id") {
                body["agency_id"] = json!(a);
            }
            if let Some(r) = f.text("reason") {
                body["reason"] = json!(r);
            }
            vec![(
                format!("/v1/coordination/assignments/{aid}/adjustment-decision"),
                body,
                false,
            )]
        }
        "adjustment-request" => vec![(
            format!("/v1/coordination/assignments/{aid}/adjustment-request"),
            json!({"reason": f.text("reason").unwrap_or_default(), "suggested_agency_id": f.text("suggested_agency_id")}),
            false,
        )],
        "extension-decision" => vec![(
            format!("/v1/suggestions/{id}/assignments/{aid}/extension-decision"),
            json!({"approve": f.get("approve") != Some("false")}),
            true,
        )],
        "extension-request" => vec![(
            format!("/v1/suggestions/{id}/assignments/{aid}/extension-request"),
            json!({"new_due": f.text("new_due"), "reason": f.text("reason").unwrap_or_default()}),
            true,
        )],
        "waiver" => vec![(
            format!("/v1/coordination/assignments/{aid}/waiver"),
            json!({"reason": f.text("reason").unwrap_or_default()}),
            false,
        )],
        "notice" => vec![(
            "/v1/followup/notices".to_owned(),
            json!({"target_agency_id": f.text("target_agency_id"), "suggestion_ids": [id], "level": f.text("level").unwrap_or_else(|| "notice".into()), "body": f.text("body").unwrap_or_default(), "response_due": f.text("response_due")}),
            false,
        )],
        "approval" => vec![(
            format!("/v1/suggestions/{id}/assignments/{aid}/approval"),
            json!({"step": f.get("step").and_then(|s| s.parse::<u64>().ok()).unwrap_or(0), "approve": f.get("approve") != Some("false"), "comment": f.text("comment").unwrap_or_default()}),
            true,
        )],
        "feedback" => vec![(
            format!("/v1/suggestions/{id}/feedback"),
            json!({"level": f.text("level").unwrap_or_else(|| "satisfied".into()), "handling": f.text("handling"), "result": f.text("result"), "comment": f.text("comment").unwrap_or_default()}),
            true,
        )],
        _ => return None,
    })
}

/// An action on one suggestion: the form checked (CSRF), sent to the API as the viewer; back to
/// the item on success, the form again with the API's message on a refusal.
pub async fn act(
    State(c): State<Console>,
    viewer: Viewer,
    Path((id, action)): Path<(String, String)>,
    Query(q): Query<ActQuery>,
    body: Bytes,
) -> Response {
    let lang = viewer.lang;
    let form = Form::parse(&body);
    if !form.csrf_ok(&viewer) {
        tracing::warn!(user_id = %viewer.signed_in.user.id, action, "form refused: no valid CSRF token");
        return page::forbidden_form(lang);
    }
    let Ok(id) = Uuid::try_parse(&id) else {
        return page::not_found(lang, Some(&viewer));
    };
    let aid = q
        .assignment
        .as_deref()
        .and_then(|a| Uuid::try_parse(a).ok())
        .map(|a| a.to_string())
        .unwrap_or_default();
    let Some(calls) = calls(&action, id, &aid, &form) else {
        return page::not_found(lang, Some(&viewer));
    };
    let key = form.text("_key");
    let version = form.get("_version").and_then(|v| v.parse::<u64>().ok());
    let mut consistency: Option<String> = None;
    for (n, (path, body, with_version)) in calls.iter().enumerate() {
        let send = Send {
            idempotency_key: key.as_ref().map(|k| {
                if n == 0 {
                    k.clone()
                } else {
                    format!("{k}-{n}")
                }
            }),
            if_match: if *with_version { version } else { None },
        };
        let answer = c
            .call(
                &viewer,
                Method::POST,
                path,
                Some(body),
                &send,
                consistency.as_deref(),
            )
            .await;
        if answer.consistency.is_some() {
            consistency = answer.consistency.clone();
        }
        if let Err(r) = answer.into_result() {
            tracing::info!(user_id = %viewer.signed_in.user.id, action, status = r.status, code = %r.code, "console action refused");
            let mut state = form.state();
            state.refusal = Some(r);
            return render(
                &c,
                &viewer,
                id,
                consistency.as_deref(),
                Some((&action, state)),
            )
            .await;
        }
    }
    after_change(&format!("/console/items/{id}"), consistency.as_deref())
}
