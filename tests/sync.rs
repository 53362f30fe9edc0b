//! Sync protocols over HTTP: the mobile client's snapshot upload/status/wipe and WatermelonDB's
//! incremental pull/push, on SQLite and PostgreSQL.
mod common;

use common::TestApp;
use serde_json::{json, Value};

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
        body["refreshToken"].as_str().unwrap().to_string(),
    )
}

const ACC: &str = "6f1c2a3e-0000-4000-8000-000000000001";
const CAT: &str = "6f1c2a3e-0000-4000-8000-0000000000c1";
const TXN: &str = "6f1c2a3e-0000-4000-8000-0000000000a1";
const DEBT: &str = "6f1c2a3e-0000-4000-8000-0000000000d1";

/// A payload shaped exactly like the mobile client's upload.
fn mobile_payload() -> Value {
    json!({"data": {
        "accounts": [{
            "id": ACC, "name": "Card", "type": "card", "balance": 1234.56, "currency": "USD",
            "exchangeRate": 92.5, "cardNumber": "4111 1111 1111 1234", "color": "#FF0000", "icon": "💳",
            "isDefault": false, "isIncludedInTotal": true, "targetAmount": 5000, "linkedAccountId": null,
            "savedAmount": 100.5, "createdAt": "2025-06-01T10:00:00.000Z"
        }],
        "categories": [{"id": CAT, "name": "Cafe", "type": "expense", "icon": "☕", "color": "#123456"}],
        "transactions": [
            {"id": TXN, "account_id": ACC, "category_id": CAT, "amount": 12.5, "type": "expense",
             "description": "Coffee", "date": "2025-06-02T08:00:00.000Z", "created_at": 1748851200000i64},
            {"id": "6f1c2a3e-0000-4000-8000-0000000000a2", "account_id": ACC, "category_id": "local-123",
             "amount": 3, "type": "expense", "date": "2025-06-02T09:00:00.000Z"},
            {"account_id": ACC, "amount": 1, "type": "expense"},
            {"id": "6f1c2a3e-0000-4000-8000-0000000000a3", "account_id": "6f1c2a3e-0000-4000-8000-00000000ffff",
             "amount": 1, "type": "expense"}
        ],
        "debts": [
            {"id": DEBT, "type": "owed_to_me", "name": "Bob", "amount": 50, "isIncludedInTotal": true, "dueDate": "2025-07-01"},
            {"id": "6f1c2a3e-0000-4000-8000-0000000000d2", "type": "owed_by_me", "name": "No amount"}
        ],
        "exchangeRates": [{"id": "USD_EUR", "fromCurrency": "USD", "toCurrency": "EUR", "rate": 0.92, "updatedAt": 1748851200000i64}]
    }})
}

both_databases!(
    async fn upload_applies_and_reports_skips(app) {
        let (token, _) = register(&app, "sync@example.com").await;
        let (status, body) = app.post("/api/v1/sync/upload", Some(&token), mobile_payload()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["success"], true);
        assert_eq!(body["applied"], json!({"accounts":1,"categories":1,"transactions":2,"debts":1,"exchangeRates":1}));
        let skipped = body["skipped"].as_array().unwrap();
        assert_eq!(skipped.len(), 3, "{body}");
        assert!(skipped.iter().any(|s| s["table"] == "transactions" && s["reason"] == "Missing or invalid id"));
        assert!(skipped.iter().any(|s| s["table"] == "transactions" && s["reason"] == "Unknown account"));
        assert!(skipped.iter().any(|s| s["table"] == "debts" && s["reason"] == "Missing required field: amount"));

        // Balances are taken as sent; a non-UUID category_id became null.
        let (balance, cat): (i64, Option<String>) = sqlx::query_as(
            "SELECT a.balance, t.category_id FROM accounts a JOIN transactions t ON t.account_id = a.id WHERE t.id = $1",
        )
        .bind("6f1c2a3e-0000-4000-8000-0000000000a2")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
        assert_eq!(balance, 123456);
        assert_eq!(cat, None);

        let (status, body) = app.get("/api/v1/sync/status", Some(&token)).await;
        assert_eq!(status, 200);
        assert_eq!(body["counts"], json!({"accounts":2,"categories":6,"transactions":2,"debts":1}));
        assert_eq!(body["status"], "ok");
        assert!(body["lastSyncAt"].is_string());
    }
);

