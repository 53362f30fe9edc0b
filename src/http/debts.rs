//! Debt endpoints (`/api/v1/debts`): list, statistics, create (or upsert by client id), partial
//! update, delete, and paying a debt off into an account through the ledger.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::accounts::write_stamp;
use super::auth::{AuthUser, MessageResponse};
use super::error::{is_unique_violation, ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use super::validate::{double_option, parse_time, parse_uuid, Checks};
use super::views::TransactionRecord;
use crate::domain::ledger::TxnKind;
use crate::domain::money::{Money, MAX_AMOUNT_UNITS};
use crate::domain::time::{now_ms, Iso, Millis};
use crate::state::AppState;
use crate::store::accounts;
use crate::store::debts::{self, DebtRow};
use crate::store::transactions::{self, TxnRow};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_debts, create_debt))
        .routes(routes!(debt_stats))
        .routes(routes!(update_debt, delete_debt))
        .routes(routes!(pay_debt))
}

/// Longest debt name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// The description of the transaction a debt payment creates.
pub fn payment_description(debt_name: &str) -> String {
    format!("Погашение долга: {debt_name}")
}

/// A debt record.
#[derive(Debug, Serialize, ToSchema)]
pub struct DebtRecord {
    pub id: String,
    pub user_id: String,
    /// `owed_to_me` or `owed_by_me`.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    pub name: String,
    #[schema(value_type = f64)]
    pub amount: Money,
    pub is_included_in_total: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_date: Option<Iso>,
    /// The due date has passed and something is still owed.
    pub is_overdue: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Iso,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Iso,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub synced_at: Option<Iso>,
}

impl DebtRecord {
    /// The record of `row` as seen at `now`.
    pub fn of(row: &DebtRow, now: Millis) -> Self {
        DebtRecord {
            id: row.id.clone(),
            user_id: row.user_id.clone(),
            kind: row.kind.clone(),
            name: row.name.clone(),
            amount: Money::from_raw(row.amount),
            is_included_in_total: row.is_included_in_total,
            due_date: row.due_date.map(Iso),
            is_overdue: is_overdue(row.due_date, row.amount, now),
            created_at: Iso(row.created_at),
            updated_at: Iso(row.updated_at),
            synced_at: row.synced_at.map(Iso),
        }
    }
}

/// A debt is overdue when its due date has passed and something is still owed.
pub fn is_overdue(due_date: Option<Millis>, amount_cents: i64, now: Millis) -> bool {
    due_date.is_some_and(|due| due < now) && amount_cents > 0
}

/// Body of POST: a new debt, or (with the id of one of the caller's debts) its replacement.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DebtBody {
    /// A client-chosen UUID (offline creation). When it names one of the caller's debts, that
    /// debt is updated instead.
    #[schema(format = Uuid)]
    id: Option<String>,
    /// `owed_to_me` or `owed_by_me`.
    #[serde(rename = "type")]
    #[schema(rename = "type", value_type = String, pattern = "^(owed_to_me|owed_by_me)$")]
    kind: Option<String>,
    /// 1–100 characters after trimming.
    #[schema(value_type = String, min_length = 1, max_length = 100)]
    name: Option<String>,
    /// 0.01 to 10^13 after rounding to cents (a numeric string is accepted too).
    #[schema(value_type = f64, minimum = 0.01, maximum = 10000000000000.0)]
    amount: Option<Money>,
    /// Default true.
    is_included_in_total: Option<bool>,
    /// ISO-8601 date or date-time; null for none.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    due_date: Option<Option<String>>,
}

/// Body of PUT: any subset of the fields; `dueDate: null` clears the due date.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DebtPatch {
    #[serde(rename = "type")]
    #[schema(rename = "type", pattern = "^(owed_to_me|owed_by_me)$")]
    kind: Option<String>,
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    #[schema(value_type = Option<f64>, minimum = 0.01, maximum = 10000000000000.0)]
    amount: Option<Money>,
    is_included_in_total: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    due_date: Option<Option<String>>,
}

