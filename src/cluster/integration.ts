/**
 * `NovaCronIntegration`: the cluster metadata API of the seed system, on a `SyncEngine`.
 *
 * ```ts
 * const node = new NovaCronIntegration({ nodeId: 'node-us-east-1', region: 'us-east', transport, storage });
 * await node.start();
 * node.registerRegion('node-eu-west-1', 'eu-west', 'ws://eu-west.example.internal:7100');
 * await node.updateVMState('vm-001', { id: 'vm-001', status: 'running', nodeId: 'node-us-east-1', cpuCores: 4, memoryMB: 8192 });
 * node.getVMState('vm-001');
 * ```
 *
 * Design choices:
 * - The state is a `ClusterMetadata` (five CRDTs, see metadata.ts) registered with the engine under stable
 *   names. Every write validates first (ValidationError: nothing changes anywhere), applies the change locally
 *   and synchronously (a read right after sees it, even without `await`), then commits through the engine,
 *   whose promise resolves once the delta is durable in storage (and, with `{ write: 'majority' | 'all' }`,
 *   merged by that many replicas; else TimeoutError, the write still applied and propagating).
 * - Mutators are async and report every error as a rejected promise, so `await` works uniformly.
 * - With a storage, writes are refused (NotInitializedError) until `start()` has loaded the stored state:
 *   writing before the load could reuse dots that peers have already seen.
 * - `gossipInterval`, `gossipFanout`, `maxGossipHops`, `antiEntropyInterval` map to the engine's gossip and
 *   anti-entropy options; `getStats()` reports the engine's counters in the seed's shape.
 */
import { HLC } from '../clock/hlc.js';
import { NotInitializedError, ValidationError } from '../errors.js';
import type { Storage } from '../storage/types.js';
import { SyncEngine, type Logger, type SyncEngineOptions, type SyncStats } from '../sync/engine.js';
import type { Random } from '../time/random.js';
import { RealScheduler, type Scheduler } from '../time/scheduler.js';
import type { Transport } from '../transport/types.js';
import { ClusterMetadata, OVERVIEW_RECENT, type ClusterOverview, type ClusterState, type ClusterSummary } from './metadata.js';
import { checkId, checkWriteOptions, type ClusterSnapshot, type NodeStatus, type NodeStatusInput, type VMState, type VMStateInput, type WriteOptions } from './types.js';

export interface NovaCronIntegrationOptions {
  nodeId: string;
  region: string;
  /** Anti-entropy period, ms. Default 30,000. */
  antiEntropyInterval?: number;
  /** Peers per gossip push. Default 3. */
  gossipFanout?: number;
  /** Gossip period, ms. Default 5,000. */
  gossipInterval?: number;
  /** Forwarding limit of a gossiped delta. Default 10. */
  maxGossipHops?: number;
  transport: Transport;
  storage?: Storage;
  /** Shared secret: every message is authenticated with HMAC-SHA256. */
  clusterKey?: Uint8Array | string;
  logger?: Logger;
  /** Timers. Default: the transport's `scheduler` (a MemoryNetwork's virtual clock) if it has one, else real time. */
  scheduler?: Scheduler;
  /** Seeded randomness for the engine's peer choice (deterministic simulation). */
  random?: Random;
  /** Further engine options (liveness, flush delay, message size, ...), applied under the ones above. */
  engine?: Partial<SyncEngineOptions>;
}

export interface ClusterStats {
  totalVMs: number;
  totalNodes: number;
  totalAssignments: number;
  /** Sum of all cluster counters (0 when there are none). */
  counterValue: number;
}

export interface IntegrationStats {
  clusterStats: ClusterStats;
  /** The engine's gossip statistics, plus `seenMessages` (the seed's name for `seenCacheSize`). */
  gossipStats: SyncStats['gossip'] & { bytesSent: number; bytesReceived: number; seenMessages: number };
  /** The engine's anti-entropy statistics, plus `averageSyncTime` (the seed's name; ms, as `averageSyncTimeMs`). */
  antiEntropyStats: SyncStats['antiEntropy'] & { averageSyncTime: number };
  peerCount: number;
  crdtCount: number;
}

export class NovaCronIntegration {
  readonly nodeId: string;
  readonly region: string;
  readonly engine: SyncEngine;
  readonly metadata: ClusterMetadata;
  private readonly storage: Storage | undefined;
  private readonly regions = new Map<string, { region: string; address: string }>();
  private running = false;

