//! Black-box tests of `/api/v1/auth` on SQLite and PostgreSQL: the contract's auth table, token
//! handling, refresh rotation, resets, profile endpoints, Google sign-in and rate limiting.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine;
use common::{Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Declares a test that gets a backend and starts its own app(s), once per database.
macro_rules! both_backends {
    (async fn $name:ident($backend:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($backend: crate::common::Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(crate::common::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(crate::common::Backend::Postgres).await
            }
        }
    };
}

const PASSWORD: &str = "s3cret-pass";

/// A registered user: (access token, refresh token, user id).
async fn register(app: &TestApp, email: &str) -> (String, String, String) {
    let (status, body) = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "register {email}: {body}");
    tokens(&body)
}

fn tokens(body: &Value) -> (String, String, String) {
    (
        body["accessToken"].as_str().expect("accessToken").to_string(),
        body["refreshToken"].as_str().expect("refreshToken").to_string(),
        body["user"]["id"].as_str().expect("user.id").to_string(),
    )
}

async fn count(app: &TestApp, table: &str, user_id: &str) -> i64 {
    let sql = format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table} WHERE user_id = $1");
    let (n,): (i64,) = sqlx::query_as(&sql)
        .bind(user_id)
        .fetch_one(&app.state.db.pool)
        .await
        .expect("count");
    n
}

async fn exec(app: &TestApp, sql: &str, args: &[&str]) {
    let mut query = sqlx::query(sql);
    for arg in args {
        query = query.bind(*arg);
    }
    query.execute(&app.state.db.pool).await.expect(sql);
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn post_raw(app: &TestApp, path: &str, body: &'static str) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

// ---------------------------------------------------------------------------------------------
// register / login / guest / me

both_databases!(
    async fn register_creates_user_and_default_data(app) {
        let (status, body) = app
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": "  Alice@Example.COM ", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let user = &body["user"];
        assert_eq!(user["email"], "alice@example.com");
        assert_eq!(user["displayName"], "alice");
        assert_eq!(user["isPremium"], false);
        assert_eq!(user["isGuest"], false);
        assert!(user["createdAt"].as_str().is_some_and(|t| t.ends_with('Z') && t.len() == 24));
        let keys: Vec<&String> = user.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 6, "user object has exactly the contract's fields: {user}");
        let (access, _, id) = tokens(&body);
        assert_eq!(count(&app, "accounts", &id).await, 1);
        assert_eq!(count(&app, "categories", &id).await, 5);
        let (status, me) = app.get("/api/v1/auth/me", Some(&access)).await;
        assert_eq!(status, 200);
        assert_eq!(me["user"], *user);

        let (status, body) = app
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": "bob@example.com", "password": PASSWORD, "displayName": "Bobby"}),
            )
            .await;
        assert_eq!(status, 201);
        assert_eq!(body["user"]["displayName"], "Bobby");
    }
);

both_databases!(
    async fn register_validation_and_duplicates(app) {
        let (status, body) = app
            .post("/api/v1/auth/register", None, json!({"email": "not-an-email", "password": "12345"}))
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "Validation failed");
        let paths: Vec<&str> = body["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, ["email", "password"]);
        assert_eq!(body["details"][0]["location"], "body");
        let (status, _) = app
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": "a@example.com", "password": "x".repeat(129)}),
            )
            .await;
        assert_eq!(status, 400);
        let (status, _) = app
            .post("/api/v1/auth/register", None, json!({"password": PASSWORD}))
            .await;
        assert_eq!(status, 400);

        register(&app, "dup@example.com").await;
        for email in ["dup@example.com", "DUP@Example.com", " dup@EXAMPLE.COM "] {
            let (status, body) = app
                .post("/api/v1/auth/register", None, json!({"email": email, "password": PASSWORD}))
                .await;
            assert_eq!(status, 409, "{email}");
            assert_eq!(body, json!({"error": "User with this email already exists"}));
        }
    }
);

both_databases!(
    async fn concurrent_registrations_of_one_email(app) {
        let app = Arc::new(app);
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                app.post(
                    "/api/v1/auth/register",
                    None,
                    json!({"email": "race@example.com", "password": PASSWORD}),
                )
                .await
            }));
        }
        let mut created = 0;
        for task in tasks {
            let (status, body) = task.await.unwrap();
            match status.as_u16() {
                201 => created += 1,
                409 => assert_eq!(body["error"], "User with this email already exists"),
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert_eq!(created, 1);
        let (n,): (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM users WHERE email = $1")
            .bind("race@example.com")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
);

both_databases!(
    async fn login_matches_case_insensitively_and_sets_last_login(app) {
        let (_, _, id) = register(&app, "carol@example.com").await;
        let last_login = |app: &TestApp| {
            let pool = app.state.db.pool.clone();
            let id = id.clone();
            async move {
                let (v,): (Option<i64>,) = sqlx::query_as("SELECT last_login FROM users WHERE id = $1")
                    .bind(id)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                v
            }
        };
        assert_eq!(last_login(&app).await, None);
        let (status, body) = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": " Carol@EXAMPLE.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["user"]["id"], id.as_str());
        assert!(body["accessToken"].is_string() && body["refreshToken"].is_string());
        assert!(last_login(&app).await.is_some());

        let (status, wrong) = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "carol@example.com", "password": "wrong-password"}),
            )
            .await;
        assert_eq!(status, 401);
        let (status, unknown) = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "nobody@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 401);
        assert_eq!(wrong, json!({"error": "Invalid email or password"}));
        assert_eq!(wrong, unknown);
        let (status, body) = app.post("/api/v1/auth/login", None, json!({})).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "Validation failed");
    }
);

both_databases!(
    async fn guest_gets_default_data(app) {
        let (status, body) = app.post("/api/v1/auth/guest", None, json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["user"]["isGuest"], true);
        let email = body["user"]["email"].as_str().unwrap();
        assert!(email.starts_with("guest_") && email.ends_with("@cashcraft.local"), "{email}");
        let (_, _, id) = tokens(&body);
        assert_eq!(count(&app, "accounts", &id).await, 1);
        assert_eq!(count(&app, "categories", &id).await, 5);
        let (_, other) = app.post("/api/v1/auth/guest", None, json!({})).await;
        assert_ne!(other["user"]["email"], body["user"]["email"]);
    }
);

