/**
 * The OR-Map value column's expansion bound against crafted input: references may not make decode expand a
 * message more than EXPANSION_RATIO times (see value-column.ts, "Expansion bound"), nested maps included.
 */
import { describe, expect, it } from 'vitest';
import { ORMap } from '../../src/crdt/index.js';
import { EXPANSION_RATIO, Expander, MAX_CHUNK } from '../../src/crdt/value-column.js';
import { DecodeError } from '../../src/errors.js';

const LONG = 'a'.repeat(255);
/** A reference to string 0 (the first dictionary string of an encoding): 0xc1 + code 2. */
const REF0 = [0xc1, 0x02];

function varuint(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/** Canonical msgpack array header for n items. */
function arrayHeader(n: number): number[] {
  if (n < 16) return [0x90 | n];
  if (n < 0x10000) return [0xdc, n >> 8, n & 0xff];
  return [0xdd, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

/** Bytes of a one-key map (key 'k', value 0) before its value column: the encoding ends [len 1, 0x00, 0 nested]. */
function oneKeyHead(): Uint8Array {
  const m = new ORMap<unknown>('r1');
  m.setLWW('k', 0);
  const bytes = m.encode();
  expect([...bytes.subarray(bytes.length - 3)]).toEqual([1, 0x00, 0]);
  return bytes.subarray(0, bytes.length - 3);
}

/** A one-key map whose value is [LONG, then `refs` references to it], byte for byte (no nested states). */
function withRefs(head: Uint8Array, refs: number): Uint8Array {
  const body = [...arrayHeader(refs + 1), 0xd9, 255, ...new Uint8Array(255).fill(0x61)];
  const value = new Uint8Array(body.length + 2 * refs);
  value.set(body);
  for (let i = 0; i < refs; i++) value.set(REF0, body.length + 2 * i);
  const len = varuint(value.length);
  const out = new Uint8Array(head.length + len.length + value.length + 1);
  out.set(head);
  out.set(len, head.length);
  out.set(value, head.length + len.length);
  return out; // last byte 0: no nested states
}

/** Most references to LONG the rule allows after the literal in `withRefs` (excess 255 each, 2 bytes each). */
function maxRefs(head: Uint8Array): number {
  // after reference j the offset is head + header + 257 + 2j (the value's own length prefix not counted):
  // 255 j <= (R - 1)(head + header + 257 + 2j)
  let j = 0;
  for (;;) {
    const next = j + 1;
    const at = head.length + arrayHeader(next + 1).length + 257 + 2 * next;
    if (255 * next > (EXPANSION_RATIO - 1) * at) return j;
    j = next;
  }
}

/** Run fn and return the bytes Expanders allocated meanwhile. */
function allocatedBy(fn: () => void): number {
  const before = Expander.allocated;
  fn();
  return Expander.allocated - before;
}

/** Decode `bytes` expecting a failure: the error thrown and the bytes the Expanders allocated meanwhile. */
function failedDecode(bytes: Uint8Array): { err: unknown; alloc: number } {
  let err: unknown;
  const alloc = allocatedBy(() => {
    try {
      ORMap.decode(bytes);
    } catch (e) {
      err = e;
    }
  });
  return { err, alloc };
}

/** Expanded bytes of the LWW values of a decoded map and its nested maps (their msgpack sizes). */
function valueBytes(m: ORMap<unknown>): number {
  let n = 0;
  for (const k of m.keys()) {
    const v = m.get(k);
    if (v instanceof ORMap) n += valueBytes(v);
    else if (Array.isArray(v)) n += arrayHeader(v.length).length + v.length * 257;
  }
  return n;
}

/** A parent map whose nested maps c0000.. each hold key 'k' = 0, with each nested encoding replaced by `child(i)`. */
function parentWith(n: number, child: (i: number, legit: Uint8Array) => Uint8Array): Uint8Array {
  const p = new ORMap<unknown>('r1');
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    names.push(`c${String(i).padStart(4, '0')}`);
    p.map(names[i]).setLWW('k', 0);
  }
  const bytes = p.encode();
  const parts: number[][] = [];
  let from = 0;
  const buf = Buffer.from(bytes);
  for (let i = 0; i < n; i++) {
    const legit = p.map(names[i]).encode(); // embedded as is, in key order
    const at = buf.indexOf(Buffer.from(legit), from);
    expect(at).toBeGreaterThan(0);
    const lenAt = at - varuint(legit.length).length;
    parts.push([...bytes.subarray(from, lenAt)]);
    const c = child(i, legit);
    parts.push(varuint(c.length), [...c]);
    from = at + legit.length;
  }
  parts.push([...bytes.subarray(from)]);
  return new Uint8Array(parts.flat());
}

/** The one-key nested encoding `legit` with its value replaced by [LONG, then `refs` references]. */
function nestedWithRefs(legit: Uint8Array, refs: number): Uint8Array {
  expect([...legit.subarray(legit.length - 3)]).toEqual([1, 0x00, 0]);
  return withRefs(legit.subarray(0, legit.length - 3), refs);
}

describe('OR-Map decode: expansion bound against crafted value columns', () => {
  it('a million references to one 255-byte string (2 MB, ~257 MB expanded) is refused early', () => {
    const head = oneKeyHead();
    const bytes = withRefs(head, 1_000_000);
    const { err, alloc } = failedDecode(bytes);
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as Error).message).toMatch(/expand beyond the bound/);
    expect(alloc).toBeLessThanOrEqual(EXPANSION_RATIO * bytes.length);
    // refused a few dozen references in: nothing allocated beyond the first arena chunk (sized from the input)
    expect(alloc).toBeLessThanOrEqual(MAX_CHUNK);
  });

  it('the bound is exact: the writer emits as many references as allowed, one more is a DecodeError', () => {
    const head = oneKeyHead();
    const k = maxRefs(head);
    expect(k).toBeGreaterThan(5);
    const atBound = withRefs(head, k);
    const m = ORMap.decode(atBound);
    expect(m.get('k')).toEqual(new Array(k + 1).fill(LONG));
    // our writer makes exactly these bytes from that state (references up to the bound) ...
    expect(m.encode()).toEqual(atBound);
    // ... and for one more copy writes the copy in full, where the crafted input has a reference
    expect(() => ORMap.decode(withRefs(head, k + 1))).toThrow(DecodeError);
    const w = ORMap.decode(atBound, 'r1');
    w.setLWW('k', new Array(k + 2).fill(LONG));
    const enc = w.encode();
    expect(ORMap.decode(enc).get('k')).toEqual(new Array(k + 2).fill(LONG));
    expect(ORMap.decode(enc).encode()).toEqual(enc);
  });

  it('credit from a long literal is spent at most EXPANSION_RATIO times over the input', () => {
    // value 1: a 256 KiB binary (verbatim: credit for 15 bytes of excess per byte); value 2: 200,000
    // references to a 255-byte string (400 KB of input that would expand to ~51 MB)
    const m = new ORMap<unknown>('r1');
    m.setLWW('a', new Uint8Array(256 * 1024).fill(7));
    m.setLWW('b', 0);
    const legit = m.encode();
    expect([...legit.subarray(legit.length - 3)]).toEqual([1, 0x00, 0]); // 'b' = 0 is the last value
    const bytes = withRefs(legit.subarray(0, legit.length - 3), 200_000);
    const { err, alloc } = failedDecode(bytes);
    expect(err).toBeInstanceOf(DecodeError);
    // allocated: the arena for the binary, then the array item growing by half up to its limit before the
    // reference that breaks the bound (a geometric series: under 3x the limit; what is live at once stays
    // under 2.5x: the item's old and new chunk while it is copied)
    expect(alloc).toBeLessThanOrEqual(3 * EXPANSION_RATIO * bytes.length);
    expect(alloc).toBeLessThan((200_000 * 257) / 2);
  });

  it('a shape or key-echo reference is charged like a string one', () => {
    // a 255-byte shape (3 keys of 83 chars), then an array of references to it with nil values
    const keys = ['a', 'b', 'c'].map((c) => c.repeat(83));
    const head = oneKeyHead();
    const shapeMap = [0x83, ...keys.flatMap((k) => [0xd9, 83, ...Buffer.from(k), 0xc0])];
    const build = (refs: number) => {
      const body = [...arrayHeader(refs + 1), ...shapeMap];
      // shape 0: code 1; each reference is followed by its 3 values (nil)
      for (let i = 0; i < refs; i++) body.push(0xc1, 0x01, 0xc0, 0xc0, 0xc0);
      return new Uint8Array([...head, ...varuint(body.length), ...body, 0]);
    };
    // a shape reference: 5 bytes of input (with its values) for 256 + 3 of output
    const ok = build(10);
    const obj = Object.fromEntries(keys.map((k) => [k, null]));
    expect(ORMap.decode(ok).get('k')).toEqual(new Array(11).fill(obj));
    expect(ORMap.decode(ok).encode()).toEqual(ok);
    expect(() => ORMap.decode(build(100_000))).toThrow(/expand beyond the bound/);
    // key echo: a row keyed by a 255-char ASCII key whose value is an array of echoes (0xc1 0x00)
    const key = 'e'.repeat(255);
    const e = new ORMap<unknown>('r1');
    e.setLWW(key, 0);
    const eb = e.encode();
    const eh = eb.subarray(0, eb.length - 3);
    const echoes = (n: number) => {
      const body = [...arrayHeader(n)];
      for (let i = 0; i < n; i++) body.push(0xc1, 0x00);
      return new Uint8Array([...eh, ...varuint(body.length), ...body, 0]);
    };
    expect(ORMap.decode(echoes(3)).get(key)).toEqual([key, key, key]);
    expect(ORMap.decode(echoes(3)).encode()).toEqual(echoes(3));
    const { err, alloc } = failedDecode(echoes(500_000));
    expect(err).toBeInstanceOf(DecodeError);
    expect(alloc).toBeLessThanOrEqual(MAX_CHUNK);
  });
});

