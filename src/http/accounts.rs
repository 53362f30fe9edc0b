//! Account endpoints (`/api/v1/accounts`): list, create (or update by client id), partial update,
//! delete together with the account's transactions, statistics, per-account stats, credit schedule.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::auth::AuthUser;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::plans::ensure_account_limit;
use super::validate::{double_option, is_currency_code, is_hex_color, parse_range, parse_time, parse_uuid, Checks};
use super::views::AccountRecord;
use crate::domain::credit::{PaymentType, MAX_TERM_MONTHS};
use crate::domain::money::{decimal_from_json, Money, Rate, MAX_AMOUNT_UNITS};
use crate::domain::stats::{Total, TotalOverflow};
use crate::domain::time::Iso;
use crate::state::AppState;
use crate::store::accounts::{self, AccountRow, BalanceGroup, ACCOUNT_TYPES};
use crate::store::{take_change_stamp, Tx};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_accounts, create_account))
        .routes(routes!(update_account, delete_account))
        .routes(routes!(account_statistics))
        .routes(routes!(account_stats))
        .routes(routes!(credit_schedule))
}

/// Longest accepted account name.
const MAX_NAME_CHARS: usize = 100;
/// Longest accepted icon (an emoji or an icon name).
const MAX_ICON_CHARS: usize = 50;
/// Longest accepted card number (digits, spaces, dashes).
const MAX_CARD_CHARS: usize = 32;

/// Takes the caller's change stamp for a write transaction (401 when the user is gone).
pub async fn write_stamp(tx: &mut Tx, user_id: &str) -> ApiResult<i64> {
    take_change_stamp(tx, user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("User not found"))
}

impl From<TotalOverflow> for ApiError {
    fn from(err: TotalOverflow) -> Self {
        ApiError::internal(err)
    }
}

/// The fields of an account, as a create or (partial) update sends them.
#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct AccountBody {
    /// A client-chosen UUID (create only; an id of an existing account of the caller updates it).
    #[schema(format = Uuid)]
    id: Option<String>,
    name: Option<String>,
    /// `cash`, `card`, `bank`, `savings`, `debt` or `credit`.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    kind: Option<String>,
    #[schema(value_type = Option<f64>)]
    balance: Option<Money>,
    /// Three letters, default `RUB`.
    currency: Option<String>,
    /// > 0, default 1.
    #[schema(value_type = Option<f64>)]
    exchange_rate: Option<Rate>,
    /// Stored encrypted, answered masked. A value containing `*` (a masked number sent back)
    /// keeps the stored number.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    card_number: Option<Option<String>>,
    /// `#RRGGBB`.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    color: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    icon: Option<Option<String>>,
    is_default: Option<bool>,
    /// Default true.
    is_included_in_total: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<f64>)]
    target_amount: Option<Option<Money>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, format = Uuid)]
    linked_account_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<f64>)]
    saved_amount: Option<Option<Money>>,
    /// ISO-8601 date or date-time.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    credit_start_date: Option<Option<String>>,
    /// Months, an integer from 1 to 1200.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    credit_term: Option<Option<serde_json::Value>>,
    /// Percent a year, 0 to 100.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<f64>)]
    credit_rate: Option<Option<Rate>>,
    /// `annuity` or `differentiated`.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    credit_payment_type: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<f64>)]
    credit_initial_amount: Option<Option<Money>>,
}

/// A validated account body: `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Default)]
struct AccountPatch {
    name: Option<String>,
    kind: Option<String>,
    balance: Option<i64>,
    currency: Option<String>,
    exchange_rate: Option<i64>,
    /// Plaintext; a masked value never gets here.
    card_number: Option<Option<String>>,
    color: Option<Option<String>>,
    icon: Option<Option<String>>,
    is_default: Option<bool>,
    is_included_in_total: Option<bool>,
    target_amount: Option<Option<i64>>,
    linked_account_id: Option<Option<String>>,
    saved_amount: Option<Option<i64>>,
    credit_start_date: Option<Option<i64>>,
    credit_term: Option<Option<i64>>,
    credit_rate: Option<Option<i64>>,
    credit_payment_type: Option<Option<String>>,
    credit_initial_amount: Option<Option<i64>>,
}

