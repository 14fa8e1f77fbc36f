/**
 * Test helper: a strict parser of the Prometheus text exposition format
 * (version 0.0.4, as documented in Prometheus' "Exposition formats"). It
 * throws on anything a Prometheus server would refuse or that the format
 * calls wrong, with the line number:
 *
 * - every line ends with `\n` (the last one too); `# HELP name text` and
 *   `# TYPE name counter|gauge|histogram|summary|untyped` at most once per
 *   family, the TYPE before the family's first sample; other `#` lines are
 *   comments;
 * - metric names `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names
 *   `[a-zA-Z_][a-zA-Z0-9_]*` (not `__`-prefixed), label values in double
 *   quotes with only `\\`, `\"` and `\n` escapes, a label at most once per
 *   sample;
 * - values are Go floats (`1`, `-2.5e-3`, `NaN`, `+Inf`, `-Inf`); an
 *   optional integer timestamp;
 * - a family's samples are one group (not interleaved with another
 *   family's), no series (name + labels) twice;
 * - a histogram has `_bucket` samples with an `le` label, in increasing
 *   `le` order, cumulative (never decreasing), ending with `le="+Inf"`
 *   equal to `_count`, and a `_sum` and a `_count`; a counter is never
 *   negative.
 *
 * ```ts ignore
 * const families = parsePrometheus(await (await fetch(url)).text());
 * families.get("kite_live_connections")!.samples[0]!.value; // 3
 * ```
 *
 * @module
 */

/** One sample line. */
export interface PromSample {
  /** The sample's name (`x_bucket`, `x_sum` for a histogram `x`). */
  name: string;
  labels: Record<string, string>;
  value: number;
  timestamp?: number;
}

/** One metric family. */
export interface PromFamily {
  name: string;
  type: string;
  help?: string;
  samples: PromSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

/** The family a sample name belongs to, given the declared types. */
function familyOf(name: string, types: Map<string, string>): string {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const t = types.get(base);
      if (t === "histogram" || (t === "summary" && suffix !== "_bucket")) {
        return base;
      }
    }
  }
  return name;
}

function parseValue(text: string, where: string): number {
  if (text === "NaN") return NaN;
  if (text === "+Inf" || text === "Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (!FLOAT.test(text)) throw new Error(`${where}: bad value ${text}`);
  return Number(text);
}

/** Parses `{a="x",b="y"}` starting at `s[i] === "{"`; returns labels and end. */
function parseLabels(
  s: string,
  i: number,
  where: string,
): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  i++; // {
  while (true) {
    if (s[i] === "}") return [labels, i + 1];
    let j = i;
    while (j < s.length && s[j] !== "=") j++;
    const name = s.slice(i, j).trim();
    if (!LABEL_NAME.test(name) || name.startsWith("__")) {
      throw new Error(`${where}: bad label name ${JSON.stringify(name)}`);
    }
    if (Object.hasOwn(labels, name)) {
      throw new Error(`${where}: label ${name} twice`);
    }
    if (s[j + 1] !== '"') throw new Error(`${where}: label value not quoted`);
    let k = j + 2;
    let value = "";
    while (true) {
      const c = s[k];
      if (c === undefined) {
        throw new Error(`${where}: unterminated label value`);
      }
      if (c === '"') break;
      if (c === "\\") {
        const e = s[k + 1];
        if (e === "\\") value += "\\";
        else if (e === '"') value += '"';
        else if (e === "n") value += "\n";
        else throw new Error(`${where}: bad escape \\${e} in a label value`);
        k += 2;
        continue;
      }
      if (c === "\n") throw new Error(`${where}: newline in a label value`);
      value += c;
      k++;
    }
    labels[name] = value;
    i = k + 1;
    if (s[i] === ",") i++;
    else if (s[i] !== "}") {
      throw new Error(`${where}: expected , or } after label ${name}`);
    }
  }
}

