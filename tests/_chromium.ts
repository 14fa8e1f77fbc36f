/**
 * Test helper: a headless Chromium (Debian's `/usr/bin/chromium`) driven
 * over the Chrome DevTools Protocol with the runtime's own `WebSocket`, so
 * no driver package is needed: launch, open a page, evaluate expressions
 * (awaiting their promises), read the page's console and errors, close.
 * Tests skip themselves when Chromium is missing (and fail with
 * `KITE_REQUIRE_INTEROP=1`).
 *
 * ```ts
 * await using browser = await Chromium.launch();
 * const page = await browser.open("http://127.0.0.1:8000/");
 * const title = await page.evaluate<string>("document.title");
 * ```
 *
 * @module
 */

/** Where Debian's package puts the launcher. */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/** True when Chromium is installed (use as `ignore: !HAVE_CHROMIUM`). */
export const HAVE_CHROMIUM: boolean = (() => {
  try {
    return Deno.statSync(CHROMIUM_PATH).isFile;
  } catch {
    if (Deno.env.get("KITE_REQUIRE_INTEROP") === "1") {
      throw new Error(
        `${CHROMIUM_PATH} not found and KITE_REQUIRE_INTEROP=1: ` +
          "install it (apt-get install chromium)",
      );
    }
    console.warn(
      `${CHROMIUM_PATH} not found: browser tests are skipped (apt-get install chromium)`,
    );
    return false;
  }
})();

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--no-first-run",
  "--no-default-browser-check",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-extensions",
  "--remote-debugging-port=0",
];

