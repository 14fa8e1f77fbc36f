/**
 * PUBLISH from the client: v5 topic alias, QoS and retain checks, Receive
 * Maximum, payload format, the `authorizePublish` hook, then routing and
 * the acknowledgement.
 *
 * - A topic name deeper than `maxTopicLevels`: DISCONNECT 0x90 (3.1.1: the
 *   connection is closed).
 * - Topic aliases from the client: up to `topicAliasMaximum` (advertised in
 *   CONNACK), mapped per connection; 0 or above the maximum is DISCONNECT
 *   0x94, an empty topic with an alias never set is 0x82.
 * - Receive Maximum: QoS 1 PUBLISHes whose PUBACK is not written yet plus
 *   QoS 2 ones not released count against it; one more is DISCONNECT 0x93.
 * - A topic beginning with `$SYS` (the broker's): refused like an
 *   authorization refusal, before the hook: not routed, not retained, v5
 *   PUBACK/PUBREC 0x87 (3.1.1: acknowledged and dropped), QoS 0 dropped;
 *   but a client may publish its own connection state (a bridge's
 *   notifications), `$SYS/broker/connection/<client id>/state`.
 * - Payload Format Indicator 1 with a payload that is not UTF-8: PUBACK or
 *   PUBREC 0x99 (QoS 0: DISCONNECT 0x99); the message is not routed.
 * - Reason strings on PUBACK/PUBREC only unless the client set Request
 *   Problem Information to 0 [MQTT-3.1.2-29].
 * - The acknowledgement goes out once what it acknowledges is durable
 *   (retained message, QoS 2 id, queued messages of persistent sessions).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { MqttError } from "../../../codec/errors.ts";
import type { AckPacket, PublishPacket } from "../../../codec/packet.ts";
import { ReasonCode, reasonCodeName } from "../../../codec/reason_code.ts";
import { TopicAliasReceiver } from "../../../codec/_topic_alias.ts";
import type { StoredMessage } from "../../store/store.ts";
import { debugEnabled } from "../../_log.ts";
import { DropReason } from "../../metrics.ts";
import { bridgeStateTopic, isSysTopic, tooDeep } from "../../_topic_rules.ts";
import { CONNECTED, type ConnectionContext } from "../context.ts";

const log = getLogger(["kite", "broker", "connection"]);

const utf8 = new TextDecoder("utf-8", { fatal: true });

function isUtf8(b: Uint8Array): boolean {
  try {
    utf8.decode(b);
    return true;
  } catch {
    return false;
  }
}

/** PUBLISH from the client (see the module doc). */
export function onPublish(
  c: ConnectionContext,
  p: PublishPacket,
): Promise<void> | undefined {
  const core = c.core;
  const s = core.settings;
  const metrics = core.metrics;
  metrics.messagesReceived++;
  metrics.publishBytesReceived += p.payload.length;
  const v5 = c.version === 5;
  if (v5) {
    const props = p.properties;
    if (props !== undefined) {
      if (props.topicAlias !== undefined) {
        resolveAlias(c, p, props.topicAlias);
      }
      if (props.subscriptionIdentifiers !== undefined) {
        throw new MqttError(
          ReasonCode.ProtocolError,
          "a PUBLISH from a client must not carry a Subscription Identifier [MQTT-3.3.4-6]",
        );
      }
    }
    if (p.qos > s.maxQos) {
      throw new MqttError(
        ReasonCode.QoSNotSupported,
        `QoS ${p.qos} above the maximum ${s.maxQos} [MQTT-3.2.2-11]`,
      );
    }
    if (p.retain && !s.retainAvailable) {
      throw new MqttError(
        ReasonCode.RetainNotSupported,
        "retain is not available [MQTT-3.2.2-14]",
      );
    }
  }
  if (tooDeep(p.topic, s.maxTopicLevels)) {
    throw new MqttError(
      ReasonCode.TopicNameInvalid,
      `topic name with more than ${s.maxTopicLevels} levels (maxTopicLevels)`,
    );
  }
  const session = c.session!;
  if (p.qos === 2) {
    if (session.incomingQos2.has(p.packetId!)) {
      // A duplicate of a message not yet released: acknowledge it again,
      // do not deliver it twice [MQTT-4.3.3-2].
      c.send({ type: "pubrec", packetId: p.packetId! }, true);
      return;
    }
  }
  if (p.qos > 0) {
    if (
      v5 && c.qos1Unacked + session.incomingQos2Count >= s.receiveMaximum
    ) {
      // [MQTT-3.3.4-9]
      core.metrics.dropped[DropReason.ReceiveMaximum]!++;
      throw new MqttError(
        ReasonCode.ReceiveMaximumExceeded,
        `more than the Receive Maximum ${s.receiveMaximum} QoS 1/2 messages unacknowledged`,
      );
    }
    if (p.qos === 1) c.qos1Unacked++;
  }
  if (
    v5 && p.properties?.payloadFormatIndicator === 1 && !isUtf8(p.payload)
  ) {
    // [MQTT-3.3.2-4]: the payload must be UTF-8; refused in the ack, or
    // with DISCONNECT for QoS 0.
    if (p.qos === 0) {
      core.metrics.dropped[DropReason.Refused]!++;
      throw new MqttError(
        ReasonCode.PayloadFormatInvalid,
        "payload format indicator 1 with a payload that is not UTF-8",
      );
    }
    publishAuthorized(c, p, ReasonCode.PayloadFormatInvalid);
    return;
  }
  if (
    isSysTopic(p.topic) && !bridgeStateTopic(p.topic, c.clientId)
  ) {
    // `$SYS` is the broker's: refused whatever the hook would say.
    if (p.qos > 0) publishAuthorized(c, p, ReasonCode.NotAuthorized);
    else {
      core.metrics.dropped[DropReason.Refused]!++;
      if (debugEnabled()) {
        log.debug("{clientId}: QoS 0 publish to {topic} dropped ($SYS)", {
          clientId: c.clientId,
          topic: p.topic,
        });
      }
    }
    return;
  }
  const authz = core.hooks.authorizePublish;
  if (authz !== undefined) {
    const r = authz(c.info!, p.topic, p.qos, p.retain);
    if (typeof r !== "number") {
      return r.then((code) => {
        if (c.state === CONNECTED) publishAuthorized(c, p, code);
      });
    }
    publishAuthorized(c, p, r);
    return;
  }
  publishAuthorized(c, p, ReasonCode.Success);
  return;
}

