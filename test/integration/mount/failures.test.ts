// Bad input and a bad S3: the mount command refuses a missing bucket and wrong credentials with one
// line and a non-zero status (in the foreground and when it daemonizes); behind the S3 fault proxy
// (test/fixtures/s3-fault-proxy) bounded runs of 503s, resets and delays are retried through, faults
// that persist end in EIO without a crash or a hang, and dirty data is never lost when write-back
// fails: it lands in the bucket once the faults stop, even across a SIGTERM and a new mount.
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { S3ObjectStore } from '../../../src/node/s3/s3-object-store.js';
import { type FaultProxy, startFaultProxy } from '../../fixtures/s3-fault-proxy/index.js';
import { CLI, startMount, stopAllMounts, type MountHandle } from '../../support/mount.js';
import { createTestBucket, s3TestStore, type TestBucket } from '../../support/s3.js';
import { errnoOf, isMountpoint, objectBytes, patternBytes, processesMentioning, sleep, waitUntil } from './mount-test-tools.js';

const exec = promisify(execFile);
const KiB = 1024;

interface CliOutcome {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `tidefs mount ...` to completion (it must end by itself within the timeout). */
async function runMountCommand(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliOutcome> {
  const began = Date.now();
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, 'mount', ...args], { env: { ...process.env, ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr, ms: Date.now() - began };
  } catch (err) {
    const e = err as { code?: number | string; killed?: boolean; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw new Error(`tidefs mount did not exit by itself: ${(err as Error).message}`);
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '', ms: Date.now() - began };
  }
}

describe('the mount command with a bucket it cannot use', () => {
  let bucket: TestBucket;
  let base: string;

  beforeAll(async () => {
    bucket = await createTestBucket('mount-refused');
    base = await fsp.mkdtemp(path.join(os.tmpdir(), 'tidefs-refused-'));
  });

  afterAll(async () => {
    await bucket?.destroy();
    if (base) await fsp.rm(base, { recursive: true, force: true });
  });

  /** The lock a mount with 'process' durability leaves when the machine goes down under it. */
  const leftByPowerCut = async (dataDir: string): Promise<void> => {
    await fsp.mkdir(dataDir, { recursive: true });
    await fsp.writeFile(path.join(dataDir, 'lock'), JSON.stringify({ pid: 4_999_999, boot: 'an-earlier-boot', durability: 'process' }));
  };
  const cases: Array<{ what: string; url: () => string; env: NodeJS.ProcessEnv; message: RegExp; prepare?: (dataDir: string) => Promise<void> }> = [
    {
      what: 'a missing bucket',
      url: () => 's3://tidefs-no-such-bucket-anywhere',
      env: {},
      message: /^tidefs: cannot use s3:\/\/tidefs-no-such-bucket-anywhere: the bucket does not exist$/,
    },
    {
      what: 'a wrong secret key',
      url: () => `s3://${bucket.name}`,
      env: { AWS_SECRET_ACCESS_KEY: 'not-the-secret' },
      message: /^tidefs: cannot use s3:\/\/[a-z0-9-]+: access denied \(check AWS_ACCESS_KEY_ID \/ AWS_SECRET_ACCESS_KEY\)$/,
    },
    {
      what: 'an unknown access key',
      url: () => `s3://${bucket.name}`,
      env: { AWS_ACCESS_KEY_ID: 'TIDEFSNOSUCHACCESSKEY' },
      message: /^tidefs: cannot use s3:\/\/[a-z0-9-]+: access denied \(check AWS_ACCESS_KEY_ID \/ AWS_SECRET_ACCESS_KEY\)$/,
    },
    {
      what: "a data directory the machine went down under with 'process' durability",
      url: () => `s3://${bucket.name}`,
      env: {},
      message: /^tidefs: .*data directory .* was in use with --durability process when the machine went down, so it may be damaged: .*--trust-data-dir if the machine shut down cleanly$/,
      prepare: leftByPowerCut,
    },
  ];

  for (const c of cases) {
    for (const mode of ['--foreground', 'in the background'] as const) {
      it(`${c.what}, ${mode}: one line on stderr, a non-zero status, nothing mounted, no process left`, async () => {
        const dir = await fsp.mkdtemp(path.join(base, 'case-'));
        const mountpoint = path.join(dir, 'mnt');
        await c.prepare?.(path.join(dir, 'data'));
        const args = [c.url(), mountpoint, '--data-dir', path.join(dir, 'data'), ...(mode === '--foreground' ? ['--foreground'] : [])];
        const out = await runMountCommand(args, c.env);
        expect(out.code, out.stderr).not.toBe(0);
        expect(out.stdout).toBe('');
        const lines = out.stderr.trimEnd().split('\n');
        expect(lines, out.stderr).toHaveLength(1);
        expect(lines[0]).toMatch(c.message);
        expect(out.ms).toBeLessThan(30_000);
        expect(await isMountpoint(mountpoint)).toBe(false);
        // The daemonized child exited too.
        expect(await processesMentioning(mountpoint)).toEqual([]);
      });
    }
  }

  it('mounts a data directory the machine went down under when told it shut down cleanly (--trust-data-dir)', async () => {
    const dataDir = path.join(await fsp.mkdtemp(path.join(base, 'trusted-')), 'data');
    await leftByPowerCut(dataDir);
    const mount = await startMount({ bucket: bucket.name, dataDir, args: ['--trust-data-dir'] });
    await fsp.writeFile(path.join(mount.mountpoint, 'after-the-cut'), 'fine');
    expect(await mount.stop(), mount.output()).toBe(0);
  });
});

describe('a mount behind a faulty S3 (fault proxy)', () => {
  let bucket: TestBucket;
  let store: S3ObjectStore;
  let proxy: FaultProxy;
  let mount: MountHandle;
  const at = (...parts: string[]): string => path.join(mount.mountpoint, ...parts);
  const objects = new Map<string, Buffer>();

  beforeAll(async () => {
    bucket = await createTestBucket('mount-faults');
    store = s3TestStore(bucket.name);
    proxy = await startFaultProxy({ target: process.env.AWS_ENDPOINT_URL as string });
    for (let i = 0; i < 6; i++) objects.set(`faults/r${i}`, patternBytes(700 * KiB + i, 20 + i));
    await Promise.all([...objects].map(([key, body]) => store.put(key, body)));
    mount = await startMount({
      bucket: bucket.name,
      args: ['--endpoint', proxy.url, '--chunk-size', '256KiB', '--close-delay', '100ms'],
    });
    // Load the namespace and every file's attributes while S3 is healthy: reads below need only GETs.
    for (const key of objects.keys()) await fsp.stat(at(key));
  });

  afterEach(() => {
    proxy.failNext(0);
    proxy.resetNext(0);
    proxy.delayMs(0);
  });

  afterAll(async () => {
    await stopAllMounts();
    await proxy?.stop();
    store?.close();
    await bucket?.destroy();
  });

  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  it('reads retry through a bounded run of 503s, connection resets and slow answers, and succeed', async () => {
    let before = proxy.requestCount;
    proxy.failNext(3);
    expect((await fsp.readFile(at('faults/r0'))).equals(objects.get('faults/r0')!)).toBe(true);
    expect(proxy.requestCount - before, 'the failed requests were retried').toBeGreaterThanOrEqual(4);

    before = proxy.requestCount;
    proxy.resetNext(3);
    expect((await fsp.readFile(at('faults/r1'))).equals(objects.get('faults/r1')!)).toBe(true);
    expect(proxy.requestCount - before).toBeGreaterThanOrEqual(4);

    proxy.delayMs(1_500, 2);
    const began = Date.now();
    expect((await fsp.readFile(at('faults/r2'))).equals(objects.get('faults/r2')!)).toBe(true);
    expect(Date.now() - began).toBeGreaterThanOrEqual(1_400);
  });

  it('reads fail with EIO, promptly, while 503s or connection resets persist; the mount process stays up and reads again once they stop', async () => {
    proxy.failNext(1_000_000);
    const began = Date.now();
    expect(await errnoOf(fsp.readFile(at('faults/r3')))).toBe('EIO');
    expect(Date.now() - began, 'EIO after the retry budget, not a hang').toBeLessThan(30_000);
    expect(alive(mount.pid)).toBe(true);
    expect((await fsp.readdir(at('faults'))).length).toBe(objects.size);
    proxy.failNext(0);
    expect((await fsp.readFile(at('faults/r3'))).equals(objects.get('faults/r3')!)).toBe(true);

    proxy.resetNext(1_000_000);
    expect(await errnoOf(fsp.readFile(at('faults/r4')))).toBe('EIO');
    expect(alive(mount.pid)).toBe(true);
    proxy.resetNext(0);
    expect((await fsp.readFile(at('faults/r4'))).equals(objects.get('faults/r4')!)).toBe(true);
  });

  it('dirty data is kept while write-back fails (fsync says EIO) and lands in the bucket once the faults stop', async () => {
    const data = patternBytes(600 * KiB, 30);
    proxy.failNext(1_000_000);
    const fh = await fsp.open(at('faults', 'written.bin'), 'w');
    try {
      await fh.write(data, 0, data.length, 0);
      expect(await errnoOf(fh.sync())).toBe('EIO');
    } finally {
      await fh.close();
    }
    // Closed and past the close delay: write-back keeps trying and failing.
    await sleep(1_500);
    expect(await store.head('faults/written.bin')).toBeUndefined();
    expect((await fsp.readFile(at('faults', 'written.bin'))).equals(data), 'the mount still serves the dirty data').toBe(true);
    expect(alive(mount.pid)).toBe(true);
    proxy.failNext(0);
    await waitUntil('faults/written.bin is in the bucket', async () => (await objectBytes(store, 'faults/written.bin'))?.equals(data) ?? false, 60_000, 250);
  });

  it('unlinks while S3 refuses deletes: the names are gone at once, the objects once the faults stop', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `faults/doomed/d${i}`);
    await fsp.mkdir(at('faults', 'doomed'));
    for (const [i, key] of names.entries()) await fsp.writeFile(at(key), patternBytes(1000 + i, 40 + i));
    await waitUntil('every file is written back', async () => {
      const written = await Promise.all(names.map((key) => store.head(key)));
      return written.every((info) => info !== undefined);
    }, 30_000, 100);
    proxy.failNext(1_000_000);
    for (const key of names) await fsp.unlink(at(key));
    expect(await fsp.readdir(at('faults', 'doomed'))).toEqual([]);
    await sleep(1_000);
    for (const key of names) expect(await store.head(key), `${key} stays while deletes fail`).not.toBeUndefined();
    expect(alive(mount.pid)).toBe(true);
    proxy.failNext(0);
    await waitUntil('every unlinked object is deleted from the bucket', async () => {
      const left = await Promise.all(names.map((key) => store.head(key)));
      return left.every((info) => info === undefined);
    }, 60_000, 250);
    expect(await errnoOf(fsp.stat(at(names[0]!)))).toBe('ENOENT');
  });

