/**
 * `Reconnector`: the client's reconnect controller (private). It decides
 * whether a lost connection is tried again (enabled, attempts left, an error
 * a retry could fix) and runs the attempts on the `Backoff` schedule; the
 * `Client` does the connecting.
 *
 * @module
 */

import { MqttError } from "../codec/errors.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { Backoff, type ReconnectOptions } from "./reconnect.ts";

/**
 * Reconnect policy and timer of one client.
 *
 * @example
 * ```ts ignore
 * const r = new Reconnector({ initialDelay: 100 });
 * if (r.shouldRetry(error)) {
 *   const { attempt, delay } = r.schedule(() => reconnect());
 * }
 * ```
 */
export class Reconnector {
  /** Whether automatic reconnect is on. */
  readonly enabled: boolean;
  #backoff: Backoff;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** `option` is the client's `reconnect` option. */
  constructor(option: boolean | ReconnectOptions | undefined) {
    this.enabled = option !== false &&
      !(typeof option === "object" && option.enabled === false);
    this.#backoff = new Backoff(typeof option === "object" ? option : {});
  }

  /** True while an attempt is scheduled. */
  get scheduled(): boolean {
    return this.#timer !== undefined;
  }

  /**
   * Whether a connection that ended with `error` is to be tried again:
   * reconnect is on, attempts are left, and `error` is not a refusal that
   * a retry would not fix.
   */
  shouldRetry(error: Error): boolean {
    return this.enabled && !this.#backoff.exhausted &&
      (this.#backoff.options.retryRefusals || !isFatal(error));
  }

  /**
   * Runs `attempt` after the next backoff delay; returns the attempt's
   * number and delay (for the "reconnect" event).
   */
  schedule(attempt: () => void): { attempt: number; delay: number } {
    this.cancel();
    const delay = this.#backoff.next();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      attempt();
    }, delay);
    return { attempt: this.#backoff.attempt, delay };
  }

  /** Cancels a scheduled attempt. */
  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** A connection succeeded: the next delay starts over. */
  reset(): void {
    this.#backoff.reset();
  }
}

/** Refusals that a retry would not fix. */
function isFatal(e: Error): boolean {
  if (!(e instanceof MqttError)) return false;
  return e.reasonCode === ReasonCode.UnsupportedProtocolVersion ||
    e.reasonCode === ReasonCode.ClientIdentifierNotValid ||
    e.reasonCode === ReasonCode.Banned ||
    e.reasonCode === ReasonCode.BadAuthenticationMethod ||
    e.reasonCode === ReasonCode.SessionTakenOver;
}
