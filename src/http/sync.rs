//! Sync (`/api/v1/sync`): the snapshot protocol the current mobile client calls (upload,
//! download, status, wipe) and WatermelonDB's incremental pull/push protocol.

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AuthUser;
use super::error::{ApiError, ApiResult, ErrorBody, FieldError};
use super::extract::{ApiJson, ApiQuery};
use crate::domain::time::{now_ms, Iso};
use crate::state::AppState;
use crate::store::sync::{self as spec, Incoming, Owner, Refusal, Table};
use crate::store::{take_change_stamp, tombstones, Backend, Tx};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .routes(routes!(download))
        .routes(routes!(status))
        .routes(routes!(wipe))
        .routes(routes!(pull))
        .routes(routes!(push))
}

async fn stamp_for(tx: &mut Tx, auth: &AuthUser) -> ApiResult<i64> {
    take_change_stamp(tx, &auth.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("User not found"))
}

// ---------------------------------------------------------------------------------------------
// Snapshot protocol

#[derive(Deserialize, ToSchema)]
pub struct UploadBody {
    /// `{"accounts":[…],"categories":[…],"transactions":[…],"debts":[…],"exchangeRates":[…]}`;
    /// records in camelCase or snake_case, times as ISO strings or epoch milliseconds.
    #[schema(value_type = Object)]
    data: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct Skipped {
    table: &'static str,
    id: Option<String>,
    reason: String,
}

#[derive(Serialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct AppliedCounts {
    accounts: u64,
    categories: u64,
    transactions: u64,
    debts: u64,
    exchange_rates: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadResponse {
    success: bool,
    #[schema(value_type = String, format = DateTime)]
    sync_time: Iso,
    applied: AppliedCounts,
    skipped: Vec<Skipped>,
}

/// The request's collections, each optional, each an array.
fn collections<'a>(data: &'a Map<String, Value>, keys: &[&str], location: &str) -> ApiResult<Vec<&'a Value>> {
    for key in keys {
        match data.get(*key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => return Ok(items.iter().collect()),
            Some(_) => {
                return Err(ApiError::invalid(FieldError::body(
                    format!("{location}.{key}"),
                    "Must be an array",
                )));
            }
        }
    }
    Ok(Vec::new())
}

/// Upload the device's data: a partial upsert of every record, in one DB transaction.
#[utoipa::path(post, path = "/upload", tag = "sync", security(("bearer" = [])), request_body = UploadBody, responses(
    (status = 200, body = UploadResponse),
    (status = 400, description = "Body of the wrong shape", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 500, description = "Sync failed; nothing was written", body = ErrorBody),
))]
async fn upload(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<UploadBody>,
) -> ApiResult<Json<UploadResponse>> {
    let Some(Value::Object(data)) = body.data else {
        return Err(ApiError::invalid(FieldError::body("data", "data must be an object")));
    };
    let tables: [(&'static Table, &'static str, &[&str]); 4] = [
        (&spec::ACCOUNTS, "accounts", &["accounts"]),
        (&spec::CATEGORIES, "categories", &["categories"]),
        (&spec::TRANSACTIONS, "transactions", &["transactions"]),
        (&spec::DEBTS, "debts", &["debts"]),
    ];
    let mut batches = Vec::new();
    for (table, name, keys) in tables {
        batches.push((table, name, collections(&data, keys, "data")?));
    }
    let rates = collections(&data, &["exchangeRates", "exchange_rates"], "data")?;

    let result = async {
        let mut tx = state.db.begin_write().await?;
        let stamp = stamp_for(&mut tx, &auth).await?;
        let mut applied = AppliedCounts::default();
        let mut skipped = Vec::new();
        for (table, name, records) in batches {
            for raw in records {
                match apply_snapshot_record(&mut tx, &state, &auth, table, raw, stamp).await? {
                    Ok(()) => match name {
                        "accounts" => applied.accounts += 1,
                        "categories" => applied.categories += 1,
                        "transactions" => applied.transactions += 1,
                        _ => applied.debts += 1,
                    },
                    Err(refusal) => skipped.push(Skipped {
                        table: name,
                        id: refusal.id,
                        reason: refusal.reason,
                    }),
                }
            }
        }
        for raw in rates {
            let outcome = match raw.as_object() {
                None => Err(Refusal {
                    id: None,
                    reason: "Record is not an object".into(),
                }),
                Some(record) => {
                    let id = record
                        .get("id")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_default();
                    match spec::read_record(&spec::EXCHANGE_RATES, record, id, &state.cipher) {
                        Err(refusal) => Err(refusal),
                        Ok(incoming) => match spec::upsert_exchange_rate(&mut tx, &auth.id, &incoming, stamp).await {
                            Ok(()) => Ok(()),
                            Err(Ok(refusal)) => Err(refusal),
                            Err(Err(db)) => return Err(ApiError::from(db)),
                        },
                    }
                }
            };
            match outcome {
                Ok(()) => applied.exchange_rates += 1,
                Err(refusal) => skipped.push(Skipped {
                    table: "exchangeRates",
                    id: refusal.id,
                    reason: refusal.reason,
                }),
            }
        }
        let now = now_ms();
        sqlx::query("UPDATE users SET last_sync_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&auth.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, ApiError>(UploadResponse {
            success: true,
            sync_time: Iso(now),
            applied,
            skipped,
        })
    }
    .await;
    match result {
        Ok(response) => Ok(Json(response)),
        Err(ApiError::Internal(err)) => {
            tracing::error!(error = %format!("{err:#}"), "sync upload failed");
            Err(ApiError::Failed("Sync failed", err))
        }
        Err(other) => Err(other),
    }
}

