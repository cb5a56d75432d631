/**
 * Multi-value register: a dot store of (dot -> value). `set(v)` replaces every value this replica has
 * observed with one new dotted value; values written concurrently (neither saw the other's dot) are all kept
 * until a later causal `set` replaces them. `values()` lists them in canonical byte order, equal values once.
 *
 * Deltas: `takeDelta()` returns the current dotted values with a context of their dots, the dots replaced
 * locally and the contexts merged in since the last take (local writes and merges alike).
 *
 * Merge: both dot lists go to the kernel's `dotMerge` in one call (every dot under one key, hash 0).
 * Encoding: version, type tag, causal context, then the dotted values sorted by (replica in the context's
 * sorted order, counter), each (replica index, counter, value bytes). Value bytes are carried as written;
 * decode validates them (in place when the fast reader's subset, see `canonicalReadable`) and keeps a copy in
 * the codec's shared output slab, as `encodeValue` results are kept. `values()` never returns a view of those bytes
 * (`decodeValue` reads no value as a view of its input).
 */
import { DecodeError } from '../errors.js';
import { Reader, Writer } from '../codec/binary.js';
import { bytesCompare, bytesEqual, decodeValue, encodeValue } from '../codec/value.js';
import { canonicalReadable, copyToSlab } from '../codec/msgpack.js';
import { CausalContext, DotList, inverseMap, mergeDots } from './causal-context.js';
import { copyContext, readHeader } from './or-set.js';
import { checkMergeType, CODEC_VERSION, CRDT_TYPE, type Crdt } from './types.js';
import { disposeInstance } from './dispose.js';
import { checkReplicaId, DECODED_REPLICA_ID } from './replicas.js';

interface Entry {
  r: number;
  c: number;
  bytes: Uint8Array;
}

export class MVRegister<T = unknown> implements Crdt<MVRegister<T>> {
  readonly replicaId: string;
  readonly typeTag: number = CRDT_TYPE.MVRegister;
  /** @internal the causal context (dots seen). */
  readonly ctx = new CausalContext();
  private readonly me: number;
  private entries: Entry[] = [];
  private dirty = false;
  private removed: number[] = [];
  /** Contexts merged in since the last take (a delta carries merged state too). */
  private merged: CausalContext | undefined;
  /** @internal called after every local mutation (ORMap uses it for nested values). */
  onLocalChange: (() => void) | undefined;
  /** @internal called before every local mutation, which it may refuse by throwing (a parent ORMap checks it can record the write). */
  beforeLocalChange: ((before: true) => void) | undefined;
  /** @internal called after a `merge` that changed this instance (ORMap: a merge into a nested value's handle
   * is a local write of the map's key, like a mutation). */
  onMerged: (() => void) | undefined;

  constructor(replicaId: string) {
    this.me = this.ctx.intern(checkReplicaId(replicaId));
    this.replicaId = replicaId;
  }

  /** Replace every observed value with v. */
  set(v: T): void {
    const bytes = encodeValue(v);
    const c = this.ctx.checkNext(this.me); // taken below, once nothing can throw
    this.beforeLocalChange?.(true);
    for (const e of this.entries) this.removed.push(e.r, e.c);
    this.ctx.add(this.me, c);
    this.entries = [{ r: this.me, c, bytes }];
    this.dirty = true;
    this.onLocalChange?.();
  }

  /** All concurrent values, in canonical byte order, equal values once (decoded fresh on each call). */
  values(): T[] {
    const list = this.entries.map((e) => e.bytes).sort(bytesCompare);
    const out: T[] = [];
    for (let i = 0; i < list.length; i++) if (i === 0 || !bytesEqual(list[i - 1], list[i])) out.push(decodeValue(list[i]) as T);
    return out;
  }

