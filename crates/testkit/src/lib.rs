//! What the services' API tests share: the suggestions and coordination services of the
//! embedded mode in process over fresh databases, the embedded bus between them with both
//! relays and consumers running, behind one router — and a key for every kind of caller.
//! Test code only (`publish = false`, a dev-dependency).

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use banli_calendar::Calendar;
use banli_db::testing::TestDb;
use banli_domain::directory::Agency;
use banli_domain::ids::AgencyId;
use banli_domain::{Role, RuleProfile};
use banli_eventlog::runner::{self, RunOptions};
use banli_eventlog::{Bus, EmbeddedBus};
use banli_suggestions::app::{App, Clock};
use banli_suggestions::store::Store;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::time::Duration;
use time::macros::date;
use tower::ServiceExt;

/// Both services of the embedded mode over their own databases, the embedded bus between them
/// with both relays and both consumers running, behind one router.
pub struct Api {
    pub router: Router,
    pub app: App,
    /// The coordination service's application layer.
    pub coordination: banli_coordination::app::App,
    /// The key sealing the coordination service's webhook secrets.
    pub webhook_key: std::sync::Arc<banli_coordination::webhooks::SecretKey>,
    pub db: Option<TestDb>,
    /// The coordination service's database.
    pub cdb: Option<TestDb>,
    pub office: String,
    /// The embedded bus between the services.
    pub bus: Bus,
    /// The consistency layer in front of both services (also for a gRPC server in a test).
    pub consistency: banli_api::consistency::ConsistencyLayer,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").finish_non_exhaustive()
    }
}

/// How a test wants the services run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Held before each batch the suggestions service's consumer (of the coordination
    /// service's events) applies: a consumer slowed down on purpose.
    pub slow_suggestions_consumer: Option<Duration>,
    /// Likewise for the coordination service's consumer of suggestion events.
    pub slow_coordination_consumer: Option<Duration>,
    /// The bound on a consistency wait.
    pub consistency_wait: Duration,
    /// The rule profile (default: the shipped `hunan`).
    pub profile: Option<RuleProfile>,
    /// The most bytes one uploaded document may have.
    pub max_document_bytes: u64,
    /// The most bytes one owner may upload per hour.
    pub document_upload_bytes_per_hour: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            slow_suggestions_consumer: None,
            slow_coordination_consumer: None,
            consistency_wait: banli_api::consistency::DEFAULT_WAIT,
            profile: None,
            max_document_bytes: banli_documents::DEFAULT_MAX_BYTES,
            document_upload_bytes_per_hour: banli_documents::DEFAULT_HOURLY_BYTES,
        }
    }
}

/// A consumer that waits before each batch.
struct Slow<H>(H, Option<Duration>);

impl<H: runner::Handler> runner::Handler for Slow<H> {
    async fn handle(&self, batch: &[runner::Incoming]) -> Result<Vec<runner::Handled>, String> {
        if let Some(d) = self.1 {
            tokio::time::sleep(d).await;
        }
        self.0.handle(batch).await
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Response {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }
}

impl Api {
    /// The API on SQLite, with today fixed at 2020-03-02.
    pub async fn sqlite() -> Api {
        Api::on(TestDb::sqlite().await, 1024 * 1024).await
    }

    pub async fn on(db: TestDb, limit: usize) -> Api {
        Api::with(db, limit, Options::default()).await
    }