/// Checks an optional non-negative amount field.
fn check_amount(checks: &mut Checks, value: Option<Option<Money>>, path: &str, label: &str) -> Option<Option<i64>> {
    let amount = value?;
    if let Some(money) = amount {
        checks.body(!money.is_negative(), path, &format!("{label} must not be negative"));
        checks.body(
            money.within_units(MAX_AMOUNT_UNITS),
            path,
            &format!("{label} is out of range"),
        );
    }
    Some(amount.map(Money::raw))
}

/// Validates every field of an account body (`creating`: name and type are required) and
/// answers the client id, if any, and the patch.
fn validate_account_body(body: AccountBody, creating: bool) -> ApiResult<(Option<String>, AccountPatch)> {
    let mut checks = Checks::new();
    let mut patch = AccountPatch::default();

    let id = if creating {
        checks.client_id(body.id.as_deref())
    } else {
        None
    };

    match body.name.as_deref().map(str::trim) {
        Some(name) => {
            checks.body(!name.is_empty(), "name", "Name is required");
            checks.body(
                name.chars().count() <= MAX_NAME_CHARS,
                "name",
                "Name must be at most 100 characters",
            );
            patch.name = Some(name.to_string());
        }
        None => {
            checks.body(!creating, "name", "Name is required");
        }
    }

    match body.kind.as_deref() {
        Some(kind) => {
            checks.body(
                ACCOUNT_TYPES.contains(&kind),
                "type",
                "Type must be one of: cash, card, bank, savings, debt, credit",
            );
            patch.kind = Some(kind.to_string());
        }
        None => {
            checks.body(
                !creating,
                "type",
                "Type must be one of: cash, card, bank, savings, debt, credit",
            );
        }
    }

    if let Some(balance) = body.balance {
        checks.body(
            balance.within_units(MAX_AMOUNT_UNITS),
            "balance",
            "Balance is out of range",
        );
        patch.balance = Some(balance.raw());
    }

    if let Some(currency) = body.currency.as_deref().map(str::trim) {
        checks.body(
            is_currency_code(currency),
            "currency",
            "Currency must be a 3-letter code",
        );
        patch.currency = Some(currency.to_ascii_uppercase());
    }

    if let Some(rate) = body.exchange_rate {
        checks.body(
            rate.is_positive(),
            "exchangeRate",
            "Exchange rate must be greater than 0",
        );
        patch.exchange_rate = Some(rate.raw());
    }

    if let Some(card) = body.card_number {
        let card = card.map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
        match card {
            // A masked number sent back unchanged keeps the stored one.
            Some(card) if card.contains('*') => {}
            Some(card) => {
                checks.body(
                    card.chars().count() <= MAX_CARD_CHARS
                        && card.chars().any(|c| c.is_ascii_digit())
                        && card.chars().all(|c| c.is_ascii_digit() || c == ' ' || c == '-'),
                    "cardNumber",
                    "Card number must be up to 32 digits, spaces or dashes",
                );
                patch.card_number = Some(Some(card));
            }
            None => patch.card_number = Some(None),
        }
    }

    if let Some(color) = body.color {
        if let Some(c) = &color {
            checks.body(is_hex_color(c), "color", "Color must be a hex color like #RRGGBB");
        }
        patch.color = Some(color);
    }

    if let Some(icon) = body.icon {
        if let Some(i) = &icon {
            checks.body(
                i.chars().count() <= MAX_ICON_CHARS,
                "icon",
                "Icon must be at most 50 characters",
            );
        }
        patch.icon = Some(icon);
    }

    patch.is_default = body.is_default;
    patch.is_included_in_total = body.is_included_in_total;
    patch.target_amount = check_amount(&mut checks, body.target_amount, "targetAmount", "Target amount");
    patch.saved_amount = check_amount(&mut checks, body.saved_amount, "savedAmount", "Saved amount");
    patch.credit_initial_amount = check_amount(
        &mut checks,
        body.credit_initial_amount,
        "creditInitialAmount",
        "Credit initial amount",
    );

    if let Some(link) = body.linked_account_id {
        patch.linked_account_id = Some(match link {
            Some(raw) => {
                let parsed = parse_uuid(&raw);
                checks.body(parsed.is_some(), "linkedAccountId", "Invalid linked account ID");
                parsed
            }
            None => None,
        });
    }

    if let Some(date) = body.credit_start_date {
        patch.credit_start_date = Some(match date {
            Some(raw) => {
                let parsed = parse_time(&raw);
                checks.body(parsed.is_some(), "creditStartDate", "Invalid credit start date");
                parsed
            }
            None => None,
        });
    }

    if let Some(term) = body.credit_term {
        patch.credit_term = Some(match term {
            Some(value) => {
                let months = decimal_from_json(&value)
                    .ok()
                    .filter(|d| d.fract().is_zero())
                    .and_then(|d| i64::try_from(d).ok())
                    .filter(|m| (1..=MAX_TERM_MONTHS).contains(m));
                checks.body(
                    months.is_some(),
                    "creditTerm",
                    "Credit term must be a whole number of months from 1 to 1200",
                );
                months
            }
            None => None,
        });
    }

    if let Some(rate) = body.credit_rate {
        if let Some(r) = rate {
            checks.body(
                !r.is_negative() && r.within_units(100),
                "creditRate",
                "Credit rate must be between 0 and 100",
            );
        }
        patch.credit_rate = Some(rate.map(Rate::raw));
    }

    if let Some(kind) = body.credit_payment_type {
        if let Some(k) = &kind {
            checks.body(
                PaymentType::parse(k).is_some(),
                "creditPaymentType",
                "Credit payment type must be annuity or differentiated",
            );
        }
        patch.credit_payment_type = Some(kind);
    }

    checks.finish()?;
    Ok((id, patch))
}

