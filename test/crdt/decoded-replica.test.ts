/**
 * An instance decoded without a replica id is 'decoded' (`DECODED_REPLICA_ID`): merging such instances into a
 * replica adds that id to its table once, however many (a new id per decode grew the table by one per merge,
 * which made merges and clones cost more each time); writing on one takes your id (`decode(bytes, id)`).
 * Every constructor checks its replica id alike.
 */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { GCounter } from '../../src/crdt/g-counter.js';
import { LWWRegister } from '../../src/crdt/lww-register.js';
import { MVRegister } from '../../src/crdt/mv-register.js';
import { ORMap } from '../../src/crdt/or-map.js';
import { ORSet } from '../../src/crdt/or-set.js';
import { PNCounter } from '../../src/crdt/pn-counter.js';
import { RGA } from '../../src/crdt/rga.js';
import { GSet } from '../../src/crdt/g-set.js';
import { TwoPSet } from '../../src/crdt/two-p-set.js';

describe('decode without a replica id', () => {
  it('merging many such instances adds one replica id in all', () => {
    const s = new ORSet<string>('a');
    const c = new PNCounter('a');
    const m = new ORMap<unknown>('a');
    // three writers sending their states, each received as bytes and decoded without an id
    const writers = [0, 1, 2].map((w) => ({ o: new ORSet<string>(`w${w}`), p: new PNCounter(`w${w}`), n: new ORMap<unknown>(`w${w}`) }));
    for (let i = 0; i < 500; i++) {
      const { o, p, n } = writers[i % 3]!;
      o.add(`e${i}`);
      s.merge(ORSet.decode<string>(o.encode()));
      p.increment(1);
      c.merge(PNCounter.decode(p.encode()));
      n.setLWW(`k${i}`, i);
      m.merge(ORMap.decode(n.encode()));
    }
    // a, w0, w1, w2 and at most the one shared decoded id
    expect(s.ctx.ids.length).toBeLessThanOrEqual(5);
    expect(m.ctx.ids.length).toBeLessThanOrEqual(5);
    expect((c as unknown as { table: { size: number } }).table.size).toBeLessThanOrEqual(5);
    expect([s.values().length, c.value(), m.size]).toEqual([500, 500, 500]);
    expect(GCounter.decode(new GCounter('w').encode(), 'mine').replicaId).toBe('mine');
    expect(GCounter.decode(new GCounter('w').encode()).replicaId).toBe('decoded');
  });
});

describe('replica ids', () => {
  it('every type takes a non-empty string of at most 1,024 characters and refuses anything else with ValidationError', () => {
    const types = [GCounter, PNCounter, ORSet, ORMap, MVRegister, LWWRegister, RGA, GSet, TwoPSet] as unknown as (new (id: unknown) => { replicaId: string })[];
    for (const T of types) {
      for (const bad of [123, '', 'x'.repeat(1025), undefined, null]) expect(() => new T(bad), `${T.name} ${String(bad).slice(0, 10)}`).toThrow(ValidationError);
      expect(new T('x'.repeat(1024)).replicaId.length).toBe(1024);
    }
  });
});
