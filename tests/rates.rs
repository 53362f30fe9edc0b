//! Exchange rates over HTTP on both databases, against a local fake provider (ECB XML and OXR
//! JSON, switchable to failing, malformed and partial answers, counting hits).

mod common;

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use common::{Backend, TestApp};
use rust_decimal::Decimal;
use serde_json::{json, Value};

// ---- the fake provider ----------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Serves the current document.
    Ok,
    /// 503 with a text body.
    Fail,
    /// A document cut short.
    Malformed,
    /// A well-formed document without rates.
    Partial,
}

struct FakeState {
    mode: Mutex<Mode>,
    ecb: Mutex<String>,
    oxr: Mutex<String>,
    delay: Mutex<Duration>,
    hits: AtomicUsize,
    app_ids: Mutex<Vec<String>>,
}

struct FakeProvider {
    url: String,
    state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn ecb_xml(rates: &[(&str, &str)]) -> String {
    let cubes: String = rates
        .iter()
        .map(|(c, r)| format!("\t\t\t<Cube currency='{c}' rate='{r}'/>\n"))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <gesmes:Envelope xmlns:gesmes=\"http://www.gesmes.org/xml/2002-08-01\" xmlns=\"http://www.ecb.int/vocabulary/2002-08-01/eurofxref\">\n\
         \t<gesmes:subject>Reference rates</gesmes:subject>\n\
         \t<gesmes:Sender>\n\t\t<gesmes:name>European Central Bank</gesmes:name>\n\t</gesmes:Sender>\n\
         \t<Cube>\n\t\t<Cube time='2025-06-02'>\n{cubes}\t\t</Cube>\n\t</Cube>\n\
         </gesmes:Envelope>\n"
    )
}

fn oxr_json(rates: &[(&str, &str)]) -> String {
    let entries: Vec<String> = rates.iter().map(|(c, r)| format!("\"{c}\":{r}")).collect();
    format!(
        "{{\"disclaimer\":\"Usage subject to terms\",\"license\":\"https://openexchangerates.org/license\",\
         \"timestamp\":1748858400,\"base\":\"USD\",\"rates\":{{{}}}}}",
        entries.join(",")
    )
}

const ECB_RATES: &[(&str, &str)] = &[
    ("USD", "1.08"),
    ("GBP", "0.85"),
    ("JPY", "160.5"),
    ("IDR", "17500.25"),
    ("ISK", "145.3"),
];

const OXR_RATES: &[(&str, &str)] = &[
    ("USD", "1"),
    ("EUR", "0.925"),
    ("RUB", "80.5"),
    ("VND", "26385"),
    ("BTC", "0.000009523809523809524"),
];

impl FakeProvider {
    async fn start() -> FakeProvider {
        let state = Arc::new(FakeState {
            mode: Mutex::new(Mode::Ok),
            ecb: Mutex::new(ecb_xml(ECB_RATES)),
            oxr: Mutex::new(oxr_json(OXR_RATES)),
            delay: Mutex::new(Duration::ZERO),
            hits: AtomicUsize::new(0),
            app_ids: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route("/eurofxref-daily.xml", get(serve_ecb))
            .route("/latest.json", get(serve_oxr))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeProvider { url, state, task }
    }

    fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn set_ecb(&self, rates: &[(&str, &str)]) {
        *self.state.ecb.lock().unwrap() = ecb_xml(rates);
    }

    fn set_oxr(&self, rates: &[(&str, &str)]) {
        *self.state.oxr.lock().unwrap() = oxr_json(rates);
    }

    fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    fn app_ids(&self) -> Vec<String> {
        self.state.app_ids.lock().unwrap().clone()
    }

    /// Settings that make the app use this fake as the ECB.
    fn ecb_settings(&self) -> Vec<(&str, &str)> {
        vec![("RATES_PROVIDER_URL", self.url.as_str())]
    }

    /// Settings that make the app use this fake as Open Exchange Rates.
    fn oxr_settings(&self) -> Vec<(&str, &str)> {
        vec![
            ("RATES_PROVIDER_URL", self.url.as_str()),
            ("OPEN_EXCHANGE_RATES_API_KEY", "test-key-123"),
        ]
    }
}

async fn answer(
    state: &FakeState,
    document: String,
    malformed: String,
    partial: String,
    content_type: &str,
) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let delay = *state.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mode = *state.mode.lock().unwrap();
    let body = match mode {
        Mode::Ok => document,
        Mode::Fail => return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response(),
        Mode::Malformed => malformed,
        Mode::Partial => partial,
    };
    ([(axum::http::header::CONTENT_TYPE, content_type.to_string())], body).into_response()
}

async fn serve_ecb(State(state): State<Arc<FakeState>>) -> Response {
    let document = state.ecb.lock().unwrap().clone();
    let malformed = document[..document.find("<Cube currency='GBP'").unwrap_or(document.len() / 2)].to_string();
    let partial = ecb_xml(&[]);
    answer(&state, document, malformed, partial, "text/xml").await
}

async fn serve_oxr(
    State(state): State<Arc<FakeState>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let app_id = query.get("app_id").cloned().unwrap_or_default();
    state.app_ids.lock().unwrap().push(app_id.clone());
    if app_id != "test-key-123" {
        state.hits.fetch_add(1, Ordering::SeqCst);
        let body = json!({"error":true,"status":401,"message":"invalid_app_id","description":"Invalid App ID"});
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let document = state.oxr.lock().unwrap().clone();
    let malformed = document[..document.len() - 12].to_string();
    let partial = oxr_json(&[]);
    answer(&state, document, malformed, partial, "application/json").await
}

// ---- helpers --------------------------------------------------------------------------------

/// Runs `async fn $name(backend)` once on SQLite and once on PostgreSQL.
macro_rules! on_both_databases {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::common::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(crate::common::Backend::Postgres).await
            }
        }
    };
}

