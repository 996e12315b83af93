//! The route table (one screen) and the OpenAPI document generated from the handlers.

use std::collections::HashMap;
use std::sync::OnceLock;

use actix_governor::Governor;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use crate::limits::RateLimit;
use crate::state::AppState;
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
    use web::{delete, get, post, put, resource};
    let (json_limit, local_store, page) = (r.json_limit, r.local_store, r.page);
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
        .configure(|cfg| uploads::configure(cfg, r.sign_limit))
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
            .wrap(ErrorHandlers::new().default_handler(|res| error::bare_error_to_json(res, allowed_methods)))
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
    info(title = "Shardrop API", description = "Resumable, parallel uploads of very large files straight into S3-compatible storage.\n\n\
Every error is JSON `{\"code\", \"message\"}`: branch on `code`. Each operation lists its own codes; any \
route may also answer `not-found` (404: no such route), `method-not-allowed` (405, with `Allow`), \
`bad-request` (400: a request the router refused), `internal` (500: logged with its cause) and \
`unavailable` (503: SQL, Redis or storage did not answer; see `Retry-After`), and a route that \
reads stored bytes `object-not-found` (404: the stored object is missing)."),
    paths(
        auth::routes::sign_up, auth::routes::sign_in, auth::routes::sign_out, auth::routes::sign_out_everywhere,
        auth::routes::me, auth::routes::change_password,
        uploads::create::handler, uploads::list::handler, uploads::get::handler, uploads::patch::handler, uploads::abort::handler,
        uploads::sign::handler, uploads::report::handler, uploads::complete::handler, uploads::prove::handler,
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

/// The error codes are one set: every code the server sends (`protocol::Code`) is
/// documented in the OpenAPI document and in `docs/api.md`, every code either documents is a
/// real one, and every code is constructed somewhere in the backend's own (non-test) code.
#[cfg(test)]
mod codes {
    use std::collections::BTreeSet;
    use std::path::Path;

    use shardrop_engine::protocol::Code;
    use utoipa::OpenApi;

    use super::ApiDoc;

    /// Every `` `kebab-case` `` token of a text.
    fn quoted_codes(text: &str) -> BTreeSet<String> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .filter(|t| t.len() > 2 && t.contains('-') || Code::parse(t).is_some())
            .filter(|t| t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
            .map(str::to_owned)
            .collect()
    }

    /// The codes in the OpenAPI document: error responses' descriptions and the info text.
    fn openapi_codes() -> BTreeSet<String> {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut codes = quoted_codes(doc["info"]["description"].as_str().unwrap_or_default());
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let Some(responses) = op["responses"].as_object() else { continue };
                for (status, r) in responses {
                    if status.as_str() >= "400" {
                        codes.extend(quoted_codes(r["description"].as_str().unwrap_or_default()));
                    }
                }
            }
        }
        codes
    }

    /// The codes in `docs/api.md`'s "Errors" section.
    fn api_md_codes() -> BTreeSet<String> {
        let md = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md")).unwrap();
        let errors = md.split("\n## Errors").nth(1).expect("docs/api.md has an Errors section");
        let errors = errors.split("\n## ").next().unwrap_or_default();
        quoted_codes(errors)
    }

    /// The backend's own code, without its test modules (they follow `#[cfg(test)]`).
    fn backend_source() -> String {
        fn walk(dir: &Path, out: &mut String) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.file_name().is_some_and(|n| n.to_string_lossy().ends_with("tests.rs"))
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    out.push_str(text.split("#[cfg(test)]").next().unwrap_or_default());
                }
            }
        }
        let mut out = String::new();
        walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
        out
    }

    #[test]
    fn every_code_is_documented_and_every_documented_code_is_real() {
        let (openapi, md) = (openapi_codes(), api_md_codes());
        let mut wrong = Vec::new();
        for code in Code::ALL {
            if !code.local_store_only() && !openapi.contains(code.as_str()) {
                wrong.push(format!("`{code}` is not in the OpenAPI document"));
            }
            if !md.contains(code.as_str()) {
                wrong.push(format!("`{code}` is not in docs/api.md's Errors section"));
            }
        }
        for documented in openapi.iter().chain(&md) {
            if Code::parse(documented).is_none() {
                wrong.push(format!("`{documented}` is documented but no such code exists"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn every_code_is_sent_somewhere() {
        let source = backend_source();
        // `Code::UploadComplete` must not count as used where only `Code::UploadCompleting` is.
        let used = |c: &Code| {
            let name = format!("Code::{}", c.rust_name());
            source.match_indices(&name).any(|(at, _)| {
                !source[at + name.len()..].chars().next().is_some_and(|ch| ch.is_alphanumeric() || ch == '_')
            })
        };
        let dead: Vec<_> = Code::ALL.iter().filter(|c| !used(c)).collect();
        assert!(dead.is_empty(), "never sent (drop them or send them): {dead:?}");
    }
}
