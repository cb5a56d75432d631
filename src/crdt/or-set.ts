/**
 * Optimized add-wins observed-remove set (ORSWOT; Bieniusa et al., Almeida et al. delta-state form).
 *
 * Each element holds the dots of the adds that created it; the causal context remembers every dot seen.
 * `remove(x)` drops x's dots (the context keeps them), so a removed element costs nothing; an add concurrent
 * with a remove brings a dot the remover never saw, so the add wins. Element identity is the element's
 * canonical msgpack bytes (`encodeValue`), so `{a: 1, b: 2}` and `{b: 2, a: 1}` are one element.
 *
 * State: two maps, element -> dots. Strings are keyed by the string itself (`wellFormedString`: a lone
 * surrogate is encoded as U+FFFD, so it is keyed as one), which is exactly byte identity for strings and
 * builds no key on a write (a string keeps its own hash). Every other value is keyed by its canonical bytes as
 * a latin1 string, one char per byte (`valueIdentityKey`): no byte array per element, and string order is byte
 * order. An element's dots are one small integer when it has one dot that packs (the common case: replica
 * index < 64, counter < 2^24), else a flat array; either is replaced, never mutated, on a change, so a clone
 * shares them. The pending delta lists the keys written since the last take (a key repeats at most until the
 * list outgrows twice the set, when it is deduplicated). About 70 B per element for 100k short strings.
 *
 * Canonical order: a set of short ASCII strings only (the common case) sorts them by (length, chars), which
 * is the byte order of their fixstr encodings, and keeps that order until an element comes or goes; any other
 * set sorts the identity keys of all its elements (a string's key is computed then). Encoding such a set
 * (one packed dot each, as usual) writes its elements through a small scratch buffer and copies them once.
 *
 * Merge: the dots of this set that the other can affect (elements the other holds, and dots the other's
 * context covers) and all of the other's dots go to the kernel's `dotMerge` in one call, sorted by
 * (element name, replica, counter). The kernel's 64-bit "key" is a per-merge element number rather than a
 * hash of the element: the merge only needs a consistent order and equality, numbering is cheaper than
 * hashing every element (measured), and no two elements can ever collide; survivors map back to their
 * elements by their keys.
 *
 * Deltas: `takeDelta()` returns everything that changed since the last take, local writes and merges alike
 * (the elements touched, with the removed dots and the merged contexts as the delta's context).
 *
 * Encoding: version, type tag, causal context, then elements sorted by bytes, each (bytes, dot count, dots
 * as (replica index in the context's sorted order, counter) sorted). Decoding reads each element in place: a
 * short ASCII fixstr becomes its string directly, anything else must read back to the same bytes (decoded and
 * encoded again) or the input is refused. A decoded state keeps its elements as the sorted lists it read until
 * a use needs the maps (a merge only walks the other side's elements, and encode of a short-ASCII set reads
 * the lists), so a decoded delta that is merged and dropped never fills maps.
 */
import { DecodeError } from '../errors.js';
import { Reader, Writer, asciiAt } from '../codec/binary.js';
import {
  bytesEqual,
  shortAsciiOrder,
  decodeValue,
  encodeValue,
  identityBytes,
  identityKey,
  isShortAscii,
  valueIdentityKey,
  wellFormedString,
} from '../codec/value.js';
import { CausalContext, DotList, SMALL_DOTS, assertDistinctDots, inverseMap, mergeDots } from './causal-context.js';
import { checkMergeType, CODEC_VERSION, CRDT_TYPE, type Crdt } from './types.js';
import { disposeInstance } from './dispose.js';
import { nextElem, readHeader } from './g-set.js';
import { checkReplicaId, DECODED_REPLICA_ID } from './replicas.js';

export { readHeader };

/**
 * An element's dots, never mutated in place (a change stores a new value, so instances may share them): one
 * dot packed in a small integer, or else a flat array `[r0, c0, r1, c1, ...]` (several dots, or one that does
 * not pack). Packed (V8 small integers, which are never allocated, span -2^30 .. 2^30 - 1):
 * - `replica * 2^24 + counter` for replica index < 64 and counter < 2^24;
 * - else `-1 - (counter * 4 + replica)` for replica index < 4 and counter < 2^28: the first replicas of a set
 *   (its own replica is the first) keep packed dots until 268M ops instead of 16.7M.
 */
