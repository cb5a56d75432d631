/**
 * The value column of an OR-Map encoding: each LWW value (a canonical msgpack item) length-prefixed, through
 * two per-encoding dictionaries that the decoder rebuilds as it reads, so nothing but the references is sent.
 *
 * - Strings: the first occurrence of a string of 3..255 UTF-8 bytes (with a minimal fixstr/str8 header)
 *   stays in place and gets the next string index; a repeat becomes a reference. Statuses, node names and
 *   regions shrink to two bytes.
 * - Map shapes: a fixmap (1..15 entries) whose keys are all minimal-header strings, 255 bytes of key items
 *   at most, has a shape, the sequence of its key items. The first map of a shape is written in full (its keys through the string dictionary as
 *   usual) and, once complete, gets the next shape index; a later map of that shape becomes one reference
 *   followed by its values only. Records of one kind (every VM record) carry their field names once per
 *   encoding instead of once per record.
 *
 * - Key echo: a string value equal to the row's own key (a record's `id`, say) is a reference too, when the
 *   key is ASCII of 3..255 characters (never at a map-key position).
 *
 * A reference is 0xc1 (a byte msgpack never uses) + varuint code: 0 for the key echo, `2 * (index + 1)` for a
 * string, `2 * index + 1` for a shape. Codes are canonical varuints of at most 3 bytes. Decoding restores the exact original bytes
 * (references only stand for minimal headers), validating the structure as it goes: any malformed value,
 * unknown reference or excess nesting is a DecodeError. A shape is registered when its map ends (so a map
 * cannot refer to its own, unfinished shape), by encoder and decoder alike, under the same caps.
 *
 * ## Expansion bound (the value column never expands more than EXPANSION_RATIO times on decode)
 * A 2-byte reference stands for up to 257 bytes, so without a rule a crafted value column (one string, then
 * an array of a million references to it) would expand ~128x on decode. The rule, applied identically by
 * writer and reader: let the *excess* of a reference be its expansion minus its own size (a string or key
 * echo expands to its header and bytes; a shape reference to the fixmap header plus all its key items,
 * counted at the reference), and `excess` the running sum over the encoding's references so far. A
 * reference is allowed only when, with it, `excess <= (EXPANSION_RATIO - 1) * at`, where `at` is the offset
 * in the encoding (from its first byte: version, context, keys, dots and timestamps count too) just after the
 * reference, not counting the current value's own length prefix (the writer writes it after the value).
 * - The writer checks this before emitting a reference (a few integer operations); when it fails, it writes
 *   the item in full instead, and indexes that occurrence again as the reader does with every literal
 *   string and every completed shaped map (the dictionaries may then hold one entry twice; harmless). The
 *   rule depends only on the bytes written so far, so the encoding stays canonical (same state, same
 *   bytes) and every encoding the writer makes passes the reader's check.
 * - The reader checks the same inequality at each reference before writing any of its expansion, and
 *   throws DecodeError when it fails.
 * Bound. Verbatim bytes expand 1:1, so the expanded values of an encoding total (its value-column bytes
 * without length prefixes) + excess <= at_end + (RATIO - 1) * at_end = RATIO * at_end, where at_end is the
 * offset of the end of its value column: at most RATIO times the encoding's bytes up to there. A nested
 * OR-Map encoding lies in its parent's nested-state section, after the parent's value column, so the ranges
 * [encoding start, value-column end) of all the encodings in a message are disjoint: however many nested
 * maps, **the value bytes expanded from a message of M bytes total at most EXPANSION_RATIO * M**. Memory on
 * top of that: each arena chunk's unused tail (less than one value), the first chunk of each encoding (at
 * most MAX_CHUNK, sized from its input), and, while one item outgrows a chunk of its own, its old and new
 * chunk (growth by half, capped at what the bound lets the item reach: cumulative allocation under ~3x the
 * item). No constant slack is granted: a per-encoding slack S would add S per nested map, and a message can
 * hold tens of thousands of small nested maps (64 KiB each from ~1 KB of input would be the old ~100x).
 * The bytes before the value column (~5-10 per key) serve as the slack, so small maps compress as before.
 * Measured peak of `(at + excess) / at` over all references (bench/lib/vm.ts VMs): 1,000-VM state 3.18,
 * its 200-VM deltas 2.90, 100,000-VM state 3.21; nested per-VM maps never reference. So the rule leaves
 * their bytes unchanged; only pathological repetition (thousands of copies of one long string) reaches it.
 *
 * ## Costs
 * The writer writes each value straight into the encoding's Writer, after room for its length prefix as long
 * as the previous value's (the value moves by a byte or two when its written length needs another size);
 * its string dictionary refers to the values' bytes in place instead of copying them, and pooled writers
 * keep every buffer, so writing allocates nothing once warm.
 */
import { hiddenClassAnchors, varuintSize, type Writer } from '../codec/binary.js';
import { DecodeError } from '../errors.js';

const EMPTY = new Uint8Array(0);

/** Largest value-arena chunk (bytes) of a map; decode sizes its chunks below it. */
export const MAX_CHUNK = 256 * 1024;

