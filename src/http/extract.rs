//! Request extractors that turn every bad input (malformed JSON, wrong content type, overlong
//! strings, bad path or query parameters) into the contract's 400 instead of axum's plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ApiError, FieldError};

/// Longest string accepted anywhere in a JSON body.
pub const MAX_STRING_CHARS: usize = 10_000;
/// Deepest nesting accepted in a JSON body.
pub const MAX_JSON_DEPTH: usize = 64;

/// A JSON body deserialized into `T`; an empty body counts as `{}` so that missing required
/// fields are reported as validation failures.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        check_content_type(req.headers())?;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::bad_request("Could not read the request body")
            }
        })?;
        let value = parse_body(&bytes)?;
        deserialize_value(value).map(ApiJson)
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
        return Ok(()); // no content type: read the body as JSON
    };
    let mime = content_type
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json")) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "Content-Type must be application/json".into(),
            vec![FieldError::body(
                "Content-Type",
                format!("unsupported content type {mime:?}"),
            )],
        ))
    }
}

/// Parses a body into a JSON value, enforcing the depth and string-length limits.
pub fn parse_body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Value::Object(Default::default()));
    }
    check_depth(bytes)?;
    let value: Value = serde_json::from_slice(bytes).map_err(|err| {
        ApiError::BadRequest(
            "Invalid JSON in request body".into(),
            vec![FieldError::body("", err.to_string())],
        )
    })?;
    check_strings(&value)?;
    Ok(value)
}

/// Rejects nesting deeper than [`MAX_JSON_DEPTH`] before the parser recurses into it.
fn check_depth(bytes: &[u8]) -> Result<(), ApiError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(ApiError::BadRequest(
                        "Invalid JSON in request body".into(),
                        vec![FieldError::body(
                            "",
                            format!("nesting deeper than {MAX_JSON_DEPTH} levels"),
                        )],
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn check_strings(value: &Value) -> Result<(), ApiError> {
    let mut stack: Vec<(&Value, String)> = vec![(value, String::new())];
    while let Some((v, path)) = stack.pop() {
        match v {
            Value::String(s) if s.chars().count() > MAX_STRING_CHARS => {
                return Err(ApiError::invalid(FieldError::body(
                    path,
                    format!("String longer than {MAX_STRING_CHARS} characters"),
                )));
            }
            // PostgreSQL text cannot hold U+0000: refuse it here rather than fail the INSERT.
            Value::String(s) if s.contains('\0') => {
                return Err(ApiError::invalid(FieldError::body(
                    path,
                    "String contains a NUL character",
                )));
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    stack.push((item, join_path(&path, &i.to_string())));
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    let problem = if k.chars().count() > MAX_STRING_CHARS {
                        Some(format!("Key longer than {MAX_STRING_CHARS} characters"))
                    } else if k.contains('\0') {
                        Some("Key contains a NUL character".to_string())
                    } else {
                        None
                    };
                    if let Some(msg) = problem {
                        return Err(ApiError::invalid(FieldError::body(path, msg)));
                    }
                    stack.push((item, join_path(&path, k)));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn join_path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Deserializes a JSON value, reporting the failing field as a validation detail.
pub fn deserialize_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        ApiError::invalid(FieldError::body(
            path,
            clean_serde_message(&err.into_inner().to_string()),
        ))
    })
}

/// Strips serde's location suffix and internal wording from a message.
fn clean_serde_message(msg: &str) -> String {
    let msg = msg.split(" at line ").next().unwrap_or(msg);
    msg.replace("$serde_json::private::Number", "number")
}

/// Path parameters; a value that does not parse (e.g. an id that is not a UUID) → 400.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::path::{ErrorKind, Path};
        use axum::extract::rejection::PathRejection;
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(err)) => {
                let (key, msg) = match err.into_kind() {
                    ErrorKind::ParseErrorAtKey { key, expected_type, .. } => (key, describe(expected_type)),
                    ErrorKind::InvalidUtf8InPathParam { key } => (key, "Invalid value".into()),
                    ErrorKind::ParseError { expected_type, .. } => ("id".into(), describe(expected_type)),
                    ErrorKind::Message(msg) => ("id".into(), describe(&msg)),
                    other => ("id".into(), other.to_string()),
                };
                Err(ApiError::invalid(FieldError::params(key, msg)))
            }
            Err(_) => Err(ApiError::bad_request("Invalid path parameters")),
        }
    }
}

fn describe(expected: &str) -> String {
    if expected.to_ascii_lowercase().contains("uuid") {
        "Invalid id".into()
    } else {
        format!("Invalid value: {expected}")
    }
}

/// Query parameters; a value that does not parse → 400 with `location: "query"`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|err| {
                let path = err.path().to_string();
                ApiError::invalid(FieldError::query(
                    path,
                    clean_serde_message(&err.into_inner().to_string()),
                ))
            })
    }
}