both_databases!(
    async fn pull_from_null_returns_raw_rows(app) {
        let (token, _) = register(&app, "pull@example.com").await;
        app.post("/api/v1/sync/upload", Some(&token), mobile_payload()).await;
        let (status, body) = app.get("/api/v1/sync/pull?last_pulled_at=null", Some(&token)).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["timestamp"].as_i64().unwrap() > 0);
        let accounts = body["changes"]["accounts"]["created"].as_array().unwrap();
        let card = accounts.iter().find(|a| a["id"] == ACC).unwrap();
        assert_eq!(card["balance"], json!(1234.56));
        assert_eq!(card["exchange_rate"], json!(92.5));
        assert_eq!(card["card_number"], "**** **** **** 1234");
        assert_eq!(card["is_default"], false);
        assert_eq!(card["target_amount"], json!(5000));
        assert_eq!(card["saved_amount"], json!(100.5));
        assert_eq!(card["created_at"], json!(1748772000000i64));
        let txns = body["changes"]["transactions"]["created"].as_array().unwrap();
        let coffee = txns.iter().find(|t| t["id"] == TXN).unwrap();
        assert_eq!(coffee["description"], "Coffee");
        assert_eq!(coffee["amount"], json!(12.5));
        assert_eq!(coffee["account_id"], ACC);
        assert_eq!(coffee["category_id"], CAT);
        assert_eq!(coffee["created_at"], json!(1748851200000i64));
        let rates = body["changes"]["exchange_rates"]["created"].as_array().unwrap();
        assert_eq!(rates[0]["id"], "USD_EUR");
        assert_eq!(rates[0]["rate"], json!(0.92));
        assert_eq!(body["changes"]["debts"]["created"][0]["due_date"], json!(1751328000000i64));
        for table in ["accounts", "categories", "transactions", "debts", "exchange_rates"] {
            assert_eq!(body["changes"][table]["updated"], json!([]));
            assert_eq!(body["changes"][table]["deleted"], json!([]));
        }
        // Nothing new since.
        let ts = body["timestamp"].as_i64().unwrap();
        let (_, again) = app.get(&format!("/api/v1/sync/pull?last_pulled_at={ts}"), Some(&token)).await;
        assert_eq!(again["changes"]["transactions"], json!({"created":[],"updated":[],"deleted":[]}));
        assert_eq!(again["timestamp"], json!(ts));
    }
);

both_databases!(
    async fn push_then_pull_and_deletions(app) {
        let (token, _) = register(&app, "push@example.com").await;
        let (_, first) = app.get("/api/v1/sync/pull", Some(&token)).await;
        let ts = first["timestamp"].as_i64().unwrap();
        let changes = json!({"changes": {
            "accounts": {"created": [{"id": ACC, "name": "Wallet", "type": "cash", "balance": 10, "currency": "EUR",
                "exchange_rate": 1, "is_default": false, "is_included_in_total": true, "_status": "created", "_changed": ""}],
                "updated": [], "deleted": []},
            "transactions": {"created": [{"id": TXN, "account_id": ACC, "amount": 2.5, "type": "income",
                "date": 1748851200000i64, "description": "Tip"}], "updated": [], "deleted": []}
        }});
        let (status, body) = app.post(&format!("/api/v1/sync/push?last_pulled_at={ts}"), Some(&token), changes).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({}));

        let (_, pulled) = app.get(&format!("/api/v1/sync/pull?last_pulled_at={ts}"), Some(&token)).await;
        let created = pulled["changes"]["transactions"]["created"].as_array().unwrap();
        assert_eq!(created.len(), 1);
        assert_eq!(created[0]["description"], "Tip");
        let ts2 = pulled["timestamp"].as_i64().unwrap();
        assert!(ts2 > ts);

        // Deleting the account by push deletes its transaction too; both appear as deleted.
        let deletion = json!({"changes": {"accounts": {"created": [], "updated": [], "deleted": [ACC]}}});
        let (status, _) = app.post(&format!("/api/v1/sync/push?last_pulled_at={ts2}"), Some(&token), deletion).await;
        assert_eq!(status, 200);
        let (_, pulled) = app.get(&format!("/api/v1/sync/pull?last_pulled_at={ts2}"), Some(&token)).await;
        assert_eq!(pulled["changes"]["accounts"]["deleted"], json!([ACC]));
        assert_eq!(pulled["changes"]["transactions"]["deleted"], json!([TXN]));
    }
);

