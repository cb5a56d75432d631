/**
 * Observed-remove map: string keys to LWW values or nested CRDTs. It carries the cluster metadata, so its
 * state is columnar and its merge is one kernel call.
 *
 * ## Semantics
 * - The map is a dot store: every write (`setLWW`, or a mutation of a nested value) creates a new dot for its
 *   key and retires the dots this replica has observed for that key. `delete(key)` retires them too (the
 *   causal context remembers them, so no tombstone is kept). A write concurrent with a delete carries a dot
 *   the deleter never saw, so the write survives: observed-remove, add wins.
 * - A key may hold several surviving dots after concurrent writes; each dot keeps its own value and HLC
 *   timestamp, and reads pick the winner by (timestamp, replica id string) (last writer wins). The losers
 *   stay until a later write or delete that has observed them retires them, which keeps merge associative.
 *   A write's timestamp is `hlc.now()`, raised above the timestamps of the dots it retires, so a causal
 *   overwrite always wins, even against a clock that ran ahead.
 * - Nested CRDTs: `counter(key)` (PNCounter), `orSet(key)` (ORSet), `register(key)` (MVRegister) and
 *   `map(key)` (ORMap). Mutating the returned instance creates a dot for the key in this map. Nested values
 *   are "keep-state": `delete(key)` hides the key, but the nested state is kept (merged as a grow-only
 *   lattice), so a later or concurrent update revives the key with its accumulated state (a counter
 *   continues from its value). Reset-on-delete would break associativity for non-dot nested types. A key
 *   written as an LWW value on one replica and as a nested CRDT on another follows the same winner rule;
 *   `get` returns the nested instance when a nested dot wins. Do not call `takeDelta` on a nested instance
 *   yourself: the map collects nested deltas into its own.
 * - `takeDelta()` carries everything that changed since the last take, local writes and merges alike (the
 *   rows of the keys touched, with the retired dots and the merged contexts as the delta's context; every
 *   row whose dot that context covers comes along, so the delta never removes what it should keep).
 *
 * ## State (columnar)
 * One row per dot, in typed-array columns: replica index, dot counter (u32, widened to f64 past 2^32),
 * HLC timestamp, kind, value chunk/offset/length, a next-row link for keys with several dots, and a
 * changed-since-last-delta flag. A `KeyIndex` (open addressing over an Int32Array) finds a key's first row;
 * the key string is the only per-key JS object. Freed rows are reused. Values are kept as the writer's
 * msgpack bytes in a chunked arena (chunks of a quarter of the bytes in use, 256 B to 256 KiB: growth never
 * copies, slack is at most one chunk; compacted when over half is garbage) and decoded lazily on `get`, with
 * a small droppable cache. Measured: about 300 bytes per key for a 100,000-VM map whose msgpack values
 * average 215 bytes (so about 85 bytes of overhead per key, the key string included).
 *
 * ## Merge
 * The rows the other can affect (keys the other holds, and rows whose dot the other's context covers: one
 * tight scan over the typed columns) and all the other's rows go to the kernel's `dotMerge` in one call,
 * sorted by (key number, replica, counter); losers are unlinked, winners copied with their value bytes. The
 * kernel's 64-bit "key" is a per-merge key number (a key's first row here, fresh numbers for keys new here)
 * rather than a key hash: the merge needs only a consistent order and equality, the number costs the index
 * lookup the merge does anyway, while hashing every incoming key cost more than the rest of the merge
 * (measured), and two keys can never collide. 64-bit key hashes (xxHash64 of the UTF-8 bytes, or the
 * `keyHash` test hook) serve the anti-entropy digests only and are computed in one batch when asked for.
 *
 * ## Encoding (columnar, canonical)
 * version, type tag, causal context; key count, then the keys sorted (JS string order), front-coded on
 * their UTF-8 bytes (shared prefix length with the previous key, then the rest, length-prefixed); dot count
 * per key; per dot `replica index * 8 + kind`; per dot its counter; the timestamp base (the minimum) then
 * per dot `ts - base`; per LWW dot its value, length-prefixed, through per-encoding dictionaries of strings
 * and map shapes (a repeated string of 3..255 bytes, the field names of a record whose key set was seen
 * before, or a string equal to the row's key, become a short reference; see value-column.ts; decoding
 * restores the exact bytes); finally the
 * non-empty nested states, sorted by key then kind, as (kind, key, nested encoding). For the 1,000-VM
 * workload this is about a third of the bytes of the plain msgpack values.
 * Expansion bound: shared key prefixes and value references each make decode rebuild bytes that are not on
 * the wire; writer and reader cap both at (EXPANSION_RATIO - 1) times the encoding's bytes so far (the writer
 * writes a key or value in full rather than break it), so an M-byte message decodes to at most 16M bytes of
 * keys and 16M bytes of values, nested maps included (see value-column.ts and writeKeys).
 *
 * ## Anti-entropy
 * `keyHashes()` gives per key a 64-bit key hash and a 64-bit entry hash (one kernel call each),
 * `hashTree(depth)` the kernel's bucketed hash tree over them, and `deltaForKeys(keys, seen?)` /
 * `deltaForBuckets(depth, buckets, seen?)` a state of only those keys, so bytes grow with the difference.
 * Protocol: B sends `deltaForKeys(diff)`; A merges it and answers `deltaForKeys(diff, thatDelta)`, which also
 * carries the dots A has retired that B still holds, so deletes propagate too.
 */
import { DecodeError, ValidationError } from '../errors.js';
import { Reader, Writer, varuintSize } from '../codec/binary.js';
import { decodeValue, encodeValue, isWellFormedString } from '../codec/value.js';
import { latin1 } from '../codec/msgpack.js';
import { HLC } from '../clock/hlc.js';
import { CausalContext, exhausted, DotList, hashStringsMany, inverseMap, cmpDots, kernel, mergeDots, rangesHave, assertDistinctDots, withOneMore } from './causal-context.js';
import { MVRegister } from './mv-register.js';
import { ORSet, copyContext, readHeader } from './or-set.js';
import { PNCounter } from './pn-counter.js';
import { defaultHlc } from './lww-register.js';
import { checkMergeType, CODEC_VERSION, CRDT_TYPE, type Crdt } from './types.js';
import { disposeInstance } from './dispose.js';
import { EXPANSION_RATIO, Expander, MAX_CHUNK, ValueColumnWriter, decodeChunkSize } from './value-column.js';
import { checkReplicaId, DECODED_REPLICA_ID } from './replicas.js';

/** Empty columns shared by every map until its first row (length 0: nothing is ever written to them). */
const NO_U32 = new Uint32Array(0);
const NO_I32 = new Int32Array(0);
const NO_U16 = new Uint16Array(0);
const NO_U8 = new Uint8Array(0);
const NO_F64 = new Float64Array(0);
/** Row capacities up to this many get one small (V8 on-heap: <= 64 bytes) typed array per column (growRows). */
const SMALL_ROWS = 8;
/**
 * @internal Merges where both maps have at most `smallRows` rows (a nested map, a small delta into one)
 * find their losers and winners by direct lookups (smallMergeRows) instead of the dot-merge kernel, whose
 * dot lists, context columns and call cost more than the rows they serve. Tests lower it to compare paths.
 */
export const mergeTuning = { smallRows: 32 };

/** Node's native byte-range compare (`Buffer.prototype.compare`, a memcmp; it takes any Uint8Array), else undefined (browsers). */
const nativeCompare = (globalThis as { Buffer?: { prototype: { compare: (this: Uint8Array, target: Uint8Array, ts: number, te: number, ss: number, se: number) => number } } }).Buffer?.prototype.compare;

/**
 * `arr` with `x` appended: a new array of exactly the size while short (a push would reserve 17 more slots,
 * and a small map's chunk list mostly holds a few), pushed from 8 elements on.
 */
function appended<T>(arr: T[], x: T): T[] {
  if (arr.length < 8) return withOneMore(arr, x);
  arr.push(x);
  return arr;
}

/** `to` holding `from`'s values at its start (a grown column). */
function filled<A extends Uint32Array | Int32Array | Uint16Array | Uint8Array | Float64Array>(to: A, from: ArrayLike<number>): A {
  to.set(from);
  return to;
}
/** Empty containers shared by every map until it needs its own: writing to one throws (a missed "own" call
 * fails loudly instead of leaking into other maps). A delta or a nested map mostly never needs them. */
class SharedEmptyMap<K, V> extends Map<K, V> {
  override set(): this {
    throw new Error('internal: write to a shared empty map');
  }
}
class SharedEmptySet<T> extends Set<T> {
  override add(): this {
    throw new Error('internal: write to a shared empty set');
  }
}
const NO_NESTED: Map<string, NestedCrdt> = new SharedEmptyMap();
const NO_TOUCHED: Set<string> = new SharedEmptySet();
const NO_LISTENERS: ((keys: string[]) => void)[] = Object.freeze([]) as unknown as ((keys: string[]) => void)[];
const NO_FREE: number[] = Object.freeze([]) as unknown as number[];
/** The key index's empty table, shared until a map's first key (never written). */
const NO_SLOTS = new Int32Array(16);
/** Below this many slots an index keeps no tag bytes (a typed array costs more than the probes it saves). */
const TAGGED_SLOTS = 256;

/** Kind of a dot's value: an LWW value, or which nested CRDT. Stable: part of the wire format. */
export const ORMAP_KIND = { LWW: 0, Counter: 1, ORSet: 2, MVRegister: 3, ORMap: 4 } as const;
const KIND_COUNT = 5;

export interface ORMapOptions {
  /**
   * Hybrid logical clock for LWW timestamps. Default: the process-wide HLC over `Date.now` (as LWWRegister).
   * For deterministic simulation inject `new HLC({ now: () => scheduler.now() })`. Nested maps share it.
   */
  clock?: HLC;
  /**
   * Test hook: replaces the 64-bit key hash (xxHash64 of the key's UTF-8 bytes) with `[lo, hi]` u32 words.
   * Must be the same function on every replica; used to force hash collisions in tests.
   */
  keyHash?: (key: string) => [number, number];
}

/** A nested value: one of the four nested CRDT types. */
export type NestedCrdt = PNCounter | ORSet<unknown> | MVRegister<unknown> | ORMap<unknown>;

/** A nested counter (every counter reports its local mutations through `onLocalChange`, which the map hooks). */
class MapCounter extends PNCounter {
  /** @internal called after a `merge` that changed it (see ORMap.hook). */
  onMerged: (() => void) | undefined;

  protected override empty(replicaId: string): this {
    return new MapCounter(replicaId) as this;
  }

  override merge(other: this): boolean {
    // through a handle (hooked): the map must be able to record it before anything changes
    if (this.onMerged !== undefined) this.beforeLocalChange?.(true);
    const changed = super.merge(other);
    if (changed) this.onMerged?.();
    return changed;
  }
}

/**
 * Smallest value chunk after a map's first: V8 keeps a typed array of at most 64 bytes on its heap, allocated
 * inline, where a bigger one gets an ArrayBuffer with a backing store of its own (several times the cost to
 * allocate and to collect). A nested map per VM takes such a chunk for its first overwrite after a load (its
 * first chunk is exactly its values): a few dozen bytes, and a 256-byte chunk was the costliest allocation of
 * merging a delta into it.
 */
const MIN_CHUNK = 64;
/** Smallest first chunk of a map written key by key (room for a VM record's fields, written one at a time). */
const FIRST_CHUNK = 256;
/**
 * A map of at most SMALL_MAP_ROWS rows whose values fill at most 4 KiB compacts its arena (when over half is
 * garbage) once it has this many chunks.
 */
const SMALL_MAP_CHUNKS = 8;
const SMALL_MAP_ROWS = 64;

const MAX_NESTING = 32;
/** Per-row flags of a merge (rows already in its A list); all zero between merges, grown on demand. */
let markScratch = new Uint8Array(1024);
const CACHE_LIMIT = 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const textEncoder = new TextEncoder();

/** Anti-entropy view of a map: per key (sorted), 64-bit key hash and 64-bit entry hash as u32 pairs. */
export interface KeyHashes {
  keys: string[];
  keyHashes: Uint32Array;
  entryHashes: Uint32Array;
}

export class ORMap<V = unknown> implements Crdt<ORMap<V>> {
  readonly replicaId: string;
  readonly typeTag: number = CRDT_TYPE.ORMap;
  /** @internal the causal context (dots seen). */
  readonly ctx = new CausalContext();
  private readonly me: number;
  private readonly clock: HLC;
  private readonly keyHash: ((key: string) => [number, number]) | undefined;

