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
import { Reader, Writer } from '../codec/binary.js';
import { DecodeError, ValidationError } from '../errors.js';
import { getKernel } from '../kernel/index.js';
import { ReplicaTable, growF64, scratchF64, scratchF64b, scratchU32 } from './replicas.js';
import { CODEC_VERSION } from './types.js';

export const MAX = Number.MAX_SAFE_INTEGER;

export abstract class SlotCounter {
  readonly replicaId: string;
  /** @internal */
  table: ReplicaTable;
  /** @internal interleaved slots, `width` per replica index. */
  slots: Float64Array;
  /** @internal column totals (exact, <= MAX). */
  totals: Float64Array;
  /** @internal dirty flag per replica index since the last takeDelta. */
  dirty: Uint8Array;
  /** @internal any dirty flag set. */
  anyDirty = false;

  protected constructor(replicaId: string, readonly width: 1 | 2) {
    if (typeof replicaId !== 'string') throw new ValidationError('replicaId must be a string');
    this.replicaId = replicaId;
    this.table = new ReplicaTable();
    this.table.intern(replicaId);
    this.slots = new Float64Array(4 * width);
    this.totals = new Float64Array(width);
    this.dirty = new Uint8Array(4);
  }

  abstract readonly typeTag: number;
  protected abstract empty(replicaId: string): this;

  /** Add n (integer >= 0) to column `col` of this replica; RangeError past MAX_SAFE_INTEGER, nothing changes. */
  protected add(col: number, n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`increment must be a non-negative integer, got ${n}`);
    const t = this.totals[col] + n;
    if (t > MAX) throw new RangeError('counter would exceed Number.MAX_SAFE_INTEGER');
    if (n === 0) return;
    this.slots[col] += n;
    this.totals[col] = t;
    this.dirty[0] = 1;
    this.anyDirty = true;
  }

  private ensure(size: number): void {
    const w = this.width;
    if (this.slots.length < size * w) this.slots = growF64(this.slots, size * w);
    if (this.dirty.length < size) {
      const d = new Uint8Array(Math.max(size, this.dirty.length * 2));
      d.set(this.dirty);
      this.dirty = d;
    }
  }

  /** Slot-wise max with `other` (a full state or a delta). RangeError (nothing changes) past MAX_SAFE_INTEGER. */
  merge(other: this): void {
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
    if (changed === 0) return;
    const totals = new Float64Array(w);
    for (let i = 0; i < len; i += w) for (let c = 0; c < w; c++) totals[c] += out[i + c];
    for (let c = 0; c < w; c++) {
      if (totals[c] > MAX) throw new RangeError('merged counter would exceed Number.MAX_SAFE_INTEGER');
    }
    for (let r = 0; r < size; r++) {
      let diff = false;
      for (let c = 0; c < w; c++) {
        const k = r * w + c;
        if (out[k] !== a[k]) {
          a[k] = out[k];
          diff = true;
        }
      }
      if (diff) {
        this.dirty[r] = 1;
        this.anyDirty = true;
      }
    }
    this.totals.set(totals);
  }

  /** The delta since the last take: the replicas whose slots changed, with their current slots. */
  takeDelta(): this | null {
    if (!this.anyDirty) return null;
    const d = this.empty(this.replicaId);
    const w = this.width;
    for (let r = 0; r < this.table.size; r++) {
      if (this.dirty[r] === 0) continue;
      this.dirty[r] = 0;
      d.put(this.table.ids[r], this.slots.subarray(r * w, r * w + w));
    }
    this.anyDirty = false;
    return d;
  }

  /** @internal set replica `id`'s slots (used when building deltas and decoding; totals updated). */
  put(id: string, vals: ArrayLike<number>): void {
    const r = this.table.intern(id);
    this.ensure(r + 1);
    const w = this.width;
    for (let c = 0; c < w; c++) {
      this.totals[c] += vals[c] - this.slots[r * w + c];
      this.slots[r * w + c] = vals[c];
    }
  }

  clone(): this {
    const c = this.empty(this.replicaId);
    c.table = this.table.clone();
    c.slots = this.slots.slice();
    c.totals = this.totals.slice();
    c.dirty = this.dirty.slice();
    c.anyDirty = this.anyDirty;
    return c;
  }

  /** Canonical bytes (see the module comment). */
  encode(): Uint8Array {
    const w = this.width;
    const order = this.table.sortedIndices().filter((r) => {
      for (let c = 0; c < w; c++) if (this.slots[r * w + c] !== 0) return true;
      return false;
    });
    const out = new Writer(8 + order.length * (12 + 8 * w));
    out.u8(CODEC_VERSION);
    out.u8(this.typeTag);
    out.varuint(order.length);
    for (const r of order) out.string(this.table.ids[r]);
    for (let c = 0; c < w; c++) for (const r of order) out.varuint(this.slots[r * w + c]);
    return out.finish();
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
    const ids: string[] = [];
    let prev: string | undefined;
    for (let i = 0; i < n; i++) {
      const id = r.string();
      if (prev !== undefined && !(prev < id)) throw new DecodeError('replica ids not strictly sorted');
      prev = id;
      ids.push(id);
    }
    const vals = new Float64Array(n * w);
    const totals = new Float64Array(w);
    for (let c = 0; c < w; c++) {
      for (let i = 0; i < n; i++) {
        const v = r.varuint();
        vals[i * w + c] = v;
        totals[c] += v;
      }
      if (totals[c] > MAX) throw new DecodeError('counter total exceeds MAX_SAFE_INTEGER');
    }
    r.done();
    for (let i = 0; i < n; i++) {
      let nonzero = false;
      for (let c = 0; c < w; c++) if (vals[i * w + c] !== 0) nonzero = true;
      if (!nonzero) throw new DecodeError('replica with all-zero slots (non-canonical)');
      target.put(ids[i], vals.subarray(i * w, i * w + w));
    }
    return target;
  }
}
