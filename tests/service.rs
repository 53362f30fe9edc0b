//! Service endpoints and the behaviour every response shares: probes, API index, security and
//! cache headers, CORS, https redirect, body limits, errors for unknown routes and methods,
//! metrics, OpenAPI document and Swagger UI, request ids and compression.

mod common;

use std::time::Duration;

use common::{Backend, TestApp};
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const ALLOWED_ORIGIN: &str = "https://app.example.com";

/// Settings of a production server (the harness's secrets are already strong).
const PRODUCTION: &[(&str, &str)] = &[("NODE_ENV", "production"), ("CORS_ORIGIN", ALLOWED_ORIGIN)];

/// Like `both_databases!`, with extra settings for the server.
macro_rules! both_databases_with {
    ($settings:expr, async fn $name:ident($app:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($app: TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(TestApp::spawn_with(Backend::Sqlite, $settings).await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(TestApp::spawn_with(Backend::Postgres, $settings).await).await
            }
        }
    };
}

/// Settings of a development server (the harness runs `test` by default).
const DEVELOPMENT: &[(&str, &str)] = &[("NODE_ENV", "development")];

/// Asserts a timestamp is ISO-8601 UTC with milliseconds and within a minute of now.
fn assert_recent_iso_timestamp(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("timestamp is a string: {value}"));
    assert_eq!(text.len(), 24, "YYYY-MM-DDTHH:MM:SS.mmmZ, got {text}");
    assert!(
        text.ends_with('Z') && text.as_bytes()[19] == b'.',
        "milliseconds and Z: {text}"
    );
    let parsed = chrono::DateTime::parse_from_rfc3339(text).expect("an RFC 3339 timestamp");
    let skew = (chrono::Utc::now() - parsed.with_timezone(&chrono::Utc))
        .num_seconds()
        .abs();
    assert!(skew < 60, "timestamp {text} is not now");
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A GET with extra headers; returns status, headers and body text.
async fn get_with(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, String) {
    let mut request = app.client.get(app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.expect("body read");
    (status, headers, body)
}

/// Writes raw bytes on a fresh connection and reads one response (head and a body of the
/// declared Content-Length) without waiting for the connection to close.
/// Returns the status code, the head and the body.
async fn raw_request(app: &TestApp, request: &[u8]) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(request).await.expect("request written");
    let read_response = async {
        let mut answer = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = stream.read(&mut buf).await.expect("read");
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .expect("a Content-Length");
                if body.len() >= length {
                    return (head.to_string(), body.to_string());
                }
            }
            assert!(n > 0, "connection closed before a whole response: {text:?}");
        }
    };
    let (head, body) = tokio::time::timeout(Duration::from_secs(10), read_response)
        .await
        .expect("a response within 10 s");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, head, body)
}

async fn assert_ping_answers(app: &TestApp) {
    let (status, _, body) = get_with(app, "/ping", &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "pong"));
}

both_databases!(
    async fn health_and_ready(app) {
        let (status, body) = app.get("/health", None).await;
        assert_eq!(status, 200);
        assert_eq!(body["status"], "ok");
        let (status, body) = app.get("/ready", None).await;
        assert_eq!(status, 200);
        assert_eq!(body, serde_json::json!({"status":"ready","database":"ok","cache":"disabled"}));
    }
);

both_databases!(
    async fn ping_answers_plain_text_pong(app) {
        let (status, headers, body) = get_with(&app, "/ping", &[]).await;
        assert_eq!(status, 200);
        assert_eq!(body, "pong");
        let content_type = header(&headers, "content-type").unwrap_or_default();
        assert!(content_type.starts_with("text/plain"), "content type {content_type}");
    }
);

both_databases!(
    async fn health_bodies_are_exact(app) {
        let (status, body) = app.get("/health", None).await;
        assert_eq!(status, 200);
        let keys: Vec<&String> = body.as_object().expect("an object").keys().collect();
        assert_eq!(keys.len(), 2, "only status and timestamp: {body}");
        assert_eq!(body["status"], "ok");
        assert_recent_iso_timestamp(&body["timestamp"]);

        let (status, body) = app.get("/api/v1/health", None).await;
        assert_eq!(status, 200);
        assert_recent_iso_timestamp(&body["timestamp"]);
        let mut without_time = body.clone();
        without_time.as_object_mut().unwrap().remove("timestamp");
        assert_eq!(
            without_time,
            json!({"status": "ok", "service": "CashCraft API", "version": VERSION})
        );
    }
);

