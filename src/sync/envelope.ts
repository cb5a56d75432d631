/**
 * The wire envelope around every sync message:
 *
 *   u8 version (1) | u8 type | u8 flags | string origin | varuint epoch | varuint counter | u8 hops |
 *   bytes payload | [32-byte HMAC-SHA256 tag over everything before it, when flags & TAGGED]
 *
 * `origin` is the replica that created the message (forwarders keep it; the transport tells who handed it
 * over), `(origin, epoch, counter)` is the message id used by the seen-cache (`epoch` is random per engine
 * start, so a restarted replica never reuses ids). `hops` is the only field a forwarder changes, and it
 * re-tags the message with the shared cluster key.
 *
 * `decodeEnvelope` throws `DecodeError` for anything malformed and `AuthError` for a missing or wrong tag when
 * a key is set. Payload codecs live in messages.ts.
 */
import { Reader, Writer } from '../codec/binary.js';
import { AuthError, DecodeError } from '../errors.js';
import { hmacSha256, tagsEqual } from './hmac.js';

export const ENVELOPE_VERSION = 1;
export const TAG_BYTES = 32;

export const MSG = {
  /** Gossip / eager push of delta-states. */
  DELTA: 1,
  /** Acknowledgement of merged writes, sent to the writes' origin. */
  ACK: 2,
  /** Anti-entropy: initiator's digest. */
  SYNC_DIGEST: 3,
  /** Anti-entropy: a round of tree hashes and data, either direction. */
  SYNC: 4,
  /** Liveness probe and its answer. */
  PING: 5,
  PONG: 6,
  /** Majority read: request a replica's state of one object, and its answer. */
  READ_REQ: 7,
  READ_RESP: 8,
  /** Several envelopes to one peer in one transport message (interval gossip). */
  BUNDLE: 9,
} as const;

export const FLAG_TAGGED = 1;
export const FLAG_WANT_ACK = 2;

export interface Envelope {
  type: number;
  flags: number;
  origin: string;
  epoch: number;
  counter: number;
  hops: number;
  payload: Uint8Array;
}

/** A message authenticator built from a cluster key (undefined key: no tags). */
export type Signer = (...parts: Uint8Array[]) => Uint8Array;

export function makeSigner(clusterKey: Uint8Array | string | undefined): Signer | undefined {
  if (clusterKey === undefined) return undefined;
  const key = typeof clusterKey === 'string' ? new TextEncoder().encode(clusterKey) : clusterKey;
  if (key.length === 0) throw new RangeError('clusterKey must not be empty');
  return hmacSha256(key);
}

export function encodeEnvelope(e: Envelope, signer: Signer | undefined): Uint8Array {
  const w = new Writer(48 + e.payload.length + e.origin.length * 3);
  w.u8(ENVELOPE_VERSION);
  w.u8(e.type);
  w.u8(signer ? e.flags | FLAG_TAGGED : e.flags & ~FLAG_TAGGED);
  w.string(e.origin);
  w.varuint(e.epoch);
  w.varuint(e.counter);
  w.u8(Math.min(255, e.hops));
  w.bytes(e.payload);
  if (!signer) return w.finish();
  const tag = signer(w.view_());
  w.raw(tag);
  return w.finish();
}

/**
 * Decode and authenticate. With a signer, a message without a tag or with a wrong one throws AuthError.
 * Without a signer, a tagged message throws AuthError too: its sender runs with a cluster key this node does
 * not have, so they are not one cluster (a node left without `--cluster-key-file` used to merge what keyed
 * nodes sent it while they dropped everything it sent: a misconfiguration now shows on both sides, in the
 * auth counters). The payload is a view into `bytes`.
 */
export function decodeEnvelope(bytes: Uint8Array, signer: Signer | undefined): Envelope {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError('message is not bytes');
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== ENVELOPE_VERSION) throw new DecodeError(`unsupported envelope version ${version}`);
  const type = r.u8();
  if (type < MSG.DELTA || type > MSG.BUNDLE) throw new DecodeError(`unknown message type ${type}`);
  const flags = r.u8();
  if (flags & ~(FLAG_TAGGED | FLAG_WANT_ACK)) throw new DecodeError(`unknown flags ${flags}`);
  const origin = r.string();
  if (origin.length === 0 || origin.length > 256) throw new DecodeError('bad origin id');
  const epoch = r.varuint();
  const counter = r.varuint();
  const hops = r.u8();
  const payload = r.bytes();
  const bodyEnd = r.pos;
  if (flags & FLAG_TAGGED) {
    const tag = r.raw(TAG_BYTES);
    r.done();
    if (!signer) throw new AuthError('tagged message, but this node has no cluster key');
    if (!tagsEqual(tag, signer(bytes.subarray(0, bodyEnd)))) throw new AuthError('bad message tag');
  } else {
    r.done();
    if (signer) throw new AuthError('untagged message');
  }
  return { type, flags: flags & ~FLAG_TAGGED, origin, epoch, counter, hops, payload };
}
