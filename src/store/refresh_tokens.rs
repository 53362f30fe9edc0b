//! Refresh tokens: stored as SHA-256 hashes with a family id; rotated on every use, and a
//! rotated token presented again revokes all of its user's tokens.

use sqlx::Row;

use super::Tx;
use crate::auth::tokens::{hash_refresh_token, new_refresh_token};
use crate::domain::time::{now_ms, Millis};

/// Creates a refresh token for a user (a new family unless one is given); answers the token.
pub async fn issue(tx: &mut Tx, user_id: &str, family_id: Option<&str>, ttl_ms: i64) -> Result<String, sqlx::Error> {
    let token = new_refresh_token();
    let now = now_ms();
    let family = family_id
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    sqlx::query(
        "INSERT INTO refresh_tokens (id, user_id, token_hash, family_id, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(user_id)
    .bind(hash_refresh_token(&token))
    .bind(family)
    .bind(now.saturating_add(ttl_ms))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(token)
}

/// The outcome of presenting a refresh token.
pub enum Rotation {
    /// The token was valid; here are the user and the new token.
    Rotated {
        user_id: String,
        token: String,
    },
    Unknown,
    Expired,
    /// An already-rotated or revoked token: every token of the user has been revoked.
    Reused,
}

/// Rotates `token`: marks it used and issues its successor in the same family. Of concurrent
/// rotations of one token at most one succeeds (the conditional UPDATE decides).
pub async fn rotate(tx: &mut Tx, token: &str, ttl_ms: i64) -> Result<Rotation, sqlx::Error> {
    let hash = hash_refresh_token(token);
    let row =
        sqlx::query("SELECT id, user_id, family_id, expires_at, revoked_at FROM refresh_tokens WHERE token_hash = $1")
            .bind(&hash)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(row) = row else {
        return Ok(Rotation::Unknown);
    };
    let id: String = row.try_get("id")?;
    let user_id: String = row.try_get("user_id")?;
    let family_id: String = row.try_get("family_id")?;
    let expires_at: Millis = row.try_get("expires_at")?;
    let revoked_at: Option<Millis> = row.try_get("revoked_at")?;
    let now = now_ms();
    if revoked_at.is_some() {
        revoke_all_for_user(tx, &user_id).await?;
        return Ok(Rotation::Reused);
    }
    if expires_at <= now {
        return Ok(Rotation::Expired);
    }
    let claimed = sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(&id)
        .execute(&mut **tx)
        .await?;
    if claimed.rows_affected() != 1 {
        // Another request rotated it first: treat as reuse.
        revoke_all_for_user(tx, &user_id).await?;
        return Ok(Rotation::Reused);
    }
    let new_token = issue(tx, &user_id, Some(&family_id), ttl_ms).await?;
    sqlx::query("UPDATE refresh_tokens SET replaced_by = $1 WHERE id = $2")
        .bind(hash_refresh_token(&new_token))
        .bind(&id)
        .execute(&mut **tx)
        .await?;
    Ok(Rotation::Rotated {
        user_id,
        token: new_token,
    })
}

/// Revokes one token (logout). Unknown tokens are ignored.
pub async fn revoke(tx: &mut Tx, token: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(hash_refresh_token(token))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Revokes every live token of a user; answers how many.
pub async fn revoke_all_for_user(tx: &mut Tx, user_id: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// Ends every session of a user except the one `keep` belongs to (when it is a live token of
/// theirs): the other sessions' tokens are deleted, not marked revoked, so a device presenting
/// one later gets a plain 401 instead of tripping reuse detection (which would also end the
/// kept session). Answers how many tokens were deleted.
pub async fn end_other_sessions(tx: &mut Tx, user_id: &str, keep: Option<&str>) -> Result<u64, sqlx::Error> {
    let kept_family: Option<(String,)> = match keep {
        Some(token) => {
            sqlx::query_as(
                "SELECT family_id FROM refresh_tokens \
                 WHERE user_id = $1 AND token_hash = $2 AND revoked_at IS NULL AND expires_at > $3",
            )
            .bind(user_id)
            .bind(hash_refresh_token(token))
            .bind(now_ms())
            .fetch_optional(&mut **tx)
            .await?
        }
        None => None,
    };
    let done = match kept_family {
        Some((family,)) => {
            sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1 AND family_id <> $2")
                .bind(user_id)
                .bind(family)
                .execute(&mut **tx)
                .await?
        }
        None => {
            sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut **tx)
                .await?
        }
    };
    Ok(done.rows_affected())
}

/// Deletes every refresh token of a user (live or not); answers how many.
pub async fn delete_all_for_user(tx: &mut Tx, user_id: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}