both_databases!(
    async fn malformed_json_is_a_400_with_details(app) {
        let (status, body) = post_raw(&app, "/api/v1/auth/login", "{\"email\": ").await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "Invalid JSON in request body");
        assert!(body["details"].as_array().is_some_and(|d| !d.is_empty()), "{body}");
        let (status, body) = post_raw(&app, "/api/v1/auth/register", "[1,2").await;
        assert_eq!(status, 400);
        assert!(body["details"].is_array());
        let (status, body) = post_raw(&app, "/api/v1/auth/login", "{\"email\": 5, \"password\": \"x\"}").await;
        assert_eq!(status, 400);
        assert_eq!(body["details"][0]["path"], "email");
    }
);

// ---------------------------------------------------------------------------------------------
// access tokens

both_databases!(
    async fn access_token_failures(app) {
        let (access, _, id) = register(&app, "dave@example.com").await;
        let (status, body) = app.get("/api/v1/auth/me", None).await;
        assert_eq!(status, 401);
        assert_eq!(body, json!({"error": "No authorization header provided"}));

        let invalid = json!({"error": "Invalid token"});
        let response = app
            .client
            .get(app.url("/api/v1/auth/me"))
            .header("authorization", format!("Basic {access}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(response.json::<Value>().await.unwrap(), invalid);

        // Tampered payload, original signature.
        let parts: Vec<&str> = access.split('.').collect();
        let now = chrono::Utc::now().timestamp();
        let other = uuid::Uuid::new_v4().to_string();
        let payload = json!({"sub": other, "userId": other, "iat": now, "exp": now + 600});
        let tampered = format!("{}.{}.{}", parts[0], b64(payload.to_string().as_bytes()), parts[2]);
        assert_eq!(app.get("/api/v1/auth/me", Some(&tampered)).await, (StatusCode::UNAUTHORIZED, invalid.clone()));

        // alg: none.
        let payload = json!({"sub": id, "userId": id, "iat": now, "exp": now + 600});
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(payload.to_string().as_bytes())
        );
        assert_eq!(app.get("/api/v1/auth/me", Some(&none)).await, (StatusCode::UNAUTHORIZED, invalid.clone()));

        // Signed with another key.
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        let forged = jsonwebtoken::encode(
            &header,
            &payload,
            &jsonwebtoken::EncodingKey::from_secret(b"some-other-secret-0123456789abcdef"),
        )
        .unwrap();
        assert_eq!(app.get("/api/v1/auth/me", Some(&forged)).await, (StatusCode::UNAUTHORIZED, invalid.clone()));
        assert_eq!(
            app.get("/api/v1/auth/me", Some("garbage")).await,
            (StatusCode::UNAUTHORIZED, invalid.clone())
        );

        // Expired, correctly signed.
        let key = jsonwebtoken::EncodingKey::from_secret(common::JWT_SECRET.as_bytes());
        let expired = json!({"sub": id, "userId": id, "iat": now - 1000, "exp": now - 10});
        let expired = jsonwebtoken::encode(&header, &expired, &key).unwrap();
        assert_eq!(
            app.get("/api/v1/auth/me", Some(&expired)).await,
            (StatusCode::UNAUTHORIZED, json!({"error": "Token expired"}))
        );

        // A valid token of a user that no longer exists.
        let (status, _) = app.get("/api/v1/auth/me", Some(&access)).await;
        assert_eq!(status, 200);
        exec(&app, "DELETE FROM users WHERE id = $1", &[&id]).await;
        assert_eq!(
            app.get("/api/v1/auth/me", Some(&access)).await,
            (StatusCode::UNAUTHORIZED, json!({"error": "User not found"}))
        );
    }
);

// ---------------------------------------------------------------------------------------------
// refresh tokens

both_databases!(
    async fn refresh_rotates_and_detects_reuse(app) {
        let (_, r1, _) = register(&app, "erin@example.com").await;
        let (status, body) = app.post("/api/v1/auth/refresh", None, json!({"refreshToken": r1})).await;
        assert_eq!(status, 200, "{body}");
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["accessToken", "refreshToken"]);
        let r2 = body["refreshToken"].as_str().unwrap().to_string();
        let access = body["accessToken"].as_str().unwrap().to_string();
        assert_eq!(app.get("/api/v1/auth/me", Some(&access)).await.0, 200);

        // The rotated token is refused, and presenting it revokes the whole user's tokens.
        let invalid = (StatusCode::UNAUTHORIZED, json!({"error": "Invalid refresh token"}));
        assert_eq!(app.post("/api/v1/auth/refresh", None, json!({"refreshToken": r1})).await, invalid);
        assert_eq!(app.post("/api/v1/auth/refresh", None, json!({"refreshToken": r2})).await, invalid);

        assert_eq!(
            app.post("/api/v1/auth/refresh", None, json!({"refreshToken": "made-up"})).await,
            invalid
        );
        let (status, body) = app.post("/api/v1/auth/refresh", None, json!({})).await;
        assert_eq!(status, 400);
        assert_eq!(body["details"][0]["path"], "refreshToken");
    }
);

