#!/usr/bin/env python3
"""Reference logger: a weather-station logger written the way makers usually write one.

This is the baseline Anemone is measured against (issue 7). It follows the pattern of the
popular Raspberry Pi "build your own weather station" guide, written from scratch here:

* one loop, one tick per (simulated) second;
* every tick it samples the station: anemometer and wind vane every tick, the BME280 every
  10 s, the water probe every 30 s, the ground probe, the pH probe and the rain gauge
  every 60 s (Anemone's default station, etc/anemone.toml);
* every tick it INSERTs one row holding the latest value of every quantity into SQLite
  and commits (Python's sqlite3 defaults: rollback journal, synchronous=FULL);
* with --broker it also publishes one JSON message per tick with paho-mqtt (QoS 1,
  network loop in paho's background thread, all PUBACKs awaited before exit).

The clock is simulated and the loop never sleeps, so a day runs as fast as the CPU allows
and CPU per tick can be compared with `anemone run --simulate --speed max`. Sensor values
are simple formulas plus seeded noise: the point is the per-tick work of a logger
(sampling, unit conversion, one INSERT + COMMIT, one publish), not the weather.

At exit it prints one JSON line to stdout: ticks, readings sampled, rows, messages.
"""

import argparse
import datetime as dt
import json
import math
import os
import random
import sqlite3
import sys

# Default station intervals, in seconds (etc/anemone.toml).
WIND_S = 1
VANE_S = 1
BME280_S = 10
WATER_S = 30
GROUND_S = 60
PH_S = 60
RAIN_S = 60

# Anemometer: one switch closure per revolution; 2.4 km/h per Hz (datasheet).
KMH_PER_HZ = 2.4
# Rain gauge: mm per bucket tip.
MM_PER_TIP = 0.2794
# Wind vane: MCP3008 (10 bit, 3.3 V) reading a resistor divider; (volts, degrees).
VANE_TABLE = [
    (0.4, 0.0), (1.4, 22.5), (1.2, 45.0), (2.8, 67.5), (2.7, 90.0), (2.9, 112.5),
    (2.2, 135.0), (2.5, 157.5), (1.8, 180.0), (2.0, 202.5), (0.7, 225.0), (0.8, 247.5),
    (0.1, 270.0), (0.3, 292.5), (0.2, 315.0), (0.6, 337.5),
]
SCHEMA = """
CREATE TABLE IF NOT EXISTS weather (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    created          TEXT NOT NULL,
    ambient_temp     REAL,
    humidity         REAL,
    air_pressure     REAL,
    ground_temp      REAL,
    water_temp       REAL,
    ph               REAL,
    wind_speed       REAL,
    wind_gust_speed  REAL,
    wind_direction   REAL,
    rainfall         REAL
)
"""


