//! Black-box tests of `/api/v1/categories` on SQLite and PostgreSQL: listing, creation and
//! upsert by id, the free-tier limit, updates and deletes with their rules, and the reset.

mod common;

use cashcraft::domain::ledger::TxnKind;
use cashcraft::store::transactions::{insert_with_effect, TxnRow};
use common::{default_account_id as default_account, register_user as register, TestApp};
use serde_json::{json, Value};

/// Inserts an expense of 1.00 through the ledger core, as the transactions endpoint would.
async fn insert_transaction(app: &TestApp, user_id: &str, category_id: Option<&str>) -> String {
    let account_id = default_account(app, user_id).await;
    let mut tx = app.state.db.begin_write().await.unwrap();
    let stamp = cashcraft::store::take_change_stamp(&mut tx, user_id)
        .await
        .unwrap()
        .unwrap();
    let row = TxnRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.to_string(),
        account_id,
        category_id: category_id.map(str::to_string),
        amount: 100,
        kind: TxnKind::Expense,
        date: stamp,
        description: None,
        to_account_id: None,
        created_at: stamp,
        updated_at: stamp,
        synced_at: None,
    };
    insert_with_effect(&mut tx, &row, stamp, false).await.unwrap();
    tx.commit().await.unwrap();
    row.id
}

/// (category_id, server_updated_at) of a transaction, or None when it is gone.
async fn transaction_category(app: &TestApp, id: &str) -> Option<(Option<String>, i64)> {
    sqlx::query_as("SELECT category_id, server_updated_at FROM transactions WHERE id = $1")
        .bind(id)
        .fetch_optional(&app.state.db.pool)
        .await
        .unwrap()
}

async fn tombstone_exists(app: &TestApp, id: &str) -> bool {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT table_name FROM sync_tombstones WHERE record_id = $1 AND table_name = 'categories'")
            .bind(id)
            .fetch_optional(&app.state.db.pool)
            .await
            .unwrap();
    row.is_some()
}

async fn list(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, body) = app.get("/api/v1/categories", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

fn names(categories: &[Value]) -> Vec<String> {
    categories
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn find_named<'a>(categories: &'a [Value], name: &str) -> &'a Value {
    categories
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no category {name}"))
}

fn custom(name: &str) -> Value {
    json!({"name": name, "type": "expense", "icon": "🍕", "color": "#123ABC"})
}

