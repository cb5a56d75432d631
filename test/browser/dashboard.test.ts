/**
 * The dashboard page (`GET /`) in headless Chromium against a node's HTTP handler: it renders the VM count,
 * VMs per region, the latest VMs, nodes, counters and peers from `/overview` and `/metrics`, follows writes
 * on its next poll, and a hostile VM id shows as text.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { Browser, Page } from 'playwright-core';
import { NovaCronIntegration } from '../../src/cluster/integration.js';
import { createHttpHandler } from '../../src/cli/http.js';
import type { Transport } from '../../src/transport/types.js';
import { closeServer, launchChromium, listenLoopback } from './harness.js';

const transport: Transport = { id: 'dash', address: 'mem://dash', send: () => true, onMessage() {}, start: async () => {}, stop: async () => {} };
const METRICS = ['ass_peer_connected{peer="p-1"} 1', 'ass_peer_connected{peer="p-2"} 0', 'ass_transport_bytes_sent_total 2048'].join('\n') + '\n';

let server: Server;
let browser: Browser;
let base: string;
let cluster: NovaCronIntegration;

beforeAll(async () => {
  cluster = new NovaCronIntegration({ nodeId: 'dash', region: 'eu-west', transport });
  await cluster.start();
  await cluster.updateNodeStatus({ id: 'n-eu', status: 'healthy', region: 'eu-west', vmCount: 4, cpuUsage: 12.5 });
  for (let i = 0; i < 40; i++) {
    await cluster.updateVMState(`vm-${String(i).padStart(2, '0')}`, { id: `vm-${String(i).padStart(2, '0')}`, status: 'running', nodeId: i < 10 ? 'n-eu' : 'n-x', cpuCores: 2, updatedAt: 1_700_000_000_000 + i * 1000, ...(i >= 30 ? { metadata: { region: 'ap-south' } } : {}) });
  }
  await cluster.incrementCounter('deploys', 7);
  const handler = createHttpHandler({ nodeId: 'dash', region: 'eu-west', cluster, metrics: () => METRICS, admin: { addPeer() {}, partition() {}, heal() {} } });
  server = createServer(handler);
  base = await listenLoopback(server);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await closeServer(server);
  await cluster?.stop();
});

/** The cells of a table's body rows. */
function rows(page: Page, id: string): Promise<string[][]> {
  return page.$$eval(`#${id} tbody tr`, (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
}

describe('dashboard page in Chromium', () => {
  it('renders the overview and follows writes', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const fetched: string[] = [];
    page.on('request', (r) => fetched.push(new URL(r.url()).pathname));
    await page.goto(`${base}/`);
    await page.waitForFunction(() => document.getElementById('vmcount')?.textContent === '40', undefined, { timeout: 20_000 });
    expect(await page.textContent('#status')).toMatch(/^live/);
    expect((await rows(page, 'regions')).map((r) => r.slice(0, 2))).toEqual([['ap-south', '10'], ['eu-west', '10'], ['unknown', '20']]);
    const vms = await rows(page, 'vms');
    expect(vms).toHaveLength(25);
    expect(vms[0].slice(0, 4)).toEqual(['vm-39', 'running', 'n-x', '2']);
    expect(vms[24][0]).toBe('vm-15');
    expect(await rows(page, 'counters')).toEqual([['deploys', '7']]);
    expect((await rows(page, 'nodes'))[0].slice(0, 4)).toEqual(['n-eu', 'eu-west', 'healthy', '4']);
    expect((await rows(page, 'peers')).map((r) => r.join(' '))).toEqual(['p-1 up', 'p-2 down']);
    // the page polls the overview, never the whole state
    expect(fetched).toContain('/overview');
    expect(fetched).not.toContain('/state');

    // a write (with an id that is markup) shows on the next poll, as text
    await cluster.updateVMState('<b>x</b>', { id: '<b>x</b>', status: 'stopped', nodeId: 'n-eu', updatedAt: 1_800_000_000_000 });
    await page.waitForFunction(() => document.getElementById('vmcount')?.textContent === '41', undefined, { timeout: 20_000 });
    expect((await rows(page, 'vms'))[0].slice(0, 2)).toEqual(['<b>x</b>', 'stopped']);
    expect(await page.$('#vms b')).toBeNull();
    expect((await rows(page, 'regions')).map((r) => r.slice(0, 2))).toContainEqual(['eu-west', '11']);
    expect(errors).toEqual([]);
    await page.close();
  });
});