both_databases!(
    async fn push_conflict_applies_nothing(app) {
        let (token, _) = register(&app, "conflict@example.com").await;
        let (_, first) = app.get("/api/v1/sync/pull", Some(&token)).await;
        let ts = first["timestamp"].as_i64().unwrap();
        let account = &first["changes"]["accounts"]["created"][0];
        let account_id = account["id"].as_str().unwrap().to_string();
        // The server changes the account after the device's pull.
        app.post("/api/v1/sync/upload", Some(&token), json!({"data": {"accounts": [{"id": account_id, "name": "Server side"}]}})).await;
        let push = json!({"changes": {
            "debts": {"created": [{"id": DEBT, "type": "owed_by_me", "name": "X", "amount": 5}], "updated": [], "deleted": []},
            "accounts": {"created": [], "updated": [{"id": account_id, "name": "Device side", "type": "cash"}], "deleted": []}
        }});
        let (status, body) = app.post(&format!("/api/v1/sync/push?last_pulled_at={ts}"), Some(&token), push).await;
        assert_eq!(status, 409);
        assert_eq!(body, json!({"error": "Sync conflict: pull and try again"}));
        let (name,): (String,) = sqlx::query_as("SELECT name FROM accounts WHERE id = $1").bind(&account_id).fetch_one(&app.state.db.pool).await.unwrap();
        assert_eq!(name, "Server side");
        let (debts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM debts").fetch_one(&app.state.db.pool).await.unwrap();
        assert_eq!(debts, 0);
    }
);

both_databases!(
    async fn other_users_records_are_never_touched(app) {
        let (alice, _) = register(&app, "alice@example.com").await;
        let (mallory, _) = register(&app, "mallory@example.com").await;
        app.post("/api/v1/sync/upload", Some(&alice), mobile_payload()).await;
        let attack = json!({"data": {
            "accounts": [{"id": ACC, "name": "Stolen", "type": "cash", "balance": 0}],
            "transactions": [{"id": TXN, "account_id": ACC, "amount": 999, "type": "expense"}]
        }});
        let (status, body) = app.post("/api/v1/sync/upload", Some(&mallory), attack).await;
        assert_eq!(status, 200);
        assert_eq!(body["applied"]["accounts"], 0);
        let reasons: Vec<&str> = body["skipped"].as_array().unwrap().iter().map(|s| s["reason"].as_str().unwrap()).collect();
        assert_eq!(reasons, vec!["Id belongs to another user", "Id belongs to another user"]);
        let (name, balance): (String, i64) =
            sqlx::query_as("SELECT name, balance FROM accounts WHERE id = $1").bind(ACC).fetch_one(&app.state.db.pool).await.unwrap();
        assert_eq!((name.as_str(), balance), ("Card", 123456));

        let (_, pulled) = app.get("/api/v1/sync/pull", Some(&mallory)).await;
        let ts = pulled["timestamp"].as_i64().unwrap();
        let push = json!({"changes": {"accounts": {"created": [], "updated": [{"id": ACC, "name": "Stolen"}], "deleted": []}}});
        let (status, _) = app.post(&format!("/api/v1/sync/push?last_pulled_at={ts}"), Some(&mallory), push).await;
        assert_eq!(status, 403);
        let delete = json!({"changes": {"transactions": {"created": [], "updated": [], "deleted": [TXN]}}});
        let (status, _) = app.post(&format!("/api/v1/sync/push?last_pulled_at={ts}"), Some(&mallory), delete).await;
        assert_eq!(status, 403);
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM transactions WHERE id = $1").bind(TXN).fetch_one(&app.state.db.pool).await.unwrap();
        assert_eq!(count, 1);
    }
);

both_databases!(
    async fn wipe_empties_everything_and_revokes_tokens(app) {
        let (token, refresh) = register(&app, "wipe@example.com").await;
        app.post("/api/v1/sync/upload", Some(&token), mobile_payload()).await;
        let (_, before) = app.get("/api/v1/sync/pull", Some(&token)).await;
        let ts = before["timestamp"].as_i64().unwrap();
        let (status, body) = app.delete("/api/v1/sync/wipe", Some(&token)).await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({"success": true}));
        let (_, body) = app.get("/api/v1/sync/status", Some(&token)).await;
        assert_eq!(body["counts"], json!({"accounts":0,"categories":0,"transactions":0,"debts":0}));
        let (status, body) = app.post("/api/v1/auth/refresh", None, json!({"refreshToken": refresh})).await;
        assert_eq!(status, 401, "{body}");
        let (_, pulled) = app.get(&format!("/api/v1/sync/pull?last_pulled_at={ts}"), Some(&token)).await;
        assert_eq!(pulled["changes"]["accounts"]["deleted"].as_array().unwrap().len(), 2);
        assert_eq!(pulled["changes"]["transactions"]["deleted"].as_array().unwrap().len(), 2);
        assert_eq!(pulled["changes"]["exchange_rates"]["deleted"], json!(["USD_EUR"]));
    }
);

