/**
 * Requests between nodes, on each node's control subject
 * (`_kite.{name}.ctl.{node}`), JSON both ways:
 *
 * - `ping` -> `{boot}`: is the node up (and which run of it);
 * - `release {clientId, username}` -> `{result}`: give the session of a
 *   client up to the asking node, which a client just connected to: the
 *   node closes the client's connection here (v5 DISCONNECT 0x8E), commits
 *   the session's state to the shared store and forgets it; `refused` when
 *   the session belongs to another user;
 * - `sync {routes, retained}` -> `{}`: answered once this node has seen
 *   those revisions of the route table and of the retained bucket (a
 *   SUBACK or a retained message's PUBACK elsewhere waits for it).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  errors,
  type Msg,
  type NatsConnection,
  type Subscription,
} from "@nats-io/transport-node";
import type { ClusterNames } from "./nats.ts";

const log = getLogger(["kite", "cluster"]);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What a node answers to `release`. */
export type ReleaseResult = "released" | "refused";

/** What a node does on requests (see the module doc). */
export interface ControlHandlers {
  release(clientId: string, username: string | undefined): Promise<
    ReleaseResult
  >;
  sync(routes: number, retained: number): Promise<void>;
}

/** Answers the requests to this node. */
export class ControlServer {
  #sub: Subscription | undefined;

  /** Subscribes node `node`'s control subject. */
  constructor(
    nc: NatsConnection,
    names: ClusterNames,
    node: string,
    boot: string,
    handlers: ControlHandlers,
  ) {
    this.#sub = nc.subscribe(names.control(node), {
      callback: (err, m) => {
        if (err !== null) return;
        this.#handle(m, boot, handlers).catch((e) => {
          log.error("control request failed: {e}", { e });
          respond(m, { error: String(e) });
        });
      },
    });
  }

  async #handle(m: Msg, boot: string, h: ControlHandlers): Promise<void> {
    const req = JSON.parse(decoder.decode(m.data)) as Record<string, unknown>;
    switch (req.op) {
      case "ping":
        respond(m, { boot });
        return;
      case "release": {
        const result = await h.release(
          String(req.clientId),
          typeof req.username === "string" ? req.username : undefined,
        );
        respond(m, { result });
        return;
      }
      case "sync":
        await h.sync(Number(req.routes ?? 0), Number(req.retained ?? 0));
        respond(m, {});
        return;
      default:
        respond(m, { error: `unknown op ${String(req.op)}` });
    }
  }

  /** Stops answering. */
  stop(): void {
    this.#sub?.unsubscribe();
    this.#sub = undefined;
  }
}

function respond(m: Msg, body: unknown): void {
  try {
    m.respond(encoder.encode(JSON.stringify(body)));
  } catch {
    // The connection is gone: the asker times out.
  }
}

/** What asking another node gave. */
export type AskResult =
  | { kind: "answer"; body: Record<string, unknown> }
  | { kind: "dead" }
  | { kind: "silent" };

/** Sends a request to `node`; "dead" when nobody listens there. */
export async function ask(
  nc: NatsConnection,
  names: ClusterNames,
  node: string,
  body: Record<string, unknown>,
  timeout: number,
): Promise<AskResult> {
  try {
    const m = await nc.request(
      names.control(node),
      encoder.encode(JSON.stringify(body)),
      { timeout },
    );
    return {
      kind: "answer",
      body: JSON.parse(decoder.decode(m.data)) as Record<string, unknown>,
    };
  } catch (e) {
    if (
      e instanceof errors.NoRespondersError ||
      (e instanceof errors.RequestError && e.isNoResponders())
    ) {
      return { kind: "dead" };
    }
    return { kind: "silent" };
  }
}
