/**
 * The canonical msgpack writer and reader behind `encodeValue` and `decodeValue` (src/codec/value.ts): one pass
 * over the value, straight into a reusable output slab, no canonical copy and no per-call setup.
 *
 * Writing. The bytes are, by construction and by a differential test (test/codec/msgpack.test.ts), exactly the
 * bytes of the reference path (sorted copy, then msgpackr with the options in value.ts), which fixed the wire
 * form of every stored value and set element. That path's choices, reproduced here:
 * - numbers: a non-negative integer below 2^32 as positive fixint (< 128), uint8, uint16 or uint32; a negative
 *   integer from -2^31 as negative fixint (>= -32), int8, int16 or int32; everything else (larger integers,
 *   fractions, NaN, ±Infinity) as float64. -0 is written as the integer 0.
 * - strings: UTF-8 with each lone surrogate as U+FFFD, header fixstr/str8/str16/str32 by byte length.
 * - plain objects (prototype Object.prototype or null): keys that are array indices ("0" .. "4294967294" in
 *   canonical form) first in numeric order, then the other keys in code-unit order (the key order a JS object
 *   built by inserting the sorted keys has); keys whose value is undefined are left out; map header by count.
 *   Each property is read once, in that order. The sorted order and the encoded keys of the last key set seen
 *   at each depth are kept, so records of one shape skip the sort and the key encoding (the keys are then
 *   written as 32-bit words).
 * - arrays: an undefined element and a hole are nil. (Before, a hole was msgpackr's "undefined" extension
 *   (fixext 1, type 0, data 0), which the ORMap value reader and the canonical check of ORSet refuse.)
 * - Uint8Array (and subclasses such as Buffer): bin8/bin16/bin32.
 * - Date: timestamp extension -1: 32-bit seconds when the milliseconds are 0 and 0 <= s < 2^32, 64-bit form
 *   when 0 < s < 2^34, else the 96-bit form. An invalid date (NaN time) is refused (ValidationError): msgpackr's
 *   form for it (fixext 1, 0xff, 0xff) is refused by the ORMap value reader.
 * - undefined (other than as an object property) is nil; values nested deeper than 64 levels are refused.
 *
 * Anything else (functions, symbols, bigints, class instances, over-deep values) and the rare shapes whose
 * reference bytes depend on msgpackr's object-model quirks (a "__proto__" or "constructor" own key, arrays,
 * dates or byte arrays with an unusual prototype or constructor) make `writeCanonical` throw; the caller then
 * runs the reference path, which gives those values their historical bytes or their ValidationError.
 *
 * Reading. `readCanonical` decodes the common subset (see there), nested no deeper than the writer writes, and
 * throws on anything else; the caller then decodes with msgpackr, so results and errors stay msgpackr's, once
 * `unpackable` has refused, without recursion, what is nested deeper (msgpackr's recursive unpack has no depth
 * limit of its own: it refused a deep value only when the JS stack ran out, so at some call depths and not at
 * others). `canonicalReadable` tells, without building
 * anything, whether `readCanonical` would read given bytes: a holder of value bytes (LWWRegister.decode) can
 * validate them at once and decode them on first read.
 *
 * Keeping bytes. `copyToSlab` copies value bytes read from elsewhere into the same output slabs, so a decoded
 * register holds a view like a written one does (a fresh typed array over 64 bytes costs V8 an allocation
 * outside the heap, several times the copy).
 */

/** Thrown internally for the shapes left to the reference path. */
const UNSUPPORTED = new Error('value shape left to the reference encoder');

/**
 * Output slab: each value is written at `start` and returned as a view on the slab, which then moves on (the
 * msgpackr scheme the reference path has always had, 8 KiB slabs as there: allocating a typed array per result,
 * even a small one filled by a copy, measured slower than the view). A fresh slab is taken when little room is
 * left; an old slab is freed once no result viewing it is alive.
 */
const SLAB = 8192;
let buf = new Uint8Array(SLAB);
/** `buf.buffer` (read once per slab: the getter is not free). */
let bufBuffer = buf.buffer;
let view = new DataView(bufBuffer);
/** Where the value being written starts in `buf`. */
let start = 0;
/** Write position in `buf`. */
let pos = 0;
/** Set while a value is being written (a getter that encodes a value re-enters: it takes the reference path). */
let busy = false;

const textEncoder = new TextEncoder();
const objectProto = Object.prototype;
const arrayProto = Array.prototype;
const MAX_DEPTH = 64;

/** Move the value being written to a fresh slab with room for `need` more bytes. */
function grow(need: number): void {
  const used = pos - start;
  let size = SLAB;
  while (size < used + need) size *= 2;
  const next = new Uint8Array(size);
  next.set(buf.subarray(start, pos));
  buf = next;
  bufBuffer = buf.buffer;
  view = new DataView(bufBuffer);
  start = 0;
  pos = used;
}

