/**
 * ORMap and ORSet merges find the rows (elements) a small delta's context retires without scanning the whole
 * state: they count the dots both contexts hold, subtract the rows of the delta's keys, and scan only while some
 * are still missing (see ORMap.mergeWith, ORSet.merge). These cases aim at that count on a map much bigger than the deltas: overwrites, deletes (whose
 * rows only the scan can find), concurrent writes, stale and duplicated deltas, in seeded random orders (SEED
 * replays, LONG raises the runs). The reference is the same deltas merged the other way round (the scan then runs
 * over the delta) and the full states merged, which must all give the same bytes.
 */
import { describe, expect, it } from 'vitest';
import { HLC } from '../../src/clock/hlc.js';
import { ORMap } from '../../src/crdt/or-map.js';
import { ORSet } from '../../src/crdt/or-set.js';
import { DecodeError } from '../../src/errors.js';
import { makeRng, runs, SEED, type Rng } from './laws.js';

const same = (x: { encode(): Uint8Array }, y: { encode(): Uint8Array }): boolean => Buffer.from(x.encode()).equals(Buffer.from(y.encode()));

interface Replica<T> {
  merge(o: T): unknown;
  clone(): T;
  takeDelta(): T | null;
  encode(): Uint8Array;
}

/**
 * Writers that share a big state make small changes (`change` on one writer), each taken as a delta, sometimes
 * after hearing from another writer; then the deltas, shuffled with duplicates, go into a copy of the shared
 * state, which must equal that state merged with the writers' full states, and along the way each delta merged
 * with the receiver must equal the receiver merged with the delta.
 */
function smallDeltas<T extends Replica<T>>(rng: Rng, label: string, writers: T[], change: (w: T) => void): void {
  for (const w of writers) for (const o of writers) if (o !== w) w.merge(o);
  for (const w of writers) w.takeDelta();
  const start = writers[0].clone();
  const deltas: T[] = [];
  for (let i = 0; i < 80; i++) {
    const w = rng.pick(writers);
    if (rng.int(8) === 0) w.merge(rng.pick(writers));
    w.takeDelta();
    for (let j = 1 + rng.int(3); j > 0; j--) change(w);
    const d = w.takeDelta();
    if (d) deltas.push(d);
  }
  const full = start.clone();
  for (const w of writers) full.merge(w);
  // forward: into the big state, shuffled, with duplicates (stale once a later delta landed)
  const order = rng.shuffle([...deltas, ...deltas.filter(() => rng.bool(0.3))]);
  const fwd = start.clone();
  for (const d of order) fwd.merge(d);
  expect(same(fwd, full), `${label}: deltas into the big state vs the full states`).toBe(true);
  // reverse: the scan then runs over the delta
  const rcv = start.clone();
  for (const d of order.slice(0, 40)) {
    const rev = d.clone();
    rev.merge(rcv);
    rcv.merge(d);
    expect(same(rev, rcv), `${label}: reverse merge`).toBe(true);
  }
}

describe('ORMap merge of small deltas into a big map', () => {
  it('overwrites, deletes, concurrent, stale and duplicated deltas: same state as the reverse merges and the full merge', () => {
    const n = runs(6, 120);
    for (let run = 0; run < n; run++) {
      const seed = SEED + 0x5ca0 + run;
      const label = `seed ${seed} (replay with SEED=${seed - 0x5ca0 - run})`;
      const rng = makeRng(seed);
      const clock = new HLC({ now: () => 1_700_000_000_000 });
      const writers = ['a', 'b', 'c'].map((id) => new ORMap(id, { clock }));
      const keys = Array.from({ length: 300 + rng.int(300) }, (_, i) => `k${i}`);
      for (const k of keys) rng.pick(writers).setLWW(k, rng.int(100));
      smallDeltas(rng, label, writers, (w) => {
        const k = rng.pick(keys);
        if (rng.int(3) === 0) w.delete(k);
        else w.setLWW(k, rng.int(1000));
      });
    }
  });

  it('a delete-only delta removes its key from a big map; merging it again, or an older write of that key, changes nothing', () => {
    const clock = new HLC({ now: () => 1_700_000_000_000 });
    const a = new ORMap('a', { clock });
    for (let i = 0; i < 5000; i++) a.setLWW(`vm-${i}`, { i });
    const b = ORMap.decode(a.encode(), 'b');
    a.takeDelta();
    // the deleted row is in no key of the delta: only the scan finds it
    a.delete('vm-100');
    const del1 = a.takeDelta()!;
    expect(del1.size).toBe(0);
    expect(b.merge(del1)).toBe(true);
    expect(b.has('vm-100')).toBe(false);
    a.setLWW('vm-2500', { i: -1 });
    const older = a.takeDelta()!;
    a.delete('vm-2500');
    const del2 = a.takeDelta()!;
    b.merge(older);
    expect(b.get('vm-2500')).toEqual({ i: -1 });
    b.merge(del2);
    expect(b.has('vm-2500')).toBe(false);
    expect(b.size).toBe(4998);
    expect(b.merge(del2)).toBe(false);
    expect(b.merge(older)).toBe(false); // stale: the delete observed it
    expect(b.merge(del1)).toBe(false);
    expect(b.has('vm-2500')).toBe(false);
    expect(same(b, a)).toBe(true);
  });
});

