/**
 * The hot-path kernel contract. Two implementations: `wasm.ts` (AssemblyScript in linear memory) and
 * `js.ts` (pure TypeScript over the same typed arrays). Both must give byte-identical results.
 *
 * Conventions shared by every kernel:
 * - Counters, clock entries and dot counters are `Float64Array` slots holding exact non-negative integers
 *   (<= Number.MAX_SAFE_INTEGER). A missing slot (index past an array's length) counts as 0.
 * - Replica identities are interned to small integers (`u32`) per engine; clocks are dense arrays by index.
 * - 64-bit hashes (key hashes, digests) are stored as little-endian u32 pairs in a `Uint32Array`:
 *   element 2*i is the low word, 2*i+1 the high word. These are the same bytes as a u64 in wasm memory.
 *   Hash order is unsigned 64-bit order (compare high word, then low word).
 * - HLC timestamps are plain numbers `wallMs * 2048 + logical` (see src/clock/hlc.ts), in `Float64Array`s;
 *   they are exact integers, compared with `<`.
 * - Kernels never retain the arrays passed in; outputs are written into caller-provided arrays.
 */

/** Result of comparing clock a to clock b. */
export const ORD_EQUAL = 0;
export const ORD_BEFORE = 1; // a < b (b dominates strictly)
export const ORD_AFTER = 2; // a > b
export const ORD_CONCURRENT = 3;
export type Ord = 0 | 1 | 2 | 3;

/** A column-oriented list of dots (key hash, replica, counter), sorted by (key hash, replica, counter), no duplicates. */
export interface DotColumns {
  /** 2 u32 words per dot: the 64-bit key/element hash (lo, hi). Length >= 2 * n. */
  keys: Uint32Array;
  /** Replica index per dot. Length >= n. */
  replicas: Uint32Array;
  /** Dot counter per dot (>= 1). Length >= n. */
  counters: Float64Array;
  /** Number of dots. */
  n: number;
}

/**
 * A causal context: a dense version vector (all dots (r, c) with c <= vv[r] are seen) plus a dot cloud of
 * extra seen dots beyond the vector, sorted by (replica, counter), no duplicates.
 */
export interface CausalContextColumns {
  vv: Float64Array;
  cloudReplicas: Uint32Array;
  cloudCounters: Float64Array;
  /** Number of cloud dots. */
  cloudN: number;
}

/** Sorted LWW entries: (key hash, timestamp, rank), sorted by key hash, one entry per key. */
export interface LwwColumns {
  /** 2 u32 words per entry: 64-bit key hash (lo, hi). */
  keys: Uint32Array;
  /** HLC timestamp per entry (exact integer, see src/clock/hlc.ts). */
  ts: Float64Array;
  /**
   * Tie-break rank of the writing replica, consistent with the global order of replica id strings
   * (the caller guarantees: rank order == replica id order, for both inputs of one merge).
   */
  ranks: Uint32Array;
  n: number;
}

export interface Kernel {
  readonly name: 'wasm' | 'js';

  // --- 1. vector clocks ---------------------------------------------------------------------------
  /** Compare clock a with clock b (missing slots are 0). */
  vcCompare(a: Float64Array, b: Float64Array): Ord;
  /** out[i] = max(a[i], b[i]) for i < out.length (missing slots 0). `out` may alias `a`. */
  vcMerge(a: Float64Array, b: Float64Array, out: Float64Array): void;
  /** True when a[i] >= b[i] for every slot (a has seen everything b has). */
  vcDominates(a: Float64Array, b: Float64Array): boolean;
  /** Compare `one` against n = out.length clocks of width `dim` stored row-major in `many`; out[r] = Ord. */
  vcCompareMany(one: Float64Array, many: Float64Array, dim: number, out: Uint8Array): void;
  /** out[i] = max over rows of many[row * dim + i], for n = many.length / dim rows. */
  vcMergeMany(many: Float64Array, dim: number, out: Float64Array): void;

