/**
 * `ClusterMetadata`: the cluster's replicated state as five CRDTs, after the seed system's layout:
 *
 * | name | CRDT | holds |
 * | --- | --- | --- |
 * | `cluster/vms` | ORMap, LWW values | VM id -> VMState |
 * | `cluster/nodes` | ORMap, LWW values | node id -> NodeStatus |
 * | `cluster/assignments` | ORMap, LWW values | VM id -> node id |
 * | `cluster/counters` | ORMap of nested PN-Counters | counter name -> PNCounter |
 * | `cluster/resources` | ORMap, LWW values | resource key -> JSON-like value |
 *
 * A whole VMState (or NodeStatus) is one LWW value: a write replaces the record, concurrent writes resolve by
 * hybrid logical clock then replica id, and a delete concurrent with a write loses (observed-remove). Counters
 * are PN-Counters nested in an OR-Map (one per name, created on first increment) so concurrent increments
 * from every region add up. Writes validate first and mutate after: a `ValidationError` changes nothing.
 * Reads return copies: callers can never mutate replicated state by accident.
 */
import type { HLC } from '../clock/hlc.js';
import { ORMap } from '../crdt/or-map.js';
import type { PNCounter } from '../crdt/pn-counter.js';
import type { Crdt } from '../crdt/types.js';
import { ValidationError } from '../errors.js';
import { hash64 } from '../sync/digest.js';
import {
  checkCounterDelta,
  checkId,
  checkResourceValue,
  validateNodeStatus,
  validateVMState,
  type ClusterSnapshot,
  type NodeStatus,
  type VMState,
} from './types.js';

/** Names of the cluster CRDTs in the sync engine. Stable: part of the persisted and wire state. */
export const CLUSTER_CRDT_NAMES = {
  vms: 'cluster/vms',
  nodes: 'cluster/nodes',
  assignments: 'cluster/assignments',
  counters: 'cluster/counters',
  resources: 'cluster/resources',
} as const;

export interface ClusterMetadataOptions {
  /** Hybrid logical clock shared by the maps (deterministic simulation injects one over virtual time). */
  clock?: HLC;
  /** Wall clock for `createdAt`/`updatedAt`/`lastHeartbeat` defaults. Default `Date.now`. */
  now?: () => number;
}

/** The whole state in plain data, as `exportState()` gives it and `migrateFrom` takes it. */
export interface ClusterState {
  vms: VMState[];
  nodes: NodeStatus[];
  assignments: Record<string, string>;
  counters: Record<string, number>;
  resources: Record<string, unknown>;
}

/**
 * A copy of the value at `key`: an LWW value decoded anew (shared with nothing, so there is nothing to clone; a
 * clone of the cached value cost as much again, and listing more keys than the read cache holds decoded them
 * anyway). Undefined when the key is absent or its winner is a nested CRDT: the cluster's value maps only
 * ever hold LWW values, so a nested CRDT there came from a faulty or hostile peer and reads as absent.
 */
function readCopy<V>(map: ORMap<V>, key: string): V | undefined {
  const v = map.getCopy(key);
  return v !== null && typeof v === 'object' && 'typeTag' in v ? undefined : (v as V | undefined);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Date);
}

const optString = (v: unknown): boolean => v === undefined || typeof v === 'string';
const optNumber = (v: unknown): boolean => v === undefined || (typeof v === 'number' && Number.isFinite(v));

/**
 * The VM record at `key`, or undefined when absent or not a VM record. Every local write is validated, but a
 * peer may merge in anything its map can hold: a value that is not an object with `id` equal to its key, a
 * string `status` and the documented types in the fields it has reads as absent instead of reaching callers,
 * the HTTP API and the dashboard (fields this version does not know are let through: a newer peer may add
 * some). A later valid write of the VM replaces it (last writer wins, as always).
 */
function readVM(map: ORMap<VMState>, key: string): VMState | undefined {
  const v = readCopy(map, key) as unknown;
  if (!isRecord(v) || v.id !== key || typeof v.status !== 'string') return undefined;
  const ok =
    optString(v.nodeId) && optString(v.ipAddress) && optNumber(v.cpuCores) && optNumber(v.memoryMB) && optNumber(v.diskGB) &&
    optNumber(v.createdAt) && optNumber(v.updatedAt) && (v.metadata === undefined || isRecord(v.metadata));
  return ok ? (v as unknown as VMState) : undefined;
}

