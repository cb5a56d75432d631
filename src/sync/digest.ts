/**
 * Digests for anti-entropy.
 *
 * - `hash64(bytes)`: a 64-bit content hash (two MurmurHash3-32 passes with independent seeds) of an object's
 *   canonical encoding. Equal encodings give equal hashes on every replica.
 * - `KeyTree`: for map-like CRDTs that expose per-key digests (`KeyedCrdt`), a hash tree over key buckets.
 *   The bucket of a key at depth d is the top d bits of its 64-bit key hash; a node's hash is the wrapping sum
 *   of a 64-bit mix of (key hash, entry hash) over the keys in the bucket, so a parent is the sum of its
 *   children, any node is computed in O(log n) from prefix sums over the keys sorted by hash, and the tree
 *   never has to be materialised. The sync protocol descends it 4 bits (16 children) at a time and only
 *   along differing nodes, so the bytes exchanged grow with the number of differing keys times log(n), not
 *   with n. (Computed in TS here: the kernel's hashTree materialises whole levels, which the descent does not
 *   need.)
 */
import type { Crdt } from '../crdt/types.js';

/**
 * What a map-like CRDT offers for bucketed anti-entropy (ORMap implements it). Optional: objects without it
 * are compared by whole hash and, when different, exchanged as whole states.
 */
export interface KeyedCrdt<Self = unknown> extends Crdt<Self> {
  /**
   * Per present key: its 64-bit key hash and a 64-bit hash of the key's entry state (equal entries on two
   * replicas give equal hashes), as little-endian u32 pairs (`keyHashes[2i]` low word, `[2i+1]` high word).
   */
  keyHashes(): { keyHashes: Uint32Array; entryHashes: Uint32Array };
  /**
   * A delta-state of only the keys whose hash falls in one of `buckets` (top `depth` bits of the key hash),
   * changing nothing else when merged. With `seen` (what the other side sent for the same buckets) it also
   * carries the removals of keys the other side still holds.
   */
  deltaForBuckets(depth: number, buckets: Iterable<number>, seen?: Self): Self;
}

/**
 * Keyed objects that can also answer a peer's causal context with exactly the entries the peer has not seen
 * (ORMap). Anti-entropy then sends those first, and descends the bucket tree only when the states still
 * differ afterwards (removals, which leave no dot a context could show).
 */
export interface ScopedCrdt<Self = unknown> extends KeyedCrdt<Self> {
  /** The causal context, canonically encoded. */
  contextBytes(): Uint8Array;
  /** The entries holding a dot the peer's context (bytes, or a peer's `deltaSince` answer) lacks. */
  deltaSince(peer: Uint8Array | Self): Self;
  /** Merge a `deltaSince` answer (it speaks only for the keys it carries); false when nothing changed. */
  mergeScoped(delta: Self): boolean | void;
}

/**
 * Scoped objects that can also hand out what they hold besides their entries (ORMap): the dots they have
 * retired (their context less the dots of the entries they hold) and state kept for deleted keys, as states
 * without entries of bounded size. Each is a state below the object's, so a plain `merge` of one, anywhere
 * and in any order, removes only what the object removed. Anti-entropy sends them when both sides hold the
 * same entries (so this is all their difference) and the whole state is too big for one message.
 */
export interface RetiringCrdt<Self = unknown> extends ScopedCrdt<Self> {
  /** That state, as objects without entries whose encodings take at most `maxBytes` each (at least one). */
  retiredParts(maxBytes: number): Self[];
}

export function isRetiring(c: unknown): c is RetiringCrdt {
  return isScoped(c) && typeof (c as RetiringCrdt).retiredParts === 'function';
}

export function isScoped(c: unknown): c is ScopedCrdt {
  return isKeyed(c) && typeof (c as ScopedCrdt).deltaSince === 'function' && typeof (c as ScopedCrdt).mergeScoped === 'function' && typeof (c as ScopedCrdt).contextBytes === 'function';
}

