/** Counter slot-wise max merge: wasm and js byte-identical, both equal to Math.max per slot, changed count. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsKernel } from '../../src/kernel/js.js';
import { freshWasmKernel, MAX, runProp, sameBytes, slots } from './helpers.js';
import { refMerge } from './reference.js';

const wasm = freshWasmKernel();

describe('kernel/counterMerge', () => {
  it('wasm == js == reference (values and changed count), also in place', () => {
    runProp([slots(50), slots(50), fc.integer({ min: -3, max: 3 }), fc.boolean()], (a, b, extra, inPlace) => {
      const n = Math.max(0, Math.max(a.length, b.length) + extra);
      const expected = refMerge(a, b, n);
      let changed = 0;
      for (let i = 0; i < n; i++) if (expected[i] !== (i < a.length ? a[i] : 0)) changed++;
      if (inPlace) {
        const aj = Float64Array.from({ length: n }, (_, i) => (i < a.length ? a[i] : 0));
        const aw = aj.slice();
        const a0 = aj.slice();
        expect(jsKernel.counterMerge(aj, b, aj)).toBe(changed);
        expect(wasm.counterMerge(aw, b, aw)).toBe(changed);
        expect(sameBytes(aj, aw)).toBe(true);
        expect(Array.from(aw)).toEqual(refMerge(a0, b, n));
      } else {
        const oj = new Float64Array(n).fill(3), ow = new Float64Array(n).fill(3);
        expect(jsKernel.counterMerge(a, b, oj)).toBe(changed);
        expect(wasm.counterMerge(a, b, ow)).toBe(changed);
        expect(sameBytes(oj, ow)).toBe(true);
        expect(Array.from(ow)).toEqual(expected);
      }
    });
  });

  it('merge is idempotent, commutative and a no-op when b brings nothing new', () => {
    runProp([slots(40), slots(40)], (a, b) => {
      const n = Math.max(a.length, b.length);
      const ab = new Float64Array(n), ba = new Float64Array(n), again = new Float64Array(n);
      wasm.counterMerge(a, b, ab);
      wasm.counterMerge(b, a, ba);
      expect(sameBytes(ab, ba)).toBe(true);
      expect(wasm.counterMerge(ab, b, again)).toBe(0);
      expect(jsKernel.counterMerge(ab, a, again)).toBe(0);
      expect(sameBytes(again, ab)).toBe(true);
    });
  });

  it('edge cases: empty, single, maximal slots', () => {
    for (const k of [jsKernel, wasm]) {
      expect(k.counterMerge(new Float64Array(0), new Float64Array(0), new Float64Array(0))).toBe(0);
      const out = new Float64Array(3);
      expect(k.counterMerge(new Float64Array(0), Float64Array.of(MAX, 0, MAX), out)).toBe(2);
      expect(Array.from(out)).toEqual([MAX, 0, MAX]);
      const one = Float64Array.of(5);
      expect(k.counterMerge(one, Float64Array.of(4), one)).toBe(0);
      expect(one[0]).toBe(5);
    }
  });
});
