//! Black-box tests of `/api/v1/debts` on SQLite and PostgreSQL: records, validation, upsert by
//! id, isolation between users, statistics, and payments through the ledger (also concurrent).

mod common;

use common::{default_account_id as default_account, register_user as register, TestApp};
use serde_json::{json, Value};

/// An account's balance in cents.
async fn balance(app: &TestApp, account_id: &str) -> i64 {
    let (balance,): (i64,) = sqlx::query_as("SELECT balance FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    balance
}

/// The stored amount (cents) of a debt, or None when it is gone.
async fn stored_amount(app: &TestApp, id: &str) -> Option<i64> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT amount FROM debts WHERE id = $1")
        .bind(id)
        .fetch_optional(&app.state.db.pool)
        .await
        .unwrap();
    row.map(|r| r.0)
}

async fn count_transactions(app: &TestApp, user_id: &str) -> i64 {
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM transactions WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    count
}

async fn tombstone_exists(app: &TestApp, id: &str) -> bool {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT table_name FROM sync_tombstones WHERE record_id = $1 AND table_name = 'debts'")
            .bind(id)
            .fetch_optional(&app.state.db.pool)
            .await
            .unwrap();
    row.is_some()
}

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, record) = app.post("/api/v1/debts", Some(token), body).await;
    assert_eq!(status, 201, "{record}");
    record
}

async fn list(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, body) = app.get("/api/v1/debts", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

fn detail_paths(body: &Value) -> Vec<String> {
    body["details"]
        .as_array()
        .unwrap_or_else(|| panic!("no details in {body}"))
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_string())
        .collect()
}

both_databases!(
    async fn create_list_update_delete(app) {
        let (token, user_id) = register(&app).await;
        let debt = create(
            &app,
            &token,
            json!({"type": "owed_to_me", "name": " Иван ", "amount": 1234.56, "dueDate": "2999-01-02"}),
        )
        .await;
        assert_eq!(debt["type"], "owed_to_me");
        assert_eq!(debt["name"], "Иван");
        assert_eq!(debt["amount"], json!(1234.56));
        assert_eq!(debt["amount"].to_string(), "1234.56");
        assert_eq!(debt["is_included_in_total"], true);
        assert_eq!(debt["due_date"], "2999-01-02T00:00:00.000Z");
        assert_eq!(debt["is_overdue"], false);
        assert_eq!(debt["user_id"], user_id.as_str());
        assert!(debt["synced_at"].is_null());
        assert!(debt["created_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(debt.as_object().unwrap().len(), 11, "{debt}");
        let id = debt["id"].as_str().unwrap().to_string();

        let second = create(
            &app,
            &token,
            json!({"type": "owed_by_me", "name": "Банк", "amount": "12.50", "isIncludedInTotal": false}),
        )
        .await;
        assert_eq!(second["amount"].to_string(), "12.5");
        assert_eq!(second["is_included_in_total"], false);
        assert!(second["due_date"].is_null());

        // Newest first.
        let all = list(&app, &token).await;
        assert_eq!(all.len(), 2);
        assert_eq!(all[0]["id"], second["id"]);
        assert_eq!(all[1]["id"], id.as_str());

        // Partial update: only the given fields change; dueDate null clears.
        let path = format!("/api/v1/debts/{id}");
        let (status, updated) = app.put(&path, Some(&token), json!({"name": "Иван Петров"})).await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["name"], "Иван Петров");
        assert_eq!(updated["amount"], json!(1234.56));
        assert_eq!(updated["due_date"], "2999-01-02T00:00:00.000Z");
        let (status, updated) = app
            .put(&path, Some(&token), json!({"dueDate": null, "amount": 0.015, "isIncludedInTotal": false}))
            .await;
        assert_eq!(status, 200, "{updated}");
        assert!(updated["due_date"].is_null());
        assert_eq!(updated["amount"], json!(0.02));
        assert_eq!(updated["is_included_in_total"], false);
        assert_eq!(updated["name"], "Иван Петров");
        let (status, updated) = app
            .put(&path, Some(&token), json!({"type": "owed_by_me", "dueDate": "2000-01-01T10:00:00+02:00"}))
            .await;
        assert_eq!(status, 200);
        assert_eq!(updated["type"], "owed_by_me");
        assert_eq!(updated["due_date"], "2000-01-01T08:00:00.000Z");
        assert_eq!(updated["is_overdue"], true);
        assert_eq!(list(&app, &token).await[1], updated);

        let (status, body) = app.delete(&path, Some(&token)).await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({"message": "Debt deleted successfully"}));
        assert!(tombstone_exists(&app, &id).await);
        let (status, body) = app.delete(&path, Some(&token)).await;
        assert_eq!(status, 404);
        assert_eq!(body, json!({"error": "Debt not found"}));
        let (status, body) = app.put(&path, Some(&token), json!({"name": "x"})).await;
        assert_eq!(status, 404);
        assert_eq!(body, json!({"error": "Debt not found"}));
        assert_eq!(list(&app, &token).await.len(), 1);

        let (status, _) = app.get("/api/v1/debts", None).await;
        assert_eq!(status, 401);
    }
);

