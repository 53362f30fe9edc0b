//! Helpers shared by the ledger tests (accounts, transactions, money): users, accounts and
//! transactions made over HTTP, and raw reads of stored rows straight from the database.
#![allow(dead_code)]

use serde_json::{json, Value};
use sqlx::{Connection, Row};

use crate::common::{Backend, TestApp};

/// Registers a new user; answers the access token.
pub async fn register(app: &TestApp) -> String {
    let email = format!("u{}@example.com", uuid::Uuid::new_v4().simple());
    let (status, body) = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": email, "password": "secret-password"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["accessToken"].as_str().expect("access token").to_string()
}

/// A new guest user (no password hashing, so quicker); answers the access token.
pub async fn guest(app: &TestApp) -> String {
    let (status, body) = app.post("/api/v1/auth/guest", None, json!({})).await;
    assert_eq!(status, 200, "{body}");
    body["accessToken"].as_str().expect("access token").to_string()
}

/// The user's accounts.
pub async fn accounts(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, body) = app.get("/api/v1/accounts", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().expect("an array").clone()
}

/// The id of the user's default account.
pub async fn default_account(app: &TestApp, token: &str) -> String {
    accounts(app, token)
        .await
        .iter()
        .find(|a| a["is_default"] == true)
        .and_then(|a| a["id"].as_str())
        .expect("a default account")
        .to_string()
}

/// Creates an account; answers its record.
pub async fn create_account(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, record) = app.post("/api/v1/accounts", Some(token), body).await;
    assert_eq!(status, 201, "{record}");
    record
}

/// Creates an account of `kind` with a name; answers its id.
pub async fn new_account(app: &TestApp, token: &str, name: &str) -> String {
    let record = create_account(app, token, json!({"name": name, "type": "cash"})).await;
    record["id"].as_str().expect("id").to_string()
}

/// One account's record.
pub async fn account(app: &TestApp, token: &str, id: &str) -> Value {
    accounts(app, token)
        .await
        .into_iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("account {id} not listed"))
}

/// The balance of an account as its JSON text (exact).
pub async fn balance(app: &TestApp, token: &str, id: &str) -> String {
    account(app, token, id).await["balance"].to_string()
}

/// Creates a transaction; answers its record.
pub async fn create_txn(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, record) = app.post("/api/v1/transactions", Some(token), body).await;
    assert_eq!(status, 201, "{record}");
    record
}

/// The id of one of the user's system categories by name.
pub async fn category(app: &TestApp, token: &str, name: &str) -> String {
    let user_id = user_id(app, token).await;
    let value = raw_text(
        app,
        "SELECT id FROM categories WHERE user_id = $1 AND name = $2",
        &[&user_id, name],
    )
    .await;
    value.unwrap_or_else(|| panic!("category {name}"))
}

/// The caller's user id.
pub async fn user_id(app: &TestApp, token: &str) -> String {
    let (status, body) = app.get("/api/v1/auth/me", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body["user"]["id"].as_str().expect("user id").to_string()
}

/// A raw read-only connection to the app's database, opened from its URL.
pub async fn raw_connection(app: &TestApp) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    let url = match app.backend {
        Backend::Sqlite => format!("{}?mode=ro", app.database_url),
        Backend::Postgres => app.database_url.clone(),
    };
    sqlx::AnyConnection::connect(&url).await.expect("raw connection")
}

/// The first column of the first row of a query with text parameters, as stored.
pub async fn raw_text(app: &TestApp, sql: &str, params: &[&str]) -> Option<String> {
    let mut conn = raw_connection(app).await;
    let mut query = sqlx::query(sql);
    for p in params {
        query = query.bind(p.to_string());
    }
    let row = query.fetch_optional(&mut conn).await.expect("raw query");
    row.and_then(|r| r.try_get::<Option<String>, _>(0).expect("a text column"))
}

/// The first column of the first row of a query with text parameters, as an integer.
pub async fn raw_int(app: &TestApp, sql: &str, params: &[&str]) -> i64 {
    let mut conn = raw_connection(app).await;
    let mut query = sqlx::query(sql);
    for p in params {
        query = query.bind(p.to_string());
    }
    let row = query.fetch_one(&mut conn).await.expect("raw query");
    row.try_get::<i64, _>(0).expect("an integer column")
}