both_databases!(
    async fn concurrent_refreshes_of_one_token(app) {
        let (_, refresh, _) = register(&app, "frank@example.com").await;
        let app = Arc::new(app);
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (app, refresh) = (app.clone(), refresh.clone());
            tasks.push(tokio::spawn(async move {
                app.post("/api/v1/auth/refresh", None, json!({"refreshToken": refresh}))
                    .await
            }));
        }
        let mut ok = 0;
        for task in tasks {
            let (status, body) = task.await.unwrap();
            match status.as_u16() {
                200 => ok += 1,
                401 => assert_eq!(body["error"], "Invalid refresh token"),
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert!(ok <= 1, "{ok} concurrent refreshes of one token succeeded");
    }
);

both_backends!(
    async fn refresh_token_expires(backend) {
        let app = TestApp::spawn_with(backend, &[("JWT_REFRESH_EXPIRES_IN", "1")]).await;
        let (_, refresh, _) = register(&app, "gina@example.com").await;
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert_eq!(
            app.post("/api/v1/auth/refresh", None, json!({"refreshToken": refresh}))
                .await,
            (StatusCode::UNAUTHORIZED, json!({"error": "Refresh token expired"}))
        );
    }
);

both_databases!(
    async fn logout_revokes(app) {
        let (_, refresh, _) = register(&app, "hank@example.com").await;
        let (status, body) = app.post("/api/v1/auth/logout", None, json!({"refreshToken": refresh})).await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({"message": "Logged out successfully"}));
        let (status, _) = app.post("/api/v1/auth/refresh", None, json!({"refreshToken": refresh})).await;
        assert_eq!(status, 401);
        let (status, _) = app.post("/api/v1/auth/logout", None, json!({})).await;
        assert_eq!(status, 200);
        let response = app.client.post(app.url("/api/v1/auth/logout")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
);

// ---------------------------------------------------------------------------------------------
// resets

/// Gives a user 3 transactions, 2 debts and 2 exchange rates on top of the default data.
async fn add_data(app: &TestApp, user_id: &str) {
    let (account,): (String,) = sqlx::query_as("SELECT id FROM accounts WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let (category,): (String,) = sqlx::query_as("SELECT id FROM categories WHERE user_id = $1 LIMIT 1")
        .bind(user_id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    for _ in 0..3 {
        exec(
            app,
            "INSERT INTO transactions (id, user_id, account_id, category_id, amount, type, date, created_at, \
             updated_at, server_created_at, server_updated_at) VALUES ($1, $2, $3, $4, 1000, 'expense', 1, 1, 1, 1, 1)",
            &[&uuid::Uuid::new_v4().to_string(), user_id, &account, &category],
        )
        .await;
    }
    for _ in 0..2 {
        exec(
            app,
            "INSERT INTO debts (id, user_id, type, name, amount, created_at, updated_at, server_created_at, \
             server_updated_at) VALUES ($1, $2, 'owed_to_me', 'Debt', 500, 1, 1, 1, 1)",
            &[&uuid::Uuid::new_v4().to_string(), user_id],
        )
        .await;
    }
    for to in ["EUR", "GBP"] {
        exec(
            app,
            "INSERT INTO user_exchange_rates (id, user_id, from_currency, to_currency, rate, created_at, updated_at, \
             server_created_at, server_updated_at) VALUES ($1, $2, 'USD', $3, 90000000, 1, 1, 1, 1)",
            &[&uuid::Uuid::new_v4().to_string(), user_id, to],
        )
        .await;
    }
}

async fn data_counts(app: &TestApp, user_id: &str) -> [i64; 6] {
    [
        count(app, "transactions", user_id).await,
        count(app, "debts", user_id).await,
        count(app, "categories", user_id).await,
        count(app, "accounts", user_id).await,
        count(app, "user_exchange_rates", user_id).await,
        count(app, "refresh_tokens", user_id).await,
    ]
}

both_databases!(
    async fn reset_data_deletes_exactly_the_callers_data(app) {
        let (access, refresh, me) = register(&app, "ivy@example.com").await;
        let (_, other_refresh, other) = register(&app, "jack@example.com").await;
        add_data(&app, &me).await;
        add_data(&app, &other).await;
        // A second session: two refresh tokens.
        let (status, _) = app
            .post("/api/v1/auth/login", None, json!({"email": "ivy@example.com", "password": PASSWORD}))
            .await;
        assert_eq!(status, 200);
        let before_other = data_counts(&app, &other).await;
        assert_eq!(before_other, [3, 2, 5, 1, 2, 1]);

        let (status, body) = app.post("/api/v1/auth/reset-data", Some(&access), json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({"message": "All user data reset successfully", "deleted": {
                "transactions": 3, "debts": 2, "categories": 5, "accounts": 1, "exchangeRates": 2, "refreshTokens": 2
            }})
        );
        assert_eq!(data_counts(&app, &me).await, [0; 6]);
        assert_eq!(data_counts(&app, &other).await, before_other);
        // Every deleted row is remembered for incremental sync.
        assert_eq!(count(&app, "sync_tombstones", &me).await, 13);
        assert_eq!(count(&app, "sync_tombstones", &other).await, 0);
        // Sessions are gone; the other user's is not.
        let (status, _) = app.post("/api/v1/auth/refresh", None, json!({"refreshToken": refresh})).await;
        assert_eq!(status, 401);
        let (status, _) = app
            .post("/api/v1/auth/refresh", None, json!({"refreshToken": other_refresh}))
            .await;
        assert_eq!(status, 200);
        // Nothing recreated; a second reset deletes nothing.
        let (status, body) = app.post("/api/v1/auth/reset-data", Some(&access), json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(body["deleted"]["categories"], 0);
        assert_eq!(app.post("/api/v1/auth/reset-data", None, json!({})).await.0, 401);
    }
);

both_databases!(
    async fn reset_deletes_data_but_keeps_sessions(app) {
        let (access, refresh, me) = register(&app, "kim@example.com").await;
        let (_, _, other) = register(&app, "lee@example.com").await;
        add_data(&app, &me).await;
        add_data(&app, &other).await;
        let (status, body) = app.post("/api/v1/auth/reset", Some(&access), json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({"message": "All user data fully deleted", "deleted": {
                "transactions": 3, "debts": 2, "categories": 5, "accounts": 1, "exchangeRates": 2
            }})
        );
        assert_eq!(data_counts(&app, &me).await, [0, 0, 0, 0, 0, 1]);
        assert_eq!(data_counts(&app, &other).await, [3, 2, 5, 1, 2, 1]);
        let (status, _) = app.post("/api/v1/auth/refresh", None, json!({"refreshToken": refresh})).await;
        assert_eq!(status, 200);
        assert_eq!(app.post("/api/v1/auth/reset", None, json!({})).await.0, 401);
    }
);

// ---------------------------------------------------------------------------------------------
// profile: PUT/DELETE /me, change-password, upgrade

both_databases!(
    async fn update_display_name(app) {
        let (access, _, _) = register(&app, "mia@example.com").await;
        let (status, body) = app
            .put("/api/v1/auth/me", Some(&access), json!({"displayName": "  Mia W.  "}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["user"]["displayName"], "Mia W.");
        assert_eq!(body["user"]["email"], "mia@example.com");
        let (_, me) = app.get("/api/v1/auth/me", Some(&access)).await;
        assert_eq!(me["user"]["displayName"], "Mia W.");
        for bad in [json!({}), json!({"displayName": "   "}), json!({"displayName": "x".repeat(101)})] {
            let (status, body) = app.put("/api/v1/auth/me", Some(&access), bad).await;
            assert_eq!(status, 400);
            assert_eq!(body["details"][0]["path"], "displayName");
        }
        let (status, _) = app
            .put("/api/v1/auth/me", Some(&access), json!({"displayName": "x".repeat(100)}))
            .await;
        assert_eq!(status, 200);
        assert_eq!(app.put("/api/v1/auth/me", None, json!({"displayName": "x"})).await.0, 401);
    }
);

both_databases!(
    async fn change_password(app) {
        let (access, this_session, _) = register(&app, "ned@example.com").await;
        let (_, other_login) = app
            .post("/api/v1/auth/login", None, json!({"email": "ned@example.com", "password": PASSWORD}))
            .await;
        let other_session = other_login["refreshToken"].as_str().unwrap().to_string();

        let (status, body) = app
            .post(
                "/api/v1/auth/change-password",
                Some(&access),
                json!({"currentPassword": "wrong-one", "newPassword": "new-password"}),
            )
            .await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"error": "Current password is incorrect"})));
        let (status, body) = app
            .post(
                "/api/v1/auth/change-password",
                Some(&access),
                json!({"currentPassword": PASSWORD, "newPassword": "short"}),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["details"][0]["path"], "newPassword");

        let (status, body) = app
            .post(
                "/api/v1/auth/change-password",
                Some(&access),
                json!({"currentPassword": PASSWORD, "newPassword": "new-password", "refreshToken": this_session}),
            )
            .await;
        assert_eq!((status, body), (StatusCode::OK, json!({"message": "Password changed successfully"})));
        let login = |password: &'static str| {
            app.post(
                "/api/v1/auth/login",
                None,
                json!({"email": "ned@example.com", "password": password}),
            )
        };
        assert_eq!(login(PASSWORD).await.0, 401);
        assert_eq!(login("new-password").await.0, 200);
        // The other device is signed out; this one keeps its session.
        let refresh = |token: String| app.post("/api/v1/auth/refresh", None, json!({"refreshToken": token}));
        assert_eq!(refresh(other_session).await.0, 401);
        assert_eq!(refresh(this_session).await.0, 200);

        let (_, guest) = app.post("/api/v1/auth/guest", None, json!({})).await;
        let guest_access = guest["accessToken"].as_str().unwrap();
        let (status, body) = app
            .post(
                "/api/v1/auth/change-password",
                Some(guest_access),
                json!({"currentPassword": "anything", "newPassword": "new-password"}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
    }
);

both_databases!(
    async fn delete_account(app) {
        let (access, refresh, id) = register(&app, "olga@example.com").await;
        let (_, _, other) = register(&app, "pete@example.com").await;
        add_data(&app, &id).await;
        let delete = |body: Value| {
            app.call(reqwest::Method::DELETE, "/api/v1/auth/me", Some(&access), Some(body))
        };
        let (status, body) = delete(json!({})).await;
        assert_eq!(status, 400);
        assert_eq!(body["details"][0]["path"], "password");
        let (status, body) = delete(json!({"password": "wrong-password"})).await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"error": "Password is incorrect"})));
        assert_eq!(count(&app, "accounts", &id).await, 1);

        let (status, body) = delete(json!({"password": PASSWORD})).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"message": "Account deleted successfully"})));
        assert_eq!(data_counts(&app, &id).await, [0; 6]);
        assert_eq!(data_counts(&app, &other).await, [0, 0, 5, 1, 0, 1]);
        assert_eq!(
            app.get("/api/v1/auth/me", Some(&access)).await,
            (StatusCode::UNAUTHORIZED, json!({"error": "User not found"}))
        );
        assert_eq!(app.post("/api/v1/auth/refresh", None, json!({"refreshToken": refresh})).await.0, 401);
        // The email is free again.
        register(&app, "olga@example.com").await;

        // A guest has no password to give.
        let (_, guest) = app.post("/api/v1/auth/guest", None, json!({})).await;
        let (guest_access, _, guest_id) = tokens(&guest);
        let (status, _) = app.delete("/api/v1/auth/me", Some(&guest_access)).await;
        assert_eq!(status, 200);
        assert_eq!(count(&app, "accounts", &guest_id).await, 0);
    }
);

