/**
 * Shared machinery of GCounter and PNCounter: per-replica counter slots in one interleaved `Float64Array`
 * (`width` columns per replica: 1 for GCounter, 2 (P, N) for PNCounter), replica ids interned per instance,
 * this replica always at index 0 so local increments touch `slots[0]` / `slots[1]` directly.
 *
 * - merge: the other's replica table is mapped into this one, its slots aligned into a scratch array, and
 *   the kernel's `counterMerge` computes the slot-wise max into a second scratch array; the result is
 *   committed only when every column total stays <= MAX_SAFE_INTEGER (else RangeError, nothing changes).
 *   Invariant: every column total is an exact integer <= MAX_SAFE_INTEGER, so `value()` is always exact.
 * - deltas: a dirty flag per replica (slots changed by a local increment or a merge since the last take);
 *   the delta is a counter holding just those replicas' current slots.
 * - canonical encoding: version, type tag, count, replica ids sorted by string, then each column as varuints;
 *   replicas whose slots are all zero are omitted.
 */
import { Reader, Writer, outputCopy } from '../codec/binary.js';
import { DecodeError } from '../errors.js';
import { getKernel } from '../kernel/index.js';
import { ReplicaTable, checkReplicaId, growF64, scratchF64, scratchF64b, scratchU32 } from './replicas.js';
import { checkMergeType, CODEC_VERSION } from './types.js';
import { disposeInstance } from './dispose.js';

export const MAX = Number.MAX_SAFE_INTEGER;

export abstract class SlotCounter {
  readonly replicaId: string;
  /** @internal */
  table: ReplicaTable;
  /** @internal interleaved slots, `width` per replica index. */
  slots: Float64Array;
  /** @internal column totals (exact, <= MAX): P (or the only column) and N. */
  total0 = 0;
  total1 = 0;
  /** @internal this replica's slots changed since the last takeDelta. */
  dirtyOwn = false;
  /** @internal other replicas' slots changed by merges since the last takeDelta (by index; null = none). */
  dirty: Uint8Array | null = null;
  /** @internal cached canonical encoding (null after any change). */
  enc: Uint8Array | null = null;
  /**
   * Called after each local mutation (set by the sync engine when the instance is registered, so a direct
   * write is pushed like one made through \`update\`; an OR-Map sets it on its nested values). Leave unset.
   */
  onLocalChange: (() => void) | undefined;
  /** @internal called before every local mutation, which it may refuse by throwing (a parent ORMap checks it can record the write). */
  beforeLocalChange: ((before: true) => void) | undefined;

  protected constructor(replicaId: string, readonly width: 1 | 2) {
    this.replicaId = checkReplicaId(replicaId);
    this.table = new ReplicaTable();
    this.table.intern(replicaId);
    this.slots = new Float64Array(4 * width);
  }

  abstract readonly typeTag: number;
  protected abstract empty(replicaId: string): this;

