//! `banli serve --demo`: the source report's department as data, loaded once into an empty
//! store through the public API of the running services (never by writing rows), on a simulated
//! clock that walks forward from 2018 to 2020: every step of every item, the follow-up and the
//! supervision are scheduled and taken in the order of their days.
//!
//! 湖南省工业和信息化厅 handles 101 assignments in 2020 (34 as lead, 2 of them key items led by
//! the department head; 67 as co-handler), every one communicated, replied or answered on time
//! and rated satisfied; its replies as lead are 20 class A, 11 class B and 3 class C; its own
//! office supervises its divisions twice in each of three stages; the B-class items of 2018
//! (4), 2019 (9) and 2020 (11) carry commitments (and the co-handlers' own measures), are
//! followed up in recess with word to the deputies, and are converted to A in 2020 with
//! evidence, a supplementary reply and the assigning office's confirmation; one class-A reply
//! of 2020 promises a longer-term measure, dated mid-2021, that the demo never converts (as of
//! today it is overdue, and the follow-up service raises its notices). Five other agencies lead the items the
//! department co-handles. The figures the report gives then come out of the metrics and the
//! ledger, computed from these events.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::body::Body;
use axum::http::{Method, Request};
use banli_api::Clock;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use time::Date;
use time::macros::date;
use tower::ServiceExt;

/// The department of the source report.
pub const DEPARTMENT: &str = "湖南省工业和信息化厅";
const OTHERS: [&str; 5] = [
    "湖南省财政厅",
    "湖南省发展和改革委员会",
    "湖南省科学技术厅",
    "湖南省交通运输厅",
    "湖南省生态环境厅",
];
const DIVISIONS: [&str; 4] = ["中小企业处", "产业政策处", "科技与装备处", "电子信息处"];
const DEPUTIES: [(&str, &str); 12] = [
    ("张建国", "长沙市代表团"),
    ("李红梅", "株洲市代表团"),
    ("王志强", "湘潭市代表团"),
    ("陈晓东", "衡阳市代表团"),
    ("赵丽华", "岳阳市代表团"),
    ("周文斌", "常德市代表团"),
    ("吴海燕", "益阳市代表团"),
    ("郑国平", "郴州市代表团"),
    ("孙立新", "永州市代表团"),
    ("黄秀英", "怀化市代表团"),
    ("何永军", "娄底市代表团"),
    ("罗春林", "邵阳市代表团"),
];
const TOPICS: [&str; 12] = [
    "支持中小企业纾困发展",
    "推进智能轨道交通产业创新",
    "加快工业互联网平台建设",
    "破解民营企业融资难题",
    "清理拖欠民营企业账款",
    "推动制造业数字化转型",
    "扶持新材料产业集群",
    "加强工业园区节能降耗",
    "培育专精特新企业",
    "支持电子信息产业链延链补链",
    "促进传统产业技术改造",
    "完善应急物资储备体系",
];

/// The department's ledger once loaded: the B-class items of 2018 (4), 2019 (9) and 2020 (11),
/// and the 2020 class-A item with a longer-term measure.
pub const LEDGER_ITEMS: usize = 25;

/// The category (分类) the office registers an item under, by its subject.
fn category(title: &str) -> &'static str {
    if ["融资", "账款", "纾困"].iter().any(|k| title.contains(k)) {
        "财政金融"
    } else if title.contains("轨道交通") {
        "交通运输"
    } else if title.contains("节能") || title.contains("应急") {
        "资源环境与安全"
    } else {
        "工业和信息化"
    }
}

/// What the loader made.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub department_id: String,
    pub suggestions: usize,
}

/// Drives the services' REST API in process.
struct Driver {
    router: axum::Router,
    clock: Clock,
    office: String,
}

/// One suggestion to walk through its lifecycle.
struct Item<'a> {
    session: &'a str,
    number: String,
    title: String,
    deputy: &'a str,
    lead: usize,
    co: Vec<usize>,
    key_item: bool,
    /// `(assigned, contact, opinions, reply)`.
    days: [Date; 4],
    feedback: Date,
    class: &'a str,
    commitment_target: Option<Date>,
    /// A longer-term measure promised on a class-A reply, dated past the simulated years and
    /// never converted in them: open and overdue as of today.
    long_term: Option<Date>,
}

