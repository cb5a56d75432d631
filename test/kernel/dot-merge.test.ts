/**
 * Dot-set merge against causal contexts (OR-Set / OR-Map / MV-Register core): wasm and js write identical
 * picks, and the surviving dots equal a Set-based model (in both, or in one and unseen by the other context).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsKernel } from '../../src/kernel/js.js';
import type { CausalContextColumns, DotColumns } from '../../src/kernel/types.js';
import { freshWasmKernel, MAX, runProp, sameBytes, word } from './helpers.js';
import { compareDots, dotId, dotsOf, refDotMerge, type Dot } from './reference.js';

const wasm = freshWasmKernel();

/** A small universe so that the two sides share dots often. */
const dot = fc.record({
  key: fc.tuple(fc.constantFrom(0, 7, 0xffffffff), fc.oneof(fc.constantFrom(0, 1, 0xffffffff), word)).map(([hi, lo]) => (BigInt(hi) << 32n) | BigInt(lo)),
  replica: fc.integer({ min: 0, max: 4 }),
  counter: fc.oneof(fc.integer({ min: 1, max: 6 }), fc.constantFrom(MAX - 1, MAX)),
});

function columns(ds: Dot[]): DotColumns {
  const uniq = new Map(ds.map((d) => [dotId(d), d]));
  const sorted = [...uniq.values()].sort(compareDots);
  const n = sorted.length;
  const keys = new Uint32Array(2 * n), replicas = new Uint32Array(n), counters = new Float64Array(n);
  sorted.forEach((d, i) => {
    keys[2 * i] = Number(d.key & 0xffffffffn);
    keys[2 * i + 1] = Number(d.key >> 32n);
    replicas[i] = d.replica;
    counters[i] = d.counter;
  });
  return { keys, replicas, counters, n };
}

const context = fc
  .tuple(
    fc.array(fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constant(MAX)), { maxLength: 6 }),
    fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constant(MAX))), { maxLength: 8 }),
  )
  .map(([vv, cloud]): CausalContextColumns => {
    const u = [...new Map(cloud.map(([r, c]) => [`${r}/${c}`, [r, c] as const])).values()].sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    return {
      vv: Float64Array.from(vv),
      cloudReplicas: Uint32Array.from(u.map((x) => x[0])),
      cloudCounters: Float64Array.from(u.map((x) => x[1])),
      cloudN: u.length,
    };
  });

const side = fc.tuple(fc.array(dot, { maxLength: 14 }), context);

describe('kernel/dotMerge', () => {
  it('wasm == js == Set model', () => {
    runProp([side, side, fc.array(dot, { maxLength: 6 })], ([ad, actx], [bd, bctx], shared) => {
      const a = columns([...ad, ...shared]);
      const b = columns([...bd, ...shared]);
      const cap = a.n + b.n;
      const oj = new Int32Array(cap + 2).fill(-99), ow = new Int32Array(cap + 2).fill(-99);
      const kj = jsKernel.dotMerge(a, actx, b, bctx, oj);
      const kw = wasm.dotMerge(a, actx, b, bctx, ow);
      expect(kw).toBe(kj);
      expect(sameBytes(oj, ow)).toBe(true);
      // semantics
      const A = dotsOf(a), B = dotsOf(b);
      const picked = Array.from(ow.subarray(0, kw), (p) => (p >= 0 ? A[p] : B[-p - 1]));
      expect(new Set(picked.map(dotId))).toEqual(refDotMerge(a, actx, b, bctx));
      expect(new Set(picked.map(dotId)).size).toBe(kw); // no dot twice
      for (let i = 1; i < picked.length; i++) expect(compareDots(picked[i - 1], picked[i])).toBeLessThan(0); // sorted
      // a dot in both is reported as A's
      const inA = new Set(A.map(dotId));
      for (const p of ow.subarray(0, kw)) if (p < 0) expect(inA.has(dotId(B[-p - 1]))).toBe(false);
    });
  });

  it('edge cases: empty sides, unseen context, fully seen, bad counts', () => {
    const empty: DotColumns = { keys: new Uint32Array(0), replicas: new Uint32Array(0), counters: new Float64Array(0), n: 0 };
    const noCtx: CausalContextColumns = { vv: new Float64Array(0), cloudReplicas: new Uint32Array(0), cloudCounters: new Float64Array(0), cloudN: 0 };
    const one: DotColumns = { keys: Uint32Array.of(0xffffffff, 0xffffffff), replicas: Uint32Array.of(2), counters: Float64Array.of(MAX), n: 1 };
    const seenAll: CausalContextColumns = { vv: Float64Array.of(0, 0, MAX), cloudReplicas: new Uint32Array(0), cloudCounters: new Float64Array(0), cloudN: 0 };
    const seenCloud: CausalContextColumns = { vv: new Float64Array(0), cloudReplicas: Uint32Array.of(1, 2), cloudCounters: Float64Array.of(3, MAX), cloudN: 2 };
    for (const k of [jsKernel, wasm]) {
      const out = new Int32Array(2);
      expect(k.dotMerge(empty, noCtx, empty, noCtx, out)).toBe(0);
      expect(k.dotMerge(one, noCtx, empty, noCtx, out)).toBe(1); // B never saw it: kept
      expect(out[0]).toBe(0);
      expect(k.dotMerge(one, noCtx, empty, seenAll, out)).toBe(0); // B saw it and dropped it: removed
      expect(k.dotMerge(empty, seenCloud, one, noCtx, out)).toBe(0); // seen through A's cloud
      expect(k.dotMerge(empty, noCtx, one, noCtx, out)).toBe(1);
      expect(out[0]).toBe(-1);
      expect(k.dotMerge(one, seenAll, one, seenAll, out)).toBe(1); // both hold it
      expect(() => k.dotMerge({ ...one, n: 2 }, noCtx, empty, noCtx, out)).toThrow(RangeError);
      expect(() => k.dotMerge(one, noCtx, one, noCtx, new Int32Array(1))).toThrow(RangeError);
      expect(() => k.dotMerge(one, { ...noCtx, cloudN: 1 }, one, noCtx, out)).toThrow(RangeError);
    }
  });
});
