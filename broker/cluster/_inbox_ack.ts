/**
 * Confirmed inbox acknowledgements (private): an inbox message whose QoS 2
 * deliveries a commit stored is acknowledged within that commit, and the
 * commit waits for JetStream's answer (link.ts). Also the test-only fault
 * points around it (`KITE_CLUSTER_FAULT`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { NatsConnection } from "@nats-io/transport-node";
import type { JsMsg } from "@nats-io/jetstream";

const log = getLogger(["kite", "cluster"]);

/** Tries at a confirmed acknowledgement, while NATS is up. */
const CONFIRM_TRIES = 5;
const ACK = new TextEncoder().encode("+ACK");

/**
 * Acknowledges `m` and waits for JetStream's answer (it answers every
 * acknowledgement, a repeated one too): again after a reconnect
 * (`waitUp`), a few times at most while NATS is up; then it gives up with
 * a warning (the message may come again).
 */
export async function confirmAck(
  nc: NatsConnection,
  m: JsMsg,
  waitUp: () => Promise<void>,
): Promise<void> {
  // The ack subject (JsMsg's own `ackAck` cannot be tried again).
  const reply = (m as unknown as { reply?: unknown }).reply;
  if (typeof reply !== "string" || reply === "") {
    m.ack();
    return;
  }
  for (let tries = 1;; tries++) {
    try {
      await nc.request(reply, ACK, { timeout: 2000 });
      return;
    } catch (e) {
      if (nc.isClosed() || tries >= CONFIRM_TRIES) {
        log.warn(
          "inbox message {seq}: acknowledgement not confirmed ({error}); it may be delivered again",
          { seq: m.seq, error: (e as Error).message },
        );
        return;
      }
      await waitUp();
    }
  }
}

/**
 * The fault `KITE_CLUSTER_FAULT` names, for tests: once a commit has
 * stored QoS 2 deliveries from the inbox, before their inbox message is
 * acknowledged, `inbox-ack` kills the process (SIGKILL) and
 * `inbox-ack-late` waits past the ack wait (the first time). Read only
 * with permission to read that variable.
 */
export function faultPoint(): string | undefined {
  const variable = "KITE_CLUSTER_FAULT";
  try {
    const p = Deno.permissions.querySync({ name: "env", variable });
    return p.state === "granted" ? Deno.env.get(variable) : undefined;
  } catch {
    return undefined;
  }
}

/** Ends the process at once, as SIGKILL does. */
export function crash(): never {
  try {
    Deno.kill(Deno.pid, "SIGKILL");
  } catch {
    // not allowed to signal: exit at once instead
  }
  Deno.exit(137);
}