/** Applies an incoming v5 Topic Alias to `p` (sets or uses the mapping). */
function resolveAlias(
  c: ConnectionContext,
  p: PublishPacket,
  alias: number,
): void {
  const max = c.core.settings.topicAliasMaximum;
  if (alias === 0 || alias > max) {
    // [MQTT-3.3.2-8], [MQTT-3.3.2-9]
    throw new MqttError(
      ReasonCode.TopicAliasInvalid,
      `topic alias ${alias} not in 1..${max}`,
    );
  }
  // An empty topic with an alias never set is a protocol error.
  p.topic = (c.aliasIn ??= new TopicAliasReceiver(max)).resolve(
    p.topic,
    alias,
    ReasonCode.ProtocolError,
  );
}

/** Routes an authorized PUBLISH (`code` < 0x80) and acknowledges it. */
function publishAuthorized(
  c: ConnectionContext,
  p: PublishPacket,
  code: number,
): void {
  const core = c.core;
  const v5 = c.version === 5;
  let routed = 0;
  if (code < 0x80) {
    // The payload is a view of the read chunk; a session that queues the
    // message copies it out (see Session), retained messages too.
    const message: StoredMessage = {
      topic: p.topic,
      payload: p.payload,
      qos: p.qos,
      retain: p.retain && core.settings.retainAvailable,
    };
    const props = p.properties;
    if (v5 && props !== undefined) {
      const { topicAlias: _a, subscriptionIdentifiers: _s, ...rest } = props;
      if (rest.messageExpiryInterval !== undefined) {
        message.expiresAt = Date.now() + rest.messageExpiryInterval * 1000;
      }
      for (const _ in rest) {
        message.properties = rest;
        break;
      }
    }
    routed = core.publish(message, c.clientId);
  } else {
    core.metrics.dropped[DropReason.Refused]!++;
    // Per message: at debug level, guarded (as Mosquitto's "Denied PUBLISH").
    if (debugEnabled()) {
      log.debug("{clientId}: publish to {topic} refused ({code})", {
        clientId: c.clientId,
        topic: p.topic,
        code,
      });
    }
  }
  if (p.qos === 0) return;
  let reasonCode: number = ReasonCode.Success;
  if (v5) {
    if (code >= 0x80) reasonCode = code;
    else if (routed === 0) reasonCode = ReasonCode.NoMatchingSubscribers;
  }
  const ack: AckPacket = {
    type: p.qos === 1 ? "puback" : "pubrec",
    packetId: p.packetId!,
  };
  if (reasonCode !== ReasonCode.Success) ack.reasonCode = reasonCode;
  if (reasonCode >= 0x80 && c.problemInfo) {
    ack.properties = {
      reasonString: reasonCode === ReasonCode.PayloadFormatInvalid
        ? "payload is not valid UTF-8 (payload format indicator 1)"
        : `publish refused: ${reasonCodeName(reasonCode)}`,
    };
  }
  if (p.qos === 2 && reasonCode < 0x80) {
    const session = c.session!;
    session.incomingQos2.add(p.packetId!);
    if (session.persistent) {
      core.store.putIncomingQos2(c.clientId, p.packetId!);
    }
  }
  c.send(ack, true);
}
