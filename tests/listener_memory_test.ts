/**
 * The in-memory test transport (tests/_memory_duplex.ts) runs the shared
 * `Listener` suite: the test double behaves as the real listeners do.
 */

import { MemoryListener } from "./_memory_duplex.ts";
import { listenerSuite } from "./listener_suite.ts";

for (const maxChunk of [undefined, 64]) {
  listenerSuite(
    maxChunk === undefined
      ? "MemoryListener"
      : `MemoryListener(maxChunk ${maxChunk})`,
    () => {
      const listener = new MemoryListener(
        maxChunk === undefined ? {} : { maxChunk },
      );
      return Promise.resolve({
        listener,
        protocol: "mqtt",
        dial: () => Promise.resolve(listener.dial()),
      });
    },
  );
}
