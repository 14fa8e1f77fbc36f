/**
 * Serves the browser example: index.html, app.js and Kite's browser build
 * (dist/kite-client.js, made with `deno bundle` when it is missing).
 *
 * ```sh
 * deno run -A examples/browser/serve.ts            # http://localhost:8000/
 * deno run -A examples/browser/serve.ts --port 9000 --rebuild
 * ```
 *
 * The page connects to a broker's WebSocket listener: by default
 * `ws://<page host>:8080/mqtt`, or the one in `?broker=ws://host:port/path`.
 * Start one with Mosquitto (`listener 8080` + `protocol websockets`), or
 * with Kite's WebSocket listener.
 *
 * @module
 */

const HERE = new URL("./", import.meta.url);
const ROOT = new URL("../../", import.meta.url);
/** Where `deno task build:browser` writes the bundle. */
export const DEFAULT_BUNDLE: string =
  new URL("dist/kite-client.js", ROOT).pathname;

/**
 * Bundles client/browser.ts into `outFile` (an ES module for browsers) with
 * `deno bundle`; `minify` as the build task does.
 */
export async function buildBundle(
  outFile: string,
  minify = true,
): Promise<void> {
  const args = [
    "bundle",
    "--quiet",
    "--platform",
    "browser",
    ...(minify ? ["--minify", "--sourcemap", "linked"] : []),
    "-o",
    outFile,
    new URL("client/browser.ts", ROOT).pathname,
  ];
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT.pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `deno bundle failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

/** Options of `servePage()`. */
export interface PageServerOptions {
  /** Default 127.0.0.1. */
  hostname?: string;
  /** Default 8000; 0 picks a free port. */
  port?: number;
  /** The bundle to serve as /kite-client.js. Default dist/kite-client.js. */
  bundle?: string;
}

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  map: "application/json",
};

/** Serves the page, its script and the bundle until `shutdown()`. */
export function servePage(
  options: PageServerOptions = {},
): Deno.HttpServer<Deno.NetAddr> {
  const bundle = options.bundle ?? DEFAULT_BUNDLE;
  const files: Record<string, string> = {
    "/": new URL("index.html", HERE).pathname,
    "/index.html": new URL("index.html", HERE).pathname,
    "/app.js": new URL("app.js", HERE).pathname,
    "/kite-client.js": bundle,
    "/kite-client.js.map": `${bundle}.map`,
  };
  return Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 8000,
    onListen() {},
  }, async (req) => {
    const path = files[new URL(req.url).pathname];
    if (path === undefined) return new Response("not found", { status: 404 });
    try {
      const body = await Deno.readFile(path);
      const ext = path.slice(path.lastIndexOf(".") + 1);
      return new Response(body, {
        headers: { "content-type": TYPES[ext] ?? "application/octet-stream" },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

if (import.meta.main) {
  const args = Deno.args;
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const port = Number(flag("--port") ?? 8000);
  const rebuild = args.includes("--rebuild");
  const exists = await Deno.stat(DEFAULT_BUNDLE).then(() => true, () => false);
  if (rebuild || !exists) {
    console.log("building dist/kite-client.js ...");
    await Deno.mkdir(new URL("dist/", ROOT), { recursive: true });
    await buildBundle(DEFAULT_BUNDLE);
  }
  const server = servePage({ hostname: "0.0.0.0", port });
  console.log(
    `open http://localhost:${server.addr.port}/?broker=ws://localhost:8080/mqtt`,
  );
}
