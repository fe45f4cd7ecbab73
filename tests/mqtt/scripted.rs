//! A broker that misbehaves on purpose, for the tests that need one (issue 13): a small TCP
//! server on a free loopback port that speaks just enough MQTT 3.1.1, driven by a
//! [`Script`]. It answers CONNECT with CONNACK (and a protocol-level-5 CONNECT with return
//! code 0x01, "unacceptable protocol version", so a client that tries MQTT 5 first falls
//! back), SUBSCRIBE with SUBACK, PINGREQ with PINGRESP, and every QoS 1 PUBLISH with PUBACK
//! except the ones a rule withholds; it can close a connection right after CONNACK or some
//! time later. It records every connection and every PUBLISH.
//!
//! Packets are parsed and written with rumqttc's `mqttbytes::v4` (an independent codec), not
//! with the station's own `src/mqtt/wire/`.
//!
//! Also here: [`captured_logs`], the station's log lines as the tests can read them.

#![allow(dead_code)] // a tool shared by tests; not every test uses every part

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Packet, PubAck, SubAck, SubscribeReasonCode,
};
use rumqttc::mqttbytes::{Error as MqttError, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// A PUBLISH the scripted broker received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The connection it came on (1 for the first accepted CONNECT).
    pub connection: usize,
    /// Its place among the PUBLISHes of that connection (0 for the first).
    pub nth: usize,
    pub topic: String,
    pub pkid: u16,
    pub qos: u8,
    pub dup: bool,
    pub retain: bool,
    pub payload: Vec<u8>,
    /// True when the script withheld its PUBACK.
    pub withheld: bool,
}

impl Received {
    /// The reading id, for a message on `…/reading/…`.
    pub fn reading_id(&self) -> Option<i64> {
        if !self.topic.contains("/reading/") {
            return None;
        }
        serde_json::from_slice::<serde_json::Value>(&self.payload)
            .ok()?
            .get("id")?
            .as_i64()
    }
}

/// A connection the scripted broker accepted (answered CONNACK 0).
#[derive(Debug, Clone)]
pub struct Accepted {
    /// 1 for the first.
    pub number: usize,
    pub client_id: String,
    /// When CONNACK was sent.
    pub at: Instant,
    /// When it ended (either side), if it has.
    pub closed_at: Option<Instant>,
    /// True when the script closed it.
    pub dropped_by_script: bool,
}

type Rule = Arc<dyn Fn(&Received) -> bool + Send + Sync>;
type DropRule = Arc<dyn Fn(usize) -> Option<Duration> + Send + Sync>;

/// What the scripted broker does. `Script::default()` is a well-behaved broker.
#[derive(Clone, Default)]
pub struct Script {
    withhold: Vec<Rule>,
    drop: Option<DropRule>,
    /// Accept an MQTT 5 CONNECT (answer it like a 3.1.1 one) instead of refusing it.
    accept_mqtt5: bool,
}

impl Script {
    /// Never acknowledges a PUBLISH for which `rule` holds (e.g. `|p| p.nth == 0`: the
    /// first publish of each connection; `|p| p.pkid == 7`: packet id 7).
    pub fn withhold(mut self, rule: impl Fn(&Received) -> bool + Send + Sync + 'static) -> Self {
        self.withhold.push(Arc::new(rule));
        self
    }

    /// Closes every accepted connection `after` CONNACK (`Duration::ZERO`: right after it).
    pub fn drop_after(self, after: Duration) -> Self {
        self.drop_after_on(after, |_| true)
    }

    /// Closes the accepted connections whose number (1 for the first) `which` selects,
    /// `after` CONNACK.
    pub fn drop_after_on(
        self,
        after: Duration,
        which: impl Fn(usize) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.drop_when(move |n| which(n).then_some(after))
    }

    /// Closes accepted connection number `n` (1 for the first) `when(n)` after CONNACK;
    /// `None`: leaves it open.
    pub fn drop_when(
        mut self,
        when: impl Fn(usize) -> Option<Duration> + Send + Sync + 'static,
    ) -> Self {
        self.drop = Some(Arc::new(when));
        self
    }
}

#[derive(Default)]
struct Record {
    accepted: Vec<Accepted>,
    publishes: Vec<Received>,
    mqtt5_refused: usize,
}

