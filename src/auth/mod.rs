//! Identity: password hashing, access tokens (JWT), opaque refresh tokens and Google id tokens.
//! No HTTP here: the endpoints live in `http::auth`.

pub mod google;
pub mod password;
pub mod tokens;
