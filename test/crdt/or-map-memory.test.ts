/**
 * ORMap storage bounds (structural, through the @internal `memoryStats()`): a decoded map holds its values in
 * arena chunks of at most 256 KiB with less than one value of slack per chunk and an exactly filled last chunk,
 * columns of exactly its row count, a key index no bigger than its load bound needs, and nothing of its input
 * buffer. Values of random sizes (seeded; SEED replays, LONG raises the runs) cross the chunk boundaries.
 */
import { describe, expect, it } from 'vitest';
import { HLC } from '../../src/clock/hlc.js';
import { encodeValue } from '../../src/codec/value.js';
import { ORMap } from '../../src/crdt/or-map.js';
import type { PNCounter } from '../../src/crdt/pn-counter.js';
import { makeRng, runs, SEED, type Rng } from './laws.js';

const MAX_CHUNK = 256 * 1024;
const clock = (): HLC => new HLC({ now: () => 1_700_000_000_000 });

/** A value of about `size` msgpack bytes: a record with a repeated field set (so the dictionary kicks in). */
function valueOfSize(rng: Rng, size: number): unknown {
  const status = rng.pick(['running', 'stopped', 'migrating']);
  const pad = 'x'.repeat(Math.max(0, size - 40));
  return { status, node: `node-${rng.int(8)}`, n: rng.int(1000), pad };
}

/** A map of `n` keys whose values have random sizes up to `maxSize` bytes; returns it and its largest value. */
function randomMap(rng: Rng, n: number, maxSize: number): { map: ORMap; maxLen: number } {
  const map = new ORMap('r0', { clock: clock() });
  let maxLen = 0;
  for (let i = 0; i < n; i++) {
    const v = valueOfSize(rng, 1 + rng.int(maxSize));
    maxLen = Math.max(maxLen, encodeValue(v).length);
    map.setLWW(`k-${String(i).padStart(5, '0')}`, v);
  }
  return { map, maxLen };
}

/** Smallest power-of-two slot count (>= 16) with load <= 0.8 for `keys` keys. */
function indexSlotsFor(keys: number): number {
  let cap = 16;
  while (keys * 5 > cap * 4) cap *= 2;
  return cap;
}

/** The bounds every freshly decoded map meets. */
function expectDecodedBounds(m: ORMap, input: Uint8Array, maxLen: number, label: string): void {
  const s = m.memoryStats();
  const arena = s.chunkLengths.reduce((x, y) => x + y, 0);
  expect(s.rowCapacity, `${label}: row capacity`).toBe(s.rows);
  expect(s.indexSlots, `${label}: index slots`).toBe(indexSlotsFor(s.keys));
  expect(s.garbageBytes, `${label}: garbage`).toBe(0);
  // a value bigger than a chunk grows a chunk of its own (by half at a time; later values fill the rest)
  for (const len of s.chunkLengths) expect(len, `${label}: chunk size`).toBeLessThanOrEqual(Math.max(MAX_CHUNK, 2 * maxLen));
  // slack: less than one value per chunk before the last, none in the last
  expect(arena - s.valueBytes, `${label}: arena slack`).toBeLessThanOrEqual(Math.max(0, s.chunkLengths.length - 1) * maxLen);
  if (s.chunkLengths.length > 0) expect(s.lastChunkFill, `${label}: last chunk fill`).toBe(s.chunkLengths[s.chunkLengths.length - 1]);
  for (const b of s.buffers) expect(b === input.buffer, `${label}: holds the input buffer`).toBe(false);
}

function expectSameEntries(a: ORMap, b: ORMap, label: string): void {
  expect(b.keys(), label).toEqual(a.keys());
  for (const k of a.keys()) expect(b.get(k), `${label}: ${k}`).toEqual(a.get(k));
}

