// How a tidefs mount shows a bucket that others write to: objects put with the SDK appear with their
// sizes and bytes; a key that is both a file and a prefix shows as a directory (the documented rule:
// the directory wins); "dir/" marker objects make empty directories; a prefix mount sees and writes
// only under its prefix; and changes made in the bucket behind the mount's back are seen once the
// metadata TTL (plus the kernel's attribute cache, which the mount keeps within it) has passed —
// and not served stale after that.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3ObjectStore } from '../../../src/node/s3/s3-object-store.js';
import { startMount, stopAllMounts, type MountHandle } from '../../support/mount.js';
import { createTestBucket, s3TestStore, type TestBucket } from '../../support/s3.js';
import { errnoOf, listKeys, objectBytes, patternBytes, sleep, waitUntil } from './mount-test-tools.js';

const KiB = 1024;
const TTL_MS = 1000;
const MOUNT_ARGS = ['--metadata-ttl', `${TTL_MS}ms`, '--chunk-size', '256KiB', '--close-delay', '100ms'];

/** A small seeded generator (mulberry32), so a randomized test can be replayed from its seed. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe('a mount over a bucket that others write to', () => {
  let bucket: TestBucket;
  let store: S3ObjectStore;
  let mount: MountHandle;
  const at = (...parts: string[]): string => path.join(mount.mountpoint, ...parts);
  const big = patternBytes(3 * 1024 * KiB + 17, 11);

  beforeAll(async () => {
    bucket = await createTestBucket('mount-view');
    store = s3TestStore(bucket.name);
    const seed: Array<[string, Buffer | string]> = [
      ['ext/small.txt', 'hello from the SDK'],
      ['ext/big.bin', big],
      ['ext/empty', ''],
      ['ext/nested/deep/file', 'deep'],
      ['conflict/a', 'the file a'],
      ['conflict/a/b', 'b under the directory a'],
      ['markers/empty-dir/', ''],
      ['markers/with-marker/', ''],
      ['markers/with-marker/f', 'f'],
      ['ext/random.bin', big],
      ['odd/with space', 'with space'],
      ['odd/plus+sign', 'plus+sign'],
      ['odd/100%', '100%'],
      ['odd/ünïcødé-漢字', 'ünïcødé-漢字'],
      ['odd/bell\u0007', 'bell\u0007'],
      ['ttl/changed', 'version one'],
      ['ttl/resized', 'short'],
      ['ttl/deleted', 'soon gone'],
    ];
    await Promise.all(seed.map(([key, body]) => store.put(key, Buffer.from(body))));
    mount = await startMount({ bucket: bucket.name, args: MOUNT_ARGS });
  });

  afterAll(async () => {
    await stopAllMounts();
    store?.close();
    await bucket?.destroy();
  });

  it('shows objects put by others with their sizes, bytes, default modes and owner', async () => {
    expect((await fsp.readdir(at('ext'))).sort()).toEqual(['big.bin', 'empty', 'nested', 'random.bin', 'small.txt']);
    const small = await fsp.stat(at('ext', 'small.txt'));
    expect(small.isFile()).toBe(true);
    expect(small.size).toBe('hello from the SDK'.length);
    expect(small.mode & 0o7777).toBe(0o644);
    expect([small.uid, small.gid]).toEqual([process.getuid!(), process.getgid!()]);
    const lastModified = (await store.head('ext/small.txt'))!.mtime.getTime();
    expect(Math.abs(small.mtimeMs - lastModified)).toBeLessThan(1000);
    expect(await fsp.readFile(at('ext', 'small.txt'), 'utf8')).toBe('hello from the SDK');
    expect((await fsp.stat(at('ext', 'empty'))).size).toBe(0);
    expect((await fsp.readFile(at('ext', 'empty'))).length).toBe(0);
    const nested = await fsp.stat(at('ext', 'nested'));
    expect(nested.isDirectory()).toBe(true);
    expect(nested.mode & 0o7777).toBe(0o755);
    expect(await fsp.readFile(at('ext', 'nested', 'deep', 'file'), 'utf8')).toBe('deep');
    expect((await fsp.stat(at('ext', 'big.bin'))).size).toBe(big.length);
    expect((await fsp.readFile(at('ext', 'big.bin'))).equals(big)).toBe(true);
  });

  it('shows keys with spaces, unicode, URL-special and control characters under their own names', async () => {
    const names = ['with space', 'plus+sign', '100%', 'ünïcødé-漢字', 'bell\u0007'];
    expect((await fsp.readdir(at('odd'))).sort()).toEqual([...names].sort());
    for (const name of names) expect(await fsp.readFile(at('odd', name), 'utf8'), JSON.stringify(name)).toBe(name);
  });

  it('serves random ranges of an object put by others, across chunk boundaries', async () => {
    const seed = Number(process.env.TIDEFS_TEST_SEED ?? Date.now() % 2 ** 31);
    const random = seededRandom(seed);
    // Nothing has read ext/random.bin yet, so no range of it is cached.
    const fh = await fsp.open(at('ext', 'random.bin'), 'r');
    try {
      for (let i = 0; i < 40; i++) {
        const offset = Math.floor(random() * (big.length + 1000));
        const length = 1 + Math.floor(random() * 600 * KiB);
        const buf = Buffer.alloc(length);
        const { bytesRead } = await fh.read(buf, 0, length, offset);
        const expected = big.subarray(offset, offset + length);
        expect(bytesRead, `read ${i} (${length} at ${offset}), replay with TIDEFS_TEST_SEED=${seed}`).toBe(expected.length);
        expect(buf.subarray(0, bytesRead).equals(expected), `read ${i} (${length} at ${offset}), replay with TIDEFS_TEST_SEED=${seed}`).toBe(true);
      }
    } finally {
      await fh.close();
    }
  });

  it('a key that is both a file and a prefix shows as the directory (the directory wins)', async () => {
    expect(await fsp.readdir(at('conflict'))).toEqual(['a']);
    expect((await fsp.stat(at('conflict', 'a'))).isDirectory()).toBe(true);
    expect(await fsp.readdir(at('conflict', 'a'))).toEqual(['b']);
    expect(await fsp.readFile(at('conflict', 'a', 'b'), 'utf8')).toBe('b under the directory a');
    expect(await errnoOf(fsp.readFile(at('conflict', 'a')))).toBe('EISDIR');
    await fsp.writeFile(at('conflict', 'a', 'c'), 'written through the mount');
    await waitUntil('conflict/a/c is in the bucket', async () => (await objectBytes(store, 'conflict/a/c'))?.toString() === 'written through the mount');
    // The shadowed file object is left alone.
    expect((await objectBytes(store, 'conflict/a'))?.toString()).toBe('the file a');
  });

  it('"dir/" marker objects are directories, empty ones included; rmdir removes the marker', async () => {
    expect((await fsp.readdir(at('markers'))).sort()).toEqual(['empty-dir', 'with-marker']);
    expect((await fsp.stat(at('markers', 'empty-dir'))).isDirectory()).toBe(true);
    expect(await fsp.readdir(at('markers', 'empty-dir'))).toEqual([]);
    expect(await fsp.readdir(at('markers', 'with-marker'))).toEqual(['f']);
    await fsp.rmdir(at('markers', 'empty-dir'));
    await waitUntil('the marker markers/empty-dir/ is deleted', async () => (await store.head('markers/empty-dir/')) === undefined);
    expect(await fsp.readdir(at('markers'))).toEqual(['with-marker']);
  });

  it('sees objects changed, deleted and added in the bucket once the metadata TTL has passed, and not stale after it', async () => {
    expect((await fsp.readdir(at('ttl'))).sort()).toEqual(['changed', 'deleted', 'resized']);
    // Look at everything once, so the mount and the kernel have it cached. (A bare stat for one: a
    // read makes the kernel ask for attributes again anyway, to update atime.)
    expect(await fsp.readFile(at('ttl', 'changed'), 'utf8')).toBe('version one');
    expect(await fsp.readFile(at('ttl', 'deleted'), 'utf8')).toBe('soon gone');
    expect((await fsp.stat(at('ttl', 'resized'))).size).toBe('short'.length);
    expect(await errnoOf(fsp.stat(at('ttl', 'added')))).toBe('ENOENT');

    // Change the bucket right after the mount listed the directory afresh.
    await sleep(TTL_MS + 100);
    expect((await fsp.readdir(at('ttl'))).length).toBe(3);
    // Same size, other bytes: only the ETag tells the change.
    await store.put('ttl/changed', Buffer.from('version TWO'));
    await store.put('ttl/resized', Buffer.from('a good deal longer than before'));
    await store.delete('ttl/deleted');
    await store.put('ttl/added', Buffer.from('new here'));
    const changedAt = Date.now();

    // Within the TTL the mount may still show the old state, and the kernel may cache what it shows...
    await sleep(TTL_MS * 0.8);
    expect(['short'.length, 'a good deal longer than before'.length]).toContain((await fsp.stat(at('ttl', 'resized'))).size);
    // ...but the first look after the TTL must see the bucket as it is.
    await sleep(changedAt + TTL_MS + 100 - Date.now());
    expect((await fsp.stat(at('ttl', 'resized'))).size).toBe('a good deal longer than before'.length);
    expect((await fsp.readdir(at('ttl'))).sort()).toEqual(['added', 'changed', 'resized']);
    expect(await errnoOf(fsp.stat(at('ttl', 'deleted')))).toBe('ENOENT');
    expect(await fsp.readFile(at('ttl', 'resized'), 'utf8')).toBe('a good deal longer than before');
    expect(await fsp.readFile(at('ttl', 'changed'), 'utf8')).toBe('version TWO');
    expect(await fsp.readFile(at('ttl', 'added'), 'utf8')).toBe('new here');

    // Replaced within the same second with as many bytes: the listing's time and size look the same,
    // so only the ETag can tell; the kernel must not keep serving the old bytes from its page cache.
    expect(await fsp.readdir(at('ttl'))).toContain('changed');
    await sleep(TTL_MS + 100);
    while (Date.now() % 1000 > 100) await sleep(10);
    await store.put('ttl/same-second', Buffer.from('first bytes'));
    expect(await fsp.readFile(at('ttl', 'same-second'), 'utf8')).toBe('first bytes');
    await store.put('ttl/same-second', Buffer.from('other bytes'));
    await sleep(TTL_MS + 100);
    expect(await fsp.readFile(at('ttl', 'same-second'), 'utf8')).toBe('other bytes');

    // A file read through the mount, then deleted in the bucket: its name goes away too.
    await store.delete('ttl/added');
    await sleep(TTL_MS + 100);
    expect(await errnoOf(fsp.readFile(at('ttl', 'added')))).toBe('ENOENT');
  });
});

describe('a mount whose readers find an object replaced or deleted in the bucket', () => {
  // The default TTL: the kernel keeps a name (and does not ask for it again) while its directory's
  // listing is current, here for up to 30 s. A read that finds the object changed or gone must
  // therefore refresh the directory itself, or the file stays broken (EIO) until the TTL runs out.
  let bucket: TestBucket;
  let store: S3ObjectStore;
  let mount: MountHandle;
  const at = (...parts: string[]): string => path.join(mount.mountpoint, ...parts);
  const before = patternBytes(1024 * KiB, 21);
  const after = patternBytes(1024 * KiB, 22);
  /** Well inside the 30 s TTL. */
  const SOON_MS = 5_000;

  beforeAll(async () => {
    bucket = await createTestBucket('mount-vanish');
    store = s3TestStore(bucket.name);
    await Promise.all(['live/replaced.bin', 'live/deleted.bin'].map((key) => store.put(key, before)));
    mount = await startMount({ bucket: bucket.name, args: ['--metadata-ttl', '30s', '--chunk-size', '256KiB', '--read-ahead', '0'] });
  });

  afterAll(async () => {
    await stopAllMounts();
    store?.close();
    await bucket?.destroy();
  });

  /** Opens the file, reads its head, lets `change` act on the bucket, then reads a chunk not fetched yet. */
  async function readAcross(name: string, change: () => Promise<unknown>): Promise<string> {
    const handle = await fsp.open(at('live', name));
    try {
      const head = Buffer.alloc(100);
      await handle.read(head, 0, head.length, 0);
      expect(head.equals(before.subarray(0, 100))).toBe(true);
      await change();
      return await errnoOf(handle.read(Buffer.alloc(100), 0, 100, 3 * 256 * KiB));
    } finally {
      await handle.close();
    }
  }

  it('fails the read that finds the object replaced, and shows the new object soon after', async () => {
    expect(await readAcross('replaced.bin', () => store.put('live/replaced.bin', after))).toBe('EIO');
    const shows = async (): Promise<boolean> => (await fsp.readFile(at('live', 'replaced.bin')).catch(() => undefined))?.equals(after) ?? false;
    await waitUntil('the new object through the mount', shows, SOON_MS);
  });

  it('fails the read that finds the object deleted, and the file is gone soon after', async () => {
    expect(await readAcross('deleted.bin', () => store.delete('live/deleted.bin'))).toBe('EIO');
    const gone = (): Promise<boolean> => fsp.stat(at('live', 'deleted.bin')).then(
      () => false,
      (err: NodeJS.ErrnoException) => err.code === 'ENOENT',
    );
    await waitUntil('the deleted file gone from the mount', gone, SOON_MS);
    expect(await fsp.readdir(at('live'))).not.toContain('deleted.bin');
  });
});

