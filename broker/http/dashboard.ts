/**
 * `GET /`: the dashboard, one static page (HTML, CSS and script inline; no
 * build step, no third-party code). It reads `/metrics` every second
 * (counters become rates: messages in and out per second, drawn as a
 * chart over the last two minutes) and the admin API every two seconds
 * (clients, sessions, subscriptions, retained messages; a client can be
 * kicked). The API token, when the broker has one, comes from the page's
 * URL fragment (`/#token=...`) or the field at the top, and is kept in the
 * tab's session storage only.
 *
 * @module
 */

/** The page (UTF-8 HTML). */
export const DASHBOARD_HTML: string = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kite dashboard</title>
<style>
  :root { --bg: #f6f7f9; --card: #fff; --ink: #1d2330; --dim: #6b7385;
    --line: #e3e6ec; --in: #2f6fed; --out: #19a974; --bad: #d64545; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg);
    color: var(--ink); }
  header { display: flex; align-items: center; gap: 16px; padding: 12px 20px;
    background: var(--ink); color: #fff; }
  header h1 { margin: 0; font-size: 18px; }
  header .meta { color: #b8bfcc; font-size: 13px; }
  header .token { margin-left: auto; display: flex; gap: 6px; }
  header input { width: 180px; padding: 3px 6px; }
  main { padding: 16px 20px; display: grid; gap: 16px; }
  .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr));
    gap: 12px; }
  .card, section { background: var(--card); border: 1px solid var(--line);
    border-radius: 6px; padding: 10px 14px; }
  .card .label { color: var(--dim); font-size: 12px; text-transform: uppercase; }
  .card .value { font-size: 26px; font-variant-numeric: tabular-nums; }
  section h2 { margin: 0 0 8px; font-size: 15px; }
  canvas { width: 100%; height: 220px; display: block; }
  .legend span { margin-right: 14px; font-size: 12px; color: var(--dim); }
  .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
  table { width: 100%; border-collapse: collapse; font-size: 13px; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line);
    white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 320px; }
  th { color: var(--dim); font-weight: 600; }
  .note { color: var(--dim); font-size: 12px; }
  .error { color: var(--bad); }
  button { cursor: pointer; }
  .two { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
  @media (max-width: 900px) { .two { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<header>
  <h1>Kite</h1>
  <span class="meta" id="version">-</span>
  <span class="meta">up <span id="uptime">-</span></span>
  <span class="meta" id="health">-</span>
  <form class="token" id="token-form">
    <input id="token" type="password" placeholder="API token (if set)" autocomplete="off">
    <button type="submit">Use</button>
  </form>
</header>
<main>
  <div class="cards">
    <div class="card"><div class="label">Clients connected</div><div class="value" id="stat-clients">-</div></div>
    <div class="card"><div class="label">Sessions</div><div class="value" id="stat-sessions">-</div></div>
    <div class="card"><div class="label">Subscriptions</div><div class="value" id="stat-subscriptions">-</div></div>
    <div class="card"><div class="label">Retained</div><div class="value" id="stat-retained">-</div></div>
    <div class="card"><div class="label">Messages in / s</div><div class="value" id="rate-in">-</div></div>
    <div class="card"><div class="label">Messages out / s</div><div class="value" id="rate-out">-</div></div>
    <div class="card"><div class="label">Dropped / s</div><div class="value" id="rate-dropped">-</div></div>
    <div class="card"><div class="label">Bytes in / s</div><div class="value" id="rate-bytes-in">-</div></div>
  </div>
  <section>
    <h2>Message rates</h2>
    <canvas id="chart" width="1200" height="220"></canvas>
    <div class="legend"><span><i style="background:var(--in)"></i>received / s</span>
      <span><i style="background:var(--out)"></i>sent / s</span>
      <span class="note">last two minutes, from /metrics</span></div>
  </section>
  <p class="note error" id="api-error" hidden></p>
  <section>
    <h2>Clients <span class="note" id="clients-total"></span></h2>
    <table><thead><tr><th>Client id</th><th>User</th><th>Address</th><th>Protocol</th>
      <th>Keep alive</th><th>Connected since</th><th>Subs</th><th>In flight</th>
      <th>Queued</th><th></th></tr></thead><tbody id="clients"></tbody></table>
  </section>
  <div class="two">
    <section>
      <h2>Sessions <span class="note" id="sessions-total"></span></h2>
      <table><thead><tr><th>Client id</th><th>State</th><th>Expiry</th><th>Subs</th>
        <th>Queued</th></tr></thead><tbody id="sessions"></tbody></table>
    </section>
    <section>
      <h2>Subscriptions <span class="note" id="subscriptions-total"></span></h2>
      <table><thead><tr><th>Client id</th><th>Filter</th><th>QoS</th></tr></thead>
        <tbody id="subscriptions"></tbody></table>
    </section>
  </div>
  <section>
    <h2>Retained messages <span class="note" id="retained-total"></span></h2>
    <table><thead><tr><th>Topic</th><th>QoS</th><th>Size</th><th>Payload</th></tr></thead>
      <tbody id="retained"></tbody></table>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const KEEP = 120;
const samples = [];
let last = null;
let token = sessionStorage.getItem("kite-token") || "";
const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
if (m) {
  token = decodeURIComponent(m[1]);
  sessionStorage.setItem("kite-token", token);
  history.replaceState(null, "", location.pathname);
}
$("token").value = token;
$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("token").value;
  sessionStorage.setItem("kite-token", token);
  refreshApi();
});

function fmt(n) {
  if (!isFinite(n)) return "-";
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (n >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return String(Math.round(n));
}
function duration(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24;
  const min = Math.floor(s / 60) % 60;
  if (d > 0) return d + "d " + h + "h";
  if (h > 0) return h + "h " + min + "m";
  return min + "m " + (s % 60) + "s";
}

// The exposition: every sample's value, summed over labels, by name.
function parseMetrics(text) {
  const out = { info: "" };
  for (const line of text.split("\n")) {
    if (line === "" || line[0] === "#") continue;
    const sp = line.lastIndexOf(" ");
    const series = line.slice(0, sp);
    const brace = series.indexOf("{");
    const name = brace < 0 ? series : series.slice(0, brace);
    if (name === "kite_info") {
      const v = /version="([^"]*)"/.exec(series);
      if (v) out.info = v[1];
      continue;
    }
    out[name] = (out[name] || 0) + Number(line.slice(sp + 1));
  }
  return out;
}

