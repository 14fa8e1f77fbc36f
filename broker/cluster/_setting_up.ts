/**
 * `settingUp`: runs a cluster set-up step again while JetStream says it is
 * not ready, or while another node is creating the same stream.
 *
 * Private to the cluster.
 *
 * @module
 */

/** JetStream not ready yet: a NATS cluster forming, a leader being elected. */
const NOT_READY =
  /no suitable peers|temporarily unavailable|timeout|insufficient resources|leader/i;

/**
 * Two nodes started together both find a stream missing and both add it:
 * the server can answer the second with one of these while the first
 * stream is being created. Asked again, the stream exists (the same
 * configuration binds to it). A stream of someone else's that really
 * overlaps Kite's subjects gives the same error every time: it ends the
 * set-up after a few tries, not after the full wait.
 */
const CREATION_RACE =
  /subjects overlap with an existing stream|already in use/i;
const CREATION_RACE_TRIES = 5;

/** How long {@linkcode settingUp} keeps trying, and how often. */
export interface SettingUpTiming {
  /** Give up after this long (ms); default 30 s. */
  deadlineMs?: number;
  /** Pause between tries (ms); default 500. */
  pauseMs?: number;
}

/**
 * Runs `step`, again for up to 30 s while JetStream is not ready, and up to
 * 5 times while another node is creating the same stream. Any other error,
 * or one that outlasts that, is thrown.
 */
export async function settingUp<T>(
  step: () => Promise<T>,
  timing: SettingUpTiming = {},
): Promise<T> {
  const deadline = Date.now() + (timing.deadlineMs ?? 30_000);
  const pause = timing.pauseMs ?? 500;
  let races = 0;
  for (;;) {
    try {
      return await step();
    } catch (e) {
      const m = (e as Error).message;
      const race = CREATION_RACE.test(m) && ++races < CREATION_RACE_TRIES;
      if (!(race || NOT_READY.test(m)) || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}
