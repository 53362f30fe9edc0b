//! Transactions over HTTP, on SQLite and PostgreSQL: records and their embeds, every rule and
//! message of the Transactions section, balance effects, filters, statistics and concurrency.

mod common;
mod ledger_common;

use std::collections::HashMap;

use ledger_common::*;
use serde_json::{json, Value};

fn has_detail(body: &Value, path: &str, msg: &str) -> bool {
    body["details"]
        .as_array()
        .is_some_and(|d| d.iter().any(|e| e["path"] == path && e["msg"] == msg))
}

const RECORD_FIELDS: [&str; 15] = [
    "id",
    "user_id",
    "account_id",
    "category_id",
    "amount",
    "type",
    "date",
    "description",
    "to_account_id",
    "created_at",
    "updated_at",
    "synced_at",
    "account",
    "toAccount",
    "category",
];

fn assert_shape(record: &Value) {
    let mut keys: Vec<&str> = record
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut expected = RECORD_FIELDS.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected);
}

both_databases!(
    async fn create_and_read_with_embeds(app) {
        let token = register(&app).await;
        let cash = default_account(&app, &token).await;
        let salary = category(&app, &token, "Зарплата").await;
        let (status, t) = app
            .post(
                "/api/v1/transactions",
                Some(&token),
                json!({"accountId": cash, "categoryId": salary, "amount": 1500.75, "type": "income",
                       "date": "2025-06-01T10:00:00+02:00", "description": "June salary"}),
            )
            .await;
        assert_eq!(status, 201, "{t}");
        assert_shape(&t);
        assert_eq!(t["account_id"], json!(cash));
        assert_eq!(t["category_id"], json!(salary));
        assert_eq!(t["amount"], json!(1500.75));
        assert_eq!(t["type"], "income");
        assert_eq!(t["date"], "2025-06-01T08:00:00.000Z");
        assert_eq!(t["description"], "June salary");
        assert_eq!(t["to_account_id"], Value::Null);
        assert_eq!(t["synced_at"], Value::Null);
        assert_eq!(t["user_id"], json!(user_id(&app, &token).await));
        assert_eq!(
            t["account"],
            json!({"id": cash, "name": "Наличные", "type": "cash", "currency": "RUB"})
        );
        assert_eq!(t["toAccount"], Value::Null);
        assert_eq!(
            t["category"],
            json!({"id": salary, "name": "Зарплата", "icon": "💰", "color": "#95E1D3"})
        );
        assert_eq!(balance(&app, &token, &cash).await, "1500.75");

        let id = t["id"].as_str().unwrap();
        let (status, one) = app.get(&format!("/api/v1/transactions/{id}"), Some(&token)).await;
        assert_eq!(status, 200);
        assert_eq!(one, t);
        let (_, list) = app.get("/api/v1/transactions", Some(&token)).await;
        assert_eq!(list["transactions"][0], t);

        // The description is encrypted at rest.
        let stored = raw_text(&app, "SELECT description FROM transactions WHERE id = $1", &[id])
            .await
            .expect("stored description");
        assert!(stored.starts_with("v1:") && !stored.contains("June"), "{stored}");

        // A transfer embeds both accounts.
        let b = new_account(&app, &token, "B").await;
        let tr = create_txn(
            &app,
            &token,
            json!({"accountId": cash, "toAccountId": b, "amount": 0.75, "type": "transfer", "date": "2025-06-02"}),
        )
        .await;
        assert_eq!(tr["toAccount"], json!({"id": b, "name": "B", "type": "cash", "currency": "RUB"}));
        assert_eq!(tr["to_account_id"], json!(b));
        assert_eq!(tr["category"], Value::Null);
        assert_eq!(tr["description"], Value::Null);
        assert_eq!(balance(&app, &token, &cash).await, "1500");
        assert_eq!(balance(&app, &token, &b).await, "0.75");
    }
);

