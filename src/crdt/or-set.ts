/**
 * Optimized add-wins observed-remove set (ORSWOT; Bieniusa et al., Almeida et al. delta-state form).
 *
 * Each element holds the dots of the adds that created it; the causal context remembers every dot seen.
 * `remove(x)` drops x's dots (the context keeps them), so a removed element costs nothing; an add concurrent
 * with a remove brings a dot the remover never saw, so the add wins. Element identity is the element's
 * canonical msgpack bytes (`encodeValue`), so `{a: 1, b: 2}` and `{b: 2, a: 1}` are one element. Those bytes
 * are kept only as the element's map key, a latin1 string with one char per byte (`identityKey`): no byte
 * array per element, and string order is byte order, so sorting the keys sorts the elements canonically.
 *
 * Merge: the dots of this set that the other can affect (elements the other holds, and dots the other's
 * context covers) and all of the other's dots go to the kernel's `dotMerge` in one call, sorted by
 * (element name, replica, counter). The kernel's 64-bit "key" is a per-merge element number rather than a
 * hash of the element: the merge only needs a consistent order and equality, numbering is cheaper than
 * hashing every element (measured), and no two elements can ever collide; survivors map back to their
 * elements by full identity bytes.
 *
 * Deltas: `takeDelta()` returns everything that changed since the last take, local writes and merges alike
 * (the elements touched, with the removed dots and the merged contexts as the delta's context).
 *
 * Encoding: version, type tag, causal context, then elements sorted by bytes, each (bytes, dot count, dots
 * as (replica index in the context's sorted order, counter) sorted).
 */
import { DecodeError } from '../errors.js';
import { Reader, Writer } from '../codec/binary.js';
import { bytesCompare, bytesEqual, decodeValue, encodeValue, identityBytes, identityKey, valueIdentityKey } from '../codec/value.js';
import { CausalContext, DotList, inverseMap, mergeDots } from './causal-context.js';
import { CODEC_VERSION, CRDT_TYPE, type Crdt } from './types.js';
import { disposeInstance } from './dispose.js';

interface Elem {
  /** Flat dots [r0, c0, r1, c1, ...] in this instance's replica index space. */
  dots: number[];
  /** Scratch mark of the merge that staged this element. */
  mark?: number;
}

let mergeEpoch = 0;

export class ORSet<T = unknown> implements Crdt<ORSet<T>> {
  readonly replicaId: string;
  readonly typeTag: number = CRDT_TYPE.ORSet;
  /** @internal the causal context (dots seen). */
  readonly ctx = new CausalContext();
  private readonly me: number;
  private elems = new Map<string, Elem>();
  /** Pending delta: element identities touched locally, dots removed locally, since the last take. */
  private dirty = new Set<string>();
  private removed: number[] = [];
  /** Contexts merged in since the last take (a delta carries merged state too). */
  private merged: CausalContext | undefined;
  /** @internal called after every local mutation (ORMap uses it for nested values). */
  onLocalChange: (() => void) | undefined;

  constructor(replicaId: string) {
    this.me = this.ctx.intern(replicaId);
    this.replicaId = replicaId;
  }

  /** Add x (a new dot; replaces x's earlier dots, which this replica has observed). */
  add(x: T): void {
    const id = valueIdentityKey(x); // the canonical bytes as a key, without a byte array (ValidationError first)
    const e = this.elems.get(id);
    if (e !== undefined) {
      const c = this.ctx.next(this.me);
      const dots = e.dots;
      for (let i = 0; i < dots.length; i++) this.removed.push(dots[i]);
      if (dots.length === 2) {
        dots[0] = this.me;
        dots[1] = c;
      } else {
        e.dots = [this.me, c];
      }
    } else {
      this.elems.set(id, { dots: [this.me, this.ctx.next(this.me)] });
    }
    this.dirty.add(id);
    this.onLocalChange?.();
  }

  /** Remove x if present (only the adds this replica has observed; a concurrent add survives). */
  remove(x: T): boolean {
    const id = valueIdentityKey(x);
    const e = this.elems.get(id);
    if (e === undefined) return false;
    for (let i = 0; i < e.dots.length; i++) this.removed.push(e.dots[i]);
    this.elems.delete(id);
    this.dirty.add(id);
    this.onLocalChange?.();
    return true;
  }

  has(x: T): boolean {
    return this.elems.has(valueIdentityKey(x));
  }

  /** The elements, in canonical byte order (decoded fresh on each call). */
  values(): T[] {
    return [...this.elems.keys()].sort().map((id) => decodeValue(identityBytes(id)) as T);
  }

  get size(): number {
    return this.elems.size;
  }

