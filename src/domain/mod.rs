//! Pure types and rules of the domain, with no I/O: money, time, validation helpers.

pub mod money;
pub mod time;
