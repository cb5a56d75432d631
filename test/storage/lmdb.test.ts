import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { LmdbStorage } from '../../src/storage/lmdb.js';

const root = mkdtempSync(join(tmpdir(), 'ass-lmdb-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const dir = () => join(root, `db${n++}`);

async function all(s: LmdbStorage, prefix?: string): Promise<Array<[string, number[]]>> {
  const out: Array<[string, number[]]> = [];
  for await (const [k, v] of s.entries(prefix)) out.push([k, [...v]]);
  return out;
}

describe('LmdbStorage', () => {
  it('a path that cannot be made is a StorageError, at once (not a hang in a recursive mkdir)', async () => {
    writeFileSync(join(root, 'a-file'), 'x');
    const s = new LmdbStorage({ path: join(root, 'a-file', 'db') });
    await expect(s.get('k')).rejects.toThrow(StorageError);
    if (process.platform === 'linux') await expect(new LmdbStorage({ path: '/proc/async-state-sync-nope/db' }).get('k')).rejects.toThrow(/ENOENT/);
  });

  it('puts, gets, deletes and lists by prefix in key order', async () => {
    const s = new LmdbStorage({ path: dir() });
    await s.put('crdt/b', Uint8Array.of(2));
    await s.put('crdt/a', Uint8Array.of(1));
    await s.put('crdt/é', Uint8Array.of(3));
    await s.put('meta', Uint8Array.of(9));
    await s.put('crdu', Uint8Array.of(8));
    expect(await s.get('crdt/a')).toEqual(Uint8Array.of(1));
    expect(await s.get('missing')).toBeUndefined();
    expect(await all(s, 'crdt/')).toEqual([
      ['crdt/a', [1]],
      ['crdt/b', [2]],
      ['crdt/é', [3]],
    ]);
    expect((await all(s)).map(([k]) => k)).toEqual(['crdt/a', 'crdt/b', 'crdt/é', 'crdu', 'meta']);
    await s.delete('crdt/b');
    expect(await s.get('crdt/b')).toBeUndefined();
    expect((await all(s, 'crdt/')).length).toBe(2);
    await s.close();
  });

  it('a batch is atomic and a bad op writes nothing', async () => {
    const s = new LmdbStorage({ path: dir() });
    await s.put('k1', Uint8Array.of(1));
    await s.batch([
      { type: 'put', key: 'k2', value: Uint8Array.of(2) },
      { type: 'del', key: 'k1' },
      { type: 'put', key: 'k3', value: Uint8Array.of(3) },
    ]);
    expect((await all(s)).map(([k]) => k)).toEqual(['k2', 'k3']);
    await expect(
      s.batch([
        { type: 'put', key: 'k4', value: Uint8Array.of(4) },
        { type: 'put', key: 'k5', value: 'not bytes' as unknown as Uint8Array },
      ]),
    ).rejects.toThrow(StorageError);
    await expect(s.batch([{ type: 'drop' as 'del', key: 'k2' }])).rejects.toThrow(StorageError);
    await expect(s.put('', Uint8Array.of(1))).rejects.toThrow(StorageError);
    expect((await all(s)).map(([k]) => k)).toEqual(['k2', 'k3']);
    await s.close();
    await expect(s.get('k2')).rejects.toThrow(StorageError);
  });

  it('keeps its data across close and reopen', async () => {
    const path = dir();
    const s = new LmdbStorage({ path });
    const ops = [];
    for (let i = 0; i < 1000; i++) ops.push(s.put(`key/${String(i).padStart(4, '0')}`, Uint8Array.of(i & 255, i >> 8)));
    await Promise.all(ops);
    await s.close();
    const r = new LmdbStorage({ path });
    const got = await all(r, 'key/');
    expect(got.length).toBe(1000);
    expect(got[999]).toEqual(['key/0999', [999 & 255, 999 >> 8]]);
    await r.close();
  });

  it('loses no acknowledged write when the process is killed with SIGKILL', async () => {
    const path = dir();
    const script = join(root, 'writer.mjs');
    const mod = new URL('../../src/storage/lmdb.ts', import.meta.url).pathname;
    // the writer is a plain Node process running the module bundled by esbuild (inside the repository, so
    // that the external `lmdb` import resolves from node_modules)
    const { build } = await import('esbuild');
    const out = new URL(`../../build/test-tmp/lmdb-writer-${process.pid}.mjs`, import.meta.url).pathname;
    await build({ entryPoints: [mod], bundle: true, format: 'esm', platform: 'node', packages: 'external', outfile: out, logLevel: 'silent' });
    writeFileSync(
      script,
      `import { LmdbStorage } from ${JSON.stringify(out)};
       const s = new LmdbStorage({ path: ${JSON.stringify(path)} });
       let i = 0;
       for (;;) {
         const batch = [];
         for (let j = 0; j < 20; j++, i++) batch.push(s.put('w/' + String(i).padStart(8, '0'), Uint8Array.of(i & 255)).then(() => i));
         const k = i;
         await Promise.all(batch);
         process.stdout.write('ack ' + k + '\\n');
       }`,
    );
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'], cwd: new URL('../..', import.meta.url).pathname });
    let acked = 0;
    let buf = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        buf = lines.pop()!;
        for (const l of lines) if (l.startsWith('ack ')) acked = Number(l.slice(4));
        if (acked >= 400 && !child.killed) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.once('exit', (code, sig) => (sig === 'SIGKILL' ? resolve() : reject(new Error(`writer exited early: ${code}`))));
    });
    await new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
    rmSync(out, { force: true });
    const s = new LmdbStorage({ path });
    const keys = (await all(s, 'w/')).map(([k]) => k);
    expect(keys.length).toBeGreaterThanOrEqual(acked);
    for (let i = 0; i < acked; i++) expect(keys[i]).toBe('w/' + String(i).padStart(8, '0'));
    await s.close();
  });

  it('a damaged data file is a StorageError at open, where LMDB itself would crash the process (SIGSEGV, SIGBUS)', async () => {
    const damage: Array<[string, (file: string) => void]> = [
      ['zeroed first meta page', (f) => zero(f, 0, 4096)],
      ['zeroed second meta page', (f) => zero(f, 4096, 4096)],
      ['zeroed whole file', (f) => zero(f, 0, statSync(f).size)],
      ['truncated to half', (f) => truncateSync(f, Math.floor(statSync(f).size / 2))],
      ['truncated to 8 KiB', (f) => truncateSync(f, 8192)],
      ['truncated to 100 bytes', (f) => truncateSync(f, 100)],
    ];
    for (const [what, fn] of damage) {
      const d = dir();
      const s = new LmdbStorage({ path: d });
      for (let i = 0; i < 300; i++) await s.put(`k${i}`, new Uint8Array(200).fill(i % 256));
      await s.close();
      fn(join(d, 'data.mdb'));
      const again = new LmdbStorage({ path: d });
      await expect(again.get('k1'), what).rejects.toThrow(/data\.mdb is damaged/);
      await expect(again.open(), what).rejects.toThrow(StorageError);
    }
    // an empty file is a new database, and a healthy one reopens
    const d = dir();
    const s = new LmdbStorage({ path: d });
    await s.put('k', Uint8Array.of(1));
    await s.close();
    const back = new LmdbStorage({ path: d });
    expect(await back.get('k')).toEqual(Uint8Array.of(1));
    await back.close();
    const e = dir();
    new LmdbStorage({ path: e }); // makes nothing until used
    await (await import('node:fs/promises')).mkdir(e, { recursive: true });
    writeFileSync(join(e, 'data.mdb'), '');
    const empty = new LmdbStorage({ path: e });
    await empty.put('k', Uint8Array.of(2));
    expect(await empty.get('k')).toEqual(Uint8Array.of(2));
    await empty.close();
  });
});

function zero(file: string, at: number, n: number): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, new Uint8Array(n), 0, n, at);
  closeSync(fd);
}
