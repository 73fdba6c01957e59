//! The flow, step by step, over one transport: each command sent twice under one key.

use banli_proto::common::v1 as common;
use banli_proto::coordination::v1 as cp;
use banli_proto::followup::v1 as fp;
use banli_proto::suggestions::v1 as sp;
use serde_json::json;
use tonic::transport::Channel;

use super::{Keys, Via, keyed};
use crate::walk::{Client, id};

/// What every step of the flow shares: the REST client, the gRPC clients, the keys, the
/// transport and the day.
struct Flow<'a> {
    c: &'a Client,
    s: sp::suggestion_service_client::SuggestionServiceClient<Channel>,
    co: cp::coordination_service_client::CoordinationServiceClient<Channel>,
    w: cp::webhook_service_client::WebhookServiceClient<Channel>,
    f: fp::follow_up_service_client::FollowUpServiceClient<Channel>,
    k: &'a Keys,
    via: Via,
    today: time::Date,
}

/// What the steps hand on.
#[derive(Default)]
struct Item {
    deputy: String,
    sid: String,
    lead: String,
    coa: String,
    opinion: String,
}

/// Brings a step's names into scope, as the flow had them when it was one function.
macro_rules! step {
    ($fl:ident, $it:ident => $c:ident, $s:ident, $co:ident, $w:ident, $f:ident, $k:ident, $via:ident, $today:ident, $office:ident, $idem:ident, $signer:ident, $deputy:ident, $sid:ident, $p:ident, $lead:ident, $coa:ident, $opinion:ident) => {
        let tag = format!("{:?}", $fl.via);
        let $idem = move |name: &str| format!("{tag}-{name}");
        let $signer = |name: &str| common::Signer {
            name: name.into(),
            position: common::SignerPosition::PrincipalHead as i32,
        };
        let ($via, $today) = ($fl.via, $fl.today);
        let Flow {
            c: $c,
            s: $s,
            co: $co,
            w: $w,
            f: $f,
            k: $k,
            ..
        } = $fl;
        let $office = $k.office.as_str();
        let ($deputy, $sid, $lead, $coa, $opinion) = (
            $it.deputy.clone(),
            $it.sid.clone(),
            $it.lead.clone(),
            $it.coa.clone(),
            $it.opinion.clone(),
        );
        let $p = format!("/v1/suggestions/{}", $sid);
    };
}

mod handling;

use handling::{opinion_and_contact, reply_and_follow_up, supervise, webhook};

/// The whole flow over `via`, each command twice; returns the suggestion's id.
pub(super) async fn flow(c: &Client, channel: Channel, k: &Keys, via: Via) -> String {
    let mut fl = Flow {
        c,
        s: sp::suggestion_service_client::SuggestionServiceClient::new(channel.clone()),
        co: cp::coordination_service_client::CoordinationServiceClient::new(channel.clone()),
        w: cp::webhook_service_client::WebhookServiceClient::new(channel.clone()),
        f: fp::follow_up_service_client::FollowUpServiceClient::new(channel),
        k,
        via,
        today: time::OffsetDateTime::now_utc().date(),
    };
    let mut it = Item::default();
    (it.deputy, it.sid) = register(&mut fl, &it).await;
    (it.lead, it.coa) = assign(&mut fl, &it).await;
    sign_and_dispatch(&mut fl, &it).await;
    it.opinion = opinion_and_contact(&mut fl, &it).await;
    reply_and_follow_up(&mut fl, &it).await;
    supervise(&mut fl, &it).await;
    webhook(&mut fl, &it).await;
    it.sid
}

/// The session, the deputy and the suggestion: returns the deputy's and the suggestion's ids.
#[allow(unused_variables, clippy::unused_unit)]
async fn register(fl: &mut Flow<'_>, it: &Item) -> (String, String) {
    step!(fl, it => c, s, co, w, f, k, via, today, office, idem, signer, deputy, sid, p, lead, coa, opinion);
    let session = match via {
        Via::Rest => id(&c.twice(
            "POST",
            "/v1/sessions",
            office,
            json!({"body":"npc","term":14,"number":1,"name":"14th PC, 1st session","opens_on":"2026-01-10","closes_on":"2026-01-16"}),
            &idem("session"),
        )),
        Via::Grpc => {
            twice!(
                c,
                s,
                create_session,
                office,
                &idem("session"),
                sp::CreateSessionRequest {
                    session: Some(sp::Session {
                        body: "npc".into(),
                        term: 14,
                        number: 2,
                        name: "14th PC, 2nd session".into(),
                        opens_on: "2026-02-10".into(),
                        closes_on: "2026-02-16".into(),
                        ..Default::default()
                    }),
                    idempotency_key: String::new(),
                }
            )
            .id
        }
    };
    let deputy = match via {
        Via::Rest => id(&c.twice(
            "POST",
            "/v1/deputies",
            office,
            json!({"name": "Deputy Liu", "delegation": "Changsha"}),
            &idem("deputy"),
        )),
        Via::Grpc => {
            twice!(
                c,
                s,
                create_deputy,
                office,
                &idem("deputy"),
                sp::CreateDeputyRequest {
                    deputy: Some(sp::Deputy {
                        name: "Deputy Liu".into(),
                        delegation: "Changsha".into(),
                        ..Default::default()
                    }),
                    idempotency_key: String::new(),
                }
            )
            .id
        }
    };
    let sid = match via {
        Via::Rest => id(&c.twice(
            "POST",
            "/v1/suggestions",
            office,
            json!({"session_id": session, "number": "2026-0001", "title": "Digital upgrades", "body": "A fund and a platform.", "lead_deputy_id": deputy}),
            &idem("submit"),
        )),
        Via::Grpc => {
            twice!(
                c,
                s,
                submit_suggestion,
                office,
                &idem("submit"),
                sp::SubmitSuggestionRequest {
                    session_id: session.clone(),
                    number: "2026-0002".into(),
                    title: "Digital upgrades".into(),
                    body: "A fund and a platform.".into(),
                    lead_deputy_id: deputy.clone(),
                    ..Default::default()
                }
            )
            .id
        }
    };
    (deputy, sid)
}

