/**
 * A transport moves opaque byte messages between named peers. It never interprets them.
 * Implementations: `MemoryNetwork` (simulated, deterministic) and `WebSocketTransport`.
 */
import type { Scheduler } from '../time/scheduler.js';

export type MessageHandler = (fromPeerId: string, bytes: Uint8Array) => void;

export interface Transport {
  /**
   * This node's id on the transport (empty until `bind` for a transport created without one). Optional for a
   * transport of your own: the engine never reads it (it names itself by its replicaId).
   */
  readonly id?: string;
  /**
   * Called by SyncEngine with its replicaId before start(); a transport created without an id takes it.
   * A transport whose id was given explicitly refuses (ValidationError) a different one.
   */
  bind?(localId: string): void;
  /**
   * Called by SyncEngine before start() when it has a cluster key: `check(bytes)` tells whether a received
   * message carries a valid tag. A transport that accepts connections from anyone (WebSocketTransport) then
   * trusts an inbound connection as a send path only once it delivered a message that passes.
   */
  authenticateWith?(check: (bytes: Uint8Array) => boolean): void;
  /**
   * The scheduler of the medium, e.g. a MemoryNetwork's virtual clock; SyncEngine and NovaCronIntegration use
   * it when no scheduler option is given.
   */
  readonly scheduler?: Scheduler;
  /**
   * The engine's own scheduler (its `scheduler` option): a medium with a clock of its own that nothing has used
   * yet (a MemoryNetwork made without a scheduler) runs on it instead. Returns true when the medium runs on it.
   */
  useScheduler?(scheduler: Scheduler): boolean;
  /**
   * A simulated medium's seed (MemoryNetwork's): a SyncEngine without a `random` option derives its random
   * choices (gossip targets, anti-entropy peers, session ids) from it and its replica id, so a seeded network
   * gives the same run. Real transports have none (the engine then draws from entropy).
   */
  readonly seed?: number;
  /** Where peers reach this node (e.g. `ws://127.0.0.1:7101`), or a simulated address. */
  readonly address: string;
  /**
   * Send bytes to a peer. Best effort: it may be dropped (loss, peer down, back-pressure); it never throws for a
   * down peer. Returns false when the message was dropped locally (unknown peer, queue full, too large); a
   * transport of your own may return nothing (the engine does not look: delivery is best effort either way).
   */
  send(peerId: string, bytes: Uint8Array): boolean | void;
  /** Register the handler for incoming messages (one handler; a later call replaces it). */
  onMessage(fn: MessageHandler): void;
  /** Tell the transport where a peer lives (used by transports that dial out). */
  connect?(peerId: string, address: string): void;
  /** Forget a peer. */
  disconnect?(peerId: string): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}
