//! `anemone-loadgen`: plays N Anemone stations against an MQTT broker, for the collector
//! benchmark (bench/collector.sh, issue 16).
//!
//! Each station is what a real one looks like to the broker and the collector:
//! * its own client id (its station id, `<prefix>-0001` …) and its own TCP connection,
//!   MQTT 3.1.1, a retained last will `offline` on `anemone/<id>/status`;
//! * on connect, retained `status` = `online` and the retained `meta` that the station
//!   builds (`anemone::mqtt::payload::meta_payload` over the built-in example station);
//! * readings on `anemone/<id>/reading/<sensor>`, QoS 1, the payload written by the
//!   station's own serialiser (`StoredReading::json_with_id`), ids 1, 2, 3 … per station,
//!   cycling over every (sensor, quantity) of the example station;
//! * at the end, once the broker has acknowledged everything, retained `status` =
//!   `offline` and DISCONNECT, as a station that stops cleanly.
//!
//! The rate is accelerated: `--rate` readings per second in total, spread evenly over the
//! stations (default 50 000/s from 1 000 stations = 50 per station per second, against 1 s
//! to 60 s on a real station). Every `--tick-ms` a station sends the readings that are due
//! in one write, as the station's own client does with every message that is due; at most
//! `--window` readings of a station are unacknowledged at once (QoS 1 in flight).
//!
//! Each reading's `ts` is the wall clock (UTC ms) when its batch is serialised, just before
//! the write: the "publish time" from which the benchmark measures end-to-end latency
//! (against the commit time PostgreSQL records for the row).
//!
//! A summary (JSON) goes to stdout: stations, readings sent and acknowledged, the first and
//! last publish times, the offered and achieved rates.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anemone::config::Config;
use anemone::mqtt::payload::meta_payload;
use anemone::mqtt::wire::{self, Connect, Incoming, Qos, Version, Will};
use anemone::reading::{Flags, Quantity, Reading, SensorId, StoredReading};
use anemone::topics::{Topics, OFFLINE, ONLINE};
use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::{Barrier, Semaphore};

const VERSION: Version = Version::V311;
/// The largest packet we accept from the broker (we only expect acknowledgements).
const MAX_INCOMING: usize = 1 << 20;

#[derive(Debug, Parser)]
#[command(
    name = "anemone-loadgen",
    about = "Plays N Anemone stations against an MQTT broker"
)]
struct Args {
    /// The broker, host:port (loopback only: this is a load test).
    #[arg(long, default_value = "127.0.0.1:1883")]
    broker: String,
    /// Number of stations, each with its own connection and client id.
    #[arg(long, default_value_t = 1000)]
    stations: usize,
    /// Station ids are `<prefix>-0001` …
    #[arg(long, default_value = "bench")]
    prefix: String,
    /// Readings per second, all stations together; 0 = as fast as the broker acknowledges.
    #[arg(long, default_value_t = 50_000.0)]
    rate: f64,
    /// How long to publish, in seconds (the run also ends at --readings).
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Readings per station at most (0 = no limit but --duration).
    #[arg(long, default_value_t = 0)]
    readings: u64,
    /// The first reading id of every station (ids then increase by one per reading).
    #[arg(long, default_value_t = 1)]
    first_id: i64,
    /// Readings of one station unacknowledged at once (QoS 1 in flight).
    #[arg(long, default_value_t = 200)]
    window: u32,
    /// A station sends what is due every this many milliseconds, in one write.
    #[arg(long, default_value_t = 20)]
    tick_ms: u64,
    /// Connections opened at once while the stations connect.
    #[arg(long, default_value_t = 64)]
    connect_parallel: usize,
    /// Seconds to wait for the last acknowledgements before giving up.
    #[arg(long, default_value_t = 120.0)]
    ack_timeout: f64,
}

/// Counters shared by every station.
#[derive(Default)]
struct Totals {
    sent: AtomicU64,
    acked: AtomicU64,
    first_publish_ms: AtomicU64,
    last_publish_ms: AtomicU64,
}

