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
 * One row per dot: typed-array columns for the replica index, dot counter, HLC timestamp, kind, value offset
 * and length into one byte arena of msgpack values (values are kept as the writer produced them and decoded
 * lazily on `get`, with a small droppable cache), the 64-bit key hash (computed lazily in batches), and a
 * next-row link for keys with several dots. A `Map<string, row>` finds a key's first row. Freed rows are
 * reused; the arena compacts when more than half of it is garbage.
 *
 * ## Merge
 * The rows the other can affect (keys the other holds, and dots the other's context covers: one tight scan
 * over the typed columns) and all the other's rows go, sorted by (key hash, replica, counter), to the
 * kernel's `dotMerge` in one call; losers are unlinked and winners copied with their value bytes. A 64-bit
 * key-hash collision cannot mix two keys: the hash only orders dots, and a surviving dot is mapped back to
 * its row, which holds the full key.
 *
 * ## Encoding (columnar, canonical)
 * version, type tag, causal context; key count, then the keys sorted (JS string order) as length-prefixed
 * UTF-8; dot count per key; per dot: `replica index * 8 + kind`; per dot: counter; timestamp base (the
 * minimum) then per dot `ts - base`; per LWW dot: length-prefixed value bytes; finally the nested states
 * (non-empty ones, sorted by key then kind) as (kind, key, nested encoding).
 *
 * ## Anti-entropy
 * `keyHashes()` gives per key a 64-bit key hash and a 64-bit entry hash (xxHash64, one kernel call each),
 * `hashTree(depth)` the kernel's bucketed hash tree over them, and `deltaForKeys(keys, seen?)` /
 * `deltaForBuckets(depth, buckets, seen?)` a state of only those keys, so bytes grow with the difference.
 */
import { DecodeError, ValidationError } from '../errors.js';
import { Reader, Writer } from '../codec/binary.js';
import { decodeValue, encodeValue } from '../codec/value.js';
import { HLC } from '../clock/hlc.js';
import { CausalContext, DotList, hashStringsMany, inverseMap, kernel, mergeDots } from './causal-context.js';
import { MVRegister } from './mv-register.js';
import { ORSet, copyContext, readHeader } from './or-set.js';
import { PNCounter } from './pn-counter.js';
import { defaultHlc } from './lww-register.js';
import { CODEC_VERSION, CRDT_TYPE, type Crdt } from './types.js';

/** Kind of a dot's value: an LWW value, or which nested CRDT. Stable: part of the wire format. */
export const ORMAP_KIND = { LWW: 0, Counter: 1, ORSet: 2, MVRegister: 3, ORMap: 4 } as const;
const KIND_COUNT = 5;