async function refreshMetrics() {
  try {
    const r = await fetch("/metrics", { cache: "no-store" });
    const now = performance.now();
    const v = parseMetrics(await r.text());
    $("version").textContent = "kite " + v.info;
    $("uptime").textContent = duration(v.kite_uptime_seconds);
    $("stat-clients").textContent = fmt(v.kite_live_connections);
    $("stat-sessions").textContent = fmt(v.kite_sessions);
    $("stat-subscriptions").textContent = fmt(v.kite_subscriptions);
    $("stat-retained").textContent = fmt(v.kite_retained_messages);
    if (last !== null) {
      const dt = (now - last.at) / 1000;
      const rate = (k) => Math.max(0, (v[k] - last.v[k]) / dt);
      const s = {
        in: rate("kite_messages_received_total"),
        out: rate("kite_messages_sent_total"),
      };
      samples.push(s);
      if (samples.length > KEEP) samples.shift();
      $("rate-in").textContent = fmt(s.in);
      $("rate-out").textContent = fmt(s.out);
      $("rate-dropped").textContent = fmt(rate("kite_messages_dropped_total"));
      $("rate-bytes-in").textContent = fmt(rate("kite_received_bytes_total"));
      draw();
    }
    last = { at: now, v };
    const h = await fetch("/healthz", { cache: "no-store" });
    $("health").textContent = (await h.text()).trim();
    document.body.dataset.metrics = String(samples.length);
  } catch (e) {
    $("health").textContent = "unreachable";
  }
}