impl Totals {
    fn published(&self, n: u64, ts: i64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
        let ts = u64::try_from(ts).unwrap_or(0);
        // first_publish_ms starts at 0: the first batch sets it, later ones keep the minimum.
        let _ = self
            .first_publish_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                (old == 0 || ts < old).then_some(ts)
            });
        self.last_publish_ms.fetch_max(ts, Ordering::Relaxed);
    }
}

/// What one station publishes: its topics, its sensors' readings in turn, its meta.
struct Plan {
    id: String,
    topics: Topics,
    meta: Vec<u8>,
    /// (sensor, quantity, topic) cycled through, one reading each.
    series: Vec<(SensorId, Quantity, String)>,
}

impl Plan {
    fn new(id: String) -> Plan {
        let mut cfg = Config::builtin();
        cfg.station.id = id.clone();
        cfg.station.name = format!("Load generator station {id}");
        cfg.mqtt.topic_prefix = None;
        let topics = Topics::new(&cfg);
        let meta = meta_payload(&cfg, &BTreeMap::new(), None)
            .to_string()
            .into_bytes();
        let series = cfg
            .sensors
            .iter()
            .flat_map(|s| {
                let sensor: SensorId = Arc::from(s.id.as_str());
                let topic = topics.reading(&s.id);
                s.kind
                    .quantities()
                    .into_iter()
                    .map(move |q| (sensor.clone(), q, topic.clone()))
            })
            .collect();
        Plan {
            id,
            topics,
            meta,
            series,
        }
    }
}