const RATES: &str = "/api/v1/exchange-rates";

fn path(rest: &str) -> String {
    format!("{RATES}{rest}")
}

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

/// A JSON number as an exact decimal (serde_json keeps the number's text).
fn number(value: &Value) -> Decimal {
    assert!(value.is_number(), "not a number: {value}");
    Decimal::from_str(&value.to_string())
        .or_else(|_| Decimal::from_scientific(&value.to_string()))
        .unwrap()
}

/// Waits until the app has provider rates (or panics after 15 s); answers `lastUpdate`.
async fn wait_for_rates(app: &TestApp) -> String {
    let started = Instant::now();
    loop {
        let (status, body) = app.get(&path("/last-update"), None).await;
        assert_eq!(status, 200, "{body}");
        if let Some(at) = body["data"]["lastUpdate"].as_str() {
            return at.to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(15), "rates never appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_hits(fake: &FakeProvider, n: usize) {
    let started = Instant::now();
    while fake.hits() < n {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the provider was never asked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn rate(app: &TestApp, from: &str, to: &str) -> (StatusCode, Value) {
    app.get(&path(&format!("/rate?from={from}&to={to}")), None).await
}

/// The rate's JSON text (exact: serde_json keeps the number as written).
async fn rate_text(app: &TestApp, from: &str, to: &str) -> String {
    rate_value(app, from, to).await.to_string()
}

async fn rate_value(app: &TestApp, from: &str, to: &str) -> Value {
    let (status, body) = rate(app, from, to).await;
    assert_eq!(status, 200, "{from}->{to}: {body}");
    assert_eq!(body["success"], true);
    body["data"]["rate"].clone()
}

/// Registers a user; answers (access token, user id).
async fn register(app: &TestApp, email: &str) -> (String, String) {
    let (status, body) = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": email, "password": "secret123"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (
        body["accessToken"].as_str().unwrap().to_string(),
        body["user"]["id"].as_str().unwrap().to_string(),
    )
}

fn assert_close(actual: Decimal, expected: Decimal) {
    assert!(
        (actual - expected).abs() <= d("0.00000001"),
        "{actual} is not within 1e-8 of {expected}"
    );
}

// ---- providers and rates --------------------------------------------------------------------

async fn ecb_rates_direct_inverse_and_cross(backend: Backend) {
    let fake = FakeProvider::start().await;
    // No call to /update anywhere: the rates come from the refresh at start (nothing stored).
    let app = TestApp::spawn_with(backend, &fake.ecb_settings()).await;
    wait_for_rates(&app).await;
    assert_eq!(fake.hits(), 1);

    let (status, body) = rate(&app, "EUR", "USD").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"success": true, "data": {"rate": 1.08, "from": "EUR", "to": "USD"}})
    );
    // Exact JSON numbers: the text of the number is the decimal.
    assert_eq!(rate_text(&app, "EUR", "USD").await, "1.08");
    // Inverse: 1 / 1.08, with 10 significant digits.
    let inverse = rate_value(&app, "USD", "EUR").await;
    assert_eq!(inverse.to_string(), "0.9259259259");
    assert_close(number(&inverse), Decimal::ONE / d("1.08"));
    // Cross: 0.85 / 1.08 and 160.5 / 0.85.
    assert_close(number(&rate_value(&app, "USD", "GBP").await), d("0.85") / d("1.08"));
    assert_close(number(&rate_value(&app, "GBP", "JPY").await), d("160.5") / d("0.85"));
    // Small rates keep 10 significant digits: 1.08 / 17500.25 = 0.0000617134…
    let small = rate_value(&app, "idr", "usd").await;
    assert_eq!(small.to_string(), "0.00006171340409");
    // Lower case is accepted and answered upper-case.
    let (_, body) = rate(&app, "gbp", "usd").await;
    assert_eq!(body["data"]["from"], "GBP");
    assert_eq!(body["data"]["to"], "USD");
    // Same currency → 1, also for one the provider does not publish.
    assert_eq!(rate_value(&app, "USD", "USD").await, json!(1));
    assert_eq!(rate_value(&app, "RUB", "RUB").await, json!(1));

    // The ECB does not publish RUB: unknown pair → 404.
    for (from, to) in [("USD", "RUB"), ("RUB", "USD"), ("XYZ", "EUR")] {
        let (status, body) = rate(&app, from, to).await;
        assert_eq!(status, 404);
        assert_eq!(body, json!({"success": false, "error": "Exchange rate not found"}));
    }
    // Missing or invalid parameters → 400 in the success:false shape.
    for query in [
        "",
        "?from=USD",
        "?to=EUR",
        "?from=US&to=EUR",
        "?from=USD&to=E1R",
        "?from=&to=EUR",
    ] {
        let (status, body) = app.get(&path(&format!("/rate{query}")), None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["success"], false, "{query}");
        assert!(body["error"].is_string(), "{query}");
        assert!(body.get("data").is_none());
    }

    // Currencies: the 37 supported ones, then the provider's others.
    let (status, body) = app.get(&path("/currencies"), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["success"], true);
    let currencies: Vec<&str> = body["data"]["currencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(currencies.len(), 38, "{currencies:?}");
    assert_eq!(&currencies[..3], ["USD", "EUR", "GBP"]);
    for code in ["RUB", "KZT", "VND", "HUF", "ISK", "IDR"] {
        assert!(currencies.contains(&code), "{code}");
    }
    assert_eq!(fake.hits(), 1, "answers come from memory, not the provider");
}
on_both_databases!(ecb_rates_direct_inverse_and_cross);

async fn oxr_rates_with_api_key(backend: Backend) {
    let fake = FakeProvider::start().await;
    let app = TestApp::spawn_with(backend, &fake.oxr_settings()).await;
    wait_for_rates(&app).await;
    assert_eq!(fake.app_ids(), vec!["test-key-123".to_string()]);

    assert_eq!(rate_text(&app, "USD", "EUR").await, "0.925");
    assert_eq!(rate_text(&app, "EUR", "USD").await, "1.081081081");
    assert_close(number(&rate_value(&app, "EUR", "RUB").await), d("80.5") / d("0.925"));
    // VND → USD ≈ 0.0000379: 10 significant digits, not 0.00003790.
    assert_eq!(rate_text(&app, "VND", "USD").await, "0.00003790032215");
    // A provider number with more digits than a double holds is kept exactly.
    let btc = rate_value(&app, "USD", "BTC").await;
    assert_eq!(number(&btc), d("0.000009523809523809524").round_dp(15));
    assert_eq!(rate_text(&app, "BTC", "USD").await, "105000");

    let (_, body) = app.get(&path("/currencies"), None).await;
    let currencies = body["data"]["currencies"].as_array().unwrap();
    assert!(currencies.contains(&json!("BTC")));
    assert!(currencies.contains(&json!("HUF")));
}
on_both_databases!(oxr_rates_with_api_key);

async fn wrong_api_key_is_a_provider_failure(backend: Backend) {
    let fake = FakeProvider::start().await;
    let settings = [
        ("RATES_PROVIDER_URL", fake.url.as_str()),
        ("OPEN_EXCHANGE_RATES_API_KEY", "wrong-key-456"),
    ];
    let app = TestApp::spawn_with(backend, &settings).await;
    let (token, _) = register(&app, "oxr@example.com").await;
    let (status, body) = app.post(&path("/update?force=true"), Some(&token), json!({})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["success"], false);
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("401") && error.contains("invalid_app_id"), "{error}");
    assert!(!error.contains("wrong-key-456"), "the key leaked: {error}");
    let (_, body) = app.get(&path("/last-update"), None).await;
    assert_eq!(body, json!({"success": true, "data": {"lastUpdate": null}}));
}
on_both_databases!(wrong_api_key_is_a_provider_failure);

