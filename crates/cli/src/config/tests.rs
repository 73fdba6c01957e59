use super::*;

#[test]
fn the_example_file_is_the_defaults_and_loads() {
    let text = include_str!("../../../../deploy/config/banli.example.toml");
    let parsed: Config = toml::from_str(text).expect("the example parses");
    assert_eq!(parsed, Config::default());
}

#[test]
fn unknown_keys_are_refused_with_the_file_and_key() {
    let dir = std::env::temp_dir().join(format!("banli-config-{}", uuid_like()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("bad.toml");
    std::fs::write(&file, "http_adr = \"127.0.0.1:1\"\n").expect("write");
    let err = Config::load(&Overrides {
        config: Some(file.clone()),
        ..Default::default()
    })
    .expect_err("unknown key");
    let text = err.to_string();
    assert!(
        text.contains("bad.toml") && text.contains("http_adr"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).expect("cleanup");
}

#[test]
fn flags_override_the_file_and_secrets_do_not_print() {
    let o = Overrides {
        database_url: Some("postgres://u:pw@h/db".into()),
        profile: Some("national".into()),
        ..Default::default()
    };
    let c = Config::load(&o).expect("loads");
    assert_eq!(c.profile, "national");
    assert!(!format!("{c:?}").contains("pw"));
    assert_eq!(c.database_url(), "postgres://u:pw@h/db");
    let bad = Overrides {
        database_url: Some("mysql://x".into()),
        ..Default::default()
    };
    assert!(Config::load(&bad).is_err());
}

#[test]
fn webhook_networks_must_be_cidrs() {
    let mut c = Config {
        webhook_allowed_networks: vec!["10.20.0.0/16".into(), "10.0.0.0/33".into()],
        ..Config::default()
    };
    let err = c.validate().expect_err("not a network").to_string();
    assert!(
        err.contains("webhook_allowed_networks") && err.contains("10.0.0.0/33"),
        "{err}"
    );
    c.webhook_allowed_networks.pop();
    c.validate().expect("a network");
    let egress = c.webhook_egress().expect("a policy");
    assert!(egress.check("10.20.1.1".parse().expect("ip")).is_ok());
    assert!(egress.check("10.21.1.1".parse().expect("ip")).is_err());
}

#[test]
fn references_are_kept_at_least_as_long_as_keys() {
    let mut c = Config {
        idempotency_retention_hours: 72,
        reference_retention_days: 2,
        ..Config::default()
    };
    let err = c.validate().expect_err("shorter").to_string();
    assert!(err.contains("reference_retention_days"), "{err}");
    c.reference_retention_days = 3;
    c.validate().expect("as long");
}

#[test]
fn an_otlp_endpoint_must_be_a_url() {
    let mut c = Config {
        otlp_endpoint: Some("127.0.0.1:4317".into()),
        ..Config::default()
    };
    let err = c.validate().expect_err("not a URL").to_string();
    assert!(
        err.contains("otlp_endpoint") && err.contains("http://"),
        "{err}"
    );
    c.otlp_endpoint = Some("http://127.0.0.1:4317".into());
    c.validate().expect("a URL");
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

#[test]
fn notification_channels_are_checked_at_start() {
    let mut c = Config::default();
    c.notify.sms_url = Some("https://sms.example.gov.cn/send".into());
    let err = c.validate().expect_err("no secret").to_string();
    assert!(err.contains("notify.sms_secret"), "{err}");
    c.notify.sms_secret = Some(Secret("s".into()));
    c.notify.sms_template = "{\"to\": ".into();
    let err = c.validate().expect_err("not JSON").to_string();
    assert!(err.contains("notify.sms_template"), "{err}");
    c.notify.sms_template = banli_notify::deliver::SMS_TEMPLATE.into();
    c.validate().expect("an SMS gateway");
    c.notify.smtp_url = Some(Secret("ftp://mail.example.gov.cn".into()));
    let err = c.validate().expect_err("not SMTP").to_string();
    assert!(err.contains("notify.smtp_url"), "{err}");
    c.notify.smtp_url = Some(Secret(
        "smtp://u:pw@mail.example.gov.cn:587?tls=required".into(),
    ));
    c.notify.smtp_from = "nobody".into();
    let err = c.validate().expect_err("not a mailbox").to_string();
    assert!(
        err.contains("notify.smtp_from") && !err.contains("pw"),
        "{err}"
    );
    c.notify.smtp_from = "建议办理平台 <banli@example.gov.cn>".into();
    let (smtp, sms) = c.notify_channels().expect("both");
    assert!(smtp.is_some() && sms.is_some());
    assert!(!format!("{c:?}").contains("pw"));
}

#[test]
fn a_document_bucket_needs_its_keys_and_they_do_not_print() {
    let text = "[documents_s3]\nendpoint = \"http://minio:9000\"\nbucket = \"docs\"\naccess_key = \"AK\"\nsecret_key = \"very-secret\"\n";
    let c: Config = toml::from_str(text).expect("parses");
    let s3 = c.documents_s3.as_ref().expect("a bucket");
    assert_eq!((s3.region.as_str(), s3.prefix.as_str()), ("us-east-1", ""));
    c.validate().expect("valid");
    assert!(!format!("{c:?}").contains("very-secret"));
    let sms = Config {
        notify: NotifyConfig {
            sms_secret: Some(Secret("gateway-secret".into())),
            ..NotifyConfig::default()
        },
        ..Config::default()
    };
    assert!(!format!("{sms:?}").contains("gateway-secret"));
    let mut bad = c.clone();
    if let Some(s3) = bad.documents_s3.as_mut() {
        s3.secret_key = Secret(String::new());
    }
    assert!(
        bad.validate()
            .expect_err("no key")
            .to_string()
            .contains("documents_s3")
    );
    let zero = Config {
        max_document_bytes: 0,
        ..Config::default()
    };
    assert!(zero.validate().is_err());
    assert_eq!(
        Config::default().documents_path(),
        std::path::PathBuf::from("./data").join("documents")
    );
}
