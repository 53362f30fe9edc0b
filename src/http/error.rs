//! ApiError: the one place a failure becomes an HTTP status and the contract's JSON error body.
//! Internal failures are logged with their detail and answered with a generic message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// One failed check of a request, as listed in `details`.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FieldError {
    pub path: String,
    pub msg: String,
    pub location: &'static str,
}

impl FieldError {
    pub fn body(path: impl Into<String>, msg: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            msg: msg.into(),
            location: "body",
        }
    }
    pub fn query(path: impl Into<String>, msg: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            msg: msg.into(),
            location: "query",
        }
    }
    pub fn params(path: impl Into<String>, msg: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            msg: msg.into(),
            location: "params",
        }
    }
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<FieldError>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Validation failed")]
    Validation(Vec<FieldError>),
    /// A 400 with a message and optional details (malformed JSON, wrong content type…).
    #[error("{0}")]
    BadRequest(String, Vec<FieldError>),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("Request body too large")]
    PayloadTooLarge,
    #[error("Too many requests, please try again later")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    BadGateway(String),
    #[error("Service temporarily unavailable")]
    Unavailable,
    #[error("Internal server error")]
    Internal(#[source] anyhow::Error),
    /// A 500 with a specific public message (e.g. `Sync failed`); the detail goes to the log.
    #[error("{0}")]
    Failed(&'static str, #[source] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::BadRequest(msg.into(), Vec::new())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        ApiError::NotFound(msg.into())
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        ApiError::Forbidden(msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        ApiError::Conflict(msg.into())
    }
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        ApiError::Unauthorized(msg.into())
    }
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }
    /// One validation failure on one field.
    pub fn invalid(field: FieldError) -> Self {
        ApiError::Validation(vec![field])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::BadRequest(..) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) | ApiError::Failed(..) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response body; logs internal errors (their detail never reaches the client).
    pub fn body(&self) -> ErrorBody {
        if let ApiError::Internal(err) | ApiError::Failed(_, err) = self {
            tracing::error!(error = %format!("{err:#}"), "internal error");
        }
        let details = match self {
            ApiError::Validation(d) => Some(d.clone()),
            ApiError::BadRequest(_, d) if !d.is_empty() => Some(d.clone()),
            _ => None,
        };
        ErrorBody {
            error: self.to_string(),
            details,
        }
    }

    fn finish(&self, mut response: Response) -> Response {
        if let ApiError::TooManyRequests { retry_after_secs } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }

    /// Renders as `{"success":false,"error":…}`, the shape of the exchange-rate endpoints.
    pub fn into_success_false_response(self) -> Response {
        let status = self.status();
        let body = self.body();
        let json = serde_json::json!({ "success": false, "error": body.error, "details": body.details });
        let mut json = json;
        if body.details.is_none() {
            if let Some(map) = json.as_object_mut() {
                map.remove("details");
            }
        }
        let response = (status, axum::Json(json)).into_response();
        self.finish(response)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let response = (status, axum::Json(self.body())).into_response();
        self.finish(response)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if is_unavailable(&err) {
            tracing::warn!(error = %err, "database unavailable");
            return ApiError::Unavailable;
        }
        ApiError::Internal(err.into())
    }
}

/// Whether a database error means "the database cannot be reached right now".
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => {
            // PostgreSQL: class 08 (connection exception), 57P01-57P03 (admin shutdown, cannot connect now).
            matches!(db.code().as_deref(), Some(c) if c.starts_with("08") || c.starts_with("57P"))
        }
        _ => false,
    }
}

/// Whether a database error is a unique-constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || matches!(db.code().as_deref(), Some("23505") | Some("2067") | Some("1555"))
                || db.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        match err.downcast::<sqlx::Error>() {
            Ok(db) => db.into(),
            Err(other) => ApiError::Internal(other),
        }
    }
}
