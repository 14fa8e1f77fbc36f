/**
 * Access control lists in the format of Mosquitto's `acl_file`.
 *
 * ```text
 * # Rules before any "user" line apply to anonymous clients (no user name).
 * topic read public/#
 *
 * user alice
 * topic readwrite alice/#
 * topic deny alice/secret
 *
 * # Patterns apply to every client; %u is the user name, %c the client id.
 * pattern write devices/%c/status
 * pattern read users/%u/inbox/#
 * ```
 *
 * - `topic [read|write|readwrite|deny] FILTER`: a rule of the current user
 *   (the anonymous section before any `user` line). Without an access word
 *   the rule is `readwrite`. The filter is the rest of the line, so it may
 *   contain spaces.
 * - `user NAME`: the following `topic` lines belong to NAME. A user may have
 *   several sections; they add up.
 * - `pattern [read|write|readwrite|deny] FILTER`: a rule for every client,
 *   wherever it appears, with `%u` and `%c` replaced. A pattern that uses
 *   `%u` does not apply to a client without a user name, and a pattern does
 *   not apply to a client whose substituted user name or client id contains
 *   `+`, `#` or `/` (a client could otherwise widen its own rule; Mosquitto
 *   refuses `+` and `#`, Kite refuses `/` too).
 * - `#` starts a comment line; blank lines are ignored.
 *
 * Decisions:
 * - **Publish** (`canWrite`) and **delivery** (`canRead`) of a topic: refused
 *   when a `deny` rule of the client matches the topic; otherwise allowed
 *   when a rule with that access matches. No matching rule: refused. (Mosquitto
 *   checks the user's rules before the patterns and stops at the first one
 *   that allows, so there a pattern `deny` does not override a user's allow;
 *   in Kite any matching `deny` wins.) As in
 *   MQTT matching, rules starting with a wildcard never match `$` topics
 *   [MQTT-4.7.2-1], so `$SYS/#` must be granted explicitly.
 * - **Subscribe**: as in Mosquitto 2, `fileAuth` (auth.ts) accepts every
 *   valid SUBSCRIBE filter and checks each delivered message with
 *   `canRead` instead (the broker's `authorizeRead` hook), so a filter wider
 *   than the user's read rights (`#` for a user who may read
 *   `sensors/+/temp`) delivers only what the rules allow, and a reload
 *   applies to existing subscriptions at once. `canSubscribe` remains for
 *   callers that want a static answer: a filter is allowed when one `read`
 *   or `readwrite` rule of the client *covers* it (every topic the filter
 *   can match is matched by the rule: `a/#` covers `a/+/c` and `a`, `a/+`
 *   does not cover `a/#`) and no `deny` rule *overlaps* it (matches any
 *   topic the filter matches), i.e. when `canRead` allows every topic the
 *   filter can match. A shared subscription `$share/{group}/{filter}` is
 *   checked by its inner filter.
 *
 * `tests/auth_acl_mosquitto_test.ts` runs one file through Mosquitto 2.0 and
 * through this module and compares the publish and delivery decisions.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  isValidTopicFilter,
  parseSharedSubscription,
  TopicMatcher,
} from "../codec/topic.ts";
import { AuthFileError } from "./password_file.ts";

const logger = getLogger(["kite", "auth"]);

/** Access bits of a rule; `DENY` is the absence of both. */
const READ = 1;
const WRITE = 2;
const DENY = 0;

const ACCESS: Readonly<Record<string, number>> = {
  read: READ,
  write: WRITE,
  readwrite: READ | WRITE,
  deny: DENY,
};

/** One rule as compiled: a filter and its access bits (1 read, 2 write, 0 deny). */
export interface AclRule {
  /** 1 = read, 2 = write, 3 = readwrite, 0 = deny. */
  access: number;
  /** The topic filter, patterns already substituted. */
  filter: string;
}
type Rule = AclRule;

/** A pattern with what it substitutes. */
interface Pattern extends Rule {
  usesUser: boolean;
  usesClient: boolean;
}

/** Cached client rule sets; cleared when full. */
const CACHE_LIMIT = 10_000;

