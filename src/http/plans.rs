//! Plans: what a free user may hold (`FREE_ACCOUNT_LIMIT`, `FREE_CATEGORY_LIMIT`) and the 403
//! that names the limit. Premium users (see `users::has_premium`) have no limits.

use super::auth::AuthUser;
use super::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Allows creating one more `what` (a plural noun: "accounts") when the caller is premium, the
/// limit is 0 (unlimited) or they hold fewer than `limit`; else 403 naming the limit.
pub fn ensure_within_limit(auth: &AuthUser, current_count: i64, limit: u32, what: &str) -> ApiResult<()> {
    if auth.is_premium || limit == 0 || current_count < i64::from(limit) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "Free plan limit reached: at most {limit} {what}. Upgrade to premium for more."
    )))
}

/// The free-plan limit on accounts, for a caller who holds `current_count` of them.
pub fn ensure_account_limit(state: &AppState, auth: &AuthUser, current_count: i64) -> ApiResult<()> {
    ensure_within_limit(auth, current_count, state.settings.free_account_limit, "accounts")
}

/// The free-plan limit on custom (non-system) categories.
pub fn ensure_category_limit(state: &AppState, auth: &AuthUser, current_custom_count: i64) -> ApiResult<()> {
    ensure_within_limit(
        auth,
        current_custom_count,
        state.settings.free_category_limit,
        "custom categories",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(is_premium: bool) -> AuthUser {
        AuthUser {
            id: "u".into(),
            is_premium,
            is_guest: false,
            change_clock: 0,
        }
    }

    #[test]
    fn limits() {
        assert!(ensure_within_limit(&user(false), 2, 3, "accounts").is_ok());
        let err = ensure_within_limit(&user(false), 3, 3, "accounts").err();
        match err {
            Some(ApiError::Forbidden(msg)) => assert_eq!(
                msg,
                "Free plan limit reached: at most 3 accounts. Upgrade to premium for more."
            ),
            other => panic!("expected 403, got {other:?}"),
        }
        assert!(ensure_within_limit(&user(true), 30, 3, "accounts").is_ok());
        assert!(ensure_within_limit(&user(false), 30, 0, "accounts").is_ok());
    }
}