/** Strings of this many UTF-8 bytes (with a minimal msgpack header) are dictionary candidates. */
const DICT_MIN = 3;
/**
 * At most this many string entries per encoding: the strings that repeat (field names, statuses, node
 * names) show up in the first values, while unique ones (ids, addresses) would only grow a cache-hostile
 * table; once full, new strings stay raw. Encoder and decoder apply the same cap.
 */
const DICT_ENTRIES = 4096;
/** At most this many shapes per encoding (records of a few kinds need a few; the cap bounds hostile input). */
const SHAPE_ENTRIES = 1024;
/**
 * A shape's key items total at most this many bytes, as a dictionary string does: a reference then expands
 * to at most ~128 times its size, the bound strings already had (hostile input cannot amplify further).
 */
const SHAPE_MAX_BYTES = 255;
/** Deepest value nesting the walkers follow (canonical values nest at most 64 deep). */
const MAX_DEPTH = 64;
/**
 * Expanded value bytes per encoded byte at most (see "Expansion bound" above): 16 keeps a 32 MiB message
 * under 512 MiB of values while sitting far above what real states reach.
 */
export const EXPANSION_RATIO = 16;
const EXCESS_PER_BYTE = EXPANSION_RATIO - 1;

/** Bytes of a string of n (<= 255) bytes under its minimal msgpack header (fixstr or str8). */
function minimalStringSize(n: number): number {
  return (n < 32 ? 1 : 2) + n;
}


/**
 * A dictionary of byte strings (strings, or a shape's concatenated key items): index by first insertion.
 * A copying dictionary keeps its own copy of each entry's bytes; a referencing one keeps where they are in
 * the input (the value column's inputs are not changed while an encoding is written), which saves the copy
 * of every new string. Dictionaries are pooled across encodings (building one per encoding, growing its
 * table, cost more than the small encodings it served: measured); `clear` keeps every buffer (and drops the
 * input references), so a pooled dictionary allocates nothing once it has grown to its encodings' size.
 */
class ByteDict {
  private table = new Int32Array(64);
  /** Entry e's bytes are bytes(e)[offs[e], offs[e] + lens[e]). */
  private offs = new Int32Array(64);
  private lens = new Int32Array(64);
  /** Copying: the entries' bytes. */
  private buf = new Uint8Array(1024);
  private bufLen = 0;
  /** Referencing: entry e's bytes are in srcs[srcOf[e]]. */
  private srcOf = new Int32Array(64);
  private readonly srcs: Uint8Array[] = [];
  n = 0;

  constructor(readonly cap: number, readonly copying: boolean) {}

  /** The array holding entry e's bytes. */
  private bytes(e: number): Uint8Array {
    return this.copying ? this.buf : this.srcs[this.srcOf[e]];
  }

  /** Index of the bytes src[p, p+len), or -1 when absent. */
  lookup(src: Uint8Array, p: number, len: number): number {
    return this.probe(src, p, len, false);
  }

  /** Index of the bytes src[p, p+len), or -1 after adding them (-2 when absent and the dictionary is full). */
  lookupOrAdd(src: Uint8Array, p: number, len: number): number {
    return this.probe(src, p, len, true);
  }

  /**
   * True when entry e is exactly the key items of the n-entry map whose first key is at src[p] (the map's
   * keys, read in place between its values).
   */
  matches(e: number, src: Uint8Array, srcView: DataView, p: number, n: number): boolean {
    const buf = this.bytes(e);
    const view = this.copying ? this.bufView() : new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let o = this.offs[e];
    const stop = o + this.lens[e];
    for (let i = 0; i < n; i++) {
      const kl = minimalString(src, p);
      if (kl === 0 || o + kl > stop) return false;
      // a word at a time (keys are a record's bulk; a byte loop was the writer's largest cost), then the tail
      let j = 0;
      for (; j + 4 <= kl; j += 4) if (view.getInt32(o + j) !== srcView.getInt32(p + j)) return false;
      for (; j < kl; j++) if (buf[o + j] !== src[p + j]) return false;
      o += kl;
      if (i + 1 < n) p = skipItem(src, p + kl);
    }
    return o === stop;
  }