describe('a prefix mount (s3://bucket/some/prefix)', () => {
  let bucket: TestBucket;
  let store: S3ObjectStore;
  let mount: MountHandle;
  const at = (...parts: string[]): string => path.join(mount.mountpoint, ...parts);
  const outside = ['pfx/innerX', 'pfx/other.txt', 'top.txt', 'pfx/inner-sibling/x'];

  beforeAll(async () => {
    bucket = await createTestBucket('mount-prefix');
    store = s3TestStore(bucket.name);
    const seed = ['pfx/inner/a.txt', 'pfx/inner/sub/b.txt', ...outside];
    await Promise.all(seed.map((key) => store.put(key, Buffer.from(`body of ${key}`))));
    mount = await startMount({ bucket: bucket.name, prefix: 'pfx/inner', args: MOUNT_ARGS });
  });

  afterAll(async () => {
    await stopAllMounts();
    store?.close();
    await bucket?.destroy();
  });

  it('sees only its prefix, and everything it writes, renames and deletes stays under it', async () => {
    expect((await fsp.readdir(mount.mountpoint)).sort()).toEqual(['a.txt', 'sub']);
    expect(await fsp.readFile(at('a.txt'), 'utf8')).toBe('body of pfx/inner/a.txt');
    expect(await fsp.readFile(at('sub', 'b.txt'), 'utf8')).toBe('body of pfx/inner/sub/b.txt');

    await fsp.writeFile(at('new.txt'), 'written under the prefix');
    await fsp.mkdir(at('nd'));
    await fsp.rename(at('sub', 'b.txt'), at('nd', 'moved.txt'));
    await fsp.unlink(at('a.txt'));
    await fsp.chmod(mount.mountpoint, 0o750);

    const expected = ['pfx/inner/', 'pfx/inner/nd/', 'pfx/inner/nd/moved.txt', 'pfx/inner/new.txt', 'pfx/inner/sub/'];
    let keys: string[] = [];
    await waitUntil(
      () => `the bucket holds ${JSON.stringify(expected)} under the prefix (it holds ${JSON.stringify(keys)})`,
      async () => {
        keys = (await listKeys(store)).filter((k) => !outside.includes(k));
        return JSON.stringify(keys) === JSON.stringify(expected);
      },
    );
    expect((await objectBytes(store, 'pfx/inner/new.txt'))?.toString()).toBe('written under the prefix');
    expect((await objectBytes(store, 'pfx/inner/nd/moved.txt'))?.toString()).toBe('body of pfx/inner/sub/b.txt');
    expect(Number((await store.head('pfx/inner/'))?.metadata?.mode) & 0o7777).toBe(0o750);
    for (const key of outside) expect((await objectBytes(store, key))?.toString(), key).toBe(`body of ${key}`);
  });
});