function unsafeForPattern(value: string): boolean {
  return /[+#/]/.test(value);
}

/**
 * Whether filter `rule` covers filter `filter`: every topic name that
 * `filter` matches is matched by `rule` too. Both are valid, non-shared
 * filters.
 */
export function filterCovers(rule: string, filter: string): boolean {
  const r = rule.split("/");
  const f = filter.split("/");
  for (let i = 0;; i++) {
    const rl = r[i];
    const fl = f[i];
    if (rl === "#") {
      // A wildcard first level matches no `$` topic [MQTT-4.7.2-1].
      return !(i === 0 && fl !== undefined && fl.startsWith("$"));
    }
    if (rl === undefined || fl === undefined) {
      return rl === undefined && fl === undefined;
    }
    if (fl === "#") return false; // only "#" covers "#"
    if (rl === "+") {
      if (i === 0 && fl.startsWith("$")) return false;
      continue; // "+" covers "+" and any single level
    }
    if (fl === "+" || rl !== fl) return false;
  }
}

/**
 * Whether filters `a` and `b` overlap: some topic name is matched by both.
 * Both are valid, non-shared filters.
 */
export function filtersOverlap(a: string, b: string): boolean {
  const x = a.split("/");
  const y = b.split("/");
  for (let i = 0;; i++) {
    const p = x[i];
    const q = y[i];
    if (p === "#" || q === "#") {
      const other = p === "#" ? q : p;
      // "#" first cannot meet a literal `$` first level [MQTT-4.7.2-1].
      return !(i === 0 && other !== undefined && other.startsWith("$"));
    }
    if (p === undefined || q === undefined) {
      return p === undefined && q === undefined;
    }
    if (p === "+" || q === "+") {
      const other = p === "+" ? q : p;
      if (i === 0 && other.startsWith("$")) return false;
      continue;
    }
    if (p !== q) return false;
  }
}

/**
 * The rules of an ACL that apply to one client (its user's rules, or the
 * anonymous ones, plus the substituted patterns), compiled for matching.
 * Get one with {@linkcode Acl.forClient} and keep it for the connection.
 *
 * @example
 * ```ts
 * import { Acl } from "./acl.ts";
 * const rules = Acl.parse("pattern readwrite devices/%c/#").forClient("d1");
 * rules.canWrite("devices/d1/temp"); // true
 * rules.canSubscribe("devices/d2/#"); // false
 * ```
 */
export class AclClient {
  readonly #rules: readonly Rule[];
  readonly #matcher = new TopicMatcher<number>();

  /** Compiles `rules`; use {@linkcode Acl.forClient} instead. */
  constructor(rules: readonly AclRule[]) {
    this.#rules = rules;
    rules.forEach((r, i) => this.#matcher.set(r.filter, String(i), r.access));
  }

  /** Whether the client may receive messages published to `topic`. */
  canRead(topic: string): boolean {
    return this.#check(topic, READ);
  }

  /** Whether the client may publish to `topic`. */
  canWrite(topic: string): boolean {
    return this.#check(topic, WRITE);
  }

  /**
   * Whether the client may subscribe to `filter` (see the module doc: some
   * read rule covers it and no deny rule overlaps it). `$share/{group}/`
   * filters are checked by their inner filter; an invalid filter is refused.
   */
  canSubscribe(filter: string): boolean {
    let inner = filter;
    try {
      inner = parseSharedSubscription(filter)?.filter ?? filter;
    } catch {
      return false;
    }
    if (!isValidTopicFilter(inner)) return false;
    let covered = false;
    for (const rule of this.#rules) {
      if (rule.access === DENY) {
        if (filtersOverlap(rule.filter, inner)) return false;
      } else if (!covered && (rule.access & READ) !== 0) {
        covered = filterCovers(rule.filter, inner);
      }
    }
    return covered;
  }

  #check(topic: string, need: number): boolean {
    let granted = 0;
    let denied = false;
    this.#matcher.match(topic, (access) => {
      if (access === DENY) denied = true;
      else granted |= access;
    });
    return !denied && (granted & need) !== 0;
  }
}

/**
 * A parsed ACL file. Checks are synchronous and cheap: the rules of each
 * (client id, user name) pair are compiled into a `TopicMatcher` once and
 * cached.
 *
 * @example
 * ```ts
 * import { Acl } from "./acl.ts";
 * const acl = Acl.parse([
 *   "topic read public/#",
 *   "user alice",
 *   "topic readwrite alice/#",
 *   "pattern write devices/%c/status",
 * ].join("\n"));
 * acl.canWrite("dev1", "alice", "alice/notes"); // true
 * acl.canWrite("dev1", "alice", "devices/dev1/status"); // true
 * acl.canRead("dev2", undefined, "public/news"); // true (anonymous)
 * acl.canSubscribe("dev1", "alice", "alice/+/x"); // true
 * acl.canSubscribe("dev1", "alice", "#"); // false
 * ```
 */
export class Acl {
  readonly #anonymous: Rule[] = [];
  readonly #users = new Map<string, Rule[]>();
  readonly #patterns: Pattern[] = [];
  readonly #cache = new Map<string, AclClient>();
  /** Whether some pattern uses `%c` (else rules do not depend on the id). */
  #byClient = false;

