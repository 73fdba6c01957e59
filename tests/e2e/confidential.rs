//! Confidential items (涉密) in what is read across agencies, against a real `banli serve` on
//! SQLite and on PostgreSQL: an auditor reading an agency's feed, its task list, its deadlines
//! or the assignments export sees that agency's open items and none of its confidential ones;
//! the office and the agency itself see both.

use serde_json::{Value, json};

use crate::serve::{Serve, http_with, serve_fresh};
use crate::walk::{Client, id};

/// An auditor's key, and an open item and a confidential one both assigned to one agency as
/// sole handler.
struct World {
    auditor: String,
    agency: String,
    agency_key: String,
    open: String,
    secret: String,
}

fn world(c: &Client, office: &str) -> World {
    let (agency, agency_key, _) = c.agency(office, "Department of Public Security");
    let auditor = c.post(
        "/v1/admin/keys",
        office,
        json!({"role": "auditor", "label": "Audit bureau"}),
    )["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let session = id(&c.post(
        "/v1/sessions",
        office,
        json!({"body":"npc","term":13,"number":3,"name":"13th PC, 3rd session","opens_on":"2020-01-10","closes_on":"2020-01-16"}),
    ));
    let deputy = id(&c.post(
        "/v1/deputies",
        office,
        json!({"name": "Deputy Liu", "delegation": "Changsha"}),
    ));
    let mut ids = Vec::new();
    // The confidential item first: its events come first in the agency's feed.
    for (number, confidential) in [("2020-0701", true), ("2020-0702", false)] {
        let sid = c.accepted(
            office,
            json!({"session_id": session, "number": number, "title": "Border checkpoints", "body": "…", "lead_deputy_id": deputy, "confidential": confidential}),
        );
        c.post(
            &format!("/v1/suggestions/{sid}/assignments"),
            office,
            json!({"units": [{"agency_id": agency, "role": "sole"}]}),
        );
        ids.push(sid);
    }
    let open = ids.pop().expect("the open item");
    let secret = ids.pop().expect("the confidential item");
    World {
        auditor,
        agency,
        agency_key,
        open,
        secret,
    }
}

/// The raw body of a GET (CSV included), carrying the client's consistency token.
fn text(c: &Client, path: &str, key: &str) -> (u16, String) {
    let token = c.token.borrow().clone();
    let (status, _, body) = http_with(
        c.port,
        "GET",
        path,
        Some(key),
        None,
        &[("banli-consistency", token.as_str())],
    );
    (status, body)
}

fn check(server: &Serve, office: &str) {
    let c = Client::new(server.http);
    let World {
        auditor,
        agency,
        agency_key,
        open,
        secret,
    } = world(&c, office);
    let reads = [
        format!("/v1/feed?agency_id={agency}&limit=1000"),
        format!("/v1/coordination/tasks?agency_id={agency}&page_size=200"),
        format!("/v1/followup/due-soon?agency_id={agency}&within_days=366"),
        format!("/v1/followup/assignments.csv?agency_id={agency}"),
    ];
    let mut failures = Vec::new();
    for (who, key, sees_secret) in [
        ("office", office, true),
        ("the agency", agency_key.as_str(), true),
        ("an auditor", auditor.as_str(), false),
    ] {
        for path in &reads {
            // An agency key reads its own lists without naming itself.
            let path = if who == "the agency" {
                path.replace(&format!("agency_id={agency}&"), "")
                    .replace(&format!("?agency_id={agency}"), "")
            } else {
                path.clone()
            };
            let (status, body) = text(&c, &path, key);
            if status != 200 {
                failures.push(format!("GET {path} as {who}: {status} {body}"));
                continue;
            }
            if !body.contains(&open) {
                failures.push(format!(
                    "GET {path} as {who}: the open item is missing: {body}"
                ));
            }
            if body.contains(&secret) != sees_secret {
                failures.push(format!(
                    "GET {path} as {who}: the confidential item is {}: {body}",
                    if sees_secret { "missing" } else { "shown" }
                ));
            }
        }
    }
    // Hidden rows are left out before a page is cut: the auditor's first page of one item is
    // the open item's, though the confidential item's events come first in the feed.
    let (_, feed) = c.call(
        "GET",
        &format!("/v1/feed?agency_id={agency}&after=&limit=1"),
        &auditor,
        None,
    );
    let first: &Value = &feed["items"][0];
    if first["aggregate_id"] != open.as_str() {
        failures.push(format!("the auditor's first feed item: {feed}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn auditors_read_no_confidential_item_in_feeds_lists_or_exports_on_sqlite() {
    let (dir, server, office) = serve_fresh("secret", "", &[]);
    check(&server, &office);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn auditors_read_no_confidential_item_in_feeds_lists_or_exports_on_postgres() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let Some(db) = rt.block_on(banli_db::testing::TestDb::postgres()) else {
        return;
    };
    let (dir, server, office) = serve_fresh("secret-pg", "", &["--database-url", &db.url]);
    check(&server, &office);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