/// One uploaded record: `Ok(Ok(()))` applied, `Ok(Err(refusal))` skipped, `Err` aborts.
async fn apply_snapshot_record(
    tx: &mut Tx,
    state: &AppState,
    auth: &AuthUser,
    table: &'static Table,
    raw: &Value,
    stamp: i64,
) -> ApiResult<Result<(), Refusal>> {
    let Some(record) = raw.as_object() else {
        return Ok(Err(Refusal {
            id: None,
            reason: "Record is not an object".into(),
        }));
    };
    let Some(id) = spec::record_id(record) else {
        let raw_id = record.get("id").and_then(Value::as_str).map(str::to_string);
        return Ok(Err(Refusal {
            id: raw_id,
            reason: "Missing or invalid id".into(),
        }));
    };
    let incoming = match spec::read_record(table, record, id, &state.cipher) {
        Ok(incoming) => incoming,
        Err(refusal) => return Ok(Err(refusal)),
    };
    match spec::upsert(tx, table, &auth.id, incoming, stamp).await {
        Ok(()) => Ok(Ok(())),
        Err(Ok(refusal)) => Ok(Err(refusal)),
        Err(Err(db)) => Err(db.into()),
    }
}

/// Begins a read-only transaction that sees one consistent snapshot of the database.
async fn begin_snapshot(state: &AppState) -> Result<Tx, sqlx::Error> {
    match state.db.backend {
        Backend::Postgres => {
            state
                .db
                .pool
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await
        }
        Backend::Sqlite => state.db.pool.begin().await,
    }
}

/// A response body written piece by piece into chunks of `CHUNK` bytes. A body grown in one
/// `Vec` doubles its capacity as it grows (up to twice the body reserved, plus the copy of each
/// regrowth); chunks hold the body once.
struct ChunkedBody {
    chunks: Vec<axum::body::Bytes>,
    current: Vec<u8>,
    len: usize,
}

impl ChunkedBody {
    const CHUNK: usize = 64 * 1024;

    fn new() -> Self {
        ChunkedBody {
            chunks: Vec::new(),
            current: Vec::with_capacity(Self::CHUNK),
            len: 0,
        }
    }

    fn push(&mut self, byte: u8) {
        self.extend_from_slice(&[byte]);
    }

    fn extend_from_slice(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len();
        while !bytes.is_empty() {
            let room = Self::CHUNK - self.current.len();
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.current.extend_from_slice(now);
            bytes = rest;
            if self.current.len() == Self::CHUNK {
                let full = std::mem::replace(&mut self.current, Vec::with_capacity(Self::CHUNK));
                self.chunks.push(full.into());
            }
        }
    }

