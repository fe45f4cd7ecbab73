//! `[web]`: the station's own web page and JSON API, and the rules `validate` and `run`
//! share for it (one definition each: the listen address, the password file, the limits).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Problem, Span};
use crate::duration::span_problem;

/// `[web]`: the page at `http://<station>:8080/` and its JSON API. Read-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Serve the page at all.
    pub enabled: bool,
    /// Address and port: `0.0.0.0:8080` (every interface) or `127.0.0.1:8080` (this Pi only).
    pub listen: String,
    /// File whose first line is the page's password (HTTP basic auth on every route).
    /// Without it the page is open to whoever can reach `listen`.
    pub password_file: Option<PathBuf>,
    /// With `password_file`: the only user name accepted. Without it any user name is.
    pub username: Option<String>,
    /// Longest time one request may take (an SSE stream is not a request that ends).
    pub request_timeout: Span,
    /// Connections served at once; more wait for a free slot.
    pub max_connections: usize,
    /// Live-update (`/api/events`) clients at once; more get `503`.
    pub max_sse_clients: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            enabled: true,
            listen: "0.0.0.0:8080".into(),
            password_file: None,
            username: None,
            request_timeout: Span::secs(30),
            max_connections: 64,
            max_sse_clients: 16,
        }
    }
}

/// The longest `request_timeout` accepted.
pub const REQUEST_TIMEOUT_MAX: Span = Span::secs(600);
/// The most connections `max_connections` may allow (a Pi Zero has 512 MB).
pub const MAX_CONNECTIONS_MAX: usize = 4096;

/// The page's `listen` address. The one parser: `validate` and the server call it.
pub fn parse_web_listen(listen: &str) -> Result<SocketAddr, String> {
    listen.parse::<SocketAddr>().map_err(|_| {
        format!(
            "\"{listen}\" is not an address: use e.g. \"0.0.0.0:8080\" (the network) or \"127.0.0.1:8080\" (this Pi only)"
        )
    })
}

/// Why the page's password cannot be used. Never holds the password.
#[derive(Debug, thiserror::Error)]
pub enum WebPasswordError {
    /// The file could not be read.
    #[error("cannot read web.password_file {}: {source}; create it with the password on its first line (`chmod 600`), or remove password_file to serve the page without one", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file's first line is empty.
    #[error("web.password_file {} has an empty first line: write the password there", .0.display())]
    Empty(PathBuf),
}

/// The page's password: the first line of `password_file` (`None` without one). The one
/// reader: `validate` and the server call it.
pub fn web_password(w: &WebConfig) -> Result<Option<String>, WebPasswordError> {
    let Some(path) = &w.password_file else {
        return Ok(None);
    };
    read_first_line(path).map(Some)
}

fn read_first_line(path: &Path) -> Result<String, WebPasswordError> {
    let line =
        super::secrets::password_file_line(path).map_err(|source| WebPasswordError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if line.is_empty() {
        return Err(WebPasswordError::Empty(path.to_path_buf()));
    }
    Ok(line)
}

/// Every problem of `[web]` (nothing when it is disabled).
pub fn check_web(w: &WebConfig) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut add = |key: &str, message: String| {
        out.push(Problem {
            key: key.into(),
            message,
        })
    };
    if !w.enabled {
        return out;
    }
    if let Err(e) = parse_web_listen(&w.listen) {
        add("web.listen", e);
    }
    if let Err(e) = web_password(w) {
        add("web.password_file", e.to_string());
    }
    if w.username.is_some() && w.password_file.is_none() {
        add(
            "web.username",
            "a user name needs a password: add password_file, or remove username".into(),
        );
    }
    if w.username
        .as_deref()
        .is_some_and(|u| u.is_empty() || u.contains(':'))
    {
        add(
            "web.username",
            "must not be empty or contain `:` (HTTP basic auth cannot carry it)".into(),
        );
    }
    if let Some(m) = span_problem(w.request_timeout, Span::secs(1), REQUEST_TIMEOUT_MAX, "30s") {
        add("web.request_timeout", m);
    }
    if w.max_connections == 0 || w.max_connections > MAX_CONNECTIONS_MAX {
        add(
            "web.max_connections",
            format!("must be 1 to {MAX_CONNECTIONS_MAX}: e.g. max_connections = 64"),
        );
    }
    if w.max_sse_clients == 0 || w.max_sse_clients >= w.max_connections.max(1) {
        add(
            "web.max_sse_clients",
            format!(
                "must be at least 1 and below max_connections ({}), so that live pages leave room for other requests: e.g. max_sse_clients = 16",
                w.max_connections
            ),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(check_web(&WebConfig::default()).is_empty());
    }

    #[test]
    fn bad_values_name_their_key() {
        let w = WebConfig {
            listen: "localhost".into(),
            username: Some("a:b".into()),
            request_timeout: Span::secs(0),
            max_connections: 0,
            ..WebConfig::default()
        };
        let keys: Vec<String> = check_web(&w).into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "web.listen",
                "web.username",
                "web.username",
                "web.request_timeout",
                "web.max_connections",
                "web.max_sse_clients"
            ]
        );
    }

    #[test]
    fn password_file_first_line_and_errors_never_show_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret-pw\nignored\n").unwrap();
        let w = WebConfig {
            password_file: Some(path.clone()),
            ..WebConfig::default()
        };
        assert_eq!(web_password(&w).unwrap().as_deref(), Some("s3cret-pw"));
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(web_password(&w), Err(WebPasswordError::Empty(_))));
        let missing = WebConfig {
            password_file: Some(dir.path().join("none")),
            ..WebConfig::default()
        };
        let ps = check_web(&missing);
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].key, "web.password_file");
    }
}
