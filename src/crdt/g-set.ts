/**
 * Grow-only set. Element identity is the element's canonical value bytes (src/codec/value.ts): the bytes are
 * produced once by the replica that added the element and carried as bytes from then on.
 *
 * - State: strings in a Set keyed by the string itself (`wellFormedString`: a lone surrogate is encoded as
 *   U+FFFD, so it is kept as one), which is exactly byte identity for strings and builds no key on a write
 *   (a string keeps its own hash); every other element in a Map from identity key (the canonical bytes as a
 *   latin1 string, one char per byte) to an immutable element record (the key plus a lazily decoded value),
 *   shared between instances without copying. A decoded element whose bytes are valid msgpack but not the
 *   canonical encoding of their value (decode checks only validity) is kept by its bytes too, so it
 *   round-trips as it came. No byte array per element; string order is byte order.
 * - merge = union; the delta is the list of elements new since the last take (added locally or by a merge;
 *   an element is only ever new once, so the list has no repeats).
 * - `values()` lists elements in canonical order (unsigned byte order of their encodings), the same on every
 *   replica; the order is cached until the next change. A set of short ASCII strings only (the common case)
 *   sorts them by (length, chars), the byte order of their fixstr encodings; any other set sorts identity keys.
 * - Canonical encoding: version, type tag, count, then each element's bytes (length-prefixed) in byte order.
 *   Decoding checks strict order (no duplicates) and that every element is valid msgpack, reading each element
 *   in place (a short ASCII fixstr becomes its string directly).
 */
import { Reader, Writer, asciiAt } from '../codec/binary.js';
import {
  bytesEqual,
  shortAsciiOrder,
  decodeValue,
  encodeValue,
  identityBytes,
  identityKey,
  isShortAscii,
  readsBackAsGiven,
  valueIdentityKey,
  wellFormedString,
} from '../codec/value.js';
import { DecodeError, ValidationError } from '../errors.js';
import { checkMergeType, CODEC_VERSION, CRDT_TYPE, type Crdt } from './types.js';
import { disposeInstance } from './dispose.js';
import { checkReplicaId, DECODED_REPLICA_ID } from './replicas.js';

/**
 * @internal An element kept by identity key: its key (the bytes, one char per byte) and, once read, its
 * decoded value. Only immutable values (strings, numbers, booleans, null) are kept as given; objects are
 * decoded from the key on first read, so neither a caller's later mutation nor a decoded input buffer can
 * reach the set.
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

/**
 * @internal The elements of a set in canonical (byte) order. When every element is a short ASCII string,
 * `simple` lists them (their bytes: the fixstr header, then the chars). Otherwise `simple` is null and
 * `keys[i]` is the i-th element's identity key, `items[i]` the element: a string element as the string, any
 * other as its record.
 */
export interface ElemOrder {
  simple: string[] | null;
  keys: string[];
  items: (string | Elem)[];
}

/** @internal The canonical order of string elements `strs` and other elements `objs`. */
export function orderElems(strs: Set<string>, objs: Map<string, Elem>): ElemOrder {
  if (objs.size === 0) {
    const all = [...strs];
    let simple = true;
    for (let i = 0; i < all.length && simple; i++) simple = isShortAscii(all[i]);
    if (simple) return { simple: sortShortAscii(all), keys: [], items: [] };
  }
  const pairs: [string, string | Elem][] = [];
  for (const s of strs) pairs.push([valueIdentityKey(s), s]);
  for (const [k, e] of objs) pairs.push([k, e]);
  pairs.sort((x, y) => (x[0] < y[0] ? -1 : 1)); // code-unit order of latin1 keys = byte order
  return { simple: null, keys: pairs.map((p) => p[0]), items: pairs.map((p) => p[1]) };
}

/** @internal The values in an order. */
export function orderValues(o: ElemOrder): unknown[] {
  if (o.simple !== null) return o.simple.slice();
  return o.items.map((x) => (typeof x === 'string' ? x : x.value));
}

/** @internal Write the elements of an order (length-prefixed bytes each). */
export function writeOrder(w: Writer, o: ElemOrder): void {
  if (o.simple === null) {
    for (const k of o.keys) w.latin1(k);
    return;
  }
  // short ASCII strings: length, fixstr header, the chars; through a scratch when they fit it (plain byte
  // stores and one copy, not a Writer call per byte)
  const b = SMALL;
  let p = 0;
  for (const s of o.simple) {
    const n = s.length;
    if (p + n + 2 > b.length) {
      p = -1;
      break;
    }
    b[p++] = n + 1;
    b[p++] = 0xa0 | n;
    for (let j = 0; j < n; j++) b[p++] = s.charCodeAt(j);
  }
  if (p >= 0) {
    w.rawRange(b, 0, p);
    return;
  }
  for (const s of o.simple) {
    const n = s.length;
    w.ensure(n + 2);
    w.u8(n + 1);
    w.u8(0xa0 | n);
    for (let j = 0; j < n; j++) w.u8(s.charCodeAt(j));
  }
}

