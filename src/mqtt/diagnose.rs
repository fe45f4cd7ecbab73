//! What a failed or lost connection means, in words an operator can act on: the stage it
//! failed at (network, TLS, credentials, protocol) and the likely fix. Used by the publisher
//! and by `mqtt check`.

use super::link::LinkError;

/// Where a connection attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Name resolution, TCP connect, or the connection dropped.
    Network,
    /// The TLS handshake (certificates, versions).
    Tls,
    /// The broker refused the CONNECT (credentials, authorisation, client id).
    Auth,
    /// Anything else in the MQTT exchange.
    Protocol,
}

/// What two stations that share an id are told (both of them: each takes the other's
/// session in turn).
pub const SHARED_ID_FIX: &str = "another station probably uses the same station id (Pis set up from one config file, or a cloned SD card). Give each station its own: leave `[station] id` out of the config so each Pi derives one from its serial number, or set a different `[station] id` (or `[mqtt] client_id`) on each";

/// Puts a connection that worked and then ended into words (a broker restart is the usual
/// cause; a second client with the same client id makes the broker drop the first).
pub fn explain_lost(e: &LinkError, url: &str, client_id: &str) -> String {
    match e {
        LinkError::Closed => format!("{url} closed the connection (a broker restart, or another client connected with the client id \"{client_id}\": set mqtt.client_id to a unique one)"),
        LinkError::Disconnected { reason: 0x8E, .. } => format!("{url} ended the session because another client connected with the client id \"{client_id}\" (MQTT 5 reason 0x8e, session taken over): {SHARED_ID_FIX}"),
        LinkError::Disconnected { .. } => format!("{url}: {e}"),
        LinkError::Io(io) => format!("the connection to {url} failed: {io}"),
        other => format!("the connection to {url} failed: {other}"),
    }
}

/// Puts a failed or lost connection into words an operator can act on.
pub fn explain(e: &LinkError, url: &str) -> (Stage, String) {
    match e {
        LinkError::Refused { .. } => (Stage::Auth, e.to_string()),
        LinkError::Disconnected { .. } => (Stage::Protocol, format!("{url}: {e}")),
        LinkError::Timeout => (
            Stage::Network,
            format!("no answer from {url} in time (is the host reachable and the port right?)"),
        ),
        LinkError::NoConnAck => (
            Stage::Protocol,
            format!("{url} accepted the connection but did not answer CONNECT in time: is it an MQTT broker, and is the port the right one for mqtt:// or mqtts://?"),
        ),
        LinkError::Io(io) => explain_io(io, url),
        LinkError::Tls(io) => match explain_io(io, url) {
            (Stage::Network, msg) if io.kind() != std::io::ErrorKind::ConnectionRefused => (
                Stage::Tls,
                format!("TLS handshake with {url} failed: {msg}"),
            ),
            other => other,
        },
        LinkError::ServerName(_) => (
            Stage::Tls,
            format!("the host in {url} is not a valid TLS server name"),
        ),
        LinkError::NotConnAck(what) => (
            Stage::Protocol,
            format!("{url} did not answer CONNECT with CONNACK ({what}): is it an MQTT broker?"),
        ),
        LinkError::Closed => explain_io(
            &std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
            url,
        ),
        LinkError::Wire(w) => (
            Stage::Protocol,
            format!("{url} sent bytes that are not MQTT: {w}"),
        ),
    }
}

fn explain_io(io: &std::io::Error, url: &str) -> (Stage, String) {
    if let Some(r) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        return explain_rustls(r, url);
    }
    use std::io::ErrorKind::*;
    let msg = match io.kind() {
        ConnectionRefused => format!("{url} refused the TCP connection: no broker listens there"),
        TimedOut => format!("connecting to {url} timed out"),
        ConnectionReset | ConnectionAborted | UnexpectedEof | BrokenPipe => {
            format!("{url} closed the connection ({io}); with TLS, a wrong port or a client certificate the broker did not accept look like this")
        }
        _ => format!("cannot reach {url}: {io}"),
    };
    (Stage::Network, msg)
}

fn explain_rustls(r: &rustls::Error, url: &str) -> (Stage, String) {
    let msg = match r {
        rustls::Error::InvalidCertificate(c) => format!(
            "the certificate of {url} is not trusted: {c:?} (set mqtt.ca_file to the broker's CA, and connect with the host name the certificate names)"
        ),
        rustls::Error::AlertReceived(a) => format!(
            "{url} ended the TLS handshake with alert {a:?} (a client certificate it requires or rejects?)"
        ),
        other => format!("TLS with {url} failed: {other}"),
    };
    (Stage::Tls, msg)
}