both_databases!(
    async fn validation_failures_list_every_field(app) {
        let (token, _) = register(&app).await;
        let (status, body) = app.post("/api/v1/debts", Some(&token), json!({})).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "Validation failed");
        assert_eq!(detail_paths(&body), ["type", "name", "amount"]);
        assert_eq!(body["details"][2]["msg"], "Amount is required");

        let (status, body) = app
            .post(
                "/api/v1/debts",
                Some(&token),
                json!({"id": "nope", "type": "loan", "name": "", "amount": 0.004, "dueDate": "someday"}),
            )
            .await;
        assert_eq!(status, 400);
        let msgs: Vec<(String, String)> = body["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["path"].as_str().unwrap().into(), d["msg"].as_str().unwrap().into()))
            .collect();
        assert_eq!(
            msgs,
            [
                ("id".to_string(), "Invalid id".to_string()),
                ("type".into(), "Type must be owed_to_me or owed_by_me".into()),
                ("name".into(), "Name is required".into()),
                ("amount".into(), "Amount must be greater than 0".into()),
                ("dueDate".into(), "Due date must be an ISO 8601 date".into()),
            ]
        );

        for bad in [json!(-5), json!(0), json!("abc"), json!("NaN"), json!(1e14), json!(true)] {
            let (status, body) = app
                .post(
                    "/api/v1/debts",
                    Some(&token),
                    json!({"type": "owed_to_me", "name": "X", "amount": bad}),
                )
                .await;
            assert_eq!(status, 400, "{bad}: {body}");
            assert_eq!(detail_paths(&body), ["amount"], "{bad}");
        }
        let (status, body) = app
            .post(
                "/api/v1/debts",
                Some(&token),
                json!({"type": "owed_to_me", "name": "я".repeat(101), "amount": 1}),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["details"][0]["msg"], "Name must be at most 100 characters");
        let long_name = "я".repeat(100);
        let debt = create(&app, &token, json!({"type": "owed_to_me", "name": long_name, "amount": 1})).await;
        assert_eq!(debt["name"], long_name.as_str());
        let (status, _) = app.delete(&format!("/api/v1/debts/{}", debt["id"].as_str().unwrap()), Some(&token)).await;
        assert_eq!(status, 200);

        // U+0000 cannot be stored by PostgreSQL: refused as a 400 on both databases.
        let (status, body) = app
            .post(
                "/api/v1/debts",
                Some(&token),
                json!({"type": "owed_to_me", "name": "a\u{0}b", "amount": 1}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["details"][0]["path"], "name");
        assert_eq!(body["details"][0]["msg"], "String contains a NUL character");

        // 0.005 rounds half away from zero to 0.01, the minimum.
        let debt = create(
            &app,
            &token,
            json!({"type": "owed_to_me", "name": "X", "amount": 0.005}),
        )
        .await;
        assert_eq!(debt["amount"], json!(0.01));

        // PUT checks what it is given.
        let path = format!("/api/v1/debts/{}", debt["id"].as_str().unwrap());
        let (status, body) = app
            .put(&path, Some(&token), json!({"amount": 0, "type": "x", "name": " ", "dueDate": "x"}))
            .await;
        assert_eq!(status, 400);
        assert_eq!(detail_paths(&body), ["type", "name", "amount", "dueDate"]);
        let (status, body) = app.put("/api/v1/debts/123", Some(&token), json!({})).await;
        assert_eq!(status, 400);
        assert_eq!(body["details"][0]["location"], "params");
        assert_eq!(list(&app, &token).await.len(), 1);
    }
);

both_databases!(
    async fn client_ids_are_kept_and_upserted_but_never_taken_from_another_user(app) {
        let (token, _) = register(&app).await;
        let (other, other_id) = register(&app).await;
        let id = uuid::Uuid::new_v4().to_string();
        let created = create(
            &app,
            &token,
            json!({"id": id, "type": "owed_to_me", "name": "A", "amount": 10, "isIncludedInTotal": false, "dueDate": "2999-05-05"}),
        )
        .await;
        assert_eq!(created["id"], id.as_str());

        // The same id again: 200, updated; omitted optional fields keep their values.
        let (status, updated) = app
            .post(
                "/api/v1/debts",
                Some(&token),
                json!({"id": id, "type": "owed_by_me", "name": "B", "amount": 20}),
            )
            .await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["name"], "B");
        assert_eq!(updated["type"], "owed_by_me");
        assert_eq!(updated["amount"], json!(20));
        assert_eq!(updated["is_included_in_total"], false);
        assert_eq!(updated["due_date"], "2999-05-05T00:00:00.000Z");
        assert_eq!(updated["created_at"], created["created_at"]);
        assert_eq!(list(&app, &token).await.len(), 1);

        // Another user: POST with that id → 409; GET/PUT/DELETE/pay → 404; nothing touched.
        let (status, body) = app
            .post(
                "/api/v1/debts",
                Some(&other),
                json!({"id": id, "type": "owed_to_me", "name": "X", "amount": 1}),
            )
            .await;
        assert_eq!(status, 409);
        assert_eq!(body, json!({"error": "Id is already in use"}));
        assert!(list(&app, &other).await.is_empty());
        let path = format!("/api/v1/debts/{id}");
        let (status, _) = app.put(&path, Some(&other), json!({"name": "X"})).await;
        assert_eq!(status, 404);
        let (status, _) = app.delete(&path, Some(&other)).await;
        assert_eq!(status, 404);
        let their_account = default_account(&app, &other_id).await;
        let (status, body) = app
            .post(
                &format!("{path}/pay"),
                Some(&other),
                json!({"accountId": their_account}),
            )
            .await;
        assert_eq!(status, 404);
        assert_eq!(body, json!({"error": "Debt not found"}));
        assert_eq!(balance(&app, &their_account).await, 0);
        assert_eq!(list(&app, &token).await[0], updated);
    }
);