both_databases!(
    async fn upgrade_guest(app) {
        let (_, guest) = app.post("/api/v1/auth/guest", None, json!({})).await;
        let (access, _, id) = tokens(&guest);
        add_data(&app, &id).await;
        register(&app, "taken@example.com").await;

        let upgrade = |body: Value| app.post("/api/v1/auth/upgrade", Some(&access), body);
        let (status, body) = upgrade(json!({"email": "TAKEN@example.com", "password": PASSWORD})).await;
        assert_eq!((status, body), (StatusCode::CONFLICT, json!({"error": "User with this email already exists"})));
        let (status, _) = upgrade(json!({"email": "nope", "password": "123"})).await;
        assert_eq!(status, 400);

        let (status, body) = upgrade(json!({"email": " Quinn@Example.com", "password": PASSWORD})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["user"]["id"], id.as_str());
        assert_eq!(body["user"]["isGuest"], false);
        assert_eq!(body["user"]["email"], "quinn@example.com");
        assert_eq!(body["user"]["displayName"], "quinn");
        assert!(body["accessToken"].is_string() && body["refreshToken"].is_string());
        assert_eq!(data_counts(&app, &id).await[..5], [3, 2, 5, 1, 2]);
        let (status, login) = app
            .post("/api/v1/auth/login", None, json!({"email": "quinn@example.com", "password": PASSWORD}))
            .await;
        assert_eq!(status, 200);
        assert_eq!(login["user"]["id"], id.as_str());

        let (status, body) = upgrade(json!({"email": "other@example.com", "password": PASSWORD})).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"error": "Only guest accounts can be upgraded"})));
    }
);

