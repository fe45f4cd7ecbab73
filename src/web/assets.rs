//! The page's own files (`/`, `/app.js`, `/app.css`, `/favicon.svg`), built into the
//! binary ([`super::page`]), served with their content type, `Cache-Control: no-cache`
//! and an `ETag`, so a browser asks again each time and gets `304 Not Modified` while the
//! binary has not changed.

use std::hash::{Hash, Hasher};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::page;

/// One built-in file.
struct Asset {
    body: &'static str,
    content_type: &'static str,
}

fn etag(body: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    format!("\"{:016x}\"", h.finish())
}

fn serve(asset: Asset, headers: &HeaderMap) -> Response {
    let tag = etag(asset.body);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let common = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::ETAG,
            HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"0\"")),
        ),
    ];
    if matches {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.body,
    )
        .into_response()
}

/// `GET /`.
pub async fn index(headers: HeaderMap) -> Response {
    serve(
        Asset {
            body: page::INDEX_HTML,
            content_type: "text/html; charset=utf-8",
        },
        &headers,
    )
}

/// `GET /app.js`.
pub async fn app_js(headers: HeaderMap) -> Response {
    serve(
        Asset {
            body: page::APP_JS,
            content_type: "text/javascript; charset=utf-8",
        },
        &headers,
    )
}

/// `GET /app.css`.
pub async fn app_css(headers: HeaderMap) -> Response {
    serve(
        Asset {
            body: page::APP_CSS,
            content_type: "text/css; charset=utf-8",
        },
        &headers,
    )
}

/// `GET /favicon.svg`.
pub async fn favicon(headers: HeaderMap) -> Response {
    serve(
        Asset {
            body: page::FAVICON_SVG,
            content_type: "image/svg+xml",
        },
        &headers,
    )
}
