//! One connection to the broker: TCP (and TLS), CONNECT and CONNACK, then a [`Reader`] and
//! a [`Writer`] that the publisher (and `mqtt check`) drive from their own `select!` loop.
//!
//! Why our own client rather than a general-purpose one: the publisher sends up to a few
//! hundred QoS 1 messages a second and must know which packet id carries which reading. Here
//! it encodes every message that is due into the writer's buffer and the socket gets them
//! in one write, acknowledgements are parsed straight from the read buffer, packet ids are
//! chosen by the publisher's own bookkeeping, and nothing crosses a channel or another task.
//! (Through a general-purpose client such as rumqttc, every message is a request through a
//! channel, a wake-up of its event loop task, one `writev` system call and an event back:
//! bench/README.md, "CPU with Mosquitto".)
//!
//! Both halves are cancel-safe: [`Reader::next`] keeps partial packets in its buffer, and
//! [`Writer::write_some`] only drops bytes from its buffer once the socket took them.

use std::io;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::connect::{ConnectSettings, Protocol};
use super::wire::{self, Incoming, Version, WireError};

/// The byte stream under MQTT: plain TCP or TLS over it.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// How long encoded messages may wait for more to share their write (a dashboard sees a
/// reading this much later at most; a burst costs one system call per batch, not per tick).
pub const LINGER: Duration = Duration::from_millis(2);
/// Encoded bytes that are written at once, without lingering.
pub const LINGER_BYTES: usize = 16 * 1024;

/// Largest packet accepted from the broker (a retained message on a topic we subscribe to).
pub const MAX_INCOMING: usize = 256 * 1024;

/// Why a connection could not be made or ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Name resolution, TCP connect, or the socket failed.
    #[error("{0}")]
    Io(#[source] io::Error),
    /// The TLS handshake failed (certificate, alert, not a TLS port).
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] io::Error),
    /// The host is not usable as a TLS server name.
    #[error("{0} is not a valid TLS server name")]
    ServerName(String),
    /// No TCP (and TLS) connection within the connect timeout.
    #[error("no connection in time")]
    Timeout,
    /// Connected, but no CONNACK within the connect timeout.
    #[error("no CONNACK in time")]
    NoConnAck,
    /// The broker refused the CONNECT with this return code (MQTT 5: reason code).
    #[error("{}{}", wire::connack_code_text(*.version, *.code), .reason.as_ref().map(|r| format!(" (the broker says: {r})")).unwrap_or_default())]
    Refused {
        /// The version the CONNECT spoke.
        version: Version,
        /// The CONNACK return code or reason code.
        code: u8,
        /// The MQTT 5 Reason String, if the broker sent one.
        reason: Option<String>,
    },
    /// The broker ended the session with an MQTT 5 DISCONNECT.
    #[error("the broker ended the session: {} (MQTT 5 reason {reason:#04x}){}", wire::reason_code_name(*.reason), .text.as_ref().map(|r| format!(", saying \"{r}\"")).unwrap_or_default())]
    Disconnected {
        /// The DISCONNECT reason code.
        reason: u8,
        /// The broker's Reason String, if any.
        text: Option<String>,
    },
    /// Something other than CONNACK answered CONNECT.
    #[error("the broker did not answer CONNECT with CONNACK ({0})")]
    NotConnAck(String),
    /// The broker sent bytes that are not MQTT.
    #[error("{0}")]
    Wire(#[from] WireError),
    /// The broker closed the connection.
    #[error("the broker closed the connection")]
    Closed,
}

/// The receiving half.
pub struct Reader {
    io: ReadHalf<Box<dyn Io>>,
    buf: Vec<u8>,
    start: usize,
    version: Version,
}

impl Reader {
    /// The next packet already read from the socket, if a whole one is there (no I/O). An
    /// MQTT 5 DISCONNECT from the broker is returned as [`LinkError::Disconnected`].
    pub fn buffered(&mut self) -> Result<Option<Incoming>, LinkError> {
        match wire::decode(&self.buf[self.start..], MAX_INCOMING, self.version)? {
            Some((packet, used)) => {
                self.start += used;
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                match packet {
                    Incoming::Disconnect { reason, text } => {
                        Err(LinkError::Disconnected { reason, text })
                    }
                    packet => Ok(Some(packet)),
                }
            }
            None => Ok(None),
        }
    }