    /// The JSON response: its chunks as the body, with their total length.
    fn into_response(mut self) -> Response {
        if !self.current.is_empty() {
            self.chunks.push(std::mem::take(&mut self.current).into());
        }
        let stream = futures::stream::iter(self.chunks.into_iter().map(Ok::<_, std::io::Error>));
        (
            [
                (header::CONTENT_TYPE, "application/json".to_string()),
                (header::CONTENT_LENGTH, self.len.to_string()),
            ],
            Body::from_stream(stream),
        )
            .into_response()
    }
}

impl std::io::Write for ChunkedBody {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Appends `"key":[…]` with each item serialized straight into the body.
fn write_array<T: Serialize>(out: &mut ChunkedBody, key: &str, items: impl IntoIterator<Item = T>) -> ApiResult<()> {
    out.extend_from_slice(format!("\"{key}\":[").as_bytes());
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, &item).map_err(ApiError::internal)?;
    }
    out.push(b']');
    Ok(())
}

/// The caller's whole data, as REST answers it (snake_case records, card numbers masked).
/// Transactions are written into the body one by one as they come from the database cursor,
/// in fixed-size chunks, so a large history is held once, as the response itself.
#[utoipa::path(get, path = "/download", tag = "sync", security(("bearer" = [])), responses(
    (status = 200, description = "`{\"accounts\",\"categories\",\"transactions\",\"debts\",\"exchangeRates\",\"lastSyncAt\",\"userId\"}`", body = Object),
    (status = 401, description = "Not authenticated", body = ErrorBody),
))]
async fn download(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Response> {
    use crate::store::{accounts, categories, debts, transactions, user_rates};
    let now = now_ms();
    let mut tx = begin_snapshot(&state).await?;
    let last_sync: Option<(Option<i64>,)> = sqlx::query_as("SELECT last_sync_at FROM users WHERE id = $1")
        .bind(&auth.id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some((last_sync_at,)) = last_sync else {
        return Err(ApiError::unauthorized("User not found"));
    };
    let mut out = ChunkedBody::new();
    out.push(b'{');
    let account_rows = accounts::list(&mut *tx, &auth.id).await?;
    write_array(
        &mut out,
        "accounts",
        account_rows
            .iter()
            .map(|r| super::views::AccountRecord::of(r, &state.cipher)),
    )?;
    out.push(b',');
    let category_rows = categories::list(&mut *tx, &auth.id).await?;
    write_array(
        &mut out,
        "categories",
        category_rows.iter().map(super::categories::CategoryRecord::of),
    )?;
    out.extend_from_slice(b",\"transactions\":[");
    {
        let sql = format!(
            "SELECT {} FROM transactions WHERE user_id = $1 ORDER BY date DESC, created_at DESC, id",
            transactions::TXN_COLUMNS
        );
        let mut rows = sqlx::query(&sql).bind(&auth.id).fetch(&mut *tx);
        let mut first = true;
        while let Some(row) = rows.try_next().await? {
            if !first {
                out.push(b',');
            }
            first = false;
            let record = super::views::TransactionRecord::of(&transactions::txn_from_row(&row)?, &state.cipher);
            serde_json::to_writer(&mut out, &record).map_err(ApiError::internal)?;
        }
    }
    out.extend_from_slice(b"],");
    let debt_rows = debts::list(&mut *tx, &auth.id).await?;
    write_array(
        &mut out,
        "debts",
        debt_rows.iter().map(|r| super::debts::DebtRecord::of(r, now)),
    )?;
    out.push(b',');
    let rates = user_rates::list(&mut *tx, &auth.id).await?;
    write_array(
        &mut out,
        "exchangeRates",
        rates.into_iter().map(super::rates::UserRateView::from),
    )?;
    tx.commit().await?;
    let tail = serde_json::json!({"lastSyncAt": last_sync_at.map(Iso), "userId": auth.id});
    let tail = serde_json::to_string(&tail).map_err(ApiError::internal)?;
    out.push(b',');
    out.extend_from_slice(&tail.as_bytes()[1..]); // the object's members and closing brace
    Ok(out.into_response())
}

#[derive(Serialize, ToSchema)]
pub struct SyncCounts {
    accounts: i64,
    categories: i64,
    transactions: i64,
    debts: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusResponse {
    counts: SyncCounts,
    #[schema(value_type = Option<String>, format = DateTime)]
    last_sync_at: Option<Iso>,
    status: &'static str,
}

/// Record counts and the time of the last upload.
#[utoipa::path(get, path = "/status", tag = "sync", security(("bearer" = [])), responses(
    (status = 200, body = StatusResponse),
    (status = 401, description = "Not authenticated", body = ErrorBody),
))]
async fn status(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<StatusResponse>> {
    let row: (i64, i64, i64, i64, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM accounts WHERE user_id = $1), (SELECT COUNT(*) FROM categories WHERE user_id = $1), \
         (SELECT COUNT(*) FROM transactions WHERE user_id = $1), (SELECT COUNT(*) FROM debts WHERE user_id = $1), \
         (SELECT last_sync_at FROM users WHERE id = $1)",
    )
    .bind(&auth.id)
    .fetch_one(&state.db.pool)
    .await?;
    Ok(Json(StatusResponse {
        counts: SyncCounts {
            accounts: row.0,
            categories: row.1,
            transactions: row.2,
            debts: row.3,
        },
        last_sync_at: row.4.map(Iso),
        status: "ok",
    }))
}

