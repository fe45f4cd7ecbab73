//! `anemone mqtt check`: connects with the configured settings and reports, step by step,
//! what works: DNS, TCP, TLS, authentication (and the MQTT version spoken), publish
//! permission.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::broker::{probe, Probe};
use super::connect::ConnectSettings;
use super::diagnose::{explain, Stage};
use super::link::{Link, LinkError};
use super::topics::Topics;
use super::wire::{self, Incoming, Qos};
use crate::config::Config;

/// The outcome of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// It works.
    Ok,
    /// Works, with a caveat worth reading.
    Warning,
    /// It does not work; later steps were skipped.
    Failed,
    /// Not tried (an earlier step failed, or it does not apply).
    Skipped,
}

/// One step of the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckStep {
    /// `settings`, `dns`, `tcp`, `tls`, `auth`, `publish`.
    pub name: &'static str,
    /// How it went.
    pub status: StepStatus,
    /// What was found, in words.
    pub detail: String,
}

/// Everything `mqtt check` found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckReport {
    /// The broker checked (URL, no credentials).
    pub broker: String,
    /// The steps, in order.
    pub steps: Vec<CheckStep>,
}

impl CheckReport {
    /// True when no step failed (the command exits 0).
    pub fn ok(&self) -> bool {
        !self.steps.iter().any(|s| s.status == StepStatus::Failed)
    }

    /// `mqtt check --json`: `{"broker", "ok", "failed_step", "steps": [{"name",
    /// "status" (ok, warning, failed, skipped), "detail"}]}`. Never a credential: the
    /// broker is the URL without them, and details are the same words `render` prints.
    pub fn json(&self) -> serde_json::Value {
        let steps: Vec<serde_json::Value> = self
            .steps
            .iter()
            .map(|s| {
                let status = match s.status {
                    StepStatus::Ok => "ok",
                    StepStatus::Warning => "warning",
                    StepStatus::Failed => "failed",
                    StepStatus::Skipped => "skipped",
                };
                serde_json::json!({ "name": s.name, "status": status, "detail": s.detail })
            })
            .collect();
        serde_json::json!({
            "broker": self.broker,
            "ok": self.ok(),
            "failed_step": self.failed_step().map(|s| s.name),
            "steps": steps,
        })
    }

    /// The first failed step.
    pub fn failed_step(&self) -> Option<&CheckStep> {
        self.steps.iter().find(|s| s.status == StepStatus::Failed)
    }

    fn push(&mut self, name: &'static str, status: StepStatus, detail: impl Into<String>) {
        self.steps.push(CheckStep {
            name,
            status,
            detail: detail.into(),
        });
    }