/// The running scripted broker; stops (with every connection) when dropped.
pub struct ScriptedBroker {
    pub addr: SocketAddr,
    record: Arc<Mutex<Record>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedBroker {
    /// Listens on a free loopback port.
    pub async fn start(script: Script) -> ScriptedBroker {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the scripted broker");
        let addr = listener.local_addr().expect("scripted broker address");
        let record = Arc::new(Mutex::new(Record::default()));
        let rec = record.clone();
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every connection.
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((sock, _)) = accepted else { break };
                        conns.spawn(serve(sock, script.clone(), rec.clone()));
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        ScriptedBroker { addr, record, task }
    }

    fn with<T>(&self, f: impl FnOnce(&Record) -> T) -> T {
        f(&self.record.lock().expect("scripted broker record"))
    }

    /// The connections accepted so far.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.with(|r| r.accepted.clone())
    }

    /// How many connections were accepted (CONNACK 0).
    pub fn connections(&self) -> usize {
        self.with(|r| r.accepted.len())
    }

    /// How many MQTT 5 CONNECTs were refused with 0x01.
    pub fn mqtt5_refused(&self) -> usize {
        self.with(|r| r.mqtt5_refused)
    }

    /// Every PUBLISH received, in arrival order.
    pub fn publishes(&self) -> Vec<Received> {
        self.with(|r| r.publishes.clone())
    }