both_databases!(
    async fn bad_shapes_are_400(app) {
        let (token, _) = register(&app, "shapes@example.com").await;
        for body in [json!({}), json!({"data": []}), json!({"data": {"accounts": {}}})] {
            let (status, body) = app.post("/api/v1/sync/upload", Some(&token), body).await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(body["error"], "Validation failed");
        }
        let (status, _) = app.post("/api/v1/sync/push?last_pulled_at=1", Some(&token), json!({"changes": []})).await;
        assert_eq!(status, 400);
        let (status, _) = app.post("/api/v1/sync/push", Some(&token), json!({"changes": {}})).await;
        assert_eq!(status, 400);
        let (status, body) = app.get("/api/v1/sync/pull?last_pulled_at=abc", Some(&token)).await;
        assert_eq!(status, 400);
        assert_eq!(body["details"][0]["location"], "query");
        let (status, _) = app.get("/api/v1/sync/status", None).await;
        assert_eq!(status, 401);
    }
);

both_databases!(
    async fn concurrent_writes_during_pulls_are_never_lost(app) {
        let (token, _) = register(&app, "race@example.com").await;
        let (_, first) = app.get("/api/v1/sync/pull", Some(&token)).await;
        let account_id = first["changes"]["accounts"]["created"][0]["id"].as_str().unwrap().to_string();
        let mut ts = first["timestamp"].as_i64().unwrap();
        let app = std::sync::Arc::new(app);
        let writer = {
            let app = app.clone();
            let token = token.clone();
            let account_id = account_id.clone();
            tokio::spawn(async move {
                for i in 0..40 {
                    let id = uuid::Uuid::new_v4().to_string();
                    let body = json!({"data": {"transactions": [{"id": id, "account_id": account_id, "amount": i + 1, "type": "income"}]}});
                    let (status, _) = app.post("/api/v1/sync/upload", Some(&token), body).await;
                    assert_eq!(status, 200);
                }
            })
        };
        let mut seen = std::collections::HashSet::new();
        loop {
            let done = writer.is_finished();
            let (status, pulled) = app.get(&format!("/api/v1/sync/pull?last_pulled_at={ts}"), Some(&token)).await;
            assert_eq!(status, 200);
            for t in pulled["changes"]["transactions"]["created"].as_array().unwrap() {
                seen.insert(t["id"].as_str().unwrap().to_string());
            }
            ts = pulled["timestamp"].as_i64().unwrap();
            if done {
                break;
            }
        }
        writer.await.unwrap();
        assert_eq!(seen.len(), 40);
    }
);

