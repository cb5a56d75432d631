/**
 * Binary codec primitives: a growable `Writer` that copies once at the end, and a bounds-checked `Reader`
 * that throws `DecodeError` on any malformed, truncated or oversized input. Every `writeX` has a `readX`.
 *
 * Integers: unsigned LEB128 varints up to Number.MAX_SAFE_INTEGER (at most 8 bytes), zigzag for signed.
 */
import { DecodeError } from '../errors.js';

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Scratch for f64 <-> bytes (little-endian, as the wire format). */
const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Small encodings are the common case (deltas, digests, messages) and allocating their scratch buffer cost
 * more than writing them (measured): writers borrow a buffer from this pool and give it back in `finish()`.
 */
const POOL: Uint8Array[] = [];
const POOL_MAX = 8;
const POOLED_MAX_BYTES = 64 * 1024;
const DEAD = new Uint8Array(0);

/**
 * Output arrays. A fresh typed array over 64 bytes costs V8 an allocation outside its heap (0.4-1.1 us here,
 * more than writing a small state: measured), so on Node an output of 65 to 1,024 bytes is a view on an 8 KiB
 * output slab, as Node's `Buffer.from` pools small buffers: its bytes are its own (regions are handed out once
 * and never written again by us), its `.buffer` is shared with other outputs. The slab holds outputs only,
 * never state a CRDT keeps (values live on the codec's value slabs), so transferring an output's buffer can
 * detach other outputs but no CRDT's state. In browsers, where `postMessage(x, [x.buffer])` is an everyday
 * idiom, every output has a buffer of its own.
 */
const POOL_OUTPUTS = typeof (globalThis as { process?: { versions?: { node?: unknown } } }).process?.versions?.node === 'string';
const OUT_SLAB = 8192;
const OUT_POOLED_MAX = 1024;
let outSlab = new Uint8Array(0);
let outBuffer: ArrayBuffer = outSlab.buffer as ArrayBuffer;
let outAt = 0;

/** A zero-filled array of n bytes for an encoding's output (pooled on Node from 65 to 1,024 bytes; see above). */
export function outputArray(n: number): Uint8Array {
  if (n <= 64 || n > OUT_POOLED_MAX || !POOL_OUTPUTS) return new Uint8Array(n);
  if (outSlab.length - outAt < n) {
    outSlab = new Uint8Array(OUT_SLAB);
    outBuffer = outSlab.buffer as ArrayBuffer;
    outAt = 0;
  }
  const out = new Uint8Array(outBuffer, outAt, n);
  outAt += n;
  return out;
}

/** A copy of src[from, to) in an output array. */
export function outputCopy(src: Uint8Array, from = 0, to = src.length): Uint8Array {
  const n = to - from;
  const out = outputArray(n);
  if (n <= 64) for (let i = 0; i < n; i++) out[i] = src[from + i];
  else out.set(src.subarray(from, to));
  return out;
}

/** Bytes `Writer.varuint(v)` writes. */
export function varuintSize(v: number): number {
  let n = 1;
  for (; v >= 0x80; n++) v = Math.floor(v / 0x80);
  return n;
}

export class Writer {
  private buf: Uint8Array;
  private dead = false;
  pos = 0;

  constructor(initialSize = 256) {
    const pooled = initialSize <= POOLED_MAX_BYTES ? POOL.pop() : undefined;
    this.buf = pooled ?? new Uint8Array(Math.max(16, initialSize));
    if (pooled !== undefined && pooled.length < initialSize) this.ensure(initialSize);
  }

