/**
 * Type-tag dispatch for CRDT encodings: every encoding starts with CODEC_VERSION then the type tag
 * (CRDT_TYPE), so `decodeCrdt` can hand the bytes to the right `T.decode`, and `createCrdt` makes an empty
 * instance of a tag. Used by the sync layer, which stores and ships CRDTs by tag.
 */
import { DecodeError } from '../errors.js';
import { GCounter } from './g-counter.js';
import { GSet } from './g-set.js';
import { LWWRegister } from './lww-register.js';
import { MVRegister } from './mv-register.js';
import { ORMap } from './or-map.js';
import { ORSet } from './or-set.js';
import { PNCounter } from './pn-counter.js';
import { RGA } from './rga.js';
import { TwoPSet } from './two-p-set.js';
import { CODEC_VERSION, CRDT_TYPE } from './types.js';

/** Any of the nine CRDT types. */
export type AnyCrdt =
  | GCounter
  | PNCounter
  | GSet<unknown>
  | TwoPSet<unknown>
  | ORSet<unknown>
  | LWWRegister<unknown>
  | MVRegister<unknown>
  | ORMap<unknown>
  | RGA<unknown>;

/** A type tag value of CRDT_TYPE. */
export type CrdtTypeTag = (typeof CRDT_TYPE)[keyof typeof CRDT_TYPE];

interface Entry {
  create(replicaId: string): AnyCrdt;
  decode(bytes: Uint8Array, replicaId?: string): AnyCrdt;
}

const TABLE: Record<CrdtTypeTag, Entry> = {
  [CRDT_TYPE.GCounter]: { create: (id) => new GCounter(id), decode: (b, id) => GCounter.decode(b, id) },
  [CRDT_TYPE.PNCounter]: { create: (id) => new PNCounter(id), decode: (b, id) => PNCounter.decode(b, id) },
  [CRDT_TYPE.GSet]: { create: (id) => new GSet(id), decode: (b, id) => GSet.decode(b, id) },
  [CRDT_TYPE.TwoPSet]: { create: (id) => new TwoPSet(id), decode: (b, id) => TwoPSet.decode(b, id) },
  [CRDT_TYPE.ORSet]: { create: (id) => new ORSet(id), decode: (b, id) => ORSet.decode(b, id) },
  [CRDT_TYPE.LWWRegister]: { create: (id) => new LWWRegister(id), decode: (b, id) => LWWRegister.decode(b, id) },
  [CRDT_TYPE.MVRegister]: { create: (id) => new MVRegister(id), decode: (b, id) => MVRegister.decode(b, id) },
  [CRDT_TYPE.ORMap]: { create: (id) => new ORMap(id), decode: (b, id) => ORMap.decode(b, id) },
  [CRDT_TYPE.RGA]: { create: (id) => new RGA(id), decode: (b, id) => RGA.decode(b, id) },
};

function entry(tag: number): Entry | undefined {
  return Object.prototype.hasOwnProperty.call(TABLE, tag) ? TABLE[tag as CrdtTypeTag] : undefined;
}

/** The type tag of an encoding (DecodeError when too short, of another codec version, or unknown). */
export function crdtTypeOf(bytes: Uint8Array): CrdtTypeTag {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError('input is not a Uint8Array');
  if (bytes.length < 2) throw new DecodeError('truncated input: no type tag');
  if (bytes[0] !== CODEC_VERSION) throw new DecodeError(`unsupported codec version ${bytes[0]}`);
  if (entry(bytes[1]) === undefined) throw new DecodeError(`unknown CRDT type tag ${bytes[1]}`);
  return bytes[1] as CrdtTypeTag;
}

/** Decode any CRDT encoding, dispatching on its type tag. Throws DecodeError on any bad input. */
export function decodeCrdt(bytes: Uint8Array, replicaId?: string): AnyCrdt {
  const tag = crdtTypeOf(bytes);
  return entry(tag)!.decode(bytes, replicaId);
}

/** An empty CRDT of the given type tag. Throws RangeError for an unknown tag. */
export function createCrdt(typeTag: number, replicaId: string): AnyCrdt {
  const e = entry(typeTag);
  if (e === undefined) throw new RangeError(`unknown CRDT type tag ${typeTag}`);
  return e.create(replicaId);
}
