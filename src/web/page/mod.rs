//! The page's static assets, built into the binary: no CDN, no web fonts, no third-party
//! code. The server serves them at `/`, `/app.js`, `/app.css` and `/favicon.svg`.

/// The page (`/`).
pub const INDEX_HTML: &str = include_str!("index.html");
/// The page's script (`/app.js`).
pub const APP_JS: &str = include_str!("app.js");
/// The page's style sheet (`/app.css`).
pub const APP_CSS: &str = include_str!("app.css");
/// The page's icon (`/favicon.svg`).
pub const FAVICON_SVG: &str = include_str!("favicon.svg");
