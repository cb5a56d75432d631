/**
 * Digests for anti-entropy.
 *
 * - `hash64(bytes)`: a 64-bit content hash (two MurmurHash3-32 passes with independent seeds) of bytes: an
 *   object's canonical encoding, or for a map (`TrackedCrdt`) its tree's root with `unkeyedBytes()` (see the
 *   engine's hashOf). Equal states give equal hashes on every replica.
 * - `KeyTree`: for map-like CRDTs that expose per-key digests (`KeyedCrdt`), a hash tree over key buckets.
 *   The bucket of a key at depth d is the top d bits of its 64-bit key hash; a node's hash is the wrapping sum
 *   of a 64-bit mix of (key hash, entry hash) over the keys in the bucket, so a parent is the sum of its
 *   children, any node is computed in O(log n) from prefix sums over the keys sorted by hash, and the tree
 *   never has to be materialised. The sync protocol descends it 4 bits (16 children) at a time and only
 *   along differing nodes, so the bytes exchanged grow with the number of differing keys times log(n), not
 *   with n. (Computed in TS here: the kernel's hashTree materialises whole levels, which the descent does not
 *   need.) A tree built with its keys is updated key by key (`KeyTree.update`) after merges that report the
 *   keys they changed (`TrackedCrdt`: local writes and merges alike), so an answer merged in many parts does
 *   not rehash the map per part, and a digest after local writes hashes only the keys written.
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
  keyHashes(): { keyHashes: Uint32Array; entryHashes: Uint32Array; keys?: readonly string[] };
  /**
   * A delta-state of only the keys whose hash falls in one of `buckets` (top `depth` bits of the key hash),
   * changing nothing else when merged. With `seen` (what the other side sent for the same buckets) it also
   * carries the removals of keys the other side still holds. `mine`, when given, are this object's keys in
   * those buckets (from a bucket tree of its current state; an implementation may ignore it).
   */
  deltaForBuckets(depth: number, buckets: Iterable<number>, seen?: Self, mine?: readonly string[]): Self;
}

/**
 * Keyed objects whose bucket tree can be kept up to date key by key (ORMap): `keyHashes()` names the key of
 * each digest, `onChange` reports the keys every change touched (every key whose entry hash may differ,
 * added or removed), and `keyHashesOf` hashes just those. Anti-entropy in many parts then costs each part
 * the keys it changed, not the whole map.
 */
export interface TrackedCrdt<Self = unknown> extends KeyedCrdt<Self> {
  keyHashes(): { keyHashes: Uint32Array; entryHashes: Uint32Array; keys: readonly string[] };
  keyHashesOf(keys: readonly string[]): KeyChanges;
  onChange(fn: (keys: string[]) => void): () => void;
  /** Canonical bytes of the state that the entry hashes leave out (see `ORMap.unkeyedBytes`). */
  unkeyedBytes(): Uint8Array;
  readonly size: number;
}