  private view: DataView | undefined;
  /** A DataView of `buf` (remade when it grows). */
  private bufView(): DataView {
    const v = this.view;
    if (v !== undefined && v.buffer === this.buf.buffer) return v;
    return (this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength));
  }

  /** Byte length of entry e. */
  size(e: number): number {
    return this.lens[e];
  }

  /** Add the bytes src[p, p+len) under the next index (nothing when full). */
  add(src: Uint8Array, p: number, len: number): void {
    if (this.n >= this.cap) return;
    const table = this.table;
    const mask = table.length - 1;
    let slot = hashBytes(src, p, len) & mask;
    while (table[slot] !== 0) slot = (slot + 1) & mask;
    this.insert(slot, src, p, len);
  }

  private probe(src: Uint8Array, p: number, len: number, add: boolean): number {
    const table = this.table, lens = this.lens, offs = this.offs;
    const mask = table.length - 1;
    let slot = hashBytes(src, p, len) & mask;
    for (;;) {
      const e = table[slot] - 1;
      if (e < 0) break;
      if (lens[e] === len) {
        const buf = this.bytes(e);
        const o = offs[e];
        let i = 0;
        while (i < len && buf[o + i] === src[p + i]) i++;
        if (i === len) return e;
      }
      slot = (slot + 1) & mask;
    }
    if (!add) return -1;
    if (this.n >= this.cap) return -2; // full: stays raw, never referenced
    this.insert(slot, src, p, len);
    return -1;
  }

  private insert(slot: number, src: Uint8Array, p: number, len: number): void {
    const e = this.n;
    if (e === this.offs.length) {
      this.offs = grown(this.offs);
      this.lens = grown(this.lens);
      this.srcOf = grown(this.srcOf);
    }
    if (this.copying) {
      const at = this.bufLen;
      if (at + len > this.buf.length) {
        const nb = new Uint8Array(Math.max(this.buf.length * 2, at + len));
        nb.set(this.buf.subarray(0, at));
        this.buf = nb;
      }
      const buf = this.buf;
      for (let i = 0; i < len; i++) buf[at + i] = src[p + i];
      this.offs[e] = at;
      this.bufLen = at + len;
    } else {
      const srcs = this.srcs;
      if (srcs.length === 0 || srcs[srcs.length - 1] !== src) srcs.push(src);
      this.srcOf[e] = srcs.length - 1;
      this.offs[e] = p;
    }
    this.lens[e] = len;
    this.table[slot] = ++this.n;
    if (this.n * 2 > this.table.length) this.rehash();
  }

  private rehash(): void {
    const next = new Int32Array(this.table.length * 2);
    const mask = next.length - 1;
    for (let e = 0; e < this.n; e++) {
      let slot = hashBytes(this.bytes(e), this.offs[e], this.lens[e]) & mask;
      while (next[slot] !== 0) slot = (slot + 1) & mask;
      next[slot] = e + 1;
    }
    this.table = next;
  }

  /** Empty it (keeping its buffers when small). Returns false when it is too big to keep. */
  clear(): boolean {
    this.srcs.length = 0;
    if (this.table.length > 1 << 14) return false;
    if (this.n > 0) this.table.fill(0);
    this.bufLen = 0;
    this.n = 0;
    return true;
  }
}

/** A copy of a twice as long. */
function grown(a: Int32Array): Int32Array<ArrayBuffer> {
  const b = new Int32Array(2 * a.length);
  b.set(a);
  return b;
}

/**
 * Hash of src[p, p+len) for the dictionaries' tables (only where an entry sits, never which index it gets,
 * so it does not affect the encoding): every byte counts, four at a time (MurmurHash3's x86_32 steps), so
 * strings that differ only in their middle (`team-000123-owner`, values from a peer) still spread over the
 * table; a hash of a few bytes only made such a column probe every earlier string (quadratic encode).
 */
