/** LWW winner selection: wasm and js byte-identical, both match a Map model ((ts, rank) max, A wins ties). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsKernel } from '../../src/kernel/js.js';
import type { LwwColumns } from '../../src/kernel/types.js';
import { freshWasmKernel, MAX, runProp, sameBytes, word } from './helpers.js';
import { refLww } from './reference.js';

const wasm = freshWasmKernel();

const entry = fc.record({
  key: fc.tuple(fc.constantFrom(0, 3, 0xffffffff), fc.oneof(fc.integer({ min: 0, max: 5 }), word)).map(([hi, lo]) => (BigInt(hi) << 32n) | BigInt(lo)),
  ts: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constantFrom(MAX - 1, MAX), fc.maxSafeNat()),
  rank: fc.oneof(fc.integer({ min: 0, max: 2 }), fc.constant(0xffffffff)),
});

function columns(es: { key: bigint; ts: number; rank: number }[]): LwwColumns {
  const uniq = [...new Map(es.map((e) => [e.key, e])).values()].sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
  const n = uniq.length;
  const keys = new Uint32Array(2 * n), ts = new Float64Array(n), ranks = new Uint32Array(n);
  uniq.forEach((e, i) => {
    keys[2 * i] = Number(e.key & 0xffffffffn);
    keys[2 * i + 1] = Number(e.key >> 32n);
    ts[i] = e.ts;
    ranks[i] = e.rank;
  });
  return { keys, ts, ranks, n };
}

describe('kernel/lwwMerge', () => {
  it('wasm == js == Map model', () => {
    const list = fc.array(entry, { maxLength: 20 });
    runProp([list, list, fc.array(fc.tuple(entry, entry), { maxLength: 6 })], (ae, be, same) => {
      // `same` puts equal keys on both sides (with independent ts/rank) so ties and duplicates are common
      const a = columns([...ae, ...same.map(([x]) => x)]);
      const b = columns([...be, ...same.map(([x, y]) => ({ ...y, key: x.key }))]);
      const cap = a.n + b.n;
      const oj = new Int32Array(cap + 1).fill(77), ow = new Int32Array(cap + 1).fill(77);
      const kj = jsKernel.lwwMerge(a, b, oj);
      const kw = wasm.lwwMerge(a, b, ow);
      expect(kw).toBe(kj);
      expect(sameBytes(oj, ow)).toBe(true);
      const model = refLww(a, b);
      expect(kw).toBe(model.size);
      const sortedKeys = [...model.keys()].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
      sortedKeys.forEach((key, idx) => {
        const [side, i] = model.get(key)!;
        expect(ow[idx]).toBe(side === 'a' ? i : -(i + 1));
      });
    });
  });

  it('edge cases: empty, full tie, rank tie-break, maximal timestamps, bad input', () => {
    const e: LwwColumns = { keys: new Uint32Array(0), ts: new Float64Array(0), ranks: new Uint32Array(0), n: 0 };
    const x = (ts: number, rank: number): LwwColumns => ({ keys: Uint32Array.of(0xffffffff, 0xffffffff), ts: Float64Array.of(ts), ranks: Uint32Array.of(rank), n: 1 });
    for (const k of [jsKernel, wasm]) {
      const out = new Int32Array(2);
      expect(k.lwwMerge(e, e, out)).toBe(0);
      expect(k.lwwMerge(x(MAX, 1), x(MAX, 1), out)).toBe(1);
      expect(out[0]).toBe(0); // full tie: A
      k.lwwMerge(x(MAX, 1), x(MAX, 2), out);
      expect(out[0]).toBe(-1); // higher rank
      k.lwwMerge(x(MAX, 0xffffffff), x(MAX - 1, 0), out);
      expect(out[0]).toBe(0);
      expect(k.lwwMerge(e, x(1, 1), out)).toBe(1);
      expect(out[0]).toBe(-1);
      expect(() => k.lwwMerge({ ...e, n: 1 }, e, out)).toThrow(RangeError);
      expect(() => k.lwwMerge(x(1, 1), x(2, 2), new Int32Array(1))).toThrow(RangeError);
    }
  });
});
