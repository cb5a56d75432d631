/**
 * Browser (and bundler) entry. Call `await init()` once to load the wasm kernels: the kernels (about 6 KB) are
 * built into this entry, so any bundler takes them along without a loader or a URL to serve (pass a URL,
 * Response, bytes or a compiled module to load another build). Until then the pure-TS backend serves, so
 * nothing fails for want of wasm.
 */
import { init as initFrom, isWasmReady } from './kernel/index.js';

export * from './index.js';

/** release.wasm in base64, put here by the build (scripts/build.mjs); absent when this file runs unbuilt. */
declare const __ASYNC_STATE_SYNC_WASM__: string | undefined;

/** The built-in kernels' bytes, or undefined when this module runs unbuilt (then `init()` fetches the default URL). */
function builtIn(): Uint8Array | undefined {
  if (typeof __ASYNC_STATE_SYNC_WASM__ !== 'string' || __ASYNC_STATE_SYNC_WASM__ === '') return undefined;
  const s = atob(__ASYNC_STATE_SYNC_WASM__);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * Load the wasm kernels and make them the default backend: the ones built into this entry, or `source` (bytes,
 * a compiled module, a `Response` or a promise of one, or a URL to fetch). Calling it again without a source
 * once loaded does nothing. A failure is a NotInitializedError, and the current backend keeps serving.
 */
export async function init(source?: Parameters<typeof initFrom>[0]): Promise<void> {
  if (source === undefined && isWasmReady()) return; // loaded: nothing to do (and a useBackend('js') stays)
  return initFrom(source ?? builtIn());
}
