//! The HTTP layer: the router of every resource and the middleware stack around it (request
//! id, logging and metrics, https redirect, CORS, compression, security headers, body limits).

pub mod accounts;
pub mod auth;
pub mod categories;
pub mod debts;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod plans;
pub mod rate_limit;
pub mod rates;
pub mod service;
pub mod sync;
pub mod transactions;
pub mod validate;
pub mod views;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;
use error::ApiError;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application: routes, OpenAPI document and middleware.
pub fn router(state: AppState) -> Router {
    let (api, mut doc) = OpenApiRouter::with_openapi(openapi::base())
        .nest("/api/v1", api_router(&state))
        .merge(service::routes())
        .split_for_parts();
    openapi::finish(&mut doc);

    let production = state.settings.is_production();
    let app = api
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/api/v1/openapi.json", doc))
        .fallback(|| async { ApiError::not_found("Route not found") })
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                axum::Json(serde_json::json!({"error": "Method not allowed"})),
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));

    let mut app = app
        .layer(middleware::from_fn(reject_oversized_bodies))
        .layer(middleware::from_fn(no_store_on_api))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ));
    if production {
        app = app.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    let timeout = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(timed_out))
        .timeout(state.settings.request_timeout);
    // One semaphore for the whole router (`Router::layer` wraps every route separately).
    let in_flight = Arc::new(Semaphore::new(state.settings.max_in_flight_requests));
    app.layer(CompressionLayer::new())
        .layer(timeout)
        .layer(middleware::from_fn_with_state(in_flight, shed_when_full))
        .layer(cors(&state))
        .layer(middleware::from_fn_with_state(state.clone(), redirect_to_https))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(middleware::from_fn(log_and_measure))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .with_state(state)
}

/// Routes under `/api/v1`.
fn api_router(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(service::api_routes())
        .nest("/auth", auth::routes(state))
        .nest("/accounts", accounts::routes())
        .nest("/transactions", transactions::routes())
        .nest("/categories", categories::routes())
        .nest("/debts", debts::routes())
        .nest("/exchange-rates", rates::routes())
        .nest("/sync", sync::routes())
}

fn cors(state: &AppState) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .expose_headers([REQUEST_ID.clone(), header::RETRY_AFTER])
        .max_age(Duration::from_secs(86_400));
    if !state.settings.is_production() {
        return layer.allow_origin(Any).allow_headers(Any);
    }
    let origins: Vec<HeaderValue> = state
        .settings
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    layer
        .allow_origin(AllowOrigin::list(origins))
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            REQUEST_ID.clone(),
        ])
        .allow_credentials(true)
}

/// One log line per request (method, path, status, latency, request id) and the metrics.
/// The query string is left out: it may carry tokens.
async fn log_and_measure(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-")
        .to_string();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let route = response
        .extensions()
        .get::<MatchedRoute>()
        .map(|r| r.0.as_str())
        .unwrap_or(if status == 404 { "unmatched" } else { "other" })
        .to_string();
    crate::metrics::record_request(method.as_str(), &route, status, elapsed);
    tracing::info!(
        target: "cashcraft::request",
        method = %method,
        path = %path,
        status,
        latency_ms = format_args!("{:.2}", elapsed.as_secs_f64() * 1000.0),
        request_id = %request_id,
        "request"
    );
    response
}

/// The route template a request matched, carried back to the outer middleware.
#[derive(Clone)]
struct MatchedRoute(String);

/// Sets `Cache-Control: no-store` on `/api/` responses and notes the matched route template.
async fn no_store_on_api(request: Request, next: Next) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let mut response = next.run(request).await;
    if is_api {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(route) = matched {
        response.extensions_mut().insert(MatchedRoute(route));
    }
    response
}

/// A request that runs past `REQUEST_TIMEOUT` is answered 503.
async fn timed_out(err: tower::BoxError) -> Response {
    if err.is::<tower::timeout::error::Elapsed>() {
        tracing::warn!("request timed out");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"error": "Request timed out"})),
        )
            .into_response();
    }
    ApiError::internal(anyhow::anyhow!("middleware error: {err}")).into_response()
}

/// Requests beyond `MAX_IN_FLIGHT_REQUESTS` are shed with 503 at once instead of queueing
/// without bound.
async fn shed_when_full(State(in_flight): State<Arc<Semaphore>>, request: Request, next: Next) -> Response {
    match in_flight.try_acquire() {
        Ok(_permit) => next.run(request).await,
        Err(_) => {
            tracing::warn!("in-flight request limit reached; shedding a request");
            ApiError::Unavailable.into_response()
        }
    }
}

/// Refuses a declared body over the limit before reading it.
async fn reject_oversized_bodies(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        discard_body_in_background(request.into_body());
        return ApiError::PayloadTooLarge.into_response();
    }
    next.run(request).await
}

/// Reads and drops what the client is still sending of a refused body, for a bounded time and
/// size, so that the connection is not reset under the client before it reads the 413.
fn discard_body_in_background(body: axum::body::Body) {
    use futures::StreamExt;
    const MAX_DISCARD_BYTES: usize = 4 * MAX_BODY_BYTES;
    const MAX_DISCARD_TIME: Duration = Duration::from_secs(10);
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        let mut discarded = 0usize;
        let _ = tokio::time::timeout(MAX_DISCARD_TIME, async {
            while let Some(Ok(chunk)) = stream.next().await {
                discarded += chunk.len();
                if discarded > MAX_DISCARD_BYTES {
                    break;
                }
            }
        })
        .await;
    });
}

/// In production, a request that reached the proxy over plain HTTP is sent to https (308);
/// the probes never are.
async fn redirect_to_https(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.settings.is_production() {
        let path = request.uri().path();
        let probe = matches!(path, "/health" | "/ready" | "/ping");
        let forwarded_http = request
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').next().unwrap_or("").trim().eq_ignore_ascii_case("http"));
        let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok());
        if forwarded_http && !probe {
            if let Some(host) = host {
                let target = format!(
                    "https://{host}{}",
                    request.uri().path_and_query().map(|pq| pq.as_str()).unwrap_or("/")
                );
                return Redirect::permanent(&target).into_response();
            }
        }
    }
    next.run(request).await
}
