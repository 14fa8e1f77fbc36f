/**
 * The dashboard in a real browser: headless Chromium (Debian's package,
 * driven over the DevTools protocol, tests/_chromium.ts) loads `GET /` of
 * a broker with traffic, and the test reads what the page shows: the
 * connected clients, a non-zero message rate (computed by the page from
 * `/metrics`), the tables the admin API fills; the page's Kick button
 * disconnects a client. A screenshot is kept in a temporary directory
 * (its path is printed).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ReasonCode } from "../codec/reason_code.ts";
import { publishPacket, RawClient, subscribeOne } from "./_helpers.ts";
import { Chromium, HAVE_CHROMIUM } from "./_chromium.ts";
import { baseUrl, startHttpBroker } from "./_http.ts";

interface Shown {
  clients: string;
  sessions: string;
  subscriptions: string;
  retained: string;
  rateIn: string;
  rateOut: string;
  clientRows: string[];
  retainedRows: string[];
}

/** Resolves (in the page) once `cond` holds for what it shows; bounded. */
const WAIT_FOR_PAGE = (cond: string, ms: number) => `
new Promise((resolve, reject) => {
  const t0 = performance.now();
  const text = (id) => document.getElementById(id).textContent;
  const rows = (id) => [...document.querySelectorAll("#" + id + " tr")]
    .map((tr) => tr.firstChild.textContent);
  const check = () => {
    const s = {
      clients: text("stat-clients"), sessions: text("stat-sessions"),
      subscriptions: text("stat-subscriptions"), retained: text("stat-retained"),
      rateIn: text("rate-in"), rateOut: text("rate-out"),
      clientRows: rows("clients"), retainedRows: rows("retained"),
    };
    if (${cond}) resolve(s);
    else if (performance.now() - t0 > ${ms}) {
      reject(new Error("the page shows " + JSON.stringify(s)));
    } else setTimeout(check, 100);
  };
  check();
})`;

Deno.test({
  name:
    "The dashboard shows the clients, a live message rate and the tables, in Chromium; its Kick button kicks",
  ignore: !HAVE_CHROMIUM,
  async fn() {
    const broker = await startHttpBroker();
    const port = broker.addr.port;
    const open: RawClient[] = [];
    let stop = false;
    let publishing: Promise<void> | undefined;
    try {
      const { client: sub } = await RawClient.connect(port, {
        clientId: "dash-sub",
        protocolVersion: 5,
      });
      open.push(sub);
      await subscribeOne(sub, "load/#", 0);
      const { client: pub } = await RawClient.connect(port, {
        clientId: "dash-pub",
        username: "alice",
      });
      open.push(pub);
      const { client: idle } = await RawClient.connect(port, {
        clientId: "dash-idle",
        protocolVersion: 5,
      });
      open.push(idle);
      await pub.send(
        publishPacket("status/dash", "online", { retain: true, qos: 1 }),
      );
      await pub.expect("puback");
      // Traffic while the page watches: 10 messages every 20 ms (paced by
      // a timer: this is load, not synchronisation).
      publishing = (async () => {
        let i = 0;
        while (!stop) {
          const batch = [];
          for (let k = 0; k < 10; k++) {
            batch.push(publishPacket(`load/${i++ % 5}`, "x".repeat(32)));
          }
          await pub.send(...batch);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();

      await using browser = await Chromium.launch();
      const page = await browser.open(baseUrl(broker) + "/");
      await page.setViewport(1280, 1000);
      const shown = await page.evaluate<Shown>(
        WAIT_FOR_PAGE(
          `s.clients === "3" && s.rateIn !== "-" && s.rateIn !== "0" &&
           s.rateOut !== "0" && s.clientRows.length === 3 &&
           s.retainedRows.includes("status/dash")`,
          20_000,
        ),
        30_000,
      );
      assert.equal(shown.clients, "3");
      assert.equal(shown.sessions, "3");
      assert.equal(shown.subscriptions, "1");
      assert.deepEqual(shown.clientRows, ["dash-idle", "dash-pub", "dash-sub"]);
      assert.ok(Number(shown.rateIn.replace(/k$/, "e3")) > 0, shown.rateIn);
      // Let the chart gather a few points, then keep a screenshot.
      await page.evaluate(
        WAIT_FOR_PAGE(`Number(document.body.dataset.metrics) >= 4`, 15_000),
        20_000,
      );
      const dir = await Deno.makeTempDir({ prefix: "kite-dashboard-" });
      const png = join(dir, "dashboard.png");
      await Deno.writeFile(png, await page.screenshot());
      console.log(`dashboard screenshot: ${png}`);

      // The Kick button of dash-idle: a DELETE from the page.
      await page.evaluate(`(() => {
        const row = [...document.querySelectorAll("#clients tr")]
          .find((tr) => tr.firstChild.textContent === "dash-idle");
        row.querySelector("button").click();
      })()`);
      const d = await idle.expect("disconnect", 10_000);
      assert.equal(d.reasonCode, ReasonCode.AdministrativeAction);
      await page.evaluate(
        WAIT_FOR_PAGE(`s.clients === "2" && s.clientRows.length === 2`, 15_000),
        20_000,
      );
      assert.deepEqual(page.log.filter((l) => l.startsWith("uncaught")), []);
    } finally {
      stop = true;
      await publishing;
      for (const c of open) await c.close();
      await broker.close();
    }
  },
});