both_databases!(
    async fn stats_are_exact_and_count_included_debts_only_in_money(app) {
        let (token, _) = register(&app).await;
        let (other, _) = register(&app).await;
        let (status, body) = app.get("/api/v1/debts/stats", Some(&token)).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"totalOwedToMe": 0, "totalOwedByMe": 0, "netDebt": 0, "debtsCount": 0})
        );
        for (kind, amount, included) in [
            ("owed_to_me", json!(0.1), true),
            ("owed_to_me", json!(0.2), true),
            ("owed_to_me", json!(1000), false),
            ("owed_by_me", json!("100.05"), true),
            ("owed_by_me", json!(7), false),
        ] {
            create(
                &app,
                &token,
                json!({"type": kind, "name": "x", "amount": amount, "isIncludedInTotal": included}),
            )
            .await;
        }
        create(&app, &other, json!({"type": "owed_to_me", "name": "x", "amount": 5})).await;
        let (status, body) = app.get("/api/v1/debts/stats", Some(&token)).await;
        assert_eq!(status, 200);
        assert_eq!(body["totalOwedToMe"].to_string(), "0.3");
        assert_eq!(body["totalOwedByMe"].to_string(), "100.05");
        assert_eq!(body["netDebt"].to_string(), "-99.75");
        assert_eq!(body["debtsCount"], 5);
        let (_, theirs) = app.get("/api/v1/debts/stats", Some(&other)).await;
        assert_eq!(
            theirs,
            json!({"totalOwedToMe": 5, "totalOwedByMe": 0, "netDebt": 5, "debtsCount": 1})
        );
    }
);

