/**
 * MQTT topics and filters as NATS subjects, mapped the way nats-server 2.9
 * maps them for its own MQTT clients, so that plain NATS clients see
 * Kite's messages on the subjects they expect and can publish to MQTT
 * subscribers:
 *
 * - `/` separates levels in MQTT and `.` separates tokens in NATS:
 *   `a/b` is `a.b`;
 * - an empty level becomes a `/` token: a leading `/` is `/.` (`/a` is
 *   `/.a`), a trailing one `./` (`a/` is `a./`), and `a//b` is `a./.b`;
 * - `+` is `*` and `#` is `>`; `a/#` also matches its parent level `a`, so
 *   it is two subjects (`a` and `a.>`).
 *
 * Every subject is prefixed with the cluster name (`kite.a.b`), so that
 * clusters can share a NATS. nats-server refuses MQTT topics with `.` or
 * white space; Kite carries them (and topics with a `*` or `>` level, which
 * NATS would read as wildcards) on one fallback subject instead, with the
 * topic in a header: such topics reach Kite nodes only, not plain NATS
 * clients.
 *
 * @module
 */

/** Characters nats-server refuses in an MQTT topic, and NATS in a subject. */
function unsupported(code: number): boolean {
  // "." is the NATS separator; white space and control characters end a
  // NATS protocol token.
  return code === 0x2e || code <= 0x20 || code === 0x7f;
}

/**
 * The subject tokens of an MQTT topic (`a/b` -> `a.b`), without the
 * cluster prefix; undefined when NATS cannot carry it (see the module doc).
 * `wildcards`: `+` and `#` levels of a filter become `*` and `>`.
 *
 * @example
 * ```ts ignore
 * topicToSubject("a//b", false); // "a./.b"
 * topicToSubject("a.b", false); // undefined
 * ```
 */
export function topicToSubject(
  topic: string,
  wildcards: boolean,
): string | undefined {
  const end = topic.length - 1;
  let simple = topic.length > 0 && topic.charCodeAt(0) !== 0x2f &&
    topic.charCodeAt(end) !== 0x2f;
  let levelStart = 0;
  for (let i = 0; i <= end; i++) {
    const c = topic.charCodeAt(i);
    if (unsupported(c)) return undefined;
    if (c === 0x2f) {
      if (topic.charCodeAt(i + 1) === 0x2f) simple = false;
      if (!wildcardLevel(topic, levelStart, i, wildcards)) return undefined;
      levelStart = i + 1;
    }
  }
  if (!wildcardLevel(topic, levelStart, end + 1, wildcards)) return undefined;
  if (simple && !wildcards) return topic.replaceAll("/", ".");
  let out = "";
  for (let i = 0; i <= end; i++) {
    const ch = topic[i]!;
    if (ch === "/") {
      if (i === 0 || out.endsWith(".")) out += "/.";
      else if (i === end || topic[i + 1] === "/") out += "./";
      else out += ".";
    } else if (wildcards && ch === "+" && isLevel(topic, i)) out += "*";
    else if (wildcards && ch === "#" && isLevel(topic, i)) out += ">";
    else out += ch;
  }
  if (out.endsWith(".")) out += "/";
  return out;
}

/** Whether the character at `i` is a whole level. */
function isLevel(topic: string, i: number): boolean {
  return (i === 0 || topic[i - 1] === "/") &&
    (i === topic.length - 1 || topic[i + 1] === "/");
}

/**
 * False when the level `topic[from..to)` would be a NATS wildcard token it
 * must not be: `*` or `>` (in a topic, or literally in a filter), or `+`
 * and `#` in a topic name.
 */
function wildcardLevel(
  topic: string,
  from: number,
  to: number,
  wildcards: boolean,
): boolean {
  if (to - from !== 1) return true;
  const c = topic[from];
  if (c === "*" || c === ">") return false;
  if (!wildcards && (c === "+" || c === "#")) return false;
  return true;
}

/**
 * The subjects (without prefix) a node subscribes to for an MQTT filter:
 * one, or two for `a/#` (`a` and `a.>`, since `#` also matches its parent
 * level). Empty when NATS cannot carry it: such a filter can only match
 * topics that travel on the fallback subject.
 *
 * @example
 * ```ts ignore
 * filterToSubjects("a/+/#"); // ["a.*", "a.*.>"]
 * ```
 */
export function filterToSubjects(filter: string): string[] {
  const subject = topicToSubject(filter, true);
  if (subject === undefined) return [];
  if (filter === "#" || !filter.endsWith("/#")) return [subject];
  const parent = topicToSubject(filter.slice(0, -2), true);
  return parent === undefined || parent === "" ? [subject] : [
    parent,
    subject,
  ];
}

/**
 * The MQTT topic of a NATS subject (without prefix), as nats-server 2.9
 * converts it for its MQTT subscribers: `.` is `/`, and the `/` tokens of
 * empty levels fold back (`a./.b` is `a//b`; `a//b`, which no MQTT topic
 * maps to, is `a//b` too).
 *
 * @example
 * ```ts ignore
 * subjectToTopic("/.a"); // "/a"
 * ```
 */
export function subjectToTopic(subject: string): string {
  if (!subject.includes("/")) return subject.replaceAll(".", "/");
  const end = subject.length - 1;
  let out = "";
  for (let i = 0; i <= end; i++) {
    const ch = subject[i]!;
    if (ch === "/") {
      if (!(i === 0 && i < end && subject[i + 1] === ".")) out += "/";
    } else if (ch === ".") {
      out += "/";
      if (i < end && subject[i + 1] === "/") i++;
    } else out += ch;
  }
  return out;
}

/**
 * A bounded cache of topic -> subject: a publisher usually repeats its
 * topics, and the mapping allocates.
 */
export class SubjectCache {
  #map = new Map<string, string | null>();
  readonly #prefix: string;
  readonly #max: number;

  /** Subjects start with `prefix` and a dot; at most `max` remembered. */
  constructor(prefix: string, max = 4096) {
    this.#prefix = prefix + ".";
    this.#max = max;
  }

  /** The full subject of `topic`, or null when it takes the fallback. */
  get(topic: string): string | null {
    let s = this.#map.get(topic);
    if (s !== undefined) return s;
    const tokens = topicToSubject(topic, false);
    s = tokens === undefined ? null : this.#prefix + tokens;
    if (this.#map.size >= this.#max) this.#map.clear();
    this.#map.set(topic, s);
    return s;
  }
}

/**
 * Whether the MQTT filter `filter` matches the topic name `topic`
 * (`+`, `#` with its parent level, and no leading wildcard for `$`
 * topics [MQTT-4.7.2-1]).
 */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  if (topic.startsWith("$") && (f[0] === "+" || f[0] === "#")) return false;
  for (let i = 0; i < f.length; i++) {
    const level = f[i]!;
    if (level === "#") return true;
    if (i >= t.length) return false;
    if (level !== "+" && level !== t[i]) return false;
  }
  return f.length === t.length;
}
