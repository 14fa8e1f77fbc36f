/** `TcpListener` runs the shared `Listener` suite (tests/listener_suite.ts). */

import { ConnDuplex } from "../codec/_conn_duplex.ts";
import { TcpListener } from "../broker/listen/tcp.ts";
import { listenerSuite } from "./listener_suite.ts";

listenerSuite(
  "TcpListener",
  () => {
    const listener = new TcpListener({ hostname: "127.0.0.1", port: 0 });
    return Promise.resolve({
      listener,
      protocol: "mqtt",
      async dial() {
        const conn = await Deno.connect({
          hostname: "127.0.0.1",
          port: listener.addr.port,
        });
        return new ConnDuplex(conn);
      },
    });
  },
);