both_databases!(
    async fn upload_then_download_returns_every_field(app) {
        let (token, _) = register(&app, "download@example.com").await;
        let (status, _) = app.post("/api/v1/sync/upload", Some(&token), mobile_payload()).await;
        assert_eq!(status, 200);
        let (status, body) = app.get("/api/v1/sync/download", Some(&token)).await;
        assert_eq!(status, 200, "{body}");
        let (_, me) = app.get("/api/v1/auth/me", Some(&token)).await;
        assert_eq!(body["userId"], me["user"]["id"]);
        assert!(body["lastSyncAt"].is_string());

        let card = body["accounts"].as_array().unwrap().iter().find(|a| a["id"] == ACC).unwrap().clone();
        for (field, value) in [
            ("name", json!("Card")),
            ("type", json!("card")),
            ("balance", json!(1234.56)),
            ("currency", json!("USD")),
            ("exchange_rate", json!(92.5)),
            ("card_number", json!("**** **** **** 1234")),
            ("color", json!("#FF0000")),
            ("icon", json!("💳")),
            ("is_default", json!(false)),
            ("is_included_in_total", json!(true)),
            ("target_amount", json!(5000)),
            ("linked_account_id", json!(null)),
            ("saved_amount", json!(100.5)),
            ("created_at", json!("2025-06-01T10:00:00.000Z")),
        ] {
            assert_eq!(card[field], value, "accounts.{field}");
        }
        let cafe = body["categories"].as_array().unwrap().iter().find(|c| c["id"] == CAT).unwrap().clone();
        assert_eq!((cafe["name"].clone(), cafe["icon"].clone(), cafe["color"].clone()), (json!("Cafe"), json!("☕"), json!("#123456")));
        let coffee = body["transactions"].as_array().unwrap().iter().find(|t| t["id"] == TXN).unwrap().clone();
        for (field, value) in [
            ("account_id", json!(ACC)),
            ("category_id", json!(CAT)),
            ("amount", json!(12.5)),
            ("type", json!("expense")),
            ("description", json!("Coffee")),
            ("date", json!("2025-06-02T08:00:00.000Z")),
            ("created_at", json!("2025-06-02T08:00:00.000Z")),
        ] {
            assert_eq!(coffee[field], value, "transactions.{field}");
        }
        let other = body["transactions"].as_array().unwrap().iter().find(|t| t["id"] != TXN).unwrap().clone();
        assert_eq!(other["category_id"], json!(null));
        assert_eq!(body["transactions"].as_array().unwrap().len(), 2);
        let debt = &body["debts"][0];
        assert_eq!((debt["id"].clone(), debt["amount"].clone(), debt["due_date"].clone()), (json!(DEBT), json!(50), json!("2025-07-01T00:00:00.000Z")));
        let rate = &body["exchangeRates"][0];
        assert_eq!((rate["from_currency"].clone(), rate["to_currency"].clone(), rate["rate"].clone()), (json!("USD"), json!("EUR"), json!(0.92)));

        // The raw rows hold no plaintext card number or description.
        let (card_raw, description_raw): (String, String) = sqlx::query_as(
            "SELECT a.card_number, t.description FROM accounts a JOIN transactions t ON t.account_id = a.id WHERE t.id = $1",
        )
        .bind(TXN)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
        assert!(!card_raw.contains("1234") && !description_raw.contains("Coffee"));

        // A second upload of a partial record keeps the fields it does not carry.
        let (status, _) = app
            .post("/api/v1/sync/upload", Some(&token), json!({"data": {"accounts": [{"id": ACC, "savedAmount": 7}]}}))
            .await;
        assert_eq!(status, 200);
        let (_, again) = app.get("/api/v1/sync/download", Some(&token)).await;
        let card = again["accounts"].as_array().unwrap().iter().find(|a| a["id"] == ACC).unwrap().clone();
        assert_eq!((card["saved_amount"].clone(), card["name"].clone(), card["balance"].clone()), (json!(7), json!("Card"), json!(1234.56)));
    }
);

