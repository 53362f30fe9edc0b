//! Load shedding and the request timeout, against a "database" that accepts connections and
//! never answers, so every request that needs it hangs until a limit steps in.
mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestApp};
use serde_json::json;

/// A TCP server on 127.0.0.1 that accepts connections and never says anything.
async fn black_hole() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (port, task)
}

fn login_body() -> serde_json::Value {
    json!({"email": "someone@example.com", "password": "secret123"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_timeout_is_answered_503() {
    let (port, _hole) = black_hole().await;
    let url = format!("postgres://postgres@127.0.0.1:{port}/none");
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("DATABASE_URL", url.as_str()), ("REQUEST_TIMEOUT", "1")],
    )
    .await;
    let started = Instant::now();
    let (status, body) = app.post("/api/v1/auth/login", None, login_body()).await;
    assert_eq!(status, 503);
    assert_eq!(body, json!({"error": "Request timed out"}));
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "took {:?}",
        started.elapsed()
    );
    let (status, _) = app.get("/health", None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_in_flight_cap_are_shed_at_once() {
    let (port, _hole) = black_hole().await;
    let url = format!("postgres://postgres@127.0.0.1:{port}/none");
    let app = std::sync::Arc::new(
        TestApp::spawn_with(
            Backend::Sqlite,
            &[
                ("DATABASE_URL", url.as_str()),
                ("MAX_IN_FLIGHT_REQUESTS", "2"),
                ("REQUEST_TIMEOUT", "5"),
            ],
        )
        .await,
    );
    // Two requests occupy both slots while they wait for the database.
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.post("/api/v1/auth/login", None, login_body()).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let (status, body) = app.get("/ping", None).await;
    assert_eq!(status, 503);
    assert_eq!(body, json!({"error": "Service temporarily unavailable"}));
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "shedding took {:?}",
        started.elapsed()
    );
    for request in busy {
        let (status, _) = request.await.unwrap();
        assert_eq!(status, 503);
    }
    let (status, _) = app.get("/ping", None).await;
    assert_eq!(status, 200);
}
