//! The deploy files against the code: the Kubernetes Ingress sends every REST prefix a service
//! answers (its `http::PATHS`, the service's route table) to that service, and names no prefix
//! that nobody answers; every path of each service's OpenAPI document and every gRPC service of
//! the protos is in exactly one route table and reaches that service; compose
//! and Kubernetes give each service a database of its own, which PostgreSQL's first start makes.

/// The Ingress rules of `deploy/k8s/banli.yaml`: (path prefix, service name), in order.
fn ingress_rules() -> Vec<(String, String)> {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/k8s/banli.yaml"
    ))
    .expect("deploy/k8s/banli.yaml");
    let ingress = yaml
        .split("\n---")
        .find(|doc| doc.contains("kind: Ingress"))
        .expect("an Ingress in deploy/k8s/banli.yaml");
    let mut rules = Vec::new();
    let mut path: Option<String> = None;
    for line in ingress.lines().map(str::trim) {
        if let Some(p) = line.strip_prefix("- path:") {
            path = Some(p.trim().to_owned());
        } else if let Some(rest) = line.split("service: { name:").nth(1) {
            let service = rest.split(',').next().unwrap_or_default().trim().to_owned();
            rules.push((path.take().expect("a path before its backend"), service));
        }
    }
    rules
}

/// Where the Ingress sends `path`: the backend of its longest matching prefix.
fn target<'a>(rules: &'a [(String, String)], path: &str) -> Option<&'a str> {
    rules
        .iter()
        .filter(|(p, _)| path.starts_with(p.as_str()))
        .max_by_key(|(p, _)| p.len())
        .map(|(_, s)| s.as_str())
}

/// Each service's route table; the follow-up process serves the audit log too.
const SERVICES: [(&str, &[&str]); 4] = [
    ("suggestions", banli_suggestions::http::PATHS),
    ("coordination", banli_coordination::http::PATHS),
    ("followup", banli_followup::http::PATHS),
    // The notification service runs in the follow-up process.
    ("followup", banli_notify::http::PATHS),
];

