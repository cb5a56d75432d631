/**
 * User values (register values, set elements, map values) are anything msgpackr encodes: strings, numbers,
 * booleans, null, Date, Uint8Array, plain objects and arrays.
 *
 * - `encodeValue` gives canonical bytes: plain-object keys are sorted (recursively), so two equal values give
 *   equal bytes whatever their key insertion order. Sets use these bytes as element identity.
 * - A value's bytes are produced once, by the replica that wrote it, and carried as bytes from then on
 *   (never re-encoded), so every replica holds identical bytes.
 * - `decodeValue` throws `DecodeError` on malformed bytes, on a value nested deeper than the writer writes (64
 *   levels below the top) and on msgpack extensions other than the timestamp and msgpackr's "undefined", the
 *   same at any depth of the JS stack.
 *
 * The canonical form was first defined by `encodeValueReference` (a sorted copy of the value packed by msgpackr
 * with the options below); stored states and set identities depend on its exact bytes. `encodeValue` writes the
 * same bytes in one pass with the hand-written writer in ./msgpack.ts (3-4x faster on small values, measured),
 * and hands the rare shapes that writer leaves alone (and every value it refuses) to the reference path, so
 * bytes and ValidationErrors are the reference path's for every input. Differential tests
 * (test/codec/msgpack.test.ts) hold the two together, and likewise `decodeValue` with msgpackr's unpack.
 */
import { Packr } from 'msgpackr';
import { DecodeError, ValidationError } from '../errors.js';
import { latin1, readCanonical, unpackable, writeCanonical, writeCanonicalKey } from './msgpack.js';

const packr = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  mapsAsObjects: true,
  variableMapSize: true,
  int64AsType: 'number',
  useFloat32: 0 as never,
});

function canonical(v: unknown, depth: number): unknown {
  if (depth > 64) throw new ValidationError('value nested deeper than 64 levels');
  if (v === null || typeof v !== 'object') {
    if (v === undefined) return null;
    if (typeof v === 'function' || typeof v === 'symbol') throw new ValidationError(`cannot encode a ${typeof v}`);
    if (typeof v === 'bigint') throw new ValidationError('cannot encode a bigint');
    return v;
  }
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new ValidationError('cannot encode an invalid Date');
    return v;
  }
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) {
    // a hole is read as undefined, so written as nil (Array.prototype.map would keep it a hole, which msgpackr
    // writes as its "undefined" extension: bytes the ORMap value reader and ORSet's canonical check refuse)
    const out = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) out[i] = canonical(v[i], depth + 1);
    return out;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) {
    throw new ValidationError(`cannot encode an instance of ${(v as object).constructor?.name ?? 'unknown'}`);
  }
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) {
    const x = (v as Record<string, unknown>)[k];
    if (x === undefined) continue;
    out[k] = canonical(x, depth + 1);
  }
  return out;
}

function isFlat(v: unknown): boolean {
  return v === null || (typeof v !== 'object' && typeof v !== 'function' && typeof v !== 'symbol' && typeof v !== 'bigint' && v !== undefined);
}

/** The fixstr header byte for each length below 32, as a one-char string. */
const FIXSTR_HEADER = Array.from({ length: 0x20 }, (_, n) => String.fromCharCode(0xa0 | n));

/**
 * @internal The reference canonical encoder (sorted copy, then msgpackr): the definition `encodeValue` is tested
 * against, and its fallback for rare shapes and refused values. Returns a view on msgpackr's buffer.
 */
export function encodeValueReference(v: unknown): Uint8Array {
  const c = isFlat(v) ? v : canonical(v, 0);
  return packr.pack(c);
}

/**
 * Canonical msgpack bytes of a value. Throws ValidationError for values msgpack cannot carry faithfully. The
 * result may be a view on a shared output buffer (its bytes are its own: no later call writes over them), as
 * msgpackr's results always were; copy it when a separate ArrayBuffer is needed.
 */
export function encodeValue(v: unknown): Uint8Array {
  if (typeof v === 'string' && v.length < 0x20) {
    // fast path: a short ASCII string is a fixstr
    const n = v.length;
    const out = new Uint8Array(n + 1);
    out[0] = 0xa0 | n;
    let i = 0;
    for (; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c >= 0x80) break;
      out[i + 1] = c;
    }
    if (i === n) return out;
  }
  try {
    return writeCanonical(v);
  } catch {
    return encodeValueReference(v);
  }
}