    /// The next packet from the broker. Cancel-safe.
    pub async fn next(&mut self) -> Result<Incoming, LinkError> {
        loop {
            if let Some(packet) = self.buffered()? {
                return Ok(packet);
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            self.fill().await?;
        }
    }

    /// One read from the socket into the buffer. Cancel-safe.
    async fn fill(&mut self) -> Result<(), LinkError> {
        self.buf.reserve(4096);
        let n = self
            .io
            .read_buf(&mut self.buf)
            .await
            .map_err(LinkError::Io)?;
        if n == 0 {
            return Err(LinkError::Closed);
        }
        Ok(())
    }
}

/// The sending half: encode packets into [`Writer::buf`], then let [`Writer::write_some`]
/// hand them to the socket.
pub struct Writer {
    io: WriteHalf<Box<dyn Io>>,
    /// The protocol version of this connection (for encoding PUBLISH and SUBSCRIBE).
    pub version: Version,
    /// QoS 1 publishes the broker takes unacknowledged at once (MQTT 5 Receive Maximum;
    /// 65 535 when the broker names none, and under 3.1.1).
    pub receive_maximum: usize,
    /// Packets not yet handed to the socket (from `sent` on).
    pub buf: Vec<u8>,
    sent: usize,
    needs_flush: bool,
    last_sent: Instant,
    unsent_since: Option<Instant>,
    /// Write without lingering: nothing more will join these bytes soon.
    urgent: bool,
}

impl Writer {
    /// True when bytes wait for the socket.
    pub fn pending(&self) -> bool {
        self.sent < self.buf.len() || self.needs_flush
    }

    /// When what is buffered should be written: at once when it is [`LINGER_BYTES`] or
    /// more (or a TLS flush is owed), else [`LINGER`] after the first of it was buffered;
    /// `None` when nothing waits.
    pub fn write_due(&mut self, now: Instant) -> Option<Instant> {
        if self.needs_flush || self.buf.len() - self.sent >= LINGER_BYTES {
            return Some(now);
        }
        if self.sent == self.buf.len() {
            return None;
        }
        if self.urgent {
            return Some(now);
        }
        Some(*self.unsent_since.get_or_insert(now) + LINGER)
    }

    /// Asks for what is buffered to be written without lingering (the publisher's window is
    /// full: no more messages can join it before acknowledgements come back).
    pub fn write_now(&mut self) {
        self.urgent = true;
    }

    /// When bytes last went to the socket (for keep-alive pings).
    pub fn last_sent(&self) -> Instant {
        self.last_sent
    }

    /// One write of what is buffered (then a flush, which only TLS needs). Cancel-safe.
    pub async fn write_some(&mut self) -> Result<(), LinkError> {
        if self.sent < self.buf.len() {
            let n = self
                .io
                .write(&self.buf[self.sent..])
                .await
                .map_err(LinkError::Io)?;
            if n == 0 {
                return Err(LinkError::Closed);
            }
            self.sent += n;
            self.last_sent = Instant::now();
            if self.sent == self.buf.len() {
                self.buf.clear();
                self.sent = 0;
                self.needs_flush = true;
                self.unsent_since = None;
                self.urgent = false;
            }
        }
        if self.needs_flush && self.sent == 0 {
            self.io.flush().await.map_err(LinkError::Io)?;
            self.needs_flush = false;
        }
        Ok(())
    }

    /// Writes everything buffered, then closes the sending side (TCP FIN; TLS
    /// close_notify).
    pub async fn close(&mut self) -> Result<(), LinkError> {
        self.write_all().await?;
        self.io.shutdown().await.map_err(LinkError::Io)
    }

    /// Writes everything buffered.
    pub async fn write_all(&mut self) -> Result<(), LinkError> {
        while self.pending() {
            self.write_some().await?;
        }
        Ok(())
    }
}

/// A connected, accepted MQTT session.
pub struct Link {
    /// Packets from the broker.
    pub reader: Reader,
    /// Packets to the broker.
    pub writer: Writer,
    /// The broker kept a session for this client id (never with a clean session).
    pub session_present: bool,
    /// The protocol version spoken.
    pub version: Version,
    /// The keep-alive the broker asks for instead of ours (MQTT 5 Server Keep Alive).
    pub server_keep_alive: Option<Duration>,
}

impl Link {
    /// TCP (+ TLS) to the broker in `settings`, CONNECT, CONNACK, within the settings'
    /// connect timeout, in the protocol version the settings ask for.
    ///
    /// With `mqtt.protocol = "auto"` the first connection tries MQTT 5; a broker that
    /// answers it with "unacceptable protocol version" (CONNACK code 1 or reason 0x84) or
    /// closes the connection gets a second CONNECT in MQTT 3.1.1. The version that was
    /// accepted is kept in the settings (shared by their clones) and used from then on;
    /// it is logged once.
    pub async fn connect(
        settings: &ConnectSettings,
        connect: &wire::Connect<'_>,
    ) -> Result<Link, LinkError> {
        let known = settings.spoken();
        let first = match (settings.protocol, known) {
            (Protocol::V311, _) => Version::V311,
            (Protocol::V5, _) => Version::V5,
            (Protocol::Auto, Some(v)) => v,
            (Protocol::Auto, None) => Version::V5,
        };
        let tried = Self::connect_as(settings, connect, first).await;
        let link = match tried {
            Err(e) if settings.protocol == Protocol::Auto && known.is_none() && not_v5(&e) => {
                tracing::debug!(
                    "The broker at {} did not take an MQTT 5 CONNECT ({e}); trying MQTT 3.1.1.",
                    settings.url()
                );
                Self::connect_as(settings, connect, Version::V311).await?
            }
            other => other?,
        };
        if known.is_none() {
            settings.remember(link.version);
            match link.version {
                Version::V5 => tracing::info!(
                    "Speaking MQTT 5 with the broker at {}: a publish it refuses is not counted as delivered.",
                    settings.url()
                ),
                Version::V311 if settings.protocol == Protocol::Auto => tracing::info!(
                    "The broker at {} does not speak MQTT 5; speaking MQTT 3.1.1 with it from now on (it cannot say when it refuses a publish).",
                    settings.url()
                ),
                Version::V311 => tracing::info!(
                    "Speaking MQTT 3.1.1 with the broker at {} (mqtt.protocol).",
                    settings.url()
                ),
            }
        }
        Ok(link)
    }

