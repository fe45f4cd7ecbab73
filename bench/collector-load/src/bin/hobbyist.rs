//! `hobbyist-collector`: the reference of the collector benchmark (bench/collector.sh,
//! issue 16) — the MQTT → PostgreSQL collector a hobbyist would write, and a careful one.
//!
//! It subscribes to every station's `reading`, `status` and `meta` topics (QoS 1, rumqttc
//! with its default automatic acknowledgements), and for each message runs one INSERT (or
//! an upsert of the station) with PostgreSQL's autocommit: one statement and one COMMIT per
//! message, waiting for each before it takes the next message. It is not a strawman: the
//! statements are prepared once, readings are unique on (station, reading id) with
//! `ON CONFLICT DO NOTHING`, and the reading keeps every field of the payload.
//!
//! It stops on SIGINT or SIGTERM and prints how many messages it stored.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, Parser)]
#[command(
    name = "hobbyist-collector",
    about = "One INSERT and COMMIT per MQTT message"
)]
struct Args {
    /// The broker, host:port.
    #[arg(long, default_value = "127.0.0.1:1883")]
    broker: String,
    /// PostgreSQL connection string (tokio-postgres syntax, e.g. `host=/tmp port=5433 user=postgres dbname=x`).
    #[arg(long)]
    db: String,
    /// MQTT client id.
    #[arg(long, default_value = "hobbyist-collector")]
    client_id: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS stations (
    id text PRIMARY KEY,
    status text,
    meta jsonb,
    last_seen timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS readings (
    station text NOT NULL,
    reading_id bigint NOT NULL,
    ts timestamptz NOT NULL,
    sensor text NOT NULL,
    quantity text NOT NULL,
    value double precision,
    unit text NOT NULL,
    flags text NOT NULL,
    backfill boolean NOT NULL DEFAULT false,
    PRIMARY KEY (station, reading_id)
);";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let (host, port) = args
        .broker
        .rsplit_once(':')
        .context("--broker must be host:port")?;
    let port: u16 = port
        .parse()
        .context("--broker: the port must be a number")?;

    let (db, connection) = tokio_postgres::connect(&args.db, tokio_postgres::NoTls)
        .await
        .context("connecting to PostgreSQL (--db)")?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("hobbyist-collector: PostgreSQL connection ended: {e}");
        }
    });
    db.batch_execute(SCHEMA)
        .await
        .context("creating the tables")?;
    let insert_reading = db
        .prepare(
            "INSERT INTO readings (station, reading_id, ts, sensor, quantity, value, unit, flags, backfill)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .await?;
    let upsert_status = db
        .prepare(
            "INSERT INTO stations (id, status) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, last_seen = now()",
        )
        .await?;
    let upsert_meta = db
        .prepare(
            "INSERT INTO stations (id, meta) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET meta = excluded.meta, last_seen = now()",
        )
        .await?;

    let mut opts = MqttOptions::new(&args.client_id, host, port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(opts, 100);
    for topic in ["anemone/+/reading/+", "anemone/+/status", "anemone/+/meta"] {
        client.subscribe(topic, QoS::AtLeastOnce).await?;
    }

    let mut term = signal(SignalKind::terminate())?;
    let mut stored = 0u64;
    let mut skipped = 0u64;
    loop {
        let event = tokio::select! {
            e = events.poll() => e,
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let publish = match event {
            Ok(Event::Incoming(Packet::Publish(p))) => p,
            Ok(_) => continue,
            Err(e) => {
                eprintln!("hobbyist-collector: MQTT: {e}; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let parts: Vec<&str> = publish.topic.split('/').collect();
        let result = match parts.as_slice() {
            ["anemone", station, "reading", _sensor] => {
                match serde_json::from_slice::<Value>(&publish.payload) {
                    Ok(v) => store_reading(&db, &insert_reading, station, &v).await,
                    Err(e) => Err(anyhow::anyhow!("not JSON: {e}")),
                }
            }
            ["anemone", station, "status"] => {
                let status = String::from_utf8_lossy(&publish.payload).into_owned();
                db.execute(&upsert_status, &[station, &status])
                    .await
                    .map(|_| ())
                    .map_err(Into::into)
            }
            ["anemone", station, "meta"] => {
                match serde_json::from_slice::<Value>(&publish.payload) {
                    Ok(v) => db
                        .execute(&upsert_meta, &[station, &v])
                        .await
                        .map(|_| ())
                        .map_err(Into::into),
                    Err(e) => Err(anyhow::anyhow!("not JSON: {e}")),
                }
            }
            _ => Err(anyhow::anyhow!("unexpected topic")),
        };
        match result {
            Ok(()) => stored += 1,
            Err(e) => {
                skipped += 1;
                eprintln!("hobbyist-collector: skipped {}: {e:#}", publish.topic);
            }
        }
    }
    println!("{{\"stored\": {stored}, \"skipped\": {skipped}}}");
    Ok(())
}

async fn store_reading(
    db: &tokio_postgres::Client,
    insert: &tokio_postgres::Statement,
    station: &str,
    v: &Value,
) -> Result<()> {
    let text = |k: &str| -> Result<String> {
        v[k].as_str()
            .map(str::to_string)
            .with_context(|| format!("no `{k}`"))
    };
    let id = v["id"].as_i64().context("no `id`")?;
    let ts = chrono::DateTime::parse_from_rfc3339(&text("ts")?)
        .context("`ts` is not RFC 3339")?
        .with_timezone(&chrono::Utc);
    let value = v["value"].as_f64();
    let flags = match v["flags"].as_array() {
        Some(a) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("|"),
        None => String::from("ok"),
    };
    let backfill = v["backfill"].as_bool().unwrap_or(false);
    db.execute(
        insert,
        &[
            &station,
            &id,
            &ts,
            &text("sensor")?,
            &text("quantity")?,
            &value,
            &text("unit")?,
            &flags,
            &backfill,
        ],
    )
    .await?;
    Ok(())
}
