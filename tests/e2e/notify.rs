//! Deputies hear from the platform, against a real `banli serve` with an SMTP server and an SMS
//! gateway started here: a deputy sets where to be reached, the assignment of their suggestion
//! reaches the inbox, the mailbox and the phone (signed); a co-signer without addresses has the
//! inbox and undeliverable records with the reason; nobody else reads a deputy's messages. The
//! unit's contact, set by the unit, hears of the item assigned to it (inbox and e-mail); another
//! unit neither reads nor sets it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serve::serve_fresh;
use crate::walk::{Client, id};

/// What a receiver got: (recipient or request head, data or body).
type Got = Arc<Mutex<Vec<(String, String)>>>;

/// A one-thread SMTP sink: every message's RCPT TO and data.
fn smtp_sink() -> (u16, Got) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let got: Got = Arc::default();
    let seen = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut w) = conn else { return };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let Ok(r) = w.try_clone() else { return };
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 sink\r\n");
                let mut to = String::new();
                while let Some(Ok(line)) = lines.next() {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        b"250-sink\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        to = line[8..].trim().to_owned();
                        b"250 ok\r\n"
                    } else if upper == "DATA" {
                        let _ = w.write_all(b"354 go\r\n");
                        let mut data = String::new();
                        for l in lines.by_ref() {
                            let Ok(l) = l else { break };
                            if l == "." {
                                break;
                            }
                            data.push_str(&l);
                            data.push('\n');
                        }
                        if let Ok(mut g) = seen.lock() {
                            g.push((to.clone(), data));
                        }
                        b"250 queued\r\n"
                    } else if upper == "QUIT" {
                        let _ = w.write_all(b"221 bye\r\n");
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    if w.write_all(reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, got)
}

/// A one-thread HTTP receiver answering 200: each request's head and body.
fn gateway() -> (u16, Got) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let got: Got = Arc::default();
    let seen = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            let Ok(clone) = s.try_clone() else { continue };
            let mut r = BufReader::new(clone);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            if let Ok(mut g) = seen.lock() {
                g.push((head, String::from_utf8_lossy(&body).into_owned()));
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (port, got)
}

fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} never happened"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn deputies_hear_of_their_suggestions_by_inbox_mail_and_sms() {
    let (smtp, mails) = smtp_sink();
    let (sms, texts) = gateway();
    let config = format!(
        "webhook_allowed_networks = [\"127.0.0.0/8\"]\n[notify]\nsmtp_url = \"smtp://127.0.0.1:{smtp}\"\nsmtp_from = \"建议办理平台 <banli@example.gov.cn>\"\nsms_url = \"http://127.0.0.1:{sms}/sms\"\nsms_secret = \"gateway-secret\"\n"
    );
    let (_dir, server, office) = serve_fresh("notify", &config, &[]);
    let c = Client::new(server.http);
    let (agency, agency_key, _) = c.agency(&office, "湖南省工业和信息化厅");
    let (_, other_agency_key, _) = c.agency(&office, "湖南省财政厅");
    let session = id(&c.post(
        "/v1/sessions",
        &office,
        json!({"body":"npc","term":13,"number":3,"name":"13th PC, 3rd session","opens_on":"2020-01-10","closes_on":"2020-01-16"}),
    ));
    let deputy = |name: &str| {
        let d = id(&c.post(
            "/v1/deputies",
            &office,
            json!({"name": name, "delegation": "长沙"}),
        ));
        let key = c.post(
            "/v1/admin/keys",
            &office,
            json!({"role": "deputy", "deputy_id": d, "label": name}),
        )["token"]
            .as_str()
            .expect("token")
            .to_owned();
        (d, key)
    };
    let ((liu, liu_key), (zhao, _), (_, other_key)) =
        (deputy("刘代表"), deputy("赵代表"), deputy("王代表"));
    let prefs = format!("/v1/notifications/preferences/{liu}");
    // Bad addresses are named; nobody else sets a deputy's preferences.
    let (status, v) = c.call(
        "PUT",
        &prefs,
        &liu_key,
        Some(&json!({"email": "not-an-address"})),
    );
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("invalid_argument")),
        "{v}"
    );
    assert!(
        v["detail"].as_str().unwrap_or_default().contains("email"),
        "{v}"
    );
    let (status, v) = c.call(
        "PUT",
        &prefs,
        &other_key,
        Some(&json!({"email": "x@example.cn"})),
    );
    assert_eq!(status, 403, "{v}");
    let (status, v) = c.call(
        "PUT",
        &prefs,
        &agency_key,
        Some(&json!({"email": "x@example.cn"})),
    );
    assert_eq!(status, 403, "{v}");
    let set = c.ok(
        "PUT",
        &prefs,
        &liu_key,
        json!({"email": "liu@example.cn", "phone": "+8613800000000", "channels": ["email", "sms", "inbox"]}),
    );
    assert_eq!(set["language"], "zh", "{set}");
    // The unit's contact (联络员): set by the unit; another unit neither sets nor reads it; a
    // deputy's id is not an agency's.
    let contact = format!("/v1/notifications/contacts/{agency}");
    let (status, v) = c.call(
        "PUT",
        &contact,
        &other_agency_key,
        Some(&json!({"email": "x@example.cn"})),
    );
    assert_eq!(status, 403, "{v}");
    let (status, v) = c.call("GET", &contact, &other_agency_key, None);
    assert_eq!(status, 403, "{v}");
    let (status, v) = c.call(
        "PUT",
        &contact,
        &liu_key,
        Some(&json!({"email": "x@example.cn"})),
    );
    assert_eq!(status, 403, "{v}");
    let (status, v) = c.call(
        "PUT",
        &format!("/v1/notifications/contacts/{liu}"),
        &office,
        Some(&json!({"email": "x@example.cn"})),
    );
    assert_eq!((status, v["code"].as_str()), (409, Some("conflict")), "{v}");
    let set = c.ok(
        "PUT",
        &contact,
        &agency_key,
        json!({"email": "lianluo@gxt.example.cn", "channels": ["email", "inbox"]}),
    );
    assert_eq!(set["email"], "lianluo@gxt.example.cn", "{set}");
    let (status, got) = c.call("GET", &contact, &office, None);
    assert_eq!((status, &got), (200, &set));

    let sid = c.accepted(
        &office,
        json!({"session_id": session, "number": "2020-0123", "title": "关于缓解中小企业融资难的建议", "body": "…", "lead_deputy_id": liu, "co_signer_ids": [zhao]}),
    );
    c.post(
        &format!("/v1/suggestions/{sid}/assignments"),
        &office,
        json!({"units": [{"agency_id": agency, "role": "sole"}]}),
    );
    // The inbox: who handles it and by when.
    let inbox = until("the assignment in the deputy's inbox", || {
        let (status, v) = c.call("GET", "/v1/inbox", &liu_key, None);
        assert_eq!(status, 200, "{v}");
        let items = v["items"].as_array()?.clone();
        (!items.is_empty()).then_some(items)
    });
    assert_eq!(inbox[0]["kind"], "assigned", "{inbox:?}");
    assert_eq!(inbox[0]["suggestion_id"], sid.as_str());
    let body = inbox[0]["body"].as_str().unwrap_or_default();
    assert!(
        body.contains("湖南省工业和信息化厅") && body.contains("答复期限"),
        "{body}"
    );
    // The mailbox and the phone.
    let mail = until("the e-mail", || {
        mails
            .lock()
            .ok()?
            .iter()
            .find(|m| m.0 == "<liu@example.cn>")
            .cloned()
    });
    assert!(mail.1.contains("Subject: =?utf-8?"), "{}", mail.1);
    let text = until("the SMS", || texts.lock().ok()?.first().cloned());
    assert!(text.0.starts_with("POST /sms "), "{}", text.0);
    assert!(
        text.0.to_ascii_lowercase().contains("banli-signature: t="),
        "{}",
        text.0
    );
    let sms_body: Value = serde_json::from_str(&text.1).expect("json");
    assert_eq!(sms_body["to"], "+8613800000000");
    // The co-signer has no addresses: the inbox only, the rest recorded with the reason.
    let rows = until("the co-signer's delivery records", || {
        let (status, v) = c.call(
            "GET",
            &format!("/v1/notifications/deliveries?deputy_id={zhao}"),
            &office,
            None,
        );
        assert_eq!(status, 200, "{v}");
        let rows = v["items"].as_array()?.clone();
        (rows.len() == 2).then_some(rows)
    });
    for r in &rows {
        assert_eq!(r["state"], "undeliverable", "{r}");
        assert!(
            r["last_error"]
                .as_str()
                .unwrap_or_default()
                .starts_with("the recipient has no"),
            "{r}"
        );
    }
    // Recorded as sent once both sends of the round are done (a moment after they arrive).
    until("both deliveries recorded as sent", || {
        let (_, sent) = c.call(
            "GET",
            &format!("/v1/notifications/deliveries?deputy_id={liu}&state=sent"),
            &office,
            None,
        );
        (sent["items"].as_array().map(Vec::len) == Some(2)).then_some(())
    });
    // The unit's contact: in the unit's inbox and by e-mail, told to sign for it.
    let theirs = until("the assignment in the unit's inbox", || {
        let (status, v) = c.call("GET", "/v1/inbox", &agency_key, None);
        assert_eq!(status, 200, "{v}");
        let items = v["items"].as_array()?.clone();
        (!items.is_empty()).then_some(items)
    });
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0]["kind"], "unit_assigned", "{theirs:?}");
    assert!(
        theirs[0]["body"]
            .as_str()
            .unwrap_or_default()
            .contains("请及时签收"),
        "{theirs:?}"
    );
    let unit_mail = until("the contact's e-mail", || {
        mails
            .lock()
            .ok()?
            .iter()
            .find(|m| m.0 == "<lianluo@gxt.example.cn>")
            .cloned()
    });
    assert!(unit_mail.1.contains("Subject: =?utf-8?"), "{}", unit_mail.1);
    let (_, other_inbox) = c.call("GET", "/v1/inbox", &other_agency_key, None);
    assert_eq!(
        other_inbox["items"].as_array().map(Vec::len),
        Some(0),
        "{other_inbox}"
    );
    let (status, v) = c.call(
        "GET",
        &format!("/v1/inbox?agency_id={agency}"),
        &other_agency_key,
        None,
    );
    assert_eq!(status, 403, "{v}");
    let (_, unit_rows) = c.call(
        "GET",
        &format!("/v1/notifications/deliveries?agency_id={agency}"),
        &office,
        None,
    );
    let unit_rows = unit_rows["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(unit_rows.len(), 1, "{unit_rows:?}");
    assert_eq!(unit_rows[0]["agency_id"], agency.as_str());
    assert_eq!(unit_rows[0]["channel"], "email");
    // Nobody else reads the deputy's messages.
    for key in [&other_key, &agency_key] {
        let (status, v) = c.call("GET", &format!("/v1/inbox?deputy_id={liu}"), key, None);
        assert_eq!(status, 403, "{v}");
    }
    // Read, once; another deputy's message is a 404 to them.
    let mid = inbox[0]["id"].as_str().expect("id");
    let (status, v) = c.call(
        "POST",
        &format!("/v1/inbox/{mid}/read"),
        &other_key,
        Some(&json!({})),
    );
    assert_eq!(status, 404, "{v}");
    let read = c.post(&format!("/v1/inbox/{mid}/read"), &liu_key, json!({}));
    assert!(read["read_at"].is_i64(), "{read}");
    let (_, unread) = c.call("GET", "/v1/inbox?unread=true", &liu_key, None);
    assert_eq!(
        unread["items"].as_array().map(Vec::len),
        Some(0),
        "{unread}"
    );
    // The same over gRPC.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        use banli_proto::notify::v1 as np;
        let mut client =
            np::notify_service_client::NotifyServiceClient::new(server.channel().await);
        let got = client
            .list_inbox(crate::walk::grpc::req(
                np::ListInboxRequest::default(),
                &liu_key,
                "",
            ))
            .await
            .expect("ListInbox")
            .into_inner();
        assert_eq!(got.messages.len(), 1);
        assert_eq!(got.messages[0].kind, "assigned");
        assert!(got.messages[0].read_at > 0);
        let refused = client
            .list_inbox(crate::walk::grpc::req(
                np::ListInboxRequest {
                    deputy_id: liu.clone(),
                    ..Default::default()
                },
                &agency_key,
                "",
            ))
            .await
            .expect_err("an agency reads no deputy's inbox");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        let unit = client
            .list_inbox(crate::walk::grpc::req(
                np::ListInboxRequest::default(),
                &agency_key,
                "",
            ))
            .await
            .expect("ListInbox of the unit")
            .into_inner();
        assert_eq!(unit.messages.len(), 1);
        assert_eq!(unit.messages[0].kind, "unit_assigned");
        let prefs = client
            .get_preferences(crate::walk::grpc::req(
                np::GetPreferencesRequest {
                    agency_id: agency.clone(),
                    ..Default::default()
                },
                &agency_key,
                "",
            ))
            .await
            .expect("GetPreferences of the contact")
            .into_inner();
        assert_eq!(prefs.email, "lianluo@gxt.example.cn");
        assert_eq!(prefs.agency_id, agency);
        let both = client
            .get_preferences(crate::walk::grpc::req(
                np::GetPreferencesRequest {
                    agency_id: agency.clone(),
                    deputy_id: liu.clone(),
                },
                &office,
                "",
            ))
            .await
            .expect_err("a deputy and an agency at once");
        assert_eq!(both.code(), tonic::Code::InvalidArgument);
    });
}