// ---------------------------------------------------------------------------------------------
// plans and the admin command

fn run_cli(database_url: &str, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_cashcraft"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .current_dir(dir.path())
        .output()
        .expect("run cashcraft")
}

both_databases!(
    async fn admin_sets_premium(app) {
        let (access, _, _) = register(&app, "rosa@example.com").await;
        let premium = || async {
            let (status, me) = app.get("/api/v1/auth/me", Some(&access)).await;
            assert_eq!(status, 200);
            me["user"]["isPremium"].as_bool().unwrap()
        };
        assert!(!premium().await);
        let url = app.database_url.clone();
        let set = |args: Vec<&'static str>| {
            let url = url.clone();
            tokio::task::spawn_blocking(move || {
                let mut all = vec!["admin", "set-premium"];
                all.extend(args);
                run_cli(&url, &all)
            })
        };
        let out = set(vec!["ROSA@example.com"]).await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(premium().await);
        let out = set(vec!["rosa@example.com", "--off"]).await.unwrap();
        assert!(out.status.success());
        assert!(!premium().await);
        let out = set(vec!["rosa@example.com", "--until", "2999-12-31"]).await.unwrap();
        assert!(out.status.success());
        assert!(premium().await);
        let out = set(vec!["rosa@example.com", "--until", "2001-01-01T00:00:00Z"]).await.unwrap();
        assert!(out.status.success());
        assert!(!premium().await, "an expired premium is not premium");
        let out = set(vec!["nobody@example.com"]).await.unwrap();
        assert_eq!(out.status.code(), Some(1));
        let out = set(vec!["rosa@example.com", "--until", "someday"]).await.unwrap();
        assert_eq!(out.status.code(), Some(1));
    }
);

// ---------------------------------------------------------------------------------------------
// Google sign-in

struct SigningKey {
    kid: &'static str,
    encoding: jsonwebtoken::EncodingKey,
    jwk: Value,
}

/// Two RSA key pairs, made once per test run (key generation is slow).
fn signing_keys() -> &'static [SigningKey; 2] {
    static KEYS: OnceLock<[SigningKey; 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let make = |kid: &'static str| {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            use rsa::traits::PublicKeyParts;
            let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key");
            let pem = private.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).expect("PEM");
            let public = private.to_public_key();
            SigningKey {
                kid,
                encoding: jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).expect("encoding key"),
                jwk: json!({
                    "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                    "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be()),
                }),
            }
        };
        [make("key-1"), make("key-2")]
    })
}

/// A local stand-in for Google's key endpoint that counts its fetches; `keys` can be changed
/// (key rotation).
struct FakeGoogle {
    url: String,
    fetches: Arc<AtomicUsize>,
    keys: Arc<std::sync::Mutex<Vec<Value>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGoogle {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn fake_google(keys: Vec<Value>) -> FakeGoogle {
    let fetches = Arc::new(AtomicUsize::new(0));
    let keys = Arc::new(std::sync::Mutex::new(keys));
    let (counter, served) = (fetches.clone(), keys.clone());
    let router = axum::Router::new().route(
        "/oauth2/v3/certs",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = json!({ "keys": *served.lock().unwrap() });
            async move { ([("cache-control", "public, max-age=3600")], axum::Json(body)) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/oauth2/v3/certs", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    FakeGoogle {
        url,
        fetches,
        keys,
        server,
    }
}

const CLIENT_ID: &str = "test-client.apps.googleusercontent.com";

fn google_claims(sub: &str, email: &str, verified: bool) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": "https://accounts.google.com", "aud": CLIENT_ID, "azp": CLIENT_ID,
        "sub": sub, "email": email, "email_verified": verified, "name": "Sam Google",
        "iat": now, "exp": now + 3600,
    })
}

/// Signs `claims` with `key`, naming `kid` in the header.
fn sign(key: &SigningKey, kid: &str, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("sign")
}

async fn google_app(backend: Backend) -> (TestApp, FakeGoogle) {
    let [k1, _] = signing_keys();
    let google = fake_google(vec![k1.jwk.clone()]).await;
    let app = TestApp::spawn_with(
        backend,
        &[
            ("GOOGLE_CLIENT_ID", &format!("other-client,{CLIENT_ID}")),
            ("GOOGLE_JWKS_URL", &google.url),
        ],
    )
    .await;
    (app, google)
}

