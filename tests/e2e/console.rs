//! The web console in a real browser: headless Chromium driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`, which `.ci/run` installs), against `banli serve --demo`.
//! Each role signs in; the dashboard shows the source report's figures; the office registers
//! and assigns an item, the agency signs for and dispatches it, its handler communicates and
//! replies, the deputy rates the reply; refusals (a wrong password, a form without its CSRF
//! token, another agency's item, a page changed since it was opened, an expired session) are
//! answered as the issue says. Screenshots go to `target/screenshots/`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::serve::{free_port, http, http_with, serve_fresh, serve_with, terminate};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One request to chromedriver, which keeps connections open: the answer is read by its
/// Content-Length. (status, body); status 0 when nothing answers.
fn wd(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let body = body.unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut r = BufReader::new(s);
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return (0, String::new());
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut out = vec![0u8; length];
    if r.read_exact(&mut out).is_err() {
        return (0, String::new());
    }
    (status, String::from_utf8_lossy(&out).into_owned())
}

/// A chromedriver process and one browser session.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

impl Browser {
    fn start() -> Browser {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let start = Instant::now();
        while wd(port, "GET", "/status", None).0 != 200 {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not answer"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
        };
        let v = b.call(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000", "--lang=zh-CN"]
            }}}})),
        );
        b.session = v["sessionId"].as_str().expect("a session").to_owned();
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string());
        let (status, text) = wd(self.port, method, path, body.as_deref());
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, 200, "WebDriver {method} {path}: {text}");
        v["value"].clone()
    }

    fn s(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    fn go(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({ "url": url })));
    }

    fn url(&self) -> String {
        self.call("GET", &self.s("/url"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn find(&self, css: &str) -> String {
        let body = json!({"using": "css selector", "value": css}).to_string();
        let (_, text) = wd(self.port, "POST", &self.s("/element"), Some(&body));
        let v = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)["value"].clone();
        match v[ELEMENT].as_str() {
            Some(e) => e.to_owned(),
            None => panic!("no `{css}` on {}: {v}\n{}", self.url(), self.page_text()),
        }
    }

    fn try_find(&self, css: &str) -> Option<String> {
        let body = json!({"using": "css selector", "value": css}).to_string();
        let (_, text) = wd(self.port, "POST", &self.s("/element"), Some(&body));
        serde_json::from_str::<Value>(&text).ok()?["value"][ELEMENT]
            .as_str()
            .map(str::to_owned)
    }

    fn count(&self, css: &str) -> usize {
        self.call(
            "POST",
            &self.s("/elements"),
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .map_or(0, Vec::len)
    }

    fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.call("GET", &self.s(&format!("/element/{e}/text")), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn page_text(&self) -> String {
        let body = json!({"using": "css selector", "value": "body"}).to_string();
        let (_, text) = wd(self.port, "POST", &self.s("/element"), Some(&body));
        let v = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
        let Some(e) = v["value"][ELEMENT].as_str() else {
            return format!("(no page: {text})");
        };
        self.call("GET", &self.s(&format!("/element/{e}/text")), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn fill(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/clear")),
            Some(json!({})),
        );
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/value")),
            Some(json!({ "text": text })),
        );
    }

    /// Sets a field's value directly (a date input's typing order depends on the locale).
    fn set(&self, css: &str, value: &str) {
        let e = self.find(css);
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": "arguments[0].value = arguments[1];", "args": [{ELEMENT: e}, value]})),
        );
    }

    /// Every `id` on the page is used once (labels and error messages point at their own
    /// field).
    fn assert_unique_ids(&self) {
        let ids = self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": "return Array.from(document.querySelectorAll('[id]')).map(e => e.id);", "args": []})),
        );
        let ids: Vec<&str> = ids
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mut seen = std::collections::HashSet::new();
        for id in &ids {
            assert!(
                seen.insert(*id),
                "the id `{id}` is used twice on {}",
                self.url()
            );
        }
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/click")),
            Some(json!({})),
        );
    }

    /// Clicks what navigates (a form's button, a link) and waits for the next page: the
    /// document element is a new one once it has loaded.
    fn submit(&self, css: &str) {
        let before = self.find("html");
        self.click(css);
        let start = Instant::now();
        while self.try_find("html").is_none_or(|now| now == before) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "`{css}` led nowhere"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn cookie(&self, name: &str) -> Option<String> {
        let v = self.call("GET", &self.s("/cookie"), None);
        v.as_array()?
            .iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["value"].as_str().map(str::to_owned))
    }

    fn delete_cookie(&self, name: &str) {
        self.call("DELETE", &self.s(&format!("/cookie/{name}")), None);
    }

    fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            &self.s("/window/rect"),
            Some(json!({"width": width, "height": height})),
        );
    }

    fn screenshot(&self, name: &str) {
        let v = self.call("GET", &self.s("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("a PNG");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
    }

    /// Reloads `url` until `css` is on the page (what another service learns from events),
    /// at most 60 s (a loaded test machine).
    fn until(&self, url: &str, css: &str) {
        let start = Instant::now();
        loop {
            self.go(url);
            if self.count(css) > 0 {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{css} never appeared on {url}:\n{}",
                self.page_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = wd(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn browser_available() -> bool {
    let there =
        std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !there {
        assert!(
            std::env::var("BANLI_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "chromium and chromedriver are required (apt-get install chromium chromium-driver; .ci/run installs them)"
        );
        eprintln!("skipping: chromium and chromium-driver are not installed");
    }
    there
}

/// `banli users create`: the one-time set-password token it prints.
fn create_user(dir: &std::path::Path, name: &str, role: &str, binding: &[&str]) -> String {
    let out = Command::new(crate::banli_binary())
        .args(["users", "create", "--username", name, "--role", role])
        .args(binding)
        .current_dir(dir)
        .env_remove("BANLI_DATABASE_URL")
        .env_remove("BANLI_DATA_DIR")
        .output()
        .expect("banli users create runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .expect("the token")
        .trim()
        .to_owned()
}

const PASSWORD: &str = "a long enough password";

fn set_password(b: &Browser, base: &str, token: &str) {
    b.go(&format!("{base}/set-password?token={token}"));
    b.fill("#f-password", PASSWORD);
    b.fill("#f-confirm", PASSWORD);
    b.submit("form.card button");
    let url = b.url();
    assert!(
        url.contains("/login?done=password"),
        "{url}: {}",
        b.page_text()
    );
}

fn login(b: &Browser, base: &str, name: &str, password: &str) {
    b.go(&format!("{base}/login"));
    b.fill("#f-username", name);
    b.fill("#f-password", password);
    b.submit("form.card button");
}

fn logout(b: &Browser) {
    b.submit("form.inline button");
    assert!(b.url().ends_with("/login"), "{}", b.url());
}

fn office_get(port: u16, key: &str, path: &str) -> Value {
    let (status, body) = http(port, "GET", path, Some(key), None);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

#[test]
fn the_console_in_a_real_browser() {
    if !browser_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("banli-console-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let s = serve_with(&dir, &["--demo"]);
    let base = format!("http://127.0.0.1:{}", s.http);
    let office = std::fs::read_to_string(dir.join("data/assigning-office.key"))
        .expect("the key")
        .trim()
        .to_owned();
    // The demo loads through the API on its own; the department's 2020 figures are complete
    // once every reply is rated.
    let start = Instant::now();
    let department = loop {
        let agencies = office_get(s.http, &office, "/v1/agencies");
        let d = agencies
            .as_array()
            .and_then(|l| l.iter().find(|a| a["name"] == "湖南省工业和信息化厅"))
            .and_then(|a| a["id"].as_str().map(str::to_owned));
        if let Some(d) = d {
            let (_, body) = http(
                s.http,
                "GET",
                &format!("/v1/metrics?agency_id={d}&year=2020"),
                Some(&office),
                None,
            );
            let m: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let sat = &m["rates"]["satisfaction_rate_broad"];
            if m["counts"]["lead"].as_u64().unwrap_or(0) + m["counts"]["co"].as_u64().unwrap_or(0)
                == 101
                && sat["denominator"].as_u64() == Some(101)
                && sat["numerator"] == sat["denominator"]
            {
                break d;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the demo did not load"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let finance = office_get(s.http, &office, "/v1/agencies")
        .as_array()
        .and_then(|l| l.iter().find(|a| a["name"] == "湖南省财政厅"))
        .and_then(|a| a["id"].as_str().map(str::to_owned))
        .expect("the finance department");
    let deputies = office_get(s.http, &office, "/v1/deputies");
    let deputy = deputies[0]["id"].as_str().expect("a deputy").to_owned();
    let deputy_name = deputies[0]["name"].as_str().expect("a name").to_owned();

    // Accounts: the first start's office account, and one per role made with the command line.
    let office_token = std::fs::read_to_string(dir.join("data/assigning-office.user"))
        .expect("the office account's file")
        .lines()
        .last()
        .expect("its token")
        .trim()
        .to_owned();
    let tokens = [
        ("office", office_token),
        (
            "gxt-office",
            create_user(
                &dir,
                "gxt-office",
                "agency_admin",
                &["--agency", "湖南省工业和信息化厅"],
            ),
        ),
        (
            "gxt-handler",
            create_user(
                &dir,
                "gxt-handler",
                "handler",
                &["--agency", "湖南省工业和信息化厅"],
            ),
        ),
        (
            "gxt-leader",
            create_user(
                &dir,
                "gxt-leader",
                "leader",
                &[
                    "--agency",
                    "湖南省工业和信息化厅",
                    "--position",
                    "authorized_leader",
                ],
            ),
        ),
        (
            "czt-office",
            create_user(
                &dir,
                "czt-office",
                "agency_admin",
                &["--agency", "湖南省财政厅"],
            ),
        ),
        (
            "kjt-office",
            create_user(
                &dir,
                "kjt-office",
                "agency_admin",
                &["--agency", "湖南省科学技术厅"],
            ),
        ),
        (
            "deputy",
            create_user(&dir, "deputy", "deputy", &["--deputy", &deputy]),
        ),
        ("inspector", create_user(&dir, "inspector", "auditor", &[])),
    ];
    let b = Browser::start();
    for (_, token) in &tokens {
        set_password(&b, &base, token);
    }

    // A wrong password is refused, and says so.
    login(&b, &base, "office", "not the password at all");
    assert!(b.url().contains("/login"), "{}", b.url());
    assert!(
        b.text(".problem").contains("用户名或密码错误"),
        "{}",
        b.page_text()
    );
    b.screenshot("login-refused");

    // The office: the dashboard shows the source report's figures, from the data.
    login(&b, &base, "office", PASSWORD);
    assert!(b.url().ends_with("/console/office"), "{}", b.url());
    // Every agency, this year: the demo's items are of 2018–2020, its longer-term measure's
    // notice is open.
    assert_eq!(b.text("#total"), "0", "{}", b.page_text());
    assert!(b.count(".problem") == 0, "{}", b.page_text());
    b.go(&format!(
        "{base}/console/office?agency_id={department}&year=2020"
    ));
    assert_eq!(b.text("#total"), "101", "{}", b.page_text());
    for rate in [
        "reply_rate",
        "on_time_rate",
        "communication_rate",
        "satisfaction_rate_broad",
    ] {
        assert_eq!(
            b.text(&format!("tr[data-rate={rate}] td.num")),
            "100.0%",
            "{rate}"
        );
    }
    assert!(b.count("svg.chart") >= 2, "the charts are drawn");
    b.assert_unique_ids();
    b.screenshot("office-dashboard");
    b.go(&format!(
        "{base}/console/lang/en?next=/console/office?agency_id={department}%26year=2020"
    ));
    assert!(
        b.page_text().contains("Handling figures"),
        "{}",
        b.page_text()
    );
    b.go(&format!("{base}/console/lang/zh?next=/console/office"));

    // The office registers and assigns a suggestion.
    b.go(&format!("{base}/console/register"));
    b.fill("#f-number", "2026-0001");
    b.fill("#f-title", "关于加强中小企业数字化转型的建议");
    b.fill("#f-body", "建议加大对中小企业数字化转型的支持力度。");
    b.fill("#f-category", "工业和信息化");
    b.click(&format!("#f-lead_deputy_id option[value='{deputy}']"));
    b.submit("form.card button");
    let item_url = b.url();
    assert!(item_url.contains("/console/items/"), "{}", b.page_text());
    let item_path = item_url
        .trim_start_matches(&base)
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    let item_id = item_path.rsplit('/').next().unwrap_or_default().to_owned();
    assert!(b.page_text().contains("已立案"), "{}", b.page_text());
    b.click(&format!("#f-lead option[value='{department}']"));
    b.click(&format!("input[name=co][value='{finance}']"));
    b.submit("#act-assign button");
    assert!(b.page_text().contains("已交办"), "{}", b.page_text());
    b.assert_unique_ids();
    // A supervision notice to the department on it (answered below from the agency's inbox).
    b.fill("#f-notice-body", "请于本周内完成办前沟通。");
    b.set("#f-notice-response_due", "2030-01-31");
    b.submit("#act-notice button");
    assert!(b.count(".problem") == 0, "{}", b.page_text());
    // The ledger, the annual report and the stage plan of the demo department.
    b.go(&format!("{base}/console/ledger?agency_id={department}"));
    assert!(
        b.page_text().contains("加快工业互联网平台建设"),
        "{}",
        b.page_text()
    );
    b.go(&format!(
        "{base}/console/report?agency_id={department}&year=2020"
    ));
    assert!(
        b.text("article.report").contains("101"),
        "{}",
        b.page_text()
    );
    b.screenshot("annual-report");
    b.go(&format!(
        "{base}/console/stages?agency_id={department}&year=2020"
    ));
    assert!(b.page_text().contains("按期答复"), "{}", b.page_text());
    logout(&b);

    // The co-handling agency signs for it, dispatches it and sends its opinion (会办意见).
    login(&b, &base, "czt-office", PASSWORD);
    b.until(
        &format!("{base}/console/inbox"),
        &format!("a[href='{item_path}']"),
    );
    b.submit(&format!("a[href='{item_path}']"));
    b.submit("form[action*='/sign-for'] button");
    b.fill("#f-handler", "赵丽");
    b.fill("#f-responsible_leader", "钱副厅长");
    b.fill("#f-plan", "提供资金政策依据。");
    b.submit("form[action*='/dispatch'] button");
    b.assert_unique_ids();
    b.fill("#f-opinion-document_number", "会办〔2026〕1号");
    b.fill(
        "#f-opinion-body",
        "经研究，本建议所提事项由主办单位牵头办理，我厅已提供相关政策依据。",
    );
    b.fill("#f-opinion-signer_name", "分管负责人");
    b.fill(
        "#f-opinion-no_measure_reason",
        "所提事项不在我厅职责范围内。",
    );
    b.submit("form[action*='/opinion'] button");
    assert!(b.count(".problem") == 0, "{}", b.page_text());
    assert!(
        b.page_text().contains("会办〔2026〕1号"),
        "{}",
        b.page_text()
    );
    logout(&b);

    // Another agency's people get the not-found page for it, as for an unknown item.
    login(&b, &base, "kjt-office", PASSWORD);
    b.go(&format!("{base}{item_path}"));
    let foreign = b.page_text();
    b.go(&format!(
        "{base}/console/items/00000000-0000-7000-8000-000000000000"
    ));
    assert_eq!(foreign, b.page_text());
    assert!(foreign.contains("找不到该页面"), "{foreign}");
    logout(&b);

    let lead = office_get(s.http, &office, &format!("/v1/suggestions/{item_id}"))["assignments"]
        .as_array()
        .and_then(|l| l.iter().find(|a| a["role"] == "lead"))
        .and_then(|a| a["id"].as_str())
        .expect("the lead assignment")
        .to_owned();
    // The agency's office signs for it and dispatches it (it is in their inbox once the
    // coordination service has the assignment).
    login(&b, &base, "gxt-office", PASSWORD);
    b.until(
        &format!("{base}/console/inbox"),
        &format!("a[href='{item_path}']"),
    );
    b.screenshot("agency-inbox");
    b.assert_unique_ids();
    let notice = office_get(
        s.http,
        &office,
        &format!("/v1/followup/notices?agency_id={department}&state=issued"),
    )["items"]
        .as_array()
        .and_then(|l| {
            l.iter().find(|n| {
                n["suggestions"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|x| x == item_id.as_str()))
            })
        })
        .and_then(|n| n["id"].as_str().map(str::to_owned))
        .expect("the office's notice");
    b.submit(&format!(
        "#notice-{notice} form[action$='/acknowledge'] button"
    ));
    b.fill(
        &format!("#notice-{notice} textarea"),
        "已安排专人负责，本周内完成办前沟通。",
    );
    b.submit(&format!("#notice-{notice} form[action$='/answer'] button"));
    assert!(b.count(".problem") == 0, "{}", b.page_text());
    b.submit(&format!("a[href='{item_path}']"));
    b.submit("form[action*='/sign-for'] button");
    assert!(
        b.count("form[action*='/dispatch']") == 1,
        "{}",
        b.page_text()
    );
    b.fill("#f-handler", "李明");
    b.fill("#f-responsible_leader", "王副厅长");
    b.fill("#f-plan", "办前沟通，办中协调，办后回访。");
    b.submit("form[action*='/dispatch'] button");
    assert!(b.page_text().contains("办理中"), "{}", b.page_text());
    // It asks for more time; the office decides.
    b.set(
        &format!("#act-extension-request-{lead} input[type=date]"),
        "2027-05-31",
    );
    b.fill(
        &format!("#act-extension-request-{lead} textarea"),
        "需开展专题调研。",
    );
    b.submit(&format!("#act-extension-request-{lead} button"));
    assert!(b.count(".problem") == 0, "{}", b.page_text());
    logout(&b);
    login(&b, &base, "office", PASSWORD);
    b.go(&format!("{base}{item_path}"));
    assert!(
        b.page_text().contains("需开展专题调研"),
        "{}",
        b.page_text()
    );
    b.submit(&format!("#act-extension-decision-{lead} button"));
    assert!(b.count(".problem") == 0, "{}", b.page_text());
    assert!(
        b.page_text().contains("2027-05-31"),
        "the new due date: {}",
        b.page_text()
    );
    // A stage plan for the department's year, set from its form.
    b.go(&format!(
        "{base}/console/stages?agency_id={department}&year=2027"
    ));
    b.set("#f-starts_on", "2027-02-01");
    b.fill("#f-name0", "集中办理");
    b.set("#f-ends_on0", "2027-05-31");
    b.click("input[name=targets0][value=all_replied]");
    b.fill("#f-rounds0", "2027-04-15");
    b.submit("form.card button");
    assert!(b.count(".problem") == 0, "{}", b.page_text());
    assert!(b.text("figure").contains("集中办理"), "{}", b.page_text());
    logout(&b);

    // The handler records the communication.
    login(&b, &base, "gxt-handler", PASSWORD);
    b.go(&format!("{base}{item_path}"));
    b.fill("#f-summary", "上门听取代表意见。");
    b.submit("form[action*='/communication'] button");
    assert!(
        b.page_text().contains("上门听取代表意见"),
        "{}",
        b.page_text()
    );

    // Without an approval chain a handler does not sign the reply off: the API's refusal,
    // shown with the form.
    b.go(&format!("{base}{item_path}"));
    b.fill("#f-document_number", "答复〔2026〕1号");
    b.fill("#f-body", "经研究，已将该建议列入今年工作要点并组织实施。");
    b.fill("#f-signer_name", "厅长");
    b.submit("form[action*='/reply'] button");
    assert!(
        b.text(".problem").contains("您无权进行此操作"),
        "{}",
        b.page_text()
    );

    // With the department's approval chain (内部审批: its authorized leader), the handler drafts
    // the reply. A page changed since it was opened: the 412 as "changed since you opened it".
    let (status, body) = http(
        s.http,
        "PUT",
        &format!("/v1/agencies/{department}/approval-chain"),
        Some(&office),
        Some(&json!({"steps": ["authorized_leader"]}).to_string()),
    );
    assert_eq!(status, 200, "{body}");
    b.go(&format!("{base}{item_path}"));
    let key = {
        let (status, body) = http(
            s.http,
            "POST",
            "/v1/admin/keys",
            Some(&office),
            Some(
                &json!({"role": "handler", "agency_id": department, "label": "console test"})
                    .to_string(),
            ),
        );
        assert_eq!(status, 201, "{body}");
        serde_json::from_str::<Value>(&body).expect("JSON")["token"]
            .as_str()
            .expect("token")
            .to_owned()
    };
    let (status, body) = http(
        s.http,
        "POST",
        &format!("/v1/suggestions/{item_id}/communications"),
        Some(&key),
        Some(&json!({"assignment_id": lead, "phase": "during", "method": "phone", "face_to_face": false, "deputy_ids": [deputy], "summary": "电话沟通进展"}).to_string()),
    );
    assert_eq!(status, 200, "{body}");
    b.fill("#f-document_number", "答复〔2026〕1号");
    b.fill("#f-body", "经研究，已将该建议列入今年工作要点并组织实施。");
    b.fill("#f-signer_name", "厅长");
    b.submit("form[action*='/reply'] button");
    assert!(
        b.text(".problem").contains("自您打开此页面后"),
        "{}",
        b.page_text()
    );
    // Reloaded: a reply without its text (only blanks: the browser's own check of a required
    // field lets them through, the API's does not) is refused, what was typed is kept, and the
    // same form, corrected, goes through: a draft waiting for the leader's step.
    b.go(&format!("{base}{item_path}"));
    b.fill("#f-document_number", "答复〔2026〕1号");
    b.fill("#f-body", "   ");
    b.fill("#f-signer_name", "厅长");
    b.submit("form[action*='/reply'] button");
    assert!(
        b.count(".problem, p.error") > 0,
        "an empty reply is refused: {}",
        b.page_text()
    );
    let kept = b.find("#f-document_number");
    let kept = b.call(
        "GET",
        &b.s(&format!("/element/{kept}/property/value")),
        None,
    );
    assert_eq!(kept, "答复〔2026〕1号", "what was typed is kept");
    b.screenshot("reply-refused");
    b.fill("#f-body", "经研究，已将该建议列入今年工作要点并组织实施。");
    b.submit("form[action*='/reply'] button");
    assert!(b.page_text().contains("内部审批中"), "{}", b.page_text());
    logout(&b);

    // The leader (an authorized leader) approves the step: the reply is issued.
    login(&b, &base, "gxt-leader", PASSWORD);
    b.go(&format!("{base}{item_path}"));
    assert!(
        b.text("section.action details")
            .contains("列入今年工作要点"),
        "the draft is shown: {}",
        b.page_text()
    );
    b.submit("form[action*='/approval'] button");
    assert!(b.page_text().contains("已答复"), "{}", b.page_text());
    b.screenshot("item-replied");

    // A form posted without its CSRF token changes nothing.
    let cookie = b.cookie("banli_session").expect("a session cookie");
    let (status, _, page) = http_with(
        s.http,
        "POST",
        &format!("{item_path}/communication?assignment={lead}"),
        None,
        Some("phase=before&method=visit&summary=forged"),
        &[("Cookie", &format!("banli_session={cookie}"))],
    );
    assert_eq!(status, 403, "{page}");
    let before =
        office_get(s.http, &office, &format!("/v1/suggestions/{item_id}"))["communications"]
            .as_array()
            .map_or(0, Vec::len);
    assert_eq!(before, 2, "the refused form recorded nothing");

    // An expired session: to the login, and back to the page after it.
    b.delete_cookie("banli_session");
    b.go(&format!("{base}{item_path}"));
    assert!(b.url().contains("/login?next="), "{}", b.url());
    b.fill("#f-username", "gxt-leader");
    b.fill("#f-password", PASSWORD);
    b.submit("form.card button");
    assert!(b.url().ends_with(&item_path), "{}", b.url());
    logout(&b);

    // The deputy, on a phone: the reply to rate, rated.
    b.resize(390, 844);
    login(&b, &base, "deputy", PASSWORD);
    assert!(b.url().ends_with("/console/mine"), "{}", b.url());
    assert!(b.page_text().contains("请您评价"), "{}", b.page_text());
    b.screenshot("deputy-phone");
    b.go(&format!("{base}{item_path}"));
    assert!(b.page_text().contains(&deputy_name));
    b.click("#f-level option[value='satisfied']");
    b.fill("#f-comment", "答复及时，措施具体。");
    b.submit("#act-feedback button");
    assert!(
        b.page_text().contains("答复及时，措施具体"),
        "{}",
        b.page_text()
    );
    // A satisfied rating of a class-A reply closes the item.
    assert!(b.page_text().contains("已办结"), "{}", b.page_text());
    logout(&b);
    b.resize(1280, 1000);

    // The inspector: the signed checkpoint and an entry.
    login(&b, &base, "inspector", PASSWORD);
    assert!(b.url().ends_with("/console/audit"), "{}", b.url());
    assert!(
        b.text("pre.checkpoint").contains("banli"),
        "{}",
        b.page_text()
    );
    b.go(&format!("{base}/console/audit?index=0"));
    assert!(
        b.text("pre.entry").contains("\"actor\""),
        "{}",
        b.page_text()
    );
    b.screenshot("inspector-audit");
    let cookie = b.cookie("banli_session").expect("a session cookie");
    let (status, _, bundle) = http_with(
        s.http,
        "GET",
        "/console/audit/proof?index=0",
        None,
        None,
        &[("Cookie", &format!("banli_session={cookie}"))],
    );
    assert_eq!(status, 200, "{bundle}");
    let (status, key) = http(s.http, "GET", "/v1/audit/public-key", None, None);
    assert_eq!(status, 200, "{key}");
    std::fs::write(dir.join("proof.json"), &bundle).expect("written");
    std::fs::write(dir.join("audit.pub"), &key).expect("written");
    let out = Command::new(crate::banli_binary())
        .args([
            "audit",
            "verify-proof",
            "--public-key",
            "audit.pub",
            "--bundle",
            "proof.json",
        ])
        .current_dir(&dir)
        .output()
        .expect("banli audit verify-proof runs");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok: leaf 0"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A bundle whose entry was altered does not verify.
    let mut forged: Value = serde_json::from_str(&bundle).expect("JSON");
    forged["leaf_input"] = json!("eyJ4IjoxfQ==");
    std::fs::write(dir.join("forged.json"), forged.to_string()).expect("written");
    let out = Command::new(crate::banli_binary())
        .args([
            "audit",
            "verify-proof",
            "--public-key",
            "audit.pub",
            "--bundle",
            "forged.json",
        ])
        .current_dir(&dir)
        .output()
        .expect("banli audit verify-proof runs");
    assert!(!out.status.success(), "a forged entry must not verify");

    drop(b);
    let _ = terminate(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `Set-Cookie` value from a response head.
fn cookie_of(head: &str, name: &str) -> Option<String> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| v.trim().split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

#[test]
fn logins_are_limited_per_client_address_behind_a_trusted_proxy() {
    // The test client is the proxy (127.0.0.1); X-Forwarded-For names the clients.
    let (dir, s, _) = serve_fresh("console-limit", "trusted_proxies = [\"127.0.0.1\"]\n", &[]);
    let (status, head, page) = http_with(s.http, "GET", "/login", None, None, &[]);
    assert_eq!(status, 200, "{page}");
    let form_cookie = cookie_of(&head, "banli_form").expect("the form cookie");
    let at = page
        .find("name=\"_form\" value=\"")
        .expect("the form token")
        + 20;
    let form = &page[at..at + 64];
    let cookie = format!("banli_form={form_cookie}");
    let body = format!("_form={form}&username=nobody&password=wrong+password+here&next=%2F");
    let attempt = |client: &str| {
        let (status, _, page) = http_with(
            s.http,
            "POST",
            "/login",
            None,
            Some(&body),
            &[("Cookie", &cookie), ("X-Forwarded-For", client)],
        );
        (status, page)
    };
    for n in 0..20 {
        let (status, page) = attempt("198.51.100.1");
        assert_eq!(status, 401, "attempt {n}: {page}");
    }
    let (status, page) = attempt("198.51.100.1");
    assert_eq!(status, 429, "the 21st attempt from one client: {page}");
    assert!(page.contains("来自此地址的登录尝试过多"), "{page}");
    // Another client behind the same proxy is not held back; one that forges an address
    // further left is still the nearest one the proxy saw.
    assert_eq!(attempt("198.51.100.2").0, 401);
    assert_eq!(attempt("203.0.113.7, 198.51.100.1").0, 429);
    // A form posted without its token is refused before anything is counted or checked.
    let (status, _, _) = http_with(
        s.http,
        "POST",
        "/login",
        None,
        Some("username=nobody&password=x"),
        &[("Cookie", &cookie), ("X-Forwarded-For", "198.51.100.3")],
    );
    assert_eq!(status, 403);
    // A form's address opened as a page: a page that says so, not an empty answer.
    let (status, _, page) = http_with(s.http, "GET", "/logout", None, None, &[]);
    assert_eq!(status, 405);
    assert!(page.contains("此地址用于提交表单"), "{page}");
    let _ = terminate(s);
    let _ = std::fs::remove_dir_all(&dir);
}