  it('SIGTERM while write-back fails: exits non-zero keeping the data, and the next mount writes it back', async () => {
    const data = patternBytes(400 * KiB, 31);
    const failing = await startMount({
      bucket: bucket.name,
      args: ['--endpoint', proxy.url, '--close-delay', '1h', '--max-dirty-age', '1h'],
    });
    await fsp.writeFile(path.join(failing.mountpoint, 'kept.bin'), data);
    proxy.failNext(1_000_000);
    expect(await failing.stop()).toBe(1);
    expect(failing.output()).toMatch(/write-back incomplete/);
    expect(await isMountpoint(failing.mountpoint)).toBe(false);
    expect(await store.head('kept.bin')).toBeUndefined();
    proxy.failNext(0);

    // The same endpoint (a data directory belongs to one), now healthy.
    const next = await startMount({ bucket: bucket.name, dataDir: failing.dataDir, args: ['--endpoint', proxy.url, '--close-delay', '100ms'] });
    expect((await fsp.readFile(path.join(next.mountpoint, 'kept.bin'))).equals(data)).toBe(true);
    await waitUntil('kept.bin is in the bucket', async () => (await objectBytes(store, 'kept.bin'))?.equals(data) ?? false, 30_000, 250);
    expect(await next.stop(), next.output()).toBe(0);
  });
});
