// The life of a mount process: SIGTERM with dirty data writes everything back before exiting 0
// (a mount with the non-default --busy-poll 0, --durability fsync and --sign-payloads too);
// an unmount from outside (fusermount -u, umount) or an aborted connection makes the process write
// back and exit 0; and a mount killed with SIGKILL leaves no stuck mountpoint: a new mount on the
// same mountpoint (and data directory) works and has every acknowledged write.
import { promises as fsp } from 'node:fs';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3ObjectStore } from '../../../src/node/s3/s3-object-store.js';
import { startMount, stopAllMounts, type MountHandle } from '../../support/mount.js';
import { createTestBucket, s3TestStore, type TestBucket } from '../../support/s3.js';
import { errnoOf, isMountpoint, listKeys, mountDevice, objectBytes, patternBytes, waitUntil } from './mount-test-tools.js';

const exec = promisify(execFile);
const KiB = 1024;
/** Nothing is written back on its own while the test looks: only the way out under test does it. */
const NO_BACKGROUND_WRITE_BACK = ['--close-delay', '1h', '--max-dirty-age', '1h'];

describe('the life of a mount process', () => {
  let bucket: TestBucket;
  let store: S3ObjectStore;
  /** Mountpoints a crashed mount may have left behind, detached at the end whatever happened. */
  const leftovers: string[] = [];

  beforeAll(async () => {
    bucket = await createTestBucket('mount-life');
    store = s3TestStore(bucket.name);
  });

  afterAll(async () => {
    await stopAllMounts();
    for (const mountpoint of leftovers) {
      if (await isMountpoint(mountpoint)) await exec('fusermount', ['-uz', mountpoint]).catch(() => undefined);
    }
    store?.close();
    await bucket?.destroy();
  });

  /** Writes a small tree whose every part is dirty (not yet in the bucket); returns its expected objects. */
  async function writeDirtyTree(mount: MountHandle, dir: string): Promise<Map<string, Buffer>> {
    const at = (...parts: string[]): string => path.join(mount.mountpoint, dir, ...parts);
    const expected = new Map<string, Buffer>();
    await fsp.mkdir(at('sub'), { recursive: true });
    const big = patternBytes(6 * 1024 * KiB + 5, 40);
    await fsp.writeFile(at('big.bin'), big);
    expected.set(`${dir}/big.bin`, big);
    await fsp.writeFile(at('sub', 'small.txt'), 'small');
    expected.set(`${dir}/sub/small.txt`, Buffer.from('small'));
    await fsp.writeFile(at('renamed-from'), 'moved');
    await fsp.rename(at('renamed-from'), at('renamed-to'));
    expected.set(`${dir}/renamed-to`, Buffer.from('moved'));
    await fsp.symlink('sub/small.txt', at('link'));
    expected.set(`${dir}/link`, Buffer.from('sub/small.txt'));
    expected.set(`${dir}/`, Buffer.alloc(0));
    expected.set(`${dir}/sub/`, Buffer.alloc(0));
    // Directory markers go out at once (a directory is never open); files wait for the way out.
    const written = (await listKeys(store, `${dir}/`)).filter((key) => !key.endsWith('/'));
    expect(written, 'no file is written back yet').toEqual([]);
    return expected;
  }

  async function expectInBucket(expected: Map<string, Buffer>, dir: string): Promise<void> {
    expect(await listKeys(store, `${dir}/`)).toEqual([...expected.keys()].sort());
    for (const [key, body] of expected) expect((await objectBytes(store, key))?.equals(body), key).toBe(true);
  }

  it('SIGTERM with dirty data writes it all back, then exits 0', async () => {
    const mount = await startMount({ bucket: bucket.name, args: NO_BACKGROUND_WRITE_BACK });
    const expected = await writeDirtyTree(mount, 'term');
    expect(await mount.stop(), mount.output()).toBe(0);
    expect(await isMountpoint(mount.mountpoint)).toBe(false);
    await expectInBucket(expected, 'term');
  });

  it('a mount that never busy-polls, flushes every log write and signs upload bodies serves alike', async () => {
    const args = [...NO_BACKGROUND_WRITE_BACK, '--busy-poll', '0', '--durability', 'fsync', '--sign-payloads'];
    const mount = await startMount({ bucket: bucket.name, args });
    const expected = await writeDirtyTree(mount, 'no-poll');
    for (const [key, body] of expected) {
      if (key.endsWith('/') || key.endsWith('/link')) continue;
      expect((await fsp.readFile(path.join(mount.mountpoint, key))).equals(body), key).toBe(true);
    }
    expect(await fsp.readlink(path.join(mount.mountpoint, 'no-poll', 'link'))).toBe('sub/small.txt');
    expect(await mount.stop(), mount.output()).toBe(0);
    await expectInBucket(expected, 'no-poll');
  });

  for (const [tool, args] of [['fusermount -u', ['fusermount', '-u']], ['umount', ['umount']]] as const) {
    it(`an unmount from outside (${tool}) makes the process write back and exit 0`, async () => {
      const mount = await startMount({ bucket: bucket.name, args: NO_BACKGROUND_WRITE_BACK });
      const dir = tool === 'umount' ? 'umount' : 'fusermount';
      const expected = await writeDirtyTree(mount, dir);
      await exec(args[0], [...args.slice(1), mount.mountpoint]);
      expect(await mount.exited(), mount.output()).toBe(0);
      expect(mount.output()).toMatch(/unmounted from outside/);
      await expectInBucket(expected, dir);
    });
  }

  it('a connection aborted by the kernel (fusectl abort) makes the process write back, exit 0 and leave no dead mount', async () => {
    const mount = await startMount({ bucket: bucket.name, args: NO_BACKGROUND_WRITE_BACK });
    const expected = await writeDirtyTree(mount, 'abort');
    const minor = (await mountDevice(mount.mountpoint))?.split(':')[1];
    expect(minor).toMatch(/^\d+$/);
    const connections = '/sys/fs/fuse/connections';
    const hadFusectl = (await fsp.readFile('/proc/mounts', 'utf8')).includes(` ${connections} fusectl `);
    if (!hadFusectl) await exec('mount', ['-t', 'fusectl', 'none', connections]);
    try {
      await fsp.writeFile(`${connections}/${minor}/abort`, '1');
    } finally {
      if (!hadFusectl) await exec('umount', [connections]);
    }
    expect(await mount.exited(), mount.output()).toBe(0);
    expect(mount.output()).toMatch(/unmounted from outside/);
    expect(await isMountpoint(mount.mountpoint)).toBe(false);
    await expectInBucket(expected, 'abort');
  });

  it('a mount killed with SIGKILL leaves no stuck mountpoint: a new mount there works and has every acknowledged write', async () => {
    const first = await startMount({ bucket: bucket.name, args: NO_BACKGROUND_WRITE_BACK });
    leftovers.push(first.mountpoint);
    const synced = patternBytes(300 * KiB, 41);
    const fh = await fsp.open(path.join(first.mountpoint, 'synced.bin'), 'w');
    await fh.write(synced, 0, synced.length, 0);
    await fh.sync();
    await fh.close();
    await fsp.writeFile(path.join(first.mountpoint, 'acknowledged.txt'), 'not fsynced, but acknowledged');
    await first.crash();
    // The dead mount is still in place, answering ENOTCONN...
    expect(await isMountpoint(first.mountpoint)).toBe(true);
    expect(await errnoOf(fsp.stat(first.mountpoint))).toBe('ENOTCONN');

    // ...and a new mount on the same mountpoint clears it.
    const second = await startMount({
      bucket: bucket.name,
      mountpoint: first.mountpoint,
      dataDir: first.dataDir,
      args: ['--close-delay', '100ms'],
    });
    expect((await fsp.readFile(path.join(second.mountpoint, 'synced.bin'))).equals(synced)).toBe(true);
    expect(await fsp.readFile(path.join(second.mountpoint, 'acknowledged.txt'), 'utf8')).toBe('not fsynced, but acknowledged');
    await fsp.writeFile(path.join(second.mountpoint, 'after.txt'), 'written after the crash');
    expect(await second.stop(), second.output()).toBe(0);
    expect(await isMountpoint(first.mountpoint)).toBe(false);
    expect((await objectBytes(store, 'acknowledged.txt'))?.toString()).toBe('not fsynced, but acknowledged');
    expect((await objectBytes(store, 'after.txt'))?.toString()).toBe('written after the crash');
  });

  it('files deleted while their write-back runs never come back after SIGTERM', async () => {
    const mount = await startMount({ bucket: bucket.name, args: ['--close-delay', '50ms'] });
    const dir = path.join(mount.mountpoint, 'churn');
    await fsp.mkdir(dir);
    for (let i = 0; i < 300; i++) await fsp.writeFile(path.join(dir, `f${i}`), `file ${i}`);
    // Some are in the bucket by now, some are being written, some are still only local.
    await waitUntil('write-back to start', async () => (await listKeys(store, 'churn/f')).length > 20, 30_000);
    for (let i = 0; i < 300; i++) await fsp.unlink(path.join(dir, `f${i}`));
    expect(await mount.stop(), mount.output()).toBe(0);
    expect(await listKeys(store, 'churn/f')).toEqual([]);
    const again = await startMount({ bucket: bucket.name });
    expect(await fsp.readdir(path.join(again.mountpoint, 'churn'))).toEqual([]);
    expect(await again.stop()).toBe(0);
  });
});