impl AccountPatch {
    /// Copies the patch onto `row` (all but the balance); the card number is encrypted here.
    fn apply_to(&self, row: &mut AccountRow, state: &AppState) {
        fn set<T: Clone>(target: &mut T, value: &Option<T>) {
            if let Some(v) = value {
                *target = v.clone();
            }
        }
        set(&mut row.name, &self.name);
        set(&mut row.kind, &self.kind);
        set(&mut row.currency, &self.currency);
        set(&mut row.exchange_rate, &self.exchange_rate);
        if let Some(card) = &self.card_number {
            row.card_number = state.cipher.encrypt_opt(card.as_deref());
        }
        set(&mut row.color, &self.color);
        set(&mut row.icon, &self.icon);
        set(&mut row.is_default, &self.is_default);
        set(&mut row.is_included_in_total, &self.is_included_in_total);
        set(&mut row.target_amount, &self.target_amount);
        set(&mut row.linked_account_id, &self.linked_account_id);
        set(&mut row.saved_amount, &self.saved_amount);
        set(&mut row.credit_start_date, &self.credit_start_date);
        set(&mut row.credit_term, &self.credit_term);
        set(&mut row.credit_rate, &self.credit_rate);
        set(&mut row.credit_payment_type, &self.credit_payment_type);
        set(&mut row.credit_initial_amount, &self.credit_initial_amount);
    }
}

/// A linked account must be another of the caller's accounts.
async fn check_link(tx: &mut Tx, user_id: &str, account_id: &str, patch: &AccountPatch) -> ApiResult<()> {
    if let Some(Some(link)) = &patch.linked_account_id {
        if link == account_id {
            return Err(ApiError::bad_request("An account cannot be linked to itself"));
        }
        if !accounts::exists(&mut **tx, user_id, link).await? {
            return Err(ApiError::not_found("Linked account not found"));
        }
    }
    Ok(())
}