describe('ORMap memory layout after decode', () => {
  it('values of random sizes: bounded chunks, exact columns and index, same state, input not held', () => {
    const n = runs(6, 60);
    for (let r = 0; r < n; r++) {
      const seed = SEED + r;
      const label = `seed ${seed} (replay with SEED=${seed})`;
      const rng = makeRng(seed);
      const { map, maxLen } = randomMap(rng, 200 + rng.int(2500), rng.bool() ? 600 : 4000);
      const bytes = map.encode();
      // a copy at an offset inside a bigger buffer, as a transport would hand it over
      const host = new Uint8Array(bytes.length + 16);
      host.set(bytes, 7);
      const input = host.subarray(7, 7 + bytes.length);
      const d = ORMap.decode(input, 'r1', { clock: clock() });
      expectDecodedBounds(d, input, maxLen, label);
      expect(d.memoryStats().valueBytes, label).toBe(map.memoryStats().valueBytes);
      expect(d.memoryStats().chunkLengths.length, `${label}: several chunks`).toBeGreaterThan(map.memoryStats().valueBytes > MAX_CHUNK ? 1 : 0);
      expect(Buffer.from(d.encode()).equals(Buffer.from(bytes)), `${label}: re-encoding`).toBe(true);
      expectSameEntries(map, d, label);
    }
  });

  it('a value bigger than a chunk gets a chunk of its own; its neighbours stay in bounded chunks', () => {
    const rng = makeRng(SEED ^ 0xb16);
    const map = new ORMap('r0', { clock: clock() });
    for (let i = 0; i < 1500; i++) map.setLWW(`a-${i}`, valueOfSize(rng, 200));
    const big = { pad: 'y'.repeat(300_000) };
    map.setLWW('big', big);
    for (let i = 0; i < 1500; i++) map.setLWW(`b-${i}`, valueOfSize(rng, 200));
    const bytes = map.encode();
    const d = ORMap.decode(bytes, 'r1', { clock: clock() });
    const bigLen = encodeValue(big).length;
    expectDecodedBounds(d, bytes, bigLen, 'big value');
    const s = d.memoryStats();
    const over = s.chunkLengths.filter((len) => len > MAX_CHUNK);
    expect(over.length).toBe(1);
    expect(over[0]).toBeGreaterThanOrEqual(bigLen);
    expect(d.get('big')).toEqual(big);
    expectSameEntries(map, d, 'big value');
    expect(Buffer.from(d.encode()).equals(Buffer.from(bytes))).toBe(true);
  });

  it('a first value that outgrows its chunk (many dictionary references) grows that chunk', () => {
    const map = new ORMap('r0', { clock: clock() });
    const huge = Array.from({ length: 60_000 }, (_, i) => ['status-running', 'status-stopped', 'status-paused'][i % 3]);
    map.setLWW('a', huge);
    map.setLWW('b', { after: 'the huge one' });
    const bytes = map.encode();
    const hugeLen = encodeValue(huge).length;
    expect(bytes.length * 4).toBeLessThan(hugeLen); // it really is made of references
    const d = ORMap.decode(bytes, 'r1', { clock: clock() });
    expectDecodedBounds(d, bytes, hugeLen, 'huge first value');
    expect(d.get('a')).toEqual(huge);
    expect(d.get('b')).toEqual({ after: 'the huge one' });
    expect(Buffer.from(d.encode()).equals(Buffer.from(bytes))).toBe(true);
  });

  it('an empty map and a map of nested values only decode to an empty arena', () => {
    const e = ORMap.decode(new ORMap('r0').encode(), 'r1');
    expect(e.memoryStats().chunkLengths).toEqual([]);
    expect(e.memoryStats().rowCapacity).toBe(0);
    const n = new ORMap('r0');
    n.counter('c').increment(3);
    const dn = ORMap.decode(n.encode(), 'r1');
    expect(dn.memoryStats().chunkLengths).toEqual([]);
    expect(dn.memoryStats().rows).toBe(1);
    expect((dn.get('c') as PNCounter).value()).toBe(3);
  });

  it('a decoded map keeps taking writes, deletes and merges after its arena was trimmed', () => {
    const rng = makeRng(SEED ^ 0x77);
    const { map } = randomMap(rng, 3000, 400);
    const d = ORMap.decode(map.encode(), 'r1', { clock: clock() });
    // the same operations on the original (as replica r1's twin) and on the decoded copy
    const twin = ORMap.decode(map.encode(), 'r1', { clock: clock() });
    const ops: [string, unknown][] = [];
    for (let i = 0; i < 2000; i++) ops.push([`k-${String(rng.int(4000)).padStart(5, '0')}`, valueOfSize(rng, 1 + rng.int(700))]);
    for (const [k, v] of ops) d.setLWW(k, v);
    for (let i = 0; i < 300; i++) d.delete(`k-${String(rng.int(4000)).padStart(5, '0')}`);
    const s = d.memoryStats();
    expect(s.rowCapacity).toBeGreaterThanOrEqual(s.rows);
    // every value reads back as last written (or deleted)
    const last = new Map<string, unknown>();
    for (const [k, v] of ops) last.set(k, v);
    for (const [k, v] of last) if (d.has(k)) expect(d.get(k)).toEqual(v);
    // and the state survives a round trip and a merge into the untouched twin
    const back = ORMap.decode(d.encode(), 'r2');
    expectSameEntries(d, back, 'round trip after writes');
    twin.merge(d);
    expectSameEntries(d, twin, 'merged into twin');
  });
});

