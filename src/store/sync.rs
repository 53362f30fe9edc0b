//! Synced tables described once (columns, their JSON spellings and kinds) so that both sync
//! protocols read client records, upsert them partially and write raw rows from one definition.

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{tombstones, Tx};
use crate::crypto::{mask_card_number, FieldCipher};
use crate::domain::money::{decimal_from_json, decimal_to_json, Money, Rate};
use crate::domain::time::{now_ms, parse_iso};

/// How a column is read from a client record and written to a raw row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// Text that must be one of these values.
    OneOf(&'static [&'static str]),
    /// A reference that must be a UUID (else the record is refused).
    Ref,
    /// A reference that becomes null when it is not a UUID (or not the user's).
    SoftRef,
    Money,
    Rate,
    Bool,
    /// Epoch milliseconds; accepts ISO strings too.
    Time,
    Int,
    /// Stored encrypted.
    Secret,
    /// Stored encrypted, answered masked; a masked value sent back is ignored.
    Card,
    /// Three letters, stored upper-case.
    Currency,
}

#[derive(Debug)]
pub struct Field {
    pub column: &'static str,
    pub camel: &'static str,
    pub kind: Kind,
    /// Needed to create a new record.
    pub required: bool,
}

const fn f(column: &'static str, camel: &'static str, kind: Kind, required: bool) -> Field {
    Field {
        column,
        camel,
        kind,
        required,
    }
}

pub struct Table {
    /// The table in the database.
    pub table: &'static str,
    /// Its name in the sync protocols.
    pub name: &'static str,
    pub fields: &'static [Field],
}

pub const ACCOUNT_TYPES: &[&str] = &["cash", "card", "bank", "savings", "debt", "credit"];
pub const TXN_TYPES: &[&str] = &["income", "expense", "transfer"];
pub const CATEGORY_TYPES: &[&str] = &["income", "expense"];
pub const DEBT_TYPES: &[&str] = &["owed_to_me", "owed_by_me"];

pub const ACCOUNTS: Table = Table {
    table: "accounts",
    name: "accounts",
    fields: &[
        f("name", "name", Kind::Text, true),
        f("type", "type", Kind::OneOf(ACCOUNT_TYPES), true),
        f("balance", "balance", Kind::Money, false),
        f("currency", "currency", Kind::Currency, false),
        f("exchange_rate", "exchangeRate", Kind::Rate, false),
        f("card_number", "cardNumber", Kind::Card, false),
        f("color", "color", Kind::Text, false),
        f("icon", "icon", Kind::Text, false),
        f("is_default", "isDefault", Kind::Bool, false),
        f("is_included_in_total", "isIncludedInTotal", Kind::Bool, false),
        f("target_amount", "targetAmount", Kind::Money, false),
        f("linked_account_id", "linkedAccountId", Kind::SoftRef, false),
        f("saved_amount", "savedAmount", Kind::Money, false),
        f("credit_start_date", "creditStartDate", Kind::Time, false),
        f("credit_term", "creditTerm", Kind::Int, false),
        f("credit_rate", "creditRate", Kind::Rate, false),
        f(
            "credit_payment_type",
            "creditPaymentType",
            Kind::OneOf(&["annuity", "differentiated"]),
            false,
        ),
        f("credit_initial_amount", "creditInitialAmount", Kind::Money, false),
        f("created_at", "createdAt", Kind::Time, false),
        f("updated_at", "updatedAt", Kind::Time, false),
    ],
};

pub const CATEGORIES: Table = Table {
    table: "categories",
    name: "categories",
    fields: &[
        f("name", "name", Kind::Text, true),
        f("type", "type", Kind::OneOf(CATEGORY_TYPES), true),
        f("icon", "icon", Kind::Text, false),
        f("color", "color", Kind::Text, false),
        f("created_at", "createdAt", Kind::Time, false),
        f("updated_at", "updatedAt", Kind::Time, false),
    ],
};