  /** Make room for n more bytes. */
  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    if (this.dead) throw new Error('Writer used after finish()');
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  /** Unsigned varint, 0 <= v <= Number.MAX_SAFE_INTEGER. */
  varuint(v: number): void {
    if (!(v >= 0 && v <= Number.MAX_SAFE_INTEGER) || !Number.isInteger(v)) {
      throw new RangeError(`varuint out of range: ${v}`);
    }
    this.ensure(8);
    const buf = this.buf;
    let pos = this.pos;
    while (v >= 0x80) {
      buf[pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    buf[pos++] = v;
    this.pos = pos;
  }

  /** Signed varint (zigzag), |v| <= 2^52 - 1 (so the zigzag value stays a safe integer). */
  varint(v: number): void {
    if (!Number.isInteger(v) || Math.abs(v) > 4503599627370495) throw new RangeError(`varint out of range: ${v}`);
    this.varuint(v < 0 ? -v * 2 - 1 : v * 2);
  }

  u32(v: number): void {
    this.ensure(4);
    const b = this.buf;
    const p = this.pos;
    b[p] = v;
    b[p + 1] = v >>> 8;
    b[p + 2] = v >>> 16;
    b[p + 3] = v >>> 24;
    this.pos = p + 4;
  }

  f64(v: number): void {
    this.ensure(8);
    f64[0] = v;
    const b = this.buf;
    const p = this.pos;
    if (LITTLE_ENDIAN) for (let i = 0; i < 8; i++) b[p + i] = f64b[i];
    else for (let i = 0; i < 8; i++) b[p + i] = f64b[7 - i];
    this.pos = p + 8;
  }

  /** Raw bytes, no length prefix. */
  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** A length-prefixed byte string given as a latin1 string (one char per byte, every char < 256). */
  latin1(s: string): void {
    const n = s.length;
    this.varuint(n);
    this.ensure(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** src[from, to) as is (no view allocated: for many short runs). */
  rawRange(src: Uint8Array, from: number, to: number): void {
    const n = to - from;
    this.ensure(n);
    const b = this.buf;
    let p = this.pos;
    if (n <= 32) for (let i = from; i < to; i++) b[p++] = src[i];
    else b.set(src.subarray(from, to), p);
    this.pos += n;
  }

  /** Length-prefixed bytes. */
  bytes(bytes: Uint8Array): void {
    this.varuint(bytes.length);
    this.raw(bytes);
  }

  /** Length-prefixed UTF-8 string. */
  string(s: string): void {
    const n = s.length;
    if (n < 0x80) {
      // short ASCII (ids, keys): byte by byte, cheaper than the encoder call
      this.ensure(n + 1);
      const b = this.buf;
      const p = this.pos;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[p + 1 + i] = c;
      }
      if (i === n) {
        b[p] = n;
        this.pos = p + 1 + n;
        return;
      }
    }
    // worst case 3 bytes per UTF-16 unit
    const max = n * 3;
    this.ensure(max + 8);
    const lenPos = this.pos;
    // reserve a fixed-size slot only when small; otherwise encode then prefix
    if (max < 0x80) {
      this.pos += 1;
      const { written } = textEncoder.encodeInto(s, this.buf.subarray(this.pos));
      this.buf[lenPos] = written;
      this.pos += written;
      return;
    }
    const enc = textEncoder.encode(s);
    this.bytes(enc);
  }

  /** The written bytes, copied once into a right-sized array. The writer is done (writing again throws). */
  /** The written bytes, in an output array (`outputArray`: pooled on Node from 65 to 1,024 bytes). Once only. */
  finish(): Uint8Array {
    if (this.dead) throw new Error('Writer.finish() called twice');
    const out = outputCopy(this.buf, 0, this.pos);
    const b = this.buf;
    this.buf = DEAD;
    this.dead = true;
    if (b.length <= POOLED_MAX_BYTES && POOL.length < POOL_MAX && b !== DEAD) POOL.push(b);
    return out;
  }

  /** A view on the written bytes (valid until the next write). */
  view_(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  reset(): void {
    this.pos = 0;
  }
}

/**
 * `buf[p, p + n)` as a string when every byte is ASCII, else undefined. Short strings are built char by
 * char (flat below V8's 13-char cons-string threshold, and no view allocated), longer ones in one call.
 */
export function asciiAt(buf: Uint8Array, p: number, n: number): string | undefined {
  if (n < 13) {
    let s = '';
    for (let i = 0; i < n; i++) {
      const c = buf[p + i];
      if (c >= 0x80) return undefined;
      s += String.fromCharCode(c);
    }
    return s;
  }
  for (let i = 0; i < n; i++) if (buf[p + i] >= 0x80) return undefined;
  return String.fromCharCode.apply(null, buf.subarray(p, p + n) as unknown as number[]);
}

export class Reader {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;

  /**
   * Reads `buf[start, end)`. Anything but a Uint8Array (null, undefined, a string, a plain object, ...) is a
   * DecodeError, so every `decode` built on a Reader reports bad input with one typed error. (The check comes
   * before `buf.length` is read, which is why `end` has no `= buf.length` parameter default.)
   */
  constructor(buf: Uint8Array, start = 0, end?: number) {
    if (!(buf instanceof Uint8Array)) throw new DecodeError('input is not a Uint8Array');
    this.buf = buf;
    this.pos = start;
    this.end = end ?? buf.length;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  need(n: number): void {
    if (n < 0 || this.pos + n > this.end) throw new DecodeError(`truncated input: need ${n} bytes at ${this.pos}, have ${this.end - this.pos}`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  varuint(): number {
    const buf = this.buf;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.end) throw new DecodeError('truncated varint');
      const b = buf[this.pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (result > Number.MAX_SAFE_INTEGER) throw new DecodeError('varint exceeds MAX_SAFE_INTEGER');
        if (i > 0 && b === 0) throw new DecodeError('non-canonical varint');
        return result;
      }
      mul *= 0x80;
    }
    throw new DecodeError('varint too long');
  }

  varint(): number {
    const z = this.varuint();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  u32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
  }

  f64(): number {
    this.need(8);
    const b = this.buf;
    const p = this.pos;
    if (LITTLE_ENDIAN) for (let i = 0; i < 8; i++) f64b[i] = b[p + i];
    else for (let i = 0; i < 8; i++) f64b[7 - i] = b[p + i];
    this.pos = p + 8;
    return f64[0];
  }

  /** A count of items that each take at least `minBytesEach` bytes: checked against the remaining input. */
  count(minBytesEach = 1, max = Number.MAX_SAFE_INTEGER): number {
    const n = this.varuint();
    if (n > max) throw new DecodeError(`count ${n} exceeds limit ${max}`);
    if (n * minBytesEach > this.remaining) throw new DecodeError(`count ${n} exceeds remaining input`);
    return n;
  }

  /** n raw bytes as a view (no copy). */
  raw(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  bytes(): Uint8Array {
    const n = this.varuint();
    return this.raw(n);
  }

  /** A length-prefixed byte string as a copy with its own buffer (one allocation, where `new
   * Uint8Array(bytes())` makes a view and then the copy). */
  bytesCopy(): Uint8Array {
    const n = this.varuint();
    this.need(n);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  string(): string {
    const n = this.varuint();
    if (n <= 64) {
      // short ASCII (replica ids, keys): no decoder call
      this.need(n);
      const s = asciiAt(this.buf, this.pos, n);
      if (s !== undefined) {
        this.pos += n;
        return s;
      }
    }
    const b = this.raw(n);
    try {
      return textDecoder.decode(b);
    } catch (e) {
      throw new DecodeError('invalid UTF-8', { cause: e });
    }
  }

  /** Throws unless every byte was consumed. */
  done(): void {
    if (this.pos !== this.end) throw new DecodeError(`${this.end - this.pos} trailing bytes`);
  }
}

/**
 * @internal One live instance of each short-lived class on the hot paths (readers, writers, the merge's dot
 * lists, the value column's expander; each module adds its own). V8 reaches an object's final hidden class
 * through transitions that hold it only weakly, so when every instance of a class has died by a full GC, its
 * hidden class dies too and every optimized function that handled such objects is thrown away (a "weak
 * objects" deoptimization), then recompiled over the next calls. One instance kept here keeps the class.
 * Measured on the peer benchmark's 1,000-VM exchange run right after a forced full GC: 94-118 ms without the
 * anchors, 16-18 ms with them, the same as with no GC before it.
 */
export const hiddenClassAnchors: object[] = [new Reader(new Uint8Array(0)), new Writer(16)];
