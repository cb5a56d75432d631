/**
 * Payload codecs of the sync messages (the envelope is in envelope.ts). Every `encodeX` has a `decodeX` that
 * throws `DecodeError` on malformed input and checks every count against the remaining bytes.
 */
import { Reader, Writer, varuintSize } from '../codec/binary.js';
import { DecodeError } from '../errors.js';
import type { TreeNode } from './digest.js';

const MAX_NAME = 1024;

/** Replica -> highest contiguous write sequence merged from it. */
export type VersionEntries = [string, number][];

function writeVector(w: Writer, v: VersionEntries): void {
  w.varuint(v.length);
  for (const [r, n] of v) {
    w.string(r);
    w.varuint(n);
  }
}

function readVector(r: Reader): VersionEntries {
  const n = r.count(2);
  const out: VersionEntries = [];
  for (let i = 0; i < n; i++) out.push([readName(r), r.varuint()]);
  return out;
}

function readName(r: Reader): string {
  const s = r.string();
  if (s.length > MAX_NAME) throw new DecodeError('name too long');
  return s;
}

function readFlag(r: Reader): boolean {
  const b = r.u8();
  if (b > 1) throw new DecodeError('bad boolean');
  return b === 1;
}

// ---- DELTA ------------------------------------------------------------------------------------------

export interface DeltaObject {
  name: string;
  typeTag: number;
  bytes: Uint8Array;
}

export interface DeltaPayload {
  /** Range of the origin's write sequence numbers this message carries (lo > hi: none). */
  writesLo: number;
  writesHi: number;
  /** Causal dependencies (origin's version vector before these writes); empty unless causal delivery is needed. */
  deps: VersionEntries;
  objects: DeltaObject[];
}

export function encodeDelta(p: DeltaPayload): Uint8Array {
  const w = new Writer(64 + p.objects.reduce((s, o) => s + o.bytes.length + o.name.length * 3 + 8, 0));
  w.varuint(p.writesLo);
  w.varuint(p.writesHi);
  writeVector(w, p.deps);
  w.varuint(p.objects.length);
  for (const o of p.objects) {
    w.string(o.name);
    w.u8(o.typeTag);
    w.bytes(o.bytes);
  }
  return w.finish();
}

export function decodeDelta(bytes: Uint8Array): DeltaPayload {
  const r = new Reader(bytes);
  const writesLo = r.varuint();
  const writesHi = r.varuint();
  const deps = readVector(r);
  const n = r.count(3);
  const objects: DeltaObject[] = [];
  for (let i = 0; i < n; i++) objects.push({ name: readName(r), typeTag: r.u8(), bytes: r.bytes() });
  r.done();
  return { writesLo, writesHi, deps, objects };
}

// ---- ACK --------------------------------------------------------------------------------------------

export function encodeAck(lo: number, hi: number): Uint8Array {
  const w = new Writer(16);
  w.varuint(lo);
  w.varuint(hi);
  return w.finish();
}

export function decodeAck(bytes: Uint8Array): { lo: number; hi: number } {
  const r = new Reader(bytes);
  const lo = r.varuint();
  const hi = r.varuint();
  r.done();
  if (lo > hi) throw new DecodeError('empty ack range');
  return { lo, hi };
}

// ---- anti-entropy -----------------------------------------------------------------------------------

export interface DigestObject {
  name: string;
  typeTag: number;
  lo: number;
  hi: number;
  keyed: boolean;
  /**
   * For keyed objects that support scoped anti-entropy: the sender's causal context (the object's
   * `contextBytes()`), so the receiver can answer with exactly the entries the sender has not seen.
   */
  context?: Uint8Array;
  /**
   * For objects with tombstones (RGA): the version vector the sender may be counted as having seen (what
   * survives a crash there), from which peers compute the causally stable clock for collection.
   */
  clock?: Uint8Array;
}

export interface DigestPayload {
  session: number;
  seen: VersionEntries;
  objects: DigestObject[];
  /**
   * Hash (lo, hi) of the replica ids the sender counts as members (itself and every peer it has not
   * removed): tombstone collection counts a peer's clock reports only while its membership matches the
   * receiver's own. Absent (a digest of an earlier version has none): its clocks are recorded but never
   * counted. Encoded after the objects as a flag byte (1) and two u32; a digest without it ends after the
   * objects, as earlier versions wrote it, so this version reads theirs (theirs refuse ours: trailing bytes).
   */
  members?: [number, number];
}