/// Body of a payment.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayBody {
    /// The caller's account the money goes into (owed_to_me) or comes out of (owed_by_me).
    #[schema(value_type = String, format = Uuid)]
    account_id: Option<String>,
    /// Default: the whole remaining debt.
    #[schema(value_type = Option<f64>, minimum = 0.01, maximum = 10000000000000.0)]
    amount: Option<Money>,
    /// ISO-8601 date or date-time of the payment; default now.
    #[schema(value_type = Option<String>, format = DateTime)]
    payment_date: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DebtStats {
    #[schema(value_type = f64)]
    pub total_owed_to_me: Money,
    #[schema(value_type = f64)]
    pub total_owed_by_me: Money,
    #[schema(value_type = f64)]
    pub net_debt: Money,
    pub debts_count: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayResponse {
    pub message: String,
    pub transaction: TransactionRecord,
    #[schema(value_type = f64)]
    pub remaining_debt: Money,
}

fn is_debt_type(kind: &str) -> bool {
    matches!(kind, "owed_to_me" | "owed_by_me")
}

fn check_type(checks: &mut Checks, kind: Option<&str>, required: bool) {
    if kind.is_some() || required {
        checks.body(
            kind.is_some_and(is_debt_type),
            "type",
            "Type must be owed_to_me or owed_by_me",
        );
    }
}

fn check_name(checks: &mut Checks, name: Option<&str>, required: bool) {
    if let Some(name) = name {
        let name = name.trim();
        checks.body(!name.is_empty(), "name", "Name is required");
        checks.body(
            name.chars().count() <= MAX_NAME_CHARS,
            "name",
            &format!("Name must be at most {MAX_NAME_CHARS} characters"),
        );
    } else if required {
        checks.body(false, "name", "Name is required");
    }
}

/// An amount of at least 0.01 (after rounding) and at most 10^13.
fn check_amount(checks: &mut Checks, amount: Option<Money>, required: bool) {
    match amount {
        Some(amount) => {
            checks.body(amount.is_positive(), "amount", "Amount must be greater than 0");
            checks.body(
                amount.within_units(MAX_AMOUNT_UNITS),
                "amount",
                "Amount is out of range",
            );
        }
        None if required => {
            checks.body(false, "amount", "Amount is required");
        }
        None => {}
    }
}

/// Parses an optional ISO date field, recording a failure under `field`.
fn check_date(checks: &mut Checks, value: Option<&str>, field: &str, msg: &str) -> Option<Millis> {
    let parsed = value.and_then(parse_time);
    checks.body(value.is_none() || parsed.is_some(), field, msg);
    parsed
}

const DUE_DATE_MSG: &str = "Due date must be an ISO 8601 date";

/// The caller's debts, newest first.
#[utoipa::path(get, path = "/", tag = "debts", security(("bearer" = [])), responses(
    (status = 200, body = Vec<DebtRecord>),
    (status = 401, description = "Not authenticated", body = ErrorBody),
))]
async fn list_debts(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<Vec<DebtRecord>>> {
    let rows = debts::list(&state.db.pool, &auth.id).await?;
    let now = now_ms();
    Ok(Json(rows.iter().map(|row| DebtRecord::of(row, now)).collect()))
}

/// Totals of the caller's debts: money totals count included debts only, `debtsCount` all.
#[utoipa::path(get, path = "/stats", tag = "debts", security(("bearer" = [])), responses(
    (status = 200, body = DebtStats),
    (status = 401, description = "Not authenticated", body = ErrorBody),
))]
async fn debt_stats(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<DebtStats>> {
    let totals = debts::totals(&state.db.pool, &auth.id).await?;
    let net = totals
        .owed_to_me
        .checked_sub(totals.owed_by_me)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("debt totals overflow")))?;
    Ok(Json(DebtStats {
        total_owed_to_me: Money::from_raw(totals.owed_to_me),
        total_owed_by_me: Money::from_raw(totals.owed_by_me),
        net_debt: Money::from_raw(net),
        debts_count: totals.count,
    }))
}