export interface ORMapOptions {
  /**
   * Hybrid logical clock for LWW timestamps. Default: the process-wide HLC over `Date.now` (as LWWRegister). For deterministic
   * simulation inject `new HLC({ now: () => scheduler.now() })`. Nested maps share it.
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

/** PNCounter that reports local mutations to its map. */
class MapCounter extends PNCounter {
  onLocalChange: (() => void) | undefined;
  protected override empty(replicaId: string): this {
    return new MapCounter(replicaId) as this;
  }
  override increment(n: number): void {
    super.increment(n);
    this.onLocalChange?.();
  }
  override decrement(n = 1): void {
    super.decrement(n);
    this.onLocalChange?.();
  }
}

const MAX_NESTING = 32;
const CACHE_LIMIT = 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });

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
  private free: number[] = [];
  private rowKey: (string | undefined)[] = [];
  private rep = new Uint32Array(0);
  private ctr = new Float64Array(0);
  private ts = new Float64Array(0);
  private voff = new Uint32Array(0);
  private vlen = new Uint32Array(0);
  private kind = new Uint8Array(0);
  private nextRow = new Int32Array(0);
  private kh = new Uint32Array(0); // 2 words per row
  private hashed = new Uint8Array(0);
  private head = new Map<string, number>();

  // --- value arena ---
  private arena = new Uint8Array(0);
  private arenaLen = 0;
  private garbage = 0;
  private cache = new Map<number, unknown>();

  // --- nested values: kind char + key -> instance ---
  private nested = new Map<string, NestedCrdt>();

  // --- pending delta ---
  private dirtyKeys = new Set<string>();
  private removed: number[] = [];
  /** Contexts merged in since the last take (a delta carries merged state too). */
  private merged: CausalContext | undefined;
  private touchedNested = new Set<string>();

  // --- change tracking ---
  private listeners: ((keys: string[]) => void)[] = [];
  private changed: Set<string> | undefined;
  /** @internal called after every local mutation (a parent ORMap uses it for nested maps). */
  onLocalChange: (() => void) | undefined;

  constructor(replicaId: string, options: ORMapOptions = {}) {
    this.me = this.ctx.intern(replicaId);
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

  has(key: string): boolean {
    return this.head.has(key);
  }

  /** The present keys, sorted (JS string order). */
  keys(): string[] {
    return [...this.head.keys()].sort(cmpStr);
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
    const hit = this.cache.get(row);
    if (hit !== undefined || this.cache.has(row)) return hit;
    const o = this.voff[row];
    const v = decodeValue(this.arena.subarray(o, o + this.vlen[row]));
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(row, v);
    return v;
  }

  // ===================================================================================================
  // local writes

  /** Set `key` to `value` (last writer wins by HLC timestamp, then replica id). */
  setLWW(key: string, value: V): void {
    checkKey(key);
    const bytes = encodeValue(value);
    const ts = this.retire(key);
    const c = this.ctx.next(this.me);
    const row = this.addRow(key, this.me, c, ts, ORMAP_KIND.LWW, true);
    this.putValue(row, bytes, 0, bytes.length);
    this.dirtyKeys.add(key);
    this.noteLocal(key);
  }

  /** Remove `key` (observed-remove: a concurrent write survives). Returns true when the key was present. */
  delete(key: string): boolean {
    let row = this.head.get(key) ?? -1;
    if (row < 0) return false;
    while (row >= 0) {
      const next: number = this.nextRow[row];
      this.removed.push(this.rep[row], this.ctr[row]);
      this.freeRow(row);
      row = next;
    }
    this.head.delete(key);
    this.dirtyKeys.add(key);
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
      this.nested.set(nk, inst);
    }
    return inst;
  }

  private newNested(kind: number): NestedCrdt {
    let inst: NestedCrdt & { onLocalChange: (() => void) | undefined };
    switch (kind) {
      case ORMAP_KIND.Counter: inst = new MapCounter(this.replicaId); break;
      case ORMAP_KIND.ORSet: inst = new ORSet(this.replicaId); break;
      case ORMAP_KIND.MVRegister: inst = new MVRegister(this.replicaId); break;
      default: inst = new ORMap(this.replicaId, { clock: this.clock, keyHash: this.keyHash });
    }
    return inst;
  }

  /** Hook the nested instance at (kind, key) so that its local mutations create dots here. */
  private hook(kind: number, key: string, inst: NestedCrdt): void {
    const nk = String.fromCharCode(48 + kind) + key;
    (inst as { onLocalChange: (() => void) | undefined }).onLocalChange = () => this.nestedWrite(kind, key, nk);
  }

  private nestedWrite(kind: number, key: string, nk: string): void {
    const ts = this.retire(key);
    const c = this.ctx.next(this.me);
    this.addRow(key, this.me, c, ts, kind, true);
    this.dirtyKeys.add(key);
    this.touchedNested.add(nk);
    this.noteLocal(key);
  }

  /** Retire every row of `key` (recorded as a local removal); returns a timestamp for the new write, which
   * the caller adds at once with `addRow(..., replace = true)`. */
  private retire(key: string): number {
    let ts = this.clock.now();
    let row = this.head.get(key) ?? -1;
    if (row < 0) return ts;
    while (row >= 0) {
      const next: number = this.nextRow[row];
      if (this.ts[row] >= ts) ts = this.ts[row] + 1;
      this.removed.push(this.rep[row], this.ctr[row]);
      this.freeRow(row);
      row = next;
    }
    return ts; // the head entry still names a freed row: the caller's addRow(..., replace) overwrites it
  }

  private noteLocal(key: string): void {
    if (this.changed !== undefined) this.changed.add(key);
    if (this.listeners.length > 0) this.emit([key]);
    this.onLocalChange?.();
  }

  // ===================================================================================================
  // change hooks

  /** Call `fn(keys)` after each local write and each merge that changed keys. Returns an unsubscribe. */
  onChange(fn: (keys: string[]) => void): () => void {
    this.listeners.push(fn);
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

  private emit(keys: string[]): void {
    for (const fn of this.listeners.slice()) fn(keys);
  }

  // ===================================================================================================
  // rows and arena

  /**
   * A new row for `key`, linked first in its chain (or, with `replace`, as the whole chain: the caller has
   * just freed the old rows). Copies the key hash from the key's previous first row when known.
   */
  private addRow(key: string, r: number, c: number, ts: number, kind: number, replace = false): number {
    const h = this.head.get(key);
    let lo = 0, hi = 0, hv = 0;
    if (h !== undefined && this.hashed[h] === 1) {
      lo = this.kh[2 * h];
      hi = this.kh[2 * h + 1];
      hv = 1;
    }
    let row: number;
    if (this.free.length > 0) row = this.free.pop()!;
    else {
      if (this.top === this.cap) this.growRows(Math.max(16, Math.ceil(this.cap * 1.25)));
      row = this.top++;
    }
    this.rowKey[row] = key;
    this.rep[row] = r;
    this.ctr[row] = c;
    this.ts[row] = ts;
    this.kind[row] = kind;
    this.vlen[row] = 0;
    this.kh[2 * row] = lo;
    this.kh[2 * row + 1] = hi;
    this.hashed[row] = hv;
    this.nextRow[row] = replace || h === undefined ? -1 : h;
    this.head.set(key, row);
    return row;
  }

  /** Unlink-free: the caller fixes the key's chain. */
  private freeRow(row: number): void {
    this.rowKey[row] = undefined;
    this.garbage += this.vlen[row];
    this.vlen[row] = 0;
    this.cache.delete(row);
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

  private growRows(cap: number): void {
    const g = <A extends Uint32Array | Float64Array | Uint8Array | Int32Array>(a: A, n: number): A => {
      const b = new (a.constructor as new (n: number) => A)(n);
      b.set(a);
      return b;
    };
    this.rep = g(this.rep, cap);
    this.ctr = g(this.ctr, cap);
    this.ts = g(this.ts, cap);
    this.voff = g(this.voff, cap);
    this.vlen = g(this.vlen, cap);
    this.kind = g(this.kind, cap);
    this.nextRow = g(this.nextRow, cap);
    this.kh = g(this.kh, 2 * cap);
    this.hashed = g(this.hashed, cap);
    this.cap = cap;
  }

  private putValue(row: number, src: Uint8Array, off: number, len: number): void {
    if (this.arenaLen + len > this.arena.length) this.growArena(len);
    this.arena.set(src.subarray(off, off + len), this.arenaLen);
    this.voff[row] = this.arenaLen;
    this.vlen[row] = len;
    this.arenaLen += len;
  }

  /**
   * Make room for `need` more bytes: compact when over half is garbage, else grow by 1/8 (small slack keeps
   * resident bytes per key low; the copies stay amortised O(1) per byte, about 9 copies per byte).
   */
  private growArena(need: number): void {
    const live = this.arenaLen - this.garbage;
    if (this.garbage > this.arenaLen / 2 && live + need <= this.arena.length) {
      this.compactArena(this.arena.length);
      return;
    }
    let size = Math.max(256, Math.ceil(this.arena.length * 1.125));
    while (size < live + need) size = Math.ceil(size * 1.125);
    this.compactArena(size);
  }

  private compactArena(size: number): void {
    const next = new Uint8Array(size);
    let p = 0;
    for (let row = 0; row < this.top; row++) {
      const n = this.vlen[row];
      if (this.rowKey[row] === undefined || n === 0) continue;
      const o = this.voff[row];
      next.set(this.arena.subarray(o, o + n), p);
      this.voff[row] = p;
      p += n;
    }
    this.arena = next;
    this.arenaLen = p;
    this.garbage = 0;
  }

  /** Compute missing key hashes of the given rows in one kernel call. */
  private ensureHashes(rows: ArrayLike<number>, n: number): void {
    const todo: number[] = [];
    for (let i = 0; i < n; i++) if (this.hashed[rows[i]] === 0) todo.push(rows[i]);
    if (todo.length === 0) return;
    if (this.keyHash !== undefined) {
      for (const row of todo) {
        const [lo, hi] = this.keyHash(this.rowKey[row]!);
        this.kh[2 * row] = lo >>> 0;
        this.kh[2 * row + 1] = hi >>> 0;
        this.hashed[row] = 1;
      }
      return;
    }
    const h = hashStringsMany(todo.map((row) => this.rowKey[row]!));
    for (let i = 0; i < todo.length; i++) {
      const row = todo[i];
      this.kh[2 * row] = h[2 * i];
      this.kh[2 * row + 1] = h[2 * i + 1];
      this.hashed[row] = 1;
    }
  }

  /** Live rows of `key` (in chain order). */
  private rowsOf(key: string, out: number[]): void {
    for (let row = this.head.get(key) ?? -1; row >= 0; row = this.nextRow[row]) out.push(row);
  }

  // ===================================================================================================
  // merge

  /** Merge another replica's state or a delta (commutative, associative, idempotent). */
  merge(other: ORMap<V>): void {
    if (other === this) return;
    const map = this.ctx.mapFrom(other.ctx);
    const inv = inverseMap(map, this.ctx.width);
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
    const mark = new Uint8Array(this.top);
    for (const name of bNames) {
      if (name >= this.top) continue;
      for (let r = name; r >= 0; r = this.nextRow[r]) {
        mark[r] = 1;
        a.push(name, 0, this.rep[r], this.ctr[r], r);
      }
    }
    if (!octx.isEmpty()) {
      const ovv = octx.vv, ocl = octx.cloud;
      const rep = this.rep, ctr = this.ctr, rowKey = this.rowKey;
      for (let row = 0, top = this.top; row < top; row++) {
        const key = rowKey[row];
        if (key === undefined || mark[row] === 1) continue;
        const o = inv[rep[row]];
        if (o < 0) continue;
        const c = ctr[row];
        if (c <= ovv[o] || (ocl[o] !== undefined && octx.has(o, c))) a.push(head.get(key)!, 0, rep[row], c, row);
      }
    }
    a.sort();
    b.sort();
    const { out, n } = mergeDots(a, this.ctx, b, octx, inv, map);

    const track = this.listeners.length > 0 || this.changed !== undefined;
    const changedKeys = track ? new Set<string>() : undefined;
    const keep = new Uint8Array(a.n);
    const adds: number[] = [];
    for (let k = 0; k < n; k++) {
      const v = out[k];
      if (v >= 0) keep[v] = 1;
      else adds.push(-(v + 1));
    }
    for (const j of adds) {
      const src = b.refs[j];
      const key = other.rowKey[src]!;
      const row = this.addRow(key, b.replicas[j], b.counters[j], other.ts[src], other.kind[src]);
      if (other.hashed[src] === 1) {
        this.kh[2 * row] = other.kh[2 * src];
        this.kh[2 * row + 1] = other.kh[2 * src + 1];
        this.hashed[row] = 1;
      }
      if (other.kind[src] === ORMAP_KIND.LWW) this.putValue(row, other.arena, other.voff[src], other.vlen[src]);
      changedKeys?.add(key);
      this.dirtyKeys.add(key);
    }
    for (let i = 0; i < a.n; i++) {
      if (keep[i] === 1) continue;
      const row = a.refs[i];
      changedKeys?.add(this.rowKey[row]!);
      this.unlinkRow(row);
    }
    this.ctx.mergeFrom(octx, map);
    (this.merged ??= new CausalContext()).absorb(octx);

    // nested states: grow-only join
    for (const [nk, inst] of other.nested) {
      this.touchedNested.add(nk);
      const kind = nk.charCodeAt(0) - 48;
      const key = nk.slice(1);
      const mine = this.nestedFor(kind, key);
      const before = track ? mine.encode() : undefined;
      (mine as { merge(o: unknown): void }).merge(inst);
      if (track && this.head.has(key) && !bytesSame(before!, mine.encode())) changedKeys!.add(key);
    }

    if (changedKeys !== undefined && changedKeys.size > 0) {
      const list = [...changedKeys].sort(cmpStr);
      if (this.changed !== undefined) for (const k of list) this.changed.add(k);
      if (this.listeners.length > 0) this.emit(list);
    }
  }

  // ===================================================================================================
  // deltas

  /** Local writes since the last take, as a map state (null when none). */
  takeDelta(): ORMap<V> | null {
    if (this.dirtyKeys.size === 0 && this.removed.length === 0 && this.merged === undefined && this.touchedNested.size === 0) return null;
    const merged = this.merged;
    if (merged !== undefined) {
      // every row holding a dot the delta's context covers must come along, or the delta would remove it
      const toM = new Int32Array(this.ctx.width);
      for (let r = 0; r < toM.length; r++) toM[r] = merged.lookup(this.ctx.ids[r]);
      for (let row = 0; row < this.top; row++) {
        const key = this.rowKey[row];
        if (key === undefined) continue;
        const m = toM[this.rep[row]];
        if (m >= 0 && merged.has(m, this.ctr[row])) this.dirtyKeys.add(key);
      }
    }
    const d = this.subset(this.dirtyKeys, this.removed);
    if (merged !== undefined) d.ctx.absorb(merged);
    this.merged = undefined;
    for (const nk of this.touchedNested) {
      const inst = this.nested.get(nk)!;
      const nd = inst.takeDelta();
      if (nd !== null) d.nested.set(nk, nd as NestedCrdt);
    }
    this.touchedNested.clear();
    this.dirtyKeys.clear();
    this.removed = [];
    return d;
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
    const d = this.subset(set, retired);
    for (const key of set) {
      for (let kind = 1; kind < KIND_COUNT; kind++) {
        const nk = String.fromCharCode(48 + kind) + key;
        const inst = this.nested.get(nk);
        if (inst !== undefined && !isEmptyNested(inst)) d.nested.set(nk, inst.clone() as NestedCrdt);
      }
    }
    return d;
  }

  /** `deltaForKeys` for every key whose hash falls in one of the buckets (top `depth` bits of the key hash). */
  deltaForBuckets(depth: number, buckets: Iterable<number>, seen?: ORMap<V>): ORMap<V> {
    if (!Number.isInteger(depth) || depth < 0 || depth > 16) throw new RangeError('depth must be in 0..16');
    const want = new Set(buckets);
    const keys: string[] = [];
    const collect = (m: ORMap<V>): void => {
      const heads = [...m.head.values()];
      m.ensureHashes(heads, heads.length);
      for (const row of heads) {
        const b = depth === 0 ? 0 : m.kh[2 * row + 1] >>> (32 - depth);
        if (want.has(b)) keys.push(m.rowKey[row]!);
      }
    };
    collect(this);
    if (seen !== undefined) collect(seen);
    return this.deltaForKeys(keys, seen);
  }

  private holds(key: string, r: number, c: number): boolean {
    for (let row = this.head.get(key) ?? -1; row >= 0; row = this.nextRow[row]) if (this.rep[row] === r && this.ctr[row] === c) return true;
    return false;
  }

  /** A new map with the rows of `keys` and a context of their dots plus `extraDots` (flat r, c pairs). */
  private subset(keys: Iterable<string>, extraDots: number[]): ORMap<V> {
    const d = new ORMap<V>(this.replicaId, { clock: this.clock, keyHash: this.keyHash });
    const tmap = new Int32Array(this.ctx.width).fill(-1);
    const to = (r: number): number => (tmap[r] >= 0 ? tmap[r] : (tmap[r] = d.ctx.intern(this.ctx.ids[r])));
    for (const key of keys) {
      for (let row = this.head.get(key) ?? -1; row >= 0; row = this.nextRow[row]) {
        const r = to(this.rep[row]);
        d.ctx.add(r, this.ctr[row]);
        const nr = d.addRow(key, r, this.ctr[row], this.ts[row], this.kind[row]);
        if (this.hashed[row] === 1) {
          d.kh[2 * nr] = this.kh[2 * row];
          d.kh[2 * nr + 1] = this.kh[2 * row + 1];
          d.hashed[nr] = 1;
        }
        if (this.kind[row] === ORMAP_KIND.LWW) d.putValue(nr, this.arena, this.voff[row], this.vlen[row]);
      }
    }
    for (let i = 0; i < extraDots.length; i += 2) d.ctx.add(to(extraDots[i]), extraDots[i + 1]);
    return d;
  }

  clone(): ORMap<V> {
    const c = new ORMap<V>(this.replicaId, { clock: this.clock, keyHash: this.keyHash });
    copyContext(this.ctx, c.ctx);
    const tmap = this.ctx.mapFrom(c.ctx); // c index -> my index (same ids)
    const toC = inverseMap(tmap, this.ctx.width);
    for (const [key, h] of this.head) {
      for (let row = h; row >= 0; row = this.nextRow[row]) {
        const nr = c.addRow(key, toC[this.rep[row]], this.ctr[row], this.ts[row], this.kind[row]);
        if (this.kind[row] === ORMAP_KIND.LWW) c.putValue(nr, this.arena, this.voff[row], this.vlen[row]);
      }
    }
    for (const [nk, inst] of this.nested) {
      const copy = inst.clone() as NestedCrdt;
      c.hook(nk.charCodeAt(0) - 48, nk.slice(1), copy);
      c.nested.set(nk, copy);
    }
    for (const key of this.dirtyKeys) c.dirtyKeys.add(key);
    for (let i = 0; i < this.removed.length; i += 2) c.removed.push(toC[this.removed[i]], this.removed[i + 1]);
    for (const nk of this.touchedNested) c.touchedNested.add(nk);
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
    const heads = keys.map((k) => this.head.get(k)!);
    this.ensureHashes(heads, heads.length);
    const keyHashes = new Uint32Array(2 * keys.length);
    const w = new Writer(1024);
    const offsets = new Uint32Array(keys.length);
    const lengths = new Uint32Array(keys.length);
    const rows: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      keyHashes[2 * i] = this.kh[2 * heads[i]];
      keyHashes[2 * i + 1] = this.kh[2 * heads[i] + 1];
      offsets[i] = w.pos;
      rows.length = 0;
      this.rowsOf(keys[i], rows);
      rows.sort((x, y) => cmpStr(this.ctx.ids[this.rep[x]], this.ctx.ids[this.rep[y]]) || this.ctr[x] - this.ctr[y]);
      for (const row of rows) {
        w.string(this.ctx.ids[this.rep[row]]);
        w.varuint(this.ctr[row]);
        w.varuint(this.ts[row]);
        w.u8(this.kind[row]);
        if (this.kind[row] === ORMAP_KIND.LWW) w.bytes(this.arena.subarray(this.voff[row], this.voff[row] + this.vlen[row]));
        else w.bytes(this.nestedFor(this.kind[row], keys[i]).encode());
      }
      lengths[i] = w.pos - offsets[i];
    }
    const entryHashes = new Uint32Array(2 * keys.length);
    if (keys.length > 0) kernel().xxhash64Many(w.view_(), offsets, lengths, 0, entryHashes);
    return { keys, keyHashes, entryHashes };
  }

  /** The kernel's bucketed hash tree over `keyHashes()` (heap order, u32 pairs; see Kernel.hashTree). */
  hashTree(depth: number): Uint32Array {
    const { keys, keyHashes, entryHashes } = this.keyHashes();
    const out = new Uint32Array(2 * 2 ** (depth + 1));
    kernel().hashTree(keyHashes, entryHashes, keys.length, depth, out);
    return out;
  }

  /** @internal true when every nested state is empty. */
  nestedIsEmpty(): boolean {
    for (const inst of this.nested.values()) if (!isEmptyNested(inst)) return false;
    return true;
  }

  // ===================================================================================================
  // encoding

  encode(): Uint8Array {
    const w = new Writer(256 + this.arenaLen - this.garbage + 24 * this.head.size);
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
    for (const key of keys) w.string(key);
    for (const c of counts) w.varuint(c);
    for (const row of rows) w.varuint(perm[this.rep[row]] * 8 + this.kind[row]);
    for (const row of rows) w.varuint(this.ctr[row]);
    let base = rows.length > 0 ? Infinity : 0;
    for (const row of rows) if (this.ts[row] < base) base = this.ts[row];
    w.varuint(base);
    for (const row of rows) w.varuint(this.ts[row] - base);
    for (const row of rows) {
      if (this.kind[row] !== ORMAP_KIND.LWW) continue;
      const o = this.voff[row], n = this.vlen[row];
      w.varuint(n);
      w.raw(this.arena.subarray(o, o + n));
    }
    const nested = [...this.nested].filter(([, inst]) => !isEmptyNested(inst));
    nested.sort((x, y) => cmpStr(x[0].slice(1), y[0].slice(1)) || x[0].charCodeAt(0) - y[0].charCodeAt(0));
    w.varuint(nested.length);
    for (const [nk, inst] of nested) {
      w.u8(nk.charCodeAt(0) - 48);
      w.string(nk.slice(1));
      w.bytes(inst.encode());
    }
    return w.finish();
  }

  static decode<V = unknown>(bytes: Uint8Array, replicaId = 'decoded', options: ORMapOptions = {}): ORMap<V> {
    return ORMap.decodeAt<V>(bytes, replicaId, options, 0);
  }

  private static decodeAt<V>(bytes: Uint8Array, replicaId: string, options: ORMapOptions, depth: number): ORMap<V> {
    if (depth > MAX_NESTING) throw new DecodeError('maps nested too deeply');
    const rd = new Reader(bytes);
    readHeader(rd, CRDT_TYPE.ORMap);
    const m = new ORMap<V>(replicaId, options);
    const map = m.ctx.read(rd);
    const nKeys = rd.count(4);
    const keys: string[] = new Array(nKeys);
    for (let i = 0; i < nKeys; i++) {
      const key = readKey(rd);
      if (i > 0 && !(keys[i - 1] < key)) throw new DecodeError('map keys not strictly sorted');
      keys[i] = key;
    }
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
      m.ctr[i] = c;
    }
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
    // keep the values where they are: one copy of the input is the arena
    const copy = bytes.slice();
    m.arena = copy;
    m.arenaLen = copy.length;
    let liveBytes = 0;
    for (let i = 0; i < total; i++) {
      if (m.kind[i] !== ORMAP_KIND.LWW) continue;
      const n = rd.varuint();
      if (n === 0) throw new DecodeError('empty value');
      rd.need(n);
      const end = skipMsgpack(bytes, rd.pos, rd.pos + n);
      if (end !== rd.pos + n) throw new DecodeError('value length does not match its msgpack item');
      m.voff[i] = rd.pos;
      m.vlen[i] = n;
      liveBytes += n;
      rd.pos += n;
    }
    m.garbage = m.arenaLen - liveBytes;
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
      m.nested.set(String.fromCharCode(48 + kind) + key, inst);
    }
    rd.done();
    return m;
  }
}

