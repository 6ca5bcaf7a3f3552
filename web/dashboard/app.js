// swarmtv dashboard: follows the tracker's state over server-sent events
// and draws it with plain SVG. No external code.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
let updates = 0;

function $(id) { return document.getElementById(id); }

function bytes(n) {
  if (n == null) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n.toFixed(0)) + " " + u[i];
}
function pct(x) { return x == null ? "n/a" : (x * 100).toFixed(1) + "%"; }
function num(x) { return x == null ? "–" : String(x); }

function el(name, attrs, parent) {
  const e = document.createElementNS(SVGNS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}

// sumTotals adds up the channels' totals.
function sumTotals(chs) {
  const t = { player_bytes: 0, p2p_bytes: 0, origin_seed_bytes: 0, origin_fallback_bytes: 0, stalls: 0, stall_ms: 0,
    late_slices: 0, lost_slices: 0, bad_chunks: 0, repairs: 0 };
  for (const c of chs) for (const k in t) t[k] += c.totals[k] || 0;
  return t;
}

function render(st) {
  updates++;
  $("updates").textContent = updates;
  $("updated").textContent = new Date(st.unix_ms).toLocaleTimeString();
  const chs = st.channels || [];
  const t = sumTotals(chs);
  const origin = t.origin_seed_bytes + t.origin_fallback_bytes;
  $("viewers").textContent = st.viewers;
  $("savings").textContent = t.player_bytes > 0 ? pct(1 - origin / t.player_bytes) : "n/a";
  $("origin-egress").textContent = bytes(origin);
  $("origin-split").textContent = "seed " + bytes(t.origin_seed_bytes) + " · fallback " + bytes(t.origin_fallback_bytes);
  $("p2p").textContent = bytes(t.p2p_bytes);
  $("player").textContent = bytes(t.player_bytes);
  $("nchannels").textContent = chs.length;

  const tb = $("channels").tBodies[0];
  tb.textContent = "";
  if (!chs.length) {
    const r = tb.insertRow(); const c = r.insertCell(); c.colSpan = 9; c.textContent = "No channel registered yet.";
  }
  for (const c of chs) {
    const r = tb.insertRow();
    r.dataset.channel = c.name;
    const o = c.totals.origin_seed_bytes + c.totals.origin_fallback_bytes;
    for (const v of [c.name, c.viewers, pct(c.savings), bytes(c.totals.player_bytes), bytes(o), bytes(c.totals.p2p_bytes),
      c.totals.stalls, c.totals.late_slices + " / " + c.totals.lost_slices, c.totals.bad_chunks]) {
      r.insertCell().textContent = v;
    }
  }

  // History: summed over channels, aligned on the newest sample.
  const hist = mergeHistory(chs);
  chart($("chart-viewers"), hist, [{ key: "viewers", cls: "s-viewers" }], v => String(Math.round(v)));
  chart($("chart-bytes"), hist, [
    { key: "player", cls: "s-player" }, { key: "p2p", cls: "s-p2p" }, { key: "origin", cls: "s-origin" }], v => bytes(v) + "/s");
  chart($("chart-savings"), hist, [{ key: "savings", cls: "s-savings" }], v => (v * 100).toFixed(0) + "%", 0, 1);

  // QoE: the first channel with viewers (percentiles do not add up).
  const q = chs.find(c => c.viewers > 0) || chs[0];
  for (const k of ["p50", "p95", "p99"]) {
    $("startup-" + k).textContent = q ? num(q.startup_ms[k]) : "–";
    $("lag-" + k).textContent = q ? num(q.lag_ms[k]) : "–";
  }
  $("stalls").textContent = t.stalls;
  $("stalled").textContent = (t.stall_ms / 1000).toFixed(1) + " s";
  $("late").textContent = t.late_slices;
  $("lost").textContent = t.lost_slices;
  $("repairs").textContent = t.repairs;
  $("bad").textContent = t.bad_chunks;

  renderNAT(st.nat, st.connections);
  renderISP(st.isp);
  renderTrees(chs);
}

function mergeHistory(chs) {
  const by = new Map();
  for (const c of chs) for (const p of c.history || []) {
    const k = Math.round(p.unix_ms / 1000);
    let m = by.get(k);
    if (!m) { m = { t: k, viewers: 0, player: 0, p2p: 0, origin: 0 }; by.set(k, m); }
    m.viewers += p.viewers; m.player += p.player_bytes_per_s; m.p2p += p.p2p_bytes_per_s;
    m.origin += p.origin_seed_bytes_per_s + p.origin_fallback_bytes_per_s;
  }
  const out = [...by.values()].sort((a, b) => a.t - b.t);
  for (const m of out) m.savings = m.player > 0 ? Math.max(0, 1 - m.origin / m.player) : null;
  return out;
}

// chart draws series of points (objects with the series' keys) as lines.
function chart(svg, pts, series, fmt, lo, hi) {
  svg.textContent = "";
  const W = 600, H = 180, L = 56, R = 8, T = 8, B = 18;
  el("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }, svg);
  el("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }, svg);
  if (pts.length < 2) {
    el("text", { x: L + 10, y: H / 2 }, svg).textContent = "collecting samples…";
    return;
  }
  let max = hi != null ? hi : 0, min = lo != null ? lo : 0;
  if (hi == null) for (const p of pts) for (const s of series) if (p[s.key] != null) max = Math.max(max, p[s.key]);
  if (max <= min) max = min + 1;
  const t0 = pts[0].t, t1 = pts[pts.length - 1].t;
  const x = tt => L + (W - L - R) * (tt - t0) / Math.max(1, t1 - t0);
  const y = v => H - B - (H - B - T) * (v - min) / (max - min);
  el("text", { x: 2, y: T + 8 }, svg).textContent = fmt(max);
  el("text", { x: 2, y: H - B }, svg).textContent = fmt(min);
  el("text", { x: L, y: H - 4 }, svg).textContent = "−" + (t1 - t0) + " s";
  el("text", { x: W - R - 24, y: H - 4 }, svg).textContent = "now";
  for (const s of series) {
    const xs = pts.filter(p => p[s.key] != null).map(p => x(p.t).toFixed(1) + "," + y(p[s.key]).toFixed(1));
    if (xs.length) el("polyline", { points: xs.join(" "), class: s.cls }, svg);
  }
}

function renderNAT(nat, conns) {
  const box = $("nat");
  box.textContent = "";
  const counts = (nat && nat.counts) || {};
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const bar = document.createElement("div");
  bar.className = "bar";
  for (const k of Object.keys(counts).sort()) {
    const d = document.createElement("div");
    d.style.flex = String(counts[k] || 0.0001);
    d.className = "nat-" + k;
    d.dataset.nat = k;
    d.textContent = k + ": " + counts[k];
    d.title = k + ": " + counts[k] + " of " + total + " peers";
    bar.appendChild(d);
  }
  box.appendChild(bar);
  if (!total) box.appendChild(document.createTextNode("no viewers"));
  $("nat-note").textContent = nat && nat.note ? (nat.known ? "" : "Unknown: ") + nat.note : "";
  const c = conns || {};
  for (const k of ["direct", "relayed", "failed", "relayed_edges"]) $("conn-" + k).textContent = c.known ? c[k] : "–";
  $("conn-note").textContent = c.known ? "" : "Unknown: " + (c.note || "");
}

function renderISP(isp) {
  const tbl = $("isp");
  tbl.textContent = "";
  if (!isp) return;
  let max = 0;
  for (const row of isp.bytes) for (const v of row) max = Math.max(max, v);
  const head = tbl.createTHead().insertRow();
  head.insertCell().textContent = "from \\ to";
  for (const n of isp.isps) {
    const h = head.insertCell();
    h.textContent = n;
    h.style.borderBottom = "3px solid " + ispColour(n);
  }
  const body = tbl.createTBody();
  isp.isps.forEach((n, i) => {
    const r = body.insertRow();
    r.dataset.isp = n;
    const h = r.insertCell();
    h.textContent = n;
    h.style.borderLeft = "3px solid " + ispColour(n);
    isp.bytes[i].forEach((v, j) => {
      const td = r.insertCell();
      td.textContent = bytes(v);
      td.dataset.bytes = v;
      td.className = i === j ? "same-isp" : "cross-isp";
      if (max > 0 && v > 0) td.style.background = "rgba(79,195,247," + (0.1 + 0.5 * v / max).toFixed(2) + ")";
    });
  });
  if (!isp.isps.length) {
    const r = body.insertRow(); const c = r.insertCell(); c.textContent = "no peer-to-peer traffic yet";
  }
  $("isp-note").textContent = isp.note ? (isp.known ? "" : "Unknown: ") + isp.note : "";
}

// ISP colours: a fixed palette dealt in the order ISPs are first seen
// (sorted within a state), so colours stay put between updates; grey for
// unknown.
const palette = ["#4fc3f7", "#81c784", "#ba68c8", "#ffb74d", "#e57373", "#4db6ac", "#f06292", "#aed581", "#7986cb", "#fff176"];
const ispColours = new Map([["unknown", "#78909c"]]);
function ispColour(isp) {
  isp = isp || "unknown";
  if (!ispColours.has(isp)) ispColours.set(isp, palette[(ispColours.size - 1) % palette.length]);
  return ispColours.get(isp);
}

// selected holds each channel's stripe shown (default 0).
const selected = new Map();
let lastChannels = [];

function renderTrees(chs) {
  lastChannels = chs;
  const box = $("trees");
  box.textContent = "";
  if (!chs.length) { box.textContent = "No channel yet."; return; }
  const isps = new Set();
  for (const c of chs) { isps.add(c.tree.origin.isp); for (const n of c.tree.nodes) isps.add(n.isp); }
  const legend = document.createElement("div");
  legend.className = "legend isp-legend";
  legend.appendChild(document.createTextNode("ISP:"));
  for (const i of [...isps].sort()) {
    const k = document.createElement("span");
    k.className = "k";
    k.style.background = ispColour(i);
    legend.appendChild(k);
    legend.appendChild(document.createTextNode(i));
  }
  box.appendChild(legend);
  for (const c of chs) box.appendChild(drawTree(c));
}

// drawTree draws one stripe tree of a channel (the selected one) top-down:
// leaves side by side, a parent centred over its children; peers without
// a drawn parent in this stripe on a row of their own.
function drawTree(c) {
  const tr = c.tree;
  const K = Math.max(1, tr.stripes || 1);
  let s = selected.get(c.name) || 0;
  if (s >= K) s = 0;
  const wrap = document.createElement("div");
  wrap.className = "tree";
  wrap.dataset.channel = c.name;

  const bar = document.createElement("div");
  bar.className = "tree-title";
  bar.appendChild(document.createTextNode("channel " + c.name + " · stripe "));
  for (let i = 0; i < K; i++) {
    const b = document.createElement("button");
    b.className = "stripe" + (i === s ? " active" : "");
    b.dataset.stripe = i;
    b.textContent = i;
    b.addEventListener("click", () => { selected.set(c.name, i); renderTrees(lastChannels); });
    bar.appendChild(b);
  }
  const edges = tr.edges.filter(e => (e.stripe || 0) === s);
  const relayed = edges.filter(e => e.relayed).length;
  bar.appendChild(document.createTextNode(" — " + tr.nodes.length + " peers drawn" +
    (tr.hidden ? ", " + tr.hidden + " more not drawn (deepest left out)" : "") +
    " · " + edges.length + " links in this stripe" + (relayed ? ", " + relayed + " relayed" : "")));
  wrap.appendChild(bar);

  const kids = new Map(), info = new Map();
  info.set(tr.origin.id, tr.origin);
  for (const n of tr.nodes) info.set(n.id, n);
  for (const e of edges) {
    if (!kids.has(e.from)) kids.set(e.from, []);
    kids.get(e.from).push(e.to);
  }
  const many = tr.nodes.length > 60;
  const dx = many ? 14 : 80, dy = many ? 46 : 70, r = many ? 5 : 11;
  // In a big tree a parent's leaf children (AGG or more) are drawn as one
  // bar, segmented by ISP, so the interior of the tree stays readable.
  const AGG = 3;
  const pos = new Map(), aggs = []; // pos: null for a peer drawn inside a bar
  let next = 0, maxDepth = 0;       // next: x cursor in pixels
  const aggregate = (parent, leaves, d) => {
    const w = Math.min(leaves.length, 60) * 3 + 10;
    const a = { parent, ids: leaves, x: next + w / 2, d, w };
    for (const k of leaves) pos.set(k, null);
    next += w + 8;
    maxDepth = Math.max(maxDepth, d);
    aggs.push(a);
    return a.x;
  };
  const leafKids = ks => many ? ks.filter(k => !(kids.get(k) || []).some(g => !pos.has(g))) : [];
  const place = (id, d) => {
    if (pos.has(id)) return;
    maxDepth = Math.max(maxDepth, d);
    const ks = (kids.get(id) || []).filter(k => !pos.has(k));
    if (!ks.length) { pos.set(id, { x: next + dx / 2, d }); next += dx; return; }
    pos.set(id, { x: 0, d }); // mark before recursing (no cycles)
    let leaves = leafKids(ks);
    if (leaves.length < AGG) leaves = [];
    const xs = [];
    for (const k of ks) if (!leaves.includes(k) && !pos.has(k)) { place(k, d + 1); xs.push(pos.get(k).x); }
    if (leaves.length) xs.push(aggregate(id, leaves, d + 1));
    pos.set(id, { x: (Math.min(...xs) + Math.max(...xs)) / 2, d });
  };
  place(tr.origin.id, 0);
  // Peers detached in this stripe, or whose parent is not drawn, and
  // what hangs below them.
  const fed = new Set(edges.filter(e => info.has(e.from)).map(e => e.to));
  const loose = tr.nodes.filter(n => !pos.has(n.id));
  const base = maxDepth + 1.5;
  const drawn = next;
  next = 0;
  // Roots first (no drawn parent in this stripe), then what is left
  // (a cycle while the tracker repairs).
  const roots = loose.filter(n => !fed.has(n.id)).map(n => n.id);
  const looseLeaves = leafKids(roots);
  if (looseLeaves.length >= AGG) aggregate(null, looseLeaves, base);
  for (const id of roots.concat(loose.map(n => n.id))) place(id, base);
  const dn = Math.max(drawn, next);
  const rows = Math.max(maxDepth, ...[...pos.values()].filter(p => p).map(p => p.d), 0);
  const width = Math.max(dn, dx) + 60;
  const height = (rows + 1) * dy + 30;
  const svg = el("svg", { width, height, viewBox: "0 0 " + width + " " + height, "data-channel": c.name, "data-stripe": s });
  const X = id => pos.get(id).x + 30, Y = id => pos.get(id).d * dy + 24;
  if (loose.length) el("text", { x: 4, y: base * dy + 4, class: "row-label" }, svg).textContent = "no drawn parent in this stripe:";
  for (const e of edges) {
    if (!pos.get(e.from) || !pos.get(e.to)) continue;
    el("line", { x1: X(e.from), y1: Y(e.from), x2: X(e.to), y2: Y(e.to), class: "edge" + (e.relayed ? " relayed" : ""),
      "data-from": e.from, "data-to": e.to, "data-stripe": s }, svg);
  }
  for (const a of aggs) {
    const y = a.d * dy + 24, x0 = a.x - a.w / 2 + 30;
    const set = new Set(a.ids);
    const rel = a.parent ? edges.filter(e => e.from === a.parent && set.has(e.to) && e.relayed).length : 0;
    if (a.parent) el("line", { x1: X(a.parent), y1: Y(a.parent), x2: a.x + 30, y2: y - 5, class: "agg-edge" + (rel ? " relayed" : ""),
      "data-from": a.parent, "data-count": a.ids.length, "data-stripe": s }, svg);
    const g = el("g", { class: "agg", "data-parent": a.parent || "", "data-count": a.ids.length }, svg);
    const by = new Map(), nats = new Map();
    let lag = 0, stalled = 0;
    for (const id of a.ids) {
      const n = info.get(id);
      by.set(n.isp, (by.get(n.isp) || 0) + 1);
      nats.set(n.nat, (nats.get(n.nat) || 0) + 1);
      lag = Math.max(lag, n.lag_ms);
      if (n.stalls > 0) stalled++;
    }
    let x = x0;
    for (const [isp, n] of [...by].sort()) {
      const w = a.w * n / a.ids.length;
      el("rect", { x, y: y - 5, width: w, height: 10, fill: ispColour(isp), "data-isp": isp }, g);
      x += w;
    }
    el("text", { x: x0, y: y + 17 }, g).textContent = a.ids.length;
    const mix = m => [...m].sort().map(([k, v]) => k + " " + v).join(", ");
    el("title", {}, g).textContent = a.ids.length + " leaf peers" + (a.parent ? " of " + a.parent.slice(0, 8) : " with no drawn parent") +
      "\nISP: " + mix(by) + "\nNAT: " + mix(nats) + (rel ? "\n" + rel + " relayed links" : "") +
      "\nmax lag " + lag + " ms · " + stalled + " have stalled";
  }
  for (const [id, p] of pos) {
    if (!p) continue;
    const n = info.get(id);
    const isOrigin = id === tr.origin.id;
    const g = el("g", { class: "node" + (isOrigin ? " origin" : "") + (n.stalls > 0 ? " stalled" : ""), "data-id": id,
      "data-isp": n.isp, "data-nat": n.nat }, svg);
    el("circle", { cx: X(id), cy: Y(id), r: isOrigin ? r + 3 : r, fill: ispColour(n.isp) }, g);
    el("title", {}, g).textContent = (isOrigin ? "origin " : "peer ") + id + "\n" + n.addr +
      (isOrigin ? "" : "\ndepth per stripe " + (n.depths || []).join(" ") + " (0: detached)") +
      "\nfeeds " + n.children + (isOrigin ? " stripe feeds" : " peers") + " · capacity " + n.capacity +
      "\nISP " + n.isp + " · NAT " + n.nat +
      (isOrigin ? "" : "\nupload " + (n.upload_bps ? (n.upload_bps / 1e6).toFixed(1) + " Mbit/s" : "not measured") +
        "\nlag " + n.lag_ms + " ms · stalls " + n.stalls);
    if (!many) el("text", { x: X(id) + r + 3, y: Y(id) + 4 }, g).textContent = isOrigin ? "origin" : id.slice(0, 6);
  }
  wrap.appendChild(svg);
  return wrap;
}

function connect() {
  const es = new EventSource("api/v1/dashboard/events");
  es.addEventListener("open", () => { $("conn").className = "conn ok"; $("conn").textContent = "live"; });
  es.addEventListener("error", () => { $("conn").className = "conn bad"; $("conn").textContent = "disconnected; retrying"; });
  es.addEventListener("state", ev => render(JSON.parse(ev.data)));
}
connect();
