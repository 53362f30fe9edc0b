//! Balance effects of transactions: income adds to its account, expense subtracts, a transfer
//! moves money from `account_id` to `to_account_id`. Pure arithmetic on integer cents.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnKind {
    Income,
    Expense,
    Transfer,
}

impl TxnKind {
    pub fn parse(value: &str) -> Option<TxnKind> {
        match value {
            "income" => Some(TxnKind::Income),
            "expense" => Some(TxnKind::Expense),
            "transfer" => Some(TxnKind::Transfer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TxnKind::Income => "income",
            TxnKind::Expense => "expense",
            TxnKind::Transfer => "transfer",
        }
    }
}

/// The balance changes (account id, delta in cents) one transaction causes.
pub fn balance_effects(
    kind: TxnKind,
    amount: i64,
    account_id: &str,
    to_account_id: Option<&str>,
) -> Vec<(String, i64)> {
    match kind {
        TxnKind::Income => vec![(account_id.to_string(), amount)],
        TxnKind::Expense => vec![(account_id.to_string(), -amount)],
        TxnKind::Transfer => {
            let mut effects = vec![(account_id.to_string(), -amount)];
            if let Some(to) = to_account_id {
                effects.push((to.to_string(), amount));
            }
            effects
        }
    }
}

/// Undoing `old` and applying `new`, merged per account, without zero deltas, ordered by account
/// id (a fixed lock order, so concurrent writers cannot deadlock on account rows).
pub fn net_effects(old: &[(String, i64)], new: &[(String, i64)]) -> Vec<(String, i64)> {
    let mut merged: BTreeMap<String, i64> = BTreeMap::new();
    for (account, delta) in old {
        *merged.entry(account.clone()).or_default() -= delta;
    }
    for (account, delta) in new {
        *merged.entry(account.clone()).or_default() += delta;
    }
    merged.into_iter().filter(|(_, d)| *d != 0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn effects_by_kind() {
        assert_eq!(balance_effects(TxnKind::Income, 5, "a", None), vec![("a".into(), 5)]);
        assert_eq!(balance_effects(TxnKind::Expense, 5, "a", None), vec![("a".into(), -5)]);
        assert_eq!(
            balance_effects(TxnKind::Transfer, 5, "a", Some("b")),
            vec![("a".into(), -5), ("b".into(), 5)]
        );
    }

    #[test]
    fn update_reverses_then_applies() {
        let old = balance_effects(TxnKind::Expense, 100, "a", None);
        let new = balance_effects(TxnKind::Transfer, 30, "b", Some("a"));
        assert_eq!(net_effects(&old, &new), vec![("a".into(), 130), ("b".into(), -30)]);
        assert!(net_effects(&old, &old).is_empty());
    }

    proptest! {
        #[test]
        fn transfers_conserve_money(amount in 1i64..1_000_000_000, old_amount in 1i64..1_000_000_000) {
            let old = balance_effects(TxnKind::Transfer, old_amount, "a", Some("b"));
            let new = balance_effects(TxnKind::Transfer, amount, "b", Some("c"));
            let total: i64 = net_effects(&old, &new).iter().map(|(_, d)| d).sum();
            prop_assert_eq!(total, 0);
        }
    }
}
