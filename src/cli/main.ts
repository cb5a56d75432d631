/**
 * Entry of the `async-state-sync` command (bundled to build/dist/cli.js, run by bin/async-state-sync.js):
 *   async-state-sync node ...   run one node (see NODE_USAGE)
 *   async-state-sync demo ...   the multi-region demo on loopback (what `npm start` runs)
 * Returns the process exit code: 0 success, 1 failure, 2 bad command line.
 */
import { DEMO_USAGE, NODE_USAGE, parseDemoArgs, parseNodeArgs, UsageError } from './args.js';
import { runDemo } from './demo.js';
import { runNode } from './node.js';

const USAGE = `async-state-sync: CRDT state sync across regions

${NODE_USAGE}
${DEMO_USAGE}
`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === 'node') {
      if (rest.includes('--help') || rest.includes('-h')) return usage(NODE_USAGE, 0);
      return await runNode(parseNodeArgs(rest));
    }
    if (cmd === 'demo') {
      if (rest.includes('--help') || rest.includes('-h')) return usage(DEMO_USAGE, 0);
      return await runDemo(parseDemoArgs(rest));
    }
    if (cmd === 'help' || cmd === '--help' || cmd === '-h') return usage(USAGE, 0);
    process.stderr.write(cmd ? `async-state-sync: unknown command ${JSON.stringify(cmd)}\n\n` : '');
    return usage(USAGE, 2);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`async-state-sync ${cmd}: ${e.message}\n`);
      return usage(cmd === 'demo' ? DEMO_USAGE : NODE_USAGE, 2);
    }
    throw e;
  }
}

function usage(text: string, code: number): number {
  (code === 0 ? process.stdout : process.stderr).write(text.endsWith('\n') ? text : text + '\n');
  return code;
}
