/**
 * The cluster's domain types and their validation. Everything that enters the cluster API is checked here
 * first: a value of the wrong type or shape throws `ValidationError` before anything is written, so a bad
 * update changes nothing, locally or anywhere else.
 */
import { ValidationError } from '../errors.js';

/**
 * A VM as the cluster sees it. Times are stored and read as epoch milliseconds; on write a time may also be a
 * valid `Date` or an ISO-8601 / RFC 3339 date-time string with a zone (`2024-05-01T12:00:00Z`,
 * `2024-05-01T14:00:00.123456789+02:00`: what Go's `time.Time` serialises to), stored as its epoch
 * milliseconds (fractions below a millisecond are dropped).
 */
export interface VMState {
  id: string;
  /** Free-form lifecycle state, e.g. `pending`, `running`, `stopped`, `migrating`, `failed`. */
  status: string;
  /** The node the VM runs on. */
  nodeId?: string;
  cpuCores?: number;
  memoryMB?: number;
  diskGB?: number;
  ipAddress?: string;
  /** Set on the first write of the VM when not given; kept from the stored state on later writes. */
  createdAt?: number;
  /** Set to the writer's clock on every write when not given. */
  updatedAt?: number;
  /** Free-form labels: anything JSON-like (strings, numbers, booleans, null, arrays, plain objects). */
  metadata?: Record<string, unknown>;
}

/** A node's health and load as it reports it. Usages are percentages (0-100). */
export interface NodeStatus {
  id: string;
  region: string;
  /** e.g. `healthy`, `degraded`, `draining`, `offline`. */
  status: string;
  cpuUsage?: number;
  memoryUsage?: number;
  diskUsage?: number;
  vmCount?: number;
  /** Epoch ms (a `Date` or an ISO-8601 date-time string on write, as for `VMState`); set to the writer's clock when not given. */
  lastHeartbeat?: number;
}

/** A time on write: epoch ms, a valid `Date`, or an ISO-8601 / RFC 3339 date-time string with a zone (stored as epoch ms). */
export type TimeInput = number | Date | string;

/** A `VMState` as written (`updateVMState`, `migrateFrom`): its times may be any `TimeInput`; reads give epoch ms. */
export type VMStateInput = Omit<VMState, 'createdAt' | 'updatedAt'> & { createdAt?: TimeInput; updatedAt?: TimeInput };

/** A `NodeStatus` as written (`updateNodeStatus`, `migrateFrom`): `lastHeartbeat` may be any `TimeInput`. */
export type NodeStatusInput = Omit<NodeStatus, 'lastHeartbeat'> & { lastHeartbeat?: TimeInput };

/** An existing cluster state to import (`NovaCronIntegration.migrateFrom`). Every part is optional. */
export interface ClusterSnapshot {
  vms?: VMStateInput[] | Record<string, VMStateInput>;
  nodes?: NodeStatusInput[] | Record<string, NodeStatusInput>;
  assignments?: Record<string, string>;
  counters?: Record<string, number>;
  resources?: Record<string, unknown>;
}

/** Consistency of a write (passed through to the sync engine). */
export interface WriteOptions {
  write?: 'local' | 'majority' | 'all';
  /** At most `MAX_TIMEOUT_MS`. */
  timeoutMs?: number;
}

/** Longest write timeout: 2^31-1 ms (about 24.8 days), the longest timer Node keeps (it fires longer ones at once). */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

const MAX_ID = 256;
const MAX_TEXT = 1024;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/** A non-empty identifier string of at most 256 characters. */
export function checkId(what: string, v: unknown): string {
  if (typeof v !== 'string') throw new ValidationError(`${what} must be a string, got ${typeof v}`);
  if (v.length === 0 || v.length > MAX_ID) throw new ValidationError(`${what} must be 1-${MAX_ID} characters`);
  return v;
}

function checkText(what: string, v: unknown, required: boolean): string | undefined {
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string') throw new ValidationError(`${what} must be a string, got ${v === null ? 'null' : typeof v}`);
  if ((required && v.length === 0) || v.length > MAX_TEXT) throw new ValidationError(`${what} must be ${required ? '1' : '0'}-${MAX_TEXT} characters`);
  return v;
}

