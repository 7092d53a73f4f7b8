// Every filesystem operation of a real tidefs mount, through the kernel (FUSE) against the local S3:
// what each one does, the errno of each way it can fail, and what reaches the bucket once the change
// is written back (fsync, or the close delay). The last test stops the mount and mounts the bucket
// again with an empty data directory: symlinks, modes, owners, times and xattrs must come back from
// the bucket alone. Only async fs calls and child processes touch the mount.
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3ObjectStore } from '../../../src/node/s3/s3-object-store.js';
import { startMount, stopAllMounts, type MountHandle } from '../../support/mount.js';
import { createTestBucket, s3TestStore, type TestBucket } from '../../support/s3.js';
import { errnoOf, listKeys, mountDevice, objectBytes, patternBytes, runPython, sleep, waitUntil, xattr } from './mount-test-tools.js';

const exec = promisify(execFile);
/** Small chunks so that modest files span several; a short close delay so closed files reach the bucket quickly. */
const MOUNT_ARGS = ['--chunk-size', '256KiB', '--close-delay', '100ms'];
const KiB = 1024;
/** The kernel's attribute cache lifetime: min(1 s, half the metadata TTL) (src/cli/mount-command.ts). */
const ATTR_TIMEOUT_MS = 1000;

describe('a tidefs mount, operation by operation', () => {
  let bucket: TestBucket;
  let store: S3ObjectStore;
  let mount: MountHandle;
  const at = (...parts: string[]): string => path.join(mount.mountpoint, ...parts);
  const inBucket = async (key: string, expected: Buffer): Promise<boolean> => (await objectBytes(store, key))?.equals(expected) ?? false;
  const absent = async (key: string): Promise<boolean> => (await store.head(key)) === undefined;

  beforeAll(async () => {
    bucket = await createTestBucket('mount-ops');
    store = s3TestStore(bucket.name);
    mount = await startMount({ bucket: bucket.name, args: MOUNT_ARGS });
  });

  afterAll(async () => {
    await stopAllMounts();
    store?.close();
    await bucket?.destroy();
  });

  it('getattr / lookup: kinds, sizes, owners, link counts, times; ENOENT and ENOTDIR', async () => {
    const root = await fsp.stat(mount.mountpoint);
    expect(root.isDirectory()).toBe(true);
    expect(root.mode & 0o7777).toBe(0o755);

    const before = Date.now();
    await fsp.writeFile(at('ga.txt'), 'hello');
    const st = await fsp.stat(at('ga.txt'));
    expect(st.isFile()).toBe(true);
    expect(st.size).toBe(5);
    expect(st.nlink).toBe(1);
    expect(st.uid).toBe(process.getuid!());
    expect(st.gid).toBe(process.getgid!());
    expect(st.mtimeMs).toBeGreaterThanOrEqual(before - 1000);
    expect(st.mtimeMs).toBeLessThanOrEqual(Date.now() + 1000);

    await fsp.mkdir(at('gd'));
    expect((await fsp.stat(at('gd'))).nlink).toBe(2);
    await fsp.mkdir(at('gd', 'sub'));
    expect((await fsp.stat(at('gd'))).nlink).toBe(3);
    expect((await fsp.stat(at('gd', 'sub'))).isDirectory()).toBe(true);

    expect(await errnoOf(fsp.stat(at('no-such-file')))).toBe('ENOENT');
    expect(await errnoOf(fsp.stat(at('gd', 'no-such', 'deeper')))).toBe('ENOENT');
    expect(await errnoOf(fsp.stat(at('ga.txt', 'x')))).toBe('ENOTDIR');
  });

  it('readdir lists exactly the entries with their kinds; ENOTDIR on a file, ENOENT on a missing directory', async () => {
    await fsp.mkdir(at('rd'));
    expect(await fsp.readdir(at('rd'))).toEqual([]);
    for (const name of ['c', 'a', 'b']) await fsp.writeFile(at('rd', name), name);
    await fsp.mkdir(at('rd', 'd'));
    await fsp.symlink('a', at('rd', 'l'));
    const entries = await fsp.readdir(at('rd'), { withFileTypes: true });
    const kinds = Object.fromEntries(
      entries.map((e) => [e.name, e.isFile() ? 'file' : e.isDirectory() ? 'dir' : e.isSymbolicLink() ? 'symlink' : 'other']),
    );
    expect(kinds).toEqual({ a: 'file', b: 'file', c: 'file', d: 'dir', l: 'symlink' });
    expect(await errnoOf(fsp.readdir(at('rd', 'a')))).toBe('ENOTDIR');
    expect(await errnoOf(fsp.readdir(at('no-such-dir')))).toBe('ENOENT');

    // Through one open directory descriptor (getdents64 and lseek, as readdir(3) and rewinddir(3)
    // use them): a seek past the end reads nothing, and a rewind sees entries created since.
    const script = `
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def names(fd):
    out, buf = [], ctypes.create_string_buffer(4096)
    while True:
        n = libc.syscall(217, fd, buf, 4096)  # getdents64
        if n < 0: raise OSError(ctypes.get_errno(), 'getdents64')
        if n == 0: return out
        pos = 0
        while pos < n:
            reclen = int.from_bytes(buf.raw[pos + 16:pos + 18], 'little')
            out.append(buf.raw[pos + 19:pos + reclen].split(b'\\0', 1)[0].decode())
            pos += reclen
d = sys.argv[1]
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
first = names(fd)
os.lseek(fd, 1000, os.SEEK_SET)
past_end = names(fd)
open(os.path.join(d, 'new-since'), 'w').close()
os.lseek(fd, 0, os.SEEK_SET)
rewound = names(fd)
os.close(fd)
print(json.dumps({'first': sorted(first), 'pastEnd': past_end, 'rewound': sorted(rewound)}))
`;
    const seen = JSON.parse(await runPython(script, [at('rd')])) as Record<string, string[]>;
    expect(seen).toEqual({
      first: ['.', '..', 'a', 'b', 'c', 'd', 'l'],
      pastEnd: [],
      rewound: ['.', '..', 'a', 'b', 'c', 'd', 'l', 'new-since'],
    });
  });

  it('create, open, write and read at any offset, across chunks and holes; EEXIST, ENOENT, ENOTDIR, EISDIR', async () => {
    const file = at('io.bin');
    const model = Buffer.alloc(1_000_000 + 300 * KiB);
    const first = patternBytes(300 * KiB, 1);
    const second = patternBytes(300 * KiB, 2);
    const fh = await fsp.open(file, 'wx+');
    try {
      await fh.write(first, 0, first.length, 0);
      await fh.write(second, 0, second.length, 1_000_000);
      first.copy(model, 0);
      second.copy(model, 1_000_000);
      // An overwrite that straddles a chunk boundary (256 KiB).
      const patch = patternBytes(10 * KiB, 3);
      await fh.write(patch, 0, patch.length, 256 * KiB - 5 * KiB);
      patch.copy(model, 256 * KiB - 5 * KiB);
      for (const [offset, length] of [[0, 10], [256 * KiB - 6 * KiB, 12 * KiB], [500_000, 1000], [999_990, 20], [model.length - 7, 100]] as const) {
        const buf = Buffer.alloc(length);
        const { bytesRead } = await fh.read(buf, 0, length, offset);
        const expected = model.subarray(offset, offset + length);
        expect(bytesRead, `bytes read at ${offset}`).toBe(expected.length);
        expect(buf.subarray(0, bytesRead).equals(expected), `bytes at ${offset}`).toBe(true);
      }
    } finally {
      await fh.close();
    }
    expect((await fsp.readFile(file)).equals(model)).toBe(true);
    expect((await fsp.stat(file)).size).toBe(model.length);

    await fsp.appendFile(file, 'tail');
    expect((await fsp.readFile(file)).subarray(-4).toString()).toBe('tail');

    expect(await errnoOf(fsp.open(file, 'wx'))).toBe('EEXIST');
    expect(await errnoOf(fsp.open(at('missing.bin'), 'r'))).toBe('ENOENT');
    expect(await errnoOf(fsp.open(at('no-dir', 'x'), 'w'))).toBe('ENOENT');
    expect(await errnoOf(fsp.open(at('io.bin', 'x'), 'w'))).toBe('ENOTDIR');
    await fsp.mkdir(at('io-dir'));
    expect(await errnoOf(fsp.open(at('io-dir'), 'w'))).toBe('EISDIR');
    expect(await errnoOf(fsp.readFile(at('io-dir')))).toBe('EISDIR');
  });

  it('fsync returns only once the bucket holds the file byte for byte (multipart-sized too)', async () => {
    const file = at('fsync.bin');
    // Larger than a 5 MiB part: written back as a multipart upload.
    const data = patternBytes(6 * 1024 * KiB + 123, 4);
    const fh = await fsp.open(file, 'w');
    try {
      await fh.write(data, 0, data.length, 0);
      // Still open and freshly written: nothing but fsync writes it back this soon.
      expect(await store.head('fsync.bin')).toBeUndefined();
      await fh.sync();
      expect((await objectBytes(store, 'fsync.bin'))?.equals(data)).toBe(true);

      const patch = Buffer.from('overwritten by the second write');
      await fh.write(patch, 0, patch.length, 3 * 1024 * KiB);
      patch.copy(data, 3 * 1024 * KiB);
      await fh.datasync();
      expect((await objectBytes(store, 'fsync.bin'))?.equals(data)).toBe(true);

      const small = Buffer.from('small');
      await fh.truncate(0);
      await fh.write(small, 0, small.length, 0);
      await fh.sync();
      expect((await objectBytes(store, 'fsync.bin'))?.equals(small)).toBe(true);
    } finally {
      await fh.close();
    }
  });

  it('flush and release: a closed file reaches the bucket after the close delay and reads back from a new open', async () => {
    const data = patternBytes(700 * KiB, 5);
    await fsp.writeFile(at('closed.bin'), data);
    expect((await fsp.readFile(at('closed.bin'))).equals(data)).toBe(true);
    await waitUntil('closed.bin is in the bucket', () => inBucket('closed.bin', data));
    const meta = (await store.head('closed.bin'))?.metadata ?? {};
    expect(Number(meta.mode)).toBe((await fsp.stat(at('closed.bin'))).mode);
  });

  it('open keeps the kernel page cache of a file seen unchanged since its last open, and drops it once the file changed', async () => {
    // fincore(1) opens the file itself and counts its pages in the page cache: they survive that
    // open only if the mount let the kernel keep them.
    const resident = async (file: string): Promise<number> =>
      Number((await exec('fincore', ['--bytes', '--noheadings', '--output', 'RES', file])).stdout.trim());
    const file = at('cached.bin');
    const data = patternBytes(512 * KiB, 11);
    await fsp.writeFile(file, data);
    expect((await fsp.readFile(file)).equals(data)).toBe(true);
    expect((await fsp.readFile(file)).equals(data)).toBe(true);
    expect(await resident(file)).toBe(data.length);
    expect(await resident(file)).toBe(data.length);

    await fsp.appendFile(file, 'more');
    expect((await fsp.stat(file)).size).toBe(data.length + 4);
    expect(await resident(file)).toBe(0);
  });

  it('the kernel reads ahead 4 MiB on the mount (its default for a new FUSE mount is 128 KiB)', async () => {
    const device = await mountDevice(mount.mountpoint);
    expect(device).toMatch(/^\d+:\d+$/);
    expect((await fsp.readFile(`/sys/class/bdi/${device}/read_ahead_kb`, 'utf8')).trim()).toBe('4096');
  });

  it('truncate and ftruncate shrink and grow; grown regions read zeros, also over data already in the bucket', async () => {
    const file = at('trunc.bin');
    const data = patternBytes(600 * KiB, 6);
    await fsp.writeFile(file, data);
    const fh = await fsp.open(file, 'r+');
    try {
      // Make the bucket the source of the file's bytes, then cut and extend it.
      await fh.sync();
      expect((await objectBytes(store, 'trunc.bin'))?.equals(data)).toBe(true);
      await fsp.truncate(file, 100 * KiB);
      expect((await fsp.stat(file)).size).toBe(100 * KiB);
      await fsp.truncate(file, 700 * KiB);
      let model = Buffer.concat([data.subarray(0, 100 * KiB), Buffer.alloc(600 * KiB)]);
      expect((await fsp.readFile(file)).equals(model), 'grown region after truncate reads zeros').toBe(true);

      await fh.truncate(10);
      await fh.truncate(300 * KiB);
      const tail = Buffer.from('end');
      await fh.write(tail, 0, tail.length, 400 * KiB);
      model = Buffer.concat([data.subarray(0, 10), Buffer.alloc(400 * KiB - 10), tail]);
      const got = Buffer.alloc(model.length + 10);
      const { bytesRead } = await fh.read(got, 0, got.length, 0);
      expect(bytesRead).toBe(model.length);
      expect(got.subarray(0, bytesRead).equals(model), 'ftruncate: hole and extension read zeros').toBe(true);
      await fh.sync();
      expect((await objectBytes(store, 'trunc.bin'))?.equals(model), 'the bucket holds the truncated file').toBe(true);
    } finally {
      await fh.close();
    }

    // A sparse file: only a hole and one byte at its end.
    const sparse = await fsp.open(at('sparse.bin'), 'w');
    await sparse.truncate(2 * 1024 * KiB);
    await sparse.write(Buffer.from('x'), 0, 1, 2 * 1024 * KiB - 1);
    await sparse.close();
    const sparseData = await fsp.readFile(at('sparse.bin'));
    expect(sparseData.length).toBe(2 * 1024 * KiB);
    expect(sparseData.subarray(0, -1).every((b) => b === 0)).toBe(true);
    expect(sparseData.at(-1)).toBe('x'.charCodeAt(0));

    await fsp.mkdir(at('trunc-dir'));
    expect(await errnoOf(fsp.truncate(at('trunc-dir'), 0))).toBe('EISDIR');
    expect(await errnoOf(fsp.truncate(at('trunc-missing'), 0))).toBe('ENOENT');
  });

  it('mkdir and rmdir, with their markers in the bucket; EEXIST, ENOENT, ENOTDIR, ENOTEMPTY', async () => {
    await fsp.mkdir(at('md'));
    await fsp.mkdir(at('md', 'empty'));
    await fsp.writeFile(at('md', 'file'), 'f');
    expect(await errnoOf(fsp.mkdir(at('md')))).toBe('EEXIST');
    expect(await errnoOf(fsp.mkdir(at('md', 'file')))).toBe('EEXIST');
    expect(await errnoOf(fsp.mkdir(at('md', 'nope', 'x')))).toBe('ENOENT');
    expect(await errnoOf(fsp.mkdir(at('md', 'file', 'x')))).toBe('ENOTDIR');
    await waitUntil('the marker of md/empty/ is in the bucket', async () => !(await absent('md/empty/')));

    expect(await errnoOf(fsp.rmdir(at('md')))).toBe('ENOTEMPTY');
    expect(await errnoOf(fsp.rmdir(at('md', 'file')))).toBe('ENOTDIR');
    expect(await errnoOf(fsp.rmdir(at('md', 'nope')))).toBe('ENOENT');
    await fsp.rmdir(at('md', 'empty'));
    expect(await errnoOf(fsp.stat(at('md', 'empty')))).toBe('ENOENT');
    expect(await fsp.readdir(at('md'))).toEqual(['file']);
    await waitUntil('the marker of md/empty/ is gone from the bucket', () => absent('md/empty/'));
  });

  it('unlink removes the file and its object; ENOENT, EISDIR; an open unlinked file stays usable and never reaches the bucket', async () => {
    await fsp.writeFile(at('ul.txt'), 'to be removed');
    await waitUntil('ul.txt is in the bucket', () => inBucket('ul.txt', Buffer.from('to be removed')));
    await fsp.unlink(at('ul.txt'));
    expect(await errnoOf(fsp.stat(at('ul.txt')))).toBe('ENOENT');
    await waitUntil('ul.txt is gone from the bucket', () => absent('ul.txt'));

    expect(await errnoOf(fsp.unlink(at('ul.txt')))).toBe('ENOENT');
    await fsp.mkdir(at('ul-dir'));
    expect(await errnoOf(fsp.unlink(at('ul-dir')))).toBe('EISDIR');

    await fsp.mkdir(at('orphan'));
    const fh = await fsp.open(at('orphan', 'open.txt'), 'w+');
    try {
      await fh.write('written before unlink');
      await fsp.unlink(at('orphan', 'open.txt'));
      expect(await fsp.readdir(at('orphan'))).toEqual([]);
      await fh.write(' and after');
      const buf = Buffer.alloc(64);
      const { bytesRead } = await fh.read(buf, 0, 64, 0);
      expect(buf.subarray(0, bytesRead).toString()).toBe('written before unlink and after');
    } finally {
      await fh.close();
    }
    // Give write-back every chance to (wrongly) write the orphan somewhere.
    await sleep(1500);
    await waitUntil('the marker orphan/ is in the bucket', async () => !(await absent('orphan/')));
    expect(await listKeys(store, 'orphan/')).toEqual(['orphan/']);
  });

  it('rename moves files and directories, replacing targets as POSIX says; the bucket gets the new keys and loses the old', async () => {
    await fsp.mkdir(at('rn'));
    await fsp.writeFile(at('rn', 'a'), 'content of a');
    await fsp.writeFile(at('rn', 'c'), 'content of c');
    await fsp.mkdir(at('rn', 'd1', 'sub'), { recursive: true });
    await fsp.writeFile(at('rn', 'd1', 'f1'), 'f1');
    await fsp.writeFile(at('rn', 'd1', 'sub', 'f2'), 'f2');
    await fsp.mkdir(at('rn', 'empty'));
    await fsp.mkdir(at('rn', 'full'));
    await fsp.writeFile(at('rn', 'full', 'x'), 'x');
    // Let everything reach the bucket first, so renames have objects to move.
    await waitUntil('rn/d1/sub/f2 is in the bucket', () => inBucket('rn/d1/sub/f2', Buffer.from('f2')));
    await waitUntil('rn/c is in the bucket', () => inBucket('rn/c', Buffer.from('content of c')));

    await fsp.rename(at('rn', 'a'), at('rn', 'b'));
    expect(await fsp.readFile(at('rn', 'b'), 'utf8')).toBe('content of a');
    expect(await errnoOf(fsp.stat(at('rn', 'a')))).toBe('ENOENT');
    // Replacing an existing file.
    await fsp.rename(at('rn', 'c'), at('rn', 'b'));
    expect(await fsp.readFile(at('rn', 'b'), 'utf8')).toBe('content of c');
    expect(await errnoOf(fsp.stat(at('rn', 'c')))).toBe('ENOENT');
    // A directory with a subtree, then over an empty directory.
    await fsp.rename(at('rn', 'd1'), at('rn', 'd2'));
    expect(await fsp.readFile(at('rn', 'd2', 'sub', 'f2'), 'utf8')).toBe('f2');
    await fsp.rename(at('rn', 'd2'), at('rn', 'empty'));
    expect((await fsp.readdir(at('rn', 'empty'))).sort()).toEqual(['f1', 'sub']);
    expect((await fsp.readdir(at('rn'))).sort()).toEqual(['b', 'empty', 'full']);

    expect(await errnoOf(fsp.rename(at('rn', 'b'), at('rn', 'empty')))).toBe('EISDIR');
    expect(await errnoOf(fsp.rename(at('rn', 'empty'), at('rn', 'b')))).toBe('ENOTDIR');
    expect(await errnoOf(fsp.rename(at('rn', 'empty'), at('rn', 'full')))).toBe('ENOTEMPTY');
    expect(await errnoOf(fsp.rename(at('rn', 'empty'), at('rn', 'empty', 'sub', 'inside')))).toBe('EINVAL');
    expect(await errnoOf(fsp.rename(at('rn', 'missing'), at('rn', 'z')))).toBe('ENOENT');
    expect(await errnoOf(fsp.rename(at('rn', 'b'), at('rn', 'no-dir', 'z')))).toBe('ENOENT');
    expect(await errnoOf(fsp.rename(at('rn', 'b'), at('rn', 'b', 'z')))).toBe('ENOTDIR');

    const expected: Record<string, string> = {
      'rn/': '',
      'rn/b': 'content of c',
      'rn/empty/': '',
      'rn/empty/f1': 'f1',
      'rn/empty/sub/': '',
      'rn/empty/sub/f2': 'f2',
      'rn/full/': '',
      'rn/full/x': 'x',
    };
    await waitUntil('the bucket holds exactly the renamed tree', async () => {
      const keys = await listKeys(store, 'rn/');
      return JSON.stringify(keys) === JSON.stringify(Object.keys(expected).sort());
    });
    for (const [key, body] of Object.entries(expected)) {
      expect((await objectBytes(store, key))?.toString(), key).toBe(body);
    }

    // A file replaced by a rename while it is open stays usable through its descriptor (the
    // "write a new version, then mv it over the old one" pattern), as on a local disk.
    await fsp.mkdir(at('rn-open'));
    await fsp.writeFile(at('rn-open', 'model.bin'), 'old content');
    await fsp.writeFile(at('rn-open', 'model.bin.new'), 'new content');
    const held = await fsp.open(at('rn-open', 'model.bin'), 'r+');
    try {
      await fsp.rename(at('rn-open', 'model.bin.new'), at('rn-open', 'model.bin'));
      expect(await fsp.readFile(at('rn-open', 'model.bin'), 'utf8')).toBe('new content');
      await held.write(' and more', 11);
      const buf = Buffer.alloc(64);
      const { bytesRead } = await held.read(buf, 0, 64, 0);
      expect(buf.subarray(0, bytesRead).toString()).toBe('old content and more');
    } finally {
      await held.close();
    }
    expect(await fsp.readdir(at('rn-open'))).toEqual(['model.bin']);
    await waitUntil('the bucket holds only the new version', async () => (await objectBytes(store, 'rn-open/model.bin'))?.toString() === 'new content');
    await sleep(500);
    // (The directory's marker may come and go; no other key may appear.)
    expect((await listKeys(store, 'rn-open/')).filter((key) => key !== 'rn-open/')).toEqual(['rn-open/model.bin']);
  });

  it('link: a hard link shares data while mounted; both names reach the bucket; EEXIST, ENOENT, EPERM', async () => {
    await fsp.mkdir(at('hl'));
    await fsp.writeFile(at('hl', 'a'), 'shared');
    await fsp.link(at('hl', 'a'), at('hl', 'b'));
    const [sa, sb] = await Promise.all([fsp.stat(at('hl', 'a')), fsp.stat(at('hl', 'b'))]);
    expect(sa.nlink).toBe(2);
    expect(sb.nlink).toBe(2);
    expect(sb.ino).toBe(sa.ino);
    await fsp.appendFile(at('hl', 'b'), ' data');
    expect(await fsp.readFile(at('hl', 'b'), 'utf8')).toBe('shared data');
    // The kernel caches attributes per name (libfuse's high-level API): the other name sees the
    // new size once its cached attributes expire (the mount's attribute timeout, 1 s here).
    await sleep(ATTR_TIMEOUT_MS + 100);
    expect(await fsp.readFile(at('hl', 'a'), 'utf8')).toBe('shared data');
    const overwrite = await fsp.open(at('hl', 'a'), 'r+');
    await overwrite.write('SHARED', 0);
    await overwrite.close();
    await sleep(ATTR_TIMEOUT_MS + 100);
    expect(await fsp.readFile(at('hl', 'b'), 'utf8')).toBe('SHARED data');
    await waitUntil('both links are in the bucket', async () =>
      (await inBucket('hl/a', Buffer.from('SHARED data'))) && (await inBucket('hl/b', Buffer.from('SHARED data'))),
    );
    await fsp.unlink(at('hl', 'a'));
    expect((await fsp.stat(at('hl', 'b'))).nlink).toBe(1);
    expect(await fsp.readFile(at('hl', 'b'), 'utf8')).toBe('SHARED data');
    await waitUntil('the unlinked name is gone from the bucket', () => absent('hl/a'));
    expect(await inBucket('hl/b', Buffer.from('SHARED data'))).toBe(true);

    // Renaming a name onto another link of the same file does nothing (POSIX).
    await fsp.link(at('hl', 'b'), at('hl', 'b2'));
    await fsp.rename(at('hl', 'b'), at('hl', 'b2'));
    expect((await fsp.readdir(at('hl'))).sort()).toEqual(['b', 'b2']);
    expect((await fsp.stat(at('hl', 'b'))).nlink).toBe(2);
    expect(await fsp.readFile(at('hl', 'b2'), 'utf8')).toBe('SHARED data');

    await fsp.writeFile(at('hl', 'c'), 'c');
    expect(await errnoOf(fsp.link(at('hl', 'b'), at('hl', 'c')))).toBe('EEXIST');
    expect(await errnoOf(fsp.link(at('hl', 'missing'), at('hl', 'd')))).toBe('ENOENT');
    expect(await errnoOf(fsp.link(at('hl'), at('hl-dir-link')))).toBe('EPERM');
  });

  it('symlink and readlink; EEXIST; readlink of a regular file is EINVAL', async () => {
    await fsp.mkdir(at('sl'));
    await fsp.writeFile(at('sl', 'target.txt'), 'through the link');
    await fsp.symlink('target.txt', at('sl', 'link'));
    expect(await fsp.readlink(at('sl', 'link'))).toBe('target.txt');
    const lst = await fsp.lstat(at('sl', 'link'));
    expect(lst.isSymbolicLink()).toBe(true);
    expect(lst.size).toBe('target.txt'.length);
    expect(await fsp.readFile(at('sl', 'link'), 'utf8')).toBe('through the link');
    await fsp.symlink('/nowhere/at/all', at('sl', 'dangling'));
    expect(await errnoOf(fsp.stat(at('sl', 'dangling')))).toBe('ENOENT');
    expect(await errnoOf(fsp.symlink('x', at('sl', 'link')))).toBe('EEXIST');
    expect(await errnoOf(fsp.readlink(at('sl', 'target.txt')))).toBe('EINVAL');
    expect(await errnoOf(fsp.readlink(at('sl', 'missing')))).toBe('ENOENT');
    await waitUntil('the symlink is an object whose body is its target', () => inBucket('sl/link', Buffer.from('target.txt')));
  });

  it('chmod, chown and utimens change the attributes at once; ENOENT', async () => {
    await fsp.writeFile(at('attrs.txt'), 'a');
    await fsp.chmod(at('attrs.txt'), 0o640);
    await fsp.chown(at('attrs.txt'), 1234, 5678);
    const atime = new Date('2001-02-03T04:05:06.250Z');
    const mtime = new Date('2002-03-04T05:06:07.789Z');
    await fsp.utimes(at('attrs.txt'), atime, mtime);
    const st = await fsp.stat(at('attrs.txt'));
    expect(st.mode & 0o7777).toBe(0o640);
    expect([st.uid, st.gid]).toEqual([1234, 5678]);
    expect(Math.round(st.mtimeMs)).toBe(mtime.getTime());
    expect(Math.round(st.atimeMs)).toBe(atime.getTime());
    // Changing only the group keeps the owner.
    await fsp.chown(at('attrs.txt'), -1, 42);
    expect([(await fsp.stat(at('attrs.txt'))).uid, (await fsp.stat(at('attrs.txt'))).gid]).toEqual([1234, 42]);
    await waitUntil('the attributes are object metadata', async () => {
      const meta = (await store.head('attrs.txt'))?.metadata;
      return meta?.uid === '1234' && meta.gid === '42' && Number(meta.mode) === (0o100000 | 0o640) && meta.mtime === (mtime.getTime() / 1000).toFixed(3);
    });
    expect(await errnoOf(fsp.chmod(at('attrs-missing'), 0o600))).toBe('ENOENT');
    expect(await errnoOf(fsp.chown(at('attrs-missing'), 1, 1))).toBe('ENOENT');
    expect(await errnoOf(fsp.utimes(at('attrs-missing'), atime, mtime))).toBe('ENOENT');
  });

  it('statfs reports a consistent filesystem whose used space grows with cached data', async () => {
    const statvfs = async (): Promise<Record<string, number>> => {
      const script = 'import json, os, sys; s = os.statvfs(sys.argv[1]); print(json.dumps({k: getattr(s, k) for k in dir(s) if k.startswith("f_")}))';
      return JSON.parse(await runPython(script, [mount.mountpoint])) as Record<string, number>;
    };
    const s = await statvfs();
    expect(s.f_bsize).toBeGreaterThan(0);
    expect(s.f_frsize).toBeGreaterThan(0);
    expect(s.f_blocks * s.f_frsize, 'total size').toBeGreaterThanOrEqual(2 ** 40);
    expect(s.f_bfree).toBeLessThanOrEqual(s.f_blocks);
    expect(s.f_bavail).toBeLessThanOrEqual(s.f_bfree);
    expect(s.f_files).toBeGreaterThan(0);
    expect(s.f_ffree).toBeLessThanOrEqual(s.f_files);
    expect(s.f_namemax).toBe(255);

    await fsp.writeFile(at('statfs.bin'), patternBytes(8 * 1024 * KiB, 7));
    const after = await statvfs();
    const usedBefore = (s.f_blocks - s.f_bfree) * s.f_frsize;
    const usedAfter = (after.f_blocks - after.f_bfree) * after.f_frsize;
    expect(usedAfter - usedBefore).toBeGreaterThanOrEqual(4 * 1024 * KiB);
  });

  it('getxattr, setxattr, listxattr, removexattr on files and directories; ENODATA, EEXIST, ENOENT', async () => {
    const file = at('xa.txt');
    await fsp.writeFile(file, 'x');
    await fsp.mkdir(at('xa-dir'));
    for (const target of [file, at('xa-dir')]) {
      expect(await xattr.list(target)).toEqual({ ok: true, names: [] });
      expect(await xattr.get(target, 'user.color')).toEqual({ ok: false, code: 'ENODATA' });
      expect(await xattr.set(target, 'user.color', 'blue')).toEqual({ ok: true });
      expect(await xattr.set(target, 'user.size', 'large', 'create')).toEqual({ ok: true });
      expect(await xattr.get(target, 'user.color')).toEqual({ ok: true, value: 'blue' });
      expect(await xattr.list(target)).toEqual({ ok: true, names: ['user.color', 'user.size'] });
      expect(await xattr.set(target, 'user.color', 'red', 'create')).toEqual({ ok: false, code: 'EEXIST' });
      expect(await xattr.set(target, 'user.none', 'x', 'replace')).toEqual({ ok: false, code: 'ENODATA' });
      expect(await xattr.set(target, 'user.color', 'green', 'replace')).toEqual({ ok: true });
      expect(await xattr.get(target, 'user.color')).toEqual({ ok: true, value: 'green' });
      expect(await xattr.remove(target, 'user.size')).toEqual({ ok: true });
      expect(await xattr.remove(target, 'user.size')).toEqual({ ok: false, code: 'ENODATA' });
      expect(await xattr.list(target)).toEqual({ ok: true, names: ['user.color'] });
    }
    expect(await xattr.get(at('xa-missing'), 'user.color')).toEqual({ ok: false, code: 'ENOENT' });
    expect(await xattr.set(at('xa-missing'), 'user.color', 'x')).toEqual({ ok: false, code: 'ENOENT' });
    await waitUntil('the xattrs are object metadata', async () => {
      const meta = (await store.head('xa.txt'))?.metadata;
      return meta?.xattrs !== undefined && JSON.parse(meta.xattrs)['user.color'] === Buffer.from('green').toString('base64');
    });
  });

  it('security.* and system.* attributes are not stored: set is ENOTSUP, get is ENODATA', async () => {
    const file = at('xa-kernel.txt');
    await fsp.writeFile(file, 'x');
    // (The kernel itself refuses malformed values of the names it interprets, with EINVAL.)
    for (const name of ['security.tidefs', 'system.tidefs']) {
      expect(await xattr.set(file, name, 'v')).toEqual({ ok: false, code: 'ENOTSUP' });
    }
    for (const name of ['security.capability', 'security.selinux', 'security.tidefs', 'system.posix_acl_access', 'system.tidefs']) {
      expect(await xattr.get(file, name)).toEqual({ ok: false, code: 'ENODATA' });
    }
    expect(await xattr.set(file, 'trusted.mark', 'kept')).toEqual({ ok: true });
    expect(await xattr.list(file)).toEqual({ ok: true, names: ['trusted.mark'] });
    // Objects whose metadata carries such names are checked after the remount below.
  });

  it('names with spaces, unicode, URL-special and control characters are the same keys in the bucket', async () => {
    const names = ['with space', 'ünïcødé-漢字', 'plus+sign', '100%', 'q?a#b&c=d', `quotes'"`, 'semi;colon', 'tab\there', 'bell\u0007'];
    await fsp.mkdir(at('names'));
    for (const name of names) await fsp.writeFile(at('names', name), name);
    expect((await fsp.readdir(at('names'))).sort()).toEqual([...names].sort());
    const expected = ['names/', ...names.map((n) => `names/${n}`)].sort();
    let keys: string[] = [];
    await waitUntil(
      () => `the bucket holds ${JSON.stringify(expected)} (it holds ${JSON.stringify(keys)})`,
      async () => {
        keys = await listKeys(store, 'names/');
        return JSON.stringify(keys) === JSON.stringify(expected);
      },
    );
    for (const name of names) expect((await objectBytes(store, `names/${name}`))?.toString(), JSON.stringify(name)).toBe(name);
  });

  it('refuses names over 255 bytes and keys over 1024 bytes with ENAMETOOLONG, and accepts both limits exactly', async () => {
    expect(await errnoOf(fsp.writeFile(at('n'.repeat(256)), 'x'))).toBe('ENAMETOOLONG');
    expect(await errnoOf(fsp.mkdir(at('n'.repeat(256))))).toBe('ENAMETOOLONG');
    // 128 two-byte characters: 256 bytes, though only 128 characters.
    expect(await errnoOf(fsp.writeFile(at('é'.repeat(128)), 'x'))).toBe('ENAMETOOLONG');
    await fsp.writeFile(at('é'.repeat(127)), 'x');
    await fsp.writeFile(at('n'.repeat(255)), 'x');

    // Four directories of 200-byte names: their children's keys start with 804 bytes.
    const dirs = ['1', '2', '3', '4'].map((c) => c.repeat(200));
    await fsp.mkdir(at(...dirs), { recursive: true });
    const base = dirs.join('/') + '/';
    expect(Buffer.byteLength(base)).toBe(804);
    await fsp.writeFile(at(...dirs, 'f'.repeat(220)), 'exactly 1024');
    expect(await errnoOf(fsp.writeFile(at(...dirs, 'f'.repeat(221)), 'x'))).toBe('ENAMETOOLONG');
    await fsp.mkdir(at(...dirs, 'd'.repeat(219)));
    expect(await errnoOf(fsp.mkdir(at(...dirs, 'd'.repeat(220))))).toBe('ENAMETOOLONG');
    expect(await errnoOf(fsp.symlink('t', at(...dirs, 's'.repeat(221))))).toBe('ENAMETOOLONG');
    await fsp.writeFile(at('short.txt'), 'x');
    expect(await errnoOf(fsp.rename(at('short.txt'), at(...dirs, 'r'.repeat(221))))).toBe('ENAMETOOLONG');
    expect(await errnoOf(fsp.link(at('short.txt'), at(...dirs, 'l'.repeat(221))))).toBe('ENAMETOOLONG');
    // A directory whose own key fits but whose children's keys would not.
    await fsp.mkdir(at('deep-src'));
    await fsp.writeFile(at('deep-src', 'c'.repeat(200)), 'x');
    expect(await errnoOf(fsp.rename(at('deep-src'), at(...dirs, 'm'.repeat(100))))).toBe('ENAMETOOLONG');
    expect(await fsp.readFile(at('deep-src', 'c'.repeat(200)), 'utf8')).toBe('x');

    await waitUntil('the 1024-byte key is in the bucket', () => inBucket(base + 'f'.repeat(220), Buffer.from('exactly 1024')));
  });

  it('symlinks, modes, owners, times and xattrs survive a remount with an empty data directory; foreign security.* xattrs do not', async () => {
    await fsp.mkdir(at('keep', 'dir'), { recursive: true });
    await fsp.writeFile(at('keep', 'file'), 'kept');
    await fsp.chmod(at('keep', 'file'), 0o604);
    await fsp.chown(at('keep', 'file'), 1001, 2002);
    const mtime = new Date('2003-04-05T06:07:08.123Z');
    await fsp.utimes(at('keep', 'file'), mtime, mtime);
    expect(await xattr.set(at('keep', 'file'), 'user.origin', 'remount test')).toEqual({ ok: true });
    await fsp.symlink('../elsewhere/target', at('keep', 'link'));
    await fsp.chmod(at('keep', 'dir'), 0o710);
    await fsp.chown(at('keep', 'dir'), 33, 44);
    const dirMtime = new Date('2004-05-06T07:08:09.456Z');
    await fsp.utimes(at('keep', 'dir'), dirMtime, dirMtime);

    // Another tool's object with security.* / system.* names in its xattrs metadata: those are dropped.
    const b64 = (v: string): string => Buffer.from(v).toString('base64');
    const xattrs = JSON.stringify({ 'security.capability': b64('cap'), 'system.posix_acl_access': b64('acl'), 'user.note': b64('hi') });
    await store.put('keep/injected', Buffer.from('y'), { metadata: { mode: String(0o100644), xattrs } });

    expect(await mount.stop(), mount.output()).toBe(0);
    mount = await startMount({ bucket: bucket.name, args: MOUNT_ARGS });

    expect(await xattr.list(at('keep', 'injected'))).toEqual({ ok: true, names: ['user.note'] });
    expect(await xattr.get(at('keep', 'injected'), 'user.note')).toEqual({ ok: true, value: 'hi' });
    expect(await xattr.get(at('keep', 'injected'), 'security.capability')).toEqual({ ok: false, code: 'ENODATA' });

    expect((await fsp.readdir(at('keep'))).sort()).toEqual(['dir', 'file', 'injected', 'link']);
    expect(await fsp.readlink(at('keep', 'link'))).toBe('../elsewhere/target');
    expect((await fsp.lstat(at('keep', 'link'))).isSymbolicLink()).toBe(true);
    const file = await fsp.stat(at('keep', 'file'));
    expect(file.mode & 0o7777).toBe(0o604);
    expect([file.uid, file.gid]).toEqual([1001, 2002]);
    expect(Math.round(file.mtimeMs)).toBe(mtime.getTime());
    expect(await fsp.readFile(at('keep', 'file'), 'utf8')).toBe('kept');
    expect(await xattr.get(at('keep', 'file'), 'user.origin')).toEqual({ ok: true, value: 'remount test' });
    const dir = await fsp.stat(at('keep', 'dir'));
    expect(dir.isDirectory()).toBe(true);
    expect(dir.mode & 0o7777).toBe(0o710);
    expect([dir.uid, dir.gid]).toEqual([33, 44]);
    expect(Math.round(dir.mtimeMs)).toBe(dirMtime.getTime());
  });
});