  // --- rows (one per dot) ---
  private cap = 0;
  private top = 0; // rows ever allocated (high-water mark)
  private free: number[] = NO_FREE; // own array from the first freed row
  private rowKey: (string | undefined)[] = [];
  // The columns are views on one ArrayBuffer per capacity (see growRows); before the first row they are
  // shared empty arrays, so a new map (a delta, a nested map) allocates none.
  private rep: Uint32Array = NO_U32;
  /** Dot counters: u32 until a counter passes 2^32 - 1, then f64 (exact to MAX_SAFE_INTEGER). */
  private ctr: Uint32Array | Float64Array = NO_U32;
  private ts: Float64Array = NO_F64;
  private voff: Uint32Array = NO_U32;
  private vlen: Uint32Array = NO_U32;
  private kind: Uint8Array = NO_U8;
  private nextRow: Int32Array = NO_I32;
  /** Rows changed since the last takeDelta (flag per row, plus the list of flagged rows). */
  private drow: Uint8Array = NO_U8;
  private dlist: Int32Array = NO_I32;
  private dn = 0;
  private head = new KeyIndex(this.rowKey);

  // --- value arena: chunks (growth never copies), compacted when over half is garbage ---
  private chunks: Uint8Array[] = [];
  private vchunk: Uint16Array = NO_U16;
  private fill = 0; // bytes used in the last chunk
  private used = 0; // bytes used in all chunks, garbage included
  private garbage = 0;
  /** Decoded values by row, made on the first read (most nested maps and deltas are never read). */
  private cache: Map<number, unknown> | undefined;

  // --- nested values: kind char + key -> instance ---
  private nested = NO_NESTED; // own map from the first nested value (ownNested)

  // --- pending delta ---
  private removed: number[] = [];
  /** Contexts merged in since the last take (a delta carries merged state too). */
  private merged: CausalContext | undefined;
  private touchedNested = NO_TOUCHED; // own set from the first nested write (touch)

  // --- change tracking ---
  private listeners = NO_LISTENERS;
  private changed: Set<string> | undefined;
  /** @internal called after every local mutation (a parent ORMap uses it for nested maps). */
  onLocalChange: (() => void) | undefined;
  /** @internal called before every local mutation, which it may refuse by throwing (a parent ORMap checks it can record the write). */
  beforeLocalChange: ((before: true) => void) | undefined;
  /** @internal called after a `merge` that changed this map (a parent ORMap uses it for nested maps). */
  onMerged: (() => void) | undefined;

  constructor(replicaId: string, options: ORMapOptions = {}) {
    this.me = this.ctx.intern(checkReplicaId(replicaId));
    this.replicaId = replicaId;
    this.clock = options.clock ?? defaultHlc();
    this.keyHash = options.keyHash;
  }

  // ===================================================================================================
  // reads

  /** The value of `key`: the winning LWW value (decoded lazily, cached; treat as read-only), the nested
   * CRDT instance when a nested write wins, or undefined when the key is absent. */
  get(key: string): V | NestedCrdt | undefined {
    const row = this.winner(key);
    if (row < 0) return undefined;
    const k = this.kind[row];
    if (k === ORMAP_KIND.LWW) return this.valueAt(row) as V;
    return this.nestedFor(k, key);
  }

  /**
   * @internal The value of `key` decoded anew: shared with nothing and not cached, for callers that hand values
   * out as copies (the cluster API), which then need no clone and leave the read cache to other reads. A nested
   * winner is its instance, as from `get`.
   */
  getCopy(key: string): V | NestedCrdt | undefined {
    const row = this.winner(key);
    if (row < 0) return undefined;
    const k = this.kind[row];
    if (k !== ORMAP_KIND.LWW) return this.nestedFor(k, key);
    const o = this.voff[row];
    return decodeValue(this.chunks[this.vchunk[row]].subarray(o, o + this.vlen[row])) as V;
  }

  has(key: string): boolean {
    return this.head.has(key);
  }

  /** The present keys, sorted (JS string order). */
  keys(): string[] {
    // the default sort orders strings by UTF-16 code units, as cmpStr does, without a JS call per comparison
    return [...this.head.keys()].sort();
  }

  /** @internal The present keys in no particular order (a new array): `keys()` without its sort. */
  unsortedKeys(): string[] {
    return [...this.head.keys()];
  }

  /** [key, value] for every present key, sorted by key. */
  entries(): [string, V | NestedCrdt][] {
    return this.keys().map((k) => [k, this.get(k)!]);
  }

  get size(): number {
    return this.head.size;
  }

  /** HLC timestamp of the winning write of `key` (undefined when absent). */
  timestamp(key: string): number | undefined {
    const row = this.winner(key);
    return row < 0 ? undefined : this.ts[row];
  }

  private winner(key: string): number {
    let row = this.head.get(key);
    if (row === undefined) return -1;
    let best = row;
    for (row = this.nextRow[row]; row >= 0; row = this.nextRow[row]) if (this.beats(row, best)) best = row;
    return best;
  }

  /** Row a beats row b by (timestamp, replica id string, counter). */
  private beats(a: number, b: number): boolean {
    if (this.ts[a] !== this.ts[b]) return this.ts[a] > this.ts[b];
    const ia = this.ctx.ids[this.rep[a]], ib = this.ctx.ids[this.rep[b]];
    if (ia !== ib) return ia > ib;
    return this.ctr[a] > this.ctr[b];
  }

  private valueAt(row: number): unknown {
    const cache = (this.cache ??= new Map());
    const hit = cache.get(row);
    if (hit !== undefined || cache.has(row)) return hit;
    const o = this.voff[row];
    const v = decodeValue(this.chunks[this.vchunk[row]].subarray(o, o + this.vlen[row]));
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(row, v);
    return v;
  }

  // ===================================================================================================
  // local writes

  /** Set `key` to `value` (last writer wins by HLC timestamp, then replica id). */
  setLWW(key: string, value: V): void {
    const hk = checkedIndexHash(key); // one pass over the key: its index hash and its well-formedness
    // a short string goes straight into the arena (no intermediate bytes); anything else is encoded first,
    // so a value msgpack cannot carry throws before any change
    const bytes = typeof value === 'string' && value.length < 0x20 ? undefined : encodeValue(value);
    const c = this.ctx.checkNext(this.me); // taken (ctx.add) once nothing can throw any more
    this.beforeLocalChange?.(true);
    const h = this.head.getHashed(key, hk);
    if (h !== undefined && this.nextRow[h] < 0) {
      // the common overwrite (one surviving dot): the same as retiring it and adding a row, which would
      // reuse this very row, without taking the key out of the index and putting it back
      const ts = this.writeTs(h, this.clock.now());
      this.removed.push(this.rep[h], this.ctr[h]);
      const oldLen = this.vlen[h]; // 0 for a nested dot
      this.vlen[h] = 0;
      this.cache?.delete(h);
      this.rep[h] = this.me;
      this.ctx.add(this.me, c);
      this.setCounter(h, c);
      this.ts[h] = ts;
      this.kind[h] = ORMAP_KIND.LWW;
      this.markDirty(h);
      if (oldLen === 0 || !this.putOver(h, value, bytes, oldLen)) {
        this.garbage += oldLen;
        this.putLocal(h, value, bytes);
      }
      this.noteLocal(key);
      return;
    }
    // a new key needs no retiring (and no second index lookup)
    const ts = h === undefined ? this.clock.now() : this.retire(key, hk);
    this.ctx.add(this.me, c);
    const row = this.addRow(key, this.me, c, ts, ORMAP_KIND.LWW, true, hk);
    this.putLocal(row, value, bytes);
    this.noteLocal(key);
  }

  /**
   * Overwrite in place: store the new value of `row` where its old value (`oldLen` bytes, no longer
   * referenced by anything: values are copied out, never lent) was, when it fits there, or when the old value
   * ends the arena's last chunk and the new one fits in that chunk. A same-kind record rewritten with a new
   * status or timestamp mostly keeps its length, so overwrites stop growing the arena and compacting it.
   * False (nothing stored, the old bytes possibly clobbered) when neither applies: the caller appends.
   */
  private putOver(row: number, value: unknown, bytes: Uint8Array | undefined, oldLen: number): boolean {
    const n = bytes === undefined ? (value as string).length + 1 : bytes.length;
    const vc = this.vchunk[row], at = this.voff[row];
    const c = this.chunks[vc];
    const atEnd = vc === this.chunks.length - 1 && at + oldLen === this.fill;
    if (n > oldLen && !(atEnd && at + n <= c.length)) return false;
    if (bytes === undefined) {
      const s = value as string;
      for (let i = 1; i < n; i++) {
        const ch = s.charCodeAt(i - 1);
        if (ch >= 0x80) return false; // not a fixstr: encodeValue gives its canonical bytes
        c[at + i] = ch;
      }
      c[at] = 0xa0 | (n - 1);
    } else if (n <= 48) for (let i = 0; i < n; i++) c[at + i] = bytes[i];
    else c.set(bytes, at);
    this.vlen[row] = n;
    if (atEnd) {
      this.fill = at + n;
      this.used += n - oldLen;
    } else this.garbage += oldLen - n;
    return true;
  }

  /** Store a local write's value: its encoding, or a short string written as a fixstr in place. */
  private putLocal(row: number, value: unknown, bytes: Uint8Array | undefined): void {
    if (bytes === undefined && !this.putFixstr(row, value as string)) bytes = encodeValue(value);
    if (bytes !== undefined) this.putValue(row, bytes, 0, bytes.length);
  }

  /** Write a string of fewer than 32 chars as a msgpack fixstr straight into the arena; false (nothing
   * stored) when it is not all ASCII (its canonical bytes then come from `encodeValue`). */
  private putFixstr(row: number, s: string): boolean {
    const n = s.length;
    const last = this.roomFor(n + 1);
    const c = this.chunks[last];
    const at = this.fill;
    for (let i = 0; i < n; i++) {
      const ch = s.charCodeAt(i);
      if (ch >= 0x80) return false; // the bytes written past `fill` are not kept
      c[at + 1 + i] = ch;
    }
    c[at] = 0xa0 | n;
    this.placed(row, last, n + 1);
    return true;
  }

  /** Remove `key` (observed-remove: a concurrent write survives). Returns true when the key was present. */
  delete(key: string): boolean {
    let row = this.head.get(key) ?? -1;
    if (row < 0) return false;
    this.beforeLocalChange?.(true);
    this.head.delete(key); // before the rows are freed: the index compares keys through them
    while (row >= 0) {
      const next: number = this.nextRow[row];
      this.removed.push(this.rep[row], this.ctr[row]);
      this.freeRow(row);
      row = next;
    }
    this.noteLocal(key);
    return true;
  }

  /** The PN-Counter at `key` (created empty when new; the key appears once it is mutated). */
  counter(key: string): PNCounter {
    return this.nestedAccess(ORMAP_KIND.Counter, key) as PNCounter;
  }

  /** The OR-Set at `key` (created empty when new; the key appears once it is mutated). */
  orSet<T = unknown>(key: string): ORSet<T> {
    return this.nestedAccess(ORMAP_KIND.ORSet, key) as ORSet<T>;
  }

  /** The MV-Register at `key` (created empty when new; the key appears once it is mutated). */
  register<T = unknown>(key: string): MVRegister<T> {
    return this.nestedAccess(ORMAP_KIND.MVRegister, key) as MVRegister<T>;
  }

  /** The nested OR-Map at `key` (created empty when new; the key appears once it is mutated). */
  map<T = unknown>(key: string): ORMap<T> {
    return this.nestedAccess(ORMAP_KIND.ORMap, key) as ORMap<T>;
  }

  private nestedAccess(kind: number, key: string): NestedCrdt {
    checkKey(key);
    return this.nestedFor(kind, key);
  }

  /** The nested instance for (kind, key), created (with its change hook) when new. */
  private nestedFor(kind: number, key: string): NestedCrdt {
    const nk = String.fromCharCode(48 + kind) + key;
    let inst = this.nested.get(nk);
    if (inst === undefined) {
      inst = this.newNested(kind);
      this.hook(kind, key, inst);
      this.ownNested().set(nk, inst);
    }
    return inst;
  }

  private newNested(kind: number): NestedCrdt {
    let inst: NestedCrdt & { onLocalChange: (() => void) | undefined };
    switch (kind) {
      case ORMAP_KIND.Counter: inst = new MapCounter(this.replicaId); break;
      case ORMAP_KIND.ORSet: inst = new ORSet(this.replicaId); break;
      case ORMAP_KIND.MVRegister: inst = new MVRegister(this.replicaId); break;
      default: inst = this.sibling<unknown>();
    }
    return inst;
  }

