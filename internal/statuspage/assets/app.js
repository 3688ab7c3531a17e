// Reflect status page: reads /status every second and draws it. Every
// string from the mesh (peer ids, topic and key names) goes into the page
// as text, never as markup.
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function short(id) { return id ? "…" + id.slice(-6) : ""; }

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function ms(ns) { return ns > 0 ? (ns / 1e6).toFixed(ns < 1e7 ? 2 : 0) + " ms" : ""; }

function ago(t, now) {
  const d = new Date(t);
  if (!t || d.getFullYear() < 2000) return "";
  const s = Math.max(0, Math.round((now - d) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  return Math.floor(s / 3600) + " h ago";
}

function bytes(n) {
  if (n < 1024) return n + " B";
  if (n < 1 << 20) return (n / 1024).toFixed(1) + " KiB";
  return (n / (1 << 20)).toFixed(1) + " MiB";
}

function rate(r) { return r >= 10 ? r.toFixed(0) : r.toFixed(1); }

function fill(tbody, rows, classOf) {
  tbody.replaceChildren(...rows.map((cells, i) => {
    const tr = el("tr", null, classOf ? classOf(i) : "");
    for (const c of cells) tr.append(c instanceof Node ? c : el("td", c));
    return tr;
  }));
}

// The graph: every node that appears in the links or the peers, on a
// circle, this node at the top.
function drawGraph(st) {
  const g = document.getElementById("graph");
  const self = st.self.id;
  const ids = new Set([self]);
  for (const p of st.peers) ids.add(p.id);
  for (const [from, tos] of Object.entries(st.links)) { ids.add(from); for (const t of tos) ids.add(t); }
  const order = [self, ...[...ids].filter(i => i !== self).sort()];
  const n = order.length, cx = 200, cy = 200, r = n > 1 ? 150 : 0;
  const pos = new Map(order.map((id, i) => {
    const a = -Math.PI / 2 + 2 * Math.PI * i / n;
    return [id, [cx + r * Math.cos(a), cy + r * Math.sin(a)]];
  }));
  const announced = new Set();
  for (const [from, tos] of Object.entries(st.links)) for (const t of tos) announced.add(from + " " + t);
  const rtt = new Map(st.peers.map(p => [p.id, p.rtt]));
  const parts = [];
  const drawn = new Set();
  for (const key of announced) {
    const [a, b] = key.split(" ");
    const pair = a < b ? a + " " + b : b + " " + a;
    if (drawn.has(pair)) continue;
    drawn.add(pair);
    const both = announced.has(b + " " + a);
    const [x1, y1] = pos.get(a), [x2, y2] = pos.get(b);
    parts.push(svg("line", { x1, y1, x2, y2, class: both ? "link" : "link oneway", "data-from": a, "data-to": b }));
    const other = a === self ? b : b === self ? a : null;
    if (other && rtt.get(other) > 0) {
      parts.push(svg("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 3, class: "rtt" }, ms(rtt.get(other))));
    }
  }
  for (const id of order) {
    const [x, y] = pos.get(id);
    const node = svg("g", { class: id === self ? "node self" : "node", "data-id": id });
    node.append(svg("title", {}, id), svg("circle", { cx: x, cy: y, r: 14 }), svg("text", { x, y: y + 28 }, short(id)));
    parts.push(node);
  }
  g.replaceChildren(...parts);
}

function drawPeers(st, now) {
  fill(document.querySelector("#peers tbody"), st.peers.map(p => {
    const s = p.store;
    const state = p.joined ? "joined" : p.connected ? "connected" : "lost " + ago(p.lost_since, now);
    let store = !s ? "" : s.syncing ? "syncing" : s.synced ? "synced" : "not synced";
    if (s && s.sync_bytes > 0) store += " (" + s.sync_keys.toLocaleString("en-US") + " keys, " + bytes(s.sync_bytes) + " so far)";
    if (s && s.last_sync_error) store += " (last sync " + ago(s.last_sync, now) + " failed: " + s.last_sync_error + ")";
    else if (s && ago(s.last_sync, now)) store += " (last sync " + ago(s.last_sync, now) + ")";
    const id = el("td", short(p.id), "mono");
    id.title = p.id;
    return [id, state, (p.addrs || [])[0] || "", ago(p.connected_since, now), ms(p.rtt), store,
      s && s.lag !== undefined ? ms(s.lag) || "0" : ""];
  }));
}

function drawTopics(st) {
  fill(document.querySelector("#topics tbody"), st.topics.map(t => [
    el("td", t.name, "mono"), t.stats.published, t.stats.received, t.stats.delivered, t.stats.dropped,
    rate(t.rate.published) + " · " + bytes(Math.round(t.rate.published_bytes)),
    rate(t.rate.received) + " · " + bytes(Math.round(t.rate.received_bytes))]),
    i => st.topics[i].name.startsWith("_reflect/") ? "reserved" : "");
}

function drawStore(st) {
  const dl = document.getElementById("store");
  if (!st.store) { dl.replaceChildren(el("dt", "no store")); return; }
  document.getElementById("store-name").textContent = st.store.name;
  const s = st.store.stats;
  const synced = st.store.peers.filter(p => p.synced).length;
  const rows = [["keys", s.keys], ["size", s.bytes !== undefined ? bytes(s.bytes) : ""],
    ["synced with", synced + " of " + st.store.peers.length + " peers"],
    ["deltas sent / received", s.deltas_sent + " / " + s.deltas_received],
    ["syncs started / served / failed", s.syncs + " / " + s.sync_served + " / " + s.sync_failures],
    ["pending deltas", s.pending_deltas]];
  dl.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
}

function drawEvents(st) {
  const ol = document.getElementById("events");
  ol.replaceChildren(...st.events.slice().reverse().map(e => {
    const li = el("li");
    li.className = "event " + e.kind;
    const who = e.peer ? " " + short(e.peer) : "";
    li.textContent = new Date(e.time).toLocaleTimeString() + " " + e.kind + who + (e.key ? " " + e.key : "") + ": " + e.text;
    return li;
  }));
}

function draw(st) {
  const now = new Date(st.time);
  document.getElementById("self").textContent = short(st.self.id);
  document.getElementById("self").title = st.self.id;
  const joined = st.peers.filter(p => p.joined).length;
  document.getElementById("summary").textContent =
    joined + " peers joined · " + st.topics.length + " topics · up " + ago(st.self.started, now).replace(" ago", "") +
    (st.self.version ? " · " + st.self.version : "");
  drawGraph(st);
  drawPeers(st, now);
  drawTopics(st);
  drawStore(st);
  drawEvents(st);
}

async function tick() {
  const conn = document.getElementById("conn");
  try {
    const r = await fetch("status", { cache: "no-store" });
    if (!r.ok) throw new Error(r.status + " " + r.statusText);
    draw(await r.json());
    conn.textContent = "live";
    conn.className = "ok";
  } catch (err) {
    conn.textContent = "no answer: " + err.message;
    conn.className = "bad";
  }
  setTimeout(tick, 1000);
}

tick();