describe('ORMap overwrites in place', () => {
  /** Live value bytes the map must account for: the canonical bytes of every surviving LWW value. */
  function liveBytes(m: ORMap): number {
    let n = 0;
    for (const k of m.keys()) n += encodeValue(m.get(k)).length;
    return n;
  }

  it('rewriting one key with values of its size or smaller never grows the arena', () => {
    const m = new ORMap('r0', { clock: clock() });
    m.setLWW('vm-1', { status: 'migrating', n: 1 });
    const before = m.memoryStats().chunkLengths;
    const statuses = ['running', 'stopped', 'migrating', 'paused'];
    for (let i = 0; i < 5000; i++) {
      const v = { status: statuses[i & 3], n: i & 0x7f };
      m.setLWW('vm-1', v);
      if (i % 997 === 0) expect(m.get('vm-1')).toEqual(v);
    }
    for (let i = 0; i < 5000; i++) m.setLWW('vm-2', statuses[i & 3]); // the short-string (fixstr) path too
    const s = m.memoryStats();
    expect(s.chunkLengths).toEqual(before);
    expect(s.valueBytes).toBe(liveBytes(m));
    expect(m.get('vm-1')).toEqual({ status: statuses[4999 & 3], n: 4999 & 0x7f });
    expect(m.get('vm-2')).toBe(statuses[4999 & 3]);
  });

  it('a small map filled by one merge holds its values in one chunk of their size (a nested map of a loaded state)', () => {
    const src = new ORMap('src', { clock: clock() });
    const fields = { id: 'vm-1', status: 'running', nodeId: 'node-eu-west-3', cpuCores: 4, memoryMB: 8192, region: 'eu-west' };
    for (const [k, v] of Object.entries(fields)) src.setLWW(k, v);
    const m = new ORMap('r0', { clock: clock() });
    m.merge(ORMap.decode(src.encode(), 'wire'));
    const s = m.memoryStats();
    expect(s.chunkLengths).toEqual([liveBytes(m)]);
    expect(s.valueBytes).toBe(liveBytes(m));
    // the first overwrite that moves a value takes a small chunk (64 bytes: a typed array on V8's heap), not a
    // 256-byte one
    const first = liveBytes(m);
    m.setLWW('status', 'provisioning');
    expect(m.memoryStats().chunkLengths).toEqual([first, 64]);
    expect(m.get('status')).toBe('provisioning');
  });

  it('a small map whose values keep moving keeps a few small chunks (compacted from 8 on, when over half is garbage)', () => {
    const m = new ORMap('r0', { clock: clock() });
    for (let k = 0; k < 3; k++) m.setLWW(`f${k}`, 'x');
    let most = 0;
    for (let i = 0; i < 3000; i++) {
      m.setLWW(`f${i % 3}`, 'v'.repeat(1 + (i % 40))); // mostly longer than the value it replaces: moves
      const s = m.memoryStats();
      most = Math.max(most, s.chunkLengths.reduce((a, b) => a + b, 0));
      expect(s.chunkLengths.length).toBeLessThanOrEqual(9);
      expect(s.valueBytes).toBe(liveBytes(m));
    }
    expect(most).toBeLessThan(1200);
    for (let k = 0; k < 3; k++) expect(m.get(`f${k}`)).toBe('v'.repeat(1 + ((2997 + k) % 40)));
  });

  it('merges of many values into a map with an arena fill its chunks\' tails (no chunk of their own left half empty)', () => {
    for (const [perMerge, valueLength] of [[500, 265], [1000, 140], [20, 30]] as const) {
      const m = new ORMap('r0', { clock: clock() });
      const o = new ORMap('r1', { clock: clock() });
      let key = 0;
      for (let i = 0; i < 40; i++) {
        for (let j = 0; j < perMerge; j++) o.setLWW(`k${key++}`, 'x'.repeat(valueLength));
        m.merge(o.takeDelta()!);
      }
      const s = m.memoryStats();
      const arena = s.chunkLengths.reduce((a, b) => a + b, 0);
      expect(s.valueBytes).toBe(liveBytes(m));
      expect(arena / s.valueBytes, `${perMerge} x ${valueLength} B`).toBeLessThan(1.3);
    }
  });

  it('a map of many rows and few value bytes does not compact its arena every few chunks (compaction scans every row)', () => {
    const m = new ORMap('r0', { clock: clock() });
    for (let i = 0; i < 20_000; i++) m.setLWW(`gone-${i}`, i);
    for (let i = 0; i < 20_000; i++) m.delete(`gone-${i}`);
    for (let k = 0; k < 3; k++) m.setLWW(`f${k}`, 'x');
    let compactions = 0;
    const mm = m as unknown as { compactArena(): void };
    const compact = mm.compactArena.bind(m);
    mm.compactArena = () => {
      compactions++;
      compact();
    };
    for (let i = 0; i < 10_000; i++) m.setLWW(`f${i % 3}`, i & 1 ? 'running-state-long-value' : 'short'); // moves
    expect(compactions).toBeLessThan(60);
    expect(m.get('f0')).toBe((9999 - 9999 % 3) & 1 ? 'running-state-long-value' : 'short');
    expect(m.memoryStats().valueBytes).toBe(liveBytes(m));
  });

  it('random overwrites (growing, shrinking, non-ASCII, nested in between) read back as written, with exact byte accounting', () => {
    const n = runs(20, 400);
    for (let r = 0; r < n; r++) {
      const seed = SEED + 0x1000 + r;
      const label = `seed ${seed} (replay with SEED=${seed - 0x1000 - r})`;
      const rng = makeRng(seed);
      const m = new ORMap('r0', { clock: clock() });
      const want = new Map<string, unknown>();
      const keys = Array.from({ length: 1 + rng.int(12) }, (_, i) => `k${i}`);
      for (let i = 0; i < 400; i++) {
        const k = rng.pick(keys);
        const op = rng.int(10);
        let v: unknown;
        if (op === 0) {
          m.delete(k);
          want.delete(k);
          continue;
        } else if (op === 1) {
          m.counter(k).increment(1); // a nested dot now holds the key; the next LWW write replaces it
          want.delete(k);
          continue;
        } else if (op < 4) v = 'é'.repeat(rng.int(5)) + 'x'.repeat(rng.int(30)); // non-ASCII short strings fall back
        else if (op < 7) v = 'abcdefghijklmnopqrstuvwxyz0123456789'.slice(0, rng.int(36));
        else v = valueOfSize(rng, 1 + rng.int(90));
        m.setLWW(k, v);
        want.set(k, v);
        if (rng.int(20) === 0) {
          // a clone and a delta taken now must not see later overwrites
          const c = m.clone();
          const d = m.takeDelta()!;
          const snap = c.encode();
          m.setLWW(k, rng.bool() ? 'zz' : valueOfSize(rng, 60));
          m.setLWW(k, v);
          expect(Buffer.from(c.encode()).equals(Buffer.from(snap)), `${label}: clone changed`).toBe(true);
          expect(d.get(k), `${label}: delta changed`).toEqual(v);
        }
      }
      for (const [k, v] of want) expect(m.get(k), `${label}: ${k}`).toEqual(v);
      const s = m.memoryStats();
      let live = 0;
      for (const [k] of want) live += encodeValue(m.get(k)).length;
      expect(s.valueBytes, `${label}: live bytes`).toBe(live);
      const back = ORMap.decode(m.encode(), 'r1', { clock: clock() });
      expect(back.keys(), label).toEqual(m.keys());
      for (const [k, v] of want) expect(back.get(k), `${label}: ${k} after a round trip`).toEqual(v);
      expect(back.memoryStats().valueBytes, label).toBe(live);
    }
  });
});