  /**
   * Hook the nested instance at (kind, key) so that its local mutations create dots here, and so does a merge
   * into it through its handle (`map.map(key).merge(x)`): a local write of the key like any other, which
   * this map's delta then carries with the nested state, and which its change listeners hear of (a merge of
   * this map into its nested values is not one: mergeWith unhooks them meanwhile).
   */
  private hook(kind: number, key: string, inst: NestedCrdt): void {
    const nk = String.fromCharCode(48 + kind) + key;
    const hk = indexHash(key);
    const hooked = inst as { onLocalChange: (() => void) | undefined; onMerged: (() => void) | undefined; beforeLocalChange: ((before: true) => void) | undefined };
    // one closure for the three hooks (a nested value per key: memory counts); `before` asks for the check only
    hooked.onLocalChange = hooked.onMerged = hooked.beforeLocalChange = (before?: true) => (before ? this.checkWrite(key, hk) : this.nestedWrite(kind, key, nk, hk));
  }

  /**
   * Throw (RangeError) unless a local write of `key` can be recorded: a dot and a timestamp above the key's
   * current ones, and whatever this map's own parent needs. A nested value calls it before it changes.
   */
  private checkWrite(key: string, hk: number): void {
    this.ctx.checkNext(this.me);
    this.writeTs(this.head.getHashed(key, hk) ?? -1, 0);
    this.beforeLocalChange?.(true);
  }

  private nestedWrite(kind: number, key: string, nk: string, hk: number): void {
    const c = this.ctx.checkNext(this.me);
    const ts = this.retire(key, hk);
    this.ctx.add(this.me, c);
    this.addRow(key, this.me, c, ts, kind, true, hk);
    this.touch(nk);
    this.noteLocal(key);
  }

  /** Retire every row of `key` (index hash `hk`; recorded as a local removal); returns a timestamp for the new
   * write, which the caller adds at once with `addRow`. */
  private retire(key: string, hk: number): number {
    let row = this.head.getHashed(key, hk) ?? -1;
    // the timestamp first (it may have none: RangeError), then the changes
    const ts = this.writeTs(row, this.clock.now());
    if (row < 0) return ts;
    this.head.deleteHashed(key, hk);
    while (row >= 0) {
      const next: number = this.nextRow[row];
      this.removed.push(this.rep[row], this.ctr[row]);
      this.freeRow(row);
      row = next;
    }
    return ts;
  }


  /**
   * A local write's timestamp for the key whose rows start at `row` (-1: none): at least `from` and above every
   * row's, so the write wins. RangeError (E_EXHAUSTED), for the caller to throw before it changes anything, when
   * that passes MAX_SAFE_INTEGER, which only a peer's row stamped at the very top can cause (a timestamp past it
   * would make every encoding after it throw).
   */
  private writeTs(row: number, from: number): number {
    let ts = from;
    for (let r = row; r >= 0; r = this.nextRow[r]) if (this.ts[r] >= ts) ts = this.ts[r] + 1;
    if (ts > Number.MAX_SAFE_INTEGER) throw exhausted('no timestamp above the key\'s current one (a peer stamped it MAX_SAFE_INTEGER)');
    return ts;
  }

  /** This map's own nested-instance map (created on first use). */
  private ownNested(): Map<string, NestedCrdt> {
    return this.nested === NO_NESTED ? (this.nested = new Map()) : this.nested;
  }

  /** Flag the nested instance `nk` for the next delta. */
  private touch(nk: string): void {
    if (this.touchedNested === NO_TOUCHED) this.touchedNested = new Set();
    this.touchedNested.add(nk);
  }

  private noteLocal(key: string): void {
    if (this.changed !== undefined) this.changed.add(key);
    try {
      if (this.listeners.length > 0) this.emit([key]);
    } finally {
      this.onLocalChange?.(); // a parent's or the engine's hook hears of it whatever a listener threw
    }
  }

  // ===================================================================================================
  // change hooks

  /** Call `fn(keys)` after each local write and each merge that changed keys. Returns an unsubscribe. */
  onChange(fn: (keys: string[]) => void): () => void {
    this.listeners = [...this.listeners, fn];
    return () => {
      this.listeners = this.listeners.filter((f) => f !== fn);
    };
  }

  /**
   * Keys changed (by local writes or merges) since the previous call. Tracking starts with the first call
   * (which returns []), so a map nobody asks costs nothing.
   */
  takeChangedKeys(): string[] {
    if (this.changed === undefined) {
      this.changed = new Set();
      return [];
    }
    const out = [...this.changed].sort(cmpStr);
    this.changed.clear();
    return out;
  }

  /**
   * Call every listener with `keys`, then rethrow the first error one threw: a listener that throws must not
   * keep the others (the engine's kept tree among them) from hearing of the change.
   */
  private emit(keys: string[]): void {
    let failed: { error: unknown } | undefined;
    // no copy: `listeners` is replaced, never changed, when a listener comes or goes (even during this loop)
    for (const fn of this.listeners) {
      try {
        fn(keys);
      } catch (error) {
        failed ??= { error };
      }
    }
    if (failed !== undefined) throw failed.error;
  }

  // ===================================================================================================
  // rows and arena

  /** A new row for `key` (index hash `hk`), linked first in its chain, flagged for the next delta. */
  private addRow(key: string, r: number, c: number, ts: number, kind: number, dirty = true, hk = indexHash(key)): number {
    const h = this.head.getHashed(key, hk);
    let row: number;
    if (this.free.length > 0) row = this.free.pop()!;
    else {
      // 1.25x: little slack at the sizes where memory counts (doubling below 64k rows measured +4 B/VM
      // resident at 100k rows, for a few % on inserts)
      if (this.top === this.cap) this.growRows(this.cap < 16 ? Math.max(4, 2 * this.cap) : Math.ceil(this.cap * 1.25));
      row = this.top++;
    }
    this.rowKey[row] = key;
    this.rep[row] = r;
    this.setCounter(row, c);
    this.ts[row] = ts;
    this.kind[row] = kind;
    this.vlen[row] = 0;
    this.drow[row] = 0;
    if (dirty) this.markDirty(row);
    this.nextRow[row] = h === undefined ? -1 : h;
    this.head.setHashed(key, hk, row);
    return row;
  }

  /** Dot counters are u32 until one passes 2^32 - 1, then the column widens to f64. */
  private setCounter(row: number, c: number): void {
    if (c > 0xffffffff && this.ctr instanceof Uint32Array) this.ctr = Float64Array.from(this.ctr);
    this.ctr[row] = c;
  }

  private markDirty(row: number): void {
    if (this.drow[row] === 1) return;
    this.drow[row] = 1;
    if (this.dn === this.dlist.length) {
      const nl = new Int32Array(Math.max(16, this.dlist.length * 2));
      nl.set(this.dlist);
      this.dlist = nl;
    }
    this.dlist[this.dn++] = row;
  }

  /** Unlink-free: the caller fixes the key's chain. */
  private freeRow(row: number): void {
    this.rowKey[row] = undefined;
    this.drow[row] = 0;
    this.garbage += this.vlen[row];
    this.vlen[row] = 0;
    this.cache?.delete(row);
    if (this.free === NO_FREE) this.free = [];
    this.free.push(row);
  }

  /** Remove one row from its key's chain and free it. */
  private unlinkRow(row: number): void {
    const key = this.rowKey[row]!;
    let h = this.head.get(key)!;
    if (h === row) {
      const n = this.nextRow[row];
      if (n < 0) this.head.delete(key);
      else this.head.set(key, n);
    } else {
      while (this.nextRow[h] !== row) h = this.nextRow[h];
      this.nextRow[h] = this.nextRow[row];
    }
    this.freeRow(row);
  }

  /**
   * Give every column `cap` rows, keeping their contents. The columns share one ArrayBuffer of 32 bytes per
   * row (ts f64; ctr, rep, voff, vlen, nextRow u32/i32; vchunk u16; kind, drow u8, in that order, so each view
   * is aligned): one allocation per growth instead of nine, which is most of what a small map (a delta, a
   * nested map) costs to create and to collect. Counters widened to f64 get an array of their own. Up to
   * SMALL_ROWS rows, each column is an array of its own instead.
   */
  private growRows(cap: number): void {
    // up to SMALL_ROWS rows, no shared buffer: typed arrays of at most 64 bytes live on V8's heap, allocated
    // inline, while an ArrayBuffer always gets an external backing store (the 9 views on it cost ~4x as
    // much, measured, and the backing stores push the GC): a small nested map or delta is mostly this
    const buf = cap > SMALL_ROWS ? new ArrayBuffer(32 * cap) : undefined;
    this.ts = filled(buf ? new Float64Array(buf, 0, cap) : new Float64Array(cap), this.ts);
    this.ctr = filled(this.ctr instanceof Float64Array ? new Float64Array(cap) : buf ? new Uint32Array(buf, 8 * cap, cap) : new Uint32Array(cap), this.ctr);
    this.rep = filled(buf ? new Uint32Array(buf, 12 * cap, cap) : new Uint32Array(cap), this.rep);
    this.voff = filled(buf ? new Uint32Array(buf, 16 * cap, cap) : new Uint32Array(cap), this.voff);
    this.vlen = filled(buf ? new Uint32Array(buf, 20 * cap, cap) : new Uint32Array(cap), this.vlen);
    this.nextRow = filled(buf ? new Int32Array(buf, 24 * cap, cap) : new Int32Array(cap), this.nextRow);
    this.vchunk = filled(buf ? new Uint16Array(buf, 28 * cap, cap) : new Uint16Array(cap), this.vchunk);
    this.kind = filled(buf ? new Uint8Array(buf, 30 * cap, cap) : new Uint8Array(cap), this.kind);
    this.drow = filled(buf ? new Uint8Array(buf, 31 * cap, cap) : new Uint8Array(cap), this.drow);
    // one capacity for every column, and no more: an array grown by `length` or `push` gets spare slots
    // (17 for its first element), which a small map (a nested map per VM, a delta) would mostly carry empty
    const keys = new Array<string | undefined>(cap);
    for (let i = 0; i < this.top; i++) keys[i] = this.rowKey[i];
    this.rowKey = keys;
    this.head.rebind(keys);
    this.cap = cap;
  }

  /**
   * Room for a bulk append of `rows` rows holding `bytes` value bytes (a big merge, such as loading a full
   * state). Rows: the usual 1.25x growth, or exactly what is needed when that is more (a load into an empty
   * map ends with no spare rows). Values of 256 KiB or more: the last chunk is trimmed to its fill and one
   * chunk of exactly `bytes` is started, so the bulk leaves no arena slack.
   */
  private reserveBulk(rows: number, bytes: number): void {
    const need = this.top + Math.max(0, rows - this.free.length);
    if (need > this.cap) this.growRows(Math.max(need, Math.ceil(this.cap * 1.25)));
    const last = this.chunks.length - 1;
    if (bytes < MAX_CHUNK || (last >= 0 && this.fill + bytes <= this.chunks[last].length)) return;
    if (this.garbage > this.used / 2 && this.used > 4096) this.compactArena();
    else if (last >= 0 && this.fill < this.chunks[last].length) this.chunks[last] = this.chunks[last].slice(0, this.fill);
    if (this.chunks.length >= 0xffff) this.compactArena();
    this.chunks = appended(this.chunks, new Uint8Array(bytes));
    this.fill = 0;
  }

  private putValue(row: number, src: Uint8Array, off: number, len: number): void {
    const last = this.roomFor(len);
    const c = this.chunks[last];
    const at = this.fill;
    if (len <= 48) for (let i = 0; i < len; i++) c[at + i] = src[off + i];
    else c.set(src.subarray(off, off + len), at);
    this.placed(row, last, len);
  }

  /** The chunk whose free tail (from `fill`) has room for n bytes: the last one, or a new one. */
  private roomFor(n: number): number {
    const last = this.chunks.length - 1;
    return last < 0 || this.fill + n > this.chunks[last].length ? this.newChunk(n) : last;
  }

  /** Record the n bytes just written at `fill` of chunk `last` as row's value. */
  private placed(row: number, last: number, n: number): void {
    this.voff[row] = this.fill;
    this.vchunk[row] = last;
    this.vlen[row] = n;
    this.fill += n;
    this.used += n;
  }

