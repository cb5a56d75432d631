/** Backend selection for the benches: the wasm kernels loaded once from build/release.wasm. */
import { initSync, isWasmReady, useBackend } from '../../src/kernel/index.js';
import { loadWasmSync } from '../../src/kernel/node-load.js';

export type BackendName = 'wasm' | 'js';

/** Select a kernel backend, loading the wasm (synchronously) on first use. Throws when it is not built. */
export function ensureBackend(name: BackendName): void {
  if (name === 'wasm' && !isWasmReady()) {
    const bytes = loadWasmSync();
    if (!bytes) throw new Error('build/release.wasm missing: run `npm run build`');
    initSync(bytes);
  }
  useBackend(name);
}