type Dots = number | number[];

const PACK_SHIFT = 24;
const PACK_MASK = 0xffffff;
const WIDE_LIMIT = 2 ** 28;

/** One dot as `Dots`. */
function dot(r: number, c: number): Dots {
  if (r < 64 && c <= PACK_MASK) return (r << PACK_SHIFT) | c;
  return r < 4 && c < WIDE_LIMIT ? -1 - (c * 4 + r) : [r, c];
}

/** Replica index of a packed dot. */
function dotR(d: number): number {
  return d >= 0 ? d >>> PACK_SHIFT : (-1 - d) & 3;
}

/** Counter of a packed dot. */
function dotC(d: number): number {
  return d >= 0 ? d & PACK_MASK : (-1 - d) >>> 2;
}

/** A flat dot list as `Dots` (packed when it is one dot that packs). */
function fromFlat(flat: number[]): Dots {
  return flat.length === 2 ? dot(flat[0], flat[1]) : flat;
}

/** The dots as a flat list (a new array). */
function toFlat(d: Dots): number[] {
  return typeof d === 'number' ? [dotR(d), dotC(d)] : d.slice();
}

function dotCount(d: Dots): number {
  return typeof d === 'number' ? 1 : d.length / 2;
}

/** The pending-delta keys once each, those still present (run when the list outgrows twice the set: bounded). */
function compactDirty(keys: string[], table: Map<string, Dots>): string[] {
  const out: string[] = [];
  for (const k of new Set(keys)) if (table.has(k)) out.push(k);
  return out;
}

export class ORSet<T = unknown> implements Crdt<ORSet<T>> {
  readonly replicaId: string;
  readonly typeTag: number = CRDT_TYPE.ORSet;
  /** @internal the causal context (dots seen). */
  readonly ctx = new CausalContext();
  private readonly me: number;
  /** String elements, keyed by the string (`wellFormedString`): no key built, the string's hash is its own. */
  private strsMap = new Map<string, Dots>();
  /** Every other element, keyed by its identity key (canonical bytes, one char per byte). */
  private objsMap = new Map<string, Dots>();
  /**
   * A decoded state not yet put in the maps: its elements in canonical order, keyed as the maps key them.
   * A decoded delta is mostly merged and dropped, and a merge only walks the other side's elements, so
   * filling maps for it would be wasted; the first use that needs them fills them (`thaw`).
   */
  private frozen: Frozen | null = null;
  /** Pending delta: keys of elements added locally or by a merge since the last take (may repeat). */
  private dirtyStrs: string[] = [];
  private dirtyObjs: string[] = [];
  /**
   * The string elements in canonical order, kept while every element is a short ASCII string (the common
   * case) and none came or went since it was sorted (`undefined` otherwise).
   */
  private sorted: string[] | undefined;
  /**
   * Where each of `sorted` stands in `strs`'s insertion order (which a write to a present element keeps), so
   * encode reads the dots in one pass over the map instead of a lookup each; null when it is `sorted`'s own
   * order (a decoded set).
   */
  private sortedAt: Int32Array | null = null;
  /** Dots removed locally since the last take (flat). */
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

  private get strs(): Map<string, Dots> {
    if (this.frozen !== null) this.thaw();
    return this.strsMap;
  }

  private get objs(): Map<string, Dots> {
    if (this.frozen !== null) this.thaw();
    return this.objsMap;
  }

  private thaw(): void {
    const f = this.frozen!;
    this.frozen = null;
    for (let i = 0; i < f.keys.length; i++) (f.isStr === null || f.isStr[i] === 1 ? this.strsMap : this.objsMap).set(f.keys[i], f.dots[i]);
    // the maps' insertion order is the canonical order
    if (f.simple) {
      this.sorted = f.keys;
      this.sortedAt = null;
    }
  }

  /** The elements as lists per map (strings, others), keys and dots, without filling maps for a decoded state. */
  private lists(): { keys: [string[], string[]]; dots: [Dots[], Dots[]] } {
    const f = this.frozen;
    if (f === null) {
      return { keys: [[...this.strsMap.keys()], [...this.objsMap.keys()]], dots: [[...this.strsMap.values()], [...this.objsMap.values()]] };
    }
    if (f.isStr === null) return { keys: [f.keys, []], dots: [f.dots, []] };
    const out: { keys: [string[], string[]]; dots: [Dots[], Dots[]] } = { keys: [[], []], dots: [[], []] };
    for (let i = 0; i < f.keys.length; i++) {
      const t = f.isStr[i] === 1 ? 0 : 1;
      out.keys[t].push(f.keys[i]);
      out.dots[t].push(f.dots[i]);
    }
    return out;
  }

