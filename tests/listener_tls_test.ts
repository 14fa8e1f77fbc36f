/**
 * `TlsListener` runs the shared `Listener` suite (tests/listener_suite.ts)
 * as plain TLS and as mutual TLS (client certificates), with certificates
 * made by openssl at load time.
 */

import { ConnDuplex } from "../codec/_conn_duplex.ts";
import { TlsListener } from "../broker/listen/tls.ts";
import { HAVE_OPENSSL, makeCerts } from "./_broker_certs.ts";
import { listenerSuite } from "./listener_suite.ts";

if (!HAVE_OPENSSL) {
  Deno.test({
    name: "TlsListener suite (needs openssl)",
    ignore: true,
    fn() {},
  });
} else {
  const certs = await makeCerts();
  const alice = await certs.client("alice");
  globalThis.addEventListener("unload", () => {
    Deno.removeSync(certs.dir, { recursive: true });
  });
  const ca = certs.caPem;
  const aliceCert = await Deno.readTextFile(alice.cert);
  const aliceKey = await Deno.readTextFile(alice.key);

  listenerSuite("TlsListener", async () => {
    const listener = await TlsListener.open({
      hostname: "127.0.0.1",
      port: 0,
      certFile: certs.serverCert,
      keyFile: certs.serverKey,
    });
    return {
      listener,
      protocol: "mqtts",
      async dial() {
        const conn = await Deno.connectTls({
          hostname: "127.0.0.1",
          port: listener.addr.port,
          caCerts: [ca],
        });
        return new ConnDuplex(conn);
      },
    };
  });

  listenerSuite("TlsListener (mutual TLS)", async () => {
    const listener = await TlsListener.open({
      hostname: "127.0.0.1",
      port: 0,
      certFile: certs.serverCert,
      keyFile: certs.serverKey,
      caFile: certs.caCert,
    });
    return {
      listener,
      protocol: "mqtts",
      async dial() {
        const conn = await Deno.connectTls({
          hostname: "127.0.0.1",
          port: listener.addr.port,
          caCerts: [ca],
          cert: aliceCert,
          key: aliceKey,
        });
        return new ConnDuplex(conn);
      },
    };
  });
}
