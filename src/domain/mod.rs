//! Pure types and rules of the domain, with no I/O: money, time, default data, balance
//! effects, credit math and statistics arithmetic.

pub mod credit;
pub mod defaults;
pub mod ledger;
pub mod money;
pub mod stats;
pub mod time;