  // --- 2. counters ------------------------------------------------------------------------------
  /**
   * Slot-wise max merge of G-Counter / PN-Counter slot arrays: out[i] = max(a[i], b[i]) for i < out.length.
   * Returns the number of slots where out[i] != a[i] (0 means b brought nothing new). `out` may alias `a`.
   */
  counterMerge(a: Float64Array, b: Float64Array, out: Float64Array): number;

  // --- 3. dot sets (OR-Set / OR-Map / MV-Register) ---------------------------------------------
  /**
   * Merge two dot lists against their causal contexts. A dot survives if both lists hold it, or if one holds it
   * and the other's context has not seen it. Writes, in sorted dot order, one entry per surviving dot into
   * `out` (capacity a.n + b.n): `i` (>= 0) for A's dot i, or `-(j + 1)` for B's dot j (a dot in both is
   * reported as A's). Returns the number of surviving dots.
   */
  dotMerge(a: DotColumns, actx: CausalContextColumns, b: DotColumns, bctx: CausalContextColumns, out: Int32Array): number;

  // --- 4. LWW -------------------------------------------------------------------------------------
  /**
   * Merge two key-sorted LWW entry lists. For each key in either list, the winner is the larger
   * (timestamp, rank) (numeric timestamp compare, then rank); on full equality A wins.
   * Writes one entry per distinct key, in key order, into `out` (capacity a.n + b.n): `i` for A's entry i or
   * `-(j + 1)` for B's entry j. Returns the count.
   */
  lwwMerge(a: LwwColumns, b: LwwColumns, out: Int32Array): number;

  // --- 5. digests ---------------------------------------------------------------------------------
  /** xxHash64 of bytes[start, end) with a 32-bit seed; result into out[0] (lo), out[1] (hi). */
  xxhash64(bytes: Uint8Array, start: number, end: number, seed: number, out: Uint32Array): void;
  /**
   * xxHash64 of n byte ranges of one buffer in one call: range k is bytes[offsets[k], offsets[k] + lengths[k]).
   * Results as u32 pairs into out[2k], out[2k+1]. n = offsets.length.
   */
  xxhash64Many(bytes: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, seed: number, out: Uint32Array): void;
  /**
   * Bucketed hash tree for anti-entropy. n entries, each a 64-bit key hash and a 64-bit entry hash (u32 pairs).
   * Bucket of an entry = top `depth` bits of its key hash (depth 0..16). Leaf value = order-independent
   * combination of the bucket's entries: wrapping 64-bit sum of mix64(keyHash ^ rotl64(entryHash, 29)),
   * where mix64 is the xxHash64 avalanche (h ^= h >> 33; h *= PRIME64_2; h ^= h >> 29; h *= PRIME64_3; h ^= h >> 32)
   * (0 for an empty bucket). Inner node = xxHash64 of the 16 bytes (left, right) with seed 0, except that two
   * zero children give 0. Output: the whole tree in heap order as u32 pairs, node 1 the root, leaves at
   * [2^depth, 2^(depth+1)); out length >= 2 * 2^(depth+1) words (node 0 unused, written 0).
   */
  hashTree(keys: Uint32Array, entryHashes: Uint32Array, n: number, depth: number, out: Uint32Array): void;

  // --- 6. RGA -------------------------------------------------------------------------------------
  /**
   * RGA document order. n elements; element i goes after element parent[i] (-1: the start of the list, -2:
   * a reference not held). An element is placed when its reference is the start, or is placed and
   * seq[i] > seq[parent[i]] (an element not stamped after its reference is never shown, nor anything after
   * it). The placed elements are written to out in document order: the pre-order walk of the reference
   * tree, the elements after one element ordered by (seq, rank, counter) descending (rank: consistent with
   * the order of replica id strings). Returns the number placed. RangeError when a parent is outside [-2, n).
   */
  rgaOrder(parent: Int32Array, seq: Float64Array, rank: Uint32Array, counter: Float64Array, n: number, out: Int32Array): number;
}