both_databases!(
    async fn rest_changes_and_cascades_appear_in_the_next_pull(app) {
        let (token, _) = register(&app, "cascade@example.com").await;
        let (_, accounts) = app.get("/api/v1/accounts", Some(&token)).await;
        let cash = accounts[0]["id"].as_str().unwrap().to_string();
        let (status, created) = app
            .post("/api/v1/accounts", Some(&token), json!({"name": "Card", "type": "card", "balance": 0}))
            .await;
        assert_eq!(status, 201, "{created}");
        let card = created["id"].as_str().unwrap().to_string();
        let mut ids = Vec::new();
        for body in [
            json!({"accountId": card, "amount": 5, "type": "income", "date": "2026-01-01"}),
            json!({"accountId": cash, "toAccountId": card, "amount": 2, "type": "transfer", "date": "2026-01-01"}),
            json!({"accountId": cash, "amount": 1, "type": "expense", "date": "2026-01-01"}),
        ] {
            let (status, txn) = app.post("/api/v1/transactions", Some(&token), body).await;
            assert_eq!(status, 201, "{txn}");
            ids.push(txn["id"].as_str().unwrap().to_string());
        }
        let (_, pulled) = app.get("/api/v1/sync/pull", Some(&token)).await;
        let ts = pulled["timestamp"].as_i64().unwrap();

        // A REST delete of one transaction, then deleting the card (which takes its two transactions).
        let (status, _) = app.delete(&format!("/api/v1/transactions/{}", ids[2]), Some(&token)).await;
        assert_eq!(status, 204);
        let (status, _) = app.delete(&format!("/api/v1/accounts/{card}"), Some(&token)).await;
        assert_eq!(status, 204);
        let (_, pulled) = app.get(&format!("/api/v1/sync/pull?last_pulled_at={ts}"), Some(&token)).await;
        let mut deleted: Vec<String> = pulled["changes"]["transactions"]["deleted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        deleted.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(deleted, expected);
        assert_eq!(pulled["changes"]["accounts"]["deleted"], json!([card]));
        // The cash account's balance changed by REST (the expense was reversed): it is updated.
        let updated = pulled["changes"]["accounts"]["updated"].as_array().unwrap();
        assert!(updated.iter().any(|a| a["id"] == cash.as_str()), "{pulled}");
    }
);

both_databases!(
    async fn a_database_failure_mid_upload_writes_nothing(app) {
        let (token, _) = register(&app, "failure@example.com").await;
        // Make every debt insert fail inside the database, after the accounts were written.
        let pool = &app.state.db.pool;
        match app.backend {
            common::Backend::Postgres => {
                sqlx::query(
                    "CREATE FUNCTION refuse_debts() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql",
                )
                .execute(pool)
                .await
                .unwrap();
                sqlx::query("CREATE TRIGGER refuse_debts BEFORE INSERT ON debts FOR EACH ROW EXECUTE FUNCTION refuse_debts()")
                    .execute(pool)
                    .await
                    .unwrap();
            }
            common::Backend::Sqlite => {
                sqlx::query("CREATE TRIGGER refuse_debts BEFORE INSERT ON debts BEGIN SELECT RAISE(ABORT, 'refused'); END")
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
        let (status, body) = app.post("/api/v1/sync/upload", Some(&token), mobile_payload()).await;
        assert_eq!(status, 500);
        assert_eq!(body, json!({"error": "Sync failed"}));
        let (accounts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM accounts WHERE id = $1").bind(ACC).fetch_one(pool).await.unwrap();
        assert_eq!(accounts, 0, "nothing of the upload may remain");
        let (_, status_body) = app.get("/api/v1/sync/status", Some(&token)).await;
        assert_eq!(status_body["lastSyncAt"], json!(null));
    }
);
