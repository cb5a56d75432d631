/**
 * Digest kernels: xxHash64 (known vectors, a BigInt transcription of the spec, wasm == js), xxhash64Many, and
 * the bucketed hash tree (BigInt reference of its definition in src/kernel/types.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsKernel } from '../../src/kernel/js.js';
import { freshWasmKernel, LONG, runProp, sameBytes, u64, word } from './helpers.js';
import { refHashTree, refXxh64 } from './reference.js';

const wasm = freshWasmKernel();
const enc = new TextEncoder();

function h64(k: typeof jsKernel, bytes: Uint8Array, seed = 0, start = 0, end = bytes.length): bigint {
  const out = new Uint32Array(2);
  k.xxhash64(bytes, start, end, seed, out);
  return u64(out, 0);
}

/** Bytes with long runs of 0x00 / 0xFF besides random ones; lengths cross 4, 8, 32 byte boundaries. */
const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 100 }),
  fc.tuple(fc.integer({ min: 0, max: 80 }), fc.constantFrom(0, 0xff)).map(([n, v]) => new Uint8Array(n).fill(v)),
  fc.uint8Array({ minLength: 200, maxLength: 600 }),
);

describe('kernel/xxhash64', () => {
  it('matches published xxHash64 test vectors on both backends', () => {
    const vectors: [string, number, bigint][] = [
      ['', 0, 0xef46db3751d8e999n],
      ['a', 0, 0xd24ec4f1a98c6e5bn],
      ['abc', 0, 0x44bc2cf5ad770999n],
      ['Nobody inspects the spammish repetition', 0, 0xfbcea83c8a378bf1n],
      ['The quick brown fox jumps over the lazy dog', 0, 0x0b242d361fda71bcn],
    ];
    for (const [s, seed, want] of vectors) {
      const b = enc.encode(s);
      expect(refXxh64(b, BigInt(seed))).toBe(want);
      expect(h64(jsKernel, b, seed)).toBe(want);
      expect(h64(wasm, b, seed)).toBe(want);
    }
  });

  it('wasm == js == BigInt reference, any seed and sub-range', () => {
    runProp([bytes, fc.oneof(fc.constantFrom(0, 1, 0xffffffff), fc.nat({ max: 0xffffffff })), fc.nat(), fc.nat()], (b, seed, x, y) => {
      const start = b.length ? x % (b.length + 1) : 0;
      const end = start + (b.length - start ? y % (b.length - start + 1) : 0);
      const want = refXxh64(b.subarray(start, end), BigInt(seed));
      expect(h64(jsKernel, b, seed, start, end)).toBe(want);
      expect(h64(wasm, b, seed, start, end)).toBe(want);
    });
  });

  it('xxhash64Many: n ranges in one call equal n single hashes', () => {
    const arb = fc.uint8Array({ maxLength: 300 }).chain((b) =>
      fc.tuple(
        fc.constant(b),
        fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 20 }).map((rs) =>
          rs.map(([x, y]) => {
            const o = b.length ? x % (b.length + 1) : 0;
            return [o, b.length - o ? y % (b.length - o + 1) : 0] as const;
          }),
        ),
        fc.nat({ max: 0xffffffff }),
      ),
    );
    runProp([arb], ([b, ranges, seed]) => {
      const offsets = Uint32Array.from(ranges.map((r) => r[0]));
      const lengths = Uint32Array.from(ranges.map((r) => r[1]));
      const oj = new Uint32Array(2 * ranges.length + 2).fill(1), ow = oj.slice();
      jsKernel.xxhash64Many(b, offsets, lengths, seed, oj);
      wasm.xxhash64Many(b, offsets, lengths, seed, ow);
      expect(sameBytes(oj, ow)).toBe(true);
      ranges.forEach(([o, l], k) => expect(u64(ow, k)).toBe(refXxh64(b.subarray(o, o + l), BigInt(seed))));
    });
  });

  it('rejects out-of-range input with RangeError', () => {
    for (const k of [jsKernel, wasm]) {
      const b = new Uint8Array(10);
      expect(() => k.xxhash64(b, 5, 11, 0, new Uint32Array(2))).toThrow(RangeError);
      expect(() => k.xxhash64(b, 6, 5, 0, new Uint32Array(2))).toThrow(RangeError);
      expect(() => k.xxhash64(b, 0, 1, 0, new Uint32Array(1))).toThrow(RangeError);
      expect(() => k.xxhash64Many(b, Uint32Array.of(8), Uint32Array.of(3), 0, new Uint32Array(2))).toThrow(RangeError);
      expect(() => k.xxhash64Many(b, Uint32Array.of(0, 1), Uint32Array.of(3), 0, new Uint32Array(4))).toThrow(RangeError);
    }
  });
});

describe('kernel/hashTree', () => {
  const entries = fc.array(fc.tuple(word, word, word, word), { maxLength: 60 });
  it('wasm == js == BigInt reference of the definition', () => {
    runProp([entries, fc.integer({ min: 0, max: 16 })], (es, depth) => {
      const n = es.length;
      const keys = Uint32Array.from(es.flatMap(([a, b]) => [a, b]));
      const hashes = Uint32Array.from(es.flatMap(([, , c, d]) => [c, d]));
      const words = 2 ** (depth + 2);
      const oj = new Uint32Array(words + 3).fill(0xabcdef), ow = oj.slice();
      jsKernel.hashTree(keys, hashes, n, depth, oj);
      wasm.hashTree(keys, hashes, n, depth, ow);
      expect(sameBytes(oj, ow)).toBe(true);
      expect(oj[words]).toBe(0xabcdef); // nothing written past the tree
      if (depth <= 8) {
        const ref = refHashTree(
          es.map((_, i) => u64(keys, i)),
          es.map((_, i) => u64(hashes, i)),
          depth,
        );
        for (let node = 0; node < ref.length; node++) expect(u64(ow, node)).toBe(ref[node]);
      }
    });
  });

  it('is independent of entry order and changes when one entry changes', () => {
    runProp([entries, fc.integer({ min: 0, max: 10 }), fc.nat()], (es, depth, pick) => {
      if (es.length === 0) return;
      const mk = (xs: typeof es) => {
        const out = new Uint32Array(2 ** (depth + 2));
        wasm.hashTree(Uint32Array.from(xs.flatMap(([a, b]) => [a, b])), Uint32Array.from(xs.flatMap(([, , c, d]) => [c, d])), xs.length, depth, out);
        return out;
      };
      const base = mk(es);
      expect(sameBytes(mk([...es].reverse()), base)).toBe(true);
      const changed = es.map((e, i) => (i === pick % es.length ? ([e[0], e[1], (e[2] + 1) >>> 0, e[3]] as typeof e) : e));
      expect(u64(mk(changed), 1)).not.toBe(u64(base, 1));
    }, LONG ? 5_000 : 300);
  });

  it('edge cases: no entries is an all-zero tree; bad depth and short out throw', () => {
    for (const k of [jsKernel, wasm]) {
      const out = new Uint32Array(16).fill(9);
      k.hashTree(new Uint32Array(0), new Uint32Array(0), 0, 2, out);
      expect(Array.from(out)).toEqual(new Array(16).fill(0));
      expect(() => k.hashTree(new Uint32Array(0), new Uint32Array(0), 0, 17, new Uint32Array(2 ** 19))).toThrow(RangeError);
      expect(() => k.hashTree(new Uint32Array(0), new Uint32Array(0), 0, 2, new Uint32Array(15))).toThrow(RangeError);
      expect(() => k.hashTree(new Uint32Array(2), new Uint32Array(2), 2, 2, out)).toThrow(RangeError);
    }
  });
});
