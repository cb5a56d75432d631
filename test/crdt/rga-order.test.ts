/**
 * The RGA list built in one ordering pass (the rgaOrder kernel: decode, clone, takeDelta, a merge bringing
 * many inserts) equals the list built by placing inserts one at a time in any arrival order, on both kernel
 * backends, for interleaved concurrent typing and for hostile records (equal stamps, stale stamps, cycles).
 */
import { describe, expect, it } from 'vitest';
import { RGA, type RgaInsertOp, type RgaOp } from '../../src/crdt/rga.js';
import { encodeValue } from '../../src/codec/value.js';
import { SEED, makeRng, runs, withBackend, type Rng } from './laws.js';

/** A history of 3-5 replicas typing concurrently at random places, syncing now and then; every op in order made. */
function history(rng: Rng): RgaOp[] {
  const reps = Array.from({ length: 3 + rng.int(3) }, (_, i) => new RGA<string>(`r${i}`));
  const ops: RgaOp[] = [];
  const steps = 40 + rng.int(160);
  for (let s = 0; s < steps; s++) {
    const r = rng.pick(reps);
    if (r.length > 0 && rng.bool(0.2)) ops.push(r.delete(rng.int(r.length)));
    else ops.push(r.insert(rng.bool(0.5) ? r.length : rng.int(r.length + 1), String.fromCharCode(97 + rng.int(26))));
    if (rng.bool(0.1)) {
      const o = rng.pick(reps);
      if (o !== r) o.merge(r.clone());
    }
  }
  return ops;
}

/** Hostile inserts mixed in: equal (seq, replica) at one place, stale stamps, absent references, cycles. */
function hostile(rng: Rng, ops: RgaOp[]): RgaOp[] {
  const ins = ops.filter((o): o is RgaInsertOp => o.type === 'insert');
  const bytes = new Uint8Array(encodeValue('!'));
  const out: RgaOp[] = [];
  for (let k = 0; k < 12; k++) {
    const ref = ins.length > 0 && rng.bool(0.8) ? rng.pick(ins) : null;
    const seq = ref === null ? 1 + rng.int(5) : rng.bool(0.3) ? ref.seq : ref.seq + 1 + rng.int(3);
    out.push({ type: 'insert', replica: 'evil', counter: 1000 + k, seq, ref: ref && { replica: ref.replica, counter: ref.counter }, bytes });
  }
  out.push({ type: 'insert', replica: 'evil', counter: 2000, seq: 9, ref: { replica: 'evil', counter: 2001 }, bytes });
  out.push({ type: 'insert', replica: 'evil', counter: 2001, seq: 9, ref: { replica: 'evil', counter: 2000 }, bytes });
  out.push({ type: 'insert', replica: 'evil', counter: 2002, seq: 3, ref: { replica: 'gone', counter: 7 }, bytes });
  return out;
}

function oneByOne(ops: RgaOp[], rng: Rng): RGA<string> {
  const r = new RGA<string>('obs');
  for (const op of rng.shuffle([...ops])) r.apply(op);
  return r;
}

