//! The page shell (header, navigation by role, language switch, sign-out) and what pages share:
//! form fields that show the API's message next to them and keep what was typed, problem boxes,
//! error pages.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::api::Refusal;
use crate::i18n::Lang;
use crate::session::Viewer;

/// The stylesheet's path (served by the console itself: no request leaves the server).
pub const CSS_PATH: &str = "/console/assets/console.css?v=1";

/// A whole page: `title`, the viewer's navigation (none before signing in) and `body`.
pub fn shell(lang: Lang, viewer: Option<&Viewer>, title: &str, body: Markup) -> Markup {
    let (other, other_name) = lang.other();
    let here = viewer.map_or("/login", |v| v.here.as_str());
    let switch = format!(
        "/console/lang/{other}?{}",
        serde_urlencoded::to_string([("next", here)]).unwrap_or_default()
    );
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (lang.t("建议办理", "banli")) }
                link rel="stylesheet" href=(CSS_PATH);
            }
            body {
                a.skip href="#main" { (lang.t("跳到正文", "Skip to content")) }
                header.top {
                    a.brand href="/" { (lang.t("代表建议办理", "Suggestion handling")) }
                    @if let Some(v) = viewer {
                        nav aria-label=(lang.t("主导航", "Main")) {
                            ul {
                                @for (href, label) in nav(lang, v) {
                                    li { a href=(href) aria-current=[v.here.starts_with(href).then_some("page")] { (label) } }
                                }
                            }
                        }
                    }
                    div.who {
                        @if let Some(v) = viewer {
                            span { (v.signed_in.user.username) " · " (lang.role(v.signed_in.user.role.as_str())) }
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="_csrf" value=(v.csrf);
                                button.link type="submit" { (lang.t("退出", "Sign out")) }
                            }
                        }
                        a href=(switch) lang=(if other == "en" { "en" } else { "zh-CN" }) { (other_name) }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The navigation of the viewer's role.
fn nav(lang: Lang, v: &Viewer) -> Vec<(&'static str, &'static str)> {
    use banli_api::Principal;
    let Principal { role, .. } = v.principal();
    match role.as_str() {
        "assigning_office" => vec![
            ("/console/office", lang.t("概况", "Dashboard")),
            ("/console/items", lang.t("建议", "Suggestions")),
            ("/console/register", lang.t("登记", "Register")),
            ("/console/stages", lang.t("阶段", "Stages")),
            ("/console/ledger", lang.t("台账", "Ledger")),
            ("/console/report", lang.t("年度报告", "Annual report")),
        ],
        "deputy" => vec![("/console/mine", lang.t("我的建议", "My suggestions"))],
        "auditor" => vec![
            ("/console/audit", lang.t("审计日志", "Audit log")),
            ("/console/items", lang.t("建议", "Suggestions")),
        ],
        _ => vec![
            ("/console/inbox", lang.t("待办", "Inbox")),
            ("/console/items", lang.t("建议", "Suggestions")),
            ("/console/feed", lang.t("动态", "Feed")),
            ("/console/stages", lang.t("阶段", "Stages")),
            ("/console/ledger", lang.t("台账", "Ledger")),
            ("/console/report", lang.t("年度报告", "Annual report")),
        ],
    }
}

/// An HTML response.
pub fn respond(status: StatusCode, page: Markup) -> Response {
    (status, Html(page.into_string())).into_response()
}

/// The page for anything not found — an unknown id and another agency's item alike.
pub fn not_found(lang: Lang, viewer: Option<&Viewer>) -> Response {
    respond(
        StatusCode::NOT_FOUND,
        shell(
            lang,
            viewer,
            lang.t("找不到该页面", "Not found"),
            html! {
                p { (lang.t("没有这个事项，或者您无权查看。", "There is no such item, or it is not yours to see.")) }
                p { a href="/" { (lang.t("返回首页", "Back to the start")) } }
            },
        ),
    )
}

/// The page for a service that did not answer.
pub fn unavailable(lang: Lang) -> Response {
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        shell(
            lang,
            None,
            lang.refusal(503),
            html! { p { a href="" { (lang.t("重新加载", "Reload")) } } },
        ),
    )
}

/// A refused form (no or a wrong CSRF token): nothing was done.
pub fn forbidden_form(lang: Lang) -> Response {
    respond(
        StatusCode::FORBIDDEN,
        shell(
            lang,
            None,
            lang.t("表单已失效", "This form is no longer valid"),
            html! {
                p { (lang.t("该表单不是从本页面提交的，或已过期；未做任何更改。请返回并重新填写。", "The form did not come from this page or has expired; nothing was changed. Go back and fill it in again.")) }
                p { a href="/" { (lang.t("返回首页", "Back to the start")) } }
            },
        ),
    )
}

/// A page for a refusal of a read (not a form): 404 as the not-found page, others with their
/// message.
pub fn refused(lang: Lang, viewer: &Viewer, r: &Refusal) -> Response {
    if r.status == 404 {
        return not_found(lang, Some(viewer));
    }
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    respond(
        status,
        shell(
            lang,
            Some(viewer),
            lang.refusal(r.status),
            html! { p.problem { (r.detail) } },
        ),
    )
}

/// What a form was filled with, and what the API said of it.
#[derive(Debug, Default, Clone)]
pub struct FormState {
    pub values: HashMap<String, String>,
    pub refusal: Option<Refusal>,
    /// Prefixes the fields' ids (`f-<scope>-<name>`) where a page has several forms with
    /// fields of the same name: ids stay unique and labels point at their own field.
    pub scope: Option<String>,
}

impl FormState {
    /// A field's id on the page.
    pub fn id(&self, name: &str) -> String {
        match &self.scope {
            Some(scope) => format!("f-{scope}-{name}"),
            None => format!("f-{name}"),
        }
    }

    pub fn value(&self, name: &str) -> &str {
        self.values.get(name).map_or("", String::as_str)
    }

    /// The API's message when it is about field `name` (it names the field first or in
    /// backticks), to be shown next to it.
    pub fn error_for(&self, name: &str) -> Option<&str> {
        let r = self
            .refusal
            .as_ref()
            .filter(|r| matches!(r.status, 400 | 422))?;
        let d = r.detail.as_str();
        let named = d.contains(&format!("`{name}`"))
            || d.starts_with(&format!("{name}:"))
            || d.starts_with(&format!("{name} "))
            || d.contains(&format!(" {name}:"))
            || d.contains(&format!("{name} must"));
        named.then_some(d)
    }

    /// Whether the refusal is shown next to one of `fields` (else above the form).
    fn placed(&self, fields: &[&str]) -> bool {
        fields.iter().any(|f| self.error_for(f).is_some())
    }
}

/// The box above a form: the refusal when it is not about one of `fields`; a changed item as
/// "changed since you opened it" with a reload.
pub fn form_problem(lang: Lang, state: &FormState, fields: &[&str], reload: &str) -> Markup {
    let Some(r) = &state.refusal else {
        return html! {};
    };
    html! {
        div.problem role="alert" {
            strong { (lang.refusal(r.status)) }
            @if r.status == 412 {
                p { (lang.t("您填写的内容仍保留在下方。请重新加载页面查看最新情况后再提交。", "What you typed is kept below. Reload to see the latest, then send it again.")) }
                p { a href=(reload) { (lang.t("重新加载", "Reload")) } }
            } @else if !state.placed(fields) {
                p { (r.detail) }
            } @else {
                p { (lang.t("请查看标出的字段。", "See the marked field.")) }
            }
        }
    }
}

/// The kind of a form field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Area,
    Date,
    Password,
}

