/**
 * The cost of per-delivery read authorization on the router's fan-out path:
 * one PUBLISH routed by `Router` to 50 online `Session`s (QoS 0, links that
 * discard), without an `authorizeRead` hook, with `fileAuth`'s ACL hook
 * (cached per session and topic), and with 256 topics in turn (still
 * cached) or a new topic for every publish (every check a cache miss: the
 * ACL matcher runs). Run with `deno bench -P bench/read_authz_bench.ts`.
 *
 * @module
 */

import { Acl } from "../broker/acl.ts";
import type { ClientInfo } from "../broker/hooks.ts";
import { Router } from "../broker/router.ts";
import {
  type PublishEncoding,
  Session,
  type SessionContext,
  type SessionLink,
} from "../broker/session.ts";
import { MemoryStore } from "../broker/store/memory.ts";
import type { StoredMessage } from "../broker/store/store.ts";

const SUBSCRIBERS = 50;

class SinkLink implements SessionLink {
  readonly version = 4 as const;
  readonly sendWindow = 65535;
  readonly maxPacketSize = Infinity;
  bytes = 0;
  writable(): boolean {
    return true;
  }
  sendPublish(enc: PublishEncoding): void {
    this.bytes += enc.bytes.length;
  }
  send(): void {}
}

const ACL = Acl.parse(`
topic read public/#
user admin
topic readwrite #
user bench
topic readwrite bench/#
topic deny bench/secret/#
pattern read users/%u/inbox/#
`);

function router(authorized: boolean, filter: string): Router {
  const ctx: SessionContext = {
    store: new MemoryStore(),
    maxQueuedMessages: 1000,
    queueQos0Messages: false,
  };
  if (authorized) {
    ctx.authorizeRead = (c: ClientInfo, topic: string) =>
      ACL.forClient(c.clientId, c.username).canRead(topic);
    ctx.authorizationEpoch = () => 1;
  }
  const r = new Router(2);
  for (let i = 0; i < SUBSCRIBERS; i++) {
    const s = new Session(`s${i}`, 4, 0, ctx);
    s.username = "bench";
    s.attach(new SinkLink());
    r.subscribe(s, { filter, qos: 0 });
  }
  return r;
}

function message(topic: string): StoredMessage {
  return { topic, payload: new Uint8Array(64), qos: 0, retain: false };
}

const ONE = message("bench/room/1");
const MANY = Array.from({ length: 256 }, (_, i) => message(`bench/room/${i}`));

const plain = router(false, "bench/room/1");
const checked = router(true, "bench/room/1");
Deno.bench("fan-out to 50, one topic, no authorizeRead", {
  group: "one",
  baseline: true,
}, () => {
  plain.publish(ONE, undefined);
});
Deno.bench("fan-out to 50, one topic, ACL authorizeRead", {
  group: "one",
}, () => {
  checked.publish(ONE, undefined);
});

const plainMany = router(false, "bench/room/+");
const checkedMany = router(true, "bench/room/+");
let i = 0;
Deno.bench("fan-out to 50, 256 topics, no authorizeRead", {
  group: "many",
  baseline: true,
}, () => {
  plainMany.publish(MANY[i++ & 255]!, undefined);
});
Deno.bench("fan-out to 50, 256 topics, ACL authorizeRead", {
  group: "many",
}, () => {
  checkedMany.publish(MANY[i++ & 255]!, undefined);
});

// Every topic new: each delivery misses the cache and runs the ACL.
let n = 0;
Deno.bench("fan-out to 50, new topic each time, ACL authorizeRead", {
  group: "many",
}, () => {
  checkedMany.publish(message(`bench/room/${n++}`), undefined);
});
