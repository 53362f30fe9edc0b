mod common;

both_databases!(
    async fn health_and_ready(app) {
        let (status, body) = app.get("/health", None).await;
        assert_eq!(status, 200);
        assert_eq!(body["status"], "ok");
        let (status, body) = app.get("/ready", None).await;
        assert_eq!(status, 200);
        assert_eq!(body, serde_json::json!({"status":"ready","database":"ok","cache":"disabled"}));
    }
);
