//! Records as the API answers them: snake_case fields, exact money numbers, ISO times,
//! decrypted descriptions. Shared by the REST resources and the snapshot sync.

use serde::Serialize;
use utoipa::ToSchema;

use crate::crypto::{mask_card_number, FieldCipher};
use crate::domain::money::{Money, Rate};
use crate::domain::time::Iso;
use crate::store::accounts::AccountRow;
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

/// An account record. `card_number` is answered masked; `monthly_payment` is computed for
/// credit accounts (see `AccountRow::loan`).
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountRecord {
    pub id: String,
    pub user_id: String,
    pub name: String,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    #[schema(value_type = f64)]
    pub balance: Money,
    pub currency: String,
    #[schema(value_type = f64)]
    pub exchange_rate: Rate,
    /// Masked: `**** **** **** 1234`.
    pub card_number: Option<String>,
    pub color: Option<String>,
    pub icon: Option<String>,
    pub is_default: bool,
    pub is_included_in_total: bool,
    #[schema(value_type = Option<f64>)]
    pub target_amount: Option<Money>,
    pub linked_account_id: Option<String>,
    #[schema(value_type = Option<f64>)]
    pub saved_amount: Option<Money>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub credit_start_date: Option<Iso>,
    pub credit_term: Option<i64>,
    /// Percent a year.
    #[schema(value_type = Option<f64>)]
    pub credit_rate: Option<Rate>,
    pub credit_payment_type: Option<String>,
    #[schema(value_type = Option<f64>)]
    pub credit_initial_amount: Option<Money>,
    #[schema(value_type = Option<f64>)]
    pub monthly_payment: Option<Money>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Iso,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Iso,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub synced_at: Option<Iso>,
}

impl AccountRecord {
    pub fn of(row: &AccountRow, cipher: &FieldCipher) -> Self {
        AccountRecord {
            id: row.id.clone(),
            user_id: row.user_id.clone(),
            name: row.name.clone(),
            kind: row.kind.clone(),
            balance: Money::from_raw(row.balance),
            currency: row.currency.clone(),
            exchange_rate: Rate::from_raw(row.exchange_rate),
            card_number: cipher
                .decrypt_opt(row.card_number.as_deref())
                .map(|card| mask_card_number(&card)),
            color: row.color.clone(),
            icon: row.icon.clone(),
            is_default: row.is_default,
            is_included_in_total: row.is_included_in_total,
            target_amount: row.target_amount.map(Money::from_raw),
            linked_account_id: row.linked_account_id.clone(),
            saved_amount: row.saved_amount.map(Money::from_raw),
            credit_start_date: row.credit_start_date.map(Iso),
            credit_term: row.credit_term,
            credit_rate: row.credit_rate.map(Rate::from_raw),
            credit_payment_type: row.credit_payment_type.clone(),
            credit_initial_amount: row.credit_initial_amount.map(Money::from_raw),
            monthly_payment: row.monthly_payment().map(Money::from_raw),
            created_at: Iso(row.created_at),
            updated_at: Iso(row.updated_at),
            synced_at: row.synced_at.map(Iso),
        }
    }
}

/// The account a transaction embeds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountRef {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    pub currency: String,
}

/// The category a transaction embeds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CategoryRef {
    pub id: String,
    pub name: String,
    pub icon: Option<String>,
    pub color: Option<String>,
}

/// A transaction record with its account, target account and category embedded, as the
/// transaction endpoints answer it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionView {
    #[serde(flatten)]
    pub record: TransactionRecord,
    pub account: Option<AccountRef>,
    #[serde(rename = "toAccount")]
    #[schema(rename = "toAccount")]
    pub to_account: Option<AccountRef>,
    pub category: Option<CategoryRef>,
}