// ===================================================================================================
// helpers

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function bytesSame(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const emptyEncodings = new Map<number, Uint8Array>();

/** True when a nested instance holds the empty state (its encoding equals a fresh instance's). */
function isEmptyNested(inst: NestedCrdt): boolean {
  if (inst instanceof ORSet) return inst.size === 0 && inst.ctx.isEmpty();
  if (inst instanceof MVRegister) return inst.ctx.isEmpty();
  if (inst instanceof ORMap) return inst.size === 0 && inst.ctx.isEmpty() && inst.nestedIsEmpty();
  let e = emptyEncodings.get(inst.typeTag);
  if (e === undefined) emptyEncodings.set(inst.typeTag, (e = new PNCounter('x').encode()));
  return bytesSame(inst.encode(), e);
}

function checkKey(key: string): void {
  if (typeof key !== 'string') throw new ValidationError('map keys are strings');
  if (!isWellFormed(key)) throw new ValidationError('map key is not well-formed UTF-16 (lone surrogate)');
}

function isWellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c >= 0xdc00) return false;
    const d = s.charCodeAt(i + 1);
    if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
    i++;
  }
  return true;
}

/** A length-prefixed UTF-8 key, with an ASCII fast path. */
function readKey(rd: Reader): string {
  const n = rd.varuint();
  rd.need(n);
  const buf = rd.buf, p = rd.pos;
  let ascii = n <= 64;
  for (let i = 0; ascii && i < n; i++) if (buf[p + i] >= 0x80) ascii = false;
  let s: string;
  if (ascii) {
    s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(buf[p + i]);
  } else {
    try {
      s = utf8.decode(buf.subarray(p, p + n));
    } catch (e) {
      throw new DecodeError('invalid UTF-8 in map key', { cause: e });
    }
  }
  rd.pos = p + n;
  return s;
}