    /// Waits (at most `limit`) until `pred` holds for the record; false on timeout.
    pub async fn wait_until(
        &self,
        limit: Duration,
        pred: impl Fn(&ScriptedBroker) -> bool,
    ) -> bool {
        let until = Instant::now() + limit;
        while !pred(self) {
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// A station config publishing here (plain MQTT, no credentials, client id
    /// `anemone-<station>`).
    pub fn config(&self, station: &str) -> anemone::config::Config {
        let mut cfg = anemone::config::Config::builtin();
        cfg.web.enabled = false;
        cfg.station.id = station.to_string();
        cfg.station.name = format!("Test {station}");
        cfg.mqtt.broker = format!("mqtt://{}", self.addr);
        cfg.mqtt.allow_insecure = true;
        cfg.mqtt.client_id = Some(format!("anemone-{station}"));
        cfg
    }
}

const MAX_PACKET: usize = 1 << 20;

/// Reads the next whole packet; `Err` on a closed or broken connection or bytes that are
/// not MQTT 3.1.1 (`InvalidProtocolLevel` is passed on for the caller to answer).
async fn read_packet(sock: &mut TcpStream, buf: &mut BytesMut) -> Result<Packet, MqttError> {
    loop {
        match Packet::read(buf, MAX_PACKET) {
            Err(MqttError::InsufficientBytes(_)) => {}
            other => return other,
        }
        let mut chunk = [0u8; 4096];
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(MqttError::InsufficientBytes(0)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn send(sock: &mut TcpStream, packet: Packet) -> bool {
    let mut out = BytesMut::new();
    if packet.write(&mut out, MAX_PACKET).is_err() {
        return false;
    }
    sock.write_all(&out).await.is_ok()
}

/// The protocol level of the CONNECT at the start of `buf` (4 for 3.1.1, 5 for MQTT 5),
/// once the whole packet is there (`None` before, or when it is not a CONNECT).
fn connect_level(buf: &[u8]) -> Option<u8> {
    rumqttc::mqttbytes::check(buf.iter(), MAX_PACKET).ok()?;
    if buf.first()? >> 4 != 1 {
        return None;
    }
    // After the first byte, the remaining length: 1 to 4 bytes, the last below 0x80.
    let at = 1 + buf.iter().skip(1).take_while(|b| *b & 0x80 != 0).count() + 1;
    let name_len = usize::from(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]));
    buf.get(at + 2 + name_len).copied()
}

async fn serve(mut sock: TcpStream, script: Script, record: Arc<Mutex<Record>>) {
    let mut buf = BytesMut::new();
    // mqttbytes::v4 reads an MQTT 5 CONNECT as if it were 3.1.1 (its properties become the
    // client id): look at the protocol level first.
    let mut chunk = [0u8; 4096];
    let level = loop {
        if rumqttc::mqttbytes::check(buf.iter(), MAX_PACKET).is_ok() {
            break connect_level(&buf);
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let connect = match read_packet(&mut sock, &mut buf).await {
        Ok(Packet::Connect(_)) if level == Some(5) && !script.accept_mqtt5 => {
            // MQTT 5 § 3.1.2.2: a server that does not speak the client's version may answer
            // with the 3.1.1 CONNACK code 0x01 and close.
            if let Ok(mut r) = record.lock() {
                r.mqtt5_refused += 1;
            }
            let _ = sock.write_all(&[0x20, 0x02, 0x00, 0x01]).await;
            return;
        }
        Ok(Packet::Connect(c)) => c,
        _ => return,
    };
    if !send(
        &mut sock,
        Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false)),
    )
    .await
    {
        return;
    }
    let number = {
        let Ok(mut r) = record.lock() else { return };
        let number = r.accepted.len() + 1;
        r.accepted.push(Accepted {
            number,
            client_id: connect.client_id.clone(),
            at: Instant::now(),
            closed_at: None,
            dropped_by_script: false,
        });
        number
    };
    let drop_at = script
        .drop
        .as_ref()
        .and_then(|when| when(number))
        .map(|after| tokio::time::Instant::now() + after);
    let mut nth = 0;
    let mut dropped = false;
    loop {
        let packet = tokio::select! {
            p = read_packet(&mut sock, &mut buf) => p,
            _ = tokio::time::sleep_until(drop_at.unwrap_or_else(tokio::time::Instant::now)), if drop_at.is_some() => {
                dropped = true;
                break;
            }
        };
        let ok = match packet {
            Ok(Packet::Publish(p)) => {
                let mut received = Received {
                    connection: number,
                    nth,
                    topic: p.topic.clone(),
                    pkid: p.pkid,
                    qos: p.qos as u8,
                    dup: p.dup,
                    retain: p.retain,
                    payload: p.payload.to_vec(),
                    withheld: false,
                };
                nth += 1;
                received.withheld =
                    p.qos == QoS::AtLeastOnce && script.withhold.iter().any(|rule| rule(&received));
                let ack = p.qos == QoS::AtLeastOnce && !received.withheld;
                if let Ok(mut r) = record.lock() {
                    r.publishes.push(received);
                }
                !ack || send(&mut sock, Packet::PubAck(PubAck::new(p.pkid))).await
            }
            Ok(Packet::Subscribe(s)) => {
                let codes = s
                    .filters
                    .iter()
                    .map(|_| SubscribeReasonCode::Success(QoS::AtLeastOnce))
                    .collect();
                send(&mut sock, Packet::SubAck(SubAck::new(s.pkid, codes))).await
            }
            Ok(Packet::PingReq) => send(&mut sock, Packet::PingResp).await,
            Ok(Packet::Disconnect) | Err(_) => false,
            Ok(_) => true,
        };
        if !ok {
            break;
        }
    }
    drop(sock);
    if let Ok(mut r) = record.lock() {
        if let Some(a) = r.accepted.get_mut(number - 1) {
            a.closed_at = Some(Instant::now());
            a.dropped_by_script = dropped;
        }
    }
}

// ---- the station's log ------------------------------------------------------------------

/// Every log line (INFO and above) of the station (the `anemone` crate) since the first
/// call, as the station's users would read them. Installs a global `tracing` subscriber the first time;
/// tests filter the lines by something of their own (a client id, a port).
pub fn captured_logs() -> &'static Mutex<Vec<String>> {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // Only the station's own lines: rumqttd (the tests' in-process broker) logs and
        // opens spans per packet, and formatting those slows every broker in the process.
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("anemone=info"))
            .with_ansi(false)
            .without_time()
            .with_writer(|| LineWriter(Vec::new()))
            .finish();
        // Another capture installed first keeps its place; the lines then stay empty and
        // the tests that read them fail, which says so.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    lines()
}

fn lines() -> &'static Mutex<Vec<String>> {
    static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LINES.get_or_init(|| Mutex::new(Vec::new()))
}

/// The captured lines that contain `needle`.
pub fn logged(needle: &str) -> Vec<String> {
    captured_logs()
        .lock()
        .map(|l| l.iter().filter(|s| s.contains(needle)).cloned().collect())
        .unwrap_or_default()
}

/// One event's text, appended to the captured lines when the formatter is done with it.
struct LineWriter(Vec<u8>);

impl std::io::Write for LineWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        if let Ok(mut lines) = lines().lock() {
            lines.extend(text.lines().map(String::from));
        }
    }
}
