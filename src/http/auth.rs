//! Auth endpoints (`/api/v1/auth`): register, login, guest, Google, refresh rotation, logout, the
//! profile (me, password, upgrade, deletion), the data resets — and the `AuthUser` extractor.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::{middleware, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::ApiJson;
use super::rate_limit;
use super::validate::{is_valid_email, normalize_email, Checks};
use crate::auth::google::{GoogleError, GoogleIdentity};
use crate::auth::password;
use crate::auth::tokens::TokenError;
use crate::domain::time::{now_ms, Iso};
use crate::state::AppState;
use crate::store::refresh_tokens::{self, Rotation};
use crate::store::users::{self, NewUser, User};
use crate::store::{take_change_stamp, user_data};

/// The auth routes; the credential endpoints (register, login, guest, google, refresh) sit
/// behind the per-client rate limit.
pub fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    let rate_limited = OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(guest))
        .routes(routes!(google))
        .routes(routes!(refresh))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            rate_limit::limit_by_client,
        ));
    OpenApiRouter::new()
        .merge(rate_limited)
        .routes(routes!(logout))
        .routes(routes!(me, update_me, delete_me))
        .routes(routes!(change_password))
        .routes(routes!(upgrade))
        .routes(routes!(reset_data))
        .routes(routes!(reset))
}

/// The authenticated caller. Taking it as an argument makes a handler require a valid access
/// token for a user that still exists.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub is_premium: bool,
    pub is_guest: bool,
    /// The user's change clock when the request began (see `store::take_change_stamp`): data
    /// read for this value cannot have changed while it stays the same.
    pub change_clock: i64,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized("No authorization header provided"));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("Invalid token"))?;
        let user_id = state.jwt.verify(token).map_err(|err| match err {
            TokenError::Expired => ApiError::unauthorized("Token expired"),
            TokenError::Invalid => ApiError::unauthorized("Invalid token"),
        })?;
        let caller = users::find_caller(&state.db.pool, &user_id)
            .await?
            .ok_or_else(|| ApiError::unauthorized("User not found"))?;
        Ok(AuthUser {
            is_premium: users::has_premium(caller.is_premium, caller.premium_expires_at, now_ms()),
            is_guest: caller.is_guest,
            change_clock: caller.change_clock,
            id: user_id,
        })
    }
}

/// A user as auth responses show it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub is_premium: bool,
    pub is_guest: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Iso,
}

