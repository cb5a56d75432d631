/**
 * Last-writer-wins register. Each write carries an HLC timestamp (src/clock/hlc.ts) and its writer's replica
 * id; the larger (timestamp, replica id) wins, replica ids compared as strings. Never wall-clock alone.
 *
 * Design choices:
 * - Clock injection: `new LWWRegister(id, { clock })` takes an `HLC` (deterministic simulation passes one
 *   built on a virtual time source: `new HLC({ now: () => scheduler.now() })`). Without one, all registers
 *   of the process share one default `HLC` on `Date.now`, so timestamps of one process never go backwards.
 * - A merge that adopts a remote write also feeds its timestamp to the local HLC (`receive`), so a later
 *   local `set` wins over everything this replica has seen. A remote timestamp further ahead of physical
 *   time than the clock's `maxDriftMs` makes the merge throw `ClockSkewError` and change nothing.
 * - Values are kept as canonical msgpack bytes, produced once by the writer. For the hot path, a `set` of a
 *   string (without lone surrogates), number (but -0), boolean or null keeps the value and encodes it on
 *   first need (encode/merge tie-break);
 *   objects are encoded at `set` time, so later mutation of the caller's object changes nothing.
 *   `set(undefined)` stores null (msgpack has no undefined; `get()` returns undefined only before any write).
 * - `decode` keeps a copy of the value bytes (in the codec's shared output slab, as `encodeValue` results are)
 *   and, when the fast reader is sure to read them (`canonicalReadable`: checked now, nothing built), decodes
 *   them on the first `get()`; any other value is decoded at once, so malformed bytes are a DecodeError
 *   from `decode` either way.
 * - A value read back from bytes never views them (msgpackr returns byte arrays as views of its input, so the
 *   slow path decodes a copy): writing into a Uint8Array that `get()` returned leaves the register unchanged.
 * - `encode` writes one right-sized array in place (a Writer's scratch plus final copy cost more than the
 *   bytes: measured); a non-ASCII writer id goes through a Writer.
 * - Equal (timestamp, replica) with different bytes cannot come from honest replicas (an HLC never issues a
 *   timestamp twice); merge then keeps the larger bytes so merge stays commutative even on hostile input.
 * - Canonical encoding: version, type tag, then 0 (never written) or 1, timestamp (varuint), writer id,
 *   value bytes.
 */
import { Reader, Writer, outputArray } from '../codec/binary.js';
import { bytesCompare, decodeValue, encodeValue, readsBackAsGiven } from '../codec/value.js';
import { canonicalReadable, copyToSlab } from '../codec/msgpack.js';
import { DecodeError } from '../errors.js';
import { HLC, type Timestamp } from '../clock/hlc.js';
import { readHeader } from './g-set.js';
import { checkMergeType, CODEC_VERSION, CRDT_TYPE, type Crdt } from './types.js';
import { disposeInstance } from './dispose.js';
import { checkReplicaId, DECODED_REPLICA_ID } from './replicas.js';

export interface LWWRegisterOptions {
  /** The hybrid logical clock that stamps local writes (default: a process-wide HLC on Date.now). */
  clock?: HLC;
}

let defaultClock: HLC | undefined;
/** The process-wide HLC used by registers created without a clock. */
export function defaultHlc(): HLC {
  return (defaultClock ??= new HLC());
}

export class LWWRegister<T = unknown> implements Crdt<LWWRegister<T>> {
  readonly typeTag: number = CRDT_TYPE.LWWRegister;
  readonly replicaId: string;
  /**
   * Called after each local mutation (set by the sync engine when the instance is registered, so a direct
   * write is pushed like one made through `update`). Leave unset.
   */
  onLocalChange: (() => void) | undefined;
  readonly clock: HLC;
  private ts: Timestamp = 0;
  private writerId = '';
  private has = false;
  /** canonical bytes of the value, or null while only `val` is known (lazy primitive) */
  private bytes: Uint8Array | null = null;
  private val: unknown = undefined;
  private valKnown = false;
  private dirty = false;

  constructor(replicaId: string, options: LWWRegisterOptions = {}) {
    this.replicaId = checkReplicaId(replicaId);
    this.clock = options.clock ?? defaultHlc();
  }

  /** Write v with a fresh HLC timestamp. ValidationError for values msgpack cannot carry (nothing changes). */
  set(v: T): void {
    // kept as given only when every replica reads its bytes back the same (see readsBackAsGiven); anything
    // else is encoded now and read back from the bytes, like objects
    if (readsBackAsGiven(v)) {
      this.bytes = null;
      this.val = v;
    } else if (v === undefined) {
      this.bytes = null;
      this.val = null;
    } else {
      const b = encodeValue(v); // throws before any change
      this.bytes = b;
      this.valKnown = false;
      this.val = undefined;
      this.ts = this.clock.now();
      this.writerId = this.replicaId;
      this.has = true;
      this.dirty = true;
      this.onLocalChange?.();
      return;
    }
    this.valKnown = true;
    this.ts = this.clock.now();
    this.writerId = this.replicaId;
    this.has = true;
    this.dirty = true;
    this.onLocalChange?.();
  }

  /** The current value, or undefined before any write. */
  get(): T | undefined {
    if (!this.has) return undefined;
    if (!this.valKnown) {
      this.val = decodeValue(this.bytes!);
      this.valKnown = true;
    }
    return this.val as T;
  }

