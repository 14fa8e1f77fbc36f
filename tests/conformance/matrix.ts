/**
 * The conformance matrix: the normative statements of MQTT 3.1.1 and 5.0
 * (docs/conformance/statements.json), the citations of them found in the
 * tests, and the markdown table built from both (docs/conformance.md).
 *
 * How a test cites a statement: `[MQTT-x.y.z-n]` in a test's name or in a
 * comment inside it. The two specifications share that format but number
 * their statements differently (3.1.1's `4.7.1-2` is the `#` rule, 5.0's is
 * the `+` rule), so every citation is resolved to one version:
 *
 * 1. a marker right before the bracket: `v3:[MQTT-4.7.1-2]`,
 *    `v5:[MQTT-4.7.1-1]` (a test that checks both versions cites both);
 * 2. else the name of the test it is in: one naming only "v5"/"5.0" is a
 *    5.0 test, one naming only "3.1.1"/"3.1"/"v3"/"v4" a 3.1.1 test;
 * 3. else the file: `v5_*_test.ts` files are 5.0 tests, `v3_*_test.ts`
 *    files 3.1.1 tests;
 * 4. else the id itself, where only one version has it;
 * 5. else both versions, where the statement is the same in both (the
 *    same paraphrase in statements.json).
 *
 * Anything else is ambiguous and an error. The test a citation belongs to
 * is the nearest test registration before it (`Deno.test`, `t.step`,
 * `test(...)` of a suite, `targetTest`, or a table row's `name:`), or the
 * first one after it for a file's leading comment or tables.
 *
 * Which side a citation checks comes from the test file: `client_*`,
 * `sync_client_*` and `cli_*` test Kite's client; `codec_*` and
 * `topic_test.ts` test the codec and topic rules both sides share; every
 * other file tests the broker. A citation counts for the sides its
 * statement binds and its file tests.
 *
 * @module
 */

/** A version of the specification. */
export type Version = "3.1.1" | "5.0";
/** A conformance target. */
export type Side = "server" | "client";

/** One normative statement, as listed in statements.json. */
export interface Statement {
  /** `MQTT-x.y.z-n`. */
  id: string;
  version: Version;
  /** The side the statement binds. */
  side: Side | "both";
  /** A short paraphrase (never the specification's own sentence). */
  text: string;
  /** Why a side does not apply to Kite, per side. */
  notApplicable?: Partial<Record<Side, string>>;
  /** Sides asserted as tested: the generator fails if no test cites them. */
  tested?: Side[];
}

/** One `[MQTT-...]` citation in a test file. */
export interface Citation {
  /** Path relative to the repository, with `/`. */
  file: string;
  line: number;
  /** The test (or table row) it belongs to. */
  test: string;
  /** `MQTT-x.y.z-n`. */
  id: string;
  /**
   * The versions it was resolved to (empty: ambiguous); both only for a
   * statement that is the same in both specifications (rule 5).
   */
  versions: Version[];
  /** How the versions were decided. */
  how:
    | "marker"
    | "test name"
    | "file"
    | "only id"
    | "same in both"
    | "ambiguous";
  /** The sides the test file checks. */
  sides: Side[];
}

const STR = String
  .raw`("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|\`(?:[^\`\\]|\\.)*\`)`;
const SCOPE_RE = new RegExp(
  String
    .raw`(?:\bname:\s*|\b(?:Deno\.test|[\w.]*[sS]tep|\w*[tT]est)\(\s*(?:[\w.]+,\s*)?)` +
    STR,
  "g",
);
const CITE_RE = /(?:\b(v3|v5):)?\[MQTT-(\d+\.\d+\.\d+-\d+)\]/g;

/** The sides a test file checks (see the module doc). */
export function fileSides(file: string): Side[] {
  const base = file.slice(file.lastIndexOf("/") + 1);
  if (/^(client_|sync_client|cli_)/.test(base)) return ["client"];
  if (/^codec_/.test(base) || base === "topic_test.ts") {
    return ["server", "client"];
  }
  return ["server"];
}

