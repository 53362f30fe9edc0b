//! Exact fixed-point numbers: money with 2 decimals and rates with 8, kept as integers of the
//! smallest unit (cents, 1e-8) so that storage, sums and aggregates are exact on every database.

use std::fmt;
use std::str::FromStr;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A decimal number with `DP` decimals, stored as an integer count of 10^-DP units.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fixed<const DP: u32>(i64);

/// Money: 2 decimals, stored as integer minor units (cents).
pub type Money = Fixed<2>;
/// Exchange rates and percentages: 8 decimals.
pub type Rate = Fixed<8>;

/// Largest absolute value a single amount may have (10^13 units).
pub const MAX_AMOUNT_UNITS: i64 = 10_000_000_000_000;
/// Largest absolute value a stored balance or rate may have (10^15 units): far from i64's limit
/// even after adding amounts, so no arithmetic in SQL can overflow.
pub const MAX_STORED_UNITS: i64 = 1_000_000_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("must be a number")]
    NotANumber,
    #[error("is out of range")]
    OutOfRange,
}

impl<const DP: u32> Fixed<DP> {
    pub const ZERO: Self = Fixed(0);

    /// From the raw integer of smallest units (as stored).
    pub const fn from_raw(raw: i64) -> Self {
        Fixed(raw)
    }

    /// The raw integer of smallest units (as stored).
    pub const fn raw(self) -> i64 {
        self.0
    }

    pub fn from_units(units: i64) -> Option<Self> {
        units.checked_mul(10i64.pow(DP)).map(Fixed)
    }

    /// Rounds half away from zero to `DP` decimals; fails beyond [`MAX_STORED_UNITS`].
    pub fn from_decimal(value: Decimal) -> Result<Self, NumberError> {
        let rounded = value.round_dp_with_strategy(DP, RoundingStrategy::MidpointAwayFromZero);
        if rounded.abs() > Decimal::from(MAX_STORED_UNITS) {
            return Err(NumberError::OutOfRange);
        }
        let scaled = rounded * Decimal::from(10i64.pow(DP));
        scaled.to_i64().map(Fixed).ok_or(NumberError::OutOfRange)
    }

    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, DP)
    }

    /// Parses a decimal written in plain or scientific notation, rounding to `DP` decimals.
    pub fn parse(text: &str) -> Result<Self, NumberError> {
        Self::from_decimal(parse_decimal(text)?)
    }

    /// Whether |self| ≤ `units` whole units.
    pub fn within_units(self, units: i64) -> bool {
        Self::from_units(units).is_some_and(|limit| self.0.abs() <= limit.0)
    }

    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Fixed)
    }

    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).map(Fixed)
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }
}

/// Parses plain (`12.50`) or scientific (`1.25e1`) decimal text; rejects NaN, infinities and
/// values beyond what a decimal can hold.
pub fn parse_decimal(text: &str) -> Result<Decimal, NumberError> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 {
        return Err(if text.is_empty() {
            NumberError::NotANumber
        } else {
            NumberError::OutOfRange
        });
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        return Err(NumberError::NotANumber);
    }
    let parsed = if text.contains(['e', 'E']) {
        Decimal::from_scientific(text)
    } else {
        Decimal::from_str(text)
    };
    parsed.map_err(|err| {
        let msg = err.to_string().to_ascii_lowercase();
        if msg.contains("overflow") || msg.contains("exceeds") || msg.contains("scale") || msg.contains("large") {
            NumberError::OutOfRange
        } else {
            NumberError::NotANumber
        }
    })
}

/// Reads a JSON number or numeric string as a decimal.
pub fn decimal_from_json(value: &serde_json::Value) -> Result<Decimal, NumberError> {
    match value {
        serde_json::Value::Number(n) => parse_decimal(&n.to_string()),
        serde_json::Value::String(s) => parse_decimal(s),
        _ => Err(NumberError::NotANumber),
    }
}