impl UserView {
    pub fn of(user: &User) -> Self {
        UserView {
            id: user.id.clone(),
            email: user.email.clone(),
            display_name: user.display_name.clone(),
            is_premium: user.has_premium(now_ms()),
            is_guest: user.is_guest,
            created_at: Iso(user.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthResponse {
    pub user: UserView,
    pub access_token: String,
    pub refresh_token: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserResponse {
    pub user: UserView,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
}

#[derive(Serialize, ToSchema)]
pub struct MessageResponse {
    pub message: String,
}

/// Issues an access token and a new refresh-token family for `user` inside `tx`, commits,
/// and answers the auth response.
pub async fn sign_in(state: &AppState, mut tx: crate::store::Tx, user: &User) -> ApiResult<AuthResponse> {
    let refresh_token = refresh_tokens::issue(&mut tx, &user.id, None, refresh_ttl_ms(state)).await?;
    tx.commit().await?;
    Ok(AuthResponse {
        user: UserView::of(user),
        access_token: state.jwt.issue(&user.id)?,
        refresh_token,
    })
}

pub fn refresh_ttl_ms(state: &AppState) -> i64 {
    i64::try_from(state.jwt.refresh_ttl.as_millis()).unwrap_or(i64::MAX)
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterBody {
    email: Option<String>,
    password: Option<String>,
    display_name: Option<String>,
}

/// Checks the credentials of a new account (register, guest upgrade): a valid email (answered
/// trimmed and lower-cased), a 6–128 character password, and an optional display name of at
/// most 100 characters (absent or blank: the part of the email before `@`).
fn check_new_credentials(
    email: &Option<String>,
    password: &Option<String>,
    display_name: &Option<String>,
) -> ApiResult<(String, String)> {
    let email = normalize_email(email.as_deref().unwrap_or(""));
    let mut checks = Checks::new();
    checks.body(is_valid_email(&email), "email", "Please provide a valid email");
    check_password(&mut checks, "password", password.as_deref());
    let display_name = display_name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    checks.body(
        display_name.is_none_or(|n| n.chars().count() <= 100),
        "displayName",
        "Display name must be at most 100 characters",
    );
    checks.finish()?;
    let display_name = display_name
        .map(str::to_string)
        .unwrap_or_else(|| email.split('@').next().unwrap_or("").to_string());
    Ok((email, display_name))
}

/// Checks a new password: 6 to 128 characters.
pub fn check_password(checks: &mut Checks, field: &str, password: Option<&str>) {
    let len = password.map(|p| p.chars().count()).unwrap_or(0);
    checks
        .body(len >= 6, field, "Password must be at least 6 characters long")
        .body(len <= 128, field, "Password must be at most 128 characters long");
}

/// Create an account with email and password.
#[utoipa::path(post, path = "/register", tag = "auth", request_body = RegisterBody, responses(
    (status = 201, body = AuthResponse),
    (status = 400, description = "Validation failed", body = ErrorBody),
    (status = 409, description = "User with this email already exists", body = ErrorBody),
    (status = 429, description = "Too many requests", body = ErrorBody),
))]
async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult<(StatusCode, Json<AuthResponse>)> {
    let (email, display_name) = check_new_credentials(&body.email, &body.password, &body.display_name)?;
    if users::find_by_email(&state.db.pool, &email).await?.is_some() {
        return Err(ApiError::conflict("User with this email already exists"));
    }
    let hash = password::hash(body.password.unwrap_or_default()).await?;
    let mut tx = state.db.begin_write().await?;
    let new = NewUser {
        email: &email,
        password_hash: Some(&hash),
        display_name: &display_name,
        is_guest: false,
        google_id: None,
    };
    let user = match users::create_with_defaults(&mut tx, new).await {
        Ok(user) => user,
        Err(err) if super::error::is_unique_violation(&err) => {
            return Err(ApiError::conflict("User with this email already exists"))
        }
        Err(err) => return Err(err.into()),
    };
    let response = sign_in(&state, tx, &user).await?;
    Ok((StatusCode::CREATED, Json(response)))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    email: Option<String>,
    password: Option<String>,
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/login", tag = "auth", request_body = LoginBody, responses(
    (status = 200, body = AuthResponse),
    (status = 400, description = "Validation failed", body = ErrorBody),
    (status = 401, description = "Invalid email or password", body = ErrorBody),
    (status = 429, description = "Too many requests", body = ErrorBody),
))]
async fn login(State(state): State<AppState>, ApiJson(body): ApiJson<LoginBody>) -> ApiResult<Json<AuthResponse>> {
    let email = normalize_email(body.email.as_deref().unwrap_or(""));
    let mut checks = Checks::new();
    checks.body(is_valid_email(&email), "email", "Please provide a valid email");
    checks.body(
        body.password.as_deref().is_some_and(|p| !p.is_empty()),
        "password",
        "Password is required",
    );
    checks.finish()?;
    let user = users::find_by_email(&state.db.pool, &email).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = password::verify(body.password.unwrap_or_default(), hash).await;
    let user = match user {
        Some(user) if ok => user,
        _ => return Err(ApiError::unauthorized("Invalid email or password")),
    };
    let mut tx = state.db.begin_write().await?;
    users::set_last_login(&mut *tx, &user.id).await?;
    Ok(Json(sign_in(&state, tx, &user).await?))
}

/// Start as a guest: a new user with default data and no credentials.
#[utoipa::path(post, path = "/guest", tag = "auth", responses(
    (status = 200, body = AuthResponse),
    (status = 429, description = "Too many requests", body = ErrorBody),
))]
async fn guest(State(state): State<AppState>) -> ApiResult<Json<AuthResponse>> {
    let email = format!("guest_{}@cashcraft.local", uuid::Uuid::new_v4().simple());
    let mut tx = state.db.begin_write().await?;
    let new = NewUser {
        email: &email,
        password_hash: None,
        display_name: "Guest",
        is_guest: true,
        google_id: None,
    };
    let user = users::create_with_defaults(&mut tx, new).await?;
    Ok(Json(sign_in(&state, tx, &user).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshBody {
    refresh_token: Option<String>,
}

/// Exchange a refresh token for a new access token and a new refresh token (rotation).
#[utoipa::path(post, path = "/refresh", tag = "auth", request_body = RefreshBody, responses(
    (status = 200, body = TokenPair),
    (status = 400, description = "Validation failed", body = ErrorBody),
    (status = 401, description = "Invalid refresh token / Refresh token expired", body = ErrorBody),
    (status = 429, description = "Too many requests", body = ErrorBody),
))]
async fn refresh(State(state): State<AppState>, ApiJson(body): ApiJson<RefreshBody>) -> ApiResult<Json<TokenPair>> {
    let token = body.refresh_token.unwrap_or_default();
    let mut checks = Checks::new();
    checks.body(!token.is_empty(), "refreshToken", "Refresh token is required");
    checks.finish()?;
    let mut tx = state.db.begin_write().await?;
    let outcome = refresh_tokens::rotate(&mut tx, &token, refresh_ttl_ms(&state)).await?;
    // Commit in every case: a detected reuse must leave the user's tokens revoked.
    tx.commit().await?;
    match outcome {
        Rotation::Rotated { user_id, token } => Ok(Json(TokenPair {
            access_token: state.jwt.issue(&user_id)?,
            refresh_token: token,
        })),
        Rotation::Expired => Err(ApiError::unauthorized("Refresh token expired")),
        Rotation::Unknown | Rotation::Reused => Err(ApiError::unauthorized("Invalid refresh token")),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogoutBody {
    refresh_token: Option<String>,
}

/// Revoke a refresh token.
#[utoipa::path(post, path = "/logout", tag = "auth", request_body(content = LogoutBody, description = "Optional"), responses(
    (status = 200, body = MessageResponse),
    (status = 400, description = "Malformed body", body = ErrorBody),
))]
async fn logout(State(state): State<AppState>, ApiJson(body): ApiJson<LogoutBody>) -> ApiResult<Json<MessageResponse>> {
    if let Some(token) = body.refresh_token.filter(|t| !t.is_empty()) {
        let mut tx = state.db.begin_write().await?;
        refresh_tokens::revoke(&mut tx, &token).await?;
        tx.commit().await?;
    }
    Ok(Json(MessageResponse {
        message: "Logged out successfully".into(),
    }))
}