  /**
   * Parses the text of an ACL file; `path` only names it in errors. Throws
   * {@linkcode AuthFileError} naming the line of an unknown keyword, an
   * unknown access word or an invalid filter.
   */
  static parse(text: string, path = "<acl file>"): Acl {
    const acl = new Acl();
    let user: string | undefined;
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) return;
      const m = /^(\S+)\s*(.*)$/.exec(line)!;
      const keyword = m[1]!;
      const rest = m[2]!;
      if (keyword === "user") {
        if (rest === "") {
          throw new AuthFileError('"user" needs a user name', path, i + 1);
        }
        user = rest;
        return;
      }
      if (keyword !== "topic" && keyword !== "pattern") {
        throw new AuthFileError(
          `unknown keyword "${keyword}" (expected topic, pattern or user)`,
          path,
          i + 1,
        );
      }
      if (rest === "") {
        throw new AuthFileError(`"${keyword}" needs a filter`, path, i + 1);
      }
      const r = /^(\S+)\s+(.*)$/.exec(rest);
      let access = READ | WRITE;
      let filter = rest;
      if (r !== null) {
        const a = ACCESS[r[1]!];
        if (a === undefined) {
          throw new AuthFileError(
            `unknown access "${
              r[1]
            }" (expected read, write, readwrite or deny)`,
            path,
            i + 1,
          );
        }
        access = a;
        filter = r[2]!;
      }
      if (!isValidTopicFilter(filter)) {
        throw new AuthFileError(
          `invalid topic filter "${filter}"`,
          path,
          i + 1,
        );
      }
      if (keyword === "pattern") {
        const usesUser = filter.includes("%u");
        const usesClient = filter.includes("%c");
        if (!usesUser && !usesClient) {
          logger.warn(
            "{path}:{line}: pattern {filter} has no %u or %c; it applies to every client",
            { path, line: i + 1, filter },
          );
        }
        acl.#patterns.push({ access, filter, usesUser, usesClient });
        if (usesClient) acl.#byClient = true;
      } else if (user === undefined) {
        acl.#anonymous.push({ access, filter });
      } else {
        let list = acl.#users.get(user);
        if (list === undefined) acl.#users.set(user, list = []);
        list.push({ access, filter });
      }
    });
    return acl;
  }

  /**
   * Reads and parses an ACL file. Throws {@linkcode AuthFileError} if it
   * cannot be read or has a bad line.
   */
  static async load(path: string): Promise<Acl> {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      throw new AuthFileError(
        `cannot read the ACL file: ${(e as Error).message}`,
        path,
        undefined,
        { cause: e },
      );
    }
    return Acl.parse(text, path);
  }

  /** Whether the client may receive messages published to `topic`. */
  canRead(
    clientId: string,
    username: string | undefined,
    topic: string,
  ): boolean {
    return this.forClient(clientId, username).canRead(topic);
  }

  /** Whether the client may publish to `topic`. */
  canWrite(
    clientId: string,
    username: string | undefined,
    topic: string,
  ): boolean {
    return this.forClient(clientId, username).canWrite(topic);
  }

  /** Whether the client may subscribe to `filter` (see the module doc). */
  canSubscribe(
    clientId: string,
    username: string | undefined,
    filter: string,
  ): boolean {
    return this.forClient(clientId, username).canSubscribe(filter);
  }

  /**
   * The compiled rules of one client (cached here, up to 10,000 clients;
   * a caller that keeps the result per connection avoids the cache).
   */
  forClient(clientId: string, username?: string): AclClient {
    const id = this.#byClient ? clientId : "";
    const key = username === undefined
      ? "\u0000" + id
      : username + "\u0000\u0000" + id;
    let found = this.#cache.get(key);
    if (found === undefined) {
      if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
      found = new AclClient(this.#collect(clientId, username));
      this.#cache.set(key, found);
    }
    return found;
  }

  #collect(clientId: string, username: string | undefined): Rule[] {
    const own = username === undefined
      ? this.#anonymous
      : this.#users.get(username) ?? [];
    const rules: Rule[] = [...own];
    for (const p of this.#patterns) {
      if (
        p.usesUser && (username === undefined || unsafeForPattern(username))
      ) {
        continue;
      }
      if (p.usesClient && unsafeForPattern(clientId)) continue;
      let filter = p.filter;
      if (p.usesUser) filter = filter.replaceAll("%u", username!);
      if (p.usesClient) filter = filter.replaceAll("%c", clientId);
      rules.push({ access: p.access, filter });
    }
    return rules;
  }
}
