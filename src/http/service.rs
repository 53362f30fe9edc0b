//! Service endpoints without authentication: liveness, readiness, API index and metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::time::{now_ms, Iso};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ping))
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
}

pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api_health))
        .routes(routes!(api_index))
}

/// Answers `pong`.
#[utoipa::path(get, path = "/ping", tag = "service", responses((status = 200, description = "pong", body = String, content_type = "text/plain")))]
async fn ping() -> &'static str {
    "pong"
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
    #[schema(value_type = String, format = DateTime)]
    timestamp: Iso,
}

/// Liveness: answers even when the database is down.
#[utoipa::path(get, path = "/health", tag = "service", responses((status = 200, body = Health)))]
async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        timestamp: Iso(now_ms()),
    })
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    status: &'static str,
    database: &'static str,
    cache: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Readiness: the database (and Redis, when configured) answer.
#[utoipa::path(get, path = "/ready", tag = "service", responses(
    (status = 200, body = Readiness),
    (status = 503, description = "A dependency is unreachable; the failing part is named", body = Readiness),
))]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let database_ok = state.db.ping().await;
    let cache = match &state.redis {
        None => "disabled",
        Some(redis) if redis.ping().await => "ok",
        Some(_) => "unreachable",
    };
    let cache_ok = cache != "unreachable";
    if database_ok && cache_ok {
        return (
            StatusCode::OK,
            Json(Readiness {
                status: "ready",
                database: "ok",
                cache,
                error: None,
            }),
        );
    }
    let error = if !database_ok {
        "Database is unreachable"
    } else {
        "Cache (Redis) is unreachable"
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(Readiness {
            status: "not_ready",
            database: if database_ok { "ok" } else { "unreachable" },
            cache,
            error: Some(error.to_string()),
        }),
    )
}

#[derive(Serialize, ToSchema)]
pub struct ApiHealth {
    status: &'static str,
    #[schema(value_type = String, format = DateTime)]
    timestamp: Iso,
    service: &'static str,
    version: &'static str,
}

/// API liveness with the service name and version.
#[utoipa::path(get, path = "/health", tag = "service", responses((status = 200, body = ApiHealth)))]
async fn api_health() -> Json<ApiHealth> {
    Json(ApiHealth {
        status: "ok",
        timestamp: Iso(now_ms()),
        service: "CashCraft API",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// The API index.
#[utoipa::path(get, path = "", tag = "service", responses((status = 200, body = Object)))]
async fn api_index() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "message": "CashCraft API",
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": {
            "auth": "/api/v1/auth",
            "accounts": "/api/v1/accounts",
            "transactions": "/api/v1/transactions",
            "categories": "/api/v1/categories",
            "debts": "/api/v1/debts",
            "exchangeRates": "/api/v1/exchange-rates",
            "sync": "/api/v1/sync"
        }
    }))
}

/// Prometheus metrics: requests by route and status, latency histograms, database pool usage.
#[utoipa::path(get, path = "/metrics", tag = "service", responses((status = 200, body = String, content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> Response {
    let body = crate::metrics::render(&state.db);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
