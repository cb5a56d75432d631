/**
 * Node entry: loads the wasm kernels synchronously on import (from build/release.wasm in the package), so
 * `import { ORMap } from 'async-state-sync'` is ready to use at once. If the wasm file is missing the pure-TS
 * backend serves. Adds the Node-only `LmdbStorage`.
 */
import { initSync } from './kernel/index.js';
import { loadWasmSync } from './kernel/node-load.js';

export * from './index.js';
export { LmdbStorage, type LmdbStorageOptions } from './storage/lmdb.js';

const bytes = loadWasmSync();
if (bytes) initSync(bytes);
