//! Exchange-rate arithmetic, pure and exact: any pair of currencies from base rates (direct,
//! inverse or cross) as a rust_decimal quotient, and the rounding rule answers are given with.

use rust_decimal::{Decimal, RoundingStrategy};

/// Decimals every answered rate keeps at least.
pub const MIN_DECIMALS: u32 = 8;
/// Significant digits every answered rate keeps at least.
pub const MIN_SIGNIFICANT_DIGITS: u32 = 10;

/// The exact value of one unit of `from` in units of `to`, given both currencies' rates against
/// a common base (`1 base = from_base from = to_base to`). `None` for a non-positive base rate.
pub fn exact_cross_rate(from_base: Decimal, to_base: Decimal) -> Option<Decimal> {
    if from_base <= Decimal::ZERO || to_base <= Decimal::ZERO {
        return None;
    }
    to_base.checked_div(from_base)
}

/// Rounds a rate for answering: 8 decimals, or more when 8 decimals would leave fewer than 10
/// significant digits (e.g. VND→USD 0.0000379… keeps 14 decimals), half away from zero;
/// trailing zeros dropped (an exact 1.08 stays 1.08). Never more than rust_decimal's 28.
pub fn round_rate(value: Decimal) -> Decimal {
    if value.is_zero() {
        return Decimal::ZERO;
    }
    let dp = decimals_for(value);
    value
        .round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// The number of decimals [`round_rate`] keeps for `value` (non-zero).
pub fn decimals_for(value: Decimal) -> u32 {
    let exponent = decimal_exponent(value);
    // The leading digit sits at 10^exponent, so d decimals give exponent + 1 + d digits.
    let needed = i64::from(MIN_SIGNIFICANT_DIGITS) - 1 - exponent;
    let dp = needed.max(i64::from(MIN_DECIMALS));
    u32::try_from(dp).unwrap_or(Decimal::MAX_SCALE).min(Decimal::MAX_SCALE)
}

/// floor(log10(|value|)) of a non-zero decimal, from its digits (no floating point).
pub fn decimal_exponent(value: Decimal) -> i64 {
    let digits = value.mantissa().unsigned_abs().checked_ilog10().map_or(0, i64::from);
    digits - i64::from(value.scale())
}

/// The answered rate from `from` to `to`: exact quotient, then [`round_rate`].
pub fn cross_rate(from_base: Decimal, to_base: Decimal) -> Option<Decimal> {
    exact_cross_rate(from_base, to_base).map(round_rate)
}

/// Significant digits of a non-zero decimal as written (trailing zeros dropped).
pub fn significant_digits(value: Decimal) -> u32 {
    let normalized = value.normalize();
    let mantissa = normalized.mantissa().unsigned_abs();
    mantissa.checked_ilog10().map_or(1, |d| d + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn exponents() {
        assert_eq!(decimal_exponent(d("1.08")), 0);
        assert_eq!(decimal_exponent(d("92.5")), 1);
        assert_eq!(decimal_exponent(d("0.92")), -1);
        assert_eq!(decimal_exponent(d("0.0000379")), -5);
        assert_eq!(decimal_exponent(d("26000")), 4);
        assert_eq!(decimal_exponent(d("1.000")), 0);
    }

    #[test]
    fn direct_inverse_and_cross() {
        // ECB: 1 EUR = 1.08 USD = 0.85 GBP.
        let (eur, usd, gbp) = (d("1"), d("1.08"), d("0.85"));
        assert_eq!(cross_rate(eur, usd), Some(d("1.08")));
        // 1/1.08 = 0.925925925925…: 10 significant digits.
        assert_eq!(cross_rate(usd, eur), Some(d("0.9259259259")));
        // 0.85/1.08 = 0.787037037…
        assert_eq!(cross_rate(usd, gbp), Some(d("0.7870370370")));
        // 1.08/0.85 = 1.270588235294…: 9 decimals make 10 significant digits.
        assert_eq!(cross_rate(gbp, usd), Some(d("1.270588235")));
        assert_eq!(cross_rate(usd, usd), Some(d("1")));
        assert_eq!(cross_rate(d("0"), usd), None);
        assert_eq!(cross_rate(usd, d("-1")), None);
    }

    #[test]
    fn small_rates_keep_ten_significant_digits() {
        // 1 USD = 26385 VND: 1 VND = 0.0000379003221527…
        let rate = cross_rate(d("26385"), d("1")).unwrap();
        assert_eq!(rate, d("0.00003790032215"));
        assert_eq!(significant_digits(rate), 10);
        // Large rates keep 8 decimals (more than 10 digits).
        assert_eq!(cross_rate(d("1"), d("26385.123456789")), Some(d("26385.12345679")));
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(round_rate(d("12.000000005")), d("12.00000001"));
        assert_eq!(round_rate(d("12.000000004999")), d("12"));
        assert_eq!(round_rate(d("0.99999999999")), d("1"));
    }

    fn base_rate() -> impl Strategy<Value = Decimal> {
        // Realistic base rates: 1e-6 .. 1e7 with up to 9 significant digits, as providers
        // publish them.
        (1i64..=999_999_999, 0u32..=14)
            .prop_map(|(m, scale)| Decimal::new(m, scale))
            .prop_filter("realistic", |r| *r >= d("0.000001") && *r <= d("10000000"))
    }

    fn relative_error(a: Decimal, b: Decimal) -> Decimal {
        ((a - b) / b).abs()
    }

    proptest! {
        #[test]
        fn rate_and_inverse_multiply_to_one(a in base_rate(), b in base_rate()) {
            let ab = cross_rate(a, b).unwrap();
            let ba = cross_rate(b, a).unwrap();
            // Each side is within half a unit of its 10th significant digit.
            prop_assert!(relative_error(ab * ba, Decimal::ONE) <= d("0.000000002"), "{ab} * {ba}");
        }

        #[test]
        fn cross_rates_chain(a in base_rate(), b in base_rate(), c in base_rate()) {
            let ab = cross_rate(a, b).unwrap();
            let bc = cross_rate(b, c).unwrap();
            let ac = cross_rate(a, c).unwrap();
            prop_assert!(relative_error(ab * bc, ac) <= d("0.000000003"), "{ab} * {bc} vs {ac}");
        }

        #[test]
        fn answers_keep_eight_decimals_and_ten_digits(a in base_rate(), b in base_rate()) {
            let exact = exact_cross_rate(a, b).unwrap();
            let rounded = cross_rate(a, b).unwrap();
            // Never further from the exact quotient than half of the 8th decimal…
            prop_assert!((rounded - exact).abs() <= d("0.000000005"));
            // …nor than half of the 10th significant digit.
            prop_assert!(relative_error(rounded, exact) <= d("0.000000001"));
            prop_assert!(rounded.scale() <= decimals_for(exact));
            prop_assert_eq!(round_rate(rounded), rounded);
        }

        #[test]
        fn direct_rate_is_the_base_rate(a in base_rate()) {
            // From the base itself, the answer is the published rate (rounded only when the
            // provider published more precision than the answer keeps).
            prop_assert_eq!(cross_rate(Decimal::ONE, a).unwrap(), round_rate(a));
        }
    }
}