async fn provider_failures_keep_the_stored_rates(backend: Backend) {
    let fake = FakeProvider::start().await;
    let app = TestApp::spawn_with(backend, &fake.ecb_settings()).await;
    let first_update = wait_for_rates(&app).await;
    let (token, _) = register(&app, "rates@example.com").await;

    for (mode, reason) in [
        (Mode::Fail, "HTTP 503"),
        (Mode::Malformed, "malformed"),
        (Mode::Partial, "no rates"),
    ] {
        fake.set_mode(mode);
        fake.set_ecb(&[("USD", "2.5"), ("GBP", "0.5")]);
        let hits = fake.hits();
        let (status, body) = app.post(&path("/update?force=true"), Some(&token), json!({})).await;
        assert_eq!(status, 502, "{mode:?}: {body}");
        assert_eq!(body["success"], false);
        let error = body["error"].as_str().unwrap();
        assert!(error.starts_with("Failed to update exchange rates"), "{error}");
        assert!(error.contains(reason), "{mode:?}: {error}");
        assert_eq!(fake.hits(), hits + 1);
        // Nothing changed: neither the rates nor the time of the last update.
        assert_eq!(rate_text(&app, "EUR", "USD").await, "1.08");
        assert_eq!(rate_text(&app, "EUR", "JPY").await, "160.5");
        let (_, body) = app.get(&path("/last-update"), None).await;
        assert_eq!(body["data"]["lastUpdate"], first_update.as_str());
        // Nor the database: a fresh instance on it loads the same rates.
        let stored: Vec<(String, String)> =
            sqlx::query_as("SELECT currency, rate FROM currency_rates ORDER BY currency")
                .fetch_all(&app.state.db.pool)
                .await
                .unwrap();
        assert_eq!(stored.len(), 6, "{stored:?}");
        assert!(stored.contains(&("USD".into(), "1.08".into())));
        assert!(stored.contains(&("EUR".into(), "1".into())));
    }

    // Back to normal: a forced update stores and serves the new rates at once.
    fake.set_mode(Mode::Ok);
    let (status, body) = app.post(&path("/update?force=true"), Some(&token), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["data"]["message"], "Exchange rates updated successfully");
    let last_update = body["data"]["lastUpdate"].as_str().unwrap().to_string();
    assert!(last_update > first_update, "{last_update} vs {first_update}");
    assert_eq!(rate_text(&app, "EUR", "USD").await, "2.5");
    assert_eq!(rate_text(&app, "USD", "GBP").await, "0.2");
    // JPY is no longer published: it is unknown now.
    assert_eq!(rate(&app, "EUR", "JPY").await.0, 404);
}
on_both_databases!(provider_failures_keep_the_stored_rates);