pub const TRANSACTIONS: Table = Table {
    table: "transactions",
    name: "transactions",
    fields: &[
        f("amount", "amount", Kind::Money, true),
        f("type", "type", Kind::OneOf(TXN_TYPES), true),
        f("account_id", "accountId", Kind::Ref, true),
        f("category_id", "categoryId", Kind::SoftRef, false),
        f("description", "description", Kind::Secret, false),
        f("date", "date", Kind::Time, false),
        f("to_account_id", "toAccountId", Kind::SoftRef, false),
        f("created_at", "createdAt", Kind::Time, false),
        f("updated_at", "updatedAt", Kind::Time, false),
    ],
};

pub const DEBTS: Table = Table {
    table: "debts",
    name: "debts",
    fields: &[
        f("type", "type", Kind::OneOf(DEBT_TYPES), true),
        f("name", "name", Kind::Text, true),
        f("amount", "amount", Kind::Money, true),
        f("is_included_in_total", "isIncludedInTotal", Kind::Bool, false),
        f("due_date", "dueDate", Kind::Time, false),
        f("created_at", "createdAt", Kind::Time, false),
        f("updated_at", "updatedAt", Kind::Time, false),
    ],
};

pub const EXCHANGE_RATES: Table = Table {
    table: "user_exchange_rates",
    name: "exchange_rates",
    fields: &[
        f("from_currency", "fromCurrency", Kind::Currency, true),
        f("to_currency", "toCurrency", Kind::Currency, true),
        f("rate", "rate", Kind::Rate, true),
        f("mode", "mode", Kind::OneOf(&["auto", "manual"]), false),
        f("created_at", "createdAt", Kind::Time, false),
        f("updated_at", "updatedAt", Kind::Time, false),
    ],
};

/// The record tables in the order they are applied (parents before children).
pub const RECORD_TABLES: [&Table; 4] = [&ACCOUNTS, &CATEGORIES, &TRANSACTIONS, &DEBTS];

/// A column value ready to bind.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Text(String),
    Int(i64),
}

/// A client record read against a table: its id and the columns it carries.
#[derive(Debug)]
pub struct Incoming {
    pub id: String,
    pub values: Vec<(&'static Field, Val)>,
}

impl Incoming {
    pub fn get(&self, column: &str) -> Option<&Val> {
        self.values.iter().find(|(f, _)| f.column == column).map(|(_, v)| v)
    }

    fn set(&mut self, column: &str, value: Val) {
        if let Some(slot) = self.values.iter_mut().find(|(f, _)| f.column == column) {
            slot.1 = value;
        }
    }
}

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub id: Option<String>,
    pub reason: String,
}

fn refuse(id: Option<&str>, reason: impl Into<String>) -> Refusal {
    Refusal {
        id: id.map(str::to_string),
        reason: reason.into(),
    }
}

/// Reads the id of a record (`id`), which must be a UUID.
pub fn record_id(record: &Map<String, Value>) -> Option<String> {
    record
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| uuid::Uuid::parse_str(s.trim()).ok())
        .map(|u| u.to_string())
}

/// Reads the columns a client record carries, in either spelling. Missing fields are absent
/// (a partial upsert keeps their stored value); `null` clears an optional field.
pub fn read_record(
    table: &'static Table,
    record: &Map<String, Value>,
    id: String,
    cipher: &FieldCipher,
) -> Result<Incoming, Refusal> {
    let mut values = Vec::new();
    for field in table.fields {
        let raw = record.get(field.column).or_else(|| record.get(field.camel));
        let Some(raw) = raw else { continue };
        let value = match read_value(field, raw, cipher) {
            Ok(Some(v)) => v,
            Ok(None) => continue,
            Err(msg) => return Err(refuse(Some(&id), msg)),
        };
        if value == Val::Null && field.required {
            return Err(refuse(Some(&id), format!("Field {} cannot be null", field.column)));
        }
        values.push((field, value));
    }
    Ok(Incoming { id, values })
}