  /** Add x (a new dot; replaces x's earlier dots, which this replica has observed). */
  add(x: T): void {
    if (typeof x === 'string') {
      const k = wellFormedString(x);
      this.beforeLocalChange?.(true);
      const d = this.dirtyStrs;
      // a repeated write of the last written element is listed once
      if (this.addIn(this.strs, k) || d.length === 0 || d[d.length - 1] !== k) {
        d.push(k);
        if (d.length > 2 * this.strs.size + 64) this.dirtyStrs = compactDirty(d, this.strs);
      }
    } else {
      const k = valueIdentityKey(x); // the canonical bytes as a key, without a byte array (ValidationError first)
      this.beforeLocalChange?.(true);
      const d = this.dirtyObjs;
      if (this.addIn(this.objs, k) || d.length === 0 || d[d.length - 1] !== k) {
        d.push(k);
        if (d.length > 2 * this.objs.size + 64) this.dirtyObjs = compactDirty(d, this.objs);
      }
    }
    this.onLocalChange?.();
  }

  /** A new dot for element k; true when k is new here. */
  private addIn(table: Map<string, Dots>, k: string): boolean {
    const old = table.get(k);
    table.set(k, dot(this.me, this.ctx.next(this.me)));
    if (old === undefined) {
      this.sorted = undefined;
      return true;
    }
    this.retire(old);
    return false;
  }

  /** Record an element's dots as removed (the delta's context carries them). */
  private retire(d: Dots): void {
    const removed = this.removed;
    if (typeof d === 'number') removed.push(dotR(d), dotC(d));
    else for (let i = 0; i < d.length; i++) removed.push(d[i]);
  }

  /** Remove x if present (only the adds this replica has observed; a concurrent add survives). */
  remove(x: T): boolean {
    const table = typeof x === 'string' ? this.strs : this.objs;
    const k = typeof x === 'string' ? wellFormedString(x) : valueIdentityKey(x);
    const d = table.get(k);
    if (d === undefined) return false;
    this.beforeLocalChange?.(true);
    this.retire(d);
    table.delete(k);
    this.sorted = undefined;
    this.onLocalChange?.();
    return true;
  }

  has(x: T): boolean {
    return typeof x === 'string' ? this.strs.has(wellFormedString(x)) : this.objs.has(valueIdentityKey(x));
  }

  /** The elements, in canonical byte order (objects decoded fresh on each call). */
  values(): T[] {
    const o = this.order();
    const out: T[] = [];
    for (let i = 0; i < o.keys.length; i++) out.push((i < o.strs ? o.keys[i] : decodeValue(identityBytes(o.keys[i]))) as T);
    return out;
  }

  get size(): number {
    return this.frozen !== null ? this.frozen.keys.length : this.strsMap.size + this.objsMap.size;
  }

  /**
   * The elements in canonical byte order, with their dots. Common case, every element a short ASCII string:
   * `keys` are the strings (bytes: the fixstr header, then the chars) and `strs` is their count. Otherwise
   * `keys` are all identity keys and `strs` is 0.
   */
  private order(): { keys: string[]; dots: Dots[]; strs: number } {
    const f = this.frozen;
    if (f !== null && f.simple) return { keys: f.keys, dots: f.dots, strs: f.keys.length };
    let keys = this.sorted;
    if (keys === undefined && this.objs.size === 0) {
      const all = [...this.strs.keys()];
      let simple = true;
      for (let i = 0; i < all.length && simple; i++) simple = isShortAscii(all[i]);
      if (simple) {
        const at = shortAsciiOrder(all);
        keys = this.sorted = [];
        for (let i = 0; i < at.length; i++) keys.push(all[at[i]]);
        this.sortedAt = at;
      }
    }
    if (keys !== undefined) {
      const inserted = [...this.strs.values()];
      const at = this.sortedAt;
      let dots = inserted;
      if (at !== null) {
        dots = [];
        for (let i = 0; i < at.length; i++) dots.push(inserted[at[i]]);
      }
      return { keys, dots, strs: keys.length };
    }
    const items: [string, Dots][] = [];
    for (const [s, d] of this.strs) items.push([valueIdentityKey(s), d]);
    for (const [k, d] of this.objs) items.push([k, d]);
    items.sort((x, y) => (x[0] < y[0] ? -1 : 1)); // code-unit order of latin1 keys = byte order
    return { keys: items.map((x) => x[0]), dots: items.map((x) => x[1]), strs: 0 };
  }