/** The node status at `key`, or undefined when absent or not a node status (see `readVM`). */
function readNode(map: ORMap<NodeStatus>, key: string): NodeStatus | undefined {
  const v = readCopy(map, key) as unknown;
  if (!isRecord(v) || v.id !== key || typeof v.status !== 'string' || typeof v.region !== 'string') return undefined;
  const ok = optNumber(v.cpuUsage) && optNumber(v.memoryUsage) && optNumber(v.diskUsage) && optNumber(v.vmCount) && optNumber(v.lastHeartbeat);
  return ok ? (v as unknown as NodeStatus) : undefined;
}

/** How many of the latest VMs `overview()` lists by default. */
export const OVERVIEW_RECENT = 25;

/** `ClusterMetadata.overview()`: what the dashboard shows. */
export interface ClusterOverview {
  /** How many VM records there are. */
  vms: number;
  /** VMs per region (sorted by region): the node's region, else the record's `metadata.region`, else `unknown`. */
  regions: Record<string, number>;
  /** The most recently updated VMs, newest first (by `updatedAt`, then id). */
  recent: VMState[];
  nodes: NodeStatus[];
  counters: Record<string, number>;
}

/** What the VM index keeps per VM. */
interface VMBrief {
  nodeId: string | undefined;
  region: string | undefined;
  updatedAt: number;
  /** The record's share of the summary digest: hash52 of its canonical JSON (0 until summary() is used). */
  h: number;
}

function brief(v: VMState, summing: boolean): VMBrief {
  const md = v.metadata as Record<string, unknown> | undefined;
  const region = md !== undefined && md !== null && typeof md.region === 'string' ? md.region : undefined;
  return { nodeId: typeof v.nodeId === 'string' ? v.nodeId : undefined, region, updatedAt: typeof v.updatedAt === 'number' ? v.updatedAt : 0, h: summing ? hash52(canonicalJson(v)) : 0 };
}

/** `summary()`: counts and a digest of the VMs and assignments (what `GET /summary` serves). */
export interface ClusterSummary {
  vms: number;
  nodes: number;
  assignments: number;
  counters: Record<string, number>;
  /**
   * 26 hex digits: for the VM records, then for the assignments and counters, the sum modulo 2^52 of a 52-bit
   * hash of each entry's canonical JSON (the counters as one entry). Equal on two replicas that hold the same
   * VMs, assignments and counter values as JSON (but for collisions), whatever the order they came in; not a
   * cryptographic digest. Values JSON cannot tell apart
   * (a Date and `{}`, NaN and null: only a peer writing through the CRDTs can store them, local writes are
   * validated) count as equal.
   */
  hash: string;
}

/** JSON with object keys sorted at every level: the same value gives the same text on every node. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
}

const TWO_52 = 2 ** 52;

const utf8 = new TextEncoder();

/** A 52-bit hash of a string (from the 64-bit `hash64` of its UTF-8 bytes), an exact integer. */
function hash52(s: string): number {
  const [lo, hi] = hash64(utf8.encode(s));
  return lo + (hi & 0xfffff) * 2 ** 32;
}

/** x + y modulo 2^52 (both below 2^52: exact in doubles). */
function add52(x: number, y: number): number {
  const z = x + y;
  return z >= TWO_52 ? z - TWO_52 : z;
}

/** x - y modulo 2^52. */
function sub52(x: number, y: number): number {
  return x >= y ? x - y : x - y + TWO_52;
}

/**
 * The keys an index of `map` has to read: every key when the index is new (and the map's change tracking
 * starts), else the keys changed since the last call.
 */
function keysToRead(map: ORMap<unknown>, fresh: boolean): string[] {
  if (!fresh) return map.takeChangedKeys();
  map.takeChangedKeys(); // starts tracking
  return map.keys();
}

function hex52(x: number): string {
  return x.toString(16).padStart(13, '0');
}

/** A VM of the index: its id and brief. */
type VMEntry = [string, VMBrief];

/** Is VM `x` newer than `than` (later `updatedAt`; on a tie the smaller id first)? */
function newer(x: VMEntry, than: VMEntry): boolean {
  return x[1].updatedAt > than[1].updatedAt || (x[1].updatedAt === than[1].updatedAt && x[0] < than[0]);
}