function ensure(n: number): void {
  if (pos + n > buf.length) grow(n);
}

function begin(): void {
  if (busy) throw UNSUPPORTED;
  busy = true;
  pos = start;
}

/**
 * Write the canonical bytes of v and return them (a view on an output slab that no other result shares bytes
 * with). Throws on anything it leaves to the reference path (see the module doc); it never returns wrong bytes.
 */
export function writeCanonical(v: unknown): Uint8Array {
  begin();
  try {
    write(v, 0);
  } finally {
    busy = false;
  }
  const out = new Uint8Array(bufBuffer, start, pos - start);
  start = pos;
  // a fresh slab when this one is nearly full, or was grown for a large value (small results do not pin it)
  if (buf.length - start < SLAB / 8 || buf.length > SLAB) newSlab();
  return out;
}

/**
 * Like `writeCanonical`, but return the bytes as an identity string (one char per byte, as `identityKey` makes)
 * without keeping them.
 */
export function writeCanonicalKey(v: unknown): string {
  begin();
  try {
    write(v, 0);
  } finally {
    busy = false;
  }
  const key = latin1(buf, start, pos);
  pos = start;
  return key;
}

/**
 * A copy of src[from, to) in the output slab (a view, like `writeCanonical`'s results: no later write changes
 * it). Far cheaper than a fresh array for anything over 64 bytes (V8 allocates those outside the heap).
 */
export function copyToSlab(src: Uint8Array, from: number, to: number): Uint8Array {
  const n = to - from;
  if (busy || n > SLAB / 8) return src.slice(from, to);
  if (buf.length - start < n) newSlab();
  const b = buf;
  const at = start;
  if (n <= 64) for (let i = 0; i < n; i++) b[at + i] = src[from + i];
  else b.set(src.subarray(from, to), at);
  const out = new Uint8Array(bufBuffer, at, n);
  start = pos = at + n;
  if (buf.length - start < SLAB / 8) newSlab();
  return out;
}

function newSlab(): void {
  buf = new Uint8Array(SLAB);
  bufBuffer = buf.buffer;
  view = new DataView(bufBuffer);
  start = pos = 0;
}

type Latin1Slice = (this: Uint8Array, start: number, end: number) => string;
/** Node's latin1 decoder (one char per byte, exactly), when there is one. */
const nodeLatin1: Latin1Slice | undefined = (() => {
  const B = (globalThis as { Buffer?: { prototype?: { latin1Slice?: Latin1Slice } } }).Buffer;
  const f = B?.prototype?.latin1Slice;
  if (typeof f !== 'function') return undefined;
  try {
    return f.call(new Uint8Array([0x41, 0xe9, 0x80, 0]), 0, 4) === 'A\xe9\x80\0' ? f : undefined;
  } catch {
    return undefined;
  }
})();

/** One char per byte of b[from, to). */
export function latin1(b: Uint8Array, from: number, to: number): string {
  const n = to - from;
  if (n <= 16) return chars16(b, from, n);
  if (n <= 64) {
    let s = '';
    for (let i = from; i < to; i += 16) s += chars16(b, i, Math.min(16, to - i));
    return s;
  }
  if (nodeLatin1 !== undefined) return nodeLatin1.call(b, from, to);
  let s = '';
  for (let i = from; i < to; i += 4096) {
    s += String.fromCharCode.apply(null, b.subarray(i, Math.min(i + 4096, to)) as unknown as number[]);
  }
  return s;
}

function write(v: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw UNSUPPORTED;
  switch (typeof v) {
    case 'string':
      writeString(v);
      return;
    case 'number':
      writeNumber(v);
      return;
    case 'boolean':
      ensure(1);
      buf[pos++] = v ? 0xc3 : 0xc2;
      return;
    case 'undefined':
      ensure(1);
      buf[pos++] = 0xc0;
      return;
    case 'object':
      if (v === null) {
        ensure(1);
        buf[pos++] = 0xc0;
        return;
      }
      writeObjectLike(v, depth);
      return;
    default:
      throw UNSUPPORTED; // function, symbol, bigint
  }
}

function writeNumber(x: number): void {
  ensure(9);
  const b = buf;
  if (x >>> 0 === x) {
    if (x < 0x80) {
      b[pos++] = x;
    } else if (x < 0x100) {
      b[pos++] = 0xcc;
      b[pos++] = x;
    } else if (x < 0x10000) {
      b[pos++] = 0xcd;
      b[pos++] = x >> 8;
      b[pos++] = x & 0xff;
    } else {
      b[pos++] = 0xce;
      view.setUint32(pos, x);
      pos += 4;
    }
  } else if (x >> 0 === x) {
    if (x >= -0x20) {
      b[pos++] = 0x100 + x;
    } else if (x >= -0x80) {
      b[pos++] = 0xd0;
      b[pos++] = x + 0x100;
    } else if (x >= -0x8000) {
      b[pos++] = 0xd1;
      view.setInt16(pos, x);
      pos += 2;
    } else {
      b[pos++] = 0xd2;
      view.setInt32(pos, x);
      pos += 4;
    }
  } else {
    b[pos++] = 0xcb;
    view.setFloat64(pos, x);
    pos += 8;
  }
}

