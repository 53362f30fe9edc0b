//! Category endpoints (`/api/v1/categories`): list, create (or upsert by client id), partial
//! update, delete, and the reset to the five system defaults.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::accounts::write_stamp;
use super::auth::AuthUser;
use super::error::{is_unique_violation, ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use super::plans::ensure_category_limit;
use super::validate::{is_hex_color, Checks};
use crate::domain::time::Iso;
use crate::state::AppState;
use crate::store::categories::{self, CategoryRow};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_categories, create_category))
        .routes(routes!(reset_categories))
        .routes(routes!(update_category, delete_category))
}

/// Longest category name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest icon (an emoji or an icon name), in characters.
pub const MAX_ICON_CHARS: usize = 50;

/// A category record.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryRecord {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// `income` or `expense`.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    pub icon: Option<String>,
    pub color: Option<String>,
    pub is_system: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Iso,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Iso,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub synced_at: Option<Iso>,
}

impl CategoryRecord {
    pub fn of(row: &CategoryRow) -> Self {
        CategoryRecord {
            id: row.id.clone(),
            user_id: row.user_id.clone(),
            name: row.name.clone(),
            kind: row.kind.clone(),
            icon: row.icon.clone(),
            color: row.color.clone(),
            is_system: row.is_system,
            created_at: Iso(row.created_at),
            updated_at: Iso(row.updated_at),
            synced_at: row.synced_at.map(Iso),
        }
    }
}

/// Body of POST: a new category, or (with the id of one of the caller's categories) its
/// replacement.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CategoryBody {
    /// A client-chosen UUID (offline creation). When it names one of the caller's categories,
    /// that category is updated instead.
    #[schema(format = Uuid)]
    id: Option<String>,
    /// 1–100 characters after trimming.
    #[schema(value_type = String, min_length = 1, max_length = 100)]
    name: Option<String>,
    /// `income` or `expense`.
    #[serde(rename = "type")]
    #[schema(rename = "type", value_type = String, pattern = "^(income|expense)$")]
    kind: Option<String>,
    /// An emoji or an icon name, 1–50 characters.
    #[schema(value_type = String, min_length = 1, max_length = 50)]
    icon: Option<String>,
    /// `#RRGGBB`.
    #[schema(value_type = String, pattern = "^#[0-9A-Fa-f]{6}$")]
    color: Option<String>,
}

/// Body of PUT: any subset of the fields. A system category accepts `name` only.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CategoryPatch {
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    #[serde(rename = "type")]
    #[schema(rename = "type", pattern = "^(income|expense)$")]
    kind: Option<String>,
    #[schema(min_length = 1, max_length = 50)]
    icon: Option<String>,
    #[schema(pattern = "^#[0-9A-Fa-f]{6}$")]
    color: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CategoriesResetResponse {
    pub message: String,
    pub categories: Vec<CategoryRecord>,
}

fn is_category_type(kind: &str) -> bool {
    matches!(kind, "income" | "expense")
}

fn check_name(checks: &mut Checks, name: Option<&str>, required: bool) {
    if let Some(name) = name {
        let name = name.trim();
        checks.body(!name.is_empty(), "name", "Name is required");
        checks.body(
            name.chars().count() <= MAX_NAME_CHARS,
            "name",
            &format!("Name must be at most {MAX_NAME_CHARS} characters"),
        );
    } else if required {
        checks.body(false, "name", "Name is required");
    }
}

fn check_type(checks: &mut Checks, kind: Option<&str>, required: bool) {
    if kind.is_some() || required {
        checks.body(
            kind.is_some_and(is_category_type),
            "type",
            "Type must be income or expense",
        );
    }
}

fn check_icon(checks: &mut Checks, icon: Option<&str>, required: bool) {
    if let Some(icon) = icon {
        checks.body(!icon.trim().is_empty(), "icon", "Icon is required");
        checks.body(
            icon.chars().count() <= MAX_ICON_CHARS,
            "icon",
            &format!("Icon must be at most {MAX_ICON_CHARS} characters"),
        );
    } else if required {
        checks.body(false, "icon", "Icon is required");
    }
}

fn check_color(checks: &mut Checks, color: Option<&str>, required: bool) {
    if color.is_some() || required {
        checks.body(
            color.is_some_and(is_hex_color),
            "color",
            "Color must be a hex color like #FF6B6B",
        );
    }
}

