import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { CrdtError } from '../../src/errors.js';
import { CRDT_TYPE, createCrdt, GCounter, LWWRegister, ORMap, ORSet, RGA, type AnyCrdt } from '../../src/crdt/index.js';

/** An instance of the type with a little state in it. */
function filled(tag: number, id: string): AnyCrdt {
  const c = createCrdt(tag, id) as AnyCrdt & Record<string, (...a: unknown[]) => unknown>;
  switch (tag) {
    case CRDT_TYPE.GCounter: c.increment(3); break;
    case CRDT_TYPE.PNCounter: c.increment(-2); break;
    case CRDT_TYPE.GSet: case CRDT_TYPE.TwoPSet: case CRDT_TYPE.ORSet: c.add('x'); c.add({ y: 1 }); break;
    case CRDT_TYPE.LWWRegister: case CRDT_TYPE.MVRegister: c.set({ v: 1 }); break;
    case CRDT_TYPE.ORMap: {
      const m = c as unknown as ORMap;
      m.setLWW('a', 1);
      m.counter('n').increment(2);
      m.map('inner').setLWW('b', 'c');
      break;
    }
    case CRDT_TYPE.RGA: c.insert(0, 'h'); c.insert(1, 'i'); break;
  }
  return c;
}

function expectDisposedError(f: () => unknown): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(CrdtError);
  expect((err as CrdtError).code).toBe('E_DISPOSED');
}

describe('dispose', () => {
  for (const [name, tag] of Object.entries(CRDT_TYPE)) {
    it(`${name}: retires the instance, leaves clones and peers alone`, () => {
      const c = filled(tag, 'r1');
      const copy = c.clone();
      const before = copy.encode();
      const peer = createCrdt(tag, 'r2');
      expect(c.disposed).toBe(false);
      c.dispose();
      expect(c.disposed).toBe(true);
      expect(c.replicaId).toBe('r1');
      expect(c.typeTag).toBe(tag);
      c.dispose(); // idempotent
      expectDisposedError(() => c.encode());
      expectDisposedError(() => c.takeDelta());
      expectDisposedError(() => c.clone());
      expectDisposedError(() => (c as { merge(o: unknown): unknown }).merge(peer));
      // merging the disposed instance into a live one fails before touching it
      const peerBytes = peer.encode();
      expectDisposedError(() => (peer as { merge(o: unknown): unknown }).merge(c));
      expect(peer.encode()).toEqual(peerBytes);
      expect(copy.encode()).toEqual(before);
    });
  }

  it('reads, getters and writes all throw after dispose', () => {
    const s = new ORSet<string>('a');
    s.add('x');
    s.dispose();
    expectDisposedError(() => s.size);
    expectDisposedError(() => s.has('x'));
    expectDisposedError(() => s.add('y'));
    const r = new RGA<string>('a');
    r.insert(0, 'x');
    r.dispose();
    expectDisposedError(() => r.length);
    const g = new GCounter('a');
    g.dispose();
    expectDisposedError(() => g.increment(1));
    expectDisposedError(() => g.value());
    const l = new LWWRegister('a');
    l.dispose();
    expectDisposedError(() => l.set(1));
    expectDisposedError(() => ((l as unknown as Record<string, unknown>).anything = 1));
  });

  it('a map disposes the nested CRDTs it owns', () => {
    const m = new ORMap('a');
    const n = m.counter('n');
    const inner = m.map('inner');
    n.increment(1);
    inner.setLWW('k', 1);
    m.dispose();
    expect(n.disposed).toBe(true);
    expect(inner.disposed).toBe(true);
    expectDisposedError(() => n.increment(1));
    expectDisposedError(() => inner.get('k'));
    expectDisposedError(() => m.get('k'));
  });

  it('a million created and disposed instances give their memory back', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const tags = Object.values(CRDT_TYPE);
    gc();
    const base = process.memoryUsage().heapUsed;
    let peak = 0;
    const held: AnyCrdt[] = [];
    for (let i = 0; i < 1_000_000; i++) {
      const tag = tags[i % tags.length];
      const c = createCrdt(tag, 'r');
      if (tag === CRDT_TYPE.GCounter) (c as GCounter).increment(i);
      held.push(c);
      if (held.length === 100_000) {
        // a batch is alive at once (so the test sees memory go up), then disposed and dropped
        peak = Math.max(peak, process.memoryUsage().heapUsed - base);
        for (const h of held) h.dispose();
        held.length = 0;
      }
    }
    gc();
    const after = process.memoryUsage().heapUsed - base;
    // 100,000 live instances take tens of MB; after disposing and dropping a million, under 8 MB remain
    expect(peak).toBeGreaterThan(16 * 2 ** 20);
    expect(after).toBeLessThan(8 * 2 ** 20);
  });
});
