/**
 * SUBSCRIBE and UNSUBSCRIBE: filters checked (shared subscriptions,
 * wildcards, No Local on `$share` [MQTT-3.8.3-4], more levels than
 * `maxTopicLevels`: 0x8F), granted QoS capped by the broker's maximum, the
 * `authorizeSubscribe` hook, then the subscriptions applied (a new filter
 * past `maxSubscriptionsPerClient`: 0x97), SUBACK, and the retained
 * messages after it [MQTT-3.8.4-4]. Retained messages go through
 * `Session.deliverRetained`, which applies the `authorizeRead` hook: a
 * filter wider than the client's read rights gets only the retained
 * messages it may read.
 *
 * @module
 */

import { MqttError } from "../../../codec/errors.ts";
import type {
  Packet,
  QoS,
  SubscribePacket,
  UnsubscribePacket,
} from "../../../codec/packet.ts";
import {
  ReasonCode,
  reasonCodeName,
  SUBACK_FAILURE_V4,
} from "../../../codec/reason_code.ts";
import { hasWildcard, parseSharedSubscription } from "../../../codec/topic.ts";
import type { StoredSubscription } from "../../store/store.ts";
import { tooDeep } from "../../_topic_rules.ts";
import { CONNECTED, type ConnectionContext } from "../context.ts";

function minQos(a: QoS, b: QoS): QoS {
  return a < b ? a : b;
}

/** SUBSCRIBE (see the module doc). */
export function onSubscribe(
  c: ConnectionContext,
  p: SubscribePacket,
): Promise<void> | undefined {
  const core = c.core;
  const s = core.settings;
  const n = p.subscriptions.length;
  const codes: number[] = new Array(n);
  const shares: ({ group: string; filter: string } | undefined)[] = new Array(
    n,
  );
  for (let i = 0; i < n; i++) {
    const sub = p.subscriptions[i]!;
    let shared: { group: string; filter: string } | undefined;
    try {
      shared = parseSharedSubscription(sub.filter);
    } catch (e) {
      if (!(e instanceof MqttError)) throw e;
      codes[i] = ReasonCode.TopicFilterInvalid;
      continue;
    }
    shares[i] = shared;
    if (tooDeep(shared?.filter ?? sub.filter, s.maxTopicLevels)) {
      codes[i] = ReasonCode.TopicFilterInvalid; // 3.1.1: 0x80
      continue;
    }
    if (shared !== undefined) {
      if (sub.noLocal === true) {
        throw new MqttError(
          ReasonCode.ProtocolError,
          "No Local on a shared subscription [MQTT-3.8.3-4]",
        );
      }
      if (!s.sharedSubscriptionAvailable) {
        codes[i] = ReasonCode.SharedSubscriptionsNotSupported;
        continue;
      }
    }
    if (
      !s.wildcardSubscriptionAvailable &&
      hasWildcard(shared?.filter ?? sub.filter)
    ) {
      codes[i] = ReasonCode.WildcardSubscriptionsNotSupported;
      continue;
    }
    codes[i] = minQos(sub.qos, s.maxQos);
  }
  const authz = core.hooks.authorizeSubscribe;
  if (authz === undefined) {
    subscribeAuthorized(c, p, codes, shares);
    return;
  }
  const results: (number | Promise<number>)[] = [];
  let async = false;
  for (let i = 0; i < n; i++) {
    const code = codes[i]!;
    if (code >= 0x80) {
      results.push(code);
      continue;
    }
    const r = authz(c.info!, p.subscriptions[i]!.filter, code as QoS);
    if (typeof r !== "number") async = true;
    results.push(r);
  }
  const apply = (rs: number[]) => {
    for (let i = 0; i < n; i++) {
      const code = codes[i]!;
      if (code >= 0x80) continue;
      const r = rs[i]!;
      codes[i] = r >= 0x80 ? r : Math.min(code, r);
    }
  };
  if (!async) {
    apply(results as number[]);
    subscribeAuthorized(c, p, codes, shares);
    return;
  }
  return Promise.all(results).then((rs) => {
    if (c.state !== CONNECTED) return;
    apply(rs);
    subscribeAuthorized(c, p, codes, shares);
  });
}