function draw() {
  const c = $("chart");
  const w = c.clientWidth, h = c.clientHeight;
  if (c.width !== w * devicePixelRatio) {
    c.width = w * devicePixelRatio;
    c.height = h * devicePixelRatio;
  }
  const g = c.getContext("2d");
  g.setTransform(devicePixelRatio, 0, 0, devicePixelRatio, 0, 0);
  g.clearRect(0, 0, w, h);
  let max = 1;
  for (const s of samples) max = Math.max(max, s.in, s.out);
  const css = getComputedStyle(document.documentElement);
  g.strokeStyle = css.getPropertyValue("--line");
  g.fillStyle = css.getPropertyValue("--dim");
  g.font = "11px system-ui, sans-serif";
  for (let i = 0; i <= 4; i++) {
    const y = 10 + (h - 20) * i / 4;
    g.beginPath(); g.moveTo(50, y); g.lineTo(w, y); g.stroke();
    g.fillText(fmt(max * (4 - i) / 4), 4, y + 4);
  }
  const line = (key, color) => {
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
    samples.forEach((s, i) => {
      const x = 50 + (w - 50) * (i + KEEP - samples.length) / (KEEP - 1);
      const y = 10 + (h - 20) * (1 - s[key] / max);
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  };
  line("in", css.getPropertyValue("--in"));
  line("out", css.getPropertyValue("--out"));
}

async function api(path, method) {
  const headers = token ? { authorization: "Bearer " + token } : {};
  const r = await fetch("/api/v1/" + path, { method: method || "GET", headers, cache: "no-store" });
  if (!r.ok && r.status !== 204) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).message; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return r.status === 204 ? null : r.json();
}
function cell(tr, text) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  td.title = td.textContent;
  tr.appendChild(td);
  return td;
}
function fill(id, page, row) {
  const body = $(id);
  body.replaceChildren();
  for (const item of page.data) {
    const tr = document.createElement("tr");
    row(tr, item);
    body.appendChild(tr);
  }
  $(id + "-total").textContent = page.meta.total > page.meta.count
    ? "(" + page.meta.count + " of " + page.meta.total + ")"
    : "(" + page.meta.total + ")";
}
const PROTOCOLS = { 3: "3.1", 4: "3.1.1", 5: "5.0" };
async function refreshApi() {
  try {
    const [clients, sessions, subs, retained] = await Promise.all([
      api("clients?limit=200"), api("sessions?limit=200"),
      api("subscriptions?limit=200"), api("retained?limit=100"),
    ]);
    fill("clients", clients, (tr, c) => {
      cell(tr, c.clientId); cell(tr, c.username); cell(tr, c.address);
      cell(tr, PROTOCOLS[c.protocolVersion]); cell(tr, c.keepAlive + " s");
      cell(tr, new Date(c.connectedAt).toLocaleTimeString());
      cell(tr, c.subscriptions); cell(tr, c.inflight); cell(tr, c.queued);
      const b = document.createElement("button");
      b.textContent = "Kick";
      b.onclick = () => api("clients/" + encodeURIComponent(c.clientId), "DELETE")
        .then(refreshApi, (e) => showError(e));
      cell(tr, "").appendChild(b);
    });
    fill("sessions", sessions, (tr, s) => {
      cell(tr, s.clientId); cell(tr, s.connected ? "connected" : "offline");
      cell(tr, s.expiryInterval === 4294967295 ? "never"
        : s.expiryInterval === 0 ? "at disconnect" : s.expiryInterval + " s");
      cell(tr, s.subscriptions); cell(tr, s.queued);
    });
    fill("subscriptions", subs, (tr, s) => {
      cell(tr, s.clientId); cell(tr, s.filter); cell(tr, s.qos);
    });
    fill("retained", retained, (tr, r) => {
      cell(tr, r.topic); cell(tr, r.qos); cell(tr, r.size);
      cell(tr, r.encoding === "utf8" ? r.payload.slice(0, 200) : "(binary)");
    });
    $("api-error").hidden = true;
  } catch (e) {
    showError(e);
  }
}
function showError(e) {
  $("api-error").hidden = false;
  $("api-error").textContent = "Admin API: " + e.message +
    " (lists need the API token, or a loopback connection when the broker has none)";
}

refreshMetrics();
refreshApi();
setInterval(refreshMetrics, 1000);
setInterval(refreshApi, 2000);
</script>
</body>
</html>
`;