/// A plausible value of `q` from a pseudo-random number, rounded to two decimals.
fn plausible(q: Quantity, r: u64) -> f64 {
    let u = (r % 10_000) as f64 / 10_000.0;
    let v = match q {
        Quantity::RelativeHumidity => 40.0 + 60.0 * u,
        Quantity::AirPressure | Quantity::SeaLevelPressure => 990.0 + 40.0 * u,
        Quantity::WindSpeed | Quantity::WindGust => 15.0 * u,
        Quantity::WindDirection => 360.0 * u,
        Quantity::Rain => 0.2 * (u * 3.0).floor(),
        Quantity::Ph => 7.8 + 0.5 * u,
        _ => 5.0 + 20.0 * u,
    };
    (v * 100.0).round() / 100.0
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Reads until one whole packet is in `buf`, and returns it.
async fn read_packet(rd: &mut OwnedReadHalf, buf: &mut Vec<u8>) -> Result<Incoming> {
    loop {
        if let Some((packet, used)) = wire::decode(buf, MAX_INCOMING, VERSION)? {
            buf.drain(..used);
            return Ok(packet);
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = rd.read(&mut chunk).await?;
        if n == 0 {
            bail!("the broker closed the connection");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Counts PUBACKs: each returns one permit of the station's in-flight window.
async fn read_acks(
    mut rd: OwnedReadHalf,
    mut buf: Vec<u8>,
    window: Arc<Semaphore>,
    acked: Arc<AtomicU64>,
    totals: Arc<Totals>,
) -> Result<()> {
    loop {
        match read_packet(&mut rd, &mut buf).await? {
            Incoming::PubAck(_) => {
                window.add_permits(1);
                acked.fetch_add(1, Ordering::Relaxed);
                totals.acked.fetch_add(1, Ordering::Relaxed);
            }
            Incoming::PubRefused { pkid, reason } => {
                bail!("the broker refused message {pkid}: reason {reason:#04x}")
            }
            Incoming::Disconnect { reason, .. } => {
                bail!("the broker disconnected us: reason {reason:#04x}")
            }
            _ => {}
        }
    }
}

/// Packet ids 1 … 65 535, in turn (never 0).
fn next_pkid(pkid: &mut u16) -> u16 {
    *pkid = if *pkid == u16::MAX { 1 } else { *pkid + 1 };
    *pkid
}

struct Station {
    plan: Plan,
    stream: TcpStream,
    buf: Vec<u8>,
}

async fn connect(args: &Args, plan: Plan) -> Result<Station> {
    let mut stream = TcpStream::connect(&args.broker)
        .await
        .with_context(|| format!("station {}: connecting to {}", plan.id, args.broker))?;
    stream.set_nodelay(true)?;
    let mut out = Vec::new();
    wire::connect(
        &mut out,
        VERSION,
        &Connect {
            client_id: &plan.id,
            keep_alive: 60,
            clean_session: true,
            will: Some(Will {
                topic: &plan.topics.status,
                payload: OFFLINE.as_bytes(),
                qos: Qos::AtLeastOnce,
                retain: true,
            }),
            username: None,
            password: None,
        },
    );
    stream.write_all(&out).await?;
    let (mut rd, wr) = stream.into_split();
    let mut buf = Vec::new();
    match read_packet(&mut rd, &mut buf).await? {
        Incoming::ConnAck { code: 0, .. } => {}
        Incoming::ConnAck { code, .. } => bail!(
            "station {}: {}",
            plan.id,
            wire::connack_code_text(VERSION, code)
        ),
        other => bail!("station {}: expected CONNACK, got {other:?}", plan.id),
    }
    let stream = rd
        .reunite(wr)
        .map_err(|_| anyhow::anyhow!("station {}: socket halves do not match", plan.id))?;
    Ok(Station { plan, stream, buf })
}

/// Publishes this station's readings until the run ends, then waits for the last
/// acknowledgements and says `offline`.
async fn run_station(
    args: Arc<Args>,
    station: Station,
    index: usize,
    start: Arc<Barrier>,
    totals: Arc<Totals>,
) -> Result<u64> {
    let Station { plan, stream, buf } = station;
    let (rd, mut wr) = stream.into_split();
    let window = Arc::new(Semaphore::new(args.window as usize));
    let acked = Arc::new(AtomicU64::new(0));
    let reader = tokio::spawn(read_acks(
        rd,
        buf,
        window.clone(),
        acked.clone(),
        totals.clone(),
    ));

    let mut out = Vec::with_capacity(64 * 1024);
    let mut payload = Vec::with_capacity(256);
    let mut pkid = 0u16;
    // Retained status and meta, as a station announces itself (QoS 1: in the window too).
    window.acquire_many(2).await?.forget();
    let online_pkid = next_pkid(&mut pkid);
    wire::publish(
        &mut out,
        VERSION,
        &plan.topics.status,
        ONLINE.as_bytes(),
        Qos::AtLeastOnce,
        true,
        online_pkid,
    );
    let meta_pkid = next_pkid(&mut pkid);
    wire::publish(
        &mut out,
        VERSION,
        &plan.topics.meta,
        &plan.meta,
        Qos::AtLeastOnce,
        true,
        meta_pkid,
    );
    wr.write_all(&out).await?;
    let mut announced = 2u64;

    start.wait().await;
    let began = Instant::now();
    let per_station = args.rate / args.stations as f64;
    let limit = if args.readings == 0 {
        u64::MAX
    } else {
        args.readings
    };
    let until = began + Duration::from_secs_f64(args.duration);
    // Stations start their ticks spread over one tick, not all in the same instant.
    let tick = Duration::from_millis(args.tick_ms.max(1));
    let offset = tick.mul_f64((index % 97) as f64 / 97.0);
    let mut ticker = tokio::time::interval_at((began + offset).into(), tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = 0u64;
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (index as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let mut next_id = args.first_id;
    while sent < limit {
        ticker.tick().await;
        let now = Instant::now();
        if now >= until {
            break;
        }
        let due = if args.rate > 0.0 {
            let target = (now.duration_since(began).as_secs_f64() * per_station) as u64;
            target.min(limit).saturating_sub(sent)
        } else {
            (limit - sent).min(u64::from(args.window))
        };
        if due == 0 {
            continue;
        }
        // Wait for room in the window for one, then send as many as fit.
        let free = window.available_permits() as u64;
        let n = due.min(free.max(1)).min(u64::from(args.window));
        window.acquire_many(n as u32).await?.forget();
        out.clear();
        let ts = now_ms();
        for _ in 0..n {
            let (sensor, quantity, topic) = &plan.series[(next_id as usize) % plan.series.len()];
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let reading = StoredReading {
                id: next_id,
                reading: Reading {
                    ts,
                    sensor: sensor.clone(),
                    quantity: *quantity,
                    value: Some(plausible(*quantity, rng)),
                    flags: Flags::OK,
                },
            };
            payload.clear();
            reading
                .json_with_id(false, &anemone::reading::Precision::default())
                .write_to(&mut payload);
            let id = next_pkid(&mut pkid);
            wire::publish(
                &mut out,
                VERSION,
                topic,
                &payload,
                Qos::AtLeastOnce,
                false,
                id,
            );
            next_id += 1;
        }
        wr.write_all(&out).await?;
        sent += n;
        totals.published(n, ts);
    }

    // Every reading acknowledged, then offline (retained) and DISCONNECT.
    let deadline = Instant::now() + Duration::from_secs_f64(args.ack_timeout);
    while acked.load(Ordering::Relaxed) < sent + announced {
        if Instant::now() > deadline || reader.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out.clear();
    let offline_pkid = next_pkid(&mut pkid);
    wire::publish(
        &mut out,
        VERSION,
        &plan.topics.status,
        OFFLINE.as_bytes(),
        Qos::AtLeastOnce,
        true,
        offline_pkid,
    );
    wr.write_all(&out).await?;
    announced += 1;
    while acked.load(Ordering::Relaxed) < sent + announced {
        if Instant::now() > deadline || reader.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    out.clear();
    wire::disconnect(&mut out);
    wr.write_all(&out).await?;
    wr.shutdown().await?;
    reader.abort();
    let got = acked.load(Ordering::Relaxed);
    if got < sent + announced {
        bail!(
            "station {}: {} of {} messages acknowledged",
            plan.id,
            got,
            sent + announced
        );
    }
    Ok(sent)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Arc::new(Args::parse());
    if args.stations == 0 {
        bail!("--stations must be at least 1");
    }
    if args.window == 0 || args.window > 60_000 {
        bail!("--window must be 1 to 60000 (packet ids are 16 bits)");
    }
    if !args.rate.is_finite() || args.rate < 0.0 {
        bail!("--rate must be a number of readings per second, 0 or more");
    }
    // Connect every station first (a few at a time), then start them together.
    let gate = Arc::new(Semaphore::new(args.connect_parallel.max(1)));
    let mut connecting = Vec::with_capacity(args.stations);
    for i in 0..args.stations {
        let args = args.clone();
        let gate = gate.clone();
        let plan = Plan::new(format!("{}-{:04}", args.prefix, i + 1));
        connecting.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            connect(&args, plan).await
        }));
    }
    let mut stations = Vec::with_capacity(args.stations);
    for c in connecting {
        stations.push(c.await??);
    }
    eprintln!(
        "anemone-loadgen: {} stations connected to {}",
        stations.len(),
        args.broker
    );
    let totals = Arc::new(Totals::default());
    let start = Arc::new(Barrier::new(args.stations + 1));
    let mut running = Vec::with_capacity(args.stations);
    for (i, s) in stations.into_iter().enumerate() {
        running.push(tokio::spawn(run_station(
            args.clone(),
            s,
            i,
            start.clone(),
            totals.clone(),
        )));
    }
    start.wait().await;
    let began = Instant::now();
    let mut failures = Vec::new();
    for r in running {
        match r.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => failures.push(format!("{e:#}")),
            Err(e) => failures.push(e.to_string()),
        }
    }
    let wall = began.elapsed().as_secs_f64();
    let sent = totals.sent.load(Ordering::Relaxed);
    let first = totals.first_publish_ms.load(Ordering::Relaxed);
    let last = totals.last_publish_ms.load(Ordering::Relaxed);
    let span = (last.saturating_sub(first)) as f64 / 1000.0;
    let summary = json!({
        "stations": args.stations,
        "sent": sent,
        "acked_messages": totals.acked.load(Ordering::Relaxed),
        "first_publish_ms": first,
        "last_publish_ms": last,
        "offered_rate": args.rate,
        "publish_rate": if span > 0.0 { sent as f64 / span } else { 0.0 },
        "wall_s": wall,
        "failures": failures.len(),
    });
    println!("{summary}");
    if let Some(first_failure) = failures.first() {
        bail!(
            "{} stations failed; the first: {first_failure}",
            failures.len()
        );
    }
    Ok(())
}