/**
 * `identityKey(encodeValue(v))` without allocating the bytes (for lookups: `has`, `remove`). Throws
 * ValidationError exactly when `encodeValue` does.
 */
export function valueIdentityKey(v: unknown): string {
  if (typeof v === 'string' && v.length < 0x20) {
    // fast path: a short ASCII string's key is its fixstr header char and the string itself
    let ascii = true;
    for (let i = 0; i < v.length; i++) {
      if (v.charCodeAt(i) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return FIXSTR_HEADER[v.length] + v;
  }
  try {
    return writeCanonicalKey(v);
  } catch {
    return identityKey(encodeValueReference(v));
  }
}

/**
 * Decode bytes produced by `encodeValue`. Throws DecodeError on malformed input. The common subset (no
 * binary, dates or non-ASCII strings) is read by the one-pass reader in ./msgpack.ts; everything else, and every
 * input it refuses, by msgpackr (`decodeValueReference`), whose result or error is the definition.
 */
export function decodeValue(bytes: Uint8Array): unknown {
  if (bytes.length === 0) throw new DecodeError('empty value');
  try {
    return readCanonical(bytes);
  } catch {
    return decodeValueReference(bytes);
  }
}

/**
 * @internal The reference decoder (msgpackr), behind `decodeValue` for what its fast reader leaves. msgpackr
 * returns byte arrays as views of its input, so it reads a copy: a value is its reader's own, and writing into
 * a byte array read from a CRDT must not change the CRDT's bytes.
 */
export function decodeValueReference(bytes: Uint8Array): unknown {
  if (bytes.length === 0) throw new DecodeError('empty value');
  // checked without recursion before msgpackr's recursive unpack, so the answer does not depend on how deep in
  // the JS stack decode is called (msgpackr alone refused a deep value only when the stack ran out)
  const u = unpackable(bytes);
  if (u === 'deep') throw new DecodeError('value nested deeper than 64 levels');
  if (u === 'ext') throw new DecodeError('unsupported msgpack extension');
  let v: unknown;
  try {
    v = packr.unpack(bytes.slice());
  } catch (e) {
    throw new DecodeError(`malformed value: ${(e as Error).message}`, { cause: e });
  }
  // 0xc1 is reserved in msgpack; msgpackr surfaces it as an object instead of failing
  if (v !== null && typeof v === 'object' && (v as object).constructor?.name === 'C1Type') throw new DecodeError('reserved msgpack byte 0xc1');
  return v;
}

/** Byte-wise equality. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Unsigned lexicographic byte order (-1, 0, 1). */
export function bytesCompare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** A string usable as a Map key for a value's identity (its canonical bytes, one char per byte). */
export function identityKey(bytes: Uint8Array): string {
  return latin1(bytes, 0, bytes.length);
}

/** The canonical bytes an identity key stands for (the inverse of `identityKey`: one byte per char). */
export function identityBytes(key: string): Uint8Array {
  const b = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) b[i] = key.charCodeAt(i);
  return b;
}

/**
 * True when v is a primitive that its canonical bytes decode back to exactly, so a writer may keep v as given
 * instead of reading it back from the bytes: strings without lone surrogates (one is encoded as U+FFFD),
 * numbers but -0 (encoded as 0), booleans and null.
 */
export function readsBackAsGiven(v: unknown): boolean {
  const t = typeof v;
  return (t === 'string' && isWellFormedString(v as string)) || (t === 'number' && !Object.is(v, -0)) || t === 'boolean' || v === null;
}

/**
 * The string s's canonical bytes read back as: s itself when well-formed, else s with each lone surrogate
 * replaced by U+FFFD (the encoder writes a lone surrogate as U+FFFD). Two strings have equal canonical bytes
 * exactly when this gives equal strings, so sets key string elements by it (no bytes built).
 */
export function wellFormedString(s: string): string {
  return isWellFormedString(s) ? s : replaceLoneSurrogates(s);
}

function replaceLoneSurrogates(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out += s[i] + s[i + 1];
        i++;
        continue;
      }
      out += '\ufffd';
    } else if (c >= 0xdc00 && c <= 0xdfff) out += '\ufffd';
    else out += s[i];
  }
  return out;
}

