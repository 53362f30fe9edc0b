//! Statistics arithmetic: sums of cents converted at exchange rates, kept exact with
//! rust_decimal (BIGINT cents × 1e-8 rates would overflow in SQL) and rounded once, at the end.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Serialize, Serializer};

use super::money::decimal_to_json;

/// A running money total in currency units; answered rounded to cents, half away from zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Total(Decimal);

/// A total grew beyond what a decimal can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a statistics total is out of range")]
pub struct TotalOverflow;

impl Total {
    /// Adds `cents` converted at `rate_raw` (1e-8 units).
    pub fn add_converted(&mut self, cents: i64, rate_raw: i64) -> Result<(), TotalOverflow> {
        let product = Decimal::new(cents, 2)
            .checked_mul(Decimal::new(rate_raw, 8))
            .ok_or(TotalOverflow)?;
        self.add_decimal(product)
    }

    /// Adds `cents` as they are.
    pub fn add_cents(&mut self, cents: i64) -> Result<(), TotalOverflow> {
        self.add_decimal(Decimal::new(cents, 2))
    }

    /// Adds an amount of currency units.
    pub fn add_decimal(&mut self, value: Decimal) -> Result<(), TotalOverflow> {
        self.0 = self.0.checked_add(value).ok_or(TotalOverflow)?;
        Ok(())
    }

    /// `self − other` of the two rounded totals, so that a difference agrees with the two
    /// figures answered beside it.
    pub fn minus(self, other: Total) -> Result<Total, TotalOverflow> {
        self.rounded()
            .checked_sub(other.rounded())
            .map(Total)
            .ok_or(TotalOverflow)
    }

    /// The total rounded to cents.
    pub fn rounded(self) -> Decimal {
        self.0.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
    }
}

impl Serialize for Total {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        decimal_to_json(self.rounded()).serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_exactly_and_rounds_once() {
        let mut t = Total::default();
        // 0.01 at a rate of 0.5, three times: 0.015 → 0.02 (not 3 × 0.01).
        for _ in 0..3 {
            t.add_converted(1, 50_000_000).unwrap();
        }
        assert_eq!(serde_json::to_string(&t).unwrap(), "0.02");
        let mut big = Total::default();
        big.add_converted(999_999_999_999_999, 100_000_000).unwrap();
        big.add_converted(999_999_999_999_999, 100_000_000).unwrap();
        assert_eq!(serde_json::to_string(&big).unwrap(), "19999999999999.98");
    }

    #[test]
    fn differences() {
        let mut a = Total::default();
        a.add_cents(1000).unwrap();
        let mut b = Total::default();
        b.add_cents(1250).unwrap();
        assert_eq!(serde_json::to_string(&a.minus(b).unwrap()).unwrap(), "-2.5");
        // 1902.1358 − 340.6235 shows as 1902.14 − 340.62 = 1561.52, not 1561.51.
        let mut income = Total::default();
        income.add_converted(1001, 9_012_345_678).unwrap();
        income.add_cents(100_000).unwrap();
        let mut expense = Total::default();
        expense.add_converted(100, 9_012_345_678).unwrap();
        expense.add_cents(25_050).unwrap();
        assert_eq!(
            serde_json::to_string(&income.minus(expense).unwrap()).unwrap(),
            "1561.52"
        );
    }
}