/// A decimal as an exact JSON number (`12.5`, `100`), never through binary floating point.
pub fn decimal_to_json(value: Decimal) -> serde_json::Number {
    let text = value.normalize().to_string();
    serde_json::Number::from_str(&text).unwrap_or_else(|_| serde_json::Number::from(0))
}

/// Serializes a decimal as an exact JSON number.
pub fn serialize_decimal<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    decimal_to_json(*value).serialize(serializer)
}

impl<const DP: u32> fmt::Debug for Fixed<DP> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_decimal())
    }
}

impl<const DP: u32> fmt::Display for Fixed<DP> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_decimal().normalize())
    }
}

impl<const DP: u32> Serialize for Fixed<DP> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        decimal_to_json(self.to_decimal()).serialize(serializer)
    }
}

impl<'de, const DP: u32> Deserialize<'de> for Fixed<DP> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let decimal = decimal_from_json(&value).map_err(|e| match e {
            NumberError::NotANumber => de::Error::custom("must be a number"),
            NumberError::OutOfRange => de::Error::custom("is out of range"),
        })?;
        Fixed::from_decimal(decimal).map_err(|_| de::Error::custom("is out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(Money::parse("12.345").unwrap(), Money::from_raw(1235));
        assert_eq!(Money::parse("-12.345").unwrap(), Money::from_raw(-1235));
        assert_eq!(Money::parse("12.344").unwrap(), Money::from_raw(1234));
        assert_eq!(Money::parse("0.005").unwrap(), Money::from_raw(1));
    }

    #[test]
    fn tenths_add_up_exactly() {
        let tenth = Money::parse("0.1").unwrap();
        let sum = (0..10).fold(Money::ZERO, |acc, _| acc.checked_add(tenth).unwrap());
        assert_eq!(sum, Money::from_units(1).unwrap());
        assert_eq!(sum.to_string(), "1");
    }

    #[test]
    fn holds_large_amounts() {
        let big = Money::parse("9999999999999.99").unwrap();
        assert_eq!(big.raw(), 999_999_999_999_999);
        assert_eq!(big.to_string(), "9999999999999.99");
        assert!(big.within_units(10_000_000_000_000));
        assert_eq!(serde_json::to_string(&big).unwrap(), "9999999999999.99");
    }

    #[test]
    fn rejects_non_numbers_and_huge_values() {
        for bad in ["NaN", "nan", "Infinity", "-inf", "abc", "", "1e400", "1..2", "0x10"] {
            assert!(Money::parse(bad).is_err(), "{bad} should be rejected");
        }
        assert_eq!(Money::parse("1e400"), Err(NumberError::OutOfRange));
        assert!(Money::parse("1e20").is_err());
        assert_eq!(Money::parse("1.5e2").unwrap().to_string(), "150");
    }

    #[test]
    fn json_in_and_out() {
        let m: Money = serde_json::from_str("12.50").unwrap();
        assert_eq!(m.raw(), 1250);
        let m: Money = serde_json::from_str("\"12.50\"").unwrap();
        assert_eq!(m.raw(), 1250);
        assert!(serde_json::from_str::<Money>("\"abc\"").is_err());
        assert!(serde_json::from_str::<Money>("1e400").is_err());
        assert!(serde_json::from_str::<Money>("true").is_err());
        assert_eq!(serde_json::to_string(&Money::from_raw(-5)).unwrap(), "-0.05");
        let r = Rate::parse("1.234567891").unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), "1.23456789");
    }

    proptest! {
        #[test]
        fn cents_round_trip_through_text(raw in -MAX_STORED_UNITS * 100..MAX_STORED_UNITS * 100) {
            let m = Money::from_raw(raw);
            prop_assert_eq!(Money::parse(&m.to_string()).unwrap(), m);
            let json = serde_json::to_string(&m).unwrap();
            prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
        }

        #[test]
        fn sum_of_cents_is_exact(n in 1usize..2000) {
            let cent = Money::parse("0.01").unwrap();
            let sum = (0..n).fold(Money::ZERO, |acc, _| acc.checked_add(cent).unwrap());
            prop_assert_eq!(sum.raw(), n as i64);
        }
    }
}
