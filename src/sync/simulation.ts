/**
 * Deterministic cluster simulation: N `SyncEngine`s on one `VirtualScheduler` and one `MemoryNetwork`, each
 * with its own `MemoryStorage` (kept outside the node, so a crash loses the node's memory but not what it
 * made durable) and a `ScopedScheduler` (a crash cancels all of the node's timers). Everything random comes
 * from the seed: the network's faults, each engine's choices (seeded per node and incarnation), and whatever
 * the caller draws from `random`. Same seed, same calls: same run, event for event.
 */
import { HLC } from '../clock/hlc.js';
import { MemoryStorage } from '../storage/memory.js';
import { Random } from '../time/random.js';
import { ScopedScheduler } from '../time/scheduler.js';
import { VirtualScheduler } from '../time/virtual.js';
import { MemoryNetwork } from '../transport/memory.js';
import { SyncEngine, type SyncEngineOptions } from './engine.js';

export interface SimNodeContext {
  id: string;
  /** An HLC on virtual time (give it to LWW registers and maps for deterministic timestamps). */
  clock: HLC;
  scheduler: ScopedScheduler;
  incarnation: number;
}

export interface SimulationOptions {
  seed: number;
  nodes: string[];
  latencyMs?: [number, number];
  loss?: number;
  duplicate?: number;
  reorder?: number;
  /** Engine options for every node (replicaId, transport, scheduler, storage and random are set here). */
  engine?: Omit<Partial<SyncEngineOptions>, 'replicaId' | 'transport' | 'scheduler' | 'storage' | 'random'>;
  /** Give every node a MemoryStorage (default true; needed for crash/restart). */
  storage?: boolean;
  /** Register the node's CRDTs (called for every start and restart, before `start()`). */
  setup: (engine: SyncEngine, ctx: SimNodeContext) => void;
  /** Record the network's event trace. */
  trace?: boolean;
  /** Virtual start time, ms (default 1,000,000: HLC timestamps look like real ones). */
  startMs?: number;
  /**
   * Per node, the peers it is given (default: every other node); a node not listed gets the default. Each
   * key and entry must be a node of `nodes`, an entry not the node itself nor listed twice (RangeError).
   * A restarted node gets its list from here again, as a process restarted with its configuration would:
   * `addPeer`/`removePeer` calls made on the engine before the crash are not carried over (repeat them on
   * the new engine after `restart`).
   */
  peers?: Record<string, string[]>;
}

export interface SimNode {
  id: string;
  engine: SyncEngine;
  scheduler: ScopedScheduler;
  storage: MemoryStorage | undefined;
  clock: HLC;
  up: boolean;
  incarnation: number;
}

export class Simulation {
  readonly scheduler: VirtualScheduler;
  readonly network: MemoryNetwork;
  /** The caller's randomness (workload choices), forked from the seed. */
  readonly random: Random;
  readonly nodes = new Map<string, SimNode>();
  private readonly seedRandom: Random;

  constructor(readonly options: SimulationOptions) {
    this.scheduler = new VirtualScheduler(options.startMs ?? 1_000_000);
    this.seedRandom = new Random(options.seed);
    this.network = new MemoryNetwork({
      seed: this.seedRandom.u32(),
      scheduler: this.scheduler,
      latencyMs: options.latencyMs ?? [5, 50],
      loss: options.loss ?? 0,
      duplicate: options.duplicate ?? 0,
      reorder: options.reorder ?? 0,
      trace: options.trace,
    });
    this.random = this.seedRandom.fork('workload');
    checkPeers(options);
    for (const id of options.nodes) {
      const storage = options.storage === false ? undefined : new MemoryStorage();
      this.nodes.set(id, this.build(id, storage, 0));
    }
  }

  private build(id: string, storage: MemoryStorage | undefined, incarnation: number): SimNode {
    const scheduler = new ScopedScheduler(this.scheduler);
    const clock = new HLC({ now: () => this.scheduler.now(), maxDriftMs: 1e12 });
    const engine = new SyncEngine({
      ...this.options.engine,
      replicaId: id,
      transport: this.network.transport(id),
      scheduler,
      storage,
      random: new Random(`${this.options.seed}/${id}/${incarnation}`),
    });
    this.options.setup(engine, { id, clock, scheduler, incarnation });
    const listed = this.options.peers !== undefined && Object.hasOwn(this.options.peers, id) ? this.options.peers[id] : undefined;
    const peers = listed ?? this.options.nodes.filter((other) => other !== id);
    for (const other of peers) engine.addPeer(other, `memory://${other}`);
    return { id, engine, scheduler, storage, clock, up: true, incarnation };
  }

  /** Start every node (loads storage). */
  async start(): Promise<void> {
    for (const n of this.nodes.values()) await n.engine.start();
  }

  node(id: string): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new RangeError(`no node ${id}`);
    return n;
  }

  engine(id: string): SyncEngine {
    return this.node(id).engine;
  }

  upNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.up);
  }

  /** The node dies: memory and timers gone, transport dead, storage kept as it was. */
  crash(id: string): void {
    const n = this.node(id);
    if (!n.up) return;
    n.up = false;
    n.scheduler.close(); // its promise continuations may still run: they can start no timer (no flush, no send)
    this.network.crash(id);
    void n.storage?.close();
  }

  /** The node comes back with a fresh engine that loads its storage and catches up. */
  async restart(id: string): Promise<void> {
    const n = this.node(id);
    if (n.up) return;
    this.network.restart(id);
    n.storage?.reopen();
    const fresh = this.build(id, n.storage, n.incarnation + 1);
    this.nodes.set(id, fresh);
    await fresh.engine.start();
  }

  partition(...groups: string[][]): void {
    this.network.partition(...groups);
  }

  heal(): void {
    this.network.heal();
  }

  run(ms: number): Promise<void> {
    return this.scheduler.run(ms);
  }

  runUntil(predicate: () => boolean, limitMs: number): Promise<boolean> {
    return this.scheduler.runUntil(predicate, limitMs);
  }

  /** True when every up node holds identical encodings of every registered object (compared by 64-bit hash). */
  converged(names?: string[]): boolean {
    const up = this.upNodes();
    if (up.length < 2) return true;
    const list = names ?? up[0].engine.names();
    for (const name of list) {
      const ref = up[0].engine.hash(name);
      for (let i = 1; i < up.length; i++) if (up[i].engine.hash(name) !== ref) return false;
    }
    return true;
  }

  /** Stop every node. */
  async stop(): Promise<void> {
    for (const n of this.upNodes()) await n.engine.stop();
  }
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** RangeError unless every `peers` key and entry names a node, no entry is the node itself or listed twice. */
function checkPeers(options: SimulationOptions): void {
  const nodes = new Set(options.nodes);
  for (const [id, list] of Object.entries(options.peers ?? {})) {
    if (!nodes.has(id)) throw new RangeError(`peers: ${id} is not a node`);
    if (!Array.isArray(list)) throw new RangeError(`peers of ${id}: not an array`);
    const seen = new Set<string>();
    for (const p of list) {
      if (!nodes.has(p)) throw new RangeError(`peers of ${id}: ${String(p)} is not a node`);
      if (p === id) throw new RangeError(`peers of ${id}: a node is not its own peer`);
      if (seen.has(p)) throw new RangeError(`peers of ${id}: ${p} listed twice`);
      seen.add(p);
    }
  }
}
