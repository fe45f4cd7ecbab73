// Anemone's page: our own script, no libraries. It reads /api/now, /api/health and the live
// feed /api/events (Server-Sent Events), and switches the charts' period and units.
// Unit conversions come from /api/now's `units` table: no conversion factor lives here.
"use strict";

(function () {
  const state = {
    units: load("anemone.units") === "imperial" ? "imperial" : "metric",
    span: "24h",
    projector: load("anemone.projector") === "on",
    tz: undefined,
    conversions: [],
    skewMs: 0, // station clock minus browser clock
    readings: new Map(), // "sensor/quantity" → reading
    now: null,
    health: null,
  };

  // ---- small helpers ------------------------------------------------------------------------
  function load(key) {
    try { return window.localStorage.getItem(key); } catch (_) { return null; }
  }
  function save(key, value) {
    try { window.localStorage.setItem(key, value); } catch (_) { /* private mode: not kept */ }
  }
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children || []) node.append(c);
    return node;
  }
  function byId(id) { return document.getElementById(id); }
  // On the collector's network, this page is one station's (/station?station=ID): every
  // API call carries the station.
  const STATION = new URLSearchParams(location.search).get("station");
  function withStation(url) {
    return STATION ? url + (url.includes("?") ? "&" : "?") + "station=" + encodeURIComponent(STATION) : url;
  }
  async function getJSON(url) {
    const res = await fetch(url, { headers: { Accept: "application/json" } });
    if (!res.ok) throw new Error(url + " answered " + res.status);
    return res.json();
  }
  function label(quantity) {
    if (quantity === "ph") return "pH";
    const s = String(quantity || "").replace(/_/g, " ");
    // "pH" keeps its small p at the start of a name too ("pH temperature").
    if (s.startsWith("ph ")) return "pH " + s.slice(3);
    return s.charAt(0).toUpperCase() + s.slice(1);
  }

  // Converts a stored value for display with the server's table; returns {text, unit}.
  function shown(value, unit) {
    if (value === null || value === undefined || !Number.isFinite(value)) {
      return { text: "—", unit: unit || "" };
    }
    if (state.units === "imperial") {
      const c = state.conversions.find((c) => c.from === unit);
      if (c) return { text: (value * c.scale + c.offset).toFixed(c.decimals), unit: c.to };
    }
    return { text: trim(value), unit: unit || "" };
  }
  // A difference (a rain amount) converts with the scale only.
  function shownAmount(value, unit) {
    if (state.units === "imperial" && Number.isFinite(value)) {
      const c = state.conversions.find((c) => c.from === unit);
      if (c) return { text: (value * c.scale).toFixed(c.decimals), unit: c.to };
    }
    return shown(value, unit);
  }
  function trim(v) {
    return Math.abs(v) >= 100 ? v.toFixed(1).replace(/\.0$/, "") : String(Math.round(v * 100) / 100);
  }

  function formatter(options) {
    try {
      return new Intl.DateTimeFormat(undefined, Object.assign({ timeZone: state.tz }, options));
    } catch (_) {
      return new Intl.DateTimeFormat(undefined, options); // unknown zone: the browser's own
    }
  }
  function localTime(ts) {
    const t = Date.parse(ts);
    if (!Number.isFinite(t)) return "";
    return formatter({ hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(t));
  }
  function localDateTime(ts) {
    const t = Date.parse(ts);
    if (!Number.isFinite(t)) return "—";
    return formatter({ year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(t));
  }
  function age(ts) {
    const t = Date.parse(ts);
    if (!Number.isFinite(t)) return "";
    const s = Math.max(0, Math.round((Date.now() + state.skewMs - t) / 1000));
    if (s < 90) return s + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 172800) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " days ago";
  }
  function compass(deg) {
    if (!Number.isFinite(deg)) return "";
    const names = ["N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW"];
    return names[Math.round((((deg % 360) + 360) % 360) / 22.5) % 16];
  }
  function bytes(n) {
    if (!Number.isFinite(n)) return "—";
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return n.toFixed(i ? 1 : 0) + " " + units[i];
  }
  function duration(s) {
    if (!Number.isFinite(s)) return "—";
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    return (d ? d + " d " : "") + (d || h ? h + " h " : "") + m + " min";
  }

  // ---- Now ----------------------------------------------------------------------------------
  function card(r) {
    const v = shown(r.value, r.unit);
    const flags = Array.isArray(r.flags) ? r.flags : ["ok"];
    const ok = flags.length === 1 && flags[0] === "ok";
    const cls = "card" + (r.value === null ? " failed" : ok ? "" : " flagged");
    return el("article", { class: cls, "data-key": r.sensor + "/" + r.quantity }, [
      el("p", { class: "q", text: label(r.quantity) }),
      el("p", { class: "v" }, [v.text, el("span", { class: "u", text: v.unit })]),
      el("p", { class: "m" }, [
        el("span", { class: "flag " + (ok ? "ok" : "bad"), text: flags.join(", ") }),
        el("span", { class: "age", "data-ts": r.ts, text: age(r.ts) }),
        el("span", { class: "s", text: r.sensor }),
      ]),
    ]);
  }
  function renderNow() {
    const grid = byId("now-grid");
    if (!grid) return;
    const list = [...state.readings.values()];
    if (!list.length) {
      grid.replaceChildren(el("p", { class: "empty", text: "No readings yet." }));
      return;
    }
    grid.replaceChildren(...list.map(card));
  }
  function updateReading(r) {
    if (!r || !r.quantity || !r.sensor) return;
    const key = r.sensor + "/" + r.quantity;
    const known = state.readings.has(key);
    state.readings.set(key, r);
    const grid = byId("now-grid");
    if (!grid) return;
    const old = known ? grid.querySelector('[data-key="' + CSS.escape(key) + '"]') : null;
    const fresh = card(r);
    fresh.classList.add("fresh");
    if (old) old.replaceWith(fresh);
    else renderNow();
  }
  function tickAges() {
    for (const span of document.querySelectorAll(".age[data-ts]")) span.textContent = age(span.dataset.ts);
    const clock = byId("station-time");
    if (clock && state.tz) {
      clock.textContent = "· " + formatter({ weekday: "short", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" })
        .format(new Date(Date.now() + state.skewMs)) + " (" + state.tz + ")";
    }
  }

  // ---- Today --------------------------------------------------------------------------------
  function renderToday() {
    const today = state.now && state.now.today;
    const date = byId("today-date");
    if (date) date.textContent = today && today.date ? today.date : "";
    const hl = byId("today-highlights");
    if (hl) {
      const items = [];
      if (today && today.rain_today) {
        const v = shownAmount(today.rain_today.value, today.rain_today.unit);
        items.push(highlight("Rain today", v.text, v.unit, ""));
      }
      if (today && today.max_gust) {
        const g = today.max_gust;
        const v = shown(g.value, g.unit);
        const dir = Number.isFinite(g.direction) ? "from " + compass(g.direction) + " (" + Math.round(g.direction) + "°)" : "";
        items.push(highlight("Strongest gust", v.text, v.unit, [dir, g.ts ? "at " + localTime(g.ts) : ""].filter(Boolean).join(" ")));
      }
      hl.replaceChildren(...items);
    }
    const body = document.querySelector("#today-extremes tbody");
    if (!body) return;
    const rows = (today && Array.isArray(today.extremes) ? today.extremes : []).map((x) => {
      const lo = shown(x.min, x.unit), hi = shown(x.max, x.unit);
      return el("tr", {}, [
        el("td", { text: label(x.quantity) }),
        el("td", { class: "num" }, [lo.text + " " + lo.unit + " ", el("span", { class: "t", text: localTime(x.min_ts) })]),
        el("td", { class: "num" }, [hi.text + " " + hi.unit + " ", el("span", { class: "t", text: localTime(x.max_ts) })]),
      ]);
    });
    body.replaceChildren(...(rows.length ? rows : [el("tr", {}, [el("td", { colspan: "3", class: "empty", text: "No readings yet today." })])]));
  }
  function highlight(title, value, unit, note) {
    return el("article", { class: "card" }, [
      el("p", { class: "q", text: title }),
      el("p", { class: "v" }, [value, el("span", { class: "u", text: unit })]),
      el("p", { class: "m", text: note }),
    ]);
  }

  async function refreshNow() {
    try {
      const now = await getJSON(withStation("/api/now"));
      state.now = now;
      state.tz = now.timezone || state.tz;
      state.conversions = (now.units && Array.isArray(now.units.imperial)) ? now.units.imperial : [];
      const stationNow = Date.parse(now.ts);
      if (Number.isFinite(stationNow)) state.skewMs = stationNow - Date.now();
      const name = byId("station-name");
      if (name) name.textContent = now.name || now.station || "Anemone station";
      const id = byId("station-id");
      if (id) id.textContent = now.station || "";
      if (now.name || now.station) document.title = (now.name || now.station) + " · Anemone";
      for (const r of now.readings || []) state.readings.set(r.sensor + "/" + r.quantity, r);
      renderNow();
      renderToday();
      fillQuantities();
      fillDates();
    } catch (err) {
      setLive(false, "no data: " + err.message);
    }
  }

  // ---- Live feed ----------------------------------------------------------------------------
  function setLive(on, text) {
    const live = byId("live");
    if (!live) return;
    live.className = "live " + (on ? "on" : "off");
    live.textContent = text;
  }
  function connect() {
    if (!("EventSource" in window)) { setLive(false, "no live updates in this browser"); return; }
    // The collector has no live feed: its station pages refresh every 30 s.
    if (STATION) { setLive(false, "updated every 30 s"); setInterval(refreshNow, 30000); return; }
    const es = new EventSource("/api/events");
    es.onopen = () => setLive(true, "live");
    es.onerror = () => setLive(false, "reconnecting…");
    es.addEventListener("reading", (e) => {
      try { updateReading(JSON.parse(e.data)); } catch (_) { /* a malformed event is skipped */ }
    });
    es.addEventListener("health", (e) => {
      try { renderHealth(JSON.parse(e.data)); } catch (_) { /* skipped */ }
    });
  }

  // ---- Charts -------------------------------------------------------------------------------
  function chartURL(name) {
    return withStation("/chart/" + encodeURIComponent(name) + ".svg?span=" + state.span + "&units=" + state.units);
  }
  function updateCharts() {
    for (const img of document.querySelectorAll("img[data-chart]")) {
      const url = chartURL(img.dataset.chart);
      if (img.getAttribute("src") !== url) img.setAttribute("src", url);
    }
  }
  function reloadCharts() {
    for (const img of document.querySelectorAll("img[data-chart]")) {
      // A fresh request of the same URL: the server marks charts no-cache.
      const url = chartURL(img.dataset.chart);
      fetch(url, { cache: "no-cache" }).then((res) => (res.ok ? res.blob() : null)).then((blob) => {
        if (!blob) return;
        const objectURL = URL.createObjectURL(blob);
        img.onload = () => URL.revokeObjectURL(objectURL);
        img.setAttribute("src", objectURL);
      }).catch(() => { /* the image keeps its last picture */ });
    }
  }
  function watchCharts() {
    for (const img of document.querySelectorAll("img[data-chart]")) {
      img.addEventListener("error", () => {
        const fig = img.closest("figure");
        if (!fig || fig.querySelector("figcaption")) return;
        fig.append(el("figcaption", { text: "This chart could not be loaded (" + img.dataset.chart + ")." }));
      });
      img.addEventListener("load", () => {
        const cap = img.closest("figure") && img.closest("figure").querySelector("figcaption");
        if (cap) cap.remove();
      });
    }
  }

  // ---- Health -------------------------------------------------------------------------------
  function renderHealth(h) {
    state.health = h;
    const dl = byId("health-summary");
    if (dl && h) {
      const facts = [];
      const add = (k, v, cls) => { facts.push(el("dt", { text: k }), el("dd", cls ? { class: cls, text: v } : { text: v })); };
      const sensors = Array.isArray(h.sensors) ? h.sensors : [];
      const failing = sensors.filter((s) => s.state !== "ok");
      add("Sensors", failing.length ? failing.length + " of " + sensors.length + " in error" : "all " + sensors.length + " ok",
        failing.length ? "state-error" : "state-ok");
      if (h.mqtt) {
        const m = h.mqtt;
        const text = !m.enabled ? "off" : (m.connected ? "connected" : "not connected") +
          (m.broker ? " to " + m.broker : "") + " · backlog " + (m.backlog ?? "—");
        add("MQTT", text, m.enabled && !m.connected ? "state-error" : "");
      }
      if (h.disk) add("Free disk", bytes(h.disk.free_bytes) + " of " + bytes(h.disk.total_bytes) + (h.disk.path ? " (" + h.disk.path + ")" : ""));
      if (h.clock) add("Clock", String(h.clock.state || "").replace(/_/g, " ") + (h.clock.detail ? " · " + h.clock.detail : ""),
        h.clock.state === "synchronised" ? "state-ok" : "");
      if (h.store) add("Stored readings", (h.store.readings ?? "—") + (h.store.oldest ? " since " + localDateTime(h.store.oldest) : ""));
      add("Up for", duration(h.uptime_s) + (h.started ? " (since " + localDateTime(h.started) + ")" : ""));
      add("Version", h.version || "—");
      dl.replaceChildren(...facts);
    }
    const body = document.querySelector("#health-sensors tbody");
    if (body && h && Array.isArray(h.sensors)) {
      body.replaceChildren(...h.sensors.map((s) => el("tr", {}, [
        el("td", { text: s.sensor }),
        el("td", { text: s.type || "" }),
        el("td", { class: s.state === "ok" ? "state-ok" : "state-error", text: s.state === "ok" ? "ok" : "error" + (s.error ? ": " + s.error : "") }),
        el("td", { text: s.last_reading ? localDateTime(s.last_reading) : "—" }),
      ])));
    }
  }
  async function refreshHealth() {
    try { renderHealth(await getJSON(withStation("/api/health"))); } catch (err) {
      const dl = byId("health-summary");
      if (dl) dl.replaceChildren(el("dt", { text: "Status" }), el("dd", { class: "state-error", text: err.message }));
    }
  }

  // ---- CSV download -------------------------------------------------------------------------
  // The UTC instant of local midnight starting `date` (YYYY-MM-DD) in the station's zone.
  function offsetMs(t) {
    const parts = {};
    for (const p of formatter({ year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).formatToParts(new Date(t))) parts[p.type] = p.value;
    return Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour % 24, +parts.minute, +parts.second) - Math.floor(t / 1000) * 1000;
  }
  function localMidnight(date) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date || "");
    if (!m) return null;
    const guess = Date.UTC(+m[1], +m[2] - 1, +m[3]);
    let t = guess - offsetMs(guess);
    t = guess - offsetMs(t);
    return t;
  }
  function fillDates() {
    const from = byId("csv-from"), to = byId("csv-to");
    if (!from || !to || from.value) { updateLink(); return; }
    const today = state.now && state.now.today && state.now.today.date;
    if (today) {
      to.value = today;
      const d = new Date(Date.parse(today + "T00:00:00Z") - 6 * 86400000);
      from.value = d.toISOString().slice(0, 10);
    }
    updateLink();
  }
  function fillQuantities() {
    const select = byId("csv-quantity");
    if (!select) return;
    const have = new Set([...select.options].map((o) => o.value));
    const names = [...new Set([...state.readings.values()].map((r) => r.quantity))].sort();
    for (const q of names) if (!have.has(q)) select.append(el("option", { value: q, text: label(q) }));
  }
  function updateLink() {
    const link = byId("csv-link");
    const from = localMidnight(byId("csv-from") && byId("csv-from").value);
    const toDay = localMidnight(byId("csv-to") && byId("csv-to").value);
    if (!link) return;
    if (from === null || toDay === null || toDay < from) {
      link.removeAttribute("href");
      link.textContent = "Choose a range";
      return;
    }
    // The end is the local midnight after the last chosen day (the next day, DST-safe).
    const next = new Date(toDay + 36 * 3600000).toISOString().slice(0, 10);
    const to = localMidnight(next);
    const params = new URLSearchParams({ from: new Date(from).toISOString(), to: new Date(to).toISOString() });
    const q = byId("csv-quantity") && byId("csv-quantity").value;
    if (q) params.set("quantity", q);
    if (STATION) params.set("station", STATION);
    link.href = "/export.csv?" + params.toString();
    link.textContent = "Download CSV";
  }

  // ---- Switches -----------------------------------------------------------------------------
  function press(selector, attr, value) {
    for (const b of document.querySelectorAll(selector)) b.setAttribute("aria-pressed", String(b.getAttribute(attr) === value));
  }
  function applySwitches() {
    press("button[data-units]", "data-units", state.units);
    press("button[data-span]", "data-span", state.span);
    const p = byId("projector");
    if (p) p.setAttribute("aria-pressed", String(state.projector));
    document.body.classList.toggle("projector", state.projector);
  }
  function wire() {
    for (const b of document.querySelectorAll("button[data-units]")) {
      b.addEventListener("click", () => {
        state.units = b.dataset.units === "imperial" ? "imperial" : "metric";
        save("anemone.units", state.units);
        applySwitches(); renderNow(); renderToday(); updateCharts();
      });
    }
    for (const b of document.querySelectorAll("button[data-span]")) {
      b.addEventListener("click", () => { state.span = b.dataset.span; applySwitches(); updateCharts(); });
    }
    const p = byId("projector");
    if (p) p.addEventListener("click", () => { state.projector = !state.projector; save("anemone.projector", state.projector ? "on" : "off"); applySwitches(); });
    for (const id of ["csv-from", "csv-to", "csv-quantity"]) {
      const input = byId(id);
      if (input) input.addEventListener("change", updateLink);
    }
    const form = byId("csv-form");
    if (form) form.addEventListener("submit", (e) => { e.preventDefault(); const link = byId("csv-link"); if (link && link.href) link.click(); });
  }

  function start() {
    if (new URLSearchParams(location.search).has("projector")) state.projector = true;
    wire();
    applySwitches();
    watchCharts();
    updateCharts();
    refreshNow().then(connect);
    refreshHealth();
    setInterval(tickAges, 1000);
    setInterval(refreshNow, 60000);
    setInterval(refreshHealth, 15000);
    setInterval(reloadCharts, 5 * 60000);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
