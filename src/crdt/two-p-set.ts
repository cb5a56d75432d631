/**
 * Two-phase set: an add set and a remove set (tombstones); an element is present when added and never
 * removed. A removed element never returns: a later `add` of it is a no-op, and a merge keeps the tombstone.
 *
 * Design choices:
 * - `remove(x)` of an element that is not present here (never added, or already removed) is a no-op that
 *   returns false: a replica can only remove what it has observed (the textbook precondition), so a remove
 *   never pre-emptively blocks a future add. A remove concurrent with the add, issued by a replica that has
 *   seen the add, wins forever everywhere.
 * - Element identity is the canonical value bytes, kept as GSet keeps it (strings by the string, other values
 *   by identity key); the remove sets (strings, identity keys) are always subsets of the add sets, so element
 *   records stay immutable and are shared between instances.
 * - merge = union of both sets; the delta holds the elements added or removed since the last take.
 * - Canonical encoding: version, type tag, count, elements (length-prefixed) in byte order, then one flag
 *   byte per element (0 present, 1 removed).
 */
import { Reader, Writer } from '../codec/binary.js';
import { valueIdentityKey, wellFormedString } from '../codec/value.js';
import { DecodeError } from '../errors.js';
import { AddSet, type ElemOrder, orderSize, orderValues, readElems, readHeader, writeOrder } from './g-set.js';
import { checkMergeType, CODEC_VERSION, CRDT_TYPE, type Crdt } from './types.js';
import { disposeInstance } from './dispose.js';
import { DECODED_REPLICA_ID } from './replicas.js';

export class TwoPSet<T = unknown> extends AddSet<T> implements Crdt<TwoPSet<T>> {
  readonly typeTag: number = CRDT_TYPE.TwoPSet;
  // strs / objs (AddSet): every element ever added; `add` of a removed element finds it there and returns false
  /** @internal removed string elements (a subset of strs) */
  removedStrs = new Set<string>();
  /** @internal identity keys of removed other elements (a subset of objs' keys) */
  removedObjs = new Set<string>();
  /** Elements removed since the last take. */
  private deltaRemovedStrs: string[] = [];
  private deltaRemovedObjs: string[] = [];

  /** Remove x for good; true when x was present. A no-op returning false when x is not present. */
  remove(x: T): boolean {
    if (typeof x === 'string') {
      const s = wellFormedString(x);
      if (!this.strs.has(s) || this.removedStrs.has(s)) return false;
      this.removedStrs.add(s);
      this.deltaRemovedStrs.push(s);
      this.onLocalChange?.();
      return true;
    }
    const key = valueIdentityKey(x);
    if (!this.objs.has(key) || this.removedObjs.has(key)) return false;
    this.removedObjs.add(key);
    this.deltaRemovedObjs.push(key);
    this.onLocalChange?.();
    return true;
  }

  has(x: T): boolean {
    if (typeof x === 'string') {
      const s = wellFormedString(x);
      return this.strs.has(s) && !this.removedStrs.has(s);
    }
    const key = valueIdentityKey(x);
    return this.objs.has(key) && !this.removedObjs.has(key);
  }

  /** True when x was removed (it can never be present again). */
  isRemoved(x: T): boolean {
    return typeof x === 'string' ? this.removedStrs.has(wellFormedString(x)) : this.removedObjs.has(valueIdentityKey(x));
  }

  get size(): number {
    return this.strs.size + this.objs.size - this.removedStrs.size - this.removedObjs.size;
  }

  /** Present elements in canonical (byte) order. */
  values(): T[] {
    const order = this.order();
    const all = orderValues(order);
    const out: T[] = [];
    for (let i = 0; i < all.length; i++) if (!this.isRemovedAt(order, i)) out.push(all[i] as T);
    return out;
  }

  /**
   * Union of both sets. Returns true when an element or a tombstone was new here (either changes the
   * encoding: a new element adds an entry, a new tombstone flips a flag).
   */
  merge(other: TwoPSet<T>): boolean {
    checkMergeType(this, other);
    let changed = this.mergeAdds(other);
    for (const s of other.removedStrs) {
      if (this.removedStrs.has(s)) continue;
      this.removedStrs.add(s);
      this.deltaRemovedStrs.push(s);
      changed = true;
    }
    for (const key of other.removedObjs) {
      if (this.removedObjs.has(key)) continue;
      this.removedObjs.add(key);
      this.deltaRemovedObjs.push(key);
      changed = true;
    }
    return changed;
  }

  takeDelta(): TwoPSet<T> | null {
    if (!this.hasDeltaAdds() && this.deltaRemovedStrs.length + this.deltaRemovedObjs.length === 0) return null;
    const d = new TwoPSet<T>(this.replicaId);
    this.takeAdds(d);
    for (const s of this.deltaRemovedStrs) {
      d.strs.add(s);
      d.removedStrs.add(s);
    }
    for (const key of this.deltaRemovedObjs) {
      if (!d.objs.has(key)) d.objs.set(key, this.objs.get(key)!);
      d.removedObjs.add(key);
    }
    this.deltaRemovedStrs = [];
    this.deltaRemovedObjs = [];
    return d;
  }

  clone(): TwoPSet<T> {
    const c = new TwoPSet<T>(this.replicaId);
    this.cloneAdds(c);
    c.removedStrs = new Set(this.removedStrs);
    c.removedObjs = new Set(this.removedObjs);
    c.deltaRemovedStrs = this.deltaRemovedStrs.slice();
    c.deltaRemovedObjs = this.deltaRemovedObjs.slice();
    return c;
  }

  encode(): Uint8Array {
    const order = this.order();
    const n = orderSize(order);
    const w = new Writer(8 + n * 9);
    w.u8(CODEC_VERSION);
    w.u8(this.typeTag);
    w.varuint(n);
    writeOrder(w, order);
    for (let i = 0; i < n; i++) w.u8(this.isRemovedAt(order, i) ? 1 : 0);
    return w.finish();
  }

  /** Decode canonical bytes (DecodeError on any malformed input); `replicaId` is the local replica for further edits (default 'decoded', see `DECODED_REPLICA_ID`). */
  static decode<T = unknown>(bytes: Uint8Array, replicaId = DECODED_REPLICA_ID): TwoPSet<T> {
    const r = new Reader(bytes);
    readHeader(r, CRDT_TYPE.TwoPSet);
    const s = new TwoPSet<T>(replicaId);
    // each element: at least a length byte, one value byte and one flag byte
    const order = readElems(r, r.count(3), s.strs, s.objs);
    const n = orderSize(order);
    for (let i = 0; i < n; i++) {
      const flag = r.u8();
      if (flag > 1) throw new DecodeError(`bad removed flag ${flag}`);
      if (flag === 0) continue;
      if (order.simple !== null) s.removedStrs.add(order.simple[i]);
      else {
        const x = order.items[i];
        if (typeof x === 'string') s.removedStrs.add(x);
        else s.removedObjs.add(x.key);
      }
    }
    r.done();
    s.sorted = order;
    return s;
  }

  /** True when the i-th element of the order is removed. */
  private isRemovedAt(order: ElemOrder, i: number): boolean {
    if (order.simple !== null) return this.removedStrs.has(order.simple[i]);
    const x = order.items[i];
    return typeof x === 'string' ? this.removedStrs.has(x) : this.removedObjs.has(x.key);
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