function writeString(s: string): void {
  const n = s.length;
  if (n < 0x20) {
    // fast path: ASCII in a fixstr
    ensure(5 + n * 3);
    const b = buf;
    const start = pos;
    let p = start + 1;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      b[p++] = c;
    }
    if (i === n) {
      b[start] = 0xa0 | n;
      pos = p;
      return;
    }
  }
  // header size from the UTF-16 length (bytes >= chars, so it can only grow)
  const headerSize = n < 0x20 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
  ensure(5 + n * 3); // room for the largest header too (it can grow past the estimate)
  const at = pos + headerSize;
  const length = n < 0x40 ? utf8Small(s, at) : textEncoder.encodeInto(s, buf.subarray(at)).written!;
  const b = buf;
  if (length < 0x20) {
    b[pos++] = 0xa0 | length;
  } else if (length < 0x100) {
    if (headerSize < 2) b.copyWithin(pos + 2, pos + 1, pos + 1 + length);
    b[pos++] = 0xd9;
    b[pos++] = length;
  } else if (length < 0x10000) {
    if (headerSize < 3) b.copyWithin(pos + 3, pos + headerSize, pos + headerSize + length);
    b[pos++] = 0xda;
    b[pos++] = length >> 8;
    b[pos++] = length & 0xff;
  } else {
    if (headerSize < 5) b.copyWithin(pos + 5, pos + headerSize, pos + headerSize + length);
    b[pos++] = 0xdb;
    view.setUint32(pos, length);
    pos += 4;
  }
  pos += length;
}

/** UTF-8 of s at `at` (lone surrogates as U+FFFD); returns the byte length. Room is ensured by the caller. */
function utf8Small(s: string, at: number): number {
  const b = buf;
  let p = at;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let c1 = s.charCodeAt(i);
    if (c1 < 0x80) {
      b[p++] = c1;
    } else if (c1 < 0x800) {
      b[p++] = (c1 >> 6) | 0xc0;
      b[p++] = (c1 & 0x3f) | 0x80;
    } else if ((c1 & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      c1 = 0x10000 + ((c1 & 0x03ff) << 10) + (s.charCodeAt(i + 1) & 0x03ff);
      i++;
      b[p++] = (c1 >> 18) | 0xf0;
      b[p++] = ((c1 >> 12) & 0x3f) | 0x80;
      b[p++] = ((c1 >> 6) & 0x3f) | 0x80;
      b[p++] = (c1 & 0x3f) | 0x80;
    } else if ((c1 & 0xf800) === 0xd800) {
      b[p++] = 0xef;
      b[p++] = 0xbf;
      b[p++] = 0xbd;
    } else {
      b[p++] = (c1 >> 12) | 0xe0;
      b[p++] = ((c1 >> 6) & 0x3f) | 0x80;
      b[p++] = (c1 & 0x3f) | 0x80;
    }
  }
  return p - at;
}

function writeObjectLike(v: object, depth: number): void {
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== arrayProto) throw UNSUPPORTED;
    writeArray(v, depth);
    return;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto === objectProto || proto === null) {
    writeMap(v as Record<string, unknown>, depth);
    return;
  }
  if (v instanceof Uint8Array) {
    const c = v.constructor;
    if (c === Object || c === Array || c === Map) throw UNSUPPORTED;
    writeBin(v);
    return;
  }
  if (v instanceof Date) {
    if (v.constructor !== Date) throw UNSUPPORTED;
    writeDate(v);
    return;
  }
  throw UNSUPPORTED; // a class instance: the reference path refuses it
}

function writeArray(a: unknown[], depth: number): void {
  const n = a.length;
  ensure(5);
  const b = buf;
  if (n < 0x10) {
    b[pos++] = 0x90 | n;
  } else if (n < 0x10000) {
    b[pos++] = 0xdc;
    b[pos++] = n >> 8;
    b[pos++] = n & 0xff;
  } else {
    b[pos++] = 0xdd;
    view.setUint32(pos, n);
    pos += 4;
  }
  for (let i = 0; i < n; i++) {
    // a hole reads as undefined and is written as nil, like an undefined element (the reference path fills it)
    write(a[i], depth + 1);
  }
}

