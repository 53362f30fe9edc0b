//! Credit (loan) arithmetic: the monthly payment of an annuity or differentiated loan and its
//! month-by-month repayment schedule, exact to the cent with rust_decimal.

use chrono::{DateTime, Months, TimeZone, Utc};
use rust_decimal::{Decimal, MathematicalOps, RoundingStrategy};

use super::time::{Millis, DAY_MS};

/// Longest accepted credit term, in months (100 years): bounds the schedule's length.
pub const MAX_TERM_MONTHS: i64 = 1200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentType {
    Annuity,
    Differentiated,
}

impl PaymentType {
    pub fn parse(value: &str) -> Option<PaymentType> {
        match value {
            "annuity" => Some(PaymentType::Annuity),
            "differentiated" => Some(PaymentType::Differentiated),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentType::Annuity => "annuity",
            PaymentType::Differentiated => "differentiated",
        }
    }
}

/// The terms of a loan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loan {
    /// The amount borrowed, in cents (positive).
    pub principal: i64,
    /// The yearly interest rate in percent (`12.5` means 12.5 % a year).
    pub annual_rate: Decimal,
    /// The number of monthly payments (≥ 1).
    pub months: u32,
    pub kind: PaymentType,
}

/// One monthly payment of a schedule; money in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installment {
    pub month: u32,
    pub date: Millis,
    pub payment: i64,
    pub principal: i64,
    pub interest: i64,
    /// What is still owed after this payment.
    pub remaining: i64,
}

/// Rounds a decimal amount of currency units to whole cents, half away from zero.
fn to_cents(value: Decimal) -> i64 {
    use rust_decimal::prelude::ToPrimitive;
    let rounded = value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    (rounded * Decimal::ONE_HUNDRED).to_i64().unwrap_or(i64::MAX)
}

fn from_cents(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}

impl Loan {
    /// The monthly interest rate `r = rate / 100 / 12`.
    fn monthly_rate(&self) -> Decimal {
        self.annual_rate / Decimal::ONE_HUNDRED / Decimal::from(12)
    }

    fn months_decimal(&self) -> Decimal {
        Decimal::from(self.months.max(1))
    }

    /// The monthly payment in cents: annuity `P·r(1+r)^n/((1+r)^n−1)` (rate 0 → `P/n`);
    /// differentiated: the first payment `P/n + P·r`.
    pub fn monthly_payment(&self) -> i64 {
        let p = from_cents(self.principal);
        let n = self.months_decimal();
        let r = self.monthly_rate();
        match self.kind {
            PaymentType::Annuity => to_cents(annuity_payment(p, r, self.months.max(1))),
            PaymentType::Differentiated => to_cents(p / n + p * r),
        }
    }

    /// Every payment of the loan, payment k dated k months after `start`. Each payment is
    /// rounded to cents; the last one absorbs the rounding so that the principal parts add up
    /// to exactly the principal and the remaining debt ends at exactly 0.
    pub fn schedule(&self, start: Millis) -> Vec<Installment> {
        let months = self.months.max(1);
        let p = from_cents(self.principal);
        let n = self.months_decimal();
        let r = self.monthly_rate();
        let annuity = to_cents(annuity_payment(p, r, months));
        let mut remaining = self.principal;
        let mut rows = Vec::with_capacity(months as usize);
        for month in 1..=months {
            let interest = to_cents(from_cents(remaining) * r);
            let principal = if month == months {
                remaining
            } else {
                let payment = match self.kind {
                    PaymentType::Annuity => annuity,
                    PaymentType::Differentiated => to_cents(p / n + from_cents(remaining) * r),
                };
                (payment - interest).clamp(0, remaining)
            };
            remaining -= principal;
            rows.push(Installment {
                month,
                date: add_months(start, month),
                payment: principal + interest,
                principal,
                interest,
                remaining,
            });
        }
        rows
    }
}

/// `P·r/(1−(1+r)^−n)`, the annuity payment written so that no intermediate value overflows
/// (when `(1+r)^n` is beyond a decimal, the payment is `P·r` to within far less than a cent).
fn annuity_payment(p: Decimal, r: Decimal, months: u32) -> Decimal {
    if r.is_zero() {
        return p / Decimal::from(months);
    }
    let growth = (Decimal::ONE + r).checked_powi(i64::from(months));
    let shrink = growth
        .and_then(|g| Decimal::ONE.checked_div(g))
        .unwrap_or(Decimal::ZERO);
    let denominator = Decimal::ONE - shrink;
    if denominator <= Decimal::ZERO {
        return p / Decimal::from(months);
    }
    p * r / denominator
}