/**
 * Structural msgpack validation without building values (no allocation, no recursion): returns the end of
 * the single item starting at `p`, or throws DecodeError. Accepts what `decodeValue` accepts (no 0xc1; of
 * the extensions only the timestamp, type -1) and at most 64 levels of nesting.
 */
export function skipMsgpack(b: Uint8Array, p: number, end: number): number {
  let pending = 1; // items still to read at the current level
  let depth = 0;
  const stack = skipStack;
  while (true) {
    while (pending === 0) {
      if (depth === 0) return p;
      pending = stack[--depth];
    }
    pending--;
    if (p >= end) throw new DecodeError('truncated value');
    const t = b[p++];
    let skip = 0; // payload bytes
    let open = -1; // child items of a container
    if (t <= 0x7f || t >= 0xe0) skip = 0;
    else if (t <= 0x8f) open = (t & 0x0f) * 2;
    else if (t <= 0x9f) open = t & 0x0f;
    else if (t <= 0xbf) skip = t & 0x1f;
    else {
      switch (t) {
        case 0xc0: case 0xc2: case 0xc3: break;
        case 0xc4: case 0xd9: skip = readBE(b, p, 1, end); p += 1; break;
        case 0xc5: case 0xda: skip = readBE(b, p, 2, end); p += 2; break;
        case 0xc6: case 0xdb: skip = readBE(b, p, 4, end); p += 4; break;
        case 0xca: case 0xce: case 0xd2: skip = 4; break;
        case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xd6: case 0xd7: case 0xc7: {
          let n = t === 0xd6 ? 4 : 8;
          if (t === 0xc7) {
            n = readBE(b, p, 1, end);
            p += 1;
            if (n !== 12) throw new DecodeError('unsupported msgpack extension');
          }
          if (p >= end || b[p] !== 0xff) throw new DecodeError('unsupported msgpack extension');
          p += 1;
          skip = n;
          break;
        }
        case 0xdc: open = readBE(b, p, 2, end); p += 2; break;
        case 0xdd: open = readBE(b, p, 4, end); p += 4; break;
        case 0xde: open = readBE(b, p, 2, end) * 2; p += 2; break;
        case 0xdf: open = readBE(b, p, 4, end) * 2; p += 4; break;
        default: throw new DecodeError(`unsupported msgpack type 0x${t.toString(16)}`);
      }
    }
    if (open >= 0) {
      if (open > end - p) throw new DecodeError('value count exceeds input');
      if (open > 0) {
        if (depth === 64) throw new DecodeError('value nested too deeply');
        stack[depth++] = pending;
        pending = open;
      }
    } else {
      if (skip > end - p) throw new DecodeError('truncated value');
      p += skip;
    }
  }
}

const skipStack = new Float64Array(65);

function readBE(b: Uint8Array, p: number, n: number, end: number): number {
  if (p + n > end) throw new DecodeError('truncated value');
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + b[p + i];
  return v;
}
