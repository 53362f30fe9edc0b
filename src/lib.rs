//! CashCraft: the server behind the CashCraft personal-finance app.

pub mod auth;
pub mod cache;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod rates;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;

pub use config::Settings;
pub use server::Application;