/** Scratch for `writeOrder`. */
const SMALL = new Uint8Array(2048);

/** @internal Number of elements in an order. */
export function orderSize(o: ElemOrder): number {
  return o.simple !== null ? o.simple.length : o.keys.length;
}

/** @internal Short ASCII strings (`isShortAscii`, distinct) in canonical order (a new array). */
export function sortShortAscii(keys: string[]): string[] {
  const at = shortAsciiOrder(keys);
  const out: string[] = new Array(at.length);
  for (let i = 0; i < at.length; i++) out[i] = keys[at[i]];
  return out;
}

/** @internal Read the header (version, tag) of an encoding. */
export function readHeader(r: Reader, tag: number): void {
  const version = r.u8();
  if (version !== CODEC_VERSION) throw new DecodeError(`unsupported codec version ${version}`);
  const t = r.u8();
  if (t !== tag) throw new DecodeError(`type tag ${t}, expected ${tag}`);
}

/**
 * @internal Read n length-prefixed elements in strictly increasing byte order, each valid msgpack, into `strs`
 * (canonical string elements) and `objs` (the rest, by the bytes as they came). Returns their order.
 */
export function readElems(r: Reader, n: number, strs: Set<string>, objs: Map<string, Elem>): ElemOrder {
  const buf = r.buf;
  let simple: string[] | null = [];
  const keys: string[] = [];
  const items: (string | Elem)[] = [];
  let prev = -1, prevLen = 0;
  for (let i = 0; i < n; i++) {
    const p = nextElem(r, prev, prevLen);
    const len = r.pos - p;
    prev = p;
    prevLen = len;
    const h = buf[p];
    // fast path: a short ASCII string in a fixstr (canonical as it stands)
    const str = len > 0 && len === (h ^ 0xa0) + 1 && len <= 0x20 ? asciiAt(buf, p + 1, len - 1) : undefined;
    if (str !== undefined) {
      strs.add(str);
      if (simple !== null) simple.push(str);
      else {
        keys.push(valueIdentityKey(str));
        items.push(str);
      }
      continue;
    }
    if (simple !== null) {
      for (const s of simple) {
        keys.push(valueIdentityKey(s));
        items.push(s);
      }
      simple = null;
    }
    const b = buf.subarray(p, p + len);
    const v = decodeValue(b); // validates
    const key = identityKey(b);
    if (typeof v === 'string' && bytesEqual(encodeValue(v), b)) {
      strs.add(v);
      keys.push(key);
      items.push(v);
      continue;
    }
    // an object is decoded again from the key on first read (no view kept)
    const e = typeof v === 'object' && v !== null ? new Elem(key) : new Elem(key, v, true);
    objs.set(key, e);
    keys.push(key);
    items.push(e);
  }
  return { simple, keys, items };
}

/**
 * @internal The next element of a set encoding: its bytes, after their length, at r.buf[p, r.pos), p returned
 * (the reader moves past them). DecodeError unless they come strictly after the previous element's bytes, at
 * `prev` (-1 before the first) with `prevLen` bytes: elements are written in increasing byte order, once each.
 */
export function nextElem(r: Reader, prev: number, prevLen: number): number {
  const len = r.varuint();
  r.need(len);
  const p = r.pos;
  r.pos = p + len;
  if (prev >= 0 && compareRanges(r.buf, prev, prevLen, p, len) >= 0) throw new DecodeError('set elements not strictly sorted');
  return p;
}

/** Unsigned byte order of buf[p, p + n) and buf[q, q + m). */
function compareRanges(buf: Uint8Array, p: number, n: number, q: number, m: number): number {
  const l = n < m ? n : m;
  for (let i = 0; i < l; i++) {
    const x = buf[p + i], y = buf[q + i];
    if (x !== y) return x < y ? -1 : 1;
  }
  return n - m;
}

/**
 * The add side that GSet and TwoPSet share: the elements (strings by themselves, other values by identity key),
 * their cached canonical order, and the elements added since the last take. Subclasses keep their own state on
 * top (TwoPSet: the removed elements) and call the `*Adds` helpers from merge, takeDelta and clone.
 */