#[derive(Serialize, ToSchema)]
pub struct SuccessResponse {
    success: bool,
}

/// Delete all of the caller's data and refresh tokens.
#[utoipa::path(delete, path = "/wipe", tag = "sync", security(("bearer" = [])), responses(
    (status = 200, body = SuccessResponse),
    (status = 401, description = "Not authenticated", body = ErrorBody),
))]
async fn wipe(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<SuccessResponse>> {
    let mut tx = state.db.begin_write().await?;
    let stamp = stamp_for(&mut tx, &auth).await?;
    crate::store::user_data::delete_all(&mut tx, &auth.id, stamp).await?;
    crate::store::refresh_tokens::revoke_all_for_user(&mut tx, &auth.id).await?;
    tx.commit().await?;
    Ok(Json(SuccessResponse { success: true }))
}

// ---------------------------------------------------------------------------------------------
// Incremental protocol (WatermelonDB)

const PULL_TABLES: [&Table; 5] = [
    &spec::ACCOUNTS,
    &spec::CATEGORIES,
    &spec::TRANSACTIONS,
    &spec::DEBTS,
    &spec::EXCHANGE_RATES,
];

#[derive(Deserialize, IntoParams)]
pub struct PullQuery {
    /// The `timestamp` of the previous pull (epoch ms), or `null` / absent for everything.
    last_pulled_at: Option<String>,
}

fn parse_last_pulled_at(value: Option<&str>, required: bool) -> ApiResult<Option<i64>> {
    match value.map(str::trim) {
        None | Some("") | Some("null") | Some("undefined") if !required => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(ms) if ms >= 0 => Ok(Some(ms)),
            _ => Err(ApiError::invalid(FieldError::query(
                "last_pulled_at",
                "Must be a timestamp in milliseconds",
            ))),
        },
        None => Err(ApiError::invalid(FieldError::query(
            "last_pulled_at",
            "Must be a timestamp in milliseconds",
        ))),
    }
}

