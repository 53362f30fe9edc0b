//! Accounts over HTTP, on SQLite and PostgreSQL: every field, rule and message of the Accounts
//! section of the contract.

mod common;
mod ledger_common;

use common::{Backend, TestApp};
use ledger_common::*;
use serde_json::{json, Value};

fn detail_paths(body: &Value) -> Vec<String> {
    body["details"]
        .as_array()
        .map(|d| d.iter().map(|e| e["path"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

fn has_detail(body: &Value, path: &str, msg: &str) -> bool {
    body["details"]
        .as_array()
        .is_some_and(|d| d.iter().any(|e| e["path"] == path && e["msg"] == msg))
}

const RECORD_FIELDS: [&str; 24] = [
    "id",
    "user_id",
    "name",
    "type",
    "balance",
    "currency",
    "exchange_rate",
    "card_number",
    "color",
    "icon",
    "is_default",
    "is_included_in_total",
    "target_amount",
    "linked_account_id",
    "saved_amount",
    "credit_start_date",
    "credit_term",
    "credit_rate",
    "credit_payment_type",
    "credit_initial_amount",
    "monthly_payment",
    "created_at",
    "updated_at",
    "synced_at",
];

fn assert_record_shape(record: &Value) {
    let object = record.as_object().expect("an object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = RECORD_FIELDS.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected);
}

both_databases!(
    async fn new_user_has_the_default_account(app) {
        let token = register(&app).await;
        let list = accounts(&app, &token).await;
        assert_eq!(list.len(), 1);
        let a = &list[0];
        assert_record_shape(a);
        assert_eq!(a["name"], "Наличные");
        assert_eq!(a["type"], "cash");
        assert_eq!(a["currency"], "RUB");
        assert_eq!(a["icon"], "💵");
        assert_eq!(a["color"], "#95E1D3");
        assert_eq!(a["is_default"], true);
        assert_eq!(a["is_included_in_total"], true);
        assert_eq!(a["balance"], json!(0));
        assert_eq!(a["exchange_rate"], json!(1));
        assert_eq!(a["monthly_payment"], Value::Null);
        assert_eq!(a["card_number"], Value::Null);
        assert!(a["created_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(a["created_at"].as_str().unwrap().len(), 24);
        let (status, body) = app.get("/api/v1/accounts", None).await;
        assert_eq!(status, 401);
        assert_eq!(body, json!({"error": "No authorization header provided"}));
    }
);

both_databases!(
    async fn create_with_every_field(app) {
        let token = guest(&app).await;
        let cash = default_account(&app, &token).await;
        let body = json!({
            "name": "  Ипотека ",
            "type": "credit",
            "balance": -120000,
            "currency": "usd",
            "exchangeRate": "90.5",
            "cardNumber": "4111 1111 1111 1234",
            "color": "#FF0000",
            "icon": "🏦",
            "isDefault": false,
            "isIncludedInTotal": false,
            "targetAmount": 500,
            "linkedAccountId": cash,
            "savedAmount": 100.5,
            "creditStartDate": "2025-01-15",
            "creditTerm": 12,
            "creditRate": 12,
            "creditPaymentType": "annuity",
            "creditInitialAmount": 100000
        });
        let (status, a) = app.post("/api/v1/accounts", Some(&token), body).await;
        assert_eq!(status, 201, "{a}");
        assert_record_shape(&a);
        assert_eq!(a["name"], "Ипотека");
        assert_eq!(a["type"], "credit");
        assert_eq!(a["balance"], json!(-120000));
        assert_eq!(a["currency"], "USD");
        assert_eq!(a["exchange_rate"], json!(90.5));
        assert_eq!(a["card_number"], "**** **** **** 1234");
        assert_eq!(a["color"], "#FF0000");
        assert_eq!(a["icon"], "🏦");
        assert_eq!(a["is_default"], false);
        assert_eq!(a["is_included_in_total"], false);
        assert_eq!(a["target_amount"], json!(500));
        assert_eq!(a["linked_account_id"], json!(cash));
        assert_eq!(a["saved_amount"], json!(100.5));
        assert_eq!(a["credit_start_date"], "2025-01-15T00:00:00.000Z");
        assert_eq!(a["credit_term"], json!(12));
        assert_eq!(a["credit_rate"], json!(12));
        assert_eq!(a["credit_payment_type"], "annuity");
        assert_eq!(a["credit_initial_amount"], json!(100000));
        // 100 000 at 12 % a year over 12 months.
        assert_eq!(a["monthly_payment"], json!(8884.88));
        assert_eq!(a["synced_at"], Value::Null);
        let uid = user_id(&app, &token).await;
        assert_eq!(a["user_id"], json!(uid));

        // Newest first, and the list answers the same record.
        let list = accounts(&app, &token).await;
        assert_eq!(list.len(), 2);
        assert_eq!(list[0], a);
        assert_eq!(list[1]["id"], json!(cash));
    }
);

both_databases!(
    async fn defaults_of_a_minimal_account(app) {
        let token = guest(&app).await;
        let a = create_account(&app, &token, json!({"name": "Wallet", "type": "card"})).await;
        assert_eq!(a["balance"], json!(0));
        assert_eq!(a["currency"], "RUB");
        assert_eq!(a["exchange_rate"], json!(1));
        assert_eq!(a["is_default"], false);
        assert_eq!(a["is_included_in_total"], true);
        assert_eq!(a["monthly_payment"], Value::Null);
        for field in ["card_number", "color", "icon", "target_amount", "credit_term", "credit_rate"] {
            assert_eq!(a[field], Value::Null, "{field}");
        }
    }
);

both_databases!(
    async fn validation_lists_every_failure(app) {
        let token = guest(&app).await;
        let (status, body) = app.post("/api/v1/accounts", Some(&token), json!({})).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "Validation failed");
        assert!(has_detail(&body, "name", "Name is required"), "{body}");
        assert!(
            has_detail(&body, "type", "Type must be one of: cash, card, bank, savings, debt, credit"),
            "{body}"
        );
        assert!(body["details"].as_array().unwrap().iter().all(|d| d["location"] == "body"));

        let bad = json!({
            "id": "not-a-uuid",
            "name": "   ",
            "type": "stocks",
            "currency": "RUBL",
            "exchangeRate": 0,
            "color": "red",
            "creditTerm": 1.5,
            "creditRate": 101,
            "creditPaymentType": "balloon",
            "creditInitialAmount": -1,
            "targetAmount": -5,
            "linkedAccountId": "nope",
            "creditStartDate": "someday",
            "cardNumber": "abcd"
        });
        let (status, body) = app.post("/api/v1/accounts", Some(&token), bad).await;
        assert_eq!(status, 400, "{body}");
        let mut paths = detail_paths(&body);
        paths.sort();
        let mut expected = vec![
            "id",
            "name",
            "type",
            "currency",
            "exchangeRate",
            "color",
            "creditTerm",
            "creditRate",
            "creditPaymentType",
            "creditInitialAmount",
            "targetAmount",
            "linkedAccountId",
            "creditStartDate",
            "cardNumber",
        ];
        expected.sort();
        assert_eq!(paths, expected, "{body}");
        assert!(has_detail(&body, "exchangeRate", "Exchange rate must be greater than 0"));
        assert!(has_detail(&body, "color", "Color must be a hex color like #RRGGBB"));
        assert!(has_detail(&body, "creditRate", "Credit rate must be between 0 and 100"));
        assert!(has_detail(&body, "creditPaymentType", "Credit payment type must be annuity or differentiated"));
        assert!(has_detail(&body, "currency", "Currency must be a 3-letter code"));

        // Term must be a whole number ≥ 1; a rate of exactly 0 or 100 is fine.
        for (term, ok) in [(json!(0), false), (json!(1), true), (json!("24"), true), (json!(1201), false)] {
            let (status, body) = app
                .post(
                    "/api/v1/accounts",
                    Some(&token),
                    json!({"name": "C", "type": "credit", "creditTerm": term, "creditRate": 100}),
                )
                .await;
            assert_eq!(status == 201, ok, "{term}: {body}");
            if status == 201 {
                app.delete(&format!("/api/v1/accounts/{}", body["id"].as_str().unwrap()), Some(&token))
                    .await;
            }
        }
        // Money that is not a number.
        let (status, body) = app
            .post("/api/v1/accounts", Some(&token), json!({"name": "X", "type": "cash", "balance": "abc"}))
            .await;
        assert_eq!(status, 400);
        assert_eq!(detail_paths(&body), vec!["balance"]);
        // Nothing was created by any failed request.
        assert_eq!(accounts(&app, &token).await.len(), 1);
    }
);

both_databases!(
    async fn post_with_an_existing_id_updates(app) {
        let token = guest(&app).await;
        let id = uuid::Uuid::new_v4().to_string();
        let (status, a) = app
            .post(
                "/api/v1/accounts",
                Some(&token),
                json!({"id": id, "name": "Offline", "type": "bank", "color": "#00FF00"}),
            )
            .await;
        assert_eq!(status, 201, "{a}");
        assert_eq!(a["id"], json!(id));
        let (status, b) = app
            .post(
                "/api/v1/accounts",
                Some(&token),
                json!({"id": id, "name": "Offline 2", "type": "savings", "balance": 10}),
            )
            .await;
        assert_eq!(status, 200, "{b}");
        assert_eq!(b["id"], json!(id));
        assert_eq!(b["name"], "Offline 2");
        assert_eq!(b["type"], "savings");
        assert_eq!(b["balance"], json!(10));
        assert_eq!(b["color"], "#00FF00", "fields not sent keep their value");
        assert_eq!(b["created_at"], a["created_at"]);
        assert_eq!(accounts(&app, &token).await.len(), 2);

        // Another user's id: 409 and nothing touched; their paths answer 404.
        let other = guest(&app).await;
        let (status, body) = app
            .post(
                "/api/v1/accounts",
                Some(&other),
                json!({"id": id, "name": "Hijack", "type": "cash"}),
            )
            .await;
        assert_eq!(status, 409);
        assert_eq!(body, json!({"error": "Id is already in use"}));
        let path = format!("/api/v1/accounts/{id}");
        let (status, body) = app.put(&path, Some(&other), json!({"name": "Hijack"})).await;
        assert_eq!((status.as_u16(), body), (404, json!({"error": "Account not found"})));
        let (status, _) = app.delete(&path, Some(&other)).await;
        assert_eq!(status, 404);
        let (status, _) = app.get(&format!("{path}/stats"), Some(&other)).await;
        assert_eq!(status, 404);
        let (status, _) = app.get(&format!("{path}/credit-schedule"), Some(&other)).await;
        assert_eq!(status, 404);
        assert_eq!(accounts(&app, &other).await.len(), 1);
        let mine = account(&app, &token, &id).await;
        assert_eq!(mine, b);
    }
);

both_databases!(
    async fn is_default_moves_in_the_same_transaction(app) {
        let token = guest(&app).await;
        let cash = default_account(&app, &token).await;
        let a = create_account(&app, &token, json!({"name": "A", "type": "card", "isDefault": true})).await;
        let a_id = a["id"].as_str().unwrap().to_string();
        assert_eq!(a["is_default"], true);
        assert_eq!(account(&app, &token, &cash).await["is_default"], false);
        let (status, _) = app
            .put(&format!("/api/v1/accounts/{cash}"), Some(&token), json!({"isDefault": true}))
            .await;
        assert_eq!(status, 200);
        let defaults: Vec<Value> = accounts(&app, &token)
            .await
            .into_iter()
            .filter(|x| x["is_default"] == true)
            .collect();
        assert_eq!(defaults.len(), 1);
        assert_eq!(defaults[0]["id"], json!(cash));
        assert_eq!(account(&app, &token, &a_id).await["is_default"], false);
    }
);

mod free_limit {
    use super::*;

    async fn run(app: TestApp) {
        let token = guest(&app).await;
        let id = new_account(&app, &token, "Second").await;
        let (status, body) = app
            .post(
                "/api/v1/accounts",
                Some(&token),
                json!({"name": "Third", "type": "cash"}),
            )
            .await;
        assert_eq!(status, 403);
        assert!(body["error"].as_str().unwrap().contains("at most 2 accounts"), "{body}");
        // Updating an existing account by id is not a new account.
        let (status, _) = app
            .post(
                "/api/v1/accounts",
                Some(&token),
                json!({"id": id, "name": "Second!", "type": "cash"}),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(accounts(&app, &token).await.len(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(TestApp::spawn_with(Backend::Sqlite, &[("FREE_ACCOUNT_LIMIT", "2")]).await).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(TestApp::spawn_with(Backend::Postgres, &[("FREE_ACCOUNT_LIMIT", "2")]).await).await
    }
}

both_databases!(
    async fn partial_update(app) {
        let token = guest(&app).await;
        let a = create_account(
            &app,
            &token,
            json!({"name": "A", "type": "card", "color": "#123456", "icon": "💳", "targetAmount": 10, "currency": "EUR"}),
        )
        .await;
        let id = a["id"].as_str().unwrap();
        let path = format!("/api/v1/accounts/{id}");
        let (status, b) = app.put(&path, Some(&token), json!({"name": "B"})).await;
        assert_eq!(status, 200, "{b}");
        assert_eq!(b["name"], "B");
        for field in ["type", "color", "icon", "target_amount", "currency", "balance", "created_at"] {
            assert_eq!(b[field], a[field], "{field}");
        }
        let (status, c) = app
            .put(
                &path,
                Some(&token),
                json!({"color": null, "targetAmount": null, "exchangeRate": 0.5, "balance": "12.345"}),
            )
            .await;
        assert_eq!(status, 200, "{c}");
        assert_eq!(c["color"], Value::Null);
        assert_eq!(c["target_amount"], Value::Null);
        assert_eq!(c["icon"], "💳");
        assert_eq!(c["exchange_rate"], json!(0.5));
        assert_eq!(c["balance"], json!(12.35));
        // Bad values: one 400 listing them, nothing changed.
        let (status, body) = app
            .put(&path, Some(&token), json!({"name": "", "color": "#12345", "type": "x"}))
            .await;
        assert_eq!(status, 400);
        assert_eq!(detail_paths(&body).len(), 3, "{body}");
        assert_eq!(account(&app, &token, id).await["name"], "B");
        // Unknown and malformed ids.
        let (status, body) = app
            .put(&format!("/api/v1/accounts/{}", uuid::Uuid::new_v4()), Some(&token), json!({"name": "Z"}))
            .await;
        assert_eq!((status.as_u16(), body), (404, json!({"error": "Account not found"})));
        let (status, body) = app.put("/api/v1/accounts/123", Some(&token), json!({"name": "Z"})).await;
        assert_eq!(status, 400);
        assert_eq!(body["details"][0]["location"], "params");
        // A link must be another of the user's accounts.
        let (status, body) = app
            .put(&path, Some(&token), json!({"linkedAccountId": uuid::Uuid::new_v4()}))
            .await;
        assert_eq!((status.as_u16(), body), (404, json!({"error": "Linked account not found"})));
    }
);

both_databases!(
    async fn card_numbers_are_encrypted_and_masked(app) {
        let token = guest(&app).await;
        let a = create_account(
            &app,
            &token,
            json!({"name": "Visa", "type": "card", "cardNumber": "4111 1111 1111 1234"}),
        )
        .await;
        let id = a["id"].as_str().unwrap().to_string();
        assert_eq!(a["card_number"], "**** **** **** 1234");
        let stored = raw_text(&app, "SELECT card_number FROM accounts WHERE id = $1", &[&id])
            .await
            .expect("stored card number");
        assert!(stored.starts_with("v1:"), "{stored}");
        assert!(!stored.contains("4111") && !stored.contains("1234"), "{stored}");
        assert_eq!(account(&app, &token, &id).await["card_number"], "**** **** **** 1234");

        // Sending the masked number back keeps the real one; a new number replaces it.
        let path = format!("/api/v1/accounts/{id}");
        let (status, _) = app
            .put(&path, Some(&token), json!({"cardNumber": "**** **** **** 1234", "name": "Visa 2"}))
            .await;
        assert_eq!(status, 200);
        let after = raw_text(&app, "SELECT card_number FROM accounts WHERE id = $1", &[&id]).await;
        assert_eq!(after.as_deref(), Some(stored.as_str()));
        let (_, b) = app.put(&path, Some(&token), json!({"cardNumber": "5500-0000-0000-0004"})).await;
        assert_eq!(b["card_number"], "**** **** **** 0004");
        let (_, c) = app.put(&path, Some(&token), json!({"cardNumber": null})).await;
        assert_eq!(c["card_number"], Value::Null);
        let cleared = raw_text(&app, "SELECT card_number FROM accounts WHERE id = $1", &[&id]).await;
        assert_eq!(cleared, None);
    }
);

both_databases!(
    async fn delete_takes_the_accounts_transactions(app) {
        let token = guest(&app).await;
        let cash = default_account(&app, &token).await;
        let (status, body) = app.delete(&format!("/api/v1/accounts/{cash}"), Some(&token)).await;
        assert_eq!((status.as_u16(), body), (400, json!({"error": "Cannot delete the last account"})));

        let b = new_account(&app, &token, "B").await;
        let transfer = create_txn(
            &app,
            &token,
            json!({"accountId": cash, "toAccountId": b, "amount": 30, "type": "transfer", "date": "2025-01-01"}),
        )
        .await;
        let income_b = create_txn(
            &app,
            &token,
            json!({"accountId": b, "amount": 100, "type": "income", "date": "2025-01-02"}),
        )
        .await;
        let expense_cash = create_txn(
            &app,
            &token,
            json!({"accountId": cash, "amount": 10, "type": "expense", "date": "2025-01-03"}),
        )
        .await;
        assert_eq!(balance(&app, &token, &cash).await, "-40");
        assert_eq!(balance(&app, &token, &b).await, "130");

        // Another user cannot delete it.
        let other = guest(&app).await;
        let (status, _) = app.delete(&format!("/api/v1/accounts/{b}"), Some(&other)).await;
        assert_eq!(status, 404);

        let (status, body) = app.delete(&format!("/api/v1/accounts/{b}"), Some(&token)).await;
        assert_eq!(status, 204, "{body}");
        assert_eq!(body, Value::Null);
        // The other side of the transfer keeps its balance: the money did move.
        assert_eq!(balance(&app, &token, &cash).await, "-40");
        let (_, list) = app.get("/api/v1/transactions", Some(&token)).await;
        assert_eq!(list["total"], json!(1));
        assert_eq!(list["transactions"][0]["id"], expense_cash["id"]);
        for gone in [&transfer["id"], &income_b["id"]] {
            let (status, _) = app
                .get(&format!("/api/v1/transactions/{}", gone.as_str().unwrap()), Some(&token))
                .await;
            assert_eq!(status, 404);
        }
        // Tombstones tell syncing devices what disappeared.
        let uid = user_id(&app, &token).await;
        let tombstones = raw_int(
            &app,
            "SELECT COUNT(*) FROM sync_tombstones WHERE user_id = $1 AND record_id IN ($2, $3, $4)",
            &[
                &uid,
                &b,
                transfer["id"].as_str().unwrap(),
                income_b["id"].as_str().unwrap(),
            ],
        )
        .await;
        assert_eq!(tombstones, 3);
        let (status, _) = app.get(&format!("/api/v1/accounts/{b}/stats"), Some(&token)).await;
        assert_eq!(status, 404);
        // Now the default account is the last one again.
        let (status, _) = app.delete(&format!("/api/v1/accounts/{cash}"), Some(&token)).await;
        assert_eq!(status, 400);
    }
);

both_databases!(
    async fn deleting_the_default_account_promotes_another(app) {
        let token = guest(&app).await;
        let cash = default_account(&app, &token).await;
        let b = new_account(&app, &token, "B").await;
        let (status, _) = app.delete(&format!("/api/v1/accounts/{cash}"), Some(&token)).await;
        assert_eq!(status, 204);
        assert_eq!(account(&app, &token, &b).await["is_default"], true);
    }
);

both_databases!(
    async fn statistics_follow_the_formulas(app) {
        let token = guest(&app).await;
        let cash = default_account(&app, &token).await;
        let usd = create_account(
            &app,
            &token,
            json!({"name": "USD card", "type": "card", "currency": "USD", "exchangeRate": 90.5, "balance": 100.10}),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let hidden = create_account(
            &app,
            &token,
            json!({"name": "Hidden", "type": "cash", "isIncludedInTotal": false, "balance": 50}),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        for (account, amount, kind) in [
            (&cash, "1000", "income"),
            (&cash, "200.5", "expense"),
            (&usd, "10", "income"),
            (&hidden, "7", "income"),
        ] {
            create_txn(
                &app,
                &token,
                json!({"accountId": account, "amount": amount, "type": kind, "date": "2025-05-05"}),
            )
            .await;
        }
        create_txn(
            &app,
            &token,
            json!({"accountId": cash, "toAccountId": hidden, "amount": 1, "type": "transfer", "date": "2025-05-05"}),
        )
        .await;
        // cash 798.5, usd 110.10 × 90.5 = 9964.05, hidden 58 (excluded).
        let (status, stats) = app.get("/api/v1/accounts/statistics", Some(&token)).await;
        assert_eq!(status, 200, "{stats}");
        assert_eq!(
            stats,
            json!({
                "totalBalance": 10762.55,
                "balancesByCurrency": {"RUB": 798.5, "USD": 110.1},
                "accountsCount": 3,
                "accountsByType": {
                    "card": {"count": 1, "totalBalance": 9964.05},
                    "cash": {"count": 2, "totalBalance": 798.5}
                },
                "totalIncome": 1905,
                "totalExpenses": 200.5
            })
        );
        let (status, body) = app.get("/api/v1/accounts/statistics?currency=USD", Some(&token)).await;
        assert_eq!((status.as_u16(), body), (400, json!({"error": "No exchange rate from RUB to USD"})));
        // With the user's own rate every balance converts with it instead of the stored rate.
        let (status, body) = app
            .post(
                "/api/v1/exchange-rates/user",
                Some(&token),
                json!({"from_currency": "RUB", "to_currency": "USD", "rate": 0.01}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, stats) = app.get("/api/v1/accounts/statistics?currency=usd", Some(&token)).await;
        assert_eq!(status, 200, "{stats}");
        // cash 798.5 × 0.01 = 7.985, usd 110.10 × 1; income 1000 × 0.01 + 10; expenses 200.5 × 0.01.
        assert_eq!(
            stats,
            json!({
                "totalBalance": 118.09,
                "balancesByCurrency": {"RUB": 798.5, "USD": 110.1},
                "accountsCount": 3,
                "accountsByType": {
                    "card": {"count": 1, "totalBalance": 110.1},
                    "cash": {"count": 2, "totalBalance": 7.99}
                },
                "totalIncome": 20,
                "totalExpenses": 2.01
            })
        );
        let (status, body) = app.get("/api/v1/accounts/statistics?currency=US", Some(&token)).await;
        assert_eq!(status, 400);
        assert_eq!(body["details"][0]["location"], "query");
        // Another user sees only their own.
        let other = guest(&app).await;
        let (_, theirs) = app.get("/api/v1/accounts/statistics", Some(&other)).await;
        assert_eq!(theirs["accountsCount"], json!(1));
        assert_eq!(theirs["totalBalance"], json!(0));
    }
);

both_databases!(
    async fn per_account_stats_in_a_range(app) {
        let token = guest(&app).await;
        let cash = default_account(&app, &token).await;
        let x = new_account(&app, &token, "X").await;
        for body in [
            json!({"accountId": x, "amount": 100, "type": "income", "date": "2025-03-01T10:00:00Z"}),
            json!({"accountId": x, "amount": 30, "type": "expense", "date": "2025-03-02T23:59:59.999Z"}),
            json!({"accountId": x, "toAccountId": cash, "amount": 20, "type": "transfer", "date": "2025-03-03T00:00:00Z"}),
            json!({"accountId": cash, "toAccountId": x, "amount": 5, "type": "transfer", "date": "2025-03-04T12:00:00Z"}),
            json!({"accountId": x, "amount": 1, "type": "income", "date": "2025-04-01"}),
            json!({"accountId": cash, "amount": 999, "type": "income", "date": "2025-03-02"}),
        ] {
            create_txn(&app, &token, body).await;
        }
        let path = format!("/api/v1/accounts/{x}/stats");
        let (status, all) = app.get(&path, Some(&token)).await;
        assert_eq!(status, 200, "{all}");
        assert_eq!(
            all,
            json!({"accountId": x, "balance": 56, "currency": "RUB", "totalIncome": 101, "totalExpense": 30,
                   "transfersIn": 5, "transfersOut": 20, "transactionsCount": 5})
        );
        let (_, range) = app
            .get(&format!("{path}?startDate=2025-03-02&endDate=2025-03-03"), Some(&token))
            .await;
        assert_eq!(range["totalIncome"], json!(0));
        assert_eq!(range["totalExpense"], json!(30));
        assert_eq!(range["transfersOut"], json!(20));
        assert_eq!(range["transfersIn"], json!(0));
        assert_eq!(range["transactionsCount"], json!(2));
        assert_eq!(range["balance"], json!(56), "the balance is the current one");
        let (_, from) = app.get(&format!("{path}?startDate=2025-03-04"), Some(&token)).await;
        assert_eq!(from["transactionsCount"], json!(2));
        assert_eq!(from["transfersIn"], json!(5));
        assert_eq!(from["totalIncome"], json!(1));
        let (_, until) = app.get(&format!("{path}?endDate=2025-03-01"), Some(&token)).await;
        assert_eq!(until["transactionsCount"], json!(1));
        let (status, body) = app.get(&format!("{path}?startDate=nope&endDate=2025-13-01"), Some(&token)).await;
        assert_eq!(status, 400);
        assert_eq!(
            body["details"],
            json!([
                {"path": "startDate", "msg": "Invalid start date", "location": "query"},
                {"path": "endDate", "msg": "Invalid end date", "location": "query"}
            ])
        );
    }
);

both_databases!(
    async fn credit_schedules(app) {
        let token = guest(&app).await;
        let cash = default_account(&app, &token).await;
        let (status, body) = app
            .get(&format!("/api/v1/accounts/{cash}/credit-schedule"), Some(&token))
            .await;
        assert_eq!(
            (status.as_u16(), body),
            (400, json!({"error": "Credit schedule is only available for credit accounts"}))
        );

        let credit = create_account(
            &app,
            &token,
            json!({"name": "Loan", "type": "credit", "creditInitialAmount": 100000, "creditTerm": 12,
                   "creditRate": 12, "creditPaymentType": "annuity", "creditStartDate": "2025-01-31T09:30:00Z"}),
        )
        .await;
        let id = credit["id"].as_str().unwrap();
        let (status, s) = app
            .get(&format!("/api/v1/accounts/{id}/credit-schedule"), Some(&token))
            .await;
        assert_eq!(status, 200, "{s}");
        assert_eq!(s["monthlyPayment"], json!(8884.88));
        let rows = s["schedule"].as_array().unwrap();
        assert_eq!(rows.len(), 12);
        assert_eq!(
            rows[0],
            json!({"month": 1, "date": "2025-02-28T09:30:00.000Z", "payment": 8884.88, "principal": 7884.88,
                   "interest": 1000, "remaining": 92115.12})
        );
        assert_eq!(rows[1]["date"], "2025-03-31T09:30:00.000Z");
        assert_eq!(rows[11]["date"], "2026-01-31T09:30:00.000Z");
        assert_eq!(rows[11]["remaining"], json!(0));
        let cents = |v: &Value| -> i64 {
            let d: rust_decimal::Decimal = v.to_string().parse().unwrap();
            (d * rust_decimal::Decimal::ONE_HUNDRED).try_into().unwrap()
        };
        let principal: i64 = rows.iter().map(|r| cents(&r["principal"])).sum();
        let payments: i64 = rows.iter().map(|r| cents(&r["payment"])).sum();
        let interest: i64 = rows.iter().map(|r| cents(&r["interest"])).sum();
        assert_eq!(principal, 10_000_000);
        assert_eq!(cents(&s["totalPayment"]), payments);
        assert_eq!(cents(&s["totalInterest"]), interest);
        assert_eq!(payments - interest, 10_000_000);
        // (Free users hold at most three accounts.)
        let (status, _) = app.delete(&format!("/api/v1/accounts/{id}"), Some(&token)).await;
        assert_eq!(status, 204);

        // Differentiated, principal from the balance, dated from creation.
        let diff = create_account(
            &app,
            &token,
            json!({"name": "Diff", "type": "credit", "balance": -120000, "creditTerm": 12,
                   "creditRate": 12, "creditPaymentType": "differentiated"}),
        )
        .await;
        assert_eq!(diff["monthly_payment"], json!(11200));
        let (_, d) = app
            .get(&format!("/api/v1/accounts/{}/credit-schedule", diff["id"].as_str().unwrap()), Some(&token))
            .await;
        assert_eq!(d["schedule"][0]["payment"], json!(11200));
        assert_eq!(d["schedule"][11]["payment"], json!(10100));
        assert_eq!(d["totalInterest"], json!(7800));
        let (status, _) = app
            .delete(&format!("/api/v1/accounts/{}", diff["id"].as_str().unwrap()), Some(&token))
            .await;
        assert_eq!(status, 204);
        assert_eq!(
            &d["schedule"][0]["date"].as_str().unwrap()[..7],
            &{
                let created = diff["created_at"].as_str().unwrap();
                let month: u32 = created[5..7].parse().unwrap();
                let year: u32 = created[..4].parse().unwrap();
                let (y, m) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
                format!("{y}-{m:02}")
            }[..]
        );

        // Zero rate: P / n.
        let zero = create_account(
            &app,
            &token,
            json!({"name": "Zero", "type": "credit", "creditInitialAmount": 1000, "creditTerm": 3, "creditRate": 0}),
        )
        .await;
        assert_eq!(zero["monthly_payment"], json!(333.33));
        let (_, z) = app
            .get(&format!("/api/v1/accounts/{}/credit-schedule", zero["id"].as_str().unwrap()), Some(&token))
            .await;
        assert_eq!(z["schedule"][2]["payment"], json!(333.34));
        assert_eq!(z["totalInterest"], json!(0));

        // A credit account without a term has no payment and no schedule.
        let bare = create_account(&app, &token, json!({"name": "Bare", "type": "credit", "balance": -5})).await;
        assert_eq!(bare["monthly_payment"], Value::Null);
        let (status, _) = app
            .get(&format!("/api/v1/accounts/{}/credit-schedule", bare["id"].as_str().unwrap()), Some(&token))
            .await;
        assert_eq!(status, 400);
    }
);