#[test]
fn the_ingress_sends_each_prefix_to_the_service_that_answers_it() {
    let rules = ingress_rules();
    let target = |prefix: &str| target(&rules, prefix);
    let services = SERVICES;
    let mut failures = Vec::new();
    for (service, paths) in services {
        for prefix in paths.iter().filter(|p| p.starts_with("/v1/")) {
            if target(prefix) != Some(service) {
                failures.push(format!(
                    "{prefix} (served by {service}) goes to {:?}",
                    target(prefix)
                ));
            }
        }
    }
    for (prefix, service) in &rules {
        let answered = prefix == "/"
            || services
                .iter()
                .any(|(s, paths)| s == service && paths.contains(&prefix.as_str()));
        if !answered {
            failures.push(format!(
                "the rule {prefix} → {service} names a prefix {service} does not serve"
            ));
        }
    }
    assert!(rules.len() > 1, "no Ingress rules read: {rules:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_path_of_each_services_openapi_document_reaches_that_service() {
    let rules = ingress_rules();
    let documents = [
        ("suggestions", banli_suggestions::http::openapi()),
        ("coordination", banli_coordination::http::openapi()),
        ("followup", banli_followup::http::openapi()),
        ("followup", banli_auditlog::http::openapi()),
        ("followup", banli_notify::http::openapi()),
    ];
    let tables = |path: &str| -> Vec<&str> {
        SERVICES
            .iter()
            .filter(|(_, paths)| paths.iter().any(|p| path.starts_with(p)))
            .map(|(s, _)| *s)
            .collect()
    };
    let mut failures = Vec::new();
    let mut checked = 0;
    for (service, document) in &documents {
        // `/healthz` and `/readyz` are every process's own, not routed.
        for path in document
            .paths
            .paths
            .keys()
            .filter(|p| p.starts_with("/v1/"))
        {
            checked += 1;
            if tables(path) != [*service] {
                failures.push(format!(
                    "{path} (in {service}'s OpenAPI document) is in the route tables of {:?}",
                    tables(path)
                ));
            }
            if target(&rules, path) != Some(*service) {
                failures.push(format!(
                    "{path} (in {service}'s OpenAPI document) goes to {:?}",
                    target(&rules, path)
                ));
            }
        }
    }
    // gRPC: each service of the protos is answered by exactly one process (its port; the
    // Ingress carries REST only).
    let grpc = banli_proto::service_names().expect("the protos' descriptor set");
    for name in &grpc {
        let path = format!("/{name}/");
        checked += 1;
        if tables(&path).len() != 1 {
            failures.push(format!(
                "the gRPC service {name} is in the route tables of {:?}",
                tables(&path)
            ));
        }
    }
    assert!(
        [
            "banli.suggestions.v1.SuggestionService",
            "banli.audit.v1.AuditService"
        ]
        .iter()
        .all(|n| grpc.iter().any(|g| g == n)),
        "too few gRPC services read: {grpc:?}"
    );
    assert!(checked > 40, "only {checked} paths read");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn deploy_file(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../deploy/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("deploy/{path}: {e}"))
}

/// The database name at the end of a `postgres://…/name` URL in `line`.
fn database_in(line: &str) -> Option<String> {
    let url = &line[line.find("postgres://")?..];
    let name = url.rsplit('/').next()?;
    Some(
        name.trim_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .to_owned(),
    )
}

/// Checks that the three services' databases differ and that the first start makes each: the
/// `POSTGRES_DB` one, the others by `CREATE DATABASE` in `init`.
fn each_service_has_its_own(databases: &[(&str, String)], postgres_db: &str, init: &str) {
    let names: std::collections::BTreeSet<&str> =
        databases.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(names.len(), 3, "one database per service: {databases:?}");
    for (service, db) in databases {
        assert!(
            db == postgres_db || init.contains(&format!("CREATE DATABASE {db} ")),
            "{service}'s database {db} is not created on the first start"
        );
    }
}

#[test]
fn compose_and_kubernetes_give_each_service_its_own_database() {
    let compose = deploy_file("compose/compose.yaml");
    let mut databases = Vec::new();
    let mut service = "";
    for line in compose.lines() {
        if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
            && !name.starts_with(' ')
        {
            service = name;
        }
        if line.contains("BANLI_DATABASE_URL")
            && let Some(db) = database_in(line)
        {
            databases.push((service, db));
        }
    }
    let postgres_db = compose
        .lines()
        .find_map(|l| l.trim().strip_prefix("POSTGRES_DB:"))
        .expect("POSTGRES_DB in compose")
        .trim()
        .to_owned();
    each_service_has_its_own(
        &databases,
        &postgres_db,
        &deploy_file("compose/postgres-init.sql"),
    );
    assert_eq!(
        databases.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        ["suggestions", "coordination", "followup"],
        "{databases:?}"
    );

    let k8s = deploy_file("k8s/banli.yaml");
    let url = |key: &str| {
        k8s.lines()
            .find(|l| l.trim_start().starts_with(&format!("{key}:")))
            .and_then(database_in)
            .unwrap_or_else(|| panic!("{key} in the Secret"))
    };
    let databases: Vec<(&str, String)> = ["suggestions", "coordination", "followup"]
        .into_iter()
        .map(|s| (s, url(&format!("{s}-database-url"))))
        .collect();
    for (service, _) in &databases {
        let deployment = k8s
            .split("\n---")
            .find(|d| d.contains("kind: Deployment") && d.contains(&format!("name: {service}\n")))
            .unwrap_or_else(|| panic!("a Deployment of {service}"));
        assert!(
            deployment.contains(&format!("key: {service}-database-url")),
            "{service} reads its own database URL"
        );
    }
    let postgres_db = k8s
        .lines()
        .find_map(|l| l.split("name: POSTGRES_DB, value:").nth(1))
        .expect("POSTGRES_DB in the StatefulSet")
        .trim()
        .trim_end_matches('}')
        .trim()
        .to_owned();
    each_service_has_its_own(&databases, &postgres_db, &k8s);
}
