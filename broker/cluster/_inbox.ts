/**
 * A node's JetStream inbox (private): the work-queue stream every node's
 * inbox lives in, one durable consumer per inbox (`node.boot`, or
 * `node.boot-N` after the node came back from being taken for dead), and
 * what the node and the one that adopts its sessions ask of it.
 *
 * @module
 */

import {
  AckPolicy,
  type Consumer,
  DeliverPolicy,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import type { ClusterNames, NatsHandles } from "./nats.ts";

/** An inbox message not acknowledged in this time is delivered again. */
export const INBOX_ACK_WAIT_MS = 3000;

/** The durable consumer name of an inbox (`node.boot`, `node.boot-N`). */
export function inboxConsumer(inbox: string): string {
  return "in_" + inbox.replace(".", "_");
}

/** Creates the inbox stream if it does not exist. */
export async function ensureInboxStream(
  h: NatsHandles,
  names: ClusterNames,
): Promise<void> {
  try {
    await h.jsm.streams.info(names.inboxStream);
  } catch {
    await h.jsm.streams.add({
      name: names.inboxStream,
      subjects: [`${names.internal}.in.>`],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      // A dead node's inbox is drained by the node that adopts its
      // sessions; what nobody takes goes after a week.
      max_age: 7 * 24 * 3600 * 1_000_000_000,
      num_replicas: h.replicas,
    });
  }
}

/** The consumer of `inbox` (created, with the stream, if need be). */
export async function inboxConsumerOf(
  h: NatsHandles,
  names: ClusterNames,
  inbox: string,
): Promise<Consumer> {
  await ensureInboxStream(h, names);
  const name = inboxConsumer(inbox);
  await h.jsm.consumers.add(names.inboxStream, {
    durable_name: name,
    filter_subject: names.inbox(inbox),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    max_ack_pending: 20_000,
    // What a killed node had taken but not acknowledged comes back soon,
    // to the node that adopts its sessions.
    ack_wait: INBOX_ACK_WAIT_MS * 1_000_000,
  });
  return await h.js.consumers.get(names.inboxStream, name);
}

/**
 * Whether the consumer of `inbox` is gone (undefined: NATS cannot say).
 */
export async function inboxGone(
  h: NatsHandles,
  names: ClusterNames,
  inbox: string,
): Promise<boolean | undefined> {
  try {
    await h.jsm.consumers.info(names.inboxStream, inboxConsumer(inbox));
    return false;
  } catch (e) {
    return /not found|10014/i.test((e as Error).message) ? true : undefined;
  }
}

/**
 * Whether `inbox` has nothing left to take or to acknowledge (true also
 * when NATS cannot say: nothing to wait for then).
 */
export async function inboxEmpty(
  h: NatsHandles,
  names: ClusterNames,
  inbox: string,
): Promise<boolean> {
  try {
    const info = await h.jsm.consumers.info(
      names.inboxStream,
      inboxConsumer(inbox),
    );
    return info.num_pending === 0 && info.num_ack_pending === 0;
  } catch {
    return true;
  }
}
