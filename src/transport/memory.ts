/**
 * `MemoryNetwork`: a simulated network for deterministic tests and benchmarks. Every delivery is a timer on a
 * `VirtualScheduler` and every random choice (latency, loss, duplication, reordering) comes from one seeded
 * PRNG, so the same seed and the same sends give the same run, event for event.
 *
 * Faults: `loss` (probability a message is dropped), `duplicate` (probability it is delivered twice),
 * `reorder` (probability it gets an extra delay of up to 3x the max latency, so later messages overtake it),
 * `partition(groupA, groupB, ...)` (messages between different groups are dropped, also those in flight),
 * `heal()`, `crash(nodeId)` (the node's transport is dead for good: nothing in or out, in-flight messages to
 * it are lost) and `restart(nodeId)` (a fresh transport for the node from `transport(nodeId)`).
 * Per-link latencies can be set with `setLatency(a, b, [min, max])` (e.g. regions).
 */
import { Random } from '../time/random.js';
import type { Scheduler } from '../time/scheduler.js';
import { VirtualScheduler } from '../time/virtual.js';
import type { MessageHandler, Transport } from './types.js';

export interface MemoryNetworkOptions<S extends Scheduler = VirtualScheduler> {
  /** Seed of the network's PRNG. */
  seed?: number;
  /** One-way latency range in ms, uniform (a single number: that fixed latency). Default [1, 10]. */
  latencyMs?: [number, number] | number;
  loss?: number;
  duplicate?: number;
  reorder?: number;
  /** Messages larger than this are dropped at send (send returns false). Default 64 MiB. */
  maxMessageBytes?: number;
  /**
   * The scheduler deliveries run on. Default: a new `VirtualScheduler` (starting at 0 ms), available as
   * `network.scheduler` for `advance(ms)` / `runUntil(predicate, limitMs)`; engines built without a scheduler
   * run on it. Without this option, the first engine given a scheduler of its own makes the network run on that
   * one instead, if nothing has used the network's yet (see `adoptScheduler`).
   */
  scheduler?: S;
  /** Record an event trace (`trace`) for replay comparisons. */
  trace?: boolean;
}

export interface NodeNetStats {
  messagesSent: number;
  bytesSent: number;
  messagesReceived: number;
  bytesReceived: number;
  dropped: number;
}

export interface NetworkStats extends NodeNetStats {
  duplicated: number;
  reordered: number;
  inFlight: number;
}

interface NodeState {
  /** Incremented on every crash and restart: a transport is live only while its generation matches. */
  generation: number;
  crashed: boolean;
  transport?: MemoryTransport;
  stats: NodeNetStats;
}

/** A probability option (default 0): a number in [0, 1], else RangeError (as a bad `latencyMs` is). */
function probability(name: string, p: number | undefined): number {
  if (p === undefined) return 0;
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new RangeError(`${name} must be a probability in [0, 1], got ${String(p)}`);
  return p;
}

export class MemoryNetwork<S extends Scheduler = VirtualScheduler> {
  private sched: S;
  /** A scheduler option was given: the network never changes it. */
  private readonly schedulerGiven: boolean;
  /** The scheduler was handed out (`scheduler`) or used: from then on it never changes. */
  private schedulerFixed = false;
  /** The seed of the network's PRNG (default 1); engines on its transports derive theirs from it. */
  readonly seed: number;
  private readonly random: Random;
  private latency: [number, number];
  loss: number;
  duplicate: number;
  reorder: number;
  readonly maxMessageBytes: number;
  private readonly nodes = new Map<string, NodeState>();
  private groups: Map<string, number> | undefined;
  private partitionEpoch = 0;
  private readonly linkLatency = new Map<string, [number, number]>();
  private duplicated = 0;
  private reordered = 0;
  private inFlight = 0;
  /** Event trace (when `trace: true`): one line per send/drop/deliver. */
  readonly trace: string[] | undefined;

