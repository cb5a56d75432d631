/**
 * User values (register values, set elements, map values) are anything msgpackr encodes: strings, numbers,
 * booleans, null, Date, Uint8Array, plain objects and arrays.
 *
 * - `encodeValue` gives canonical bytes: plain-object keys are sorted (recursively), so two equal values give
 *   equal bytes whatever their key insertion order. Sets use these bytes as element identity.
 * - A value's bytes are produced once, by the replica that wrote it, and carried as bytes from then on
 *   (never re-encoded), so every replica holds identical bytes.
 * - `decodeValue` throws `DecodeError` on malformed bytes.
 */
import { Packr } from 'msgpackr';
import { DecodeError, ValidationError } from '../errors.js';

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
  if (v instanceof Date || v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map((x) => canonical(x, depth + 1));
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

/** Canonical msgpack bytes of a value. Throws ValidationError for values msgpack cannot carry faithfully. */
export function encodeValue(v: unknown): Uint8Array {
  const c = isFlat(v) ? v : canonical(v, 0);
  return packr.pack(c);
}

/** Decode bytes produced by `encodeValue`. Throws DecodeError on malformed input. */
export function decodeValue(bytes: Uint8Array): unknown {
  if (bytes.length === 0) throw new DecodeError('empty value');
  let v: unknown;
  try {
    v = packr.unpack(bytes);
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
  let s = '';
  for (let i = 0; i < bytes.length; i += 4096) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as unknown as number[]);
  return s;
}
