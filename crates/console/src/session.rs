//! Who is looking: the session cookie (HttpOnly, SameSite=Strict, Secure under TLS), the CSRF
//! token every form carries, the language, and the per-address limit on login attempts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Redirect, Response};
use banli_api::Principal;
use banli_suggestions::app::SignedIn;

use crate::Console;
use crate::i18n::Lang;

/// The session cookie: the session's secret (the store keeps only its SHA-256).
pub const SESSION_COOKIE: &str = "banli_session";
/// The cookie of a form shown before signing in (login, set password): the same random value
/// is in the form (double submit), so another site cannot post it.
pub const FORM_COOKIE: &str = "banli_form";
/// The language cookie (`zh` or `en`).
pub const LANG_COOKIE: &str = "banli_lang";

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, path `/`, Secure when served over TLS;
/// `max_age` in seconds (0 removes it; `None`: until the browser closes).
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(s) = max_age {
        c.push_str(&format!("; Max-Age={s}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// The CSRF token of a session: derived from its secret (so nothing more is stored), and not
/// the secret itself — a page's HTML never holds what the cookie holds.
pub fn csrf_token(session_secret: &str) -> String {
    let hash = banli_api::token::secret_hash(&format!("banli-console-csrf\0{session_secret}"));
    hash[..40].to_owned()
}

/// Whether a form's `_csrf` matches the expected token (constant time).
pub fn csrf_ok(expected: &str, given: Option<&str>) -> bool {
    given.is_some_and(|g| banli_api::token::same(expected, g))
}

/// A new random value for a pre-login form (two v4 UUIDs: 244 bits).
pub fn new_form_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The language of the request: the cookie's, else Chinese.
pub fn lang_of(headers: &HeaderMap) -> Lang {
    match cookie(headers, LANG_COOKIE) {
        Some("en") => Lang::En,
        _ => Lang::Zh,
    }
}

/// A signed-in person looking at a page: their account, the principal the API sees, the
/// form token, their language and the page they asked for.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub signed_in: SignedIn,
    pub csrf: String,
    pub lang: Lang,
    /// The path and query asked for.
    pub here: String,
}

impl Viewer {
    pub fn principal(&self) -> &Principal {
        &self.signed_in.principal
    }
}

/// Not signed in (no session, or it expired): to the login page, and back here after it.
#[derive(Debug)]
pub struct SignIn(String);

impl IntoResponse for SignIn {
    fn into_response(self) -> Response {
        let next = serde_urlencoded::to_string([("next", self.0.as_str())]).unwrap_or_default();
        Redirect::to(&format!("/login?{next}&expired=1")).into_response()
    }
}

impl FromRequestParts<Console> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        let here = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
        // After a form posted with an expired session, back to the page the form was on.
        let back = if parts.method == Method::POST {
            here.rsplit_once('/')
                .map_or_else(|| "/".to_owned(), |(p, _)| p.to_owned())
        } else {
            here.clone()
        };
        let Some(secret) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(SignIn(back).into_response());
        };
        let signed_in = match console.app().session(secret).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(SignIn(back).into_response()),
            Err(e) => {
                tracing::warn!(error = %e.detail, "session check failed");
                return Err(crate::page::unavailable(lang_of(&parts.headers)));
            }
        };
        tracing::Span::current().record(
            "key_id",
            tracing::field::display(signed_in.principal.key_id),
        );
        Ok(Viewer {
            csrf: csrf_token(secret),
            lang: lang_of(&parts.headers),
            signed_in,
            here,
        })
    }
}

/// The client's address: the connection's, or — when that is a trusted proxy — the nearest
/// address in `X-Forwarded-For` that is not a trusted proxy (the entries further left were
/// written by the client and prove nothing).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|a| !trusted.contains(a))
        .unwrap_or(peer)
}

/// Login attempts per client address: at most [`LoginLimiter::MAX`] in
/// [`LoginLimiter::WINDOW`], whatever the usernames (the per-account lockout stops guessing
/// one password; this stops trying many accounts from one place).
#[derive(Debug, Default)]
pub struct LoginLimiter {
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl LoginLimiter {
    pub const MAX: u32 = 20;
    pub const WINDOW: Duration = Duration::from_secs(300);

    /// Counts an attempt from `addr`; `Err(retry after)` when over the limit.
    pub fn attempt(&self, addr: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > 10_000 {
            seen.retain(|_, (start, _)| now.duration_since(*start) < Self::WINDOW);
        }
        let entry = seen.entry(addr).or_insert((now, 0));
        if now.duration_since(entry.0) >= Self::WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= Self::MAX {
            return Err(Self::WINDOW.saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_from_every_header() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; banli_lang=en".parse().expect("valid"));
        h.append(header::COOKIE, "banli_session=abc".parse().expect("valid"));
        assert_eq!(cookie(&h, "banli_session"), Some("abc"));
        assert_eq!(lang_of(&h), Lang::En);
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn the_csrf_token_is_not_the_secret_and_is_checked() {
        let t = csrf_token("secret");
        assert_ne!(t, "secret");
        assert!(csrf_ok(&t, Some(&t)));
        assert!(!csrf_ok(&t, Some("x")));
        assert!(!csrf_ok(&t, None));
        assert_ne!(t, csrf_token("other"));
    }

    #[test]
    fn one_address_is_limited_and_others_are_not() {
        let l = LoginLimiter::default();
        let a: IpAddr = "192.0.2.1".parse().expect("valid");
        for _ in 0..LoginLimiter::MAX {
            assert!(l.attempt(a).is_ok());
        }
        assert!(l.attempt(a).is_err());
        assert!(l.attempt("192.0.2.2".parse().expect("valid")).is_ok());
    }

    #[test]
    fn the_client_behind_a_trusted_proxy_is_the_nearest_untrusted_address() {
        let proxy: IpAddr = "10.0.0.1".parse().expect("valid");
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7, 10.0.0.2"
                .parse()
                .expect("valid"),
        );
        let trusted = [proxy, "10.0.0.2".parse().expect("valid")];
        assert_eq!(
            client_ip(proxy, &h, &trusted),
            "198.51.100.7".parse::<IpAddr>().expect("valid"),
            "what the client wrote further left is not believed"
        );
        let stranger: IpAddr = "192.0.2.5".parse().expect("valid");
        assert_eq!(client_ip(stranger, &h, &trusted), stranger, "not a proxy");
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
    }

    #[test]
    fn cookies_are_secure_under_tls() {
        assert!(set_cookie("a", "b", None, true).contains("; Secure"));
        let c = set_cookie("a", "b", Some(0), false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"));
    }
}