/** The version a test name speaks of, if exactly one. */
export function versionOfName(name: string): Version | undefined {
  name = name.replace(/\[MQTT-[\d.-]+\]/g, "");
  const v5 = /\bv5\b|\b5\.0\b|\bMQTT 5\b/i.test(name);
  const v3 = /\b3\.1\.1\b|\bv3\b|\bv4\b|\b3\.1\b|\bMQIsdp\b/i.test(name);
  if (v5 === v3) return undefined;
  return v5 ? "5.0" : "3.1.1";
}

function unquote(s: string): string {
  const body = s.slice(1, -1);
  return body.replace(/\\(.)/g, "$1").replace(/\s+/g, " ").trim();
}

function lineAt(text: string, index: number): number {
  let n = 1;
  for (let i = text.indexOf("\n"); i !== -1 && i < index;) {
    n++;
    i = text.indexOf("\n", i + 1);
  }
  return n;
}

/**
 * True when the citation at `at` is in a comment that only blank lines,
 * comments and openers (`{`, `[`, a call) separate from the test starting
 * at `next`: a heading of that test or group of rows.
 */
function headsScope(text: string, at: number, next: number): boolean {
  const lineStart = text.lastIndexOf("\n", at) + 1;
  if (!/^\s*(\/\/|\*|\/\*)/.test(text.slice(lineStart, at))) return false;
  const eol = text.indexOf("\n", at);
  if (eol === -1 || eol > next) return false;
  const between = text.slice(eol + 1, text.lastIndexOf("\n", next) + 1);
  return between.split("\n").every((l) =>
    /^\s*((\/\/|\*|\/\*).*|[{[(]|)\s*$/.test(l)
  );
}

/**
 * The citations in one test file. `ids` maps an id to its paraphrase per
 * version that has it (rules 4 and 5).
 */
export function scanFile(
  file: string,
  text: string,
  ids: Map<string, Map<Version, string>>,
): Citation[] {
  const scopes: { at: number; name: string }[] = [];
  for (const m of text.matchAll(SCOPE_RE)) {
    scopes.push({ at: m.index!, name: unquote(m[1]!) });
  }
  const sides = fileSides(file);
  const base = file.slice(file.lastIndexOf("/") + 1);
  const out: Citation[] = [];
  for (const m of text.matchAll(CITE_RE)) {
    const at = m.index!;
    let scope: { at: number; name: string } | undefined;
    let next: { at: number; name: string } | undefined;
    for (const s of scopes) {
      if (s.at <= at) scope = s;
      else {
        next = s;
        break;
      }
    }
    if (next !== undefined && headsScope(text, at, next.at)) scope = next;
    scope ??= scopes[0];
    const test = scope?.name ?? "(file)";
    const id = `MQTT-${m[2]}`;
    let versions: Version[] = [];
    let how: Citation["how"] = "ambiguous";
    const named = versionOfName(test);
    const have = ids.get(id);
    if (m[1] !== undefined) {
      versions = [m[1] === "v5" ? "5.0" : "3.1.1"];
      how = "marker";
    } else if (named !== undefined) {
      versions = [named];
      how = "test name";
    } else if (base.startsWith("v5_") || base.startsWith("v3_")) {
      versions = [base.startsWith("v5_") ? "5.0" : "3.1.1"];
      how = "file";
    } else if (have !== undefined && have.size === 1) {
      versions = [...have.keys()];
      how = "only id";
    } else if (
      have !== undefined && have.get("3.1.1") === have.get("5.0")
    ) {
      versions = ["3.1.1", "5.0"];
      how = "same in both";
    }
    out.push({ file, line: lineAt(text, at), test, id, versions, how, sides });
  }
  return out;
}

/** The status of one side of one statement. */
export type Status =
  | { kind: "tested"; tests: string[] }
  | { kind: "n/a"; why: string }
  | { kind: "not yet" }
  | { kind: "not bound" };

/** A row of the matrix. */
export interface Row {
  statement: Statement;
  server: Status;
  client: Status;
  /** Every test citing it (any side), `file: name`. */
  tests: string[];
}

/** What the generator found. */
export interface Matrix {
  rows: Row[];
  /** Problems that fail the generator. */
  errors: string[];
}

/** A test name without its citations (the row says which statement). */
function shortName(test: string): string {
  return test.replace(/\s*(?:v[35]:)?\[MQTT-[\d.-]+\]/g, "").trim();
}

function key(version: Version, id: string): string {
  return `${version} ${id}`;
}

function binds(s: Statement, side: Side): boolean {
  return s.side === "both" || s.side === side;
}

/** Builds the rows and checks the citations against the list. */
export function buildMatrix(
  statements: Statement[],
  citations: Citation[],
): Matrix {
  const errors: string[] = [];
  const byKey = new Map<string, Statement>();
  for (const s of statements) {
    const k = key(s.version, s.id);
    if (byKey.has(k)) errors.push(`statements.json: ${k} listed twice`);
    byKey.set(k, s);
  }
  const cited = new Map<string, Citation[]>();
  for (const c of citations) {
    const where = `${c.file}:${c.line}`;
    if (c.versions.length === 0) {
      errors.push(
        `${where}: [${c.id}] means different things in 3.1.1 and 5.0 and "${c.test}" does not say which: write v3:[${c.id}] or v5:[${c.id}]`,
      );
      continue;
    }
    for (const version of c.versions) {
      const k = key(version, c.id);
      if (!byKey.has(k)) {
        errors.push(
          `${where}: [${c.id}] (by ${c.how}) is not a statement of MQTT ${version}`,
        );
        continue;
      }
      let list = cited.get(k);
      if (list === undefined) cited.set(k, list = []);
      list.push(c);
    }
  }
  const rows: Row[] = [];
  for (const s of statements) {
    const cs = cited.get(key(s.version, s.id)) ?? [];
    const names = (side?: Side) => {
      const seen = new Set<string>();
      for (const c of cs) {
        if (side === undefined || c.sides.includes(side)) {
          seen.add(`${c.file.replace(/^tests\//, "")}: ${shortName(c.test)}`);
        }
      }
      return [...seen];
    };
    const status = (side: Side): Status => {
      if (!binds(s, side)) return { kind: "not bound" };
      const tests = names(side);
      const na = s.notApplicable?.[side];
      if (tests.length > 0) {
        if (na !== undefined) {
          errors.push(
            `${s.version} ${s.id}: marked not applicable for the ${side} but cited by ${
              tests[0]
            }`,
          );
        }
        return { kind: "tested", tests };
      }
      if (s.tested?.includes(side)) {
        errors.push(
          `${s.version} ${s.id}: marked tested for the ${side} but no ${side} test cites it`,
        );
      }
      if (na !== undefined) return { kind: "n/a", why: na };
      return { kind: "not yet" };
    };
    for (const side of ["server", "client"] as const) {
      if (!binds(s, side) && s.notApplicable?.[side] !== undefined) {
        errors.push(
          `${s.version} ${s.id}: not applicable for the ${side}, which it does not bind`,
        );
      }
    }
    rows.push({
      statement: s,
      server: status("server"),
      client: status("client"),
      tests: names(),
    });
  }
  return { rows, errors };
}

/** Counts of one version and side. */
export interface Tally {
  version: Version;
  side: Side;
  bound: number;
  tested: number;
  notApplicable: number;
  notYet: number;
}

/** Counts per version and side. */
export function tally(rows: Row[]): Tally[] {
  const out: Tally[] = [];
  for (const version of ["3.1.1", "5.0"] as const) {
    for (const side of ["server", "client"] as const) {
      const t: Tally = {
        version,
        side,
        bound: 0,
        tested: 0,
        notApplicable: 0,
        notYet: 0,
      };
      for (const r of rows) {
        if (r.statement.version !== version) continue;
        const st = r[side];
        if (st.kind === "not bound") continue;
        t.bound++;
        if (st.kind === "tested") t.tested++;
        else if (st.kind === "n/a") t.notApplicable++;
        else t.notYet++;
      }
      out.push(t);
    }
  }
  return out;
}

/** Tested or not applicable, in whole percent (rounded down). */
export function covered(t: Tally): number {
  return t.bound === 0
    ? 100
    : Math.floor((100 * (t.tested + t.notApplicable)) / t.bound);
}

function cell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/</g, "&lt;");
}

function statusCell(st: Status): string {
  switch (st.kind) {
    case "tested":
      return "tested";
    case "n/a":
      return `n/a: ${cell(st.why)}`;
    case "not yet":
      return "**not yet**";
    case "not bound":
      return "—";
  }
}

const SIDE_NAME: Record<Side, string> = { server: "broker", client: "client" };

/** The summary lines (also written into README.md). */
export function summaryLines(tallies: Tally[]): string[] {
  const lines = [
    "| MQTT  | side   | statements | tested | not applicable | not yet | covered |",
    "| ----- | ------ | ---------: | -----: | -------------: | ------: | ------: |",
  ];
  for (const t of tallies) {
    lines.push(
      `| ${t.version.padEnd(5)} | ${SIDE_NAME[t.side].padEnd(6)} | ${
        String(t.bound).padStart(10)
      } | ${String(t.tested).padStart(6)} | ${
        String(t.notApplicable).padStart(14)
      } | ${String(t.notYet).padStart(7)} | ${`${covered(t)}%`.padStart(7)} |`,
    );
  }
  return lines;
}

/** docs/conformance.md. */
export function renderMarkdown(matrix: Matrix): string {
  const tallies = tally(matrix.rows);
  const out: string[] = [
    "# Conformance matrix",
    "",
    "<!-- Generated by `deno task conformance` from docs/conformance/statements.json",
    "and the citations in tests/. Do not edit: `deno task check` fails when this",
    "file is stale. -->",
    "",
    "Every normative statement of MQTT 3.1.1 (with its errata) and of MQTT 5.0,",
    "the side it binds, and where Kite's broker and Kite's client stand:",
    "",
    "- **tested**: a test cites the statement (the tests are listed);",
    "- **n/a**: the statement concerns something that side of Kite does not do,",
    "  with the reason;",
    "- **not yet**: nothing checks it yet;",
    "- —: the statement does not bind that side.",
    "",
    "The wording is a paraphrase; the OASIS specifications are the reference.",
    "How tests cite statements (and how a citation picks its version and side)",
    "is described in tests/conformance/matrix.ts.",
    "",
    "Covered = tested + not applicable, over the statements that bind the side.",
    "",
    ...summaryLines(tallies),
    "",
  ];
  for (const version of ["3.1.1", "5.0"] as const) {
    out.push(`## MQTT ${version}`, "");
    out.push(
      "| Statement | What it asks | Binds | Broker | Client | Tests |",
      "| --- | --- | --- | --- | --- | --- |",
    );
    for (const r of matrix.rows) {
      const s = r.statement;
      if (s.version !== version) continue;
      out.push(
        `| ${s.id} | ${cell(s.text)} | ${s.side} | ${statusCell(r.server)} | ${
          statusCell(r.client)
        } | ${r.tests.map(cell).join("<br>")} |`,
      );
    }
    out.push("");
  }
  return out.join("\n");
}

/** Greedy word wrap at `width` columns (as `deno fmt` wraps prose). */
function wrap(text: string, width = 80): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines.join("\n");
}

/** The README block between the conformance markers. */
export function readmeBlock(matrix: Matrix): string {
  const t = tally(matrix.rows);
  const pct = (version: Version, side: Side) =>
    covered(t.find((x) => x.version === version && x.side === side)!);
  return wrap(
    `Kite's [conformance matrix](docs/conformance.md) lists every normative ` +
      `statement of MQTT 3.1.1 and 5.0, the side it binds and the tests that ` +
      `check it. Statements tested or not applicable: broker ${
        pct("3.1.1", "server")
      }% (3.1.1) and ${pct("5.0", "server")}% (5.0); client ${
        pct("3.1.1", "client")
      }% (3.1.1) and ${pct("5.0", "client")}% (5.0).`,
  );
}

/** Sorts statements by version, then by their numbers. */
export function compareStatements(a: Statement, b: Statement): number {
  if (a.version !== b.version) return a.version < b.version ? -1 : 1;
  const na = a.id.slice(5).split(/[.-]/).map(Number);
  const nb = b.id.slice(5).split(/[.-]/).map(Number);
  for (let i = 0; i < Math.max(na.length, nb.length); i++) {
    const d = (na[i] ?? 0) - (nb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
