//! A text holding the NUL character (U+0000) — which PostgreSQL cannot keep in text — is bad
//! input, not a server failure: REST answers 422 `invalid_argument` on either backend, gRPC
//! `INVALID_ARGUMENT` on PostgreSQL, and nothing is written.

use banli_proto::suggestions::v1 as sp;
use serde_json::json;

use crate::serve::serve_fresh;
use crate::walk::{Client, req};

#[test]
fn a_nul_character_in_a_text_is_refused_and_nothing_is_written_on_postgres() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let Some(db) = rt.block_on(banli_db::testing::TestDb::postgres()) else {
        return;
    };
    let (dir, server, office) = serve_fresh("nul", "", &["--database-url", &db.url]);
    let c = Client::new(server.http);
    let mut failures = Vec::new();
    // REST: the body's escape is found before anything runs.
    let (status, v) = c.call(
        "POST",
        "/v1/deputies",
        &office,
        Some(&json!({"name": "Deputy\u{0}Liu", "delegation": "Changsha"})),
    );
    if status != 422 || v["code"] != "invalid_argument" {
        failures.push(format!("REST: {status} {v}"));
    }
    // gRPC: the store's refusal is reported as bad input.
    let got = rt.block_on(async {
        sp::suggestion_service_client::SuggestionServiceClient::new(server.channel().await)
            .create_deputy(req(
                sp::CreateDeputyRequest {
                    deputy: Some(sp::Deputy {
                        name: "Deputy\u{0}Zhao".into(),
                        delegation: "Changsha".into(),
                        ..Default::default()
                    }),
                    idempotency_key: String::new(),
                },
                &office,
                "",
            ))
            .await
    });
    match got {
        Err(s) if s.code() == tonic::Code::InvalidArgument && s.message().contains("NUL") => {}
        other => failures.push(format!("gRPC: {other:?}")),
    }
    let banli_db::Pool::Postgres(pool) = &db.pool else {
        unreachable!("a PostgreSQL test database")
    };
    let (n,): (i64,) = rt
        .block_on(sqlx::query_as("SELECT COUNT(*) FROM deputies").fetch_one(pool))
        .expect("the deputies");
    if n != 0 {
        failures.push(format!("{n} deputies stored after the refusals"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
