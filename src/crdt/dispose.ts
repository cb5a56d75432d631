/**
 * `dispose()` for every CRDT instance.
 *
 * Where the state lives: each instance keeps its state in its own JS typed arrays and objects; the kernels
 * (wasm or pure TS) see it only during a merge, through a scratch arena that is reset after each call. So an
 * instance owns no linear memory that outlives a call, and the garbage collector frees a dropped instance in
 * full: no FinalizationRegistry is needed as a safety net, and none is registered (it would cost a registry
 * entry per instance for nothing).
 *
 * `dispose()` releases the state at once instead of when the instance becomes unreachable (useful while
 * other references to it remain, e.g. in a listener) and retires the instance: any later use, a read or a
 * write, throws `CrdtError` with code `E_DISPOSED`. A write after dispose must not be silently accepted,
 * because a fresh state would reuse dots this replica already issued. `dispose()` itself is idempotent, and
 * `disposed` stays readable. A map disposes the nested CRDTs it owns.
 */
import { CrdtError } from '../errors.js';

/** Properties a disposed instance still answers: everything else throws. */
const ANSWERS = new Set<PropertyKey>(['disposed', 'dispose', 'then', 'constructor', 'toJSON', 'replicaId', 'typeTag']);

function disposedError(prop: PropertyKey): CrdtError {
  return new CrdtError('E_DISPOSED', `CRDT used after dispose() (property ${String(prop)})`);
}

/**
 * The prototype of every disposed instance: a proxy that throws on any property it does not answer, so a
 * method call, a getter (`size`, `length`) or a field read all fail alike.
 */
const DISPOSED_PROTO: object = new Proxy(Object.create(null) as object, {
  get(_target, prop) {
    if (prop === 'disposed') return true;
    if (prop === 'dispose') return noop;
    if (typeof prop === 'symbol' || ANSWERS.has(prop)) return undefined;
    throw disposedError(prop);
  },
  has(_target, prop) {
    return prop === 'disposed' || prop === 'dispose';
  },
  set(_target, prop) {
    throw disposedError(prop);
  },
});

function noop(): void {}

/**
 * Release `inst`'s state and retire it (see the module doc). `keep` lists own properties that stay readable
 * (the replica id and type tag, so a log line about a disposed instance still says what it was).
 */
export function disposeInstance(inst: object, keep: readonly string[] = ['replicaId', 'typeTag']): void {
  const o = inst as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!keep.includes(k)) delete o[k];
  Object.setPrototypeOf(inst, DISPOSED_PROTO);
}

/** True once `inst.dispose()` ran. */
export function isDisposed(inst: object): boolean {
  return Object.getPrototypeOf(inst) === DISPOSED_PROTO;
}