async fn malformed_oxr_json_changes_nothing(backend: Backend) {
    let fake = FakeProvider::start().await;
    let app = TestApp::spawn_with(backend, &fake.oxr_settings()).await;
    let first_update = wait_for_rates(&app).await;
    let (token, _) = register(&app, "json@example.com").await;
    fake.set_oxr(&[("USD", "1"), ("EUR", "0.5")]);
    for mode in [Mode::Malformed, Mode::Partial, Mode::Fail] {
        fake.set_mode(mode);
        let (status, body) = app.post(&path("/update?force=true"), Some(&token), json!({})).await;
        assert_eq!(status, 502, "{mode:?}: {body}");
        assert_eq!(body["success"], false);
        assert_eq!(rate_text(&app, "USD", "EUR").await, "0.925");
        let (_, body) = app.get(&path("/last-update"), None).await;
        assert_eq!(body["data"]["lastUpdate"], first_update.as_str());
    }
    fake.set_mode(Mode::Ok);
    let (status, _) = app.post(&path("/update?force=true"), Some(&token), json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(rate_text(&app, "USD", "EUR").await, "0.5");
}
on_both_databases!(malformed_oxr_json_changes_nothing);

async fn unreachable_provider_answers_502(backend: Backend) {
    // The harness points the provider at a closed local port.
    let app = TestApp::spawn(backend).await;
    let (token, _) = register(&app, "down@example.com").await;
    let (status, body) = app.post(&path("/update"), Some(&token), json!({})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["success"], false);
    assert!(body["error"].as_str().unwrap().contains("unreachable"), "{body}");
    let (_, body) = app.get(&path("/last-update"), None).await;
    assert_eq!(body["data"]["lastUpdate"], Value::Null);
    assert_eq!(rate(&app, "EUR", "USD").await.0, 404);
    // The server itself is fine.
    let (status, _) = app.get(&path("/currencies"), None).await;
    assert_eq!(status, 200);
}
on_both_databases!(unreachable_provider_answers_502);

async fn last_update_is_null_then_the_real_refresh_time(backend: Backend) {
    let fake = FakeProvider::start().await;
    fake.set_mode(Mode::Fail);
    let app = TestApp::spawn_with(backend, &fake.ecb_settings()).await;
    // The refresh at start was tried and failed.
    wait_for_hits(&fake, 1).await;
    let (status, body) = app.get(&path("/last-update"), None).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"success": true, "data": {"lastUpdate": null}}));

    fake.set_mode(Mode::Ok);
    let (token, _) = register(&app, "last@example.com").await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    // Nothing stored counts as stale: no force needed.
    let (status, body) = app.post(&path("/update"), Some(&token), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["message"], "Exchange rates updated successfully");
    let updated = body["data"]["lastUpdate"].as_str().unwrap().to_string();
    assert_eq!(updated.len(), "2025-06-01T10:00:00.000Z".len(), "{updated}");
    assert!(updated.ends_with('Z'));
    let at = chrono::DateTime::parse_from_rfc3339(&updated).unwrap();
    assert!(at >= before && at <= chrono::Utc::now(), "{updated}");

    // It stays the time of that refresh, not "now".
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (_, body) = app.get(&path("/last-update"), None).await;
    assert_eq!(body["data"]["lastUpdate"], updated.as_str());

    // Fresh rates are not fetched again without force.
    let hits = fake.hits();
    let (status, body) = app.post(&path("/update"), Some(&token), json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["message"], "Exchange rates are up to date");
    assert_eq!(body["data"]["lastUpdate"], updated.as_str());
    let (status, _) = app.post(&path("/update?force=false"), Some(&token), json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(fake.hits(), hits);
    let (status, body) = app.post(&path("/update?force=maybe"), Some(&token), json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(body["success"], false);
}
on_both_databases!(last_update_is_null_then_the_real_refresh_time);

/// Stores provider rates fetched `age` ago directly in the database.
async fn store_rates(app: &TestApp, usd: &str, age: chrono::Duration) {
    let fetched_at = (chrono::Utc::now() - age).timestamp_millis();
    let mut tx = app.state.db.pool.begin().await.unwrap();
    sqlx::query("DELETE FROM currency_rates")
        .execute(&mut *tx)
        .await
        .unwrap();
    for (currency, rate) in [("EUR", "1"), ("USD", usd)] {
        sqlx::query(
            "INSERT INTO currency_rates (currency, base, rate, provider, fetched_at) VALUES ($1, 'EUR', $2, 'ecb', $3)",
        )
        .bind(currency)
        .bind(rate)
        .bind(fetched_at)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

async fn refresh_at_start_only_when_stale(backend: Backend) {
    let fake = FakeProvider::start().await;
    // A first instance (its provider unreachable) owns the database.
    let owner = TestApp::spawn(backend).await;

    // Stored rates 25 h old: an instance starting now serves them at once and refreshes.
    store_rates(&owner, "1.5", chrono::Duration::hours(25)).await;
    let stale = TestApp::spawn_on(&owner.database_url, &fake.ecb_settings()).await;
    wait_for_hits(&fake, 1).await;
    let started = Instant::now();
    while rate_text(&stale, "EUR", "USD").await != "1.08" {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "stale rates were not refreshed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stale.stop().await;

    // Stored rates 1 h old: served as they are, the provider is not asked.
    store_rates(&owner, "1.25", chrono::Duration::hours(1)).await;
    let hits = fake.hits();
    let fresh = TestApp::spawn_on(&owner.database_url, &fake.ecb_settings()).await;
    assert_eq!(rate_text(&fresh, "EUR", "USD").await, "1.25");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.hits(), hits);
    assert_eq!(rate_text(&fresh, "EUR", "USD").await, "1.25");
}
on_both_databases!(refresh_at_start_only_when_stale);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_refresh_once() {
    let fake = FakeProvider::start().await;
    // A slow provider keeps the first refresh in flight while the second instance starts.
    fake.set_delay(Duration::from_millis(1500));
    let first = TestApp::spawn_with(Backend::Postgres, &fake.ecb_settings()).await;
    wait_for_hits(&fake, 1).await;
    let second = TestApp::spawn_on(&first.database_url, &fake.ecb_settings()).await;
    wait_for_rates(&first).await;
    wait_for_rates(&second).await;
    assert_eq!(rate_text(&second, "EUR", "USD").await, "1.08");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.hits(), 1, "both instances asked the provider");

    // Both due again at once (rates 25 h old, both told to update): still one request.
    fake.set_delay(Duration::from_millis(500));
    store_rates(&first, "1.5", chrono::Duration::hours(25)).await;
    let (token, _) = register(&first, "twice@example.com").await;
    let update = path("/update");
    let (a, b) = tokio::join!(
        first.post(&update, Some(&token), json!({})),
        second.post(&update, Some(&token), json!({})),
    );
    assert_eq!(a.0, 200, "{}", a.1);
    assert_eq!(b.0, 200, "{}", b.1);
    assert_eq!(fake.hits(), 2);
    let messages = [a.1["data"]["message"].clone(), b.1["data"]["message"].clone()];
    assert!(
        messages.contains(&json!("Exchange rates updated successfully")),
        "{messages:?}"
    );
    assert!(
        messages.contains(&json!("Exchange rates are up to date")),
        "{messages:?}"
    );
    // The instance that did not refresh serves the new rates too.
    assert_eq!(rate_text(&first, "EUR", "USD").await, "1.08");
    assert_eq!(rate_text(&second, "EUR", "USD").await, "1.08");
}

async fn redis_down_does_not_matter(backend: Backend) {
    let fake = FakeProvider::start().await;
    let mut settings = fake.ecb_settings();
    settings.push(("REDIS_URL", "redis://127.0.0.1:9"));
    let app = TestApp::spawn_with(backend, &settings).await;
    wait_for_rates(&app).await;
    let (token, _) = register(&app, "redis@example.com").await;
    fake.set_ecb(&[("USD", "1.1")]);
    let (status, body) = app.post(&path("/update?force=true"), Some(&token), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(rate_text(&app, "EUR", "USD").await, "1.1");
}
on_both_databases!(redis_down_does_not_matter);

/// With Redis, another instance reloads soon after a refresh (not at its next 6-hourly check).
/// Needs a Redis server (`TEST_REDIS_URL`, default redis://127.0.0.1:6379); says so and passes
/// without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_tells_other_instances_to_reload() {
    let redis_url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let reachable = async {
        let client = redis::Client::open(redis_url.as_str()).ok()?;
        let mut conn = tokio::time::timeout(Duration::from_secs(2), client.get_multiplexed_async_connection())
            .await
            .ok()?
            .ok()?;
        redis::cmd("PING").query_async::<String>(&mut conn).await.ok()
    };
    if reachable.await.is_none() {
        eprintln!("SKIPPED redis_tells_other_instances_to_reload: no Redis at {redis_url}");
        return;
    }
    let fake = FakeProvider::start().await;
    let mut settings = fake.ecb_settings();
    settings.push(("REDIS_URL", redis_url.as_str()));
    let first = TestApp::spawn_with(Backend::Postgres, &settings).await;
    wait_for_rates(&first).await;
    let second = TestApp::spawn_on(&first.database_url, &settings).await;
    assert_eq!(rate_text(&second, "EUR", "USD").await, "1.08");

    fake.set_ecb(&[("USD", "1.2345")]);
    let (token, _) = register(&first, "shared@example.com").await;
    let (status, _) = first.post(&path("/update?force=true"), Some(&token), json!({})).await;
    assert_eq!(status, 200);
    let started = Instant::now();
    while rate_text(&second, "EUR", "USD").await != "1.2345" {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the second instance never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(fake.hits(), 2);
}

// ---- authentication and users' rates ---------------------------------------------------------

both_databases!(
    async fn rate_endpoints_that_need_a_user_keep_the_common_401(app) {
        for (method, route) in [
            (reqwest::Method::POST, "/update"),
            (reqwest::Method::POST, "/update?force=true"),
            (reqwest::Method::GET, "/user"),
            (reqwest::Method::POST, "/user"),
            (reqwest::Method::DELETE, "/user/USD/EUR"),
            (reqwest::Method::PUT, "/user/mode"),
        ] {
            let (status, body) = app
                .call(method.clone(), &path(route), None, Some(json!({"mode": "auto"})))
                .await;
            assert_eq!(status, 401, "{method} {route}");
            assert_eq!(body, json!({"error": "No authorization header provided"}), "{method} {route}");
        }
        let (status, body) = app.get(&path("/user"), Some("not-a-token")).await;
        assert_eq!(status, 401);
        assert_eq!(body, json!({"error": "Invalid token"}));
    }
);

both_databases!(
    async fn user_rates_crud_and_mode(app) {
        let (alice, alice_id) = register(&app, "alice@example.com").await;
        let (bob, _) = register(&app, "bob@example.com").await;

        let (status, body) = app.get(&path("/user"), Some(&alice)).await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({"success": true, "data": {"rates": []}}));

        // Create (lower-case codes are stored upper-case; mode defaults to manual).
        let (status, body) = app
            .post(
                &path("/user"),
                Some(&alice),
                json!({"from_currency": "usd", "to_currency": "rub", "rate": 92.5}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["success"], true);
        assert_eq!(body["data"]["message"], "Exchange rate created");
        let created = body["data"]["exchangeRate"].clone();
        assert_eq!(created["user_id"], alice_id.as_str());
        assert_eq!(created["from_currency"], "USD");
        assert_eq!(created["to_currency"], "RUB");
        assert_eq!(created["rate"].to_string(), "92.5");
        assert_eq!(created["mode"], "manual");
        for field in ["created_at", "updated_at"] {
            let at = created[field].as_str().unwrap();
            assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok() && at.ends_with('Z'), "{at}");
        }
        let id = created["id"].as_str().unwrap().to_string();
        assert!(uuid::Uuid::parse_str(&id).is_ok());

        // Update through camelCase names and a numeric string: same record, rounded to 8 decimals.
        let (status, body) = app
            .post(
                &path("/user"),
                Some(&alice),
                json!({"fromCurrency": "USD", "toCurrency": "RUB", "rate": "93.123456789", "mode": "auto"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["message"], "Exchange rate updated");
        let updated = &body["data"]["exchangeRate"];
        assert_eq!(updated["id"], id.as_str());
        assert_eq!(updated["rate"].to_string(), "93.12345679");
        assert_eq!(updated["mode"], "auto");
        assert_eq!(updated["created_at"], created["created_at"]);

        for (from, to, rate) in [("EUR", "RUB", "100.1"), ("AED", "USD", "0.2723")] {
            let (status, _) = app
                .post(
                    &path("/user"),
                    Some(&alice),
                    json!({"from_currency": from, "to_currency": to, "rate": rate}),
                )
                .await;
            assert_eq!(status, 200);
        }
        let (_, body) = app
            .post(
                &path("/user"),
                Some(&bob),
                json!({"from_currency": "USD", "to_currency": "RUB", "rate": 70}),
            )
            .await;
        let bobs_id = body["data"]["exchangeRate"]["id"].as_str().unwrap().to_string();

        // Listed by from, then to currency; only the caller's.
        let (_, body) = app.get(&path("/user"), Some(&alice)).await;
        let rates = body["data"]["rates"].as_array().unwrap();
        let pairs: Vec<(String, String)> = rates
            .iter()
            .map(|r| (r["from_currency"].as_str().unwrap().into(), r["to_currency"].as_str().unwrap().into()))
            .collect();
        assert_eq!(
            pairs,
            [("AED", "USD"), ("EUR", "RUB"), ("USD", "RUB")].map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert!(rates.iter().all(|r| r["user_id"] == alice_id.as_str()));
        let keys: Vec<&String> = rates[0].as_object().unwrap().keys().collect();
        assert_eq!(
            keys.len(),
            8,
            "{keys:?}: id,user_id,from_currency,to_currency,rate,mode,created_at,updated_at"
        );

        // Every write stamped for sync.
        let stamps: Vec<(i64, i64)> =
            sqlx::query_as("SELECT server_created_at, server_updated_at FROM user_exchange_rates WHERE user_id = $1")
                .bind(&alice_id)
                .fetch_all(&app.state.db.pool)
                .await
                .unwrap();
        assert_eq!(stamps.len(), 3);
        assert!(stamps.iter().all(|(c, u)| *c > 0 && u >= c));

        // Validation, in the success:false shape.
        for bad in [
            json!({"to_currency": "RUB", "rate": 1}),
            json!({"from_currency": "USD", "rate": 1}),
            json!({"from_currency": "USD", "to_currency": "RUB"}),
            json!({"from_currency": "US", "to_currency": "RUB", "rate": 1}),
            json!({"from_currency": "USD", "to_currency": "RUB", "rate": 0}),
            json!({"from_currency": "USD", "to_currency": "RUB", "rate": -5}),
            json!({"from_currency": "USD", "to_currency": "RUB", "rate": 0.000000001}),
            json!({"from_currency": "USD", "to_currency": "RUB", "rate": "abc"}),
            json!({"from_currency": "USD", "to_currency": "RUB", "rate": 1, "mode": "sometimes"}),
            json!({"from_currency": 5, "to_currency": "RUB", "rate": 1}),
            json!({"from_currency": "USD", "to_currency": "usd", "rate": 1}),
        ] {
            let (status, body) = app.post(&path("/user"), Some(&alice), bad.clone()).await;
            assert_eq!(status, 400, "{bad}: {body}");
            assert_eq!(body["success"], false, "{bad}");
            assert!(body["error"].is_string(), "{bad}");
        }
        let (status, body) = app
            .post(
                &path("/user"),
                Some(&alice),
                json!({"from_currency": "EUR", "to_currency": "eur", "rate": 1}),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(
            body,
            json!({"success": false, "error": "From and to currencies must be different"})
        );
        // A malformed body is a 400 in the same shape.
        let response = app
            .client
            .post(app.url(&path("/user")))
            .bearer_auth(&alice)
            .header("content-type", "application/json")
            .body("{\"from_currency\":")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["success"], false);
        assert_eq!(body["error"], "Invalid JSON in request body");

        // Mode for all of the caller's rates.
        let (status, body) = app.put(&path("/user/mode"), Some(&alice), json!({"mode": "manual"})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["success"], true);
        assert_eq!(body["data"]["mode"], "manual");
        assert!(body["data"]["message"].is_string());
        let (status, body) = app.put(&path("/user/mode"), Some(&alice), json!({"mode": "auto"})).await;
        assert_eq!(status, 200);
        assert_eq!(body["data"]["mode"], "auto");
        let (_, body) = app.get(&path("/user"), Some(&alice)).await;
        assert!(body["data"]["rates"].as_array().unwrap().iter().all(|r| r["mode"] == "auto"));
        for bad in [json!({"mode": "sometimes"}), json!({}), json!({"mode": 1})] {
            let (status, body) = app.put(&path("/user/mode"), Some(&alice), bad.clone()).await;
            assert_eq!(status, 400, "{bad}");
            assert_eq!(body["success"], false);
        }
        // Bob's rate kept its mode.
        let (_, body) = app.get(&path("/user"), Some(&bob)).await;
        assert_eq!(body["data"]["rates"][0]["mode"], "manual");
        assert_eq!(body["data"]["rates"][0]["rate"].to_string(), "70");

        // Delete: 200, then 404; another user's pair of the same name is untouched.
        let (status, body) = app.delete(&path("/user/usd/rub"), Some(&alice)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["success"], true);
        let (status, body) = app.delete(&path("/user/USD/RUB"), Some(&alice)).await;
        assert_eq!(status, 404);
        assert_eq!(body, json!({"success": false, "error": "Exchange rate not found"}));
        let (status, body) = app.delete(&path("/user/US/RUB"), Some(&alice)).await;
        assert_eq!(status, 400);
        assert_eq!(body["success"], false);
        let (_, body) = app.get(&path("/user"), Some(&bob)).await;
        assert_eq!(body["data"]["rates"][0]["id"], bobs_id.as_str());
        let (_, body) = app.get(&path("/user"), Some(&alice)).await;
        assert_eq!(body["data"]["rates"].as_array().unwrap().len(), 2);

        // The delete left a tombstone for incremental sync, named by the pair as devices know it.
        let tombstones: Vec<(String, String)> =
            sqlx::query_as("SELECT table_name, record_id FROM sync_tombstones WHERE user_id = $1")
                .bind(&alice_id)
                .fetch_all(&app.state.db.pool)
                .await
                .unwrap();
        assert_eq!(tombstones, vec![("exchange_rates".to_string(), "USD_RUB".to_string())]);
    }
);

async fn conversion_prefers_the_users_manual_rates(backend: Backend) {
    let fake = FakeProvider::start().await;
    let app = TestApp::spawn_with(backend, &fake.ecb_settings()).await;
    wait_for_rates(&app).await;
    let (alice, alice_id) = register(&app, "convert@example.com").await;
    let (_, bob_id) = register(&app, "other@example.com").await;
    let rates = &app.state.rates;
    let pool = &app.state.db.pool;

    // Provider rates: 108 USD = 100 EUR exactly; cross via the base.
    assert_eq!(
        rates.convert(pool, &alice_id, d("108"), "USD", "EUR").await,
        Some(d("100"))
    );
    assert_eq!(
        rates.convert(pool, &alice_id, d("100"), "eur", "usd").await,
        Some(d("108"))
    );
    let gbp = rates.convert(pool, &alice_id, d("108"), "USD", "GBP").await.unwrap();
    assert_eq!(gbp, d("85"));
    assert_eq!(rates.convert(pool, &alice_id, d("5"), "RUB", "RUB").await, Some(d("5")));
    assert_eq!(rates.convert(pool, &alice_id, d("5"), "RUB", "USD").await, None);

    // Alice's manual rates win, directly and inversely; unknown-to-the-provider pairs too.
    for (from, to, rate) in [("USD", "EUR", "0.9"), ("RUB", "USD", "0.0125")] {
        let (status, _) = app
            .post(
                &path("/user"),
                Some(&alice),
                json!({"from_currency": from, "to_currency": to, "rate": rate}),
            )
            .await;
        assert_eq!(status, 200);
    }
    assert_eq!(
        rates.convert(pool, &alice_id, d("100"), "USD", "EUR").await,
        Some(d("90"))
    );
    assert_eq!(
        rates.convert(pool, &alice_id, d("90"), "EUR", "USD").await,
        Some(d("100"))
    );
    assert_eq!(
        rates.convert(pool, &alice_id, d("800"), "RUB", "USD").await,
        Some(d("10"))
    );
    assert_eq!(
        rates.convert(pool, &alice_id, d("10"), "USD", "RUB").await,
        Some(d("800"))
    );
    assert_eq!(
        rates.user_rate(pool, &alice_id, "USD", "EUR").await.unwrap(),
        Some(d("0.9"))
    );
    // Bob is not affected by Alice's rates.
    assert_eq!(
        rates.convert(pool, &bob_id, d("108"), "USD", "EUR").await,
        Some(d("100"))
    );
    assert_eq!(rates.convert(pool, &bob_id, d("800"), "RUB", "USD").await, None);

    // In auto mode the provider's rate is used again.
    let (status, _) = app
        .put(&path("/user/mode"), Some(&alice), json!({"mode": "auto"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        rates.convert(pool, &alice_id, d("108"), "USD", "EUR").await,
        Some(d("100"))
    );
    assert_eq!(rates.convert(pool, &alice_id, d("800"), "RUB", "USD").await, None);

    // Inside a transaction as well.
    let mut tx = app.state.db.pool.begin().await.unwrap();
    assert_eq!(
        rates.convert(&mut *tx, &alice_id, d("1"), "EUR", "JPY").await,
        Some(d("160.5"))
    );
    tx.commit().await.unwrap();
}
on_both_databases!(conversion_prefers_the_users_manual_rates);

both_databases!(
    async fn exchange_rate_operations_are_documented(app) {
        let (status, doc) = app.get("/api/v1/openapi.json", None).await;
        assert_eq!(status, 200);
        for (route, method, codes) in [
            ("/rate", "get", &["200", "400", "404"][..]),
            ("/currencies", "get", &["200"]),
            ("/last-update", "get", &["200"]),
            ("/update", "post", &["200", "401", "502"]),
            ("/user", "get", &["200", "401"]),
            ("/user", "post", &["200", "400", "401"]),
            ("/user/{from}/{to}", "delete", &["200", "400", "401", "404"]),
            ("/user/mode", "put", &["200", "400", "401"]),
        ] {
            let operation = &doc["paths"][format!("/api/v1/exchange-rates{route}")][method];
            assert!(operation.is_object(), "{method} {route} is not documented");
            for code in codes {
                let schema = &operation["responses"][code]["content"]["application/json"]["schema"];
                assert!(schema.is_object(), "{method} {route} {code} has no schema");
            }
        }
        let rate = &doc["paths"]["/api/v1/exchange-rates/rate"]["get"]["parameters"];
        assert_eq!(rate.as_array().map(Vec::len), Some(2));
    }
);

// ---- the import command ---------------------------------------------------------------------

async fn import_rates_from_files(backend: Backend) {
    let pg = match backend {
        Backend::Postgres => Some(common::PgDatabase::create().await),
        Backend::Sqlite => None,
    };
    let dir = tempfile::tempdir().unwrap();
    let database_url = match &pg {
        Some(pg) => pg.url(),
        None => format!("sqlite://{}", dir.path().join("air-gapped.db").display()),
    };
    let run = |file: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cashcraft"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &database_url)
            .env("NODE_ENV", "test")
            .current_dir(dir.path())
            .args(["admin", "import-rates"])
            .arg(file)
            .output()
            .expect("the cashcraft binary runs")
    };

    let xml = dir.path().join("eurofxref-daily.xml");
    std::fs::write(&xml, ecb_xml(ECB_RATES)).unwrap();
    let output = run(&xml);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Imported 6 exchange rates against EUR"), "{stdout}");

    // A server on that database (whose provider is unreachable) answers from the import.
    let app = TestApp::spawn_on(&database_url, &[]).await;
    assert_eq!(rate_text(&app, "EUR", "USD").await, "1.08");
    assert_eq!(rate_text(&app, "USD", "EUR").await, "0.9259259259");
    let (_, body) = app.get(&path("/last-update"), None).await;
    assert!(body["data"]["lastUpdate"].is_string());
    app.stop().await;

    // A broken file changes nothing; an OXR file replaces everything.
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"base\":\"USD\",\"rates\":{\"EUR\":0.5").unwrap();
    let output = run(&broken);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("malformed"));
    let missing = run(&dir.path().join("missing.xml"));
    assert!(!missing.status.success());

    let json = dir.path().join("latest.json");
    std::fs::write(&json, oxr_json(OXR_RATES)).unwrap();
    let output = run(&json);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let app = TestApp::spawn_on(&database_url, &[]).await;
    assert_eq!(rate_text(&app, "USD", "EUR").await, "0.925");
    assert_eq!(rate(&app, "EUR", "JPY").await.0, 404);
    app.stop().await;
}
on_both_databases!(import_rates_from_files);