  /** HLC timestamp of the current value (0 before any write). */
  get timestamp(): Timestamp {
    return this.ts;
  }

  /** Replica id that wrote the current value ('' before any write). */
  get writer(): string {
    return this.writerId;
  }

  /**
   * Keep the larger of the two writes. Returns true when the other's write replaced this one (a larger
   * timestamp, writer or, on a full tie, value bytes: each changes the encoding), false when this write is
   * kept (equal or larger). ClockSkewError (nothing changes) if the winner is too far ahead.
   */
  merge(other: LWWRegister<T>): boolean {
    checkMergeType(this, other);
    if (!other.has) return false;
    if (this.has) {
      if (other.ts < this.ts) return false;
      if (other.ts === this.ts) {
        if (other.writerId < this.writerId) return false;
        if (other.writerId === this.writerId && bytesCompare(other.valueBytes(), this.valueBytes()) <= 0) return false;
      }
    }
    if (other.ts > this.clock.current) this.clock.receive(other.ts);
    this.ts = other.ts;
    this.writerId = other.writerId;
    this.has = true;
    this.bytes = other.bytes;
    this.val = other.val;
    this.valKnown = other.valKnown;
    this.dirty = true;
    return true;
  }

  takeDelta(): LWWRegister<T> | null {
    if (!this.dirty) return null;
    this.dirty = false;
    return this.copy();
  }

  clone(): LWWRegister<T> {
    const c = this.copy();
    c.dirty = this.dirty;
    return c;
  }

  encode(): Uint8Array {
    if (!this.has) return new Uint8Array([CODEC_VERSION, this.typeTag, 0]);
    const id = this.writerId;
    const n = id.length;
    const v = this.valueBytes();
    const len = v.length;
    if (n >= 0x80 || !(this.ts <= Number.MAX_SAFE_INTEGER)) return this.encodeWithWriter();
    // one right-sized array written in place (a Writer's scratch and final copy cost more than the bytes)
    const size = 3 + varuintLen(this.ts) + 1 + n + varuintLen(len) + len;
    // an output array (binary.ts: pooled on Node, where a fresh array over 64 bytes costs more than the bytes)
    const out = outputArray(size);
    out[0] = CODEC_VERSION;
    out[1] = this.typeTag;
    out[2] = 1;
    let p = putVaruint(out, 3, this.ts);
    out[p++] = n;
    for (let i = 0; i < n; i++) {
      const c = id.charCodeAt(i);
      if (c >= 0x80) return this.encodeWithWriter(); // not ASCII: its UTF-8 is another length
      out[p++] = c;
    }
    p = putVaruint(out, p, len);
    if (len <= 64) for (let i = 0; i < len; i++) out[p + i] = v[i];
    else out.set(v, p);
    return out;
  }

  /** `encode` through a Writer (the general case: a non-ASCII writer id). */
  private encodeWithWriter(): Uint8Array {
    const w = new Writer(32 + this.writerId.length * 3);
    w.u8(CODEC_VERSION);
    w.u8(this.typeTag);
    w.u8(1);
    w.varuint(this.ts);
    w.string(this.writerId);
    w.bytes(this.valueBytes());
    return w.finish();
  }

  /** Decode canonical bytes (DecodeError on any malformed input); `replicaId` and `options.clock` as in the constructor. */
  static decode<T = unknown>(bytes: Uint8Array, replicaId = DECODED_REPLICA_ID, options: LWWRegisterOptions = {}): LWWRegister<T> {
    const r = new Reader(bytes);
    readHeader(r, CRDT_TYPE.LWWRegister);
    const reg = new LWWRegister<T>(replicaId, options);
    const flag = r.u8();
    if (flag === 1) {
      const ts = r.varuint();
      const writer = r.string();
      const n = r.varuint();
      r.need(n);
      const at = r.pos;
      r.pos += n;
      r.done();
      // bytes the fast reader is sure to read are decoded on first get(); others now (DecodeError here)
      const lazy = canonicalReadable(bytes, at, at + n);
      const b = copyToSlab(bytes, at, at + n);
      if (lazy) reg.valKnown = false;
      else {
        reg.val = decodeValue(b);
        reg.valKnown = true;
      }
      reg.bytes = b;
      reg.ts = ts;
      reg.writerId = writer;
      reg.has = true;
    } else if (flag === 0) {
      r.done();
    } else {
      throw new DecodeError(`bad register flag ${flag}`);
    }
    return reg;
  }

  /** @internal canonical bytes of the value (encoded on first need for lazily kept primitives). */
  valueBytes(): Uint8Array {
    return (this.bytes ??= encodeValue(this.val));
  }

  private copy(): LWWRegister<T> {
    const c = new LWWRegister<T>(this.replicaId, { clock: this.clock });
    c.ts = this.ts;
    c.writerId = this.writerId;
    c.has = this.has;
    c.bytes = this.bytes;
    c.val = this.val;
    c.valKnown = this.valKnown;
    return c;
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

/** Writer.varuint's bytes of v (a safe integer >= 0) at out[p]; returns the end. */
function putVaruint(out: Uint8Array, p: number, v: number): number {
  while (v >= 0x80000000) {
    out[p++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  while (v >= 0x80) {
    out[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[p++] = v;
  return p;
}

/** Bytes of putVaruint(v). */
function varuintLen(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  if (v < 0x800000000) return 5;
  if (v < 0x40000000000) return 6;
  if (v < 0x2000000000000) return 7;
  return 8;
}
