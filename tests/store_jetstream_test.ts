/**
 * `JetStreamStore` runs the shared `Store` suite (tests/store_suite.ts)
 * against a nats-server with JetStream started for each case.
 */

import { JetStreamStore } from "../broker/cluster/jetstream_store.ts";
import {
  closeNats,
  ClusterNames,
  connectNats,
} from "../broker/cluster/nats.ts";
import type { Store } from "../broker/store/store.ts";
import { requireNats, startNats } from "./_nats.ts";
import { storeSuite } from "./store_suite.ts";

if (requireNats("store_jetstream_test")) {
  storeSuite({
    name: "JetStreamStore",
    async open() {
      const nats = await startNats();
      const h = await connectNats([nats.url], "store-test");
      const names = new ClusterNames("suite");
      let store: Store = await JetStreamStore.open(h, names);
      return {
        get store() {
          return store;
        },
        async reopen() {
          await store.close();
          store = await JetStreamStore.open(h, names);
          return store;
        },
        async dispose() {
          await store.close();
          await closeNats(h);
          await nats[Symbol.asyncDispose]();
        },
      };
    },
  });
}
