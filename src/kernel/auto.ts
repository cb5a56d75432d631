/**
 * The default kernel once wasm is loaded: each call goes to the wasm kernel when its input is large enough
 * for wasm to win, and to the js kernel below that size.
 *
 * Why: a wasm call from ordinary typed arrays pays a fixed cost (placing the arguments in the arena, copying
 * them in and the result out: about 0.2-0.4 us on the reference machine), which the js kernel does not pay.
 * For 16-slot clocks js is 4-8x faster; from a few hundred slots on wasm is 2-10x faster (SIMD, native u64
 * math); for hashing wasm wins at every size (js has to emulate 64-bit multiplies with 16-bit limbs).
 * The crossovers below come from `npm run bench -- kernels` plus crossover runs at 64 and 256 entries
 * (bench/RESULTS.md, kernels section), rounded to powers of two. Both backends give byte-identical results,
 * so the dispatch is invisible to callers except for speed.
 */
import type { Kernel } from './types.js';

type Method = Exclude<keyof Kernel, 'name'>;

/**
 * Input size from which wasm serves each method: slots of the longer clock (vcCompare, vcDominates), output
 * slots (vcMerge, counterMerge), slots of `many` (vcCompareMany, vcMergeMany), dots / entries of both sides
 * (dotMerge, lwwMerge), bytes (xxhash64), ranges (xxhash64Many), entries (hashTree), elements (rgaOrder).
 * Measured (wasm with copies / js, ops/s ratio, 64 -> 256 -> 1,000 entries): vcCompare 0.7 -> 1.6 -> 2.9,
 * vcMerge 0.7 -> 2.0 -> 2.1, vcDominates 0.4 -> 1.2 -> 3.0, counterMerge 0.65 -> 2.2 -> 3.2,
 * vcCompareMany 2.2 -> 3.3 -> 3.5 (per 8-slot clock; 0.8 at 16 clocks in another run), vcMergeMany 3.1 -> 4.1
 * -> 4.2, lwwMerge 0.7 -> 1.2 -> 1.3 (per side), dotMerge 0.7 -> 1.1 -> 1.7 (per side), xxhash64 3.9x
 * already at 16 bytes, xxhash64Many and hashTree >= 10x at 16, rgaOrder 1.0 -> 2.3 -> 2.4 (16 -> 64 -> 1,000
 * elements).
 */
export const WASM_FROM: Readonly<Record<Method, number>> = {
  vcCompare: 128,
  vcMerge: 128,
  vcDominates: 256,
  counterMerge: 128,
  vcCompareMany: 256,
  vcMergeMany: 64,
  dotMerge: 512,
  lwwMerge: 512,
  xxhash64: 0,
  xxhash64Many: 0,
  hashTree: 0,
  rgaOrder: 32,
};

/** A kernel that routes each call by input size (see WASM_FROM); `name` is 'wasm'. */
export function createAutoKernel(wasm: Kernel, js: Kernel, from: Readonly<Record<Method, number>> = WASM_FROM): Kernel {
  const t = { ...from };
  return {
    name: 'wasm',
    vcCompare: (a, b) => (a.length >= t.vcCompare || b.length >= t.vcCompare ? wasm : js).vcCompare(a, b),
    vcMerge: (a, b, out) => (out.length >= t.vcMerge ? wasm : js).vcMerge(a, b, out),
    vcDominates: (a, b) => (a.length >= t.vcDominates || b.length >= t.vcDominates ? wasm : js).vcDominates(a, b),
    vcCompareMany: (one, many, dim, out) => (many.length >= t.vcCompareMany ? wasm : js).vcCompareMany(one, many, dim, out),
    vcMergeMany: (many, dim, out) => (many.length >= t.vcMergeMany ? wasm : js).vcMergeMany(many, dim, out),
    counterMerge: (a, b, out) => (out.length >= t.counterMerge ? wasm : js).counterMerge(a, b, out),
    dotMerge: (a, actx, b, bctx, out) => (a.n + b.n >= t.dotMerge ? wasm : js).dotMerge(a, actx, b, bctx, out),
    lwwMerge: (a, b, out) => (a.n + b.n >= t.lwwMerge ? wasm : js).lwwMerge(a, b, out),
    xxhash64: (bytes, start, end, seed, out) => (end - start >= t.xxhash64 ? wasm : js).xxhash64(bytes, start, end, seed, out),
    xxhash64Many: (bytes, offsets, lengths, seed, out) =>
      (offsets.length >= t.xxhash64Many ? wasm : js).xxhash64Many(bytes, offsets, lengths, seed, out),
    hashTree: (keys, entryHashes, n, depth, out) => (n >= t.hashTree ? wasm : js).hashTree(keys, entryHashes, n, depth, out),
    rgaOrder: (parent, seq, rank, counter, n, out) => (n >= t.rgaOrder ? wasm : js).rgaOrder(parent, seq, rank, counter, n, out),
  };
}