  /**
   * Start a chunk with room for `need` bytes (compacting first when over half of the arena is garbage).
   * Chunk size: a quarter of the bytes in use, between 256 KiB and FIRST_CHUNK (256 bytes) for a first chunk
   * or MIN_CHUNK (64 bytes) for a later one, so small maps stay small and a big map wastes at most one partly
   * filled chunk. `exact`: no minimum (a merge placing all its values into an empty arena). Returns the new
   * chunk's index.
   */
  private newChunk(need: number, exact = false): number {
    // a small map compacts once it has a few chunks (more than half garbage): its chunks are small
    // (compaction scans every row: a map of many rows and few value bytes waits for the 4 KiB)
    if (this.garbage > this.used / 2 && (this.used > 4096 || (this.chunks.length >= SMALL_MAP_CHUNKS && this.top <= SMALL_MAP_ROWS))) this.compactArena();
    const min = exact ? 0 : this.chunks.length === 0 ? FIRST_CHUNK : MIN_CHUNK;
    const size = Math.max(need, Math.min(MAX_CHUNK, Math.max(min, this.used >>> 2)));
    if (this.chunks.length >= 0xffff) this.compactArena();
    this.chunks = appended(this.chunks, new Uint8Array(size));
    this.fill = 0;
    return this.chunks.length - 1;
  }

  /** Copy the live values into one right-sized chunk. */
  private compactArena(): void {
    const next = new Uint8Array(Math.max(1, this.used - this.garbage));
    let p = 0;
    for (let row = 0; row < this.top; row++) {
      const n = this.vlen[row];
      if (this.rowKey[row] === undefined || n === 0) continue;
      const o = this.voff[row];
      const src = this.chunks[this.vchunk[row]];
      if (n <= 48) for (let i = 0; i < n; i++) next[p + i] = src[o + i]; // no subarray object per short value
      else next.set(src.subarray(o, o + n), p);
      this.voff[row] = p;
      this.vchunk[row] = 0;
      p += n;
    }
    this.chunks = [next];
    this.fill = p;
    this.used = p;
    this.garbage = 0;
  }

  /** The value bytes of an LWW row (a view, valid until the next write). */
  private valueBytes(row: number): Uint8Array {
    const o = this.voff[row];
    return this.chunks[this.vchunk[row]].subarray(o, o + this.vlen[row]);
  }

  /**
   * @internal Storage layout, for tests of the memory bounds: live rows and row capacity (every column has
   * it), key-index slots, the arena's chunk lengths, live and garbage value bytes, the fill of the last chunk,
   * and the ArrayBuffers behind the chunks and the columns (a decoded map must not hold its input's buffer).
   */
  memoryStats(): {
    rows: number;
    rowCapacity: number;
    keys: number;
    indexSlots: number;
    chunkLengths: number[];
    valueBytes: number;
    garbageBytes: number;
    lastChunkFill: number;
    buffers: ArrayBufferLike[];
  } {
    const cols = [this.rep, this.ctr, this.ts, this.voff, this.vchunk, this.vlen, this.kind, this.nextRow, this.drow];
    return {
      rows: this.top - this.free.length,
      rowCapacity: this.cap,
      keys: this.head.size,
      indexSlots: this.head.capacity,
      chunkLengths: this.chunks.map((c) => c.length),
      valueBytes: this.used - this.garbage,
      garbageBytes: this.garbage,
      lastChunkFill: this.fill,
      buffers: [...this.chunks.map((c) => c.buffer), ...cols.map((c) => c.buffer)],
    };
  }

  /** 64-bit key hashes (u32 pairs) of `keys`: xxHash64 of the UTF-8 bytes in one kernel call, or the hook. */
  private hashKeys(keys: string[]): Uint32Array {
    if (this.keyHash === undefined) return hashStringsMany(keys);
    const out = new Uint32Array(2 * keys.length);
    for (let i = 0; i < keys.length; i++) {
      const [lo, hi] = this.keyHash(keys[i]);
      out[2 * i] = lo >>> 0;
      out[2 * i + 1] = hi >>> 0;
    }
    return out;
  }

  /** Live rows of `key` (in chain order). */
  private rowsOf(key: string, out: number[]): void {
    for (let row = this.head.get(key) ?? -1; row >= 0; row = this.nextRow[row]) out.push(row);
  }

  // ===================================================================================================
  // merge

  /** Merge another replica's state or a delta (commutative, associative, idempotent). */
  merge(other: ORMap<V>): boolean {
    checkMergeType(this, other);
    return this.mergeWith(other, false);
  }

  /**
   * @internal Anti-entropy: merge a `deltaSince` answer. Its context is the sender's whole context, but it
   * speaks only for the keys it carries: those keys get the full join with the sender, the context absorbs
   * the sender's, and every other key is left as it is (a removal the sender made on a key it did not carry
   * is not applied; digests catch that and repair it by bucket exchange). The result is between this state
   * and the full join with the sender, so it stays a valid state. Costs the delta's keys, not the map's rows.
   */
  mergeScoped(other: ORMap<V>): boolean {
    return this.mergeWith(other, true);
  }

  /** Returns false when nothing changed (no row added or retired, no new dot seen, no nested change). */
  private mergeWith(other: ORMap<V>, scoped: boolean): boolean {
    if (other === this) return false;
    // a nested map merged into through its handle (hooked; the parent's own merges unhook it meanwhile): the
    // parent must be able to record the write before anything changes
    if (this.onMerged !== undefined) this.beforeLocalChange?.(true);
    // a timestamp too far ahead of this clock (ClockSkewError), or a nested merge that would throw (a counter
    // past MAX_SAFE_INTEGER), throws here, before anything changes
    this.receiveTimes(other, true);
    if (other.nested.size > 0) this.checkNestedMerges(other);
    const map = this.ctx.mapFrom(other.ctx);
    const inv = inverseMap(map, this.ctx.width);
    const octx = other.ctx;

    // the rows that lose (mine) and win (the other's, added here): by direct lookups for small maps (nested
    // maps, small deltas), else through the dot-merge kernel; both find the same rows (see smallMergeRows)
    const losers: number[] = [];
    const winners: number[] = [];
    if (this.top <= mergeTuning.smallRows && other.top <= mergeTuning.smallRows) this.smallMergeRows(other, map, inv, scoped, losers, winners);
    else this.kernelMergeRows(other, map, inv, scoped, losers, winners);

    const track = this.listeners.length > 0 || this.changed !== undefined;
    const changedKeys = track ? new Set<string>() : undefined;
    // a scoped merge's pending delta records what it changed: the other's rows and the rows it retires here
    const m = scoped ? (this.merged ??= new CausalContext()) : undefined;
    // losers first: the rows they free take the winners (an overwrite of a full map then needs no growth)
    for (const row of losers) {
      changedKeys?.add(this.rowKey[row]!);
      m?.add(m.intern(this.ctx.ids[this.rep[row]]), this.ctr[row]);
      this.unlinkRow(row);
    }
    if (winners.length > 1024) {
      let bytes = 0;
      for (const src of winners) bytes += other.vlen[src];
      this.reserveBulk(winners.length, bytes);
    } else if (winners.length > 1 && this.chunks.length === 0) {
      // an empty arena gets the winners' values in one chunk of their size: a small map filled by a merge (a
      // nested map of a loaded state) instead of a 256-byte one. Not with an arena: the winners fill the last
      // chunk's tail first (a new chunk for them alone would leave that tail empty for good)
      let bytes = 0;
      for (const src of winners) bytes += other.vlen[src];
      if (bytes > 0) this.newChunk(bytes, true);
    }
    for (const src of winners) {
      const key = other.rowKey[src]!;
      // not flagged dirty: its dot is in `merged`, which makes takeDelta carry it anyway
      const row = this.addRow(key, map[other.rep[src]], other.ctr[src], other.ts[src], other.kind[src], false);
      if (other.kind[src] === ORMAP_KIND.LWW) this.putValue(row, other.chunks[other.vchunk[src]], other.voff[src], other.vlen[src]);
      changedKeys?.add(key);
    }
    let changed = winners.length > 0 || losers.length > 0;
    if (this.ctx.mergeFrom(octx, map)) changed = true;
    if (m === undefined) (this.merged ??= new CausalContext()).absorb(octx);
    else for (const [, first] of other.head) for (let r = first; r >= 0; r = other.nextRow[r]) m.add(m.intern(octx.ids[other.rep[r]]), other.ctr[r]);

    // nested states: grow-only join. checkNestedMerges found that none throws; should one throw all the same,
    // what changed is reported
    try {
      for (const [nk, inst] of other.nested) {
        this.touch(nk);
        const kind = nk.charCodeAt(0) - 48;
        const key = nk.slice(1);
        const mine = this.nestedFor(kind, key);
        // every nested type reports whether its merge changed it; unhooked meanwhile, as this merge is not a
        // local write of the key (see hook)
        const hooked = mine as { merge(o: unknown): boolean | void; onMerged: (() => void) | undefined };
        const onMerged = hooked.onMerged;
        hooked.onMerged = undefined;
        let differs = true; // when the merge throws: it may have changed part of a nested map (reported below)
        try {
          differs = hooked.merge(inst) !== false;
        } finally {
          hooked.onMerged = onMerged;
          if (differs) changed = true;
          if (track && differs && this.head.has(key)) changedKeys!.add(key);
        }
      }
    } finally {
      try {
        if (changedKeys !== undefined && changedKeys.size > 0) {
          const list = [...changedKeys].sort(cmpStr);
          if (this.changed !== undefined) for (const k of list) this.changed.add(k);
          if (this.listeners.length > 0) this.emit(list);
        }
      } finally {
        if (changed) this.onMerged?.();
      }
    }
    return changed;
  }

  /**
   * The other state's latest row timestamp (in nested maps too, with `deep`) fed to this map's HLC, as
   * LWWRegister's merge does: a later local write then takes a larger timestamp, and one further ahead of
   * this clock's physical time than its `maxDriftMs` throws `ClockSkewError` before the merge changes
   * anything (the clock too). Costs one pass over the other's rows.
   */
  private receiveTimes(other: ORMap<unknown>, deep = false): void {
    let max = 0;
    for (const [, first] of other.head) for (let r = first; r >= 0; r = other.nextRow[r]) if (other.ts[r] > max) max = other.ts[r];
    if (max > this.clock.current) this.clock.receive(max);
    if (deep) for (const inst of other.nested.values()) if (inst instanceof ORMap) this.receiveTimes(inst as ORMap<unknown>, true);
  }

  /**
   * Throw, before a merge changes anything, the error a nested merge of `other` would throw: a counter whose
   * merged total would pass MAX_SAFE_INTEGER (RangeError), in nested maps too (recursively). Only the other's
   * nested values that this map holds too are checked (merging into an empty one cannot throw); ORSet and
   * MVRegister merges (unhooked, as here) do not throw. Changes nothing observable.
   */
  private checkNestedMerges(other: ORMap<V>): void {
    for (const [nk, inst] of other.nested) {
      const mine = this.nested.get(nk);
      if (mine === undefined) continue;
      if (mine instanceof PNCounter) mine.checkMerge(inst as PNCounter);
      else if (mine instanceof ORMap && (inst as ORMap<unknown>).nested.size > 0) mine.checkNestedMerges(inst as ORMap<unknown>);
    }
  }

  /**
   * Small maps: the merge's losers (my rows: the other's context covers the dot and the other does not hold
   * it under the same key; in a scoped merge only rows of the other's keys) and winners (the other's rows whose
   * dot this context has not seen), by direct lookups. The same rows as the kernel path (a dot held by both
   * under the same key stays mine unless the other's row has the larger payload, see theirsWins; a dot both
   * have seen and neither holds under that key goes, so a dot held under different keys on the two sides, a
   * reissued dot, goes on both and never ends up under two keys), without its dot lists.
   */
  private smallMergeRows(other: ORMap<V>, map: Int32Array, inv: Int32Array, scoped: boolean, losers: number[], winners: number[]): void {
    const octx = other.ctx;
    if (!octx.isEmpty()) {
      for (let row = 0; row < this.top; row++) {
        const key = this.rowKey[row];
        if (key === undefined) continue; // a free row
        const o = inv[this.rep[row]];
        if (o < 0 || !octx.has(o, this.ctr[row])) continue;
        if (scoped && !other.head.has(key)) continue;
        const src = other.rowOf(key, o, this.ctr[row]);
        if (src < 0) losers.push(row);
        else if (this.theirsWins(other, src, row)) {
          // the same dot with another payload (see theirsWins): the other's row replaces mine
          losers.push(row);
          winners.push(src);
        }
      }
    }
    for (const [, first] of other.head) {
      for (let r = first; r >= 0; r = other.nextRow[r]) if (!this.ctx.has(map[other.rep[r]], other.ctr[r])) winners.push(r);
    }
  }

