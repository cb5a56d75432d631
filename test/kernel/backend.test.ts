/** Backend selection and the loader: js until loaded, NotInitializedError, initSync/init from every source. */
import { describe, expect, it } from 'vitest';
import { NotInitializedError } from '../../src/errors.js';
import { backend, defaultWasmUrl, getKernel, init, initSync, isWasmReady, pureWasmKernel, useBackend, wasmMemoryBytes } from '../../src/kernel/index.js';
import { findPackageRoot, loadWasmSync, wasmPath } from '../../src/kernel/node-load.js';
import { requireWasmBytes } from './helpers.js';

describe('kernel/backend', () => {
  it('serves js before loading, refuses wasm with NotInitializedError, switches after initSync', () => {
    // this file runs in its own worker: nothing has loaded the wasm yet
    expect(isWasmReady()).toBe(false);
    expect(backend()).toBe('js');
    expect(getKernel().name).toBe('js');
    expect(wasmMemoryBytes()).toBe(0);
    expect(() => useBackend('wasm')).toThrow(NotInitializedError);
    expect(backend()).toBe('js');
    expect(() => useBackend('nope' as 'js')).toThrow(RangeError);
    expect(() => initSync(undefined as unknown as Uint8Array)).toThrow(NotInitializedError);

    initSync(requireWasmBytes());
    expect(isWasmReady()).toBe(true);
    expect(backend()).toBe('wasm');
    expect(getKernel().name).toBe('wasm');
    expect(wasmMemoryBytes()).toBeGreaterThan(0);
    const out = new Uint32Array(2);
    getKernel().xxhash64(new TextEncoder().encode('abc'), 0, 3, 0, out);
    expect(out[1].toString(16) + out[0].toString(16).padStart(8, '0')).toBe('44bc2cf5ad770999');
    useBackend('js');
    expect(getKernel().name).toBe('js');
    useBackend('wasm');
    expect(backend()).toBe('wasm');
  });

  it('bytes that are not our kernels give NotInitializedError (cause kept) and leave the backend as it was', async () => {
    initSync(requireWasmBytes());
    const before = pureWasmKernel();
    const garbage = new Uint8Array([1, 2, 3, 4]);
    const emptyModule = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]); // valid wasm, no exports
    for (const bad of [garbage, emptyModule]) {
      let err: unknown;
      try {
        initSync(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NotInitializedError);
      expect((err as Error).cause).toBeDefined();
      const async = await init(bad).then(() => undefined, (e: unknown) => e);
      expect(async).toBeInstanceOf(NotInitializedError);
      expect(pureWasmKernel()).toBe(before);
      expect(backend()).toBe('wasm');
    }
    const missing = await init(new URL('file:///nonexistent/release.wasm')).then(() => undefined, (e: unknown) => e);
    expect(missing).toBeInstanceOf(NotInitializedError);
  });

  it('init() accepts bytes, a Module, a Response and a file: URL', async () => {
    const bytes = requireWasmBytes();
    const first = pureWasmKernel();
    await init(bytes);
    expect(pureWasmKernel()).not.toBe(first);
    await init(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>));
    await init(new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/wasm' } }));
    // a server without the wasm MIME type: compileStreaming fails, the arrayBuffer fallback works
    await init(new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream' } }));
    const url = new URL(`file://${wasmPath()}`);
    await init(url);
    expect(backend()).toBe('wasm');
    await expect(init(new Response('nope', { status: 404 }))).rejects.toThrow(NotInitializedError);
    await expect(init(new Uint8Array([0, 1, 2, 3]))).rejects.toThrow();
  });

  it('the default URL points at build/release.wasm from build/dist/ and from build/dist/chunks/', async () => {
    const root = findPackageRoot()!;
    const want = new URL(`file://${root}/build/release.wasm`).href;
    expect(defaultWasmUrl(`file://${root}/build/dist/browser.js`).href).toBe(want);
    expect(defaultWasmUrl(`file://${root}/build/dist/chunks/chunk-ABC123.js`).href).toBe(want);
    expect(defaultWasmUrl('https://cdn.example/pkg/build/dist/async-state-sync.browser.js').href).toBe(
      'https://cdn.example/pkg/build/release.wasm',
    );
    await init(defaultWasmUrl(`file://${root}/build/dist/chunks/chunk-ABC123.js`));
    expect(backend()).toBe('wasm');
  });

  it('loadWasmSync finds build/release.wasm from the package root', () => {
    const root = findPackageRoot();
    expect(root).toBeDefined();
    expect(wasmPath()).toBe(`${root}/build/release.wasm`);
    const b = loadWasmSync();
    expect(b).toBeDefined();
    expect(Array.from(b!.subarray(0, 4))).toEqual([0, 0x61, 0x73, 0x6d]);
    expect(loadWasmSync('does-not-exist.wasm')).toBeUndefined();
    expect(findPackageRoot('/')).toBeUndefined();
  });
});
