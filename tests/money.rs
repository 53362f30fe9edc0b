//! Money over HTTP, on SQLite and PostgreSQL: exact decimal sums, the largest amounts, rounding
//! half away from zero, numeric strings, and the rejection of non-numbers and huge values.

mod common;
mod ledger_common;

use ledger_common::*;
use serde_json::{json, Value};

both_databases!(
    async fn ten_tenths_make_exactly_one(app) {
        let token = guest(&app).await;
        let a = default_account(&app, &token).await;
        for _ in 0..10 {
            create_txn(&app, &token, json!({"accountId": a, "amount": 0.1, "type": "income", "date": "2025-01-01"})).await;
        }
        assert_eq!(balance(&app, &token, &a).await, "1");
        let (_, stats) = app.get("/api/v1/transactions/stats", Some(&token)).await;
        assert_eq!(stats["totalIncome"].to_string(), "1");
        let (_, stats) = app.get("/api/v1/accounts/statistics", Some(&token)).await;
        assert_eq!(stats["totalBalance"].to_string(), "1");
    }
);

both_databases!(
    async fn largest_amounts_are_stored_and_summed_exactly(app) {
        let token = guest(&app).await;
        let a = default_account(&app, &token).await;
        let b = new_account(&app, &token, "B").await;
        let big = "9999999999999.99";
        let raw_big: Value = serde_json::from_str(big).unwrap();
        for account in [&a, &b] {
            let t = create_txn(
                &app,
                &token,
                json!({"accountId": account, "amount": raw_big, "type": "income", "date": "2025-01-01"}),
            )
            .await;
            assert_eq!(t["amount"].to_string(), big);
        }
        assert_eq!(balance(&app, &token, &a).await, big);
        let stored = raw_int(&app, "SELECT amount FROM transactions WHERE account_id = $1", &[&a]).await;
        assert_eq!(stored, 999_999_999_999_999);
        let (_, stats) = app.get("/api/v1/accounts/statistics", Some(&token)).await;
        assert_eq!(stats["totalBalance"].to_string(), "19999999999999.98");
        assert_eq!(stats["totalIncome"].to_string(), "19999999999999.98");
        assert_eq!(stats["balancesByCurrency"]["RUB"].to_string(), "19999999999999.98");
        let (_, stats) = app.get("/api/v1/transactions/stats", Some(&token)).await;
        assert_eq!(stats["totalIncome"].to_string(), "19999999999999.98");
        let (_, stats) = app.get("/api/v1/transactions/statistics/all", Some(&token)).await;
        assert_eq!(stats["totalIncome"].to_string(), "19999999999999.98");
        // One cent more than the largest amount is refused.
        let (status, body) = app
            .post(
                "/api/v1/transactions",
                Some(&token),
                json!({"accountId": a, "amount": serde_json::from_str::<Value>("10000000000000.01").unwrap(),
                       "type": "income", "date": "2025-01-01"}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["details"][0]["path"], "amount");
    }
);

both_databases!(
    async fn amounts_round_half_away_from_zero(app) {
        let token = guest(&app).await;
        let a = default_account(&app, &token).await;
        let t = create_txn(&app, &token, json!({"accountId": a, "amount": 12.345, "type": "expense", "date": "2025-01-01"})).await;
        assert_eq!(t["amount"].to_string(), "12.35");
        assert_eq!(balance(&app, &token, &a).await, "-12.35");
        let t = create_txn(&app, &token, json!({"accountId": a, "amount": "12.50", "type": "income", "date": "2025-01-01"})).await;
        assert_eq!(t["amount"].to_string(), "12.5");
        assert_eq!(balance(&app, &token, &a).await, "0.15");
        let t = create_txn(&app, &token, json!({"accountId": a, "amount": "1.5e1", "type": "income", "date": "2025-01-01"})).await;
        assert_eq!(t["amount"].to_string(), "15");
        let acc = create_account(&app, &token, json!({"name": "R", "type": "cash", "balance": "-0.005", "exchangeRate": "1.123456785"})).await;
        assert_eq!(acc["balance"].to_string(), "-0.01");
        assert_eq!(acc["exchange_rate"].to_string(), "1.12345679");
    }
);

both_databases!(
    async fn non_numbers_and_huge_values_are_refused(app) {
        let token = guest(&app).await;
        let a = default_account(&app, &token).await;
        let bad: Vec<Value> = vec![
            json!("NaN"),
            json!("Infinity"),
            json!("-Infinity"),
            json!("abc"),
            json!(""),
            json!(true),
            json!([1]),
            serde_json::from_str("1e400").unwrap(),
            serde_json::from_str("-1e400").unwrap(),
        ];
        for amount in &bad {
            let (status, body) = app
                .post(
                    "/api/v1/transactions",
                    Some(&token),
                    json!({"accountId": a, "amount": amount, "type": "income", "date": "2025-01-01"}),
                )
                .await;
            assert_eq!(status, 400, "{amount}: {body}");
            assert_eq!(body["error"], "Validation failed");
            assert_eq!(body["details"][0]["path"], "amount", "{amount}");
            let (status, _) = app
                .post("/api/v1/accounts", Some(&token), json!({"name": "X", "type": "cash", "balance": amount}))
                .await;
            assert_eq!(status, 400, "balance {amount}");
            let (status, _) = app
                .post("/api/v1/accounts", Some(&token), json!({"name": "X", "type": "cash", "exchangeRate": amount}))
                .await;
            assert_eq!(status, 400, "exchangeRate {amount}");
        }
        // A raw body with a bare NaN is malformed JSON: 400 as well.
        let response = app
            .client
            .post(app.url("/api/v1/transactions"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(format!(r#"{{"accountId":"{a}","amount":NaN,"type":"income","date":"2025-01-01"}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(balance(&app, &token, &a).await, "0");
        assert_eq!(accounts(&app, &token).await.len(), 1);
    }
);
