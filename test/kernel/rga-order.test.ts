/**
 * RGA sibling ordering (rgaOrder): wasm and js byte-identical, both equal to a recursive model (pre-order of
 * the reference tree, siblings by (seq, rank, counter) descending, an element not stamped after its reference
 * skipped with its subtree, references not held or in a cycle never placed).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsKernel } from '../../src/kernel/js.js';
import { freshWasmKernel, MAX, runProp, sameBytes } from './helpers.js';

const wasm = freshWasmKernel();

interface Forest {
  parent: Int32Array;
  seq: Float64Array;
  rank: Uint32Array;
  counter: Float64Array;
  n: number;
}

function model(f: Forest): number[] {
  const kids = new Map<number, number[]>();
  for (let i = 0; i < f.n; i++) {
    const p = f.parent[i];
    if (p < -1) continue;
    let l = kids.get(p);
    if (l === undefined) kids.set(p, (l = []));
    l.push(i);
  }
  const key = (i: number): [number, number, number] => [f.seq[i], f.rank[i], f.counter[i]];
  const cmp = (a: number, b: number): number => {
    const x = key(a), y = key(b);
    for (let k = 0; k < 3; k++) if (x[k] !== y[k]) return y[k] - x[k];
    return a - b; // full tie: index order (both kernels sort stably)
  };
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of (kids.get(p) ?? []).sort(cmp)) {
      if (p >= 0 && !(f.seq[c] > f.seq[p])) continue;
      out.push(c);
      walk(c);
    }
  };
  walk(-1);
  return out;
}

function run(f: Forest): number[] {
  const oj = new Int32Array(f.n + 1).fill(77), ow = new Int32Array(f.n + 1).fill(77);
  const kj = jsKernel.rgaOrder(f.parent, f.seq, f.rank, f.counter, f.n, oj);
  const kw = wasm.rgaOrder(f.parent, f.seq, f.rank, f.counter, f.n, ow);
  expect(kw).toBe(kj);
  expect(sameBytes(oj, ow)).toBe(true);
  return [...oj.subarray(0, kj)];
}

/** A random forest: mostly valid trees, with absent references, stale stamps, cycles and ties. */
const forest = (maxN: number): fc.Arbitrary<Forest> =>
  fc.integer({ min: 0, max: maxN }).chain((n) =>
    fc
      .tuple(
        fc.array(fc.oneof({ weight: 6, arbitrary: fc.integer({ min: -1, max: Math.max(-1, n - 1) }) }, { weight: 1, arbitrary: fc.constant(-2) }), { minLength: n, maxLength: n }),
        fc.array(fc.oneof(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 1000 }), fc.constant(MAX)), { minLength: n, maxLength: n }),
        fc.array(fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(0xffffffff)), { minLength: n, maxLength: n }),
        fc.array(fc.oneof(fc.integer({ min: 1, max: 4 }), fc.maxSafeNat()), { minLength: n, maxLength: n }),
      )
      .map(([parent, seq, rank, counter]) => ({
        parent: Int32Array.from(parent),
        seq: Float64Array.from(seq),
        rank: Uint32Array.from(rank),
        counter: Float64Array.from(counter),
        n,
      })),
  );

describe('kernel/rgaOrder', () => {
  it('wasm == js == recursive model (random forests, ties, stale stamps, cycles, absent references)', () => {
    runProp([forest(60)], (f) => {
      expect(run(f)).toEqual(model(f));
    });
  });

  it('wide sibling groups (the merge-sort path) agree with the model', () => {
    // many elements after the start and after element 0: groups far above the insertion-sort size
    runProp([fc.integer({ min: 17, max: 300 }), fc.integer({ min: 0, max: 2 ** 31 - 1 })], (n, s) => {
      let x = s | 1;
      const rnd = (m: number): number => {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        return (x >>> 0) % m;
      };
      const f: Forest = { parent: new Int32Array(n), seq: new Float64Array(n), rank: new Uint32Array(n), counter: new Float64Array(n), n };
      for (let i = 0; i < n; i++) {
        f.parent[i] = i === 0 ? -1 : rnd(3) === 0 ? 0 : -1;
        f.seq[i] = 2 + rnd(8);
        f.rank[i] = rnd(4);
        f.counter[i] = 1 + rnd(5);
      }
      f.seq[0] = 1;
      const got = run(f);
      expect(got).toEqual(model(f));
      expect(got.length).toBe(n);
    }, 200);
  });

  it('a long chain (deep tree) and a document typed at the end', () => {
    const n = 100_000;
    const f: Forest = { parent: new Int32Array(n), seq: new Float64Array(n), rank: new Uint32Array(n), counter: new Float64Array(n), n };
    for (let i = 0; i < n; i++) {
      f.parent[i] = i - 1;
      f.seq[i] = i + 1;
      f.counter[i] = i + 1;
    }
    const got = run(f);
    expect(got.length).toBe(n);
    expect(got.every((v, i) => v === i)).toBe(true);
    // a stale stamp in the middle hides everything after it
    f.seq[50_000] = 1;
    expect(run(f).length).toBe(50_000);
  });

  it('edge cases: empty, only absent references, a self reference; bad input is a RangeError on both', () => {
    for (const k of [jsKernel, wasm]) {
      const out = new Int32Array(4);
      expect(k.rgaOrder(new Int32Array(0), new Float64Array(0), new Uint32Array(0), new Float64Array(0), 0, out)).toBe(0);
      expect(k.rgaOrder(Int32Array.of(-2, 0), Float64Array.of(1, 2), Uint32Array.of(0, 0), Float64Array.of(1, 2), 2, out)).toBe(0);
      expect(k.rgaOrder(Int32Array.of(0), Float64Array.of(1), Uint32Array.of(0), Float64Array.of(1), 1, out)).toBe(0);
      expect(() => k.rgaOrder(Int32Array.of(1), Float64Array.of(1), Uint32Array.of(0), Float64Array.of(1), 1, out)).toThrow(RangeError);
      expect(() => k.rgaOrder(Int32Array.of(-3), Float64Array.of(1), Uint32Array.of(0), Float64Array.of(1), 1, out)).toThrow(RangeError);
      expect(() => k.rgaOrder(Int32Array.of(-1, -1), Float64Array.of(1), Uint32Array.of(0), Float64Array.of(1), 2, out)).toThrow(RangeError);
      expect(() => k.rgaOrder(Int32Array.of(-1), Float64Array.of(1), Uint32Array.of(0), Float64Array.of(1), 1, new Int32Array(0))).toThrow(RangeError);
    }
  });
});