/// `Ok(None)`: the value is to be ignored (a masked card number sent back).
fn read_value(field: &Field, raw: &Value, cipher: &FieldCipher) -> Result<Option<Val>, String> {
    let name = field.column;
    if raw.is_null() {
        return Ok(Some(Val::Null));
    }
    let bad = || format!("Invalid value for {name}");
    let val = match field.kind {
        Kind::Text => Val::Text(raw.as_str().ok_or_else(bad)?.to_string()),
        Kind::OneOf(allowed) => {
            let s = raw.as_str().ok_or_else(bad)?;
            if !allowed.contains(&s) {
                return Err(format!("Invalid {name}: {s}"));
            }
            Val::Text(s.to_string())
        }
        Kind::Ref => {
            let s = raw.as_str().ok_or_else(bad)?;
            Val::Text(uuid::Uuid::parse_str(s.trim()).map_err(|_| bad())?.to_string())
        }
        Kind::SoftRef => match raw.as_str().and_then(|s| uuid::Uuid::parse_str(s.trim()).ok()) {
            Some(u) => Val::Text(u.to_string()),
            None => Val::Null,
        },
        Kind::Money => {
            let d = decimal_from_json(raw).map_err(|_| bad())?;
            Val::Int(Money::from_decimal(d).map_err(|_| bad())?.raw())
        }
        Kind::Rate => {
            let d = decimal_from_json(raw).map_err(|_| bad())?;
            Val::Int(Rate::from_decimal(d).map_err(|_| bad())?.raw())
        }
        Kind::Bool => match raw {
            Value::Bool(b) => Val::Int(*b as i64),
            Value::Number(n) if n.to_string() == "0" || n.to_string() == "1" => Val::Int((n.to_string() == "1") as i64),
            Value::String(s) if s == "true" || s == "false" => Val::Int((s == "true") as i64),
            _ => return Err(bad()),
        },
        Kind::Time => match raw {
            Value::Number(n) => Val::Int(n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).ok_or_else(bad)?),
            Value::String(s) => Val::Int(parse_iso(s).map(|(ms, _)| ms).ok_or_else(bad)?),
            _ => return Err(bad()),
        },
        Kind::Int => match raw {
            Value::Number(n) => Val::Int(n.as_i64().ok_or_else(bad)?),
            Value::String(s) => Val::Int(s.trim().parse().map_err(|_| bad())?),
            _ => return Err(bad()),
        },
        Kind::Secret => Val::Text(cipher.encrypt(raw.as_str().ok_or_else(bad)?)),
        Kind::Card => {
            let s = raw.as_str().ok_or_else(bad)?;
            if s.starts_with('*') {
                return Ok(None);
            }
            Val::Text(cipher.encrypt(s))
        }
        Kind::Currency => {
            let s = raw.as_str().ok_or_else(bad)?.trim();
            if s.len() != 3 || !s.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(bad());
            }
            Val::Text(s.to_ascii_uppercase())
        }
    };
    Ok(Some(val))
}

fn bind<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    value: &'q Val,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    match value {
        Val::Null => query.bind(None::<String>),
        Val::Text(s) => query.bind(s.as_str()),
        Val::Int(i) => query.bind(*i),
    }
}

/// Who holds a row id, if anyone.
pub enum Owner {
    Nobody,
    Caller { server_updated_at: i64 },
    Other,
}

pub async fn owner_of(tx: &mut Tx, table: &Table, user_id: &str, id: &str) -> Result<Owner, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT user_id, server_updated_at FROM {} WHERE id = $1",
        table.table
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match row {
        None => Owner::Nobody,
        Some(row) if row.try_get::<String, _>("user_id")? == user_id => Owner::Caller {
            server_updated_at: row.try_get("server_updated_at")?,
        },
        Some(_) => Owner::Other,
    })
}

async fn exists_for_user(tx: &mut Tx, table: &str, user_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query(&format!("SELECT 1 FROM {table} WHERE id = $1 AND user_id = $2"))
            .bind(id)
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?
            .is_some(),
    )
}