describe('a mount with --metadata-ttl 0', () => {
  let bucket: TestBucket;
  let store: S3ObjectStore;
  let mount: MountHandle;
  const at = (...parts: string[]): string => path.join(mount.mountpoint, ...parts);

  beforeAll(async () => {
    bucket = await createTestBucket('mount-ttl0');
    store = s3TestStore(bucket.name);
    mount = await startMount({ bucket: bucket.name, args: ['--metadata-ttl', '0'] });
  });

  afterAll(async () => {
    await stopAllMounts();
    store?.close();
    await bucket?.destroy();
  });

  it('sees every change in the bucket at once: neither it nor the kernel caches what the bucket holds', async () => {
    // Only stat between the changes: a read would make the kernel refresh the attributes anyway (atime).
    expect(await errnoOf(fsp.stat(at('now.txt')))).toBe('ENOENT');
    await store.put('now.txt', Buffer.from('one'));
    expect((await fsp.stat(at('now.txt'))).size).toBe(3);
    await store.put('now.txt', Buffer.from('two, and longer'));
    expect((await fsp.stat(at('now.txt'))).size).toBe('two, and longer'.length);
    await store.delete('now.txt');
    expect(await errnoOf(fsp.stat(at('now.txt')))).toBe('ENOENT');
    await store.put('now.txt', Buffer.from('three'));
    expect(await fsp.readFile(at('now.txt'), 'utf8')).toBe('three');
    await store.delete('now.txt');
    expect(await errnoOf(fsp.stat(at('now.txt')))).toBe('ENOENT');
    expect(await fsp.readdir(mount.mountpoint)).toEqual([]);
  });
});