impl Driver {
    async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {key}"));
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))?;
        let res = self.router.clone().oneshot(req).await?;
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await?.to_bytes();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok((status, v))
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> Result<Value> {
        let (status, v) = self.call(Method::POST, path, key, Some(&body)).await?;
        if !(200..300).contains(&status) {
            bail!("POST {path}: {status} {v}");
        }
        Ok(v)
    }

    /// POSTs until the other service has learnt of an earlier step (a 404 or 409 changes
    /// nothing), at most 30 s.
    async fn post_eventually(&self, path: &str, key: &str, body: Value) -> Result<Value> {
        let start = Instant::now();
        loop {
            let (status, v) = self.call(Method::POST, path, key, Some(&body)).await?;
            if (200..300).contains(&status) {
                return Ok(v);
            }
            if !matches!(status, 404 | 409) || start.elapsed() > Duration::from_secs(30) {
                bail!("POST {path}: {status} {v}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn get_until(
        &self,
        path: &str,
        key: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let start = Instant::now();
        loop {
            let (status, v) = self.call(Method::GET, path, key, None).await?;
            if status == 200 && done(&v) {
                return Ok(v);
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("GET {path} never reached the expected state: {status} {v}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn day(&self, d: Date) {
        self.clock.set(Some(d));
    }
}

fn id(v: &Value) -> Result<String> {
    Ok(v["id"].as_str().context("an id in the answer")?.to_owned())
}

/// Whether the store holds any suggestion (the demo loads only into an empty one).
pub async fn store_is_empty(router: &axum::Router, office: &str) -> Result<bool> {
    let d = Driver {
        router: router.clone(),
        clock: Clock::System,
        office: office.to_owned(),
    };
    let (status, v) = d
        .call(Method::GET, "/v1/suggestions?page_size=1", &d.office, None)
        .await?;
    if status != 200 {
        bail!("listing suggestions: {status} {v}");
    }
    Ok(v["items"].as_array().is_none_or(|a| a.is_empty()))
}

/// Loads the demo. `clock` is the simulated clock every service was built with; it is left on
/// the last simulated day (the caller returns it to the system clock).
pub async fn load(router: axum::Router, clock: Clock, office: String) -> Result<Loaded> {
    let d = Driver {
        router,
        clock,
        office,
    };
    let office = d.office.clone();
    d.day(date!(2018 - 01 - 05));

    // The directory: agencies, divisions, deputies, one agency_admin key each.
    let mut agencies = Vec::new();
    for name in std::iter::once(DEPARTMENT).chain(OTHERS) {
        agencies.push(id(&d
            .post("/v1/agencies", &office, json!({ "name": name }))
            .await?)?);
    }
    let mut keys = Vec::new();
    for a in &agencies {
        let k = d
            .post(
                "/v1/admin/keys",
                &office,
                json!({"role": "agency_admin", "agency_id": a, "label": "demo"}),
            )
            .await?;
        keys.push(k["token"].as_str().context("a token")?.to_owned());
    }
    let mut divisions: Vec<Vec<String>> = Vec::new();
    for (i, a) in agencies.iter().enumerate() {
        let names: Vec<&str> = if i == 0 {
            DIVISIONS.to_vec()
        } else {
            vec!["建议提案办理处"]
        };
        let mut ds = Vec::new();
        for n in names {
            ds.push(id(&d
                .post(
                    &format!("/v1/agencies/{a}/divisions"),
                    &office,
                    json!({ "name": n }),
                )
                .await?)?);
        }
        divisions.push(ds);
    }
    let mut deputies = Vec::new();
    for (i, (name, delegation)) in DEPUTIES.iter().enumerate() {
        deputies.push(id(&d
            .post(
                "/v1/deputies",
                &office,
                json!({"name": name, "delegation": delegation, "contact": format!("+86 731 8800 {:04}", 100 + i)}),
            )
            .await?)?);
    }
    let mut sessions = Vec::new();
    for (number, opens, closes) in [
        (1, date!(2018 - 01 - 25), date!(2018 - 01 - 31)),
        (2, date!(2019 - 01 - 28), date!(2019 - 02 - 01)),
        (3, date!(2020 - 01 - 10), date!(2020 - 01 - 16)),
    ] {
        sessions.push(id(&d
            .post(
                "/v1/sessions",
                &office,
                json!({"body": "npc", "term": 13, "number": number, "name": format!("湖南省第十三届人民代表大会第{}次会议", ["一", "二", "三"][number - 1]), "opens_on": opens, "closes_on": closes}),
            )
            .await?)?);
    }

    let mut items: Vec<Item> = Vec::new();
    let title = |n: usize| TOPICS[n % TOPICS.len()].to_owned();
    // 2018 and 2019: the department's B-class items.
    for (year, count, session, days, feedback, target) in [
        (
            2018,
            4,
            &sessions[0],
            [
                date!(2018 - 02 - 26),
                date!(2018 - 03 - 08),
                date!(2018 - 03 - 20),
                date!(2018 - 05 - 18),
            ],
            date!(2018 - 06 - 15),
            date!(2020 - 06 - 30),
        ),
        (
            2019,
            9,
            &sessions[1],
            [
                date!(2019 - 02 - 25),
                date!(2019 - 03 - 07),
                date!(2019 - 03 - 19),
                date!(2019 - 05 - 17),
            ],
            date!(2019 - 06 - 14),
            date!(2020 - 08 - 31),
        ),
    ] {
        for n in 0..count {
            items.push(Item {
                session: session.as_str(),
                number: format!("{year}-{:04}", 101 + n),
                title: title(n + year as usize),
                deputy: deputies[n % deputies.len()].as_str(),
                lead: 0,
                // The first item of 2019 (融资) is co-handled by all five other agencies: they
                // meet on it on 9 June 2020 (the report's symposium); the other even ones by the
                // finance department.
                co: match (year, n) {
                    (2019, 0) => vec![1, 2, 3, 4, 5],
                    (_, n) if n % 2 == 0 => vec![1],
                    _ => vec![],
                },
                key_item: false,
                days,
                feedback,
                class: "B",
                commitment_target: Some(target),
                long_term: None,
            });
        }
    }
    // 2020: 34 led by the department (2 key items), 67 co-handled.
    let days_2020 = [
        date!(2020 - 02 - 17),
        date!(2020 - 02 - 28),
        date!(2020 - 03 - 10),
        date!(2020 - 05 - 12),
    ];
    // The department's replies in realistic proportions: 20 class A, 11 class B (their
    // commitments fulfilled by the end of the year), 3 class C.
    for n in 0..34 {
        let class = match n {
            1 | 4 | 7 | 10 | 13 | 16 | 19 | 22 | 25 | 28 | 31 => "B",
            5 | 17 | 29 => "C",
            _ => "A",
        };
        items.push(Item {
            session: sessions[2].as_str(),
            number: format!("2020-{:04}", 101 + n),
            title: title(n),
            deputy: deputies[n % deputies.len()].as_str(),
            lead: 0,
            co: if n % 3 == 0 { vec![1 + n % 5] } else { vec![] },
            key_item: n < 2,
            days: days_2020,
            feedback: date!(2020 - 06 - 05),
            class,
            commitment_target: (class == "B").then_some(date!(2020 - 11 - 30)),
            long_term: (n == 2).then_some(date!(2021 - 06 - 30)),
        });
    }
    for n in 0..67 {
        items.push(Item {
            session: sessions[2].as_str(),
            number: format!("2020-{:04}", 201 + n),
            title: title(n + 5),
            deputy: deputies[(n + 3) % deputies.len()].as_str(),
            lead: 1 + n % 5,
            co: vec![0],
            key_item: false,
            days: days_2020,
            feedback: date!(2020 - 06 - 05),
            class: "A",
            commitment_target: None,
            long_term: None,
        });
    }

    // Every step of every item, the follow-up and the supervision, in the order of their days:
    // the simulated clock only moves forward (on one day, in the order of `Step`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Step {
        Register(usize),
        SignAndDispatch(usize),
        StagePlan,
        KeyNotices,
        Contact(usize),
        Opinions(usize),
        Reply(usize),
        Feedback(usize),
        Progress(usize),
        Symposium,
        Convert(usize),
        Supplementary(usize),
        Confirm(usize),
        Round(usize),
        RoundAnswer(usize),
    }
    // The B-class ledger: word of progress every quarter (the profile's schedule), in recess
    // too, addressed to the deputy (it reaches the deputy's inbox), then conversion with
    // evidence by each commitment's owner, a supplementary class-A reply in 2020, and the
    // assigning office's confirmation.
    let follow_up = [
        (
            vec![
                date!(2018 - 08 - 15),
                date!(2018 - 11 - 15),
                date!(2019 - 02 - 15),
                date!(2019 - 05 - 15),
                date!(2019 - 08 - 15),
                date!(2019 - 11 - 15),
                date!(2020 - 02 - 14),
                date!(2020 - 05 - 15),
            ],
            date!(2020 - 06 - 30),
            date!(2020 - 07 - 10),
            2018,
        ),
        (
            vec![
                date!(2019 - 08 - 15),
                date!(2019 - 11 - 15),
                date!(2020 - 02 - 14),
                date!(2020 - 05 - 15),
                date!(2020 - 08 - 14),
            ],
            date!(2020 - 08 - 31),
            date!(2020 - 09 - 10),
            2019,
        ),
        (
            vec![date!(2020 - 08 - 14), date!(2020 - 11 - 13)],
            date!(2020 - 11 - 20),
            date!(2020 - 12 - 01),
            2020,
        ),
    ];
    // Three stages, two supervision rounds in each (the plan's rounds issue a notice only on
    // items short of the stage's targets; here every item is on target). The department's own
    // office (厅办公室, its agency_admin) sets the plan and sends its divisions a notice at each
    // round, acknowledged and answered the next day.
    let rounds = [
        date!(2020 - 03 - 02),
        date!(2020 - 03 - 23),
        date!(2020 - 05 - 20),
        date!(2020 - 05 - 28),
        date!(2020 - 07 - 15),
        date!(2020 - 09 - 01),
    ];
    let mut schedule: Vec<(Date, Step)> = Vec::new();
    for (n, it) in items.iter().enumerate() {
        schedule.extend([
            (it.days[0], Step::Register(n)),
            (
                it.days[0] + time::Duration::days(1),
                Step::SignAndDispatch(n),
            ),
            (it.days[1], Step::Contact(n)),
            (it.days[2], Step::Opinions(n)),
            (it.days[3], Step::Reply(n)),
            (it.feedback, Step::Feedback(n)),
        ]);
    }
    for (progress_days, convert_day, reply_day, year) in &follow_up {
        for n in
            (0..items.len()).filter(|n| items[*n].class == "B" && items[*n].days[0].year() == *year)
        {
            schedule.extend(progress_days.iter().map(|d| (*d, Step::Progress(n))));
            schedule.extend([
                (*convert_day, Step::Convert(n)),
                (*reply_day, Step::Supplementary(n)),
                (*reply_day + time::Duration::days(5), Step::Confirm(n)),
            ]);
        }
    }
    // The longer-term measure: word to the deputy each quarter of 2020, then nothing — its
    // date passes after the simulated years, it is never converted, and the follow-up service
    // raises the notices (overdue commitment, progress word owed) once the timers run.
    for n in (0..items.len()).filter(|n| items[*n].long_term.is_some()) {
        schedule
            .extend([date!(2020 - 08 - 14), date!(2020 - 11 - 13)].map(|d| (d, Step::Progress(n))));
    }
    schedule.extend([
        (date!(2020 - 02 - 17), Step::StagePlan),
        (date!(2020 - 02 - 19), Step::KeyNotices),
        (date!(2020 - 06 - 09), Step::Symposium),
    ]);
    for (r, day) in rounds.iter().enumerate() {
        schedule.push((*day, Step::Round(r)));
        schedule.push((*day + time::Duration::days(1), Step::RoundAnswer(r)));
    }
    schedule.sort();

    let department_key = keys[0].clone();
    let key_of = |c: &Value| -> Result<&String> {
        let owner = c["owner_agency_id"].as_str().context("the owner")?;
        let i = agencies
            .iter()
            .position(|a| a == owner)
            .context("a known owner")?;
        Ok(&keys[i])
    };
    let lead_of = |units: &[(usize, String)], lead: usize| -> Result<(usize, String)> {
        units
            .iter()
            .find(|(a, _)| *a == lead)
            .cloned()
            .context("the lead assignment")
    };
    let mut ids: Vec<String> = vec![String::new(); items.len()];
    let mut units: Vec<Vec<(usize, String)>> = vec![Vec::new(); items.len()];
    let mut opinions: Vec<Vec<String>> = vec![Vec::new(); items.len()];
    let mut round_notices: Vec<String> = vec![String::new(); rounds.len()];
    let key_items = items.iter().filter(|it| it.key_item).count();
    let mut today = date!(2018 - 01 - 05);
    for (day, step) in schedule {
        if day < today {
            bail!(
                "the demo's schedule went back from {today} to {day}: the clock moves forward only"
            );
        }
        today = day;
        d.day(day);
        match step {
            Step::Register(n) => {
                let it = &items[n];
                let s = d
                    .post(
                        "/v1/suggestions",
                        &office,
                        json!({"session_id": it.session, "number": it.number, "title": it.title, "body": format!("关于{}的建议。", it.title), "category": category(&it.title), "lead_deputy_id": it.deputy, "key_supervised": it.key_item}),
                    )
                    .await?;
                let sid = id(&s)?;
                d.post(
                    &format!("/v1/suggestions/{sid}/start-review"),
                    &office,
                    json!({}),
                )
                .await?;
                d.post(
                    &format!("/v1/suggestions/{sid}/review"),
                    &office,
                    json!({"decision": "accept"}),
                )
                .await?;
                let mut list = vec![json!({"agency_id": agencies[it.lead], "role": "lead"})];
                for c in &it.co {
                    list.push(json!({"agency_id": agencies[*c], "role": "co"}));
                }
                let assigned = d
                    .post(
                        &format!("/v1/suggestions/{sid}/assignments"),
                        &office,
                        json!({ "units": list }),
                    )
                    .await?;
                for a in assigned["assignments"].as_array().context("assignments")? {
                    let agency = a["agency_id"].as_str().context("agency")?;
                    let index = agencies
                        .iter()
                        .position(|x| x == agency)
                        .context("a known agency")?;
                    units[n].push((index, id(a)?));
                }
                ids[n] = sid;
            }
            Step::SignAndDispatch(n) => {
                let (it, sid) = (&items[n], &ids[n]);
                for (agency, aid) in &units[n] {
                    d.post_eventually(
                        &format!("/v1/coordination/assignments/{aid}/sign-for"),
                        &keys[*agency],
                        json!({}),
                    )
                    .await?;
                    let division = &divisions[*agency][n % divisions[*agency].len()];
                    let mut body = json!({"division_id": division, "handler": "经办人", "responsible_leader": "分管厅领导", "plan": "办前沟通、办中协调、办后联系"});
                    if it.key_item {
                        // 领办: the department head leads the key items; a co-handler's
                        // principal leader takes part.
                        body["leading_official"] = json!(if *agency == 0 {
                            "厅长"
                        } else {
                            "主要负责人"
                        });
                    }
                    d.post_eventually(
                        &format!("/v1/suggestions/{sid}/assignments/{aid}/dispatch"),
                        &keys[*agency],
                        body,
                    )
                    .await?;
                }
            }
            Step::StagePlan => {
                d.post(
                    "/v1/followup/stage-plans",
                    &department_key,
                    json!({"agency_id": agencies[0], "year": 2020, "starts_on": "2020-02-17", "stages": [
                        {"name": "签收与办前沟通", "ends_on": "2020-03-31", "targets": ["all_signed_for", "all_communicated"], "supervision_rounds": [rounds[0], rounds[1]]},
                        {"name": "按期答复", "ends_on": "2020-05-31", "targets": ["all_replied"], "supervision_rounds": [rounds[2], rounds[3]]},
                        {"name": "代表反馈与落实", "ends_on": "2020-09-30", "targets": ["all_feedback_in"], "supervision_rounds": [rounds[4], rounds[5]]},
                    ]}),
                )
                .await?;
            }
            Step::KeyNotices => {
                // The key items' notices (重点督办), raised when they were assigned: the
                // department names the leading official and its plan within the week.
                let key_notices = d
                    .get_until(
                        &format!(
                            "/v1/followup/notices?agency_id={}&state=issued",
                            agencies[0]
                        ),
                        &office,
                        |v| {
                            v["items"].as_array().is_some_and(|l| {
                                l.iter().filter(|n| n["trigger"] == "key_item").count() == key_items
                            })
                        },
                    )
                    .await?;
                for n in key_notices["items"].as_array().context("notices")? {
                    if n["trigger"] != "key_item" {
                        continue;
                    }
                    let nid = id(n)?;
                    d.post(
                        &format!("/v1/followup/notices/{nid}/acknowledge"),
                        &keys[0],
                        json!({}),
                    )
                    .await?;
                    d.post(
                        &format!("/v1/followup/notices/{nid}/response"),
                        &keys[0],
                        json!({"response": "由厅长领办，已制定办理方案，明确责任处室和时间节点。"}),
                    )
                    .await?;
                }
            }
            Step::Contact(n) => {
                let it = &items[n];
                let (lead_agency, lead) = lead_of(&units[n], it.lead)?;
                d.post(
                    &format!("/v1/suggestions/{}/communications", ids[n]),
                    &keys[lead_agency],
                    json!({"assignment_id": lead, "phase": "before", "method": "visit", "face_to_face": true, "deputy_ids": [it.deputy], "summary": "办前上门沟通，听取代表意见"}),
                )
                .await?;
            }
            Step::Opinions(n) => {
                let it = &items[n];
                for (agency, aid) in &units[n] {
                    if *agency == it.lead {
                        continue;
                    }
                    // Co-handling with substance: on the B-class items the co-unit states its
                    // own measure (its commitment in the ledger); on the others, why none falls
                    // within its remit.
                    let mut letter = json!({"document_number": format!("会办〔{}〕{}号", it.days[2].year(), n + 1), "signer": {"name": "分管负责人", "position": "authorized_leader"}});
                    match it.commitment_target {
                        Some(target) => {
                            letter["body"] =
                                json!("我单位负责安排专项资金，支持融资担保和贷款贴息。");
                            letter["measures"] = json!([{"measure": "安排专项资金支持融资担保和贷款贴息", "responsible": "金融处", "target_date": target}]);
                        }
                        None => {
                            letter["body"] = json!(
                                "经研究，本建议所提事项由主办单位牵头办理，我单位已提供相关数据和政策依据。"
                            );
                            letter["no_measure_reason"] = json!(
                                "所提事项不在我单位职责范围内，已向主办单位提供数据和政策依据。"
                            );
                        }
                    }
                    let case = d
                        .post_eventually(
                            &format!("/v1/coordination/assignments/{aid}/opinions"),
                            &keys[*agency],
                            letter,
                        )
                        .await?;
                    let mine = case["opinions"]
                        .as_array()
                        .and_then(|o| o.iter().find(|x| x["assignment_id"] == aid.as_str()))
                        .context("the opinion in the case")?;
                    opinions[n].push(id(mine)?);
                }
            }
            Step::Reply(n) => {
                let it = &items[n];
                let (lead_agency, lead) = lead_of(&units[n], it.lead)?;
                let mut body = json!({"assignment_id": lead, "document_number": format!("答复〔{}〕{}号", it.days[3].year(), n + 1), "body": "经认真研究，答复如下。", "class": it.class, "signer": {"name": "厅长", "position": "principal_head"}, "opinion_ids": opinions[n]});
                let ds = &divisions[lead_agency];
                if let Some(target) = it.commitment_target {
                    body["commitments"] = json!([
                        {"measure": "制定专项支持政策并组织实施", "division_id": ds[0], "target_date": target},
                        {"measure": "安排专项资金予以支持", "division_id": ds[1 % ds.len()], "target_date": target},
                    ]);
                }
                if let Some(target) = it.long_term {
                    body["commitments"] = json!([
                        {"measure": "建成省级工业互联网公共服务平台并投入运行", "division_id": ds[2 % ds.len()], "target_date": target},
                    ]);
                }
                d.post_eventually(
                    &format!("/v1/suggestions/{}/replies", ids[n]),
                    &keys[lead_agency],
                    body,
                )
                .await?;
            }
            Step::Feedback(n) => {
                d.post(
                    &format!("/v1/suggestions/{}/feedback", ids[n]),
                    &office,
                    json!({"deputy_id": items[n].deputy, "level": "satisfied", "handling": "satisfied", "result": "satisfied", "comment": "满意"}),
                )
                .await?;
            }
            Step::Progress(n) | Step::Convert(n) => {
                let s = d
                    .get_until(&format!("/v1/suggestions/{}", ids[n]), &office, |_| true)
                    .await?;
                for c in s["commitments"].as_array().context("commitments")? {
                    let cid = id(c)?;
                    let (path, body) = if let Step::Progress(_) = step {
                        (
                            "progress",
                            json!({"note": format!("{day}：按计划推进，阶段性工作已完成。"), "notify_deputy": true}),
                        )
                    } else {
                        (
                            "convert",
                            json!({"evidence": "政策文件已印发，专项资金已拨付到位。"}),
                        )
                    };
                    d.post(
                        &format!("/v1/suggestions/{}/commitments/{cid}/{path}", ids[n]),
                        key_of(c)?,
                        body,
                    )
                    .await?;
                }
            }
            Step::Symposium => {
                // 会商: the six agencies' symposium on the 2019 financing item (in follow-up).
                let n = (0..items.len())
                    .find(|n| items[*n].co.len() == 5)
                    .context("the item the six agencies handle")?;
                let (_, lead) = lead_of(&units[n], 0)?;
                let others: Vec<&String> = units[n]
                    .iter()
                    .filter(|(a, _)| *a != 0)
                    .map(|(a, _)| &agencies[*a])
                    .collect();
                d.post_eventually(
                    &format!("/v1/coordination/assignments/{lead}/consultations"),
                    &department_key,
                    json!({"agency_ids": others, "attendees": ["省工业和信息化厅 中小企业处处长", "省财政厅 金融处处长", "省发展和改革委员会 财金处处长", "省科学技术厅 资源配置处处长", "省交通运输厅 财务处处长", "省生态环境厅 规划财务处处长"], "subject": "破解民营企业融资难题座谈会", "minutes": "六家单位分别通报职责范围内措施的落实进度，明确资金拨付和政策出台的时间节点，由主办单位汇总后向代表通报。"}),
                )
                .await?;
            }
            Step::Supplementary(n) => {
                let (_, lead) = lead_of(&units[n], 0)?;
                d.post(
                    &format!("/v1/suggestions/{}/replies", ids[n]),
                    &department_key,
                    json!({"assignment_id": lead, "document_number": format!("补充答复〔2020〕{}号", n + 1), "body": "承诺事项已全部落实，问题已解决。", "class": "A", "signer": {"name": "厅长", "position": "principal_head"}}),
                )
                .await?;
            }
            Step::Confirm(n) => {
                // The assigning office checks the evidence and confirms: the item closes as A.
                d.post(
                    &format!("/v1/suggestions/{}/closure/decision", ids[n]),
                    &office,
                    json!({"confirm": true, "reason": "佐证材料齐全，承诺事项已兑现。"}),
                )
                .await?;
            }
            Step::Round(r) => {
                let department_items: Vec<&String> = (0..items.len())
                    .filter(|n| items[*n].days[0].year() == 2020 && items[*n].lead == 0)
                    .map(|n| &ids[n])
                    .collect();
                let n = d
                    .post_eventually(
                        "/v1/followup/notices",
                        &department_key,
                        json!({"target_agency_id": agencies[0], "suggestion_ids": department_items, "level": "notice", "body": format!("厅办公室第{}阶段第{}轮督办：请各处室按阶段目标推进办理。", r / 2 + 1, r % 2 + 1), "response_due": day + time::Duration::days(7)}),
                    )
                    .await?;
                round_notices[r] = id(&n)?;
            }
            Step::RoundAnswer(r) => {
                let nid = &round_notices[r];
                d.post(
                    &format!("/v1/followup/notices/{nid}/acknowledge"),
                    &department_key,
                    json!({}),
                )
                .await?;
                d.post(
                    &format!("/v1/followup/notices/{nid}/response"),
                    &department_key,
                    json!({"response": "已按阶段目标推进，进度见办理台账。"}),
                )
                .await?;
            }
        }
    }

    // 共性问题: the office follows the financing items of 2018–2020 as one topic.
    let finance: Vec<&String> = (0..items.len())
        .filter(|n| items[*n].title.contains("融资") || items[*n].title.contains("中小企业"))
        .map(|n| &ids[n])
        .collect();
    let topic = d
        .post(
            "/v1/topics",
            &office,
            json!({"title": "中小企业融资难", "description": "2018—2020年代表反映的中小企业、民营企业融资问题，跨年度、跨部门跟踪落实。"}),
        )
        .await?;
    let tid = id(&topic)?;
    for sid in &finance {
        d.post_eventually(
            &format!("/v1/topics/{tid}/items"),
            &office,
            json!({ "suggestion_id": sid }),
        )
        .await?;
    }

    // Every event has reached the follow-up service before the loader returns: the 24 B-class
    // items converted and closed, and the one longer-term measure still open.
    d.get_until(
        &format!("/v1/ledger?agency_id={}", agencies[0]),
        &office,
        |v| {
            v["items"].as_array().is_some_and(|i| {
                i.len() == LEDGER_ITEMS
                    && i.iter().all(|x| x["class"] == "A")
                    && i.iter().filter(|x| x["converted_at"].is_string()).count()
                        == LEDGER_ITEMS - 1
            })
        },
    )
    .await?;
    Ok(Loaded {
        department_id: agencies[0].clone(),
        suggestions: items.len(),
    })
}