/// Applies a validated patch to the caller's existing account inside `tx`; answers the row as
/// it now is.
async fn update_existing(
    state: &AppState,
    tx: &mut Tx,
    mut row: AccountRow,
    patch: &AccountPatch,
    stamp: i64,
) -> ApiResult<AccountRow> {
    check_link(tx, &row.user_id, &row.id, patch).await?;
    patch.apply_to(&mut row, state);
    row.updated_at = stamp;
    accounts::update(tx, &row, stamp).await?;
    if let Some(balance) = patch.balance {
        accounts::set_balance(tx, &row.user_id, &row.id, balance, stamp).await?;
    }
    if patch.is_default == Some(true) {
        accounts::clear_other_defaults(tx, &row.user_id, &row.id, stamp).await?;
    }
    accounts::find(&mut **tx, &row.user_id, &row.id)
        .await?
        .ok_or_else(|| ApiError::not_found("Account not found"))
}

/// The caller's accounts, newest first.
#[utoipa::path(get, path = "/", tag = "accounts", security(("bearer" = [])), responses(
    (status = 200, body = [AccountRecord]),
    (status = 401, description = "Not authenticated", body = ErrorBody),
))]
async fn list_accounts(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<Vec<AccountRecord>>> {
    let rows = accounts::list(&state.db.pool, &auth.id).await?;
    Ok(Json(rows.iter().map(|r| AccountRecord::of(r, &state.cipher)).collect()))
}

/// Create an account; an `id` naming an existing account of the caller updates that account
/// with the fields sent (200). Free users are limited to `FREE_ACCOUNT_LIMIT` accounts.
#[utoipa::path(post, path = "/", tag = "accounts", security(("bearer" = [])), request_body = AccountBody, responses(
    (status = 201, description = "Created", body = AccountRecord),
    (status = 200, description = "The account with this id was updated", body = AccountRecord),
    (status = 400, description = "Validation failed", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 403, description = "Free plan limit reached", body = ErrorBody),
    (status = 404, description = "Linked account not found", body = ErrorBody),
    (status = 409, description = "Id is already in use", body = ErrorBody),
))]
async fn create_account(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<AccountBody>,
) -> ApiResult<(StatusCode, Json<AccountRecord>)> {
    let (id, patch) = validate_account_body(body, true)?;
    let mut tx = state.db.begin_write().await?;
    let stamp = write_stamp(&mut tx, &auth.id).await?;
    if let Some(id) = &id {
        if let Some(existing) = accounts::find(&mut *tx, &auth.id, id).await? {
            let row = update_existing(&state, &mut tx, existing, &patch, stamp).await?;
            tx.commit().await?;
            return Ok((StatusCode::OK, Json(AccountRecord::of(&row, &state.cipher))));
        }
        if crate::store::id_taken_by_other(&mut *tx, "accounts", &auth.id, id).await? {
            return Err(ApiError::conflict("Id is already in use"));
        }
    }
    let held = accounts::count(&mut *tx, &auth.id).await?;
    ensure_account_limit(&state, &auth, held)?;

    let mut row = AccountRow {
        id: id.unwrap_or_else(|| Uuid::new_v4().to_string()),
        user_id: auth.id.clone(),
        name: String::new(),
        kind: String::new(),
        balance: patch.balance.unwrap_or(0),
        currency: "RUB".into(),
        exchange_rate: 100_000_000,
        card_number: None,
        color: None,
        icon: None,
        is_default: false,
        is_included_in_total: true,
        target_amount: None,
        linked_account_id: None,
        saved_amount: None,
        credit_start_date: None,
        credit_term: None,
        credit_rate: None,
        credit_payment_type: None,
        credit_initial_amount: None,
        created_at: stamp,
        updated_at: stamp,
        synced_at: None,
    };
    check_link(&mut tx, &auth.id, &row.id, &patch).await?;
    patch.apply_to(&mut row, &state);
    match accounts::insert(&mut tx, &row, stamp).await {
        Ok(()) => {}
        Err(err) if super::error::is_unique_violation(&err) => return Err(ApiError::conflict("Id is already in use")),
        Err(err) => return Err(err.into()),
    }
    if row.is_default {
        accounts::clear_other_defaults(&mut tx, &auth.id, &row.id, stamp).await?;
    }
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(AccountRecord::of(&row, &state.cipher))))
}