both_backends!(
    async fn google_sign_in_creates_then_finds_the_user(backend) {
        let (app, google) = google_app(backend).await;
        let [k1, _] = signing_keys();
        let token = sign(k1, k1.kid, &google_claims("google-sub-1", "Sam@Gmail.com", true));
        let (status, body) = app
            .post(
                "/api/v1/auth/google",
                None,
                json!({"idToken": token, "email": "attacker@example.com", "googleId": "other", "name": "X"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (access, _, id) = tokens(&body);
        assert_eq!(body["user"]["email"], "sam@gmail.com");
        assert_eq!(body["user"]["displayName"], "Sam Google");
        assert_eq!(body["user"]["isGuest"], false);
        assert_eq!(count(&app, "accounts", &id).await, 1);
        assert_eq!(count(&app, "categories", &id).await, 5);
        assert_eq!(app.get("/api/v1/auth/me", Some(&access)).await.0, 200);

        // Same Google account again (even with a changed email): same user, keys from the cache.
        let token = sign(k1, k1.kid, &google_claims("google-sub-1", "sam.new@gmail.com", true));
        let (status, again) = app.post("/api/v1/auth/google", None, json!({"idToken": token})).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["user"]["id"], id.as_str());
        assert_eq!(google.fetches.load(Ordering::SeqCst), 1);
        // No password: password login is refused.
        let (status, _) = app
            .post("/api/v1/auth/login", None, json!({"email": "sam@gmail.com", "password": PASSWORD}))
            .await;
        assert_eq!(status, 401);
    }
);

both_backends!(
    async fn google_rejects_bad_tokens(backend) {
        let (app, google) = google_app(backend).await;
        let [k1, k2] = signing_keys();
        let now = chrono::Utc::now().timestamp();
        let good = google_claims("google-sub-2", "tess@gmail.com", true);
        let with = |field: &str, value: Value| {
            let mut claims = good.clone();
            claims[field] = value;
            claims
        };
        let cases = [
            ("wrong key", sign(k2, k1.kid, &good)),
            ("unknown key", sign(k2, k2.kid, &good)),
            ("wrong audience", sign(k1, k1.kid, &with("aud", json!("someone-else")))),
            ("expired", sign(k1, k1.kid, &with("exp", json!(now - 3600)))),
            ("bad issuer", sign(k1, k1.kid, &with("iss", json!("https://evil.example.com")))),
            ("no subject", sign(k1, k1.kid, &with("sub", json!("")))),
            ("not a JWT", "garbage".to_string()),
            (
                "HS256",
                jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                    &good,
                    &jsonwebtoken::EncodingKey::from_secret(b"secret"),
                )
                .unwrap(),
            ),
        ];
        for (what, token) in cases {
            let (status, body) = app.post("/api/v1/auth/google", None, json!({"idToken": token})).await;
            assert_eq!(status, 401, "{what}: {body}");
            assert_eq!(body, json!({"error": "Invalid Google token"}), "{what}");
        }
        let (n,): (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM users")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
        assert_eq!(n, 0, "no user was created");
        // Keys were fetched once: an unknown kid within seconds of a fetch does not refetch.
        assert_eq!(google.fetches.load(Ordering::SeqCst), 1);
        let (status, body) = app.post("/api/v1/auth/google", None, json!({})).await;
        assert_eq!(status, 400);
        assert_eq!(body["details"][0]["path"], "idToken");
        // The plain issuer form is accepted too.
        let token = sign(k1, k1.kid, &with("iss", json!("accounts.google.com")));
        assert_eq!(app.post("/api/v1/auth/google", None, json!({"idToken": token})).await.0, 200);
    }
);

both_backends!(
    async fn google_picks_up_rotated_keys(backend) {
        let (app, google) = google_app(backend).await;
        let [k1, k2] = signing_keys();
        let claims = google_claims("google-sub-3", "walt@gmail.com", true);
        let (status, _) = app
            .post("/api/v1/auth/google", None, json!({"idToken": sign(k1, k1.kid, &claims)}))
            .await;
        assert_eq!(status, 200);
        google.keys.lock().unwrap().push(k2.jwk.clone());
        let rotated = sign(k2, k2.kid, &claims);
        // Forged kids cannot make the server hammer Google: no refetch within seconds.
        for _ in 0..3 {
            let (status, _) = app.post("/api/v1/auth/google", None, json!({"idToken": rotated})).await;
            assert_eq!(status, 401);
        }
        assert_eq!(google.fetches.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(5100)).await;
        let (status, body) = app.post("/api/v1/auth/google", None, json!({"idToken": rotated})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(google.fetches.load(Ordering::SeqCst), 2);
        let (status, _) = app
            .post("/api/v1/auth/google", None, json!({"idToken": sign(k1, k1.kid, &claims)}))
            .await;
        assert_eq!(status, 200);
        assert_eq!(google.fetches.load(Ordering::SeqCst), 2);
    }
);

both_backends!(
    async fn google_links_only_verified_emails(backend) {
        let (app, _google) = google_app(backend).await;
        let [k1, _] = signing_keys();
        let (_, _, victim) = register(&app, "uma@example.com").await;
        let user_row = |id: String| {
            let pool = app.state.db.pool.clone();
            async move {
                let row: (String, Option<String>, Option<String>) =
                    sqlx::query_as("SELECT email, google_id, password_hash FROM users WHERE id = $1")
                        .bind(id)
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                row
            }
        };
        let before = user_row(victim.clone()).await;

        // An unverified email never signs in as the user who owns that address.
        let token = sign(k1, k1.kid, &google_claims("attacker-sub", "UMA@example.com", false));
        let (status, body) = app.post("/api/v1/auth/google", None, json!({"idToken": token})).await;
        assert_eq!(status, 401, "{body}");
        assert_ne!(body["user"]["id"], victim.as_str());
        assert_eq!(user_row(victim.clone()).await, before);
        let (status, _) = app
            .post("/api/v1/auth/login", None, json!({"email": "uma@example.com", "password": PASSWORD}))
            .await;
        assert_eq!(status, 200);

        // A verified email links the Google account to the existing user.
        let token = sign(k1, k1.kid, &google_claims("uma-sub", "uma@example.com", true));
        let (status, body) = app.post("/api/v1/auth/google", None, json!({"idToken": token})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["user"]["id"], victim.as_str());
        assert_eq!(user_row(victim.clone()).await.1.as_deref(), Some("uma-sub"));
        // A second Google account with the same (verified) email is not handed this user.
        let token = sign(k1, k1.kid, &google_claims("other-sub", "uma@example.com", true));
        let (status, body) = app.post("/api/v1/auth/google", None, json!({"idToken": token})).await;
        assert_eq!(status, 409, "{body}");
    }
);

both_databases!(
    async fn google_unconfigured_is_501(app) {
        let (status, body) = app.post("/api/v1/auth/google", None, json!({"idToken": "x"})).await;
        assert_eq!(status, 501);
        assert_eq!(body, json!({"error": "Google sign-in is not configured"}));
    }
);

// ---------------------------------------------------------------------------------------------
// rate limiting

/// A cheap request to a limited endpoint (400: no password hashing, so a burst of them fits in
/// a short window even on a loaded machine).
async fn login_attempt(app: &TestApp, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = app.client.post(app.url("/api/v1/auth/login")).json(&json!({}));
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.expect("request")
}

async fn assert_limited(response: reqwest::Response) -> u64 {
    assert_eq!(response.status(), 429);
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("Retry-After in seconds");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"error": "Too many requests, please try again later"}));
    retry_after
}