  /** The merge's losers and winners (see smallMergeRows) through the dot-merge kernel. */
  private kernelMergeRows(other: ORMap<V>, map: Int32Array, inv: Int32Array, scoped: boolean, losers: number[], winners: number[]): void {
    const octx = other.ctx;
    // Key identities for the kernel: the merge only needs a consistent order and equality of keys, so a
    // key is named by its first row here (fresh numbers past `top` for keys new to this map). This avoids
    // hashing keys on the merge path; 64-bit key hashes are computed lazily for digests only.
    const head = this.head;
    const b = new DotList(other.head.size + 1);
    let fresh = this.top;
    const bNames: number[] = [];
    for (const [key, first] of other.head) {
      const h = head.get(key);
      const name = h === undefined ? fresh++ : h;
      bNames.push(name);
      for (let r = first; r >= 0; r = other.nextRow[r]) b.push(name, 0, map[other.rep[r]], other.ctr[r], r);
    }

    // A: my rows of the other's keys, and my rows whose dot the other's context covers
    const a = new DotList(bNames.length + 1);
    if (markScratch.length < this.top) markScratch = new Uint8Array(Math.max(this.top, 2 * markScratch.length));
    const mark = markScratch; // all zero between merges
    let coveredA = 0; // rows so far in A whose dot the other's context covers
    for (const name of bNames) {
      if (name >= this.top) continue;
      for (let r = name; r >= 0; r = this.nextRow[r]) {
        mark[r] = 1;
        a.push(name, 0, this.rep[r], this.ctr[r], r);
        const o = inv[this.rep[r]];
        if (o >= 0 && octx.has(o, this.ctr[r])) coveredA++;
      }
    }
    // The rows still to find hold dots that both contexts have (a row's dot is in its map's context), and no
    // two rows share a dot (decode rejects it; local writes and merges never make it): once that many are
    // found, none is left, so merging a small delta into a big map mostly scans nothing (its context is the
    // dots of its rows and the ones they retired, which are the rows of its keys found above).
    let left = scoped || octx.isEmpty() ? 0 : this.ctx.sharedCount(octx, map) - coveredA;
    if (left > 0) {
      // every row, but most are rejected by typed-array reads alone: per local replica, the other's vector
      // (every counter up to it is covered), the highest counter it covers (0: none) and where its dot cloud
      // starts; only a counter inside the cloud's span needs a search of the cloud's ranges. A delta's context
      // is mostly a few cloud dots, so this loop is what merging a small delta into a big map costs per row.
      const ovv = octx.vv, ocl = octx.cloud;
      const w = this.ctx.width;
      const vv = new Float64Array(w), hi = new Float64Array(w), cloudLo = new Float64Array(w);
      for (let r = 0; r < w; r++) {
        const o = inv[r];
        const cl = o < 0 ? undefined : ocl[o];
        vv[r] = o < 0 ? 0 : ovv[o];
        hi[r] = o < 0 ? 0 : cl !== undefined && cl.length > 0 ? cl[cl.length - 1] : ovv[o];
        cloudLo[r] = cl !== undefined && cl.length > 0 ? cl[0] : Infinity;
      }
      const rep = this.rep, ctr = this.ctr, rowKey = this.rowKey;
      for (let row = 0, top = this.top; row < top; row++) {
        const r = rep[row];
        const c = ctr[row];
        if (c > hi[r]) continue;
        if (c > vv[r] && (c < cloudLo[r] || !rangesHave(ocl[inv[r]]!, c))) continue;
        if (mark[row] === 1) continue;
        const key = rowKey[row];
        if (key === undefined) continue; // a free row
        a.push(head.get(key)!, 0, r, c, row);
        if (--left === 0) break;
      }
    }
    for (let i = 0; i < a.n; i++) mark[a.refs[i]] = 0;
    if (a.n > 0) {
      a.sort();
      b.sort();
    }
    // Nothing here can lose when A is empty (a bulk load into an empty or disjoint map): keep each incoming
    // dot this context has not seen, without a kernel call (the kernel would copy every incoming dot into its
    // linear memory, which never shrinks). Otherwise kernel calls of bounded size (see mergeDots).
    let out: Int32Array, n = 0;
    if (a.n === 0) {
      out = new Int32Array(b.n);
      for (let j = 0; j < b.n; j++) if (!this.ctx.has(b.replicas[j], b.counters[j])) out[n++] = -(j + 1);
    } else ({ out, n } = mergeDots(a, this.ctx, b, octx, inv, map));

    const keep = new Uint8Array(a.n);
    for (let k = 0; k < n; k++) {
      const v = out[k];
      if (v >= 0) keep[v] = 1;
      else winners.push(b.refs[-(v + 1)]);
    }
    for (let i = 0; i < a.n; i++) if (keep[i] !== 1) losers.push(a.refs[i]);
    // a dot kept here that the other holds too (same key): the larger payload wins on both sides (theirsWins).
    // A and B are sorted alike, so one walk finds the shared dots (none when A is empty)
    for (let i = 0, j = 0; i < a.n && j < b.n; ) {
      const d = cmpDots(a.keys, a.replicas, a.counters, i, b.keys, b.replicas, b.counters, j);
      if (d < 0) i++;
      else if (d > 0) j++;
      else {
        if (keep[i] === 1 && this.theirsWins(other, b.refs[j], a.refs[i])) {
          losers.push(a.refs[i]);
          winners.push(b.refs[j]);
        }
        i++;
        j++;
      }
    }
  }

  // ===================================================================================================
  // deltas

  private clearDirty(): void {
    for (let i = 0; i < this.dn; i++) this.drow[this.dlist[i]] = 0;
    this.dn = 0;
    // a big list would pin memory after a burst; a small one (a nested map, a delta) is cheap to make again and
    // costs ~160 B per map held
    if (this.dlist.length > 1024 || this.dlist.length <= 16) this.dlist = NO_I32;
  }

  /** Local writes since the last take, as a map state (null when none). */
  takeDelta(): ORMap<V> | null {
    if (this.dn === 0 && this.removed.length === 0 && this.merged === undefined && this.touchedNested.size === 0) return null;
    // the keys of the flagged rows, each once: collecting a key flags all its rows 2 (reset by clearDirty for
    // the rows in dlist, and below for the others)
    const keys: string[] = [];
    const hks: number[] = [];
    const firsts: number[] = [];
    const collect = (row: number): void => {
      const key = this.rowKey[row]!;
      const hk = indexHash(key);
      const first = this.head.getHashed(key, hk)!;
      keys.push(key);
      hks.push(hk);
      firsts.push(first);
      for (let r = first; r >= 0; r = this.nextRow[r]) this.drow[r] = 2;
    };
    for (let i = 0; i < this.dn; i++) {
      const row = this.dlist[i];
      if (this.drow[row] === 1) collect(row);
    }
    const merged = this.merged;
    if (merged !== undefined) {
      // every row holding a dot the delta's context covers must come along, or the delta would remove it
      const toM = new Int32Array(this.ctx.width);
      for (let r = 0; r < toM.length; r++) toM[r] = merged.lookup(this.ctx.ids[r]);
      for (let row = 0; row < this.top; row++) {
        if (this.rowKey[row] === undefined || this.drow[row] === 2) continue;
        const m = toM[this.rep[row]];
        if (m >= 0 && merged.has(m, this.ctr[row])) collect(row);
      }
    }
    for (let i = 0; i < firsts.length; i++) for (let r = firsts[i]; r >= 0; r = this.nextRow[r]) this.drow[r] = 0;
    const d = this.subset(keys, hks, firsts, this.removed);
    if (merged !== undefined) d.ctx.absorb(merged);
    this.merged = undefined;
    this.clearDirty();
    for (const nk of this.touchedNested) {
      const inst = this.nested.get(nk)!;
      const nd = inst.takeDelta();
      if (nd !== null) d.ownNested().set(nk, nd as NestedCrdt);
    }
    this.touchedNested.clear();
    this.removed = [];
    return d;
  }

  /**
   * @internal Drop the pending delta without building it: what `takeDelta()` then discards, at no cost (the
   * engine calls it after merging remote state, which it does not re-send; a delta after a big merge would
   * copy every row the merge touched).
   */
  discardDelta(): void {
    this.merged = undefined;
    this.clearDirty();
    this.removed = [];
    for (const nk of this.touchedNested) {
      const inst = this.nested.get(nk);
      if (inst instanceof ORMap) inst.discardDelta();
      else inst?.takeDelta();
    }
    this.touchedNested.clear();
  }

  /**
   * A state holding only `keys`: their rows, with a context of their dots, plus (when `seen`, the other
   * side's state or `deltaForKeys` answer, is given) the dots `seen` holds for those keys that this replica
   * has retired, so merging the answer into `seen`'s replica also propagates deletes. Nested states of
   * those keys come along in full. Bytes grow with the number of keys, not with the map.
   */
  deltaForKeys(keys: Iterable<string>, seen?: ORMap<V>): ORMap<V> {
    const set = new Set(keys);
    const retired: number[] = [];
    if (seen !== undefined) {
      for (const key of set) {
        for (let row = seen.head.get(key) ?? -1; row >= 0; row = seen.nextRow[row]) {
          const id = seen.ctx.ids[seen.rep[row]];
          const r = this.ctx.lookup(id);
          const c = seen.ctr[row];
          if (r >= 0 && this.ctx.has(r, c) && !this.holds(key, r, c)) retired.push(r, c);
        }
      }
    }
    const list = [...set];
    const hks = list.map(indexHash);
    const d = this.subset(list, hks, list.map((k, i) => this.head.getHashed(k, hks[i]) ?? -1), retired);
    for (const key of set) {
      for (let kind = 1; kind < KIND_COUNT; kind++) {
        const nk = String.fromCharCode(48 + kind) + key;
        const inst = this.nested.get(nk);
        if (inst !== undefined && !isEmptyNested(inst)) d.ownNested().set(nk, inst.clone() as NestedCrdt);
      }
    }
    return d;
  }

  /**
   * `deltaForKeys` for every key whose hash falls in one of the buckets (top `depth` bits of the key hash).
   * `mine`, when the caller knows them (a bucket tree of this map's current state), are this map's keys in
   * those buckets, which spares hashing every key of the map.
   */
  deltaForBuckets(depth: number, buckets: Iterable<number>, seen?: ORMap<V>, mine?: readonly string[]): ORMap<V> {
    if (!Number.isInteger(depth) || depth < 0 || depth > 16) throw new RangeError('depth must be in 0..16');
    const want = new Set(buckets);
    const keys: string[] = [];
    // `seen`'s keys too are hashed with this map's key hash (a decoded peer state does not carry the keyHash hook)
    const collect = (m: ORMap<V>): void => {
      const all = [...m.head.keys()];
      const h = this.hashKeys(all);
      for (let i = 0; i < all.length; i++) {
        const b = depth === 0 ? 0 : h[2 * i + 1] >>> (32 - depth);
        if (want.has(b)) keys.push(all[i]);
      }
    };
    if (mine === undefined) collect(this);
    else for (const k of mine) keys.push(k);
    if (seen !== undefined) collect(seen);
    return this.deltaForKeys(keys, seen);
  }

  /**
   * @internal Anti-entropy: the rows of every key holding a dot that `peer`'s context lacks (those keys'
   * nested states in full), with this replica's whole context. Merge it with `mergeScoped` only (a plain
   * `merge` would read the context as removing every key it does not carry). `peer` is the peer's whole
   * context: as `contextBytes()` output (DecodeError when malformed), or a state or `deltaSince` answer of
   * the peer. Bytes grow with the keys the peer lacks, not with the map.
   */
  deltaSince(peer: Uint8Array | CausalContext | ORMap<V>): ORMap<V> {
    const pctx = peer instanceof ORMap ? peer.ctx : peer instanceof Uint8Array ? ORMap.decodeContext(peer) : peer;
    const toPeer = new Int32Array(this.ctx.width);
    for (let r = 0; r < toPeer.length; r++) toPeer[r] = pctx.lookup(this.ctx.ids[r]);
    const keys: string[] = [];
    for (const [key, first] of this.head) {
      for (let row = first; row >= 0; row = this.nextRow[row]) {
        const o = toPeer[this.rep[row]];
        const c = this.ctr[row];
        if (o < 0 || !pctx.has(o, c)) {
          keys.push(key);
          break;
        }
      }
    }
    const d = this.deltaForKeys(keys);
    d.ctx.absorb(this.ctx);
    return d;
  }

  /** @internal Anti-entropy: this replica's causal context, canonically encoded (for `deltaSince`). */
  contextBytes(): Uint8Array {
    const w = new Writer(64);
    this.ctx.write(w);
    return w.finish();
  }