export function isTracked(c: unknown): c is TrackedCrdt {
  return (
    isKeyed(c) &&
    typeof (c as TrackedCrdt).keyHashesOf === 'function' &&
    typeof (c as TrackedCrdt).onChange === 'function' &&
    typeof (c as TrackedCrdt).unkeyedBytes === 'function'
  );
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

/** The two words a key adds to the hashes of its buckets, from its key hash and its entry hash. */
function mix1(kl: number, kh: number, el: number, eh: number): number {
  return fmix32(kl ^ Math.imul(el, 0x9e3779b1) ^ fmix32(kh ^ eh ^ 0x2545f491));
}
function mix2(kl: number, kh: number, el: number, eh: number): number {
  return fmix32((kh + Math.imul(eh, 0x85ebca6b)) ^ fmix32(kl ^ el ^ 0x5bd1e995) ^ 0x27d4eb2f);
}

/** Index of the first of `a[0..n)` (sorted) that is >= v (v may be 2^32 for "past the end"). */
function lowerBound(a: Uint32Array, n: number, v: number): number {
  let lo = 0, hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** New digests of some keys, for `KeyTree.update` (see `TrackedCrdt.keyHashesOf`). */
export interface KeyChanges {
  /** The keys (distinct), present or not. */
  keys: readonly string[];
  /** Per key, its 64-bit key hash (u32 pairs, low word first). */
  keyHashes: Uint32Array;
  /** Per key, its entry hash (u32 pairs); ignored for a key not present. */
  entryHashes: Uint32Array;
  /** Per key, 1 when the object holds it. */
  present: Uint8Array;
}

/** A key changed since the tree's sorted base was built. */
interface Change {
  key: string;
  khi: number;
  /** Its place in the base, or -1 when the base does not hold it. */
  base: number;
  present: boolean;
  /** Its words (see mix1, mix2) when present. */
  m1: number;
  m2: number;
}

const NO_KEYS = new Uint32Array(0);
const NO_SUMS = new Uint32Array(1);
const NO_COUNTS = new Int32Array(1);

/**
 * The bucket hash tree of one keyed object's state: a snapshot of `keyHashes()`, which `update` brings up to
 * date key by key when it was built with the keys (`updatable`).
 *
 * Layout: a base sorted by key hash with prefix sums, and the keys changed since (an overlay, sorted by key
 * hash, with prefix sums of what each change adds to its buckets: new words less old, +1/-1 keys). A node is
 * the base's range plus the overlay's range. The overlay is folded into a new base once it holds more than
 * about twice the square root of the base's keys, so updating k keys costs about k log k plus an amortised
 * share of the fold, not the whole map. Nodes are exactly those of a tree built afresh from the same state.
 */
export class KeyTree {
  /** Base: key hash high words, sorted (unsigned). */
  private khi: Uint32Array;
  /** Base: prefix sums (mod 2^32) of the two words per key, in sorted order; length n + 1. */
  private s1: Uint32Array;
  private s2: Uint32Array;
  /** Base: the keys, in sorted order (when given). */
  private keys: string[] | undefined;
  private baseN: number;
  /** Overlay: changes since the base was built, by key, and the same sorted by key hash with prefix sums. */
  private changes: Map<string, Change> | undefined;
  private oKhi: Uint32Array = NO_KEYS;
  private oS1: Uint32Array = NO_SUMS;
  private oS2: Uint32Array = NO_SUMS;
  private oCount: Int32Array = NO_COUNTS;
  private oList: Change[] = [];

  /**
   * From per-key digests (see `KeyedCrdt.keyHashes`). With `keys` (the key of each entry, in the same order)
   * the tree can be updated (`update`) and lists the keys of its buckets (`keysIn`).
   */
  constructor(d: { keyHashes: Uint32Array; entryHashes: Uint32Array; keys?: readonly string[] }) {
    const n = d.keyHashes.length >>> 1;
    this.baseN = n;
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
      this.s1[j + 1] = (this.s1[j] + mix1(kl, kh, el, eh)) >>> 0;
      this.s2[j + 1] = (this.s2[j] + mix2(kl, kh, el, eh)) >>> 0;
    }
    if (d.keys !== undefined) {
      if (d.keys.length !== n) throw new RangeError('KeyTree: one key per entry');
      const names = new Array<string>(n);
      for (let j = 0; j < n; j++) names[j] = d.keys[order[j]];
      this.keys = names;
    }
  }

  /** Number of keys. */
  get n(): number {
    return this.baseN + this.oCount[this.oList.length];
  }

  /** True when the tree knows its keys: `update` and `keysIn` work. */
  get updatable(): boolean {
    return this.keys !== undefined;
  }

  /** The node for bucket `prefix` at `depth` (0..16). */
  node(depth: number, prefix: number): TreeNode {
    const [start, end, a, b] = this.span(depth, prefix);
    let lo = this.s1[end] - this.s1[start], hi = this.s2[end] - this.s2[start], count = end - start;
    if (b > a) {
      lo += this.oS1[b] - this.oS1[a];
      hi += this.oS2[b] - this.oS2[a];
      count += this.oCount[b] - this.oCount[a];
    }
    return { lo: lo >>> 0, hi: hi >>> 0, count };
  }

  /** Bucket `prefix` at `depth` as index ranges: [start, end) of the base, [a, b) of the overlay. */
  private span(depth: number, prefix: number): [number, number, number, number] {
    const n = this.baseN, m = this.oList.length;
    if (depth === 0) return [0, n, 0, m];
    const shift = 32 - depth;
    const from = prefix * 2 ** shift, to = (prefix + 1) * 2 ** shift;
    const a = m === 0 ? 0 : lowerBound(this.oKhi, m, from), b = m === 0 ? 0 : lowerBound(this.oKhi, m, to);
    return [lowerBound(this.khi, n, from), lowerBound(this.khi, n, to), a, b];
  }

  /** The 16 children (depth + 4) of bucket `prefix` at `depth`. */
  children(depth: number, prefix: number): TreeNode[] {
    const out: TreeNode[] = [];
    for (let c = 0; c < 1 << TREE_FANOUT_BITS; c++) out.push(this.node(depth + TREE_FANOUT_BITS, prefix * 16 + c));
    return out;
  }

  /**
   * The keys in buckets `prefixes` at `depth` (each bucket once, whatever the repeats), or undefined when the
   * tree was built without keys.
   */
  keysIn(depth: number, prefixes: Iterable<number>): string[] | undefined {
    const keys = this.keys;
    if (keys === undefined) return undefined;
    const out: string[] = [];
    // each bucket once: a peer may name one many times (its keys would be listed once per naming)
    for (const prefix of new Set(prefixes)) {
      const [start, end, a, b] = this.span(depth, prefix);
      for (let j = start; j < end; j++) if (this.changes === undefined || !this.changes.has(keys[j])) out.push(keys[j]);
      for (let j = a; j < b; j++) if (this.oList[j].present) out.push(this.oList[j].key);
    }
    return out;
  }

  /**
   * Bring the tree up to date for these keys (their new digests: see `KeyChanges`); every other key must be
   * as it was. Afterwards every node is what a tree built from the object's `keyHashes()` would give. Throws
   * (changing nothing) when the tree was built without keys.
   */
  update(c: KeyChanges): void {
    const names = this.keys;
    if (names === undefined) throw new Error('KeyTree: built without keys, cannot update');
    const changes = (this.changes ??= new Map());
    for (let i = 0; i < c.keys.length; i++) {
      const key = c.keys[i];
      const kl = c.keyHashes[2 * i], kh = c.keyHashes[2 * i + 1];
      let ch = changes.get(key);
      if (ch === undefined) {
        // its place in the base: among the entries with its key hash's high word
        let base = -1;
        for (let j = lowerBound(this.khi, this.baseN, kh); j < this.baseN && this.khi[j] === kh; j++) {
          if (names[j] === key) {
            base = j;
            break;
          }
        }
        ch = { key, khi: kh, base, present: false, m1: 0, m2: 0 };
        changes.set(key, ch);
      }
      ch.present = c.present[i] === 1;
      if (ch.present) {
        const el = c.entryHashes[2 * i], eh = c.entryHashes[2 * i + 1];
        ch.m1 = mix1(kl, kh, el, eh);
        ch.m2 = mix2(kl, kh, el, eh);
      }
    }
    if (changes.size > 64 + 2 * Math.sqrt(this.baseN)) this.fold();
    else this.sortChanges();
  }

  /** The overlay's sorted arrays and prefix sums, from `changes`. */
  private sortChanges(): void {
    const list = [...this.changes!.values()].sort((a, b) => a.khi - b.khi);
    const m = list.length;
    const khi = new Uint32Array(m), s1 = new Uint32Array(m + 1), s2 = new Uint32Array(m + 1), count = new Int32Array(m + 1);
    for (let j = 0; j < m; j++) {
      const ch = list[j];
      khi[j] = ch.khi;
      let d1 = ch.present ? ch.m1 : 0, d2 = ch.present ? ch.m2 : 0, dc = ch.present ? 1 : 0;
      if (ch.base >= 0) {
        d1 -= this.s1[ch.base + 1] - this.s1[ch.base];
        d2 -= this.s2[ch.base + 1] - this.s2[ch.base];
        dc--;
      }
      s1[j + 1] = (s1[j] + d1) >>> 0;
      s2[j + 1] = (s2[j] + d2) >>> 0;
      count[j + 1] = count[j] + dc;
    }
    this.oList = list;
    this.oKhi = khi;
    this.oS1 = s1;
    this.oS2 = s2;
    this.oCount = count;
  }

  /** A new base holding the overlay's changes; the overlay empty. */
  private fold(): void {
    const names = this.keys!;
    const n = this.baseN;
    const gone = new Uint8Array(n);
    const adds: Change[] = [];
    for (const ch of this.changes!.values()) {
      if (ch.base >= 0) gone[ch.base] = 1;
      if (ch.present) adds.push(ch);
    }
    adds.sort((a, b) => a.khi - b.khi);
    let size = adds.length;
    for (let j = 0; j < n; j++) if (gone[j] === 0) size++;
    const khi = new Uint32Array(size), s1 = new Uint32Array(size + 1), s2 = new Uint32Array(size + 1);
    const keys = new Array<string>(size);
    let j = 0, a = 0;
    for (let k = 0; k < size; k++) {
      while (j < n && gone[j] === 1) j++;
      if (j < n && (a === adds.length || this.khi[j] <= adds[a].khi)) {
        khi[k] = this.khi[j];
        keys[k] = names[j];
        s1[k + 1] = (s1[k] + this.s1[j + 1] - this.s1[j]) >>> 0;
        s2[k + 1] = (s2[k] + this.s2[j + 1] - this.s2[j]) >>> 0;
        j++;
      } else {
        const ch = adds[a++];
        khi[k] = ch.khi;
        keys[k] = ch.key;
        s1[k + 1] = (s1[k] + ch.m1) >>> 0;
        s2[k + 1] = (s2[k] + ch.m2) >>> 0;
      }
    }
    this.khi = khi;
    this.s1 = s1;
    this.s2 = s2;
    this.keys = keys;
    this.baseN = size;
    this.changes = undefined;
    this.oList = [];
    this.oKhi = NO_KEYS;
    this.oS1 = NO_SUMS;
    this.oS2 = NO_SUMS;
    this.oCount = NO_COUNTS;
  }
}
