// Test helper: a real tidefs mount served by a child process (`node dist/src/cli/main.js mount
// ... --foreground`), so a hung mount can never take the test runner with it. Tests use only async
// fs calls on the mount. Every mount started here is stopped (or killed and detached) by its PID.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';

const exec = promisify(execFile);
export const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

export interface MountHandle {
  mountpoint: string;
  dataDir: string;
  pid: number;
  /** Everything the mount process wrote to stderr so far. */
  output(): string;
  /** SIGTERM: unmount, write back, exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, then detach the dead mount. */
  kill(): Promise<void>;
  /** SIGKILL and leave the dead mount in place, as a crash would; the test cleans up after it. */
  crash(): Promise<void>;
  /** Resolves with the exit code once the process exits by itself (e.g. after an unmount from outside). */
  exited(): Promise<number | null>;
}

export interface MountOptions {
  bucket: string;
  prefix?: string;
  dataDir?: string;
  mountpoint?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
}

const live = new Set<MountHandle>();

export async function startMount(options: MountOptions): Promise<MountHandle> {
  const base = await fsp.mkdtemp(path.join(os.tmpdir(), 'tidefs-test-'));
  const mountpoint = options.mountpoint ?? path.join(base, 'mnt');
  const dataDir = options.dataDir ?? path.join(base, 'data');
  const url = `s3://${options.bucket}${options.prefix ? `/${options.prefix}` : ''}`;
  const child = spawn(
    process.execPath,
    [...NODE_FLAGS, CLI, 'mount', url, mountpoint, '--foreground', '--data-dir', dataDir, ...(options.args ?? [])],
    { env: { ...process.env, ...options.env }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitForMount(child, () => stderr, exited);
  const handle: MountHandle = {
    mountpoint,
    dataDir,
    pid: child.pid!,
    output: () => stderr,
    stop: async () => {
      live.delete(handle);
      child.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      live.delete(handle);
      child.kill('SIGKILL');
      await exited;
      await exec('fusermount', ['-uz', mountpoint]).catch(() => undefined);
    },
    crash: async () => {
      live.delete(handle);
      child.kill('SIGKILL');
      await exited;
    },
    exited: async () => {
      const code = await exited;
      live.delete(handle);
      return code;
    },
  };
  live.add(handle);
  return handle;
}

async function waitForMount(child: ChildProcess, output: () => string, exited: Promise<number | null>): Promise<void> {
  let done = false;
  const failed = exited.then((code) => {
    if (!done) throw new Error(`mount process exited with ${code}:\n${output()}`);
  });
  const ready = (async () => {
    for (let i = 0; i < 600; i++) {
      if (output().includes('tidefs: mounted')) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    throw new Error(`mount did not become ready:\n${output()}`);
  })();
  try {
    await Promise.race([ready, failed]);
  } finally {
    done = true;
  }
}

/** Stop every mount a test left running (call from afterAll). */
export async function stopAllMounts(): Promise<void> {
  await Promise.all([...live].map((m) => m.kill()));
}
