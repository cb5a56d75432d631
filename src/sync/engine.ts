/**
 * `SyncEngine`: a store of named CRDTs kept in sync with peers over a `Transport`.
 *
 * Paths a change takes (all timers through the injected `Scheduler`, all randomness through a seeded `Random`):
 * 1. Local write: `update(name, fn, { write })` runs `fn` on the CRDT, takes its delta, appends it to storage
 *    (when a storage is set) and only then queues it: a delta never leaves the node before it is durable, so
 *    a crash can never make a replica reuse a counter or dot others have already seen.
 * 2. Eager push: queued deltas are batched for `flushDelayMs` and sent as one DELTA message to `fanout` live
 *    peers (to every peer for `majority`/`all` writes, re-sent to the ones that have not acknowledged).
 *    A receiver merges it, acknowledges it to the origin when asked, and forwards it at once to `fanout`
 *    other live peers while `hops < maxHops` (epidemic flooding; the seen-cache drops the duplicates).
 * 3. Interval gossip: every message sent or forwarded is kept in a bounded queue and re-sent to `fanout`
 *    random live peers not known to hold it on the next `gossip.rounds` gossip ticks (a peer is known to hold
 *    it when it came from that peer or that peer sent it again); all of one tick's messages for one peer
 *    travel in one BUNDLE. This is the repair path for lost messages (flooding once reaches all but about
 *    e^-fanout of the replicas; the ticks pick up the rest).
 * 4. Anti-entropy: every `antiEntropy.intervalMs` one peer (round robin) gets a digest: the version vector of
 *    merged writes and a 64-bit hash per object. Objects that differ are exchanged as whole states, except
 *    map-like objects. Those that can (`ScopedCrdt`, ORMap) also put their causal context in the digest:
 *    the peer answers with the entries holding a dot that context lacks (`deltaSince`), the initiator merges
 *    them and answers the same way, so adds and overwrites cost about their own entries once (measured in
 *    bench/RESULTS.md). Removals leave no dot a context could show: when the hashes still differ after
 *    that, or for keyed objects without a context (`KeyedCrdt`), the two sides descend a bucket hash tree
 *    16-way and exchange only the differing buckets. A receiver merges, rehashes, and answers only with
 *    what the other side still lacks, so a one-sided difference travels once. When every key agrees and
 *    only the contexts differ, the states go whole, or when too big for one message, each side's retired
 *    dots in parts (stateItems); a digest too big for one message leaves out its biggest contexts. A
 *    session that makes no progress for `antiEntropy.timeoutMs` failed (a missed exchange for liveness,
 *    unless the peer answered: a part of an answer in parts may have been lost) and is retried at once with
 *    the next peer, up to `antiEntropy.retries` times per interval (without limit while a recovery after
 *    set-aside records lasts), so a lost message does not cost a whole interval. A session lasts at most 60
 *    timeouts.
 *    The digest's version vector (writes merged per origin) also acknowledges majority/all writes.
 * 5. Causal delivery: deltas of objects that need it (RGA) travel in messages carrying the origin's causal
 *    vector and pass through a bounded `CausalBuffer`; what is dropped or stuck is repaired by anti-entropy's
 *    whole-state transfer, after which the buffer's frontier is advanced.
 *
 * Durability layout in `Storage` (keys): `s/<name>` snapshot, `d/<name>/<seq>` logged local deltas since the
 * snapshot (compacted into a new snapshot every `snapshotEvery` deltas), `m/seq` and `m/cseq` counters.
 * Snapshot and log values are framed: 0xfe, then a u32 (little-endian) MurmurHash3 of the encoding seeded
 * with a hash of the object's name, then the encoding, so a flipped bit or another object's bytes under the
 * key is caught at load (and set aside) instead of merged. Values without the frame (written before it
 * existed: an encoding starts with its codec version, 1) load unchecked.
 * Remote merges are checkpointed as snapshots every `checkpointMs` (they are not needed for safety: a
 * restarted replica catches up by anti-entropy). `start()` loads all of it before joining.
 *
 * Consistency levels: a `majority`/`all` write goes to every peer at once (not only `fanout`) with an
 * ack request; each replica that merges it answers ACK to the origin (again on a duplicate, in case the first
 * ACK was lost); unacknowledged peers get the message again every `writeRetryMs` until the timeout.
 *
 * Authentication: with `clusterKey`, every envelope carries an HMAC-SHA256 tag computed by a pure-TS SHA-256
 * (hmac.ts): synchronous on the send path, identical in browsers and Node, no Web Crypto or node:crypto.
 *
 * Untrusted input: every message is size-checked, authenticated (HMAC-SHA256 with `clusterKey`), decoded in
 * full and type-checked before any state changes; failures are counted in `stats()` and never thrown.
 * Membership is not authentication: a message from a sender that was never added as a peer is still merged
 * (gossip forwards other replicas' deltas, and a new replica may reach us before an operator adds it) and
 * answered, except that objects with collectable tombstones (RGA) go to members only (see collectStable),
 * while removed peers are refused (counted as `fromRemoved`). On a network others can reach, set `clusterKey`.
 * Objects must be mutated only inside `update()` (or followed by `commit()`): deltas taken on remote merges
 * are discarded, so a mutation made outside would reach peers only by anti-entropy.
 */
import { CausalBuffer, type CausalEvent } from '../clock/causal-buffer.js';
import { VectorClock } from '../clock/vector-clock.js';
import { varuintSize } from '../codec/binary.js';
import { CRDT_TYPE, type Crdt } from '../crdt/types.js';
import { AuthError, CrdtError, DecodeError, NotInitializedError, StorageError, TimeoutError, ValidationError } from '../errors.js';
import type { Storage, StorageBatchOp } from '../storage/types.js';
import { withTrustedTimes } from '../clock/hlc.js';
import { Random, hashString } from '../time/random.js';
import { RealScheduler, type Scheduler, type TimerHandle } from '../time/scheduler.js';
import type { Transport } from '../transport/types.js';
import { KeyTree, hash64, murmur32, isKeyed, isRetiring, isScoped, isTracked, TREE_FANOUT_BITS, TREE_MAX_DEPTH, type KeyedCrdt, type ScopedCrdt, type TrackedCrdt, type TreeNode } from './digest.js';
import { FLAG_WANT_ACK, MSG, decodeEnvelope, encodeEnvelope, makeSigner, type Envelope, type Signer } from './envelope.js';
import {
  ITEM_SCOPED,
  ITEM_SLICE,
  ITEM_STATE,
  ITEM_TREE,
  decodeAck,
  decodeBundle,
  decodeDelta,
  decodeDigest,
  decodeNonce,
  decodeReadReq,
  decodeReadResp,
  decodeSync,
  encodeAck,
  encodeBundle,
  encodeDelta,
  encodeDigest,
  encodeNonce,
  encodeReadReq,
  encodeReadResp,
  encodeSync,
  type DeltaObject,
  type DeltaPayload,
  type SliceItem,
  type SyncItem,
  type SyncPart,
  SYNC_TRAILER_MAX,
  stateAnswerHeadMax,
  treeItemHeadMax,
  treeNodeSize,
  type TreeItem,
  type VersionEntries,
} from './messages.js';
import { PeerTable, type PeerState } from './peers.js';
import { SeenCache } from './seen-cache.js';
import { WriteVector } from './write-vector.js';

export type WriteLevel = 'local' | 'majority' | 'all';
export type ReadLevel = 'local' | 'majority';

export interface Logger {
  debug?(msg: string, ...args: unknown[]): void;
  info?(msg: string, ...args: unknown[]): void;
  warn?(msg: string, ...args: unknown[]): void;
  error?(msg: string, ...args: unknown[]): void;
}

export interface SyncEngineOptions {
  replicaId: string;
  transport: Transport;
  /** Timers (default: RealScheduler). */
  scheduler?: Scheduler;
  /** Durable state (default: none, state lives in memory only). */
  storage?: Storage;
  /**
   * Seeded randomness for peer choice, the epoch and session ids (default: from host entropy, or from a
   * seeded MemoryNetwork's seed). Give each incarnation of a replica (each restart) a seed of its own: a
   * repeated one repeats the epoch (peers drop its messages as seen) and the session ids (an answer to the
   * crashed incarnation's digest would be taken as an answer to the new one's).
   */
  random?: Random;
  gossip?: {
    /** Peers per push (default 3). */
    fanout?: number;
    /** Interval gossip period, ms (default 5000). */
    intervalMs?: number;
    /** Forwarding limit (default 10). */
    maxHops?: number;
    /** Seen-cache capacity in message ids (default 10,000). */
    seenCacheSize?: number;
    /** Interval-gossip rounds each message is repeated for (default 2). */
    rounds?: number;
    /** Bound of the interval-gossip queue in messages (default 1,024; the oldest are dropped). */
    maxPending?: number;
    /**
     * Bound of the interval-gossip queue in payload bytes (default 64 MiB; the oldest are dropped). With the
     * message bound alone, a peer sending large messages would pin up to `maxPending` times `maxMessageBytes`.
     */
    maxPendingBytes?: number;
    /**
     * Eager push (default true): local deltas go out after `flushDelayMs` and received ones are forwarded at
     * once. false: both wait for the next gossip tick (pure round-based gossip, for measurements).
     */
    eagerPush?: boolean;
  };
  antiEntropy?: {
    /** Period, ms (default 30,000). */
    intervalMs?: number;
    /** A session without progress for this long failed (default min(intervalMs / 3, 5,000)); a session lasts
     * at most 60 times this, however many rounds it takes. */
    timeoutMs?: number;
    /** Immediate retries with the next peer after a failed session, per interval (default 2; no limit while a
     * recovery after set-aside stored records lasts). */
    retries?: number;
  };
  liveness?: {
    /** Probe period, ms (default gossip.intervalMs). One peer per period, round robin. */
    probeIntervalMs?: number;
    /** Probe answer timeout, ms (default min(probeIntervalMs / 2, 2,000)). */
    probeTimeoutMs?: number;
    /** Misses before suspect (default 2) and dead (default 4). */
    suspectAfter?: number;
    deadAfter?: number;
  };
  /** Batch window for eager push, ms (default 10). */
  flushDelayMs?: number;
  /** Shared secret: every message carries an HMAC-SHA256 tag with it, untagged or wrong ones are dropped. */
  clusterKey?: Uint8Array | string;
  logger?: Logger;
  /** Largest message sent or accepted, bytes (default 32 MiB). */
  maxMessageBytes?: number;
  /** Bound of the causal buffer (default 10,000 messages). */
  causalBufferSize?: number;
  /**
   * Bound of the causal buffer in payload bytes (default 64 MiB; the oldest are dropped, and anti-entropy
   * delivers what they carried). A message whose dependencies never arrive must not pin memory for good.
   */
  causalBufferBytes?: number;
  /** Logged deltas per object before they are compacted into a snapshot (default 64). */
  snapshotEvery?: number;
  /** Period of snapshotting objects changed by remote merges, ms (default 10,000). */
  checkpointMs?: number;
  /** Re-send period of unacknowledged majority/all writes, ms (default 1,000). */
  writeRetryMs?: number;
}

export interface UpdateOptions {
  write?: WriteLevel;
  /** For majority/all (default 5,000 ms). */
  timeoutMs?: number;
}

export interface ReadOptions {
  read?: ReadLevel;
  timeoutMs?: number;
}

export interface ChangeEvent {
  name: string;
  /** Replica whose message brought the change (this replica for local writes). */
  origin: string;
  local: boolean;
}

export interface SyncEvent {
  peer: string;
  ok: boolean;
  durationMs: number;
  keysExchanged: number;
}

type EventMap = {
  change: ChangeEvent;
  'peer-up': string;
  'peer-down': string;
  sync: SyncEvent;
};

export interface SyncStats {
  gossip: {
    sent: number;
    received: number;
    duplicatesDropped: number;
    seenCacheSize: number;
    fanout: number;
    maxHops: number;
    /** Messages waiting in the interval-gossip queue. */
    pending: number;
  };
  antiEntropy: {
    totalSyncs: number;
    successfulSyncs: number;
    failedSyncs: number;
    averageSyncTimeMs: number;
    keysExchanged: number;
    bytesSent: number;
    bytesReceived: number;
    /** Answers sent as several messages because one would have exceeded `maxMessageBytes`. */
    splitAnswers: number;
    /** Requests (digests, answers, majority reads) held until this replica's local writes were durable. */
    heldRequests: number;
    /**
     * Scoped answers not merged: they answered a digest or an answer of an earlier incarnation of this
     * replica (before a restart), or came too late (see `spoke`).
     */
    staleAnswers: number;
    /**
     * Sessions this replica started whose answer withheld objects: the peer does not count this replica as
     * a member (it has not added it, or removed it), so it keeps objects with collectable tombstones (RGA)
     * from it.
     */
    withheldAnswers: number;
  };
  peerCount: number;
  crdtCount: number;
  peers: { id: string; state: PeerState }[];
  /**
   * `storage`: stored records that could not be read back at start (corrupt, truncated, another type); each is
   * moved under `q/` and logged, and the node starts with the rest (peers fill in by anti-entropy).
   */
  errors: { decode: number; auth: number; oversize: number; fromRemoved: number; unknownObject: number; merge: number; storage: number };
  /**
   * Causal delivery; `tombstonesCollected`: RGA elements removed once causally stable; `membersDiffer`: peers
   * whose latest digest named other members than this replica counts (while any does, nothing is collected).
   */
  causal: { pending: number; dropped: number; tombstonesCollected: number; membersDiffer: number };
  writes: { pendingAcks: number; timedOut: number };
  bytesSent: number;
  bytesReceived: number;
}

interface Entry {
  name: string;
  crdt: Crdt;
  decode: (bytes: Uint8Array) => Crdt;
  causal: boolean;
  hash?: [number, number];
  tree?: KeyTree;
  /**
   * Keys changed since `tree` was last brought up to date (see treeOf): by local writes, merges and direct
   * writes alike, as the object reports them (`onChange`, for objects that are `isTracked`); set while a tree
   * is kept.
   */
  treeStale?: Set<string>;
  /** Stops the `onChange` listener that fills `treeStale` (listening only while a tree is kept). */
  treeOff?: () => void;
  dirty: boolean;
  logKeys: string[];
  /** Local writes to this object whose storage batch failed: durable once a snapshot of it is (see `settle`). */
  failedWrites: number;
  /**
   * Objects with tombstones (RGA): the version vector of this replica's state as far as it survives a crash
   * (the last snapshot, plus this replica's own logged ops), which is what peers may count as seen here.
   */
  durable?: VectorClock;
  /** The stable clock last used to collect tombstones (collect again only when it grows). */
  collectedAt?: VectorClock;
}

/** A CRDT with tombstones collected once causally stable (RGA). */
interface Collectable extends Crdt {
  seenPrefix(): VectorClock;
  collectGarbage(stable: VectorClock): number;
}