fn random_ip() -> String {
    let b = uuid::Uuid::new_v4().into_bytes();
    format!("10.{}.{}.{}", b[0], b[1], b[2])
}

both_backends!(
    async fn rate_limit_in_memory(backend) {
        let app = TestApp::spawn_with(
            backend,
            &[("RATE_LIMIT_MAX_REQUESTS", "3"), ("RATE_LIMIT_WINDOW_MS", "2000")],
        )
        .await;
        for _ in 0..3 {
            assert_eq!(login_attempt(&app, None).await.status(), 400);
        }
        let retry_after = assert_limited(login_attempt(&app, None).await).await;
        assert!((1..=2).contains(&retry_after), "{retry_after}");
        // All five credential endpoints share the count; the others are not limited.
        assert_eq!(app.post("/api/v1/auth/guest", None, json!({})).await.0, 429);
        assert_eq!(app.post("/api/v1/auth/refresh", None, json!({"refreshToken": "x"})).await.0, 429);
        assert_eq!(app.post("/api/v1/auth/register", None, json!({})).await.0, 429);
        assert_eq!(app.post("/api/v1/auth/google", None, json!({})).await.0, 429);
        assert_eq!(app.post("/api/v1/auth/logout", None, json!({})).await.0, 200);
        // X-Forwarded-For is not trusted by default.
        assert_eq!(login_attempt(&app, Some(&random_ip())).await.status(), 429);

        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(login_attempt(&app, None).await.status(), 400);
    }
);

both_backends!(
    async fn rate_limit_uses_forwarded_address_behind_a_trusted_proxy(backend) {
        let app = TestApp::spawn_with(
            backend,
            &[("RATE_LIMIT_MAX_REQUESTS", "2"), ("TRUST_PROXY", "true")],
        )
        .await;
        let (a, b) = (random_ip(), random_ip());
        for _ in 0..2 {
            assert_eq!(login_attempt(&app, Some(&format!("{a}, 192.0.2.1"))).await.status(), 400);
        }
        let retry_after = assert_limited(login_attempt(&app, Some(&a)).await).await;
        assert!((899..=900).contains(&retry_after), "{retry_after}");
        assert_eq!(login_attempt(&app, Some(&b)).await.status(), 400);
    }
);

