/**
 * One client connection: the protocol state machine between a `Duplex` and
 * the broker core. It reads packets and hands each to its handler
 * (handlers/, one module per packet type, chosen in `handlePacket`), writes
 * what they send, and is the only place where errors become CONNACK,
 * DISCONNECT or a closed socket (`#fail`):
 *
 * - before CONNACK: a refusal is a CONNACK with the version's code (3.1.1
 *   return codes, v5 reason codes), a bad first packet closes the socket
 *   [MQTT-3.1.0-1], an unsupported protocol level gets CONNACK 0x01
 *   [MQTT-3.1.2-2];
 * - after CONNACK: v5 clients get DISCONNECT with the error's reason code,
 *   3.1.1 clients a closed socket [MQTT-4.8.0-1]; the will is published.
 *
 * After a refusing CONNACK or a DISCONNECT the close lingers (`#finish`): no
 * packet is handled, the socket is half-closed and drained for up to a
 * second, so the client reads the reason code instead of a reset.
 *
 * Outgoing packets are coalesced (`OutputQueue`): everything queued during
 * one turn of the event loop (and while a write is in progress) goes out in
 * one write, with packet ids patched into shared PUBLISH encodings as they
 * are copied. Output that must wait for the store (`durable`) is held until
 * the `CommitGate` says the state behind it is committed; later output of
 * the same connection waits behind it, so the order is kept. Topic aliases
 * to v5 clients: `aliasedForm` (codec/_publish_template.ts).
 *
 * @module
 */

import type { PacketDecoder } from "../../codec/decode.ts";
import { MqttError } from "../../codec/errors.ts";
import type { Duplex } from "../../codec/duplex.ts";
import type { IdentifiedDuplex } from "../listen/listener.ts";
import { DUP_FLAG, type OutputQueue } from "../../codec/_output.ts";
import {
  aliasedForm,
  type OutgoingAliases,
  type PublishTemplate,
} from "../../codec/_publish_template.ts";
import type { TopicAliasReceiver } from "../../codec/_topic_alias.ts";
import type {
  ConnectPacket,
  Packet,
  Properties,
  ProtocolVersion,
} from "../../codec/packet.ts";
import { ReasonCode } from "../../codec/reason_code.ts";
import type { EnhancedAuthFlow } from "../auth.ts";
import type { CommitWaiter } from "../commit_gate.ts";
import type { BrokerCore } from "../core.ts";
import type { ClientInfo } from "../hooks.ts";
import type { Session } from "../session.ts";
import type { StoredMessage } from "../store/store.ts";
import {
  clientInfo,
  CLOSED,
  CLOSING,
  CONNECTED,
  CONNECTING,
  type ConnectionContext,
} from "./context.ts";
import { handlePacket } from "./handlers/mod.ts";
import { checkTimeouts } from "./handlers/control.ts";
import { HeldOutput } from "./_held_output.ts";
import {
  disconnectPacket,
  encodeWithin,
  refusalConnack,
} from "./_final_packets.ts";
import {
  logClosedByClient,
  logDisconnected,
  logFailure,
  logOverflow,
  logWriteFailed,
} from "./_lifecycle_log.ts";
import { SLICE_BYTES, SLICE_MS } from "./_io_turn.ts";
import { AS_DOUBLE } from "../../codec/_double.ts";
import {
  flushThisTurn,
  giveDecoder,
  giveQueue,
  takeDecoder,
  takeQueue,
  type TurnFlushed,
  writeOut,
} from "./_turn_flush.ts";

/** How long a closing connection may take to flush its last bytes. */
const CLOSE_FLUSH_MS = 1000;
/** How long a closed connection drains what the client still sends. */
const LINGER_MS = 1000;

/**
 * A client connection served by a broker. The fields without `#` are the
 * connection context the packet handlers (handlers/) read and update; they
 * are not public API.
 */
