//! The pages, by who uses them.

pub mod agency;
pub mod audit;
pub mod auth;
pub mod deputy;
pub mod items;
pub mod office;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::Console;
use crate::page::{self, FormState};
use crate::session::{self, Viewer};

/// The stylesheet, kept with the console (cached for a day; its URL changes with it).
pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../assets/console.css"),
    )
        .into_response()
}

/// Where a person starts: their role's first page, or the login.
pub async fn home(State(c): State<Console>, headers: HeaderMap) -> Response {
    let Some(secret) = session::cookie(&headers, session::SESSION_COOKIE) else {
        return Redirect::to("/login").into_response();
    };
    match c.app().session(secret).await {
        Ok(Some(s)) => Redirect::to(start_page(s.principal.role.as_str())).into_response(),
        _ => Redirect::to("/login").into_response(),
    }
}

/// A role's first page.
pub fn start_page(role: &str) -> &'static str {
    match role {
        "assigning_office" => "/console/office",
        "deputy" => "/console/mine",
        "auditor" => "/console/audit",
        _ => "/console/inbox",
    }
}

/// An unknown console page.
pub async fn not_found(viewer: Viewer) -> Response {
    page::not_found(viewer.lang, Some(&viewer))
}

/// A form's address opened as a page (or a page's address posted to): said in words, with the
/// way back.
pub async fn method_not_allowed(headers: HeaderMap) -> Response {
    let lang = session::lang_of(&headers);
    page::respond(
        StatusCode::METHOD_NOT_ALLOWED,
        page::shell(
            lang,
            None,
            lang.t("此地址用于提交表单", "This address takes a form"),
            maud::html! {
                p { (lang.t("请从页面上的按钮操作；未做任何更改。", "Use the button on the page; nothing was changed.")) }
                p { a href="/" { (lang.t("返回首页", "Back to the start")) } }
            },
        ),
    )
}

/// A posted form: its fields in order (a field may repeat).
#[derive(Debug, Default)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn parse(body: &Bytes) -> Form {
        Form(serde_urlencoded::from_bytes(body).unwrap_or_default())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The trimmed value, or `None` when empty.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// What was typed, to show the form again (never a password).
    pub fn state(&self) -> FormState {
        FormState {
            values: self
                .0
                .iter()
                .filter(|(k, _)| !k.contains("password"))
                .cloned()
                .collect(),
            refusal: None,
            scope: None,
        }
    }

    /// Whether the form carries the viewer's CSRF token.
    pub fn csrf_ok(&self, viewer: &Viewer) -> bool {
        session::csrf_ok(&viewer.csrf, self.get("_csrf"))
    }
}

/// A local path to go to after a form (never another site).
pub fn local(next: Option<&str>) -> &str {
    // Browsers drop tabs and line breaks from URLs and read `\` as `/`: `/\t/x.example`
    // would become `//x.example`, another site.
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.chars()
                    .all(|c| !c.is_control() && !c.is_whitespace() && c != '\\') =>
        {
            n
        }
        _ => "/",
    }
}

/// 303 to `to` after a change, with the change's read-your-writes token.
pub fn after_change(to: &str, consistency: Option<&str>) -> Response {
    let mut target = to.to_owned();
    if let Some(c) = consistency {
        let sep = if to.contains('?') { '&' } else { '?' };
        target.push(sep);
        target.push_str(&serde_urlencoded::to_string([("c", c)]).unwrap_or_default());
    }
    (StatusCode::SEE_OTHER, [(header::LOCATION, target)]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local(Some("/console/items")), "/console/items");
        assert_eq!(local(Some("//evil.example/")), "/");
        assert_eq!(local(Some("https://evil.example/")), "/");
        assert_eq!(local(Some("/\\evil.example")), "/");
        assert_eq!(local(Some("/\t/evil.example")), "/");
        assert_eq!(local(Some("/\n/evil.example")), "/");
        assert_eq!(local(Some("/ /evil.example")), "/");
        assert_eq!(
            local(Some("/console/items?state=assigned")),
            "/console/items?state=assigned"
        );
        assert_eq!(local(None), "/");
    }

    #[test]
    fn forms_keep_repeated_fields_and_never_a_password() {
        let f = Form::parse(&Bytes::from_static(
            b"a=1&deputy=x&deputy=y&password=secret&title=+t+",
        ));
        assert_eq!(f.all("deputy"), ["x", "y"]);
        assert_eq!(f.text("title").as_deref(), Some("t"));
        assert_eq!(f.state().value("password"), "");
        assert_eq!(f.state().value("a"), "1");
    }
}
