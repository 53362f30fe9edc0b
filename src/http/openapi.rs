//! The OpenAPI document, generated from the handlers' annotations and served at
//! `/api/v1/openapi.json` (Swagger UI at `/docs`).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi;
use utoipa::{Modify, OpenApi as _};

use super::error::{ErrorBody, FieldError};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "CashCraft API", description = "Backend of the CashCraft personal-finance app."),
    components(schemas(ErrorBody, FieldError)),
    modifiers(&BearerAuth),
)]
struct BaseDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

pub fn base() -> OpenApi {
    BaseDoc::openapi()
}

/// Last touches once every route has registered itself.
pub fn finish(doc: &mut OpenApi) {
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
}
