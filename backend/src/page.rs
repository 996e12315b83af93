//! The page served at `/` (the drag-and-drop page, or any app built into `web_dir`), with
//! the headers that keep it from being framed or turned against the people using it.
//!
//! The Content-Security-Policy allows what the page does and nothing more: its own scripts
//! and styles; the inline scripts of its HTML (the import map) by their SHA-256;
//! WebAssembly (`'wasm-unsafe-eval'`); a module worker from this origin; and requests to
//! this API and to the storage its part URLs point at. The same policy reaches the worker,
//! whose script is served from here too. Nothing may frame the page
//! (`frame-ancestors 'none'`, and `X-Frame-Options: DENY` for browsers older than CSP 2),
//! so no other site can lay it under a decoy and steer a click onto Delete.
//!
//! The page travels inside the binary: `www/dist` as it was when the release build ran
//! (`scripts/run.sh` and `scripts/test.sh` build it first; a debug build reads the folder at
//! run time instead). `web_dir` serves a folder instead, for development or another app.
//! The hashes are read from the HTML files at start-up: a folder rebuilt while the server
//! runs is served with the new files but the old hashes until a restart.

use std::borrow::Cow;
use std::path::Path;

use actix_web::dev::HttpServiceFactory;
use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::config::{Settings, StorageKind};
use crate::error::{Code, ErrorBody};

/// The page built into the binary (`www/dist` at build time). Empty when that folder did
/// not exist then: the server then serves no page unless `web_dir` names one.
#[derive(rust_embed::Embed)]
#[folder = "$CARGO_MANIFEST_DIR/../www/dist/"]
#[allow_missing = true]
struct Embedded;

/// Where the page's files come from.
#[derive(Debug, Clone)]
enum Source {
    /// `web_dir`.
    Dir(String),
    /// Built into the binary.
    Embedded,
}

/// The page served at `/` and the policy it is served with.
#[derive(Debug, Clone)]
pub struct Page {
    source: Source,
    csp: String,
}

impl Page {
    /// The page in `settings.web_dir`, else the one built into the binary, else none;
    /// `public_url` is the origin the local store signs its part URLs for (the configured
    /// one, or this server's address).
    pub fn new(settings: &Settings, public_url: &str) -> Option<Self> {
        let (source, html) = if !settings.serve_page {
            return None;
        } else if !settings.web_dir.is_empty() {
            (Source::Dir(settings.web_dir.clone()), dir_html(Path::new(&settings.web_dir)))
        } else if Embedded::get("index.html").is_some() {
            (Source::Embedded, embedded_html())
        } else {
            tracing::warn!("no page at /: this binary was built without www/dist and web_dir is not set");
            return None;
        };
        let hashes = inline_script_hashes(&html);
        let csp = policy(&hashes, &connect_origins(settings, public_url));
        tracing::debug!(%csp, "the page's content security policy");
        Some(Self { source, csp })
    }

    /// The static files, each answered with the policy and the anti-framing headers.
    /// Register it last: it answers every path no other route took.
    pub fn service(&self) -> impl HttpServiceFactory {
        let headers = DefaultHeaders::new()
            .add((header::CONTENT_SECURITY_POLICY, self.csp.clone()))
            .add((header::X_FRAME_OPTIONS, "DENY"))
            .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
        let files = web::scope("").wrap(headers);
        match &self.source {
            Source::Dir(dir) => files.service(actix_files::Files::new("", dir).index_file("index.html")),
            Source::Embedded => files.service(
                web::resource("/{path:.*}")
                    .route(web::get().to(embedded))
                    .route(web::head().to(embedded))
                    .default_service(web::to(read_only)),
            ),
        }
    }
}