/// The caller's categories, system defaults included, ordered by type then name.
#[utoipa::path(get, path = "/", tag = "categories", security(("bearer" = [])), responses(
    (status = 200, body = Vec<CategoryRecord>),
    (status = 401, description = "Not authenticated", body = ErrorBody),
))]
async fn list_categories(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<Vec<CategoryRecord>>> {
    let rows = categories::list(&state.db.pool, &auth.id).await?;
    Ok(Json(rows.iter().map(CategoryRecord::of).collect()))
}

/// Create a custom category (201), or update the caller's category named by `id` (200).
#[utoipa::path(post, path = "/", tag = "categories", security(("bearer" = [])), request_body = CategoryBody, responses(
    (status = 201, description = "Created", body = CategoryRecord),
    (status = 200, description = "The caller's category named by `id` was updated", body = CategoryRecord),
    (status = 400, description = "Validation failed", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 403, description = "Free plan limit reached / System categories can only be renamed", body = ErrorBody),
    (status = 409, description = "Id is already in use", body = ErrorBody),
))]
async fn create_category(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<CategoryBody>,
) -> ApiResult<(StatusCode, Json<CategoryRecord>)> {
    let mut checks = Checks::new();
    let id = checks.client_id(body.id.as_deref());
    check_name(&mut checks, body.name.as_deref(), true);
    check_type(&mut checks, body.kind.as_deref(), true);
    check_icon(&mut checks, body.icon.as_deref(), true);
    check_color(&mut checks, body.color.as_deref(), true);
    checks.finish()?;
    let name = body.name.unwrap_or_default().trim().to_string();
    let kind = body.kind.unwrap_or_default();
    let icon = body.icon.unwrap_or_default();
    let color = body.color.unwrap_or_default();

    let mut tx = state.db.begin_write().await?;
    let stamp = write_stamp(&mut tx, &auth.id).await?;
    if let Some(id) = id.as_deref() {
        if let Some(existing) = categories::find(&mut *tx, &auth.id, id).await? {
            let other_fields_change = kind != existing.kind
                || Some(&icon) != existing.icon.as_ref()
                || Some(&color) != existing.color.as_ref();
            if existing.is_system && other_fields_change {
                return Err(ApiError::forbidden("System categories can only be renamed"));
            }
            let updated = CategoryRow {
                name,
                kind,
                icon: Some(icon),
                color: Some(color),
                updated_at: stamp,
                ..existing
            };
            categories::update(&mut tx, &updated, stamp).await?;
            tx.commit().await?;
            return Ok((StatusCode::OK, Json(CategoryRecord::of(&updated))));
        }
        if crate::store::id_taken_by_other(&mut *tx, "categories", &auth.id, id).await? {
            return Err(ApiError::conflict("Id is already in use"));
        }
    }
    let custom = categories::count_custom(&mut *tx, &auth.id).await?;
    ensure_category_limit(&state, &auth, custom)?;
    let row = CategoryRow {
        id: id.unwrap_or_else(|| Uuid::new_v4().to_string()),
        user_id: auth.id.clone(),
        name,
        kind,
        icon: Some(icon),
        color: Some(color),
        is_system: false,
        created_at: stamp,
        updated_at: stamp,
        synced_at: None,
    };
    match categories::insert(&mut tx, &row, stamp).await {
        Ok(()) => {}
        // Another user took the id between the check and the insert.
        Err(err) if is_unique_violation(&err) => return Err(ApiError::conflict("Id is already in use")),
        Err(err) => return Err(err.into()),
    }
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(CategoryRecord::of(&row))))
}

/// Update some fields of one of the caller's categories. A system category may only be renamed.
#[utoipa::path(put, path = "/{id}", tag = "categories", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Category id")),
    request_body = CategoryPatch,
    responses(
        (status = 200, body = CategoryRecord),
        (status = 400, description = "Validation failed", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "System categories can only be renamed", body = ErrorBody),
        (status = 404, description = "Category not found", body = ErrorBody),
    ))]
async fn update_category(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CategoryPatch>,
) -> ApiResult<Json<CategoryRecord>> {
    let mut checks = Checks::new();
    check_name(&mut checks, body.name.as_deref(), false);
    check_type(&mut checks, body.kind.as_deref(), false);
    check_icon(&mut checks, body.icon.as_deref(), false);
    check_color(&mut checks, body.color.as_deref(), false);
    checks.finish()?;

    let mut tx = state.db.begin_write().await?;
    let stamp = write_stamp(&mut tx, &auth.id).await?;
    let existing = categories::find(&mut *tx, &auth.id, &id.to_string())
        .await?
        .ok_or_else(|| ApiError::not_found("Category not found"))?;
    if existing.is_system && (body.kind.is_some() || body.icon.is_some() || body.color.is_some()) {
        return Err(ApiError::forbidden("System categories can only be renamed"));
    }
    let updated = CategoryRow {
        name: body.name.map(|n| n.trim().to_string()).unwrap_or(existing.name.clone()),
        kind: body.kind.unwrap_or(existing.kind.clone()),
        icon: body.icon.or(existing.icon.clone()),
        color: body.color.or(existing.color.clone()),
        updated_at: stamp,
        ..existing
    };
    categories::update(&mut tx, &updated, stamp).await?;
    tx.commit().await?;
    Ok(Json(CategoryRecord::of(&updated)))
}

/// Delete one of the caller's custom categories that no transaction uses.
#[utoipa::path(delete, path = "/{id}", tag = "categories", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Category id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Cannot delete category. It is used in N transactions.", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Cannot delete system categories", body = ErrorBody),
        (status = 404, description = "Category not found", body = ErrorBody),
    ))]
async fn delete_category(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let id = id.to_string();
    let mut tx = state.db.begin_write().await?;
    let stamp = write_stamp(&mut tx, &auth.id).await?;
    let existing = categories::find(&mut *tx, &auth.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Category not found"))?;
    if existing.is_system {
        return Err(ApiError::forbidden("Cannot delete system categories"));
    }
    let used = categories::count_transactions(&mut *tx, &auth.id, &id).await?;
    if used > 0 {
        return Err(ApiError::bad_request(format!(
            "Cannot delete category. It is used in {used} transactions."
        )));
    }
    categories::delete(&mut tx, &auth.id, &id, stamp).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete the caller's custom categories (their transactions stay, uncategorised) and restore
/// exactly the five system defaults with their default name, icon and colour.
#[utoipa::path(post, path = "/reset", tag = "categories", security(("bearer" = [])), responses(
    (status = 200, body = CategoriesResetResponse),
    (status = 401, description = "Not authenticated", body = ErrorBody),
))]
async fn reset_categories(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<CategoriesResetResponse>> {
    let mut tx = state.db.begin_write().await?;
    let stamp = write_stamp(&mut tx, &auth.id).await?;
    categories::reset(&mut tx, &auth.id, stamp).await?;
    let rows = categories::list(&mut *tx, &auth.id).await?;
    tx.commit().await?;
    Ok(Json(CategoriesResetResponse {
        message: "Categories reset successfully".into(),
        categories: rows.iter().map(CategoryRecord::of).collect(),
    }))
}