/// Changes since `last_pulled_at`, as WatermelonDB's `synchronize()` expects them.
///
/// Why the returned `timestamp` makes the next pull lossless: every write to a user's synced
/// rows first takes the user's change clock (`store::take_change_stamp`, an UPDATE of the user
/// row that holds its lock until commit) and stamps the rows it writes with the new clock
/// value. So a user's writes commit one after another in stamp order. This pull reads the
/// clock and the rows in ONE snapshot (REPEATABLE READ on PostgreSQL, a read transaction on
/// SQLite): every write with a stamp ≤ the clock it sees had committed before the snapshot and
/// is in it, and every write not in it will commit with a stamp > that clock. Answering that
/// clock as `timestamp` therefore neither skips nor repeats a change on the next pull.
#[utoipa::path(get, path = "/pull", tag = "sync", security(("bearer" = [])), params(PullQuery), responses(
    (status = 200, description = "`{\"changes\":{table:{created,updated,deleted}},\"timestamp\":ms}`", body = Object),
    (status = 400, description = "Bad last_pulled_at", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
))]
async fn pull(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(query): ApiQuery<PullQuery>,
) -> ApiResult<Response> {
    let since = parse_last_pulled_at(query.last_pulled_at.as_deref(), false)?;
    let mut tx = match state.db.backend {
        Backend::Postgres => {
            state
                .db
                .pool
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?
        }
        Backend::Sqlite => state.db.pool.begin().await?,
    };
    let clock: Option<(i64,)> = sqlx::query_as("SELECT change_clock FROM users WHERE id = $1")
        .bind(&auth.id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some((clock,)) = clock else {
        return Err(ApiError::unauthorized("User not found"));
    };
    // The body is written once, row by row, straight from the database cursor.
    let mut out = ChunkedBody::new();
    out.extend_from_slice(b"{\"changes\":{");
    for (i, table) in PULL_TABLES.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!("\"{}\":{{\"created\":[", table.name).as_bytes());
        let columns = spec::select_columns(table);
        let (created_sql, updated_sql) = (
            format!(
                "SELECT {columns} FROM {} WHERE user_id = $1 AND server_updated_at > $2 AND server_created_at > $2",
                table.table
            ),
            format!(
                "SELECT {columns} FROM {} WHERE user_id = $1 AND server_updated_at > $2 AND server_created_at <= $2",
                table.table
            ),
        );
        let floor = since.unwrap_or(i64::MIN);
        write_rows(&mut tx, &state, table, &created_sql, &auth.id, floor, &mut out).await?;
        out.extend_from_slice(b"],\"updated\":[");
        if since.is_some() {
            write_rows(&mut tx, &state, table, &updated_sql, &auth.id, floor, &mut out).await?;
        }
        out.extend_from_slice(b"],\"deleted\":[");
        if let Some(since) = since {
            let mut ids = sqlx::query_as::<_, (String,)>(
                "SELECT record_id FROM sync_tombstones WHERE user_id = $1 AND table_name = $2 AND deleted_at > $3",
            )
            .bind(&auth.id)
            .bind(table.name)
            .bind(since)
            .fetch(&mut *tx);
            let mut first = true;
            while let Some((id,)) = ids.try_next().await? {
                if !first {
                    out.push(b',');
                }
                first = false;
                serde_json::to_writer(&mut out, &id).map_err(ApiError::internal)?;
            }
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(format!("}},\"timestamp\":{clock}}}").as_bytes());
    tx.commit().await?;
    Ok(out.into_response())
}

async fn write_rows(
    tx: &mut Tx,
    state: &AppState,
    table: &Table,
    sql: &str,
    user_id: &str,
    since: i64,
    out: &mut ChunkedBody,
) -> ApiResult<()> {
    let mut rows = sqlx::query(sql).bind(user_id).bind(since).fetch(&mut **tx);
    let mut first = true;
    while let Some(row) = rows.try_next().await? {
        if !first {
            out.push(b',');
        }
        first = false;
        let record = spec::raw_record(table, &row, &state.cipher)?;
        serde_json::to_writer(&mut *out, &record).map_err(ApiError::internal)?;
    }
    Ok(())
}

#[derive(Deserialize, ToSchema)]
pub struct PushBody {
    /// `{table:{"created":[raw],"updated":[raw],"deleted":[id]}}` for accounts, categories,
    /// transactions, debts and exchange_rates.
    #[schema(value_type = Object)]
    changes: Option<Value>,
}

#[derive(Deserialize, IntoParams)]
pub struct PushQuery {
    /// The `timestamp` of the pull this push is based on (epoch ms).
    last_pulled_at: Option<String>,
}

/// One table's pushed changes.
struct TableChanges<'a> {
    table: &'static Table,
    upserts: Vec<&'a Map<String, Value>>,
    deleted: Vec<String>,
}