  constructor(options: MemoryNetworkOptions<S> = {}) {
    this.schedulerGiven = options.scheduler !== undefined;
    this.sched = options.scheduler ?? (new VirtualScheduler() as unknown as S);
    this.seed = options.seed ?? 1;
    this.random = new Random(this.seed);
    this.latency = latencyRange(options.latencyMs ?? [1, 10]);
    this.loss = probability('loss', options.loss);
    this.duplicate = probability('duplicate', options.duplicate);
    this.reorder = probability('reorder', options.reorder);
    const max = options.maxMessageBytes ?? 64 * 1024 * 1024;
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`maxMessageBytes must be a positive integer, got ${max}`);
    this.maxMessageBytes = max;
    this.trace = options.trace ? [] : undefined;
  }

  /**
   * The scheduler deliveries run on: the `scheduler` option, else the network's own `VirtualScheduler`, unless
   * an engine brought its own first (see `adoptScheduler`).
   */
  get scheduler(): S {
    this.schedulerFixed = true;
    return this.sched;
  }

  /**
   * Run on `s` from now on, when that is possible: `s` is a `VirtualScheduler`, the network made its own
   * scheduler (no `scheduler` option) and nothing has used or been handed it yet. A SyncEngine or NovaCronIntegration given a `scheduler` option
   * calls this (through `Transport.useScheduler`), so `new MemoryNetwork({ seed })` with engines on one
   * `new VirtualScheduler()` delivers on that scheduler's time instead of on a clock nobody advances. True
   * when the network runs on `s`.
   */
  adoptScheduler(s: Scheduler): boolean {
    if (s === this.sched) return true;
    // only a VirtualScheduler: the network's `scheduler` promises advance/runUntil, and a per-node wrapper
    // (a ScopedScheduler a node's crash closes) would stop every delivery with that node
    if (this.schedulerGiven || this.schedulerFixed || !isVirtual(s)) return false;
    this.sched = s as unknown as S;
    this.schedulerFixed = true;
    return true;
  }

  /** The node's live transport (created on first use and after a restart). */
  transport(nodeId: string): MemoryTransport {
    const n = this.node(nodeId);
    if (!n.transport || n.transport.generation !== n.generation) n.transport = new MemoryTransport(this, nodeId, n.generation);
    return n.transport;
  }

  /** Set the latency range of the link between a and b (both directions). */
  setLatency(a: string, b: string, range: [number, number] | number): void {
    this.linkLatency.set(linkKey(a, b), latencyRange(range));
  }

  /** Set the default latency range and fault rates (e.g. to make a run quiet before checking convergence). */
  configure(o: { latencyMs?: [number, number] | number; loss?: number; duplicate?: number; reorder?: number }): void {
    // everything checked before anything changes
    const latency = o.latencyMs !== undefined ? latencyRange(o.latencyMs) : this.latency;
    const loss = o.loss !== undefined ? probability('loss', o.loss) : this.loss;
    const duplicate = o.duplicate !== undefined ? probability('duplicate', o.duplicate) : this.duplicate;
    const reorder = o.reorder !== undefined ? probability('reorder', o.reorder) : this.reorder;
    this.latency = latency;
    this.loss = loss;
    this.duplicate = duplicate;
    this.reorder = reorder;
  }

  /** Split the nodes into groups; nodes not listed form one more group together. */
  partition(...groups: string[][]): void {
    this.groups = new Map();
    groups.forEach((g, i) => g.forEach((id) => this.groups!.set(id, i + 1)));
    this.partitionEpoch++;
    this.log(`partition ${groups.map((g) => g.join(',')).join(' | ')}`);
  }

  heal(): void {
    this.groups = undefined;
    this.partitionEpoch++;
    this.log('heal');
  }

  /** The node stops: its transport is dead for good, messages to and from it are lost. */
  crash(nodeId: string): void {
    const n = this.node(nodeId);
    n.crashed = true;
    n.generation++;
    this.log(`crash ${nodeId}`);
  }

  /**
   * The node comes back. Its transport works again: an engine still holding it resumes with what it had in
   * memory (as after a network outage). Or build a new engine (a process restart, loading its storage) on
   * `transport(nodeId)`, which returns that same transport: the new engine's handler replaces the old one's,
   * and start/stop are counted, so stopping the old engine afterwards leaves the new one running. Messages
   * sent to the node while it was down stay lost.
   */
  restart(nodeId: string): void {
    const n = this.node(nodeId);
    n.crashed = false;
    n.generation++;
    if (n.transport) n.transport.generation = n.generation;
    this.log(`restart ${nodeId}`);
  }

  isCrashed(nodeId: string): boolean {
    return this.nodes.get(nodeId)?.crashed ?? false;
  }

  /** Can a message from a reach b right now (no partition between them, neither crashed)? */
  connected(a: string, b: string): boolean {
    if (this.isCrashed(a) || this.isCrashed(b)) return false;
    if (!this.groups) return true;
    return (this.groups.get(a) ?? 0) === (this.groups.get(b) ?? 0);
  }

  bytesSent(nodeId: string): number {
    return this.nodes.get(nodeId)?.stats.bytesSent ?? 0;
  }

  bytesReceived(nodeId: string): number {
    return this.nodes.get(nodeId)?.stats.bytesReceived ?? 0;
  }

  nodeStats(nodeId: string): NodeNetStats {
    return { ...(this.nodes.get(nodeId)?.stats ?? emptyStats()) };
  }

  /** Totals over every node. */
  stats(): NetworkStats {
    const t: NetworkStats = { ...emptyStats(), duplicated: this.duplicated, reordered: this.reordered, inFlight: this.inFlight };
    for (const n of this.nodes.values()) {
      t.messagesSent += n.stats.messagesSent;
      t.bytesSent += n.stats.bytesSent;
      t.messagesReceived += n.stats.messagesReceived;
      t.bytesReceived += n.stats.bytesReceived;
      t.dropped += n.stats.dropped;
    }
    return t;
  }

  /** Reset every node's byte and message counters. */
  resetStats(): void {
    for (const n of this.nodes.values()) n.stats = emptyStats();
    this.duplicated = 0;
    this.reordered = 0;
  }

  /** @internal called by MemoryTransport. */
  send(from: MemoryTransport, to: string, bytes: Uint8Array): boolean {
    const src = this.node(from.id);
    if (src.generation !== from.generation || src.crashed || !from.started) return false;
    if (!(bytes instanceof Uint8Array) || bytes.length > this.maxMessageBytes) {
      src.stats.dropped++;
      return false;
    }
    src.stats.messagesSent++;
    src.stats.bytesSent += bytes.length;
    const dst = this.node(to);
    if (!this.connected(from.id, to)) {
      src.stats.dropped++;
      this.log(`drop-part ${from.id}>${to} ${bytes.length}`);
      return true;
    }
    if (this.random.chance(this.loss)) {
      src.stats.dropped++;
      this.log(`drop-loss ${from.id}>${to} ${bytes.length}`);
      return true;
    }
    const copies = this.random.chance(this.duplicate) ? 2 : 1;
    if (copies === 2) this.duplicated++;
    const data = bytes.slice();
    const epoch = this.partitionEpoch;
    for (let c = 0; c < copies; c++) {
      let delay = this.delay(from.id, to);
      if (this.random.chance(this.reorder)) {
        delay += this.random.float() * 3 * this.maxLatency(from.id, to);
        this.reordered++;
      }
      const gen = dst.generation;
      this.inFlight++;
      this.log(`send ${from.id}>${to} ${bytes.length} +${delay.toFixed(3)}`);
      this.scheduler.setTimeout(() => {
        this.inFlight--;
        // lost if the receiver crashed/restarted meanwhile, or a new partition now separates the two
        if (dst.generation !== gen || dst.crashed || (epoch !== this.partitionEpoch && !this.connected(from.id, to))) {
          src.stats.dropped++;
          this.log(`drop-late ${from.id}>${to}`);
          return;
        }
        const t = dst.transport;
        if (!t || t.generation !== dst.generation || !t.started || !t.handler) {
          src.stats.dropped++;
          return;
        }
        dst.stats.messagesReceived++;
        dst.stats.bytesReceived += data.length;
        this.log(`recv ${from.id}>${to} ${data.length}`);
        t.handler(from.id, data);
      }, delay);
    }
    return true;
  }

  private delay(a: string, b: string): number {
    const [lo, hi] = this.linkLatency.get(linkKey(a, b)) ?? this.latency;
    return lo + this.random.float() * (hi - lo);
  }

  private maxLatency(a: string, b: string): number {
    return (this.linkLatency.get(linkKey(a, b)) ?? this.latency)[1];
  }

  private node(id: string): NodeState {
    let n = this.nodes.get(id);
    if (!n) {
      n = { generation: 0, crashed: false, stats: emptyStats() };
      this.nodes.set(id, n);
    }
    return n;
  }

  private log(line: string): void {
    if (this.trace) this.trace.push(`${this.scheduler.now().toFixed(3)} ${line}`);
  }
}