/**
 * The write plan for one key set: the keys in the order Object.keys gave them, the canonical order as indices
 * into that list, and the encoded keys in canonical order (keyBytes[keyAt[i], keyAt[i + 1]) is key i's string).
 */
interface Shape {
  keys: string[];
  order: number[];
  keyBytes: Uint8Array;
  keyAt: number[];
  /**
   * The same bytes as big-endian 32-bit words, each key's padded to whole words: key i is
   * keyWords[wordAt[i], wordAt[i + 1]). Written a word at a time (a byte loop cost more than the rest of a
   * small record's write: measured), spilling up to 3 bytes past the key that the next write covers.
   */
  keyWords: Int32Array;
  wordAt: number[];
}

/**
 * The last shape written at each depth: objects of one shape (records of one kind) skip the sort and the key
 * encoding. Only shapes of up to SHAPE_CACHE_KEYS keys are kept.
 */
const shapes: (Shape | undefined)[] = [];
const SHAPE_CACHE_KEYS = 64;

function sameKeys(a: string[], b: string[]): boolean {
  const n = a.length;
  if (n !== b.length) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

function makeShape(keys: string[]): Shape {
  const n = keys.length;
  let indexKeys = false;
  for (let i = 0; i < n; i++) {
    const k = keys[i];
    const c = k.charCodeAt(0);
    if (c <= 0x39) {
      if (c >= 0x30) indexKeys = true;
    } else if ((c === 0x5f && k === '__proto__') || (c === 0x63 && k === 'constructor')) {
      throw UNSUPPORTED;
    }
  }
  // code-unit order (what Array.prototype.sort does to strings); insertion sort for small objects
  const sorted = keys.slice();
  if (n <= 16) {
    for (let i = 1; i < n; i++) {
      const k = sorted[i];
      let j = i - 1;
      while (j >= 0 && sorted[j] > k) {
        sorted[j + 1] = sorted[j];
        j--;
      }
      sorted[j + 1] = k;
    }
  } else {
    sorted.sort();
  }
  if (indexKeys) indexKeysFirst(sorted);
  // keys are distinct, so each sorted key has one index in the original list
  const where = new Map<string, number>();
  for (let i = 0; i < n; i++) where.set(keys[i], i);
  const order = sorted.map((k) => where.get(k)!);
  // encode the keys at the write position, copy them out, and give the room back
  const off0 = pos - start; // offsets within the value: a write may move it to a new slab
  const keyAt: number[] = [0];
  for (let i = 0; i < n; i++) {
    writeString(sorted[i]);
    keyAt.push(pos - start - off0);
  }
  const at0 = start + off0;
  const keyBytes = new Uint8Array(pos - at0);
  for (let i = 0; i < keyBytes.length; i++) keyBytes[i] = buf[at0 + i];
  pos = at0;
  const wordAt: number[] = [0];
  for (let i = 0; i < n; i++) wordAt.push(wordAt[i] + ((keyAt[i + 1] - keyAt[i] + 3) >> 2));
  const keyWords = new Int32Array(wordAt[n]);
  for (let i = 0; i < n; i++) {
    for (let p = keyAt[i], w = wordAt[i]; p < keyAt[i + 1]; p += 4, w++) {
      const at = (q: number) => (q < keyAt[i + 1] ? keyBytes[q] : 0);
      keyWords[w] = (at(p) << 24) | (at(p + 1) << 16) | (at(p + 2) << 8) | at(p + 3);
    }
  }
  return { keys, order, keyBytes, keyAt, keyWords, wordAt };
}

function writeMap(o: Record<string, unknown>, depth: number): void {
  const keys = Object.keys(o);
  const n = keys.length;
  let shape = shapes[depth];
  if (shape === undefined || !sameKeys(shape.keys, keys)) {
    shape = makeShape(keys);
    if (n <= SHAPE_CACHE_KEYS) shapes[depth] = shape;
  }
  // each property is read once, in canonical order (the reference reads them in sorted order too)
  const { order, keyAt, keyWords, wordAt } = shape;
  ensure(5);
  const headerOff = pos - start; // the header's offset within the value (a write may move it to a new slab)
  const headerSize = n < 0x10 ? 1 : n < 0x10000 ? 3 : 5;
  pos += headerSize;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const x = o[keys[order[i]]];
    if (x === undefined) continue;
    const keyLen = keyAt[i + 1] - keyAt[i];
    ensure(keyLen + 4);
    const dv = view;
    let w = pos;
    for (let j = wordAt[i], e = wordAt[i + 1]; j < e; j++, w += 4) dv.setInt32(w, keyWords[j]);
    pos += keyLen;
    write(x, depth + 1);
    count++;
  }
  const b = buf;
  const at = start + headerOff;
  if (count < 0x10) {
    if (headerSize > 1) {
      b.copyWithin(at + 1, at + headerSize, pos);
      pos -= headerSize - 1;
    }
    b[at] = 0x80 | count;
  } else if (count < 0x10000) {
    if (headerSize > 3) {
      b.copyWithin(at + 3, at + headerSize, pos);
      pos -= headerSize - 3;
    }
    b[at] = 0xde;
    b[at + 1] = count >> 8;
    b[at + 2] = count & 0xff;
  } else {
    b[at] = 0xdf;
    view.setUint32(at + 1, count);
  }
}