/// Update some fields of one of the caller's accounts.
#[utoipa::path(put, path = "/{id}", tag = "accounts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Account id")),
    request_body = AccountBody,
    responses(
        (status = 200, body = AccountRecord),
        (status = 400, description = "Validation failed", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "Account not found / Linked account not found", body = ErrorBody),
    ))]
async fn update_account(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<AccountBody>,
) -> ApiResult<Json<AccountRecord>> {
    let (_, patch) = validate_account_body(body, false)?;
    let mut tx = state.db.begin_write().await?;
    let stamp = write_stamp(&mut tx, &auth.id).await?;
    let existing = accounts::find(&mut *tx, &auth.id, &id.to_string())
        .await?
        .ok_or_else(|| ApiError::not_found("Account not found"))?;
    let row = update_existing(&state, &mut tx, existing, &patch, stamp).await?;
    tx.commit().await?;
    Ok(Json(AccountRecord::of(&row, &state.cipher)))
}

/// Delete one of the caller's accounts together with every transaction that touches it. The
/// other side of a deleted transfer keeps its balance. The last account cannot be deleted.
#[utoipa::path(delete, path = "/{id}", tag = "accounts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Account id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Cannot delete the last account", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "Account not found", body = ErrorBody),
    ))]
async fn delete_account(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin_write().await?;
    let stamp = write_stamp(&mut tx, &auth.id).await?;
    let account = accounts::find(&mut *tx, &auth.id, &id.to_string())
        .await?
        .ok_or_else(|| ApiError::not_found("Account not found"))?;
    if accounts::count(&mut *tx, &auth.id).await? <= 1 {
        return Err(ApiError::bad_request("Cannot delete the last account"));
    }
    accounts::delete_with_transactions(&mut tx, &account, stamp).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatisticsQuery {
    /// Convert every balance into this currency with the exchange-rate service.
    currency: Option<String>,
}

/// Accounts of one type.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypeSummary {
    /// All accounts of the type.
    count: i64,
    /// Σ balance × exchange_rate of the type's accounts included in totals.
    #[schema(value_type = f64)]
    total_balance: Total,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountStatistics {
    /// Σ balance × exchange_rate of the accounts included in totals.
    #[schema(value_type = f64)]
    total_balance: Total,
    /// Raw balances per currency of the accounts included in totals.
    #[schema(value_type = BTreeMap<String, f64>)]
    balances_by_currency: BTreeMap<String, Total>,
    /// All accounts.
    accounts_count: i64,
    accounts_by_type: BTreeMap<String, TypeSummary>,
    /// All-time income × the account's exchange_rate (accounts included in totals).
    #[schema(value_type = f64)]
    total_income: Total,
    /// All-time expenses × the account's exchange_rate (accounts included in totals).
    #[schema(value_type = f64)]
    total_expenses: Total,
}

/// Sums the grouped balances and flows; `rate` gives the factor that converts an amount in a
/// currency stored at a rate (today: the stored rate itself).
fn summarize(
    groups: &[BalanceGroup],
    flows: &[(String, String, i64, i64)],
    rate: impl Fn(&str, i64) -> ApiResult<Decimal>,
) -> ApiResult<AccountStatistics> {
    let mut stats = AccountStatistics {
        total_balance: Total::default(),
        balances_by_currency: BTreeMap::new(),
        accounts_count: 0,
        accounts_by_type: BTreeMap::new(),
        total_income: Total::default(),
        total_expenses: Total::default(),
    };
    for group in groups {
        stats.accounts_count += group.count;
        let by_type = stats
            .accounts_by_type
            .entry(group.kind.clone())
            .or_insert_with(|| TypeSummary {
                count: 0,
                total_balance: Total::default(),
            });
        by_type.count += group.count;
        if !group.included {
            continue;
        }
        let converted = Decimal::new(group.balance, 2)
            .checked_mul(rate(&group.currency, group.exchange_rate)?)
            .ok_or(TotalOverflow)?;
        by_type.total_balance.add_decimal(converted)?;
        stats.total_balance.add_decimal(converted)?;
        stats
            .balances_by_currency
            .entry(group.currency.clone())
            .or_default()
            .add_cents(group.balance)?;
    }
    for (kind, currency, exchange_rate, cents) in flows {
        let converted = Decimal::new(*cents, 2)
            .checked_mul(rate(currency, *exchange_rate)?)
            .ok_or(TotalOverflow)?;
        match kind.as_str() {
            "income" => stats.total_income.add_decimal(converted)?,
            "expense" => stats.total_expenses.add_decimal(converted)?,
            _ => {}
        }
    }
    Ok(stats)
}

/// Totals over the caller's accounts; with `?currency=XXX` every balance and flow is converted
/// with the exchange-rate service (the user's manual rates first, then the provider's).
#[utoipa::path(get, path = "/statistics", tag = "accounts", security(("bearer" = [])),
    params(StatisticsQuery),
    responses(
        (status = 200, body = AccountStatistics),
        (status = 400, description = "Validation failed / No exchange rate from XXX to YYY", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ))]