/** One node's endpoint on a `MemoryNetwork`. Dead for good once its node crashes or restarts. */
export class MemoryTransport implements Transport {
  readonly address: string;
  /** @internal */ handler: MessageHandler | undefined;
  /** @internal */ started = false;

  constructor(
    private readonly network: MemoryNetwork<Scheduler>,
    readonly id: string,
    /** @internal */ public generation: number,
  ) {
    this.address = `memory://${id}`;
  }

  /**
   * The network's scheduler (by default its `VirtualScheduler`): a SyncEngine or NovaCronIntegration built on
   * this transport without a `scheduler` option runs its timers on it, so the network's virtual time drives
   * deliveries and the engine's flushes, gossip and anti-entropy alike.
   */
  get scheduler(): Scheduler {
    return this.network.scheduler;
  }

  /** See `MemoryNetwork.adoptScheduler`. */
  useScheduler(s: Scheduler): boolean {
    return this.network.adoptScheduler(s);
  }

  /** The network's seed (see `Transport.seed`). */
  get seed(): number {
    return this.network.seed;
  }

  send(peerId: string, bytes: Uint8Array): boolean {
    return this.network.send(this, peerId, bytes);
  }
  onMessage(fn: MessageHandler): void {
    this.handler = fn;
  }
  connect(): void {}
  disconnect(): void {}
  /** Starts minus stops: an engine rebuilt on this transport after a restart starts it again, and the old
   * engine's stop() then leaves it running (see MemoryNetwork.restart). */
  private users = 0;
  async start(): Promise<void> {
    this.users++;
    this.started = true;
  }
  async stop(): Promise<void> {
    if (this.users > 0) this.users--;
    this.started = this.users > 0;
  }
}

function linkKey(a: string, b: string): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
}

function emptyStats(): NodeNetStats {
  return { messagesSent: 0, bytesSent: 0, messagesReceived: 0, bytesReceived: 0, dropped: 0 };
}

/** A latency option as a [min, max] range in ms; RangeError unless 0 <= min <= max (finite). */
function latencyRange(l: [number, number] | number): [number, number] {
  const r: [number, number] = typeof l === 'number' ? [l, l] : Array.isArray(l) && l.length === 2 ? [l[0], l[1]] : [NaN, NaN];
  if (!(Number.isFinite(r[0]) && Number.isFinite(r[1]) && r[0] >= 0 && r[0] <= r[1])) {
    throw new RangeError(`latencyMs must be a number or a [min, max] range with 0 <= min <= max, got ${JSON.stringify(l)}`);
  }
  return r;
}

/** A VirtualScheduler, also one from another copy of this package (by its API, not `instanceof`). */
function isVirtual(s: Scheduler): s is VirtualScheduler {
  const v = s as Partial<VirtualScheduler>;
  return s instanceof VirtualScheduler || (typeof v.advance === 'function' && typeof v.runUntil === 'function' && typeof v.run === 'function');
}
