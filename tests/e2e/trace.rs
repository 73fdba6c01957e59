//! One trace per command across the three processes: a local OTLP/gRPC receiver collects the
//! spans of `banli serve --service …` (PostgreSQL + NATS JetStream, `otlp_endpoint` set) while a
//! client chains a co-handled lifecycle, each command under a trace of its own (a W3C
//! `traceparent` header). Each command's trace must hold the request's span, the relay's publish
//! and the apply of its events in every service that consumes them, connected parent to child.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use serde_json::json;

use crate::consistency::{Chain, Parties, assignment_of};
use crate::distributed::Cluster;

/// A span as received: its process, trace, id, parent and name.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    trace: String,
    id: String,
    parent: String,
    name: String,
    outcome: Option<String>,
}

#[derive(Default, Clone)]
struct Receiver {
    spans: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let text = |v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match v
            .as_ref()
            .and_then(|v| v.value.as_ref())
        {
            Some(AnyValue::StringValue(s)) => Some(s.clone()),
            _ => None,
        };
        let mut got = Vec::new();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| text(&a.value))
                .unwrap_or_default();
            for s in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                got.push(Received {
                    service: service.clone(),
                    trace: hex(&s.trace_id),
                    id: hex(&s.span_id),
                    parent: hex(&s.parent_span_id),
                    name: s.name.clone(),
                    outcome: s
                        .attributes
                        .iter()
                        .find(|a| a.key == "banli.outcome")
                        .and_then(|a| text(&a.value)),
                });
            }
        }
        self.spans.lock().expect("spans").extend(got);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A root span of the client's own, under a fresh trace id: `(trace id, traceparent)`.
fn client_root() -> (String, String) {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    (trace.clone(), format!("00-{trace}-{span}-01"))
}

#[test]
fn one_trace_follows_a_command_through_every_service() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let receiver = Receiver::default();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(receiver.clone()))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    rt.spawn(server);
    let endpoint = format!("http://127.0.0.1:{port}");
    // The SDK's batch processor exports every 200 ms instead of every 5 s.
    let Some(cluster) = Cluster::start_with(
        "trace",
        &[
            ("BANLI_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
    ) else {
        return;
    };
    let office = cluster.office.clone();
    let (s, c) = (cluster.suggestions.http, cluster.coordination.http);
    let parties = Parties::register(s, &office);
    let (agencies, lead_key) = (parties.agencies.clone(), parties.lead_key.clone());

    let mut chain = Chain::new();
    let traced = |chain: &mut Chain, port: u16, path: &str, key: &str, body| {
        let (trace, tp) = client_root();
        chain.traceparent = Some(tp);
        let v = chain.ok(port, path, key, body);
        chain.traceparent = None;
        (trace, v)
    };
    let sid = parties.accepted_suggestion(&mut chain, s, &office);
    let p = |suffix: &str| format!("/v1/suggestions/{sid}{suffix}");
    let (assign_trace, assigned) = traced(
        &mut chain,
        s,
        &p("/assignments"),
        &office,
        json!({"units": [{"agency_id": agencies[0], "role": "lead"}, {"agency_id": agencies[1], "role": "co"}]}),
    );
    let a = |agency: &str| assignment_of(&assigned, agency);
    let (lead, co) = (a(&agencies[0]), a(&agencies[1]));
    let (sign_trace, _) = traced(
        &mut chain,
        c,
        &format!("/v1/coordination/assignments/{lead}/sign-for"),
        &lead_key,
        json!({}),
    );
    parties.dispatch_and_meet(&mut chain, s, &sid, &lead);
    chain.ok(
        c,
        &format!("/v1/coordination/assignments/{co}/waiver"),
        &office,
        json!({"reason": "e2e"}),
    );
    let (reply_trace, replied) = traced(
        &mut chain,
        s,
        &p("/replies"),
        &lead_key,
        json!({"assignment_id": lead, "document_number": "R-1", "body": "Done.", "class": "A", "signer": {"name": "Director Chen", "position": "principal_head"}}),
    );
    assert_eq!(replied["state"], "replied", "{replied}");

    // What each command's trace must reach: the service that took the command answers and
    // publishes; the others apply its events.
    let expected: [(&str, &String, &[&str], &[&str]); 3] = [
        (
            "assign",
            &assign_trace,
            &["banli-suggestions"],
            &["banli-coordination", "banli-followup"],
        ),
        (
            "sign-for",
            &sign_trace,
            &["banli-coordination"],
            &["banli-suggestions", "banli-followup"],
        ),
        (
            "reply",
            &reply_trace,
            &["banli-suggestions"],
            &["banli-coordination", "banli-followup"],
        ),
    ];
    let complete = |spans: &[Received]| {
        expected.iter().all(|(_, trace, publishers, appliers)| {
            let of = |svc: &str, prefix: &str| {
                spans
                    .iter()
                    .any(|s| &&s.trace == trace && s.service == svc && s.name.starts_with(prefix))
            };
            publishers
                .iter()
                .all(|svc| of(svc, "POST ") && of(svc, "publish "))
                && appliers.iter().all(|svc| of(svc, "apply "))
        })
    };
    // Spans leave each process in batches every 200 ms: wait for them (at most 30 s).
    let start = Instant::now();
    let spans = loop {
        let spans = receiver.spans.lock().expect("spans").clone();
        if complete(&spans) || start.elapsed() > Duration::from_secs(30) {
            break spans;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for (what, trace, publishers, appliers) in &expected {
        let mine: Vec<&Received> = spans.iter().filter(|s| &&s.trace == trace).collect();
        let names: Vec<String> = mine
            .iter()
            .map(|s| format!("{} {}", s.service, s.name))
            .collect();
        for svc in publishers.iter() {
            for prefix in ["POST ", "publish "] {
                assert!(
                    mine.iter()
                        .any(|s| s.service == *svc && s.name.starts_with(prefix)),
                    "{what}: no `{prefix}…` span of {svc} in its trace: {names:?} ({} spans received)",
                    spans.len()
                );
            }
        }
        for svc in appliers.iter() {
            assert!(
                mine.iter()
                    .any(|s| s.service == *svc && s.name.starts_with("apply ")),
                "{what}: no `apply …` span of {svc} in its trace: {names:?}"
            );
        }
        // Connected: every span's parent is the client's root or a span of the same trace.
        let ids: HashSet<&str> = mine.iter().map(|s| s.id.as_str()).collect();
        let roots: Vec<&&Received> = mine
            .iter()
            .filter(|s| !ids.contains(s.parent.as_str()))
            .collect();
        assert_eq!(
            roots.len(),
            1,
            "{what}: one span hangs from the client's root, the rest from it: {roots:?}"
        );
        assert!(
            roots[0].name.starts_with("POST "),
            "{what}: the request's span is the root of the service side: {roots:?}"
        );
        let outcomes: HashMap<&str, usize> =
            mine.iter()
                .filter_map(|s| s.outcome.as_deref())
                .fold(HashMap::new(), |mut m, o| {
                    *m.entry(o).or_default() += 1;
                    m
                });
        assert!(
            outcomes.get("applied").copied().unwrap_or(0) >= appliers.len(),
            "{what}: the consumers applied its events: {outcomes:?}"
        );
    }
    cluster.stop();
}