export function encodeDigest(p: DigestPayload): Uint8Array {
  const w = new Writer(64 + p.objects.length * 24);
  w.varuint(p.session);
  writeVector(w, p.seen);
  w.varuint(p.objects.length);
  for (const o of p.objects) {
    w.string(o.name);
    w.u8(o.typeTag);
    w.u32(o.lo);
    w.u32(o.hi);
    // flags: 1 keyed, 2 causal context follows (keyed only), 4 clock follows
    const ctx = o.keyed && o.context !== undefined;
    w.u8((o.keyed ? 1 : 0) | (ctx ? 2 : 0) | (o.clock !== undefined ? 4 : 0));
    if (ctx) w.bytes(o.context!);
    if (o.clock !== undefined) w.bytes(o.clock);
  }
  if (p.members) {
    w.u8(1);
    w.u32(p.members[0]);
    w.u32(p.members[1]);
  }
  return w.finish();
}

export function decodeDigest(bytes: Uint8Array): DigestPayload {
  const r = new Reader(bytes);
  const session = r.varuint();
  const seen = readVector(r);
  const n = r.count(11);
  const objects: DigestObject[] = [];
  // each object once: every listed object may be answered with its whole state, so a digest naming one object
  // a thousand times (4.8 KB) would cost a thousand answers
  const names = new Set<string>();
  for (let i = 0; i < n; i++) {
    const o: DigestObject = { name: readName(r), typeTag: r.u8(), lo: r.u32(), hi: r.u32(), keyed: false };
    if (names.has(o.name)) throw new DecodeError(`digest lists ${o.name} twice`);
    names.add(o.name);
    const k = r.u8();
    if (k > 7 || k === 2 || k === 6) throw new DecodeError('bad digest object flags');
    o.keyed = (k & 1) !== 0;
    if (k & 2) o.context = r.bytes();
    if (k & 4) o.clock = r.bytes();
    objects.push(o);
  }
  const out: DigestPayload = { session, seen, objects };
  if (r.remaining > 0) {
    if (r.u8() !== 1) throw new DecodeError('bad digest members flag');
    out.members = [r.u32(), r.u32()];
  }
  r.done();
  return out;
}

export const ITEM_STATE = 1;
export const ITEM_TREE = 2;
export const ITEM_SLICE = 3;
export const ITEM_SCOPED = 4;

/**
 * A whole state, and the hash of the sender's state it is. `final`: the receiver must not answer it. (For a
 * map whose whole state is too big for one message, an answer may instead carry several, each a state below
 * the sender's: its retired dots, see the engine's stateItems; `lo`, `hi` are still the sender's hash.)
 */
export interface StateItem {
  kind: typeof ITEM_STATE;
  name: string;
  typeTag: number;
  final: boolean;
  lo: number;
  hi: number;
  bytes: Uint8Array;
}

/** The sender's 16 children (at depth + 4) of each listed bucket at `depth`. */
export interface TreeItem {
  kind: typeof ITEM_TREE;
  name: string;
  depth: number;
  nodes: { prefix: number; children: TreeNode[] }[];
}

/**
 * The sender's entries of some buckets at `depth`, with the sender's hash of each bucket (after merging what
 * it answers). `left`: how many more answers the exchange allows (a receiver whose buckets still differ
 * answers while left > 0, so removals travel back and forth at most a bounded number of times).
 */
export interface SliceItem {
  kind: typeof ITEM_SLICE;
  name: string;
  typeTag: number;
  left: number;
  depth: number;
  buckets: { prefix: number; lo: number; hi: number }[];
  bytes: Uint8Array;
}

/**
 * Scoped anti-entropy for keyed objects: the entries of every key holding a dot the receiver's context lacks,
 * with the sender's whole context (`deltaSince`, merged with `mergeScoped`), and the hash of the sender's
 * state after merging what it answers. Not `final`: the answer to a digest; the receiver merges it and
 * answers with its own `deltaSince` (final). Final: the receiver merges it and, when the hashes still
 * differ (removals a context cannot show), descends the bucket tree.
 */
export interface ScopedItem extends Omit<StateItem, 'kind'> {
  kind: typeof ITEM_SCOPED;
}

export type SyncItem = StateItem | TreeItem | SliceItem | ScopedItem;

export interface SyncPayload {
  session: number;
  /** The sender's version vector, sent with the first reply only (empty otherwise). */
  seen: VersionEntries;
  items: SyncItem[];
  /**
   * The sender left out objects it holds that differ from the asker's (objects with collectable tombstones
   * go to members only): the answer is not the sender's whole difference, so a replica recovering lost
   * dots does not count the session.
   */
  withheld?: boolean;
  /**
   * One part of an answer too big for one message (see the engine's sendSync): part `index` of `total`
   * (2..MAX_PARTS) of the answer numbered `group` by its sender. A session counts an answer only once all
   * its parts are in.
   */
  part?: SyncPart;
}

