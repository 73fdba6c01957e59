//! The three services as processes on PostgreSQL and NATS (`Cluster`), and the audit log's
//! standby replica taking over after its sequencer is killed.

use std::time::{Duration, Instant};

use super::*;

/// The three services as processes, each on a fresh PostgreSQL database of its own, over their
/// own NATS stream, sharing one data directory (and so one consistency key). What coordination
/// and follow-up know of keys and agencies reaches them as events.
pub(crate) struct Cluster {
    pub(crate) suggestions: Proc,
    pub(crate) coordination: Proc,
    pub(crate) followup: Proc,
    /// One port in front of the three, routing by the services' route tables.
    pub(crate) front: FrontDoor,
    pub(crate) office: String,
    rt: tokio::runtime::Runtime,
    /// The suggestions, coordination and follow-up services' databases.
    dbs: [banli_db::testing::TestDb; 3],
    nats: String,
    stream: String,
    prefix: String,
    dir: PathBuf,
}

impl Cluster {
    /// `None` (with a notice) when PostgreSQL or NATS is missing and not required.
    pub(crate) fn start(name: &str) -> Option<Cluster> {
        Cluster::start_with(name, &[])
    }

    /// [`Cluster::start`] with more environment for every process.
    pub(crate) fn start_with(name: &str, more: &[(&str, &str)]) -> Option<Cluster> {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let dbs = [
            rt.block_on(banli_db::testing::TestDb::postgres())?,
            rt.block_on(banli_db::testing::TestDb::postgres())?,
            rt.block_on(banli_db::testing::TestDb::postgres())?,
        ];
        let nats =
            std::env::var("BANLI_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
        if std::net::TcpStream::connect(nats.trim_start_matches("nats://")).is_err() {
            assert!(
                !banli_db::testing::services_required(),
                "NATS is required at {nats}"
            );
            eprintln!("notice: skipping the {name} test: NATS does not answer at {nats}");
            return None;
        }
        let unique = uuid::Uuid::now_v7().simple().to_string();
        let stream = format!("BANLI_E2E_{unique}");
        let prefix = format!("banlie2e{unique}");
        let mut env = vec![
            ("BANLI_NATS_URL", nats.as_str()),
            ("BANLI_NATS_STREAM", stream.as_str()),
            ("BANLI_NATS_SUBJECT_PREFIX", prefix.as_str()),
        ];
        env.extend_from_slice(more);
        fn with_db<'a>(
            env: &[(&'a str, &'a str)],
            db: &'a banli_db::testing::TestDb,
        ) -> Vec<(&'a str, &'a str)> {
            let mut env = env.to_vec();
            env.push(("BANLI_DATABASE_URL", db.url.as_str()));
            env
        }
        let dir = temp_dir(name);
        // Coordination first, on its empty database: it waits for the directory, saying so,
        // and answers calls 503 (not 401) until it has arrived.
        let coordination = Proc::start(
            &dir,
            &["--service", "coordination"],
            &with_db(&env, &dbs[1]),
        );
        let (status, body) = http(coordination.http, "GET", "/readyz", None, None);
        assert!(
            status == 503 && body.contains("suggestions service"),
            "{status} {body}"
        );
        let (token, _) = banli_api::token::issue(uuid::Uuid::now_v7());
        let (status, body) = http(
            coordination.http,
            "GET",
            "/v1/coordination/tasks",
            Some(&token),
            None,
        );
        assert!(
            status == 503 && body.contains("waiting for"),
            "{status} {body}"
        );
        let suggestions = Proc::start(&dir, &["--service", "suggestions"], &with_db(&env, &dbs[0]));
        let office = office_key(&dir);
        let followup = Proc::start(&dir, &["--service", "followup"], &with_db(&env, &dbs[2]));
        for p in [&coordination, &followup] {
            let start = Instant::now();
            while http(p.http, "GET", "/readyz", None, None).0 != 200 {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "the directory never reached the process on port {}",
                    p.http
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let front = FrontDoor::start(
            vec![
                (banli_suggestions::http::PATHS, suggestions.http),
                (banli_coordination::http::PATHS, coordination.http),
                (banli_followup::http::PATHS, followup.http),
            ],
            suggestions.http,
        );
        Some(Cluster {
            suggestions,
            coordination,
            followup,
            front,
            office,
            rt,
            dbs,
            nats,
            stream,
            prefix,
            dir,
        })
    }

    /// Another process of `service` on that service's database, the bus and the data directory.
    pub(crate) fn another(&self, service: &str) -> Proc {
        let db = match service {
            "suggestions" => &self.dbs[0],
            "coordination" => &self.dbs[1],
            _ => &self.dbs[2],
        };
        let env = [
            ("BANLI_DATABASE_URL", db.url.as_str()),
            ("BANLI_NATS_URL", self.nats.as_str()),
            ("BANLI_NATS_STREAM", self.stream.as_str()),
            ("BANLI_NATS_SUBJECT_PREFIX", self.prefix.as_str()),
        ];
        Proc::start(&self.dir, &["--service", service], &env)
    }

    /// Stops the processes, deletes the stream and the database.
    pub(crate) fn stop(self) {
        let Cluster {
            suggestions,
            coordination,
            followup,
            rt,
            dbs,
            nats,
            stream,
            prefix,
            dir,
            ..
        } = self;
        drop(suggestions);
        drop(coordination);
        drop(followup);
        rt.block_on(async {
            if let Ok(bus) = banli_eventlog::NatsBus::connect(banli_eventlog::NatsConfig {
                stream,
                prefix,
                ..banli_eventlog::NatsConfig::new(&nats)
            })
            .await
            {
                bus.delete_stream().await;
            }
            for db in dbs {
                db.drop_db().await;
            }
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The signed checkpoint a process serves: (status, size, root, note).
fn checkpoint_of(port: u16, key: &banli_audit::Verifier) -> (u16, u64, banli_audit::Hash, String) {
    let (status, note) = http(port, "GET", "/v1/audit/checkpoint", None, None);
    if status != 200 {
        return (status, 0, [0; 32], note);
    }
    let cp = key
        .verify(&note, "banli.local/audit")
        .expect("a checkpoint signed by the log's key");
    (status, cp.size, cp.root, note)
}

/// Two follow-up replicas on one log: one sequences it, the other stands by (503) and takes over
/// when the first is killed with SIGKILL in the middle of a lifecycle; the log goes on from where
/// it was, consistent with what the first one signed, every record once.
#[test]
fn a_standby_follow_up_replica_takes_over_the_audit_log_after_sigkill() {
    use base64::Engine;
    let Some(mut cluster) = Cluster::start("sequencer") else {
        return;
    };
    let standby = cluster.another("followup");
    let office = cluster.office.clone();
    let (status, body) = http(standby.http, "GET", "/v1/audit/checkpoint", None, None);
    assert_eq!(status, 503, "the standby does not serve the log: {body}");
    assert!(body.contains("standing by"), "{body}");
    let (status, _) = http(standby.http, "GET", "/healthz", None, None);
    assert_eq!(
        status, 200,
        "the standby serves the rest of the follow-up service"
    );
    let (status, key) = http(
        cluster.followup.http,
        "GET",
        "/v1/audit/public-key",
        None,
        None,
    );
    assert_eq!(status, 200, "{key}");
    let key = banli_audit::Verifier::parse(key.trim()).expect("a verifier key");

    let front = cluster.front.port;
    let mut before = None;
    let mut takeover = None;
    {
        let followup = &mut cluster.followup;
        scenario(front, &office, &mut |_| {
            let (status, size, root, _) = checkpoint_of(followup.http, &key);
            assert_eq!(status, 200);
            before = Some((size, root));
            followup.kill9();
            let killed = Instant::now();
            loop {
                let (status, _, _, body) = checkpoint_of(standby.http, &key);
                if status == 200 {
                    break;
                }
                assert_eq!(status, 503, "{body}");
                assert!(
                    killed.elapsed() < Duration::from_secs(10),
                    "the standby did not take over within 10 s"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            takeover = Some(killed.elapsed());
        });
    }
    let takeover = takeover.expect("the scenario killed the sequencer");
    eprintln!("audit log takeover after SIGKILL: {takeover:?}");
    let (first, first_root) = before.expect("a checkpoint before the kill");

    // Every record of the lifecycle reaches the new sequencer's log once (what the killed one
    // held unacknowledged comes back after JetStream's acknowledgement wait).
    let start = Instant::now();
    let (types, size, root) = loop {
        let (status, size, root, note) = checkpoint_of(standby.http, &key);
        assert_eq!(status, 200, "{note}");
        let types = record_types(standby.http, &office, size);
        if types.iter().any(|t| t == "reply_issued") {
            break (types, size, root);
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "the new sequencer's log never got the reply: {types:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_scenario_recorded_once(&types);
    // What the killed sequencer signed is a prefix of what its successor signs.
    assert!(size >= first, "{size} < {first}");
    if first > 0 && size > first {
        let (status, v) = call(
            standby.http,
            "GET",
            &format!("/v1/audit/proofs/consistency?first={first}&second={size}"),
            &office,
            None,
        );
        assert_eq!(status, 200, "{v}");
        let proof: Vec<banli_audit::Hash> = v["consistency"]
            .as_array()
            .expect("a proof")
            .iter()
            .map(|h| {
                base64::engine::general_purpose::STANDARD
                    .decode(h.as_str().expect("base64"))
                    .expect("base64")
                    .try_into()
                    .expect("32 bytes")
            })
            .collect();
        banli_audit::verify_consistency(first, size, &first_root, &root, &proof)
            .expect("the new sequencer's log extends the old one's");
    }
    drop(standby);
    cluster.stop();
}