both_databases!(
    async fn validation_and_reference_messages(app) {
        let token = guest(&app).await;
        let cash = default_account(&app, &token).await;
        let (status, body) = app.post("/api/v1/transactions", Some(&token), json!({})).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "Validation failed");
        assert!(has_detail(&body, "accountId", "Account ID is required"), "{body}");
        assert!(has_detail(&body, "amount", "Amount is required"), "{body}");
        assert!(has_detail(&body, "type", "Type must be income, expense or transfer"), "{body}");
        assert!(has_detail(&body, "date", "Date is required"), "{body}");

        let (status, body) = app
            .post(
                "/api/v1/transactions",
                Some(&token),
                json!({"id": "x", "accountId": "nope", "categoryId": "bad", "amount": 0, "type": "gift",
                       "date": "tomorrow", "toAccountId": "bad"}),
            )
            .await;
        assert_eq!(status, 400);
        for (path, msg) in [
            ("id", "Invalid id"),
            ("accountId", "Invalid account ID"),
            ("categoryId", "Invalid category ID"),
            ("amount", "Amount must be greater than 0"),
            ("type", "Type must be income, expense or transfer"),
            ("date", "Invalid date"),
            ("toAccountId", "Invalid target account ID"),
        ] {
            assert!(has_detail(&body, path, msg), "{path}: {body}");
        }
        // The minimum applies after rounding.
        let (status, body) = app
            .post(
                "/api/v1/transactions",
                Some(&token),
                json!({"accountId": cash, "amount": 0.004, "type": "expense", "date": "2025-01-01"}),
            )
            .await;
        assert_eq!(status, 400);
        assert!(has_detail(&body, "amount", "Amount must be greater than 0"));
        let (status, body) = app
            .post(
                "/api/v1/transactions",
                Some(&token),
                json!({"accountId": cash, "amount": -5, "type": "expense", "date": "2025-01-01"}),
            )
            .await;
        assert_eq!(status, 400);
        assert!(has_detail(&body, "amount", "Amount must be greater than 0"));

        let other = guest(&app).await;
        let other_cash = default_account(&app, &other).await;
        let other_category = category(&app, &other, "Продукты").await;
        let base = |extra: Value| {
            let mut body = json!({"accountId": cash, "amount": 5, "type": "expense", "date": "2025-01-01"});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            body
        };
        let cases = [
            (json!({"accountId": uuid::Uuid::new_v4()}), 404, "Account not found"),
            (json!({"accountId": other_cash}), 404, "Account not found"),
            (json!({"categoryId": uuid::Uuid::new_v4()}), 404, "Category not found"),
            (json!({"categoryId": other_category}), 404, "Category not found"),
            (json!({"type": "transfer"}), 400, "Target account is required for transfers"),
            (json!({"type": "transfer", "toAccountId": null}), 400, "Target account is required for transfers"),
            (json!({"type": "transfer", "toAccountId": uuid::Uuid::new_v4()}), 404, "Target account not found"),
            (json!({"type": "transfer", "toAccountId": other_cash}), 404, "Target account not found"),
            (json!({"type": "transfer", "toAccountId": cash}), 400, "Cannot transfer to the same account"),
        ];
        for (extra, status, message) in cases {
            let (got, body) = app.post("/api/v1/transactions", Some(&token), base(extra.clone())).await;
            assert_eq!((got.as_u16(), body), (status, json!({"error": message})), "{extra}");
        }
        // Nothing was written by any of them, for either user.
        let (_, list) = app.get("/api/v1/transactions", Some(&token)).await;
        assert_eq!(list["total"], json!(0));
        assert_eq!(balance(&app, &token, &cash).await, "0");
        assert_eq!(balance(&app, &other, &other_cash).await, "0");
        // Malformed path ids.
        let (status, body) = app.get("/api/v1/transactions/123", Some(&token)).await;
        assert_eq!(status, 400);
        assert_eq!(body["details"][0]["location"], "params");
        let (status, body) = app
            .get(&format!("/api/v1/transactions/{}", uuid::Uuid::new_v4()), Some(&token))
            .await;
        assert_eq!((status.as_u16(), body), (404, json!({"error": "Transaction not found"})));
    }
);

both_databases!(
    async fn non_transfers_ignore_a_target_account(app) {
        let token = guest(&app).await;
        let cash = default_account(&app, &token).await;
        let b = new_account(&app, &token, "B").await;
        let t = create_txn(
            &app,
            &token,
            json!({"accountId": cash, "toAccountId": b, "amount": 10, "type": "income", "date": "2025-01-01"}),
        )
        .await;
        assert_eq!(t["to_account_id"], Value::Null);
        assert_eq!(t["toAccount"], Value::Null);
        assert_eq!(balance(&app, &token, &cash).await, "10");
        assert_eq!(balance(&app, &token, &b).await, "0");
        // Turning a transfer into an expense clears its target and moves the money back.
        let tr = create_txn(
            &app,
            &token,
            json!({"accountId": cash, "toAccountId": b, "amount": 4, "type": "transfer", "date": "2025-01-02"}),
        )
        .await;
        assert_eq!(balance(&app, &token, &b).await, "4");
        let (status, e) = app
            .put(
                &format!("/api/v1/transactions/{}", tr["id"].as_str().unwrap()),
                Some(&token),
                json!({"type": "expense"}),
            )
            .await;
        assert_eq!(status, 200, "{e}");
        assert_eq!(e["to_account_id"], Value::Null);
        assert_eq!(balance(&app, &token, &cash).await, "6");
        assert_eq!(balance(&app, &token, &b).await, "0");
    }
);