describe('RGA ordering pass', () => {
  it('decode, clone, takeDelta and bulk merges give the list of one-by-one placement, in any arrival order, on both backends', () => {
    const n = runs(60, 1_000);
    for (let k = 0; k < n; k++) {
      const seed = (SEED + k * 104_729) >>> 0;
      const rng = makeRng(seed);
      const base = history(rng);
      const ops = rng.bool(0.5) ? [...base, ...hostile(rng, base)] : base;
      const want = oneByOne(ops, rng);
      const view = want.toArray();
      const other = oneByOne(ops, rng);
      expect(other.toArray(), `seed ${seed}`).toEqual(view);
      for (const name of ['js', 'wasm'] as const) {
        withBackend(name, () => {
          const decoded = RGA.decode<string>(want.encode(), 'd');
          expect(decoded.toArray(), `seed ${seed} ${name} decode`).toEqual(view);
          expect(decoded.length, `seed ${seed}`).toBe(want.length);
          expect(decoded.tombstones, `seed ${seed}`).toBe(want.tombstones);
          expect(want.clone().toArray(), `seed ${seed} ${name} clone`).toEqual(view);
          // a merge bringing everything at once (bulk), and one bringing the rest into a replica holding a part
          const bulk = new RGA<string>('b');
          expect(bulk.merge(decoded)).toBe(true);
          expect(bulk.toArray(), `seed ${seed} ${name} bulk merge`).toEqual(view);
          const part = oneByOne(ops.slice(0, rng.int(ops.length)), rng);
          part.merge(decoded);
          expect(part.toArray(), `seed ${seed} ${name} partial + merge`).toEqual(view);
          expect(part.encode()).toEqual(want.encode());
          // a state missing references (ops out of order): its waiting inserts show once the rest arrives
          const shuffled = rng.shuffle([...ops]);
          const cut = rng.int(ops.length + 1);
          const early = new RGA<string>('e');
          for (const op of shuffled.slice(0, cut)) early.apply(op);
          for (const held of [RGA.decode<string>(early.encode(), 'e2'), early.clone(), (() => {
            const m = new RGA<string>('m');
            m.merge(early);
            return m;
          })()]) {
            for (const op of shuffled.slice(cut)) held.apply(op);
            expect(held.toArray(), `seed ${seed} ${name} held then completed`).toEqual(view);
          }
          // collection after a one-pass build removes what it removes after one-by-one placement (child counts)
          const gRef = oneByOne(ops, rng);
          const removed = gRef.collectGarbage(gRef.versionVector());
          const gDec = RGA.decode<string>(want.encode(), 'g');
          expect(gDec.collectGarbage(gDec.versionVector()), `seed ${seed} ${name} gc`).toBe(removed);
          expect(gDec.encode()).toEqual(gRef.encode());
          expect(gDec.toArray()).toEqual(view);
          // the delta of a replica that took everything in one merge holds it all
          const d = bulk.takeDelta()!;
          expect(d.toArray(), `seed ${seed} ${name} delta`).toEqual(view);
          // edits after a bulk build land where one-by-one placement puts them
          const w2 = want.clone();
          const op = decoded.insert(decoded.length === 0 ? 0 : rng.int(decoded.length + 1), 'Z');
          w2.apply(op);
          expect(decoded.toArray(), `seed ${seed} ${name} edit after decode`).toEqual(w2.toArray());
        });
      }
    }
  });

  it('an element not stamped after its reference goes the same way everywhere once that reference is collected', () => {
    // S (hostile: seq == its reference R's) is never shown; R and S are deleted, then collected: a replica that
    // placed the records one by one and one rebuilt from them (clone, decode, a bulk merge) must end equal
    const bytes = new Uint8Array(encodeValue('v'));
    const ops: RgaOp[] = [
      { type: 'insert', replica: 'a', counter: 1, seq: 5, ref: null, bytes },
      { type: 'insert', replica: 'evil', counter: 1, seq: 5, ref: { replica: 'a', counter: 1 }, bytes },
      { type: 'delete', replica: 'a', counter: 2, target: { replica: 'a', counter: 1 } },
      { type: 'delete', replica: 'evil', counter: 2, target: { replica: 'evil', counter: 1 } },
    ];
    const one = new RGA<string>('a');
    for (const op of ops) one.apply(op);
    const rebuilt = [one.clone(), RGA.decode<string>(one.encode(), 'a')];
    const big = new RGA<string>('z');
    const bigOps: RgaOp[] = [];
    for (let i = 0; i < 1_100; i++) bigOps.push(big.insert(i, 'x'));
    const bulk = new RGA<string>('a');
    for (const op of ops) bulk.apply(op);
    bulk.merge(big); // a merge bringing over a thousand inserts rebuilds the list
    const oneBig = new RGA<string>('a');
    for (const op of [...ops, ...bigOps]) oneBig.apply(op);
    const removed = [one, ...rebuilt, bulk, oneBig].map((r) => r.collectGarbage(r.versionVector()));
    expect(removed).toEqual([2, 2, 2, 2, 2]);
    for (const r of rebuilt) expect(r.encode()).toEqual(one.encode());
    expect(bulk.encode()).toEqual(oneBig.encode());
    expect(bulk.toArray()).toEqual(oneBig.toArray());
  });

  it('two inserts of one replica with one seq at one place order by counter, whatever the arrival order', () => {
    const bytes = (s: string) => new Uint8Array(encodeValue(s));
    const a: RgaOp = { type: 'insert', replica: 'x', counter: 1, seq: 4, ref: null, bytes: bytes('a') };
    const b: RgaOp = { type: 'insert', replica: 'x', counter: 2, seq: 4, ref: null, bytes: bytes('b') };
    const r1 = new RGA<string>('r1');
    r1.apply(a);
    r1.apply(b);
    const r2 = new RGA<string>('r2');
    r2.apply(b);
    r2.apply(a);
    expect(r1.toArray()).toEqual(['b', 'a']);
    expect(r2.toArray()).toEqual(['b', 'a']);
    expect(RGA.decode<string>(r1.encode()).toArray()).toEqual(['b', 'a']);
  });

  it('a document typed by five replicas at interleaved places decodes in one pass (20,000 elements)', () => {
    // every replica types at its own random places: references interleave, which placing one by one pays
    // for with a search and a splice per element
    const rng = makeRng(SEED);
    const reps = Array.from({ length: 5 }, (_, i) => new RGA<number>(`r${i}`));
    for (let round = 0; round < 4; round++) {
      for (const r of reps) for (let i = 0; i < 1_000; i++) r.insert(rng.int(r.length + 1), i);
      for (const r of reps) for (const o of reps) if (o !== r) r.merge(o.takeDelta() ?? new RGA<number>('none'));
      for (const r of reps) r.takeDelta();
    }
    const bytes = reps[0].encode();
    for (const name of ['js', 'wasm'] as const) {
      withBackend(name, () => {
        const d = RGA.decode<number>(bytes, 'd');
        expect(d.length).toBe(20_000);
        expect(d.toArray()).toEqual(reps[0].toArray());
      });
    }
  });
});
