//! Free-tier limits: a user without premium may hold a limited number of accounts and custom
//! categories (`FREE_ACCOUNT_LIMIT`, `FREE_CATEGORY_LIMIT`; 0 means unlimited).

use super::auth::AuthUser;
use super::error::{ApiError, ApiResult};

/// 403 naming the limit when a free user who already holds `current` items of `what` may not
/// add one more.
pub fn ensure_within_free_limit(auth: &AuthUser, current: i64, limit: u32, what: &str) -> ApiResult<()> {
    if auth.is_premium || limit == 0 || current < i64::from(limit) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "Free plan limit reached: at most {limit} {what}. Upgrade to premium for more."
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(premium: bool) -> AuthUser {
        AuthUser {
            id: "u".into(),
            is_premium: premium,
            is_guest: false,
        }
    }

    #[test]
    fn limits() {
        assert!(ensure_within_free_limit(&user(false), 2, 3, "accounts").is_ok());
        let err = ensure_within_free_limit(&user(false), 3, 3, "accounts").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Free plan limit reached: at most 3 accounts. Upgrade to premium for more."
        );
        assert!(ensure_within_free_limit(&user(true), 30, 3, "accounts").is_ok());
        assert!(ensure_within_free_limit(&user(false), 30, 0, "accounts").is_ok());
    }
}
