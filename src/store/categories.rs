//! Categories: a user's income and expense categories (their system defaults included), and
//! the reset that removes the custom ones and restores exactly the five defaults.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::{flag, tombstones, Tx};
use crate::domain::defaults::DEFAULT_CATEGORIES;

/// A category as stored.
#[derive(Debug, Clone)]
pub struct CategoryRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// `income` or `expense`.
    pub kind: String,
    pub icon: Option<String>,
    pub color: Option<String>,
    pub is_system: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub synced_at: Option<i64>,
}

pub const CATEGORY_COLUMNS: &str = "id, user_id, name, type, icon, color, is_system, created_at, updated_at, synced_at";

pub fn category_from_row(row: &AnyRow) -> Result<CategoryRow, sqlx::Error> {
    Ok(CategoryRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        kind: row.try_get("type")?,
        icon: row.try_get("icon")?,
        color: row.try_get("color")?,
        is_system: flag(row, "is_system")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        synced_at: row.try_get("synced_at")?,
    })
}

/// Orders categories by type, then name (case-insensitively, then exactly, then by id). Done
/// here rather than in SQL so that both databases answer the same order whatever their collation.
pub fn sort_for_listing(categories: &mut [CategoryRow]) {
    categories.sort_by_cached_key(|c| (c.kind.clone(), c.name.to_lowercase(), c.name.clone(), c.id.clone()));
}

/// The user's categories, ordered by type then name.
pub async fn list<'e, E: Executor<'e, Database = Any>>(db: E, user_id: &str) -> Result<Vec<CategoryRow>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {CATEGORY_COLUMNS} FROM categories WHERE user_id = $1 ORDER BY type, name"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await?;
    let mut categories = rows.iter().map(category_from_row).collect::<Result<Vec<_>, _>>()?;
    sort_for_listing(&mut categories);
    Ok(categories)
}

/// The caller's category `id`, if it is theirs.
pub async fn find<'e, E: Executor<'e, Database = Any>>(
    db: E,
    user_id: &str,
    id: &str,
) -> Result<Option<CategoryRow>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {CATEGORY_COLUMNS} FROM categories WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    row.as_ref().map(category_from_row).transpose()
}

/// How many custom (non-system) categories the user holds: what the free-tier limit counts.
pub async fn count_custom<'e, E: Executor<'e, Database = Any>>(db: E, user_id: &str) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM categories WHERE user_id = $1 AND is_system = 0")
        .bind(user_id)
        .fetch_one(db)
        .await?;
    Ok(count)
}

/// How many of the user's transactions use the category.
pub async fn count_transactions<'e, E: Executor<'e, Database = Any>>(
    db: E,
    user_id: &str,
    id: &str,
) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM transactions WHERE user_id = $1 AND category_id = $2")
        .bind(user_id)
        .bind(id)
        .fetch_one(db)
        .await?;
    Ok(count)
}

/// Inserts a category stamped `stamp`, forgetting any tombstone of its id.
pub async fn insert(tx: &mut Tx, row: &CategoryRow, stamp: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO categories (id, user_id, name, type, icon, color, is_system, created_at, updated_at, \
         synced_at, server_created_at, server_updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
    )
    .bind(&row.id)
    .bind(&row.user_id)
    .bind(&row.name)
    .bind(&row.kind)
    .bind(&row.icon)
    .bind(&row.color)
    .bind(row.is_system as i64)
    .bind(row.created_at)
    .bind(row.updated_at)
    .bind(row.synced_at)
    .bind(stamp)
    .execute(&mut **tx)
    .await?;
    tombstones::forget(tx, "categories", &row.user_id, &row.id).await
}