/// The same moment `months` calendar months later (the day is clamped to the month's end).
pub fn add_months(start: Millis, months: u32) -> Millis {
    let Some(start_dt): Option<DateTime<Utc>> = Utc.timestamp_millis_opt(start).single() else {
        return start.saturating_add(i64::from(months) * 30 * DAY_MS);
    };
    start_dt
        .checked_add_months(Months::new(months))
        .map(|dt| dt.timestamp_millis())
        .unwrap_or_else(|| start.saturating_add(i64::from(months) * 30 * DAY_MS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn loan(principal: i64, rate: &str, months: u32, kind: PaymentType) -> Loan {
        Loan {
            principal,
            annual_rate: rate.parse().unwrap(),
            months,
            kind,
        }
    }

    #[test]
    fn annuity_payment_matches_the_formula() {
        // 100 000 at 12 % a year over 12 months: 8 884.88 a month.
        let l = loan(10_000_000, "12", 12, PaymentType::Annuity);
        assert_eq!(l.monthly_payment(), 888_488);
        let rows = l.schedule(0);
        assert_eq!(rows.len(), 12);
        assert_eq!(rows[0].interest, 100_000);
        assert_eq!(rows[0].principal, 788_488);
        assert_eq!(rows[11].remaining, 0);
    }

    #[test]
    fn zero_rate_divides_evenly() {
        let l = loan(100_000, "0", 3, PaymentType::Annuity);
        assert_eq!(l.monthly_payment(), 33_333);
        let rows = l.schedule(0);
        assert_eq!(
            rows.iter().map(|r| r.payment).collect::<Vec<_>>(),
            vec![33_333, 33_333, 33_334]
        );
        assert!(rows.iter().all(|r| r.interest == 0));
    }

    #[test]
    fn differentiated_first_payment() {
        // 120 000 at 12 % over 12 months: 10 000 + 1 200.
        let l = loan(12_000_000, "12", 12, PaymentType::Differentiated);
        assert_eq!(l.monthly_payment(), 1_120_000);
        let rows = l.schedule(0);
        assert_eq!(rows[0].payment, 1_120_000);
        assert_eq!(rows[1].payment, 1_110_000);
        assert_eq!(rows[11].payment, 1_010_000);
    }

    #[test]
    fn extreme_terms_do_not_overflow() {
        let l = loan(1_000_000_000_000_000, "100", 1200, PaymentType::Annuity);
        let rows = l.schedule(0);
        assert_eq!(rows.last().unwrap().remaining, 0);
        assert_eq!(l.monthly_payment(), rows[0].payment);
    }

    #[test]
    fn months_are_calendar_months() {
        // 2025-01-31 + 1 month = 2025-02-28; + 2 months = 2025-03-31.
        let start = 1_738_281_600_000; // 2025-01-31T00:00:00Z
        assert_eq!(crate::domain::time::to_day(add_months(start, 1)), "2025-02-28");
        assert_eq!(crate::domain::time::to_day(add_months(start, 2)), "2025-03-31");
    }

    fn kinds() -> impl Strategy<Value = PaymentType> {
        prop_oneof![Just(PaymentType::Annuity), Just(PaymentType::Differentiated)]
    }

    proptest! {
        #[test]
        fn schedules_repay_exactly(
            principal in 1i64..1_000_000_000_000_000,
            rate_hundredths in prop_oneof![Just(0u32), 0u32..=10_000],
            months in 1u32..=360,
            kind in kinds(),
        ) {
            let l = Loan { principal, annual_rate: Decimal::new(i64::from(rate_hundredths), 2), months, kind };
            let rows = l.schedule(0);
            prop_assert_eq!(rows.len(), months as usize);
            prop_assert_eq!(rows.iter().map(|r| r.principal).sum::<i64>(), principal);
            prop_assert_eq!(rows.last().unwrap().remaining, 0);
            for row in &rows {
                prop_assert!(row.payment >= 0 && row.principal >= 0 && row.interest >= 0);
                prop_assert_eq!(row.payment, row.principal + row.interest);
            }
            if months == 1 || rows[0].remaining > 0 {
                prop_assert_eq!(rows[0].payment, l.monthly_payment());
            }
            if rate_hundredths == 0 {
                prop_assert!(rows.iter().all(|r| r.interest == 0));
            }
        }

        #[test]
        fn remaining_never_grows(principal in 1i64..10_000_000_000, months in 1u32..=120, kind in kinds()) {
            let l = Loan { principal, annual_rate: Decimal::new(1999, 2), months, kind };
            let rows = l.schedule(0);
            let mut previous = principal;
            for row in rows {
                prop_assert!(row.remaining <= previous);
                previous = row.remaining;
            }
        }
    }
}