both_databases!(
    async fn updates_rebalance(app) {
        let token = guest(&app).await;
        let a = default_account(&app, &token).await;
        let b = new_account(&app, &token, "B").await;
        let food = category(&app, &token, "Продукты").await;
        let t = create_txn(
            &app,
            &token,
            json!({"accountId": a, "amount": 100, "type": "expense", "date": "2025-01-01", "categoryId": food,
                   "description": "groceries"}),
        )
        .await;
        let path = format!("/api/v1/transactions/{}", t["id"].as_str().unwrap());
        assert_eq!(balance(&app, &token, &a).await, "-100");

        let (status, u) = app.put(&path, Some(&token), json!({"amount": "50"})).await;
        assert_eq!(status, 200, "{u}");
        assert_eq!(u["amount"], json!(50));
        assert_eq!(u["description"], "groceries");
        assert_eq!(u["category_id"], json!(food));
        assert_eq!(u["created_at"], t["created_at"]);
        assert_eq!(balance(&app, &token, &a).await, "-50");

        let (status, u) = app
            .put(&path, Some(&token), json!({"type": "transfer", "toAccountId": b, "categoryId": null}))
            .await;
        assert_eq!(status, 200, "{u}");
        assert_eq!(u["category"], Value::Null);
        assert_eq!(u["toAccount"]["id"], json!(b));
        assert_eq!(balance(&app, &token, &a).await, "-50");
        assert_eq!(balance(&app, &token, &b).await, "50");

        let (status, body) = app.put(&path, Some(&token), json!({"accountId": b})).await;
        assert_eq!((status.as_u16(), body), (400, json!({"error": "Cannot transfer to the same account"})));
        let (status, body) = app
            .put(&path, Some(&token), json!({"toAccountId": uuid::Uuid::new_v4()}))
            .await;
        assert_eq!((status.as_u16(), body), (404, json!({"error": "Target account not found"})));
        let (status, body) = app.put(&path, Some(&token), json!({"toAccountId": null})).await;
        assert_eq!(
            (status.as_u16(), body),
            (400, json!({"error": "Target account is required for transfers"}))
        );

        // Swap the direction: b → a.
        let (status, _) = app
            .put(&path, Some(&token), json!({"accountId": b, "toAccountId": a, "amount": 20}))
            .await;
        assert_eq!(status, 200);
        assert_eq!(balance(&app, &token, &a).await, "20");
        assert_eq!(balance(&app, &token, &b).await, "-20");

        let (status, u) = app
            .put(&path, Some(&token), json!({"type": "income", "description": null, "date": "2025-02-01"}))
            .await;
        assert_eq!(status, 200);
        assert_eq!(u["description"], Value::Null);
        assert_eq!(u["date"], "2025-02-01T00:00:00.000Z");
        assert_eq!(balance(&app, &token, &a).await, "0");
        assert_eq!(balance(&app, &token, &b).await, "20");

        let (status, body) = app.put(&path, Some(&token), json!({"amount": 0, "type": "loan"})).await;
        assert_eq!(status, 400);
        assert_eq!(body["details"].as_array().unwrap().len(), 2);

        // Another user: 404 and nothing changes.
        let other = guest(&app).await;
        let (status, body) = app.put(&path, Some(&other), json!({"amount": 1})).await;
        assert_eq!((status.as_u16(), body), (404, json!({"error": "Transaction not found"})));
        let (status, _) = app.get(&path, Some(&other)).await;
        assert_eq!(status, 404);
        let (status, _) = app.delete(&path, Some(&other)).await;
        assert_eq!(status, 404);
        assert_eq!(balance(&app, &token, &b).await, "20");
    }
);

