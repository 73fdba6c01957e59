//! The deploy files against the code: the Kubernetes Ingress sends every REST prefix a service
//! answers (its `http::PATHS`) to that service, and names no prefix that nobody answers.

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

#[test]
fn the_ingress_sends_each_prefix_to_the_service_that_answers_it() {
    let rules = ingress_rules();
    let target = |prefix: &str| {
        rules
            .iter()
            .filter(|(p, _)| prefix.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, s)| s.as_str())
    };
    let services: [(&str, &[&str]); 3] = [
        ("suggestions", banli_suggestions::http::PATHS),
        ("coordination", banli_coordination::http::PATHS),
        // The follow-up process serves the audit log too.
        ("followup", banli_followup::http::PATHS),
    ];
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