/** True when s is under 32 chars, all ASCII: its canonical bytes are a fixstr header and its chars. */
export function isShortAscii(s: string): boolean {
  const n = s.length;
  if (n >= 0x20) return false;
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

/**
 * Canonical (byte) order of two distinct short ASCII strings (`isShortAscii`): the fixstr header orders by
 * length first, then the chars (ASCII code units are the bytes).
 */
export function compareShortAscii(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : 1);
}

/**
 * The canonical order of distinct short ASCII strings (`isShortAscii`), as a permutation: `keys[at[0]]` comes
 * first. A radix sort, by length and then by each char from the last (128 buckets; a position where a group's
 * strings all share one char is skipped), in time linear in the chars: a comparison sort through
 * `compareShortAscii` took ~30 ms for 50,000 ids (a JS call per comparison), this ~3 ms. Small groups are
 * insertion-sorted.
 */
export function shortAsciiOrder(keys: readonly string[]): Int32Array {
  const n = keys.length;
  const at = new Int32Array(n);
  // group by length (stable counting sort): group L is at[start[L], start[L + 1])
  const start = new Int32Array(34);
  for (let i = 0; i < n; i++) start[keys[i].length + 1]++;
  for (let l = 0; l < 33; l++) start[l + 1] += start[l];
  const fill = start.slice(0, 33);
  for (let i = 0; i < n; i++) at[fill[keys[i].length]++] = i;
  const count = new Int32Array(129);
  for (let len = 1; len < 32; len++) {
    const lo = start[len], hi = start[len + 1];
    if (hi - lo < 48) {
      for (let i = lo + 1; i < hi; i++) {
        const x = at[i], kx = keys[x];
        let j = i - 1;
        while (j >= lo && keys[at[j]] > kx) {
          at[j + 1] = at[j];
          j--;
        }
        at[j + 1] = x;
      }
      continue;
    }
    // the group's chars, read from each string once, one row per position: the passes then read bytes in one
    // small array instead of every string again (string reads in shuffled order were most of the time)
    const m = hi - lo;
    const codes = new Uint8Array(len * m);
    for (let j = 0; j < m; j++) {
      const k = keys[at[lo + j]];
      for (let p = 0; p < len; p++) codes[p * m + j] = k.charCodeAt(p);
    }
    let perm = new Int32Array(m);
    for (let j = 0; j < m; j++) perm[j] = j;
    let next = new Int32Array(m);
    for (let p = len - 1; p >= 0; p--) {
      const row = p * m;
      count.fill(0);
      for (let i = 0; i < m; i++) count[codes[row + i] + 1]++; // a histogram: any order
      let one = false;
      for (let c = 1; c <= 128 && !one; c++) one = count[c] === m;
      if (one) continue; // every string of the group has the same char here
      for (let c = 0; c < 128; c++) count[c + 1] += count[c];
      for (let i = 0; i < m; i++) {
        const j = perm[i];
        next[count[codes[row + j]]++] = j;
      }
      const t = perm;
      perm = next;
      next = t;
    }
    const group = at.slice(lo, hi);
    for (let i = 0; i < m; i++) at[lo + i] = group[perm[i]];
  }
  return at;
}

const HAS_IS_WELL_FORMED = typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function';

/**
 * True when `s` has no lone surrogate, so its UTF-8 encoding decodes back to `s` itself (a lone surrogate is
 * encoded as U+FFFD, so a replica reading the bytes sees another string than the writer holds).
 */
export function isWellFormedString(s: string): boolean {
  // the engine's String.prototype.isWellFormed where there is one (ES2024): ~2x faster on short strings, ~7x on
  // 30 chars (measured, Node 20), and it answers a one-byte string without looking at its chars
  if (HAS_IS_WELL_FORMED) return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
  return isWellFormedStringLoop(s);
}

/** @internal `isWellFormedString` where the engine has no `isWellFormed` (exported for its test). */
export function isWellFormedStringLoop(s: string): boolean {
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