/// Upserts one record of a record table for the user, taking its values as the client sent
/// them (no balance effects). `Err(Ok(refusal))` means the record was refused and nothing of it
/// was written; `Err(Err(db))` is a database failure.
pub async fn upsert(
    tx: &mut Tx,
    table: &'static Table,
    user_id: &str,
    mut record: Incoming,
    stamp: i64,
) -> Result<(), Result<Refusal, sqlx::Error>> {
    let id = record.id.clone();
    let owner = owner_of(tx, table, user_id, &id).await.map_err(Err)?;
    if matches!(owner, Owner::Other) {
        return Err(Ok(refuse(Some(&id), "Id belongs to another user")));
    }
    // References must be the caller's: an unknown account refuses a transaction; an unknown
    // category or target account becomes null.
    if table.table == "transactions" {
        if let Some(Val::Text(account)) = record.get("account_id").cloned() {
            if !exists_for_user(tx, "accounts", user_id, &account).await.map_err(Err)? {
                return Err(Ok(refuse(Some(&id), "Unknown account")));
            }
        }
        for (column, parent) in [("category_id", "categories"), ("to_account_id", "accounts")] {
            if let Some(Val::Text(reference)) = record.get(column).cloned() {
                if !exists_for_user(tx, parent, user_id, &reference).await.map_err(Err)? {
                    record.set(column, Val::Null);
                }
            }
        }
    }
    match owner {
        Owner::Caller { .. } => {
            let mut sql = format!("UPDATE {} SET server_updated_at = $1", table.table);
            for (i, (field, _)) in record.values.iter().enumerate() {
                sql.push_str(&format!(", {} = ${}", field.column, i + 2));
            }
            let n = record.values.len();
            sql.push_str(&format!(" WHERE id = ${} AND user_id = ${}", n + 2, n + 3));
            let mut query = sqlx::query(&sql).bind(stamp);
            for (_, value) in &record.values {
                query = bind(query, value);
            }
            query.bind(&id).bind(user_id).execute(&mut **tx).await.map_err(Err)?;
        }
        _ => {
            if let Some(missing) = table
                .fields
                .iter()
                .find(|f| f.required && record.get(f.column).is_none())
            {
                return Err(Ok(refuse(
                    Some(&id),
                    format!("Missing required field: {}", missing.column),
                )));
            }
            let now = now_ms();
            let mut columns = vec!["id", "user_id", "server_created_at", "server_updated_at"];
            let mut values: Vec<Val> = vec![
                Val::Text(id.clone()),
                Val::Text(user_id.to_string()),
                Val::Int(stamp),
                Val::Int(stamp),
            ];
            for (field, value) in &record.values {
                columns.push(field.column);
                values.push(value.clone());
            }
            for column in ["created_at", "updated_at", "date"] {
                let has_column = table.fields.iter().any(|f| f.column == column);
                if has_column && record.get(column).is_none_or(|v| *v == Val::Null) {
                    let fallback = match (column, record.get("created_at")) {
                        ("date", Some(Val::Int(created))) => *created,
                        _ => now,
                    };
                    if let Some(pos) = columns.iter().position(|c| *c == column) {
                        values[pos] = Val::Int(fallback);
                    } else {
                        columns.push(column);
                        values.push(Val::Int(fallback));
                    }
                }
            }
            let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({})",
                table.table,
                columns.join(", "),
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for value in &values {
                query = bind(query, value);
            }
            query.execute(&mut **tx).await.map_err(Err)?;
        }
    }
    tombstones::forget(tx, table.table, user_id, &id).await.map_err(Err)?;
    Ok(())
}