/// A file of the built-in page (`/` is `index.html`), with its type and an `ETag` of its
/// SHA-256; `304` when the browser has it.
async fn embedded(req: HttpRequest) -> HttpResponse {
    let path = match req.path().trim_start_matches('/') {
        "" => "index.html",
        p => p,
    };
    let Some(file) = Embedded::get(path) else {
        return HttpResponse::NotFound().finish(); // answered as JSON `not-found` by the error handler
    };
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let seen = req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    if seen.is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag)) {
        return HttpResponse::NotModified().insert_header((header::ETAG, etag)).finish();
    }
    let body = match file.data {
        Cow::Borrowed(bytes) => Bytes::from_static(bytes),
        Cow::Owned(bytes) => Bytes::from(bytes),
    };
    HttpResponse::Ok()
        .content_type(file.metadata.mimetype())
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

/// Any other method on the page's files: `405` with `Allow`, as a folder's files answer it.
async fn read_only() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "GET, HEAD"))
        .json(ErrorBody { code: Code::MethodNotAllowed.into(), message: "the page's files are read-only".to_owned() })
}

/// The HTML files of a folder (not its subfolders). A folder that cannot be read gives none:
/// its page then runs no inline script.
fn dir_html(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::warn!(dir = %dir.display(), "cannot read web_dir");
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("html")))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

/// The HTML files at the top of the built-in page.
fn embedded_html() -> Vec<String> {
    Embedded::iter()
        .filter(|name| !name.contains('/') && name.to_ascii_lowercase().ends_with(".html"))
        .filter_map(|name| Embedded::get(&name))
        .filter_map(|file| String::from_utf8(file.data.into_owned()).ok())
        .collect()
}

/// The policy: `hashes` are the `'sha256-…'` sources of the page's inline scripts,
/// `storage` the origins (besides this one) that it sends requests to: where its part PUTs
/// go, and `page_connect_src`.
fn policy(hashes: &[String], storage: &[String]) -> String {
    let mut script = vec!["'self'", "'wasm-unsafe-eval'"];
    script.extend(hashes.iter().map(String::as_str));
    let mut connect = vec!["'self'"];
    connect.extend(storage.iter().map(String::as_str));
    [
        "default-src 'none'".to_owned(),
        format!("script-src {}", script.join(" ")),
        "style-src 'self'".to_owned(),
        // The favicon a browser asks for on its own.
        "img-src 'self'".to_owned(),
        format!("connect-src {}", connect.join(" ")),
        "worker-src 'self'".to_owned(),
        "form-action 'self'".to_owned(),
        "base-uri 'none'".to_owned(),
        "frame-ancestors 'none'".to_owned(),
    ]
    .join("; ")
}

/// The origins besides this one that the page sends requests to: the storage, and those
/// `page_connect_src` names (each cut to its origin; anything else is left out).
fn connect_origins(settings: &Settings, public_url: &str) -> Vec<String> {
    let mut connect = storage_origins(settings, public_url);
    connect.extend(settings.page_connect_src.iter().filter_map(|o| origin(o)));
    connect
}

/// Where the engine PUTs parts: the local store's routes (on `public_url`, which is not
/// this page's origin when the page is reached by another name), or the S3 endpoint (with
/// the bucket in the host name unless path style).
fn storage_origins(settings: &Settings, public_url: &str) -> Vec<String> {
    match settings.storage.kind {
        StorageKind::Local => origin(public_url).into_iter().collect(),
        StorageKind::S3 => {
            let s3 = &settings.storage.s3;
            let mut found: Vec<String> = origin(&s3.endpoint).into_iter().collect();
            if !s3.path_style {
                found.extend(origin(&s3.endpoint).and_then(|o| {
                    let (scheme, host) = o.split_once("://")?;
                    origin(&format!("{scheme}://{}.{host}", s3.bucket))
                }));
            }
            found
        }
    }
}

/// `scheme://host[:port]` of an http(s) URL, or `None` when it is not one that can stand in
/// a policy.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_');
    if !matches!(scheme.as_str(), "http" | "https") || host.is_empty() || !host.chars().all(plain) {
        return None;
    }
    Some(format!("{scheme}://{}", host.to_ascii_lowercase()))
}

