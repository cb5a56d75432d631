/**
 * Directory creation for the Node-only storage and the CLI.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * `mkdir -p`: creates `path` and its missing parents one level at a time. Node's own recursive mkdirSync
 * never returns for some paths (under /proc on Linux it loops), so this walks up to the nearest existing
 * ancestor and creates each missing level with a plain mkdirSync, which fails with the system's error
 * (ENOENT, EACCES, ENOTDIR, ...). An existing directory is fine; an existing file is ENOTDIR-like EEXIST.
 */
export function makeDirs(path: string): void {
  const missing: string[] = [];
  let p = resolve(path);
  for (;;) {
    try {
      if (statSync(p).isDirectory()) break;
      const err = new Error(`EEXIST: not a directory, mkdir '${p}'`) as NodeJS.ErrnoException;
      err.code = 'EEXIST';
      throw err;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    missing.push(p);
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    try {
      mkdirSync(missing[i]);
    } catch (e) {
      // made meanwhile by someone else: fine if it is a directory
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(missing[i]).isDirectory()) throw e;
    }
  }
}
