//! Exchange-rate endpoints (`/api/v1/exchange-rates`): public rates, currencies and last update,
//! the refresh trigger, and users' own rates — all in the `{"success":…}` envelope.

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AuthUser;
use super::error::{ApiError, ErrorBody, FieldError};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::validate::{is_currency_code, Checks};
use crate::domain::money::{serialize_decimal, Rate};
use crate::domain::time::Iso;
use crate::rates::{RefreshError, Refreshed};
use crate::state::AppState;
use crate::store::user_rates::{self, RateMode, UserRate};
use crate::store::{self};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rate))
        .routes(routes!(currencies))
        .routes(routes!(last_update))
        .routes(routes!(update))
        .routes(routes!(list_user_rates, save_user_rate))
        .routes(routes!(set_user_rates_mode))
        .routes(routes!(delete_user_rate))
}

// ---- the envelope -------------------------------------------------------------------------

/// `{"success":true,"data":…}`.
#[derive(Serialize, ToSchema)]
pub struct Envelope<T> {
    /// Always true.
    pub success: bool,
    pub data: T,
}

type RatesResult<T> = Result<Json<Envelope<T>>, RatesError>;

fn ok<T>(data: T) -> RatesResult<T> {
    Ok(Json(Envelope { success: true, data }))
}

/// `{"success":false,"error":…}` (validation failures add `details`).
#[derive(Serialize, ToSchema)]
pub struct RatesErrorBody {
    /// Always false.
    pub success: bool,
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<FieldError>>,
}

/// An [`ApiError`] answered in this section's `{"success":false,"error":…}` shape.
#[derive(Debug)]
pub struct RatesError(pub ApiError);

impl IntoResponse for RatesError {
    fn into_response(self) -> Response {
        self.0.into_success_false_response()
    }
}

impl From<ApiError> for RatesError {
    fn from(err: ApiError) -> Self {
        RatesError(err)
    }
}

impl From<sqlx::Error> for RatesError {
    fn from(err: sqlx::Error) -> Self {
        RatesError(err.into())
    }
}

/// Query parameters; a rejection is answered in the `success:false` shape.
pub struct RatesQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for RatesQuery<T> {
    type Rejection = RatesError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ApiQuery(value) = ApiQuery::from_request_parts(parts, state).await?;
        Ok(RatesQuery(value))
    }
}

/// Path parameters; a rejection is answered in the `success:false` shape.
pub struct RatesPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for RatesPath<T> {
    type Rejection = RatesError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ApiPath(value) = ApiPath::from_request_parts(parts, state).await?;
        Ok(RatesPath(value))
    }
}

/// A JSON body; a rejection (malformed JSON, overlong string…) is answered in the
/// `success:false` shape.
pub struct RatesJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for RatesJson<T> {
    type Rejection = RatesError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ApiJson(value) = ApiJson::from_request(req, state).await?;
        Ok(RatesJson(value))
    }
}

// ---- helpers --------------------------------------------------------------------------------

/// Checks a required currency code and answers it upper-cased.
fn currency(
    checks: &mut Checks,
    value: Option<&str>,
    error: fn(&str, &str) -> FieldError,
    field: &str,
    label: &str,
) -> String {
    let value = value.map(str::trim).unwrap_or("");
    if value.is_empty() {
        checks.push(error(field, &format!("{label} is required")));
    } else if !is_currency_code(value) {
        checks.push(error(field, &format!("{label} must be a 3-letter currency code")));
    }
    value.to_ascii_uppercase()
}

fn query_error(field: &str, msg: &str) -> FieldError {
    FieldError::query(field, msg)
}

fn body_error(field: &str, msg: &str) -> FieldError {
    FieldError::body(field, msg)
}

fn params_error(field: &str, msg: &str) -> FieldError {
    FieldError::params(field, msg)
}

