// broker/_inflight.ts: a session's messages in flight, one in fields and
// more in a Map.

import assert from "node:assert/strict";
import { Inflight } from "../broker/_inflight.ts";
import type { OutgoingMessage } from "../broker/delivery.ts";

const msg = (seq: number) => ({ seq }) as unknown as OutgoingMessage;
const seqs = (f: Inflight) => [...f.map.values()].map((m) => m.seq);

Deno.test("Inflight keeps one message without a Map, and the order of several in one", () => {
  const f = new Inflight();
  assert.equal(f.size, 0);
  assert.equal(f.get(1), undefined);
  assert.equal(f.has(1), false);
  const a = msg(1);
  f.put(7, a);
  assert.equal(f.size, 1);
  assert.equal(f.get(7), a);
  assert.equal(f.get(8), undefined);
  assert.equal(f.has(7), true);
  assert.equal(f.has(8), false);
  // A second one: both in the Map, in the order put.
  f.put(3, msg(2));
  f.put(9, msg(3));
  assert.equal(f.size, 3);
  assert.deepEqual(seqs(f), [1, 2, 3]);
  assert.equal(f.has(3), true);
  // Deleting: unknown ids are refused; the rest keep their order.
  assert.equal(f.delete(4), false);
  assert.equal(f.delete(7), true);
  assert.deepEqual(seqs(f), [2, 3]);
  const seen: number[] = [];
  f.forEach((m) => seen.push(m.seq));
  assert.deepEqual(seen, [2, 3]);
  assert.equal(f.delete(3), true);
  assert.equal(f.delete(9), true);
  assert.equal(f.size, 0);
  // Empty again: the next one goes back to the fields.
  f.put(5, msg(4));
  assert.equal(f.get(5)?.seq, 4);
  assert.equal(f.delete(5), true);
  assert.equal(f.delete(5), false);
  assert.equal(f.size, 0);
});

Deno.test("Inflight.map is live: what it holds and what is put after are the in-flight set", () => {
  const f = new Inflight();
  f.put(1, msg(1));
  const map = f.map; // the one message moves into it
  assert.deepEqual([...map.keys()], [1]);
  f.put(2, msg(2));
  assert.deepEqual([...map.keys()], [1, 2]);
  map.delete(1);
  assert.equal(f.size, 1);
  assert.equal(f.get(1), undefined);
  assert.equal(f.get(2)?.seq, 2);
  f.clear();
  assert.equal(f.size, 0);
  assert.equal(f.get(2), undefined);
  const seen: number[] = [];
  f.forEach((m) => seen.push(m.seq));
  assert.deepEqual(seen, []);
});