both_databases!(
    async fn api_index_lists_every_resource(app) {
        let (status, body) = app.get("/api/v1", None).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({
                "message": "CashCraft API",
                "version": VERSION,
                "endpoints": {
                    "auth": "/api/v1/auth",
                    "accounts": "/api/v1/accounts",
                    "transactions": "/api/v1/transactions",
                    "categories": "/api/v1/categories",
                    "debts": "/api/v1/debts",
                    "exchangeRates": "/api/v1/exchange-rates",
                    "sync": "/api/v1/sync"
                }
            })
        );
    }
);

both_databases!(
    async fn security_headers_on_every_response(app) {
        for path in ["/ping", "/health", "/ready", "/api/v1", "/api/v1/health", "/no/such/route"] {
            let (_, headers, _) = get_with(&app, path, &[]).await;
            assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"), "{path}");
            assert_eq!(header(&headers, "x-frame-options"), Some("DENY"), "{path}");
            assert_eq!(
                header(&headers, "referrer-policy"),
                Some("strict-origin-when-cross-origin"),
                "{path}"
            );
            // Not production: no HSTS.
            assert_eq!(header(&headers, "strict-transport-security"), None, "{path}");
        }
    }
);

both_databases!(
    async fn api_responses_are_not_cached(app) {
        for path in ["/api/v1", "/api/v1/health", "/api/v1/no-such-thing"] {
            let (_, headers, _) = get_with(&app, path, &[]).await;
            assert_eq!(header(&headers, "cache-control"), Some("no-store"), "{path}");
        }
        for path in ["/health", "/ping"] {
            let (_, headers, _) = get_with(&app, path, &[]).await;
            assert_ne!(header(&headers, "cache-control"), Some("no-store"), "{path}");
        }
    }
);

both_databases_with!(
    DEVELOPMENT,
    async fn no_hsts_in_development(app) {
        for path in ["/health", "/api/v1/health"] {
            let (status, headers, _) = get_with(&app, path, &[]).await;
            assert_eq!(status, 200);
            assert_eq!(header(&headers, "strict-transport-security"), None, "{path}");
        }
    }
);

both_databases_with!(
    PRODUCTION,
    async fn production_sends_hsts(app) {
        for path in ["/health", "/api/v1/health", "/no/such/route"] {
            let (_, headers, _) = get_with(&app, path, &[]).await;
            let hsts = header(&headers, "strict-transport-security").unwrap_or_default();
            assert!(hsts.contains("max-age="), "{path}: HSTS {hsts:?}");
            assert_eq!(header(&headers, "x-frame-options"), Some("DENY"), "{path}");
        }
    }
);

