//! The page through the binary: `run` logs its URL, the password guards every route and is
//! never logged, and a taken port costs the page, not the station.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;

use super::client::{get, request};

const PASSWORD: &str = "harbour-Seal-4417";

/// The example config on simulated buses, MQTT off, `web` as given.
fn config(dir: &Path, web: &str) -> std::path::PathBuf {
    let text = anemone::config::EXAMPLE
        .replace("simulate = false", "simulate = true")
        .replace("[mqtt]\n", "[mqtt]\nenabled = false\n")
        .replace("listen = \"0.0.0.0:8080\"", web)
        .replace(
            "path = \"/var/lib/anemone/anemone.db\"",
            &format!("path = \"{}\"", dir.join("web.db").display()),
        );
    let path = dir.join("web.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

#[test]
fn the_password_guards_every_route_and_never_reaches_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("web-password");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "listen = \"127.0.0.1:0\"\npassword_file = \"{}\"\nusername = \"school\"",
            pw.display()
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_anemone"))
        .env("RUST_LOG", "debug")
        .args(["run", "--simulate", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = String::new();
    let mut port = None;
    while port.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no `Web page:` line in 60 s:\n{log}"));
        log.push_str(&line);
        log.push('\n');
        port = line
            .split("Web page: http://localhost:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse::<u16>().ok());
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port.unwrap()));
    let right = basic("school", PASSWORD);
    for path in [
        "/",
        "/app.js",
        "/api/now",
        "/api/health",
        "/export.csv",
        "/chart/rain.svg",
    ] {
        let none = get(addr, path);
        assert_eq!(none.status, 401, "{path}");
        assert!(none
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic "));
        for wrong in [
            basic("school", "harbour-seal-4417"),
            basic("other", PASSWORD),
        ] {
            let a = request(addr, "GET", path, &[("Authorization", &wrong)]);
            assert_eq!(a.status, 401, "{path}");
        }
        let ok = request(addr, "GET", path, &[("Authorization", &right)]);
        assert_eq!(ok.status, 200, "{path}");
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    log.extend(rx.try_iter().map(|l| l + "\n"));
    assert!(status.success(), "{log}");
    assert!(
        !log.contains(PASSWORD),
        "the password reached the log:\n{log}"
    );
    assert!(
        !log.contains(&right[6..]),
        "the credentials reached the log"
    );
}

#[test]
fn a_taken_port_costs_the_page_not_the_station() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let cfg = config(dir.path(), &format!("listen = \"{addr}\""));
    let out = Command::new(env!("CARGO_BIN_EXE_anemone"))
        .env("RUST_LOG", "warn")
        .args([
            "run",
            "--simulate",
            "--speed",
            "max",
            "--duration",
            "10m",
            "--config",
        ])
        .arg(&cfg)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(
        errors[0].contains(&format!("cannot serve the web page on {addr}")),
        "{log}"
    );
    assert!(errors[0].contains("[web] listen"), "{log}");
    let store =
        anemone::store::Store::open_read_only(&dir.path().join("web.db"), chrono_tz::UTC).unwrap();
    assert!(store.count_readings(&Default::default()).unwrap() > 1000);
    drop(taken);
}