function checkNumber(what: string, v: unknown, opts: { integer?: boolean; min?: number; max?: number } = {}): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ValidationError(`${what} must be a finite number, got ${v === null ? 'null' : typeof v}`);
  if (opts.integer && !Number.isSafeInteger(v)) throw new ValidationError(`${what} must be an integer`);
  if (opts.min !== undefined && v < opts.min) throw new ValidationError(`${what} must be >= ${opts.min}`);
  if (opts.max !== undefined && v > opts.max) throw new ValidationError(`${what} must be <= ${opts.max}`);
  return v;
}

/**
 * An ISO-8601 date-time in the RFC 3339 profile: full date, `T`, full time with optional fraction, and a zone
 * (`Z` or `±HH:MM`). Nothing looser: no date alone, no missing zone (local time would differ between nodes).
 */
const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

/** Epoch ms of a strict ISO-8601 date-time string, or undefined when it is not one (or not a real date). */
export function parseIsoDateTime(s: string): number | undefined {
  const m = ISO_DATE_TIME.exec(s);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || second > 59) return undefined;
  if (m[8] !== undefined && (Number(m[8]) > 23 || Number(m[9]) > 59)) return undefined;
  // Date.parse takes at most millisecond precision portably: cut the fraction to three digits
  const t = Date.parse(s.replace(/\.(\d{1,3})\d*/, '.$1').toUpperCase());
  return Number.isFinite(t) ? t : undefined;
}

function daysIn(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * A time: epoch milliseconds, a valid Date or a strict ISO-8601 date-time string (both stored as epoch
 * milliseconds), not before 1970.
 */
function checkTime(what: string, v: unknown): number | undefined {
  if (v instanceof Date) {
    const t = v.getTime();
    if (!Number.isFinite(t)) throw new ValidationError(`${what} is an invalid Date`);
    return checkNumber(what, t, { min: 0 });
  }
  if (typeof v === 'string') {
    const t = parseIsoDateTime(v);
    if (t === undefined) {
      const shown = v.length > 64 ? `${JSON.stringify(v.slice(0, 64))}...` : JSON.stringify(v);
      throw new ValidationError(`${what} must be epoch milliseconds or an ISO-8601 date-time with a zone (e.g. 2024-05-01T12:00:00Z), got ${shown}`);
    }
    return checkNumber(what, t, { min: 0 });
  }
  return checkNumber(what, v, { min: 0 });
}

/** JSON-like data only (what survives the wire and the HTTP API unchanged). */
function checkJsonLike(what: string, v: unknown, depth = 0): void {
  if (depth > 32) throw new ValidationError(`${what} is nested too deeply`);
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new ValidationError(`${what} holds a non-finite number`);
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((x, i) => checkJsonLike(`${what}[${i}]`, x, depth + 1));
    return;
  }
  if (isPlainObject(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) continue;
      checkJsonLike(`${what}.${k}`, x, depth + 1);
    }
    return;
  }
  if (v instanceof Date) {
    // a Date would not come back as one: it crosses the HTTP API as a string and other nodes as msgpack
    throw new ValidationError(`${what} holds a Date: only JSON-like values are allowed here (strings, numbers, booleans, null, arrays, plain objects); store the time as epoch milliseconds or an ISO-8601 string`);
  }
  const kind = v !== null && typeof v === 'object' ? (Object.getPrototypeOf(v)?.constructor?.name ?? 'object') : typeof v;
  throw new ValidationError(`${what} holds a ${kind}: only JSON-like values are allowed here (strings, numbers, booleans, null, arrays, plain objects)`);
}

function noUnknown(what: string, v: Record<string, unknown>, known: readonly string[]): void {
  for (const k of Object.keys(v)) {
    if (!known.includes(k)) throw new ValidationError(`${what} has an unknown field ${JSON.stringify(k)}`);
  }
}

const VM_FIELDS = ['id', 'status', 'nodeId', 'cpuCores', 'memoryMB', 'diskGB', 'ipAddress', 'createdAt', 'updatedAt', 'metadata'] as const;
const NODE_FIELDS = ['id', 'region', 'status', 'cpuUsage', 'memoryUsage', 'diskUsage', 'vmCount', 'lastHeartbeat'] as const;