  /** An empty map of this replica, on this map's clock and key hash (a delta, a copy, a nested map). */
  private sibling<T = V>(): ORMap<T> {
    return new ORMap<T>(this.replicaId, { clock: this.clock, keyHash: this.keyHash });
  }

  /**
   * @internal Anti-entropy: what this state holds besides its rows, which the per-key entry hashes do not
   * show: the dots this replica has retired (its causal context less the dots of its rows) and the nested
   * states no row shows (kept after a delete), as maps without rows whose encodings take at most `maxBytes`
   * each (at least one map, maybe empty; `maxBytes` must leave room for one replica id and one range, and a
   * nested state bigger than that gets a map of its own, as big as it needs). Nested states come first, so the
   * last map, which anti-entropy asks the receiver to answer, always fits. Each is a state below this one:
   * a plain `merge` of it anywhere removes only rows this replica removed, adds their dots to the context and
   * joins the nested states, in any order and whatever the receiver holds. A replica holding the same rows
   * that merges them all holds this state (when it held nothing else). Bytes grow with the ranges of retired
   * dots, which the rows held in between split (at most about one range per row and replica).
   */
  retiredParts(maxBytes: number): ORMap<V>[] {
    const ctx = this.ctx;
    const live: number[][] = [];
    for (let row = 0; row < this.top; row++) if (this.rowKey[row] !== undefined) (live[this.rep[row]] ??= []).push(this.ctr[row]);
    const parts: ORMap<V>[] = [];
    let part = this.sibling();
    // a map without rows takes: version, type tag, replica count (up to 5 bytes), key count, timestamp base,
    // nested count, and its context
    const base = 10;
    let size = base;
    const nextPart = (): void => {
      parts.push(part);
      part = this.sibling();
      size = base;
    };
    for (const [nk, inst] of this.hiddenNested()) {
      // kind, key (length and up to 3 bytes per unit), length-prefixed state, and a longer nested count
      const n = 12 + 3 * (nk.length - 1) + inst.encode().length;
      if (size > base && size + n > maxBytes) nextPart();
      part.ownNested().set(nk, inst.clone() as NestedCrdt);
      size += n;
    }
    for (let r = 0; r < ctx.width; r++) {
      const vv = ctx.vv[r], cl = ctx.cloud[r];
      if (vv === 0 && cl === undefined) continue;
      const held = live[r] === undefined ? [] : Float64Array.from(live[r]).sort();
      // the context's ranges of r less its held dots, in order
      const dead: number[] = [];
      let h = 0;
      const cut = (s: number, e: number): void => {
        while (h < held.length && held[h] < s) h++;
        for (; h < held.length && held[h] <= e; h++) {
          if (held[h] > s) dead.push(s, held[h] - 1);
          s = held[h] + 1;
        }
        if (s <= e) dead.push(s, e);
      };
      if (vv > 0) cut(1, vv);
      if (cl !== undefined) for (let i = 0; i < cl.length; i += 2) cut(cl[i], cl[i + 1]);
      const id = ctx.ids[r];
      // per replica in a part: its id, vector entry and range count (each at most 5 bytes as varuints)
      const head = 15 + 3 * id.length;
      let i = 0;
      let first = true; // r not yet in the current part
      while (i < dead.length) {
        if (size > base && (!first || size + head + varuintSize(dead[i]) + varuintSize(dead[i + 1] - dead[i]) > maxBytes)) nextPart();
        first = false;
        const p = part.ctx.intern(id);
        size += head;
        let prevEnd = 0;
        if (dead[i] === 1) {
          part.ctx.vv[p] = prevEnd = dead[i + 1];
          i += 2;
        }
        const ranges: number[] = [];
        for (; i < dead.length; i += 2) {
          const n = varuintSize(dead[i] - prevEnd - 2) + varuintSize(dead[i + 1] - dead[i]);
          if (size + n > maxBytes && prevEnd > 0) break; // at least one range or vector entry per part
          ranges.push(dead[i], dead[i + 1]);
          size += n;
          prevEnd = dead[i + 1];
        }
        if (ranges.length > 0) part.ctx.cloud[p] = ranges;
      }
    }
    parts.push(part);
    // the last part is the one anti-entropy asks the receiver to answer: it must fit a message (a nested state
    // bigger than maxBytes has a part of its own, too big to send, so an empty one follows it)
    if (part.encode().length > maxBytes) parts.push(this.sibling());
    return parts;
  }

  /** The non-empty nested states that no row shows (kept after a delete), in this map's iteration order. */
  private hiddenNested(): [string, NestedCrdt][] {
    const out: [string, NestedCrdt][] = [];
    for (const [nk, inst] of this.nested) {
      const kind = nk.charCodeAt(0) - 48;
      const key = nk.slice(1);
      let shown = false;
      for (let row = this.head.get(key) ?? -1; row >= 0 && !shown; row = this.nextRow[row]) shown = this.kind[row] === kind;
      // shown first: the emptiness check encodes a counter
      if (!shown && !isEmptyNested(inst)) out.push([nk, inst]);
    }
    return out;
  }

  /**
   * @internal Anti-entropy: canonical bytes of what the per-key entry hashes (`keyHashes`) leave out of the
   * state: the causal context, then the nested states no row shows (`retiredParts`), each as kind, key and
   * encoding, sorted as `encode` sorts nested states. Two maps have equal encodings exactly when they have
   * equal entries (key by key) and equal `unkeyedBytes()`, so a digest of the bucket tree's root and these
   * bytes stands for the whole state's hash. It costs the context, a walk over the nested values (to find the
   * hidden ones) and the hidden states' encodings, not the rows.
   */
  unkeyedBytes(): Uint8Array {
    const w = new Writer(64);
    this.ctx.write(w);
    writeNestedStates(w, this.hiddenNested());
    return w.finish();
  }

  /** @internal Decode `contextBytes()` output; DecodeError on malformed input. */
  static decodeContext(bytes: Uint8Array): CausalContext {
    const ctx = new CausalContext();
    const r = new Reader(bytes);
    ctx.read(r);
    r.done();
    return ctx;
  }

  private holds(key: string, r: number, c: number): boolean {
    return this.rowOf(key, r, c) >= 0;
  }

  /** The row of `key` holding dot (r, c), or -1. */
  private rowOf(key: string, r: number, c: number): number {
    for (let row = this.head.get(key) ?? -1; row >= 0; row = this.nextRow[row]) if (this.rep[row] === r && this.ctr[row] === c) return row;
    return -1;
  }

  /**
   * True when the other's row `src` carries a larger payload than my row `row` holding the same dot under the
   * same key: (timestamp, kind, value length, value bytes). Normally a dot has one payload, but a replica
   * restored from an old backup (or crashed inside the durability window) can reissue a dot its peers hold,
   * for another write; both sides then keep the larger payload so merge stays commutative (LWWRegister's
   * tie-break). Cheap fields first: the bytes are compared only when all else is equal.
   */
  private theirsWins(other: ORMap<V>, src: number, row: number): boolean {
    const ts = other.ts[src], mts = this.ts[row];
    if (ts !== mts) return ts > mts;
    const k = other.kind[src], mk = this.kind[row];
    if (k !== mk) return k > mk;
    if (k !== ORMAP_KIND.LWW) return false;
    const len = other.vlen[src], mlen = this.vlen[row];
    if (len !== mlen) return len > mlen;
    // in place (no views): a shared dot mostly carries the same bytes, read to the end (natively on Node
    // past 32 bytes, where the call costs less than the loop)
    const x = other.chunks[other.vchunk[src]], y = this.chunks[this.vchunk[row]];
    const xo = other.voff[src], yo = this.voff[row];
    if (len > 32 && nativeCompare !== undefined) return nativeCompare.call(x, y, yo, yo + len, xo, xo + len) > 0;
    for (let i = 0; i < len; i++) if (x[xo + i] !== y[yo + i]) return x[xo + i] > y[yo + i];
    return false;
  }

  /**
   * A new map with the rows of `keys` (distinct; `hks` their index hashes, `firsts` their first rows here or
   * -1) and a context of their dots plus `extraDots` (flat r, c pairs).
   */
  private subset(keys: string[], hks: number[], firsts: number[], extraDots: number[]): ORMap<V> {
    const d = this.sibling();
    const tmap = new Int32Array(this.ctx.width).fill(-1);
    const to = (r: number): number => (tmap[r] >= 0 ? tmap[r] : (tmap[r] = d.ctx.intern(this.ctx.ids[r])));
    let rows = 0, bytes = 0;
    for (let k = 0; k < keys.length; k++) {
      for (let row = firsts[k]; row >= 0; row = this.nextRow[row]) {
        rows++;
        bytes += this.vlen[row];
      }
    }
    // sized once (rows, index and arena: no growth steps); rows filled in place, each key put in the index once
    if (rows > 0) d.growRows(rows <= SMALL_ROWS ? rows : Math.max(16, rows));
    d.head.reserve(keys.length);
    if (bytes > 0) {
      d.chunks = [new Uint8Array(bytes)];
      d.fill = 0;
    }
    const per: number[][] = []; // counters per replica of d
    for (let k = 0; k < keys.length; k++) {
      let prev = -1; // rows are linked as addRow links them: the last added first
      for (let row = firsts[k]; row >= 0; row = this.nextRow[row]) {
        const r = to(this.rep[row]);
        const c = this.ctr[row];
        (per[r] ??= []).push(c);
        const nr = d.top++;
        d.rowKey[nr] = keys[k];
        d.rep[nr] = r;
        d.setCounter(nr, c);
        d.ts[nr] = this.ts[row];
        d.kind[nr] = this.kind[row];
        d.nextRow[nr] = prev;
        if (this.kind[row] === ORMAP_KIND.LWW) d.putValue(nr, this.chunks[this.vchunk[row]], this.voff[row], this.vlen[row]);
        prev = nr;
      }
      if (prev >= 0) d.head.insertNew(hks[k], prev);
    }
    for (let i = 0; i < extraDots.length; i += 2) (per[to(extraDots[i])] ??= []).push(extraDots[i + 1]);
    for (let r = 0; r < per.length; r++) if (per[r] !== undefined) addInOrder(d.ctx, r, per[r]);
    return d;
  }

  clone(): ORMap<V> {
    const c = this.sibling();
    copyContext(this.ctx, c.ctx);
    const tmap = this.ctx.mapFrom(c.ctx); // c index -> my index (same ids)
    const toC = inverseMap(tmap, this.ctx.width);
    for (const [key, h] of this.head) {
      for (let row = h; row >= 0; row = this.nextRow[row]) {
        const nr = c.addRow(key, toC[this.rep[row]], this.ctr[row], this.ts[row], this.kind[row]);
        if (this.kind[row] === ORMAP_KIND.LWW) c.putValue(nr, this.chunks[this.vchunk[row]], this.voff[row], this.vlen[row]);
      }
    }
    for (const [nk, inst] of this.nested) {
      const copy = inst.clone() as NestedCrdt;
      c.hook(nk.charCodeAt(0) - 48, nk.slice(1), copy);
      c.ownNested().set(nk, copy);
    }
    c.clearDirty();
    for (let i = 0; i < this.dn; i++) {
      const row = this.dlist[i];
      if (this.drow[row] !== 1) continue;
      for (let r = c.head.get(this.rowKey[row]!) ?? -1; r >= 0; r = c.nextRow[r]) c.markDirty(r);
    }
    for (let i = 0; i < this.removed.length; i += 2) c.removed.push(toC[this.removed[i]], this.removed[i + 1]);
    for (const nk of this.touchedNested) c.touch(nk);
    c.merged = this.merged?.clone();
    return c;
  }

  // ===================================================================================================
  // anti-entropy digests

  /**
   * Per present key (sorted): the 64-bit key hash (xxHash64 of its UTF-8 bytes) and a 64-bit entry hash
   * over the key's dots (replica id, counter), timestamps, kinds, value bytes and nested states, computed
   * with one kernel call; equal entries give equal hashes on every replica.
   */
  keyHashes(): KeyHashes {
    const keys = this.keys();
    return { keys, keyHashes: this.hashKeys(keys), entryHashes: this.entryHashes(keys) };
  }

