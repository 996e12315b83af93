//! The route table (one screen) and the OpenAPI document generated from the handlers.

use std::collections::HashMap;
use std::sync::OnceLock;

use actix_governor::Governor;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use crate::app::AppState;
use crate::limits::RateLimit;
use crate::{auth, error, files, health, metrics, uploads};

/// What the route table depends on.
pub struct Routes<'a> {
    pub json_limit: usize,
    /// Serve the embedded store's part and download URLs.
    pub local_store: bool,
    /// The page served at `/`, if any.
    pub page: Option<&'a crate::page::Page>,
    /// Rate limit of the signing route, shared by every worker.
    pub sign_limit: Option<&'a RateLimit>,
    /// Rate limit shared by sign-up and login.
    pub auth_limit: Option<&'a RateLimit>,
}

pub fn configure(cfg: &mut web::ServiceConfig, r: &Routes<'_>) {
    use web::{delete, get, patch, post, put, resource};
    let (json_limit, local_store, page) = (r.json_limit, r.local_store, r.page);
    let sign = resource("/uploads/{upload_id}/parts/sign").route(post().to(uploads::routes::sign));
    cfg.app_data(web::JsonConfig::default().limit(json_limit).error_handler(error::json_error))
        .app_data(web::PathConfig::default().error_handler(error::path_error))
        .app_data(web::QueryConfig::default().error_handler(error::query_error));
    // Sign-up, login and a password change share the client's bucket: all invite password
    // guessing. Per route, so signing out everywhere (`DELETE /sessions`) is not limited.
    let guessable = |route: actix_web::Route| match r.auth_limit {
        Some(limit) => route.wrap(Governor::new(limit)),
        None => route,
    };
    let api = web::scope("/api/v1")
        .route("/openapi.json", get().to(openapi))
        .service(resource("/users").route(guessable(post().to(auth::routes::sign_up))))
        .service(
            resource("/sessions")
                .route(guessable(post().to(auth::routes::sign_in)))
                .route(delete().to(auth::routes::sign_out_everywhere)),
        )
        .service(resource("/users/me").route(get().to(auth::routes::me)))
        .service(resource("/users/me/password").route(guessable(put().to(auth::routes::change_password))))
        .service(resource("/sessions/current").route(delete().to(auth::routes::sign_out)))
        .service(resource("/uploads").route(post().to(uploads::routes::create)))
        .service(
            resource("/uploads/{upload_id}")
                .route(get().to(uploads::routes::get))
                .route(patch().to(uploads::routes::patch))
                .route(delete().to(uploads::routes::delete)),
        );
    // Signing and proofs (each reads up to 1 MiB from storage) share the client's bucket.
    // Sign goes before `parts/{number}`, which would match "sign" too.
    let proof = resource("/uploads/{upload_id}/proof").route(post().to(uploads::routes::prove));
    let api = match r.sign_limit {
        Some(limit) => api.service(sign.wrap(Governor::new(limit))).service(proof.wrap(Governor::new(limit))),
        None => api.service(sign).service(proof),
    };
    let api = api
        .service(resource("/uploads/{upload_id}/parts/{number}").route(put().to(uploads::routes::report)))
        .service(resource("/uploads/{upload_id}/complete").route(post().to(uploads::routes::complete)))
        .service(resource("/files").route(get().to(files::routes::list)))
        .service(
            resource("/files/{file_id}").route(get().to(files::routes::get)).route(delete().to(files::routes::delete)),
        )
        .service(resource("/files/{file_id}/content").route(get().to(files::routes::content)))
        .service(resource("/files/{file_id}/download-url").route(get().to(files::routes::content_url)))
        .service(resource("/files/{file_id}/shares").route(post().to(files::shares::create)))
        .service(resource("/files/{file_id}/shares/{share_id}").route(delete().to(files::shares::revoke)))
        .service(resource("/shares/{token}").route(get().to(files::shares::follow)));
    cfg.service(
        web::scope("")
            .wrap(ErrorHandlers::new().default_handler(error::bare_error_to_json))
            .wrap(from_fn(metrics::track))
            // Resources, not bare routes: another method is 405 (with `Allow`), not 404.
            .service(resource("/healthz").route(get().to(health::healthz)))
            .service(resource("/readyz").route(get().to(health::readyz)))
            .route("/metrics", get().to(metrics::render))
            .configure(|cfg| {
                if local_store {
                    // The embedded store's part and download URLs (full paths of their own).
                    crate::storage::local_http::configure(cfg);
                }
            })
            .service(api)
            .configure(|cfg| {
                if let Some(page) = page {
                    // Last, so every API route wins over a file of the same name.
                    cfg.service(page.service());
                }
            }),
    );
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Shardrop API", description = "Resumable, parallel uploads of very large files straight into S3-compatible storage."),
    paths(
        auth::routes::sign_up, auth::routes::sign_in, auth::routes::sign_out, auth::routes::sign_out_everywhere,
        auth::routes::me, auth::routes::change_password,
        uploads::routes::create, uploads::routes::get, uploads::routes::patch, uploads::routes::delete,
        uploads::routes::sign, uploads::routes::report, uploads::routes::complete, uploads::routes::prove,
        files::routes::list, files::routes::get, files::routes::delete, files::routes::content, files::routes::content_url,
        files::shares::create, files::shares::revoke, files::shares::follow,
        health::healthz, health::readyz,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "accounts", description = "Sign up, sign in and out, change the password"),
        (name = "uploads", description = "Start, sign, report, complete and abort uploads"),
        (name = "files", description = "Stored files and their downloads"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

/// Every operation takes `Authorization: Bearer <token>` unless it says `security(())`.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("A token from `POST /api/v1/sessions`"))
            .build();
        doc.components.get_or_insert_with(Default::default).add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// `GET /api/v1/openapi.json`: the document, with this server's configured limits filled in
/// (they are settings, so the generated document cannot know them).
pub async fn openapi(state: web::Data<AppState>) -> HttpResponse {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let uploads = &state.settings.uploads;
    let limits = [
        ("/components/schemas/CreateUpload/properties/size", "maximum", uploads.max_file_size),
        ("/components/schemas/SignRequest/properties/parts", "maxItems", uploads.max_sign_batch as u64),
    ];
    for (pointer, key, value) in limits {
        if let Some(serde_json::Value::Object(schema)) = doc.pointer_mut(pointer) {
            schema.insert(key.into(), value.into());
        }
    }
    HttpResponse::Ok().json(doc)
}

/// The methods a path of the API takes, as an `Allow` header value (`GET, DELETE`), by its
/// route pattern (`/api/v1/files/{file_id}`). Read from the OpenAPI document, which the API
/// fuzz (`scripts/fuzz-api.sh`) holds to the routes, so the two cannot drift apart.
pub fn allowed_methods(pattern: &str) -> Option<&'static str> {
    static ALLOW: OnceLock<HashMap<String, String>> = OnceLock::new();
    let allow = ALLOW.get_or_init(|| {
        let paths = ApiDoc::openapi().paths.paths;
        paths
            .into_iter()
            .map(|(path, item)| {
                let ops = [
                    ("GET", &item.get),
                    ("POST", &item.post),
                    ("PUT", &item.put),
                    ("PATCH", &item.patch),
                    ("DELETE", &item.delete),
                ];
                let methods: Vec<_> = ops.iter().filter(|(_, op)| op.is_some()).map(|(m, _)| *m).collect();
                (path, methods.join(", "))
            })
            .collect()
    });
    allow.get(pattern).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_the_documented_methods() {
        assert_eq!(allowed_methods("/api/v1/uploads/{upload_id}"), Some("GET, PATCH, DELETE"));
        assert_eq!(allowed_methods("/healthz"), Some("GET"));
        assert_eq!(allowed_methods("/nope"), None);
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut ids: Vec<_> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|op| op["operationId"].as_str())
            .collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "{ids:?}");
    }
}