describe('OR-Map decode: expansion bound over nested maps', () => {
  it('a hostile nested map (one of many) is a DecodeError of the whole message', () => {
    const bytes = parentWith(50, (i, legit) => (i === 37 ? nestedWithRefs(legit, 100_000) : legit));
    const { err, alloc } = failedDecode(bytes);
    expect(err).toBeInstanceOf(DecodeError);
    expect(alloc).toBeLessThanOrEqual(EXPANSION_RATIO * bytes.length);
    // the same message with that child legit decodes
    expect(ORMap.decode(parentWith(50, (_, legit) => legit)).size).toBe(50);
  });

  it('many nested maps each at its own bound expand at most EXPANSION_RATIO times the whole message', () => {
    const n = 400;
    const probe = parentWith(1, (_, legit) => legit);
    expect(probe.length).toBeGreaterThan(0);
    let k = 0;
    const bytes = parentWith(n, (_, legit) => {
      const head = legit.subarray(0, legit.length - 3);
      k = maxRefs(head);
      return withRefs(head, k);
    });
    let m: ORMap<unknown> | undefined;
    const alloc = allocatedBy(() => {
      m = ORMap.decode(bytes);
    });
    const expanded = valueBytes(m!);
    expect(expanded).toBe(n * (arrayHeader(k + 1).length + (k + 1) * 257));
    // each child expands about (R - 1) times its own bytes; the message as a whole stays within R times
    expect(expanded).toBeGreaterThan(4 * bytes.length);
    expect(expanded).toBeLessThanOrEqual(EXPANSION_RATIO * bytes.length);
    // cumulative allocation (each small item grows its chunk by half, then the last chunk is trimmed by copy)
    expect(alloc).toBeLessThanOrEqual(3 * EXPANSION_RATIO * bytes.length);
    // canonical: the decoded state encodes to the same bytes
    expect(m!.encode()).toEqual(bytes);
    // one reference more in any child is refused
    expect(() =>
      ORMap.decode(parentWith(n, (i, legit) => {
        const head = legit.subarray(0, legit.length - 3);
        return withRefs(head, i === n - 1 ? maxRefs(head) + 1 : maxRefs(head));
      })),
    ).toThrow(DecodeError);
  });

  it('a hostile map nested three deep is refused; a legit repetitive nested state round-trips exactly', () => {
    const top = new ORMap<unknown>('r1');
    const leaf = top.map('a').map('b').map('c');
    leaf.setLWW('k', 0);
    const legitLeaf = leaf.encode();
    const bytes = top.encode();
    const at = Buffer.from(bytes).indexOf(Buffer.from(legitLeaf));
    expect(at).toBeGreaterThan(0);
    // replace the leaf; the enclosing encodings' length prefixes grow with it, so rebuild them bottom-up
    const hostileLeaf = nestedWithRefs(legitLeaf, 200_000);
    const rebuild = (enc: Uint8Array, oldChild: Uint8Array, newChild: Uint8Array): Uint8Array => {
      const i = Buffer.from(enc).indexOf(Buffer.from(oldChild));
      const l = varuint(oldChild.length).length;
      return new Uint8Array([...enc.subarray(0, i - l), ...varuint(newChild.length), ...newChild, ...enc.subarray(i + oldChild.length)]);
    };
    const c2 = top.map('a').map('b').encode();
    const c1 = top.map('a').encode();
    const nb2 = rebuild(c2, legitLeaf, hostileLeaf);
    const nb1 = rebuild(c1, c2, nb2);
    const hostile = rebuild(bytes, c1, nb1);
    expect(() => ORMap.decode(hostile)).toThrow(/expand beyond the bound/);
    expect(ORMap.decode(rebuild(bytes, c1, c1)).encode()).toEqual(bytes);
    // legit: nested maps holding thousands of copies of long strings (beyond the ratio) round-trip exactly
    const big = new ORMap<unknown>('r1');
    for (let i = 0; i < 20; i++) {
      const child = big.map(`m${i}`);
      for (let j = 0; j < 300; j++) child.setLWW(`k${j}`, j % 7 === 0 ? { s: LONG, t: [LONG, LONG] } : LONG);
    }
    const enc = big.encode();
    const back = ORMap.decode(enc);
    expect(back.encode()).toEqual(enc);
    let expanded = 0;
    for (let i = 0; i < 20; i++) {
      const child = back.get(`m${i}`) as ORMap<unknown>;
      for (let j = 0; j < 300; j++) {
        expect(child.get(`k${j}`)).toEqual(j % 7 === 0 ? { s: LONG, t: [LONG, LONG] } : LONG);
        expanded += j % 7 === 0 ? 1 + 2 + 257 + 2 + 1 + 2 * 257 : 257;
      }
    }
    expect(expanded).toBeLessThanOrEqual(EXPANSION_RATIO * enc.length);
  });
});

