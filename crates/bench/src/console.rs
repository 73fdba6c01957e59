//! The web console's figures on the demo data (`banli serve --demo`):
//!
//! - the office's dashboard (`GET /console/office` for the source report's department and year,
//!   which itself calls the API for the metrics of every agency, the overdue deadlines, the open
//!   notices and the stage plan), p50/p99 of the time from request to the last byte over a
//!   keep-alive loopback connection, beside `GET /v1/metrics` for the same agency and year timed
//!   the same way, interleaved, in the same run;
//! - the weight of each main page (HTML + CSS + JS; the console has no script) and any request
//!   it would make elsewhere (an absolute or protocol-relative URL in `src`, `href` or
//!   `action`; the pages' content policy forbids them too).
//!
//! Every answer that is not 200 is counted and printed as a refusal.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hyper::Method;

use crate::client::Http;
use crate::server::{Server, banli_binary};

const DEPARTMENT: &str = "湖南省工业和信息化厅";
const PASSWORD: &str = "bench password 2026";

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// The value of cookie `name` set by a response.
fn set_cookie(headers: &hyper::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// Sets the password of the account whose one-time token is `token` and signs in: the session
/// cookie.
async fn sign_in(http: &Http, username: &str, token: &str) -> Result<String> {
    let form = |pairs: &[(&str, &str)]| serde_urlencoded::to_string(pairs).unwrap_or_default();
    let (_, h, body) = http
        .raw(
            Method::GET,
            &format!("/set-password?token={token}"),
            &[],
            None,
        )
        .await?;
    let cookie = set_cookie(&h, "banli_form").context("the form cookie")?;
    let f = hidden(&String::from_utf8_lossy(&body), "_form").context("the form token")?;
    let (status, _, body) = http
        .raw(
            Method::POST,
            "/set-password",
            &[("cookie", &format!("banli_form={cookie}"))],
            Some((
                "application/x-www-form-urlencoded",
                form(&[
                    ("_form", &f),
                    ("token", token),
                    ("password", PASSWORD),
                    ("confirm", PASSWORD),
                ]),
            )),
        )
        .await?;
    if status != 303 {
        bail!(
            "setting the password: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    let (status, h, body) = http
        .raw(
            Method::POST,
            "/login",
            &[("cookie", &format!("banli_form={cookie}"))],
            Some((
                "application/x-www-form-urlencoded",
                form(&[
                    ("_form", &f),
                    ("username", username),
                    ("password", PASSWORD),
                    ("next", "/"),
                ]),
            )),
        )
        .await?;
    if status != 303 {
        bail!("signing in: {status} {}", String::from_utf8_lossy(&body));
    }
    set_cookie(&h, "banli_session").context("the session cookie")
}

/// `banli users create` beside the running server: the one-time token.
fn create_user(server: &Server, name: &str, role: &str, binding: &[&str]) -> Result<String> {
    let out = std::process::Command::new(banli_binary()?)
        .args(["users", "create", "--username", name, "--role", role])
        .args(binding)
        .arg("--data-dir")
        .arg(server.dir().join("data"))
        .args(["--database-url", &server.database_url])
        .output()?;
    if !out.status.success() {
        bail!(
            "banli users create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned())
}

/// Absolute or protocol-relative URLs the page would fetch or post to.
fn external(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["src=\"", "href=\"", "action=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            let url = &rest[..rest.find('"').unwrap_or(0)];
            if url.starts_with("http:") || url.starts_with("https:") || url.starts_with("//") {
                found.push(url.to_owned());
            }
        }
    }
    found
}

pub async fn run(requests: usize) -> Result<()> {
    println!(
        "\n== the web console on the demo data: {requests} dashboard requests beside {requests} GET /v1/metrics"
    );
    let server = Server::sqlite_with(&["--demo"]).await?;
    let http = Http::new(server.http_url.clone());
    let office = server.office_key.clone();
    // The demo loads through the API on its own; wait until the department's year is complete.
    let started = Instant::now();
    let department = loop {
        let (_, h, body) = http
            .raw(
                Method::GET,
                "/v1/agencies",
                &[("authorization", &format!("Bearer {office}"))],
                None,
            )
            .await?;
        let _ = h;
        let list: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if let Some(d) = list
            .as_array()
            .and_then(|l| l.iter().find(|a| a["name"] == DEPARTMENT))
            .and_then(|a| a["id"].as_str())
        {
            let (status, _, m) = http
                .raw(
                    Method::GET,
                    &format!("/v1/metrics?agency_id={d}&year=2020"),
                    &[("authorization", &format!("Bearer {office}"))],
                    None,
                )
                .await?;
            let m: serde_json::Value = serde_json::from_slice(&m).unwrap_or_default();
            let sat = &m["rates"]["satisfaction_rate_broad"];
            if status == 200
                && sat["denominator"].as_u64() == Some(101)
                && sat["numerator"] == sat["denominator"]
            {
                break d.to_owned();
            }
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("the demo did not load within 5 minutes");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("  demo loaded in {:.1} s", started.elapsed().as_secs_f64());
    let token = std::fs::read_to_string(server.dir().join("data/assigning-office.user"))?
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let office_cookie = sign_in(&http, "office", &token).await?;
    let agency_cookie = sign_in(
        &http,
        "bench-agency",
        &create_user(
            &server,
            "bench-agency",
            "agency_admin",
            &["--agency", DEPARTMENT],
        )?,
    )
    .await?;
    let auditor_cookie = sign_in(
        &http,
        "bench-inspector",
        &create_user(&server, "bench-inspector", "auditor", &[])?,
    )
    .await?;

    let dashboard = format!("/console/office?agency_id={department}&year=2020");
    let metrics = format!("/v1/metrics?agency_id={department}&year=2020");
    let office_auth = format!("Bearer {office}");
    let office_session = format!("banli_session={office_cookie}");
    // Warm the connection and the caches.
    for _ in 0..20 {
        http.raw(
            Method::GET,
            &dashboard,
            &[("cookie", &office_session)],
            None,
        )
        .await?;
        http.raw(
            Method::GET,
            &metrics,
            &[("authorization", &office_auth)],
            None,
        )
        .await?;
    }
    let (mut page, mut api) = (Vec::new(), Vec::new());
    let mut refused = 0u64;
    let run = Instant::now();
    for i in 0..requests * 2 {
        let t = Instant::now();
        let (status, _, _) = if i % 2 == 0 {
            http.raw(
                Method::GET,
                &dashboard,
                &[("cookie", &office_session)],
                None,
            )
            .await?
        } else {
            http.raw(
                Method::GET,
                &metrics,
                &[("authorization", &office_auth)],
                None,
            )
            .await?
        };
        let ms = t.elapsed().as_secs_f64() * 1e3;
        match (status, i % 2) {
            (200, 0) => page.push(ms),
            (200, _) => api.push(ms),
            _ => refused += 1,
        }
    }
    println!(
        "  {} requests in {:.1} s, refused {refused}",
        requests * 2,
        run.elapsed().as_secs_f64()
    );
    if page.is_empty() || api.is_empty() {
        bail!("no answers to time");
    }
    println!(
        "    dashboard (/console/office)   n={:<5} p50 {:>6.2} ms   p99 {:>6.2} ms",
        page.len(),
        pct(&mut page, 0.5),
        pct(&mut page, 0.99)
    );
    println!(
        "    GET /v1/metrics (baseline)    n={:<5} p50 {:>6.2} ms   p99 {:>6.2} ms",
        api.len(),
        pct(&mut api, 0.5),
        pct(&mut api, 0.99)
    );
    println!(
        "  dashboard server time p99 {:.2} ms (goal ≤ 50 ms); baseline GET /v1/metrics for one agency p99 {:.2} ms",
        pct(&mut page, 0.99),
        pct(&mut api, 0.99)
    );

    // Page weights: each main page's HTML, plus the stylesheet it loads (no script).
    let (_, _, css) = http
        .raw(Method::GET, "/console/assets/console.css", &[], None)
        .await?;
    let item = {
        let (_, _, body) = http
            .raw(
                Method::GET,
                "/v1/suggestions?page_size=1",
                &[("authorization", &office_auth)],
                None,
            )
            .await?;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        v["items"][0]["id"].as_str().unwrap_or_default().to_owned()
    };
    let agency_session = format!("banli_session={agency_cookie}");
    let auditor_session = format!("banli_session={auditor_cookie}");
    let pages: Vec<(&str, String, &str)> = vec![
        ("login", "/login".into(), ""),
        ("office dashboard", dashboard.clone(), &office_session),
        ("suggestions list", "/console/items".into(), &office_session),
        (
            "one suggestion",
            format!("/console/items/{item}"),
            &office_session,
        ),
        ("register", "/console/register".into(), &office_session),
        (
            "ledger",
            format!("/console/ledger?agency_id={department}"),
            &office_session,
        ),
        (
            "annual report",
            format!("/console/report?agency_id={department}&year=2020"),
            &office_session,
        ),
        (
            "stage plan",
            format!("/console/stages?agency_id={department}&year=2020"),
            &office_session,
        ),
        ("agency inbox", "/console/inbox".into(), &agency_session),
        ("agency feed", "/console/feed".into(), &agency_session),
        (
            "inspector",
            "/console/audit?index=0".into(),
            &auditor_session,
        ),
    ];
    let mut heaviest = 0usize;
    let mut outside = 0usize;
    println!("  page weight (HTML + CSS {} B; no script):", css.len());
    for (name, path, cookie) in &pages {
        let headers: Vec<(&str, &str)> = if cookie.is_empty() {
            vec![]
        } else {
            vec![("cookie", cookie)]
        };
        let (status, h, body) = http.raw(Method::GET, path, &headers, None).await?;
        if status != 200 {
            refused += 1;
            println!("    {name:<18} refused: {status}");
            continue;
        }
        let html = String::from_utf8_lossy(&body);
        let ext = external(&html);
        outside += ext.len();
        let csp = h
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.contains("default-src 'none'"));
        let total = body.len() + css.len();
        heaviest = heaviest.max(total);
        println!(
            "    {name:<18} {:>7} B HTML  {:>7} B in all  external requests {}  content policy {}",
            body.len(),
            total,
            ext.len(),
            if csp { "none allowed" } else { "MISSING" }
        );
    }
    println!(
        "  heaviest page {:.1} KB (goal ≤ 200 KB); external requests {outside} (goal 0); refused {refused}",
        heaviest as f64 / 1024.0
    );
    server.stop().await
}