/// Create a debt (201), or update the caller's debt named by `id` (200).
#[utoipa::path(post, path = "/", tag = "debts", security(("bearer" = [])), request_body = DebtBody, responses(
    (status = 201, description = "Created", body = DebtRecord),
    (status = 200, description = "The caller's debt named by `id` was updated", body = DebtRecord),
    (status = 400, description = "Validation failed", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 409, description = "Id is already in use", body = ErrorBody),
))]
async fn create_debt(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<DebtBody>,
) -> ApiResult<(StatusCode, Json<DebtRecord>)> {
    let mut checks = Checks::new();
    let id = checks.client_id(body.id.as_deref());
    check_type(&mut checks, body.kind.as_deref(), true);
    check_name(&mut checks, body.name.as_deref(), true);
    check_amount(&mut checks, body.amount, true);
    let due_date = body
        .due_date
        .as_ref()
        .map(|due| check_date(&mut checks, due.as_deref(), "dueDate", DUE_DATE_MSG));
    checks.finish()?;
    let kind = body.kind.unwrap_or_default();
    let name = body.name.unwrap_or_default().trim().to_string();
    let amount = body.amount.unwrap_or_default().raw();

    let mut tx = state.db.begin_write().await?;
    let stamp = write_stamp(&mut tx, &auth.id).await?;
    if let Some(id) = id.as_deref() {
        if let Some(existing) = debts::find(&mut *tx, &auth.id, id).await? {
            let updated = DebtRow {
                kind,
                name,
                amount,
                is_included_in_total: body.is_included_in_total.unwrap_or(existing.is_included_in_total),
                due_date: due_date.unwrap_or(existing.due_date),
                updated_at: stamp,
                ..existing
            };
            debts::update(&mut tx, &updated, stamp).await?;
            tx.commit().await?;
            return Ok((StatusCode::OK, Json(DebtRecord::of(&updated, now_ms()))));
        }
        if crate::store::id_taken_by_other(&mut *tx, "debts", &auth.id, id).await? {
            return Err(ApiError::conflict("Id is already in use"));
        }
    }
    let row = DebtRow {
        id: id.unwrap_or_else(|| Uuid::new_v4().to_string()),
        user_id: auth.id.clone(),
        kind,
        name,
        amount,
        is_included_in_total: body.is_included_in_total.unwrap_or(true),
        due_date: due_date.flatten(),
        created_at: stamp,
        updated_at: stamp,
        synced_at: None,
    };
    match debts::insert(&mut tx, &row, stamp).await {
        Ok(()) => {}
        // Another user took the id between the check and the insert.
        Err(err) if is_unique_violation(&err) => return Err(ApiError::conflict("Id is already in use")),
        Err(err) => return Err(err.into()),
    }
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(DebtRecord::of(&row, now_ms()))))
}

/// Update some fields of one of the caller's debts; `dueDate: null` clears the due date.
#[utoipa::path(put, path = "/{id}", tag = "debts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Debt id")),
    request_body = DebtPatch,
    responses(
        (status = 200, body = DebtRecord),
        (status = 400, description = "Validation failed", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "Debt not found", body = ErrorBody),
    ))]
async fn update_debt(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<DebtPatch>,
) -> ApiResult<Json<DebtRecord>> {
    let mut checks = Checks::new();
    check_type(&mut checks, body.kind.as_deref(), false);
    check_name(&mut checks, body.name.as_deref(), false);
    check_amount(&mut checks, body.amount, false);
    let due_date = body
        .due_date
        .as_ref()
        .map(|due| check_date(&mut checks, due.as_deref(), "dueDate", DUE_DATE_MSG));
    checks.finish()?;

    let mut tx = state.db.begin_write().await?;
    let stamp = write_stamp(&mut tx, &auth.id).await?;
    let existing = debts::find(&mut *tx, &auth.id, &id.to_string())
        .await?
        .ok_or_else(|| ApiError::not_found("Debt not found"))?;
    let updated = DebtRow {
        kind: body.kind.unwrap_or(existing.kind.clone()),
        name: body.name.map(|n| n.trim().to_string()).unwrap_or(existing.name.clone()),
        amount: body.amount.map(Money::raw).unwrap_or(existing.amount),
        is_included_in_total: body.is_included_in_total.unwrap_or(existing.is_included_in_total),
        due_date: due_date.unwrap_or(existing.due_date),
        updated_at: stamp,
        ..existing
    };
    debts::update(&mut tx, &updated, stamp).await?;
    tx.commit().await?;
    Ok(Json(DebtRecord::of(&updated, now_ms())))
}

/// Delete one of the caller's debts.
#[utoipa::path(delete, path = "/{id}", tag = "debts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Debt id")),
    responses(
        (status = 200, body = MessageResponse),
        (status = 400, description = "Validation failed (the id is not a UUID)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "Debt not found", body = ErrorBody),
    ))]
