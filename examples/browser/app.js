// The example page's script: Kite's browser build (kite-client.js, from
// `deno task build:browser`) connecting over WebSocket. `window.kite` is the
// same API the forms use, for a test that drives the page.
// (Imported by a computed name so that `deno check .` does not look for the
// generated file; a page of your own can `import { Client } from ...`.)
const ready = Promise.withResolvers();
globalThis.kiteReady = ready.promise; // resolves once window.kite is set
const bundle = "./kite-client.js";
const { Client } = await import(bundle);

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
$("broker").value = params.get("broker") ??
  `ws://${location.hostname || "localhost"}:8080/mqtt`;

let client;
const messages = [];
let waiters = [];

function status(text) {
  $("status").textContent = text;
}

function show(m) {
  const li = document.createElement("li");
  const topic = document.createElement("span");
  topic.className = "topic";
  topic.textContent = m.topic;
  li.append(topic, ` (QoS ${m.qos}) ${m.payloadText}`);
  $("messages").prepend(li);
}

const kite = {
  messages,
  async connect(url = $("broker").value) {
    await client?.close();
    client = new Client({ url, clientId: params.get("id") ?? undefined });
    client.on("connect", () => status(`connected to ${url}`));
    client.on("offline", () => status("offline, reconnecting"));
    client.on("close", (e) => status(`closed: ${e.reason}`));
    client.onMessage((m) => {
      const entry = { topic: m.topic, payload: m.payloadText, qos: m.qos };
      messages.push(entry);
      show(m);
      const ready = waiters.filter((w) => w.topic === m.topic);
      waiters = waiters.filter((w) => w.topic !== m.topic);
      for (const w of ready) w.resolve(entry);
    });
    status("connecting");
    try {
      await client.connect();
    } catch (e) {
      status(`failed: ${e.message}`);
      throw e;
    }
  },
  async subscribe(filter, qos) {
    const granted = await client.subscribe(filter, qos);
    return granted;
  },
  async publish(topic, payload, qos) {
    const r = await client.publish(topic, payload, qos);
    return r.reasonCode;
  },
  /** The next message on `topic` (or one that already came). */
  nextMessage(topic) {
    const seen = messages.find((m) => m.topic === topic);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => waiters.push({ topic, resolve }));
  },
  async disconnect() {
    await client?.disconnect();
  },
};
globalThis.kite = kite;
ready.resolve();

const qosOf = (id) => Number($(id).value);
const report = (p) => p.catch((e) => status(`error: ${e.message}`));

$("connect-form").addEventListener("submit", (e) => {
  e.preventDefault();
  report(kite.connect());
});
$("sub-form").addEventListener("submit", (e) => {
  e.preventDefault();
  report(kite.subscribe($("filter").value, qosOf("sub-qos")));
});
$("pub-form").addEventListener("submit", (e) => {
  e.preventDefault();
  report(kite.publish($("topic").value, $("payload").value, qosOf("pub-qos")));
});
if (params.has("autoconnect")) report(kite.connect());
