/**
 * Node-only: find the package's compiled kernels (build/release.wasm) on disk.
 *
 * Walks up from this module's own location to the directory whose package.json has
 * `"name": "async-state-sync"`, so it works from src/kernel/ (vitest, tsx) and from the bundled
 * build/dist/*.js (and build/dist/chunks/*.js) alike.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (directory of our package.json), or undefined when not found. */
export function findPackageRoot(from: string = fileURLToPath(import.meta.url)): string | undefined {
  let dir = dirname(from);
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, 'utf8')).name === 'async-state-sync') return dir;
      } catch {
        // unreadable or not JSON: keep walking up
      }
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** Absolute path of build/<file> in the package root, or undefined when the root is not found. */
export function wasmPath(file = 'release.wasm'): string | undefined {
  const root = findPackageRoot();
  return root === undefined ? undefined : join(root, 'build', file);
}

/** The bytes of build/release.wasm (or another build file), or undefined when it is missing. */
export function loadWasmSync(file = 'release.wasm'): Uint8Array | undefined {
  const path = wasmPath(file);
  if (path === undefined || !existsSync(path)) return undefined;
  return readFileSync(path);
}
