// Tools the mount integration tests share: reading the bucket behind a mount (whole objects, keys,
// metadata) through the test store, capturing the errno of a failing fs call, extended attributes
// through python3's os module (Node has no xattr API and the attr tools are not installed), running a
// command as another user, and waiting for a condition with a deadline. Nothing here touches a mount
// synchronously: every fs call is async or runs in a child process.
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { S3ObjectStore } from '../../../src/node/s3/s3-object-store.js';

const exec = promisify(execFile);

/** The whole object at `key`, or undefined when there is none. */
export async function objectBytes(store: S3ObjectStore, key: string): Promise<Buffer | undefined> {
  const info = await store.head(key);
  if (info === undefined) return undefined;
  return info.size === 0 ? Buffer.alloc(0) : store.getRange(key, 0, info.size, info.etag);
}

/** Every key under `prefix`, sorted. */
export async function listKeys(store: S3ObjectStore, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await store.list(prefix, { token });
    keys.push(...page.objects.map((o) => o.key));
    token = page.nextToken;
  } while (token !== undefined);
  return keys.sort();
}

/** The error code (ENOENT, EEXIST, ...) `action` fails with; fails the test if it succeeds. */
export async function errnoOf(action: Promise<unknown>): Promise<string> {
  try {
    await action;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code !== 'string') throw err;
    return code;
  }
  throw new Error('expected the call to fail, and it succeeded');
}

/**
 * Polls `probe` every `intervalMs` until it returns true; fails after `timeoutMs`, saying `what` it
 * waited for (a function is asked at that moment, so it can describe the last state seen).
 */
export async function waitUntil(
  what: string | (() => string),
  probe: () => Promise<boolean>,
  timeoutMs = 15_000,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${typeof what === 'string' ? what : what()}`);
    await sleep(intervalMs);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export type XattrResult = { ok: true; value?: string; names?: string[] } | { ok: false; code: string };

const XATTR_SCRIPT = `
import errno, json, os, sys
op, path = sys.argv[1], sys.argv[2]
try:
    if op == 'get':
        out = {'ok': True, 'value': os.getxattr(path, sys.argv[3]).hex()}
    elif op == 'list':
        out = {'ok': True, 'names': sorted(os.listxattr(path))}
    elif op == 'set':
        flags = {'': 0, 'create': os.XATTR_CREATE, 'replace': os.XATTR_REPLACE}[sys.argv[5]]
        os.setxattr(path, sys.argv[3], bytes.fromhex(sys.argv[4]), flags)
        out = {'ok': True}
    elif op == 'remove':
        os.removexattr(path, sys.argv[3])
        out = {'ok': True}
except OSError as e:
    out = {'ok': False, 'code': errno.errorcode.get(e.errno, str(e.errno))}
print(json.dumps(out))
`;

let python: Promise<string> | undefined;

/** The python3 interpreter itself: a version-manager shim in front of it costs ~0.3 s per call. */
function pythonInterpreter(): Promise<string> {
  python ??= exec('python3', ['-c', 'import sys; print(sys.executable)']).then(({ stdout }) => stdout.trim());
  return python;
}

async function xattrCall(args: string[]): Promise<XattrResult> {
  const { stdout } = await exec(await pythonInterpreter(), ['-c', XATTR_SCRIPT, ...args], { timeout: 30_000 });
  return JSON.parse(stdout) as XattrResult;
}

/** Extended attributes of a path on the mount, each call in its own python3 process. */
export const xattr = {
  get: (path: string, name: string): Promise<XattrResult> =>
    xattrCall(['get', path, name]).then((r) => (r.ok && r.value !== undefined ? { ok: true, value: Buffer.from(r.value, 'hex').toString('utf8') } : r)),
  list: (path: string): Promise<XattrResult> => xattrCall(['list', path]),
  set: (path: string, name: string, value: string | Buffer, flags: '' | 'create' | 'replace' = ''): Promise<XattrResult> =>
    xattrCall(['set', path, name, Buffer.from(value).toString('hex'), flags]),
  remove: (path: string, name: string): Promise<XattrResult> => xattrCall(['remove', path, name]),
};

/** Runs a python3 snippet with `args` (sys.argv[1:]) and returns what it printed. */
export async function runPython(script: string, args: string[]): Promise<string> {
  const { stdout } = await exec(await pythonInterpreter(), ['-c', script, ...args], { timeout: 30_000 });
  return stdout;
}

export interface CommandOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `command` as uid/gid `id` with no supplementary groups (setpriv); never throws on a non-zero exit. */
export async function runAs(id: number, command: string[]): Promise<CommandOutcome> {
  try {
    const { stdout, stderr } = await exec('setpriv', [`--reuid=${id}`, `--regid=${id}`, '--clear-groups', ...command], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Whether `mountpoint` is in the kernel's mount table. */
export async function isMountpoint(mountpoint: string): Promise<boolean> {
  const table = await readFile('/proc/self/mounts', 'utf8');
  return table.split('\n').some((line) => line.split(' ')[1] === mountpoint);
}

/** The mount's device ("major:minor", from /proc/self/mountinfo), or undefined if it is not mounted. */
export async function mountDevice(mountpoint: string): Promise<string | undefined> {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  return table
    .split('\n')
    .map((line) => line.split(' '))
    .find((fields) => fields[4] === mountpoint)?.[2];
}

/** PIDs of live processes whose command line contains `text` (e.g. a mountpoint). */
export async function processesMentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').some((arg) => arg.includes(text))) pids.push(Number(entry));
  }
  return pids;
}

/** Deterministic pseudo-random bytes (xorshift32 from `seed`), so a failure can be replayed. */
export function patternBytes(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