both_databases!(
    async fn new_user_sees_exactly_their_five_system_categories_ordered(app) {
        let (token, user_id) = register(&app).await;
        let categories = list(&app, &token).await;
        assert_eq!(
            names(&categories),
            ["Продукты", "Развлечения", "Транспорт", "Зарплата", "Подработка"]
        );
        let food = find_named(&categories, "Продукты");
        assert_eq!(food["type"], "expense");
        assert_eq!(food["icon"], "🛒");
        assert_eq!(food["color"], "#FF6B6B");
        assert_eq!(food["is_system"], true);
        assert_eq!(food["user_id"], user_id.as_str());
        assert!(food["synced_at"].is_null());
        let created = food["created_at"].as_str().unwrap();
        assert!(created.ends_with('Z') && created.len() == 24, "{created}");
        for key in ["id", "updated_at"] {
            assert!(food[key].is_string(), "{key}");
        }
        assert_eq!(food.as_object().unwrap().len(), 10, "{food}");

        // Custom categories sort in by type then name, case-insensitively.
        for (name, kind) in [("бонус", "income"), ("Аренда", "expense"), ("я", "expense")] {
            let (status, body) = app
                .post(
                    "/api/v1/categories",
                    Some(&token),
                    json!({"name": name, "type": kind, "icon": "x", "color": "#000000"}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
        }
        assert_eq!(
            names(&list(&app, &token).await),
            ["Аренда", "Продукты", "Развлечения", "Транспорт", "я", "бонус", "Зарплата", "Подработка"]
        );

        // Another user sees only their own.
        let (other, other_id) = register(&app).await;
        let theirs = list(&app, &other).await;
        assert_eq!(theirs.len(), 5);
        assert!(theirs.iter().all(|c| c["user_id"] == other_id.as_str()));

        let (status, body) = app.get("/api/v1/categories", None).await;
        assert_eq!(status, 401);
        assert_eq!(body, json!({"error": "No authorization header provided"}));
    }
);

both_databases!(
    async fn create_validates_every_field_at_once(app) {
        let (token, _) = register(&app).await;
        let (status, body) = app.post("/api/v1/categories", Some(&token), json!({})).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "Validation failed");
        let paths: Vec<&str> = body["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, ["name", "type", "icon", "color"]);
        assert!(body["details"].as_array().unwrap().iter().all(|d| d["location"] == "body"));

        let (status, body) = app
            .post(
                "/api/v1/categories",
                Some(&token),
                json!({"id": "not-a-uuid", "name": "  ", "type": "transfer", "icon": "", "color": "red"}),
            )
            .await;
        assert_eq!(status, 400);
        let details = body["details"].as_array().unwrap();
        let msgs: Vec<(&str, &str)> = details
            .iter()
            .map(|d| (d["path"].as_str().unwrap(), d["msg"].as_str().unwrap()))
            .collect();
        assert_eq!(
            msgs,
            [
                ("id", "Invalid id"),
                ("name", "Name is required"),
                ("type", "Type must be income or expense"),
                ("icon", "Icon is required"),
                ("color", "Color must be a hex color like #FF6B6B"),
            ]
        );

        // Wrong JSON types and malformed JSON are 400s too.
        let (status, body) = app
            .post(
                "/api/v1/categories",
                Some(&token),
                json!({"name": 5, "type": "income", "icon": "x", "color": "#000000"}),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["details"][0]["path"], "name");
        let response = app
            .client
            .post(app.url("/api/v1/categories"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{\"name\":")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);

        // Length limits: name 100 characters, icon 50.
        let (status, body) = app
            .post(
                "/api/v1/categories",
                Some(&token),
                json!({"name": "я".repeat(101), "type": "income", "icon": "x".repeat(51), "color": "#000000"}),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["details"][0]["msg"], "Name must be at most 100 characters");
        assert_eq!(body["details"][1]["msg"], "Icon must be at most 50 characters");

        // U+0000 cannot be stored by PostgreSQL: refused as a 400 on both databases.
        let (status, body) = app
            .post(
                "/api/v1/categories",
                Some(&token),
                json!({"name": "a\u{0}b", "type": "income", "icon": "x", "color": "#000000"}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["details"][0]["msg"], "String contains a NUL character");

        // Nothing was written.
        assert_eq!(list(&app, &token).await.len(), 5);

        // A valid one: name trimmed, 201 with the record.
        let (status, body) = app
            .post(
                "/api/v1/categories",
                Some(&token),
                json!({"name": "  Кафе ", "type": "expense", "icon": "☕", "color": "#a1b2c3"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["name"], "Кафе");
        assert_eq!(body["color"], "#a1b2c3");
        assert_eq!(body["is_system"], false);
        assert!(uuid::Uuid::parse_str(body["id"].as_str().unwrap()).is_ok());
    }
);

both_databases!(
    async fn client_ids_are_kept_and_upserted_but_never_taken_from_another_user(app) {
        let (token, user_id) = register(&app).await;
        let (other, _) = register(&app).await;
        let id = uuid::Uuid::new_v4().to_string();

        let mut body = custom("Кафе");
        body["id"] = json!(id.to_uppercase());
        let (status, created) = app.post("/api/v1/categories", Some(&token), body).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["id"], id.as_str());

        // The same id again updates (200).
        let mut again = custom("Кофейни");
        again["id"] = json!(id);
        again["type"] = json!("income");
        let (status, updated) = app.post("/api/v1/categories", Some(&token), again).await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["name"], "Кофейни");
        assert_eq!(updated["type"], "income");
        assert_eq!(updated["created_at"], created["created_at"]);
        assert_eq!(list(&app, &token).await.len(), 6);

        // Another user cannot take or overwrite it.
        let mut theirs = custom("Чужое");
        theirs["id"] = json!(id);
        let (status, body) = app.post("/api/v1/categories", Some(&other), theirs).await;
        assert_eq!(status, 409);
        assert_eq!(body, json!({"error": "Id is already in use"}));
        assert_eq!(list(&app, &other).await.len(), 5);
        let mine = list(&app, &token).await;
        assert_eq!(find_named(&mine, "Кофейни")["user_id"], user_id.as_str());

        // Upserting a system category: renaming is fine, anything else is not.
        let food = find_named(&mine, "Продукты").clone();
        let mut rename = json!({"id": food["id"], "name": "Еда", "type": "expense", "icon": "🛒", "color": "#FF6B6B"});
        let (status, body) = app.post("/api/v1/categories", Some(&token), rename.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["name"], "Еда");
        assert_eq!(body["is_system"], true);
        rename["color"] = json!("#000000");
        let (status, body) = app.post("/api/v1/categories", Some(&token), rename).await;
        assert_eq!(status, 403);
        assert_eq!(body, json!({"error": "System categories can only be renamed"}));
    }
);

/// Runs on both databases, each with `FREE_CATEGORY_LIMIT=2`.
mod free_plan_limit_counts_custom_categories_only {
    use super::*;
    use common::Backend;

    async fn run(app: TestApp) {
        let (token, user_id) = register(&app).await;
        for name in ["A", "B"] {
            let (status, body) = app.post("/api/v1/categories", Some(&token), custom(name)).await;
            assert_eq!(status, 201, "{body}");
        }
        let (status, body) = app.post("/api/v1/categories", Some(&token), custom("C")).await;
        assert_eq!(status, 403);
        assert_eq!(
            body,
            json!({"error": "Free plan limit reached: at most 2 custom categories. Upgrade to premium for more."})
        );
        assert_eq!(list(&app, &token).await.len(), 7);

        // Upserting an existing one is not a new category.
        let b = find_named(&list(&app, &token).await, "B").clone();
        let mut upsert = custom("B2");
        upsert["id"] = b["id"].clone();
        let (status, _) = app.post("/api/v1/categories", Some(&token), upsert).await;
        assert_eq!(status, 200);

        // Deleting one frees a place; premium users have no limit.
        let (status, _) = app
            .delete(
                &format!("/api/v1/categories/{}", b["id"].as_str().unwrap()),
                Some(&token),
            )
            .await;
        assert_eq!(status, 204);
        let (status, _) = app.post("/api/v1/categories", Some(&token), custom("C")).await;
        assert_eq!(status, 201);
        sqlx::query("UPDATE users SET is_premium = 1 WHERE id = $1")
            .bind(&user_id)
            .execute(&app.state.db.pool)
            .await
            .unwrap();
        let (status, _) = app.post("/api/v1/categories", Some(&token), custom("D")).await;
        assert_eq!(status, 201);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(TestApp::spawn_with(Backend::Sqlite, &[("FREE_CATEGORY_LIMIT", "2")]).await).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(TestApp::spawn_with(Backend::Postgres, &[("FREE_CATEGORY_LIMIT", "2")]).await).await
    }
}

both_databases!(
    async fn update_is_partial_and_system_categories_may_only_be_renamed(app) {
        let (token, _) = register(&app).await;
        let (other, _) = register(&app).await;
        let (_, created) = app.post("/api/v1/categories", Some(&token), custom("Кафе")).await;
        let id = created["id"].as_str().unwrap().to_string();
        let path = format!("/api/v1/categories/{id}");

        let (status, body) = app.put(&path, Some(&token), json!({"color": "#FFFFFF"})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["color"], "#FFFFFF");
        assert_eq!(body["name"], "Кафе");
        assert_eq!(body["icon"], "🍕");
        assert_eq!(body["type"], "expense");

        let (status, body) = app
            .put(&path, Some(&token), json!({"name": "", "type": "debt", "color": "#FFF"}))
            .await;
        assert_eq!(status, 400);
        let paths: Vec<&str> = body["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, ["name", "type", "color"]);

        let (status, body) = app
            .put("/api/v1/categories/not-a-uuid", Some(&token), json!({"name": "x"}))
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["details"][0]["location"], "params");

        // Another user's category is not found, and stays as it was.
        let (status, body) = app.put(&path, Some(&other), json!({"name": "Взлом"})).await;
        assert_eq!(status, 404);
        assert_eq!(body, json!({"error": "Category not found"}));
        let (status, body) = app
            .put(
                &format!("/api/v1/categories/{}", uuid::Uuid::new_v4()),
                Some(&token),
                json!({"name": "x"}),
            )
            .await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(find_named(&list(&app, &token).await, "Кафе")["color"], "#FFFFFF");

        // System categories: a rename is fine; any other field → 403 and nothing changes.
        let salary = find_named(&list(&app, &token).await, "Зарплата").clone();
        let salary_path = format!("/api/v1/categories/{}", salary["id"].as_str().unwrap());
        let (status, body) = app.put(&salary_path, Some(&token), json!({"name": "Оклад"})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["name"], "Оклад");
        assert_eq!(body["is_system"], true);
        for patch in [
            json!({"icon": "💰"}),
            json!({"name": "X", "color": "#000000"}),
            json!({"type": "income"}),
        ] {
            let (status, body) = app.put(&salary_path, Some(&token), patch).await;
            assert_eq!(status, 403);
            assert_eq!(body, json!({"error": "System categories can only be renamed"}));
        }
        let after = find_named(&list(&app, &token).await, "Оклад").clone();
        assert_eq!(after["color"], "#95E1D3");
    }
);

both_databases!(
    async fn delete_rules(app) {
        let (token, user_id) = register(&app).await;
        let (other, _) = register(&app).await;
        let (_, created) = app.post("/api/v1/categories", Some(&token), custom("Кафе")).await;
        let id = created["id"].as_str().unwrap().to_string();
        let path = format!("/api/v1/categories/{id}");

        // Another user's category: 404, untouched.
        let (status, body) = app.delete(&path, Some(&other)).await;
        assert_eq!(status, 404);
        assert_eq!(body, json!({"error": "Category not found"}));

        // In use → 400 naming the count, nothing deleted.
        insert_transaction(&app, &user_id, Some(&id)).await;
        insert_transaction(&app, &user_id, Some(&id)).await;
        let (status, body) = app.delete(&path, Some(&token)).await;
        assert_eq!(status, 400);
        assert_eq!(body, json!({"error": "Cannot delete category. It is used in 2 transactions."}));
        assert_eq!(list(&app, &token).await.len(), 6);

        // Unused → 204 with a tombstone; again → 404.
        let (_, unused) = app.post("/api/v1/categories", Some(&token), custom("Пусто")).await;
        let unused_id = unused["id"].as_str().unwrap().to_string();
        let (status, body) = app
            .delete(&format!("/api/v1/categories/{unused_id}"), Some(&token))
            .await;
        assert_eq!(status, 204);
        assert!(body.is_null());
        assert!(tombstone_exists(&app, &unused_id).await);
        let (status, _) = app
            .delete(&format!("/api/v1/categories/{unused_id}"), Some(&token))
            .await;
        assert_eq!(status, 404);

        // System categories cannot be deleted.
        let food = find_named(&list(&app, &token).await, "Продукты").clone();
        let (status, body) = app
            .delete(
                &format!("/api/v1/categories/{}", food["id"].as_str().unwrap()),
                Some(&token),
            )
            .await;
        assert_eq!(status, 403);
        assert_eq!(body, json!({"error": "Cannot delete system categories"}));
        assert_eq!(list(&app, &token).await.len(), 6);

        // Re-creating a deleted id forgets its tombstone.
        let mut again = custom("Снова");
        again["id"] = json!(unused_id);
        let (status, _) = app.post("/api/v1/categories", Some(&token), again).await;
        assert_eq!(status, 201);
        assert!(!tombstone_exists(&app, &unused_id).await);
    }
);

both_databases!(
    async fn reset_restores_exactly_the_five_defaults_and_keeps_transactions(app) {
        let (token, user_id) = register(&app).await;
        let (other, other_id) = register(&app).await;
        let before = list(&app, &token).await;
        let original_ids: std::collections::BTreeMap<String, String> = before
            .iter()
            .map(|c| (c["name"].as_str().unwrap().to_string(), c["id"].as_str().unwrap().to_string()))
            .collect();

        // Custom categories, one used by transactions; a renamed system category; a missing one.
        let (_, cafe) = app.post("/api/v1/categories", Some(&token), custom("Кафе")).await;
        let cafe_id = cafe["id"].as_str().unwrap().to_string();
        let (_, gym) = app.post("/api/v1/categories", Some(&token), custom("Спорт")).await;
        let gym_id = gym["id"].as_str().unwrap().to_string();
        let used_a = insert_transaction(&app, &user_id, Some(&cafe_id)).await;
        let used_b = insert_transaction(&app, &user_id, Some(&cafe_id)).await;
        let on_system = insert_transaction(&app, &user_id, Some(&original_ids["Продукты"])).await;
        let (_, stamp_before) = transaction_category(&app, &used_a).await.unwrap();
        let (status, _) = app
            .put(
                &format!("/api/v1/categories/{}", original_ids["Зарплата"]),
                Some(&token),
                json!({"name": "Оклад"}),
            )
            .await;
        assert_eq!(status, 200);
        sqlx::query("DELETE FROM categories WHERE id = $1")
            .bind(&original_ids["Транспорт"])
            .execute(&app.state.db.pool)
            .await
            .unwrap();
        let (_, theirs) = app.post("/api/v1/categories", Some(&other), custom("Их")).await;

        let (status, body) = app.post("/api/v1/categories/reset", Some(&token), json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "Categories reset successfully");
        let after = body["categories"].as_array().unwrap().clone();
        assert_eq!(
            names(&after),
            ["Продукты", "Развлечения", "Транспорт", "Зарплата", "Подработка"]
        );
        assert!(after.iter().all(|c| c["is_system"] == true));
        assert_eq!(after, list(&app, &token).await);
        let salary = find_named(&after, "Зарплата");
        assert_eq!(salary["id"], original_ids["Зарплата"].as_str());
        assert_eq!((salary["icon"].as_str(), salary["color"].as_str()), (Some("💰"), Some("#95E1D3")));
        for name in ["Продукты", "Развлечения", "Подработка"] {
            assert_eq!(find_named(&after, name)["id"], original_ids[name].as_str(), "{name}");
        }
        let transport = find_named(&after, "Транспорт");
        assert_ne!(transport["id"], original_ids["Транспорт"].as_str());
        assert_eq!(transport["icon"], "🚌");

        // The transactions of the deleted custom category still exist, uncategorised and
        // stamped for sync; a system category's transaction keeps it.
        for id in [&used_a, &used_b] {
            let (category, stamp) = transaction_category(&app, id).await.unwrap();
            assert_eq!(category, None);
            assert!(stamp > stamp_before, "{stamp} > {stamp_before}");
        }
        assert_eq!(
            transaction_category(&app, &on_system).await.unwrap().0.as_deref(),
            Some(original_ids["Продукты"].as_str())
        );
        assert!(tombstone_exists(&app, &cafe_id).await);
        assert!(tombstone_exists(&app, &gym_id).await);

        // Idempotent: again → the same five, same ids.
        let (status, again) = app.post("/api/v1/categories/reset", Some(&token), json!({})).await;
        assert_eq!(status, 200);
        let ids = |cats: &[Value]| cats.iter().map(|c| c["id"].clone()).collect::<Vec<_>>();
        assert_eq!(ids(again["categories"].as_array().unwrap()), ids(&after));
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM categories WHERE user_id = $1")
            .bind(&user_id)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
        assert_eq!(count, 5);

        // The other user is untouched.
        let theirs_now = list(&app, &other).await;
        assert_eq!(theirs_now.len(), 6);
        assert!(theirs_now.iter().any(|c| c["id"] == theirs["id"]));
        assert!(theirs_now.iter().all(|c| c["user_id"] == other_id.as_str()));
    }
);

both_databases!(
    async fn reset_removes_duplicate_system_categories(app) {
        let (token, user_id) = register(&app).await;
        let food = find_named(&list(&app, &token).await, "Продукты")["id"].as_str().unwrap().to_string();
        // A newer duplicate system category (as an old sync upload could leave behind), in use.
        let duplicate = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO categories (id, user_id, name, type, icon, color, is_system, created_at, updated_at, \
             server_created_at, server_updated_at) VALUES ($1, $2, 'Продукты', 'expense', '🛒', '#FF6B6B', 1, $3, $3, $3, $3)",
        )
        .bind(&duplicate)
        .bind(&user_id)
        .bind(cashcraft::domain::time::now_ms() + 1000)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
        let txn = insert_transaction(&app, &user_id, Some(&duplicate)).await;
        assert_eq!(list(&app, &token).await.len(), 6);

        let (status, body) = app.post("/api/v1/categories/reset", Some(&token), json!(null)).await;
        assert_eq!(status, 200, "{body}");
        let after = body["categories"].as_array().unwrap();
        assert_eq!(after.len(), 5);
        assert_eq!(find_named(after, "Продукты")["id"], food.as_str());
        // Its transaction moved to the kept twin.
        assert_eq!(
            transaction_category(&app, &txn).await.unwrap().0.as_deref(),
            Some(food.as_str())
        );
    }
);

both_databases!(
    async fn openapi_documents_the_category_operations(app) {
        let (status, doc) = app.get("/api/v1/openapi.json", None).await;
        assert_eq!(status, 200);
        let paths = doc["paths"].as_object().unwrap();
        let ops = |p: &str| -> Vec<String> {
            paths
                .get(p)
                .unwrap_or_else(|| panic!("{p} missing from {:?}", paths.keys().collect::<Vec<_>>()))
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        let mut root = ops("/api/v1/categories");
        root.sort();
        assert_eq!(root, ["get", "post"]);
        let mut one = ops("/api/v1/categories/{id}");
        one.sort();
        assert_eq!(one, ["delete", "put"]);
        assert_eq!(ops("/api/v1/categories/reset"), ["post"]);
        assert!(doc["paths"]["/api/v1/categories"]["get"]["security"].is_array());
        // The reset's answer has its own schema (a name shared with another type would let one
        // of them silently replace the other in the document).
        let reset = &doc["paths"]["/api/v1/categories/reset"]["post"]["responses"]["200"];
        let schema = reset["content"]["application/json"]["schema"]["$ref"].as_str().unwrap();
        let name = schema.rsplit('/').next().unwrap();
        let properties = &doc["components"]["schemas"][name]["properties"];
        assert!(properties["categories"].is_object(), "{name}: {properties}");
        assert!(properties["message"].is_object());
    }
);
