import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AuthError, DecodeError } from '../../src/errors.js';
import { MSG, decodeEnvelope, encodeEnvelope, makeSigner, type Envelope } from '../../src/sync/envelope.js';
import { hmacSha256, sha256 } from '../../src/sync/hmac.js';
import { decodeDelta, decodeDigest, decodeSync, encodeDelta, encodeDigest, encodeSync, ITEM_SCOPED, ITEM_SLICE, ITEM_STATE, ITEM_TREE } from '../../src/sync/messages.js';
import { SeenCache } from '../../src/sync/seen-cache.js';
import { Random } from '../../src/time/random.js';

const SEED = Number(process.env.SEED ?? 0xe7e1);
const RUNS = process.env.LONG ? 50_000 : 5_000;

const env: Envelope = { type: MSG.DELTA, flags: 2, origin: 'node-us-east-1', epoch: 123456789, counter: 42, hops: 3, payload: new Uint8Array([9, 8, 7]) };

describe('HMAC-SHA256 (pure TS)', () => {
  it('matches node:crypto for SHA-256 and HMAC over random inputs and key sizes', () => {
    const r = new Random(SEED);
    for (let i = 0; i < 300; i++) {
      const data = Uint8Array.from({ length: r.int(300) }, () => r.int(256));
      const key = Uint8Array.from({ length: r.int(150) }, () => r.int(256));
      const cut = r.int(data.length + 1);
      expect(Buffer.from(sha256(data.subarray(0, cut), data.subarray(cut))).toString('hex')).toBe(createHash('sha256').update(data).digest('hex'));
      expect(Buffer.from(hmacSha256(key)(data)).toString('hex')).toBe(createHmac('sha256', key).update(data).digest('hex'));
    }
  });
});

