//! Identity: password hashing, access tokens (JWT) and opaque refresh tokens.

pub mod password;
pub mod tokens;