    pub async fn with(db: TestDb, limit: usize, o: Options) -> Api {
        let cdb = match db.pool.backend() {
            banli_db::Backend::Sqlite => TestDb::sqlite().await,
            banli_db::Backend::Postgres => TestDb::postgres().await.expect("a second database"),
        };
        // The same builders as `banli serve`; the coordination service checks keys against the
        // suggestions service here (serve: against its replica of the directory).
        let bus = Bus::Embedded(EmbeddedBus::new(&["suggestions", "coordination"]));
        let profile = o.profile.clone().unwrap_or_else(RuleProfile::hunan);
        let documents = banli_documents::Documents::new(
            banli_documents::BlobStore::open(std::env::temp_dir().join(format!(
                "banli-test-documents-{}",
                uuid::Uuid::now_v7().simple()
            )))
            .await
            .expect("a document store"),
            o.max_document_bytes,
            o.document_upload_bytes_per_hour,
        );
        let suggestions = banli_suggestions::service::build(banli_suggestions::service::Deps {
            store: Store::new(db.pool.clone()),
            bus: bus.clone(),
            profile: profile.clone(),
            calendar: Calendar::embedded().clone(),
            clock: Clock::Fixed(date!(2020 - 03 - 02)),
            body_limit: limit,
            documents: documents.clone(),
        })
        .await
        .expect("the suggestions service");
        let app = suggestions.app.clone();
        let store = app.store().clone();
        let office = Agency {
            id: AgencyId::new(),
            name: "Assigning office".into(),
            assigning_office: true,
        };
        store.create_agency(&office).await.expect("office");
        let (_, token) = store
            .create_key(Role::AssigningOffice, Some(office.id), None, "test")
            .await
            .expect("key");
        let webhook_key = std::sync::Arc::new(
            banli_coordination::webhooks::SecretKey::generate_text()
                .and_then(|t| banli_coordination::webhooks::SecretKey::parse(&t))
                .expect("a webhook key"),
        );
        let coordination = banli_coordination::service::build(banli_coordination::service::Deps {
            store: banli_coordination::store::Store::new(cdb.pool.clone()),
            bus: bus.clone(),
            profile,
            calendar: Calendar::embedded().clone(),
            clock: Clock::Fixed(date!(2020 - 03 - 02)),
            auth: app.authenticator(),
            webhook_key: webhook_key.clone(),
            // The receivers of the tests listen on loopback, which the egress policy
            // refuses unless allowed.
            egress: loopback_egress(),
            body_limit: limit,
            consistency_wait: o.consistency_wait,
            documents,
        })
        .await
        .expect("the coordination service");
        let (sgate, cgate) = (suggestions.gate.clone(), coordination.gate.clone());
        let gates = banli_api::consistency::Gates::default()
            .route(banli_suggestions::http::PATHS, &sgate)
            .route(banli_coordination::http::PATHS, &cgate);
        let consistency = banli_api::consistency::ConsistencyLayer::new(
            banli_api::consistency::TokenKey::ephemeral().expect("a key"),
            o.consistency_wait,
            gates,
        );
        let stats = |g: &banli_eventlog::consistency::Gate| {
            std::sync::Arc::new(banli_eventlog::ConsumerStats::signalling(g.applied()))
        };
        let options = |name: &str, filter: &str| RunOptions {
            name: name.into(),
            filter: Some(filter.into()),
            poll: Duration::from_millis(200),
            batch: 64,
        };
        let idle = Duration::from_millis(5);
        let banli_suggestions::service::Built {
            rest: (api, mut openapi),
            consumer: sc,
            relay: srelay,
            ..
        } = suggestions;
        let banli_coordination::service::Built {
            app: coordination,
            rest: (capi, copenapi),
            consumer: cc,
            relay: crelay,
            ..
        } = coordination;
        let tasks = vec![
            tokio::spawn(srelay.run(idle, std::future::pending())),
            tokio::spawn(crelay.run(idle, std::future::pending())),
            tokio::spawn(runner::run(
                bus.clone(),
                options("suggestions", "coordination."),
                Slow(sc, o.slow_suggestions_consumer),
                stats(&sgate),
                std::future::pending(),
            )),
            tokio::spawn(runner::run(
                bus.clone(),
                options("coordination", "suggestion."),
                Slow(cc, o.slow_coordination_consumer),
                stats(&cgate),
                std::future::pending(),
            )),
        ];
        openapi.merge(copenapi);
        let router = banli_api::http::finish(api.merge(capi).layer(consistency.clone()), openapi);
        Api {
            router,
            app,
            coordination,
            webhook_key,
            db: Some(db),
            cdb: Some(cdb),
            office: token,
            bus,
            consistency,
            tasks,
        }
    }

    pub async fn close(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
        for db in [self.db.take(), self.cdb.take()].into_iter().flatten() {
            db.drop_db().await;
        }
    }

    /// GETs `path` until `done` holds for the body (the other service has caught up), for at
    /// most ten seconds.
    pub async fn eventually(&self, path: &str, key: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.get(path, key).await;
            if r.status.is_success() && done(&r.body) {
                return r.body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "GET {path} never reached the expected state: {} {}",
                r.status,
                r.body
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The suggestion once its assignment `assignment` is in `state`.
    pub async fn assignment_in(&self, id: &str, assignment: &str, state: &str, key: &str) -> Value {
        self.eventually(&format!("/v1/suggestions/{id}"), key, |s| {
            s["assignments"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["id"] == assignment && x["state"] == state)
            })
        })
        .await
    }

    /// The answer's bytes as they are (downloads).
    pub async fn bytes(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let res = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("the router answers");
        let (status, headers) = (res.status(), res.headers().clone());
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        (status, headers, bytes.to_vec())
    }

