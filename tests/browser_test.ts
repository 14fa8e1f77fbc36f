/**
 * Kite's client in a real browser: the browser build (client/browser.ts
 * bundled by `deno bundle`, as `deno task build:browser` does) has no Deno
 * call in it, and headless Chromium loads the example page
 * (examples/browser/, served by its serve.ts), whose client exchanges QoS 1
 * messages over WebSocket with a Deno-side client, through Kite (its
 * WebSocket side through tests/_ws_listener.ts) and through Mosquitto's
 * websockets listener. The test reads the result from the page over the
 * DevTools protocol (tests/_chromium.ts). No WebSocket is mocked.
 */

import assert from "node:assert/strict";
import { Client, type Message } from "../client/mod.ts";
import { startBroker } from "./_helpers.ts";
import { within } from "./client_helpers.ts";
import { WebSocketListener } from "../broker/listen/websocket.ts";
import { Chromium, HAVE_CHROMIUM, type Page } from "./_chromium.ts";
import { HAVE_MOSQUITTO, startMosquittoTransports } from "./_mosquitto.ts";
import { HAVE_OPENSSL, makeCerts } from "./_certs.ts";
import { buildBundle, servePage } from "../examples/browser/serve.ts";

/** The bundle, built once for the tests of this file. */
let bundleDir: string | undefined;
async function bundle(minify: boolean): Promise<string> {
  bundleDir ??= await Deno.makeTempDir({ prefix: "kite-bundle-" });
  const file = `${bundleDir}/kite-client${minify ? ".min" : ""}.js`;
  try {
    await Deno.stat(file);
  } catch {
    await buildBundle(file, minify);
  }
  return file;
}
globalThis.addEventListener("unload", () => {
  if (bundleDir) Deno.removeSync(bundleDir, { recursive: true });
});

Deno.test("the browser build (client/browser.ts) bundles without any Deno.* reference", async () => {
  const text = await Deno.readTextFile(await bundle(false));
  assert.equal(text.match(/\bDeno\.[A-Za-z]+/g), null, "Deno.* in the bundle");
  assert.equal(text.match(/from\s*["']node:/g), null, "node: imports");
  assert.ok(/\bWebClient\b/.test(text), "WebClient in the bundle");
  assert.ok(text.includes("new WebSocket("), "the WebSocket dialer");
  // Kept small: the minified build is what a page loads.
  const min = (await Deno.stat(await bundle(true))).size;
  assert.ok(min < 150_000, `minified bundle is ${min} bytes`);
});

/**
 * Loads the example page in Chromium, connects its client to `brokerUrl`,
 * and exchanges QoS 1 messages with `deno` (a connected Deno-side client).
 */
async function exchange(
  brokerUrl: string,
  deno: Client,
  tag: string,
): Promise<void> {
  const server = servePage({ port: 0, bundle: await bundle(true) });
  await using browser = await Chromium.launch();
  try {
    const page: Page = await browser.open(
      `http://127.0.0.1:${server.addr.port}/?broker=${
        encodeURIComponent(brokerUrl)
      }&id=page-${tag}`,
    );
    assert.equal(
      await page.evaluate<string>("document.title"),
      "Kite MQTT in the browser",
    );
    await page.evaluate("kiteReady"); // the page's module has loaded
    await page.evaluate("kite.connect()");
    assert.match(
      await page.evaluate<string>(
        "document.getElementById('status').textContent",
      ),
      /^connected to ws/,
    );
    // Page -> Deno, QoS 1: PUBACK (reason 0) resolves the page's publish.
    const atDeno = Promise.withResolvers<Message>();
    await deno.subscribe(`browser/${tag}/up`, 1, (m) => atDeno.resolve(m));
    assert.deepEqual(
      await page.evaluate(`kite.subscribe("browser/${tag}/down", 1)`),
      [1],
    );
    assert.equal(
      await page.evaluate(
        `kite.publish("browser/${tag}/up", "hello from chromium", 1)`,
      ),
      0,
    );
    const up = await within(atDeno.promise, 10_000, "the page's message");
    assert.deepEqual([up.payloadText, up.qos], ["hello from chromium", 1]);
    // Deno -> page, QoS 1: the page shows it.
    await deno.publish(`browser/${tag}/down`, "hello from deno", 1);
    const down = await page.evaluate<{ payload: string; qos: number }>(
      `kite.nextMessage("browser/${tag}/down")`,
    );
    assert.deepEqual(down, {
      topic: `browser/${tag}/down`,
      payload: "hello from deno",
      qos: 1,
    });
    const shown = await page.evaluate<string[]>(
      "[...document.querySelectorAll('#messages li')].map((li) => li.textContent)",
    );
    assert.deepEqual(shown, [`browser/${tag}/down (QoS 1) hello from deno`]);
    await page.evaluate("kite.disconnect()");
    assert.deepEqual(page.log.filter((l) => l.startsWith("uncaught")), []);
  } catch (e) {
    throw new Error(`${e}\nchromium stderr:\n${browser.stderr}`, { cause: e });
  } finally {
    await server.shutdown();
  }
}

Deno.test({
  name:
    "Chromium: the example page's client exchanges QoS 1 messages with a Deno client through Kite over ws://",
  ignore: !HAVE_CHROMIUM,
  async fn() {
    const broker = await startBroker();
    const ws = await WebSocketListener.open({ hostname: "127.0.0.1", port: 0 });
    broker.serve(ws);
    const deno = new Client({ port: broker.addr.port, reconnect: false });
    try {
      await deno.connect();
      await exchange(ws.endpoint, deno, "kite");
    } finally {
      await deno.close();
      await broker.close(); // closes its listeners too
    }
  },
});

Deno.test({
  name:
    "Chromium: the example page's client exchanges QoS 1 messages through Mosquitto's websockets listener",
  ignore: !HAVE_CHROMIUM || !HAVE_MOSQUITTO || !HAVE_OPENSSL,
  async fn() {
    await using certs = await makeCerts();
    await using m = await startMosquittoTransports(certs);
    const deno = new Client({ port: m.port, reconnect: false });
    try {
      await deno.connect();
      await exchange(`ws://127.0.0.1:${m.ws}/mqtt`, deno, "mosquitto");
    } finally {
      await deno.close();
    }
  },
});
