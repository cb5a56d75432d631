import { ValidationError } from '../errors.js';

/**
 * What every CRDT shares. Types are state-based: `merge` takes a full state or a delta-state of the same type
 * (deltas are states), and is commutative, associative and idempotent.
 */
export interface Crdt<Self = unknown> {
  readonly replicaId: string;
  /** Type tag (see CRDT_TYPE) used by the codec and the sync envelope. */
  readonly typeTag: number;
  /**
   * Join `other` (a full state or a delta-state) into this. Returns false when this state did not change
   * (types that cannot tell cheaply return nothing, which counts as changed).
   */
  merge(other: Self): boolean | void;
  /** Canonical bytes: equal states give equal bytes (on both kernel backends). */
  encode(): Uint8Array;
  /** The delta-state accumulated since the last take (null when nothing changed). */
  takeDelta(): Self | null;
  clone(): Self;
  /** Release the state now; any later use throws `CrdtError` (code `E_DISPOSED`). Idempotent. */
  dispose(): void;
  /** True once `dispose()` ran. */
  readonly disposed: boolean;
}

/** One byte per type, first byte after the version byte of every encoding. Stable: part of the wire format. */
export const CRDT_TYPE = {
  GCounter: 1,
  PNCounter: 2,
  GSet: 3,
  TwoPSet: 4,
  ORSet: 5,
  LWWRegister: 6,
  MVRegister: 7,
  ORMap: 8,
  RGA: 9,
} as const;

/** Version byte that starts every CRDT encoding. */
export const CODEC_VERSION = 1;

const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(CRDT_TYPE).map(([k, v]) => [v, k]));

/**
 * A merge of another type (a GSet merged with a TwoPSet's state, which would bring back what the TwoPSet
 * removed; an ORMap with an ORSet) is a ValidationError before anything changes: structural typing lets
 * TypeScript pass some of them, and plain JS any.
 */
export function checkMergeType(self: { readonly typeTag: number }, other: unknown): void {
  const tag = (other as { typeTag?: unknown } | null | undefined)?.typeTag;
  if (tag !== self.typeTag) throw new ValidationError(`cannot merge ${typeof tag === 'number' ? (TYPE_NAMES[tag] ?? `type ${tag}`) : String(other)} into ${TYPE_NAMES[self.typeTag]}`);
}
