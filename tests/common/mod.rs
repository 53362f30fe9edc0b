//! Test harness: starts the real application on a free port with its own fresh database
//! (a temporary SQLite file, or a new PostgreSQL database dropped afterwards).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;

use cashcraft::{Application, Settings};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::{Connection, Executor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123456789";
pub const ENCRYPTION_KEY: &str = "test-encryption-key-0123456789abcdef012345";

/// The administrative PostgreSQL URL tests create their databases through.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Replaces the database name of a PostgreSQL URL.
pub fn postgres_url_for(db: &str) -> String {
    let admin = postgres_admin_url();
    let (base, _) = admin.rsplit_once('/').expect("a PostgreSQL URL with a database name");
    format!("{base}/{db}")
}

/// A fresh, empty PostgreSQL database, dropped when this value is dropped.
pub struct PgDatabase {
    pub name: String,
}

impl PgDatabase {
    pub async fn create() -> PgDatabase {
        let name = format!("cc_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&postgres_admin_url())
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "PostgreSQL is needed for the PostgreSQL half of the tests ({}): {err}",
                    postgres_admin_url()
                )
            });
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        PgDatabase { name }
    }

    pub fn url(&self) -> String {
        postgres_url_for(&self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&postgres_admin_url()).await.ok()?;
                conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// A running application and an HTTP client for it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub backend: Backend,
    pub database_url: String,
    pub state: cashcraft::state::AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _sqlite_dir: Option<tempfile::TempDir>,
    _pg: Option<PgDatabase>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, &[]).await
    }

    /// Starts the app with extra settings (`("FREE_ACCOUNT_LIMIT", "1")`, …).
    pub async fn spawn_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
        let (database_url, sqlite_dir, pg) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                (url, Some(dir), None)
            }
            Backend::Postgres => {
                let db = PgDatabase::create().await;
                (db.url(), None, Some(db))
            }
        };
        Self::start(backend, database_url, extra, sqlite_dir, pg).await
    }

    /// Starts another instance on an existing database (owned by someone else, e.g. another
    /// `TestApp`), as a second server of a deployment would.
    pub async fn spawn_on(database_url: &str, extra: &[(&str, &str)]) -> TestApp {
        let backend = if database_url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        Self::start(backend, database_url.to_string(), extra, None, None).await
    }

    async fn start(
        backend: Backend,
        database_url: String,
        extra: &[(&str, &str)],
        sqlite_dir: Option<tempfile::TempDir>,
        pg: Option<PgDatabase>,
    ) -> TestApp {
        let mut env: HashMap<String, String> = [
            ("NODE_ENV", "test"),
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
            ("JWT_SECRET", JWT_SECRET),
            ("ENCRYPTION_KEY", ENCRYPTION_KEY),
            ("DB_MAX_CONNECTIONS", "10"),
            // No test reaches the internet: the rate provider is a closed local port unless a
            // test points it at its fake.
            ("RATES_PROVIDER_URL", "http://127.0.0.1:9"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.insert("DATABASE_URL".into(), database_url.clone());
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        let settings = Settings::from_lookup(|k| env.get(k).cloned()).expect("test settings");
        let app = Application::build(settings).await.expect("application starts");
        let addr = app.local_addr();
        let state = app.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = app
                .serve_until(async move {
                    let _ = rx.await;
                })
                .await;
        });
        TestApp {
            addr,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            backend,
            database_url,
            state,
            shutdown: Some(tx),
            server: Some(server),
            _sqlite_dir: sqlite_dir,
            _pg: pg,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a request with an optional bearer token and JSON body; returns status and JSON
    /// (Value::Null for an empty or non-JSON body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, token, None).await
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Registers a new user; answers (access token, user id).
pub async fn register_user(app: &TestApp) -> (String, String) {
    let email = format!("u{}@example.com", uuid::Uuid::new_v4().simple());
    let (status, body) = app
        .post(
            "/api/v1/auth/register",
            None,
            serde_json::json!({"email": email, "password": "secret123"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (
        body["accessToken"].as_str().unwrap().to_string(),
        body["user"]["id"].as_str().unwrap().to_string(),
    )
}

/// The id of a user's (only, default) account, read from the database.
pub async fn default_account_id(app: &TestApp, user_id: &str) -> String {
    let (id,): (String,) = sqlx::query_as("SELECT id FROM accounts WHERE user_id = $1 ORDER BY created_at LIMIT 1")
        .bind(user_id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    id
}

/// Declares a test that runs once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! both_databases {
    ($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($app: $crate::common::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::common::TestApp::spawn($crate::common::Backend::Sqlite).await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run($crate::common::TestApp::spawn($crate::common::Backend::Postgres).await).await
            }
        }
    };
}
