/**
 * ORMap bulk merges: a merge into an empty map leaves no slack (exact rows, no arena slack, no kernel
 * memory growth), and merges of big maps run the kernel in bounded batches with the same result as one call.
 */
import { describe, expect, it } from 'vitest';
import { HLC } from '../../src/clock/hlc.js';
import { setMergeBatch } from '../../src/crdt/causal-context.js';
import { ORMap } from '../../src/crdt/or-map.js';
import { initSync, isWasmReady, useBackend, wasmMemoryBytes } from '../../src/kernel/index.js';
import { loadWasmSync } from '../../src/kernel/node-load.js';
import { makeRng, SEED } from './laws.js';

const clock = (): HLC => new HLC({ now: () => 1_700_000_000_000 });
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('ORMap bulk merge', () => {
  it('into an empty map: exact rows, no arena slack, no kernel memory growth, same bytes', () => {
    if (!isWasmReady()) initSync(loadWasmSync()!);
    useBackend('wasm');
    const rng = makeRng(SEED ^ 0xb01);
    const src = new ORMap('r0', { clock: clock() });
    for (let i = 0; i < 40_000; i++) src.setLWW(`k-${i}`, { status: rng.pick(['a1x', 'b2y']), n: rng.int(1e6), pad: 'p'.repeat(rng.int(40)) });
    const bytes = src.encode();
    const r = new ORMap('r1', { clock: clock() });
    const before = wasmMemoryBytes();
    r.merge(ORMap.decode(bytes, 'wire'));
    expect(wasmMemoryBytes()).toBe(before);
    const s = r.memoryStats();
    expect(s.rowCapacity).toBe(s.rows);
    expect(s.chunkLengths.reduce((x, y) => x + y, 0)).toBe(s.valueBytes);
    expect(hex(r.encode())).toBe(hex(bytes));
  });

  for (const batch of [1, 7, 500]) {
    it(`big overlapping maps merged in kernel batches of ${batch} give the bytes of one call`, () => {
      const rng = makeRng(SEED ^ batch);
      const make = (id: string): ORMap => new ORMap(id, { clock: new HLC({ now: () => 1_700_000_000_000 + rng.int(3) }) });
      const a = make('a');
      for (let i = 0; i < 3000; i++) a.setLWW(`k${i}`, i);
      const b = ORMap.decode(a.encode(), 'b', { clock: clock() });
      for (let i = 0; i < 600; i++) {
        const k = `k${rng.int(3500)}`;
        const roll = rng.float();
        if (roll < 0.4) a.setLWW(k, rng.int(100));
        else if (roll < 0.7) b.setLWW(k, -rng.int(100));
        else if (roll < 0.85) a.delete(k);
        else b.delete(k);
      }
      const one = ORMap.decode(b.encode(), 'b', { clock: clock() });
      const prev = setMergeBatch(1e9);
      try {
        one.merge(ORMap.decode(a.encode(), 'w', { clock: clock() }));
        setMergeBatch(batch);
        const many = ORMap.decode(b.encode(), 'b', { clock: clock() });
        many.merge(ORMap.decode(a.encode(), 'w', { clock: clock() }));
        expect(hex(many.encode())).toBe(hex(one.encode()));
      } finally {
        setMergeBatch(prev);
      }
    });
  }
});

describe('ORSet bulk merge', () => {
  it('merged in kernel batches gives the bytes of one call (64-bit element hashes as keys)', async () => {
    const { ORSet } = await import('../../src/crdt/or-set.js');
    const rng = makeRng(SEED ^ 0x5e7);
    const a = new ORSet<string>('a');
    for (let i = 0; i < 2000; i++) a.add(`e${i}`);
    const b = ORSet.decode(a.encode(), 'b');
    for (let i = 0; i < 600; i++) {
      const x = `e${rng.int(2500)}`;
      if (rng.bool(0.5)) (rng.bool(0.5) ? a : b).add(x);
      else (rng.bool(0.5) ? a : b).remove(x);
    }
    const prev = setMergeBatch(1e9);
    try {
      const one = ORSet.decode(b.encode(), 'b');
      one.merge(ORSet.decode(a.encode(), 'w'));
      for (const batch of [1, 7, 300]) {
        setMergeBatch(batch);
        const many = ORSet.decode(b.encode(), 'b');
        many.merge(ORSet.decode(a.encode(), 'w'));
        expect(hex(many.encode())).toBe(hex(one.encode()));
      }
    } finally {
      setMergeBatch(prev);
    }
  });
});