/// Upserts a user exchange rate by its currency pair (devices name it `FROM_TO`).
pub async fn upsert_exchange_rate(
    tx: &mut Tx,
    user_id: &str,
    record: &Incoming,
    stamp: i64,
) -> Result<(), Result<Refusal, sqlx::Error>> {
    let text = |column: &str| match record.get(column) {
        Some(Val::Text(s)) => Some(s.clone()),
        _ => None,
    };
    let (Some(from), Some(to)) = (text("from_currency"), text("to_currency")) else {
        return Err(Ok(refuse(
            Some(&record.id),
            "Missing required field: from_currency/to_currency",
        )));
    };
    if from == to {
        return Err(Ok(refuse(Some(&record.id), "Currencies must differ")));
    }
    let Some(Val::Int(rate)) = record.get("rate").cloned() else {
        return Err(Ok(refuse(Some(&record.id), "Missing required field: rate")));
    };
    if rate <= 0 {
        return Err(Ok(refuse(Some(&record.id), "Rate must be greater than 0")));
    }
    let mode = text("mode").unwrap_or_else(|| "manual".into());
    let now = now_ms();
    let updated_at = match record.get("updated_at") {
        Some(Val::Int(t)) => *t,
        _ => now,
    };
    sqlx::query(
        "INSERT INTO user_exchange_rates (id, user_id, from_currency, to_currency, rate, mode, created_at, updated_at, \
         server_created_at, server_updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
         ON CONFLICT (user_id, from_currency, to_currency) DO UPDATE SET rate = excluded.rate, mode = excluded.mode, \
         updated_at = excluded.updated_at, server_updated_at = excluded.server_updated_at",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(user_id)
    .bind(&from)
    .bind(&to)
    .bind(rate)
    .bind(&mode)
    .bind(now)
    .bind(updated_at)
    .bind(stamp)
    .execute(&mut **tx)
    .await
    .map_err(Err)?;
    tombstones::forget(tx, "user_exchange_rates", user_id, &format!("{from}_{to}"))
        .await
        .map_err(Err)?;
    Ok(())
}

/// The column list to select for a table's raw rows.
pub fn select_columns(table: &Table) -> String {
    let mut columns = vec!["id"];
    columns.extend(table.fields.iter().map(|f| f.column));
    columns.extend(["server_created_at", "server_updated_at"]);
    columns.join(", ")
}

/// A stored row as a WatermelonDB raw record: snake_case columns, times in epoch ms, money as
/// exact numbers, card numbers masked, descriptions decrypted.
pub fn raw_record(table: &Table, row: &AnyRow, cipher: &FieldCipher) -> Result<Map<String, Value>, sqlx::Error> {
    let mut out = Map::new();
    let id: String = if table.table == "user_exchange_rates" {
        format!(
            "{}_{}",
            row.try_get::<String, _>("from_currency")?,
            row.try_get::<String, _>("to_currency")?
        )
    } else {
        row.try_get("id")?
    };
    out.insert("id".into(), Value::String(id));
    for field in table.fields {
        let c = field.column;
        let value = match field.kind {
            Kind::Money => row
                .try_get::<Option<i64>, _>(c)?
                .map(|v| Value::Number(decimal_to_json(Money::from_raw(v).to_decimal()))),
            Kind::Rate => row
                .try_get::<Option<i64>, _>(c)?
                .map(|v| Value::Number(decimal_to_json(Rate::from_raw(v).to_decimal()))),
            Kind::Bool => row.try_get::<Option<i64>, _>(c)?.map(|v| Value::Bool(v != 0)),
            Kind::Time | Kind::Int => row.try_get::<Option<i64>, _>(c)?.map(|v| Value::Number(v.into())),
            Kind::Secret => cipher
                .decrypt_opt(row.try_get::<Option<String>, _>(c)?.as_deref())
                .map(Value::String),
            Kind::Card => cipher
                .decrypt_opt(row.try_get::<Option<String>, _>(c)?.as_deref())
                .map(|card| Value::String(mask_card_number(&card))),
            _ => row.try_get::<Option<String>, _>(c)?.map(Value::String),
        };
        out.insert(c.into(), value.unwrap_or(Value::Null));
    }
    Ok(out)
}
