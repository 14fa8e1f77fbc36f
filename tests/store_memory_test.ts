import { MemoryStore } from "../broker/store/memory.ts";
import { storeSuite } from "./store_suite.ts";

storeSuite({
  name: "MemoryStore",
  open() {
    const store = new MemoryStore();
    return Promise.resolve({
      store,
      reopen: () => Promise.resolve(store),
      dispose: () => store.close(),
    });
  },
});