/** Is k an array index in canonical form ("0" .. "4294967294")? Such keys come first in a JS object's key order. */
function isArrayIndex(k: string): boolean {
  const n = k.length;
  if (n === 0 || n > 10) return false;
  const c0 = k.charCodeAt(0);
  if (c0 < 0x30 || c0 > 0x39 || (c0 === 0x30 && n > 1)) return false;
  for (let i = 1; i < n; i++) {
    const c = k.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return n < 10 || Number(k) <= 4294967294;
}

/** Reorder sorted keys in place: array-index keys first, in numeric order, then the rest in their sorted order. */
function indexKeysFirst(keys: string[]): void {
  const idx: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < keys.length; i++) (isArrayIndex(keys[i]) ? idx : rest).push(keys[i]);
  if (idx.length === 0) return;
  idx.sort((a, b) => Number(a) - Number(b));
  let j = 0;
  for (let i = 0; i < idx.length; i++) keys[j++] = idx[i];
  for (let i = 0; i < rest.length; i++) keys[j++] = rest[i];
}

function writeBin(v: Uint8Array): void {
  const n = v.byteLength;
  ensure(5 + n);
  const b = buf;
  if (n < 0x100) {
    b[pos++] = 0xc4;
    b[pos++] = n;
  } else if (n < 0x10000) {
    b[pos++] = 0xc5;
    b[pos++] = n >> 8;
    b[pos++] = n & 0xff;
  } else {
    b[pos++] = 0xc6;
    view.setUint32(pos, n);
    pos += 4;
  }
  b.set(v, pos);
  pos += n;
}