export interface SyncPart {
  group: number;
  index: number;
  total: number;
}

/** Most parts one answer is split into (a message carries at least one item, so far beyond any real answer). */
export const MAX_PARTS = 65_536;

/*
 * The trailer after the items, only when `withheld` or `part` is set (so other answers are what earlier
 * versions wrote and read; theirs refuse a trailer: trailing bytes): a flags byte (1 withheld, 2 part), then
 * for a part the varuints group, index, total.
 */

/** Bytes the trailer takes at most (a flags byte, then group < 2^31, index and total <= MAX_PARTS). */
export const SYNC_TRAILER_MAX = 16;

/** Bytes `encodeSync` writes for one node of a tree item (as written below). */
export function treeNodeSize(nd: TreeItem['nodes'][number]): number {
  let n = varuintSize(nd.prefix);
  for (const c of nd.children) n += varuintSize(c.count) + (c.count > 0 ? 8 : 0);
  return n;
}

/** Bytes `encodeSync` writes for a tree item besides its nodes, at most: kind, name, depth, node count. */
export function treeItemHeadMax(name: string): number {
  return 8 + 3 * name.length;
}

/**
 * Bytes `encodeSync` writes for a payload of one state item besides the state's bytes, at most: session,
 * empty version vector, item count, then kind, name, type tag, flag, hash and the bytes' length.
 */
export function stateAnswerHeadMax(name: string): number {
  return 28 + 3 * name.length;
}

export function encodeSync(p: SyncPayload): Uint8Array {
  const w = new Writer(256);
  w.varuint(p.session);
  writeVector(w, p.seen);
  w.varuint(p.items.length);
  for (const it of p.items) {
    w.u8(it.kind);
    w.string(it.name);
    if (it.kind === ITEM_STATE || it.kind === ITEM_SCOPED) {
      w.u8(it.typeTag);
      w.u8(it.final ? 1 : 0);
      w.u32(it.lo);
      w.u32(it.hi);
      w.bytes(it.bytes);
    } else if (it.kind === ITEM_TREE) {
      w.u8(it.depth);
      w.varuint(it.nodes.length);
      for (const nd of it.nodes) {
        w.varuint(nd.prefix);
        for (const c of nd.children) {
          w.varuint(c.count);
          if (c.count > 0) {
            w.u32(c.lo);
            w.u32(c.hi);
          }
        }
      }
    } else {
      w.u8(it.typeTag);
      w.u8(it.left);
      w.u8(it.depth);
      w.varuint(it.buckets.length);
      for (const b of it.buckets) {
        w.varuint(b.prefix);
        w.u32(b.lo);
        w.u32(b.hi);
      }
      w.bytes(it.bytes);
    }
  }
  const flags = (p.withheld ? 1 : 0) | (p.part ? 2 : 0);
  if (flags !== 0) w.u8(flags);
  if (p.part) {
    w.varuint(p.part.group);
    w.varuint(p.part.index);
    w.varuint(p.part.total);
  }
  return w.finish();
}

function readDepth(r: Reader, max: number): number {
  const d = r.u8();
  if (d > max || d % 4 !== 0) throw new DecodeError(`bad tree depth ${d}`);
  return d;
}

function readPrefix(r: Reader, depth: number): number {
  const p = r.varuint();
  if (p >= 2 ** depth && !(depth === 0 && p === 0)) throw new DecodeError('bucket prefix out of range');
  return p;
}