describe('envelope', () => {
  it('round-trips with and without a key', () => {
    for (const signer of [undefined, makeSigner('k')]) {
      const got = decodeEnvelope(encodeEnvelope(env, signer), signer);
      expect(got).toEqual(env);
    }
  });

  it('rejects untagged, wrongly keyed and tampered messages with AuthError when a key is set', () => {
    const key = makeSigner('cluster-key');
    expect(() => decodeEnvelope(encodeEnvelope(env, undefined), key)).toThrow(AuthError);
    expect(() => decodeEnvelope(encodeEnvelope(env, makeSigner('other')), key)).toThrow(AuthError);
    const good = encodeEnvelope(env, key);
    for (let i = 3; i < good.length; i++) {
      const bad = good.slice();
      bad[i] ^= 0x10;
      expect(() => decodeEnvelope(bad, key)).toThrow(i < good.length - 32 ? /tag|truncated|trailing|varint|origin|UTF|flags|type|version/ : AuthError);
    }
  });

  it('a node without a key refuses tagged messages (AuthError): a keyed sender is another cluster', () => {
    expect(() => decodeEnvelope(encodeEnvelope(env, makeSigner('cluster-key')), undefined)).toThrow(/no cluster key/);
    expect(decodeEnvelope(encodeEnvelope(env, undefined), undefined)).toEqual(env);
  });

  it('mutated and truncated messages throw DecodeError or AuthError, nothing else', () => {
    const r = new Random(SEED);
    const key = makeSigner('k');
    const base = [encodeEnvelope(env, undefined), encodeEnvelope(env, key)];
    let other = 0;
    for (let i = 0; i < RUNS; i++) {
      const m = base[i % 2].slice(0, 1 + r.int(base[i % 2].length));
      for (let k = 0; k < r.int(4); k++) m[r.int(m.length)] = r.int(256);
      for (const signer of [undefined, key]) {
        try {
          decodeEnvelope(m, signer);
        } catch (e) {
          if (!(e instanceof DecodeError || e instanceof AuthError)) other++;
        }
      }
    }
    expect(other).toBe(0);
  });

  it('payload codecs round-trip and reject mutated input with DecodeError only', () => {
    const delta = encodeDelta({ writesLo: 3, writesHi: 9, deps: [['a', 4], ['b', 1]], objects: [{ name: 'vms', typeTag: 8, bytes: new Uint8Array([1, 2, 3]) }] });
    expect(decodeDelta(delta)).toEqual({ writesLo: 3, writesHi: 9, deps: [['a', 4], ['b', 1]], objects: [{ name: 'vms', typeTag: 8, bytes: new Uint8Array([1, 2, 3]) }] });
    const digest = encodeDigest({
      session: 77,
      seen: [['a', 2]],
      objects: [
        { name: 'x', typeTag: 1, lo: 5, hi: 6, keyed: true },
        { name: 'm', typeTag: 8, lo: 1, hi: 2, keyed: true, context: new Uint8Array([1, 1, 97, 3, 0]) },
        { name: 'r', typeTag: 9, lo: 3, hi: 4, keyed: false, clock: new Uint8Array([1, 2, 3]) },
      ],
      members: [0xdeadbeef, 7],
    });
    expect(decodeDigest(digest).members).toEqual([0xdeadbeef, 7]);
    // without members the digest is what earlier versions wrote (session, vector, objects), and reads back
    const plain = encodeDigest({ session: 1, seen: [], objects: [] });
    expect([...plain]).toEqual([1, 0, 0]);
    expect(decodeDigest(plain).members).toBeUndefined();
    // a members flag other than 1, or a truncated trailer, is a DecodeError
    const withMembers = encodeDigest({ session: 1, seen: [], objects: [], members: [5, 6] });
    expect(() => decodeDigest(withMembers.map((b, i) => (i === 3 ? 2 : b)))).toThrow(DecodeError);
    expect(() => decodeDigest(withMembers.subarray(0, withMembers.length - 1))).toThrow(DecodeError);
    // an object listed twice (each listing may be answered with a whole state: 1,000 listings in 4.8 KB made
    // 1,000 answers) is a DecodeError
    const twice = { name: 'vms', typeTag: 8, lo: 0, hi: 0, keyed: true };
    expect(() => decodeDigest(encodeDigest({ session: 2, seen: [], objects: [twice, { ...twice, typeTag: 9 }] }))).toThrow(/twice/);
    expect(decodeDigest(encodeDigest({ session: 2, seen: [], objects: [twice, { ...twice, name: 'vms2' }] })).objects.length).toBe(2);
    expect(decodeDigest(digest).objects).toEqual([
      { name: 'x', typeTag: 1, lo: 5, hi: 6, keyed: true },
      { name: 'm', typeTag: 8, lo: 1, hi: 2, keyed: true, context: new Uint8Array([1, 1, 97, 3, 0]) },
      { name: 'r', typeTag: 9, lo: 3, hi: 4, keyed: false, clock: new Uint8Array([1, 2, 3]) },
    ]);
    const children = Array.from({ length: 16 }, (_, i) => (i % 3 ? { lo: i, hi: i * 7, count: i } : { lo: 0, hi: 0, count: 0 }));
    const sync = encodeSync({
      session: 1,
      seen: [],
      items: [
        { kind: ITEM_STATE, name: 's', typeTag: 2, final: true, lo: 1, hi: 2, bytes: new Uint8Array([5]) },
        { kind: ITEM_TREE, name: 'm', depth: 4, nodes: [{ prefix: 15, children }] },
        { kind: ITEM_SLICE, name: 'm', typeTag: 8, left: 2, depth: 8, buckets: [{ prefix: 255, lo: 1, hi: 2 }], bytes: new Uint8Array([1]) },
        { kind: ITEM_SCOPED, name: 'm', typeTag: 8, final: false, lo: 9, hi: 8, bytes: new Uint8Array([7, 7]) },
      ],
    });
    const back = decodeSync(sync);
    expect(back.items.length).toBe(4);
    expect(back.items[3]).toEqual({ kind: ITEM_SCOPED, name: 'm', typeTag: 8, final: false, lo: 9, hi: 8, bytes: new Uint8Array([7, 7]) });
    expect((back.items[1] as { nodes: { children: unknown[] }[] }).nodes[0].children).toEqual(children);
    // the withheld flag: one trailing byte (1) only when set; an answer without it is what earlier versions wrote
    expect(back.withheld).toBeUndefined();
    expect([...encodeSync({ session: 1, seen: [], items: [], withheld: false })]).toEqual([1, 0, 0]);
    const withheld = encodeSync({ session: 1, seen: [], items: [], withheld: true });
    expect([...withheld]).toEqual([1, 0, 0, 1]);
    expect(decodeSync(withheld).withheld).toBe(true);
    expect(() => decodeSync(Uint8Array.of(1, 0, 0, 2))).toThrow(DecodeError);
    expect(() => decodeSync(Uint8Array.of(1, 0, 0, 1, 1))).toThrow(DecodeError);
    // a part of an answer sent in parts: flag 2, then group, index, total (2..MAX_PARTS, index < total)
    const part = encodeSync({ session: 1, seen: [], items: [], withheld: true, part: { group: 300, index: 1, total: 3 } });
    expect([...part]).toEqual([1, 0, 0, 3, 0xac, 0x02, 1, 3]);
    expect(decodeSync(part)).toEqual({ session: 1, seen: [], items: [], withheld: true, part: { group: 300, index: 1, total: 3 } });
    expect(decodeSync(Uint8Array.of(1, 0, 0, 2, 0, 0, 2)).part).toEqual({ group: 0, index: 0, total: 2 });
    for (const bad of [[2, 0, 0, 1], [2, 0, 2, 2], [2, 0, 0], [4], [0], [2, 0, 0, 0x83, 0x80, 0x08]]) {
      expect(() => decodeSync(Uint8Array.of(1, 0, 0, ...bad)), JSON.stringify(bad)).toThrow(DecodeError);
    }
    const r = new Random(SEED + 1);
    let other = 0;
    for (let i = 0; i < RUNS; i++) {
      const src = [delta, digest, sync][i % 3];
      const m = src.slice(0, 1 + r.int(src.length));
      for (let k = 0; k < r.int(4); k++) m[r.int(m.length)] = r.int(256);
      try {
        [decodeDelta, decodeDigest, decodeSync][i % 3](m);
      } catch (e) {
        if (!(e instanceof DecodeError)) other++;
      }
    }
    expect(other).toBe(0);
  });
});

describe('SeenCache', () => {
  it('detects duplicates and evicts the least recently seen beyond its capacity', () => {
    const c = new SeenCache(3);
    expect(c.checkAndAdd('a')).toBe(false);
    expect(c.checkAndAdd('b')).toBe(false);
    expect(c.checkAndAdd('c')).toBe(false);
    expect(c.checkAndAdd('a')).toBe(true); // refreshes a
    expect(c.checkAndAdd('d')).toBe(false); // evicts b
    expect(c.has('b')).toBe(false);
    expect(c.has('a')).toBe(true);
    for (let i = 0; i < 10_000; i++) c.checkAndAdd(`x${i}`);
    expect(c.size).toBe(3);
    expect(c.evictions).toBe(10_001);
  });
});
