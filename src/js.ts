/**
 * Pure-TypeScript entry: the same API with the pure-TS kernels only. `init`/`initSync` are no-ops here and
 * `useBackend('wasm')` is refused, so no wasm is ever fetched or compiled through this entry.
 * (The backend choice is per module instance: if another entry in the same program loads the wasm, kernels are
 * shared; use this entry alone when wasm must not run, e.g. under a CSP without 'wasm-unsafe-eval'.)
 */
import { NotInitializedError } from './errors.js';
import { useBackend as selectBackend, type BackendName } from './kernel/index.js';

export * from './index.js';

/** No-op in the pure-TS entry. */
export async function init(_source?: unknown): Promise<void> {}
/** No-op in the pure-TS entry. */
export function initSync(_source?: unknown): void {}
/** Only 'js' is available in the pure-TS entry. */
export function useBackend(name: BackendName): void {
  if (name !== 'js') throw new NotInitializedError('the ./js entry has only the pure-TS backend');
  selectBackend('js');
}
