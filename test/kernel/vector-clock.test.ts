/** Vector-clock kernels: wasm and js give byte-identical results, and both match the loop reference. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsKernel } from '../../src/kernel/js.js';
import { ORD_AFTER, ORD_BEFORE, ORD_CONCURRENT, ORD_EQUAL } from '../../src/kernel/types.js';
import { freshWasmKernel, MAX, runProp, sameBytes, slot, slots } from './helpers.js';
import { refCompare, refDominates, refMerge, refMergeMany } from './reference.js';

const wasm = freshWasmKernel();

/** Two clocks that are often related (b derived from a by raising/lowering some slots). */
const clockPair = fc.oneof(
  fc.tuple(slots(), slots()),
  fc.tuple(slots(), fc.array(fc.tuple(fc.nat(), slot)), fc.integer({ min: -3, max: 3 })).map(([a, edits, grow]) => {
    const b = Float64Array.from({ length: Math.max(0, a.length + grow) }, (_, i) => (i < a.length ? a[i] : 0));
    for (const [i, v] of edits) if (b.length) b[i % b.length] = v;
    return [a, b] as [Float64Array, Float64Array];
  }),
  slots(60).map((a) => [a, a.slice()] as [Float64Array, Float64Array]),
);

describe('kernel/vector clocks', () => {
  it('vcCompare: wasm == js == reference', () => {
    runProp([clockPair], ([a, b]) => {
      const r = refCompare(a, b);
      expect(jsKernel.vcCompare(a, b)).toBe(r);
      expect(wasm.vcCompare(a, b)).toBe(r);
      // antisymmetry of the order
      const back = ([ORD_EQUAL, ORD_AFTER, ORD_BEFORE, ORD_CONCURRENT] as const)[r];
      expect(wasm.vcCompare(b, a)).toBe(back);
    });
  });

  it('vcDominates: wasm == js == reference', () => {
    runProp([clockPair], ([a, b]) => {
      const r = refDominates(a, b);
      expect(jsKernel.vcDominates(a, b)).toBe(r);
      expect(wasm.vcDominates(a, b)).toBe(r);
    });
  });

  it('vcMerge: byte-identical outputs, slot-wise max, out may alias a', () => {
    runProp([clockPair, fc.integer({ min: -2, max: 4 })], ([a, b], extra) => {
      const n = Math.max(0, Math.max(a.length, b.length) + extra);
      const oj = new Float64Array(n).fill(7), ow = new Float64Array(n).fill(7);
      jsKernel.vcMerge(a, b, oj);
      wasm.vcMerge(a, b, ow);
      expect(sameBytes(oj, ow)).toBe(true);
      expect(Array.from(ow)).toEqual(refMerge(a, b, n));
      // aliasing: out === a
      const aj = a.slice(), aw = a.slice();
      jsKernel.vcMerge(aj, b, aj);
      wasm.vcMerge(aw, b, aw);
      expect(sameBytes(aj, aw)).toBe(true);
      expect(Array.from(aw)).toEqual(refMerge(a, b, a.length));
    });
  });

  it('vcCompareMany: one clock against n rows', () => {
    const arb = fc.tuple(fc.integer({ min: 0, max: 24 }), fc.integer({ min: 0, max: 12 })).chain(([dim, rows]) =>
      fc.tuple(
        fc.constant(dim),
        slots(dim + 3),
        fc.array(slot, { minLength: rows * dim, maxLength: rows * dim }).map((x) => Float64Array.from(x)),
        fc.constant(rows),
      ),
    );
    runProp([arb], ([dim, one, many, rows]) => {
      const oj = new Uint8Array(rows).fill(9), ow = new Uint8Array(rows).fill(9);
      jsKernel.vcCompareMany(one, many, dim, oj);
      wasm.vcCompareMany(one, many, dim, ow);
      expect(sameBytes(oj, ow)).toBe(true);
      for (let r = 0; r < rows; r++) expect(ow[r]).toBe(refCompare(one, many.subarray(r * dim, (r + 1) * dim)));
    });
  });

  it('vcMergeMany: slot-wise max over rows', () => {
    const arb = fc.tuple(fc.integer({ min: 1, max: 24 }), fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 30 })).chain(
      ([dim, rows, on]) =>
        fc.tuple(
          fc.constant(dim),
          fc.array(slot, { minLength: rows * dim, maxLength: rows * dim }).map((x) => Float64Array.from(x)),
          fc.constant(on),
        ),
    );
    runProp([arb], ([dim, many, on]) => {
      const oj = new Float64Array(on).fill(5), ow = new Float64Array(on).fill(5);
      jsKernel.vcMergeMany(many, dim, oj);
      wasm.vcMergeMany(many, dim, ow);
      expect(sameBytes(oj, ow)).toBe(true);
      const rows = Array.from({ length: many.length / dim }, (_, r) => Array.from(many.subarray(r * dim, (r + 1) * dim)));
      expect(Array.from(ow)).toEqual(refMergeMany(rows, on));
    });
  });

  it('edge cases: empty, single slot, maximal values, long clocks with one late difference', () => {
    for (const k of [jsKernel, wasm]) {
      const e = new Float64Array(0);
      expect(k.vcCompare(e, e)).toBe(ORD_EQUAL);
      expect(k.vcCompare(e, Float64Array.of(0, 0))).toBe(ORD_EQUAL);
      expect(k.vcCompare(e, Float64Array.of(0, 1))).toBe(ORD_BEFORE);
      expect(k.vcCompare(Float64Array.of(MAX), Float64Array.of(MAX - 1))).toBe(ORD_AFTER);
      expect(k.vcDominates(e, e)).toBe(true);
      expect(k.vcDominates(e, Float64Array.of(1))).toBe(false);
      const big = new Float64Array(1000).fill(MAX);
      const other = big.slice();
      other[999] = 0;
      other[3] = 0;
      expect(k.vcCompare(big, other)).toBe(ORD_AFTER);
      big[998] = 1;
      expect(k.vcCompare(big, other)).toBe(ORD_CONCURRENT);
      const out = new Float64Array(1000);
      k.vcMerge(big, other, out);
      expect(out[998]).toBe(MAX);
      expect(out[999]).toBe(MAX);
      expect(() => k.vcCompareMany(e, new Float64Array(3), 2, new Uint8Array(2))).toThrow(RangeError);
      expect(() => k.vcMergeMany(new Float64Array(5), 2, new Float64Array(2))).toThrow(RangeError);
      expect(() => k.vcMergeMany(new Float64Array(4), 1.5, new Float64Array(2))).toThrow(RangeError);
    }
  });
});
