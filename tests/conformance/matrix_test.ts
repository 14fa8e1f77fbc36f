/**
 * The conformance generator's rules: how a citation finds its version, its
 * test and its side, and what fails the generator. (This directory is not
 * scanned for citations.)
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  buildMatrix,
  scanFile,
  type Statement,
  tally,
  type Version,
} from "./matrix.ts";

const S: Statement[] = [
  { id: "MQTT-1.0.0-1", version: "3.1.1", side: "server", text: "a" },
  { id: "MQTT-1.0.0-1", version: "5.0", side: "server", text: "b" },
  { id: "MQTT-2.0.0-1", version: "3.1.1", side: "both", text: "same" },
  { id: "MQTT-2.0.0-1", version: "5.0", side: "both", text: "same" },
  { id: "MQTT-3.0.0-1", version: "5.0", side: "client", text: "c" },
  {
    id: "MQTT-4.0.0-1",
    version: "5.0",
    side: "server",
    text: "d",
    notApplicable: { server: "not offered" },
  },
];

function ids(): Map<string, Map<Version, string>> {
  const m = new Map<string, Map<Version, string>>();
  for (const s of S) {
    if (!m.has(s.id)) m.set(s.id, new Map());
    m.get(s.id)!.set(s.version, s.text);
  }
  return m;
}

Deno.test("scanFile() resolves versions: marker, test name, v5_ file, only id, same in both, else ambiguous", () => {
  const text = [
    'Deno.test("one v3:[MQTT-1.0.0-1] v5:[MQTT-1.0.0-1]", () => {});',
    'Deno.test("a 3.1.1 test [MQTT-1.0.0-1]", () => {});',
    'Deno.test("a v5 test [MQTT-1.0.0-1]", () => {});',
    'Deno.test("no version [MQTT-3.0.0-1] [MQTT-2.0.0-1] [MQTT-1.0.0-1]", () => {});',
  ].join("\n");
  const got = scanFile("tests/x_test.ts", text, ids()).map((c) =>
    `${c.id} ${c.versions.join("+")} ${c.how}`
  );
  assert.deepEqual(got, [
    "MQTT-1.0.0-1 3.1.1 marker",
    "MQTT-1.0.0-1 5.0 marker",
    "MQTT-1.0.0-1 3.1.1 test name",
    "MQTT-1.0.0-1 5.0 test name",
    "MQTT-3.0.0-1 5.0 only id",
    "MQTT-2.0.0-1 3.1.1+5.0 same in both",
    "MQTT-1.0.0-1  ambiguous",
  ]);
  const v5 = scanFile(
    "tests/v5_x_test.ts",
    'test("t [MQTT-1.0.0-1]", f)',
    ids(),
  );
  assert.deepEqual(v5.map((c) => c.versions), [["5.0"]]);
});

Deno.test("scanFile() gives a citation the test it is in, or the one a heading comment leads", () => {
  const text = [
    "// file header [MQTT-3.0.0-1]",
    'Deno.test("first", () => {',
    "  // inside v5:[MQTT-1.0.0-1]",
    "});",
    "const ROWS = [",
    "  // heading of the rows v5:[MQTT-4.0.0-1]",
    '  { name: "row one", in: [] },',
    "];",
  ].join("\n");
  const got = scanFile("tests/client_x_test.ts", text, ids()).map((c) =>
    `${c.id} ${c.test} ${c.sides.join(",")}`
  );
  assert.deepEqual(got, [
    "MQTT-3.0.0-1 first client",
    "MQTT-1.0.0-1 first client",
    "MQTT-4.0.0-1 row one client",
  ]);
});

Deno.test("buildMatrix() fails on ambiguous and unknown citations, not-applicable statements cited, tested ones not cited", () => {
  const statements: Statement[] = [
    ...S,
    {
      id: "MQTT-5.0.0-1",
      version: "5.0",
      side: "server",
      text: "e",
      tested: ["server"],
    },
  ];
  const text = [
    'Deno.test("x [MQTT-1.0.0-1]", f);',
    'Deno.test("y v5:[MQTT-9.9.9-9]", f);',
    'Deno.test("z v5:[MQTT-4.0.0-1]", f);',
  ].join("\n");
  const m = buildMatrix(statements, scanFile("tests/a_test.ts", text, ids()));
  assert.equal(m.errors.length, 4, m.errors.join("\n"));
  assert.match(m.errors[0]!, /does not say which/);
  assert.match(m.errors[1]!, /not a statement of MQTT 5.0/);
  assert.match(m.errors[2]!, /not applicable for the server but cited/);
  assert.match(m.errors[3]!, /marked tested for the server but no server test/);
});

Deno.test("tally() counts per version and side: tested, not applicable, not yet; a side not bound is left out", () => {
  const text = 'Deno.test("x v5:[MQTT-1.0.0-1] v5:[MQTT-3.0.0-1]", f);';
  const m = buildMatrix(S, scanFile("tests/a_test.ts", text, ids()));
  assert.deepEqual(m.errors, []);
  const t = tally(m.rows).map((x) =>
    `${x.version} ${x.side} ${x.bound} ${x.tested} ${x.notApplicable} ${x.notYet}`
  );
  assert.deepEqual(t, [
    "3.1.1 server 2 0 0 2",
    "3.1.1 client 1 0 0 1",
    "5.0 server 3 1 1 1",
    // The citation is in a broker test file: the client side stays not yet.
    "5.0 client 2 0 0 2",
  ]);
});