fn read_push_changes(changes: &Value) -> ApiResult<Vec<TableChanges<'_>>> {
    let Some(changes) = changes.as_object() else {
        return Err(ApiError::invalid(FieldError::body(
            "changes",
            "changes must be an object",
        )));
    };
    let mut out = Vec::new();
    for table in PULL_TABLES {
        let Some(entry) = changes.get(table.name).filter(|v| !v.is_null()) else {
            continue;
        };
        let path = format!("changes.{}", table.name);
        let entry = entry
            .as_object()
            .ok_or_else(|| ApiError::invalid(FieldError::body(&path, "Must be an object")))?;
        let mut upserts = Vec::new();
        for kind in ["created", "updated"] {
            match entry.get(kind) {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        let record = item.as_object().ok_or_else(|| {
                            ApiError::invalid(FieldError::body(format!("{path}.{kind}.{i}"), "Must be an object"))
                        })?;
                        upserts.push(record);
                    }
                }
                Some(_) => {
                    return Err(ApiError::invalid(FieldError::body(
                        format!("{path}.{kind}"),
                        "Must be an array",
                    )))
                }
            }
        }
        let deleted = match entry.get("deleted") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        ApiError::invalid(FieldError::body(format!("{path}.deleted.{i}"), "Must be an id"))
                    })
                })
                .collect::<ApiResult<Vec<_>>>()?,
            Some(_) => {
                return Err(ApiError::invalid(FieldError::body(
                    format!("{path}.deleted"),
                    "Must be an array",
                )))
            }
        };
        out.push(TableChanges {
            table,
            upserts,
            deleted,
        });
    }
    Ok(out)
}

/// Splits an exchange-rate sync id `USD_EUR` into its pair.
fn rate_pair(id: &str) -> Option<(String, String)> {
    let (from, to) = id.split_once('_')?;
    let ok = |c: &str| c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic());
    (ok(from) && ok(to)).then(|| (from.to_ascii_uppercase(), to.to_ascii_uppercase()))
}

/// The owner and change time of a pushed id.
async fn pushed_owner(tx: &mut Tx, table: &Table, user_id: &str, id: &str) -> ApiResult<Owner> {
    if table.table != "user_exchange_rates" {
        return Ok(spec::owner_of(tx, table, user_id, id).await?);
    }
    let Some((from, to)) = rate_pair(id) else {
        return Err(ApiError::invalid(FieldError::body(
            "changes.exchange_rates",
            format!("Invalid exchange rate id {id}"),
        )));
    };
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT server_updated_at FROM user_exchange_rates WHERE user_id = $1 AND from_currency = $2 AND to_currency = $3",
    )
    .bind(user_id)
    .bind(&from)
    .bind(&to)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match row {
        Some((server_updated_at,)) => Owner::Caller { server_updated_at },
        None => Owner::Nobody,
    })
}