async fn delete_debt(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<MessageResponse>> {
    let mut tx = state.db.begin_write().await?;
    let stamp = write_stamp(&mut tx, &auth.id).await?;
    if !debts::delete(&mut tx, &auth.id, &id.to_string(), stamp).await? {
        return Err(ApiError::not_found("Debt not found"));
    }
    tx.commit().await?;
    Ok(Json(MessageResponse {
        message: "Debt deleted successfully".into(),
    }))
}

/// Pay a debt (all of it by default, or part) into or out of one of the caller's accounts: in
/// one DB transaction, an income (owed_to_me) or expense (owed_by_me) transaction with its
/// balance effect, and the debt reduced, or deleted once fully paid.
#[utoipa::path(post, path = "/{id}/pay", tag = "debts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Debt id")),
    request_body = PayBody,
    responses(
        (status = 200, body = PayResponse),
        (status = 400, description = "Validation failed / Payment amount exceeds the debt", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "Debt not found / Account not found", body = ErrorBody),
    ))]
async fn pay_debt(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PayBody>,
) -> ApiResult<Json<PayResponse>> {
    let mut checks = Checks::new();
    let account_id = match body.account_id.as_deref() {
        Some(raw) => {
            let parsed = parse_uuid(raw);
            checks.body(parsed.is_some(), "accountId", "Invalid account id");
            parsed
        }
        None => {
            checks.body(false, "accountId", "Account ID is required");
            None
        }
    };
    check_amount(&mut checks, body.amount, false);
    let payment_date = check_date(
        &mut checks,
        body.payment_date.as_deref(),
        "paymentDate",
        "Payment date must be an ISO 8601 date",
    );
    checks.finish()?;
    let account_id = account_id.unwrap_or_default();
    let id = id.to_string();

    let mut tx = state.db.begin_write().await?;
    let stamp = write_stamp(&mut tx, &auth.id).await?;
    let debt = debts::find(&mut *tx, &auth.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Debt not found"))?;
    if !accounts::exists(&mut *tx, &auth.id, &account_id).await? {
        return Err(ApiError::not_found("Account not found"));
    }
    let amount = body.amount.map(Money::raw).unwrap_or(debt.amount);
    if amount > debt.amount {
        return Err(ApiError::bad_request("Payment amount exceeds the debt"));
    }
    if amount <= 0 {
        // A debt stored at 0 (e.g. uploaded by sync) has nothing left to pay.
        return Err(ApiError::bad_request("The debt is already paid off"));
    }
    let Some(remaining) = debts::reduce(&mut tx, &auth.id, &id, amount, stamp).await? else {
        // Unreachable while writes of a user are serialized by the change stamp; kept so
        // that the conditional UPDATE alone decides.
        return Err(ApiError::bad_request("Payment amount exceeds the debt"));
    };
    if remaining == 0 {
        debts::delete(&mut tx, &auth.id, &id, stamp).await?;
    }
    let kind = if debt.kind == "owed_to_me" {
        TxnKind::Income
    } else {
        TxnKind::Expense
    };
    let row = TxnRow {
        id: Uuid::new_v4().to_string(),
        user_id: auth.id.clone(),
        account_id,
        category_id: None,
        amount,
        kind,
        date: payment_date.unwrap_or(stamp),
        description: Some(state.cipher.encrypt(&payment_description(&debt.name))),
        to_account_id: None,
        created_at: stamp,
        updated_at: stamp,
        synced_at: None,
    };
    transactions::insert_with_effect(&mut tx, &row, stamp, false).await?;
    tx.commit().await?;
    Ok(Json(PayResponse {
        message: "Debt payment processed successfully".into(),
        transaction: TransactionRecord::of(&row, &state.cipher),
        remaining_debt: Money::from_raw(remaining),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overdue_needs_a_past_due_date_and_money_owed() {
        assert!(is_overdue(Some(10), 1, 11));
        assert!(!is_overdue(Some(10), 0, 11));
        assert!(!is_overdue(Some(11), 1, 11));
        assert!(!is_overdue(None, 1, 11));
    }

    #[test]
    fn payment_description_names_the_debt() {
        assert_eq!(payment_description("Иван"), "Погашение долга: Иван");
    }
}
