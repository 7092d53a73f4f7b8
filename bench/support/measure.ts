// Timing primitives shared by the benchmarks: wall-clock timing of a promise, sequential reads and
// writes done by `dd` (a child process, so the reader is neither the mount process nor this one)
// and timed by dd itself (from after opening the files to after the last write and the fsync, so
// the ~10 ms of starting a process does not count), dropping the kernel's page cache, medians and
// MB/s. Nothing here knows about tidefs.
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { performance } from 'node:perf_hooks';

export const MiB = 1024 * 1024;

export interface ChildResult {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (in the C locale); rejects unless it exits with 0. */
export function runChild(command: string, args: string[]): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
  });
}

/** Milliseconds `fn` takes, and its result. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const began = performance.now();
  const value = await fn();
  return { ms: performance.now() - began, value };
}

/** Reads `file` sequentially with 1 MiB reads in a `dd` process; checks the byte count; returns ms. */
export async function ddRead(file: string, expectedBytes: number): Promise<number> {
  const { stderr } = await runChild('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M']);
  return copyMs(stderr, expectedBytes, file);
}

/**
 * Copies `source` to `target` with 1 MiB writes and an fsync before exit (`dd conv=fsync`) in a `dd`
 * process; checks the byte count; returns ms.
 */
export async function ddWrite(source: string, target: string, expectedBytes: number): Promise<number> {
  const { stderr } = await runChild('dd', [`if=${source}`, `of=${target}`, 'bs=1M', 'conv=fsync']);
  return copyMs(stderr, expectedBytes, target);
}

/** The time dd reports for its copy ("N bytes (...) copied, S s, ..."), after checking N. */
function copyMs(ddStderr: string, expectedBytes: number, what: string): number {
  const copied = /^(\d+) bytes.* copied, ([\d.]+) s,/m.exec(ddStderr);
  if (!copied) throw new Error(`cannot read dd's report for ${what}: ${ddStderr.trim()}`);
  if (Number(copied[1]) !== expectedBytes) throw new Error(`dd moved ${copied[1]} bytes of ${what}, expected ${expectedBytes}`);
  return Number(copied[2]) * 1000;
}

/**
 * Writes the dirty pages of the filesystem holding `localPath` to disk (syncfs). Only that
 * filesystem: a global sync would also wait on every FUSE mount on the machine, including other
 * people's.
 */
export async function flushToDisk(localPath: string): Promise<void> {
  await runChild('sync', ['-f', localPath]);
}

/**
 * Writes back dirty pages of the filesystem holding `localPath` and drops the page cache (and
 * dentries and inodes) of the whole machine. Needs root.
 */
export async function dropPageCache(localPath: string): Promise<void> {
  await flushToDisk(localPath);
  try {
    await fsp.writeFile('/proc/sys/vm/drop_caches', '3\n');
  } catch (error) {
    throw new Error(`cannot drop the page cache (root is needed): ${(error as Error).message}`, { cause: error });
  }
}

export function median(values: number[]): number {
  if (values.length === 0) throw new Error('median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Decimal megabytes per second. */
export function mbPerSec(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

export const round = (n: number, digits = 2): number => Number(n.toFixed(digits));