function isCollectable(c: Crdt): c is Collectable {
  return typeof (c as Collectable).collectGarbage === 'function' && typeof (c as Collectable).seenPrefix === 'function';
}

interface Outgoing {
  seq: number;
  name: string;
  delta: Crdt;
  /** `delta.encode()`, when storage already needed it (reused when the delta travels alone). */
  bytes?: Uint8Array;
  wantAck: boolean;
  /** For objects needing causal delivery: the causal vector of this write (its own sequence included). */
  deps?: VersionEntries;
}

interface QueuedMessage {
  env: Envelope;
  rounds: number;
  /** Peers known to have it (origin, the peers it came from, peers that sent it to us again). */
  skip: Set<string>;
  id: string;
}

interface PendingWrite {
  seq: number;
  needed: number;
  acks: Set<string>;
  durable: boolean;
  resolve: () => void;
  reject: (e: Error) => void;
  timer?: TimerHandle;
  /** The message carrying this write (re-sent to peers that have not acknowledged). */
  message?: Uint8Array;
  lastSent: number;
}

interface Session {
  id: number;
  peer: string;
  started: number;
  timer: TimerHandle;
  keys: number;
  /** The peer's answer withheld objects (see SyncPayload.withheld): the session does not end a recovery. */
  partial?: boolean;
  /** Answers that came in parts: per group, its part count and the parts in (see SyncPayload.part). */
  parts?: Map<number, { total: number; seen: Set<number> }>;
  /** Bucket trees were exchanged: some keys came (or come) in later rounds (see completeSession). */
  descended?: boolean;
  /** The peer answered at least once (a failed session is then not a missed exchange). */
  answered?: boolean;
  /** Parts recorded in `parts`, all groups together (capped: see notePart). */
  partCount?: number;
  /** A part was not recorded (a cap was reached): the session cannot complete and waits for its timeout. */
  partsOverflow?: boolean;
}

/** Split answers, and parts of them all together, a session keeps track of at most (beyond: it waits for its timeout). */
const MAX_PART_GROUPS = 1024;
const MAX_PART_INDICES = 65_536;

interface PendingRead {
  name: string;
  needed: number;
  answered: Set<string>;
  resolve: () => void;
  reject: (e: Error) => void;
  timer: TimerHandle;
}

/** Engines built per seeded transport (see seededRandom). */
const builtOn = new WeakMap<object, number>();

/** The engine's default randomness: from a seeded transport's seed and the replica id, else from entropy. */
function seededRandom(transport: Transport, replicaId: string): Random {
  const seed = transport.seed;
  if (typeof seed !== 'number') return Random.fromEntropy();
  const n = (builtOn.get(transport) ?? 0) + 1;
  builtOn.set(transport, n);
  const gen = (transport as { generation?: unknown }).generation;
  const incarnation = typeof gen === 'number' && Number.isFinite(gen) ? gen : 0;
  // the first engine on a fresh medium keeps the plain derivation (runs recorded before stay the same)
  return new Random(n === 1 && incarnation === 0 ? `${seed}/${replicaId}` : `${seed}/${replicaId}/${incarnation}/${n}`);
}

/** Key/bucket slices smaller than this (both sides' key counts together) are sent instead of descending. */
const SLICE_SMALL = 32;
/** How long, and for how many sessions, a replica remembers the anti-entropy sessions it spoke in. */
const SESSION_MEMORY_MS = 10 * 60_000;
const MAX_SESSION_MEMORY = 1024;

/** Local deltas committed together in one storage batch. */
interface WriteGroup {
  ops: StorageBatchOp[];
  logs: [Entry, string][];
  seq: number;
  cseq: number;
  promise: Promise<void>;
}

export class SyncEngine {
  readonly replicaId: string;
  readonly transport: Transport;
  readonly scheduler: Scheduler;
  readonly storage: Storage | undefined;
  /** Resolves once `start()` has loaded the stored state. */
  loaded: Promise<void>;

  private readonly random: Random;
  private readonly logger: Logger | undefined;
  private readonly signer: Signer | undefined;
  private readonly fanout: number;
  private readonly gossipIntervalMs: number;
  private readonly maxHops: number;
  private readonly rounds: number;
  private readonly maxQueue: number;
  private readonly maxQueueBytes: number;
  /** Set while local writes wait to recover from peers after stored records were set aside (see beginRecovery). */
  private recovering: Promise<void> | undefined;
  private recoveryReason = '';
  /** The recovery's session with a peer has started (see startRecoverySession). */
  private recoverySession = false;
  /** The last run did not stop cleanly (see markOpen). */
  private unclean = false;
  /** The last checkpoint succeeded (a stop after a failed one leaves the run marked open). */
  private checkpointOk = true;
  private endRecovery: (() => void) | undefined;
  private recoveryTimer: TimerHandle | undefined;
  /** Number of the last answer sent in parts (see sendSync). */
  private partGroup = 0;
  /** When the recovery's first session started, and when it gives up (see extendRecovery). */
  private recoveryStarted = 0;
  private recoveryDeadline = 0;
  /** See envelopeOverhead. */
  private overhead: number | undefined;
  /** Stored records set aside by the current load. */
  private setAside = 0;
  /** Ids of deltas a merge refused (in part): the origin's re-sent copy is applied again (see onDelta). */
  private readonly refused = new SeenCache(1024);
  /** Local writes applied but not yet durable (see `settle`). */
  private unsettled = 0;
  /** Anti-entropy and read requests waiting for `unsettled` to reach 0. */
  private held: { from: string; bytes: Uint8Array; type: number; at: number; seq: number }[] = [];
  /** Every local write up to this sequence number is durable, failed ones aside (see `failedTotal`). */
  private durableSeq = 0;
  /** Local writes whose storage batch failed and that no durable snapshot covers yet. */
  private failedTotal = 0;
  /** Payload bytes of the messages in `queue`. */
  private queueBytes = 0;
  private readonly aeIntervalMs: number;
  private readonly aeTimeoutMs: number;
  private readonly aeRetries: number;
  private aeRetriesLeft = 0;
  private readonly eager: boolean;
  private readonly queueById = new Map<string, QueuedMessage>();
  private readonly probeIntervalMs: number;
  private readonly probeTimeoutMs: number;
  private readonly flushDelayMs: number;
  private readonly maxMessageBytes: number;
  private readonly snapshotEvery: number;
  private readonly checkpointMs: number;
  private readonly writeRetryMs: number;

  private readonly entries = new Map<string, Entry>();
  private readonly peers: PeerTable;
  private readonly seen: SeenCache;
  private readonly writes = new WriteVector((origin) => origin === this.replicaId || this.peers.get(origin) !== undefined);
  private causalBuffer: CausalBuffer<{ env: Envelope; payload: DeltaPayload; decoded: Crdt[]; from: string }>;
  private readonly causalBufferSize: number;
  private readonly causalBufferBytes: number;
  private causalDropped = 0;
  /** Highest hop count of a delta message received first-hand (how many forwarding rounds gossip took). */
  private maxHopsDelivered = 0;
  private readonly listeners = new Map<keyof EventMap, Set<(e: never) => void>>();

  private epoch: number;
  private counter = 0;
  private writeSeq = 0;
  private causalSeq = 0;
  private outbox: Outgoing[] = [];
  private queue: QueuedMessage[] = [];
  private readonly pendingWrites = new Map<number, PendingWrite>();
  private readonly pendingReads = new Map<number, PendingRead>();
  private readonly sessions = new Map<number, Session>();
  /**
   * Anti-entropy sessions this incarnation started or answered with scoped items, by id: a scoped item
   * (`deltaSince`) leaves out the rows the receiver held when it spoke, and carries the sender's whole
   * context, so it is merged only by the incarnation that spoke. A replica that crashed meanwhile may have
   * lost those rows (merges not yet durable), and the context would then read as deletes of them. Kept
   * for SESSION_MEMORY_MS and at most MAX_SESSION_MEMORY entries.
   */
  private readonly spoke = new Map<number, { peer: string; at: number }>();
  private probe: { peer: string; nonce: number; timer: TimerHandle } | undefined;
  private persistChain: Promise<void> = Promise.resolve();
  /** The open write group (see persistLocal), not yet handed to storage. */
  private group: WriteGroup | undefined;
  private flushTimer: TimerHandle | undefined;
  private sweepTimer: TimerHandle | undefined;
  private retryTimer: TimerHandle | undefined;
  private timers: TimerHandle[] = [];
  private started = false;
  private stopped = false;
  private loadedFlag = false;

  private readonly s = {
    storageBatches: 0,
    gossipSent: 0,
    gossipReceived: 0,
    duplicates: 0,
    aeTotal: 0,
    aeOk: 0,
    aeFailed: 0,
    aeTimeTotal: 0,
    aeKeys: 0,
    aeSplit: 0,
    storageCorrupt: 0,
    heldRequests: 0,
    aeBytesSent: 0,
    aeBytesReceived: 0,
    decode: 0,
    auth: 0,
    oversize: 0,
    fromRemoved: 0,
    unknownObject: 0,
    merge: 0,
    timedOut: 0,
    bytesSent: 0,
    bytesReceived: 0,
    tombstonesCollected: 0,
    staleAnswers: 0,
    withheldAnswers: 0,
  };
  /** Per peer: the clocks it reported for collectable objects, and the epoch they belong to. */
  private readonly gcReports = new Map<string, { epoch: number; clocks: Map<string, VectorClock>; members?: string }>();
  /** Cached `members()` (cleared when the peer list changes). */
  private membersCache: { key: string; hash: [number, number] } | undefined;

  constructor(options: SyncEngineOptions) {
    if (!options || typeof options.replicaId !== 'string' || options.replicaId.length === 0 || options.replicaId.length > 256) {
      throw new ValidationError('replicaId must be a non-empty string of at most 256 characters');
    }
    if (!options.transport) throw new ValidationError('transport is required');
    this.replicaId = options.replicaId;
    // a transport made without an id takes the replica id; a medium with its own clock (a MemoryNetwork)
    // drives the timers unless a scheduler is given
    options.transport.bind?.(options.replicaId);
    this.transport = options.transport;
    // given a scheduler, a medium nothing has used yet runs on it too (so both keep one time)
    if (options.scheduler !== undefined) options.transport.useScheduler?.(options.scheduler);
    this.scheduler = options.scheduler ?? options.transport.scheduler ?? new RealScheduler();
    this.storage = options.storage;
    // a seeded medium (MemoryNetwork) seeds the engine too, per replica, so the same seed gives the same run;
    // an engine rebuilt on it (a process restart) gets a stream of its own, so a new epoch: the same epoch
    // would repeat its predecessor's message ids (peers drop them as seen) and keep its clock reports
    this.random = options.random ?? seededRandom(options.transport, this.replicaId);
    this.logger = options.logger;
    this.signer = makeSigner(options.clusterKey);
    const signer = this.signer;
    if (signer) {
      // a transport open to anyone (WebSocket) uses the tag check to trust an inbound connection as a send path
      options.transport.authenticateWith?.((bytes) => {
        try {
          decodeEnvelope(bytes, signer);
          return true;
        } catch {
          return false;
        }
      });
    }
    const g = options.gossip ?? {};
    this.fanout = positiveInt(g.fanout ?? 3, 'gossip.fanout');
    this.gossipIntervalMs = positive(g.intervalMs ?? 5000, 'gossip.intervalMs');
    this.maxHops = positiveInt(g.maxHops ?? 10, 'gossip.maxHops');
    this.rounds = Math.max(0, Math.floor(g.rounds ?? 2));
    this.maxQueue = positiveInt(g.maxPending ?? 1024, 'gossip.maxPending');
    this.maxQueueBytes = positiveInt(g.maxPendingBytes ?? 64 * 1024 * 1024, 'gossip.maxPendingBytes');
    this.seen = new SeenCache(positiveInt(g.seenCacheSize ?? 10_000, 'gossip.seenCacheSize'));
    this.aeIntervalMs = positive(options.antiEntropy?.intervalMs ?? 30_000, 'antiEntropy.intervalMs');
    this.aeTimeoutMs = positive(options.antiEntropy?.timeoutMs ?? Math.min(this.aeIntervalMs / 3, 5_000), 'antiEntropy.timeoutMs');
    this.aeRetries = Math.max(0, Math.floor(options.antiEntropy?.retries ?? 2));
    this.eager = g.eagerPush ?? true;
    const l = options.liveness ?? {};
    this.probeIntervalMs = positive(l.probeIntervalMs ?? this.gossipIntervalMs, 'liveness.probeIntervalMs');
    this.probeTimeoutMs = positive(l.probeTimeoutMs ?? Math.min(this.probeIntervalMs / 2, 2000), 'liveness.probeTimeoutMs');
    this.peers = new PeerTable(l.suspectAfter ?? 2, l.deadAfter ?? 4);
    this.peers.startCursor('antiEntropy', hashString(this.replicaId));
    this.flushDelayMs = Math.max(0, options.flushDelayMs ?? 10);
    this.maxMessageBytes = positiveInt(options.maxMessageBytes ?? 32 * 1024 * 1024, 'maxMessageBytes');
    this.causalBufferSize = positiveInt(options.causalBufferSize ?? 10_000, 'causalBufferSize');
    this.causalBufferBytes = positiveInt(options.causalBufferBytes ?? 64 * 1024 * 1024, 'causalBufferBytes');
    this.snapshotEvery = positiveInt(options.snapshotEvery ?? 64, 'snapshotEvery');
    this.checkpointMs = positive(options.checkpointMs ?? 10_000, 'checkpointMs');
    this.writeRetryMs = positive(options.writeRetryMs ?? 1000, 'writeRetryMs');
    this.epoch = this.random.u32();
    this.causalBuffer = this.newCausalBuffer(new VectorClock());
    this.loaded = Promise.resolve();
    this.transport.onMessage((from, bytes) => this.receive(from, bytes));
  }

  // ---- public API ------------------------------------------------------------------------------------