/// The signed-in user.
#[utoipa::path(get, path = "/me", tag = "auth", security(("bearer" = [])), responses(
    (status = 200, body = UserResponse),
    (status = 401, description = "Not authenticated", body = ErrorBody),
))]
async fn me(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<UserResponse>> {
    let user = users::find_by_id(&state.db.pool, &auth.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("User not found"))?;
    Ok(Json(UserResponse {
        user: UserView::of(&user),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // email, name and google_id are accepted but never trusted
pub struct GoogleBody {
    /// The id token the Google SDK returned to the app.
    id_token: Option<String>,
    /// Ignored: identity comes from the verified token.
    #[schema(value_type = Option<String>)]
    email: Option<serde_json::Value>,
    /// Ignored: identity comes from the verified token.
    #[schema(value_type = Option<String>)]
    name: Option<serde_json::Value>,
    /// Ignored: identity comes from the verified token.
    #[schema(value_type = Option<String>)]
    google_id: Option<serde_json::Value>,
}

/// Sign in with a Google id token. The token's signature (Google's RS256 keys), issuer,
/// audience (`GOOGLE_CLIENT_ID`) and expiry are verified; the user is found by Google id, else
/// linked by a verified email, else created with the default data.
#[utoipa::path(post, path = "/google", tag = "auth", request_body = GoogleBody, responses(
    (status = 200, body = AuthResponse),
    (status = 400, description = "Validation failed", body = ErrorBody),
    (status = 401, description = "Invalid Google token / Google account email is not verified", body = ErrorBody),
    (status = 409, description = "The email belongs to a user linked to another Google account", body = ErrorBody),
    (status = 429, description = "Too many requests", body = ErrorBody),
    (status = 501, description = "Google sign-in is not configured", body = ErrorBody),
    (status = 502, description = "Google's signing keys could not be fetched", body = ErrorBody),
))]
async fn google(State(state): State<AppState>, ApiJson(body): ApiJson<GoogleBody>) -> ApiResult<Json<AuthResponse>> {
    if !state.google.is_configured() {
        return Err(ApiError::NotImplemented("Google sign-in is not configured".into()));
    }
    let id_token = body.id_token.unwrap_or_default();
    let mut checks = Checks::new();
    checks.body(!id_token.trim().is_empty(), "idToken", "Google ID token is required");
    checks.finish()?;
    let identity = state.google.verify(id_token.trim()).await.map_err(|err| match err {
        GoogleError::NotConfigured => ApiError::NotImplemented("Google sign-in is not configured".into()),
        GoogleError::InvalidToken => ApiError::unauthorized("Invalid Google token"),
        GoogleError::KeysUnavailable(reason) => {
            tracing::warn!(error = %reason, "Google sign-in failed: no signing keys");
            ApiError::BadGateway("Google sign-in is temporarily unavailable".into())
        }
    })?;
    // Two first sign-ins of one Google account can race to create it: the loser retries and
    // finds the winner's user.
    let mut attempt = 0;
    let (mut tx, user) = loop {
        attempt += 1;
        match find_or_create_google_user(&state, &identity).await {
            Err(GoogleUserError::Race) if attempt < 3 => continue,
            Err(GoogleUserError::Race) => return Err(ApiError::conflict("User with this email already exists")),
            Err(GoogleUserError::Api(err)) => return Err(err),
            Ok(found) => break found,
        }
    };
    users::set_last_login(&mut *tx, &user.id).await?;
    Ok(Json(sign_in(&state, tx, &user).await?))
}

enum GoogleUserError {
    /// A concurrent request created or linked the same identity first.
    Race,
    Api(ApiError),
}

impl From<sqlx::Error> for GoogleUserError {
    fn from(err: sqlx::Error) -> Self {
        if super::error::is_unique_violation(&err) {
            GoogleUserError::Race
        } else {
            GoogleUserError::Api(err.into())
        }
    }
}

/// The user of a Google identity, in an open write transaction.
async fn find_or_create_google_user(
    state: &AppState,
    identity: &GoogleIdentity,
) -> Result<(crate::store::Tx, User), GoogleUserError> {
    let mut tx = state.db.begin_write().await?;
    if let Some(user) = users::find_by_google_id(&mut *tx, &identity.google_id).await? {
        return Ok((tx, user));
    }
    // Without a verified email there is nothing safe to link to or to register under.
    let email = identity
        .email
        .as_deref()
        .map(normalize_email)
        .filter(|e| is_valid_email(e) && identity.email_verified)
        .ok_or_else(|| GoogleUserError::Api(ApiError::unauthorized("Google account email is not verified")))?;
    if let Some(mut user) = users::find_by_email(&mut *tx, &email).await? {
        if user.google_id.is_some() || !users::link_google_id(&mut *tx, &user.id, &identity.google_id).await? {
            // Linked to another Google account: never hand it to a second one.
            return Err(GoogleUserError::Api(ApiError::conflict(
                "User with this email already exists",
            )));
        }
        user.google_id = Some(identity.google_id.clone());
        return Ok((tx, user));
    }
    let display_name = identity
        .name
        .as_deref()
        .map(|n| n.trim().chars().take(100).collect::<String>())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| email.split('@').next().unwrap_or("").to_string());
    let new = NewUser {
        email: &email,
        password_hash: None,
        display_name: &display_name,
        is_guest: false,
        google_id: Some(&identity.google_id),
    };
    let user = users::create_with_defaults(&mut tx, new).await?;
    Ok((tx, user))
}

/// Checks a display name: 1 to 100 characters after trimming.
fn check_display_name(checks: &mut Checks, display_name: Option<&str>) {
    let len = display_name.map(|n| n.trim().chars().count()).unwrap_or(0);
    checks.body(
        (1..=100).contains(&len),
        "displayName",
        "Display name must be 1 to 100 characters",
    );
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateMeBody {
    display_name: Option<String>,
}

/// Change the signed-in user's display name.
#[utoipa::path(put, path = "/me", tag = "auth", security(("bearer" = [])), request_body = UpdateMeBody, responses(
    (status = 200, body = UserResponse),
    (status = 400, description = "Validation failed", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
))]
async fn update_me(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<UpdateMeBody>,
) -> ApiResult<Json<UserResponse>> {
    let mut checks = Checks::new();
    check_display_name(&mut checks, body.display_name.as_deref());
    checks.finish()?;
    let display_name = body.display_name.as_deref().map(str::trim).unwrap_or("");
    users::set_display_name(&state.db.pool, &auth.id, display_name).await?;
    let user = users::find_by_id(&state.db.pool, &auth.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("User not found"))?;
    Ok(Json(UserResponse {
        user: UserView::of(&user),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordBody {
    current_password: Option<String>,
    /// 6 to 128 characters.
    new_password: Option<String>,
    /// The refresh token of this device's session, which stays valid; every other session ends.
    refresh_token: Option<String>,
}

/// Change the password. Every session of the user ends (its refresh tokens stop working)
/// except the one `refreshToken` belongs to, so other devices have to sign in again.
#[utoipa::path(post, path = "/change-password", tag = "auth", security(("bearer" = [])), request_body = ChangePasswordBody, responses(
    (status = 200, body = MessageResponse),
    (status = 400, description = "Validation failed / the account has no password (guest)", body = ErrorBody),
    (status = 401, description = "Current password is incorrect / not authenticated", body = ErrorBody),
))]
async fn change_password(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<ChangePasswordBody>,
) -> ApiResult<Json<MessageResponse>> {
    if auth.is_guest {
        return Err(ApiError::bad_request(
            "Guest accounts have no password. Upgrade the account first.",
        ));
    }
    let mut checks = Checks::new();
    checks.body(
        body.current_password.as_deref().is_some_and(|p| !p.is_empty()),
        "currentPassword",
        "Current password is required",
    );
    check_password(&mut checks, "newPassword", body.new_password.as_deref());
    checks.finish()?;
    let user = users::find_by_id(&state.db.pool, &auth.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("User not found"))?;
    let Some(current_hash) = user.password_hash else {
        return Err(ApiError::bad_request(
            "This account signs in with Google and has no password",
        ));
    };
    if !password::verify(body.current_password.unwrap_or_default(), Some(current_hash)).await {
        return Err(ApiError::unauthorized("Current password is incorrect"));
    }
    let new_hash = password::hash(body.new_password.unwrap_or_default()).await?;
    let mut tx = state.db.begin_write().await?;
    users::set_password_hash(&mut *tx, &auth.id, &new_hash).await?;
    let keep = body.refresh_token.as_deref().filter(|t| !t.is_empty());
    refresh_tokens::end_other_sessions(&mut tx, &auth.id, keep).await?;
    tx.commit().await?;
    Ok(Json(MessageResponse {
        message: "Password changed successfully".into(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct DeleteMeBody {
    /// Required unless the account has no password (guests, Google-only accounts).
    password: Option<String>,
}

/// Delete the signed-in user and all of their data.
#[utoipa::path(delete, path = "/me", tag = "auth", security(("bearer" = [])), request_body(content = DeleteMeBody, description = "`password` is required for accounts that have one"), responses(
    (status = 200, body = MessageResponse),
    (status = 400, description = "Validation failed (password missing)", body = ErrorBody),
    (status = 401, description = "Password is incorrect / not authenticated", body = ErrorBody),
))]
async fn delete_me(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<DeleteMeBody>,
) -> ApiResult<Json<MessageResponse>> {
    let user = users::find_by_id(&state.db.pool, &auth.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("User not found"))?;
    if let Some(hash) = user.password_hash.filter(|_| !user.is_guest) {
        let given = body.password.unwrap_or_default();
        let mut checks = Checks::new();
        checks.body(!given.is_empty(), "password", "Password is required");
        checks.finish()?;
        if !password::verify(given, Some(hash)).await {
            return Err(ApiError::unauthorized("Password is incorrect"));
        }
    }
    let mut tx = state.db.begin_write().await?;
    users::delete(&mut *tx, &auth.id).await?;
    tx.commit().await?;
    Ok(Json(MessageResponse {
        message: "Account deleted successfully".into(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeBody {
    email: Option<String>,
    /// 6 to 128 characters.
    password: Option<String>,
    /// Default: the part of the email before `@`.
    display_name: Option<String>,
}

/// Turn a guest account into a regular one with email and password; all data is kept.
#[utoipa::path(post, path = "/upgrade", tag = "auth", security(("bearer" = [])), request_body = UpgradeBody, responses(
    (status = 200, body = AuthResponse),
    (status = 400, description = "Validation failed / Only guest accounts can be upgraded", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 409, description = "User with this email already exists", body = ErrorBody),
))]
async fn upgrade(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<UpgradeBody>,
) -> ApiResult<Json<AuthResponse>> {
    if !auth.is_guest {
        return Err(ApiError::bad_request("Only guest accounts can be upgraded"));
    }
    let (email, display_name) = check_new_credentials(&body.email, &body.password, &body.display_name)?;
    if users::find_by_email(&state.db.pool, &email).await?.is_some() {
        return Err(ApiError::conflict("User with this email already exists"));
    }
    let hash = password::hash(body.password.unwrap_or_default()).await?;
    let mut tx = state.db.begin_write().await?;
    match users::upgrade_guest(&mut *tx, &auth.id, &email, &hash, &display_name).await {
        Ok(true) => {}
        Ok(false) => return Err(ApiError::bad_request("Only guest accounts can be upgraded")),
        Err(err) if super::error::is_unique_violation(&err) => {
            return Err(ApiError::conflict("User with this email already exists"))
        }
        Err(err) => return Err(err.into()),
    }
    let user = users::find_by_id(&mut *tx, &auth.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("User not found"))?;
    Ok(Json(sign_in(&state, tx, &user).await?))
}

/// Rows deleted by a reset.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletedCounts {
    transactions: u64,
    debts: u64,
    categories: u64,
    accounts: u64,
    exchange_rates: u64,
}

impl From<user_data::DeletedData> for DeletedCounts {
    fn from(d: user_data::DeletedData) -> Self {
        DeletedCounts {
            transactions: d.transactions,
            debts: d.debts,
            categories: d.categories,
            accounts: d.accounts,
            exchange_rates: d.exchange_rates,
        }
    }
}

/// Rows deleted by `/reset-data`, refresh tokens included.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletedCountsWithTokens {
    #[serde(flatten)]
    data: DeletedCounts,
    refresh_tokens: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ResetDataResponse {
    message: String,
    deleted: DeletedCountsWithTokens,
}

#[derive(Serialize, ToSchema)]
pub struct ResetResponse {
    message: String,
    deleted: DeletedCounts,
}

/// Deletes all of the caller's financial data in `tx` (tombstones first), and with
/// `with_refresh_tokens` their refresh tokens too.
async fn delete_user_data(
    tx: &mut crate::store::Tx,
    user_id: &str,
    with_refresh_tokens: bool,
) -> ApiResult<(user_data::DeletedData, u64)> {
    let stamp = take_change_stamp(tx, user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("User not found"))?;
    let deleted = user_data::delete_all(tx, user_id, stamp).await?;
    let tokens = if with_refresh_tokens {
        refresh_tokens::delete_all_for_user(tx, user_id).await?
    } else {
        0
    };
    Ok((deleted, tokens))
}

/// Delete all of the caller's transactions, debts, categories, accounts and exchange rates and
/// revoke every refresh token, in one transaction. No default data is recreated.
#[utoipa::path(post, path = "/reset-data", tag = "auth", security(("bearer" = [])), responses(
    (status = 200, body = ResetDataResponse),
    (status = 401, description = "Not authenticated", body = ErrorBody),
))]
async fn reset_data(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<ResetDataResponse>> {
    let mut tx = state.db.begin_write().await?;
    let (deleted, refresh_tokens) = delete_user_data(&mut tx, &auth.id, true).await?;
    tx.commit().await?;
    Ok(Json(ResetDataResponse {
        message: "All user data reset successfully".into(),
        deleted: DeletedCountsWithTokens {
            data: deleted.into(),
            refresh_tokens,
        },
    }))
}

/// Delete all of the caller's transactions, debts, categories, accounts and exchange rates in
/// one transaction (sessions stay signed in). No default data is recreated.
#[utoipa::path(post, path = "/reset", tag = "auth", security(("bearer" = [])), responses(
    (status = 200, body = ResetResponse),
    (status = 401, description = "Not authenticated", body = ErrorBody),
))]
async fn reset(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<ResetResponse>> {
    let mut tx = state.db.begin_write().await?;
    let (deleted, _) = delete_user_data(&mut tx, &auth.id, false).await?;
    tx.commit().await?;
    Ok(Json(ResetResponse {
        message: "All user data fully deleted".into(),
        deleted: deleted.into(),
    }))
}