    pub async fn raw(&self, req: Request<Body>) -> Response {
        let res = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("the router answers");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Response {
            status,
            headers,
            body,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        for (h, v) in headers {
            req = req.header(*h, *v);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        self.raw(req).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Response {
        self.call(Method::GET, path, Some(key), None, &[]).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Response {
        self.call(Method::POST, path, Some(key), Some(body), &[])
            .await
    }

    /// POST that must succeed; returns the body.
    pub async fn ok(&self, path: &str, key: &str, body: Value) -> Value {
        let r = self.post(path, key, body).await;
        assert!(
            r.status.is_success(),
            "POST {path}: {} {}",
            r.status,
            r.body
        );
        r.body
    }

    pub async fn key(&self, role: &str, agency: Option<&str>, deputy: Option<&str>) -> String {
        let body =
            json!({ "role": role, "agency_id": agency, "deputy_id": deputy, "label": "test" });
        self.ok("/v1/admin/keys", &self.office, body).await["token"]
            .as_str()
            .expect("token")
            .to_owned()
    }
}

/// A populated world: a session, four agencies, three deputies, keys for each kind of caller.
#[derive(Debug)]
pub struct World {
    pub api: Api,
    pub session: String,
    pub lead: String,
    pub co1: String,
    pub co2: String,
    pub other: String,
    pub deputy: String,
    pub co_signer: String,
    pub keys: Keys,
}

#[derive(Debug)]
pub struct Keys {
    pub office: String,
    pub auditor: String,
    pub lead_admin: String,
    pub lead_handler: String,
    pub co1_admin: String,
    pub other_admin: String,
    pub deputy: String,
    pub co_signer: String,
    pub other_deputy: String,
}

impl World {
    pub async fn new(api: Api) -> World {
        let office = api.office.clone();
        let session = api
            .ok("/v1/sessions", &office, json!({"body":"npc","term":13,"number":3,"name":"13th PC, 3rd session","opens_on":"2020-01-10","closes_on":"2020-01-16"}))
            .await["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let mut ids = Vec::new();
        for name in [
            "Department of Industry",
            "Department of Finance",
            "Department of Science",
            "Department of Transport",
        ] {
            ids.push(
                api.ok("/v1/agencies", &office, json!({ "name": name }))
                    .await["id"]
                    .as_str()
                    .expect("id")
                    .to_owned(),
            );
        }
        let mut deputies = Vec::new();
        for name in ["Deputy Liu", "Deputy Chen", "Deputy Zhao"] {
            deputies.push(
                api.ok(
                    "/v1/deputies",
                    &office,
                    json!({ "name": name, "delegation": "Changsha", "contact": "+86 731 0000" }),
                )
                .await["id"]
                    .as_str()
                    .expect("id")
                    .to_owned(),
            );
        }
        let keys = Keys {
            office: office.clone(),
            auditor: api.key("auditor", None, None).await,
            lead_admin: api.key("agency_admin", Some(&ids[0]), None).await,
            lead_handler: api.key("handler", Some(&ids[0]), None).await,
            co1_admin: api.key("agency_admin", Some(&ids[1]), None).await,
            other_admin: api.key("agency_admin", Some(&ids[3]), None).await,
            deputy: api.key("deputy", None, Some(&deputies[0])).await,
            co_signer: api.key("deputy", None, Some(&deputies[1])).await,
            other_deputy: api.key("deputy", None, Some(&deputies[2])).await,
        };
        World {
            api,
            session,
            lead: ids[0].clone(),
            co1: ids[1].clone(),
            co2: ids[2].clone(),
            other: ids[3].clone(),
            deputy: deputies[0].clone(),
            co_signer: deputies[1].clone(),
            keys,
        }
    }

    pub async fn submit(&self, number: &str) -> Value {
        self.api
            .ok(
                "/v1/suggestions",
                &self.keys.deputy,
                json!({"session_id": self.session, "number": number, "title": "Digital upgrades for small manufacturers", "body": "A fund and a platform.", "lead_deputy_id": self.deputy, "co_signer_ids": [self.co_signer]}),
            )
            .await
    }

    /// A sole unit's item ready to reply: the submitted suggestion `s` (as the submission
    /// answered it) reviewed, accepted, assigned to the lead agency as its sole unit (and known to
    /// the coordination service), signed for, dispatched, and discussed face to face with the
    /// deputy on `talked_on`. Returns (suggestion, assignment).
    pub async fn ready_sole(&self, s: &Value, talked_on: &str) -> (String, String) {
        let (api, k) = (&self.api, &self.keys);
        let id = s["id"].as_str().expect("id").to_owned();
        api.ok(
            &format!("/v1/suggestions/{id}/start-review"),
            &k.office,
            json!({}),
        )
        .await;
        api.ok(
            &format!("/v1/suggestions/{id}/review"),
            &k.office,
            json!({"decision": "accept"}),
        )
        .await;
        let s = api
            .ok(
                &format!("/v1/suggestions/{id}/assignments"),
                &k.office,
                json!({"units": [{"agency_id": self.lead, "role": "sole"}]}),
            )
            .await;
        let a = assignment_of(&s, &self.lead);
        api.eventually(&format!("/v1/coordination/cases/{id}"), &k.office, |c| {
            c["units"].as_array().is_some_and(|u| u.len() == 1)
        })
        .await;
        self.sign_and_dispatch(&id, &a, &k.lead_admin).await;
        api.ok(
            &format!("/v1/suggestions/{id}/communications"),
            &k.lead_admin,
            json!({"assignment_id": a, "phase": "during", "method": "visit", "face_to_face": true, "deputy_ids": [self.deputy], "summary": "scope", "on": talked_on}),
        )
        .await;
        (id, a)
    }

    /// Submitted, reviewed, accepted and assigned to lead + co1 + co2, and known to the
    /// coordination service; returns (id, lead, co1, co2).
    pub async fn assigned(&self, number: &str) -> (String, String, String, String) {
        let s = self.submit(number).await;
        let id = s["id"].as_str().expect("id").to_owned();
        let office = &self.keys.office;
        self.api
            .ok(
                &format!("/v1/suggestions/{id}/start-review"),
                office,
                json!({}),
            )
            .await;
        self.api
            .ok(
                &format!("/v1/suggestions/{id}/review"),
                office,
                json!({"decision": "accept"}),
            )
            .await;
        let s = self
            .api
            .ok(&format!("/v1/suggestions/{id}/assignments"), office, json!({"units": [{"agency_id": self.lead, "role": "lead"}, {"agency_id": self.co1, "role": "co"}, {"agency_id": self.co2, "role": "co"}]}))
            .await;
        let a = |agency: &str| assignment_of(&s, agency);
        let ids = (id.clone(), a(&self.lead), a(&self.co1), a(&self.co2));
        self.api
            .eventually(&format!("/v1/coordination/cases/{id}"), office, |c| {
                c["units"].as_array().is_some_and(|u| u.len() == 3)
            })
            .await;
        ids
    }

    pub async fn sign_and_dispatch(&self, id: &str, assignment: &str, key: &str) {
        let s = self.api.get(&format!("/v1/suggestions/{id}"), key).await;
        let agency = s.body["assignments"]
            .as_array()
            .expect("assignments")
            .iter()
            .find(|a| a["id"] == assignment)
            .expect("assignment")["agency_id"]
            .as_str()
            .expect("agency")
            .to_owned();
        let division = self
            .api
            .ok(
                &format!("/v1/agencies/{agency}/divisions"),
                &self.keys.office,
                json!({ "name": format!("Division for {assignment}") }),
            )
            .await;
        self.api
            .ok(
                &format!("/v1/coordination/assignments/{assignment}/sign-for"),
                key,
                json!({}),
            )
            .await;
        self.api
            .assignment_in(id, assignment, "accepted", key)
            .await;
        let body = json!({"division_id": division["id"], "handler": "Li Hua", "responsible_leader": "Director Wang", "plan": "visit and survey"});
        self.api
            .ok(
                &format!("/v1/suggestions/{id}/assignments/{assignment}/dispatch"),
                key,
                body,
            )
            .await;
        // The coordination service sees the dispatch before co-handling commands refer to it.
        self.api
            .eventually(&format!("/v1/coordination/cases/{id}"), key, |c| {
                c["units"].as_array().is_some_and(|u| {
                    u.iter()
                        .any(|x| x["assignment_id"] == assignment && x["state"] == "in_handling")
                })
            })
            .await;
    }
}

/// The id of `agency`'s assignment in a suggestion as the API returns it.
pub fn assignment_of(suggestion: &Value, agency: &str) -> String {
    suggestion["assignments"]
        .as_array()
        .expect("assignments")
        .iter()
        .find(|a| a["agency_id"] == agency)
        .expect("assignment")["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// An egress policy that allows loopback (the tests' receivers), as an operator would with
/// `webhook_allowed_networks = ["127.0.0.0/8"]`.
pub fn loopback_egress() -> banli_coordination::webhooks::egress::Egress {
    banli_coordination::webhooks::egress::Egress::new(
        banli_coordination::webhooks::egress::Egress::parse_list("127.0.0.0/8").expect("a network"),
    )
}
