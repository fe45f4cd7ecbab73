//! Reading the table from a running MariaDB/MySQL server through its command-line client.
//!
//! Anemone does not link a MySQL driver: `anemone import` runs the `mariadb` (or `mysql`)
//! client that the school's server machine has anyway, in `--batch --raw --quick` mode
//! (tab-separated, one row a line, streamed), and reads its output. See the README's
//! dependency notes for why (and what a driver crate would add to the Pi's binary).
//!
//! The password never appears on a command line (where `ps` shows it to every user): from
//! `--password-file` it goes into a client option file readable by its owner only and
//! removed afterwards; with `--ask-password` the client prompts on the terminal itself.
//! The session runs in `time_zone = '+00:00'`, so the server hands `TIMESTAMP` values
//! over in UTC (it stored them as UTC, converted from the Pi's local time when the logger
//! inserted them).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{ImportError, Value};

/// `mysql://[user@]host[:port]/database`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// User name (`None`: the client's default, the login name).
    pub user: Option<String>,
    /// Host name or address.
    pub host: String,
    /// TCP port (`None`: the client's default, 3306).
    pub port: Option<u16>,
    /// The database holding the table.
    pub database: String,
}

impl std::str::FromStr for ServerUrl {
    type Err = ImportError;

    fn from_str(s: &str) -> Result<ServerUrl, ImportError> {
        let bad = |what: &str| {
            ImportError::Usage(format!(
                "--from: {what}; write mysql://USER@HOST[:PORT]/DATABASE, e.g. \
                 mysql://pi@localhost/weather"
            ))
        };
        let rest = s
            .strip_prefix("mysql://")
            .or_else(|| s.strip_prefix("mariadb://"))
            .ok_or_else(|| bad("not a mysql:// address"))?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((a, r)) => (Some(a), r),
            None => (None, rest),
        };
        if auth.is_some_and(|a| a.contains(':')) {
            return Err(ImportError::Usage(
                "--from: the address holds a password; other users of this machine can see \
                 command lines: put the password in a file readable only by you and give \
                 --password-file FILE (or --ask-password)"
                    .into(),
            ));
        }
        let (hostport, database) = rest
            .split_once('/')
            .ok_or_else(|| bad("no database name after the host"))?;
        let database = database.trim_end_matches('/');
        if database.is_empty() || database.contains(['/', '?', '`']) {
            return Err(bad("no usable database name after the host"));
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h,
                Some(
                    p.parse::<u16>()
                        .map_err(|_| bad(&format!("port `{p}` is not a number")))?,
                ),
            ),
            None => (hostport, None),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(ServerUrl {
            user: auth.filter(|a| !a.is_empty()).map(str::to_string),
            host: host.to_string(),
            port,
            database: database.to_string(),
        })
    }
}

/// Where the password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// None (socket or passwordless accounts).
    None,
    /// The first line of this file.
    File(PathBuf),
    /// The client asks on the terminal.
    Prompt,
}