/** Add to a heap of VMs whose root is the oldest (see `newer`). */
function heapPush(h: VMEntry[], x: VMEntry): void {
  let i = h.length;
  h.push(x);
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (!newer(h[p], h[i])) break;
    [h[p], h[i]] = [h[i], h[p]];
    i = p;
  }
}

/** Replace the heap's root (its oldest) with `x` and restore the order. */
function heapReplaceRoot(h: VMEntry[], x: VMEntry): void {
  h[0] = x;
  for (let i = 0; ; ) {
    const l = 2 * i + 1, r = l + 1;
    let m = i;
    if (l < h.length && newer(h[m], h[l])) m = l;
    if (r < h.length && newer(h[m], h[r])) m = r;
    if (m === i) return;
    [h[m], h[i]] = [h[i], h[m]];
    i = m;
  }
}

export class ClusterMetadata {
  readonly vms: ORMap<VMState>;
  readonly nodes: ORMap<NodeStatus>;
  readonly assignments: ORMap<string>;
  readonly counters: ORMap<never>;
  readonly resources: ORMap<unknown>;
  private readonly now: () => number;
  /** VM id -> what countVMsOn and overview need of it (kept up to date from the map's changed keys once asked). */
  private vmBriefs: Map<string, VMBrief> | undefined;
  /** Sum (mod 2^52) of the briefs' `h`; undefined until summary() is first used (the briefs then carry none). */
  private vmSum: number | undefined;
  /** VM id -> its assignment's hash52 (kept up to date from the assignments' changed keys once summary() asked). */
  private assignHashes: Map<string, number> | undefined;
  private assignSum = 0;

  constructor(
    readonly replicaId: string,
    options: ClusterMetadataOptions = {},
  ) {
    const o = options.clock ? { clock: options.clock } : {};
    this.vms = new ORMap<VMState>(replicaId, o);
    this.nodes = new ORMap<NodeStatus>(replicaId, o);
    this.assignments = new ORMap<string>(replicaId, o);
    this.counters = new ORMap<never>(replicaId, o);
    this.resources = new ORMap<unknown>(replicaId, o);
    this.now = options.now ?? Date.now;
  }

  /** The CRDTs with their engine names. */
  crdts(): Array<[string, Crdt<unknown>]> {
    return [
      [CLUSTER_CRDT_NAMES.vms, this.vms as Crdt<unknown>],
      [CLUSTER_CRDT_NAMES.nodes, this.nodes as Crdt<unknown>],
      [CLUSTER_CRDT_NAMES.assignments, this.assignments as Crdt<unknown>],
      [CLUSTER_CRDT_NAMES.counters, this.counters as Crdt<unknown>],
      [CLUSTER_CRDT_NAMES.resources, this.resources as Crdt<unknown>],
    ];
  }

  // ---- reads ----

  getVMState(vmId: string): VMState | undefined {
    return readVM(this.vms, vmId);
  }

  /** Every VM, sorted by id (entries a peer filled with something that is not a VM record are left out). */
  listVMs(): VMState[] {
    const out: VMState[] = [];
    for (const k of this.vms.keys()) {
      const v = readVM(this.vms, k);
      if (v !== undefined) out.push(v);
    }
    return out;
  }

  /**
   * How many VM records name `nodeId` as their node (the CLI heartbeat's `vmCount`). The first call (of this
   * or `overview`) reads every VM; later calls re-read only the VMs changed since (local writes and merges),
   * so a periodic caller costs what changed, not the map (100,000 VMs: ~250 ms per listVMs()).
   */
  countVMsOn(nodeId: string): number {
    let n = 0;
    for (const b of this.briefs().values()) if (b.nodeId === nodeId) n++;
    return n;
  }

