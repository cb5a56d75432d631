/** A merge of another type is a ValidationError before anything changes (see checkMergeType). */
import { describe, expect, it } from 'vitest';
import { GCounter } from '../../src/crdt/g-counter.js';
import { GSet } from '../../src/crdt/g-set.js';
import { LWWRegister } from '../../src/crdt/lww-register.js';
import { MVRegister } from '../../src/crdt/mv-register.js';
import { ORMap } from '../../src/crdt/or-map.js';
import { ORSet } from '../../src/crdt/or-set.js';
import { PNCounter } from '../../src/crdt/pn-counter.js';
import { RGA } from '../../src/crdt/rga.js';
import { TwoPSet } from '../../src/crdt/two-p-set.js';
import { ValidationError } from '../../src/errors.js';

describe('merge of another type', () => {
  it('is refused with ValidationError for every type, and changes nothing', () => {
    const make = () => {
      const g = new GCounter('a');
      g.increment(2);
      const pn = new PNCounter('a');
      pn.increment(-3);
      const gs = new GSet<string>('a');
      gs.add('x');
      const tp = new TwoPSet<string>('a');
      tp.add('x');
      tp.add('y');
      tp.remove('y');
      const ors = new ORSet<string>('a');
      ors.add('x');
      const lww = new LWWRegister<string>('a');
      lww.set('v');
      const mv = new MVRegister<string>('a');
      mv.set('v');
      const m = new ORMap<string>('a');
      m.setLWW('k', 'v');
      const r = new RGA<string>('a');
      r.insert(0, 'x');
      return [g, pn, gs, tp, ors, lww, mv, m, r];
    };
    const all = make();
    const others = make();
    for (const a of all) {
      const before = a.encode();
      for (const b of others) {
        if (b.typeTag === a.typeTag) continue;
        expect(() => (a as { merge(o: unknown): unknown }).merge(b), `${a.constructor.name} <- ${b.constructor.name}`).toThrow(ValidationError);
      }
      for (const bad of [null, undefined, {}, 5]) expect(() => (a as { merge(o: unknown): unknown }).merge(bad)).toThrow(ValidationError);
      expect(a.encode()).toEqual(before);
    }
    // the case structural typing lets through: a GSet taking a TwoPSet's state would bring back 'y'
    const gs = new GSet<string>('a');
    const tp = new TwoPSet<string>('b');
    tp.add('y');
    tp.remove('y');
    expect(() => gs.merge(tp as unknown as GSet<string>)).toThrow(/cannot merge TwoPSet into GSet/);
    expect(gs.values()).toEqual([]);
  });
});