/** Applies the subscriptions that were granted; SUBACK; retained messages. */
function subscribeAuthorized(
  c: ConnectionContext,
  p: SubscribePacket,
  codes: number[],
  shares: ({ group: string; filter: string } | undefined)[],
): void {
  const core = c.core;
  const session = c.session!;
  const v5 = c.version === 5;
  const subId = v5 ? p.properties?.subscriptionIdentifiers?.[0] : undefined;
  const max = core.settings.maxSubscriptionsPerClient;
  const retainedToSend: {
    filter: string;
    qos: QoS;
    subIds: number[] | undefined;
  }[] = [];
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i]!;
    if (code >= 0x80) continue;
    const req = p.subscriptions[i]!;
    const sub: StoredSubscription = { filter: req.filter, qos: code as QoS };
    if (v5) {
      if (req.noLocal === true) sub.noLocal = true;
      if (req.retainAsPublished === true) sub.retainAsPublished = true;
      if (req.retainHandling !== undefined && req.retainHandling !== 0) {
        sub.retainHandling = req.retainHandling;
      }
      if (subId !== undefined) sub.subscriptionIdentifier = subId;
    } else if (session.bridge) {
      // A 3.1/3.1.1 bridge (Mosquitto's flag): its own messages do not come
      // back, retain flags stay as published (as Mosquitto does).
      sub.noLocal = true;
      sub.retainAsPublished = true;
    }
    const existed = session.subscriptions.has(req.filter);
    if (!existed && max > 0 && session.subscriptions.size >= max) {
      codes[i] = ReasonCode.QuotaExceeded; // 3.1.1: 0x80
      continue;
    }
    session.subscriptions.set(req.filter, sub);
    const shared = shares[i];
    core.dispatcher.subscribe(session, sub, shared);
    // Retained messages: not for shared subscriptions; v5 retain handling
    // 1 only for a new subscription, 2 never [MQTT-3.3.1-9..11].
    const rh = sub.retainHandling ?? 0;
    if (
      shared === undefined && core.settings.retainAvailable &&
      (rh === 0 || (rh === 1 && !existed))
    ) {
      retainedToSend.push({
        filter: req.filter,
        qos: sub.qos,
        subIds: subId !== undefined ? [subId] : undefined,
      });
    }
  }
  session.saveRecord();
  const suback: Packet = {
    type: "suback",
    packetId: p.packetId,
    reasonCodes: v5
      ? codes
      : codes.map((code) => (code >= 0x80 ? SUBACK_FAILURE_V4 : code)),
  };
  if (v5 && c.problemInfo) {
    const refused: string[] = [];
    for (let i = 0; i < codes.length; i++) {
      const code = codes[i]!;
      if (code >= 0x80) {
        refused.push(`${p.subscriptions[i]!.filter}: ${reasonCodeName(code)}`);
      }
    }
    if (refused.length > 0) {
      suback.properties = { reasonString: `refused ${refused.join(", ")}` };
    }
  }
  // On a cluster node the SUBACK waits until every node routes to the new
  // subscriptions (the commit that covers their route table entries).
  c.send(suback, core.plugin !== undefined);
  // [MQTT-3.8.4-4]: retained messages after the SUBACK.
  for (const r of retainedToSend) {
    const now = Date.now();
    core.retained.match(r.filter, (m) => {
      if (m.expiresAt !== undefined && m.expiresAt <= now) return;
      session.deliverRetained(m, minQos(m.qos, r.qos), r.subIds);
    });
  }
}

/** UNSUBSCRIBE: UNSUBACK with a code per filter (v5). */
export function onUnsubscribe(
  c: ConnectionContext,
  p: UnsubscribePacket,
): void {
  const core = c.core;
  const session = c.session!;
  const codes: number[] = [];
  for (const filter of p.filters) {
    let shared: { group: string; filter: string } | undefined;
    try {
      shared = parseSharedSubscription(filter);
    } catch {
      codes.push(ReasonCode.TopicFilterInvalid);
      continue;
    }
    const had = session.subscriptions.delete(filter);
    if (had) core.dispatcher.unsubscribe(session, filter, shared);
    codes.push(had ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted);
  }
  session.saveRecord();
  const unsuback: Packet = { type: "unsuback", packetId: p.packetId };
  if (c.version === 5) unsuback.reasonCodes = codes;
  c.send(unsuback);
}