  constructor(options: NovaCronIntegrationOptions) {
    if (!options || typeof options !== 'object') throw new ValidationError('options are required');
    this.nodeId = checkId('nodeId', options.nodeId);
    this.region = checkId('region', options.region);
    if (!options.transport) throw new ValidationError('transport is required');
    // The transport's own medium may keep time (a MemoryNetwork's virtual clock): without a scheduler option the
    // node runs on it, so simulated time drives deliveries and this node's timers together.
    // Given a scheduler, a medium nothing has used yet adopts it (see Transport.useScheduler).
    if (options.scheduler !== undefined) options.transport.useScheduler?.(options.scheduler);
    const scheduler = options.scheduler ?? options.transport.scheduler ?? new RealScheduler();
    // A transport created without an id (`new WebSocketTransport({ host, port })`) takes the node id; one given
    // another id refuses (ValidationError). SyncEngine binds its replicaId too: the same id, so a no-op here.
    options.transport.bind?.(this.nodeId);
    const clock = new HLC({ now: () => scheduler.now() });
    this.metadata = new ClusterMetadata(this.nodeId, { clock, now: () => scheduler.now() });
    this.storage = options.storage;
    this.engine = new SyncEngine({
      ...options.engine,
      random: options.random ?? options.engine?.random,
      replicaId: this.nodeId,
      transport: options.transport,
      scheduler,
      storage: options.storage,
      clusterKey: options.clusterKey,
      logger: options.logger,
      gossip: {
        ...options.engine?.gossip,
        fanout: options.gossipFanout ?? 3,
        intervalMs: options.gossipInterval ?? 5000,
        maxHops: options.maxGossipHops ?? 10,
      },
      antiEntropy: { ...options.engine?.antiEntropy, intervalMs: options.antiEntropyInterval ?? 30_000 },
    });
    for (const [name, crdt] of this.metadata.crdts()) this.engine.register(name, crdt);
    this.regions.set(this.nodeId, { region: this.region, address: options.transport.address });
  }

  /** Load stored state (with a storage), start the transport, gossip and anti-entropy. */
  async start(): Promise<void> {
    await this.engine.start();
    this.running = true;
  }

  /** Stop timers and transport; pending local writes are made durable first. */
  async stop(): Promise<void> {
    this.running = false;
    await this.engine.stop();
  }

  /** Add a peer node (its region is recorded for `regionOf`). */
  registerRegion(nodeId: string, region: string, address: string): void {
    checkId('nodeId', nodeId);
    checkId('region', region);
    if (typeof address !== 'string') throw new ValidationError('address must be a string');
    if (nodeId === this.nodeId) throw new ValidationError('cannot register this node as its own peer');
    this.regions.set(nodeId, { region, address });
    this.engine.addPeer(nodeId, address);
  }

  /** Add a peer whose region is not known up front (it is learned from its NodeStatus). */
  addPeer(nodeId: string, address: string): void {
    checkId('nodeId', nodeId);
    if (typeof address !== 'string') throw new ValidationError('address must be a string');
    this.engine.addPeer(nodeId, address);
  }

  /** The region of a node: registered, else from its replicated NodeStatus. */
  regionOf(nodeId: string): string | undefined {
    return this.regions.get(nodeId)?.region ?? this.metadata.getNodeStatus(nodeId)?.region;
  }

  // ---- VMs ----

  /** Write a VM's state (validated). Resolves once durable (and replicated per `opts.write`). */
  async updateVMState(vmId: string, state: VMStateInput, opts?: WriteOptions): Promise<void> {
    const o = checkWriteOptions(opts);
    this.checkWritable();
    const recovering = this.engine.recovery(); // set aside stored records: wait for a peer first (rare)
    if (recovering) await recovering;
    const names = this.metadata.putVM(vmId, state);
    await this.commit(names, o);
  }

  getVMState(vmId: string): VMState | undefined {
    return this.metadata.getVMState(vmId);
  }

  listVMs(): VMState[] {
    return this.metadata.listVMs();
  }

  /** Remove a VM and its assignment. */
  async removeVM(vmId: string, opts?: WriteOptions): Promise<void> {
    const o = checkWriteOptions(opts);
    checkId('vmId', vmId);
    this.checkWritable();
    const recovering = this.engine.recovery(); // set aside stored records: wait for a peer first (rare)
    if (recovering) await recovering;
    await this.commit(this.metadata.removeVM(vmId), o);
  }

  // ---- nodes ----

  async updateNodeStatus(status: NodeStatusInput, opts?: WriteOptions): Promise<void> {
    const o = checkWriteOptions(opts);
    this.checkWritable();
    const recovering = this.engine.recovery(); // set aside stored records: wait for a peer first (rare)
    if (recovering) await recovering;
    await this.commit(this.metadata.putNode(status), o);
  }

  getNodeStatus(nodeId: string): NodeStatus | undefined {
    return this.metadata.getNodeStatus(nodeId);
  }

  listNodes(): NodeStatus[] {
    return this.metadata.listNodes();
  }

  // ---- assignments ----

  async assignVM(vmId: string, nodeId: string, opts?: WriteOptions): Promise<void> {
    const o = checkWriteOptions(opts);
    checkId('vmId', vmId);
    checkId('nodeId', nodeId);
    this.checkWritable();
    const recovering = this.engine.recovery(); // set aside stored records: wait for a peer first (rare)
    if (recovering) await recovering;
    await this.commit(this.metadata.assign(vmId, nodeId), o);
  }