/// The client program: `mariadb`, else `mysql`, on `PATH`.
pub fn client_program() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["mariadb", "mysql"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// A client option file holding the password; removed when dropped.
struct OptionFile(PathBuf);

impl OptionFile {
    fn new(password_file: &Path) -> Result<OptionFile, ImportError> {
        let text = std::fs::read_to_string(password_file).map_err(|e| {
            ImportError::Usage(format!(
                "--password-file {}: {e}; give a file holding the password on its first line",
                password_file.display()
            ))
        })?;
        let password = text.lines().next().unwrap_or("");
        let mut quoted = String::with_capacity(password.len() + 2);
        for c in password.chars() {
            if c == '\\' || c == '"' {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("anemone-import-{}-{nanos}.cnf", std::process::id()));
        let mut open = std::fs::OpenOptions::new();
        open.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            open.mode(0o600);
        }
        let io = |e: std::io::Error| ImportError::Io {
            path: path.clone(),
            source: e,
        };
        let mut f = open.open(&path).map_err(io)?;
        let file = OptionFile(path.clone());
        f.write_all(format!("[client]\npassword=\"{quoted}\"\n").as_bytes())
            .map_err(io)?;
        Ok(file)
    }
}

impl Drop for OptionFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `SELECT *` on `table` and hands each row (its column names first) to `each`, in
/// `ID` order. `each` gets the 1-based row number, or a message for a line it cannot read.
pub fn read_rows(
    url: &ServerUrl,
    password: &Password,
    table: &str,
    mut each: impl FnMut(&[String], u64, Result<Vec<Value>, String>) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let program = client_program().ok_or_else(|| {
        ImportError::Usage(
            "no `mariadb` or `mysql` client program on PATH: install it \
             (sudo apt install mariadb-client), or import a dump with --from-dump FILE"
                .into(),
        )
    })?;
    let option_file = match password {
        Password::File(p) => Some(OptionFile::new(p)?),
        _ => None,
    };
    let mut cmd = Command::new(&program);
    if let Some(f) = &option_file {
        // Must be the first option.
        cmd.arg(format!("--defaults-extra-file={}", f.0.display()));
    }
    cmd.args([
        "--batch",
        "--raw",
        "--quick",
        "--default-character-set=utf8mb4",
    ]);
    cmd.arg(format!("--host={}", url.host));
    if let Some(p) = url.port {
        cmd.arg(format!("--port={p}"));
    }
    if let Some(u) = &url.user {
        cmd.arg(format!("--user={u}"));
    }
    if *password == Password::Prompt {
        cmd.arg("--password");
    }
    cmd.arg(format!("--database={}", url.database));
    // The type of CREATED rides along (an uncorrelated subquery, evaluated once): a
    // DATETIME column is local wall time, a TIMESTAMP comes back in the session's UTC.
    cmd.arg("-e").arg(format!(
        "SET time_zone = '+00:00'; SELECT t.*, (SELECT DATA_TYPE FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}' AND COLUMN_NAME = 'CREATED') \
         AS {CREATED_TYPE} FROM `{table}` t ORDER BY t.ID"
    ));
    cmd.stdin(Stdio::inherit()).stdout(Stdio::piped());
    cmd.stderr(if *password == Password::Prompt {
        Stdio::inherit()
    } else {
        Stdio::piped()
    });
    let mut child = cmd.spawn().map_err(|e| ImportError::Io {
        path: program.clone(),
        source: e,
    })?;
    let stderr = child.stderr.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut s, &mut text);
            text
        })
    });
    let mut result = Ok(());
    if let Some(out) = child.stdout.take() {
        result = read_output(BufReader::new(out), &mut each);
    }
    let status = child.wait().map_err(|e| ImportError::Io {
        path: program.clone(),
        source: e,
    })?;
    drop(option_file);
    let err_text = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    if !status.success() {
        let what = err_text.trim();
        return Err(ImportError::Server(format!(
            "{} ended with {status}: {}",
            program.display(),
            if what.is_empty() {
                "no message (see above)"
            } else {
                what
            }
        )));
    }
    result
}

/// The extra column naming CREATED's type.
pub const CREATED_TYPE: &str = "anemone_created_type";

fn read_output(
    out: impl BufRead,
    each: &mut impl FnMut(&[String], u64, Result<Vec<Value>, String>) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let mut header: Option<Vec<String>> = None;
    for (n, line) in out.split(b'\n').enumerate() {
        let line =
            line.map_err(|e| ImportError::Server(format!("reading the client's output: {e}")))?;
        let line = String::from_utf8_lossy(&line);
        let fields: Vec<&str> = line.split('\t').collect();
        match &header {
            None => header = Some(fields.iter().map(|s| s.to_string()).collect()),
            Some(cols) => {
                let row = n as u64;
                let values = if fields.len() == cols.len() {
                    Ok(fields
                        .iter()
                        .map(|f| {
                            if *f == "NULL" {
                                Value::Null
                            } else {
                                Value::Text(f.to_string())
                            }
                        })
                        .collect())
                } else {
                    Err(format!(
                        "{} fields for {} columns (a value holding a tab or a line break?)",
                        fields.len(),
                        cols.len()
                    ))
                };
                each(cols, row, values)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u: ServerUrl = "mysql://pi@db.school:3307/weather".parse().unwrap();
        assert_eq!(u.user.as_deref(), Some("pi"));
        assert_eq!((u.host.as_str(), u.port), ("db.school", Some(3307)));
        assert_eq!(u.database, "weather");
        let u: ServerUrl = "mariadb://localhost/weather".parse().unwrap();
        assert_eq!((u.user, u.port), (None, None));
        let e = "mysql://pi:s3cret@h/db".parse::<ServerUrl>().unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("--password-file") && !msg.contains("s3cret"),
            "{msg}"
        );
        assert!("mysql://h".parse::<ServerUrl>().is_err());
        assert!("postgres://h/db".parse::<ServerUrl>().is_err());
        assert!("mysql://h:x/db".parse::<ServerUrl>().is_err());
    }

    #[test]
    fn output_lines_become_rows() {
        let text = b"ID\tA\n1\t2.5\n2\tNULL\n3\n";
        let mut got = Vec::new();
        read_output(&text[..], &mut |cols: &[String], n, r| {
            got.push((cols.len(), n, r));
            Ok(())
        })
        .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0].2,
            Ok(vec![Value::Text("1".into()), Value::Text("2.5".into())])
        );
        assert_eq!(got[1].2, Ok(vec![Value::Text("2".into()), Value::Null]));
        assert!(got[2].2.is_err());
        assert_eq!(got[2].1, 3);
    }
}