export function hashBytes(src: Uint8Array, p: number, len: number): number {
  let h = len;
  let i = p;
  const end4 = p + (len & ~3), end = p + len;
  for (; i < end4; i += 4) {
    let k = src[i] | (src[i + 1] << 8) | (src[i + 2] << 16) | (src[i + 3] << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  for (let s = 0; i < end; i++, s += 8) k |= src[i] << s;
  if (k !== 0 || (len & 3) !== 0) {
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Header size of a minimal-header dictionary candidate string at b[p], or 0. */
function dictCandidate(b: Uint8Array, p: number): number {
  const t = b[p];
  if (t >= 0xa0 + DICT_MIN && t <= 0xbf) return 1;
  if (t === 0xd9 && b[p + 1] >= 32) return 2;
  return 0;
}

/** Length of the minimal-header string item at b[p] (fixstr, or str8 of 32+ bytes), or 0 for anything else. */
function minimalString(b: Uint8Array, p: number): number {
  const t = b[p];
  if (t >= 0xa0 && t <= 0xbf) return 1 + (t & 0x1f);
  if (t === 0xd9 && b[p + 1] >= 32) return 2 + b[p + 1];
  return 0;
}

/**
 * Writes the value column of one encoding: `write` each LWW value in order, then `release`. The values are
 * valid msgpack (produced by encodeValue, or validated by decode), so the walker trusts their structure; the
 * arrays holding them must not change until `release` (the string dictionary refers to their bytes).
 */
export class ValueColumnWriter {
  private static pool: ValueColumnWriter[] = [];
  /** By reference into the values (unchanged while the encoding is written). */
  private readonly strings = new ByteDict(DICT_ENTRIES, false);
  /** Copying: a shape's key items are not contiguous in the value. */
  private readonly shapes = new ByteDict(SHAPE_ENTRIES, true);
  /** The encoding being written, and where the current value's bytes (after its length prefix) start. */
  private w: Writer | undefined;
  private dataAt = 0;
  /** Key items of the maps being walked, stacked by nesting (each map's shape bytes, while it is open). */
  private keys = new Uint8Array(256);
  private keysTop = 0;
  /** Start of the pending verbatim run in the current value. */
  private from = 0;
  private src: Uint8Array = EMPTY;
  /** A DataView of src, kept while src stays the same array (values of one map mostly share a chunk). */
  private dv: DataView | undefined;
  private dvOf: Uint8Array = EMPTY;
  /** Per nesting depth, the shape last referenced there (-1: none). */
  private lastShape: number[] = [];
  /** The length prefix size of the previous value's output: the guess for the next (records of one kind). */
  private lastPrefix = 1;
  /** The row's key when it can be echoed (ASCII, 3..255 chars), else ''. */
  private echo = '';
  /** Offset in the encoding where the current value (its length prefix) starts. */
  private at = 0;
  /** Sum over this encoding's references of (expansion - reference size): see "Expansion bound". */
  private excess = 0;

  static acquire(): ValueColumnWriter {
    return ValueColumnWriter.pool.pop() ?? new ValueColumnWriter();
  }

  /** Empty it and hand it back (kept only when small; a huge one is left to the GC). */
  release(): void {
    this.src = this.dvOf = EMPTY;
    this.dv = undefined;
    this.lastShape.length = 0;
    this.lastPrefix = 1;
    this.excess = 0;
    const a = this.strings.clear(), b = this.shapes.clear();
    if (a && b && ValueColumnWriter.pool.length < 4) ValueColumnWriter.pool.push(this);
  }

  /**
   * Write the value src[start, start + len) (one msgpack item) of the row keyed `key`, length-prefixed, with
   * references. `w` holds the encoding from its first byte (the expansion bound counts from there).
   */
  write(w: Writer, src: Uint8Array, start: number, len: number, key: string): void {
    this.echo = echoable(key) ? key : '';
    const at = w.pos;
    this.at = at;
    // the value goes straight into w after room for its length prefix (the previous value's prefix size, at
    // most the uncompressed one: records of one kind compress alike), and moves when it needs another size
    const reserved = Math.min(this.lastPrefix, varuintSize(len));
    w.ensure(reserved + len + 8);
    w.pos = at + reserved;
    this.w = w;
    this.dataAt = w.pos;
    this.src = src;
    this.from = start;
    this.keysTop = 0;
    const end = this.item(start, 0);
    if (end !== start + len) throw new Error('value column: item length mismatch'); // a bug, never input
    w.rawRange(src, this.from, end);
    this.w = undefined;
    const stop = w.pos;
    const outLen = stop - this.dataAt;
    const size = varuintSize(outLen);
    this.lastPrefix = size;
    if (size !== reserved) {
      // shorter, or (shape references to maps of empty keys can be a byte longer than what they stand for) longer
      w.ensure(8);
      w.pos = stop + 8;
      w.view_().copyWithin(at + size, at + reserved, stop);
    }
    w.pos = at;
    w.varuint(outLen);
    w.pos = at + size + outLen;
  }

  /**
   * True when a reference of `size` bytes standing for `expansion` bytes may replace the item at p under the
   * expansion bound (then counted); false when the item must be written in full.
   */
  private allow(p: number, size: number, expansion: number): boolean {
    const excess = this.excess + expansion - size;
    if (excess > EXCESS_PER_BYTE * (this.at + (this.w!.pos - this.dataAt) + (p - this.from) + size)) return false;
    this.excess = excess;
    return true;
  }

  /** Walk the item at p (emitting references); returns its end. `mapKey`: the item is a map key. */
  private item(p: number, depth: number, mapKey = false): number {
    const src = this.src;
    const t = src[p];
    const hl = dictCandidate(src, p);
    if (hl > 0) {
      const slen = hl === 1 ? t & 0x1f : src[p + 1];
      if (slen === this.echo.length && !mapKey && this.echoes(p + hl) && this.allow(p, 2, hl + slen)) {
        this.ref(p, 0);
        this.from = p + hl + slen;
        return this.from;
      }
      const e = this.strings.lookupOrAdd(src, p + hl, slen);
      if (e >= 0) {
        const code = 2 * (e + 1);
        if (this.allow(p, 1 + varuintSize(code), hl + slen)) {
          this.ref(p, code);
          this.from = p + hl + slen;
        } else this.strings.add(src, p + hl, slen); // written in full: the reader indexes it again
      }
      return p + hl + slen;
    }
    if (t >= 0x81 && t <= 0x8f) return this.map(p, t & 0x0f, depth);
    if (t >= 0x90 && t <= 0x9f) {
      p++;
      for (let i = t & 0x0f; i > 0; i--) p = this.item(p, depth + 1);
      return p;
    }
    let n = 0; // children of a big container
    switch (t) {
      case 0xdc: n = (src[p + 1] << 8) | src[p + 2]; break;
      case 0xdd: n = src[p + 1] * 16777216 + ((src[p + 2] << 16) | (src[p + 3] << 8) | src[p + 4]); break;
      case 0xde: n = ((src[p + 1] << 8) | src[p + 2]) * 2; break;
      case 0xdf: n = (src[p + 1] * 16777216 + ((src[p + 2] << 16) | (src[p + 3] << 8) | src[p + 4])) * 2; break;
      default: return tokenEnd(src, p);
    }
    const isMap = t === 0xde || t === 0xdf;
    p = tokenEnd(src, p);
    for (let i = 0; i < n; i++) p = this.item(p, depth + 1, isMap && (i & 1) === 0);
    return p;
  }

  private srcView(): DataView {
    const src = this.src;
    if (this.dvOf !== src || this.dv === undefined) {
      this.dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
      this.dvOf = src;
    }
    return this.dv;
  }

  /** Write the pending verbatim run (up to p), then 0xc1 + varuint code (code < 2^21). */
  private ref(p: number, code: number): void {
    const w = this.w!;
    w.rawRange(this.src, this.from, p);
    w.u8(0xc1);
    while (code >= 0x80) {
      w.u8((code & 0x7f) | 0x80);
      code >>>= 7;
    }
    w.u8(code);
  }

  /** True when src[p, p + echo.length) is the bytes of the (ASCII) row key. */
  private echoes(p: number): boolean {
    const k = this.echo, src = this.src;
    for (let i = 0; i < k.length; i++) if (src[p + i] !== k.charCodeAt(i)) return false;
    return true;
  }

  /** A fixmap of n (1..15) entries at p: by shape reference when its shape is known. */
  private map(p: number, n: number, depth: number): number {
    const src = this.src;
    // fast path: the shape last referenced at this depth (records of one kind follow each other)
    let s = depth < this.lastShape.length ? this.lastShape[depth] : -1;
    if (s >= 0 && !this.shapes.matches(s, src, this.srcView(), p + 1, n)) s = -1;
    // else the shape: the key items, when all are minimal-header strings
    const base = this.keysTop;
    let shaped = s >= 0;
    if (s < 0) {
      let q = p + 1;
      shaped = true;
      for (let i = 0; i < n; i++) {
        const kl = minimalString(src, q);
        if (kl === 0) {
          shaped = false;
          break;
        }
        this.pushKey(q, kl);
        q = skipItem(src, q + kl);
      }
      if (shaped && this.keysTop - base > SHAPE_MAX_BYTES) shaped = false;
      if (shaped) {
        s = this.shapes.lookup(this.keys, base, this.keysTop - base);
        if (s >= 0) while (this.lastShape.length <= depth) this.lastShape.push(-1);
        if (s >= 0) this.lastShape[depth] = s;
      }
    }
    if (s >= 0) {
      const code = 2 * s + 1;
      if (this.allow(p, 1 + varuintSize(code), 1 + this.shapes.size(s))) {
        this.keysTop = base;
        const w = this.w!;
        this.ref(p, code);
        p++;
        this.from = p;
        for (let i = 0; i < n; i++) {
          w.rawRange(src, this.from, p);
          p += minimalString(src, p);
          this.from = p;
          p = this.item(p, depth + 1);
        }
        return p;
      }
      // over the expansion bound: written in full, and (as the reader will) registered again at its end
      if (this.keysTop === base) {
        for (let i = 0, q = p + 1; i < n; i++) {
          const kl = minimalString(src, q);
          this.pushKey(q, kl);
          q = skipItem(src, q + kl);
        }
      }
    }
    const shapeLen = this.keysTop - base;
    p++;
    for (let i = 0; i < 2 * n; i++) p = this.item(p, depth + 1, (i & 1) === 0);
    if (shaped) this.shapes.add(this.keys, base, shapeLen);
    this.keysTop = base;
    return p;
  }

  private pushKey(q: number, kl: number): void {
    if (this.keysTop + kl > this.keys.length) {
      const nb = new Uint8Array(Math.max(this.keys.length * 2, this.keysTop + kl));
      nb.set(this.keys.subarray(0, this.keysTop));
      this.keys = nb;
    }
    const src = this.src, k = this.keys, at = this.keysTop;
    for (let i = 0; i < kl; i++) k[at + i] = src[q + i];
    this.keysTop = at + kl;
  }
}

/** A row key can be echoed when it is ASCII of 3..255 characters (its UTF-8 bytes are its char codes). */
function echoable(key: string): boolean {
  if (key.length < DICT_MIN || key.length > 255) return false;
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** End of the (trusted, valid) token at src[p]: header and payload, not a container's children. */
function tokenEnd(src: Uint8Array, p: number): number {
  const t = src[p++];
  if (t <= 0x7f || t >= 0xe0 || (t >= 0x80 && t <= 0x9f)) return p;
  if (t <= 0xbf) return p + (t & 0x1f);
  switch (t) {
    case 0xc4: case 0xd9: return p + 1 + src[p];
    case 0xc5: case 0xda: return p + 2 + ((src[p] << 8) | src[p + 1]);
    case 0xc6: case 0xdb: return p + 4 + src[p] * 16777216 + ((src[p + 1] << 16) | (src[p + 2] << 8) | src[p + 3]);
    case 0xca: case 0xce: case 0xd2: return p + 4;
    case 0xcb: case 0xcf: case 0xd3: return p + 8;
    case 0xcc: case 0xd0: return p + 1;
    case 0xcd: case 0xd1: return p + 2;
    case 0xd4: return p + 2;
    case 0xd5: return p + 3;
    case 0xd6: return p + 5;
    case 0xd7: return p + 9;
    case 0xd8: return p + 17;
    case 0xc7: return p + 2 + src[p];
    case 0xdc: case 0xde: return p + 2;
    case 0xdd: case 0xdf: return p + 4;
    default: return p; // nil, booleans
  }
}

/** End of the whole (trusted, valid) item at src[p], children included. */
function skipItem(src: Uint8Array, p: number): number {
  let pending = 1;
  while (pending > 0) {
    pending--;
    const t = src[p];
    if (t >= 0x80 && t <= 0x8f) pending += (t & 0x0f) * 2;
    else if (t >= 0x90 && t <= 0x9f) pending += t & 0x0f;
    else if (t === 0xdc) pending += (src[p + 1] << 8) | src[p + 2];
    else if (t === 0xdd) pending += src[p + 1] * 16777216 + ((src[p + 2] << 16) | (src[p + 3] << 8) | src[p + 4]);
    else if (t === 0xde) pending += ((src[p + 1] << 8) | src[p + 2]) * 2;
    else if (t === 0xdf) pending += (src[p + 1] * 16777216 + ((src[p + 2] << 16) | (src[p + 3] << 8) | src[p + 4])) * 2;
    p = tokenEnd(src, p);
  }
  return p;
}

/** Smallest value-arena chunk decode starts with. */
const MIN_CHUNK = 256;

/**
 * Size of the value-arena chunks made by decode when `remaining` input bytes are left: twice that (the
 * dictionaries roughly halve the values) plus a little, within MIN_CHUNK..MAX_CHUNK.
 */
export function decodeChunkSize(remaining: number): number {
  return Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, 2 * remaining + 64));
}

/**
 * Reads the value column of one encoding: `expand` each value in order. Output goes straight into
 * value-arena chunks: decode sets `start` (= `len`) before each item. When an item overflows the current
 * chunk, the chunk is handed back as `spilled` (decode appends it to the arena; its tail after `start` is
 * the only slack, less than the item) and the item so far moves to a fresh chunk of `chunkSize` bytes (or
 * the item's size), with `start` = 0. An item that outgrows a chunk of its own grows that chunk (never past
 * what the expansion bound lets the item reach). References are checked against the expansion bound before
 * any of their bytes is written, so the Expander holds at most EXPANSION_RATIO times the encoding's bytes
 * (plus the chunks' slack).
 */
export class Expander {
  /** @internal bytes of all the buffers Expanders have allocated (never reset; tests take differences). */
  static allocated = 0;
  buf: Uint8Array;
  len = 0;
  /** Offset of the current item in `buf`. */
  start = 0;
  /** The full chunk the current item left, for decode to append (undefined when none). */
  spilled: Uint8Array | undefined;
  /** The strings seen so far in this encoding: (offset, length) pairs of their bytes in the input. */
  private readonly dict: number[] = [];
  /** The shapes seen so far: shape s has `shapeN[s]` keys, (offset, length) pairs from `shapeKeys[shapeAt[s]]`. */
  private readonly shapeAt: number[] = [];
  private readonly shapeN: number[] = [];
  private readonly shapeKeys: number[] = [];
  /** Per shape, the bytes of its key items. */
  private readonly shapeBytes: number[] = [];
  /** Key (offset, length) pairs of the maps being expanded, stacked by nesting: openKeys[0, openTop). */
  private readonly openKeys: number[] = [];
  private openTop = 0;
  /** Input being expanded and the start of its pending verbatim run. */
  private b: Uint8Array = new Uint8Array(0);
  private end = 0;
  private from = 0;
  private echo = '';
  /** Size of the current value's length prefix: offset in the encoding = offset in `b` - shift. */
  private shift = 0;
  /** Sum over this encoding's references of (expansion - reference size): see "Expansion bound". */
  private excess = 0;
  /** Bytes of the values expanded before the current one. */
  private produced = 0;

  constructor(readonly chunkSize: number) {
    this.buf = new Uint8Array(chunkSize);
    Expander.allocated += chunkSize;
  }

  /** A spare Expander of the smallest chunk size, kept between decodes (see `acquire`). */
  private static spare: Expander | undefined;

  /**
   * An Expander for one encoding's value column. Small encodings (chunk size `decodeChunkSize`'s minimum,
   * which is what nested maps and small deltas get) reuse a spare one whose chunk was copied out by the
   * last decode (`finish`), so they allocate only their right-sized copy: one allocation of a backing
   * store per small decode was most of what it cost, in time and in GC (measured on nested per-VM maps).
   * The spare is taken while in use, so a decode that throws (or a nested decode) never shares it.
   */
  static acquire(chunkSize: number): Expander {
    const e = Expander.spare;
    if (e === undefined || chunkSize !== MIN_CHUNK) return new Expander(chunkSize);
    Expander.spare = undefined;
    e.len = e.start = e.openTop = e.end = e.from = e.shift = e.excess = e.produced = e.codeEnd = 0;
    e.spilled = undefined;
    e.dict.length = e.shapeAt.length = e.shapeN.length = e.shapeKeys.length = e.shapeBytes.length = e.openKeys.length = 0;
    e.b = EMPTY;
    e.echo = '';
    return e;
  }

  /**
   * The expanded bytes of the current chunk, for the arena (empty when none), after which this Expander is
   * done: its own chunk is handed over only when exactly full and not of the spare size; otherwise the fill
   * is copied and the Expander becomes the spare (when of the spare size).
   */
  finish(): Uint8Array {
    const { buf, len } = this;
    const spare = this.chunkSize === MIN_CHUNK && buf.length === MIN_CHUNK;
    if (!spare && len === buf.length) return buf;
    if (spare) {
      // the copy is all this decode allocated (a chunk of its own, counted where made, is trimmed the same
      // way but not counted twice)
      Expander.allocated += len;
      this.b = EMPTY;
      Expander.spare = this;
    }
    return buf.slice(0, len);
  }

  /**
   * Count the reference b[p, q) standing for `expansion` bytes, or throw DecodeError when it breaks the
   * expansion bound (before any of its bytes is written).
   */
  private charge(p: number, q: number, expansion: number): void {
    const excess = this.excess + expansion - (q - p);
    if (excess > EXCESS_PER_BYTE * (q - this.shift)) throw new DecodeError('value references expand beyond the bound');
    this.excess = excess;
  }

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const part = this.len - this.start;
    if (this.start > 0) {
      // the item moves to a new chunk; the old one ends before it
      const nb = new Uint8Array(Math.max(this.chunkSize, part + n));
      Expander.allocated += nb.length;
      nb.set(this.buf.subarray(this.start, this.len));
      this.spilled = this.buf;
      this.buf = nb;
      this.start = 0;
      this.len = part;
      return;
    }
    // the item has the chunk to itself and outgrows it: by half, up to what the bound lets the item reach
    // (all output so far <= EXPANSION_RATIO * the encoding's bytes up to the value's end)
    const most = EXPANSION_RATIO * (this.end - this.shift) - this.produced;
    const nb = new Uint8Array(Math.max(this.len + n, Math.min(most, this.buf.length + (this.buf.length >>> 1))));
    Expander.allocated += nb.length;
    nb.set(this.buf.subarray(0, this.len));
    this.buf = nb;
  }

  private copy(b: Uint8Array, p: number, n: number): void {
    this.room(n);
    const buf = this.buf, at = this.len; // locals: the loop reloaded both fields on every byte (measured)
    if (n <= 32) for (let i = 0; i < n; i++) buf[at + i] = b[p + i];
    else buf.set(b.subarray(p, p + n), at);
    this.len = at + n;
  }

  /** The minimal header of a string of n (<= 255) bytes, with room for those bytes after it. */
  private stringHeader(n: number): void {
    this.room(n + 2);
    if (n < 32) this.buf[this.len++] = 0xa0 | n;
    else {
      this.buf[this.len++] = 0xd9;
      this.buf[this.len++] = n;
    }
  }

  /** Write the minimal-header string whose bytes are b[o, o+n) (n <= 255). */
  private string(o: number, n: number): void {
    this.stringHeader(n);
    this.copy(this.b, o, n);
  }

  /**
   * Expand the single item at b[p, end) (exactly), the value of the row keyed `key`. Throws DecodeError on
   * anything `decodeValue` would reject, or when its references break the expansion bound. `b` holds the
   * encoding from its first byte, and the value's canonical length prefix ends at p.
   */
  expand(b: Uint8Array, p: number, end: number, key: string): void {
    this.echo = key;
    this.b = b;
    this.end = end;
    this.from = p;
    this.shift = varuintSize(end - p);
    this.openTop = 0;
    p = this.item(p, 0);
    if (p !== end) throw new DecodeError('value length does not match its msgpack item');
    this.copy(b, this.from, end - this.from);
    this.produced += this.len - this.start;
  }

  /** Push a key's (offset, length) on openKeys. */
  private pushKey(o: number, n: number): void {
    const keys = this.openKeys, top = this.openTop;
    keys[top] = o;
    keys[top + 1] = n;
    this.openTop = top + 2;
  }

  /** Read the reference code at b[p] (after 0xc1) and return it; its end goes to `codeEnd`. */
  private code(p: number): number {
    const b = this.b, end = this.end;
    let code = 0, mul = 1;
    for (let i = 0; ; i++) {
      if (p >= end || i === 3) throw new DecodeError('bad value reference');
      const x = b[p++];
      code += (x & 0x7f) * mul;
      if (x < 0x80) {
        if (i > 0 && x === 0) throw new DecodeError('non-canonical value reference');
        break;
      }
      mul *= 128;
    }
    this.codeEnd = p;
    return code;
  }
  private codeEnd = 0;

  /**
   * Expand the item at p; returns its end in the input. With `key`, the item's string bytes are pushed on
   * openKeys as (offset, length) when it is a minimal-header string, for the shape of the enclosing map.
   */
  private item(p: number, depth: number, key = false): number {
    const b = this.b, end = this.end;
    if (p >= end) throw new DecodeError('truncated value');
    const t = b[p];
    if (t >= 0xa0 && t <= 0xbf) {
      const n = t & 0x1f;
      if (p + 1 + n > end) throw new DecodeError('truncated value');
      if (n >= DICT_MIN && this.dict.length < 2 * DICT_ENTRIES) this.dict.push(p + 1, n);
      if (key) this.pushKey(p + 1, n);
      return p + 1 + n;
    }
    if (t === 0xd9 && p + 1 < end && b[p + 1] >= 32) {
      const n = b[p + 1];
      if (p + 2 + n > end) throw new DecodeError('truncated value');
      if (this.dict.length < 2 * DICT_ENTRIES) this.dict.push(p + 2, n);
      if (key) this.pushKey(p + 2, n);
      return p + 2 + n;
    }
    if (t === 0xc1) {
      const code = this.code(p + 1);
      const q = this.codeEnd;
      this.copy(b, this.from, p - this.from);
      this.from = q;
      if (code === 0) {
        const k = this.echo;
        if (!echoable(k)) throw new DecodeError('key echo for a key that cannot be echoed');
        this.charge(p, q, minimalStringSize(k.length));
        this.stringHeader(k.length);
        const buf = this.buf, at = this.len;
        for (let i = 0; i < k.length; i++) buf[at + i] = k.charCodeAt(i);
        this.len = at + k.length;
        return q;
      }
      if ((code & 1) === 0) {
        const idx = (code >>> 1) - 1;
        if (2 * idx >= this.dict.length) throw new DecodeError('string reference out of range');
        const o = this.dict[2 * idx], n = this.dict[2 * idx + 1];
        this.charge(p, q, minimalStringSize(n));
        this.string(o, n);
        if (key) this.pushKey(o, n);
        return q;
      }
      const s = code >>> 1;
      if (s >= this.shapeN.length) throw new DecodeError('shape reference out of range');
      if (depth >= MAX_DEPTH) throw new DecodeError('value nested too deeply');
      const n = this.shapeN[s], at = this.shapeAt[s];
      this.charge(p, q, 1 + this.shapeBytes[s]);
      this.room(1);
      this.buf[this.len++] = 0x80 | n;
      p = q;
      for (let i = 0; i < n; i++) {
        this.copy(b, this.from, p - this.from);
        this.string(this.shapeKeys[at + 2 * i], this.shapeKeys[at + 2 * i + 1]);
        this.from = p;
        p = this.item(p, depth + 1);
      }
      return p;
    }
    if (t <= 0x7f || t >= 0xe0) return p + 1;
    let n = -1;
    if (t >= 0x80 && t <= 0x8f) n = (t & 0x0f) * 2;
    else if (t >= 0x90 && t <= 0x9f) n = t & 0x0f;
    const stop = skipToken(b, p, end);
    if (t === 0xdc) n = (b[p + 1] << 8) | b[p + 2];
    else if (t === 0xdd) n = b[p + 1] * 16777216 + ((b[p + 2] << 16) | (b[p + 3] << 8) | b[p + 4]);
    else if (t === 0xde) n = ((b[p + 1] << 8) | b[p + 2]) * 2;
    else if (t === 0xdf) n = (b[p + 1] * 16777216 + ((b[p + 2] << 16) | (b[p + 3] << 8) | b[p + 4])) * 2;
    p = stop;
    if (n <= 0) return p;
    if (n > end - p) throw new DecodeError('value count exceeds input');
    if (depth >= MAX_DEPTH) throw new DecodeError('value nested too deeply');
    if (t < 0x81 || t > 0x8f) {
      for (; n > 0; n--) p = this.item(p, depth + 1);
      return p;
    }
    // a fixmap: its keys make a shape when all are minimal-header strings
    const keys = this.openKeys;
    const base = this.openTop;
    let shaped = true;
    for (let i = 0; i < n; i += 2) {
      const before = this.openTop;
      p = this.item(p, depth + 1, shaped);
      if (this.openTop === before) shaped = false;
      p = this.item(p, depth + 1);
    }
    const top = this.openTop;
    let shapeBytes = 0;
    for (let i = base + 1; i < top; i += 2) shapeBytes += minimalStringSize(keys[i]);
    if (shaped && shapeBytes <= SHAPE_MAX_BYTES && this.shapeN.length < SHAPE_ENTRIES) {
      this.shapeAt.push(this.shapeKeys.length);
      this.shapeN.push(n >>> 1);
      this.shapeBytes.push(shapeBytes);
      for (let i = base; i < top; i++) this.shapeKeys.push(keys[i]);
    }
    this.openTop = base;
    return p;
  }
}

// keeps the class's hidden class alive across full GCs (see hiddenClassAnchors)
hiddenClassAnchors.push(new Expander(16));

function readBE(b: Uint8Array, p: number, n: number, end: number): number {
  if (p + n > end) throw new DecodeError('truncated value');
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + b[p + i];
  return v;
}

/** End of the token at b[p] (header and payload, not a container's children); DecodeError when invalid. */
function skipToken(b: Uint8Array, p: number, end: number): number {
  const t = b[p++];
  let skip = 0;
  if (t <= 0x7f || t >= 0xe0 || (t >= 0x80 && t <= 0x9f)) skip = 0;
  else if (t <= 0xbf) skip = t & 0x1f;
  else {
    switch (t) {
      case 0xc0: case 0xc2: case 0xc3: break;
      case 0xc4: case 0xd9: skip = readBE(b, p, 1, end); p += 1; break;
      case 0xc5: case 0xda: skip = readBE(b, p, 2, end); p += 2; break;
      case 0xc6: case 0xdb: skip = readBE(b, p, 4, end); p += 4; break;
      case 0xca: case 0xce: case 0xd2: skip = 4; break;
      case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
      case 0xcc: case 0xd0: skip = 1; break;
      case 0xcd: case 0xd1: skip = 2; break;
      case 0xd6: case 0xd7: case 0xc7: {
        let n = t === 0xd6 ? 4 : 8;
        if (t === 0xc7) {
          n = readBE(b, p, 1, end);
          p += 1;
          if (n !== 12) throw new DecodeError('unsupported msgpack extension');
        }
        if (p >= end || b[p] !== 0xff) throw new DecodeError('unsupported msgpack extension');
        p += 1;
        skip = n;
        break;
      }
      case 0xdc: case 0xde: readBE(b, p, 2, end); p += 2; break;
      case 0xdd: case 0xdf: readBE(b, p, 4, end); p += 4; break;
      default: throw new DecodeError(`unsupported msgpack type 0x${t.toString(16)}`);
    }
  }
  if (skip > end - p) throw new DecodeError('truncated value');
  return p + skip;
}
