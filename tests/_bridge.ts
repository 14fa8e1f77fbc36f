/**
 * Test helpers for bridges: a client that collects what it receives and
 * waits (bounded) for messages, and a wait for a bridge's state topic.
 */

import type { Broker } from "../broker/mod.ts";
import {
  Client,
  type ClientOptions,
  type Message,
  type SubscribeOptions,
} from "../client/mod.ts";
import { within } from "./client_helpers.ts";

interface Waiter {
  pred: (m: Message) => boolean;
  resolve: (m: Message) => void;
}

/** A connected client and everything it received, in order. */
export class Collector implements AsyncDisposable {
  readonly client: Client;
  readonly messages: Message[] = [];
  #waiters: Waiter[] = [];

  constructor(client: Client) {
    this.client = client;
    client.onMessage((m) => {
      this.messages.push(m);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.pred(m)) return true;
        w.resolve(m);
        return false;
      });
    });
  }

  /** Connects to `port` and subscribes to `filters`. */
  static async open(
    port: number,
    filters: string[],
    sub: SubscribeOptions = { qos: 1 },
    options: ClientOptions = {},
  ): Promise<Collector> {
    const client = new Client({ host: "127.0.0.1", port, ...options });
    const c = new Collector(client);
    await client.connect();
    if (filters.length > 0) await client.subscribe(filters, sub);
    return c;
  }

  /** The payloads (as text) received on `topic`. */
  texts(topic: string): string[] {
    return this.messages.filter((m) => m.topic === topic).map((m) =>
      m.payloadText
    );
  }

  /** The first message (received already, or to come) that `pred` accepts. */
  wait(
    pred: (m: Message) => boolean,
    what: string,
    ms = 10_000,
  ): Promise<Message> {
    const found = this.messages.find(pred);
    if (found !== undefined) return Promise.resolve(found);
    const { promise, resolve } = Promise.withResolvers<Message>();
    this.#waiters.push({ pred, resolve });
    return within(promise, ms, what);
  }

  /** The first message on `topic` (with `payload`, if given). */
  waitFor(topic: string, payload?: string, ms?: number): Promise<Message> {
    return this.wait(
      (m) =>
        m.topic === topic &&
        (payload === undefined || m.payloadText === payload),
      `${topic}${payload === undefined ? "" : ` = ${payload}`}`,
      ms,
    );
  }

  /**
   * Waits for `topic` to carry `first` and then `then` (after the message
   * at index `from`): a state that changes and changes back.
   */
  waitSequence(
    topic: string,
    from: number,
    first: string,
    then: string,
    ms?: number,
  ): Promise<Message> {
    return this.wait(
      (m) => {
        const i = this.messages.indexOf(m);
        if (i < from || m.topic !== topic || m.payloadText !== then) {
          return false;
        }
        return this.messages.slice(from, i).some((x) =>
          x.topic === topic && x.payloadText === first
        );
      },
      `${topic}: ${first} then ${then}`,
      ms,
    );
  }

  /** Waits until `count` distinct payloads arrived on topics starting with `prefix`. */
  async waitDistinct(
    prefix: string,
    count: number,
    ms = 20_000,
  ): Promise<Set<string>> {
    const seen = new Set<string>();
    const check = (m: Message) => {
      if (m.topic.startsWith(prefix)) seen.add(m.payloadText);
      return seen.size >= count;
    };
    for (const m of this.messages) check(m);
    if (seen.size < count) {
      await this.wait(check, `${count} messages on ${prefix}`, ms)
        .catch((e) => {
          throw new Error(`${(e as Error).message} (got ${seen.size})`);
        });
    }
    return seen;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.client.disconnect().catch(() => {});
  }
}

/**
 * Waits until the bridge `name` of `broker` reports `state` (`"1"`
 * connected, `"0"` not) on its local notification topic.
 */
export async function bridgeState(
  broker: Broker,
  name: string,
  state: "0" | "1",
  ms = 10_000,
): Promise<void> {
  await using c = await Collector.open(broker.addr.port, [
    `$SYS/broker/connection/${name}/state`,
  ]);
  // Retained: the current state comes first, then each change.
  await c.wait(
    (m) =>
      m.topic === `$SYS/broker/connection/${name}/state` &&
      m.payloadText === state &&
      (m === c.messages.at(-1)),
    `bridge ${name} state ${state}`,
    ms,
  );
}