  /**
   * Join `other` into this. Returns true when the state changed: a staged element lost a dot (the kernel
   * returns a subset of its dots, so a shorter list means a drop), a dot of the other survived (a dot new
   * to its element, since all my dots of every element the other holds are staged), or the context gained
   * a dot. Anything else leaves every element's dots and the context, hence the encoding, as they were.
   */
  merge(other: ORSet<T>): boolean {
    checkMergeType(this, other);
    if (other === this) return false;
    if (this.onMerged !== undefined) this.beforeLocalChange?.(true); // through a map's handle: see ORMap.hook
    const map = this.ctx.mapFrom(other.ctx);
    const inv = inverseMap(map, this.ctx.width);
    const octx = other.ctx;
    const tables = [this.strs, this.objs];
    const { keys: oKeys, dots: oDots } = other.lists();
    // stage: my elements the other can affect, and all of the other's. Element names for the kernel: the
    // merge needs only a consistent order and equality, so an element is named by its staging position
    // (fresh numbers past them for elements new here). No hashing.
    const aTable: number[] = [];
    const aKeys: string[] = [];
    const aDots: Dots[] = [];
    const names = [new Map<string, number>(), new Map<string, number>()];
    if (!octx.isEmpty()) {
      let covered = 0; // dots of the elements staged so far that the other's context has
      for (let t = 0; t < 2; t++) {
        const mine = tables[t];
        const named = names[t];
        for (const k of oKeys[t]) {
          const d = mine.get(k);
          if (d === undefined) continue;
          named.set(k, aKeys.length);
          aTable.push(t);
          aKeys.push(k);
          aDots.push(d);
          covered += coveredCount(d, inv, octx);
        }
      }
      // then my other elements holding a dot the other has seen (it removed them, or it holds them under
      // another element, which cannot happen: no two elements share a dot). Such a dot is in both contexts, so
      // once that many are staged none is left: a small delta into a big set mostly scans nothing.
      let left = this.ctx.sharedCount(octx, map) - covered;
      for (let t = 0; t < 2 && left > 0; t++) {
        const named = names[t];
        for (const [k, d] of tables[t]) {
          const c = coveredCount(d, inv, octx);
          if (c === 0 || named.has(k)) continue;
          named.set(k, aKeys.length);
          aTable.push(t);
          aKeys.push(k);
          aDots.push(d);
          if ((left -= c) <= 0) break;
        }
      }
    }
    const a = new DotList(aKeys.length);
    for (let k = 0; k < aKeys.length; k++) {
      const d = aDots[k];
      if (typeof d === 'number') a.push(k, 0, dotR(d), dotC(d), k);
      else for (let i = 0; i < d.length; i += 2) a.push(k, 0, d[i], d[i + 1], k);
    }
    const bTable: number[] = [];
    const bKeys: string[] = [];
    const b = new DotList(other.size);
    let fresh = aKeys.length;
    for (let t = 0; t < 2; t++) {
      const named = names[t];
      const keys = oKeys[t], dotsOf = oDots[t];
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i], d = dotsOf[i];
        const name = named.get(k) ?? fresh++;
        const ref = bKeys.length;
        bTable.push(t);
        bKeys.push(k);
        if (typeof d === 'number') b.push(name, 0, map[dotR(d)], dotC(d), ref);
        else for (let i = 0; i < d.length; i += 2) b.push(name, 0, map[d[i]], d[i + 1], ref);
      }
    }
    a.sort();
    b.sort();
    const { out, n } = mergeDots(a, this.ctx, b, octx, inv, map);
    // rebuild the staged elements' dots from the survivors
    const next: number[][] = aKeys.map(() => []);
    const added = new Map<number, number[]>(); // b's ref -> its surviving dots
    for (let k = 0; k < n; k++) {
      const v = out[k];
      if (v >= 0) next[a.refs[v]].push(a.replicas[v], a.counters[v]);
      else {
        const j = -(v + 1);
        const ref = b.refs[j];
        let slot = added.get(ref);
        if (slot === undefined) added.set(ref, (slot = []));
        slot.push(b.replicas[j], b.counters[j]);
      }
    }
    let changed = added.size > 0;
    for (let k = 0; k < aKeys.length; k++) {
      const table = tables[aTable[k]];
      const nk = next[k];
      if (nk.length !== 2 * dotCount(aDots[k])) changed = true;
      if (nk.length > 0) table.set(aKeys[k], fromFlat(nk));
      else {
        table.delete(aKeys[k]);
        this.sorted = undefined;
      }
    }
    for (const [ref, dots] of added) {
      const t = bTable[ref];
      const table = tables[t];
      const k = bKeys[ref];
      const e = table.get(k);
      if (e === undefined) this.sorted = undefined;
      table.set(k, e === undefined ? fromFlat(dots) : toFlat(e).concat(dots));
      (t === 0 ? this.dirtyStrs : this.dirtyObjs).push(k);
    }
    if (this.ctx.mergeFrom(octx, map)) changed = true;
    if (this.dirtyStrs.length > 2 * this.strs.size + 64) this.dirtyStrs = compactDirty(this.dirtyStrs, this.strs);
    if (this.dirtyObjs.length > 2 * this.objs.size + 64) this.dirtyObjs = compactDirty(this.dirtyObjs, this.objs);
    (this.merged ??= new CausalContext()).absorb(octx);
    if (changed) this.onMerged?.();
    return changed;
  }

  /**
   * @internal Drop the pending delta without building it: what `takeDelta()` then discards, at no cost (the
   * engine calls it after merging remote state, which it does not re-send).
   */
  discardDelta(): void {
    this.dirtyStrs = [];
    this.dirtyObjs = [];
    this.removed = [];
    this.merged = undefined;
  }

  takeDelta(): ORSet<T> | null {
    if (this.dirtyStrs.length === 0 && this.dirtyObjs.length === 0 && this.removed.length === 0 && this.merged === undefined) return null;
    const d = new ORSet<T>(this.replicaId);
    const merged = this.merged;
    const ids = this.ctx.ids;
    if (merged !== undefined) {
      // every element holding a dot the delta's context covers must come along, or the delta would remove it
      for (let t = 0; t < 2; t++) {
        const dirty = t === 0 ? this.dirtyStrs : this.dirtyObjs;
        for (const [k, e] of t === 0 ? this.strs : this.objs) {
          if (typeof e === 'number') {
            if (merged.hasId(ids[dotR(e)], dotC(e))) dirty.push(k);
          } else {
            for (let i = 0; i < e.length; i += 2) {
              if (merged.hasId(ids[e[i]], e[i + 1])) {
                dirty.push(k);
                break;
              }
            }
          }
        }
      }
      d.ctx.absorb(merged);
      this.merged = undefined;
    }
    // the removed dots first: they are older than the dots of the touched elements, so the delta's context
    // mostly grows at its end (an append, not an insertion)
    // replica index here -> index in the delta, interned once per replica (not once per dot)
    const dctx = d.ctx;
    const tmap = new Int32Array(this.ctx.width).fill(-1);
    const to = (r: number): number => (tmap[r] >= 0 ? tmap[r] : (tmap[r] = dctx.intern(ids[r])));
    const removed = this.removed;
    for (let i = 0; i < removed.length; i += 2) dctx.add(to(removed[i]), removed[i + 1]);
    for (let t = 0; t < 2; t++) {
      const table = t === 0 ? this.strs : this.objs;
      const dtable = t === 0 ? d.strs : d.objs;
      for (const k of t === 0 ? this.dirtyStrs : this.dirtyObjs) {
        const e = table.get(k);
        if (e === undefined || dtable.has(k)) continue;
        if (typeof e === 'number') {
          const r = to(dotR(e)), c = dotC(e);
          dctx.add(r, c);
          dtable.set(k, dot(r, c));
        } else {
          const dots: number[] = [];
          for (let i = 0; i < e.length; i += 2) {
            const r = to(e[i]);
            dots.push(r, e[i + 1]);
            dctx.add(r, e[i + 1]);
          }
          dtable.set(k, fromFlat(dots));
        }
      }
    }
    this.dirtyStrs = [];
    this.dirtyObjs = [];
    this.removed = [];
    return d;
  }

  clone(): ORSet<T> {
    const c = new ORSet<T>(this.replicaId);
    copyContext(this.ctx, c.ctx);
    if (this.frozen !== null) this.thaw(); // once here, not once per copy
    c.strsMap = new Map(this.strsMap); // dots are never mutated in place, so sharing them is safe
    c.objsMap = new Map(this.objsMap);
    c.sorted = this.sorted; // never mutated: a change replaces it
    c.sortedAt = this.sortedAt; // the copy keeps the insertion order
    c.dirtyStrs = this.dirtyStrs.slice();
    c.dirtyObjs = this.dirtyObjs.slice();
    c.removed = this.removed.slice();
    c.merged = this.merged?.clone();
    return c;
  }

  encode(): Uint8Array {
    const w = new Writer(64);
    w.u8(CODEC_VERSION);
    w.u8(CRDT_TYPE.ORSet);
    const perm = this.ctx.write(w);
    const { keys, dots, strs } = this.order();
    w.varuint(keys.length);
    if (strs > 0 && writeSmall(w, keys, dots, perm)) return w.finish();
    for (let i = 0; i < strs; i++) {
      // a short ASCII string: length, fixstr header, the chars
      const s = keys[i];
      const n = s.length;
      w.ensure(n + 2);
      w.u8(n + 1);
      w.u8(0xa0 | n);
      for (let j = 0; j < n; j++) w.u8(s.charCodeAt(j));
      writeDotsOf(w, dots[i], perm);
    }
    for (let i = strs; i < keys.length; i++) {
      w.latin1(keys[i]);
      writeDotsOf(w, dots[i], perm);
    }
    return w.finish();
  }

  static decode<T = unknown>(bytes: Uint8Array, replicaId = DECODED_REPLICA_ID): ORSet<T> {
    const rd = new Reader(bytes);
    readHeader(rd, CRDT_TYPE.ORSet);
    const s = new ORSet<T>(replicaId);
    const map = s.ctx.read(rd);
    const n = rd.count(3);
    const buf = rd.buf;
    let prev = -1, prevLen = 0;
    const keys: string[] = []; // as the maps key them, in canonical order
    const dotsOf: Dots[] = [];
    let isStr: Uint8Array | null = null; // null while every element is a string
    let simple = true; // every element a short ASCII string
    for (let k = 0; k < n; k++) {
      const p = nextElem(rd, prev, prevLen);
      const len = rd.pos - p;
      prev = p;
      prevLen = len;
      const h = buf[p];
      let key: string | undefined;
      let str = true;
      if (len === 1 && h < 0x80) {
        // a positive fixint
        key = String.fromCharCode(h);
        str = false;
      } else {
        // fast path: a short ASCII string in a fixstr (canonical as it stands)
        key = len > 0 && len === (h ^ 0xa0) + 1 && len <= 0x20 ? asciiAt(buf, p + 1, len - 1) : undefined;
      }
      const dots = readPackedDots(rd, map, s.ctx);
      if (key === undefined) {
        simple = false;
        const b = buf.subarray(p, p + len);
        const v = checkCanonicalValue(b);
        if (typeof v === 'string') key = v;
        else {
          key = identityKey(b);
          str = false;
        }
      }
      if (!str) {
        simple = false;
        isStr ??= new Uint8Array(n).fill(1);
        isStr[k] = 0;
      }
      keys.push(key);
      dotsOf.push(dots);
    }
    rd.done();
    if (n > 1) distinctDots(dotsOf, s.ctx.width);
    if (n > 0) s.frozen = { keys, dots: dotsOf, isStr, simple };
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

/** A decoded state's elements (see `ORSet.frozen`); never mutated. */
interface Frozen {
  /** Map keys (a string element as the string, any other by identity key), in canonical order. */
  keys: string[];
  dots: Dots[];
  /** 1 for a string element; null when all are strings. */
  isStr: Uint8Array | null;
  /** Every element a short ASCII string (the keys are then the kept order, `ORSet.sorted`). */
  simple: boolean;
}

/** How many of the dots the other context (`octx`, my index -> its index through `inv`) has. */
function coveredCount(d: Dots, inv: Int32Array, octx: CausalContext): number {
  if (typeof d === 'number') {
    const o = inv[dotR(d)];
    return o >= 0 && octx.has(o, dotC(d)) ? 1 : 0;
  }
  let n = 0;
  for (let i = 0; i < d.length; i += 2) {
    const o = inv[d[i]];
    if (o >= 0 && octx.has(o, d[i + 1])) n++;
  }
  return n;
}

/** DecodeError when two elements (or one twice) hold the same dot (see assertDistinctDots). */
function distinctDots(dotsOf: Dots[], width: number): void {
  let n = 0;
  for (const d of dotsOf) n += typeof d === 'number' ? 1 : d.length / 2;
  // small: plain arrays (a typed array of over 64 bytes costs V8 an allocation outside its heap)
  const reps = n <= SMALL_DOTS ? new Array<number>(n) : new Uint32Array(n), ctrs = n <= SMALL_DOTS ? new Array<number>(n) : new Float64Array(n);
  let i = 0;
  for (const d of dotsOf) {
    if (typeof d === 'number') {
      reps[i] = dotR(d);
      ctrs[i++] = dotC(d);
    } else {
      for (let j = 0; j < d.length; j += 2) {
        reps[i] = d[j];
        ctrs[i++] = d[j + 1];
      }
    }
  }
  assertDistinctDots(reps, 0, ctrs, n, width);
}

/** Scratch for `writeSmall`: byte stores without a Writer call each. */
const SMALL = new Uint8Array(2048);

/**
 * Write short ASCII string elements with one packed dot each (replica below 128 in the encoding) through the
 * scratch, when they fit it: false, and nothing written, otherwise.
 */
function writeSmall(w: Writer, keys: string[], dots: Dots[], perm: Int32Array): boolean {
  const b = SMALL;
  let p = 0;
  for (let i = 0; i < keys.length; i++) {
    const s = keys[i];
    const d = dots[i];
    const n = s.length;
    if (typeof d !== 'number' || p + n + 8 > b.length) return false;
    const r = perm[dotR(d)];
    if (r >>> 0 >= 0x80) return false;
    b[p++] = n + 1;
    b[p++] = 0xa0 | n;
    for (let j = 0; j < n; j++) b[p++] = s.charCodeAt(j);
    b[p++] = 1;
    b[p++] = r;
    let c = dotC(d);
    while (c >= 0x80) {
      b[p++] = (c & 0x7f) | 0x80;
      c >>>= 7;
    }
    b[p++] = c;
  }
  w.rawRange(b, 0, p);
  return true;
}

function writeDotsOf(w: Writer, d: Dots, perm: Int32Array): void {
  if (typeof d === 'number') {
    const r = perm[dotR(d)], c = dotC(d);
    w.u8(1);
    if (r >>> 0 < 0x80) w.u8(r); // (a replica outside the context, -1, is refused by varuint as before)
    else w.varuint(r);
    if (c < 0x80) w.u8(c);
    else w.varuint(c);
  } else writeDots(w, d, perm);
}

/** `readDots` as `Dots`. */
function readPackedDots(rd: Reader, map: Int32Array, ctx: CausalContext): Dots {
  if (rd.pos < rd.end && rd.buf[rd.pos] === 1) {
    // one dot (the common case): no array
    rd.pos++;
    const ri = rd.varuint();
    const c = rd.varuint();
    if (ri >= map.length) throw new DecodeError('dot replica index out of range');
    if (c < 1) throw new DecodeError('dot counter must be >= 1');
    const r = map[ri];
    if (!ctx.has(r, c)) throw new DecodeError('dot outside the causal context');
    return dot(r, c);
  }
  return fromFlat(readDots(rd, map, ctx));
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

/** @internal checks that bytes are the canonical msgpack encoding of a value; returns the value. */
export function checkCanonicalValue(b: Uint8Array): unknown {
  let v: unknown;
  let again: Uint8Array;
  try {
    v = decodeValue(b);
    again = encodeValue(v);
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    throw new DecodeError(`invalid value: ${(e as Error).message}`, { cause: e });
  }
  if (!bytesEqual(again, b)) throw new DecodeError('value bytes are not canonical');
  return v;
}
