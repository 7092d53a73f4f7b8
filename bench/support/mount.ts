// A tidefs mount served by a child process (`node dist/src/cli/main.js mount ... --foreground`), so
// the benchmark's own readers and writers are never the process that serves the mount. It is
// stopped by its PID: SIGTERM (unmount, write back, exit), and if that hangs, SIGKILL and a lazy
// unmount. This module never touches a mount it did not start.
import { execFile, spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import type { Teardown } from './teardown.js';

const exec = promisify(execFile);
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const READY_TIMEOUT_MS = 60_000;
/** A stop writes back whatever is dirty; after this long it is killed instead. */
const STOP_TIMEOUT_MS = 300_000;

export interface MountSpec {
  bucket: string;
  mountpoint: string;
  dataDir: string;
  /** The S3 server's settings (AWS_ENDPOINT_URL, ...). */
  env: Record<string, string>;
  /** Extra `tidefs mount` options. */
  args: string[];
}

export interface MountProcess {
  pid: number;
  mountpoint: string;
  dataDir: string;
  /** Stops the mount (SIGTERM, then SIGKILL after a timeout); throws if it did not exit cleanly. */
  stop(): Promise<void>;
}

/** Starts a mount and waits until it serves; the teardown stops it if the caller does not. */
export async function startMount(spec: MountSpec, teardown: Teardown): Promise<MountProcess> {
  await fsp.mkdir(spec.mountpoint, { recursive: true });
  const child = spawn(
    process.execPath,
    [...NODE_FLAGS, CLI, 'mount', `s3://${spec.bucket}`, spec.mountpoint, '--foreground', '--data-dir', spec.dataDir, ...spec.args],
    { env: { ...process.env, ...spec.env }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start the mount process for ${spec.mountpoint}`);
  let output = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (output = (output + text).slice(-64 * 1024)));
  /** How the process ended ("exit 0", "SIGKILL"); undefined while it runs. */
  let ending: string | undefined;
  let ready = false;
  const exited = new Promise<void>((resolve) =>
    child.on('exit', (code, signal) => {
      ending = signal ?? `exit ${code}`;
      resolve();
    }),
  );

  const stop = teardown.add(`stop mount pid ${pid} at ${spec.mountpoint}`, async () => {
    if (ending !== undefined) {
      await detachIfMounted(spec.mountpoint);
      return;
    }
    process.kill(pid, 'SIGTERM');
    if (!(await settlesWithin(exited, STOP_TIMEOUT_MS))) {
      process.kill(pid, 'SIGKILL');
      await exited;
      await detachIfMounted(spec.mountpoint);
      throw new Error(`mount pid ${pid} did not stop within ${STOP_TIMEOUT_MS / 1000} s; killed it:\n${output}`);
    }
    await detachIfMounted(spec.mountpoint);
    // Before it mounted, the process has no SIGTERM handler yet: dying of the signal is a clean stop.
    const clean = ending === 'exit 0' || (!ready && ending === 'SIGTERM');
    if (!clean) throw new Error(`mount pid ${pid} ended with ${ending}:\n${output}`);
  });

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!output.includes('tidefs: mounted')) {
    if (ending !== undefined) {
      await stop().catch(() => undefined);
      throw new Error(`the mount process ended with ${ending} before mounting:\n${output}`);
    }
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      await exited;
      await stop().catch(() => undefined);
      throw new Error(`the mount at ${spec.mountpoint} was not ready after ${READY_TIMEOUT_MS / 1000} s:\n${output}`);
    }
    await delay(20);
  }
  ready = true;
  return { pid, mountpoint: spec.mountpoint, dataDir: spec.dataDir, stop };
}

/** Mount points in this mount namespace under `dir` (itself included). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const table = await fsp.readFile('/proc/self/mounts', 'utf8');
  return table
    .split('\n')
    .map((line) => (line.split(' ')[1] ?? '').replace(/\\040/g, ' '))
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
}

/** A mount whose process is gone (killed) stays attached until someone detaches it. */
async function detachIfMounted(mountpoint: string): Promise<void> {
  if ((await mountsUnder(mountpoint)).includes(mountpoint)) await exec('fusermount', ['-uz', mountpoint]);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true as const, () => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}