describe('ORMap key column: front-coded key prefixes are bounded the same way', () => {
  /** A one-key map's encoding split around its key column ([1][prefix 0][len 1]['k']) and after it. */
  function frame(): { head: number[]; tail: number[] } {
    const m = new ORMap<unknown>('r1');
    m.setLWW('k', 0);
    const b = [...m.encode()];
    const i = b.findIndex((_, j) => b[j] === 1 && b[j + 1] === 0 && b[j + 2] === 1 && b[j + 3] === 0x6b);
    return { head: b.slice(0, i), tail: b.slice(i + 4) };
  }

  it('refuses a key column whose shared prefixes expand past the bound, before building the keys', () => {
    // one 64 KiB key, then keys of 2-3 bytes on the wire that each share (almost) all of it: ~5,000x
    const { head } = frame();
    const N = 2000, L = 65536;
    const parts: number[] = [...head, ...varuint(N), 0, ...varuint(L + 2), ...new Array(L).fill(0x61), 0x21, 0x21];
    for (let k = 1; k < N; k++) {
      const hi = 0x21 + Math.floor(k / 90), lo = 0x21 + (k % 90), phi = 0x21 + Math.floor((k - 1) / 90);
      if (hi === phi) parts.push(...varuint(L + 1), 1, lo);
      else parts.push(...varuint(L), 2, hi, lo);
    }
    const bytes = new Uint8Array([...parts, 1, 0, 0, 0, 1, 0]);
    expect(() => ORMap.decode(bytes)).toThrow(DecodeError);
    expect(() => ORMap.decode(bytes)).toThrow(/key prefixes/);
  });

  it('round-trips keys sharing long prefixes exactly, expanding at most EXPANSION_RATIO times', () => {
    const m = new ORMap<unknown>('r1');
    const prefix = 'p'.repeat(4000);
    const keys = Array.from({ length: 3000 }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);
    for (const k of keys) m.setLWW(k, 1);
    const bytes = m.encode();
    const back = ORMap.decode<unknown>(bytes, 'r2');
    expect(back.keys()).toEqual(keys);
    expect(back.encode()).toEqual(bytes);
    const keyBytes = keys.reduce((s, k) => s + k.length, 0);
    expect(keyBytes).toBeLessThanOrEqual(EXPANSION_RATIO * bytes.length);
    // the writer wrote some keys in full to stay within the bound, yet most are front-coded
    expect(bytes.length).toBeGreaterThan(keyBytes / EXPANSION_RATIO);
    expect(bytes.length).toBeLessThan(keyBytes / 4);
    // and ordinary ids are front-coded as before: 100,000 VM ids cost a few bytes each
    const vms = new ORMap<unknown>('r1');
    for (let i = 0; i < 20_000; i++) vms.setLWW(`vm-${String(i).padStart(6, '0')}`, 0);
    const vb = vms.encode();
    expect(ORMap.decode<unknown>(vb).encode()).toEqual(vb);
  });
});
