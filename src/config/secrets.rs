//! Values of secret keys never appear in any output, error paths included.
//!
//! Secret keys: `password` (in `[mqtt]` and in each `[[mqtt.users]]` account) and the
//! user-info part of a broker URL (`mqtt://user:password@host`, which is refused). The
//! systemd unit runs `anemone run`, which checks the config with these rules, so whatever an error prints lands
//! in the journal; therefore:
//!
//! * a TOML syntax error is reported by line and column and the parser's message, never with
//!   the source line (the line, or a line of a multi-line string, may be a password);
//! * a serde error about a secret key is reported without the value serde quotes;
//! * and, behind both, every problem is passed through [`redact`] with the secret values
//!   found in the raw text by [`secret_values`], a line-based scan that works whether or not
//!   the text is valid TOML (all four string styles, bare values, inline tables, dotted keys).

/// Keys whose values are secret wherever they appear.
pub const SECRET_KEYS: [&str; 1] = ["password"];

/// What stands in for a secret in output.
pub const REDACTED: &str = "***";

/// Shorter pieces of a secret are not redacted on their own (they would blank out
/// ordinary words); the whole value always is.
const MIN_PIECE_CHARS: usize = 3;

/// True for a key that holds a secret value, or a list of accounts holding them.
pub fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS.contains(&key) || key == "users"
}

/// Every secret value written in `text` (raw, as written), and the pieces of each worth
/// redacting on their own (each line of a multi-line value, the runs between escapes).
/// Works on text that is not valid TOML.
pub fn secret_values(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for key in SECRET_KEYS {
        for (at, _) in text.match_indices(key) {
            if let Some(value) = value_after_key(text, at, key) {
                found.push(value.to_string());
            }
        }
    }
    for (at, _) in text.match_indices("broker") {
        if let Some(value) = value_after_key(text, at, "broker") {
            if let Some(userinfo) = url_userinfo(value) {
                found.push(userinfo.to_string());
                if let Some((_, pw)) = userinfo.split_once(':') {
                    found.push(pw.to_string());
                }
            }
        }
    }
    let mut pieces = Vec::new();
    for value in found {
        for line in value.lines() {
            let line = line.trim();
            pieces.push(line.to_string());
            pieces.extend(line.split('\\').map(|p| p.trim().to_string()));
        }
        pieces.push(value);
    }
    pieces.retain(|p| p.chars().count() >= MIN_PIECE_CHARS);
    pieces.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    pieces.dedup();
    pieces
}

/// The first line of a password file (`[mqtt] password_file`, `[web] password_file`),
/// without its line ending. The one reader of password files.
pub fn password_file_line(path: &std::path::Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .next()
        .unwrap_or("")
        .trim_end_matches('\r')
        .to_string())
}

/// `text` with every secret value (see [`secret_values`]) replaced by `***`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), REDACTED);
        }
    }
    out
}

