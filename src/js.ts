/**
 * Pure-TypeScript entry: the same API with the pure-TS kernels only. `init`/`initSync` are no-ops here and
 * `useBackend('wasm')` is refused, so no wasm is ever fetched or compiled through this entry. The package
 * builds this entry on its own (no chunks shared with the other entries), so it keeps the pure-TS kernels
 * even when another entry in the same program loads the wasm; its classes are then distinct from the main
 * entry's (`instanceof` does not cross entries; errors still match by `name` and `code`).
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