    /// One connection attempt in `version`.
    async fn connect_as(
        settings: &ConnectSettings,
        connect: &wire::Connect<'_>,
        version: Version,
    ) -> Result<Link, LinkError> {
        let io =
            match tokio::time::timeout(settings.connect_timeout, Self::transport(settings)).await {
                Ok(r) => r?,
                Err(_) => return Err(LinkError::Timeout),
            };
        match tokio::time::timeout(
            settings.connect_timeout,
            Self::handshake(io, connect, version),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(LinkError::NoConnAck),
        }
    }

    /// TCP, and TLS over it for `mqtts://`.
    async fn transport(settings: &ConnectSettings) -> Result<Box<dyn Io>, LinkError> {
        let tcp = TcpStream::connect(settings.host_port())
            .await
            .map_err(LinkError::Io)?;
        // Packets are batched by the publisher; Nagle would only delay the last of a batch.
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match settings.tls_config() {
            Some(config) => {
                let name = ServerName::try_from(settings.host.clone())
                    .map_err(|_| LinkError::ServerName(settings.host.clone()))?;
                let tls = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map_err(LinkError::Tls)?;
                Box::new(tls)
            }
            None => Box::new(tcp),
        };
        Ok(io)
    }

    /// CONNECT, then the CONNACK.
    async fn handshake(
        io: Box<dyn Io>,
        connect: &wire::Connect<'_>,
        version: Version,
    ) -> Result<Link, LinkError> {
        let (r, w) = tokio::io::split(io);
        let mut reader = Reader {
            io: r,
            buf: Vec::with_capacity(4096),
            start: 0,
            version,
        };
        let mut writer = Writer {
            io: w,
            version,
            receive_maximum: usize::from(u16::MAX),
            buf: Vec::with_capacity(4096),
            sent: 0,
            needs_flush: false,
            last_sent: Instant::now(),
            unsent_since: None,
            urgent: false,
        };
        wire::connect(&mut writer.buf, version, connect);
        writer.write_all().await?;
        // A CONNACK starts with 0x20; anything else (a web server, a TLS port answering
        // plain TCP) is named at once instead of waiting for a packet that never ends.
        while reader.buf.is_empty() {
            reader.fill().await?;
        }
        if reader.buf[0] != 0x20 {
            return Err(LinkError::NotConnAck(format!(
                "it answered {:?}",
                preview(&reader.buf)
            )));
        }
        match reader.next().await {
            Ok(Incoming::ConnAck {
                code: 0,
                session_present,
                receive_maximum,
                server_keep_alive,
                ..
            }) => {
                if let Some(max) = receive_maximum {
                    // 0 is a protocol error; be safe rather than stuck.
                    writer.receive_maximum = usize::from(max.max(1));
                }
                Ok(Link {
                    reader,
                    writer,
                    session_present,
                    version,
                    server_keep_alive: server_keep_alive
                        .filter(|&k| k > 0)
                        .map(|k| Duration::from_secs(u64::from(k))),
                })
            }
            Ok(Incoming::ConnAck { code, reason, .. }) => Err(LinkError::Refused {
                version,
                code,
                reason,
            }),
            Ok(other) => Err(LinkError::NotConnAck(format!("got {other:?}"))),
            Err(LinkError::Wire(e)) => Err(LinkError::NotConnAck(e.to_string())),
            Err(e) => Err(e),
        }
    }
}

/// True when a failed MQTT 5 CONNECT looks like a broker that speaks only 3.1.1: it
/// answered "unacceptable protocol version" (3.1.1 code 1, MQTT 5 reason 0x84), or closed
/// the connection without an answer (as rumqttd's 3.1.1 listener and some others do).
fn not_v5(e: &LinkError) -> bool {
    use std::io::ErrorKind::*;
    match e {
        LinkError::Refused { code, .. } => *code == 1 || *code == 0x84,
        LinkError::Closed => true,
        LinkError::Io(io) => matches!(
            io.kind(),
            ConnectionReset | ConnectionAborted | UnexpectedEof | BrokenPipe
        ),
        _ => false,
    }
}

/// The first bytes of an answer, as text where they are printable.
fn preview(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(24)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect()
}