// ---- public rates ---------------------------------------------------------------------------

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RateQuery {
    /// Currency to convert from (3 letters, any case).
    #[param(example = "USD")]
    from: Option<String>,
    /// Currency to convert to (3 letters, any case).
    #[param(example = "EUR")]
    to: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RateData {
    /// Units of `to` for one unit of `from`: the exact quotient of the stored base rates with
    /// 8 decimals, or more when needed for 10 significant digits.
    #[serde(serialize_with = "serialize_decimal")]
    #[schema(value_type = f64, example = 0.9259259259)]
    pub rate: Decimal,
    pub from: String,
    pub to: String,
}

/// The exchange rate between two currencies (direct, inverse or cross).
#[utoipa::path(get, path = "/rate", tag = "exchange-rates", params(RateQuery), responses(
    (status = 200, body = Envelope<RateData>),
    (status = 400, description = "Missing or invalid currency", body = RatesErrorBody),
    (status = 404, description = "Exchange rate not found", body = RatesErrorBody),
))]
async fn rate(State(state): State<AppState>, RatesQuery(query): RatesQuery<RateQuery>) -> RatesResult<RateData> {
    let mut checks = Checks::new();
    let from = currency(&mut checks, query.from.as_deref(), query_error, "from", "From currency");
    let to = currency(&mut checks, query.to.as_deref(), query_error, "to", "To currency");
    checks.finish()?;
    let rate = state
        .rates
        .snapshot()
        .rate(&from, &to)
        .ok_or_else(|| ApiError::not_found("Exchange rate not found"))?;
    ok(RateData { rate, from, to })
}

#[derive(Serialize, ToSchema)]
pub struct CurrenciesData {
    /// The 37 currencies the app supports, then any other the provider publishes.
    #[schema(example = json!(["USD", "EUR", "GBP"]))]
    pub currencies: Vec<String>,
}

