/**
 * Small-map merges (both maps within mergeTuning.smallRows rows) find losers and winners by direct lookups; the
 * kernel path finds them through dot lists. Both must give the same state, return value, change events and
 * pending delta, for full merges, deltas, scoped (anti-entropy) merges and nested maps, on seeded random
 * histories with concurrent writes and deletes.
 */
import { describe, expect, it } from 'vitest';
import { ORMap, mergeTuning } from '../../src/crdt/or-map.js';
import { HLC } from '../../src/clock/hlc.js';
import { SEED, makeRng, runs, type Rng } from './laws.js';

const KEYS = ['a', 'b', 'c', 'd', 'e', 'f'];

function edit(rng: Rng, m: ORMap<unknown>): void {
  const k = rng.pick(KEYS);
  const x = rng.int(10);
  if (x < 5) m.setLWW(k, rng.bool(0.5) ? rng.int(5) : { v: rng.int(3) });
  else if (x < 7) m.delete(k);
  else if (x < 9) m.map(`n${k}`).setLWW(rng.pick(KEYS), rng.int(4));
  else m.counter(`c${k}`).increment(1 + rng.int(3));
}

function withSmallRows<T>(n: number, f: () => T): T {
  const prev = mergeTuning.smallRows;
  mergeTuning.smallRows = n;
  try {
    return f();
  } finally {
    mergeTuning.smallRows = prev;
  }
}

/** Merge `src` into a clone of `dst` on one path; everything observable about it. */
function mergeOn(path: 'small' | 'kernel', dst: ORMap<unknown>, src: () => ORMap<unknown>, scoped: boolean) {
  return withSmallRows(path === 'small' ? 1 << 30 : -1, () => {
    const d = dst.clone();
    const events: string[][] = [];
    d.onChange((keys) => events.push(keys));
    const s = src();
    const changed = scoped ? d.mergeScoped(s) : d.merge(s);
    const delta = d.takeDelta();
    return { changed, events, state: Buffer.from(d.encode()).toString('hex'), delta: delta && Buffer.from(delta.encode()).toString('hex') };
  });
}

describe('ORMap small-map merge path', () => {
  it('equals the kernel path: full states, deltas, scoped answers, nested maps (seeded random histories)', () => {
    const n = runs(300, 5_000);
    for (let k = 0; k < n; k++) {
      const seed = (SEED + k * 7_919) >>> 0;
      const rng = makeRng(seed);
      const reps = ['r1', 'r2', 'r3'].map((id) => new ORMap<unknown>(id, { clock: new HLC({ now: () => 1_000 + rng.int(3) }) }));
      const deltas: ORMap<unknown>[] = [];
      for (let step = 0; step < 4 + rng.int(20); step++) {
        const r = rng.pick(reps);
        edit(rng, r);
        if (rng.bool(0.3)) {
          const d = r.takeDelta();
          if (d) deltas.push(d);
        }
        if (rng.bool(0.2)) {
          const o = rng.pick(reps);
          if (o !== r) o.merge(r.clone());
        }
      }
      const [x, y] = rng.shuffle([...reps]);
      const sources: [string, () => ORMap<unknown>, boolean][] = [
        ['full', () => y.clone(), false],
        ['scoped', () => y.deltaSince(x.contextBytes()), true],
      ];
      if (deltas.length > 0) {
        const d = rng.pick(deltas);
        sources.push(['delta', () => d.clone(), false]);
      }
      for (const [what, src, scoped] of sources) {
        const a = mergeOn('small', x, src, scoped);
        const b = mergeOn('kernel', x, src, scoped);
        expect(a, `seed ${seed} ${what}`).toEqual(b);
      }
    }
  });

  it('a dot held under another key (hostile) goes on both sides, as on the kernel path', () => {
    // r1 writes k1 (dot r1:1); a hostile state holds the same dot under k2
    const a = new ORMap<unknown>('r1');
    a.setLWW('k1', 1);
    const b = ORMap.decode<unknown>(a.encode(), 'x');
    const forged = new ORMap<unknown>('r1');
    forged.setLWW('k2', 2);
    const results = (['small', 'kernel'] as const).map((p) => mergeOn(p, b, () => forged.clone(), false));
    expect(results[0]).toEqual(results[1]);
  });
});