export function isKeyed(c: unknown): c is KeyedCrdt {
  return typeof (c as KeyedCrdt).keyHashes === 'function' && typeof (c as KeyedCrdt).deltaForBuckets === 'function';
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** 32-bit MurmurHash3 of bytes (also the checksum of stored records, see engine.ts). */
export function murmur32(bytes: Uint8Array, seed: number): number {
  let h = seed >>> 0;
  const n = bytes.length;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  switch (n & 3) {
    case 3:
      k ^= bytes[blocks + 2] << 16;
    // falls through
    case 2:
      k ^= bytes[blocks + 1] << 8;
    // falls through
    case 1:
      k ^= bytes[blocks];
      k = Math.imul(k, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, 0x1b873593);
      h ^= k;
  }
  h ^= n;
  return fmix32(h);
}

/** 64-bit hash of bytes as [lo, hi]. */
export function hash64(bytes: Uint8Array): [number, number] {
  return [murmur32(bytes, 0x9747b28c), murmur32(bytes, 0x2f1b3c5d)];
}

export const TREE_FANOUT_BITS = 4;
export const TREE_MAX_DEPTH = 16;

/** A node of the bucket tree: its hash (two u32 words) and the number of keys under it. */
export interface TreeNode {
  lo: number;
  hi: number;
  count: number;
}

/** The bucket hash tree of one keyed object's current state (immutable snapshot). */
export class KeyTree {
  /** Key hash high words, sorted (unsigned). */
  private readonly khi: Uint32Array;
  /** Prefix sums (mod 2^32) of the two mix words per key, in sorted order; length n + 1. */
  private readonly s1: Uint32Array;
  private readonly s2: Uint32Array;
  readonly n: number;

  constructor(d: { keyHashes: Uint32Array; entryHashes: Uint32Array }) {
    const n = d.keyHashes.length >>> 1;
    this.n = n;
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    const keys = d.keyHashes;
    order.sort((a, b) => keys[2 * a + 1] - keys[2 * b + 1] || keys[2 * a] - keys[2 * b]);
    this.khi = new Uint32Array(n);
    this.s1 = new Uint32Array(n + 1);
    this.s2 = new Uint32Array(n + 1);
    const h = d.entryHashes;
    for (let j = 0; j < n; j++) {
      const i = order[j];
      const kl = keys[2 * i], kh = keys[2 * i + 1], el = h[2 * i], eh = h[2 * i + 1];
      this.khi[j] = kh;
      const m1 = fmix32(kl ^ Math.imul(el, 0x9e3779b1) ^ fmix32(kh ^ eh ^ 0x2545f491));
      const m2 = fmix32((kh + Math.imul(eh, 0x85ebca6b)) ^ fmix32(kl ^ el ^ 0x5bd1e995) ^ 0x27d4eb2f);
      this.s1[j + 1] = (this.s1[j] + m1) >>> 0;
      this.s2[j + 1] = (this.s2[j] + m2) >>> 0;
    }
  }

  /** Index of the first key whose high word is >= v (v may be 2^32 for "past the end"). */
  private lower(v: number): number {
    let lo = 0, hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.khi[mid] < v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The node for bucket `prefix` at `depth` (0..16). */
  node(depth: number, prefix: number): TreeNode {
    const shift = 32 - depth;
    const start = depth === 0 ? 0 : this.lower(prefix * 2 ** shift);
    const end = depth === 0 ? this.n : this.lower((prefix + 1) * 2 ** shift);
    return { lo: (this.s1[end] - this.s1[start]) >>> 0, hi: (this.s2[end] - this.s2[start]) >>> 0, count: end - start };
  }

  /** The 16 children (depth + 4) of bucket `prefix` at `depth`. */
  children(depth: number, prefix: number): TreeNode[] {
    const out: TreeNode[] = [];
    for (let c = 0; c < 1 << TREE_FANOUT_BITS; c++) out.push(this.node(depth + TREE_FANOUT_BITS, prefix * 16 + c));
    return out;
  }
}