  /**
   * Join `other` into this. Returns true when the state changed: a staged element lost a dot (the kernel
   * returns a subset of its dots, so a shorter list means a drop), a dot of the other survived (a dot new
   * to its element, since all my dots of every element the other holds are staged), or the context gained
   * a dot. Anything else leaves every element's dots and the context, hence the encoding, as they were.
   */
  merge(other: ORSet<T>): boolean {
    if (other === this) return false;
    const map = this.ctx.mapFrom(other.ctx);
    const inv = inverseMap(map, this.ctx.width);
    const octx = other.ctx;
    // stage: my elements the other can affect, and all of the other's
    const aElems: Elem[] = [];
    const aIds: string[] = [];
    if (!octx.isEmpty()) {
      const epoch = ++mergeEpoch;
      for (const id of other.elems.keys()) {
        const e = this.elems.get(id);
        if (e === undefined) continue;
        e.mark = epoch;
        aElems.push(e);
        aIds.push(id);
      }
      for (const [id, e] of this.elems) {
        if (e.mark === epoch) continue;
        for (let i = 0; i < e.dots.length; i += 2) {
          const o = inv[e.dots[i]];
          if (o >= 0 && octx.has(o, e.dots[i + 1])) {
            aElems.push(e);
            aIds.push(id);
            break;
          }
        }
      }
    }
    // Element names for the kernel: the merge needs only a consistent order and equality, so an element is
    // named by its position in `aElems` (fresh numbers past it for elements new here). No hashing.
    const names = new Map<Elem, number>();
    const a = new DotList(aElems.length);
    for (let k = 0; k < aElems.length; k++) {
      const e = aElems[k];
      names.set(e, k);
      for (let i = 0; i < e.dots.length; i += 2) a.push(k, 0, e.dots[i], e.dots[i + 1], k);
    }
    const bIds: string[] = [];
    const b = new DotList(other.elems.size);
    let fresh = aElems.length;
    for (const [id, e] of other.elems) {
      const mine = this.elems.get(id);
      const name = mine !== undefined ? names.get(mine)! : fresh++;
      const k = bIds.length;
      bIds.push(id);
      for (let i = 0; i < e.dots.length; i += 2) b.push(name, 0, map[e.dots[i]], e.dots[i + 1], k);
    }
    a.sort();
    b.sort();
    const { out, n } = mergeDots(a, this.ctx, b, octx, inv, map);
    // rebuild the staged elements' dots from the survivors
    const next: number[][] = aElems.map(() => []);
    const added = new Map<string, number[]>();
    for (let k = 0; k < n; k++) {
      const v = out[k];
      if (v >= 0) next[a.refs[v]].push(a.replicas[v], a.counters[v]);
      else {
        const j = -(v + 1);
        const id = bIds[b.refs[j]];
        let slot = added.get(id);
        if (slot === undefined) added.set(id, (slot = []));
        slot.push(b.replicas[j], b.counters[j]);
      }
    }
    let changed = added.size > 0;
    for (let k = 0; k < aElems.length; k++) {
      if (next[k].length !== aElems[k].dots.length) changed = true;
      aElems[k].dots = next[k];
      if (next[k].length === 0) this.elems.delete(aIds[k]);
    }
    for (const [id, dots] of added) {
      const e = this.elems.get(id);
      if (e !== undefined) e.dots.push(...dots);
      else this.elems.set(id, { dots });
    }
    if (this.ctx.mergeFrom(octx, map)) changed = true;
    for (const id of added.keys()) this.dirty.add(id);
    (this.merged ??= new CausalContext()).absorb(octx);
    return changed;
  }

  /**
   * @internal Drop the pending delta without building it: what `takeDelta()` then discards, at no cost (the
   * engine calls it after merging remote state, which it does not re-send).
   */
  discardDelta(): void {
    this.dirty.clear();
    this.removed = [];
    this.merged = undefined;
  }

  takeDelta(): ORSet<T> | null {
    if (this.dirty.size === 0 && this.removed.length === 0 && this.merged === undefined) return null;
    const d = new ORSet<T>(this.replicaId);
    const merged = this.merged;
    if (merged !== undefined) {
      // every element holding a dot the delta's context covers must come along, or the delta would remove it
      for (const [id, e] of this.elems) {
        for (let i = 0; i < e.dots.length; i += 2) if (merged.hasId(this.ctx.ids[e.dots[i]], e.dots[i + 1])) this.dirty.add(id);
      }
      d.ctx.absorb(merged);
      this.merged = undefined;
    }
    // the removed dots first: they are older than the dots of the touched elements, so the delta's context
    // mostly grows at its end (an append, not an insertion)
    // replica index here -> index in the delta, interned once per replica (not once per dot)
    const tmap = new Int32Array(this.ctx.width).fill(-1);
    const to = (r: number): number => (tmap[r] >= 0 ? tmap[r] : (tmap[r] = d.ctx.intern(this.ctx.ids[r])));
    const removed = this.removed;
    for (let i = 0; i < removed.length; i += 2) d.ctx.add(to(removed[i]), removed[i + 1]);
    for (const id of this.dirty) {
      const e = this.elems.get(id);
      if (e === undefined) continue;
      const dots: number[] = [];
      for (let i = 0; i < e.dots.length; i += 2) {
        const r = to(e.dots[i]);
        dots.push(r, e.dots[i + 1]);
        d.ctx.add(r, e.dots[i + 1]);
      }
      d.elems.set(id, { dots });
    }
    this.dirty.clear();
    this.removed = [];
    return d;
  }