  getAssignment(vmId: string): string | undefined {
    return this.metadata.getAssignment(vmId);
  }

  listAssignments(): Record<string, string> {
    return this.metadata.listAssignments();
  }

  // ---- counters and resources ----

  /** Add n (a safe integer, negative to decrement) to a cluster-wide PN-counter. */
  async incrementCounter(name: string, n = 1, opts?: WriteOptions): Promise<void> {
    const o = checkWriteOptions(opts);
    checkId('counter name', name);
    if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new ValidationError('counter increment must be a safe integer');
    this.checkWritable();
    const recovering = this.engine.recovery(); // set aside stored records: wait for a peer first (rare)
    if (recovering) await recovering;
    let names: string[];
    try {
      names = this.metadata.increment(name, n);
    } catch (e) {
      // DESIGN: counters past Number.MAX_SAFE_INTEGER throw RangeError (nothing changed)
      // (a write this replica cannot record, E_EXHAUSTED, keeps its own code: it is not the request's fault)
      if (e instanceof RangeError && (e as { code?: unknown }).code === undefined) throw Object.assign(new RangeError(`counter ${name}: ${e.message}`), { code: 'E_RANGE' });
      throw e;
    }
    await this.commit(names, o);
  }

  getCounter(name: string): number {
    return this.metadata.getCounter(name);
  }

  listCounters(): Record<string, number> {
    return this.metadata.listCounters();
  }

  async setResource(key: string, value: unknown, opts?: WriteOptions): Promise<void> {
    const o = checkWriteOptions(opts);
    checkId('resource key', key);
    this.checkWritable();
    const recovering = this.engine.recovery(); // set aside stored records: wait for a peer first (rare)
    if (recovering) await recovering;
    await this.commit(this.metadata.setResource(key, value), o);
  }

  getResource(key: string): unknown {
    return this.metadata.getResource(key);
  }

  // ---- whole state ----

  /** Everything, as plain data: `{ vms, nodes, assignments, counters, resources }`. */
  exportState(): ClusterState {
    return this.metadata.exportState();
  }

  /**
   * VM count, VMs per region, the `recent` most recently updated VMs, node statuses and counters, re-reading
   * only the VMs changed since the last call (see `ClusterMetadata.overview`): what the dashboard polls.
   */
  overview(recent = OVERVIEW_RECENT): ClusterOverview {
    return this.metadata.overview(recent);
  }

  /**
   * VM, node and assignment counts, counters and a digest of the VMs and assignments, equal on replicas that
   * hold the same ones (see `ClusterMetadata.summary`): what the demo polls to see convergence. Re-reads only
   * what changed since the last call.
   */
  summary(): ClusterSummary {
    return this.metadata.summary();
  }

  /**
   * Import an existing cluster state (the seed system's migration path). The whole snapshot is validated
   * first: one bad entry rejects with ValidationError and nothing is imported. Counters are raised to the
   * snapshot's values (re-importing does not double them). Resolves once durable. Returns what was imported.
   */
  async migrateFrom(snapshot: ClusterSnapshot, opts?: WriteOptions): Promise<Record<string, number>> {
    const o = checkWriteOptions(opts);
    ClusterMetadata.checkSnapshot(snapshot);
    this.checkWritable();
    const recovering = this.engine.recovery(); // set aside stored records: wait for a peer first (rare)
    if (recovering) await recovering;
    const { names, counts } = this.metadata.importSnapshot(snapshot);
    await this.commit(names, o);
    return counts;
  }

  /** Counters in the seed's shape (the engine's full statistics: `engine.stats()`). */
  getStats(): IntegrationStats {
    const s = this.engine.stats();
    const counters = this.metadata.listCounters();
    const names = Object.keys(counters);
    return {
      clusterStats: {
        totalVMs: this.metadata.vms.size,
        totalNodes: this.metadata.nodes.size,
        totalAssignments: this.metadata.assignments.size,
        counterValue: names.reduce((a, k) => a + counters[k], 0),
      },
      gossipStats: { ...s.gossip, bytesSent: s.bytesSent, bytesReceived: s.bytesReceived, seenMessages: s.gossip.seenCacheSize },
      antiEntropyStats: { ...s.antiEntropy, averageSyncTime: s.antiEntropy.averageSyncTimeMs },
      peerCount: s.peerCount,
      crdtCount: s.crdtCount,
    };
  }

  // ---- internals ----

  private checkWritable(): void {
    if (this.storage && !this.running) throw new NotInitializedError('start() must load the stored state before writes');
  }

  private async commit(names: string[], opts: WriteOptions | undefined): Promise<void> {
    if (names.length === 0) return;
    await Promise.all(names.map((n) => this.engine.commit(n, opts)));
  }
}