/** Rejects after `ms` unless `p` settles first. */
function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${ms} ms: ${what}`)),
      ms,
    );
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

type Json = Record<string, unknown>;

/** One DevTools connection: commands with ids, events by method. */
class Cdp {
  #ws: WebSocket;
  #id = 0;
  #pending = new Map<
    number,
    { resolve(v: Json): void; reject(e: Error): void }
  >();
  #handlers = new Map<string, ((params: Json, session?: string) => void)[]>();
  readonly closed: Promise<void>;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    const closed = Promise.withResolvers<void>();
    this.closed = closed.promise;
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data as string) as {
        id?: number;
        result?: Json;
        error?: { message: string };
        method?: string;
        params?: Json;
        sessionId?: string;
      };
      if (msg.id !== undefined) {
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(`CDP: ${msg.error.message}`));
        else p?.resolve(msg.result ?? {});
      } else if (msg.method) {
        for (const h of this.#handlers.get(msg.method) ?? []) {
          h(msg.params ?? {}, msg.sessionId);
        }
      }
    };
    ws.onclose = () => {
      for (const p of this.#pending.values()) {
        p.reject(new Error("CDP connection closed"));
      }
      this.#pending.clear();
      closed.resolve();
    };
  }

  static async connect(url: string): Promise<Cdp> {
    const ws = new WebSocket(url);
    const open = Promise.withResolvers<void>();
    ws.onopen = () => open.resolve();
    ws.onerror = (e) =>
      open.reject(new Error(`CDP: ${(e as ErrorEvent).message}`));
    await bounded(open.promise, 10_000, "the DevTools connection");
    return new Cdp(ws);
  }

  send(method: string, params: Json = {}, sessionId?: string): Promise<Json> {
    const id = ++this.#id;
    const p = Promise.withResolvers<Json>();
    this.#pending.set(id, p);
    this.#ws.send(
      JSON.stringify(
        sessionId ? { id, method, params, sessionId } : { id, method, params },
      ),
    );
    return p.promise;
  }

  on(method: string, h: (params: Json, session?: string) => void): void {
    const list = this.#handlers.get(method) ?? [];
    list.push(h);
    this.#handlers.set(method, list);
  }

  close(): void {
    this.#ws.close();
  }
}

/** A page (tab) of the browser. */
export class Page {
  #cdp: Cdp;
  #session: string;
  /** Console output and uncaught errors of the page, for failure messages. */
  readonly log: string[] = [];

  /** @internal */
  constructor(cdp: Cdp, session: string) {
    this.#cdp = cdp;
    this.#session = session;
    cdp.on("Runtime.consoleAPICalled", (p, s) => {
      if (s !== session) return;
      const args = (p.args as { value?: unknown; description?: string }[])
        .map((a) => a.value ?? a.description ?? "");
      this.log.push(`console.${p.type}: ${args.join(" ")}`);
    });
    cdp.on("Runtime.exceptionThrown", (p, s) => {
      if (s !== session) return;
      const d = p.exceptionDetails as {
        text: string;
        exception?: { description?: string };
      };
      this.log.push(`uncaught: ${d.exception?.description ?? d.text}`);
    });
  }

  /**
   * Evaluates `expression` in the page, awaits a promise it returns, and
   * resolves with the value (JSON-serialisable); rejects with the page's
   * exception.
   */
  async evaluate<T>(expression: string, ms = 10_000): Promise<T> {
    const r = await bounded(
      this.#cdp.send("Runtime.evaluate", {
        expression,
        awaitPromise: true,
        returnByValue: true,
      }, this.#session),
      ms,
      `evaluate ${expression}\npage log:\n${this.log.join("\n")}`,
    );
    const ex = r.exceptionDetails as
      | { text: string; exception?: { description?: string } }
      | undefined;
    if (ex) {
      throw new Error(
        `page threw: ${ex.exception?.description ?? ex.text}\npage log:\n${
          this.log.join("\n")
        }`,
      );
    }
    return (r.result as { value: T }).value;
  }

  /** Sets the viewport (CSS pixels) the page lays out and is captured at. */
  async setViewport(width: number, height: number): Promise<void> {
    await bounded(
      this.#cdp.send("Emulation.setDeviceMetricsOverride", {
        width,
        height,
        deviceScaleFactor: 1,
        mobile: false,
      }, this.#session),
      10_000,
      "setting the viewport",
    );
  }

  /** A PNG of what the page shows now (its viewport). */
  async screenshot(): Promise<Uint8Array> {
    const r = await bounded(
      this.#cdp.send(
        "Page.captureScreenshot",
        { format: "png" },
        this.#session,
      ),
      15_000,
      "a screenshot",
    );
    return Uint8Array.from(atob(r.data as string), (c) => c.charCodeAt(0));
  }
}

/** A headless Chromium with a fresh profile. */
export class Chromium implements AsyncDisposable {
  #child: Deno.ChildProcess;
  #cdp: Cdp;
  #profile: string;
  #stderr: string[];
  #closed = false;

  private constructor(
    child: Deno.ChildProcess,
    cdp: Cdp,
    profile: string,
    stderr: string[],
  ) {
    this.#child = child;
    this.#cdp = cdp;
    this.#profile = profile;
    this.#stderr = stderr;
  }

  /** Starts Chromium and connects to its DevTools endpoint. */
  static async launch(): Promise<Chromium> {
    const profile = await Deno.makeTempDir({ prefix: "kite-chromium-" });
    const child = new Deno.Command(CHROMIUM_PATH, {
      args: [...FLAGS, `--user-data-dir=${profile}`, "about:blank"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Read stderr to the end (a full pipe would block the browser); the
    // first "DevTools listening on ws://..." line gives the endpoint.
    const stderr: string[] = [];
    const endpoint = Promise.withResolvers<string>();
    (async () => {
      let buf = "";
      for await (
        const chunk of child.stderr.pipeThrough(new TextDecoderStream())
      ) {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (stderr.length < 200) stderr.push(line);
          const m = line.match(/DevTools listening on (ws:\/\/\S+)/);
          if (m) endpoint.resolve(m[1]!);
        }
      }
      endpoint.reject(new Error("chromium exited before DevTools listened"));
    })().catch((e) => endpoint.reject(e));
    let cdp: Cdp;
    try {
      const url = await bounded(
        endpoint.promise,
        30_000,
        "chromium's DevTools endpoint",
      );
      cdp = await Cdp.connect(url);
    } catch (e) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      await Deno.remove(profile, { recursive: true }).catch(() => {});
      throw new Error(`${e}\nchromium stderr:\n${stderr.join("\n")}`);
    }
    return new Chromium(child, cdp, profile, stderr);
  }

  /** Opens `url` in a new tab and resolves once its load event fired. */
  async open(url: string): Promise<Page> {
    const cdp = this.#cdp;
    const { targetId } = await cdp.send("Target.createTarget", {
      url: "about:blank",
    }) as { targetId: string };
    const { sessionId } = await cdp.send("Target.attachToTarget", {
      targetId,
      flatten: true,
    }) as { sessionId: string };
    const page = new Page(cdp, sessionId);
    await cdp.send("Runtime.enable", {}, sessionId);
    await cdp.send("Page.enable", {}, sessionId);
    const loaded = Promise.withResolvers<void>();
    cdp.on("Page.loadEventFired", (_, s) => {
      if (s === sessionId) loaded.resolve();
    });
    const nav = await cdp.send("Page.navigate", { url }, sessionId);
    if (nav.errorText) throw new Error(`cannot load ${url}: ${nav.errorText}`);
    await bounded(loaded.promise, 15_000, `the load of ${url}`);
    return page;
  }

  /** Chromium's stderr so far (first 200 lines), for failure messages. */
  get stderr(): string {
    return this.#stderr.join("\n");
  }

  /** Closes the browser (Browser.close, then SIGKILL if it lingers). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await bounded(this.#cdp.send("Browser.close"), 5000, "Browser.close");
    } catch { /* it may close the connection before answering */ }
    this.#cdp.close();
    await this.#cdp.closed;
    try {
      await bounded(this.#child.status, 10_000, "chromium to exit");
    } catch {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
      await this.#child.status;
    }
    await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
