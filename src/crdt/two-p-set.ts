/**
 * Two-phase set: an add set and a remove set (tombstones); an element is present when added and never
 * removed. A removed element never returns: a later `add` of it is a no-op, and a merge keeps the tombstone.
 *
 * Design choices:
 * - `remove(x)` of an element that is not present here (never added, or already removed) is a no-op that
 *   returns false: a replica can only remove what it has observed (the textbook precondition), so a remove
 *   never pre-emptively blocks a future add. A remove concurrent with the add, issued by a replica that has
 *   seen the add, wins forever everywhere.
 * - Element identity is the canonical value bytes; the remove set is a set of identity keys, always a subset
 *   of the add set, so element records stay immutable and are shared between instances.
 * - merge = union of both sets; the delta holds the elements added or removed since the last take.
 * - Canonical encoding: version, type tag, count, elements (length-prefixed) in byte order, then one flag
 *   byte per element (0 present, 1 removed).
 */
import { Reader, Writer } from '../codec/binary.js';
import { valueIdentityKey } from '../codec/value.js';
import { DecodeError } from '../errors.js';
import { Elem, checkReplicaId, localElem, readElems, readHeader, sortElems } from './g-set.js';
import { CODEC_VERSION, CRDT_TYPE, type Crdt } from './types.js';
import { disposeInstance } from './dispose.js';

export class TwoPSet<T = unknown> implements Crdt<TwoPSet<T>> {
  readonly typeTag: number = CRDT_TYPE.TwoPSet;
  readonly replicaId: string;
  /** @internal every element ever added */
  elems = new Map<string, Elem>();
  /** @internal identity keys of removed elements (subset of elems) */
  removed = new Set<string>();
  private sorted: Elem[] | null = null;
  private deltaAdd: Map<string, Elem> | null = null;
  private deltaRemove: Set<string> | null = null;

  constructor(replicaId: string) {
    this.replicaId = checkReplicaId(replicaId);
  }

  /** Add x; true when x became present (false when already present or removed before). */
  add(x: T): boolean {
    const key = valueIdentityKey(x); // ValidationError before any change
    if (this.elems.has(key)) return false;
    this.insert(key, localElem(key, x));
    return true;
  }

  /** Remove x for good; true when x was present. A no-op returning false when x is not present. */
  remove(x: T): boolean {
    const key = valueIdentityKey(x);
    if (!this.elems.has(key) || this.removed.has(key)) return false;
    this.tombstone(key);
    return true;
  }

  has(x: T): boolean {
    const key = valueIdentityKey(x);
    return this.elems.has(key) && !this.removed.has(key);
  }

  /** True when x was removed (it can never be present again). */
  isRemoved(x: T): boolean {
    return this.removed.has(valueIdentityKey(x));
  }

  get size(): number {
    return this.elems.size - this.removed.size;
  }

  /** Present elements in canonical (byte) order. */
  values(): T[] {
    const out: T[] = [];
    for (const e of this.order()) if (!this.removed.has(e.key)) out.push(e.value as T);
    return out;
  }

  /**
   * Union of both sets. Returns true when an element or a tombstone was new here (either changes the
   * encoding: a new element adds an entry, a new tombstone flips a flag).
   */
  merge(other: TwoPSet<T>): boolean {
    let changed = false;
    for (const [key, e] of other.elems) {
      if (this.elems.has(key)) continue;
      this.insert(key, e);
      changed = true;
    }
    for (const key of other.removed) {
      if (this.removed.has(key)) continue;
      this.tombstone(key);
      changed = true;
    }
    return changed;
  }

  takeDelta(): TwoPSet<T> | null {
    if (this.deltaAdd === null && this.deltaRemove === null) return null;
    const d = new TwoPSet<T>(this.replicaId);
    if (this.deltaAdd !== null) d.elems = this.deltaAdd;
    if (this.deltaRemove !== null) {
      for (const key of this.deltaRemove) {
        if (!d.elems.has(key)) d.elems.set(key, this.elems.get(key)!);
        d.removed.add(key);
      }
    }
    this.deltaAdd = null;
    this.deltaRemove = null;
    return d;
  }

  clone(): TwoPSet<T> {
    const c = new TwoPSet<T>(this.replicaId);
    c.elems = new Map(this.elems);
    c.removed = new Set(this.removed);
    c.sorted = this.sorted;
    if (this.deltaAdd !== null) c.deltaAdd = new Map(this.deltaAdd);
    if (this.deltaRemove !== null) c.deltaRemove = new Set(this.deltaRemove);
    return c;
  }

  encode(): Uint8Array {
    const order = this.order();
    const w = new Writer(8 + order.length * 9);
    w.u8(CODEC_VERSION);
    w.u8(this.typeTag);
    w.varuint(order.length);
    for (const e of order) w.latin1(e.key);
    for (const e of order) w.u8(this.removed.has(e.key) ? 1 : 0);
    return w.finish();
  }

  /** Decode canonical bytes (DecodeError on any malformed input); `replicaId` is the local replica for further edits (default 'decoded'). */
  static decode<T = unknown>(bytes: Uint8Array, replicaId = 'decoded'): TwoPSet<T> {
    const r = new Reader(bytes);
    readHeader(r, CRDT_TYPE.TwoPSet);
    // each element: at least a length byte, one value byte and one flag byte
    const elems = readElems(r, r.count(3));
    const s = new TwoPSet<T>(replicaId);
    for (const e of elems) {
      const key = e.key;
      s.elems.set(key, e);
      const flag = r.u8();
      if (flag > 1) throw new DecodeError(`bad removed flag ${flag}`);
      if (flag === 1) s.removed.add(key);
    }
    r.done();
    s.sorted = elems;
    return s;
  }

  private insert(key: string, e: Elem): void {
    this.elems.set(key, e);
    this.sorted = null;
    (this.deltaAdd ??= new Map()).set(key, e);
  }

  private tombstone(key: string): void {
    this.removed.add(key);
    (this.deltaRemove ??= new Set()).add(key);
  }

  private order(): Elem[] {
    return (this.sorted ??= sortElems(this.elems.values()));
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
