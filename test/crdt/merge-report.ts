/**
 * Exactness check for types whose `merge` reports change precisely (GSet, TwoPSet, ORSet, MVRegister,
 * LWWRegister): `merge` returns true exactly when the canonical encoding changed. The law harness
 * (laws.ts) checks only soundness (false => unchanged, a repeated merge is false); this adds precision.
 *
 * Each run builds a random 3-replica history (laws.ts `randomHistory`), then merges into a copy of every
 * replica: every other replica's state, its encode/decode round trip, an older snapshot, and deltas taken
 * while the other replica keeps working. The fast-check seed (env SEED) replays a failure.
 */
import { expect, it } from 'vitest';
import fc from 'fast-check';
import type { Crdt } from '../../src/crdt/types.js';
import { type LawSpec, SEED, makeRng, randomHistory, runs } from './laws.js';

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Declare the exactness property for one type (call inside a vitest `describe`). */
export function checkMergeReportsExactly<C extends Crdt<C>>(spec: LawSpec<C>, numRuns = runs(300, 5_000)): void {
  it(`${spec.name}: merge returns true exactly when the encoding changed (${numRuns} runs)`, () => {
    let changed = 0;
    let unchanged = 0;
    const check = (target: C, other: C): void => {
      const before = hex(target.encode());
      const got = target.merge(other);
      const after = hex(target.encode());
      expect(typeof got).toBe('boolean');
      expect(got).toBe(before !== after);
      if (got) changed++;
      else unchanged++;
    };
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x7fffffff }), (s) => {
        const rng = makeRng(s);
        const reps = randomHistory(spec, rng, 3);
        const stale = reps.map((r) => r.clone());
        // the others keep working, handing out deltas
        const deltas: C[] = [];
        for (let k = 0; k < 6; k++) {
          const r = rng.pick(reps);
          if (rng.bool(0.7)) spec.randomOp(rng, r);
          else r.merge(rng.pick(reps));
          const d = r.takeDelta();
          if (d !== null) deltas.push(rng.bool(0.5) ? d : spec.decode(d.encode(), 'delta'));
        }
        for (const t of reps) {
          const x = t.clone();
          for (const o of rng.shuffle([...reps, ...stale, ...deltas])) {
            const other = rng.bool(0.3) ? spec.decode(o.encode(), 'wire') : o.clone();
            check(x, other);
          }
          // everything is in x now: a second pass changes nothing
          for (const o of [...reps, ...stale, ...deltas]) check(x, o.clone());
        }
      }),
      { seed: SEED, numRuns },
    );
    // the property saw both outcomes (the check is not vacuous)
    expect(changed).toBeGreaterThan(numRuns);
    expect(unchanged).toBeGreaterThan(numRuns);
  });
}
