// The network page: our own script, no libraries. It reads /api/stations and draws a map of
// the stations (markers on a plain background, from their positions) and a table sortable
// by any quantity; each station links to its own page (/station?station=ID).
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const state = { stations: [], sortKey: "station", sortDir: 1 };

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children || []) node.append(c);
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }
  function stationUrl(s) { return "/station?station=" + encodeURIComponent(s.station); }
  function stateName(s) { return s.online === true ? "online" : s.online === false ? "offline" : "unknown"; }
  function label(q) { const t = String(q).replace(/_/g, " "); return t.charAt(0).toUpperCase() + t.slice(1); }
  // The newest value of each quantity (the first sensor's when two measure it).
  function values(s) {
    const out = {};
    for (const r of s.readings || []) if (!(r.quantity in out)) out[r.quantity] = r;
    return out;
  }

  function drawMap() {
    const map = document.getElementById("net-map");
    const list = document.getElementById("unplaced-list");
    map.replaceChildren();
    list.replaceChildren();
    const placed = state.stations.filter((s) => Number.isFinite(s.latitude) && Number.isFinite(s.longitude));
    for (const s of state.stations.filter((x) => !placed.includes(x))) {
      list.append(el("li", {}, [el("a", { href: stationUrl(s), text: s.name || s.station }), " (" + stateName(s) + ")"]));
    }
    if (!list.children.length) list.append(el("li", { text: "none" }));
    // Fit the stations' bounding box (with a margin) into the drawing, keeping the
    // aspect of longitude to latitude at their middle latitude.
    const W = 1000, H = 500, pad = 40;
    let lat0 = Math.min(...placed.map((s) => s.latitude)), lat1 = Math.max(...placed.map((s) => s.latitude));
    let lon0 = Math.min(...placed.map((s) => s.longitude)), lon1 = Math.max(...placed.map((s) => s.longitude));
    if (!placed.length) { lat0 = -60; lat1 = 60; lon0 = -180; lon1 = 180; }
    const k = Math.cos(((lat0 + lat1) / 2) * Math.PI / 180) || 1;
    const span = Math.max((lon1 - lon0) * k, lat1 - lat0, 0.01);
    const scale = Math.min(W - 2 * pad, H - 2 * pad) / span;
    const cx = (lon0 + lon1) / 2, cy = (lat0 + lat1) / 2;
    const x = (lon) => W / 2 + (lon - cx) * k * scale;
    const y = (lat) => H / 2 - (lat - cy) * scale;
    for (let i = 1; i < 10; i++) {
      map.append(svg("line", { class: "grid", x1: i * W / 10, y1: 0, x2: i * W / 10, y2: H }));
      if (i < 5) map.append(svg("line", { class: "grid", x1: 0, y1: i * H / 5, x2: W, y2: i * H / 5 }));
    }
    for (const s of placed) {
      const a = svg("a", { href: stationUrl(s) });
      const dot = svg("circle", { cx: x(s.longitude), cy: y(s.latitude), r: 8, class: s.online === true ? "on" : s.online === false ? "off" : "unknown" });
      const t = svg("title");
      const v = values(s);
      t.textContent = (s.name || s.station) + " — " + stateName(s) + Object.values(v).map((r) => "\n" + label(r.quantity) + ": " + r.value + " " + r.unit).join("");
      dot.append(t);
      a.append(dot);
      const name = svg("text", { x: x(s.longitude) + 11, y: y(s.latitude) + 5 });
      name.textContent = s.name || s.station;
      a.append(name);
      map.append(a);
    }
    if (!placed.length && state.stations.length) {
      const t = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" });
      t.textContent = "No station has published a position (set latitude and longitude in [station]).";
      map.append(t);
    }
  }

  function drawTable() {
    const quantities = [...new Set(state.stations.flatMap((s) => (s.readings || []).map((r) => r.quantity)))].sort();
    const cols = [["station", "Station"], ["state", "State"], ["last_seen", "Last seen"]].concat(quantities.map((q) => [q, label(q)]));
    const table = document.getElementById("net-table");
    const head = el("tr");
    for (const [key, title] of cols) {
      const th = el("th", { scope: "col" }, [el("button", { type: "button", text: title })]);
      if (state.sortKey === key) th.setAttribute("aria-sort", state.sortDir > 0 ? "ascending" : "descending");
      th.firstChild.addEventListener("click", () => {
        state.sortDir = state.sortKey === key ? -state.sortDir : 1;
        state.sortKey = key;
        drawTable();
      });
      head.append(th);
    }
    table.tHead.replaceChildren(head);
    const key = (s) => {
      if (state.sortKey === "station") return (s.name || s.station).toLowerCase();
      if (state.sortKey === "state") return stateName(s);
      if (state.sortKey === "last_seen") return s.last_seen || "";
      const r = values(s)[state.sortKey];
      return r && Number.isFinite(r.value) ? r.value : null;
    };
    const rows = [...state.stations].sort((a, b) => {
      const ka = key(a), kb = key(b);
      if (ka === null && kb === null) return 0;
      if (ka === null) return 1; // stations without the quantity always last
      if (kb === null) return -1;
      return (ka < kb ? -1 : ka > kb ? 1 : 0) * state.sortDir;
    });
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const s of rows) {
      const v = values(s);
      const tr = el("tr", { "data-station": s.station }, [
        el("td", {}, [el("a", { href: stationUrl(s), text: s.name || s.station })]),
        el("td", { class: s.online === false ? "state-error" : "state-ok", text: stateName(s) }),
        el("td", { class: "num", text: s.last_seen || "" }),
      ]);
      for (const q of quantities) {
        const r = v[q];
        tr.append(el("td", { class: "num", text: r && r.value !== null ? r.value + " " + r.unit : "—" }));
      }
      body.append(tr);
    }
  }

  async function refresh() {
    try {
      const res = await fetch("/api/stations", { headers: { Accept: "application/json" } });
      if (!res.ok) throw new Error("/api/stations answered " + res.status);
      state.stations = (await res.json()).stations || [];
      const online = state.stations.filter((s) => s.online === true).length;
      document.getElementById("net-summary").textContent = state.stations.length + " stations, " + online + " online";
      drawMap();
      drawTable();
    } catch (err) {
      document.getElementById("net-summary").textContent = "Cannot read the stations: " + err.message;
    }
  }
  refresh();
  setInterval(refresh, 30000);
})();
