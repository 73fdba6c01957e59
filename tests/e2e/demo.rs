//! `banli serve --demo`: the source report's department loaded through the API on a simulated
//! clock; its metrics and ledger then show the report's figures, computed from the events. A
//! second start with --demo loads nothing more.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::serve::{http, serve_with, terminate};

fn get(port: u16, path: &str, key: &str) -> (u16, Value) {
    let (status, body) = http(port, "GET", path, Some(key), None);
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// What the server logged (warnings and errors).
fn log(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
}

fn rate(m: &Value, name: &str) -> (u64, u64) {
    let r = &m["rates"][name];
    (
        r["numerator"].as_u64().unwrap_or(u64::MAX),
        r["denominator"].as_u64().unwrap_or(u64::MAX),
    )
}

#[test]
fn the_demo_shows_the_reports_figures_from_the_data() {
    let dir = std::env::temp_dir().join(format!("banli-demo-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let s = serve_with(&dir, &["--demo"]);
    let office = std::fs::read_to_string(dir.join("data/assigning-office.key"))
        .expect("the first start writes the key")
        .trim()
        .to_owned();
    // The loader starts once the server listens; the agencies come first.
    let start = Instant::now();
    let department = loop {
        let (status, v) = get(s.http, "/v1/agencies", &office);
        assert_eq!(status, 200, "{v}");
        let found = v["items"]
            .as_array()
            .or(v.as_array())
            .and_then(|l| l.iter().find(|a| a["name"] == "湖南省工业和信息化厅"))
            .and_then(|a| a["id"].as_str().map(str::to_owned));
        if let Some(d) = found {
            break d;
        }
        assert!(!log(&dir).contains("loading failed"), "{}", log(&dir));
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the demo never created the department: {v}\n{}",
            log(&dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // The ledger fills last: 24 B-class items (4 of 2018, 9 of 2019, 11 of 2020), all
    // converted to A, and one class-A item of 2020 with a longer-term measure still open.
    let start = Instant::now();
    let ledger = loop {
        let (status, v) = get(
            s.http,
            &format!("/v1/ledger?agency_id={department}"),
            &office,
        );
        // 404 until the department's first assignment reaches the follow-up service.
        assert!(status == 200 || status == 404, "{v}");
        if v["items"].as_array().is_some_and(|i| {
            // The supplementary reply and the conversion are separate events: wait for both.
            i.len() == 25
                && i.iter().all(|x| x["class"] == "A")
                && i.iter().filter(|x| x["converted_at"].is_string()).count() == 24
        }) {
            break v;
        }
        assert!(!log(&dir).contains("loading failed"), "{}", log(&dir));
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "the demo never finished loading: {v}\n{}",
            log(&dir)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // The loader is done when the server's clock is back on the system's: "today" in the
    // metrics is no longer a day of the simulated years (the ledger can fill before it ends).
    let start = Instant::now();
    loop {
        let (status, v) = get(
            s.http,
            &format!("/v1/metrics?agency_id={department}"),
            &office,
        );
        assert_eq!(status, 200, "{v}");
        if v["as_of"].as_str().is_some_and(|d| d > "2020-12-31") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "the demo loader never returned to the system clock: {v}\n{}",
            log(&dir)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let all_items = ledger["items"].as_array().expect("items");
    let (items, open): (Vec<&Value>, Vec<&Value>) = all_items
        .iter()
        .partition(|i| i["converted_at"].is_string());
    let of_year = |y: i64| {
        items
            .iter()
            .filter(|i| i["year"].as_i64() == Some(y))
            .count()
    };
    assert_eq!(
        (of_year(2018), of_year(2019), of_year(2020)),
        (4, 9, 11),
        "{ledger}"
    );
    // The longer-term measure promised on a class-A reply of 2020: reported on in 2020, dated
    // mid-2021, never converted — overdue today, and the follow-up service said so.
    assert_eq!(open.len(), 1, "{ledger}");
    let open = open[0];
    assert_eq!(
        (open["year"].as_i64(), &open["first_class"]),
        (Some(2020), &Value::from("A")),
        "{open}"
    );
    let measure = &open["commitments"][0];
    assert_eq!(measure["state"], "open", "{open}");
    assert_eq!(measure["target_date"], "2021-06-30", "{open}");
    assert_eq!(
        measure["progress"].as_array().map(Vec::len),
        Some(2),
        "{open}"
    );
    let open_sid = open["suggestion_id"].as_str().expect("id");
    let start = Instant::now();
    let overdue = loop {
        let (status, v) = get(
            s.http,
            &format!("/v1/followup/notices?agency_id={department}&limit=500"),
            &office,
        );
        assert_eq!(status, 200, "{v}");
        let found = v["items"].as_array().and_then(|l| {
            l.iter()
                .find(|n| {
                    n["trigger"] == "overdue"
                        && n["suggestions"]
                            .as_array()
                            .is_some_and(|s| s.iter().any(|x| x == open_sid))
                })
                .cloned()
        });
        if let Some(n) = found {
            break n;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the overdue commitment never raised a notice: {v}\n{}",
            log(&dir)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(overdue["issued_on"], "2021-07-01", "{overdue}");
    assert!(
        overdue["body"]
            .as_str()
            .is_some_and(|b| b.contains("建成省级工业互联网公共服务平台")),
        "{overdue}"
    );
    for i in &items {
        assert_eq!(i["first_class"], "B", "{i}");
        assert!(
            i["converted_at"]
                .as_str()
                .is_some_and(|d| d.starts_with("2020-")),
            "converted in 2020: {i}"
        );
        let commitments = i["commitments"].as_array().expect("commitments");
        assert!(!commitments.is_empty(), "{i}");
        for c in commitments {
            assert_eq!(c["state"], "converted", "{c}");
            assert!(
                c["progress"].as_array().is_some_and(|p| !p.is_empty()),
                "{c}"
            );
            assert!(
                !c["evidence"].as_str().unwrap_or_default().is_empty(),
                "{c}"
            );
        }
    }
    let (status, csv) = http(
        s.http,
        "GET",
        &format!("/v1/ledger?agency_id={department}&year=2018&format=csv"),
        Some(&office),
        None,
    );
    assert_eq!(status, 200, "{csv}");
    // A header and one line per commitment: the department's two on each item, and the
    // co-handler's own measure on the two co-handled ones.
    assert_eq!(csv.lines().count(), 1 + 4 * 2 + 2, "{csv}");
    // The co-handler stated a measure of its own (its commitment, converted by it), not a
    // stapled "agree with the lead" letter; the deputy heard of every step in the inbox,
    // progress in recess included.
    let first = items
        .iter()
        .find(|i| i["year"].as_i64() == Some(2018))
        .expect("a 2018 item");
    let sid = first["suggestion_id"].as_str().expect("id");
    let (status, case) = get(s.http, &format!("/v1/coordination/cases/{sid}"), &office);
    assert_eq!(status, 200, "{case}");
    for o in case["opinions"].as_array().expect("opinions") {
        assert_eq!(o["flagged"], false, "{o}");
        assert_eq!(o["measures"].as_array().map(Vec::len), Some(1), "{o}");
    }
    let (_, item) = get(s.http, &format!("/v1/suggestions/{sid}"), &office);
    let deputy = item["lead_deputy_id"].as_str().expect("deputy");
    assert_eq!(item["closure"]["state"], "confirmed", "{item}");
    let (status, inbox) = get(
        s.http,
        &format!("/v1/inbox?deputy_id={deputy}&limit=500"),
        &office,
    );
    assert_eq!(status, 200, "{inbox}");
    let kinds: Vec<&str> = inbox["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|m| m["suggestion_id"] == sid)
        .filter_map(|m| m["kind"].as_str())
        .collect();
    for kind in ["assigned", "replied", "progress", "closed"] {
        assert!(kinds.contains(&kind), "{kind} not in {kinds:?}");
    }
    assert!(
        kinds.iter().filter(|k| **k == "progress").count() >= 8,
        "a word every quarter on each commitment: {kinds:?}"
    );
    // The report's 9 June symposium: six agencies met on the financing item of 2019 (会商).
    let symposium = items
        .iter()
        .find(|i| i["year"].as_i64() == Some(2019) && i["title"] == "破解民营企业融资难题")
        .expect("the 2019 financing item");
    let sid = symposium["suggestion_id"].as_str().expect("id");
    let (_, case) = get(s.http, &format!("/v1/coordination/cases/{sid}"), &office);
    let meetings = case["consultations"].as_array().expect("consultations");
    assert_eq!(meetings.len(), 1, "{case}");
    assert_eq!(meetings[0]["on"], "2020-06-09", "{case}");
    assert_eq!(
        meetings[0]["agency_ids"].as_array().map(Vec::len),
        Some(6),
        "{case}"
    );
    // The financing items of 2018–2020 followed as one topic (共性问题).
    let (status, topics) = get(s.http, "/v1/topics", &office);
    assert_eq!(status, 200, "{topics}");
    let topic = &topics["items"][0];
    assert_eq!(topic["title"], "中小企业融资难", "{topics}");
    let years: std::collections::BTreeSet<&str> = topic["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["received_on"].as_str().map(|d| &d[..4]))
        .collect();
    assert_eq!(
        years.into_iter().collect::<Vec<_>>(),
        ["2018", "2019", "2020"],
        "{topic}"
    );

    // 2020: 101 assignments, 34 lead and 67 co; every rate of the report 100%.
    let (status, m) = get(
        s.http,
        &format!("/v1/metrics?agency_id={department}&year=2020"),
        &office,
    );
    assert_eq!(status, 200, "{m}");
    assert_eq!(
        (m["counts"]["lead"].as_u64(), m["counts"]["co"].as_u64()),
        (Some(34), Some(67)),
        "{m}"
    );
    assert_eq!(rate(&m, "reply_rate"), (101, 101), "{m}");
    assert_eq!(rate(&m, "on_time_rate"), (101, 101), "{m}");
    assert_eq!(rate(&m, "communication_rate"), (34, 34), "{m}");
    assert_eq!(rate(&m, "meeting_rate"), (34, 34), "{m}");
    assert_eq!(rate(&m, "satisfaction_rate_broad"), (101, 101), "{m}");
    assert_eq!(m["rates"]["reply_rate"]["value"].as_f64(), Some(1.0));
    // Not every item is solved at once: in June 20 of the 34 were class A (11 B, 3 C); by the
    // year's end the B-class ones are done and converted.
    assert_eq!(rate(&m, "resolution_rate"), (31, 34), "{m}");
    let (_, june) = get(
        s.http,
        &format!("/v1/metrics?agency_id={department}&year=2020&as_of=2020-06-30"),
        &office,
    );
    assert_eq!(rate(&june, "resolution_rate"), (20, 34), "{june}");
    assert_eq!(rate(&june, "solved_or_planned_rate"), (31, 34), "{june}");
    // Every year: the 24 B-class items of 2018–2020 all converted.
    let (status, all) = get(
        s.http,
        &format!("/v1/metrics?agency_id={department}"),
        &office,
    );
    assert_eq!(status, 200, "{all}");
    assert_eq!(rate(&all, "b_to_a_conversion"), (24, 24), "{all}");
    // Implementation as of today: every commitment whose date has passed was fulfilled by it,
    // but the longer-term measure.
    let (fulfilled, due) = rate(&all, "implementation_rate");
    assert!(due > 40 && fulfilled + 1 == due, "{all}");
    assert_eq!(all["counts"]["lead"].as_u64(), Some(34 + 13), "{all}");
    // Broken down by category and by delegation (分类统计): the groups add up to the whole.
    for by in ["category", "delegation"] {
        let (status, b) = get(
            s.http,
            &format!("/v1/metrics/breakdown?agency_id={department}&year=2020&by={by}"),
            &office,
        );
        assert_eq!(status, 200, "{b}");
        let groups = b["items"].as_array().expect("groups");
        assert!(groups.len() > 1, "{b}");
        let sum = |k: &str| {
            groups
                .iter()
                .map(|g| g["counts"][k].as_u64().unwrap_or(0))
                .sum::<u64>()
        };
        assert_eq!((sum("lead"), sum("co")), (34, 67), "{by}: {b}");
    }
    let (status, finance) = get(
        s.http,
        &format!("/v1/metrics?agency_id={department}&category=财政金融"),
        &office,
    );
    assert_eq!(status, 200, "{finance}");
    assert!(
        finance["counts"]["lead"].as_u64().is_some_and(|n| n > 0),
        "{finance}"
    );
    // As of the end of 2019 nothing was converted yet: the figures are dated.
    let (status, then) = get(
        s.http,
        &format!("/v1/metrics?agency_id={department}&as_of=2019-12-31"),
        &office,
    );
    assert_eq!(status, 200, "{then}");
    assert_eq!(rate(&then, "b_to_a_conversion"), (0, 13), "{then}");
    assert_eq!(then["counts"]["lead"].as_u64(), Some(13), "{then}");

    // The stage plan: three stages, two rounds each; stage 2's circular shows every reply and
    // opinion in.
    let (status, plan) = get(
        s.http,
        &format!("/v1/followup/stage-plans?agency_id={department}&year=2020"),
        &office,
    );
    assert_eq!(status, 200, "{plan}");
    let stages = plan["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 3, "{plan}");
    assert!(
        stages
            .iter()
            .all(|s| s["supervision_rounds"].as_array().map(Vec::len) == Some(2))
    );
    let (status, circular) = get(
        s.http,
        &format!("/v1/followup/stage-plans/circular?agency_id={department}&year=2020&stage=2"),
        &office,
    );
    assert_eq!(status, 200, "{circular}");
    assert_eq!(
        circular["targets"][0]["target"], "all_replied",
        "{circular}"
    );
    assert_eq!(
        (
            circular["targets"][0]["done"].as_u64(),
            circular["targets"][0]["total"].as_u64()
        ),
        (Some(101), Some(101)),
        "{circular}"
    );
    // Beside the targets, the year's rates as of the stage's end: the reply rate and the
    // implementation rate (no commitment was due by 31 May).
    assert_eq!(rate(&circular, "reply_rate"), (101, 101), "{circular}");
    assert_eq!(rate(&circular, "implementation_rate"), (0, 0), "{circular}");
    let (status, md) = http(
        s.http,
        "GET",
        &format!(
            "/v1/followup/stage-plans/circular?agency_id={department}&year=2020&stage=2&format=markdown"
        ),
        Some(&office),
        None,
    );
    assert_eq!(status, 200, "{md}");
    assert!(
        md.contains("| 办复率 reply rate | 101 | 101 | 100.0% |")
            && md.contains("| 落实率 implementation rate | 0 | 0 | — |"),
        "{md}"
    );

    // Three stages, two supervision rounds each, and a notice on each key item when it was
    // assigned: all answered.
    let (status, notices) = get(
        s.http,
        &format!("/v1/followup/notices?agency_id={department}&state=answered"),
        &office,
    );
    assert_eq!(status, 200, "{notices}");
    let answered = notices["items"].as_array().expect("notices");
    assert_eq!(answered.len(), 8, "{notices}");
    assert_eq!(
        answered
            .iter()
            .filter(|n| n["trigger"] == "key_item")
            .count(),
        2,
        "{notices}"
    );
    // The stage rounds are the department's own office's, to its divisions.
    assert_eq!(
        answered
            .iter()
            .filter(|n| n["issuer"] == department.as_str() && n["target"] == department.as_str())
            .count(),
        6,
        "{notices}"
    );

    // The annual report says what the source report says, from the same data.
    let (status, md) = http(
        s.http,
        "GET",
        &format!("/v1/reports/annual?agency_id={department}&year=2020&format=markdown"),
        Some(&office),
        None,
    );
    assert_eq!(status, 200, "{md}");
    for expected in [
        "# 湖南省工业和信息化厅 2020年人大代表建议办理工作报告",
        "共承办建议 **101** 件，其中主办 34 件、会办 67 件",
        "| 办复率 reply rate | 101 | 101 | 100.0% |",
        "| 沟通率 communication rate | 34 | 34 | 100.0% |",
        "| 满意率 satisfaction (broad) | 101 | 101 | 100.0% |",
        "主要领导领办 2 件",
        "往年B类建议 13 件，已转为A类 13 件",
        "无逾期事项，无未解决的B类建议",
        "- 落实中：2020-0103 加快工业互联网平台建设（2020年，A类；承诺事项 1 项未兑现，目标日期至 2021-06-30）",
        "收到督办通知 8 件，已书面回复 8 件（逾期回复 0 件）",
    ] {
        assert!(md.contains(expected), "`{expected}` not in:\n{md}");
    }
    let (status, report) = get(
        s.http,
        &format!("/v1/reports/annual?agency_id={department}&year=2020"),
        &office,
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["as_of"], "2020-12-31", "{report}");
    assert_eq!(
        report["key_items"].as_array().map(Vec::len),
        Some(2),
        "{report}"
    );
    let (status, _) = get(
        s.http,
        &format!("/v1/reports/annual?agency_id={department}&year=2999"),
        &office,
    );
    assert_eq!(status, 400, "a year to come");
    let (status, csv) = http(
        s.http,
        "GET",
        &format!("/v1/followup/assignments.csv?agency_id={department}&year=2020"),
        Some(&office),
        None,
    );
    assert_eq!(status, 200, "{csv}");
    assert_eq!(
        csv.lines().count(),
        1 + 101,
        "a header and the 101 assignments"
    );

    // A second start with --demo loads nothing more (the loader would create the agencies and
    // sessions again first).
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .or(v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    // Read once the loading is over (the agencies were being created at the first read).
    let (_, agencies) = get(s.http, "/v1/agencies", &office);
    let before = names(&agencies);
    assert_eq!(before.len(), 7, "the office and six agencies: {before:?}");
    assert!(terminate(s).success());
    let s = serve_with(&dir, &["--demo"]);
    std::thread::sleep(Duration::from_secs(3));
    let (_, after) = get(s.http, "/v1/agencies", &office);
    assert_eq!(names(&after), before);
    assert!(terminate(s).success());
    let _ = std::fs::remove_dir_all(&dir);
}