/// Currencies the app supports and the provider publishes.
#[utoipa::path(get, path = "/currencies", tag = "exchange-rates", responses(
    (status = 200, body = Envelope<CurrenciesData>),
))]
async fn currencies(State(state): State<AppState>) -> RatesResult<CurrenciesData> {
    ok(CurrenciesData {
        currencies: state.rates.snapshot().currencies(),
    })
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastUpdateData {
    /// When the stored rates were fetched from the provider; null before any refresh.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_update: Option<Iso>,
}

/// When the rates were last refreshed.
#[utoipa::path(get, path = "/last-update", tag = "exchange-rates", responses(
    (status = 200, body = Envelope<LastUpdateData>),
))]
async fn last_update(State(state): State<AppState>) -> RatesResult<LastUpdateData> {
    ok(LastUpdateData {
        last_update: state.rates.snapshot().fetched_at.map(Iso),
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UpdateQuery {
    /// `true` refreshes even when the stored rates are less than 24 h old.
    #[param(value_type = Option<bool>)]
    force: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateData {
    pub message: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_update: Option<Iso>,
}

/// Refreshes the rates from the provider when they are older than 24 h (or `force=true`).
#[utoipa::path(post, path = "/update", tag = "exchange-rates", params(UpdateQuery), security(("bearer" = [])), responses(
    (status = 200, body = Envelope<UpdateData>),
    (status = 400, description = "Invalid `force`", body = RatesErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 502, description = "The provider failed; the stored rates are kept", body = RatesErrorBody),
))]
async fn update(
    State(state): State<AppState>,
    _auth: AuthUser,
    RatesQuery(query): RatesQuery<UpdateQuery>,
) -> RatesResult<UpdateData> {
    let force = match query.force.as_deref().map(|f| f.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("false") | Some("0") | Some("no") => false,
        Some("true") | Some("1") | Some("yes") => true,
        Some(_) => {
            return Err(ApiError::invalid(FieldError::query("force", "force must be true or false")).into());
        }
    };
    let outcome = state
        .rates
        .refresh(&state.db, state.redis.as_ref(), force)
        .await
        .map_err(|err| match err {
            RefreshError::Provider(err) => ApiError::BadGateway(format!("Failed to update exchange rates: {err}")),
            RefreshError::Database(err) => err.into(),
        })?;
    let (message, last_update) = match outcome {
        Refreshed::Updated { fetched_at } => ("Exchange rates updated successfully", Some(fetched_at)),
        Refreshed::UpToDate { fetched_at } => ("Exchange rates are up to date", Some(fetched_at)),
        Refreshed::InProgress { fetched_at } => (
            "Exchange rates are being updated by another server; try again shortly",
            fetched_at,
        ),
    };
    ok(UpdateData {
        message: message.into(),
        last_update: last_update.map(Iso),
    })
}

// ---- users' own rates -----------------------------------------------------------------------

/// A user's own exchange rate.
#[derive(Serialize, ToSchema)]
pub struct UserRateView {
    pub id: String,
    pub user_id: String,
    pub from_currency: String,
    pub to_currency: String,
    /// Units of `to_currency` for one `from_currency` (8 decimals).
    #[schema(value_type = f64, example = 92.5)]
    pub rate: Rate,
    /// `auto` (follow the provider) or `manual` (this rate wins in conversions).
    pub mode: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Iso,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Iso,
}

impl From<UserRate> for UserRateView {
    fn from(rate: UserRate) -> Self {
        UserRateView {
            id: rate.id,
            user_id: rate.user_id,
            from_currency: rate.from_currency,
            to_currency: rate.to_currency,
            rate: rate.rate,
            mode: rate.mode,
            created_at: Iso(rate.created_at),
            updated_at: Iso(rate.updated_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserRatesData {
    pub rates: Vec<UserRateView>,
}

/// The caller's own rates, ordered by from and to currency.
#[utoipa::path(get, path = "/user", tag = "exchange-rates", security(("bearer" = [])), responses(
    (status = 200, body = Envelope<UserRatesData>),
    (status = 401, description = "Not authenticated", body = ErrorBody),
))]
async fn list_user_rates(State(state): State<AppState>, auth: AuthUser) -> RatesResult<UserRatesData> {
    let rates = user_rates::list(&state.db.pool, &auth.id).await?;
    ok(UserRatesData {
        rates: rates.into_iter().map(UserRateView::from).collect(),
    })
}

/// A user rate to create or update. Currencies may also be sent as `fromCurrency`/`toCurrency`.
#[derive(Deserialize, ToSchema)]
pub struct SaveUserRateBody {
    #[serde(alias = "fromCurrency")]
    #[schema(example = "USD")]
    from_currency: Option<String>,
    #[serde(alias = "toCurrency")]
    #[schema(example = "RUB")]
    to_currency: Option<String>,
    /// Greater than 0; a number or a numeric string, rounded to 8 decimals.
    #[schema(value_type = f64, example = 92.5)]
    rate: Option<Rate>,
    /// `auto` or `manual` (default `manual`).
    #[schema(example = "manual")]
    mode: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SavedUserRateData {
    pub exchange_rate: UserRateView,
    /// `Exchange rate created` or `Exchange rate updated`.
    pub message: String,
}

/// Creates or updates the caller's rate for a currency pair.
#[utoipa::path(post, path = "/user", tag = "exchange-rates", request_body = SaveUserRateBody, security(("bearer" = [])), responses(
    (status = 200, body = Envelope<SavedUserRateData>),
    (status = 400, description = "Validation failed, or the same currency twice", body = RatesErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
))]
async fn save_user_rate(
    State(state): State<AppState>,
    auth: AuthUser,
    RatesJson(body): RatesJson<SaveUserRateBody>,
) -> RatesResult<SavedUserRateData> {
    let mut checks = Checks::new();
    let from = currency(
        &mut checks,
        body.from_currency.as_deref(),
        body_error,
        "from_currency",
        "From currency",
    );
    let to = currency(
        &mut checks,
        body.to_currency.as_deref(),
        body_error,
        "to_currency",
        "To currency",
    );
    match body.rate {
        None => checks.body(false, "rate", "Rate is required"),
        Some(rate) => checks.body(rate.is_positive(), "rate", "Rate must be greater than 0"),
    };
    let mode = match body.mode.as_deref() {
        None => Some(RateMode::Manual),
        Some(text) => RateMode::parse(text),
    };
    checks.body(mode.is_some(), "mode", "Mode must be auto or manual");
    checks.finish()?;
    let (Some(rate), Some(mode)) = (body.rate, mode) else {
        return Err(ApiError::bad_request("Validation failed").into());
    };
    if from == to {
        return Err(ApiError::bad_request("From and to currencies must be different").into());
    }
    let mut tx = state.db.begin_write().await?;
    let stamp = store::take_change_stamp(&mut tx, &auth.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("User not found"))?;
    let (saved, created) = user_rates::upsert(&mut tx, &auth.id, stamp, &from, &to, rate, mode).await?;
    tx.commit().await?;
    ok(SavedUserRateData {
        exchange_rate: saved.into(),
        message: if created {
            "Exchange rate created"
        } else {
            "Exchange rate updated"
        }
        .into(),
    })
}

#[derive(Serialize, ToSchema)]
pub struct MessageData {
    pub message: String,
}

/// Deletes the caller's rate for a currency pair.
#[utoipa::path(delete, path = "/user/{from}/{to}", tag = "exchange-rates", security(("bearer" = [])),
    params(
        ("from" = String, Path, description = "From currency (3 letters)", example = "USD"),
        ("to" = String, Path, description = "To currency (3 letters)", example = "RUB"),
    ),
    responses(
        (status = 200, body = Envelope<MessageData>),
        (status = 400, description = "Invalid currency code", body = RatesErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "Exchange rate not found", body = RatesErrorBody),
    ))]
