//! Users: creation together with their default data, lookups, and the plan (premium) status.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::{flag, Tx};
use crate::domain::defaults::{DEFAULT_ACCOUNT, DEFAULT_CATEGORIES};
use crate::domain::time::{now_ms, Millis};

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub password_hash: Option<String>,
    pub display_name: String,
    pub is_premium: bool,
    pub premium_expires_at: Option<Millis>,
    pub is_guest: bool,
    pub google_id: Option<String>,
    pub last_login: Option<Millis>,
    pub last_sync_at: Option<Millis>,
    pub created_at: Millis,
}

impl User {
    /// Premium while `is_premium` and the expiry is unset or in the future.
    pub fn has_premium(&self, now: Millis) -> bool {
        has_premium(self.is_premium, self.premium_expires_at, now)
    }
}

pub fn has_premium(is_premium: bool, expires_at: Option<Millis>, now: Millis) -> bool {
    is_premium && expires_at.is_none_or(|at| at > now)
}

pub const USER_COLUMNS: &str = "id, email, password_hash, display_name, is_premium, premium_expires_at, is_guest, \
     google_id, last_login, last_sync_at, created_at";

pub fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        display_name: row.try_get("display_name")?,
        is_premium: flag(row, "is_premium")?,
        premium_expires_at: row.try_get("premium_expires_at")?,
        is_guest: flag(row, "is_guest")?,
        google_id: row.try_get("google_id")?,
        last_login: row.try_get("last_login")?,
        last_sync_at: row.try_get("last_sync_at")?,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn find_by_id<'e, E: Executor<'e, Database = Any>>(db: E, id: &str) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn find_by_email<'e, E: Executor<'e, Database = Any>>(
    db: E,
    email: &str,
) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1"))
        .bind(email)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn find_by_google_id<'e, E: Executor<'e, Database = Any>>(
    db: E,
    google_id: &str,
) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE google_id = $1"))
        .bind(google_id)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: Option<&'a str>,
    pub display_name: &'a str,
    pub is_guest: bool,
    pub google_id: Option<&'a str>,
}

/// Inserts the user and their default data (one account, five system categories) in `tx`.
/// A duplicate email surfaces as a unique-violation error.
pub async fn create_with_defaults(tx: &mut Tx, new: NewUser<'_>) -> Result<User, sqlx::Error> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, display_name, is_guest, google_id, change_clock, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7)",
    )
    .bind(&id)
    .bind(new.email)
    .bind(new.password_hash)
    .bind(new.display_name)
    .bind(new.is_guest as i64)
    .bind(new.google_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    create_default_account(tx, &id, now).await?;
    create_default_categories(tx, &id, now).await?;
    Ok(User {
        id,
        email: new.email.to_string(),
        password_hash: new.password_hash.map(str::to_string),
        display_name: new.display_name.to_string(),
        is_premium: false,
        premium_expires_at: None,
        is_guest: new.is_guest,
        google_id: new.google_id.map(str::to_string),
        last_login: None,
        last_sync_at: None,
        created_at: now,
    })
}

async fn create_default_account(tx: &mut Tx, user_id: &str, stamp: Millis) -> Result<(), sqlx::Error> {
    let a = &DEFAULT_ACCOUNT;
    sqlx::query(
        "INSERT INTO accounts (id, user_id, name, type, balance, currency, exchange_rate, color, icon, is_default, \
         is_included_in_total, created_at, updated_at, server_created_at, server_updated_at) \
         VALUES ($1, $2, $3, $4, 0, $5, 100000000, $6, $7, 1, 1, $8, $8, $8, $8)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(user_id)
    .bind(a.name)
    .bind(a.kind)
    .bind(a.currency)
    .bind(a.color)
    .bind(a.icon)
    .bind(stamp)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts the five system categories for a user.
pub async fn create_default_categories(tx: &mut Tx, user_id: &str, stamp: Millis) -> Result<(), sqlx::Error> {
    for c in &DEFAULT_CATEGORIES {
        sqlx::query(
            "INSERT INTO categories (id, user_id, name, type, icon, color, is_system, created_at, updated_at, \
             server_created_at, server_updated_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7, $7, $7)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(user_id)
        .bind(c.name)
        .bind(c.kind)
        .bind(c.icon)
        .bind(c.color)
        .bind(stamp)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub async fn set_last_login<'e, E: Executor<'e, Database = Any>>(db: E, id: &str) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query("UPDATE users SET last_login = $1, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Links a Google account to an existing user that has none yet; answers whether it did.
pub async fn link_google_id<'e, E: Executor<'e, Database = Any>>(
    db: E,
    id: &str,
    google_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE users SET google_id = $1, updated_at = $2 WHERE id = $3 AND google_id IS NULL")
        .bind(google_id)
        .bind(now_ms())
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_display_name<'e, E: Executor<'e, Database = Any>>(
    db: E,
    id: &str,
    display_name: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET display_name = $1, updated_at = $2 WHERE id = $3")
        .bind(display_name)
        .bind(now_ms())
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn set_password_hash<'e, E: Executor<'e, Database = Any>>(
    db: E,
    id: &str,
    password_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(password_hash)
        .bind(now_ms())
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Gives a guest an email and password (their data stays). Answers false when the user is no
/// longer a guest; a taken email surfaces as a unique-violation error.
pub async fn upgrade_guest<'e, E: Executor<'e, Database = Any>>(
    db: E,
    id: &str,
    email: &str,
    password_hash: &str,
    display_name: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE users SET email = $1, password_hash = $2, display_name = $3, is_guest = 0, updated_at = $4 \
         WHERE id = $5 AND is_guest = 1",
    )
    .bind(email)
    .bind(password_hash)
    .bind(display_name)
    .bind(now_ms())
    .bind(id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a user; every row they own goes with them (foreign keys cascade).
pub async fn delete<'e, E: Executor<'e, Database = Any>>(db: E, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets the plan of the user with this email (the admin command); answers false when there is
/// no such user.
pub async fn set_premium_by_email<'e, E: Executor<'e, Database = Any>>(
    db: E,
    email: &str,
    is_premium: bool,
    expires_at: Option<Millis>,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE users SET is_premium = $1, premium_expires_at = $2, updated_at = $3 WHERE email = $4")
            .bind(is_premium as i64)
            .bind(expires_at)
            .bind(now_ms())
            .bind(email)
            .execute(db)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// The authenticated caller's plan facts, read on every authenticated request.
pub struct Caller {
    pub is_premium: bool,
    pub premium_expires_at: Option<Millis>,
    pub is_guest: bool,
    /// The user's change clock: it moves with every write to their data.
    pub change_clock: i64,
}

pub async fn find_caller<'e, E: Executor<'e, Database = Any>>(db: E, id: &str) -> Result<Option<Caller>, sqlx::Error> {
    let row = sqlx::query("SELECT is_premium, premium_expires_at, is_guest, change_clock FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    row.map(|row| {
        Ok(Caller {
            is_premium: flag(&row, "is_premium")?,
            premium_expires_at: row.try_get("premium_expires_at")?,
            is_guest: flag(&row, "is_guest")?,
            change_clock: row.try_get("change_clock")?,
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::has_premium;

    #[test]
    fn premium_rules() {
        assert!(!has_premium(false, None, 10));
        assert!(has_premium(true, None, 10));
        assert!(has_premium(true, Some(11), 10));
        assert!(!has_premium(true, Some(10), 10));
    }
}
