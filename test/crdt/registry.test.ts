import { describe, expect, it } from 'vitest';
import * as crdt from '../../src/crdt/index.js';
import { createCrdt, crdtTypeOf, decodeCrdt } from '../../src/crdt/registry.js';
import { CODEC_VERSION, CRDT_TYPE } from '../../src/crdt/types.js';
import { DecodeError } from '../../src/errors.js';
import { makeRng, mutate, SEED } from './laws.js';

const CLASSES = {
  GCounter: crdt.GCounter,
  PNCounter: crdt.PNCounter,
  GSet: crdt.GSet,
  TwoPSet: crdt.TwoPSet,
  ORSet: crdt.ORSet,
  LWWRegister: crdt.LWWRegister,
  MVRegister: crdt.MVRegister,
  ORMap: crdt.ORMap,
  RGA: crdt.RGA,
} as const;

/** One small non-empty instance of every type. */
function samples(): crdt.AnyCrdt[] {
  const gc = new crdt.GCounter('a');
  gc.increment(3);
  const pn = new crdt.PNCounter('a');
  pn.increment(-2);
  const gs = new crdt.GSet('a');
  gs.add('x');
  const tp = new crdt.TwoPSet('a');
  tp.add(1);
  tp.remove(1);
  tp.add(2);
  const os = new crdt.ORSet('a');
  os.add({ k: 1 });
  const lww = new crdt.LWWRegister('a');
  lww.set('v');
  const mv = new crdt.MVRegister('a');
  mv.set([1, 2]);
  const om = new crdt.ORMap('a');
  om.setLWW('vm', { id: 'vm' });
  om.counter('n').increment(1);
  const rga = new crdt.RGA('a');
  rga.insert(0, 'h');
  rga.insert(1, 'i');
  return [gc, pn, gs, tp, os, lww, mv, om, rga];
}

describe('crdt/registry', () => {
  it('the barrel exports all nine types with their type tags', () => {
    for (const [name, cls] of Object.entries(CLASSES)) {
      const x = new (cls as unknown as new (id: string) => crdt.AnyCrdt)('r1');
      expect(x.typeTag).toBe(CRDT_TYPE[name as keyof typeof CRDT_TYPE]);
      expect(x.replicaId).toBe('r1');
      const bytes = x.encode();
      expect(bytes[0]).toBe(CODEC_VERSION);
      expect(bytes[1]).toBe(x.typeTag);
    }
    expect(crdt.CODEC_VERSION).toBe(CODEC_VERSION);
  });

  it('decodeCrdt dispatches on the type tag and round-trips every type', () => {
    for (const x of samples()) {
      const bytes = x.encode();
      expect(crdtTypeOf(bytes)).toBe(x.typeTag);
      const y = decodeCrdt(bytes, 'me');
      expect(y.constructor).toBe(x.constructor);
      expect(y.replicaId).toBe('me');
      expect(Buffer.from(y.encode()).toString('hex')).toBe(Buffer.from(bytes).toString('hex'));
    }
  });

  it('createCrdt makes an empty instance of each tag; unknown tags are RangeError', () => {
    for (const [name, tag] of Object.entries(CRDT_TYPE)) {
      const x = createCrdt(tag, 'r');
      expect(x).toBeInstanceOf(CLASSES[name as keyof typeof CLASSES]);
      expect(x.takeDelta()).toBeNull();
      expect(decodeCrdt(x.encode()).typeTag).toBe(tag);
    }
    expect(() => createCrdt(0, 'r')).toThrow(RangeError);
    expect(() => createCrdt(10, 'r')).toThrow(RangeError);
  });

  it('bad input is a DecodeError: empty, wrong version, unknown tag, non-bytes', () => {
    expect(() => decodeCrdt(new Uint8Array())).toThrow(DecodeError);
    expect(() => decodeCrdt(new Uint8Array([CODEC_VERSION]))).toThrow(DecodeError);
    expect(() => decodeCrdt(new Uint8Array([99, 1]))).toThrow(DecodeError);
    expect(() => decodeCrdt(new Uint8Array([CODEC_VERSION, 0]))).toThrow(DecodeError);
    expect(() => decodeCrdt(new Uint8Array([CODEC_VERSION, 200]))).toThrow(DecodeError);
    expect(() => decodeCrdt([1, 2] as unknown as Uint8Array)).toThrow(DecodeError);
  });

  it('10,000 mutated encodings of any type give DecodeError or a valid state', () => {
    const rng = makeRng(SEED ^ 0x5e61);
    const corpus = samples().map((x) => x.encode());
    let ok = 0;
    for (let k = 0; k < 10_000; k++) {
      const m = mutate(rng, rng.pick(corpus));
      try {
        const x = decodeCrdt(m, 'f');
        ok++;
        expect(Buffer.from(decodeCrdt(x.encode()).encode()).toString('hex')).toBe(Buffer.from(x.encode()).toString('hex'));
      } catch (e) {
        if (!(e instanceof DecodeError)) throw new Error(`${(e as Error).name}: ${(e as Error).message} for ${Buffer.from(m).toString('hex')} (SEED=${SEED})`);
      }
    }
    expect(ok).toBeGreaterThan(0);
  });
});
