/**
 * Measurements in a fresh child process (a clean heap and a wasm memory that has not grown yet).
 *
 * The child is the same bundle (`build/bench.js`) started again with `ASS_BENCH_CHILD` set. A suite module calls
 * `await serveChild(suiteName, tasks)` at its top level: in the child this runs the requested task, prints its
 * JSON result and exits before the bench runner starts; in the parent it returns at once.
 */
import { spawn } from 'node:child_process';

const ENV = 'ASS_BENCH_CHILD';
const MARK = '@@bench-child-result ';

export type ChildTask = (arg: unknown) => unknown | Promise<unknown>;

export async function serveChild(suite: string, tasks: Record<string, ChildTask>): Promise<void> {
  const spec = process.env[ENV];
  if (!spec) return;
  const { suite: s, task, arg } = JSON.parse(spec) as { suite: string; task: string; arg: unknown };
  if (s !== suite) return;
  try {
    const fn = tasks[task];
    if (!fn) throw new Error(`unknown child task ${suite}/${task}`);
    const result = await fn(arg);
    process.stdout.write(`${MARK}${JSON.stringify(result)}\n`, () => process.exit(0));
  } catch (e) {
    console.error(e);
    process.exit(1);
  }
  // keep the runner from starting while stdout drains
  await new Promise(() => {});
}

/** Run `task` of `suite` in a fresh `node --expose-gc` process and return its result. */
export function runChild<T>(suite: string, task: string, arg: unknown, timeoutMs = 180_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--max-old-space-size=4096', process.argv[1]!], {
      env: { ...process.env, [ENV]: JSON.stringify({ suite, task, arg }) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith(MARK));
      if (code === 0 && line) resolve(JSON.parse(line.slice(MARK.length)) as T);
      else reject(new Error(`child ${suite}/${task} failed (exit ${code}): ${err.trim().slice(-2000)}`));
    });
  });
}