both_databases!(
    async fn delete_reverses_the_effect(app) {
        let token = guest(&app).await;
        let a = default_account(&app, &token).await;
        let b = new_account(&app, &token, "B").await;
        create_txn(&app, &token, json!({"accountId": a, "amount": 7, "type": "income", "date": "2025-01-01"})).await;
        let t = create_txn(
            &app,
            &token,
            json!({"accountId": a, "toAccountId": b, "amount": 3, "type": "transfer", "date": "2025-01-01"}),
        )
        .await;
        let path = format!("/api/v1/transactions/{}", t["id"].as_str().unwrap());
        let (status, body) = app.delete(&path, Some(&token)).await;
        assert_eq!(status, 204);
        assert_eq!(body, Value::Null);
        assert_eq!(balance(&app, &token, &a).await, "7");
        assert_eq!(balance(&app, &token, &b).await, "0");
        let (status, _) = app.delete(&path, Some(&token)).await;
        assert_eq!(status, 404);
        let tombstone = raw_int(
            &app,
            "SELECT COUNT(*) FROM sync_tombstones WHERE record_id = $1 AND table_name = 'transactions'",
            &[t["id"].as_str().unwrap()],
        )
        .await;
        assert_eq!(tombstone, 1);
    }
);

both_databases!(
    async fn post_with_an_existing_id_updates(app) {
        let token = guest(&app).await;
        let a = default_account(&app, &token).await;
        let id = uuid::Uuid::new_v4().to_string();
        let body = json!({"id": id, "accountId": a, "amount": 10, "type": "expense", "date": "2025-01-01"});
        let (status, t) = app.post("/api/v1/transactions", Some(&token), body).await;
        assert_eq!(status, 201, "{t}");
        assert_eq!(t["id"], json!(id));
        let (status, u) = app
            .post(
                "/api/v1/transactions",
                Some(&token),
                json!({"id": id, "accountId": a, "amount": 25, "type": "expense", "date": "2025-01-01"}),
            )
            .await;
        assert_eq!(status, 200, "{u}");
        assert_eq!(u["amount"], json!(25));
        assert_eq!(balance(&app, &token, &a).await, "-25");

        let other = guest(&app).await;
        let other_cash = default_account(&app, &other).await;
        let (status, body) = app
            .post(
                "/api/v1/transactions",
                Some(&other),
                json!({"id": id, "accountId": other_cash, "amount": 1, "type": "income", "date": "2025-01-01"}),
            )
            .await;
        assert_eq!((status.as_u16(), body), (409, json!({"error": "Id is already in use"})));
        assert_eq!(balance(&app, &other, &other_cash).await, "0");
        let (_, mine) = app.get(&format!("/api/v1/transactions/{id}"), Some(&token)).await;
        assert_eq!(mine, u);
    }
);