function writeDate(d: Date): void {
  const seconds = d.getTime() / 1000;
  if (Number.isNaN(seconds)) throw UNSUPPORTED; // an invalid date: the reference path refuses it
  ensure(15);
  const b = buf;
  const ms = d.getMilliseconds();
  if (ms === 0 && seconds >= 0 && seconds < 0x100000000) {
    b[pos++] = 0xd6;
    b[pos++] = 0xff;
    view.setUint32(pos, seconds);
    pos += 4;
  } else if (seconds > 0 && seconds < 0x400000000) {
    b[pos++] = 0xd7;
    b[pos++] = 0xff;
    view.setUint32(pos, ms * 4000000 + ((seconds / 0x100000000) >> 0));
    view.setUint32(pos + 4, seconds);
    pos += 8;
  } else {
    b[pos++] = 0xc7;
    b[pos++] = 12;
    b[pos++] = 0xff;
    view.setUint32(pos, ms * 1000000);
    const s = Math.floor(seconds);
    const hi = Math.floor(s / 0x100000000);
    view.setInt32(pos + 4, hi);
    view.setUint32(pos + 8, s - hi * 0x100000000);
    pos += 12;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// reading

/**
 * Decode the common canonical subset in one pass: nil, booleans, ints and float64, ASCII strings, arrays, and
 * maps with ASCII string keys (other than "__proto__"), with nothing after the value. Throws on anything else
 * (binary, extensions such as dates, non-ASCII strings, float32, 64-bit ints, truncated or malformed input);
 * the caller then decodes with msgpackr, whose result (or error) is the definition. On the subset the result
 * is the value msgpackr returns (a differential test holds them together).
 */
export function readCanonical(bytes: Uint8Array): unknown {
  rsrc = bytes;
  rpos = 0;
  rend = bytes.length;
  try {
    const v = read(0);
    if (rpos !== rend) throw UNSUPPORTED; // trailing bytes: msgpackr refuses them
    return v;
  } finally {
    rsrc = EMPTY;
  }
}

const EMPTY = new Uint8Array(0);
let rsrc: Uint8Array = EMPTY;
let rpos = 0;
let rend = 0;

function read(depth: number): unknown {
  if (rpos >= rend || depth > MAX_DEPTH) throw UNSUPPORTED; // deeper than the writer goes: refused by decodeValue
  const b = rsrc;
  const t = b[rpos++];
  if (t < 0x80) return t;
  if (t < 0x90) return readMap(t & 0x0f, depth);
  if (t < 0xa0) return readArray(t & 0x0f, depth);
  if (t < 0xc0) return readString(t & 0x1f);
  if (t >= 0xe0) return t - 0x100;
  switch (t) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xcb:
      need(8);
      rpos += 8;
      return readF64(rpos - 8);
    case 0xcc:
      need(1);
      return b[rpos++];
    case 0xcd:
      need(2);
      rpos += 2;
      return (b[rpos - 2] << 8) | b[rpos - 1];
    case 0xce:
      need(4);
      rpos += 4;
      return ((b[rpos - 4] << 24) | (b[rpos - 3] << 16) | (b[rpos - 2] << 8) | b[rpos - 1]) >>> 0;
    case 0xd0:
      need(1);
      return (b[rpos++] << 24) >> 24;
    case 0xd1:
      need(2);
      rpos += 2;
      return (((b[rpos - 2] << 8) | b[rpos - 1]) << 16) >> 16;
    case 0xd2:
      need(4);
      rpos += 4;
      return (b[rpos - 4] << 24) | (b[rpos - 3] << 16) | (b[rpos - 2] << 8) | b[rpos - 1];
    case 0xd9:
      need(1);
      return readString(b[rpos++]);
    case 0xda:
      need(2);
      rpos += 2;
      return readString((b[rpos - 2] << 8) | b[rpos - 1]);
    case 0xdc:
      need(2);
      rpos += 2;
      return readArray((b[rpos - 2] << 8) | b[rpos - 1], depth);
    case 0xde:
      need(2);
      rpos += 2;
      return readMap((b[rpos - 2] << 8) | b[rpos - 1], depth);
    default:
      throw UNSUPPORTED;
  }
}

function need(n: number): void {
  if (rpos + n > rend) throw UNSUPPORTED;
}

const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
/** Big-endian: on a little-endian host the bytes are reversed into the scratch double. */
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function readF64(at: number): number {
  const b = rsrc;
  if (littleEndian) {
    for (let i = 0; i < 8; i++) f64Bytes[i] = b[at + 7 - i];
  } else {
    for (let i = 0; i < 8; i++) f64Bytes[i] = b[at + i];
  }
  return f64[0];
}

function readString(n: number): string {
  need(n);
  const b = rsrc;
  const from = rpos;
  const to = from + n;
  let any = 0;
  for (let i = from; i < to; i++) any |= b[i];
  if (any >= 0x80) throw UNSUPPORTED;
  rpos = to;
  if (n <= 16) return chars16(b, from, n);
  if (n <= 64) {
    let s = '';
    for (let i = from; i < to; i += 16) s += chars16(b, i, Math.min(16, to - i));
    return s;
  }
  return latin1(b, from, to);
}

const fcc = String.fromCharCode;

/**
 * One char per byte of the n <= 16 bytes at b[p] (a fromCharCode call with the bytes as arguments: far cheaper
 * than building the string a char at a time).
 */
function chars16(b: Uint8Array, p: number, n: number): string {
  switch (n) {
    case 0: return '';
    case 1: return fcc(b[p]);
    case 2: return fcc(b[p], b[p + 1]);
    case 3: return fcc(b[p], b[p + 1], b[p + 2]);
    case 4: return fcc(b[p], b[p + 1], b[p + 2], b[p + 3]);
    case 5: return fcc(b[p], b[p + 1], b[p + 2], b[p + 3], b[p + 4]);
    case 6: return fcc(b[p], b[p + 1], b[p + 2], b[p + 3], b[p + 4], b[p + 5]);
    case 7: return fcc(b[p], b[p + 1], b[p + 2], b[p + 3], b[p + 4], b[p + 5], b[p + 6]);
    case 8: return fcc(b[p], b[p + 1], b[p + 2], b[p + 3], b[p + 4], b[p + 5], b[p + 6], b[p + 7]);
    default: {
      const head = fcc(b[p], b[p + 1], b[p + 2], b[p + 3], b[p + 4], b[p + 5], b[p + 6], b[p + 7]);
      p += 8;
      switch (n - 8) {
        case 1: return head + fcc(b[p]);
        case 2: return head + fcc(b[p], b[p + 1]);
        case 3: return head + fcc(b[p], b[p + 1], b[p + 2]);
        case 4: return head + fcc(b[p], b[p + 1], b[p + 2], b[p + 3]);
        case 5: return head + fcc(b[p], b[p + 1], b[p + 2], b[p + 3], b[p + 4]);
        case 6: return head + fcc(b[p], b[p + 1], b[p + 2], b[p + 3], b[p + 4], b[p + 5]);
        case 7: return head + fcc(b[p], b[p + 1], b[p + 2], b[p + 3], b[p + 4], b[p + 5], b[p + 6]);
        default: return head + fcc(b[p], b[p + 1], b[p + 2], b[p + 3], b[p + 4], b[p + 5], b[p + 6], b[p + 7]);
      }
    }
  }
}

/**
 * Recently read map keys by a hash of their bytes: a record's keys repeat from value to value, and a cached
 * key is compared with the bytes instead of being built (and interned as a property name) again.
 */
const keyCache: (string | undefined)[] = new Array(4096).fill(undefined);

function readKey(n: number): string {
  if (n > 16) return readString(n);
  need(n);
  const b = rsrc;
  const p = rpos;
  const h = ((n << 7) ^ (n > 0 ? b[p] << 4 : 0) ^ (n > 1 ? b[p + n - 1] : 0) ^ (n > 2 ? b[p + (n >> 1)] << 2 : 0)) & 0xfff;
  const e = keyCache[h];
  if (e !== undefined && e.length === n) {
    let i = 0;
    while (i < n && e.charCodeAt(i) === b[p + i]) i++;
    if (i === n) {
      rpos = p + n;
      return e;
    }
  }
  const k = readString(n);
  keyCache[h] = k;
  return k;
}

function readArray(n: number, depth: number): unknown[] {
  if (n > rend - rpos) throw UNSUPPORTED; // each element takes at least one byte
  const a = new Array(n);
  for (let i = 0; i < n; i++) a[i] = read(depth + 1);
  return a;
}

function readMap(n: number, depth: number): Record<string, unknown> {
  if (n > (rend - rpos) / 2) throw UNSUPPORTED; // each entry takes at least two bytes
  const o: Record<string, unknown> = {};
  const b = rsrc;
  for (let i = 0; i < n; i++) {
    if (rpos >= rend) throw UNSUPPORTED;
    const t = b[rpos++];
    let k: string;
    if (t >= 0xa0 && t < 0xc0) k = readKey(t & 0x1f);
    else if (t === 0xd9) {
      need(1);
      k = readKey(b[rpos++]);
    } else throw UNSUPPORTED;
    if (k === '__proto__') throw UNSUPPORTED;
    o[k] = read(depth + 1);
  }
  return o;
}

/**
 * True exactly when `readCanonical(b.subarray(from, to))` returns a value rather than throwing (a
 * differential test holds them together), found without building the value: a holder of canonical bytes may
 * then validate them now and decode them on first read, knowing that read cannot fail. One loop over the
 * bytes with the open containers on a fixed stack (the reader nests at most MAX_DEPTH deep).
 */
export function canonicalReadable(b: Uint8Array, from: number, to: number): boolean {
  const rem = openLeft, isMap = openIsMap;
  let p = from;
  let level = 0; // nesting level of the next item (the reader's `depth`)
  for (;;) {
    if (p >= to || level > MAX_DEPTH) return false;
    const t = b[p++];
    let n = -1; // children of a container, -1 for a scalar
    let map = false;
    if (t < 0x80 || t >= 0xe0) {
      // fixint
    } else if (t < 0x90) {
      n = t & 0x0f;
      map = true;
    } else if (t < 0xa0) {
      n = t & 0x0f;
    } else if (t < 0xc0) {
      const e = p + (t & 0x1f);
      if (e > to || !ascii(b, p, e)) return false;
      p = e;
    } else {
      switch (t) {
        case 0xc0: case 0xc2: case 0xc3: break;
        case 0xcb: p += 8; break;
        case 0xcc: case 0xd0: p += 1; break;
        case 0xcd: case 0xd1: p += 2; break;
        case 0xce: case 0xd2: p += 4; break;
        case 0xd9: {
          if (p + 1 > to) return false;
          const e = p + 1 + b[p];
          if (e > to || !ascii(b, p + 1, e)) return false;
          p = e;
          break;
        }
        case 0xda: case 0xdc: case 0xde: {
          if (p + 2 > to) return false;
          const m = (b[p] << 8) | b[p + 1];
          p += 2;
          if (t === 0xda) {
            if (p + m > to || !ascii(b, p, p + m)) return false;
            p += m;
          } else {
            n = m;
            map = t === 0xde;
          }
          break;
        }
        default:
          return false;
      }
      if (p > to) return false;
    }
    if (n > 0) {
      if (map ? n > (to - p) / 2 : n > to - p) return false;
      level++;
      rem[level] = n;
      isMap[level] = map ? 1 : 0;
      if (map && (p = mapKey(b, p, to)) < 0) return false;
      continue;
    }
    // the item (a scalar or an empty container) is done: close every container it finishes
    for (;;) {
      if (level === 0) return p === to;
      if (--rem[level] > 0) break;
      level--;
    }
    if (isMap[level] === 1 && (p = mapKey(b, p, to)) < 0) return false;
  }
}

/** Remaining children and kind of each open container, by the level of its children (1..MAX_DEPTH + 1). */
const openLeft = new Int32Array(MAX_DEPTH + 2);
const openIsMap = new Uint8Array(MAX_DEPTH + 2);

/** Every byte of b[from, to) is ASCII. */
function ascii(b: Uint8Array, from: number, to: number): boolean {
  let any = 0;
  for (let i = from; i < to; i++) any |= b[i];
  return any < 0x80;
}

/** A map key at b[p] as `readMap` takes it (fixstr or str8, ASCII, not "__proto__"): its end, or -1. */
function mapKey(b: Uint8Array, p: number, to: number): number {
  if (p >= to) return -1;
  const t = b[p++];
  let kl: number;
  if (t >= 0xa0 && t < 0xc0) kl = t & 0x1f;
  else if (t === 0xd9) {
    if (p >= to) return -1;
    kl = b[p++];
  } else return -1;
  const e = p + kl;
  if (e > to || !ascii(b, p, e)) return -1;
  if (kl === 9 && b[p] === 0x5f && b[p + 1] === 0x5f && b[p + 2] === 0x70 && b[p + 3] === 0x72 && b[p + 4] === 0x6f
    && b[p + 5] === 0x74 && b[p + 6] === 0x6f && b[p + 7] === 0x5f && b[p + 8] === 0x5f) return -1;
  return e;
}

/**
 * Whether msgpack bytes may be handed to msgpackr's (recursive) unpack: 'deep' when an item sits deeper than
 * the writer ever goes (MAX_DEPTH, the same count as the writer's and `readCanonical`'s depth), 'ext' for an
 * extension other than the timestamp (-1) and msgpackr's "undefined" (0) (no writer makes one, and msgpackr reads
 * some of them, such as its Set, Error and RegExp forms, by reading further items), else 'ok'. One loop with the
 * open containers counted on a fixed stack, no recursion: the answer, hence what `decodeValue` does with the
 * bytes, is the same at any JS stack depth. Truncated or malformed bytes give 'ok' (msgpackr then refuses them
 * having nested no deeper than this loop went).
 */
export function unpackable(b: Uint8Array): 'ok' | 'deep' | 'ext' {
  const rem = scanLeft;
  const to = b.length;
  let p = 0;
  let level = 0;
  for (;;) {
    if (level > MAX_DEPTH) return 'deep'; // first: truncated deep bytes are refused here, not by msgpackr's stack
    if (p >= to) return 'ok';
    const t = b[p++];
    let n = 0; // items in a container (map entries count twice)
    if (t < 0x80 || t >= 0xe0) {
      // fixint
    } else if (t < 0x90) n = (t & 0x0f) * 2;
    else if (t < 0xa0) n = t & 0x0f;
    else if (t < 0xc0) p += t & 0x1f;
    else {
      switch (t) {
        case 0xc0: case 0xc1: case 0xc2: case 0xc3: break;
        case 0xc4: case 0xd9: if (p + 1 > to) return 'ok'; p += 1 + b[p]; break;
        case 0xc5: case 0xda: if (p + 2 > to) return 'ok'; p += 2 + ((b[p] << 8) | b[p + 1]); break;
        case 0xc6: case 0xdb: if (p + 4 > to) return 'ok'; p += 4 + view32(b, p); break;
        case 0xca: case 0xce: case 0xd2: p += 4; break;
        case 0xcb: case 0xcf: case 0xd3: p += 8; break;
        case 0xcc: case 0xd0: p += 1; break;
        case 0xcd: case 0xd1: p += 2; break;
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: case 0xc7: case 0xc8: case 0xc9: {
          let len: number;
          if (t >= 0xd4) len = 1 << (t - 0xd4);
          else {
            const w = t === 0xc7 ? 1 : t === 0xc8 ? 2 : 4;
            if (p + w > to) return 'ok';
            len = w === 1 ? b[p] : w === 2 ? (b[p] << 8) | b[p + 1] : view32(b, p);
            p += w;
          }
          if (p >= to) return 'ok';
          const type = b[p++];
          if (type !== 0xff && type !== 0) return 'ext';
          p += len;
          break;
        }
        case 0xdc: case 0xde:
          if (p + 2 > to) return 'ok';
          n = ((b[p] << 8) | b[p + 1]) * (t === 0xde ? 2 : 1);
          p += 2;
          break;
        case 0xdd: case 0xdf:
          if (p + 4 > to) return 'ok';
          n = view32(b, p) * (t === 0xdf ? 2 : 1);
          p += 4;
          break;
        default:
          return 'ok';
      }
    }
    if (n > 0) {
      level++;
      rem[level] = n;
      continue;
    }
    // the item is done: close every container it finishes
    for (;;) {
      if (level === 0) return 'ok';
      if (--rem[level] > 0) break;
      level--;
    }
  }
}

/** Items left in each open container, by the level of its items (1..MAX_DEPTH + 1). */
const scanLeft = new Float64Array(MAX_DEPTH + 2);

function view32(b: Uint8Array, p: number): number {
  return b[p] * 16777216 + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
}