  /**
   * Join `other` into this. Returns true when the state changed: one of my values was dropped (fewer of my
   * entries survive; the kernel returns a subset of them), a value of the other survived (its dot is not
   * among mine: a dot in both is reported as mine, unless the other holds it with larger value bytes), or the
   * context gained a dot. Otherwise the entries and
   * the context, hence the encoding, are as they were.
   */
  merge(other: MVRegister<T>): boolean {
    checkMergeType(this, other);
    if (other === this) return false;
    if (this.onMerged !== undefined) this.beforeLocalChange?.(true); // through a map's handle: see ORMap.hook
    const map = this.ctx.mapFrom(other.ctx);
    const inv = inverseMap(map, this.ctx.width);
    const a = new DotList(this.entries.length);
    this.entries.forEach((e, k) => a.push(0, 0, e.r, e.c, k));
    const b = new DotList(other.entries.length);
    other.entries.forEach((e, k) => b.push(0, 0, map[e.r], e.c, k));
    a.sort();
    b.sort();
    const { out, n } = mergeDots(a, this.ctx, b, other.ctx, inv, map);
    // A dot on both sides normally carries the same value, but a replica restored from an old backup can
    // reissue a dot its peers hold for another value: both sides then keep the larger bytes (as LWWRegister's
    // tie-break), so merge stays commutative and the replicas converge. twin[i]: b's index of a's dot i, or -1.
    const twin = new Int32Array(a.n).fill(-1);
    for (let i = 0, j = 0; i < a.n && j < b.n; ) {
      const d = a.replicas[i] - b.replicas[j] || a.counters[i] - b.counters[j];
      if (d < 0) i++;
      else if (d > 0) j++;
      else twin[i++] = j++;
    }
    const next: Entry[] = [];
    let kept = 0;
    let gained = false;
    for (let k = 0; k < n; k++) {
      const v = out[k];
      if (v >= 0) {
        const mine = this.entries[a.refs[v]];
        const j = twin[v];
        const theirs = j < 0 ? undefined : other.entries[b.refs[j]].bytes;
        if (theirs !== undefined && bytesCompare(theirs, mine.bytes) > 0) {
          gained = true;
          next.push({ r: mine.r, c: mine.c, bytes: theirs.slice() });
        } else {
          next.push(mine);
          kept++;
        }
      } else {
        gained = true;
        const j = -(v + 1);
        next.push({ r: b.replicas[j], c: b.counters[j], bytes: other.entries[b.refs[j]].bytes.slice() });
      }
    }
    let changed = gained || kept !== this.entries.length;
    this.entries = next;
    if (this.ctx.mergeFrom(other.ctx, map)) changed = true;
    (this.merged ??= new CausalContext()).absorb(other.ctx);
    if (changed) this.onMerged?.();
    return changed;
  }

  takeDelta(): MVRegister<T> | null {
    if (!this.dirty && this.removed.length === 0 && this.merged === undefined) return null;
    const d = new MVRegister<T>(this.replicaId);
    if (this.merged !== undefined) d.ctx.absorb(this.merged);
    this.merged = undefined;
    for (const e of this.entries) {
      const r = d.ctx.intern(this.ctx.ids[e.r]);
      d.ctx.add(r, e.c);
      d.entries.push({ r, c: e.c, bytes: e.bytes });
    }
    for (let i = 0; i < this.removed.length; i += 2) d.ctx.add(d.ctx.intern(this.ctx.ids[this.removed[i]]), this.removed[i + 1]);
    this.dirty = false;
    this.removed = [];
    return d;
  }

  clone(): MVRegister<T> {
    const c = new MVRegister<T>(this.replicaId);
    copyContext(this.ctx, c.ctx);
    c.entries = this.entries.map((e) => ({ r: c.ctx.lookup(this.ctx.ids[e.r]), c: e.c, bytes: e.bytes }));
    c.dirty = this.dirty;
    c.merged = this.merged?.clone();
    c.removed = [];
    for (let i = 0; i < this.removed.length; i += 2) c.removed.push(c.ctx.lookup(this.ctx.ids[this.removed[i]]), this.removed[i + 1]);
    return c;
  }

  encode(): Uint8Array {
    const w = new Writer(64);
    w.u8(CODEC_VERSION);
    w.u8(CRDT_TYPE.MVRegister);
    const perm = this.ctx.write(w);
    const list = this.entries.map((e) => ({ r: perm[e.r], c: e.c, bytes: e.bytes })).sort((x, y) => x.r - y.r || x.c - y.c);
    w.varuint(list.length);
    for (const e of list) {
      w.varuint(e.r);
      w.varuint(e.c);
      w.bytes(e.bytes);
    }
    return w.finish();
  }

  static decode<T = unknown>(bytes: Uint8Array, replicaId = DECODED_REPLICA_ID): MVRegister<T> {
    const rd = new Reader(bytes);
    readHeader(rd, CRDT_TYPE.MVRegister);
    const m = new MVRegister<T>(replicaId);
    const map = m.ctx.read(rd);
    const n = rd.count(4);
    let pr = -1, pc = 0;
    for (let k = 0; k < n; k++) {
      const ri = rd.varuint();
      const c = rd.varuint();
      if (ri >= map.length) throw new DecodeError('dot replica index out of range');
      if (c < 1) throw new DecodeError('dot counter must be >= 1');
      if (ri < pr || (ri === pr && c <= pc)) throw new DecodeError('dots not strictly sorted');
      pr = ri;
      pc = c;
      const r = map[ri];
      if (!m.ctx.has(r, c)) throw new DecodeError('dot outside the causal context');
      const b = rd.bytes();
      if (!canonicalReadable(b, 0, b.length)) decodeValue(b); // validates (the fast reader's subset is checked in place)
      m.entries.push({ r, c, bytes: copyToSlab(b, 0, b.length) });
    }
    rd.done();
    return m;
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
