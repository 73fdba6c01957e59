//! The web console (网上办理平台) for the people who do the work: the assigning office's staff,
//! the agencies' handlers, offices and leaders, the deputies and the inspectors. Server-rendered
//! HTML (maud), Chinese first with an English switch, usable on a phone and with a keyboard or a
//! screen reader, with no script at all and nothing fetched from elsewhere.
//!
//! Every page calls the platform's own REST API in-process as the signed-in person
//! ([`api`]): it shows exactly what the API shows them and every action goes through the same
//! application layer, guards and error messages — the console holds no rule of its own.
//!
//! Must never: read a service's tables, decide a domain rule, or show a page without a session.

pub mod api;
pub mod i18n;
pub mod page;
mod pages;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use banli_suggestions::app::App;

/// How the console is served.
#[derive(Debug, Clone, Default)]
pub struct ConsoleOptions {
    /// Cookies only over HTTPS (`Secure`): when banli serves TLS, or people reach it at an
    /// `https` address through a proxy.
    pub secure_cookies: bool,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// The console's state: the API it calls and the accounts it signs people in with.
#[derive(Clone)]
pub struct Console(Arc<Inner>);

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("options", &self.0.options)
            .finish_non_exhaustive()
    }
}

struct Inner {
    api: Router,
    app: App,
    options: ConsoleOptions,
    limiter: session::LoginLimiter,
}

impl Console {
    pub fn new(api: Router, app: App, options: ConsoleOptions) -> Console {
        Console(Arc::new(Inner {
            api,
            app,
            options,
            limiter: session::LoginLimiter::default(),
        }))
    }

    pub(crate) fn api(&self) -> Router {
        self.0.api.clone()
    }

    pub(crate) fn app(&self) -> &App {
        &self.0.app
    }

    pub(crate) fn secure(&self) -> bool {
        self.0.options.secure_cookies
    }

    pub(crate) fn trusted_proxies(&self) -> &[std::net::IpAddr] {
        &self.0.options.trusted_proxies
    }

    pub(crate) fn limiter(&self) -> &session::LoginLimiter {
        &self.0.limiter
    }
}

/// The console's pages in front of `api` (the finished REST surface of this process): `/`,
/// `/login`, `/logout`, `/set-password` and everything under `/console/`; any other path goes
/// to the API.
pub fn mount(api: Router, app: App, options: ConsoleOptions) -> Router {
    let console = Console::new(api.clone(), app, options);
    let pages = Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::auth::login_page).post(pages::auth::login))
        .route("/logout", post(pages::auth::logout))
        .route(
            "/set-password",
            get(pages::auth::set_password_page).post(pages::auth::set_password),
        )
        .route("/console/lang/{lang}", get(pages::auth::switch_lang))
        .route("/console/assets/console.css", get(pages::css))
        .route("/console/office", get(pages::office::dashboard))
        .route("/console/register", get(pages::office::register_page).post(pages::office::register))
        .route("/console/ledger", get(pages::office::ledger))
        .route("/console/stages", get(pages::office::stages).post(pages::office::set_stages))
        .route("/console/report", get(pages::office::report))
        .route("/console/items", get(pages::items::list))
        .route("/console/items/{id}", get(pages::items::detail))
        .route("/console/items/{id}/{action}", post(pages::items::act))
        .route("/console/inbox", get(pages::agency::inbox))
        .route("/console/notices/{id}/{action}", post(pages::agency::notice))
        .route("/console/feed", get(pages::agency::feed))
        .route("/console/mine", get(pages::deputy::mine))
        .route("/console/audit", get(pages::audit::audit))
        .route("/console/audit/proof", get(pages::audit::proof))
        .route("/console/{*rest}", get(pages::not_found).post(pages::not_found))
        .method_not_allowed_fallback(pages::method_not_allowed)
        .with_state(console)
        .layer(axum::middleware::map_response(html_headers))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            page::unavailable(i18n::Lang::Zh)
        }))
        .layer(axum::middleware::from_fn(banli_api::http::time_limit))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(
            |req: &axum::http::Request<_>| {
                tracing::info_span!("console", method = %req.method(), path = %req.uri().path(), key_id = tracing::field::Empty)
            },
        ));
    pages.fallback_service(api)
}

/// What every page answers with: not cached, not framed, no referrer leaving the page, and a
/// content policy that lets the page load only the console's own stylesheet (no script, no
/// other origin) and post forms only to itself.
async fn html_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    res
}

/// The pages' content security policy.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