export class Connection
  implements ConnectionContext, CommitWaiter, TurnFlushed {
  /** Protocol version (4 until the CONNECT is read). */
  version: ProtocolVersion = 4;
  /** Most unacknowledged QoS 1/2 messages to this client. */
  sendWindow: number;
  /** The client's v5 Maximum Packet Size (Infinity when not given). */
  maxPacketSize = Infinity;
  /** The client identifier, once connected. */
  clientId = "";
  /** The session, once connected. */
  session: Session | undefined;
  /** Epoch ms of the last byte received. */
  lastRx: number;
  /** Epoch ms the connection was accepted. */
  readonly openedAt: number;
  /** Epoch ms of the CONNACK (0 before). */
  connectedAt = 0;
  /** Keep alive in seconds (0: none). */
  keepAlive = 0;
  /** The broker core. */
  readonly core: BrokerCore;
  /** CONNECTING, CONNECTED, CLOSING or CLOSED. */
  state = CONNECTING;
  /** The will of this connection (published by the broker on an ungraceful close). */
  will: StoredMessage | undefined;
  /** v5 will delay interval in seconds. */
  willDelay = 0;
  /** The Session Expiry Interval the CONNECT asked for. */
  sessionExpiryFromConnect = 0;
  /** v5 Request Problem Information (false when the client sent 0). */
  problemInfo = true;
  /** Topic aliases the client set (v5). */
  aliasIn: TopicAliasReceiver | undefined;
  /** Topic aliases the broker set for the client (v5). */
  aliasOut: OutgoingAliases | undefined;
  /** QoS 1 PUBLISHes received whose PUBACK is not written yet. */
  qos1Unacked = 0;
  /** The v5 enhanced authentication exchange, when CONNECT had a method. */
  authFlow: EnhancedAuthFlow | undefined;
  /** The CONNECT, kept during an enhanced authentication exchange. */
  connectPacket: ConnectPacket | undefined;
  /** Whether the broker assigned the client identifier. */
  assigned = false;

  #duplex: Duplex;
  #decoder: PacketDecoder | undefined; // connected: only mid-packet
  #backlog: Packet[] | undefined;
  #unblocked: Promise<void> | undefined;
  // Created only when someone asks for `closed`.
  #closed: Promise<void> | undefined;
  #closedResolve: (() => void) | undefined;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  // A read is pending; the client's side ended (EOF, failed read); the
  // close lingers after the last bytes, and is lingering (see `#finish`).
  #readPending = false;
  // Read since the last pause (epoch ms) and bytes read since (#afterPush).
  #sliceStart = AS_DOUBLE; // doubles from the start (_double.ts)
  #sliceBytes = AS_DOUBLE;
  #eof = false;
  #lingerWanted = false;
  #lingering = false;
  /** Built on first use (hooks, wills): most brokers never ask. */
  #info: ClientInfo | undefined;
  #username: string | undefined;
  #held: HeldOutput | undefined; // output waiting for a store commit
  #out: OutputQueue | undefined; // undefined while empty (_turn_flush.ts)
  #outBytes = 0; // queued or being written
  #writing: Uint8Array | undefined; // what is being written
  #flushScheduled = false;
  #sentCount = 0;

  /** Creates a connection and starts reading. */
  constructor(core: BrokerCore, duplex: Duplex) {
    this.core = core;
    this.#duplex = duplex;
    this.#decoder = takeDecoder(undefined, core.settings.maxPacketSize);
    this.sendWindow = core.settings.maxInflightMessages;
    this.openedAt = this.lastRx = Date.now();
    this.#readLoop();
  }

  /** Resolves when the connection is closed and its socket released. */
  get closed(): Promise<void> {
    if (this.#closed === undefined) {
      this.#closed = this.state === CLOSED
        ? Promise.resolve()
        : new Promise((r) => this.#closedResolve = r);
    }
    return this.#closed;
  }

  /**
   * Who the hooks are told about (undefined until the CONNECT is read).
   * Built on first use, so a broker without hooks keeps no such object
   * (nor the address string) per connection.
   */
  get info(): ClientInfo | undefined {
    if (this.#info === undefined && this.clientId !== "") {
      this.#info = clientInfo(this, this.#username);
    }
    return this.#info;
  }

  /** The user name the client connected (or authenticated) with. */
  get username(): string | undefined {
    return this.#username;
  }
  set username(username: string | undefined) {
    this.#username = username;
    this.#info = undefined; // built again, with the new name, on next use
    // A v5 re-authentication: deliveries follow the proven identity.
    if (this.session !== undefined) this.session.username = username;
  }

  /** The peer address, if the transport knows it. */
  get remoteAddress(): string | undefined {
    return this.#duplex.remoteAddress;
  }

  /** The identity the transport verified (see `IdentifiedDuplex`). */
  get peerIdentity(): string | undefined {
    return (this.#duplex as IdentifiedDuplex).peerIdentity;
  }

  /** Whether CONNACK was sent and the connection is not closing. */
  get connected(): boolean {
    return this.state === CONNECTED;
  }

  /** Bytes queued for the socket and not yet written. */
  get bufferedAmount(): number {
    return this.#outBytes;
  }

  // ---------------------------------------------------------------- reading
  // No async function stays suspended per idle connection: one read is
  // pending; its settlement (or a blocking handler's end) calls `#onRead`.

  /** Starts the next read, unless one is pending or closing (not lingering). */
  #readLoop(): void {
    if (this.#readPending || (this.state >= CLOSING && !this.#lingering)) {
      return;
    }
    this.#readPending = true;
    const duplex = this.#duplex;
    const onRead = this.#onRead;
    const raw = duplex.raw;
    if (raw?.readPush !== undefined) raw.readPush(onRead); // no promise
    // readCount(): a promise fewer per read than readRaw().
    else {
      (raw === undefined ? duplex.read() : raw.readCount?.() ?? raw.readRaw())
        .then(onRead, onRead);
    }
  }

  /**
   * A read settled (a byte count or a chunk; null: EOF; else an error),
   * or a blocking handler finished (undefined).
   */
  #onRead = (r: unknown): void => {
    try {
      if (r === undefined) {
        this.#afterPush();
        return;
      }
      this.#readPending = false;
      let chunk: Uint8Array | null;
      const raw = this.#duplex.raw;
      if (typeof r === "number" && r > 0) chunk = raw!.take(r); // 0: EOF
      else if (r instanceof Uint8Array) chunk = r;
      else {
        // EOF, or a read failed: after our own close() that is just the end.
        raw?.ended();
        this.#eof = true;
        if (!r || raw?.isClosed === true || this.#lingering) { // null, 0: EOF
          chunk = null;
        } else {
          this.#fail(r);
          return;
        }
      }
      if (chunk === null) {
        if (this.#lingering) this.#release();
        else if (this.state < CLOSING) {
          logClosedByClient(this.clientId);
          this.end(undefined, true, false, undefined, "closed by the client");
        }
        return;
      }
      if (this.state >= CLOSING) {
        // Closing: not handled; while lingering, drained.
        if (this.#lingering) this.#readLoop();
        return;
      }
      this.lastRx = Date.now();
      this.core.metrics.bytesReceived += chunk.length;
      this.#sliceBytes += chunk.length;
      // One dispatcher for all connections (no bound callback each).
      const prev = Connection.#pushing;
      Connection.#pushing = this;
      const dec = this.#decoder ??= takeDecoder(
        this.version,
        this.core.settings.maxPacketSize,
      );
      try {
        dec.push(chunk, Connection.#dispatch);
      } finally {
        Connection.#pushing = prev;
      }
      if (dec.buffered === 0 && this.state === CONNECTED) {
        this.#decoder = undefined;
        giveDecoder(dec);
      }
      this.#afterPush();
    } catch (e) {
      this.#fail(e);
    }
  };

  /** Reads on, after a blocking handler or the slice's `IoTurn` pause. */
  #afterPush(): void {
    const unblocked = this.#unblocked;
    if (unblocked !== undefined && this.state < CLOSING) {
      unblocked.then(this.#onRead, this.#onRead);
      return;
    }
    const turn = this.core.ioTurn;
    const now = this.lastRx;
    if (
      this.#sliceBytes >= SLICE_BYTES && now - this.#sliceStart >= SLICE_MS &&
      turn !== undefined && this.state < CLOSING
    ) {
      this.#sliceBytes = 0;
      this.#sliceStart = now;
      turn.after(this.#onRead); // #onRead(undefined): here again, reads on
    } else this.#readLoop();
  }

  /** The connection whose decoder is pushing (see #readLoop). */
  static #pushing: Connection | undefined;

  /** The decoder's callback, one for all connections: no closure each. */
  static #dispatch(this: void, p: Packet): void {
    Connection.#pushing!.#onPacket(p);
  }

  #onPacket(p: Packet): void {
    if (this.state >= CLOSING) return;
    this.core.metrics.packetsReceived++;
    if (this.#backlog !== undefined) {
      this.#backlog.push(p);
      return;
    }
    const r = handlePacket(this, p);
    if (r !== undefined) this.#block(r);
  }

  /**
   * A handler returned a promise (an async hook): the packets read
   * meanwhile wait in order, and reading pauses until it settles.
   */
  #block(r: Promise<void>): void {
    this.#backlog ??= [];
    this.#unblocked = r.then(() => this.#drain(), (e) => this.#fail(e));
  }

  #drain(): void {
    // Gone when the connection ended while the handler waited (end()
    // drops the backlog): nothing is left to handle.
    const backlog = this.#backlog;
    if (backlog === undefined) return;
    while (backlog.length > 0 && this.state < CLOSING) {
      const p = backlog.shift()!;
      let r: Promise<void> | undefined;
      try {
        r = handlePacket(this, p);
      } catch (e) {
        this.#fail(e);
        return;
      }
      if (r !== undefined) {
        this.#unblocked = r.then(() => this.#drain(), (e) => this.#fail(e));
        return;
      }
    }
    this.#backlog = undefined;
    this.#unblocked = undefined;
  }

  // ---------------------------------------------------------------- writing

  /** Whether the output buffer is under its bound. */
  writable(): boolean {
    return this.#outBytes < this.core.outputBufferLimit &&
      this.state === CONNECTED;
  }

  /**
   * Queues a packet. With `durable`, it is written only once the store has
   * committed what is pending (acknowledgements of durable state); output
   * queued after held output waits behind it either way.
   */
  send(p: Packet, durable = false): void {
    if (
      this.#held !== undefined || (durable && this.core.gate.dirty)
    ) {
      this.#hold(p, undefined, 0, false);
      return;
    }
    this.#write(p);
  }

  /** `send` for a pre-encoded PUBLISH: its packet id (and DUP) patched in. */
  sendPublish(
    enc: PublishTemplate,
    packetId: number,
    dup: boolean,
    durable = false,
  ): void {
    if (
      this.#held !== undefined || (durable && this.core.gate.dirty)
    ) {
      this.#hold(undefined, enc, packetId, dup);
      return;
    }
    this.#writePublish(enc, packetId, dup);
  }

  #hold(
    packet: Packet | undefined,
    enc: PublishTemplate | undefined,
    packetId: number,
    dup: boolean,
  ): void {
    const gate = this.core.gate;
    const held = this.#held ??= new HeldOutput();
    if (held.hold(gate.generation, packet, enc, packetId, dup)) gate.wait(this);
  }

  /** The commit of generation `gen` is done: writes what it held back. */
  committed(gen: number): void {
    const held = this.#held;
    if (held === undefined) return;
    const ready = held.release(gen);
    if (held.empty) this.#held = undefined;
    for (const h of ready) {
      if (!this.connected) return;
      if (h.packet !== undefined) this.#write(h.packet);
      else this.#writePublish(h.enc!, h.packetId, h.dup);
    }
  }

  /** The commit failed: what was acknowledged may not be durable. */
  commitFailed(): void {
    this.#held = undefined;
    this.shutdown();
  }

  /** Writes a packet now (ahead of held output). */
  #write(p: Packet): void {
    if (this.state === CLOSED) return;
    if (p.type === "puback") this.qos1Unacked--;
    this.core.metrics.packetsSent++;
    const bytes = encodeWithin(p, this.version, this.maxPacketSize);
    if (bytes.length > this.maxPacketSize) {
      // Still too large: never sent [MQTT-3.1.2-24]. A refusing CONNACK
      // is followed by the close anyway; otherwise the connection closes.
      if (this.state === CONNECTED) this.end(undefined, true);
      return;
    }
    this.#push(bytes, -1, 0);
  }

  /** Writes a pre-encoded PUBLISH now. */
  #writePublish(enc: PublishTemplate, packetId: number, dup: boolean): void {
    if (this.state === CLOSED) return;
    this.#sentCount++;
    this.core.metrics.publishBytesSent += enc.payloadBytes;
    const id = dup ? packetId | DUP_FLAG : packetId;
    const aliases = this.aliasOut;
    if (aliases !== undefined && enc.version === 5) {
      const a = aliasedForm(enc, aliases, this.maxPacketSize);
      if (a !== undefined) {
        this.#push(a.bytes, a.idOffset, id);
        return;
      }
    }
    this.#push(enc.bytes, enc.idOffset, id);
  }

  #push(bytes: Uint8Array, off: number, id: number): void {
    const out = this.#out ??= takeQueue();
    const limit = this.core.outputBufferLimit * 4;
    // Behind the write in progress: all queued, or all but the first entry
    // (the next write) when none is; worked out only when over the bound.
    if (
      this.#outBytes > limit &&
      (this.#writing ? out.byteLength : out.byteLength - out.firstByteLength) >
        limit
    ) {
      // A client that never reads but keeps sending (what is queued behind
      // the write in progress keeps growing): it must not grow the broker's
      // memory without bound. One large packet alone never counts: a reader
      // that keeps reading gets any packet up to the Maximum Packet Size.
      logOverflow(this.clientId, out.byteLength, this.core.outputBufferLimit);
      out.clear();
      this.#out = undefined;
      giveQueue(out);
      this.#outBytes = 0;
      this.end(undefined, true, true, undefined, "output buffer overflow");
      return;
    }
    out.push(bytes, off, id);
    this.#outBytes += bytes.length;
    if (!this.#flushScheduled && !this.#writing) {
      this.#flushScheduled = true;
      flushThisTurn(this);
    }
  }

  /** Writes the output queued this turn (see `flushThisTurn`). */
  flushTurn(): void {
    try {
      this.#flush();
    } catch (e) {
      this.#fail(e);
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    const queue = this.#out;
    if (this.#writing || queue === undefined) return;
    const out = queue.take();
    this.#out = undefined;
    giveQueue(queue);
    this.#writing = out;
    this.#writingBytes = out.length;
    this.#writingPublishes = this.#sentCount;
    this.#sentCount = 0;
    writeOut(this.#duplex, out, this.#onWriteDone);
  }

  #writingBytes = 0;
  #writingPublishes = 0;
  /** Write done: undefined or a count (short: the rest next), or the error. */
  #onWriteDone = (e?: unknown): void => {
    if (typeof e === "number" && e < this.#writing!.length) {
      this.#writing = this.#writing!.subarray(e);
      return writeOut(this.#duplex, this.#writing, this.#onWriteDone);
    }
    if (e !== undefined && typeof e !== "number") {
      this.#writing = undefined;
      this.#outBytes = 0;
      if (this.state < CLOSING) {
        logWriteFailed(this.clientId, e);
        this.end(undefined, true, false, undefined, "write failed");
      } else this.#release();
      return;
    }
    const bytes = this.#writingBytes;
    this.#writing = undefined;
    this.#outBytes -= bytes;
    const metrics = this.core.metrics;
    metrics.bytesSent += bytes;
    metrics.messagesSent += this.#writingPublishes;
    metrics.packetsSent += this.#writingPublishes;
    // Room again: queued QoS 1/2 messages go first (they wait for it).
    const session = this.session;
    if (session !== undefined && session.waiting > 0 && this.connected) {
      session.pump();
    }
    if (this.#out !== undefined) {
      this.#flush();
      return;
    }
    if (this.state === CLOSING) this.#finish();
  };

  // ---------------------------------------------------------------- closing

  /** Checks the connect timeout and keep alive; called by the broker's sweep. */
  checkTimeouts(now: number): void {
    checkTimeouts(this, now);
  }

  /** Closes this connection because another took its client id over. */
  takeOver(): void {
    this.end(ReasonCode.SessionTakenOver, true);
  }

  /** Closes it for an administrator: v5 DISCONNECT 0x98, will published. */
  kick(): void {
    this.end(ReasonCode.AdministrativeAction, true);
  }

  /** Closes this connection because the broker is shutting down. */
  shutdown(): void {
    if (this.state === CLOSING) {
      // Its last bytes still go out, but it no longer lingers.
      this.#lingerWanted = false;
      if (this.#lingering) this.#release();
    } else if (this.state === CONNECTING) this.end(undefined, false, true);
    else this.end(ReasonCode.ServerShuttingDown, false);
  }

  /** The one place errors become CONNACK, DISCONNECT or a closed socket. */
  #fail(e: unknown): void {
    if (this.state >= CLOSING) return;
    const closedByPeer = logFailure(this.clientId, e);
    if (e instanceof MqttError) {
      if (this.state === CONNECTING) {
        const refusal = refusalConnack(
          e,
          this.#decoder?.version ?? this.version,
        );
        if (refusal !== undefined) {
          this.version = refusal.version;
          this.send(refusal.packet);
        }
        this.end(undefined, false);
        return;
      }
      this.end(
        e.reasonCode >= 0x80 ? e.reasonCode : ReasonCode.UnspecifiedError,
        true,
        false,
        { reasonString: e.message },
      );
      return;
    }
    const code = closedByPeer || this.state === CONNECTING
      ? undefined
      : ReasonCode.UnspecifiedError;
    this.end(code, true, closedByPeer, undefined, String(e));
  }

  /**
   * Ends the connection: optionally a v5 DISCONNECT with `code` first, the
   * will published when `ungraceful`, then the socket closed once the
   * buffered bytes are written (or at once when `now`). No packet is
   * handled after this. When bytes were still to be written (a DISCONNECT,
   * a refusing CONNACK), the close lingers (`#finish`), except when the
   * broker shuts down. `why` is for the log line.
   */
  end(
    code: number | undefined,
    ungraceful: boolean,
    now = false,
    props?: Properties,
    why?: string,
  ): void {
    if (this.state >= CLOSING) return;
    const wasConnected = this.state === CONNECTED;
    if (code !== undefined && wasConnected && this.version === 5) {
      this.#write(disconnectPacket(code, props));
    }
    this.state = CLOSING;
    this.#backlog = undefined;
    this.#unblocked = undefined;
    // The topic strings of the aliases go now, whoever still holds `this`.
    this.aliasOut = this.aliasIn = undefined;
    if (wasConnected) {
      logDisconnected(this, code, ungraceful, props, why);
      this.core.onDisconnected(this, ungraceful);
    } else this.core.onClosedBeforeConnect(this);
    if (now || (!this.#writing && this.#out === undefined)) {
      this.#release();
      return;
    }
    this.#lingerWanted = code !== ReasonCode.ServerShuttingDown;
    this.core.closing.add(this);
    this.#closeTimer = setTimeout(() => this.#release(), CLOSE_FLUSH_MS);
  }

  /**
   * The last bytes are written. Lingering close: the sending side is
   * half-closed (the client reads its last packet, then EOF) and what the
   * client still sends (PUBRELs, more PUBLISHes) is read and dropped until
   * it closes or LINGER_MS pass. Closing at once with unread bytes would
   * make the kernel reset the connection, and a reset can discard the
   * DISCONNECT or CONNACK before the client reads it.
   */
  #finish(): void {
    if (!this.#lingerWanted || this.#eof) {
      this.#release();
      return;
    }
    this.#lingering = true;
    clearTimeout(this.#closeTimer);
    this.#closeTimer = setTimeout(() => this.#release(), LINGER_MS);
    this.#duplex.closeWrite?.();
    if (!this.#readPending) this.#readLoop();
  }

  #release(): void {
    if (this.state === CLOSED) return;
    this.state = CLOSED;
    this.#lingering = false;
    this.core.closing.delete(this);
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    this.#duplex.close();
    this.#closedResolve?.();
  }
}