async fn account_statistics(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(query): ApiQuery<StatisticsQuery>,
) -> ApiResult<Json<AccountStatistics>> {
    let target = match query.currency.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(currency) => {
            let mut checks = Checks::new();
            checks.query(
                is_currency_code(currency),
                "currency",
                "Currency must be a 3-letter code",
            );
            checks.finish()?;
            Some(currency.to_ascii_uppercase())
        }
        None => None,
    };
    let groups = accounts::balance_groups(&state.db.pool, &auth.id).await?;
    let flows = accounts::flow_totals(&state.db.pool, &auth.id).await?;
    if let Some(target) = target {
        // One rate per currency held (the user's manual rates first, then the provider's).
        let mut rates: BTreeMap<String, Decimal> = BTreeMap::new();
        let currencies = groups
            .iter()
            .map(|g| g.currency.clone())
            .chain(flows.iter().map(|f| f.1.clone()));
        for currency in currencies {
            if rates.contains_key(&currency) {
                continue;
            }
            let rate = state
                .rates
                .user_rate(&state.db.pool, &auth.id, &currency, &target)
                .await?
                .ok_or_else(|| ApiError::bad_request(format!("No exchange rate from {currency} to {target}")))?;
            rates.insert(currency, rate);
        }
        let stats = summarize(&groups, &flows, |currency, _| {
            rates
                .get(currency)
                .copied()
                .ok_or_else(|| ApiError::bad_request("No exchange rate"))
        })?;
        return Ok(Json(stats));
    }
    let stats = summarize(&groups, &flows, |_, stored| Ok(Decimal::new(stored, 8)))?;
    Ok(Json(stats))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct RangeQuery {
    /// Inclusive; a date without a time means the start of that UTC day.
    start_date: Option<String>,
    /// Inclusive; a date without a time means the end of that UTC day.
    end_date: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountStats {
    account_id: String,
    /// The current balance.
    #[schema(value_type = f64)]
    balance: Money,
    currency: String,
    #[schema(value_type = f64)]
    total_income: Money,
    #[schema(value_type = f64)]
    total_expense: Money,
    #[schema(value_type = f64)]
    transfers_in: Money,
    #[schema(value_type = f64)]
    transfers_out: Money,
    transactions_count: i64,
}

/// What moved through one account in a date range (both sides of transfers).
#[utoipa::path(get, path = "/{id}/stats", tag = "accounts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Account id"), RangeQuery),
    responses(
        (status = 200, body = AccountStats),
        (status = 400, description = "Validation failed", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "Account not found", body = ErrorBody),
    ))]