/// The `'sha256-…'` sources of every inline script in the page's HTML files.
fn inline_script_hashes(html: &[String]) -> Vec<String> {
    let mut hashes: Vec<String> =
        html.iter().flat_map(|html| inline_scripts(html).into_iter().map(script_hash).collect::<Vec<_>>()).collect();
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}

/// The source of a CSP hash for an inline script's text. The browser hashes the text as
/// parsed, where every line break is a bare LF.
fn script_hash(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    format!("'sha256-{}'", STANDARD.encode(Sha256::digest(text.as_bytes())))
}

/// The text of each `<script>` without a `src` (import maps, inline modules), as written.
fn inline_scripts(html: &str) -> Vec<&str> {
    // ASCII lowercasing keeps every byte where it was, so offsets hold in both.
    let lower = html.to_ascii_lowercase();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(open) = lower[at..].find("<script").map(|i| at + i) {
        let Some(body) = lower[open..].find('>').map(|i| open + i + 1) else { break };
        let Some(close) = lower[body..].find("</script").map(|i| body + i) else { break };
        let has_src = lower[open..body]
            .split(|c: char| c.is_ascii_whitespace() || c == '>')
            .any(|attr| attr == "src" || attr.starts_with("src="));
        if !has_src {
            found.push(&html[body..close]);
        }
        at = close;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_those_without_src() {
        let html = r#"<head><script type="importmap">{ "imports": {} }</script>
            <SCRIPT type="module" src="./app.js"></SCRIPT><script>
let a = 1;</script></head>"#;
        assert_eq!(inline_scripts(html), [r#"{ "imports": {} }"#, "\nlet a = 1;"]);
        assert_eq!(inline_scripts("<p>no scripts</p><script>unclosed"), Vec::<&str>::new());
    }

    #[test]
    fn hashes_are_of_the_text_as_the_browser_parses_it() {
        // echo -n 'alert(1)' | openssl dgst -sha256 -binary | base64
        assert_eq!(script_hash("alert(1)"), "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='");
        assert_eq!(script_hash("a\r\nb"), script_hash("a\nb"));
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(origin("http://127.0.0.1:3900").as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(origin("HTTPS://user:pw@S3.Example.com/bucket?x").as_deref(), Some("https://s3.example.com"));
        for bad in ["", "s3.example.com", "ftp://x", "http://", "http://a b", "http://a;script-src *"] {
            assert_eq!(origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_page_may_also_reach_the_origins_it_is_given() {
        let s = Settings {
            page_connect_src: vec!["http://127.0.0.1:9999/sign".into(), "javascript:alert(1)".into(), "*".into()],
            ..Settings::default()
        };
        assert_eq!(connect_origins(&s, "http://localhost:8080"), ["http://localhost:8080", "http://127.0.0.1:9999"]);
    }

    #[test]
    fn storage_is_the_local_store_or_the_s3_endpoint() {
        let mut s = Settings::default();
        assert_eq!(storage_origins(&s, "http://localhost:8080/"), ["http://localhost:8080"]);
        s.storage.kind = StorageKind::S3;
        s.storage.s3.endpoint = "https://s3.example.com".into();
        assert_eq!(storage_origins(&s, "http://localhost:8080"), ["https://s3.example.com"]);
        s.storage.s3.path_style = false;
        assert_eq!(
            storage_origins(&s, "http://localhost:8080"),
            ["https://s3.example.com", "https://shardrop.s3.example.com"]
        );
    }

    #[test]
    fn the_policy_forbids_framing_and_allows_what_the_page_needs() {
        let csp = policy(&[script_hash("x")], &["http://127.0.0.1:3900".into()]);
        assert_eq!(
            csp,
            format!(
                "default-src 'none'; script-src 'self' 'wasm-unsafe-eval' {}; style-src 'self'; img-src 'self'; \
                 connect-src 'self' http://127.0.0.1:3900; worker-src 'self'; form-action 'self'; base-uri 'none'; \
                 frame-ancestors 'none'",
                script_hash("x")
            )
        );
    }
}