/// Sends a CORS preflight; returns status and headers.
async fn preflight(app: &TestApp, origin: &str) -> (StatusCode, HeaderMap) {
    let response = app
        .client
        .request(Method::OPTIONS, app.url("/api/v1/health"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization,content-type")
        .send()
        .await
        .expect("preflight sent");
    (response.status(), response.headers().clone())
}

both_databases_with!(
    PRODUCTION,
    async fn production_cors_allows_only_configured_origins(app) {

    let (status, headers) = preflight(&app, ALLOWED_ORIGIN).await;
    assert!(status.is_success(), "preflight status {status}");
    assert_eq!(header(&headers, "access-control-allow-origin"), Some(ALLOWED_ORIGIN));
    let methods = header(&headers, "access-control-allow-methods").unwrap_or_default();
    assert!(methods.contains("POST"), "allowed methods {methods:?}");
    let allowed_headers = header(&headers, "access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(allowed_headers.contains("authorization"), "{allowed_headers:?}");

    let (_, headers) = preflight(&app, "https://evil.example.com").await;
    assert_eq!(header(&headers, "access-control-allow-origin"), None);

    // Simple requests too.
    let (status, headers, _) = get_with(&app, "/api/v1/health", &[("Origin", ALLOWED_ORIGIN)]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "access-control-allow-origin"), Some(ALLOWED_ORIGIN));
    let (status, headers, _) = get_with(&app, "/api/v1/health", &[("Origin", "https://evil.example.com")]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "access-control-allow-origin"), None);
    }
);

both_databases_with!(
    DEVELOPMENT,
    async fn development_cors_allows_any_origin(app) {
    for origin in ["http://localhost:8081", "https://anything.example.org"] {
        let (status, headers) = preflight(&app, origin).await;
        assert!(status.is_success(), "preflight status {status}");
        let allowed = header(&headers, "access-control-allow-origin").unwrap_or_default();
        assert!(allowed == "*" || allowed == origin, "{origin}: allowed {allowed:?}");
        let (_, headers, _) = get_with(&app, "/api/v1/health", &[("Origin", origin)]).await;
        let allowed = header(&headers, "access-control-allow-origin").unwrap_or_default();
        assert!(allowed == "*" || allowed == origin, "{origin}: allowed {allowed:?}");
    }
    }
);

both_databases!(
    async fn unknown_route_is_a_json_404(app) {
        for path in ["/nope", "/api/v1/nope", "/api/v2/accounts"] {
            let (status, headers, body) = get_with(&app, path, &[]).await;
            assert_eq!(status, 404, "{path}");
            assert!(header(&headers, "content-type").unwrap_or_default().starts_with("application/json"));
            let body: Value = serde_json::from_str(&body).expect("JSON body");
            assert_eq!(body, json!({"error": "Route not found"}), "{path}");
        }
        let (status, body) = app.post("/api/v1/nope", None, json!({})).await;
        assert_eq!(status, 404);
        assert_eq!(body, json!({"error": "Route not found"}));
    }
);

both_databases!(
    async fn wrong_method_is_a_json_405(app) {
        for (method, path) in [
            (Method::POST, "/health"),
            (Method::DELETE, "/ping"),
            (Method::PUT, "/api/v1/health"),
            (Method::POST, "/api/v1"),
        ] {
            let (status, body) = app.call(method.clone(), path, None, Some(json!({}))).await;
            assert_eq!(status, 405, "{method} {path}");
            assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{method} {path}: {body}");
        }
    }
);

both_databases!(
    async fn oversized_bodies_are_refused_with_413(app) {
        // Declared length over 10 MiB: refused before a byte of the body is read.
        let declared = 10 * 1024 * 1024 + 1;
        let request = format!(
            "POST /api/v1/health HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n",
            app.addr
        );
        let (status, head, body) = raw_request(&app, request.as_bytes()).await;
        assert_eq!(status, 413, "{head}");
        let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("JSON body: {body:?}"));
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");

        // A real 11 MiB body.
        let big = vec![b'a'; 11 * 1024 * 1024];
        let response = app
            .client
            .post(app.url("/api/v1/health"))
            .header("Content-Type", "application/json")
            .body(big)
            .send()
            .await
            .expect("the server answers instead of dropping the connection");
        assert_eq!(response.status(), 413);
        let body: Value = response.json().await.expect("JSON body");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");

        // And the server carries on.
        assert_ping_answers(&app).await;
    }
);

both_databases_with!(
    PRODUCTION,
    async fn production_redirects_plain_http_to_https_but_never_the_probes(app) {
    let forwarded_http = [("X-Forwarded-Proto", "http")];

    for path in ["/api/v1", "/api/v1/health?verbose=1"] {
        let (status, headers, _) = get_with(&app, path, &forwarded_http).await;
        assert_eq!(status, 308, "{path}");
        assert_eq!(header(&headers, "location"), Some(format!("https://{}{path}", app.addr).as_str()));
    }
    for path in ["/health", "/ready", "/ping"] {
        let (status, _, _) = get_with(&app, path, &forwarded_http).await;
        assert_eq!(status, 200, "{path} is never redirected");
    }
    // Already https, or no proxy at all: served.
    let (status, _, _) = get_with(&app, "/api/v1", &[("X-Forwarded-Proto", "https")]).await;
    assert_eq!(status, 200);
    let (status, _, _) = get_with(&app, "/api/v1", &[]).await;
    assert_eq!(status, 200);
    }
);

