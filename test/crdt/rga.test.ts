import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CausalBuffer } from '../../src/clock/causal-buffer.js';
import { VectorClock } from '../../src/clock/vector-clock.js';
import { RGA, type RgaOp } from '../../src/crdt/rga.js';
import { encodeValue as encodeValueForTest } from '../../src/codec/value.js';
import { DecodeError, ValidationError } from '../../src/errors.js';
import { SEED, checkLaws, makeRng, mutate, randomValue, runs, type Rng } from './laws.js';

function randomEdit(rng: Rng, r: RGA): RgaOp {
  if (r.length > 0 && rng.bool(0.3)) return r.delete(rng.int(r.length));
  return r.insert(rng.int(r.length + 1), rng.bool(0.7) ? String.fromCharCode(97 + rng.int(26)) : randomValue(rng));
}

describe('crdt/rga', () => {
  checkLaws<RGA>({
    name: 'RGA',
    make: (id) => new RGA(id),
    randomOp: (rng, r) => {
      randomEdit(rng, r);
    },
    decode: (b, id) => RGA.decode(b, id),
    view: (r) => r.toArray(),
  });

  it('inserts, deletes and reads by index', () => {
    const r = new RGA<string>('a');
    r.insert(0, 'b');
    r.insert(0, 'a');
    r.insert(2, 'd');
    r.insert(2, 'c');
    expect(r.toArray()).toEqual(['a', 'b', 'c', 'd']);
    r.delete(1);
    expect(r.toArray()).toEqual(['a', 'c', 'd']);
    expect(r.get(1)).toBe('c');
    expect(r.get(3)).toBeUndefined();
    expect(r.length).toBe(3);
    r.insert(1, 'x');
    expect(r.toArray()).toEqual(['a', 'x', 'c', 'd']);
    expect(() => r.insert(6, 'z')).toThrow(RangeError);
    expect(() => r.insert(-1, 'z')).toThrow(RangeError);
    expect(() => r.delete(4)).toThrow(RangeError);
    expect(r.toArray()).toEqual(['a', 'x', 'c', 'd']);
  });

  it('local insert/delete/get match a plain array model (random, with tombstones and remote edits)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x7fffffff }), (s) => {
        const rng = makeRng(s);
        const r = new RGA<number>('me');
        const other = new RGA<number>('other');
        let model: number[] = [];
        for (let k = 0; k < 200; k++) {
          const roll = rng.float();
          if (roll < 0.45) {
            const i = rng.bool(0.5) && model.length > 0 ? Math.min(model.length, rng.int(3) + (k % model.length)) : rng.int(model.length + 1);
            r.insert(i, k);
            model.splice(i, 0, k);
          } else if (roll < 0.75 && model.length > 0) {
            const i = rng.int(model.length);
            r.delete(i);
            model.splice(i, 1);
          } else if (roll < 0.9 && model.length > 0) {
            const i = rng.int(model.length);
            expect(r.get(i)).toBe(model[i]);
          } else {
            // a remote edit arrives: re-read the model from the merged state
            other.merge(r);
            if (other.length > 0 && rng.bool(0.5)) other.delete(rng.int(other.length));
            else other.insert(rng.int(other.length + 1), -k);
            r.merge(other);
            model = r.toArray();
          }
          expect(r.length).toBe(model.length);
        }
        expect(r.toArray()).toEqual(model);
        for (let i = 0; i < model.length; i++) expect(r.get(i)).toBe(model[i]);
      }),
      { seed: SEED, numRuns: runs(200, 5000) },
    );
  });

  it('concurrent inserts at the same index order the same way everywhere, whatever the delivery order', () => {
    const base = new RGA<string>('base');
    base.insert(0, 'x');
    base.insert(1, 'y');
    const reps = ['r1', 'r2', 'r3', 'r4'].map((id) => {
      const r = new RGA<string>(id);
      r.merge(base);
      return r;
    });
    const ops = reps.map((r, i) => r.insert(1, `c${i}`));
    // every permutation of delivery gives the same list
    const seen = new Set<string>();
    const perms = (xs: number[]): number[][] => (xs.length <= 1 ? [xs] : xs.flatMap((x, i) => perms([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p])));
    for (const p of perms([0, 1, 2, 3])) {
      const r = new RGA<string>('obs');
      r.merge(base);
      for (const i of p) r.apply(ops[i]);
      seen.add(JSON.stringify(r.toArray()));
    }
    expect(seen.size).toBe(1);
    const [only] = [...seen];
    const arr = JSON.parse(only) as string[];
    expect(arr[0]).toBe('x');
    expect(arr[5]).toBe('y');
    // equal seq: the larger replica id goes first
    expect(arr.slice(1, 5)).toEqual(['c3', 'c2', 'c1', 'c0']);
    for (const r of reps) for (const op of ops) r.apply(op);
    for (const r of reps) expect(r.toArray()).toEqual(arr);
  });

  it('among inserts at the same place the higher seq goes first, then the larger replica id', () => {
    const a = new RGA<string>('a');
    const b = new RGA<string>('b');
    a.insert(0, 'a1'); // seq 1
    a.insert(0, 'a2'); // seq 2, also at the start
    const opB = b.insert(0, 'b1'); // seq 1, concurrent, at the start
    a.apply(opB);
    b.merge(a);
    expect(a.toArray()).toEqual(b.toArray());
    expect(a.toArray()).toEqual(['a2', 'b1', 'a1']);
    // a child follows its reference even when a later sibling of the reference exists
    b.insert(2, 'after-b1');
    a.merge(b);
    expect(a.toArray()).toEqual(['a2', 'b1', 'after-b1', 'a1']);
  });

  it('apply is idempotent and holds ops whose reference has not arrived yet', () => {
    const a = new RGA<string>('a');
    const o1 = a.insert(0, 'h');
    const o2 = a.insert(1, 'i');
    const o3 = a.delete(0);
    const b = new RGA<string>('b');
    expect(b.apply(o3)).toBe(true); // delete before its target: held
    expect(b.apply(o2)).toBe(true); // insert before its reference: held
    expect(b.toArray()).toEqual([]);
    expect(b.apply(o1)).toBe(true);
    expect(b.toArray()).toEqual(['i']);
    expect(b.apply(o1)).toBe(false);
    expect(b.apply(o2)).toBe(false);
    expect(b.apply(o3)).toBe(false);
    expect(b.encode()).toEqual(a.encode());
  });

  it('op-based delivery through CausalBuffer equals state merge (random histories)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x7fffffff }), (s) => {
        const rng = makeRng(s);
        const reps = ['a', 'b', 'c'].map((id) => new RGA(id));
        const log: RgaOp[] = [];
        for (let k = 0; k < 30; k++) {
          const i = rng.int(3);
          if (rng.bool(0.2)) {
            // apply a random subset of the log causally to keep replicas interacting
            const buf = new CausalBuffer<RgaOp>({ delivered: reps[i].versionVector() });
            for (const op of rng.shuffle(log.slice())) {
              for (const ev of buf.deliver({ id: `${op.counter}@${op.replica}`, origin: op.replica, deps: RGA.opDeps(op), payload: op })) {
                reps[i].apply(ev.payload);
              }
            }
          } else log.push(randomEdit(rng, reps[i]));
        }
        const viaOps = new RGA('ops');
        const buf = new CausalBuffer<RgaOp>();
        for (const op of rng.shuffle([...log, ...log.filter(() => rng.bool(0.3))])) {
          for (const ev of buf.deliver({ id: `${op.counter}@${op.replica}`, origin: op.replica, deps: RGA.opDeps(op), payload: op })) {
            expect(viaOps.apply(ev.payload)).toBe(true);
          }
        }
        expect(buf.pending).toBe(0);
        const viaState = new RGA('st');
        for (const r of reps) viaState.merge(r);
        expect(viaOps.toArray()).toEqual(viaState.toArray());
        expect(viaOps.encode()).toEqual(viaState.encode());
      }),
      { seed: SEED, numRuns: runs(200, 5000) },
    );
  });

  it('collectGarbage removes stable tombstones, keeps content, and GC/non-GC replicas converge (random)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x7fffffff }), (s) => {
        const rng = makeRng(s);
        const ids = ['a', 'b', 'c', 'd'];
        const reps = ids.map((id) => new RGA(id));
        const reference = new RGA('ref'); // applies every op, never collects
        const edit = (i: number): void => {
          reference.apply(randomEdit(rng, reps[i]));
        };
        const syncAll = (): void => {
          const all = new RGA('tmp');
          for (const r of reps) all.merge(r);
          for (const r of reps) r.merge(all);
        };
        for (let round = 0; round < 3; round++) {
          for (let k = 0; k < 25; k++) {
            const i = rng.int(4);
            if (rng.bool(0.15)) reps[i].merge(rng.pick(reps));
            else edit(i);
          }
          // quiescent point: every op delivered everywhere, so the common clock is causally stable
          syncAll();
          const stable = VectorClock.meet(reps.map((r) => r.versionVector()));
          for (const r of reps) expect(r.versionVector().compare(stable)).toBe('equal');
          const before = reps[0].toArray();
          const tombs = reps[0].tombstones;
          // only some replicas collect now; the others learn the floor by merge
          let collected = 0;
          for (const r of reps) if (rng.bool(0.5)) collected = r.collectGarbage(stable);
          for (const r of reps) {
            expect(r.toArray()).toEqual(before);
            // the collected state still derives the same list when rebuilt from its records
            expect(RGA.decode(r.encode()).toArray()).toEqual(before);
            const joiner = new RGA('joiner');
            joiner.merge(r);
            expect(joiner.toArray()).toEqual(before);
          }
          if (collected > 0) expect(tombs).toBeGreaterThan(0);
          // more concurrent edits, including on GC'd replicas, then convergence
          for (let k = 0; k < 10; k++) edit(rng.int(4));
          for (const r of rng.shuffle(reps.slice())) r.merge(rng.pick(reps));
        }
        syncAll();
        const want = reps[0].encode();
        for (const r of reps) expect(r.encode()).toEqual(want);
        expect(reps[0].toArray()).toEqual(reference.toArray());
        // collected: no tombstone covered by the floor that is a leaf stays
        const final = reps[0];
        final.collectGarbage(final.versionVector());
        expect(final.toArray()).toEqual(reference.toArray());
      }),
      { seed: SEED, numRuns: runs(150, 3000) },
    );
  });

  it('collectGarbage of a fully deleted text removes every tombstone', () => {
    const a = new RGA<string>('a');
    for (const ch of 'hello') a.insert(a.length, ch);
    while (a.length > 0) a.delete(0);
    expect(a.tombstones).toBe(5);
    const b = a.clone();
    expect(a.collectGarbage(new VectorClock())).toBe(0);
    expect(a.collectGarbage(a.versionVector())).toBe(5);
    expect(a.tombstones).toBe(0);
    b.merge(a);
    expect(b.tombstones).toBe(0);
    expect(b.encode()).toEqual(a.encode());
    // a stale copy does not resurrect collected tombstones
    const stale = RGA.decode(RGA.decode(b.encode()).encode());
    a.merge(b);
    expect(a.tombstones).toBe(0);
    a.insert(0, 'x');
    stale.merge(a);
    expect(stale.toArray()).toEqual(['x']);
  });

  it('a replica that comes back from a state whose floor covers its own collected ops never reuses their counters', () => {
    const a = new RGA<string>('a');
    for (const ch of 'abc') a.insert(a.length, ch);
    a.delete(2);
    a.delete(1);
    expect(a.collectGarbage(a.versionVector())).toBe(2); // a's ops 1..5, all collected but the first insert
    // restart: a fresh instance with the same id merges the stored state (as SyncEngine's load does)
    const again = new RGA<string>('a');
    again.merge(RGA.decode(a.encode()));
    const op = again.insert(1, 'z');
    expect(op.counter).toBe(6);
    const peer = RGA.decode(a.encode(), 'p');
    peer.apply(op);
    expect(peer.toArray()).toEqual(['a', 'z']);
  });

  it('seenPrefix counts only gap-free runs of ops (and the floor)', () => {
    const a = new RGA<string>('a');
    const ops = ['x', 'y', 'z'].map((v, i) => a.insert(i, v));
    const b = new RGA<string>('b');
    b.apply(ops[0]);
    b.apply(ops[2]); // ops[1] missing: held
    expect(b.versionVector().get('a')).toBe(3);
    expect(b.seenPrefix().get('a')).toBe(1);
    b.apply(ops[1]);
    expect(b.seenPrefix().get('a')).toBe(3);
  });

  it('collectGarbage caps a stable clock from the future to what the replica has seen', () => {
    const a = new RGA<string>('a');
    a.insert(0, 'x');
    a.delete(0);
    expect(a.collectGarbage(VectorClock.from({ a: 100, b: 100 }))).toBe(1);
    expect(a.gcFloor.entries()).toEqual([['a', 2]]);
    // b's first ops were never seen here: they still merge in
    const b = new RGA<string>('b');
    b.insert(0, 'y');
    a.merge(b);
    expect(a.toArray()).toEqual(['y']);
  });

  it('a deleted element with a live element after it stays until that one goes too', () => {
    const a = new RGA<string>('a');
    a.insert(0, 'p');
    a.insert(1, 'q'); // q refers to p
    a.delete(0);
    expect(a.collectGarbage(a.versionVector())).toBe(0);
    expect(a.toArray()).toEqual(['q']);
    a.delete(0);
    expect(a.collectGarbage(a.versionVector())).toBe(2);
  });

  it('encodeOp/decodeOp round-trip; bad ops are rejected with typed errors', () => {
    const a = new RGA<unknown>('a');
    const ops = [a.insert(0, { k: 1 }), a.insert(1, 'z'), a.delete(0)];
    for (const op of ops) expect(RGA.decodeOp(RGA.encodeOp(op))).toEqual(op);
    const rng = makeRng(SEED);
    const enc = ops.map((op) => RGA.encodeOp(op));
    for (let k = 0; k < 10_000; k++) {
      const m = mutate(rng, rng.pick(enc));
      try {
        const op = RGA.decodeOp(m);
        expect(RGA.decodeOp(RGA.encodeOp(op))).toEqual(op);
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
      }
    }
    const r = new RGA('r');
    expect(() => r.apply({ type: 'insert', replica: 'x', counter: 0, seq: 1, ref: null, bytes: new Uint8Array([1]) })).toThrow(ValidationError);
    expect(() => r.apply({ type: 'nope' } as unknown as RgaOp)).toThrow(ValidationError);
    expect(() => r.apply({ type: 'delete', replica: 'x', counter: 1, target: null } as unknown as RgaOp)).toThrow(ValidationError);
    expect(r.encode()).toEqual(new RGA('q').encode());
  });

  it('hostile reference cycles and self-references are held forever, never hang, and round-trip', () => {
    const bytes = new Uint8Array(encodeValueForTest('v'));
    const self: RgaOp = { type: 'insert', replica: 'x', counter: 1, seq: 5, ref: { replica: 'x', counter: 1 }, bytes };
    const c1: RgaOp = { type: 'insert', replica: 'y', counter: 1, seq: 5, ref: { replica: 'y', counter: 2 }, bytes };
    const c2: RgaOp = { type: 'insert', replica: 'y', counter: 2, seq: 6, ref: { replica: 'y', counter: 1 }, bytes };
    const ok: RgaOp = { type: 'insert', replica: 'z', counter: 1, seq: 1, ref: null, bytes };
    const r = new RGA<string>('r');
    for (const op of [self, c1, c2, ok]) expect(r.apply(op)).toBe(true);
    expect(r.toArray()).toEqual(['v']);
    const back = RGA.decode<string>(r.encode());
    expect(back.toArray()).toEqual(['v']);
    expect(back.encode()).toEqual(r.encode());
    const other = new RGA<string>('o');
    other.insert(0, 'w');
    other.merge(back);
    back.merge(other);
    expect(other.encode()).toEqual(back.encode());
    expect(other.toArray()).toEqual(back.toArray());
  });

  it('an insert whose seq does not exceed its reference is kept but never shown, the same everywhere', () => {
    const a = new RGA<string>('a');
    const o1 = a.insert(0, 'p'); // seq 1
    const bad: RgaOp = { type: 'insert', replica: 'evil', counter: 1, seq: 1, ref: { replica: 'a', counter: 1 }, bytes: o1.bytes };
    const b = new RGA<string>('b');
    b.apply(bad);
    b.apply(o1);
    a.apply(bad);
    expect(a.toArray()).toEqual(['p']);
    expect(b.toArray()).toEqual(['p']);
    expect(a.encode()).toEqual(b.encode());
  });
});

describe('RGA values kept as given', () => {
  it('reads on the writer what every other replica reads (-0, lone surrogates)', () => {
    const a = new RGA<unknown>('a');
    for (const v of [-0, 'a\uD800b', '\uDC00', 'ok', 0, null]) a.insert(a.length, v);
    const back = RGA.decode<unknown>(a.encode(), 'b');
    const x = a.toArray(), y = back.toArray();
    expect(x.length).toBe(y.length);
    for (let i = 0; i < x.length; i++) expect(Object.is(x[i], y[i]), `index ${i}`).toBe(true);
  });
});