both_databases!(
    async fn list_filters_and_pages(app) {
        let token = guest(&app).await;
        let a = default_account(&app, &token).await;
        let b = new_account(&app, &token, "B").await;
        let food = category(&app, &token, "Продукты").await;
        let mut ids = HashMap::new();
        for (name, body) in [
            ("jan1", json!({"accountId": a, "amount": 1, "type": "income", "date": "2025-01-01T00:00:00Z"})),
            ("jan2", json!({"accountId": a, "amount": 2, "type": "expense", "date": "2025-01-02T23:59:59.999Z", "categoryId": food})),
            ("jan3", json!({"accountId": b, "toAccountId": a, "amount": 3, "type": "transfer", "date": "2025-01-03T12:00:00Z"})),
            ("jan4", json!({"accountId": b, "amount": 4, "type": "expense", "date": "2025-01-04T00:00:00Z", "categoryId": food})),
            ("jan5", json!({"accountId": b, "amount": 5, "type": "income", "date": "2025-01-05T00:00:00Z"})),
        ] {
            ids.insert(name, create_txn(&app, &token, body).await["id"].as_str().unwrap().to_string());
        }
        let names = |page: &Value| -> Vec<String> {
            page["transactions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| ids.iter().find(|(_, id)| t["id"] == id.as_str()).unwrap().0.to_string())
                .collect()
        };
        let get = |query: String| {
            let app = &app;
            let token = token.clone();
            async move {
                let (status, page) = app.get(&format!("/api/v1/transactions{query}"), Some(&token)).await;
                assert_eq!(status, 200, "{query}: {page}");
                page
            }
        };
        let all = get(String::new()).await;
        assert_eq!(names(&all), ["jan5", "jan4", "jan3", "jan2", "jan1"]);
        assert_eq!((all["total"].clone(), all["limit"].clone(), all["offset"].clone()), (json!(5), json!(50), json!(0)));

        assert_eq!(names(&get(format!("?accountId={a}")).await), ["jan3", "jan2", "jan1"]);
        assert_eq!(names(&get(format!("?accountId={b}")).await), ["jan5", "jan4", "jan3"]);
        assert_eq!(names(&get(format!("?categoryId={food}")).await), ["jan4", "jan2"]);
        assert_eq!(names(&get("?type=expense".into()).await), ["jan4", "jan2"]);
        assert_eq!(names(&get("?startDate=2025-01-04".into()).await), ["jan5", "jan4"]);
        assert_eq!(names(&get("?endDate=2025-01-02".into()).await), ["jan2", "jan1"]);
        assert_eq!(
            names(&get("?startDate=2025-01-02&endDate=2025-01-03T12:00:00Z".into()).await),
            ["jan3", "jan2"]
        );
        assert_eq!(
            names(&get(format!("?accountId={b}&type=expense&categoryId={food}")).await),
            ["jan4"]
        );
        let page = get("?limit=2&offset=1".into()).await;
        assert_eq!(names(&page), ["jan4", "jan3"]);
        assert_eq!((page["total"].clone(), page["limit"].clone(), page["offset"].clone()), (json!(5), json!(2), json!(1)));
        let page = get("?limit=2&offset=4".into()).await;
        assert_eq!(names(&page), ["jan1"]);
        assert_eq!(get("?offset=10".into()).await["transactions"], json!([]));
        assert_eq!(get("?limit=100".into()).await["limit"], json!(100));

        for (query, path) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=abc", "limit"),
            ("offset=-1", "offset"),
            ("offset=1.5", "offset"),
            ("type=gift", "type"),
            ("accountId=nope", "accountId"),
            ("categoryId=nope", "categoryId"),
            ("startDate=x", "startDate"),
            ("endDate=2025-02-30", "endDate"),
        ] {
            let (status, body) = app.get(&format!("/api/v1/transactions?{query}"), Some(&token)).await;
            assert_eq!(status, 400, "{query}");
            assert_eq!(body["error"], "Validation failed");
            assert_eq!(body["details"][0]["path"], path, "{query}");
            assert_eq!(body["details"][0]["location"], "query", "{query}");
        }
        // Another user sees none of them.
        let other = guest(&app).await;
        let (_, theirs) = app.get(&format!("/api/v1/transactions?accountId={a}"), Some(&other)).await;
        assert_eq!(theirs["total"], json!(0));
    }
);

both_databases!(
    async fn same_date_orders_by_creation(app) {
        let token = guest(&app).await;
        let a = default_account(&app, &token).await;
        let mut created = Vec::new();
        for amount in 1..=3 {
            let t = create_txn(
                &app,
                &token,
                json!({"accountId": a, "amount": amount, "type": "income", "date": "2025-01-01T00:00:00Z"}),
            )
            .await;
            created.push(t["id"].clone());
        }
        let (_, page) = app.get("/api/v1/transactions", Some(&token)).await;
        let listed: Vec<Value> = page["transactions"].as_array().unwrap().iter().map(|t| t["id"].clone()).collect();
        created.reverse();
        assert_eq!(listed, created);
    }
);