/// Review and assignment to the lead and the co-handler: returns their assignments.
#[allow(unused_variables, clippy::unused_unit)]
async fn assign(fl: &mut Flow<'_>, it: &Item) -> (String, String) {
    step!(fl, it => c, s, co, w, f, k, via, today, office, idem, signer, deputy, sid, p, lead, coa, opinion);
    // Review and assignment.
    let assigned = match via {
        Via::Rest => {
            c.twice(
                "POST",
                &format!("{p}/start-review"),
                office,
                json!({}),
                &idem("start-review"),
            );
            c.twice(
                "POST",
                &format!("{p}/review"),
                office,
                json!({"decision": "accept"}),
                &idem("review"),
            );
            let v = c.twice(
                "POST",
                &format!("{p}/assignments"),
                office,
                json!({"units": [{"agency_id": k.lead_agency, "role": "lead"}, {"agency_id": k.co_agency, "role": "co"}]}),
                &idem("assign"),
            );
            v["assignments"]
                .as_array()
                .expect("assignments")
                .iter()
                .map(|a| (id(a), a["agency_id"].as_str().expect("agency").to_owned()))
                .collect::<Vec<_>>()
        }
        Via::Grpc => {
            twice!(
                c,
                s,
                start_review,
                office,
                &idem("start-review"),
                sp::StartReviewRequest {
                    suggestion_id: sid.clone(),
                    expected_version: 0,
                }
            );
            twice!(
                c,
                s,
                review_suggestion,
                office,
                &idem("review"),
                sp::ReviewSuggestionRequest {
                    suggestion_id: sid.clone(),
                    decision: sp::review_suggestion_request::Decision::Accept as i32,
                    ..Default::default()
                }
            );
            twice!(
                c,
                s,
                assign_suggestion,
                office,
                &idem("assign"),
                sp::AssignSuggestionRequest {
                    suggestion_id: sid.clone(),
                    units: vec![
                        sp::UnitAssignment {
                            agency_id: k.lead_agency.clone(),
                            role: common::UnitRole::Lead as i32,
                        },
                        sp::UnitAssignment {
                            agency_id: k.co_agency.clone(),
                            role: common::UnitRole::Co as i32,
                        },
                    ],
                    ..Default::default()
                }
            )
            .assignments
            .iter()
            .map(|a| (a.id.clone(), a.agency_id.clone()))
            .collect()
        }
    };
    let of = |agency: &str| {
        assigned
            .iter()
            .find(|(_, a)| a == agency)
            .map(|(id, _)| id.clone())
            .expect("an assignment")
    };
    let (lead, coa) = (of(&k.lead_agency), of(&k.co_agency));
    (lead, coa)
}

/// Sign-for and dispatch by each unit.
#[allow(unused_variables, clippy::unused_unit)]
async fn sign_and_dispatch(fl: &mut Flow<'_>, it: &Item) -> () {
    step!(fl, it => c, s, co, w, f, k, via, today, office, idem, signer, deputy, sid, p, lead, coa, opinion);
    // Sign-for and dispatch by each unit.
    for (asg, key, division) in [
        (&lead, &k.lead, &k.lead_division),
        (&coa, &k.co, &k.co_division),
    ] {
        match via {
            Via::Rest => {
                c.twice(
                    "POST",
                    &format!("/v1/coordination/assignments/{asg}/sign-for"),
                    key,
                    json!({}),
                    &idem(&format!("sign-{asg}")),
                );
                c.twice(
                    "POST",
                    &format!("{p}/assignments/{asg}/dispatch"),
                    key,
                    json!({"division_id": division, "handler": "Li Hua", "responsible_leader": "Director Wang"}),
                    &idem(&format!("dispatch-{asg}")),
                );
            }
            Via::Grpc => {
                twice!(
                    c,
                    co,
                    sign_for,
                    key,
                    &idem(&format!("sign-{asg}")),
                    cp::SignForRequest {
                        assignment_id: asg.clone(),
                        change: None,
                    }
                );
                twice!(
                    c,
                    s,
                    dispatch,
                    key,
                    &idem(&format!("dispatch-{asg}")),
                    sp::DispatchRequest {
                        suggestion_id: sid.clone(),
                        assignment_id: asg.clone(),
                        division_id: division.clone(),
                        handler: "Li Hua".into(),
                        responsible_leader: "Director Wang".into(),
                        ..Default::default()
                    }
                );
            }
        }
    }
}