async fn account_stats(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<RangeQuery>,
) -> ApiResult<Json<AccountStats>> {
    let mut checks = Checks::new();
    let (start, end) = parse_range(&mut checks, query.start_date.as_deref(), query.end_date.as_deref());
    checks.finish()?;
    let account = accounts::find(&state.db.pool, &auth.id, &id.to_string())
        .await?
        .ok_or_else(|| ApiError::not_found("Account not found"))?;
    let flows = accounts::account_flows(&state.db.pool, &auth.id, &account.id, start, end).await?;
    Ok(Json(AccountStats {
        account_id: account.id,
        balance: Money::from_raw(account.balance),
        currency: account.currency,
        total_income: Money::from_raw(flows.income),
        total_expense: Money::from_raw(flows.expense),
        transfers_in: Money::from_raw(flows.transfers_in),
        transfers_out: Money::from_raw(flows.transfers_out),
        transactions_count: flows.count,
    }))
}

/// One payment of a credit schedule.
#[derive(Serialize, ToSchema)]
pub struct ScheduleRow {
    month: u32,
    #[schema(value_type = String, format = DateTime)]
    date: Iso,
    #[schema(value_type = f64)]
    payment: Money,
    #[schema(value_type = f64)]
    principal: Money,
    #[schema(value_type = f64)]
    interest: Money,
    #[schema(value_type = f64)]
    remaining: Money,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreditSchedule {
    #[schema(value_type = f64)]
    monthly_payment: Money,
    #[schema(value_type = f64)]
    total_payment: Total,
    #[schema(value_type = f64)]
    total_interest: Total,
    schedule: Vec<ScheduleRow>,
}

/// The repayment schedule of a credit account. The principal is `credit_initial_amount`, or
/// the absolute balance when that is unset; payment k is dated k months after
/// `credit_start_date` (or after the account's creation).
#[utoipa::path(get, path = "/{id}/credit-schedule", tag = "accounts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Account id")),
    responses(
        (status = 200, body = CreditSchedule),
        (status = 400, description = "Credit schedule is only available for credit accounts", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "Account not found", body = ErrorBody),
    ))]
async fn credit_schedule(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<CreditSchedule>> {
    let account = accounts::find(&state.db.pool, &auth.id, &id.to_string())
        .await?
        .ok_or_else(|| ApiError::not_found("Account not found"))?;
    if account.kind != "credit" {
        return Err(ApiError::bad_request(
            "Credit schedule is only available for credit accounts",
        ));
    }
    let loan = account
        .loan()
        .ok_or_else(|| ApiError::bad_request("Credit schedule needs a credit term and an amount"))?;
    let start = account.credit_start_date.unwrap_or(account.created_at);
    let installments = loan.schedule(start);
    let mut total_payment = Total::default();
    let mut total_interest = Total::default();
    let mut schedule = Vec::with_capacity(installments.len());
    for row in installments {
        total_payment.add_cents(row.payment)?;
        total_interest.add_cents(row.interest)?;
        schedule.push(ScheduleRow {
            month: row.month,
            date: Iso(row.date),
            payment: Money::from_raw(row.payment),
            principal: Money::from_raw(row.principal),
            interest: Money::from_raw(row.interest),
            remaining: Money::from_raw(row.remaining),
        });
    }
    Ok(Json(CreditSchedule {
        monthly_payment: Money::from_raw(loan.monthly_payment()),
        total_payment,
        total_interest,
        schedule,
    }))
}