/// A TOML syntax error as `line L, column C: message`, without the source line.
pub fn syntax_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().replace('\n', "; ");
    match err.span() {
        Some(span) => {
            let start = floor_char_boundary(text, span.start.min(text.len()));
            let before = &text[..start];
            let line = before.matches('\n').count() + 1;
            let column = before
                .rfind('\n')
                .map_or(before, |nl| &before[nl + 1..])
                .chars()
                .count()
                + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// A serde error about a secret key, without the value it quotes
/// (`invalid type: integer \`…\`, expected a string` → `invalid type, expected a string`).
pub fn without_value(err: &str) -> String {
    let kind = if err.starts_with("invalid value") {
        "invalid value"
    } else if err.starts_with("invalid type") {
        "invalid type"
    } else {
        "not accepted"
    };
    match err.find("expected ") {
        Some(at) => format!("{kind} (not shown), {}", &err[at..]),
        None => format!("{kind} (not shown)"),
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The raw value of `key = value` when the key found at `at` is a whole key (bare,
/// quoted, or the last part of a dotted key), leniently: to the end of the line, or of a
/// multi-line string, when it is not closed.
fn value_after_key<'a>(text: &'a str, at: usize, key: &str) -> Option<&'a str> {
    let before = text[..at].chars().next_back();
    let quote = match before {
        Some(q @ ('"' | '\'')) => Some(q),
        None | Some(' ' | '\t' | '\n' | '\r' | '{' | ',' | '.') => None,
        Some(_) => return None,
    };
    let mut rest = &text[at + key.len()..];
    if let Some(q) = quote {
        rest = rest.strip_prefix(q)?;
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    let rest = rest.strip_prefix('=')?;
    let rest = rest.trim_start_matches([' ', '\t']);
    Some(raw_value(rest))
}

/// The raw text of the value at the start of `rest`.
fn raw_value(rest: &str) -> &str {
    for delim in ["\"\"\"", "'''"] {
        if let Some(body) = rest.strip_prefix(delim) {
            return match body.find(delim) {
                Some(end) => &body[..end],
                None => body,
            };
        }
    }
    if let Some(body) = rest.strip_prefix('"') {
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            match c {
                '\n' | '\r' => return &body[..i],
                '"' if !escaped => return &body[..i],
                '\\' => {
                    escaped = !escaped;
                    continue;
                }
                _ => {}
            }
            escaped = false;
        }
        return body;
    }
    if let Some(body) = rest.strip_prefix('\'') {
        let end = body.find(['\'', '\n', '\r']).unwrap_or(body.len());
        return &body[..end];
    }
    let end = rest
        .find([',', '}', ']', '#', '\n', '\r'])
        .unwrap_or(rest.len());
    rest[..end].trim()
}

/// `user:password` of `scheme://user:password@host…`.
fn url_userinfo(url: &str) -> Option<&str> {
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    let (userinfo, _) = after_scheme.rsplit_once('@')?;
    Some(userinfo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<String> {
        secret_values(text)
    }

    #[test]
    fn finds_secrets_in_every_style_valid_or_not() {
        let text = r#"
[mqtt]
password = "Tr0ub4dor\&3\q"
users = [{ username = "a", password = 'lit-eral-1' }, {password=98765432109}]
"password" = """multi
line-two"""
mqtt.password = '''raw-
multi'''
passwordless = "not-a-secret"
my_password = "not-one-either"
broker = "mqtt://u:url-secret@host"
password = "unterminated-one
"#;
        let s = found(text);
        for want in [
            "Tr0ub4dor\\&3\\q",
            "Tr0ub4dor",
            "lit-eral-1",
            "98765432109",
            "multi\nline-two",
            "line-two",
            "raw-",
            "u:url-secret",
            "url-secret",
            "unterminated-one",
        ] {
            assert!(s.contains(&want.to_string()), "{want:?} not in {s:?}");
        }
        assert!(!s.iter().any(|p| p.contains("not-a-secret")), "{s:?}");
        assert!(!s.iter().any(|p| p.contains("not-one-either")), "{s:?}");
    }

    #[test]
    fn redacts_longest_first() {
        let s = found("password = \"abc\\def\"\n");
        assert_eq!(redact("x abc\\def y abc", &s), "x *** y ***");
    }

    #[test]
    fn syntax_errors_have_no_source_line() {
        let text = "[mqtt]\npassword = \"Tr0ub4dor\\&3\\q\"\n";
        let Err(e) = text.parse::<toml::Table>() else {
            panic!("parsed");
        };
        let m = syntax_error(text, &e);
        assert!(m.starts_with("line 2, column "), "{m}");
        assert!(!m.contains("Tr0ub"), "{m}");
    }

    #[test]
    fn serde_values_are_dropped() {
        assert_eq!(
            without_value("invalid type: integer `98765432109`, expected a string"),
            "invalid type (not shown), expected a string"
        );
    }
}