  /** Add n (integer >= 0) to column `col` of this replica; RangeError past MAX_SAFE_INTEGER, nothing changes. */
  protected add(col: 0 | 1, n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`increment must be a non-negative integer, got ${n}`);
    const t = (col === 0 ? this.total0 : this.total1) + n;
    if (t > MAX) throw new RangeError('counter would exceed Number.MAX_SAFE_INTEGER');
    if (n === 0) return;
    this.beforeLocalChange?.(true);
    this.slots[col] += n;
    if (col === 0) this.total0 = t;
    else this.total1 = t;
    this.dirtyOwn = true;
    this.enc = null;
    this.onLocalChange?.();
  }

  /** @internal grow the slot array to hold `size` replicas. */
  ensure(size: number): void {
    const w = this.width;
    if (this.slots.length < size * w) this.slots = growF64(this.slots, size * w);
  }

  private markDirty(r: number): void {
    if (r === 0) {
      this.dirtyOwn = true;
      return;
    }
    let d = this.dirty;
    if (d === null || d.length <= r) {
      const next = new Uint8Array(Math.max(8, r + 1, d === null ? 0 : d.length * 2));
      if (d !== null) next.set(d);
      this.dirty = d = next;
    }
    d[r] = 1;
  }

  /**
   * @internal Throw merge's RangeError when merging `other` would take a column total past MAX_SAFE_INTEGER;
   * changes nothing observable (the other's replicas may be interned, with zero slots, which encode omits). A
   * parent ORMap checks its nested counters with it before its merge changes anything.
   */
  checkMerge(other: this): void {
    // a slot-wise max is at most the sum of both: past MAX only when the sums of the totals are
    if (this.total0 + other.total0 <= MAX && this.total1 + other.total1 <= MAX) return;
    const w = this.width;
    const ot = other.table;
    const on = ot.size;
    const map = this.table.mapFrom(ot, scratchU32(on));
    const a = this.slots, os = other.slots;
    let t0 = this.total0;
    let t1 = this.total1;
    for (let j = 0; j < on; j++) {
      const i = map[j] * w;
      for (let c = 0; c < w; c++) {
        const d = os[j * w + c] - (i + c < a.length ? a[i + c] : 0);
        if (d > 0) {
          if (c === 0) t0 += d;
          else t1 += d;
        }
      }
    }
    if (t0 > MAX || t1 > MAX) throw new RangeError('merged counter would exceed Number.MAX_SAFE_INTEGER');
  }

  /** Slot-wise max with `other` (a full state or a delta). RangeError (nothing changes) past MAX_SAFE_INTEGER. */
  merge(other: this): boolean {
    checkMergeType(this, other);
    const w = this.width;
    const ot = other.table;
    const on = ot.size;
    const map = this.table.mapFrom(ot, scratchU32(on));
    const size = this.table.size;
    this.ensure(size);
    const len = size * w;
    const b = scratchF64(len);
    const os = other.slots;
    for (let j = 0; j < on; j++) {
      const i = map[j] * w;
      for (let c = 0; c < w; c++) b[i + c] = os[j * w + c];
    }
    const out = scratchF64b(len);
    const a = this.slots.subarray(0, len);
    const changed = getKernel().counterMerge(a, b.subarray(0, len), out.subarray(0, len));
    if (changed === 0) return false;
    let t0 = 0;
    let t1 = 0;
    if (w === 1) for (let i = 0; i < len; i++) t0 += out[i];
    else {
      for (let i = 0; i < len; i += 2) {
        t0 += out[i];
        t1 += out[i + 1];
      }
    }
    if (t0 > MAX || t1 > MAX) throw new RangeError('merged counter would exceed Number.MAX_SAFE_INTEGER');
    for (let r = 0; r < size; r++) {
      let diff = false;
      for (let c = 0; c < w; c++) {
        const k = r * w + c;
        if (out[k] !== a[k]) {
          a[k] = out[k];
          diff = true;
        }
      }
      if (diff) this.markDirty(r);
    }
    this.total0 = t0;
    this.total1 = t1;
    this.enc = null;
    return true;
  }

  /** The delta since the last take: the replicas whose slots changed, with their current slots. */
  takeDelta(): this | null {
    const d0 = this.dirty;
    if (!this.dirtyOwn && d0 === null) return null;
    const d = this.empty(this.replicaId);
    const w = this.width;
    if (this.dirtyOwn) d.put(this.replicaId, this.slots, 0);
    if (d0 !== null) {
      const n = Math.min(d0.length, this.table.size);
      for (let r = 1; r < n; r++) if (d0[r] !== 0) d.put(this.table.ids[r], this.slots, r * w);
    }
    this.dirtyOwn = false;
    this.dirty = null;
    return d;
  }

  /** @internal set replica `id`'s slots to vals[at .. at + width) (building deltas and decoding). */
  put(id: string, vals: ArrayLike<number>, at: number): void {
    const r = this.table.intern(id);
    this.ensure(r + 1);
    const w = this.width;
    const k = r * w;
    this.total0 += vals[at] - this.slots[k];
    this.slots[k] = vals[at];
    if (w === 2) {
      this.total1 += vals[at + 1] - this.slots[k + 1];
      this.slots[k + 1] = vals[at + 1];
    }
    this.enc = null;
  }

  clone(): this {
    const c = this.empty(this.replicaId);
    c.table = this.table.clone();
    c.slots = this.slots.slice();
    c.total0 = this.total0;
    c.total1 = this.total1;
    c.dirtyOwn = this.dirtyOwn;
    c.dirty = this.dirty === null ? null : this.dirty.slice();
    c.enc = this.enc;
    return c;
  }

  /** Canonical bytes (see the module comment). Cached until the next change; each call returns a fresh copy. */
  encode(): Uint8Array {
    if (this.enc !== null) return outputCopy(this.enc);
    const w = this.width;
    const slots = this.slots;
    const ids = this.table.ids;
    const sorted = this.table.sortedIndices();
    const order: number[] = [];
    for (const r of sorted) {
      for (let c = 0; c < w; c++) {
        if (slots[r * w + c] !== 0) {
          order.push(r);
          break;
        }
      }
    }
    const out = new Writer(8 + order.length * (12 + 8 * w));
    out.u8(CODEC_VERSION);
    out.u8(this.typeTag);
    out.varuint(order.length);
    for (const r of order) out.string(ids[r]);
    for (let c = 0; c < w; c++) for (const r of order) out.varuint(slots[r * w + c]);
    const bytes = out.finish();
    // the cache keeps an array of its own: a kept view would pin its output slab (and every output on it)
    this.enc = bytes.slice();
    return bytes;
  }

  /** @internal decode into `target` (an empty counter of the right type). */
  static decodeInto<T extends SlotCounter>(target: T, bytes: Uint8Array): T {
    const r = new Reader(bytes);
    const version = r.u8();
    if (version !== CODEC_VERSION) throw new DecodeError(`unsupported codec version ${version}`);
    const tag = r.u8();
    if (tag !== target.typeTag) throw new DecodeError(`type tag ${tag}, expected ${target.typeTag}`);
    const w = target.width;
    // each replica takes at least 1 byte of id and w bytes of counters
    const n = r.count(1 + w);
    // intern straight into the (fresh, private) target; any error discards it, so nothing leaks
    const table = target.table;
    const idx: number[] = [];
    let prev: string | undefined;
    for (let i = 0; i < n; i++) {
      const id = r.string();
      if (prev !== undefined && !(prev < id)) throw new DecodeError('replica ids not strictly sorted');
      prev = id;
      idx.push(table.intern(id));
    }
    target.ensure(table.size);
    const slots = target.slots;
    let t0 = 0;
    let t1 = 0;
    for (let c = 0; c < w; c++) {
      for (let i = 0; i < n; i++) {
        const v = r.varuint();
        slots[idx[i] * w + c] = v;
        if (c === 0) t0 += v;
        else t1 += v;
      }
    }
    if (t0 > MAX || t1 > MAX) throw new DecodeError('counter total exceeds MAX_SAFE_INTEGER');
    r.done();
    for (let i = 0; i < n; i++) {
      const k = idx[i] * w;
      if (slots[k] === 0 && (w === 1 || slots[k + 1] === 0)) throw new DecodeError('replica with all-zero slots (non-canonical)');
    }
    target.total0 = t0;
    target.total1 = t1;
    return target;
  }

  /**
   * Release this instance's state now and retire it: any later use throws `CrdtError` (code `E_DISPOSED`).
   * Idempotent. Dropping an instance without it is fine too (the garbage collector frees it; see dispose.ts).
   */
  dispose(): void {
    disposeInstance(this);
  }

  /** True once `dispose()` ran (a disposed instance answers only this, `dispose`, `replicaId`, `typeTag`). */
  get disposed(): boolean {
    return false;
  }
}
