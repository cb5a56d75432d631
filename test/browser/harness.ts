/** For the browser tests: Debian's chromium through playwright-core (never a downloaded browser), and a loopback server. */
import { execSync } from 'node:child_process';
import type { Server } from 'node:http';
import { chromium, type Browser } from 'playwright-core';

function chromiumPath(): string {
  try {
    return execSync('command -v chromium', { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('chromium is not installed: apt-get install -y chromium (.ci/run does this)');
  }
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'],
  });
}

/** Listen on a free loopback port; returns the server's base URL. */
export async function listenLoopback(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  return `http://127.0.0.1:${addr.port}`;
}

export function closeServer(server: Server | undefined): Promise<void> {
  return new Promise<void>((r) => (server ? server.close(() => r()) : r()));
}