  /**
   * What the dashboard shows, without listing every VM: the VM count, VMs per region (the region of the
   * VM's node when that node has a status, else the record's `metadata.region`, else `unknown`), the `recent`
   * most recently updated VMs (by `updatedAt`, then id), the node statuses and the counters. Like
   * `countVMsOn`, it re-reads only the VMs changed since the last call: at 100,000 VMs a few milliseconds
   * where `listVMs()` takes hundreds, which a page polling every second would take from gossip and
   * anti-entropy. The index costs about 140 B per VM once used (the CLI heartbeat uses it anyway), and
   * about 70 B more once `summary()` is used too (each VM's hash, and an index of the assignments).
   */
  overview(recent = OVERVIEW_RECENT): ClusterOverview {
    if (!Number.isSafeInteger(recent) || recent < 0) throw new ValidationError('recent must be a non-negative safe integer');
    const nodes = this.listNodes();
    const regionOf = new Map(nodes.map((n) => [n.id, n.region]));
    const regions = new Map<string, number>();
    // the `recent` latest: a heap whose root is the oldest kept (n log recent, whatever the order of the index)
    const heap: VMEntry[] = [];
    const briefs = this.briefs();
    for (const x of briefs) {
      const b = x[1];
      // an empty region or node region counts as unknown, as the dashboard always showed it
      const r = (b.nodeId !== undefined ? regionOf.get(b.nodeId) : undefined) || b.region || 'unknown';
      regions.set(r, (regions.get(r) ?? 0) + 1);
      if (recent === 0) continue;
      if (heap.length < recent) heapPush(heap, x);
      else if (newer(x, heap[0])) heapReplaceRoot(heap, x);
    }
    heap.sort((x, y) => (newer(x, y) ? -1 : 1));
    const vms: VMState[] = [];
    for (const [id] of heap) {
      const v = readVM(this.vms, id);
      if (v !== undefined) vms.push(v);
    }
    const byRegion = Object.fromEntries([...regions].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0)));
    return { vms: briefs.size, regions: byRegion, recent: vms, nodes, counters: this.listCounters() };
  }

  /** The VM index (built on first use, then brought up to date with the VMs changed since). */
  private briefs(): Map<string, VMBrief> {
    const keys = keysToRead(this.vms, this.vmBriefs === undefined);
    const briefs = (this.vmBriefs ??= new Map());
    const summing = this.vmSum !== undefined;
    let sum = this.vmSum ?? 0;
    for (const k of keys) {
      const old = briefs.get(k);
      if (old !== undefined) sum = sub52(sum, old.h);
      const v = readVM(this.vms, k);
      if (v === undefined) briefs.delete(k);
      else {
        const b = brief(v, summing);
        briefs.set(k, b);
        sum = add52(sum, b.h);
      }
    }
    if (summing) this.vmSum = sum;
    if (this.assignHashes !== undefined) this.assignmentIndex();
    return briefs;
  }

  /**
   * VM and node counts, assignments, counters and a digest of the VMs and assignments (see ClusterSummary):
   * the demo's convergence probe. Like `overview`, the first call reads every VM and assignment and later
   * ones re-read only those changed since (100,000 VMs: about a second for the first, milliseconds after).
   */
  summary(): ClusterSummary {
    if (this.vmBriefs === undefined) this.vmSum = 0; // the index is built with the hashes at once
    const briefs = this.briefs();
    if (this.vmSum === undefined) {
      // the briefs (built for overview or countVMsOn) get their hashes now, and keep them from here on
      let sum = 0;
      for (const [k, b] of briefs) {
        b.h = hash52(canonicalJson(readVM(this.vms, k)));
        sum = add52(sum, b.h);
      }
      this.vmSum = sum;
    }
    const idx = this.assignmentIndex();
    const counters = this.listCounters();
    // the counters go into the second half: two replicas whose counters differ (a merge refused past
    // MAX_SAFE_INTEGER never converges) must not show equal digests
    const counterPart = hash52(canonicalJson(counters));
    return { vms: briefs.size, nodes: this.listNodes().length, assignments: idx.size, counters, hash: hex52(this.vmSum!) + hex52(add52(this.assignSum, counterPart)) };
  }

  /**
   * The assignment index of summary() (built on first use, then brought up to date with the assignments
   * changed since; briefs() does that too once it exists, so the changes it waits for do not pile up between
   * summary() calls while the CLI heartbeat reads the VM index).
   */
  private assignmentIndex(): Map<string, number> {
    const keys = keysToRead(this.assignments, this.assignHashes === undefined);
    const idx = (this.assignHashes ??= new Map());
    let sum = this.assignSum;
    for (const k of keys) {
      const old = idx.get(k);
      if (old !== undefined) {
        sum = sub52(sum, old);
        idx.delete(k);
      }
      const v = this.getAssignment(k);
      if (v !== undefined) {
        const h = hash52(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
        idx.set(k, h);
        sum = add52(sum, h);
      }
    }
    this.assignSum = sum;
    return idx;
  }

  getNodeStatus(nodeId: string): NodeStatus | undefined {
    return readNode(this.nodes, nodeId);
  }

  /** Every node status, sorted by node id (entries that are not node statuses are left out). */
  listNodes(): NodeStatus[] {
    const out: NodeStatus[] = [];
    for (const k of this.nodes.keys()) {
      const v = readNode(this.nodes, k);
      if (v !== undefined) out.push(v);
    }
    return out;
  }

  getAssignment(vmId: string): string | undefined {
    const v = this.assignments.get(vmId);
    return typeof v === 'string' ? v : undefined;
  }

  listAssignments(): Record<string, string> {
    const out: [string, string][] = [];
    for (const [k, v] of this.assignments.entries()) if (typeof v === 'string') out.push([k, v]);
    return Object.fromEntries(out); // own properties whatever the key (`out[k] = v` with "__proto__" sets the prototype)
  }

  /** A counter's value (0 for a counter never incremented). */
  getCounter(name: string): number {
    if (!this.counters.has(name)) return 0;
    const c = this.counters.get(name);
    return c && typeof (c as PNCounter).value === 'function' ? (c as PNCounter).value() : 0;
  }

  listCounters(): Record<string, number> {
    return Object.fromEntries(this.counters.keys().map((k) => [k, this.getCounter(k)]));
  }

  getResource(key: string): unknown {
    return readCopy(this.resources, key);
  }

  listResources(): Record<string, unknown> {
    const out: [string, unknown][] = [];
    for (const k of this.resources.keys()) {
      const v = readCopy(this.resources, k);
      if (v !== undefined) out.push([k, v]);
    }
    return Object.fromEntries(out);
  }

  exportState(): ClusterState {
    return {
      vms: this.listVMs(),
      nodes: this.listNodes(),
      assignments: this.listAssignments(),
      counters: this.listCounters(),
      resources: this.listResources(),
    };
  }

  // ---- writes: each validates everything first, then mutates; returns the names of the CRDTs it changed ----

  /** Write a VM state (validated). `createdAt` is kept from the stored state, `updatedAt` defaults to now. */
  putVM(vmId: string, state: unknown): string[] {
    const vm = this.prepareVM(vmId, state);
    this.vms.setLWW(vm.id, vm);
    return [CLUSTER_CRDT_NAMES.vms];
  }

  /** Validate and complete a VM state without writing it. */
  prepareVM(vmId: string, state: unknown): VMState {
    const vm = validateVMState(vmId, state);
    const now = this.now();
    if (vm.createdAt === undefined) {
      const prev = this.vms.get(vm.id) as unknown;
      const t = isRecord(prev) ? prev.createdAt : undefined;
      vm.createdAt = typeof t === 'number' && Number.isFinite(t) && t >= 0 ? t : now;
    }
    if (vm.updatedAt === undefined) vm.updatedAt = now;
    return vm;
  }

  /** Remove a VM and its assignment. Returns the CRDTs changed (empty when the VM was unknown). */
  removeVM(vmId: string): string[] {
    checkId('vmId', vmId);
    const out: string[] = [];
    if (this.vms.delete(vmId)) out.push(CLUSTER_CRDT_NAMES.vms);
    if (this.assignments.delete(vmId)) out.push(CLUSTER_CRDT_NAMES.assignments);
    return out;
  }

  putNode(status: unknown): string[] {
    const n = this.prepareNode(status);
    this.nodes.setLWW(n.id, n);
    return [CLUSTER_CRDT_NAMES.nodes];
  }

  prepareNode(status: unknown): NodeStatus {
    const n = validateNodeStatus(status);
    if (n.lastHeartbeat === undefined) n.lastHeartbeat = this.now();
    return n;
  }

  assign(vmId: string, nodeId: string): string[] {
    checkId('vmId', vmId);
    checkId('nodeId', nodeId);
    this.assignments.setLWW(vmId, nodeId);
    return [CLUSTER_CRDT_NAMES.assignments];
  }

  increment(name: string, n: number): string[] {
    checkId('counter name', name);
    checkCounterDelta(n);
    if (n === 0) return [];
    this.counters.counter(name).increment(n);
    return [CLUSTER_CRDT_NAMES.counters];
  }

  setResource(key: string, value: unknown): string[] {
    checkId('resource key', key);
    checkResourceValue(value);
    this.resources.setLWW(key, value);
    return [CLUSTER_CRDT_NAMES.resources];
  }

  /**
   * Import a snapshot: everything is validated first (a bad entry anywhere throws `ValidationError` and
   * nothing is imported), then written as local updates. Counters are raised to the snapshot's value (an
   * import adds the difference, so importing the same snapshot twice does not double them).
   */
  importSnapshot(snapshot: ClusterSnapshot): { names: string[]; counts: Record<string, number> } {
    const { checkSnapshot } = ClusterMetadata;
    const s = checkSnapshot(snapshot);
    const vms = s.vms.map((v) => this.prepareVM(v.id, v));
    const nodes = s.nodes.map((n) => this.prepareNode(n));
    const names = new Set<string>();
    for (const v of vms) {
      this.vms.setLWW(v.id, v);
      names.add(CLUSTER_CRDT_NAMES.vms);
    }
    for (const n of nodes) {
      this.nodes.setLWW(n.id, n);
      names.add(CLUSTER_CRDT_NAMES.nodes);
    }
    for (const [vm, node] of s.assignments) {
      this.assignments.setLWW(vm, node);
      names.add(CLUSTER_CRDT_NAMES.assignments);
    }
    for (const [name, value] of s.counters) {
      const d = value - this.getCounter(name);
      if (d !== 0) {
        this.counters.counter(name).increment(d);
        names.add(CLUSTER_CRDT_NAMES.counters);
      }
    }
    for (const [k, v] of s.resources) {
      this.resources.setLWW(k, v);
      names.add(CLUSTER_CRDT_NAMES.resources);
    }
    return {
      names: [...names],
      counts: { vms: vms.length, nodes: nodes.length, assignments: s.assignments.length, counters: s.counters.length, resources: s.resources.length },
    };
  }

  /** Validate a snapshot into lists (throws ValidationError on the first bad entry). */
  static checkSnapshot(snapshot: unknown): {
    vms: VMState[];
    nodes: NodeStatus[];
    assignments: Array<[string, string]>;
    counters: Array<[string, number]>;
    resources: Array<[string, unknown]>;
  } {
    if (snapshot === null || typeof snapshot !== 'object' || Array.isArray(snapshot)) throw new ValidationError('snapshot must be an object');
    const s = snapshot as ClusterSnapshot;
    for (const k of Object.keys(s)) {
      if (!['vms', 'nodes', 'assignments', 'counters', 'resources'].includes(k)) throw new ValidationError(`snapshot has an unknown part ${JSON.stringify(k)}`);
    }
    const list = <T>(what: string, v: T[] | Record<string, T> | undefined, idOf: (x: T) => unknown): Array<[string, T]> => {
      if (v === undefined) return [];
      if (Array.isArray(v)) return v.map((x) => [checkId(`${what} id`, (x as { id?: unknown })?.id ?? idOf(x)), x]);
      if (typeof v !== 'object' || v === null) throw new ValidationError(`snapshot.${what} must be an array or an object`);
      return Object.entries(v);
    };
    const vms = list('vms', s.vms, () => undefined).map(([id, v]) => validateVMState(id, v));
    const nodes = list('nodes', s.nodes, () => undefined).map(([id, n]) => {
      const x = validateNodeStatus(n);
      if (x.id !== id) throw new ValidationError(`snapshot.nodes: key ${JSON.stringify(id)} holds node ${JSON.stringify(x.id)}`);
      return x;
    });
    const obj = (what: string, v: unknown): Array<[string, unknown]> => {
      if (v === undefined) return [];
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ValidationError(`snapshot.${what} must be an object`);
      return Object.entries(v);
    };
    const assignments = obj('assignments', s.assignments).map(([k, v]) => [checkId('assignment VM id', k), checkId(`assignment of ${k}`, v)] as [string, string]);
    const counters = obj('counters', s.counters).map(([k, v]) => [checkId('counter name', k), checkCounterDelta(v)] as [string, number]);
    const resources = obj('resources', s.resources).map(([k, v]) => [checkId('resource key', k), checkResourceValue(v)] as [string, unknown]);
    return { vms, nodes, assignments, counters, resources };
  }
}