  clone(): ORSet<T> {
    const c = new ORSet<T>(this.replicaId);
    copyContext(this.ctx, c.ctx);
    for (const [id, e] of this.elems) c.elems.set(id, { ...e, dots: e.dots.slice() });
    c.dirty = new Set(this.dirty);
    c.removed = this.removed.slice();
    c.merged = this.merged?.clone();
    return c;
  }

  encode(): Uint8Array {
    const w = new Writer(64);
    w.u8(CODEC_VERSION);
    w.u8(CRDT_TYPE.ORSet);
    const perm = this.ctx.write(w);
    const ids = [...this.elems.keys()].sort(); // code-unit order of latin1 keys = byte order of the elements
    w.varuint(ids.length);
    for (const id of ids) {
      w.latin1(id);
      writeDots(w, this.elems.get(id)!.dots, perm);
    }
    return w.finish();
  }

  static decode<T = unknown>(bytes: Uint8Array, replicaId = 'decoded'): ORSet<T> {
    const rd = new Reader(bytes);
    readHeader(rd, CRDT_TYPE.ORSet);
    const s = new ORSet<T>(replicaId);
    const map = s.ctx.read(rd);
    const n = rd.count(3);
    let prev: Uint8Array | undefined;
    for (let k = 0; k < n; k++) {
      const b = rd.bytes();
      if (prev !== undefined && bytesCompare(prev, b) >= 0) throw new DecodeError('set elements not strictly sorted');
      prev = b;
      checkCanonicalValue(b);
      const dots = readDots(rd, map, s.ctx);
      s.elems.set(identityKey(b), { dots });
    }
    rd.done();
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

/** @internal copy a context into an empty one, preserving index order. */
export function copyContext(from: CausalContext, to: CausalContext): void {
  for (const id of from.ids) to.intern(id);
  const c = from.clone();
  for (let r = 0; r < from.ids.length; r++) {
    const t = to.lookup(from.ids[r]);
    to.vv[t] = c.vv[r];
    to.cloud[t] = c.cloud[r];
  }
}

/** @internal the version byte and type tag. */
export function readHeader(rd: Reader, tag: number): void {
  const v = rd.u8();
  if (v !== CODEC_VERSION) throw new DecodeError(`unsupported codec version ${v}`);
  const t = rd.u8();
  if (t !== tag) throw new DecodeError(`type tag ${t}, expected ${tag}`);
}

/** @internal a dot list: count, then (encoded replica index, counter) sorted. */
export function writeDots(w: Writer, dots: number[], perm: Int32Array): void {
  const n = dots.length / 2;
  w.varuint(n);
  if (n === 1) {
    w.varuint(perm[dots[0]]);
    w.varuint(dots[1]);
    return;
  }
  const pairs: [number, number][] = [];
  for (let i = 0; i < dots.length; i += 2) pairs.push([perm[dots[i]], dots[i + 1]]);
  pairs.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  for (const [r, c] of pairs) {
    w.varuint(r);
    w.varuint(c);
  }
}

/** @internal reads a non-empty, strictly sorted dot list whose dots all lie in the context. */
export function readDots(rd: Reader, map: Int32Array, ctx: CausalContext): number[] {
  const n = rd.count(2);
  if (n === 0) throw new DecodeError('entry without dots');
  const dots: number[] = [];
  let pr = -1, pc = 0;
  for (let i = 0; i < n; i++) {
    const ri = rd.varuint();
    const c = rd.varuint();
    if (ri >= map.length) throw new DecodeError('dot replica index out of range');
    if (c < 1) throw new DecodeError('dot counter must be >= 1');
    if (ri < pr || (ri === pr && c <= pc)) throw new DecodeError('dots not strictly sorted');
    pr = ri;
    pc = c;
    const r = map[ri];
    if (!ctx.has(r, c)) throw new DecodeError('dot outside the causal context');
    dots.push(r, c);
  }
  return dots;
}

/** @internal checks that bytes are the canonical msgpack encoding of a value. */
export function checkCanonicalValue(b: Uint8Array): void {
  // fast paths: a positive fixint, or a short ASCII string in a fixstr (what encodeValue writes for them)
  if (b.length === 1 && b[0] <= 0x7f) return;
  if (b.length >= 1 && b[0] >= 0xa0 && b[0] <= 0xbf && b.length === 1 + (b[0] & 0x1f)) {
    let ascii = true;
    for (let i = 1; i < b.length && ascii; i++) if (b[i] >= 0x80) ascii = false;
    if (ascii) return;
  }
  let again: Uint8Array;
  try {
    again = encodeValue(decodeValue(b));
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    throw new DecodeError(`invalid value: ${(e as Error).message}`, { cause: e });
  }
  if (!bytesEqual(again, b)) throw new DecodeError('value bytes are not canonical');
}