describe('ORMap decode', () => {
  it('rejects two rows that share a dot (a dot names one write of one key)', () => {
    const m = new ORMap('r0', { clock: new HLC({ now: () => 1_700_000_000_000 }) });
    m.setLWW('a', 1);
    m.setLWW('b', 2);
    const bytes = m.encode();
    // columns after the keys: dot counts (1, 1), replica*8+kind (0, 0), counters (1, 2)
    const at = Buffer.from(bytes).indexOf(Buffer.from([1, 1, 0, 0, 1, 2]));
    expect(at).toBeGreaterThan(0);
    expect(ORMap.decode(bytes).get('b')).toBe(2);
    const bad = bytes.slice();
    bad[at + 5] = 1; // 'b' now claims the dot of 'a'
    expect(() => ORMap.decode(bad)).toThrow(DecodeError);
    expect(() => ORMap.decode(bad)).toThrow(/share a dot/);
  });
});

describe('ORSet merge of small deltas into a big set', () => {
  it('adds, removes, concurrent, stale and duplicated deltas: same state as the reverse merges and the full merge', () => {
    const n = runs(6, 120);
    for (let run = 0; run < n; run++) {
      const seed = SEED + 0x5e70 + run;
      const label = `seed ${seed} (replay with SEED=${seed - 0x5e70 - run})`;
      const rng = makeRng(seed);
      const writers = ['a', 'b', 'c'].map((id) => new ORSet<unknown>(id));
      // strings and non-strings (the set keeps them in two tables)
      const elems: unknown[] = Array.from({ length: 300 + rng.int(300) }, (_, i) => (i % 5 === 0 ? i : `e${i}`));
      for (const e of elems) rng.pick(writers).add(e);
      smallDeltas(rng, label, writers, (w) => {
        const e = rng.pick(elems);
        if (rng.int(2) === 0) w.remove(e);
        else w.add(e);
      });
    }
  });

  it('a remove-only delta takes its element out of a big decoded set', () => {
    const a = new ORSet<string>('a');
    for (let i = 0; i < 5000; i++) a.add(`x${i}`);
    const b = ORSet.decode<string>(a.encode(), 'b');
    a.takeDelta();
    a.remove('x4321');
    const del = a.takeDelta()!;
    expect(del.size).toBe(0);
    expect(b.merge(del)).toBe(true);
    expect(b.has('x4321')).toBe(false);
    expect(b.size).toBe(4999);
    expect(b.merge(del)).toBe(false);
    expect(same(b, a)).toBe(true);
  });

  it('decode rejects two elements holding the same dot', () => {
    const s = new ORSet<string>('r0');
    s.add('aa');
    s.add('bb');
    const bytes = s.encode();
    expect(ORSet.decode<string>(bytes).has('bb')).toBe(true);
    // each element: its bytes, then one packed dot as (1, replica index, counter)
    const at = Buffer.from(bytes).lastIndexOf(Buffer.from([1, 0, 2]));
    expect(at).toBeGreaterThan(0);
    const bad = bytes.slice();
    bad[at + 2] = 1; // 'bb' now claims the dot of 'aa'
    expect(() => ORSet.decode(bad)).toThrow(DecodeError);
    expect(() => ORSet.decode(bad)).toThrow(/share a dot/);
  });
});
