/**
 * `deno task conformance`: builds docs/conformance.md (and the conformance
 * lines of README.md) from docs/conformance/statements.json and the
 * `[MQTT-x.y.z-n]` citations in tests/, see ./matrix.ts.
 *
 * - no flag: writes both files;
 * - `--check`: writes nothing, fails when either file differs from what it
 *   would write (part of `deno task check`);
 * - `--not-yet [3.1.1|5.0] [server|client]`: lists what is not yet tested;
 * - `--citations`: lists every citation with its resolved version.
 *
 * It fails (exit 1) when a test cites an id that is not a statement of the
 * version it resolves to, when a citation's version is ambiguous, or when a
 * statement is marked tested (or not applicable) against what the tests
 * say.
 *
 * @module
 */

import {
  buildMatrix,
  type Citation,
  compareStatements,
  readmeBlock,
  renderMarkdown,
  scanFile,
  type Statement,
  tally,
  type Version,
} from "./matrix.ts";

const ROOT = new URL("../../", import.meta.url);
const STATEMENTS = new URL("docs/conformance/statements.json", ROOT);
const OUTPUT = new URL("docs/conformance.md", ROOT);
const README = new URL("README.md", ROOT);
const BEGIN = "<!-- conformance:begin (deno task conformance) -->";
const END = "<!-- conformance:end -->";

async function testFiles(dir: URL, rel: string, out: string[]): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    const path = `${rel}/${e.name}`;
    if (e.isDirectory) {
      if (e.name === "conformance" || e.name === "fixtures") continue;
      await testFiles(new URL(`${e.name}/`, dir), path, out);
    } else if (e.isFile && e.name.endsWith(".ts")) out.push(path);
  }
}

async function main(args: string[]): Promise<number> {
  const statements = (JSON.parse(await Deno.readTextFile(STATEMENTS)) as {
    statements: Statement[];
  }).statements;
  const sorted = [...statements].sort(compareStatements);
  const ids = new Map<string, Map<Version, string>>();
  for (const s of statements) {
    let v = ids.get(s.id);
    if (v === undefined) ids.set(s.id, v = new Map());
    v.set(s.version, s.text);
  }
  const files: string[] = [];
  await testFiles(new URL("tests/", ROOT), "tests", files);
  files.sort();
  const citations: Citation[] = [];
  for (const f of files) {
    const text = await Deno.readTextFile(new URL(f, ROOT));
    citations.push(...scanFile(f, text, ids));
  }
  const matrix = buildMatrix(sorted, citations);

  if (args.includes("--citations")) {
    for (const c of citations) {
      console.log(
        `${c.file}:${c.line}\t${c.id}\t${
          c.versions.join("+") || "?"
        }\t${c.how}\t${c.test}`,
      );
    }
    return 0;
  }
  if (args.includes("--not-yet")) {
    const version = args.find((a) => a === "3.1.1" || a === "5.0");
    const side = args.find((a) => a === "server" || a === "client");
    for (const r of matrix.rows) {
      const s = r.statement;
      if (version !== undefined && s.version !== version) continue;
      for (const sd of ["server", "client"] as const) {
        if (side !== undefined && sd !== side) continue;
        if (r[sd].kind === "not yet") {
          console.log(`${s.version}\t${sd}\t${s.id}\t${s.text}`);
        }
      }
    }
    return 0;
  }

  if (matrix.errors.length > 0) {
    for (const e of matrix.errors) console.error(e);
    console.error(`conformance: ${matrix.errors.length} problem(s)`);
    return 1;
  }
  const markdown = renderMarkdown(matrix) + "\n";
  const readme = await Deno.readTextFile(README);
  const b = readme.indexOf(BEGIN);
  const e = readme.indexOf(END);
  if (b === -1 || e < b) {
    console.error(`README.md: the markers ${BEGIN} ... ${END} are missing`);
    return 1;
  }
  const newReadme = readme.slice(0, b + BEGIN.length) + "\n\n" +
    readmeBlock(matrix) + "\n\n" + readme.slice(e);
  const summary = tally(matrix.rows).map((t) =>
    `${t.version} ${t.side}: ${t.tested} tested, ${t.notApplicable} n/a, ${t.notYet} not yet of ${t.bound}`
  ).join("\n");

  if (args.includes("--check")) {
    let stale = false;
    let current = "";
    try {
      current = await Deno.readTextFile(OUTPUT);
    } catch { /* missing */ }
    if (current !== markdown) {
      console.error(
        "docs/conformance.md is stale: run `deno task conformance`",
      );
      stale = true;
    }
    if (readme !== newReadme) {
      console.error(
        "README.md's conformance lines are stale: run `deno task conformance`",
      );
      stale = true;
    }
    return stale ? 1 : 0;
  }
  await Deno.writeTextFile(OUTPUT, markdown);
  if (readme !== newReadme) await Deno.writeTextFile(README, newReadme);
  console.log(summary);
  return 0;
}

Deno.exit(await main(Deno.args));
