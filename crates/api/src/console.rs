//! The operator console: a few static files (`crates/api/console/`) built into the binary and
//! served at `/console/`, with `/` and `/console` redirecting there.
//!
//! The files are plain HTML, CSS and JavaScript modules, so there is no front-end build step and
//! what the repository holds is what the browser runs. The routes are open because they serve
//! only these files; the console asks the operator for a token and sends it with every request it
//! makes to `/v1` (`Authorization: Bearer`, or `?access_token=` on the live WebSockets).
//!
//! Every answer carries a Content-Security-Policy that lets the page load scripts, styles and
//! images from this origin only and connect (fetch and WebSocket) to this origin only, so that
//! text from a call can never run as script even if it reached the page unescaped.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::error::AppError;

/// Where the console is served.
pub const PATH: &str = "/console/";

/// The policy of every console answer: this origin only, no inline script or style, no plugins,
/// no framing, no `<base>` and no form posts elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const INDEX: Asset =
    Asset { name: "index.html", content_type: "text/html; charset=utf-8", body: include_str!("../console/index.html") };

const ASSETS: &[Asset] = &[
    INDEX,
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../console/console.js"),
    },
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../console/console.css"),
    },
    Asset { name: "favicon.svg", content_type: "image/svg+xml", body: include_str!("../console/favicon.svg") },
];

/// The console's routes, open (they serve static files only).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to(PATH) }))
        .route("/console", get(|| async { Redirect::to(PATH) }))
        .route(PATH, get(|| async { serve(&INDEX) }))
        .route("/console/{file}", get(asset))
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|asset| asset.name == file) {
        Some(asset) => serve(asset),
        None => AppError::not_found(format!("no console file {file:?}")).into_response(),
    }
}

fn serve(asset: &Asset) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        // Small files that change with each release: always revalidated, never stale.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin")),
    ];
    (headers, asset.body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_names_is_served() {
        for name in ["console.js", "console.css", "favicon.svg"] {
            assert!(INDEX.body.contains(&format!("\"{name}\"")), "index.html should load {name}");
            assert!(ASSETS.iter().any(|asset| asset.name == name), "{name} is not embedded");
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_the_policy_would_block() {
        for asset in ASSETS.iter().filter(|asset| asset.name.ends_with(".html")) {
            assert!(!asset.body.contains("<script>") && !asset.body.contains(" style="), "{}", asset.name);
            assert!(!asset.body.contains("<style"), "{}", asset.name);
        }
    }
}
