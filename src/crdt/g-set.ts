/**
 * Grow-only set. Element identity is the element's canonical value bytes (src/codec/value.ts): the bytes are
 * produced once by the replica that added the element and carried as bytes from then on.
 *
 * - State: a Map from identity key to an immutable element record (the key plus a lazily decoded value), so
 *   merges share records between instances without copying. The identity key is the canonical bytes as a
 *   latin1 string (one char per byte), so no byte array is kept per element and string order is byte order.
 * - merge = union; the delta is the set of elements new since the last take (added locally or by a merge).
 * - `values()` lists elements in canonical order (unsigned byte order of their encodings), the same on every
 *   replica; the sorted list is cached until the next change.
 * - Canonical encoding: version, type tag, count, then each element's bytes (length-prefixed) in byte order.
 *   Decoding checks strict order (no duplicates) and that every element is valid msgpack.
 */
import { Reader, Writer } from '../codec/binary.js';
import { bytesCompare, decodeValue, identityBytes, identityKey, readsBackAsGiven, valueIdentityKey } from '../codec/value.js';
import { DecodeError, ValidationError } from '../errors.js';
import { CODEC_VERSION, CRDT_TYPE, type Crdt } from './types.js';
import { disposeInstance } from './dispose.js';

/**
 * @internal An element: its identity key (the canonical bytes, one char per byte) and, once read, its decoded
 * value. Only immutable values (strings, numbers, booleans, null) are kept as given; objects are decoded from
 * the key on first read, so neither a caller's later mutation nor a decoded input buffer can reach the set.
 */
export class Elem {
  private v: unknown;
  private decoded: boolean;
  constructor(
    readonly key: string,
    value?: unknown,
    decoded = false,
  ) {
    this.v = value;
    this.decoded = decoded;
  }
  get value(): unknown {
    if (!this.decoded) {
      this.v = decodeValue(identityBytes(this.key));
      this.decoded = true;
    }
    return this.v;
  }
}

/** An element for a local add of x (key from `valueIdentityKey(x)`): x is kept as given when every replica
 * reads it back the same (`readsBackAsGiven`); anything else is read back from the key, like objects. */
export function localElem(key: string, x: unknown): Elem {
  return readsBackAsGiven(x) ? new Elem(key, x, true) : new Elem(key);
}

/** @internal Sort elements by their bytes (the code-unit order of their latin1 keys). */
export function sortElems(elems: Iterable<Elem>): Elem[] {
  return [...elems].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** @internal Read the header (version, tag) of an encoding. */
export function readHeader(r: Reader, tag: number): void {
  const version = r.u8();
  if (version !== CODEC_VERSION) throw new DecodeError(`unsupported codec version ${version}`);
  const t = r.u8();
  if (t !== tag) throw new DecodeError(`type tag ${t}, expected ${tag}`);
}

/** @internal Read n length-prefixed elements in strictly increasing byte order, each valid msgpack. */
export function readElems(r: Reader, n: number): Elem[] {
  const out: Elem[] = [];
  let prev: Uint8Array | undefined;
  for (let i = 0; i < n; i++) {
    const b = r.bytes();
    if (prev !== undefined && bytesCompare(prev, b) >= 0) throw new DecodeError('set elements not strictly sorted');
    prev = b;
    const v = decodeValue(b); // validates; an object is decoded again from the key on first read (no view kept)
    out.push(typeof v === 'object' && v !== null ? new Elem(identityKey(b)) : new Elem(identityKey(b), v, true));
  }
  return out;
}

export function checkReplicaId(replicaId: unknown): string {
  if (typeof replicaId !== 'string') throw new ValidationError('replicaId must be a string');
  return replicaId;
}

export class GSet<T = unknown> implements Crdt<GSet<T>> {
  readonly typeTag: number = CRDT_TYPE.GSet;
  readonly replicaId: string;
  /** @internal */
  elems = new Map<string, Elem>();
  private sorted: Elem[] | null = null;
  private delta: Map<string, Elem> | null = null;

  constructor(replicaId: string) {
    this.replicaId = checkReplicaId(replicaId);
  }

  /** Add x; returns true when it was new. ValidationError for values msgpack cannot carry. */
  add(x: T): boolean {
    const key = valueIdentityKey(x); // ValidationError before any change
    if (this.elems.has(key)) return false;
    this.insert(key, localElem(key, x));
    return true;
  }

  has(x: T): boolean {
    return this.elems.has(valueIdentityKey(x));
  }

  get size(): number {
    return this.elems.size;
  }

  /** The elements in canonical (byte) order. */
  values(): T[] {
    return this.order().map((e) => e.value as T);
  }

  /** Union with `other` (a full state or a delta). Returns true when an element was new here. */
  merge(other: GSet<T>): boolean {
    let changed = false;
    for (const [key, e] of other.elems) {
      if (this.elems.has(key)) continue;
      this.insert(key, e);
      changed = true;
    }
    return changed;
  }

  takeDelta(): GSet<T> | null {
    if (this.delta === null) return null;
    const d = new GSet<T>(this.replicaId);
    d.elems = this.delta;
    this.delta = null;
    return d;
  }

  clone(): GSet<T> {
    const c = new GSet<T>(this.replicaId);
    c.elems = new Map(this.elems);
    c.sorted = this.sorted;
    if (this.delta !== null) c.delta = new Map(this.delta);
    return c;
  }

  encode(): Uint8Array {
    const order = this.order();
    const w = new Writer(8 + order.length * 8);
    w.u8(CODEC_VERSION);
    w.u8(this.typeTag);
    w.varuint(order.length);
    for (const e of order) w.latin1(e.key);
    return w.finish();
  }

  /** Decode canonical bytes (DecodeError on any malformed input); `replicaId` is the local replica for further edits (default 'decoded'). */
  static decode<T = unknown>(bytes: Uint8Array, replicaId = 'decoded'): GSet<T> {
    const r = new Reader(bytes);
    readHeader(r, CRDT_TYPE.GSet);
    const elems = readElems(r, r.count(2));
    r.done();
    const s = new GSet<T>(replicaId);
    for (const e of elems) s.elems.set(e.key, e);
    s.sorted = elems;
    return s;
  }

  private insert(key: string, e: Elem): void {
    this.elems.set(key, e);
    this.sorted = null;
    (this.delta ??= new Map()).set(key, e);
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
