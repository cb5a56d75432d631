/**
 * Linear-memory discipline of the wasm backend: 10,000,000 merges keep memory bounded (the scratch arena is
 * reset after each batch), typed-array views are refreshed after growth, and the resident (zero-copy) arrays
 * work in place and fail loudly once memory growth has detached them.
 */
import { describe, expect, it } from 'vitest';
import { getKernel, initSync, pureWasmKernel, useBackend, wasmMemoryBytes } from '../../src/kernel/index.js';
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
    expect(getKernel().name).toBe('wasm');
    // the all-wasm kernel: the default one would send the 8-slot single merges to js (see auto.ts)
    const k = pureWasmKernel()!;
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
    // byte ranges, u8 outputs and the column kernels in place too
    const bytes = k.residentU8(100);
    for (let i = 0; i < 100; i++) bytes[i] = (i * 37) & 255;
    const h1 = k.residentU32(2), h2 = new Uint32Array(2);
    k.xxhash64(bytes, 7, 93, 5, h1);
    jsKernel.xxhash64(bytes, 7, 93, 5, h2);
    expect(sameBytes(h1, h2)).toBe(true);
    const offs = k.residentU32(3), lens = k.residentU32(3), hs = k.residentU32(6), hj = new Uint32Array(6);
    offs.set([0, 10, 50]);
    lens.set([0, 33, 50]);
    k.xxhash64Many(bytes, offs, lens, 1, hs);
    jsKernel.xxhash64Many(bytes, offs, lens, 1, hj);
    expect(sameBytes(hs, hj)).toBe(true);
    const ords = k.residentU8(2), ordj = new Uint8Array(2);
    k.vcCompareMany(a.subarray(0, 10), a, 10, ords);
    jsKernel.vcCompareMany(a.subarray(0, 10), a, 10, ordj);
    expect(Array.from(ords)).toEqual(Array.from(ordj));
    const lk = k.residentU32(4), lt = k.residentF64(2), lr = k.residentU32(2), lo = k.residentI32(4);
    lk.set([1, 0, 2, 0]);
    lt.set([5, 6]);
    const lwwA = { keys: lk, ts: lt, ranks: lr, n: 2 };
    const lwwB = { keys: Uint32Array.of(2, 0, 3, 0), ts: Float64Array.of(7, 1), ranks: Uint32Array.of(0, 0), n: 2 };
    expect(k.lwwMerge(lwwA, lwwB, lo)).toBe(3);
    expect(Array.from(lo.subarray(0, 3))).toEqual([0, -1, -2]);
    const dk = k.residentU32(2), dr = k.residentU32(1), dc = k.residentF64(1), dout = k.residentI32(2);
    dk.set([9, 9]);
    dr[0] = 1;
    dc[0] = 4;
    const ctx = { vv: k.residentF64(2), cloudReplicas: k.residentU32(0), cloudCounters: k.residentF64(0), cloudN: 0 };
    expect(k.dotMerge({ keys: dk, replicas: dr, counters: dc, n: 1 }, ctx, { keys: dk, replicas: dr, counters: dc, n: 0 }, ctx, dout)).toBe(1);
    expect(dout[0]).toBe(0);
    ctx.vv[1] = 4; // now the other side has seen (1, 4) and dropped it
    expect(k.dotMerge({ keys: dk, replicas: dr, counters: dc, n: 1 }, ctx, { keys: dk, replicas: dr, counters: dc, n: 0 }, ctx, dout)).toBe(0);
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
