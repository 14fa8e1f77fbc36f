/**
 * Counting and logging the messages a session drops (private to
 * session.ts): each drop is counted by reason in the broker's metrics, and
 * each episode of drops (until the session's queue empties) is logged once
 * at warning level, with the running count at debug level.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { debugEnabled } from "./_log.ts";
import { type DropCounters, DropReason } from "./metrics.ts";

const log = getLogger(["kite", "broker", "session"]);

/**
 * Counts one dropped message under `reason`; an expired one is not counted
 * in `messagesDropped` (that counts the subscriber's limits only).
 */
export function countDrop(
  stats: DropCounters | undefined,
  reason: DropReason,
): void {
  if (stats === undefined) return;
  if (reason !== DropReason.Expired) stats.messagesDropped++;
  if (stats.dropped !== undefined) stats.dropped[reason]!++;
}

/**
 * Logs a drop of `session` (its `dropped` already counts it): at warning
 * level for the first of an episode (`first`), else at debug level
 * (guarded: LogTape builds the record before its level check, and a slow
 * subscriber drops many messages a second).
 */
export function logDrop(
  session: { readonly clientId: string; readonly dropped: number },
  why: string,
  topic: string,
  first: boolean,
): void {
  const { clientId, dropped } = session;
  if (first) {
    log.warn(
      "Session {clientId}: {why}, dropping messages (oldest QoS 0 first, then oldest); first dropped topic {topic}",
      { clientId, why, topic },
    );
  } else if (debugEnabled()) {
    log.debug("Session {clientId}: dropped {dropped} messages so far", {
      clientId,
      dropped,
    });
  }
}
