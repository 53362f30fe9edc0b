//! Static checks of the deployment files: docker-compose.yml, both Dockerfiles, .dockerignore,
//! .env.example and the README's configuration table, against what the server actually reads.

use std::collections::BTreeSet;
use std::path::Path;

use serde_yaml::Value;

fn read(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Every configuration key `src/config.rs` reads: the string literal passed to the `get`
/// lookup, directly (`get("PORT")`) or through a helper (`parse_num(&get, "PORT", …)`).
fn config_keys() -> BTreeSet<String> {
    let source = read("src/config.rs");
    let source = source.split("#[cfg(test)]").next().unwrap_or_default();
    let mut keys = BTreeSet::new();
    for marker in ["get(\"", "&get, \""] {
        for (at, _) in source.match_indices(marker) {
            let rest = &source[at + marker.len()..];
            let key: String = rest.chars().take_while(|c| *c != '"').collect();
            if !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                keys.insert(key);
            }
        }
    }
    keys
}

#[test]
fn the_config_key_scan_finds_the_keys() {
    let keys = config_keys();
    for key in [
        "NODE_ENV",
        "PORT",
        "HOST",
        "DATABASE_URL",
        "DB_HOST",
        "JWT_SECRET",
        "ENCRYPTION_KEY",
        "DB_MAX_CONNECTIONS",
        "RATE_LIMIT_MAX_REQUESTS",
        "TRUST_PROXY",
        "FREE_ACCOUNT_LIMIT",
    ] {
        assert!(keys.contains(key), "{key} in {keys:?}");
    }
    assert!(keys.len() >= 25, "{keys:?}");
}

/// Whether `text` names `key` as a whole word (so `DB_HOST` is not found inside `XDB_HOSTS`).
fn names(text: &str, key: &str) -> bool {
    text.match_indices(key).any(|(at, _)| {
        let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let before = text[..at].chars().next_back();
        let after = text[at + key.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[test]
fn env_example_documents_every_setting_the_server_reads() {
    let example = read(".env.example");
    let assigned: BTreeSet<String> = example
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (key, _) = l.split_once('=').unwrap_or_else(|| panic!("KEY=value: {l:?}"));
            key.trim().to_string()
        })
        .collect();
    for key in config_keys() {
        assert!(assigned.contains(&key), ".env.example sets {key}");
    }
    // The API contract names it; the server does not need it, and the example says so.
    assert!(assigned.contains("JWT_REFRESH_SECRET"));

    // Secrets are left for the operator to generate.
    for line in example.lines().map(str::trim) {
        for secret in [
            "JWT_SECRET=",
            "ENCRYPTION_KEY=",
            "JWT_REFRESH_SECRET=",
            "POSTGRES_PASSWORD=",
        ] {
            if line.starts_with(secret) {
                assert_eq!(line, secret, "{secret} is left empty");
            }
        }
    }
    assert!(example.contains("openssl rand -hex 32"));

    // Every assignment has a comment right above it (or belongs to a commented group).
    let lines: Vec<&str> = example.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if !line.trim().is_empty() && !line.starts_with('#') {
            let documented = lines[..i]
                .iter()
                .rev()
                .take_while(|l| !l.trim().is_empty())
                .any(|l| l.starts_with('#'));
            assert!(documented, "a comment for {line:?}");
        }
    }
}

#[test]
fn readme_configuration_table_lists_every_setting() {
    let readme = read("README.md");
    let table: String = readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .collect::<Vec<_>>()
        .join("\n");
    for key in config_keys() {
        assert!(names(&table, &key), "README's configuration table lists {key}");
    }
}

fn compose() -> Value {
    serde_yaml::from_str(&read("docker-compose.yml")).expect("docker-compose.yml is valid YAML")
}

fn as_strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(as_strings).collect(),
        _ => Vec::new(),
    }
}

