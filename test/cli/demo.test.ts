/**
 * `npm start` in CI form: `async-state-sync demo --vms 200 --regions 3` runs real node processes, cuts a
 * region off, heals, and must print the convergence summary, exit 0 and remove its temp dir.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ensureCli, ROOT } from './helpers.js';

let child: ReturnType<typeof spawn> | undefined;
beforeAll(async () => {
  await ensureCli();
});
afterAll(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

describe('demo', () => {
  it('runs 3 regions with 200 VMs through a partition to convergence and prints the summary', async () => {
    child = spawn(process.execPath, [BIN, 'demo', '--vms', '200', '--regions', '3', '--plain', '--timeout', '40000'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => child!.once('exit', (c) => r(c)));
    expect(code, out).toBe(0);
    expect(out).toMatch(/partition: eu-west is cut off from us-east, us-west/);
    expect(out).toMatch(/converged: 3 regions hold the same 200 VMs/);
    expect(out).toMatch(/convergence time after heal: \d+\.\d+ s/);
    expect(out).toMatch(/bytes sent, all nodes: /);
    expect(out).toMatch(/counter demo\.writes = \d+ on every node; 200 VMs checked/);
    const table = out.split('\n').filter((l) => /^(us-east|us-west|eu-west)\s+node-/.test(l));
    expect(table.length).toBe(3);
    for (const row of table) expect(row).toMatch(/\s200\s+[0-9a-f]{12}\s+[\d.]+ (B|KiB|MiB)/);
    const dir = /data dirs and logs in (\S+)/.exec(out)![1];
    expect(existsSync(dir)).toBe(false);
  });

  it('refuses bad flags with exit code 2', async () => {
    const p = spawn(process.execPath, [BIN, 'demo', '--regions', '9'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    expect(await new Promise((r) => p.once('exit', (c) => r(c)))).toBe(2);
    expect(err).toMatch(/--regions must be between 1 and 5/);
  });
});