    fn skip_rest(&mut self, names: &[&'static str]) {
        for n in names {
            self.push(n, StepStatus::Skipped, "not tried");
        }
    }
}

/// The report as text for the terminal.
pub fn render(r: &CheckReport) -> String {
    let mut out = format!("MQTT check of {}\n", r.broker);
    for s in &r.steps {
        let mark = match s.status {
            StepStatus::Ok => "ok  ",
            StepStatus::Warning => "warn",
            StepStatus::Failed => "FAIL",
            StepStatus::Skipped => "skip",
        };
        let _ = writeln!(out, "  [{mark}] {:<8} {}", s.name, s.detail);
    }
    match r.failed_step() {
        Some(s) => {
            let _ = writeln!(out, "Failed at step `{}`.", s.name);
        }
        None => out.push_str("All steps passed.\n"),
    }
    out
}

const STEPS: [&str; 5] = ["dns", "tcp", "tls", "auth", "publish"];

/// Runs the check against the configured broker (for `broker = "embedded"`: whatever
/// answers on `listen`, normally the broker of a running `anemone run`).
pub async fn check(cfg: &Config) -> CheckReport {
    let mut report = CheckReport::default();
    let target = if cfg.mqtt.broker == "embedded" {
        match crate::config::parse_listen(&cfg.mqtt.listen) {
            Ok(a) => Some(super::loopback(a)),
            Err(e) => {
                report.broker = cfg.mqtt.listen.clone();
                report.push("settings", StepStatus::Failed, format!("mqtt.listen {e}"));
                report.skip_rest(&STEPS);
                return report;
            }
        }
    } else {
        None
    };
    let settings = match ConnectSettings::from_config(cfg, target) {
        Ok(s) => s,
        Err(e) => {
            report.broker = if cfg.mqtt.broker.contains('@') {
                "the configured broker (its URL is not shown: it holds credentials)".into()
            } else {
                cfg.mqtt.broker.clone()
            };
            report.push("settings", StepStatus::Failed, e.to_string());
            report.skip_rest(&STEPS);
            return report;
        }
    };
    report.broker = settings.url();
    let who = match &settings.username {
        Some(u) => format!("user \"{u}\""),
        None => "anonymous".into(),
    };
    report.push(
        "settings",
        StepStatus::Ok,
        format!(
            "{}, {who}, client id \"{}\"",
            settings.url(),
            settings.client_id
        ),
    );

    // DNS
    let addrs = match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::lookup_host(settings.host_port()),
    )
    .await
    {
        Ok(Ok(a)) => a.collect::<Vec<_>>(),
        Ok(Err(e)) => {
            report.push(
                "dns",
                StepStatus::Failed,
                format!("cannot resolve \"{}\": {e}", settings.host),
            );
            report.skip_rest(&STEPS[1..]);
            return report;
        }
        Err(_) => {
            report.push(
                "dns",
                StepStatus::Failed,
                format!("resolving \"{}\" timed out", settings.host),
            );
            report.skip_rest(&STEPS[1..]);
            return report;
        }
    };
    let Some(addr) = addrs.first().copied() else {
        report.push(
            "dns",
            StepStatus::Failed,
            format!("\"{}\" has no address", settings.host),
        );
        report.skip_rest(&STEPS[1..]);
        return report;
    };
    report.push(
        "dns",
        StepStatus::Ok,
        format!(
            "{} → {}",
            settings.host,
            addrs
                .iter()
                .map(|a| a.ip().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );

    // TCP
    match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => report.push("tcp", StepStatus::Ok, format!("{addr} accepts connections")),
        Ok(Err(e)) => {
            let mut detail = format!("cannot connect to {addr}: {e}");
            if cfg.mqtt.broker == "embedded" && e.kind() == std::io::ErrorKind::ConnectionRefused {
                detail.push_str(" (the embedded broker runs only while `anemone run` runs)");
            }
            report.push("tcp", StepStatus::Failed, detail);
            report.skip_rest(&STEPS[2..]);
            return report;
        }
        Err(_) => {
            report.push(
                "tcp",
                StepStatus::Failed,
                format!("no answer from {addr} within 5 s (firewall?)"),
            );
            report.skip_rest(&STEPS[2..]);
            return report;
        }
    }

    // TLS
    match settings.tls_config() {
        Some(tls) => match tls_handshake(addr, &settings.host, tls).await {
            Ok(detail) => report.push("tls", StepStatus::Ok, detail),
            Err(detail) => {
                report.push("tls", StepStatus::Failed, detail);
                report.skip_rest(&STEPS[3..]);
                return report;
            }
        },
        None => {
            if settings.tls {
                report.push("tls", StepStatus::Skipped, "no TLS settings");
            } else if cfg.mqtt.broker == "embedded"
                || settings.host == "127.0.0.1"
                || settings.host == "localhost"
            {
                report.push("tls", StepStatus::Skipped, "plain mqtt:// on this machine");
            } else {
                report.push(
                    "tls",
                    StepStatus::Warning,
                    "plain mqtt://: readings (and any password) travel unencrypted",
                );
            }
        }
    }

    if cfg.mqtt.broker == "embedded" && probe(addr).await != Probe::Mqtt {
        report.push(
            "auth",
            StepStatus::Failed,
            format!("{addr} is not an MQTT broker"),
        );
        report.skip_rest(&STEPS[4..]);
        return report;
    }

    mqtt_steps(&settings, &Topics::new(cfg), &mut report).await;
    report
}

async fn tls_handshake(
    addr: std::net::SocketAddr,
    host: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<String, String> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|_| format!("\"{host}\" is not a valid TLS server name"))?;
    let task = tokio::task::spawn_blocking(move || -> Result<String, String> {
        let mut sock = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = sock.set_write_timeout(Some(Duration::from_secs(5)));
        let mut conn = rustls::ClientConnection::new(config, name)
            .map_err(|e| format!("TLS setup failed: {e}"))?;
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut sock) {
                let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
                return Err(match inner {
                    Some(rustls::Error::InvalidCertificate(c)) => format!(
                        "the broker's certificate is not trusted: {c:?} (set mqtt.ca_file to its CA; the URL's host must be named in the certificate)"
                    ),
                    Some(other) => format!("TLS handshake failed: {other}"),
                    None => format!("TLS handshake failed: {e} (is this port TLS?)"),
                });
            }
        }
        let version = conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_else(|| "TLS".into());
        Ok(format!("{version} handshake done, certificate verified"))
    });
    match task.await {
        Ok(r) => r,
        Err(e) => Err(format!("TLS check failed: {e}")),
    }
}