async fn delete_user_rate(
    State(state): State<AppState>,
    auth: AuthUser,
    RatesPath((from, to)): RatesPath<(String, String)>,
) -> RatesResult<MessageData> {
    let mut checks = Checks::new();
    let from = currency(&mut checks, Some(&from), params_error, "from", "From currency");
    let to = currency(&mut checks, Some(&to), params_error, "to", "To currency");
    checks.finish()?;
    let mut tx = state.db.begin_write().await?;
    let stamp = store::take_change_stamp(&mut tx, &auth.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("User not found"))?;
    if !user_rates::delete(&mut tx, &auth.id, stamp, &from, &to).await? {
        return Err(ApiError::not_found("Exchange rate not found").into());
    }
    tx.commit().await?;
    ok(MessageData {
        message: "Exchange rate deleted".into(),
    })
}

#[derive(Deserialize, ToSchema)]
pub struct ModeBody {
    /// `auto` or `manual`.
    #[schema(example = "auto")]
    mode: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ModeData {
    pub mode: String,
    pub message: String,
    /// How many of the caller's rates changed mode.
    pub updated: u64,
}

/// Sets the mode of all the caller's rates.
#[utoipa::path(put, path = "/user/mode", tag = "exchange-rates", request_body = ModeBody, security(("bearer" = [])), responses(
    (status = 200, body = Envelope<ModeData>),
    (status = 400, description = "Mode must be auto or manual", body = RatesErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
))]
async fn set_user_rates_mode(
    State(state): State<AppState>,
    auth: AuthUser,
    RatesJson(body): RatesJson<ModeBody>,
) -> RatesResult<ModeData> {
    let mode = body.mode.as_deref().and_then(RateMode::parse);
    let Some(mode) = mode else {
        return Err(ApiError::invalid(FieldError::body("mode", "Mode must be auto or manual")).into());
    };
    let mut tx = state.db.begin_write().await?;
    let stamp = store::take_change_stamp(&mut tx, &auth.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("User not found"))?;
    let updated = user_rates::set_mode(&mut tx, &auth.id, stamp, mode).await?;
    tx.commit().await?;
    ok(ModeData {
        mode: mode.as_str().into(),
        message: format!("Exchange rate mode set to {}", mode.as_str()),
        updated,
    })
}