/// The `environment:` of a service as key → value, whichever YAML form it uses.
fn environment(service: &Value) -> Vec<(String, String)> {
    match &service["environment"] {
        Value::Mapping(map) => map
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => String::new(),
                };
                (k.as_str().unwrap_or_default().to_string(), value)
            })
            .collect(),
        Value::Sequence(items) => items
            .iter()
            .filter_map(|i| i.as_str())
            .map(|i| {
                let (k, v) = i.split_once('=').unwrap_or((i, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn env_value(service: &Value, key: &str) -> String {
    environment(service)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{key} in the environment of {service:?}"))
}

#[test]
fn compose_runs_the_app_with_postgres_and_redis() {
    let doc = compose();
    let services = &doc["services"];
    for name in ["app", "postgres", "redis"] {
        assert!(services[name].is_mapping(), "service {name}");
        let test = as_strings(&services[name]["healthcheck"]["test"]).join(" ");
        assert!(!test.is_empty(), "{name} has a healthcheck");
    }
    let app = &services["app"];

    // Built from the production image.
    assert_eq!(app["build"]["dockerfile"].as_str(), Some("Dockerfile.multi-stage"));
    assert_eq!(app["build"]["context"].as_str(), Some("."));

    // Port 3000 published.
    let ports = as_strings(&app["ports"]);
    assert!(ports.iter().any(|p| p.ends_with(":3000") || p == "3000"), "{ports:?}");
    assert_eq!(env_value(app, "PORT"), "3000");

    // Configuration and dependencies.
    assert_eq!(as_strings(&app["env_file"]), vec![".env".to_string()]);
    assert_eq!(env_value(app, "NODE_ENV"), "production");
    let database_url = env_value(app, "DATABASE_URL");
    assert!(database_url.starts_with("postgres://"), "{database_url}");
    assert!(database_url.contains("@postgres:5432/"), "{database_url}");
    assert!(env_value(app, "REDIS_URL").starts_with("redis://redis:6379"));
    for dependency in ["postgres", "redis"] {
        assert_eq!(
            app["depends_on"][dependency]["condition"].as_str(),
            Some("service_healthy"),
            "app waits for a healthy {dependency}"
        );
    }

    // Health check with the binary itself; graceful stop; restarts.
    let app_check = as_strings(&app["healthcheck"]["test"]).join(" ");
    assert!(
        app_check.contains("cashcraft") && app_check.contains("healthcheck"),
        "{app_check}"
    );
    assert_eq!(app["stop_grace_period"].as_str(), Some("30s"));
    assert_eq!(app["restart"].as_str(), Some("unless-stopped"));

    // PostgreSQL keeps its data in a volume and is probed with pg_isready.
    let postgres = &services["postgres"];
    assert!(postgres["image"].as_str().is_some_and(|i| i.starts_with("postgres:16")));
    assert!(as_strings(&postgres["healthcheck"]["test"])
        .join(" ")
        .contains("pg_isready"));
    let volumes = as_strings(&postgres["volumes"]);
    assert!(
        volumes.iter().any(|v| v.ends_with(":/var/lib/postgresql/data")),
        "{volumes:?}"
    );
    let volume_name = volumes[0].split(':').next().unwrap_or_default().to_string();
    assert!(doc["volumes"]
        .as_mapping()
        .is_some_and(|m| m.contains_key(volume_name.as_str())));
    // The app's URL uses the same user, password and database as the postgres service.
    for key in ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"] {
        assert!(database_url.contains(key), "{database_url} uses {key}");
        assert!(env_value(postgres, key).contains(key), "postgres takes {key} from .env");
    }

    let redis = &services["redis"];
    assert!(redis["image"].as_str().is_some_and(|i| i.starts_with("redis:7")));
    let redis_check = as_strings(&redis["healthcheck"]["test"]).join(" ");
    assert!(
        redis_check.contains("redis-cli") && redis_check.contains("ping"),
        "{redis_check}"
    );
}

/// A Dockerfile's instructions, continuation lines joined, comments dropped; heredoc bodies
/// are appended to the instruction that opens them.
fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut result: Vec<(String, String)> = Vec::new();
    let mut current = String::new();
    let mut heredoc: Option<String> = None;
    for line in dockerfile.lines() {
        if let Some(end) = &heredoc {
            if line.trim() == end {
                heredoc = None;
            } else if let Some(last) = result.last_mut() {
                last.1.push('\n');
                last.1.push_str(line);
            }
            continue;
        }
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (keyword, args) = current
            .split_once(char::is_whitespace)
            .unwrap_or((current.as_str(), ""));
        let args = args.trim().to_string();
        if let Some(at) = args.find("<<") {
            let marker: String = args[at + 2..]
                .trim_start_matches('-')
                .chars()
                .filter(|c| *c != '\'' && *c != '"')
                .take_while(|c| !c.is_whitespace())
                .collect();
            heredoc = Some(marker);
        }
        result.push((keyword.to_ascii_uppercase(), args));
        current.clear();
    }
    result
}

/// The instructions of the last stage.
fn final_stage(all: &[(String, String)]) -> &[(String, String)] {
    let start = all.iter().rposition(|(k, _)| k == "FROM").expect("a FROM");
    &all[start..]
}

fn assert_builds_release_binary(file: &str, all: &[(String, String)]) {
    let builds = all
        .iter()
        .any(|(k, a)| k == "RUN" && a.contains("cargo build") && a.contains("--release") && a.contains("--locked"));
    assert!(builds, "{file} runs cargo build --release --locked");
    let text = all.iter().map(|(_, a)| a.as_str()).collect::<Vec<_>>().join("\n");
    assert!(
        text.contains("target/release/cashcraft"),
        "{file} takes the cashcraft binary"
    );
}

#[test]
fn simple_dockerfile_builds_and_runs_the_release_binary() {
    let all = instructions(&read("Dockerfile"));
    assert_eq!(all.iter().filter(|(k, _)| k == "FROM").count(), 1, "single stage");
    assert!(all[0].1.contains("rust:") || all.iter().any(|(k, a)| k == "FROM" && a.contains("rust:")));
    assert_builds_release_binary("Dockerfile", &all);
    assert!(all
        .iter()
        .any(|(k, a)| k == "EXPOSE" && a.split_whitespace().any(|p| p == "3000")));
    let cmd = all.iter().rfind(|(k, _)| k == "CMD" || k == "ENTRYPOINT").expect("CMD");
    assert!(cmd.1.contains("cashcraft"), "{cmd:?}");
}

#[test]
fn multi_stage_dockerfile_runs_only_the_binary_as_an_unprivileged_user() {
    let text = read("Dockerfile.multi-stage");
    let all = instructions(&text);
    assert!(
        all.iter().filter(|(k, _)| k == "FROM").count() >= 2,
        "builder and runtime stages"
    );
    assert_builds_release_binary("Dockerfile.multi-stage", &all);

    // Dependency caching: the manifests are copied (and dependencies built) before the sources.
    let position = |pred: &dyn Fn(&(String, String)) -> bool| all.iter().position(pred);
    let manifests = position(&|(k, a)| k == "COPY" && a.contains("Cargo.toml") && a.contains("Cargo.lock"))
        .expect("COPY Cargo.toml Cargo.lock");
    let sources =
        position(&|(k, a)| k == "COPY" && (a.starts_with(". ") || a.contains("src"))).expect("COPY of the sources");
    assert!(manifests < sources, "manifests before sources");
    let dependency_build =
        position(&|(k, a)| k == "RUN" && a.contains("cargo build")).expect("a dependency build step");
    assert!(
        dependency_build < sources,
        "dependencies built before the sources are copied"
    );
    // migrations/ must reach the final build (sqlx::migrate! embeds them).
    let dockerignore = read(".dockerignore");
    assert!(!dockerignore
        .lines()
        .any(|l| l.trim().trim_end_matches('/') == "migrations"));

    let runtime = final_stage(&all);
    let base = &runtime[0].1;
    assert!(!base.contains("rust:"), "the runtime stage has no toolchain: {base}");
    let copies: Vec<&String> = runtime.iter().filter(|(k, _)| k == "COPY").map(|(_, a)| a).collect();
    assert_eq!(copies.len(), 1, "only the binary is copied: {copies:?}");
    assert!(copies[0].starts_with("--from=") && copies[0].contains("target/release/cashcraft"));

    let user = runtime.iter().rfind(|(k, _)| k == "USER").expect("a USER").1.clone();
    let uid_1001 = user.split(':').next() == Some("1001")
        || runtime
            .iter()
            .any(|(k, a)| k == "RUN" && a.contains("1001") && a.contains(user.split(':').next().unwrap_or("?")));
    assert!(uid_1001, "runs as uid 1001, got USER {user}");
    assert_ne!(user, "root");
    assert_ne!(user, "0");

    assert!(runtime
        .iter()
        .any(|(k, a)| k == "EXPOSE" && a.split_whitespace().any(|p| p == "3000")));
    assert!(runtime.iter().any(|(k, a)| k == "STOPSIGNAL" && a == "SIGTERM"));
    let healthcheck = runtime
        .iter()
        .find(|(k, _)| k == "HEALTHCHECK")
        .expect("HEALTHCHECK")
        .1
        .clone();
    assert!(
        healthcheck.contains("CMD") && healthcheck.contains("cashcraft") && healthcheck.contains("healthcheck"),
        "{healthcheck}"
    );
    let env: String = runtime
        .iter()
        .filter(|(k, _)| k == "ENV")
        .map(|(_, a)| a.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(env.contains("NODE_ENV=production"), "{env}");
    assert!(env.contains("PORT=3000"), "{env}");
    let entry = runtime
        .iter()
        .filter(|(k, _)| k == "CMD" || k == "ENTRYPOINT")
        .map(|(_, a)| a.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(entry.contains("cashcraft"), "{entry}");
}

#[test]
fn dockerignore_keeps_builds_and_secrets_out_of_the_context() {
    let ignore = read(".dockerignore");
    let entries: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for expected in ["target", ".git", ".env", "*.db"] {
        assert!(
            entries.iter().any(|e| e.trim_end_matches('/') == expected),
            "{expected} in .dockerignore"
        );
    }
    assert!(entries.contains(&"!.env.example"), "the example stays in the context");
}

#[test]
fn ci_script_checks_formatting_lints_and_runs_the_tests() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/run");
    let script = read(".ci/run");
    assert!(script.starts_with("#!/usr/bin/env bash") || script.starts_with("#!/bin/bash"));
    assert!(script.contains("set -euo pipefail"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect(".ci/run").permissions().mode();
        assert!(mode & 0o111 != 0, ".ci/run is executable");
    }
    for step in [
        "cargo fmt --all -- --check",
        "cargo clippy --all-targets",
        "-D warnings",
        "cargo test",
        "pg_isready",
        "redis-cli",
    ] {
        assert!(script.contains(step), ".ci/run has {step}");
    }
}