async fn mqtt_steps(settings: &ConnectSettings, topics: &Topics, report: &mut CheckReport) {
    let client_id = format!("{}-check", settings.client_id);
    let url = settings.url();

    // CONNECT
    let packet = settings.connect_packet(&client_id, None);
    let mut link = match Link::connect(settings, &packet).await {
        Ok(link) => {
            let who = match &settings.username {
                Some(u) => format!("accepted user \"{u}\""),
                None => "accepted an anonymous client".into(),
            };
            report.push(
                "auth",
                StepStatus::Ok,
                format!("the broker {who}, speaking {}", link.version),
            );
            link
        }
        Err(e) => {
            let (stage, msg) = explain(&e, &url);
            let name = match stage {
                Stage::Tls => "tls",
                Stage::Network => "tcp",
                _ => "auth",
            };
            if name != "auth" {
                report.steps.retain(|s| s.name != name);
            }
            report.push(name, StepStatus::Failed, msg);
            if name != "auth" {
                report.push("auth", StepStatus::Skipped, "not tried");
            }
            report.push("publish", StepStatus::Skipped, "not tried");
            return;
        }
    };

    // Publish permission: subscribe to the test topic (to see the message come back where
    // the account may read), publish with QoS 1, wait for PUBACK.
    let topic = topics.check();
    let payload = format!(
        "{{\"check\": \"{}\"}}",
        crate::reading::format_ts(crate::clock::system_now())
    );
    const SUB_ID: u16 = 1;
    const PUB_ID: u16 = 2;
    let version = link.version;
    wire::subscribe(
        &mut link.writer.buf,
        version,
        SUB_ID,
        &topic,
        Qos::AtLeastOnce,
    );
    wire::publish(
        &mut link.writer.buf,
        version,
        &topic,
        payload.as_bytes(),
        Qos::AtLeastOnce,
        false,
        PUB_ID,
    );
    let mut acked = false;
    let mut subscribed = None;
    let mut echoed = false;
    let limit = Instant::now() + Duration::from_secs(5);
    while !(acked && (echoed || subscribed == Some(false))) {
        let step = tokio::time::timeout_at(limit, async {
            if link.writer.pending() {
                link.writer.write_all().await?;
            }
            link.reader.next().await
        })
        .await;
        match step {
            Ok(Ok(Incoming::PubAck(PUB_ID))) => acked = true,
            Ok(Ok(Incoming::SubAck {
                pkid: SUB_ID,
                codes,
            })) => {
                subscribed = Some(codes.iter().all(|c| *c < 0x80));
            }
            Ok(Ok(Incoming::PubRefused {
                pkid: PUB_ID,
                reason,
            })) => {
                report.push(
                    "publish",
                    StepStatus::Failed,
                    format!(
                        "the broker refused a publish to {topic}: {} (MQTT 5 reason code {reason:#04x}); allow this account to write {}/# (e.g. in the broker's ACL)",
                        wire::reason_code_name(reason),
                        topics.prefix
                    ),
                );
                wire::disconnect(&mut link.writer.buf);
                let _ = tokio::time::timeout(Duration::from_secs(1), link.writer.close()).await;
                return;
            }
            Ok(Ok(Incoming::Publish {
                topic: t,
                payload: p,
                qos,
                pkid,
                ..
            })) => {
                if let (1, Some(id)) = (qos, pkid) {
                    wire::puback(&mut link.writer.buf, id);
                }
                echoed |= t == topic && p == payload.as_bytes();
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                let text = match e {
                    LinkError::Closed => format!("the broker closed the connection on a publish to {topic} (this account may not publish there)"),
                    other => format!("publishing to {topic} failed: {}", explain(&other, &url).1),
                };
                report.push("publish", StepStatus::Failed, text);
                return;
            }
            Err(_) => break,
        }
    }
    if !acked {
        report.push(
            "publish",
            StepStatus::Failed,
            format!("no PUBACK for a QoS 1 publish to {topic} within 5 s"),
        );
    } else if echoed {
        report.push(
            "publish",
            StepStatus::Ok,
            format!("published to {topic} (QoS 1 acknowledged and delivered)"),
        );
    } else {
        report.push("publish", StepStatus::Warning, format!("the broker acknowledged a publish to {topic} but did not deliver it back; under MQTT 3.1.1 Mosquitto acknowledges publishes its ACL denies, so check that this account may write {}/#", topics.prefix));
    }
    wire::disconnect(&mut link.writer.buf);
    let _ = tokio::time::timeout(Duration::from_secs(1), link.writer.close()).await;
}