both_databases!(
    async fn partial_then_full_payment_moves_money_through_the_ledger(app) {
        let (token, user_id) = register(&app).await;
        let account = default_account(&app, &user_id).await;
        let debt = create(
            &app,
            &token,
            json!({"type": "owed_to_me", "name": "Иван", "amount": 100, "dueDate": "2000-01-01"}),
        )
        .await;
        assert_eq!(debt["is_overdue"], true);
        let id = debt["id"].as_str().unwrap().to_string();
        let pay = format!("/api/v1/debts/{id}/pay");

        let (status, body) = app
            .post(
                &pay,
                Some(&token),
                json!({"accountId": account, "amount": "30.10", "paymentDate": "2025-06-01T10:00:00Z"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "Debt payment processed successfully");
        assert_eq!(body["remainingDebt"].to_string(), "69.9");
        let txn = &body["transaction"];
        assert_eq!(txn["type"], "income");
        assert_eq!(txn["amount"].to_string(), "30.1");
        assert_eq!(txn["account_id"], account.as_str());
        assert_eq!(txn["user_id"], user_id.as_str());
        assert!(txn["category_id"].is_null());
        assert!(txn["to_account_id"].is_null());
        assert_eq!(txn["description"], "Погашение долга: Иван");
        assert_eq!(txn["date"], "2025-06-01T10:00:00.000Z");
        assert_eq!(balance(&app, &account).await, 3010);
        assert_eq!(stored_amount(&app, &id).await, Some(6990));
        assert_eq!(list(&app, &token).await[0]["amount"].to_string(), "69.9");

        // The description is stored encrypted.
        let (stored,): (String,) = sqlx::query_as("SELECT description FROM transactions WHERE id = $1")
            .bind(txn["id"].as_str().unwrap())
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
        assert!(stored.starts_with("v1:") && !stored.contains("Иван"), "{stored}");

        // No amount: the whole rest; the debt is deleted (with a tombstone).
        let (status, body) = app.post(&pay, Some(&token), json!({"accountId": account})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["remainingDebt"], json!(0));
        assert_eq!(body["transaction"]["amount"].to_string(), "69.9");
        assert_eq!(balance(&app, &account).await, 10000);
        assert_eq!(stored_amount(&app, &id).await, None);
        assert!(tombstone_exists(&app, &id).await);
        assert!(list(&app, &token).await.is_empty());
        let (status, body) = app.post(&pay, Some(&token), json!({"accountId": account})).await;
        assert_eq!(status, 404);
        assert_eq!(body, json!({"error": "Debt not found"}));

        // A debt I owe is paid out of the account as an expense.
        let mine = create(&app, &token, json!({"type": "owed_by_me", "name": "Банк", "amount": 40})).await;
        let (status, body) = app
            .post(
                &format!("/api/v1/debts/{}/pay", mine["id"].as_str().unwrap()),
                Some(&token),
                json!({"accountId": account, "amount": 40}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["transaction"]["type"], "expense");
        assert_eq!(body["transaction"]["description"], "Погашение долга: Банк");
        assert_eq!(body["remainingDebt"], json!(0));
        assert_eq!(balance(&app, &account).await, 6000);
        assert_eq!(count_transactions(&app, &user_id).await, 3);
    }
);

both_databases!(
    async fn payment_failures_change_nothing(app) {
        let (token, user_id) = register(&app).await;
        let (other, other_id) = register(&app).await;
        let account = default_account(&app, &user_id).await;
        let their_account = default_account(&app, &other_id).await;
        let debt = create(&app, &token, json!({"type": "owed_to_me", "name": "X", "amount": 10})).await;
        let pay = format!("/api/v1/debts/{}/pay", debt["id"].as_str().unwrap());

        let (status, body) = app.post(&pay, Some(&token), json!({})).await;
        assert_eq!(status, 400);
        assert_eq!(body["details"][0]["path"], "accountId");
        assert_eq!(body["details"][0]["msg"], "Account ID is required");
        let (status, body) = app
            .post(
                &pay,
                Some(&token),
                json!({"accountId": "x", "amount": 0, "paymentDate": "nope"}),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(detail_paths(&body), ["accountId", "amount", "paymentDate"]);

        let (status, body) = app
            .post(&pay, Some(&token), json!({"accountId": their_account}))
            .await;
        assert_eq!(status, 404);
        assert_eq!(body, json!({"error": "Account not found"}));
        let (status, body) = app
            .post(&pay, Some(&token), json!({"accountId": uuid::Uuid::new_v4()}))
            .await;
        assert_eq!(status, 404);
        assert_eq!(body, json!({"error": "Account not found"}));

        let (status, body) = app
            .post(&pay, Some(&token), json!({"accountId": account, "amount": 10.01}))
            .await;
        assert_eq!(status, 400);
        assert_eq!(body, json!({"error": "Payment amount exceeds the debt"}));

        let (status, body) = app
            .post(
                &format!("/api/v1/debts/{}/pay", uuid::Uuid::new_v4()),
                Some(&token),
                json!({"accountId": account}),
            )
            .await;
        assert_eq!(status, 404);
        assert_eq!(body, json!({"error": "Debt not found"}));

        // The other user cannot pay my debt into their account.
        let (status, _) = app
            .post(&pay, Some(&other), json!({"accountId": their_account}))
            .await;
        assert_eq!(status, 404);

        // A debt stored at 0 (a sync upload can leave one) has nothing left to pay.
        let settled = create(&app, &token, json!({"type": "owed_by_me", "name": "Y", "amount": 1})).await;
        sqlx::query("UPDATE debts SET amount = 0 WHERE id = $1")
            .bind(settled["id"].as_str().unwrap())
            .execute(&app.state.db.pool)
            .await
            .unwrap();
        let settled_pay = format!("/api/v1/debts/{}/pay", settled["id"].as_str().unwrap());
        let (status, body) = app.post(&settled_pay, Some(&token), json!({"accountId": account})).await;
        assert_eq!(status, 400);
        assert_eq!(body, json!({"error": "The debt is already paid off"}));
        let (status, body) = app
            .post(&settled_pay, Some(&token), json!({"accountId": account, "amount": 1}))
            .await;
        assert_eq!(status, 400);
        assert_eq!(body, json!({"error": "Payment amount exceeds the debt"}));

        assert_eq!(balance(&app, &account).await, 0);
        assert_eq!(balance(&app, &their_account).await, 0);
        assert_eq!(stored_amount(&app, debt["id"].as_str().unwrap()).await, Some(1000));
        assert_eq!(count_transactions(&app, &user_id).await, 0);
        assert_eq!(count_transactions(&app, &other_id).await, 0);
    }
);

both_databases!(
    async fn concurrent_partial_payments_never_overpay(app) {
        let (token, user_id) = register(&app).await;
        let account = default_account(&app, &user_id).await;
        let debt = create(&app, &token, json!({"type": "owed_to_me", "name": "X", "amount": 10})).await;
        let id = debt["id"].as_str().unwrap().to_string();
        let pay = format!("/api/v1/debts/{id}/pay");

        // 10 payments of 1 settle the debt; 2 more race with them and must fail.
        let payments = (0..12).map(|_| app.post(&pay, Some(&token), json!({"accountId": account, "amount": 1})));
        let results = futures::future::join_all(payments).await;
        let ok = results.iter().filter(|(status, _)| *status == 200).count();
        assert_eq!(ok, 10, "{results:?}");
        for (status, body) in results.iter().filter(|(status, _)| *status != 200) {
            assert!(
                (*status == 404 && body["error"] == "Debt not found")
                    || (*status == 400 && body["error"] == "Payment amount exceeds the debt"),
                "{status} {body}"
            );
        }
        let mut remaining: Vec<i64> = results
            .iter()
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| body["remainingDebt"].as_i64().unwrap())
            .collect();
        remaining.sort_unstable();
        assert_eq!(remaining, (0..10).collect::<Vec<_>>());
        assert_eq!(balance(&app, &account).await, 1000);
        assert_eq!(stored_amount(&app, &id).await, None);
        assert_eq!(count_transactions(&app, &user_id).await, 10);
    }
);

both_databases!(
    async fn openapi_documents_the_debt_operations(app) {
        let (status, doc) = app.get("/api/v1/openapi.json", None).await;
        assert_eq!(status, 200);
        for (path, method) in [
            ("/api/v1/debts", "get"),
            ("/api/v1/debts", "post"),
            ("/api/v1/debts/stats", "get"),
            ("/api/v1/debts/{id}", "put"),
            ("/api/v1/debts/{id}", "delete"),
            ("/api/v1/debts/{id}/pay", "post"),
        ] {
            let op = &doc["paths"][path][method];
            assert!(op.is_object(), "{method} {path} undocumented");
            assert!(op["security"].is_array(), "{method} {path} without security");
        }
        assert!(doc["components"]["schemas"]["PayResponse"].is_object());
    }
);