class SimStation:
    """Simple formula-based station: diurnal temperature, gusty wind, a turning vane."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.wind_history = []  # last 3 s of speeds, for the gust

    def bme280(self, t):
        hour = (t % 86400) / 3600.0
        temp = 12.0 + 5.0 * -math.cos(2 * math.pi * (hour - 3.0) / 24.0) + self.rng.gauss(0, 0.1)
        hum = min(100.0, max(0.0, 80.0 - 2.5 * (temp - 12.0) + self.rng.gauss(0, 0.5)))
        pres = 1013.25 - 3.0 * math.sin(2 * math.pi * t / 86400.0) + self.rng.gauss(0, 0.05)
        return round(temp, 2), round(hum, 2), round(pres, 2)

    def anemometer(self, t):
        # Pulses counted over the last second -> km/h -> m/s, as the guide's spin counter.
        mean_hz = 2.0 + 1.5 * math.sin(2 * math.pi * t / 7200.0)
        pulses = max(0, int(self.rng.gauss(mean_hz, 1.0) + 0.5))
        speed = pulses * KMH_PER_HZ / 3.6
        self.wind_history.append(speed)
        if len(self.wind_history) > 3:
            self.wind_history.pop(0)
        gust = max(self.wind_history)
        return round(speed, 2), round(gust, 2)

    def vane(self, t):
        # ADC count of the divider for the current direction, then the table look-up.
        true_dir = (225.0 + 40.0 * math.sin(2 * math.pi * t / 5400.0) + self.rng.gauss(0, 15)) % 360
        volts = min(VANE_TABLE, key=lambda e: min(abs(e[1] - true_dir), 360 - abs(e[1] - true_dir)))[0]
        count = int(volts / 3.3 * 1023)
        v = round(count * 3.3 / 1023, 1)
        best = min(VANE_TABLE, key=lambda e: abs(e[0] - v))
        return best[1]

    def ds18b20(self, t, base):
        # The kernel's w1_slave text, parsed the way the guide does it.
        milli = int((base + 2.0 * math.sin(2 * math.pi * t / 86400.0) + self.rng.gauss(0, 0.05)) * 1000)
        text = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=%d\n" % milli
        lines = text.splitlines()
        if not lines[0].strip().endswith("YES"):
            return None
        pos = lines[1].find("t=")
        return float(lines[1][pos + 2:]) / 1000.0

    def ph(self, t):
        return round(7.8 + 0.1 * math.sin(2 * math.pi * t / 86400.0) + self.rng.gauss(0, 0.01), 3)

    def rain(self, t):
        tips = 1 if self.rng.random() < 0.1 else 0
        return round(tips * MM_PER_TIP, 4)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--seconds", type=int, default=86400, help="simulated seconds (ticks)")
    ap.add_argument("--start", default="2026-06-01", help="simulated start day (UTC)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--broker", help="host:port of an MQTT broker; omit for no MQTT")
    args = ap.parse_args()

    client = None
    infos = []
    if args.broker:
        import paho.mqtt.client as mqtt

        host, port = args.broker.rsplit(":", 1)
        try:
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="reference-logger")
        except AttributeError:  # paho-mqtt 1.x
            client = mqtt.Client(client_id="reference-logger")
        client.max_queued_messages_set(0)  # unbounded, like a naive logger
        client.connect(host, int(port))
        client.loop_start()

    db = sqlite3.connect(args.db)
    db.execute(SCHEMA)
    db.commit()
    cur = db.cursor()

    station = SimStation(args.seed)
    t0 = int(dt.datetime.strptime(args.start, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc).timestamp())
    temp = hum = pres = ground = water = ph = rain = None
    readings = rows = msgs = 0
    last = None
    for i in range(args.seconds):
        t = t0 + i
        speed, gust = station.anemometer(t)
        direction = station.vane(t)
        readings += 2
        if i % BME280_S == 0:
            temp, hum, pres = station.bme280(t)
            readings += 3
        if i % WATER_S == 0:
            water = station.ds18b20(t, 14.0)
            readings += 1
        if i % GROUND_S == 0:
            ground = station.ds18b20(t, 10.0)
            readings += 1
        if i % PH_S == 0:
            ph = station.ph(t)
            readings += 1
        if i % RAIN_S == 0:
            rain = station.rain(t)
            readings += 1
        created = dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        cur.execute(
            "INSERT INTO weather (created, ambient_temp, humidity, air_pressure, ground_temp,"
            " water_temp, ph, wind_speed, wind_gust_speed, wind_direction, rainfall)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (created, temp, hum, pres, ground, water, ph, speed, gust, direction, rain),
        )
        db.commit()
        rows += 1
        if client is not None:
            payload = json.dumps({
                "created": created, "ambient_temp": temp, "humidity": hum,
                "air_pressure": pres, "ground_temp": ground, "water_temp": water, "ph": ph,
                "wind_speed": speed, "wind_gust_speed": gust, "wind_direction": direction,
                "rainfall": rain,
            })
            last = client.publish("weather/reference", payload, qos=1)
            msgs += 1
    if client is not None:
        if last is not None:
            last.wait_for_publish(timeout=120)
        client.loop_stop()
        client.disconnect()
    db.close()
    print(json.dumps({"ticks": args.seconds, "readings": readings, "rows": rows,
                      "messages": msgs, "pid": os.getpid()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
