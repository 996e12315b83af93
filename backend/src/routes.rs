//! The route table (one screen) and the OpenAPI document generated from the handlers.

use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use crate::{error, files, health, metrics, uploads};

pub fn configure(cfg: &mut web::ServiceConfig, json_limit: usize, local_store: bool, web_dir: &str) {
    use web::{delete, get, patch, post, put, resource};
    cfg.app_data(web::JsonConfig::default().limit(json_limit).error_handler(error::json_error))
        .app_data(web::PathConfig::default().error_handler(error::path_error))
        .app_data(web::QueryConfig::default().error_handler(error::query_error));
    let api = web::scope("/api/v1")
        .route("/openapi.json", get().to(openapi))
        .service(resource("/uploads").route(post().to(uploads::routes::create)))
        .service(
            resource("/uploads/{upload_id}")
                .route(get().to(uploads::routes::get))
                .route(patch().to(uploads::routes::patch))
                .route(delete().to(uploads::routes::delete)),
        )
        .service(resource("/uploads/{upload_id}/parts/sign").route(post().to(uploads::routes::sign)))
        .service(resource("/uploads/{upload_id}/parts/{number}").route(put().to(uploads::routes::report)))
        .service(resource("/uploads/{upload_id}/complete").route(post().to(uploads::routes::complete)))
        .service(resource("/files").route(get().to(files::routes::list)))
        .service(
            resource("/files/{file_id}").route(get().to(files::routes::get)).route(delete().to(files::routes::delete)),
        )
        .service(resource("/files/{file_id}/content").route(get().to(files::routes::content)));
    cfg.service(
        web::scope("")
            .wrap(ErrorHandlers::new().default_handler(error::bare_error_to_json))
            .wrap(from_fn(metrics::track))
            .route("/healthz", get().to(health::healthz))
            .route("/readyz", get().to(health::readyz))
            .route("/metrics", get().to(metrics::render))
            .configure(|cfg| {
                if local_store {
                    // The embedded store's part and download URLs (full paths of their own).
                    crate::storage::local_http::configure(cfg);
                }
            })
            .service(api)
            .configure(|cfg| {
                if !web_dir.is_empty() {
                    // Last, so every API route wins over a file of the same name.
                    cfg.service(actix_files::Files::new("", web_dir).index_file("index.html"));
                }
            }),
    );
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Shardrop API", description = "Resumable, parallel uploads of very large files straight into S3-compatible storage."),
    paths(
        uploads::routes::create, uploads::routes::get, uploads::routes::patch, uploads::routes::delete,
        uploads::routes::sign, uploads::routes::report, uploads::routes::complete,
        files::routes::list, files::routes::get, files::routes::delete, files::routes::content,
        health::healthz, health::readyz,
    ),
    tags(
        (name = "uploads", description = "Start, sign, report, complete and abort uploads"),
        (name = "files", description = "Stored files and their downloads"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
