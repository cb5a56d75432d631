/**
 * Slim entry for libraries: no automatic wasm loading in any environment. The application decides when (and
 * whether) to call `init()` / `initSync()`; until then the pure-TS backend serves.
 */
export * from './index.js';
