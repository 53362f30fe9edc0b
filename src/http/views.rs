//! Records as the API answers them: snake_case fields, exact money numbers, ISO times,
//! decrypted descriptions. Shared by the REST resources and the snapshot sync.

use serde::Serialize;
use utoipa::ToSchema;

use crate::crypto::FieldCipher;
use crate::domain::money::Money;
use crate::domain::time::Iso;
use crate::store::transactions::TxnRow;

/// A transaction record.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionRecord {
    pub id: String,
    pub user_id: String,
    pub account_id: String,
    pub category_id: Option<String>,
    #[schema(value_type = f64)]
    pub amount: Money,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: &'static str,
    #[schema(value_type = String, format = DateTime)]
    pub date: Iso,
    pub description: Option<String>,
    pub to_account_id: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Iso,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Iso,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub synced_at: Option<Iso>,
}

impl TransactionRecord {
    pub fn of(row: &TxnRow, cipher: &FieldCipher) -> Self {
        TransactionRecord {
            id: row.id.clone(),
            user_id: row.user_id.clone(),
            account_id: row.account_id.clone(),
            category_id: row.category_id.clone(),
            amount: Money::from_raw(row.amount),
            kind: row.kind.as_str(),
            date: Iso(row.date),
            description: cipher.decrypt_opt(row.description.as_deref()),
            to_account_id: row.to_account_id.clone(),
            created_at: Iso(row.created_at),
            updated_at: Iso(row.updated_at),
            synced_at: row.synced_at.map(Iso),
        }
    }
}
