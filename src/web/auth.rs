//! `[web] password_file`: HTTP basic auth on every route. The password is compared in
//! constant time and never logged; any user name is accepted unless `[web] username` names
//! the one that is.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

/// The credentials a request must carry. Its `Debug` never shows the password.
#[derive(Clone)]
pub struct Credentials {
    /// The only user name accepted (`None`: any).
    pub username: Option<String>,
    /// The password.
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &crate::config::secrets::REDACTED)
            .finish()
    }
}

impl Credentials {
    /// Credentials for `password`, for `username` only when given.
    pub fn new(username: Option<String>, password: String) -> Credentials {
        Credentials { username, password }
    }

    /// True when the `Authorization` header value carries these credentials.
    pub fn accepts(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(value) = authorization.and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some(encoded) = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .map(|(_, rest)| rest.trim())
        else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            return false;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return false;
        };
        let Some((user, password)) = text.split_once(':') else {
            return false;
        };
        let user_ok = self.username.as_deref().is_none_or(|u| u == user);
        constant_time_eq(password.as_bytes(), self.password.as_bytes()) && user_ok
    }
}

/// Compares without stopping at the first difference (the length still shows).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The middleware: 401 with a `WWW-Authenticate` challenge unless the request carries
/// the credentials.
pub async fn require(State(creds): State<Credentials>, req: Request, next: Next) -> Response {
    if creds.accepts(req.headers().get(header::AUTHORIZATION)) {
        return next.run(req).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"Anemone station\", charset=\"UTF-8\"",
        )],
        "This station's page needs its password ([web] password_file).\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, pass: &str) -> HeaderValue {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        HeaderValue::from_str(&format!("Basic {token}")).unwrap()
    }

    #[test]
    fn password_and_user_name() {
        let any = Credentials::new(None, "pw:with-colon".into());
        assert!(any.accepts(Some(&basic("anyone", "pw:with-colon"))));
        assert!(!any.accepts(Some(&basic("anyone", "pw"))));
        assert!(!any.accepts(None));
        assert!(!any.accepts(Some(&HeaderValue::from_static("Bearer x"))));
        assert!(!any.accepts(Some(&HeaderValue::from_static("Basic !!!"))));
        let named = Credentials::new(Some("school".into()), "pw".into());
        assert!(named.accepts(Some(&basic("school", "pw"))));
        assert!(!named.accepts(Some(&basic("other", "pw"))));
        assert!(!format!("{named:?}").contains("\"pw\""));
    }
}