export function decodeSync(bytes: Uint8Array): SyncPayload {
  const r = new Reader(bytes);
  const session = r.varuint();
  const seen = readVector(r);
  const n = r.count(3);
  const items: SyncItem[] = [];
  for (let i = 0; i < n; i++) {
    const kind = r.u8();
    const name = readName(r);
    if (kind === ITEM_STATE || kind === ITEM_SCOPED) {
      items.push({ kind, name, typeTag: r.u8(), final: readFlag(r), lo: r.u32(), hi: r.u32(), bytes: r.bytes() });
    } else if (kind === ITEM_TREE) {
      const depth = readDepth(r, 12);
      const m = r.count(17);
      const nodes: TreeItem['nodes'] = [];
      for (let j = 0; j < m; j++) {
        const prefix = readPrefix(r, depth);
        const children: TreeNode[] = [];
        for (let c = 0; c < 16; c++) {
          const count = r.varuint();
          children.push(count > 0 ? { count, lo: r.u32(), hi: r.u32() } : { count, lo: 0, hi: 0 });
        }
        nodes.push({ prefix, children });
      }
      items.push({ kind, name, depth, nodes });
    } else if (kind === ITEM_SLICE) {
      const typeTag = r.u8();
      const left = r.u8();
      if (left > 3) throw new DecodeError('bad slice answer budget');
      const depth = readDepth(r, 16);
      const m = r.count(9);
      const buckets: SliceItem['buckets'] = [];
      for (let j = 0; j < m; j++) buckets.push({ prefix: readPrefix(r, depth), lo: r.u32(), hi: r.u32() });
      items.push({ kind, name, typeTag, left, depth, buckets, bytes: r.bytes() });
    } else throw new DecodeError(`unknown sync item ${kind}`);
  }
  const out: SyncPayload = { session, seen, items };
  if (r.remaining > 0) {
    const flags = r.u8();
    if (flags < 1 || flags > 3) throw new DecodeError('bad sync flags');
    if (flags & 1) out.withheld = true;
    if (flags & 2) {
      const group = r.varuint(), index = r.varuint(), total = r.varuint();
      if (total < 2 || total > MAX_PARTS || index >= total) throw new DecodeError('bad sync part');
      out.part = { group, index, total };
    }
  }
  r.done();
  return out;
}

// ---- ping / reads -----------------------------------------------------------------------------------

export function encodeNonce(n: number): Uint8Array {
  const w = new Writer(8);
  w.varuint(n);
  return w.finish();
}

export function decodeNonce(bytes: Uint8Array): number {
  const r = new Reader(bytes);
  const n = r.varuint();
  r.done();
  return n;
}

export interface ReadReq {
  reqId: number;
  name: string;
  lo: number;
  hi: number;
}

export function encodeReadReq(p: ReadReq): Uint8Array {
  const w = new Writer(32);
  w.varuint(p.reqId);
  w.string(p.name);
  w.u32(p.lo);
  w.u32(p.hi);
  return w.finish();
}

export function decodeReadReq(bytes: Uint8Array): ReadReq {
  const r = new Reader(bytes);
  const p = { reqId: r.varuint(), name: readName(r), lo: r.u32(), hi: r.u32() };
  r.done();
  return p;
}

export interface ReadResp {
  reqId: number;
  name: string;
  /** True when the responder's state hashes equal to the requester's (no bytes sent). */
  same: boolean;
  bytes: Uint8Array;
}

export function encodeReadResp(p: ReadResp): Uint8Array {
  const w = new Writer(32 + p.bytes.length);
  w.varuint(p.reqId);
  w.string(p.name);
  w.u8(p.same ? 1 : 0);
  w.bytes(p.bytes);
  return w.finish();
}

export function decodeReadResp(bytes: Uint8Array): ReadResp {
  const r = new Reader(bytes);
  const p = { reqId: r.varuint(), name: readName(r), same: readFlag(r), bytes: r.bytes() };
  r.done();
  return p;
}

// ---- bundle -------------------------------------------------------------------------------------------

export function encodeBundle(parts: Uint8Array[]): Uint8Array {
  const w = new Writer(16 + parts.reduce((n, p) => n + p.length + 5, 0));
  w.varuint(parts.length);
  for (const p of parts) w.bytes(p);
  return w.finish();
}

/**
 * The smallest DELTA envelope there is (envelope.ts, encodeDelta above), untagged: version, type and flags
 * (3 bytes), an origin of one byte with its length (2), epoch and counter (1 each), hops (1), and the payload's
 * length (1) around the smallest delta payload: writesLo, writesHi, an empty deps vector and an empty object
 * list (4). A bundle carries gossiped deltas only, so a part shorter than this cannot be one.
 */
export const MIN_DELTA_ENVELOPE_BYTES = 13;

export function decodeBundle(bytes: Uint8Array): Uint8Array[] {
  const r = new Reader(bytes);
  // each part: its length (at least one byte) and at least MIN_DELTA_ENVELOPE_BYTES (a bundle of 1-byte parts
  // made the engine decode, throw and catch once per input byte)
  const n = r.count(1 + MIN_DELTA_ENVELOPE_BYTES);
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const part = r.bytes();
    if (part.length < MIN_DELTA_ENVELOPE_BYTES) throw new DecodeError(`bundle part of ${part.length} bytes is shorter than any delta`);
    out.push(part);
  }
  r.done();
  return out;
}
