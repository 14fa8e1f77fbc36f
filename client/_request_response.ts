/**
 * `RequestResponse`: v5 request/response for the client (private): the
 * response topic and its subscription, random correlation data, and the
 * requests waiting for their response.
 *
 * @module
 */

import type { ConnackPacket, Properties, QoS } from "../codec/packet.ts";
import { MqttError } from "../codec/errors.ts";
import type { Message } from "./message.ts";
import { TimeoutError } from "./errors.ts";
import { hex } from "./_util.ts";

/** What request/response needs of the client. */
export interface RequestHost {
  /** The client id (part of the response topic). */
  readonly clientId: string;
  /** The last CONNACK (its Response Information, if any). */
  readonly connack: ConnackPacket | undefined;
  /** Subscribes with a handler; resolves with the SUBACK codes. */
  subscribe(
    filter: string,
    options: { qos: QoS },
    handler: (message: Message) => void | Promise<void>,
  ): Promise<number[]>;
  /** Publishes. */
  publish(
    topic: string,
    payload: string | Uint8Array,
    options: { qos: QoS; properties: Properties },
  ): Promise<unknown>;
}

interface Waiting {
  resolve(m: Message): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Requests of one client and their responses.
 *
 * @example
 * ```ts ignore
 * const rr = new RequestResponse(client);
 * const reply = await rr.request("svc/echo", "hi", 1, 10_000, undefined);
 * ```
 */
export class RequestResponse {
  #host: RequestHost;
  #responseTopic: string | undefined;
  #responseSub: Promise<void> | undefined;
  #waiting = new Map<string, Waiting>();

  /** Creates the request state of `host`. */
  constructor(host: RequestHost) {
    this.#host = host;
  }

  /**
   * Publishes `payload` to `topic` with this client's Response Topic and
   * random Correlation Data; resolves with the first message back with the
   * same correlation data, or rejects with `TimeoutError` after `timeout`
   * ms. The response topic is subscribed to (QoS 1) on first use.
   */
  async request(
    topic: string,
    payload: string | Uint8Array,
    qos: QoS,
    timeout: number,
    properties: Properties | undefined,
  ): Promise<Message> {
    await (this.#responseSub ??= this.#subscribe());
    const correlation = crypto.getRandomValues(new Uint8Array(16));
    const key = hex(correlation);
    const { promise, resolve, reject } = Promise.withResolvers<Message>();
    const timer = setTimeout(() => {
      this.#waiting.delete(key);
      reject(
        new TimeoutError(`no response on "${topic}" within ${timeout} ms`),
      );
    }, timeout);
    this.#waiting.set(key, { resolve, reject, timer });
    this.#host.publish(topic, payload, {
      qos,
      properties: {
        ...properties,
        responseTopic: this.#responseTopic!,
        correlationData: correlation,
      },
    }).catch((e) => {
      if (this.#waiting.delete(key)) {
        clearTimeout(timer);
        reject(e);
      }
    });
    return promise;
  }

  /** Subscribes to the response topic; forgets it again on failure. */
  #subscribe(): Promise<void> {
    const host = this.#host;
    const base = host.connack?.properties?.responseInformation;
    const responseTopic = this.#responseTopic = `${
      base ? base.replace(/\/$/, "") : "kite/response"
    }/${host.clientId}`;
    return host.subscribe(responseTopic, { qos: 1 }, this.#onResponse).then(
      (codes) => {
        if ((codes[0] ?? 0x80) >= 0x80) {
          this.#responseSub = undefined;
          throw new MqttError(
            codes[0]!,
            `cannot subscribe to the response topic ${responseTopic}`,
          );
        }
      },
      (e) => {
        this.#responseSub = undefined;
        throw e;
      },
    );
  }

  #onResponse = (m: Message): void => {
    const cd = m.correlationData;
    if (!cd) return;
    const key = hex(cd);
    const r = this.#waiting.get(key);
    if (r) {
      this.#waiting.delete(key);
      clearTimeout(r.timer);
      r.resolve(m);
    }
  };

  /**
   * The responder side: for each message on `filter` with a Response Topic,
   * publishes `handler`'s result there with the same Correlation Data.
   */
  respond(
    filter: string,
    handler: (
      message: Message,
    ) => Promise<string | Uint8Array> | string | Uint8Array,
    qos: QoS,
  ): Promise<number[]> {
    const host = this.#host;
    return host.subscribe(filter, { qos }, async (m) => {
      const rt = m.responseTopic;
      if (!rt) return;
      const reply = await handler(m);
      const props: Properties = {};
      if (m.correlationData) props.correlationData = m.correlationData;
      await host.publish(rt, reply, { qos, properties: props });
    });
  }

  /** Rejects every waiting request with `error` (the client closed). */
  rejectAll(error: Error): void {
    for (const r of this.#waiting.values()) {
      clearTimeout(r.timer);
      r.reject(error);
    }
    this.#waiting.clear();
  }
}