export abstract class AddSet<T> {
  readonly replicaId: string;
  /**
   * Called after each local mutation (set by the sync engine when the instance is registered, so a direct
   * write is pushed like one made through `update`). Leave unset.
   */
  onLocalChange: (() => void) | undefined;
  /** @internal string elements (well-formed strings) */
  strs = new Set<string>();
  /** @internal every other element, by identity key */
  objs = new Map<string, Elem>();
  /** @internal the canonical order, until the next change */
  sorted: ElemOrder | null = null;
  /** Elements new since the last take. */
  protected deltaStrs: string[] = [];
  protected deltaObjs: Elem[] = [];

  constructor(replicaId: string) {
    this.replicaId = checkReplicaId(replicaId);
  }

  /** Add x to the elements; true when it was new. ValidationError for values msgpack cannot carry. */
  add(x: T): boolean {
    if (typeof x === 'string') {
      const s = wellFormedString(x);
      if (this.strs.has(s)) return false;
      this.strs.add(s);
      this.deltaStrs.push(s);
      this.sorted = null;
      this.onLocalChange?.();
      return true;
    }
    const key = valueIdentityKey(x); // ValidationError before any change
    if (this.objs.has(key)) return false;
    this.insertObj(key, localElem(key, x));
    this.onLocalChange?.();
    return true;
  }

  /** Union of the other's elements into these; true when one was new. */
  protected mergeAdds(other: AddSet<T>): boolean {
    let changed = false;
    for (const s of other.strs) {
      if (this.strs.has(s)) continue;
      this.strs.add(s);
      this.deltaStrs.push(s);
      changed = true;
    }
    for (const [key, e] of other.objs) {
      if (this.objs.has(key)) continue;
      this.insertObj(key, e);
      changed = true;
    }
    if (changed) this.sorted = null;
    return changed;
  }

  /** True when elements were added since the last take. */
  protected hasDeltaAdds(): boolean {
    return this.deltaStrs.length > 0 || this.deltaObjs.length > 0;
  }

  /** Move the elements added since the last take into the (empty) delta `d`. */
  protected takeAdds(d: AddSet<T>): void {
    d.strs = new Set(this.deltaStrs);
    for (const e of this.deltaObjs) d.objs.set(e.key, e);
    this.deltaStrs = [];
    this.deltaObjs = [];
  }

  /** Copy the elements, their order and the pending adds into the (empty) copy `c`. */
  protected cloneAdds(c: AddSet<T>): void {
    c.strs = new Set(this.strs);
    c.objs = new Map(this.objs);
    c.sorted = this.sorted;
    c.deltaStrs = this.deltaStrs.slice();
    c.deltaObjs = this.deltaObjs.slice();
  }

  protected insertObj(key: string, e: Elem): void {
    this.objs.set(key, e);
    this.sorted = null;
    this.deltaObjs.push(e);
  }

  protected order(): ElemOrder {
    return (this.sorted ??= orderElems(this.strs, this.objs));
  }
}

export class GSet<T = unknown> extends AddSet<T> implements Crdt<GSet<T>> {
  readonly typeTag: number = CRDT_TYPE.GSet;

  has(x: T): boolean {
    return typeof x === 'string' ? this.strs.has(wellFormedString(x)) : this.objs.has(valueIdentityKey(x));
  }

  get size(): number {
    return this.strs.size + this.objs.size;
  }

  /** The elements in canonical (byte) order. */
  values(): T[] {
    return orderValues(this.order()) as T[];
  }

  /** Union with `other` (a full state or a delta). Returns true when an element was new here. */
  merge(other: GSet<T>): boolean {
    checkMergeType(this, other);
    return this.mergeAdds(other);
  }

  takeDelta(): GSet<T> | null {
    if (!this.hasDeltaAdds()) return null;
    const d = new GSet<T>(this.replicaId);
    this.takeAdds(d);
    return d;
  }

  clone(): GSet<T> {
    const c = new GSet<T>(this.replicaId);
    this.cloneAdds(c);
    return c;
  }

  encode(): Uint8Array {
    const order = this.order();
    const w = new Writer(8 + this.size * 8);
    w.u8(CODEC_VERSION);
    w.u8(this.typeTag);
    w.varuint(orderSize(order));
    writeOrder(w, order);
    return w.finish();
  }

  /** Decode canonical bytes (DecodeError on any malformed input); `replicaId` is the local replica for further edits (default 'decoded', see `DECODED_REPLICA_ID`). */
  static decode<T = unknown>(bytes: Uint8Array, replicaId = DECODED_REPLICA_ID): GSet<T> {
    const r = new Reader(bytes);
    readHeader(r, CRDT_TYPE.GSet);
    const s = new GSet<T>(replicaId);
    const order = readElems(r, r.count(2), s.strs, s.objs);
    r.done();
    s.sorted = order;
    return s;
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