both_backends!(
    async fn rate_limit_is_shared_through_redis(backend) {
        let settings = [
            ("RATE_LIMIT_MAX_REQUESTS", "3"),
            ("RATE_LIMIT_WINDOW_MS", "60000"),
            ("TRUST_PROXY", "true"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
        ];
        let first = TestApp::spawn_with(backend, &settings).await;
        let second = TestApp::spawn_with(backend, &settings).await;
        let ip = random_ip();
        assert_eq!(login_attempt(&first, Some(&ip)).await.status(), 400);
        assert_eq!(login_attempt(&second, Some(&ip)).await.status(), 400);
        assert_eq!(login_attempt(&first, Some(&ip)).await.status(), 400);
        let retry_after = assert_limited(login_attempt(&second, Some(&ip)).await).await;
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        assert_eq!(login_attempt(&first, Some(&random_ip())).await.status(), 400, "other addresses pass");
    }
);

both_backends!(
    async fn rate_limit_survives_redis_outage(backend) {
        let app = TestApp::spawn_with(
            backend,
            &[("REDIS_URL", "redis://127.0.0.1:1"), ("RATE_LIMIT_MAX_REQUESTS", "3")],
        )
        .await;
        let (status, body) = app
            .post("/api/v1/auth/register", None, json!({"email": "vic@example.com", "password": PASSWORD}))
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = app
            .post("/api/v1/auth/login", None, json!({"email": "vic@example.com", "password": PASSWORD}))
            .await;
        assert_eq!(status, 200, "{body}");
        // Counting falls back to this instance's memory.
        assert_eq!(login_attempt(&app, None).await.status(), 400);
        assert_limited(login_attempt(&app, None).await).await;
    }
);

// ---------------------------------------------------------------------------------------------
// log secrecy

both_backends!(
    async fn secrets_never_reach_the_logs(backend) {
        use std::io::Read;
        use std::process::{Command, Stdio};

        const SECRET_PASSWORD: &str = "Zebra-Quokka-8812-pw";
        const NEW_PASSWORD: &str = "Narwhal-Axolotl-5531-pw";
        const JWT_SECRET: &str = "jwt-secret-for-the-log-test-6b1f0c93d2a4e857";
        const ENCRYPTION_KEY: &str = "encryption-key-for-the-log-test-0f9e8d7c6b5a";

        let dir = tempfile::tempdir().unwrap();
        let pg = match backend {
            Backend::Postgres => Some(common::PgDatabase::create().await),
            Backend::Sqlite => None,
        };
        let database_url = match &pg {
            Some(pg) => pg.url(),
            None => format!("sqlite://{}", dir.path().join("logs.db").display()),
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_cashcraft"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &database_url)
            .env("NODE_ENV", "development")
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("JWT_SECRET", JWT_SECRET)
            .env("ENCRYPTION_KEY", ENCRYPTION_KEY)
            .env("RUST_LOG", "debug")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cashcraft");
        let collect = |mut pipe: Box<dyn Read + Send>| {
            let buffer = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
            let sink = buffer.clone();
            let reader = std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    sink.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
            });
            (buffer, reader)
        };
        let (stdout, stdout_reader) = collect(Box::new(child.stdout.take().unwrap()));
        let (stderr, stderr_reader) = collect(Box::new(child.stderr.take().unwrap()));
        let text = |buffer: &Arc<std::sync::Mutex<Vec<u8>>>| String::from_utf8_lossy(&buffer.lock().unwrap()).to_string();

        // The startup line names the port the OS picked.
        let mut port = None;
        for _ in 0..300 {
            let out = text(&stdout);
            if let Some(rest) = out.split("Server is running on http://0.0.0.0:").nth(1) {
                port = rest.split(|c: char| !c.is_ascii_digit()).next().and_then(|p| p.parse::<u16>().ok());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let Some(port) = port else {
            let _ = child.kill();
            panic!("server did not start:\n{}\n{}", text(&stdout), text(&stderr));
        };
        let base = format!("http://127.0.0.1:{port}/api/v1/auth");
        let client = reqwest::Client::new();
        let post = |path: &str, token: Option<&str>, body: Value| {
            let mut request = client.post(format!("{base}{path}")).json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            async move {
                let response = request.send().await.expect("request");
                (response.status(), response.json::<Value>().await.unwrap_or(Value::Null))
            }
        };

        let (status, registered) = post(
            "/register",
            None,
            json!({"email": "logs@example.com", "password": SECRET_PASSWORD}),
        )
        .await;
        assert_eq!(status, 201);
        let (status, logged_in) = post(
            "/login",
            None,
            json!({"email": "logs@example.com", "password": SECRET_PASSWORD}),
        )
        .await;
        assert_eq!(status, 200);
        let (status, _) = post("/login", None, json!({"email": "logs@example.com", "password": NEW_PASSWORD})).await;
        assert_eq!(status, 401);
        let refresh_token = logged_in["refreshToken"].as_str().unwrap().to_string();
        let (status, refreshed) = post("/refresh", None, json!({"refreshToken": refresh_token})).await;
        assert_eq!(status, 200);
        let access = refreshed["accessToken"].as_str().unwrap().to_string();
        let response = client
            .get(format!("{base}/me?token={access}"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let (status, _) = post(
            "/change-password",
            Some(&access),
            json!({"currentPassword": SECRET_PASSWORD, "newPassword": NEW_PASSWORD}),
        )
        .await;
        assert_eq!(status, 200);
        // A malformed body that carries a password.
        let response = client
            .post(format!("{base}/login"))
            .header("content-type", "application/json")
            .body(format!("{{\"email\":\"logs@example.com\",\"password\":\"{SECRET_PASSWORD}\""))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);

        // Stop it gracefully and read everything it wrote.
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let mut exited = false;
        for _ in 0..100 {
            if child.try_wait().ok().flatten().is_some() {
                exited = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = stdout_reader.join();
        let _ = stderr_reader.join();
        let logs = format!("{}\n{}", text(&stdout), text(&stderr));
        assert!(logs.contains("/api/v1/auth/login"), "request lines are logged:\n{logs}");
        assert!(logs.contains("DEBUG"), "debug logging is on:\n{logs}");
        assert!(exited, "the server stops on SIGTERM:\n{logs}");

        let secrets = [
            ("password", SECRET_PASSWORD.to_string()),
            ("new password", NEW_PASSWORD.to_string()),
            ("JWT_SECRET", JWT_SECRET.to_string()),
            ("ENCRYPTION_KEY", ENCRYPTION_KEY.to_string()),
            ("access token (register)", registered["accessToken"].as_str().unwrap().to_string()),
            ("refresh token (register)", registered["refreshToken"].as_str().unwrap().to_string()),
            ("access token (login)", logged_in["accessToken"].as_str().unwrap().to_string()),
            ("refresh token (login)", refresh_token.clone()),
            ("access token (refresh)", access.clone()),
            ("refresh token (refresh)", refreshed["refreshToken"].as_str().unwrap().to_string()),
        ];
        for (what, secret) in secrets {
            assert!(!logs.contains(&secret), "the {what} appears in the logs");
            // A token's signature alone is as bad as the whole token.
            if let Some(signature) = secret.rsplit('.').next().filter(|s| s.len() > 20) {
                assert!(!logs.contains(signature), "the {what}'s signature appears in the logs");
            }
        }
        drop(pg);
    }
);

// ---------------------------------------------------------------------------------------------
// OpenAPI

both_databases!(
    async fn openapi_documents_every_auth_endpoint(app) {
        let (status, doc) = app.get("/api/v1/openapi.json", None).await;
        assert_eq!(status, 200);
        let expect = [
            ("/api/v1/auth/register", "post", &["201", "400", "409", "429"][..], true),
            ("/api/v1/auth/login", "post", &["200", "400", "401", "429"][..], true),
            ("/api/v1/auth/guest", "post", &["200", "429"][..], false),
            ("/api/v1/auth/google", "post", &["200", "400", "401", "429", "501"][..], true),
            ("/api/v1/auth/refresh", "post", &["200", "400", "401", "429"][..], true),
            ("/api/v1/auth/logout", "post", &["200"][..], true),
            ("/api/v1/auth/me", "get", &["200", "401"][..], false),
            ("/api/v1/auth/me", "put", &["200", "400", "401"][..], true),
            ("/api/v1/auth/me", "delete", &["200", "400", "401"][..], true),
            ("/api/v1/auth/change-password", "post", &["200", "400", "401"][..], true),
            ("/api/v1/auth/upgrade", "post", &["200", "400", "401", "409"][..], true),
            ("/api/v1/auth/reset-data", "post", &["200", "401"][..], false),
            ("/api/v1/auth/reset", "post", &["200", "401"][..], false),
        ];
        for (path, method, statuses, has_body) in expect {
            let op = &doc["paths"][path][method];
            assert!(op.is_object(), "{method} {path} is documented");
            for status in statuses {
                assert!(op["responses"][status].is_object(), "{method} {path} documents {status}");
            }
            assert_eq!(op["requestBody"].is_object(), has_body, "{method} {path} request body");
        }
    }
);
