//! Signing in and out, setting a password with a one-time link, the language switch.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use banli_api::server::PeerAddr;
use maud::html;
use serde::Deserialize;

use super::{Form, local, start_page};
use crate::Console;
use crate::api::Refusal;
use crate::i18n::Lang;
use crate::page::{self, FormState, Kind, field, form_problem, respond, shell};
use crate::session::{self, FORM_COOKIE, LANG_COOKIE, SESSION_COOKIE, Viewer};

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
    done: Option<String>,
}

/// The form cookie of a pre-login form: the one the browser has, or a new one to set.
fn form_token(headers: &HeaderMap) -> (String, Option<String>) {
    match session::cookie(headers, FORM_COOKIE) {
        Some(t) if t.len() == 64 => (t.to_owned(), None),
        _ => {
            let t = session::new_form_token();
            (t.clone(), Some(t))
        }
    }
}

fn with_form_cookie(c: &Console, res: Response, new: Option<String>) -> Response {
    let mut res = res;
    if let Some(t) = new
        && let Ok(v) = session::set_cookie(FORM_COOKIE, &t, None, c.secure()).parse()
    {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

fn login_form(
    lang: Lang,
    token: &str,
    next: &str,
    state: &FormState,
    note: Option<&str>,
) -> maud::Markup {
    html! {
        @if let Some(n) = note { p.note role="status" { (n) } }
        (form_problem(lang, state, &[], "/login"))
        form.card method="post" action="/login" {
            input type="hidden" name="_form" value=(token);
            input type="hidden" name="next" value=(next);
            (field(state, "username", lang.t("用户名", "Username"), Kind::Text, true))
            (field(state, "password", lang.t("密码", "Password"), Kind::Password, true))
            button type="submit" { (lang.t("登录", "Sign in")) }
        }
        p.hint { (lang.t("首次使用请打开管理员给您的设置密码链接。", "First time here? Open the set-password link your administrator gave you.")) }
    }
}

pub async fn login_page(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let lang = session::lang_of(&headers);
    let next = local(q.next.as_deref()).to_owned();
    if let Some(secret) = session::cookie(&headers, SESSION_COOKIE)
        && let Ok(Some(s)) = c.app().session(secret).await
    {
        let to = if next == "/" {
            start_page(s.principal.role.as_str())
        } else {
            &next
        };
        return Redirect::to(to).into_response();
    }
    let (token, new) = form_token(&headers);
    let note = if q.done.is_some() {
        Some(lang.t("密码已设置，请登录。", "Your password is set; sign in."))
    } else if q.expired.is_some() {
        Some(lang.t("请先登录（会话已结束或尚未登录），登录后将回到原页面。", "Please sign in (your session ended or you were not signed in); you will return to the page after."))
    } else {
        None
    };
    let page = shell(
        lang,
        None,
        lang.t("登录", "Sign in"),
        login_form(lang, &token, &next, &FormState::default(), note),
    );
    with_form_cookie(&c, respond(StatusCode::OK, page), new)
}

pub async fn login(
    State(c): State<Console>,
    headers: HeaderMap,
    peer: Option<Extension<PeerAddr>>,
    body: Bytes,
) -> Response {
    let lang = session::lang_of(&headers);
    let form = Form::parse(&body);
    let expected = session::cookie(&headers, FORM_COOKIE);
    if expected.is_none() || !session::csrf_ok(expected.unwrap_or_default(), form.get("_form")) {
        tracing::warn!(outcome = "no form token", "login refused");
        return page::forbidden_form(lang);
    }
    let next = local(form.get("next")).to_owned();
    let token = expected.unwrap_or_default().to_owned();
    let show = |status: StatusCode, r: Refusal, form: &Form| {
        let mut state = form.state();
        state.refusal = Some(r);
        respond(
            status,
            shell(
                lang,
                None,
                lang.t("登录", "Sign in"),
                login_form(lang, &token, &next, &state, None),
            ),
        )
    };
    let client = peer
        .map(|Extension(PeerAddr(a))| session::client_ip(a.ip(), &headers, c.trusted_proxies()));
    if let Some(ip) = client
        && let Err(wait) = c.limiter().attempt(ip)
    {
        tracing::warn!(address = %ip, outcome = "address limited", "login refused");
        return show(
            StatusCode::TOO_MANY_REQUESTS,
            Refusal {
                status: 429,
                code: "rate_limited".into(),
                detail: format!(
                    "{} ({} s)",
                    lang.t(
                        "来自此地址的登录尝试过多，请稍后再试",
                        "Too many sign-in attempts from this address; try again in"
                    ),
                    wait.as_secs().max(1)
                ),
            },
            &form,
        );
    }
    let username = form.text("username").unwrap_or_default();
    let password = form.get("password").unwrap_or_default();
    let user = match c.app().check_login(&username, password).await {
        Ok(u) => u,
        Err(e) => {
            let status = e.code.http_status();
            let detail = match status {
                401 => lang
                    .t(
                        "用户名或密码错误。",
                        "The username or the password is wrong.",
                    )
                    .to_owned(),
                _ => e.detail,
            };
            return show(
                StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED),
                Refusal {
                    status,
                    code: e.code.as_str().to_owned(),
                    detail,
                },
                &form,
            );
        }
    };
    let secret = match c.app().start_session(&user).await {
        Ok(s) => s,
        Err(_) => return page::unavailable(lang),
    };
    let to = if next == "/" {
        start_page(user.role.as_str()).to_owned()
    } else {
        next
    };
    let mut res = Redirect::to(&to).into_response();
    let lifetime = banli_suggestions::app::SESSION_LIFETIME.whole_seconds();
    for cookie in [
        session::set_cookie(SESSION_COOKIE, &secret, Some(lifetime), c.secure()),
        session::set_cookie(FORM_COOKIE, "", Some(0), c.secure()),
    ] {
        if let Ok(v) = cookie.parse() {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

pub async fn logout(
    State(c): State<Console>,
    headers: HeaderMap,
    viewer: Viewer,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !form.csrf_ok(&viewer) {
        return page::forbidden_form(viewer.lang);
    }
    if let Some(secret) = session::cookie(&headers, SESSION_COOKIE) {
        let _ = c.app().end_session(secret).await;
    }
    tracing::info!(user_id = %viewer.signed_in.user.id, username = %viewer.signed_in.user.username, "signed out");
    let mut res = Redirect::to("/login").into_response();
    if let Ok(v) = session::set_cookie(SESSION_COOKIE, "", Some(0), c.secure()).parse() {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

fn set_password_form(lang: Lang, form_token: &str, token: &str, state: &FormState) -> maud::Markup {
    html! {
        (form_problem(lang, state, &["password", "confirm"], ""))
        form.card method="post" action="/set-password" {
            input type="hidden" name="_form" value=(form_token);
            input type="hidden" name="token" value=(token);
            (field(state, "password", lang.t("新密码（至少10个字符）", "New password (at least 10 characters)"), Kind::Password, true))
            (field(state, "confirm", lang.t("再次输入新密码", "The new password again"), Kind::Password, true))
            button type="submit" { (lang.t("设置密码", "Set the password")) }
        }
    }
}

pub async fn set_password_page(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    let lang = session::lang_of(&headers);
    let (form, new) = form_token(&headers);
    let page = shell(
        lang,
        None,
        lang.t("设置密码", "Set your password"),
        set_password_form(
            lang,
            &form,
            q.token.as_deref().unwrap_or_default(),
            &FormState::default(),
        ),
    );
    with_form_cookie(&c, respond(StatusCode::OK, page), new)
}

pub async fn set_password(State(c): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let lang = session::lang_of(&headers);
    let form = Form::parse(&body);
    let Some(expected) = session::cookie(&headers, FORM_COOKIE) else {
        return page::forbidden_form(lang);
    };
    if !session::csrf_ok(expected, form.get("_form")) {
        return page::forbidden_form(lang);
    }
    let token = form.get("token").unwrap_or_default();
    let password = form.get("password").unwrap_or_default();
    let refusal = if password != form.get("confirm").unwrap_or_default() {
        Refusal {
            status: 422,
            code: "invalid_argument".into(),
            detail: format!(
                "confirm: {}",
                lang.t("两次输入的密码不一致", "the two passwords differ")
            ),
        }
    } else {
        match c.app().set_password(token, password).await {
            Ok(_) => return Redirect::to("/login?done=password").into_response(),
            Err(e) => Refusal {
                status: e.code.http_status(),
                code: e.code.as_str().to_owned(),
                detail: e.detail,
            },
        }
    };
    let mut state = form.state();
    state.refusal = Some(refusal);
    respond(
        StatusCode::UNPROCESSABLE_ENTITY,
        shell(
            lang,
            None,
            lang.t("设置密码", "Set your password"),
            set_password_form(lang, expected, token, &state),
        ),
    )
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Switches the language (a cookie for a year) and returns to the page.
pub async fn switch_lang(
    State(c): State<Console>,
    Path(lang): Path<String>,
    Query(q): Query<NextQuery>,
) -> Response {
    let value = if lang == "en" { "en" } else { "zh" };
    let mut res = Redirect::to(local(q.next.as_deref())).into_response();
    if let Ok(v) = session::set_cookie(LANG_COOKIE, value, Some(365 * 86_400), c.secure()).parse() {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}