  /**
   * @internal Anti-entropy: `keyHashes()` for just these keys (distinct, in the order given, present here or
   * not), so a bucket tree can be brought up to date for the keys a merge changed (see `onChange`) without
   * hashing the others. `present[i]` is 0 for a key this map does not hold (its entry hash words are then 0).
   */
  keyHashesOf(keys: readonly string[]): KeyHashes & { present: Uint8Array } {
    const list = [...keys];
    const present = new Uint8Array(list.length);
    for (let i = 0; i < list.length; i++) if (this.head.has(list[i])) present[i] = 1;
    const entryHashes = this.entryHashes(list);
    for (let i = 0; i < list.length; i++) if (present[i] === 0) entryHashes[2 * i] = entryHashes[2 * i + 1] = 0;
    return { keys: list, keyHashes: this.hashKeys(list), entryHashes, present };
  }

  /** Per key, the 64-bit hash of its entry (see `keyHashes`), with one kernel call. */
  private entryHashes(keys: readonly string[]): Uint32Array {
    const w = new Writer(1024);
    const offsets = new Uint32Array(keys.length);
    const lengths = new Uint32Array(keys.length);
    const rows: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      offsets[i] = w.pos;
      rows.length = 0;
      this.rowsOf(keys[i], rows);
      rows.sort((x, y) => cmpStr(this.ctx.ids[this.rep[x]], this.ctx.ids[this.rep[y]]) || this.ctr[x] - this.ctr[y]);
      for (const row of rows) {
        w.string(this.ctx.ids[this.rep[row]]);
        w.varuint(this.ctr[row]);
        w.varuint(this.ts[row]);
        w.u8(this.kind[row]);
        if (this.kind[row] === ORMAP_KIND.LWW) w.bytes(this.valueBytes(row));
        else w.bytes(this.nestedFor(this.kind[row], keys[i]).encode());
      }
      lengths[i] = w.pos - offsets[i];
    }
    const entryHashes = new Uint32Array(2 * keys.length);
    if (keys.length > 0) kernel().xxhash64Many(w.view_(), offsets, lengths, 0, entryHashes);
    return entryHashes;
  }

  /** The kernel's bucketed hash tree over `keyHashes()` (heap order, u32 pairs; see Kernel.hashTree). */
  hashTree(depth: number): Uint32Array {
    const { keys, keyHashes, entryHashes } = this.keyHashes();
    const out = new Uint32Array(2 * 2 ** (depth + 1));
    kernel().hashTree(keyHashes, entryHashes, keys.length, depth, out);
    return out;
  }

  /** @internal true when every nested state is empty. */
  /**
   * Release this map's state, and the nested CRDTs it owns, now and retire it: any later use (of the map or of
   * a nested handle taken from it) throws `CrdtError` (code `E_DISPOSED`). Idempotent. Dropping a map
   * without it is fine too (the garbage collector frees it; see dispose.ts).
   */
  dispose(): void {
    for (const inst of this.nested.values()) inst.dispose();
    disposeInstance(this);
  }

  /** True once `dispose()` ran (a disposed map answers only this, `dispose`, `replicaId`, `typeTag`). */
  get disposed(): boolean {
    return false;
  }

  nestedIsEmpty(): boolean {
    for (const inst of this.nested.values()) if (!isEmptyNested(inst)) return false;
    return true;
  }

  // ===================================================================================================
  // encoding

  encode(): Uint8Array {
    const w = new Writer(256 + this.used - this.garbage + 24 * this.head.size);
    w.u8(CODEC_VERSION);
    w.u8(CRDT_TYPE.ORMap);
    const perm = this.ctx.write(w);
    const keys = this.keys();
    // rows in key order, within a key sorted by (encoded replica, counter)
    const rows: number[] = [];
    const counts: number[] = [];
    const tmp: number[] = [];
    for (const key of keys) {
      tmp.length = 0;
      this.rowsOf(key, tmp);
      if (tmp.length > 1) tmp.sort((x, y) => perm[this.rep[x]] - perm[this.rep[y]] || this.ctr[x] - this.ctr[y]);
      counts.push(tmp.length);
      for (const r of tmp) rows.push(r);
    }
    w.varuint(keys.length);
    writeKeys(w, keys);
    for (const c of counts) w.varuint(c);
    for (const row of rows) w.varuint(perm[this.rep[row]] * 8 + this.kind[row]);
    for (const row of rows) w.varuint(this.ctr[row]);
    let base = rows.length > 0 ? Infinity : 0;
    for (const row of rows) if (this.ts[row] < base) base = this.ts[row];
    w.varuint(base);
    for (const row of rows) w.varuint(this.ts[row] - base);
    const values = ValueColumnWriter.acquire();
    for (const row of rows) {
      if (this.kind[row] !== ORMAP_KIND.LWW) continue;
      values.write(w, this.chunks[this.vchunk[row]], this.voff[row], this.vlen[row], this.rowKey[row]!);
    }
    values.release(); // before the nested encodings below, which take their own
    writeNestedStates(w, [...this.nested].filter(([, inst]) => !isEmptyNested(inst)));
    return w.finish();
  }

  static decode<V = unknown>(bytes: Uint8Array, replicaId = DECODED_REPLICA_ID, options: ORMapOptions = {}): ORMap<V> {
    return ORMap.decodeAt<V>(bytes, replicaId, options, 0);
  }

  private static decodeAt<V>(bytes: Uint8Array, replicaId: string, options: ORMapOptions, depth: number): ORMap<V> {
    if (depth > MAX_NESTING) throw new DecodeError('maps nested too deeply');
    const rd = new Reader(bytes);
    readHeader(rd, CRDT_TYPE.ORMap);
    const m = new ORMap<V>(replicaId, options);
    const map = m.ctx.read(rd);
    const nKeys = rd.count(4);
    const keys = readKeys(rd, nKeys, depth > 0);
    const counts = new Uint32Array(nKeys);
    let total = 0;
    for (let i = 0; i < nKeys; i++) {
      const c = rd.varuint();
      if (c < 1) throw new DecodeError('map key without dots');
      total += c;
      if (total * 3 > rd.remaining) throw new DecodeError('dot count exceeds remaining input');
      counts[i] = c;
    }
    if (total > 0) m.growRows(total);
    m.head.reserve(nKeys);
    const rk = new Uint32Array(total);
    for (let i = 0; i < total; i++) {
      const v = rd.varuint();
      const ri = Math.floor(v / 8), kind = v % 8;
      if (kind >= KIND_COUNT) throw new DecodeError(`bad value kind ${kind}`);
      if (ri >= map.length) throw new DecodeError('dot replica index out of range');
      rk[i] = v;
      m.kind[i] = kind;
      m.rep[i] = map[ri];
    }
    for (let i = 0; i < total; i++) {
      const c = rd.varuint();
      if (c < 1) throw new DecodeError('dot counter must be >= 1');
      if (!m.ctx.has(m.rep[i], c)) throw new DecodeError('dot outside the causal context');
      m.setCounter(i, c);
    }
    if (total > 1) assertDistinctDots(rk, 3, m.ctr, total, map.length);
    const base = rd.varuint();
    let sawBase = total === 0 && base === 0;
    for (let i = 0; i < total; i++) {
      const d = rd.varuint();
      if (d === 0) sawBase = true;
      const t = base + d;
      if (t > Number.MAX_SAFE_INTEGER) throw new DecodeError('timestamp exceeds MAX_SAFE_INTEGER');
      m.ts[i] = t;
    }
    if (!sawBase) throw new DecodeError('timestamp base is not the minimum');
    // values: expanded (string references resolved) straight into arena chunks of at most MAX_CHUNK bytes
    // (smaller for a small input; see Expander); the last chunk is trimmed to its fill. The arena holds the
    // value bytes plus less than one value per chunk, and decode allocates little beyond the arena itself.
    let chunks: Uint8Array[] = [];
    const out = Expander.acquire(decodeChunkSize(rd.remaining));
    let used = 0;
    for (let i = 0, k = 0, left = nKeys > 0 ? counts[0] : 0; i < total; i++) {
      while (left === 0) left = counts[++k]; // row i belongs to key k (rows are in key order)
      left--;
      if (m.kind[i] !== ORMAP_KIND.LWW) continue;
      const n = rd.varuint();
      if (n === 0) throw new DecodeError('empty value');
      rd.need(n);
      out.start = out.len;
      out.expand(bytes, rd.pos, rd.pos + n, keys[k]);
      rd.pos += n;
      if (out.spilled !== undefined) {
        chunks = appended(chunks, out.spilled);
        out.spilled = undefined;
        if (chunks.length >= 0xffff) throw new DecodeError('values expand beyond the arena limit');
      }
      m.voff[i] = out.start;
      m.vchunk[i] = chunks.length;
      m.vlen[i] = out.len - out.start;
      used += out.len - out.start;
    }
    const lastChunk = out.finish();
    if (lastChunk.length > 0) chunks = appended(chunks, lastChunk);
    m.chunks = chunks;
    m.fill = out.len;
    m.used = used;
    m.garbage = 0;
    // link rows: per key, dots strictly sorted by (encoded replica, counter)
    let row = 0;
    for (let i = 0; i < nKeys; i++) {
      let prevR = -1, prevC = 0;
      for (let j = 0; j < counts[i]; j++, row++) {
        const ri = Math.floor(rk[row] / 8);
        if (ri < prevR || (ri === prevR && m.ctr[row] <= prevC)) throw new DecodeError('dots not strictly sorted');
        prevR = ri;
        prevC = m.ctr[row];
        m.rowKey[row] = keys[i];
        m.nextRow[row] = j + 1 < counts[i] ? row + 1 : -1;
      }
      m.head.set(keys[i], row - counts[i]);
    }
    m.top = total;
    // nested states
    const nNested = rd.count(3);
    let prev: [string, number] | undefined;
    for (let i = 0; i < nNested; i++) {
      const kind = rd.u8();
      if (kind < 1 || kind >= KIND_COUNT) throw new DecodeError(`bad nested kind ${kind}`);
      const key = readKey(rd);
      if (prev !== undefined && !(prev[0] < key || (prev[0] === key && prev[1] < kind))) throw new DecodeError('nested states not strictly sorted');
      prev = [key, kind];
      const nb = rd.bytes();
      let inst: NestedCrdt;
      switch (kind) {
        case ORMAP_KIND.Counter: {
          const c = new MapCounter(replicaId);
          c.merge(PNCounter.decode(nb, replicaId) as MapCounter);
          c.takeDelta();
          inst = c;
          break;
        }
        case ORMAP_KIND.ORSet: inst = ORSet.decode(nb, replicaId); break;
        case ORMAP_KIND.MVRegister: inst = MVRegister.decode(nb, replicaId); break;
        default: inst = ORMap.decodeAt(nb, replicaId, options, depth + 1);
      }
      if (isEmptyNested(inst)) throw new DecodeError('empty nested state');
      m.hook(kind, key, inst);
      m.ownNested().set(String.fromCharCode(48 + kind) + key, inst);
    }
    rd.done();
    return m;
  }
}

// ===================================================================================================
// helpers

/** Set by `indexHash`: whether the key it hashed holds a UTF-16 surrogate unit (only then can it be ill-formed). */
let keyHadSurrogate = false;

/**
 * The key index's 32-bit hash of a key (FNV-1a over UTF-16 units, then a xorshift-multiply finish), internal to
 * one process (never stored or sent). It also notes in `keyHadSurrogate` whether a surrogate unit was seen, so a
 * local write checks a key's well-formedness in the same pass over its characters.
 */
function indexHash(key: string): number {
  let h = 0x811c9dc5;
  let sur = 0;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if ((c & 0xf800) === 0xd800) sur = 1;
    h = Math.imul(h ^ c, 0x01000193);
  }
  keyHadSurrogate = sur !== 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h;
}

/**
 * Key -> first row: an open-addressing table (linear probing, backward-shift deletion) of row numbers in an
 * Int32Array (load <= 0.8), keys compared through the map's `rowKey` column, plus a tag byte per slot from
 * TAGGED_SLOTS slots on. About 6-12 bytes per key, where a `Map<string, number>` costs 40-50; the same API as the
 * Map it replaces (get, set, delete, has, size, iteration in slot order), plus variants taking the key's
 * `indexHash` so that a write hashes its key once. The hash is FNV-1a with a fixed seed: crafted keys can collide
 * (a node taking writes from untrusted peers should set `clusterKey`).
 */
class KeyIndex {
  /** row + 1, 0 = empty. Until the first key: a shared all-zero table (read only; `set` allocates). */
  private slots = NO_SLOTS;
  /** Per slot the top 8 bits of its key's hash, from TAGGED_SLOTS slots on: a probe compares key strings only
   * when the tag matches (one byte per slot; comparing two distinct keys of one length reads their characters). */
  private tags: Uint8Array | undefined;
  private mask = 15;
  size = 0;