both_databases_with!(
    DEVELOPMENT,
    async fn development_never_redirects(app) {
        let (status, _, _) = get_with(&app, "/api/v1", &[("X-Forwarded-Proto", "http")]).await;
        assert_eq!(status, 200);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_names_an_unreachable_database_while_health_stays_up() {
    let app = TestApp::spawn_with(
        Backend::Postgres,
        &[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")],
    )
    .await;
    let (status, body) = app.get("/health", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");

    let started = std::time::Instant::now();
    let (status, body) = app.get("/ready", None).await;
    assert!(started.elapsed() < Duration::from_secs(5), "readiness answers quickly");
    assert_eq!(status, 503);
    assert_eq!(body["database"], "unreachable", "{body}");
    assert_ne!(body["status"], "ready");
    let error = body["error"].as_str().unwrap_or_default().to_ascii_lowercase();
    assert!(error.contains("database"), "the failing part is named: {body}");

    assert_ping_answers(&app).await;
}

both_databases!(
    async fn metrics_count_requests_by_route_and_show_the_pool(app) {
        assert_ping_answers(&app).await;
        let _ = app.get("/api/v1/health", None).await;
        let (status, headers, text) = get_with(&app, "/metrics", &[]).await;
        assert_eq!(status, 200);
        assert!(header(&headers, "content-type").unwrap_or_default().starts_with("text/plain"));
        let ping_counted = text
            .lines()
            .any(|l| l.starts_with("http_requests_total{") && l.contains("route=\"/ping\"") && l.contains("status=\"200\""));
        assert!(ping_counted, "http_requests_total for /ping in:\n{text}");
        let api_counted = text
            .lines()
            .any(|l| l.starts_with("http_requests_total{") && l.contains("route=\"/api/v1/health\""));
        assert!(api_counted, "http_requests_total for /api/v1/health in:\n{text}");
        assert!(text.contains("http_request_duration_seconds"), "latency histogram in:\n{text}");
        assert!(text.lines().any(|l| l.starts_with("db_pool_connections")), "pool gauge in:\n{text}");
    }
);

both_databases!(
    async fn openapi_document_describes_the_api(app) {
        let (status, doc) = app.get("/api/v1/openapi.json", None).await;
        assert_eq!(status, 200);
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
        assert_eq!(doc["info"]["version"], VERSION);
        let paths = doc["paths"].as_object().expect("paths");
        for path in ["/health", "/ready", "/ping", "/api/v1/health"] {
            assert!(paths.contains_key(path), "{path} in {:?}", paths.keys().collect::<Vec<_>>());
        }
    }
);

both_databases!(
    async fn swagger_ui_is_served_from_vendored_assets(app) {
        let (status, headers, html) = get_with(&app, "/docs/", &[]).await;
        assert_eq!(status, 200);
        assert!(header(&headers, "content-type").unwrap_or_default().starts_with("text/html"));
        assert!(html.contains("swagger-ui"), "{html}");
        // No asset from a CDN: every script and stylesheet is served by the server itself.
        for cdn in ["unpkg.com", "jsdelivr", "cdnjs", "googleapis"] {
            assert!(!html.contains(cdn), "{cdn} in {html}");
        }
        for asset in ["swagger-ui.css", "swagger-ui-bundle.js", "swagger-initializer.js"] {
            let (status, _, body) = get_with(&app, &format!("/docs/{asset}"), &[]).await;
            assert_eq!(status, 200, "{asset}");
            assert!(!body.is_empty(), "{asset}");
        }
        let (_, _, initializer) = get_with(&app, "/docs/swagger-initializer.js", &[]).await;
        assert!(initializer.contains("/api/v1/openapi.json"), "{initializer}");
    }
);

both_databases!(
    async fn every_response_carries_a_request_id(app) {
        let mut seen = Vec::new();
        for path in ["/ping", "/health", "/api/v1", "/no/such/route"] {
            let (_, headers, _) = get_with(&app, path, &[]).await;
            let id = header(&headers, "x-request-id").unwrap_or_else(|| panic!("{path}: no x-request-id"));
            assert!(uuid::Uuid::parse_str(id).is_ok(), "{path}: {id}");
            seen.push(id.to_string());
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 4, "a new id per request");

        // An id sent by the client (or a proxy) is kept.
        let (_, headers, _) = get_with(&app, "/ping", &[("x-request-id", "client-chosen-id-123")]).await;
        assert_eq!(header(&headers, "x-request-id"), Some("client-chosen-id-123"));
    }
);

both_databases!(
    async fn large_responses_are_gzipped_on_request(app) {
        let (status, plain_headers, plain) = get_with(&app, "/api/v1/openapi.json", &[]).await;
        assert_eq!(status, 200);
        assert_eq!(header(&plain_headers, "content-encoding"), None);
        assert!(plain.len() > 1024, "a response large enough to compress");

        let response = app
            .client
            .get(app.url("/api/v1/openapi.json"))
            .header(header::ACCEPT_ENCODING, "gzip")
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 200);
        assert_eq!(header(response.headers(), "content-encoding"), Some("gzip"));
        let compressed = response.bytes().await.expect("body");
        assert_eq!(&compressed[..2], &[0x1f, 0x8b], "gzip magic number");
        assert!(compressed.len() < plain.len(), "{} < {}", compressed.len(), plain.len());
    }
);