  /**
   * Add a CRDT under a name (the same name and type on every replica). Its static `decode(bytes, replicaId)`
   * decodes what peers send (or pass `decode`). Registered after `start()`, its stored state is loaded before
   * the next `update` of it. The engine owns it from then on: `dispose()` it only after `stop()`.
   */
  register<T extends Crdt>(name: string, crdt: T, options: { decode?: (bytes: Uint8Array) => T } = {}): T {
    if (typeof name !== 'string' || name.length === 0 || name.length > 1024) throw new ValidationError('name must be a non-empty string of at most 1024 characters');
    if (this.entries.has(name)) throw new ValidationError(`${name} is already registered`);
    if (!crdt || typeof crdt.merge !== 'function' || typeof crdt.encode !== 'function' || typeof crdt.takeDelta !== 'function') {
      throw new ValidationError(`${name}: not a CRDT`);
    }
    const ctor = crdt.constructor as { decode?: (b: Uint8Array, r?: string) => T };
    const decode = options.decode ?? (typeof ctor.decode === 'function' ? (b: Uint8Array) => ctor.decode!(b, this.replicaId) : undefined);
    if (!decode) throw new ValidationError(`${name}: its type has no static decode; pass options.decode`);
    const e: Entry = { name, crdt, decode, causal: crdt.typeTag === CRDT_TYPE.RGA, dirty: false, logKeys: [], failedWrites: 0 };
    if (isCollectable(crdt)) e.durable = this.storage ? new VectorClock() : undefined;
    this.entries.set(name, e);
    dropDelta(crdt);
    // types that report local changes get eager push for direct writes too (see sweep)
    const hooked = crdt as { onLocalChange?: (() => void) | undefined };
    if ('onLocalChange' in hooked && hooked.onLocalChange === undefined) hooked.onLocalChange = () => this.scheduleSweep();
    if (this.loadedFlag && this.storage) this.loaded = this.loaded.then(() => this.loadEntry(e));
    return crdt;
  }

  get<T extends Crdt = Crdt>(name: string): T | undefined {
    return this.entries.get(name)?.crdt as T | undefined;
  }

  /** Registered names. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  addPeer(id: string, address = ''): void {
    if (typeof id !== 'string' || id.length === 0 || id === this.replicaId) throw new ValidationError(`invalid peer id ${id}`);
    this.peers.add(id, address);
    this.membersCache = undefined;
    this.transport.connect?.(id, address);
    if (this.recovering) this.startRecoverySession();
  }

  /** Forget a peer for good: its messages are dropped from now on (until it is added again). */
  removePeer(id: string): void {
    this.peers.remove(id);
    this.membersCache = undefined;
    this.gcReports.delete(id);
    this.transport.disconnect?.(id);
    for (const w of this.pendingWrites.values()) w.acks.delete(id);
  }

  peerIds(): string[] {
    return this.peers.all().map((p) => p.id);
  }

  peerState(id: string): PeerState | undefined {
    return this.peers.get(id)?.state;
  }

  /** Load stored state, start the transport and the timers. Resolves once loaded. */
  async start(): Promise<void> {
    if (this.started) return this.loaded;
    this.started = true;
    this.stopped = false;
    this.setAside = 0;
    this.loaded = this.load();
    await this.loaded;
    // before loadedFlag: a write that waited for the load must find the recovery in place (see beginRecovery)
    if (this.setAside > 0) this.beginRecovery('stored records were set aside');
    else if (this.unclean) this.beginRecovery(UNCLEAN);
    this.loadedFlag = true;
    await this.transport.start();
    const sch = this.scheduler;
    // desynchronise replicas: first tick at a random offset within the period
    this.every(this.gossipIntervalMs, () => this.gossipTick());
    this.every(this.aeIntervalMs, () => this.antiEntropyTick());
    this.every(this.probeIntervalMs, () => this.probeTick());
    if (this.storage) this.every(this.checkpointMs, () => void this.checkpoint());
    void sch;
    if (this.recovering) this.startRecoverySession();
  }

  /**
   * With a storage: mark this run open (`m/open`, durable before any local write) and say whether the last
   * run left it open, i.e. ended without `stop()` (a crash, kill -9, power loss). Such a run may have sent
   * peers writes that never reached the disk (an anti-entropy answer is built from memory, see the one-batch
   * window in the README), so their dots are lost here but held by peers: the restart recovers first (see
   * beginRecovery). `stop()` clears the mark after its last checkpoint.
   */
  private async markOpen(): Promise<boolean> {
    const storage = this.storage!;
    if ((await storage.get(OPEN_KEY)) !== undefined) return true;
    await markRunOpen(storage);
    return false;
  }

  /**
   * @internal While the engine recovers from peers after setting stored records aside (see beginRecovery):
   * the promise local writers wait for (`update` does; NovaCronIntegration's writes do); else undefined.
   */
  recovery(): Promise<void> | undefined {
    return this.recovering?.then(() => {
      if (this.stopped) throw new NotInitializedError('engine stopped before the write could be applied');
    });
  }

  /**
   * After a start that had to set stored records aside, or after a run that did not stop cleanly (see
   * markOpen): this replica may have lost dots (or counter slots) it issued before, which its peers hold; a new
   * local write could issue one of them again and peers would take it for the old one (dropped, and the map
   * merge would then drop the new write here too). So local writes through `update` (and NovaCronIntegration's) first wait for
   * one anti-entropy session with a peer to complete (its answer carries everything of this replica's that
   * the peer holds; an answer that withheld objects, from a peer that does not count this replica as a
   * member, does not count: `stats().antiEntropy.withheldAnswers`); failed sessions are retried at once. When
   * no peer answers in full they go on (and it says so) after RECOVER_SESSIONS session timeouts without a
   * message from any peer, or RECOVER_MAX_SESSIONS in all (see extendRecovery). With no peer yet, the wait starts with the first `addPeer`
   * (peers are not stored, so none yet does not mean none before); after an unclean stop the deadline runs
   * from the start meanwhile, so a node that never gets a peer writes after it (logged). A direct mutation of a registered
   * CRDT meanwhile is not held back. `stop()` ends the wait; the waiting writes then reject.
   */
  private beginRecovery(reason: string): void {
    if (this.recovering) return;
    this.recoveryReason = reason;
    this.recovering = new Promise<void>((resolve) => {
      this.endRecovery = resolve;
    });
  }

  /** Start the recovery session (see beginRecovery), or wait for a peer to start it with. */
  private startRecoverySession(): void {
    if (!this.recovering || this.recoverySession || this.stopped || !this.started) return;
    if (this.peers.size === 0) {
      if (this.recoveryTimer !== undefined) return;
      this.logger?.warn?.(`${this.recoveryReason}: local writes wait for a session with the first peer added`);
      if (this.recoveryReason === UNCLEAN) {
        this.recoveryStarted = this.scheduler.now();
        this.extendRecovery();
        this.armRecoveryTimer();
      }
      return;
    }
    this.recoverySession = true;
    this.recoveryStarted = this.scheduler.now();
    this.extendRecovery();
    if (this.recoveryTimer === undefined) this.armRecoveryTimer();
    this.antiEntropyTick();
  }

  /**
   * The recovery's deadline: RECOVER_SESSIONS session timeouts from now, but never past RECOVER_MAX_SESSIONS
   * timeouts from its start. Moved on whenever a message from a peer arrives (receive): on a lossy network
   * sessions fail on a lost digest or a lost part of an answer in parts (each next one asks only for what is
   * still missing), and while peers are heard the recovery goes on with them; the fallback is for peers
   * that are silent. Only the deadline moves per message; the timer looks at it when it fires.
   */
  private extendRecovery(): void {
    this.recoveryDeadline = Math.min(this.scheduler.now() + RECOVER_SESSIONS * this.aeTimeoutMs, this.recoveryStarted + RECOVER_MAX_SESSIONS * this.aeTimeoutMs);
  }

  /** A timer for the recovery's deadline: when it fires before a moved deadline, it waits for that one. */
  private armRecoveryTimer(): void {
    this.recoveryTimer = this.later(
      () => {
        if (this.scheduler.now() < this.recoveryDeadline) this.armRecoveryTimer();
        else this.finishRecovery(false);
      },
      Math.max(0, this.recoveryDeadline - this.scheduler.now()),
      'recovery timer',
    );
  }

  private finishRecovery(ok: boolean): void {
    if (!this.recovering) return;
    this.scheduler.clearTimeout(this.recoveryTimer);
    this.recoveryTimer = undefined;
    if (!ok) this.logger?.warn?.(`${this.recoveryReason} and no peer answered in full: local writes may reuse lost dots`);
    const end = this.endRecovery;
    this.recovering = undefined;
    this.recoverySession = false;
    this.recoveryReason = '';
    this.endRecovery = undefined;
    end?.();
  }

  /** Stop timers and the transport; pending writes/reads are rejected; dirty state is snapshotted. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // a stop before the recovery ended is not a clean one: the next start must recover still (see markOpen)
    const unrecovered = this.recovering !== undefined;
    this.finishRecovery(true); // waiting writes reject (see recovery)
    this.started = false;
    for (const t of this.timers) {
      this.scheduler.clearInterval(t);
      this.scheduler.clearTimeout(t);
    }
    this.timers = [];
    this.scheduler.clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.scheduler.clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    this.scheduler.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    for (const s of this.sessions.values()) this.scheduler.clearTimeout(s.timer);
    this.sessions.clear();
    if (this.probe) this.scheduler.clearTimeout(this.probe.timer);
    this.probe = undefined;
    for (const w of this.pendingWrites.values()) {
      this.scheduler.clearTimeout(w.timer);
      w.reject(new TimeoutError('engine stopped before the write was acknowledged'));
    }
    this.pendingWrites.clear();
    for (const r of this.pendingReads.values()) {
      this.scheduler.clearTimeout(r.timer);
      r.reject(new TimeoutError('engine stopped before the read completed'));
    }
    this.pendingReads.clear();
    this.held = []; // requests waiting for durability: their senders retry with whoever answers
    // a stopped engine no longer follows its objects' changes (and a restart rebuilds what it needs)
    for (const e of this.entries.values()) this.invalidate(e);
    await this.persistChain;
    if (this.storage) {
      await this.checkpoint(true);
      if (unrecovered || !this.checkpointOk) this.logger?.warn?.('stopping with the state not recovered or not durable: the next start recovers from a peer first');
      else try {
        await this.storage.delete(OPEN_KEY); // a clean stop (see markOpen)
      } catch (err) {
        this.logger?.warn?.('could not mark the stop clean: the next start recovers from a peer first', err);
      }
    }
    await this.transport.stop();
  }

  on<K extends keyof EventMap>(event: K, fn: (e: EventMap[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn as (e: never) => void);
    return () => set!.delete(fn as (e: never) => void);
  }

  off<K extends keyof EventMap>(event: K, fn: (e: EventMap[K]) => void): void {
    this.listeners.get(event)?.delete(fn as (e: never) => void);
  }

  /**
   * Change a registered CRDT: `fn` mutates it, the delta is made durable (with a storage) and pushed.
   * Resolves once durable and merged by `write` replicas (local: this one; majority: more than half of this
   * replica and its peers; all: every peer too); rejects with TimeoutError after `timeoutMs`, the write still
   * applied and propagating. `fn` throwing leaves nothing queued and rethrows.
   */
  async update<T extends Crdt>(name: string, fn: (crdt: T) => void, options: UpdateOptions = {}): Promise<void> {
    const e = this.entry(name);
    checkWriteLevel(options.write);
    checkTimeout(options.timeoutMs);
    // with a storage, a write before start() would write sequence numbers over the stored ones
    if (this.storage && !this.started) throw new NotInitializedError('start() must load the stored state before writes');
    if (!this.loadedFlag && this.storage) await this.loaded;
    const recovering = this.recovery();
    if (recovering) await recovering;
    fn(e.crdt as T);
    return this.commit(name, options);
  }

  /** Tell the engine a registered CRDT was changed directly (see `update`). */
  commit(name: string, options: UpdateOptions = {}): Promise<void> {
    const e = this.entry(name);
    const level = options.write ?? 'local';
    try {
      checkWriteLevel(level);
      checkTimeout(options.timeoutMs);
      if (this.storage && !this.started) throw new NotInitializedError('start() must load the stored state before writes');
    } catch (err) {
      return Promise.reject(err);
    }
    const delta = e.crdt.takeDelta() as Crdt | null;
    if (!delta) return Promise.resolve();
    return this.commitDelta(e, delta, level, options.timeoutMs);
  }

  /**
   * Commit what was changed directly on registered CRDTs, outside `update`/`commit` (a `get(name)` and a
   * mutator call), as 'local' writes. Runs before every merge into an object (a remote merge would otherwise
   * absorb the pending local delta, which is then never sent), before `flush()`, before each gossip and
   * anti-entropy tick and on each message received (so digests never hash a stale state), and
   * `flushDelayMs` after a local change on the types that report one (OR-Set, OR-Map, MV-Register), which
   * gives them eager push without any call. A failure to persist such a write is logged: nobody awaits it.
   */
  private sweep(only?: Entry): void {
    const list = only ? [only] : this.entries.values();
    for (const e of list) {
      const delta = e.crdt.takeDelta() as Crdt | null;
      if (delta) this.commitDelta(e, delta, 'local', undefined).catch((err) => this.logger?.error?.(`write to ${e.name} failed`, err));
    }
  }

  private scheduleSweep(): void {
    if (this.sweepTimer !== undefined || this.stopped) return;
    this.sweepTimer = this.later(
      () => {
        this.sweepTimer = undefined;
        if (this.stopped) return;
        this.sweep();
        // what the sweep found waited flushDelayMs already: it goes now (with storage, once durable, as
        // flush() does), not after a second flushDelayMs on the flush timer
        if (!this.storage) this.doFlush();
        else void this.persistChain.then(() => !this.stopped && this.safely('flush', () => this.doFlush()));
      },
      this.flushDelayMs,
      'sweep',
    );
  }

  private commitDelta(e: Entry, delta: Crdt, level: WriteLevel, timeoutMs: number | undefined): Promise<void> {
    const name = e.name;
    this.changed(e, this.replicaId, true);
    const seq = ++this.writeSeq;
    const n = this.peers.size + 1;
    const needed = level === 'local' ? 1 : level === 'all' ? n : Math.floor(n / 2) + 1;
    const wantAck = needed > 1;
    let deps: VersionEntries | undefined;
    if (e.causal) {
      // one causal event per write; delivered here at once (deliverable by construction)
      const cseq = ++this.causalSeq;
      const vc = this.causalBuffer.delivered;
      vc.set(this.replicaId, cseq);
      deps = vc.entries();
      this.causalBuffer.deliver({ id: `${this.replicaId}/${this.epoch}/c${cseq}`, origin: this.replicaId, deps: vc, payload: undefined as never });
    }
    const bytes = this.storage ? delta.encode() : undefined;
    const queue = (): void => {
      this.writes.addRange(this.replicaId, seq, seq);
      this.outbox.push({ seq, name, delta, bytes, wantAck, deps });
      this.scheduleFlush();
    };
    let durable: Promise<void>;
    if (this.storage) {
      this.unsettled++;
      durable = this.persistLocal(e, bytes, seq).then(queue);
      durable.then(
        () => this.settle(1, seq),
        () => {
          // applied here but not on disk: it counts as unsettled until a snapshot of the object is durable
          e.failedWrites++;
          this.failedTotal++;
          e.dirty = true;
        },
      );
    } else {
      // nothing to wait for: queued now, so the push timer starts with the write (a virtual clock advanced
      // right after a write delivers it without first letting promises run)
      queue();
      durable = Promise.resolve();
    }
    if (!wantAck) return durable;
    return new Promise<void>((resolve, reject) => {
      const w: PendingWrite = { seq, needed, acks: new Set(), durable: false, resolve, reject, lastSent: 0 };
      this.pendingWrites.set(seq, w);
      this.scheduleRetry();
      const limitMs = timeoutMs ?? 5000;
      w.timer = this.later(() => {
        if (!this.pendingWrites.delete(seq)) return;
        this.s.timedOut++;
        reject(new TimeoutError(`write ${name}#${seq}: ${w.acks.size + 1} of ${needed} replicas within ${limitMs} ms`));
      }, limitMs);
      this.scheduler.ref?.(w.timer); // a caller awaits it: the process must live to reject (engine timers are unref'd)
      durable.then(
        () => {
          w.durable = true;
          this.checkWrite(w);
        },
        (err: Error) => {
          this.pendingWrites.delete(seq);
          this.scheduler.clearTimeout(w.timer);
          reject(err);
        },
      );
    });
  }

