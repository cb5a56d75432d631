/**
 * Linear-memory discipline of the wasm backend: 10,000,000 merges keep memory bounded (the scratch arena is
 * reset after each batch), typed-array views are refreshed after growth, and the resident (zero-copy) arrays
 * work in place and fail loudly once memory growth has detached them.
 */
import { describe, expect, it } from 'vitest';
import { getKernel, initSync, useBackend, wasmMemoryBytes } from '../../src/kernel/index.js';
import { jsKernel } from '../../src/kernel/js.js';
import { freshWasmKernel, requireWasmBytes, sameBytes, SEED } from './helpers.js';

/** Small deterministic PRNG (mulberry32) for bulk inputs. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('kernel/memory', () => {
  it('10,000,000 merges through the wasm backend keep memory.buffer.byteLength bounded', () => {
    initSync(requireWasmBytes());
    useBackend('wasm');
    const k = getKernel();
    expect(k.name).toBe('wasm');
    const rnd = prng(SEED);
    const dim = 8;
    const rowsPerBatch = 4096;
    const many = Float64Array.from({ length: rowsPerBatch * dim }, () => Math.floor(rnd() * 1000));
    const out = new Float64Array(dim);
    const a = Float64Array.from({ length: dim }, () => Math.floor(rnd() * 1000));
    const b = Float64Array.from({ length: dim }, () => Math.floor(rnd() * 1000));
    // warm-up: the largest batch once
    k.vcMergeMany(many, dim, out);
    const warm = wasmMemoryBytes();
    expect(warm).toBeGreaterThan(0);
    let merges = 0;
    const target = 10_000_000;
    // batched clock merges: 4096 rows per call (one boundary crossing per batch)
    while (merges < target - 1_000_000) {
      many[merges % many.length] = merges; // the input changes from batch to batch
      k.vcMergeMany(many, dim, out);
      merges += rowsPerBatch;
    }
    // plus 1,000,000 single counter merges, one call each
    for (; merges < target; merges++) {
      b[merges & 7] = merges;
      k.counterMerge(a, b, out);
    }
    expect(merges).toBe(target);
    expect(out[0]).toBeGreaterThan(0);
    expect(wasmMemoryBytes()).toBe(warm);
    useBackend('js');
  });

  it('grows for a big input, refreshes its views, and gives the same answers after growth', () => {
    const k = freshWasmKernel();
    const before = k.memory.buffer.byteLength;
    const rnd = prng(SEED ^ 0x55);
    const small = () => Float64Array.from({ length: 40 }, () => Math.floor(rnd() * 10));
    const [a, b] = [small(), small()];
    const o1 = new Float64Array(40), o2 = new Float64Array(40), oj = new Float64Array(40);
    k.vcMerge(a, b, o1);
    const big = new Float64Array(1 << 20).fill(3); // 8 MiB: does not fit the initial memory
    const bigOut = new Float64Array(1 << 20);
    k.vcMerge(big, new Float64Array(0), bigOut);
    expect(k.memory.buffer.byteLength).toBeGreaterThan(before);
    expect(bigOut[(1 << 20) - 1]).toBe(3);
    k.vcMerge(a, b, o2);
    jsKernel.vcMerge(a, b, oj);
    expect(sameBytes(o1, o2)).toBe(true);
    expect(sameBytes(o1, oj)).toBe(true);
    k.vcMerge(big, bigOut, bigOut); // the largest shape once, then the same shape must not grow memory again
    const grown = k.memory.buffer.byteLength;
    for (let i = 0; i < 100; i++) k.vcMerge(big, bigOut, bigOut);
    expect(k.memory.buffer.byteLength).toBe(grown);
  });

  it('resident arrays are used in place, and a detached one throws RangeError', () => {
    const k = freshWasmKernel();
    k.reserve(1 << 16);
    const a = k.residentF64(20), b = k.residentF64(20), out = k.residentF64(20);
    for (let i = 0; i < 20; i++) {
      a[i] = i;
      b[i] = 20 - i;
    }
    expect(a.buffer).toBe(k.memory.buffer);
    expect(k.counterMerge(a, b, out)).toBe(10);
    const expected = new Float64Array(20);
    jsKernel.counterMerge(a, b, expected);
    expect(sameBytes(out, expected)).toBe(true);
    const keys = k.residentU32(8);
    keys.set([1, 2, 3, 4, 5, 6, 7, 8]);
    const tree = k.residentU32(16);
    const jtree = new Uint32Array(16);
    k.hashTree(keys, keys, 4, 2, tree);
    jsKernel.hashTree(keys, keys, 4, 2, jtree);
    expect(sameBytes(tree, jtree)).toBe(true);
    // force growth: the resident views detach, and using one is an error, not a silent empty input
    k.vcMerge(new Float64Array(1 << 21), new Float64Array(0), new Float64Array(1 << 21));
    expect(a.length).toBe(0);
    expect(() => k.counterMerge(a, b, new Float64Array(20))).toThrow(RangeError);
    k.releaseResident();
    const again = k.residentF64(4);
    expect(again.buffer).toBe(k.memory.buffer);
    expect(Array.from(again)).toEqual([0, 0, 0, 0]);
  });
});
