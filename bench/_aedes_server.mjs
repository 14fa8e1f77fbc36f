// A minimal Aedes broker for bench/compare.ts, run on Node:
//   node bench/_aedes_server.mjs PORT AEDES_PREFIX
// AEDES_PREFIX is an `npm install --prefix` directory holding aedes. The
// broker uses Aedes' defaults (in-memory persistence), listens on 127.0.0.1
// and exits on SIGTERM/SIGINT.
import { createServer } from "node:net";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const port = Number(process.argv[2] ?? 1883);
const prefix = process.argv[3];
if (!prefix) {
  console.error("usage: node _aedes_server.mjs PORT AEDES_PREFIX");
  process.exit(2);
}
const entry = join(prefix, "node_modules", "aedes", "aedes.js");
const { Aedes } = await import(pathToFileURL(entry).href);
const aedes = await Aedes.createBroker();
const server = createServer(aedes.handle);
server.listen(port, "127.0.0.1", () => {
  console.log(`aedes listening on 127.0.0.1:${server.address().port}`);
});
const stop = () => {
  server.close();
  aedes.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