/**
 * Check a VM state for `vmId` and return a normalised copy (fields in a fixed order, `undefined` fields
 * dropped, `id` filled from `vmId` when absent). Throws `ValidationError`.
 */
export function validateVMState(vmId: unknown, state: unknown): VMState {
  const id = checkId('vmId', vmId);
  if (!isPlainObject(state)) throw new ValidationError('VM state must be a plain object');
  noUnknown('VM state', state, VM_FIELDS);
  if (state.id !== undefined && state.id !== id) throw new ValidationError(`VM state id ${JSON.stringify(state.id)} does not match ${JSON.stringify(id)}`);
  const out: VMState = { id, status: checkText('status', state.status, true)! };
  const nodeId = state.nodeId === undefined ? undefined : checkId('nodeId', state.nodeId);
  if (nodeId !== undefined) out.nodeId = nodeId;
  const cpu = checkNumber('cpuCores', state.cpuCores, { integer: true, min: 0, max: 1_000_000 });
  if (cpu !== undefined) out.cpuCores = cpu;
  const mem = checkNumber('memoryMB', state.memoryMB, { min: 0 });
  if (mem !== undefined) out.memoryMB = mem;
  const disk = checkNumber('diskGB', state.diskGB, { min: 0 });
  if (disk !== undefined) out.diskGB = disk;
  const ip = checkText('ipAddress', state.ipAddress, false);
  if (ip !== undefined) out.ipAddress = ip;
  const created = checkTime('createdAt', state.createdAt);
  if (created !== undefined) out.createdAt = created;
  const updated = checkTime('updatedAt', state.updatedAt);
  if (updated !== undefined) out.updatedAt = updated;
  if (state.metadata !== undefined) {
    if (!isPlainObject(state.metadata)) throw new ValidationError('metadata must be a plain object');
    checkJsonLike('metadata', state.metadata);
    out.metadata = JSON.parse(JSON.stringify(state.metadata)) as Record<string, unknown>;
  }
  return out;
}

/** Check a node status and return a normalised copy. Throws `ValidationError`. */
export function validateNodeStatus(status: unknown): NodeStatus {
  if (!isPlainObject(status)) throw new ValidationError('node status must be a plain object');
  noUnknown('node status', status, NODE_FIELDS);
  const out: NodeStatus = {
    id: checkId('id', status.id),
    region: checkId('region', status.region),
    status: checkText('status', status.status, true)!,
  };
  for (const k of ['cpuUsage', 'memoryUsage', 'diskUsage'] as const) {
    const v = checkNumber(k, status[k], { min: 0, max: 100 });
    if (v !== undefined) out[k] = v;
  }
  const n = checkNumber('vmCount', status.vmCount, { integer: true, min: 0 });
  if (n !== undefined) out.vmCount = n;
  const hb = checkTime('lastHeartbeat', status.lastHeartbeat);
  if (hb !== undefined) out.lastHeartbeat = hb;
  return out;
}

/** A counter increment: a safe integer (negative decrements). */
export function checkCounterDelta(n: unknown): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new ValidationError('counter increment must be a safe integer');
  return n;
}

/** Resource values: JSON-like data. */
export function checkResourceValue(v: unknown): unknown {
  if (v === undefined) throw new ValidationError('resource value must not be undefined');
  checkJsonLike('resource value', v);
  return v;
}

/** Write options: checked so a typo fails loudly instead of silently writing locally. */
export function checkWriteOptions(o: unknown): WriteOptions | undefined {
  if (o === undefined) return undefined;
  if (!isPlainObject(o)) throw new ValidationError('write options must be a plain object');
  noUnknown('write options', o, ['write', 'timeoutMs']);
  if (o.write !== undefined && o.write !== 'local' && o.write !== 'majority' && o.write !== 'all') {
    throw new ValidationError(`write must be 'local', 'majority' or 'all'`);
  }
  checkNumber('timeoutMs', o.timeoutMs, { min: 0, max: MAX_TIMEOUT_MS });
  return o as WriteOptions;
}