/// A labelled field: the API's message next to it when it is about it, what was typed kept.
pub fn field(state: &FormState, name: &str, label: &str, kind: Kind, required: bool) -> Markup {
    let id = state.id(name);
    let err_id = format!("{id}-error");
    let error = state.error_for(name);
    let value = state.value(name);
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) @if required { span.req aria-hidden="true" { " *" } } }
            @match kind {
                Kind::Area => textarea id=(id) name=(name) rows="5" required[required]
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| err_id.as_str())] { (value) },
                Kind::Text | Kind::Date | Kind::Password => input id=(id) name=(name)
                    type=(match kind { Kind::Date => "date", Kind::Password => "password", _ => "text" })
                    value=(if kind == Kind::Password { "" } else { value })
                    required[required]
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| err_id.as_str())];
            }
            @if let Some(e) = error { p.error id=(err_id) { (e) } }
        }
    }
}

/// A `<select>` with its options (value, label).
pub fn select(state: &FormState, name: &str, label: &str, options: &[(String, String)]) -> Markup {
    let id = state.id(name);
    let error = state.error_for(name);
    let chosen = state.value(name);
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            select id=(id) name=(name) aria-invalid=[error.map(|_| "true")] {
                @for (v, l) in options {
                    option value=(v) selected[v == chosen] { (l) }
                }
            }
            @if let Some(e) = error { p.error { (e) } }
        }
    }
}

/// The hidden fields every form of a signed-in page carries: the CSRF token, the form's own
/// idempotency key (a form sent twice changes once) and the version the page showed. A form
/// shown again after a refusal gets a new key: the refused request has its answer, and the
/// corrected one is another request.
pub fn hidden(viewer: &Viewer, _state: &FormState, version: Option<u64>) -> Markup {
    let key = uuid::Uuid::new_v4().to_string();
    html! {
        input type="hidden" name="_csrf" value=(viewer.csrf);
        input type="hidden" name="_key" value=(key);
        @if let Some(v) = version { input type="hidden" name="_version" value=(v); }
    }
}

/// A date as the page shows it.
pub fn date(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or("—").to_owned()
}

/// A percentage of a rate (`value` in 0..1), or a dash without a denominator.
pub fn percent(v: &serde_json::Value) -> String {
    v["value"]
        .as_f64()
        .map_or_else(|| "—".to_owned(), |x| format!("{:.1}%", x * 100.0))
}

/// Raw markup (an SVG made here).
pub fn raw(s: String) -> PreEscaped<String> {
    PreEscaped(s)
}