/// Writes every mutable field of `row` (matched by id and user), stamped `stamp`.
pub async fn update(tx: &mut Tx, row: &CategoryRow, stamp: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE categories SET name = $1, type = $2, icon = $3, color = $4, updated_at = $5, server_updated_at = $6 \
         WHERE id = $7 AND user_id = $8",
    )
    .bind(&row.name)
    .bind(&row.kind)
    .bind(&row.icon)
    .bind(&row.color)
    .bind(row.updated_at)
    .bind(stamp)
    .bind(&row.id)
    .bind(&row.user_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes one category of the user (tombstone first); answers whether it was there.
pub async fn delete(tx: &mut Tx, user_id: &str, id: &str, stamp: i64) -> Result<bool, sqlx::Error> {
    tombstones::delete_row(tx, "categories", user_id, id, stamp).await
}

/// Detaches the user's transactions from a category (category_id → null), stamping them so
/// that an incremental pull sees the change.
pub async fn detach_transactions(
    tx: &mut Tx,
    user_id: &str,
    category_id: &str,
    stamp: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE transactions SET category_id = NULL, updated_at = $1, server_updated_at = $1 \
         WHERE user_id = $2 AND category_id = $3",
    )
    .bind(stamp)
    .bind(user_id)
    .bind(category_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Which stored system category stands for which default: an exact (type, name) match first,
/// then a remaining system category of the same type (one the user renamed; preferring names
/// that are no default's), oldest first.
/// Answers, per default, the index of its stored category, and the indexes left over.
fn match_defaults(system: &[CategoryRow]) -> ([Option<usize>; DEFAULT_CATEGORIES.len()], Vec<usize>) {
    let mut assigned: [Option<usize>; DEFAULT_CATEGORIES.len()] = [None; DEFAULT_CATEGORIES.len()];
    let mut taken = vec![false; system.len()];
    for (d, default) in DEFAULT_CATEGORIES.iter().enumerate() {
        if let Some(i) =
            (0..system.len()).find(|&i| !taken[i] && system[i].kind == default.kind && system[i].name == default.name)
        {
            assigned[d] = Some(i);
            taken[i] = true;
        }
    }
    for (d, default) in DEFAULT_CATEGORIES.iter().enumerate() {
        if assigned[d].is_some() {
            continue;
        }
        let free = |i: &usize| !taken[*i] && system[*i].kind == default.kind;
        let has_default_name = |i: &usize| DEFAULT_CATEGORIES.iter().any(|o| o.name == system[*i].name);
        let renamed = (0..system.len())
            .filter(free)
            .find(|i| !has_default_name(i))
            .or_else(|| (0..system.len()).find(free));
        if let Some(i) = renamed {
            assigned[d] = Some(i);
            taken[i] = true;
        }
    }
    let leftover = (0..system.len()).filter(|&i| !taken[i]).collect();
    (assigned, leftover)
}

/// Deletes the user's custom categories (their transactions stay, with category_id null) and
/// makes exactly the five default categories exist with their default name, icon and colour:
/// stored system categories keep their ids, a missing default is created again, and a surplus
/// system category (a duplicate uploaded by sync) is removed, its transactions moved to the
/// default of the same name when there is one. Idempotent. Answers how many custom categories
/// were deleted.
pub async fn reset(tx: &mut Tx, user_id: &str, stamp: i64) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "UPDATE transactions SET category_id = NULL, updated_at = $1, server_updated_at = $1 \
         WHERE user_id = $2 AND category_id IN (SELECT id FROM categories WHERE user_id = $2 AND is_system = 0)",
    )
    .bind(stamp)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    tombstones::record(tx, "categories", user_id, stamp, "is_system = 0", None).await?;
    let deleted = sqlx::query("DELETE FROM categories WHERE user_id = $1 AND is_system = 0")
        .bind(user_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();

    let rows = sqlx::query(&format!(
        "SELECT {CATEGORY_COLUMNS} FROM categories WHERE user_id = $1 AND is_system = 1 ORDER BY created_at, id"
    ))
    .bind(user_id)
    .fetch_all(&mut **tx)
    .await?;
    let system = rows.iter().map(category_from_row).collect::<Result<Vec<_>, _>>()?;
    let (assigned, leftover) = match_defaults(&system);

    for i in leftover {
        let extra = &system[i];
        let twin = DEFAULT_CATEGORIES
            .iter()
            .position(|d| d.kind == extra.kind && d.name == extra.name)
            .and_then(|d| assigned[d])
            .map(|k| system[k].id.clone());
        match twin {
            Some(keep) => {
                sqlx::query(
                    "UPDATE transactions SET category_id = $1, updated_at = $2, server_updated_at = $2 \
                     WHERE user_id = $3 AND category_id = $4",
                )
                .bind(&keep)
                .bind(stamp)
                .bind(user_id)
                .bind(&extra.id)
                .execute(&mut **tx)
                .await?;
            }
            None => {
                detach_transactions(tx, user_id, &extra.id, stamp).await?;
            }
        }
        delete(tx, user_id, &extra.id, stamp).await?;
    }

    for (d, default) in DEFAULT_CATEGORIES.iter().enumerate() {
        match assigned[d].map(|i| &system[i]) {
            Some(stored) => {
                let unchanged = stored.name == default.name
                    && stored.icon.as_deref() == Some(default.icon)
                    && stored.color.as_deref() == Some(default.color);
                if !unchanged {
                    let restored = CategoryRow {
                        name: default.name.to_string(),
                        icon: Some(default.icon.to_string()),
                        color: Some(default.color.to_string()),
                        updated_at: stamp,
                        ..stored.clone()
                    };
                    update(tx, &restored, stamp).await?;
                }
            }
            None => {
                let row = CategoryRow {
                    id: uuid::Uuid::new_v4().to_string(),
                    user_id: user_id.to_string(),
                    name: default.name.to_string(),
                    kind: default.kind.to_string(),
                    icon: Some(default.icon.to_string()),
                    color: Some(default.color.to_string()),
                    is_system: true,
                    created_at: stamp,
                    updated_at: stamp,
                    synced_at: None,
                };
                insert(tx, &row, stamp).await?;
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system(name: &str, kind: &str) -> CategoryRow {
        CategoryRow {
            id: format!("{kind}-{name}"),
            user_id: "u".into(),
            name: name.into(),
            kind: kind.into(),
            icon: None,
            color: None,
            is_system: true,
            created_at: 0,
            updated_at: 0,
            synced_at: None,
        }
    }

    #[test]
    fn matches_exact_names_then_renamed_of_the_same_type() {
        let stored = vec![
            system("Food", "expense"), // renamed Продукты
            system("Транспорт", "expense"),
            system("Зарплата", "income"),
            system("Зарплата", "income"), // a duplicate: stands in for the missing Подработка
            system("Подработка", "income"),
            system("Бонус", "income"), // one too many
        ];
        let (assigned, leftover) = match_defaults(&stored);
        assert_eq!(assigned, [Some(0), Some(1), None, Some(2), Some(4)]);
        assert_eq!(leftover, vec![3, 5]);
        let (assigned, leftover) = match_defaults(&stored[..4]);
        assert_eq!(assigned, [Some(0), Some(1), None, Some(2), Some(3)]);
        assert!(leftover.is_empty());
    }

    #[test]
    fn listing_order_is_type_then_name_case_insensitively() {
        let mut rows = vec![
            system("b", "income"),
            system("Б", "expense"),
            system("а", "expense"),
            system("A", "income"),
        ];
        sort_for_listing(&mut rows);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["а", "Б", "A", "b"]);
    }
}