/** Parses an exposition; throws on any violation (see the module doc). */
export function parsePrometheus(text: string): Map<string, PromFamily> {
  if (text.length > 0 && !text.endsWith("\n")) {
    throw new Error("the exposition does not end with a newline");
  }
  const families = new Map<string, PromFamily>();
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const closed = new Set<string>();
  const series = new Set<string>();
  let current: string | undefined;
  const lines = text.split("\n");
  lines.pop(); // after the final newline
  const family = (name: string): PromFamily => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, type: types.get(name) ?? "untyped", samples: [] };
      families.set(name, f);
    }
    return f;
  };
  lines.forEach((line, n) => {
    const where = `line ${n + 1}`;
    if (line.trim() === "") return;
    if (line.startsWith("#")) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (m === null) return; // a comment
      const [, kind, name, rest = ""] = m;
      if (!METRIC_NAME.test(name!)) {
        throw new Error(`${where}: bad metric name ${name}`);
      }
      if (closed.has(name!)) {
        throw new Error(`${where}: ${kind} of ${name} after its samples`);
      }
      // Another family's samples in progress end here.
      if (current !== undefined && current !== name) {
        closed.add(current);
        current = undefined;
      }
      if (kind === "HELP") {
        if (helps.has(name!)) throw new Error(`${where}: HELP ${name} twice`);
        helps.add(name!);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ""))) {
          throw new Error(`${where}: bad escape in the HELP of ${name}`);
        }
        family(name!).help = rest.replace(/\\n/g, "\n").replace(
          /\\\\/g,
          "\\",
        );
      } else {
        const type = rest.trim();
        if (!TYPES.has(type)) throw new Error(`${where}: bad type ${type}`);
        if (types.has(name!)) throw new Error(`${where}: TYPE ${name} twice`);
        if (families.get(name!)?.samples.length) {
          throw new Error(`${where}: TYPE ${name} after its samples`);
        }
        types.set(name!, type);
        family(name!).type = type;
      }
      return;
    }
    let i = 0;
    while (i < line.length && line[i] !== "{" && line[i] !== " ") i++;
    const name = line.slice(0, i);
    if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad name ${name}`);
    let labels: Record<string, string> = {};
    if (line[i] === "{") [labels, i] = parseLabels(line, i, where);
    const rest = line.slice(i).trim().split(/\s+/);
    if (line[i] !== " " || rest.length < 1 || rest.length > 2) {
      throw new Error(
        `${where}: expected a value (and a timestamp) after ${name}`,
      );
    }
    const sample: PromSample = {
      name,
      labels,
      value: parseValue(rest[0]!, where),
    };
    if (rest[1] !== undefined) {
      if (!/^-?\d+$/.test(rest[1])) throw new Error(`${where}: bad timestamp`);
      sample.timestamp = Number(rest[1]);
    }
    const fname = familyOf(name, types);
    if (closed.has(fname)) {
      throw new Error(`${where}: samples of ${fname} are not one group`);
    }
    if (current !== undefined && current !== fname) closed.add(current);
    current = fname;
    const key = name + JSON.stringify(Object.entries(labels).sort());
    if (series.has(key)) throw new Error(`${where}: series ${key} twice`);
    series.add(key);
    family(fname).samples.push(sample);
  });
  for (const f of families.values()) checkFamily(f);
  return families;
}

function checkFamily(f: PromFamily): void {
  if (f.type === "counter") {
    for (const s of f.samples) {
      if (s.value < 0) throw new Error(`counter ${s.name} is negative`);
    }
  }
  if (f.type !== "histogram") return;
  const buckets = f.samples.filter((s) => s.name === `${f.name}_bucket`);
  const sum = f.samples.filter((s) => s.name === `${f.name}_sum`);
  const count = f.samples.filter((s) => s.name === `${f.name}_count`);
  if (buckets.length === 0 || sum.length !== 1 || count.length !== 1) {
    throw new Error(`histogram ${f.name} needs buckets, one _sum, one _count`);
  }
  let le = -Infinity;
  let last = 0;
  for (const b of buckets) {
    const text = b.labels.le;
    if (text === undefined) throw new Error(`${b.name} without le`);
    const bound = parseValue(text, b.name);
    if (!(bound > le)) {
      throw new Error(`${f.name}: le not increasing at ${text}`);
    }
    if (b.value < last) throw new Error(`${f.name}: buckets not cumulative`);
    le = bound;
    last = b.value;
  }
  if (le !== Infinity) throw new Error(`${f.name}: no le="+Inf" bucket`);
  if (last !== count[0]!.value) {
    throw new Error(`${f.name}: the +Inf bucket is not _count`);
  }
}

/** The value of the one sample of `name` with `labels` (all of them). */
export function sampleValue(
  families: Map<string, PromFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      const keys = Object.keys(labels);
      if (keys.length !== Object.keys(s.labels).length) continue;
      if (keys.every((k) => s.labels[k] === labels[k])) return s.value;
    }
  }
  throw new Error(`no sample ${name}${JSON.stringify(labels)}`);
}