/// Apply a device's changes; all or nothing, refused when the server changed a pushed record
/// after `last_pulled_at`.
#[utoipa::path(post, path = "/push", tag = "sync", security(("bearer" = [])), params(PushQuery), request_body = PushBody, responses(
    (status = 200, description = "Applied", body = Object),
    (status = 400, description = "Body of the wrong shape or an invalid record", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 403, description = "A record belongs to another user", body = ErrorBody),
    (status = 409, description = "Sync conflict: pull and try again", body = ErrorBody),
))]
async fn push(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(query): ApiQuery<PushQuery>,
    ApiJson(body): ApiJson<PushBody>,
) -> ApiResult<Json<Value>> {
    let since = parse_last_pulled_at(query.last_pulled_at.as_deref(), true)?.unwrap_or(0);
    let Some(changes) = body.changes else {
        return Err(ApiError::invalid(FieldError::body("changes", "changes is required")));
    };
    let changes = read_push_changes(&changes)?;

    // Read and check every record before writing anything.
    let mut incoming: Vec<(&'static Table, Incoming)> = Vec::new();
    for change in &changes {
        for record in &change.upserts {
            let id = if change.table.table == "user_exchange_rates" {
                record.get("id").and_then(Value::as_str).unwrap_or("").to_string()
            } else {
                spec::record_id(record).ok_or_else(|| {
                    ApiError::invalid(FieldError::body(
                        format!("changes.{}", change.table.name),
                        "Every record needs a UUID id",
                    ))
                })?
            };
            let mut parsed = spec::read_record(change.table, record, id, &state.cipher).map_err(|r| {
                ApiError::invalid(FieldError::body(
                    format!("changes.{}", change.table.name),
                    format!("{}: {}", r.id.unwrap_or_default(), r.reason),
                ))
            })?;
            if change.table.table == "user_exchange_rates" && parsed.get("from_currency").is_none() {
                // The pair may be given only by the id.
                if let Some((from, to)) = rate_pair(&parsed.id) {
                    parsed
                        .values
                        .push((&spec::EXCHANGE_RATES.fields[0], spec::Val::Text(from)));
                    parsed
                        .values
                        .push((&spec::EXCHANGE_RATES.fields[1], spec::Val::Text(to)));
                }
            }
            incoming.push((change.table, parsed));
        }
    }

    let mut tx = state.db.begin_write().await?;
    let stamp = stamp_for(&mut tx, &auth).await?;
    let pushed_ids = incoming.iter().map(|(t, r)| (*t, r.id.clone())).chain(
        changes
            .iter()
            .flat_map(|c| c.deleted.iter().map(move |id| (c.table, id.clone()))),
    );
    for (table, id) in pushed_ids.collect::<Vec<_>>() {
        match pushed_owner(&mut tx, table, &auth.id, &id).await? {
            Owner::Other => return Err(ApiError::forbidden("Sync push touches a record of another user")),
            Owner::Caller { server_updated_at } if server_updated_at > since => {
                return Err(ApiError::conflict("Sync conflict: pull and try again"));
            }
            _ => {}
        }
        let deleted_since: Option<(i64,)> = sqlx::query_as(
            "SELECT deleted_at FROM sync_tombstones WHERE user_id = $1 AND table_name = $2 AND record_id = $3 AND deleted_at > $4",
        )
        .bind(&auth.id)
        .bind(table.name)
        .bind(&id)
        .bind(since)
        .fetch_optional(&mut *tx)
        .await?;
        if deleted_since.is_some() {
            return Err(ApiError::conflict("Sync conflict: pull and try again"));
        }
    }

    for (table, record) in incoming {
        let outcome = if table.table == "user_exchange_rates" {
            spec::upsert_exchange_rate(&mut tx, &auth.id, &record, stamp).await
        } else {
            spec::upsert(&mut tx, table, &auth.id, record, stamp).await
        };
        match outcome {
            Ok(()) => {}
            Err(Ok(refusal)) => {
                let message = format!("{}: {}", refusal.id.unwrap_or_default(), refusal.reason);
                return Err(ApiError::invalid(FieldError::body(
                    format!("changes.{}", table.name),
                    message,
                )));
            }
            Err(Err(db)) => return Err(db.into()),
        }
    }
    // Deletions, children first.
    for change in changes.iter().rev() {
        for id in &change.deleted {
            delete_synced(&mut tx, change.table, &auth.id, id, stamp).await?;
        }
    }
    tx.commit().await?;
    Ok(Json(Value::Object(Map::new())))
}

/// Deletes one synced row by its sync id, with tombstones for it and for what goes with it.
async fn delete_synced(tx: &mut Tx, table: &'static Table, user_id: &str, id: &str, stamp: i64) -> ApiResult<()> {
    match table.table {
        "user_exchange_rates" => {
            let Some((from, to)) = rate_pair(id) else { return Ok(()) };
            let pair = format!("{from}_{to}");
            tombstones::record(
                tx,
                "user_exchange_rates",
                user_id,
                stamp,
                "from_currency || '_' || to_currency = $3",
                Some(&pair),
            )
            .await?;
            sqlx::query(
                "DELETE FROM user_exchange_rates WHERE user_id = $1 AND from_currency = $2 AND to_currency = $3",
            )
            .bind(user_id)
            .bind(&from)
            .bind(&to)
            .execute(&mut **tx)
            .await?;
            return Ok(());
        }
        "accounts" => {
            crate::store::accounts::delete_transactions_of(tx, user_id, id, stamp).await?;
        }
        "categories" => {
            crate::store::categories::detach_transactions(tx, user_id, id, stamp).await?;
        }
        _ => {}
    }
    tombstones::delete_row(tx, table.table, user_id, id, stamp).await?;
    Ok(())
}
