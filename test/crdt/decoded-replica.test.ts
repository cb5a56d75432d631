/**
 * An instance decoded without a replica id gets a new one per call (`decodedReplicaId`): writes made on two such
 * copies of one state are two replicas' writes, and merging keeps both. (They shared 'decoded' before: two +1
 * increments merged to one, concurrent adds were dropped.) An explicit id is used as given. Every constructor
 * checks its replica id alike.
 */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { GCounter } from '../../src/crdt/g-counter.js';
import { LWWRegister } from '../../src/crdt/lww-register.js';
import { MVRegister } from '../../src/crdt/mv-register.js';
import { ORMap } from '../../src/crdt/or-map.js';
import { ORSet } from '../../src/crdt/or-set.js';
import { PNCounter } from '../../src/crdt/pn-counter.js';
import { decodedReplicaId } from '../../src/crdt/replicas.js';
import { RGA } from '../../src/crdt/rga.js';
import { GSet } from '../../src/crdt/g-set.js';
import { TwoPSet } from '../../src/crdt/two-p-set.js';

describe('decode without a replica id', () => {
  it('gives each decoded instance an id of its own', () => {
    const a = decodedReplicaId(), b = decodedReplicaId();
    expect(a).toMatch(/^decoded-[0-9a-f]{12}-[0-9a-z]+$/);
    expect(b).not.toBe(a);
    const bytes = new GCounter('w').encode();
    const ids = [GCounter, PNCounter, ORSet, ORMap, MVRegister, LWWRegister, RGA, GSet, TwoPSet].map((T) => {
      const x = (T as unknown as { decode(b: Uint8Array): { replicaId: string } }).decode(new (T as unknown as new (id: string) => { encode(): Uint8Array })('w').encode());
      return x.replicaId;
    });
    expect(new Set(ids).size).toBe(ids.length);
    expect(GCounter.decode(bytes, 'mine').replicaId).toBe('mine');
  });

  it('keeps the writes of two copies decoded from one state when they merge', () => {
    const g = GCounter.decode(new GCounter('w').encode());
    const g2 = GCounter.decode(new GCounter('w').encode());
    g.increment(1);
    g2.increment(1);
    g.merge(g2);
    expect(g.value()).toBe(2);

    const p = PNCounter.decode(new PNCounter('w').encode());
    const p2 = PNCounter.decode(new PNCounter('w').encode());
    p.increment(3);
    p2.decrement(1);
    p.merge(p2);
    expect(p.value()).toBe(2);

    const base = new ORSet<string>('w');
    base.add('x');
    const s = ORSet.decode<string>(base.encode());
    const s2 = ORSet.decode<string>(base.encode());
    s.add('p');
    s2.add('q');
    s.merge(s2);
    expect(s.values().sort()).toEqual(['p', 'q', 'x']);

    const m = ORMap.decode(new ORMap('w').encode());
    const m2 = ORMap.decode(new ORMap('w').encode());
    m.setLWW('a', 1);
    m2.setLWW('b', 2);
    m.merge(m2);
    expect(m.keys()).toEqual(['a', 'b']);

    const mv = MVRegister.decode<string>(new MVRegister<string>('w').encode());
    const mv2 = MVRegister.decode<string>(new MVRegister<string>('w').encode());
    mv.set('one');
    mv2.set('two');
    mv.merge(mv2);
    expect([...mv.values()].sort()).toEqual(['one', 'two']);

    const r = RGA.decode<string>(new RGA<string>('w').encode());
    const r2 = RGA.decode<string>(new RGA<string>('w').encode());
    r.insert(0, 'a');
    r2.insert(0, 'b');
    r.merge(r2);
    expect(r.toArray().sort()).toEqual(['a', 'b']);
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