  constructor(private rowKey: (string | undefined)[]) {}

  /** The map replaced its key column (grown). */
  rebind(rowKey: (string | undefined)[]): void {
    this.rowKey = rowKey;
  }

  /** Number of slots (a power of two). */
  get capacity(): number {
    return this.slots.length;
  }

  /** Slot of `key` (whose `indexHash` is `h`), or -(empty slot + 1) where it would go. */
  private find(key: string, h: number): number {
    const slots = this.slots, tags = this.tags, mask = this.mask, rowKey = this.rowKey;
    const tag = h >>> 24;
    let i = h & mask;
    for (;;) {
      const v = slots[i];
      if (v === 0) return -(i + 1);
      if ((tags === undefined || tags[i] === tag) && rowKey[v - 1] === key) return i;
      i = (i + 1) & mask;
    }
  }

  get(key: string): number | undefined {
    return this.getHashed(key, indexHash(key));
  }

  /** `get` with the key's `indexHash` already computed. */
  getHashed(key: string, h: number): number | undefined {
    const i = this.find(key, h);
    return i >= 0 ? this.slots[i] - 1 : undefined;
  }

  has(key: string): boolean {
    return this.find(key, indexHash(key)) >= 0;
  }

  /** Point `key` at `row` (rowKey[row] must already be `key`). */
  set(key: string, row: number): void {
    this.setHashed(key, indexHash(key), row);
  }

  /** `set` with the key's `indexHash` already computed. */
  setHashed(key: string, h: number, row: number): void {
    const i = this.find(key, h);
    if (i >= 0) {
      this.slots[i] = row + 1;
      return;
    }
    if (this.slots === NO_SLOTS) this.slots = new Int32Array(NO_SLOTS.length);
    this.slots[-(i + 1)] = row + 1;
    if (this.tags !== undefined) this.tags[-(i + 1)] = h >>> 24;
    if (++this.size * 5 > this.slots.length * 4) this.resize(this.slots.length * 2);
  }

  /** Put a key known to be absent (hash `h`) at `row`, without comparing keys. */
  insertNew(h: number, row: number): void {
    if (this.slots === NO_SLOTS) this.slots = new Int32Array(NO_SLOTS.length);
    let i = h & this.mask;
    while (this.slots[i] !== 0) i = (i + 1) & this.mask;
    this.slots[i] = row + 1;
    if (this.tags !== undefined) this.tags[i] = h >>> 24;
    if (++this.size * 5 > this.slots.length * 4) this.resize(this.slots.length * 2);
  }

  delete(key: string): boolean {
    return this.deleteHashed(key, indexHash(key));
  }

  /** `delete` with the key's `indexHash` already computed. */
  deleteHashed(key: string, h: number): boolean {
    let i = this.find(key, h);
    if (i < 0) return false;
    const slots = this.slots, tags = this.tags, mask = this.mask;
    // backward-shift deletion keeps probe chains intact without tombstones
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const v = slots[j];
      if (v === 0) break;
      const home = indexHash(this.rowKey[v - 1]!) & mask;
      if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
        slots[i] = v;
        if (tags !== undefined) tags[i] = tags[j];
        i = j;
      }
    }
    slots[i] = 0;
    this.size--;
    return true;
  }

  private resize(n: number): void {
    const old = this.slots;
    this.slots = new Int32Array(n);
    const tags = (this.tags = n >= TAGGED_SLOTS ? new Uint8Array(n) : undefined);
    this.mask = n - 1;
    for (let k = 0; k < old.length; k++) {
      const v = old[k];
      if (v === 0) continue;
      const h = indexHash(this.rowKey[v - 1]!);
      let i = h & this.mask;
      while (this.slots[i] !== 0) i = (i + 1) & this.mask;
      this.slots[i] = v;
      if (tags !== undefined) tags[i] = h >>> 24;
    }
  }

  /** Make room for n keys at once (decode). */
  reserve(n: number): void {
    let cap = this.slots.length;
    while (n * 5 > cap * 4) cap *= 2;
    if (cap > this.slots.length) this.resize(cap);
  }

  *values(): IterableIterator<number> {
    const slots = this.slots;
    for (let k = 0; k < slots.length; k++) if (slots[k] !== 0) yield slots[k] - 1;
  }

  *keys(): IterableIterator<string> {
    for (const row of this.values()) yield this.rowKey[row]!;
  }

  *[Symbol.iterator](): IterableIterator<[string, number]> {
    for (const row of this.values()) yield [this.rowKey[row]!, row];
  }
}

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function bytesSame(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const emptyEncodings = new Map<number, Uint8Array>();

/** Nested states (`[kind char + key, state]`) as an encoding holds them: count, then sorted by key and kind, each
 * as kind, key and length-prefixed encoding. Sorts `list`. */
function writeNestedStates(w: Writer, list: [string, NestedCrdt][]): void {
  list.sort((x, y) => cmpStr(x[0].slice(1), y[0].slice(1)) || x[0].charCodeAt(0) - y[0].charCodeAt(0));
  w.varuint(list.length);
  for (const [nk, inst] of list) {
    w.u8(nk.charCodeAt(0) - 48);
    w.string(nk.slice(1));
    w.bytes(inst.encode());
  }
}

/** True when a nested instance holds the empty state (its encoding equals a fresh instance's). */
function isEmptyNested(inst: NestedCrdt): boolean {
  if (inst instanceof ORSet) return inst.size === 0 && inst.ctx.isEmpty();
  if (inst instanceof MVRegister) return inst.ctx.isEmpty();
  if (inst instanceof ORMap) return inst.size === 0 && inst.ctx.isEmpty() && inst.nestedIsEmpty();
  let e = emptyEncodings.get(inst.typeTag);
  if (e === undefined) emptyEncodings.set(inst.typeTag, (e = new PNCounter('x').encode()));
  return bytesSame(inst.encode(), e);
}

/**
 * Add the dots (r, c) for every c of `cs` to `ctx` in counter order, where `ctx.add` appends to the last range
 * (out of order it inserts). A delta of local writes holds two increasing runs (the new dots, then the dots they
 * retired), merged in one pass; anything else is sorted.
 */
function addInOrder(ctx: CausalContext, r: number, cs: number[]): void {
  const n = cs.length;
  let cut = 0; // start of the second increasing run; -1: more than two runs
  for (let i = 1; i < n; i++) {
    if (cs[i - 1] < cs[i]) continue;
    if (cut !== 0) {
      cut = -1;
      break;
    }
    cut = i;
  }
  if (cut === 0) {
    for (let i = 0; i < n; i++) ctx.add(r, cs[i]);
  } else if (cut > 0) {
    let i = 0, j = cut;
    while (i < cut && j < n) ctx.add(r, cs[i] < cs[j] ? cs[i++] : cs[j++]);
    while (i < cut) ctx.add(r, cs[i++]);
    while (j < n) ctx.add(r, cs[j++]);
  } else {
    const sorted = Float64Array.from(cs).sort();
    for (let i = 0; i < n; i++) ctx.add(r, sorted[i]);
  }
}

function checkKey(key: string): void {
  checkedIndexHash(key);
}

/** The key's `indexHash`; ValidationError when it is not a well-formed string (which no replica could read back). */
function checkedIndexHash(key: string): number {
  if (typeof key !== 'string') throw new ValidationError('map keys are strings');
  const h = indexHash(key);
  if (keyHadSurrogate && !isWellFormedString(key)) throw new ValidationError('map key is not well-formed UTF-16 (lone surrogate)');
  return h;
}

/** A length-prefixed UTF-8 key. */
function readKey(rd: Reader): string {
  const n = rd.varuint();
  rd.need(n);
  const s = utf8String(rd.buf.subarray(rd.pos, rd.pos + n), n);
  rd.pos += n;
  return s;
}


// ===================================================================================================
// wire helpers: front-coded keys, string dictionary for values

/**
 * Keys (sorted) front-coded on their UTF-8 bytes: shared prefix length with the previous key, then the rest
 * (length-prefixed). Sorted ids like `vm-000123` cost a few bytes each.
 */
function writeKeys(w: Writer, keys: string[]): void {
  let excess = 0;
  let prev = new Uint8Array(64), prevLen = 0;
  let cur = new Uint8Array(64);
  for (const key of keys) {
    if (key.length * 3 > cur.length) cur = new Uint8Array(key.length * 3);
    // ASCII (the usual id) without the encoder call: its UTF-8 bytes are its char codes
    let len = key.length;
    for (let i = 0; i < len; i++) {
      const c = key.charCodeAt(i);
      if (c >= 0x80) {
        len = textEncoder.encodeInto(key, cur).written;
        break;
      }
      cur[i] = c;
    }
    let p = 0;
    const max = Math.min(prevLen, len);
    while (p < max && prev[p] === cur[p]) p++;
    // the expansion bound (as for values, see value-column.ts): the shared prefixes (bytes a reader rebuilds
    // that are not on the wire) may total at most (EXPANSION_RATIO - 1) times the encoding so far, counted to
    // the end of this key; past it the key is written in full. The reader applies the same rule.
    if (p > 0 && excess + p > KEY_EXCESS_PER_BYTE * (w.pos + varuintSize(p) + varuintSize(len - p) + len - p)) p = 0;
    excess += p;
    w.varuint(p);
    w.varuint(len - p);
    w.rawRange(cur, p, len);
    const t = prev;
    prev = cur;
    prevLen = len;
    cur = t.length >= prev.length ? t : new Uint8Array(prev.length);
  }
}

/** Shared key prefix bytes allowed per encoded byte (see writeKeys): keys expand at most EXPANSION_RATIO times. */
const KEY_EXCESS_PER_BYTE = EXPANSION_RATIO - 1;

/** readKeys' buffer for the key being built (kept between calls while at most 4 KiB). */
let keyScratch = new Uint8Array(64);

/**
 * Keys of nested maps as read, shared: the nested maps of a map mostly hold the same few keys (a VM record's
 * field names), and each decoded copy of a key would otherwise be a string of its own (about 300 B per VM
 * record of ten fields). At most SHARED_KEYS_MAX keys of at most 32 chars; cleared when full, so input
 * with many distinct keys costs a lookup per key and no memory beyond the cap.
 */
const sharedKeys = new Map<string, string>();
const SHARED_KEYS_MAX = 1024;

function sharedKey(key: string): string {
  if (key.length > 32) return key;
  const k = sharedKeys.get(key);
  if (k !== undefined) return k;
  if (sharedKeys.size >= SHARED_KEYS_MAX) sharedKeys.clear();
  sharedKeys.set(key, key);
  return key;
}

/** `n` front-coded keys (`share`: through sharedKey, for nested maps). */
function readKeys(rd: Reader, n: number, share = false): string[] {
  const keys: string[] = new Array(n);
  let buf = keyScratch; // shared: nothing below re-enters readKeys
  let len = 0;
  let excess = 0;
  for (let i = 0; i < n; i++) {
    const p = rd.varuint();
    if (p > len) throw new DecodeError('key prefix longer than the previous key');
    const m = rd.varuint();
    rd.need(m);
    excess += p;
    // the expansion bound of writeKeys, checked before the key is built (rd.pos counts from the encoding's start)
    if (p > 0 && excess > KEY_EXCESS_PER_BYTE * (rd.pos + m)) throw new DecodeError('map key prefixes expand beyond the bound');
    if (p + m > buf.length) {
      const nb = new Uint8Array(Math.max(2 * buf.length, p + m));
      nb.set(buf.subarray(0, p));
      buf = nb;
      if (nb.length <= 4096) keyScratch = nb;
    }
    const src = rd.buf, at = rd.pos;
    if (m <= 32) for (let j = 0; j < m; j++) buf[p + j] = src[at + j];
    else buf.set(src.subarray(at, at + m), p);
    rd.pos += m;
    len = p + m;
    const key = utf8String(buf, len);
    if (i > 0 && !(keys[i - 1] < key)) throw new DecodeError('map keys not strictly sorted');
    keys[i] = share ? sharedKey(key) : key;
  }
  return keys;
}

/** A flat string from UTF-8 bytes buf[0, len) (ASCII fast path); DecodeError when not valid UTF-8. */
function utf8String(buf: Uint8Array, len: number): string {
  if (len <= 256) {
    let ascii = true;
    for (let i = 0; i < len && ascii; i++) if (buf[i] >= 0x80) ascii = false;
    if (ascii) return latin1(buf, 0, len); // ASCII: one char per byte
  }
  try {
    return utf8.decode(buf.subarray(0, len));
  } catch (e) {
    throw new DecodeError('invalid UTF-8 in map key', { cause: e });
  }
}