both_databases!(
    async fn stats_with_rates_and_groups(app) {
        let token = guest(&app).await;
        let rub = default_account(&app, &token).await;
        let usd = create_account(
            &app,
            &token,
            json!({"name": "USD", "type": "card", "currency": "USD", "exchangeRate": "90.12345678"}),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let food = category(&app, &token, "Продукты").await;
        let salary = category(&app, &token, "Зарплата").await;
        for body in [
            json!({"accountId": rub, "amount": 1000, "type": "income", "date": "2025-03-01", "categoryId": salary}),
            json!({"accountId": usd, "amount": 10.01, "type": "income", "date": "2025-03-02", "categoryId": salary}),
            json!({"accountId": rub, "amount": 250.5, "type": "expense", "date": "2025-03-03", "categoryId": food}),
            json!({"accountId": usd, "amount": 1, "type": "expense", "date": "2025-03-04"}),
            json!({"accountId": rub, "toAccountId": usd, "amount": 100, "type": "transfer", "date": "2025-03-05"}),
            json!({"accountId": rub, "amount": 5, "type": "expense", "date": "2025-04-01", "categoryId": food}),
        ] {
            create_txn(&app, &token, body).await;
        }
        // 10.01 × 90.12345678 = 902.1358023678 → 902.14; 1 × 90.12345678 → 90.12.
        let (status, s) = app
            .get("/api/v1/transactions/stats?startDate=2025-03-01&endDate=2025-03-31", Some(&token))
            .await;
        assert_eq!(status, 200, "{s}");
        assert_eq!(
            s,
            json!({
                "totalIncome": 1902.14,
                "totalExpense": 340.62,
                "balance": 1561.52,
                "categoriesStats": {salary.clone(): 1902.14, food.clone(): 250.5},
                "transactionsCount": 5,
                "groups": []
            })
        );
        let (_, by_type) = app
            .get("/api/v1/transactions/stats?endDate=2025-03-31&groupBy=type", Some(&token))
            .await;
        assert_eq!(
            by_type["groups"],
            json!([
                {"key": "expense", "income": 0, "expense": 340.62, "count": 2},
                {"key": "income", "income": 1902.14, "expense": 0, "count": 2},
                {"key": "transfer", "income": 0, "expense": 0, "count": 1}
            ])
        );
        let (_, by_category) = app
            .get("/api/v1/transactions/stats?groupBy=category", Some(&token))
            .await;
        let groups = by_category["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0], json!({"key": null, "income": 0, "expense": 90.12, "count": 2}));
        let food_group = groups.iter().find(|g| g["key"] == json!(food)).unwrap();
        assert_eq!(food_group, &json!({"key": food, "income": 0, "expense": 255.5, "count": 2}));
        assert_eq!(by_category["transactionsCount"], json!(6));
        let (_, by_account) = app
            .get("/api/v1/transactions/stats?groupBy=account", Some(&token))
            .await;
        let usd_group = by_account["groups"].as_array().unwrap().iter().find(|g| g["key"] == json!(usd)).unwrap();
        assert_eq!(usd_group, &json!({"key": usd, "income": 902.14, "expense": 90.12, "count": 2}));
        let (status, body) = app.get("/api/v1/transactions/stats?groupBy=month", Some(&token)).await;
        assert_eq!(status, 400);
        assert_eq!(body["details"][0]["location"], "query");
        let (status, _) = app.get("/api/v1/transactions/stats?startDate=soon", Some(&token)).await;
        assert_eq!(status, 400);
    }
);

both_databases!(
    async fn period_statistics(app) {
        let token = guest(&app).await;
        let a = default_account(&app, &token).await;
        let food = category(&app, &token, "Продукты").await;
        let now = chrono::Utc::now();
        let day = |days_ago: i64| (now - chrono::Duration::days(days_ago)).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        let key = |days_ago: i64| (now - chrono::Duration::days(days_ago)).format("%Y-%m-%d").to_string();
        for body in [
            json!({"accountId": a, "amount": 100, "type": "income", "date": day(1)}),
            json!({"accountId": a, "amount": 40, "type": "expense", "date": day(1), "categoryId": food}),
            json!({"accountId": a, "amount": 10, "type": "expense", "date": day(3), "categoryId": food}),
            json!({"accountId": a, "amount": 7, "type": "expense", "date": day(20)}),
            json!({"accountId": a, "amount": 1000, "type": "income", "date": day(200)}),
            json!({"accountId": a, "amount": 5, "type": "income", "date": "1969-12-31T23:00:00Z"}),
        ] {
            create_txn(&app, &token, body).await;
        }
        let (status, week) = app.get("/api/v1/transactions/statistics/week", Some(&token)).await;
        assert_eq!(status, 200, "{week}");
        assert_eq!(
            week,
            json!({
                "totalIncome": 100,
                "totalExpenses": 50,
                "balance": 50,
                "transactionsByCategory": {food.clone(): {"amount": 50, "count": 2}},
                "transactionsByDate": {
                    key(1): {"income": 100, "expense": 40},
                    key(3): {"income": 0, "expense": 10}
                }
            })
        );
        let (_, month) = app.get("/api/v1/transactions/statistics/month", Some(&token)).await;
        assert_eq!(month["totalExpenses"], json!(57));
        assert_eq!(month["transactionsByDate"].as_object().unwrap().len(), 3);
        let (_, year) = app.get("/api/v1/transactions/statistics/year", Some(&token)).await;
        assert_eq!(year["totalIncome"], json!(1100));
        let (_, all) = app.get("/api/v1/transactions/statistics/all", Some(&token)).await;
        assert_eq!(all["totalIncome"], json!(1105));
        assert_eq!(all["balance"], json!(1048));
        assert_eq!(all["transactionsByDate"]["1969-12-31"], json!({"income": 5, "expense": 0}));
        let (status, body) = app.get("/api/v1/transactions/statistics/decade", Some(&token)).await;
        assert_eq!(status, 400);
        assert_eq!(body["details"][0]["location"], "params");
    }
);

both_databases!(
    async fn parallel_expenses_on_one_account(app) {
        let token = guest(&app).await;
        let a = default_account(&app, &token).await;
        let requests = (0..50).map(|i| {
            let app = &app;
            let token = token.clone();
            let a = a.clone();
            async move {
                app.post(
                    "/api/v1/transactions",
                    Some(&token),
                    json!({"accountId": a, "amount": format!("{}.01", i + 1), "type": "expense", "date": "2025-01-01"}),
                )
                .await
                .0
            }
        });
        let statuses = futures::future::join_all(requests).await;
        assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
        // Σ (i + 0.01) for i in 1..=50 = 1275.5
        assert_eq!(balance(&app, &token, &a).await, "-1275.5");
        let (_, page) = app.get("/api/v1/transactions?limit=1", Some(&token)).await;
        assert_eq!(page["total"], json!(50));
    }
);

/// The balance each account should have according to its remaining transactions.
async fn implied_balances(app: &common::TestApp, token: &str) -> HashMap<String, i64> {
    let (_, page) = app.get("/api/v1/transactions?limit=100", Some(token)).await;
    assert!(page["total"].as_i64().unwrap() <= 100);
    let cents = |v: &Value| -> i64 {
        let d: rust_decimal::Decimal = v.to_string().parse().unwrap();
        (d * rust_decimal::Decimal::ONE_HUNDRED).try_into().unwrap()
    };
    let mut implied: HashMap<String, i64> = HashMap::new();
    for t in page["transactions"].as_array().unwrap() {
        let amount = cents(&t["amount"]);
        let account = t["account_id"].as_str().unwrap().to_string();
        match t["type"].as_str().unwrap() {
            "income" => *implied.entry(account).or_default() += amount,
            "expense" => *implied.entry(account).or_default() -= amount,
            _ => {
                *implied.entry(account).or_default() -= amount;
                *implied
                    .entry(t["to_account_id"].as_str().unwrap().to_string())
                    .or_default() += amount;
            }
        }
    }
    implied
}

async fn balance_cents(app: &common::TestApp, token: &str, id: &str) -> i64 {
    let d: rust_decimal::Decimal = balance(app, token, id).await.parse().unwrap();
    (d * rust_decimal::Decimal::ONE_HUNDRED).try_into().unwrap()
}

both_databases!(
    async fn interleaved_transfers_conserve_money(app) {
        let token = guest(&app).await;
        let a = default_account(&app, &token).await;
        let b = new_account(&app, &token, "B").await;
        let requests = (0..40).map(|i| {
            let app = &app;
            let token = token.clone();
            let (from, to) = if i % 2 == 0 { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) };
            async move {
                app.post(
                    "/api/v1/transactions",
                    Some(&token),
                    json!({"accountId": from, "toAccountId": to, "amount": i + 1, "type": "transfer", "date": "2025-01-01"}),
                )
                .await
                .0
            }
        });
        let statuses = futures::future::join_all(requests).await;
        assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
        let ca = balance_cents(&app, &token, &a).await;
        let cb = balance_cents(&app, &token, &b).await;
        assert_eq!(ca + cb, 0, "money is conserved");
        let implied = implied_balances(&app, &token).await;
        assert_eq!(implied[&a], ca);
        assert_eq!(implied[&b], cb);
        // Evens (a→b) total 1+3+…+39 = 400, odds (b→a) 2+4+…+40 = 420.
        assert_eq!(ca, 2000);
    }
);

both_databases!(
    async fn updates_racing_deletes_stay_consistent(app) {
        let token = guest(&app).await;
        let a = default_account(&app, &token).await;
        let b = new_account(&app, &token, "B").await;
        let mut ids = Vec::new();
        for i in 0..20 {
            let t = create_txn(
                &app,
                &token,
                json!({"accountId": a, "toAccountId": b, "amount": 10 + i, "type": "transfer", "date": "2025-01-01"}),
            )
            .await;
            ids.push(t["id"].as_str().unwrap().to_string());
        }
        let work = ids.iter().flat_map(|id| {
            let path = format!("/api/v1/transactions/{id}");
            let update = {
                let (app, token, path, a) = (&app, token.clone(), path.clone(), a.clone());
                async move {
                    app.put(&path, Some(&token), json!({"type": "income", "accountId": a, "amount": 99.99}))
                        .await
                        .0
                        .as_u16()
                }
            };
            let delete = {
                let (app, token) = (&app, token.clone());
                async move { app.delete(&path, Some(&token)).await.0.as_u16() }
            };
            [futures::future::Either::Left(update), futures::future::Either::Right(delete)]
        });
        let statuses = futures::future::join_all(work).await;
        assert!(statuses.iter().all(|s| matches!(s, 200 | 204 | 404)), "{statuses:?}");
        let implied = implied_balances(&app, &token).await;
        assert_eq!(balance_cents(&app, &token, &a).await, implied.get(&a).copied().unwrap_or(0));
        assert_eq!(balance_cents(&app, &token, &b).await, implied.get(&b).copied().unwrap_or(0));
        let (_, page) = app.get("/api/v1/transactions", Some(&token)).await;
        assert_eq!(page["total"], json!(0), "every delete happened, before or after its update");
    }
);

both_databases!(
    async fn stats_follow_every_write_at_once(app) {
        let token = guest(&app).await;
        let cash = default_account(&app, &token).await;
        let income = |stats: &Value| stats["totalIncome"].clone();
        let expense = |stats: &Value| stats["totalExpense"].clone();
        let (_, stats) = app.get("/api/v1/transactions/stats", Some(&token)).await;
        assert_eq!((income(&stats), stats["transactionsCount"].clone()), (json!(0), json!(0)));
        // Asked twice without a write in between: the same answer.
        let (_, again) = app.get("/api/v1/transactions/stats", Some(&token)).await;
        assert_eq!(stats, again);

        let created = create_txn(&app, &token, json!({"accountId": cash, "amount": 10, "type": "income", "date": "2026-01-01"})).await;
        let id = created["id"].as_str().unwrap().to_string();
        let (_, stats) = app.get("/api/v1/transactions/stats", Some(&token)).await;
        assert_eq!((income(&stats), stats["transactionsCount"].clone()), (json!(10), json!(1)));

        let (status, _) = app.put(&format!("/api/v1/transactions/{id}"), Some(&token), json!({"type": "expense"})).await;
        assert_eq!(status, 200);
        let (_, stats) = app.get("/api/v1/transactions/stats", Some(&token)).await;
        assert_eq!((income(&stats), expense(&stats)), (json!(0), json!(10)));

        // A change of the account's rate changes the converted sums.
        let (status, _) = app.put(&format!("/api/v1/accounts/{cash}"), Some(&token), json!({"exchangeRate": 2})).await;
        assert_eq!(status, 200);
        let (_, stats) = app.get("/api/v1/transactions/stats", Some(&token)).await;
        assert_eq!(expense(&stats), json!(20));

        // Writes by sync count too.
        let upload = json!({"data": {"transactions": [{"id": uuid::Uuid::new_v4().to_string(), "account_id": cash,
            "amount": 5, "type": "income", "date": "2026-01-02T00:00:00.000Z"}]}});
        let (status, _) = app.post("/api/v1/sync/upload", Some(&token), upload).await;
        assert_eq!(status, 200);
        let (_, stats) = app.get("/api/v1/transactions/stats", Some(&token)).await;
        assert_eq!((income(&stats), stats["transactionsCount"].clone()), (json!(10), json!(2)));

        let (status, _) = app.delete(&format!("/api/v1/transactions/{id}"), Some(&token)).await;
        assert_eq!(status, 204);
        let (_, stats) = app.get("/api/v1/transactions/stats", Some(&token)).await;
        assert_eq!((expense(&stats), stats["transactionsCount"].clone()), (json!(0), json!(1)));
        let (status, _) = app.post("/api/v1/auth/reset", Some(&token), json!({})).await;
        assert_eq!(status, 200);
        let (status, stats) = app.get("/api/v1/transactions/stats", Some(&token)).await;
        assert_eq!((status.as_u16(), stats["transactionsCount"].clone()), (200, json!(0)));
    }
);
