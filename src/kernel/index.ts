/**
 * Kernel backend selection and our own wasm loader (no @assemblyscript/loader).
 *
 * - Until the wasm is loaded, the pure-TS `jsKernel` serves: nothing ever fails for want of wasm.
 * - `initSync(bytes | Module)` (the Node entry calls it on import with `loadWasmSync()` from node-load.ts) and
 *   `init(source?)` (browsers: `WebAssembly.compileStreaming` on a fetch, with an arrayBuffer fallback) load
 *   build/release.wasm; the wasm backend then becomes the default.
 * - `useBackend('wasm' | 'js')` switches explicitly (throws `NotInitializedError` for 'wasm' before loading);
 *   `getKernel()` is a plain variable read, cheap enough for every merge.
 *
 * Per-method, per-size default: the 'wasm' backend is the kernel of auto.ts, which sends each call to wasm
 * when the input is large enough for wasm to win and to js below that (a wasm call from JS arrays pays a fixed
 * copy/placement cost; see `WASM_FROM` in auto.ts for the measured crossovers and bench/RESULTS.md).
 * `pureWasmKernel()` gives the all-wasm kernel (tests, the benchmark, zero-copy resident arrays).
 */
import { NotInitializedError } from '../errors.js';
import { jsKernel } from './js.js';
import type { Kernel } from './types.js';
import { createAutoKernel } from './auto.js';
import { createWasmKernel, kernelImports, type WasmKernel } from './wasm.js';

export type { Kernel } from './types.js';
export { jsKernel } from './js.js';
export type { WasmKernel } from './wasm.js';
export { WASM_FROM } from './auto.js';

export type BackendName = 'wasm' | 'js';

let wasm: WasmKernel | undefined;
let auto: Kernel | undefined;
let current: Kernel = jsKernel;
let currentName: BackendName = 'js';

/** The kernel of the current backend. */
export function getKernel(): Kernel {
  return current;
}

/** The current backend's name. */
export function backend(): BackendName {
  return currentName;
}

/** True once the wasm kernels are loaded. */
export function isWasmReady(): boolean {
  return wasm !== undefined;
}

/** The unmixed wasm kernel (every method in wasm, resident-array API), or undefined before loading. */
export function pureWasmKernel(): WasmKernel | undefined {
  return wasm;
}

/** Current size of the wasm linear memory in bytes (0 before loading). */
export function wasmMemoryBytes(): number {
  return wasm === undefined ? 0 : wasm.memory.buffer.byteLength;
}

/** Selects the backend. 'wasm' before the wasm is loaded throws `NotInitializedError`. */
export function useBackend(name: BackendName): void {
  if (name === 'js') {
    current = jsKernel;
    currentName = 'js';
  } else if (name === 'wasm') {
    if (wasm === undefined || auto === undefined) {
      throw new NotInitializedError('wasm kernels not loaded: call init() (browsers) or initSync(bytes) first');
    }
    current = auto;
    currentName = 'wasm';
  } else {
    throw new RangeError(`unknown kernel backend ${String(name)}`);
  }
}

function install(instance: WebAssembly.Instance): void {
  wasm = createWasmKernel(instance);
  auto = createAutoKernel(wasm, jsKernel);
  useBackend('wasm');
}

/** Bytes of a wasm module: an ArrayBuffer or any view on one (a Node Buffer included). */
export type WasmBytes = ArrayBuffer | ArrayBufferView;

function isBufferSource(x: unknown): x is WasmBytes {
  return x instanceof ArrayBuffer || ArrayBuffer.isView(x);
}

/** Loads the wasm synchronously from its bytes or a compiled module, and makes it the default backend. */
export function initSync(source: WasmBytes | WebAssembly.Module): void {
  if (!(source instanceof WebAssembly.Module) && !isBufferSource(source)) {
    throw new NotInitializedError('initSync needs the wasm bytes or a WebAssembly.Module (build/release.wasm missing?)');
  }
  let instance: WebAssembly.Instance;
  try {
    const module = source instanceof WebAssembly.Module ? source : new WebAssembly.Module(source as BufferSource);
    instance = new WebAssembly.Instance(module, kernelImports);
  } catch (e) {
    throw notLoaded(e);
  }
  installChecked(instance);
}

/** Bytes or a module that are not our kernels (CompileError, LinkError, missing exports): typed, backend unchanged. */
function notLoaded(e: unknown): NotInitializedError {
  return e instanceof NotInitializedError ? e : new NotInitializedError(`the wasm kernels could not be loaded: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

function installChecked(instance: WebAssembly.Instance): void {
  try {
    install(instance);
  } catch (e) {
    throw notLoaded(e);
  }
}

async function compileResponse(res: Response): Promise<WebAssembly.Module> {
  if (!res.ok) throw new NotInitializedError(`fetching the wasm kernels failed: HTTP ${res.status} ${res.url}`);
  if (typeof WebAssembly.compileStreaming === 'function') {
    try {
      return await WebAssembly.compileStreaming(res.clone());
    } catch {
      // wrong MIME type (servers without application/wasm) or no streaming support: fall back
    }
  }
  return WebAssembly.compile(await res.arrayBuffer());
}

async function readFileUrl(url: URL): Promise<Uint8Array> {
  const spec = 'node:fs/promises'; // not a literal import, so browser bundles never try to resolve it
  const fs = (await import(/* @vite-ignore */ spec)) as { readFile(u: URL): Promise<Uint8Array> };
  return fs.readFile(url);
}

/**
 * Where build/release.wasm is relative to this code once bundled: `../release.wasm` from build/dist/*.js, and
 * `../../release.wasm` when the bundler put this module into a shared chunk (build/dist/chunks/*.js).
 */
export function defaultWasmUrl(base: string = import.meta.url): URL {
  return new URL(/\/chunks\/[^/]*$/.test(base) ? '../../release.wasm' : '../release.wasm', base);
}

/**
 * Loads the wasm asynchronously and makes it the default backend. `source`: bytes, a compiled module, a
 * `Response` (or a promise of one), or a URL/string to fetch (`file:` URLs are read from disk on Node).
 * Default: build/release.wasm as seen from the bundled files (`defaultWasmUrl()`). Calling it again once loaded (without a source) does nothing.
 */
export async function init(
  source?: string | URL | Response | Promise<Response> | WasmBytes | WebAssembly.Module,
): Promise<void> {
  if (source === undefined) {
    if (wasm !== undefined) return;
    source = defaultWasmUrl();
  }
  let instance: WebAssembly.Instance;
  try {
    let module: WebAssembly.Module;
    if (source instanceof WebAssembly.Module) module = source;
    else if (isBufferSource(source)) module = await WebAssembly.compile(source as BufferSource);
    else if (typeof Response !== 'undefined' && (source instanceof Response || source instanceof Promise)) {
      module = await compileResponse(await source);
    } else {
      const url = source instanceof URL ? source : new URL(String(source), globalThis.location?.href ?? import.meta.url);
      if (url.protocol === 'file:') module = await WebAssembly.compile((await readFileUrl(url)) as BufferSource);
      else module = await compileResponse(await fetch(url));
    }
    instance = await WebAssembly.instantiate(module, kernelImports);
  } catch (e) {
    // not found, not wasm, not our kernels: a typed error, and the current backend keeps serving
    throw notLoaded(e);
  }
  installChecked(instance);
}
