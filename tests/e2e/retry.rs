//! Every command is as safe to retry over gRPC as over REST, against a real `banli serve`: the
//! whole flow — directory, suggestion, coordination, follow-up, webhooks — is run once over
//! REST and once over gRPC, each command sent twice under the same idempotency key; the retry
//! must answer exactly as the first time (a second effect would show as another version, id or
//! a state refusal), and the item ends with one of everything.

use banli_proto::suggestions::v1 as sp;
use serde_json::Value;

use crate::serve::serve_for_webhooks;
use crate::walk::Client;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Rest,
    Grpc,
}

impl Client {
    /// A REST command twice under one `Idempotency-Key`: both answers must be the same success
    /// (but for a webhook's secret, which only the first answer shows).
    fn twice(&self, method: &str, path: &str, key: &str, body: Value, idem: &str) -> Value {
        let headers = [("idempotency-key", idem)];
        let (s1, first) = self.call_with(method, path, key, Some(&body), &headers);
        let (s2, second) = self.call_with(method, path, key, Some(&body), &headers);
        assert!((200..300).contains(&s1), "{method} {path}: {s1} {first}");
        let mut seen = first.clone();
        if let Some(o) = seen.as_object_mut() {
            o.remove("secret");
        }
        assert_eq!(
            (s1, &seen),
            (s2, &second),
            "{method} {path}: a retry answers as the first time"
        );
        first
    }
}

/// A gRPC request with a key, the consistency token and an `idempotency-key`.
fn keyed<T>(msg: T, key: &str, token: &str, idem: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    let m = r.metadata_mut();
    m.insert(
        "authorization",
        format!("Bearer {key}").parse().expect("ascii"),
    );
    m.insert("idempotency-key", idem.parse().expect("ascii"));
    if !token.is_empty() {
        m.insert("banli-consistency", token.parse().expect("ascii"));
    }
    r
}

/// A gRPC command twice under one `idempotency-key`: both answers must be the same success,
/// once `$shown_once` has taken out what only the first answer shows (a webhook's secret).
macro_rules! twice {
    ($c:expr, $client:expr, $method:ident, $key:expr, $idem:expr, $msg:expr) => {
        twice!($c, $client, $method, $key, $idem, $msg; |_| {})
    };
    ($c:expr, $client:expr, $method:ident, $key:expr, $idem:expr, $msg:expr; $shown_once:expr) => {{
        let msg = $msg;
        let token = $c.token.borrow().clone();
        let first = $client
            .$method(keyed(msg.clone(), $key, &token, $idem))
            .await;
        let second = $client.$method(keyed(msg, $key, &token, $idem)).await;
        let (first, second) = match (first, second) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => panic!("{}: {a:?} / {b:?}", stringify!($method)),
        };
        if let Some(t) = first
            .metadata()
            .get("banli-consistency")
            .and_then(|v| v.to_str().ok())
        {
            *$c.token.borrow_mut() = t.to_owned();
        }
        let (a, mut b) = (first.into_inner(), second.into_inner());
        let mut seen = a.clone();
        $shown_once(&mut seen);
        $shown_once(&mut b);
        assert_eq!(
            seen,
            b,
            "{}: a retry answers as the first time",
            stringify!($method)
        );
        a
    }};
}

struct Keys {
    office: String,
    lead: String,
    co: String,
    lead_agency: String,
    co_agency: String,
    lead_division: String,
    co_division: String,
}

fn directory(c: &Client, office: &str, tag: &str) -> Keys {
    let agency = |name: String| c.agency(office, &name);
    let (lead_agency, lead, lead_division) = agency(format!("Department of Industry {tag}"));
    let (co_agency, co, co_division) = agency(format!("Department of Finance {tag}"));
    Keys {
        office: office.to_owned(),
        lead,
        co,
        lead_agency,
        co_agency,
        lead_division,
        co_division,
    }
}

mod flow;

use flow::flow;

/// How many items a list answer holds (a bare array or `{"items": [...]}`).
fn listed(v: &Value) -> Option<usize> {
    v.as_array().or_else(|| v["items"].as_array()).map(Vec::len)
}

#[tokio::test]
async fn every_command_is_safe_to_retry_over_rest_and_grpc() {
    let (dir, server, office) = serve_for_webhooks("retry");
    let c = Client::new(server.http);
    let channel = server.channel().await;
    for via in [Via::Rest, Via::Grpc] {
        let keys = directory(&c, &office, &format!("{via:?}"));
        let sid = flow(&c, channel.clone(), &keys, via).await;
        // One of everything: a second effect of any command would show here.
        let (status, v) = c.call("GET", &format!("/v1/suggestions/{sid}"), &office, None);
        assert_eq!(status, 200, "{v}");
        let count = |field: &str| v[field].as_array().map_or(0, Vec::len);
        assert_eq!(
            (
                count("assignments"),
                count("communications"),
                count("replies"),
                count("commitments"),
                count("feedback"),
            ),
            (2, 1, 1, 1, 1),
            "{via:?}: {v}"
        );
        let (_, hooks) = c.call("GET", "/v1/webhooks", &keys.lead, None);
        assert_eq!(listed(&hooks), Some(1), "{via:?}: {hooks}");
        let (_, notices) = c.call(
            "GET",
            &format!("/v1/followup/notices?agency_id={}", keys.lead_agency),
            &office,
            None,
        );
        assert_eq!(listed(&notices), Some(1), "{via:?}: {notices}");
    }
    // A key names one request: the same key on the other transport (another request's hash)
    // is refused, not run again.
    let err = sp::suggestion_service_client::SuggestionServiceClient::new(channel)
        .create_deputy(keyed(
            sp::CreateDeputyRequest {
                deputy: Some(sp::Deputy {
                    name: "Deputy Liu".into(),
                    delegation: "Changsha".into(),
                    ..Default::default()
                }),
                idempotency_key: String::new(),
            },
            &office,
            "",
            "Rest-deputy",
        ))
        .await
        .expect_err("the REST request's key");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