  /**
   * Read a registered CRDT. `majority`: first merge the state of enough peers that, with this replica, more
   * than half have answered (TimeoutError after `timeoutMs`, default 5,000).
   */
  async read<T extends Crdt>(name: string, options: ReadOptions = {}): Promise<T> {
    const e = this.entry(name);
    if (!this.loadedFlag && this.storage) await this.loaded;
    const level = options.read ?? 'local';
    if (level === 'local') return e.crdt as T;
    if (level !== 'majority') throw new ValidationError(`unknown read level ${String(level)}`);
    checkTimeout(options.timeoutMs);
    const n = this.peers.size + 1;
    const needed = Math.floor(n / 2); // answers besides this replica
    if (needed === 0) return e.crdt as T;
    const reqId = this.random.u32();
    const [lo, hi] = this.hashOf(e);
    const payload = encodeReadReq({ reqId, name, lo, hi });
    const timeoutMs = options.timeoutMs ?? 5000;
    await new Promise<void>((resolve, reject) => {
      const r: PendingRead = {
        name,
        needed,
        answered: new Set(),
        resolve,
        reject,
        timer: this.later(() => {
          this.pendingReads.delete(reqId);
          reject(new TimeoutError(`read ${name}: ${r.answered.size + 1} of ${needed + 1} replicas within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.scheduler.ref?.(r.timer); // as a write's wait: the process lives until the read answers or times out
      this.pendingReads.set(reqId, r);
      for (const p of this.peers.live()) this.sendTo(p.id, MSG.READ_REQ, payload, 0);
      if (this.peers.live().length < needed) for (const p of this.peers.all()) if (p.state === 'dead') this.sendTo(p.id, MSG.READ_REQ, payload, 0);
    });
    return e.crdt as T;
  }

  /** Push queued deltas now (instead of after `flushDelayMs`); resolves once pending local writes are durable and sent. */
  async flush(): Promise<void> {
    this.sweep();
    await this.persistChain;
    this.doFlush();
  }

  stats(): SyncStats {
    return {
      gossip: {
        sent: this.s.gossipSent,
        received: this.s.gossipReceived,
        duplicatesDropped: this.s.duplicates,
        seenCacheSize: this.seen.size,
        fanout: this.fanout,
        maxHops: this.maxHops,
        pending: this.queue.length,
      },
      antiEntropy: {
        totalSyncs: this.s.aeTotal,
        successfulSyncs: this.s.aeOk,
        failedSyncs: this.s.aeFailed,
        averageSyncTimeMs: this.s.aeOk ? this.s.aeTimeTotal / this.s.aeOk : 0,
        keysExchanged: this.s.aeKeys,
        bytesSent: this.s.aeBytesSent,
        bytesReceived: this.s.aeBytesReceived,
        splitAnswers: this.s.aeSplit,
        heldRequests: this.s.heldRequests,
        staleAnswers: this.s.staleAnswers,
        withheldAnswers: this.s.withheldAnswers,
      },
      peerCount: this.peers.size,
      crdtCount: this.entries.size,
      peers: this.peers.all().map((p) => ({ id: p.id, state: p.state })),
      errors: {
        decode: this.s.decode,
        auth: this.s.auth,
        oversize: this.s.oversize,
        fromRemoved: this.s.fromRemoved,
        unknownObject: this.s.unknownObject,
        merge: this.s.merge,
        storage: this.s.storageCorrupt,
      },
      causal: {
        pending: this.causalBuffer.pending,
        dropped: this.causalDropped,
        tombstonesCollected: this.s.tombstonesCollected,
        membersDiffer: this.peers.all().filter((p) => {
          const r = this.gcReports.get(p.id);
          return r !== undefined && r.members !== this.members().key;
        }).length,
      },
      writes: { pendingAcks: this.pendingWrites.size, timedOut: this.s.timedOut },
      bytesSent: this.s.bytesSent,
      bytesReceived: this.s.bytesReceived,
    };
  }

  /**
   * Drop the cached digest of an object changed outside `update`/`commit` (e.g. merged by hand), so the next
   * anti-entropy round compares its current state. Nothing is sent.
   */
  refresh(name: string): void {
    this.invalidate(this.entry(name));
  }

  /**
   * A 64-bit hash of a registered object's current state, as 16 hex digits (cached until it changes): equal on
   * two replicas exactly when their encodings are equal, but for hash collisions (see hashOf).
   */
  hash(name: string): string {
    const [lo, hi] = this.hashOf(this.entry(name));
    return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
  }

  /** The version vector of merged writes (origin -> highest contiguous sequence). */
  versionVector(): VersionEntries {
    return this.writes.entries();
  }

  /** Start an anti-entropy round with a given peer now (normally timer driven). */
  syncWith(peerId: string): void {
    this.startSession(peerId);
  }

  // ---- local write path --------------------------------------------------------------------------------

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) throw new ValidationError(`no CRDT registered as ${name}`);
    return e;
  }

  /**
   * Group commit: local deltas written while the previous storage batch is still being committed join one
   * open group, written as a single `storage.batch` once the chain reaches it; every write in the group resolves
   * when that batch is durable. Order is kept (groups run one after another on `persistChain`), and a delta is
   * still durable before it is pushed to any peer.
   */
  private persistLocal(e: Entry, bytes: Uint8Array | undefined, seq: number): Promise<void> {
    const storage = this.storage;
    if (!storage || !bytes) return Promise.resolve();
    const key = `d/${e.name}/${seq.toString().padStart(15, '0')}`;
    let g = this.group;
    if (!g) {
      const group: WriteGroup = { ops: [], logs: [], seq: 0, cseq: 0, promise: Promise.resolve() };
      const run = async (): Promise<void> => {
        if (this.group === group) this.group = undefined; // closed: later writes open the next group
        group.ops.push({ type: 'put', key: 'm/seq', value: encodeNonce(group.seq) });
        group.ops.push({ type: 'put', key: 'm/cseq', value: encodeNonce(group.cseq) });
        this.s.storageBatches++;
        try {
          await storage.batch(group.ops);
        } catch (err) {
          throw err instanceof CrdtError ? err : new StorageError(`storage batch failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
        }
        const touched = new Set<Entry>();
        for (const [en, k] of group.logs) {
          en.logKeys.push(k);
          touched.add(en);
        }
        for (const en of touched) {
          if (en.logKeys.length < this.snapshotEvery) continue;
          // the group's writes are durable already: a failed compaction must not fail them (the object stays
          // dirty with its logs, and the next checkpoint tries again)
          try {
            await this.snapshot(en);
          } catch (err) {
            this.logger?.warn?.(`snapshot of ${en.name} failed`, err);
          }
        }
      };
      group.promise = this.persistChain.then(run);
      this.persistChain = group.promise.catch(() => undefined);
      this.group = g = group;
    }
    g.ops.push({ type: 'put', key, value: frameRecord(e.name, bytes) });
    g.logs.push([e, key]);
    g.seq = Math.max(g.seq, seq);
    g.cseq = this.causalSeq;
    return g.promise;
  }

  private async snapshot(e: Entry): Promise<void> {
    if (!this.storage) return;
    const keys = e.logKeys;
    e.logKeys = [];
    e.dirty = false;
    const ops: StorageBatchOp[] = [{ type: 'put', key: `s/${e.name}`, value: frameRecord(e.name, e.crdt.encode()) }];
    for (const k of keys) ops.push({ type: 'del', key: k });
    ops.push({ type: 'put', key: 'm/cseq', value: encodeNonce(this.causalSeq) });
    const vv = e.durable && isCollectable(e.crdt) ? e.crdt.seenPrefix() : undefined;
    const covered = e.failedWrites; // the encoding above holds every write applied so far, failed ones included
    try {
      await this.storage.batch(ops);
    } catch (err) {
      // nothing was written: the logs are still there and the object still needs its snapshot
      e.logKeys = keys.concat(e.logKeys);
      e.dirty = true;
      throw err;
    }
    if (vv) e.durable!.merge(vv);
    if (covered > 0) {
      e.failedWrites -= covered;
      this.failedTotal -= covered;
      this.settle(covered, 0);
    }
  }

  /**
   * `n` local writes became durable. Anti-entropy and read requests are answered from the live state, which
   * already holds local writes whose storage batch is still pending; an answer carrying one would let a peer
   * hold a dot (or counter slot) this replica might lose in a crash, and the restarted replica would issue it
   * again for another write, which the peer would then take for one it has (an acknowledged write lost). So
   * those requests wait (`hold`) until every local write made before they arrived is durable (or none is
   * pending). Writes made while one waits are not waited for, so a steady stream of writes (each batch
   * committing while the next fills) delays a request by about one batch instead of starving it; the price
   * is that those later writes may go out before they are durable, a window of one batch under load (and
   * none at all while the disk stalls: then nothing is answered).
   */
  private settle(n: number, seq: number): void {
    this.unsettled -= n;
    if (seq > this.durableSeq) this.durableSeq = seq;
    if (this.held.length === 0 || this.stopped) return;
    const ready = this.failedTotal === 0 ? this.durableSeq : -1;
    const keep: typeof this.held = [];
    const release: typeof this.held = [];
    for (const h of this.held) (this.unsettled === 0 || h.seq <= ready ? release : keep).push(h);
    if (!release.length) return;
    this.held = keep;
    const now = this.scheduler.now();
    for (const h of release) {
      // a digest whose session has timed out at its sender is not answered: the sender gave up on it (and
      // may have retried), and a late answer from its stale context would resend what it got meanwhile
      if (h.type === MSG.SYNC_DIGEST && now - h.at > this.aeTimeoutMs) continue;
      this.s.bytesReceived -= h.bytes.length; // counted when it arrived
      this.receive(h.from, h.bytes, false, true);
    }
  }

  /** Keep a request until local writes are durable (see `settle`); the oldest go past HELD_MAX (peers retry). */
  private hold(from: string, bytes: Uint8Array, type: number): void {
    this.held.push({ from, bytes, type, at: this.scheduler.now(), seq: this.writeSeq });
    if (this.held.length > HELD_MAX) this.held.shift();
    this.s.heldRequests++;
  }

  private async checkpoint(all = false): Promise<void> {
    const work = async (): Promise<void> => {
      for (const e of this.entries.values()) if (e.dirty || (all && e.logKeys.length)) await this.snapshot(e);
    };
    const p = this.persistChain.then(work);
    this.persistChain = p.then(
      () => void (this.checkpointOk = true),
      (err) => {
        this.checkpointOk = false;
        this.logger?.warn?.('checkpoint failed', err);
      },
    );
    return this.persistChain;
  }

  private async load(): Promise<void> {
    const storage = this.storage;
    if (!storage) return;
    this.writeSeq = await this.loadCounter('m/seq');
    this.causalSeq = await this.loadCounter('m/cseq');
    for (const e of this.entries.values()) await this.loadEntry(e);
    this.unclean = await this.markOpen();
    // a restart never reuses a sequence number: our own writes 1..seq are in the loaded state
    if (this.writeSeq > 0) this.writes.raise(this.replicaId, this.writeSeq);
    const vc = new VectorClock();
    if (this.causalSeq > 0) vc.set(this.replicaId, this.causalSeq);
    this.causalBuffer = this.newCausalBuffer(vc);
  }

  /** A stored sequence number (0 when absent; a corrupt one is quarantined and read as 0, see load). */
  private async loadCounter(key: string): Promise<number> {
    const bytes = await this.storage!.get(key);
    if (!bytes) return 0;
    try {
      return decodeNonce(bytes);
    } catch (err) {
      await this.quarantine(key, bytes, err);
      return 0;
    }
  }

  /**
   * A stored record that cannot be read back (corrupt, truncated, another type's bytes): moved to `q/<key>`
   * (kept for inspection, out of the way of the next start), counted in `stats().errors.storage` and logged;
   * the node starts with everything else and anti-entropy brings back what its peers hold. Starting matters
   * more than the record: refusing to start would keep the node down for good (a crash loop), and every write
   * it acknowledged was durable before it left, so its peers hold it too.
   */
  private async quarantine(key: string, bytes: Uint8Array, err: unknown): Promise<void> {
    this.s.storageCorrupt++;
    this.setAside++;
    if (this.loadedFlag) {
      // an object registered after start(): recover for it now
      this.beginRecovery('stored records were set aside');
      this.startRecoverySession();
    }
    this.logger?.error?.(`stored record ${key} is unreadable (${(err as Error)?.message ?? String(err)}); moved to q/${key}, starting without it`, err);
    try {
      await this.storage!.batch([
        { type: 'put', key: `q/${key}`, value: bytes },
        { type: 'del', key },
      ]);
    } catch (e) {
      this.logger?.warn?.(`could not move ${key} aside`, e);
    }
  }

  private async loadEntry(e: Entry): Promise<void> {
    const storage = this.storage!;
    const sk = `s/${e.name}`;
    const snap = await storage.get(sk);
    if (snap) await this.loadRecord(e, sk, snap);
    const prefix = `d/${e.name}/`;
    let maxSeq = 0;
    for await (const [key, value] of storage.entries(prefix)) {
      // our own log keys only: `d/<name>/` followed by a 15-digit sequence number (another object named
      // `<name>/...` has its log under the same prefix)
      const tail = key.slice(prefix.length);
      if (!LOG_KEY_TAIL.test(tail)) continue;
      if (await this.loadRecord(e, key, value)) e.logKeys.push(key);
      const n = Number(tail);
      if (n > maxSeq) maxSeq = n;
    }
    // a write sequence number never goes back (m/seq may be lost or behind: the log keys tell)
    if (maxSeq > this.writeSeq) this.writeSeq = maxSeq;
    dropDelta(e.crdt);
    if (e.durable && isCollectable(e.crdt)) e.durable.merge(e.crdt.seenPrefix());
    this.invalidate(e);
  }

  /** Merge one stored record into e; false (record quarantined) when it does not decode or merge. */
  private async loadRecord(e: Entry, key: string, bytes: Uint8Array): Promise<boolean> {
    let c: Crdt;
    try {
      c = this.decodeFor(e, unframeRecord(e.name, bytes));
      withTrustedTimes(() => e.crdt.merge(c as never)); // its own timestamps, not a remote clock's
      return true;
    } catch (err) {
      await this.quarantine(key, bytes, err);
      return false;
    }
  }

  private scheduleFlush(): void {
    if (this.flushTimer !== undefined || this.stopped) return;
    this.flushTimer = this.later(
      () => {
        this.flushTimer = undefined;
        this.doFlush();
      },
      this.flushDelayMs,
      'flush',
    );
  }

  private doFlush(): void {
    this.scheduler.clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.outbox.length) return;
    const batch = this.outbox;
    this.outbox = [];
    // runs of plain writes go out as one message each; every causal write travels alone with its vector
    let run: Outgoing[] = [];
    for (const o of batch) {
      if (o.deps) {
        if (run.length) this.sendBatch(run, []);
        run = [];
        this.sendBatch([o], o.deps);
      } else run.push(o);
    }
    if (run.length) this.sendBatch(run, []);
  }

  private sendBatch(batch: Outgoing[], deps: VersionEntries): void {
    // per object: the join of its deltas in this batch; a delta alone goes as it is (its bytes reused when
    // storage already encoded it), several are merged into a copy of the first
    const byName = new Map<string, { first: Outgoing; joined?: Crdt }>();
    let wantAck = false;
    for (const o of batch) {
      const g = byName.get(o.name);
      if (!g) byName.set(o.name, { first: o });
      else (g.joined ??= g.first.delta.clone() as Crdt).merge(o.delta as never);
      wantAck ||= o.wantAck;
    }
    const objects: DeltaObject[] = [];
    for (const [name, { first, joined }] of byName) {
      const d = joined ?? first.delta;
      objects.push({ name, typeTag: d.typeTag, bytes: joined ? joined.encode() : (first.bytes ?? d.encode()) });
    }
    const payload = encodeDelta({ writesLo: batch[0].seq, writesHi: batch[batch.length - 1].seq, deps, objects });
    const env: Envelope = {
      type: MSG.DELTA,
      flags: wantAck ? FLAG_WANT_ACK : 0,
      origin: this.replicaId,
      epoch: this.epoch,
      counter: ++this.counter,
      hops: 0,
      payload,
    };
    this.seen.checkAndAdd(msgId(env));
    const bytes = encodeEnvelope(env, this.signer);
    if (bytes.length > this.maxMessageBytes) {
      this.s.oversize++;
      this.logger?.warn?.(`delta batch of ${bytes.length} bytes exceeds maxMessageBytes; left to anti-entropy`);
      return;
    }
    const targets = wantAck ? this.peers.all() : this.eager ? this.random.sample(this.peers.live(), this.fanout) : [];
    for (const p of targets) this.sendRaw(p.id, bytes, true);
    this.enqueue(env, new Set([this.replicaId]));
    if (wantAck) {
      const now = this.scheduler.now();
      for (const o of batch) {
        const w = this.pendingWrites.get(o.seq);
        if (w) {
          w.message = bytes;
          w.lastSent = now;
        }
      }
    }
  }

  private enqueue(env: Envelope, skip: Set<string>): void {
    if (this.rounds === 0 || env.hops >= this.maxHops) return;
    const size = env.payload.byteLength;
    if (size > this.maxQueueBytes) return;
    const q: QueuedMessage = { env, rounds: this.rounds, skip, id: msgId(env) };
    this.queue.push(q);
    this.queueById.set(q.id, q);
    this.queueBytes += size;
    let drop = 0;
    let bytes = this.queueBytes;
    while (this.queue.length - drop > this.maxQueue || bytes > this.maxQueueBytes) bytes -= this.queue[drop++]!.env.payload.byteLength;
    if (drop > 0) {
      for (const old of this.queue.splice(0, drop)) this.queueById.delete(old.id);
      this.queueBytes = bytes;
    }
  }

  private checkWrite(w: PendingWrite): void {
    if (!w.durable || w.acks.size + 1 < w.needed) return;
    if (!this.pendingWrites.delete(w.seq)) return;
    this.scheduler.clearTimeout(w.timer);
    w.resolve();
  }

  private ackFrom(peer: string, lo: number, hi: number): void {
    if (!this.peers.get(peer)) return;
    for (const w of this.pendingWrites.values()) {
      if (w.seq >= lo && w.seq <= hi) {
        w.acks.add(peer);
        this.checkWrite(w);
      }
    }
  }

  // ---- timers ------------------------------------------------------------------------------------------

  private every(ms: number, fn: () => void): void {
    // first run at a random phase, then periodic (replicas do not tick in lockstep)
    const first = this.later(() => {
      if (this.stopped) return;
      this.safely('timer', fn);
      this.timers.push(this.scheduler.setInterval(() => !this.stopped && this.safely('timer', fn), ms));
    }, this.random.float() * ms);
    this.timers.push(first);
  }

  /** A one-shot timer on the scheduler whose work runs through `safely` (every timer of the engine is one). */
  private later(fn: () => void, ms: number, what = 'timer'): ReturnType<Scheduler['setTimeout']> {
    return this.scheduler.setTimeout(() => this.safely(what, fn), ms);
  }

  /**
   * Run a timer's work: an error there is logged and the engine goes on (the next tick tries again). Nothing a
   * peer sends should make one throw, but one that did would otherwise be an uncaught exception in a timer
   * callback, which ends a Node process.
   */
  private safely(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger?.error?.(`${what} failed: ${(err as Error)?.message ?? String(err)}`, err);
    }
  }

  private gossipTick(): void {
    this.sweep();
    // interval gossip: each queued message to `fanout` random live peers not known to hold it, all of a
    // tick's messages for one peer in one bundle
    if (!this.queue.length) return;
    const live = this.peers.live();
    const perPeer = new Map<string, Uint8Array[]>();
    const keep: QueuedMessage[] = [];
    for (const q of this.queue) {
      const candidates = live.filter((p) => !q.skip.has(p.id));
      const targets = this.random.sample(candidates, this.fanout);
      if (targets.length) {
        const bytes = encodeEnvelope(q.env, this.signer);
        for (const p of targets) {
          let list = perPeer.get(p.id);
          if (!list) perPeer.set(p.id, (list = []));
          list.push(bytes);
        }
      }
      if (--q.rounds > 0 && candidates.length > 0) keep.push(q);
      else {
        this.queueById.delete(q.id);
        this.queueBytes -= q.env.payload.byteLength;
      }
    }
    this.queue = keep;
    for (const [peer, list] of perPeer) {
      this.s.gossipSent += list.length;
      let batch: Uint8Array[] = [];
      let size = 0;
      const flush = (): void => {
        if (batch.length === 1) this.sendRaw(peer, batch[0], false);
        else if (batch.length > 1) this.sendTo(peer, MSG.BUNDLE, encodeBundle(batch), 0);
        batch = [];
        size = 0;
      };
      for (const b of list) {
        if (size + b.length + 64 > this.maxMessageBytes) flush();
        batch.push(b);
        size += b.length + 5;
      }
      flush();
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || this.stopped) return;
    this.retryTimer = this.later(() => {
      this.retryTimer = undefined;
      this.safely('write retry', () => this.retryWrites());
      if (this.pendingWrites.size) this.scheduleRetry();
    }, this.writeRetryMs);
  }

  private retryWrites(): void {
    const now = this.scheduler.now();
    for (const w of this.pendingWrites.values()) {
      if (!w.message || now - w.lastSent < this.writeRetryMs) continue;
      w.lastSent = now;
      for (const p of this.peers.all()) if (!w.acks.has(p.id)) this.sendRaw(p.id, w.message, true);
    }
  }

  private probeTick(): void {
    if (this.probe) return;
    const p = this.peers.next(this.peers.all(), 'probe');
    if (!p) return;
    const nonce = this.random.u32();
    this.probe = {
      peer: p.id,
      nonce,
      timer: this.later(() => {
        this.probe = undefined;
        this.missed(p.id);
      }, this.probeTimeoutMs),
    };
    this.sendTo(p.id, MSG.PING, encodeNonce(nonce), 0);
  }

  private missed(peer: string): void {
    const ev = this.peers.missedExchange(peer);
    if (ev) this.emit('peer-down', ev.id);
  }

  private heard(peer: string): void {
    const ev = this.peers.heardFrom(peer, this.scheduler.now());
    if (ev) this.emit('peer-up', ev.id);
  }

  // ---- sending -----------------------------------------------------------------------------------------

  private sendTo(peer: string, type: number, payload: Uint8Array, flags: number): number {
    const env: Envelope = { type, flags, origin: this.replicaId, epoch: this.epoch, counter: ++this.counter, hops: 0, payload };
    const bytes = encodeEnvelope(env, this.signer);
    if (bytes.length > this.maxMessageBytes) {
      this.s.oversize++;
      this.logger?.warn?.(`message of ${bytes.length} bytes to ${peer} exceeds maxMessageBytes; dropped`);
      return 0;
    }
    this.sendRaw(peer, bytes, false);
    return bytes.length;
  }

  private sendRaw(peer: string, bytes: Uint8Array, gossip: boolean): void {
    if (this.stopped) return;
    if (gossip) this.s.gossipSent++;
    this.s.bytesSent += bytes.length;
    try {
      this.transport.send(peer, bytes);
    } catch (err) {
      this.logger?.debug?.(`send to ${peer} failed`, err);
    }
  }

  // ---- receiving ---------------------------------------------------------------------------------------

  private receive(from: string, bytes: Uint8Array, inner = false, released = false): void {
    if (this.stopped) return;
    // a direct write's commit (sweep) must not throw out of the transport's handler: logged, and the message
    // is still handled
    if (!inner) this.safely('sweep', () => this.sweep());
    try {
      this.s.bytesReceived += bytes?.length ?? 0;
      if (!(bytes instanceof Uint8Array) || bytes.length > this.maxMessageBytes) {
        this.s.oversize++;
        return;
      }
      if (this.peers.isRemoved(from)) {
        this.s.fromRemoved++;
        return;
      }
      let env: Envelope;
      try {
        env = decodeEnvelope(bytes, this.signer);
      } catch (err) {
        if (err instanceof AuthError) this.s.auth++;
        else this.s.decode++;
        return;
      }
      if (this.peers.isRemoved(env.origin)) {
        this.s.fromRemoved++;
        return;
      }
      // a bundle carries gossiped deltas only (what gossipTick batches): a bundle of a thousand digests or read
      // requests (44 KB) was answered with a thousand whole states
      if (inner && env.type !== MSG.DELTA) throw new DecodeError(`a bundle carries deltas only, not message type ${env.type}`);
      this.heard(from);
      if (this.recoveryTimer !== undefined && !inner) this.extendRecovery(); // a peer is there
      if (!released && this.unsettled > 0 && (env.type === MSG.SYNC_DIGEST || env.type === MSG.SYNC || env.type === MSG.READ_REQ)) {
        this.hold(from, bytes, env.type);
        return;
      }
      switch (env.type) {
        case MSG.DELTA:
          return this.onDelta(from, env);
        case MSG.ACK: {
          const { lo, hi } = decodeAck(env.payload);
          return this.ackFrom(env.origin, lo, hi);
        }
        case MSG.SYNC_DIGEST:
          return this.onDigest(from, env, bytes.length);
        case MSG.SYNC:
          return this.onSync(from, env, bytes.length);
        case MSG.PING:
          decodeNonce(env.payload);
          this.sendTo(from, MSG.PONG, env.payload, 0);
          return;
        case MSG.PONG: {
          const nonce = decodeNonce(env.payload);
          if (this.probe && this.probe.peer === from && this.probe.nonce === nonce) {
            this.scheduler.clearTimeout(this.probe.timer);
            this.probe = undefined;
          }
          return;
        }
        case MSG.READ_REQ:
          return this.onReadReq(from, env);
        case MSG.READ_RESP:
          return this.onReadResp(from, env);
        case MSG.BUNDLE: {
          if (inner) throw new DecodeError('nested bundle');
          const parts = decodeBundle(env.payload);
          for (const part of parts) {
            this.s.bytesReceived -= part.length; // counted once, with the bundle
            // the first part that fails to decode or authenticate drops the rest of the bundle (one error
            // counted): a bundle of many bad parts cost a decode, a throw and a catch each
            const failed = this.s.decode + this.s.auth;
            this.receive(from, part, true);
            if (this.s.decode + this.s.auth !== failed) return;
          }
          return;
        }
      }
    } catch (err) {
      if (err instanceof DecodeError) this.s.decode++;
      else {
        this.s.merge++;
        this.logger?.warn?.(`message from ${from} failed`, err);
      }
    }
  }

  private onDelta(from: string, env: Envelope): void {
    this.s.gossipReceived++;
    const id = msgId(env);
    if (env.origin === this.replicaId || this.seen.checkAndAdd(id)) {
      if (from === env.origin && this.refused.delete(id)) {
        // the origin re-sent a delta a merge refused here before: apply it again (never forwarded again)
        this.retryRefused(env, id);
        return;
      }
      this.s.duplicates++;
      this.queueById.get(id)?.skip.add(from);
      if (env.flags & FLAG_WANT_ACK && env.origin !== this.replicaId) {
        // the origin may have missed our acknowledgement: answer again if we merged it
        const p = decodeDelta(env.payload);
        if (p.writesLo <= p.writesHi && this.writes.covers(env.origin, p.writesLo, p.writesHi)) {
          this.sendTo(env.origin, MSG.ACK, encodeAck(p.writesLo, p.writesHi), 0);
        }
      }
      return;
    }
    // a bad one is counted by receive (once); its id stays seen: a copy sent again is equally undecodable
    const { payload, decoded } = this.decodeIncoming(env);
    // forward at once (epidemic), and queue for interval gossip
    if (env.hops + 1 <= this.maxHops) {
      const fwd: Envelope = { ...env, hops: env.hops + 1 };
      const candidates = this.peers.live().filter((p) => p.id !== from && p.id !== env.origin);
      const targets = this.eager ? this.random.sample(candidates, this.fanout) : [];
      if (targets.length) {
        const bytes = encodeEnvelope(fwd, this.signer);
        for (const p of targets) this.sendRaw(p.id, bytes, true);
      }
      this.enqueue(fwd, new Set([from, env.origin, this.replicaId]));
    }
    if (env.hops > this.maxHopsDelivered) this.maxHopsDelivered = env.hops;
    if (payload.deps.length) {
      const deps = new Map(payload.deps);
      if (!(deps.get(env.origin)! >= 1)) throw new DecodeError('causal delta without its own sequence');
      const ready = this.causalBuffer.deliver({ id, origin: env.origin, deps, payload: { env, payload, decoded, from } });
      this.applyAll(ready);
    } else this.applyOrRefuse(env, id, payload, decoded);
  }

  /** A delta message's payload and its objects decoded for their registered types (DecodeError if bad). */
  private decodeIncoming(env: Envelope): { payload: DeltaPayload; decoded: Crdt[] } {
    try {
      const payload = decodeDelta(env.payload);
      return { payload, decoded: this.decodeObjects(payload.objects) };
    } catch (err) {
      throw err instanceof DecodeError ? new DecodeError('bad delta', { cause: err }) : err;
    }
  }

  /**
   * Apply a (non-causal) delta. When a merge refuses part of it (ClockSkewError from a clock too far ahead,
   * RangeError from a counter past MAX_SAFE_INTEGER), whatever merged stays merged (each object's merge is a
   * join, so a partial application is a state the full one will extend) and no acknowledgement goes out. The
   * id stays seen, so copies from other peers are dropped as before (forgetting it let every node re-apply
   * and re-forward every copy: a storm), but the origin's own retry is applied again (`refused`).
   */
  private applyOrRefuse(env: Envelope, id: string, payload: DeltaPayload, decoded: Crdt[]): void {
    try {
      this.applyDelta(env, payload, decoded);
    } catch (err) {
      this.refused.checkAndAdd(id);
      throw err;
    }
  }

  /** Apply a re-sent delta that a merge refused before (see onDelta); not forwarded. */
  private retryRefused(env: Envelope, id: string): void {
    const { payload, decoded } = this.decodeIncoming(env);
    if (payload.deps.length) return; // causal deltas go through the buffer once; anti-entropy repairs them
    this.applyOrRefuse(env, id, payload, decoded);
  }

  /** Apply events the causal buffer released, in order; one that fails does not stop the rest (rethrown after). */
  private applyAll(ready: CausalEvent<{ env: Envelope; payload: DeltaPayload; decoded: Crdt[]; from: string }>[]): void {
    let first: unknown;
    for (const ev of ready) {
      if (!ev.payload) continue;
      try {
        this.applyDelta(ev.payload.env, ev.payload.payload, ev.payload.decoded);
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }

  private decodeObjects(objects: DeltaObject[]): Crdt[] {
    const out: Crdt[] = [];
    for (const o of objects) {
      const e = this.entries.get(o.name);
      if (!e) {
        this.s.unknownObject++;
        out.push(undefined as never);
        continue;
      }
      if (o.typeTag !== e.crdt.typeTag) throw new DecodeError(`${o.name}: type ${o.typeTag}, expected ${e.crdt.typeTag}`);
      out.push(this.decodeFor(e, o.bytes));
    }
    return out;
  }

  private decodeFor(e: Entry, bytes: Uint8Array): Crdt {
    let c: Crdt;
    try {
      c = e.decode(bytes);
    } catch (err) {
      if (err instanceof DecodeError) throw err;
      throw new DecodeError(`${e.name}: undecodable state`, { cause: err });
    }
    if (!c || c.typeTag !== e.crdt.typeTag) throw new DecodeError(`${e.name}: decoded to another type`);
    return c;
  }

  private applyDelta(env: Envelope, payload: DeltaPayload, decoded: Crdt[]): void {
    payload.objects.forEach((o, i) => {
      const e = this.entries.get(o.name);
      if (!e || !decoded[i]) return;
      this.mergeInto(e, decoded[i], env.origin);
    });
    if (payload.writesLo >= 1 && payload.writesLo <= payload.writesHi) {
      this.writes.addRange(env.origin, payload.writesLo, payload.writesHi);
      if (env.flags & FLAG_WANT_ACK) this.sendTo(env.origin, MSG.ACK, encodeAck(payload.writesLo, payload.writesHi), 0);
    }
  }

  /** Merge a remote state or delta; `change` is emitted only when the state changed (a duplicate is silent). */
  private mergeInto(e: Entry, other: Crdt, origin: string, scoped = false): void {
    this.sweep(e);
    // a merge of more keys than treeStaleMax allows drops the tree first (rebuilt when next read): updating
    // it would cost about as much, and the map would report every key it changed to no use
    if (e.tree !== undefined && ((other as { size?: number }).size ?? Infinity) > treeStaleMax(e.tree)) this.invalidate(e);
    try {
      const r = scoped ? (e.crdt as ScopedCrdt).mergeScoped(other) : e.crdt.merge(other as never);
      dropDelta(e.crdt); // remote merges are not re-broadcast as local writes
      e.dirty = true;
      // the whole-state hash is dropped whatever the answer: a type that misreports must not leave a stale hash
      e.hash = undefined;
      // a kept tree of a tracked object has heard of the keys the merge changed (noteKeys), and of any a
      // `change` handler writes directly
      if (r !== false) this.emit('change', { name: e.name, origin, local: false });
    } catch (err) {
      this.invalidate(e);
      throw err;
    }
    if (e.treeOff === undefined) this.invalidate(e); // a tree nothing keeps up to date is dropped
  }

  /**
   * A tracked object reported changed keys (a local write, a merge, a direct write): its hash is stale, and a
   * kept tree takes the keys to update when next read (see treeOf), or is dropped once more keys changed than
   * updating beats rebuilding (treeStaleMax).
   */
  private noteKeys(e: Entry, keys: readonly string[]): void {
    e.hash = undefined;
    const stale = e.treeStale;
    if (e.tree === undefined || stale === undefined) return;
    const max = treeStaleMax(e.tree);
    if (keys.length > max) return this.invalidate(e); // without adding them one by one first
    for (const k of keys) stale.add(k);
    if (stale.size > max) this.invalidate(e);
  }

  private changed(e: Entry, origin: string, local: boolean): void {
    // a followed tree heard of the keys when they were written (noteKeys); any other is dropped
    if (e.treeOff !== undefined) e.hash = undefined;
    else this.invalidate(e);
    this.emit('change', { name: e.name, origin, local });
  }

  private invalidate(e: Entry): void {
    e.hash = undefined;
    e.tree = undefined;
    e.treeStale = undefined;
    e.treeOff?.();
    e.treeOff = undefined;
  }

  /**
   * The object's 64-bit state hash, equal on two replicas exactly when their encodings are equal (but for
   * hash collisions). A tracked object (ORMap) hashes its bucket tree's root (a sum over every key's entry
   * hash) with its `unkeyedBytes()` (context, hidden nested states): with the tree kept through changes, that
   * costs what changed since the last hash, where hashing the encoding cost the whole state (100,000 VM
   * records: about 0.3 s per anti-entropy session). Every other type hashes its encoding.
   */
  private hashOf(e: Entry): [number, number] {
    if (e.hash !== undefined) return e.hash;
    const h = isTracked(e.crdt) ? this.treeHash(e) : hash64(e.crdt.encode());
    if (!this.stopped) e.hash = h; // a stopped engine follows no changes (see treeOf): nothing is kept
    return h;
  }

  private treeHash(e: Entry): [number, number] {
    const root = this.treeOf(e).node(0, 0);
    const rest = (e.crdt as TrackedCrdt).unkeyedBytes();
    const b = new Uint8Array(12 + rest.length);
    const v = new DataView(b.buffer);
    v.setUint32(0, root.lo, true);
    v.setUint32(4, root.hi, true);
    v.setUint32(8, root.count, true);
    b.set(rest, 12);
    return hash64(b);
  }

  /** The object's bucket tree: built from all its keys, or brought up to date for the keys changed since. */
  private treeOf(e: Entry): KeyTree {
    const stale = e.treeStale;
    if (e.tree !== undefined && stale !== undefined && stale.size > 0) {
      const c = e.crdt as TrackedCrdt;
      e.tree.update(c.keyHashesOf([...stale]));
      stale.clear();
      // a cheap check of what the updates promise: the same number of keys as the object
      if (e.tree.n !== c.size) this.invalidate(e);
    }
    if (e.tree === undefined) {
      const tree = new KeyTree((e.crdt as KeyedCrdt).keyHashes());
      if (this.stopped) return tree; // for this call only: a stopped engine keeps no tree and follows nothing
      e.tree = tree;
      // from now on, until it is dropped, the changes the object reports keep it up to date (noteKeys)
      if (isTracked(e.crdt) && e.tree.updatable) {
        e.treeStale = new Set();
        e.treeOff = e.crdt.onChange((keys) => this.noteKeys(e, keys));
      }
    }
    return e.tree;
  }

  /** The first step of a bucket-tree descent: the root's 16 children. */
  private rootTree(e: Entry): TreeItem {
    return { kind: ITEM_TREE, name: e.name, depth: 0, nodes: [{ prefix: 0, children: this.treeOf(e).children(0, 0) }] };
  }

  private newCausalBuffer(delivered: VectorClock): CausalBuffer<{ env: Envelope; payload: DeltaPayload; decoded: Crdt[]; from: string }> {
    return new CausalBuffer({
      maxPending: this.causalBufferSize,
      maxPendingBytes: this.causalBufferBytes,
      sizeOf: (ev) => (ev.payload ? ev.payload.env.payload.byteLength : 0),
      delivered,
      onDrop: () => this.causalDropped++,
    });
  }

  /** After merging a peer's whole causal state, advance the buffer's frontier and release what it unblocks. */
  private advanceCausal(peerCausal: VersionEntries): void {
    if (!peerCausal.length) return;
    const cur = this.causalBuffer.delivered;
    let raised = false;
    for (const [r, n] of peerCausal) if (n > cur.get(r)) {
      cur.set(r, n);
      raised = true;
    }
    if (!raised) return;
    const pending = this.causalBuffer.pendingEvents();
    this.causalBuffer = this.newCausalBuffer(cur);
    let first: unknown;
    for (const ev of pending) {
      try {
        this.applyAll(this.causalBuffer.deliver(ev));
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }

  // ---- anti-entropy ------------------------------------------------------------------------------------

  private antiEntropyTick(): void {
    this.sweep();
    this.collectStable();
    this.aeRetriesLeft = this.aeRetries;
    const live = this.peers.live();
    const p = this.peers.next(live.length ? live : this.peers.all(), 'antiEntropy');
    if (p) this.startSession(p.id);
  }

  private startSession(peer: string): void {
    // one session at a time: an unanswered older one has failed (no retry from here)
    for (const s of [...this.sessions.values()]) this.failSession(s, false);
    const id = this.random.u32();
    const objects = [...this.entries.values()].map((e) => {
      const [lo, hi] = this.hashOf(e);
      const seen = this.durableClock(e);
      return { name: e.name, typeTag: e.crdt.typeTag, lo, hi, keyed: isKeyed(e.crdt), context: isScoped(e.crdt) ? e.crdt.contextBytes() : undefined, clock: seen?.encode() };
    });
    const seen = this.writes.entries();
    const session: Session = {
      id,
      peer,
      started: this.scheduler.now(),
      keys: 0,
      timer: this.later(() => this.failSession(session), this.aeTimeoutMs),
    };
    this.sessions.set(id, session);
    this.noteSpoke(id, peer);
    this.s.aeTotal++;
    const digest = { session: id, seen: this.withCausal(seen), objects, members: this.members().hash };
    let payload = encodeDigest(digest);
    const over = payload.length - (this.maxMessageBytes - this.envelopeOverhead());
    if (over > 0) {
      // contexts too big for one message: the biggest are left out until the digest fits; the peer answers
      // those objects by bucket tree, and a difference in the contexts alone by retired dots (answerTree)
      let left = over;
      for (const o of objects.filter((x) => x.context !== undefined).sort((x, y) => y.context!.length - x.context!.length)) {
        if (left <= 0) break;
        left -= o.context!.length + varuintSize(o.context!.length);
        o.context = undefined;
      }
      payload = encodeDigest(digest);
    }
    this.s.aeBytesSent += this.sendTo(peer, MSG.SYNC_DIGEST, payload, 0);
  }

  private failSession(s: Session, retry = true): void {
    if (!this.sessions.delete(s.id)) return;
    this.scheduler.clearTimeout(s.timer);
    this.s.aeFailed++;
    // with local writes settling the answer may be held here, unread: not the peer's fault, and no retry
    const ours = this.unsettled > 0;
    // a peer that answered (a part of an answer in parts was lost, say) is not missing
    if (!ours && !s.answered) this.missed(s.peer);
    this.emit('sync', { peer: s.peer, ok: false, durationMs: this.scheduler.now() - s.started, keysExchanged: s.keys });
    // retry at once with the next peer (a lost message should not cost a whole interval); a recovery
    // retries until its deadline
    if (retry && (this.aeRetriesLeft > 0 || this.recoveryTimer !== undefined) && !this.stopped && !ours) {
      if (this.aeRetriesLeft > 0) this.aeRetriesLeft--;
      const live = this.peers.live();
      const p = this.peers.next(live.length ? live : this.peers.all(), 'antiEntropy');
      if (p) this.startSession(p.id);
    }
  }

  private completeSession(s: Session): void {
    if (!this.sessions.delete(s.id)) return;
    this.scheduler.clearTimeout(s.timer);
    const d = this.scheduler.now() - s.started;
    this.s.aeOk++;
    this.s.aeTimeTotal += d;
    this.emit('sync', { peer: s.peer, ok: true, durationMs: d, keysExchanged: s.keys });
    // a recovery ends with a session whose answer held all of this replica's dots the peer has: not one
    // that withheld objects (see beginRecovery), nor one that descended bucket trees (an answer in parts
    // may complete the session while a tree round is still out): then one more session at once, which
    // finds the keys of those rounds merged
    if (this.recoveryTimer === undefined) return;
    if (s.partial) return;
    if (s.descended) this.startSession(s.peer);
    else this.finishRecovery(true);
  }

  /**
   * The version vector sent in digests: merged writes, plus the causal frontier under origin names prefixed
   * with "\u0000c:" (so one vector carries both).
   */
  private withCausal(seen: VersionEntries): VersionEntries {
    const out = seen.slice();
    for (const [r, n] of this.causalBuffer.delivered.entries()) out.push([`\u0000c:${r}`, n]);
    return out;
  }

  private splitVector(v: VersionEntries): { writes: VersionEntries; causal: VersionEntries } {
    const writes: VersionEntries = [];
    const causal: VersionEntries = [];
    for (const [r, n] of v) (r.startsWith('\u0000c:') ? causal.push([r.slice(3), n]) : writes.push([r, n]));
    return { writes, causal };
  }

  /** What peers may count as seen here for a collectable object (see `Entry.durable`). */
  private durableClock(e: Entry, now = isCollectable(e.crdt) ? e.crdt.seenPrefix() : undefined): VectorClock | undefined {
    if (now === undefined) return undefined;
    if (!e.durable) return now; // no storage: a crash loses everything, and the state comes back from peers
    const out = e.durable.clone();
    out.set(this.replicaId, Math.max(out.get(this.replicaId), now.get(this.replicaId))); // own ops are logged first
    return out;
  }

  /**
   * The membership this replica counts for tombstone collection (itself and every peer not removed), as a
   * hash sent with each digest: a peer's reports count only while they carry the same hash, so a replica
   * never collects with a stable clock that a member it does not know of (or one it removed and another
   * replica still counts) has no part in.
   */
  private members(): { key: string; hash: [number, number] } {
    if (this.membersCache) return this.membersCache;
    const ids = [this.replicaId, ...this.peers.all().map((p) => p.id)].sort();
    const bytes = new TextEncoder().encode(ids.map((id) => `${id.length}:${id}`).join(''));
    const hash = hash64(bytes);
    return (this.membersCache = { key: `${hash[0]}:${hash[1]}`, hash });
  }

  private noteSpoke(session: number, peer: string): void {
    const now = this.scheduler.now();
    this.spoke.delete(session);
    this.spoke.set(session, { peer, at: now });
    for (const [id, v] of this.spoke) {
      if (this.spoke.size <= MAX_SESSION_MEMORY && now - v.at <= SESSION_MEMORY_MS) break;
      this.spoke.delete(id);
    }
  }

  /** Record a peer's reported clocks (a peer that restarted, with a new epoch, starts over). */
  private noteClocks(from: string, epoch: number, objects: { name: string; clock?: Uint8Array }[], members?: [number, number]): void {
    if (!this.peers.get(from)) return;
    // decode all first: a malformed clock records nothing
    const got: [string, VectorClock][] = [];
    for (const o of objects) if (o.clock && this.entries.has(o.name)) got.push([o.name, VectorClock.decode(o.clock)]);
    let r = this.gcReports.get(from);
    if (!r || r.epoch !== epoch) this.gcReports.set(from, (r = { epoch, clocks: new Map() }));
    // the latest digest's membership is the one its clocks are counted under
    r.members = members ? `${members[0]}:${members[1]}` : undefined;
    for (const [name, vc] of got) {
      const prev = r.clocks.get(name);
      if (prev) prev.merge(vc);
      else r.clocks.set(name, vc);
    }
  }

  /**
   * Tombstone collection: an op is causally stable once every known replica (every peer not removed,
   * dead or alive, and this one) has reported a clock covering it, and this replica has applied every op
   * each reporter had made when it reported (`mine[p] >= report_p[p]`): an op made concurrently with a
   * delete, still in flight, may refer to the deleted element, and it is one of those. Reports are what
   * survives a crash there (`durableClock`), so a restarted replica can never refer to an element
   * collected here. Reports count only while the reporter's latest digest carries this replica's own
   * membership hash (`members()`): a stable clock over the members one replica knows is not stable for a
   * member only its peers know, and a floor computed without it would reach that member's peers inside full
   * states (RGA merge adopts floors) and delete the tombstone it still needs. For the same reason a replica
   * sends collectable objects (in anti-entropy and read answers) to members only: a sender nobody counts
   * (answered for every other object) could otherwise hold an element the members collect, and insert after
   * it. Runs on the anti-entropy tick, and only when the stable clock grew.
   */
  private collectStable(): void {
    for (const e of this.entries.values()) {
      if (!isCollectable(e.crdt)) continue;
      const mine = e.crdt.seenPrefix();
      const clocks = [this.durableClock(e, mine)!];
      const members = this.members().key;
      let complete = true;
      for (const p of this.peers.all()) {
        const r = this.gcReports.get(p.id);
        const c = r?.clocks.get(e.name);
        if (!c || r!.members !== members || mine.get(p.id) < c.get(p.id)) {
          complete = false;
          break;
        }
        clocks.push(c);
      }
      if (!complete || clocks.length < 2) continue;
      const stable = VectorClock.meet(clocks);
      if (e.collectedAt && e.collectedAt.dominates(stable)) continue;
      e.collectedAt = stable;
      // the collection is this replica's own and leaves no delta (an RGA delta never carries the GC floor),
      // so nothing of it goes out as a local write: peers collect by their own reports
      const removed = e.crdt.collectGarbage(stable);
      this.s.tombstonesCollected += removed;
      e.dirty = true;
      this.invalidate(e);
    }
  }

  private onDigest(from: string, env: Envelope, size: number): void {
    const d = decodeDigest(env.payload);
    this.s.aeBytesReceived += size;
    this.noteClocks(from, env.epoch, d.objects, d.members);
    const { writes } = this.splitVector(d.seen);
    // the digest's version vector acknowledges our writes it covers
    for (const [r, n] of writes) if (r === this.replicaId && n > 0) this.ackFrom(from, 1, n);
    const items: SyncItem[] = [];
    const member = this.peers.get(from) !== undefined;
    let withheld = false;
    for (const o of d.objects) {
      const e = this.entries.get(o.name);
      if (!e || e.crdt.typeTag !== o.typeTag) continue;
      const [lo, hi] = this.hashOf(e);
      if (lo === o.lo && hi === o.hi) continue;
      // objects with collectable tombstones go to members only (see collectStable)
      if (!member && isCollectable(e.crdt)) {
        withheld = true;
        continue;
      }
      if (o.keyed && o.context !== undefined && isScoped(e.crdt)) {
        const bytes = (e.crdt.deltaSince(o.context) as Crdt).encode();
        // a difference too big for one message goes by buckets instead (the tree, then slices that split)
        if (bytes.length > this.syncBudget() && isKeyed(e.crdt)) items.push(this.rootTree(e));
        else items.push({ kind: ITEM_SCOPED, name: e.name, typeTag: e.crdt.typeTag, final: false, lo, hi, bytes });
      } else if (o.keyed && isKeyed(e.crdt)) {
        items.push(this.rootTree(e));
      } else {
        items.push({ kind: ITEM_STATE, name: e.name, typeTag: e.crdt.typeTag, final: false, lo, hi, bytes: e.crdt.encode() });
      }
    }
    if (items.some((i) => i.kind === ITEM_SCOPED)) this.noteSpoke(d.session, from);
    // an answer that withholds an object must not tell the peer it now holds all our writes (it would
    // acknowledge them)
    this.s.aeBytesSent += this.sendSync(from, d.session, withheld ? [] : this.withCausal(this.writes.entries()), items, withheld);
  }

  private onSync(from: string, env: Envelope, size: number): void {
    const p = decodeSync(env.payload);
    this.s.aeBytesReceived += size;
    const session = this.sessions.get(p.session);
    const mine = session && session.peer === from ? session : undefined;
    if (mine && p.withheld && !mine.partial) {
      mine.partial = true;
      this.s.withheldAnswers++;
    }
    if (mine) mine.answered = true;
    if (mine && p.part) notePart(mine, p.part);
    if (mine && p.items.some(isTreeRound)) mine.descended = true;
    // decode everything first: a bad item leaves all state unchanged
    const decoded = new Map<SyncItem, Crdt>();
    for (const it of p.items) {
      if (it.kind === ITEM_TREE) continue;
      const e = this.entries.get(it.name);
      if (!e) continue;
      if (it.typeTag !== e.crdt.typeTag) throw new DecodeError(`${it.name}: type ${it.typeTag}, expected ${e.crdt.typeTag}`);
      decoded.set(it, this.decodeFor(e, it.bytes));
    }
    const out: SyncItem[] = [];
    const member = this.peers.get(from) !== undefined;
    let keys = 0;
    let onlyStates = true;
    let pendingAnswer = false;
    // what this message is answered with, each once: a peer repeating an item (200 copies of one tree item in
    // 55 KB drew 8 MB of answers) gets one answer per object and kind, one per tree node
    const answered = new Set<string>();
    const firstTime = (key: string): boolean => {
      if (answered.has(key)) return false;
      answered.add(key);
      return true;
    };
    for (const it of p.items) {
      const e = this.entries.get(it.name);
      if (!e) {
        this.s.unknownObject++;
        onlyStates = false;
        continue;
      }
      if (it.kind === ITEM_STATE) {
        this.mergeInto(e, decoded.get(it)!, from);
        keys++;
        // a final one is not answered: no hash (an answer in parts would rehash the state once per item)
        if (it.final) continue;
        const [lo, hi] = this.hashOf(e);
        if ((lo !== it.lo || hi !== it.hi) && (member || !isCollectable(e.crdt)) && firstTime(`s/${e.name}`)) out.push(...this.stateItems(e, true));
      } else if (it.kind === ITEM_TREE) {
        onlyStates = false;
        if (!isKeyed(e.crdt)) continue;
        const nodes = it.nodes.filter((n) => firstTime(`t/${e.name}/${it.depth}/${n.prefix}`));
        if (nodes.length === 0) continue;
        keys += this.answerTree(e, nodes.length === it.nodes.length ? it : { ...it, nodes }, out, firstTime);
      } else if (it.kind === ITEM_SCOPED) {
        if (!isScoped(e.crdt) || this.spoke.get(p.session)?.peer !== from) {
          // not an answer to what this incarnation said (see `spoke`): anti-entropy repairs it later
          if (isScoped(e.crdt)) this.s.staleAnswers++;
          onlyStates = false;
          continue;
        }
        const theirs = decoded.get(it)!;
        this.mergeInto(e, theirs, from, true);
        keys += (theirs as { size?: number }).size ?? 0;
        const [lo, hi] = this.hashOf(e);
        if (lo === it.lo && hi === it.hi) continue; // we now hold exactly the sender's state
        onlyStates = false;
        if (!firstTime(`c/${e.name}`)) continue;
        if (!it.final) {
          // answer with what the sender's context lacks; it checks the hashes again
          const bytes = (e.crdt.deltaSince(theirs) as Crdt).encode();
          if (bytes.length > this.syncBudget() && isKeyed(e.crdt)) out.push(this.rootTree(e));
          else out.push({ kind: ITEM_SCOPED, name: e.name, typeTag: e.crdt.typeTag, final: true, lo, hi, bytes });
        } else {
          // both sides hold each other's entries and still differ: removals, found by descending the tree
          out.push(this.rootTree(e));
        }
      } else {
        onlyStates = false;
        if (!isKeyed(e.crdt)) continue;
        const theirs = decoded.get(it)!;
        this.mergeInto(e, theirs, from);
        const tree = this.treeOf(e);
        const differing: number[] = [];
        for (const b of it.buckets) {
          if (!firstTime(`l/${e.name}/${it.depth}/${b.prefix}`)) continue; // each bucket once (a peer may repeat one)
          const n = tree.node(it.depth, b.prefix);
          keys += n.count;
          if (n.lo !== b.lo || n.hi !== b.hi) differing.push(b.prefix);
        }
        if (it.left > 0 && differing.length) {
          out.push(...this.sliceItems(e, it.depth, differing, it.left - 1, theirs));
          if (it.left - 1 > 0) pendingAnswer = true;
        }
      }
    }
    // the first answer to our digest, made only of whole states: we now hold everything the peer had
    if (mine && p.seen.length) {
      const { writes, causal } = this.splitVector(p.seen);
      if (onlyStates) this.writes.mergeEntries(writes);
      // causal objects (RGA) are never bucketed: the first answer carried every one that differed, whole
      this.advanceCausal(causal);
    }
    if (mine && p.seen.length) {
      const { writes } = this.splitVector(p.seen);
      for (const [r, n] of writes) if (r === this.replicaId && n > 0) this.ackFrom(from, 1, n);
    }
    if (mine) {
      mine.keys += keys;
      // progress: the session gets a fresh timeout for its next round, up to SESSION_MAX_TIMEOUTS in all
      // (a peer that keeps sending parts of an answer that never completes cannot hold it open forever)
      this.scheduler.clearTimeout(mine.timer);
      const left = mine.started + SESSION_MAX_TIMEOUTS * this.aeTimeoutMs - this.scheduler.now();
      mine.timer = this.later(() => this.failSession(mine), Math.max(0, Math.min(this.aeTimeoutMs, left)));
    }
    this.s.aeKeys += keys;
    if (out.length) this.s.aeBytesSent += this.sendSync(from, p.session, [], out);
    // our session is done once nothing we send needs an answer that we would have to act on, and every
    // answer that came in parts has all its parts in
    if (mine && out.some(isTreeRound)) mine.descended = true;
    if (mine && !pendingAnswer && !out.some((i) => i.kind === ITEM_TREE || (i.kind === ITEM_SLICE && i.left > 0)) && partsIn(mine)) this.completeSession(mine);
  }

  /** Compare the peer's children with ours; descend into differing ones or send their slices. Returns keys touched. */
  private answerTree(e: Entry, it: TreeItem, out: SyncItem[], firstTime: (key: string) => boolean): number {
    const tree = this.treeOf(e);
    const childDepth = it.depth + TREE_FANOUT_BITS;
    const slices: number[] = [];
    const descend: TreeItem['nodes'] = [];
    let anyDiff = false;
    for (const node of it.nodes) {
      const mine = tree.children(it.depth, node.prefix);
      for (let c = 0; c < 16; c++) {
        const a = mine[c];
        const b: TreeNode = node.children[c];
        if (a.count === b.count && (a.count === 0 || (a.lo === b.lo && a.hi === b.hi))) continue;
        anyDiff = true;
        const prefix = node.prefix * 16 + c;
        if (childDepth >= TREE_MAX_DEPTH || a.count + b.count <= SLICE_SMALL) slices.push(prefix);
        else descend.push({ prefix, children: tree.children(childDepth, prefix) });
      }
    }
    if (it.depth === 0 && !anyDiff) {
      // every key agrees but the objects' hashes differ (e.g. causal context only): whole states, or when
      // too big for one message, the retired dots (see stateItems)
      if (firstTime(`s/${e.name}`)) out.push(...this.stateItems(e, false));
      return 0;
    }
    if (descend.length) out.push(...this.treeItems(e.name, childDepth, descend));
    if (slices.length) out.push(...this.sliceItems(e, childDepth, slices, 2));
    return slices.length;
  }

  /**
   * The object's whole state, as one item. When that is too big for one message and the object can hand out
   * its retired dots alone (a map, see RetiringCrdt), those instead, in items within the budget: sent when the
   * bucket tree found every key equal on both sides, so the contexts' retired dots are all the difference,
   * and safe to merge whatever the receiver holds. Not `final`: the last item asks the receiver to answer
   * (with its own, final) when its hash still differs after merging it; the others are final, so it answers
   * once.
   */
  private stateItems(e: Entry, final: boolean): SyncItem[] {
    const bytes = e.crdt.encode();
    // what hashOf gives (an untracked type's without encoding the state again)
    const [lo, hi] = isTracked(e.crdt) ? this.hashOf(e) : (e.hash ??= hash64(bytes));
    const head = stateAnswerHeadMax(e.name);
    if (!isRetiring(e.crdt) || bytes.length + head <= this.partRoom()) {
      return [{ kind: ITEM_STATE, name: e.name, typeTag: e.crdt.typeTag, final, lo, hi, bytes }];
    }
    const parts = e.crdt.retiredParts(this.syncBudget() - head) as Crdt[];
    return parts.map((p, i) => ({ kind: ITEM_STATE, name: e.name, typeTag: e.crdt.typeTag, final: final || i < parts.length - 1, lo, hi, bytes: p.encode() }));
  }

  /**
   * The tree items for these nodes: one, or (when they would not fit one message) several, each within the
   * budget. The receiver answers node by node (answerTree), so a tree round may come in any number of items;
   * a node takes at most 3 + 16 * 13 bytes, so every item fits.
   */
  private treeItems(name: string, depth: number, nodes: TreeItem['nodes']): TreeItem[] {
    const groups = packWithin(nodes.map((nd) => ({ x: nd, n: treeNodeSize(nd) })), this.syncBudget(), treeItemHeadMax(name));
    return groups.map((g) => ({ kind: ITEM_TREE, name, depth, nodes: g }));
  }

  /**
   * The slice items for these buckets: one, or (when its entries would not fit one message) the buckets
   * split in halves until each part fits, and a single bucket still too big as its 16 children (the same
   * keys, each child with its own hash) down to the tree's full depth. Only a bucket at full depth (1/65,536
   * of the keys: mostly one, sometimes two or three) can stay too big: sendSync leaves it out and says so.
   */
  private sliceItems(e: Entry, depth: number, prefixes: number[], left: number, seen?: Crdt): SliceItem[] {
    const item = this.sliceItem(e, depth, prefixes, left, seen);
    if (item.bytes.length <= this.syncBudget()) return [item];
    if (prefixes.length < 2) {
      if (depth + TREE_FANOUT_BITS > TREE_MAX_DEPTH) return [item];
      const children = Array.from({ length: 1 << TREE_FANOUT_BITS }, (_, c) => prefixes[0] * (1 << TREE_FANOUT_BITS) + c);
      return this.sliceItems(e, depth + TREE_FANOUT_BITS, children, left, seen);
    }
    const half = prefixes.length >> 1;
    return [...this.sliceItems(e, depth, prefixes.slice(0, half), left, seen), ...this.sliceItems(e, depth, prefixes.slice(half), left, seen)];
  }

  /** Bytes a message's envelope adds to its payload at most (this replica's origin, tag when keyed). */
  private envelopeOverhead(): number {
    if (this.overhead === undefined) {
      const env: Envelope = { type: MSG.SYNC, flags: 0, origin: this.replicaId, epoch: 0xffffffff, counter: Number.MAX_SAFE_INTEGER, hops: 0, payload: new Uint8Array(0) };
      this.overhead = encodeEnvelope(env, this.signer).length + 4; // the payload's length prefix: up to 5 bytes, not 1
    }
    return this.overhead;
  }

  /** Largest SYNC payload to build: the message bound less room for the envelope and item framing. */
  /** Room for the payload of one part of an answer (the message less the envelope and the parts trailer). */
  private partRoom(): number {
    return this.maxMessageBytes - this.envelopeOverhead() - SYNC_TRAILER_MAX;
  }

  private syncBudget(): number {
    return Math.max(1024, this.maxMessageBytes - 4096);
  }

  /**
   * Send a SYNC answer, in several messages when it would not fit one. Each item goes whole (sliceItems and
   * the tree fallback keep items below the budget); `seen` (the version vector, which claims that the answer
   * carries everything) goes only with an answer sent as one message. Returns the bytes sent.
   */
  private sendSync(peer: string, session: number, seen: VersionEntries, items: SyncItem[], withheld = false): number {
    const whole = encodeSync({ session, seen, items, withheld });
    if (whole.length <= this.syncBudget()) return this.sendTo(peer, MSG.SYNC, whole, 0);
    // an item too big for any message (an object's whole state past maxMessageBytes) stays out, and the answer
    // says it withheld something: sent, it would be dropped, and a part announced but never sent would keep
    // the asker's session from completing
    const room = this.partRoom();
    const fit: { x: SyncItem; n: number }[] = [];
    for (const it of items) {
      const n = encodeSync({ session, seen: [], items: [it] }).length;
      if (n <= room) fit.push({ x: it, n });
      else {
        this.s.oversize++;
        this.logger?.warn?.(`anti-entropy item ${it.name} of ${n} bytes exceeds maxMessageBytes; left out of the answer to ${peer}`);
      }
    }
    const dropped = fit.length < items.length;
    if (!dropped && items.length < 2) return this.sendTo(peer, MSG.SYNC, whole, 0);
    if (dropped) withheld = true;
    const parts = packWithin(fit, this.syncBudget());
    if (parts.length === 1) return this.sendTo(peer, MSG.SYNC, encodeSync({ session, seen: [], items: parts[0], withheld }), 0);
    // every part carries the flag and its place in the answer: the asker counts the answer once all are in
    const group = (this.partGroup = (this.partGroup + 1) % 2 ** 31);
    let sent = 0;
    parts.forEach((its, index) => {
      sent += this.sendTo(peer, MSG.SYNC, encodeSync({ session, seen: [], items: its, withheld, part: { group, index, total: parts.length } }), 0);
    });
    this.s.aeSplit++;
    return sent;
  }

  private sliceItem(e: Entry, depth: number, prefixes: number[], left: number, seen?: Crdt): SliceItem {
    const tree = this.treeOf(e);
    const crdt = e.crdt as KeyedCrdt;
    // the tree knows which keys are in these buckets (the map would hash all its keys to find them)
    const bytes = crdt.deltaForBuckets(depth, prefixes, seen, tree.keysIn(depth, prefixes)) as Crdt;
    return {
      kind: ITEM_SLICE,
      name: e.name,
      typeTag: e.crdt.typeTag,
      left,
      depth,
      buckets: prefixes.map((prefix) => {
        const n = tree.node(depth, prefix);
        return { prefix, lo: n.lo, hi: n.hi };
      }),
      bytes: bytes.encode(),
    };
  }

  // ---- reads -------------------------------------------------------------------------------------------

  private onReadReq(from: string, env: Envelope): void {
    const q = decodeReadReq(env.payload);
    const e = this.entries.get(q.name);
    if (!e) {
      this.s.unknownObject++;
      return;
    }
    if (isCollectable(e.crdt) && !this.peers.get(from)) return; // members only (see collectStable)
    const [lo, hi] = this.hashOf(e);
    const same = lo === q.lo && hi === q.hi;
    this.sendTo(from, MSG.READ_RESP, encodeReadResp({ reqId: q.reqId, name: q.name, same, bytes: same ? new Uint8Array(0) : e.crdt.encode() }), 0);
  }

  private onReadResp(from: string, env: Envelope): void {
    const r = decodeReadResp(env.payload);
    const pending = this.pendingReads.get(r.reqId);
    if (!pending || pending.name !== r.name || !this.peers.get(from)) return;
    const e = this.entries.get(r.name);
    if (!e) return;
    if (!r.same) this.mergeInto(e, this.decodeFor(e, r.bytes), from);
    pending.answered.add(from);
    if (pending.answered.size >= pending.needed) {
      this.pendingReads.delete(r.reqId);
      this.scheduler.clearTimeout(pending.timer);
      pending.resolve();
    }
  }

  // ---- events ------------------------------------------------------------------------------------------

  private emit<K extends keyof EventMap>(event: K, value: EventMap[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of set) {
      try {
        (fn as (e: EventMap[K]) => void)(value);
      } catch (err) {
        this.logger?.error?.(`${event} listener threw`, err);
      }
    }
  }

  /** @internal sizes of bounded structures (for tests). */
  internals(): { storageBatches: number; maxHopsDelivered: number; seenCache: number; seenCapacity: number; queue: number; queueBytes: number; maxQueue: number; causalPending: number; causalPendingBytes: number; causalMax: number; outbox: number; writeExtras: number; sessions: number } {
    return {
      storageBatches: this.s.storageBatches,
      maxHopsDelivered: this.maxHopsDelivered,
      seenCache: this.seen.size,
      seenCapacity: this.seen.capacity,
      queue: this.queue.length,
      queueBytes: this.queueBytes,
      maxQueue: this.maxQueue,
      causalPending: this.causalBuffer.pending,
      causalPendingBytes: this.causalBuffer.pendingBytes,
      causalMax: this.causalBufferSize,
      outbox: this.outbox.length,
      writeExtras: this.writes.extras,
      sessions: this.sessions.size,
    };
  }

  /** @internal */
  get isStarted(): boolean {
    return this.started;
  }

  /** @internal for tests that need it: throws unless started. */
  assertStarted(): void {
    if (!this.started) throw new NotInitializedError('engine not started');
  }
}

/** First byte of a framed stored record (an encoding itself starts with its codec version, 1). */
const RECORD_MAGIC = 0xfe;
const utf8Encoder = new TextEncoder();

/** Seed of a stored record's checksum: a hash of its object's name, so bytes moved to another key fail. */
function recordSeed(name: string): number {
  return murmur32(utf8Encoder.encode(name), 0x5eed5eed);
}

/** A stored record for object `name`: RECORD_MAGIC, u32 LE checksum, the encoding (see the module comment). */
function frameRecord(name: string, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  const h = murmur32(payload, recordSeed(name));
  out[0] = RECORD_MAGIC;
  out[1] = h & 0xff;
  out[2] = (h >>> 8) & 0xff;
  out[3] = (h >>> 16) & 0xff;
  out[4] = h >>> 24;
  out.set(payload, 5);
  return out;
}

/** The encoding in a stored record of object `name`; DecodeError when the frame's checksum does not match. */
function unframeRecord(name: string, bytes: Uint8Array): Uint8Array {
  if (bytes.length === 0 || bytes[0] !== RECORD_MAGIC) return bytes; // unframed: written before frames existed
  if (bytes.length < 5) throw new DecodeError('stored record: truncated frame');
  const want = (bytes[1] | (bytes[2] << 8) | (bytes[3] << 16) | (bytes[4] << 24)) >>> 0;
  const payload = bytes.subarray(5);
  if (murmur32(payload, recordSeed(name)) !== want) throw new DecodeError(`stored record: checksum mismatch (damaged, or not ${name}'s)`);
  return payload;
}

/** Session timeouts that the recovery after set-aside records waits for a peer at most. */
const RECOVER_SESSIONS = 3;
/** Storage key present while a run is open (see markOpen). */
const OPEN_KEY = 'm/open';
const UNCLEAN = 'the last run did not stop cleanly';
const OPEN_VALUE = new Uint8Array([1]);

/**
 * @internal Mark a storage as holding a run that did not stop cleanly, so an engine starting on it recovers
 * from a peer before local writes (see SyncEngine.markOpen). The CLI uses it when a data dir that held a
 * replica comes back with an empty database.
 */
export function markRunOpen(storage: Storage): Promise<void> {
  return storage.put(OPEN_KEY, OPEN_VALUE);
}
/** Session timeouts a recovery waits at most while peers keep answering (see extendRecovery). */
const RECOVER_MAX_SESSIONS = 30;
/** Session timeouts one session may last at most, however many rounds keep it going (see onSync). */
const SESSION_MAX_TIMEOUTS = 60;

/** Requests held at most while local writes settle (see `hold`). */
const HELD_MAX = 256;

/** The part of a log key after `d/<name>/`: the write's sequence number, zero-padded to 15 digits. */
const LOG_KEY_TAIL = /^\d{15}$/;

/** Longest timer the platforms keep (2^31-1 ms, about 24.8 days): a longer one fires at once. */
const MAX_TIMEOUT = 2 ** 31 - 1;

/** A write or read timeout: undefined, or a number of ms in [0, 2^31-1]. ValidationError otherwise. */
function checkTimeout(ms: unknown): void {
  if (ms === undefined) return;
  if (typeof ms !== 'number' || !(ms >= 0 && ms <= MAX_TIMEOUT)) throw new ValidationError(`timeoutMs must be a number of ms in [0, ${MAX_TIMEOUT}], got ${String(ms)}`);
}

function checkWriteLevel(level: unknown): void {
  if (level !== undefined && level !== 'local' && level !== 'majority' && level !== 'all') throw new ValidationError(`unknown write level ${String(level)}`);
}

function msgId(env: Envelope): string {
  return `${env.origin}\u0000${env.epoch}\u0000${env.counter}`;
}

function positive(v: number, what: string): number {
  if (!(typeof v === 'number' && v > 0 && Number.isFinite(v))) throw new ValidationError(`${what} must be a positive number`);
  return v;
}

function positiveInt(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new ValidationError(`${what} must be a positive integer`);
  return v;
}

export type { CausalEvent };

/**
 * Most keys merges may change before a bucket tree is rebuilt rather than updated key by key (an update
 * costs about what a rebuild costs per key; this bounds the keys held meanwhile).
 */
function treeStaleMax(tree: KeyTree): number {
  return 256 + (tree.n >>> 1);
}

/** Drop a CRDT's pending delta: `discardDelta()` where the type has it (no delta built), else `takeDelta()`. */
function dropDelta(crdt: Crdt): void {
  const c = crdt as { discardDelta?(): void };
  if (typeof c.discardDelta === 'function') c.discardDelta();
  else crdt.takeDelta();
}

/** Record a part of a split answer in its session (see SyncPayload.part). */
function notePart(s: Session, part: SyncPart): void {
  const groups = (s.parts ??= new Map());
  let g = groups.get(part.group);
  if ((s.partCount ?? 0) >= MAX_PART_INDICES || (g === undefined && groups.size >= MAX_PART_GROUPS)) {
    s.partsOverflow = true;
    return;
  }
  if (g === undefined) groups.set(part.group, (g = { total: part.total, seen: new Set() }));
  if (part.total === g.total && !g.seen.has(part.index)) {
    g.seen.add(part.index);
    s.partCount = (s.partCount ?? 0) + 1;
  }
}

/** True when every answer of the session that came in parts has all its parts in. */
function partsIn(s: Session): boolean {
  if (s.parts === undefined) return true;
  if (s.partsOverflow) return false;
  for (const g of s.parts.values()) if (g.seen.size < g.total) return false;
  return true;
}

/**
 * Sized things in order, in groups of consecutive ones whose sizes (plus `head` per group) stay within
 * `budget`; a thing bigger than the budget gets a group of its own. Always at least one group.
 */
function packWithin<T>(xs: { x: T; n: number }[], budget: number, head = 0): T[][] {
  const groups: T[][] = [];
  let cur: T[] = [];
  let size = head;
  for (const { x, n } of xs) {
    if (size + n > budget && cur.length) {
      groups.push(cur);
      cur = [];
      size = head;
    }
    cur.push(x);
    size += n;
  }
  groups.push(cur);
  return groups;
}

/** A bucket-tree round: a tree item, or a slice of buckets (keys sent by buckets, not by context). */
function isTreeRound(i: SyncItem): boolean {
  return i.kind === ITEM_TREE || i.kind === ITEM_SLICE;
}
