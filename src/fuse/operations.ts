// FUSE operations (path based, as libfuse's high-level API delivers them) turned into Filesystem
// calls (inode based). Owns the path -> inode resolution, the table of open file handles, and
// libfuse's "hidden" files: when a file that is still open is unlinked, libfuse renames it to
// .fuse_hiddenXXXX instead; that rename becomes a real unlink here (the inode lives on as an open
// orphan) and the hidden name is only remembered in memory, never written to the bucket.
import { InodeKind, ROOT_INO, type InodeId } from '../inode/types.js';
import { FsError } from '../inode/errors.js';
import type { Attributes, Filesystem, FilesystemStats } from '../node/filesystem.js';
import { toErrno } from './errno.js';
import type { Done, DoneWith, FuseOperations, FuseStat, FuseStatfs } from './fuse-native.js';

const HIDDEN_NAME = /^\.fuse_hidden[0-9a-f]{16}$/;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const UINT32_MAX = 0xffffffff;
const NO_ID = UINT32_MAX;
/** fuse-native passes UINT64_MAX-ish for a time that is not to be changed (our patch does not change that). */
const TIME_OMITTED = 2 ** 63;

export interface CallerIds {
  uid: number;
  gid: number;
}

interface OpenHandle {
  ino: InodeId;
}

export function fuseOperations(
  fs: Filesystem,
  caller: () => CallerIds,
  log: (message: string) => void,
): FuseOperations {
  const hidden = new Map<string, InodeId>();
  const handles = new Map<number, OpenHandle>();
  let nextHandle = 1;

  const resolve = async (path: string): Promise<InodeId> => {
    const h = hidden.get(path);
    if (h !== undefined) return h;
    let ino = ROOT_INO;
    if (path === '/') return ino;
    for (const part of path.slice(1).split('/')) ino = await fs.lookup(ino, part);
    return ino;
  };
  const parentOf = async (path: string): Promise<{ parent: InodeId; name: string }> => {
    const i = path.lastIndexOf('/');
    return { parent: await resolve(i <= 0 ? '/' : path.slice(0, i)), name: path.slice(i + 1) };
  };
  const handle = (fd: number): InodeId => {
    const h = handles.get(fd);
    if (!h) throw new FsError('EBADF', `no open file ${fd}`);
    return h.ino;
  };
  const openHandle = async (ino: InodeId): Promise<number> => {
    await fs.open(ino);
    const fd = nextHandle++;
    if (nextHandle > 0x7fffffff) nextHandle = 1;
    handles.set(fd, { ino });
    return fd;
  };

  /** Run an operation and report its outcome: 0, a value, or a negative errno. */
  function run(cb: Done, op: () => Promise<unknown>): void;
  function run<T>(cb: DoneWith<T>, op: () => Promise<T>, withValue: true): void;
  function run<T>(cb: DoneWith<T>, op: () => Promise<T>, withValue?: boolean): void {
    fs.noteActivity();
    op().then(
      (value) => (withValue ? cb(0, value) : cb(0)),
      (err: unknown) => cb(toErrno(err, log)),
    );
  }

  /** read and write answer with a byte count (or a negative errno) rather than 0. */
  function transfer(fd: number, cb: Done, op: (ino: InodeId) => Promise<number>): void {
    fs.noteActivity();
    let pending: Promise<number>;
    try {
      pending = op(handle(fd));
    } catch (err) {
      cb(toErrno(err, log));
      return;
    }
    pending.then(cb, (err: unknown) => cb(toErrno(err, log)));
  }

  return {
    init: (cb) => cb(0),

    statfs: (_path, cb) => cb(0, statfsReply(fs.statfs())),

    getattr: (path, cb) => run(cb, async () => stat(await fs.getattr(await resolve(path))), true),

    readdir: (path, cb) =>
      run(cb, async () => ['.', '..', ...(await fs.readdir(await resolve(path))).map((e) => e.name)], true),

    open: (path, _flags, cb) => run(cb, async () => openHandle(await resolve(path)), true),

    create: (path, mode, cb) => {
      const ids = caller();
      run(
        cb,
        async () => {
          const { parent, name } = await parentOf(path);
          return openHandle(await fs.create(parent, name, InodeKind.File, mode & 0o7777, ids.uid, ids.gid));
        },
        true,
      );
    },

    mknod: (path, mode, _dev, cb) => {
      const ids = caller();
      run(cb, async () => {
        if ((mode & S_IFMT) !== S_IFREG) throw new FsError('EPERM', 'only regular files can be stored in a bucket');
        const { parent, name } = await parentOf(path);
        await fs.create(parent, name, InodeKind.File, mode & 0o7777, ids.uid, ids.gid);
      });
    },

    read: (_path, fd, buf, len, pos, cb) => transfer(fd, cb, (ino) => fs.read(ino, pos, len, buf).then((data) => data.length)),

    write: (_path, fd, buf, len, pos, cb) => transfer(fd, cb, (ino) => fs.write(ino, pos, buf.subarray(0, len))),

    // No flush: nothing happens at each close(2) of a descriptor (the write-back starts at the last
    // release), and without a handler libfuse answers it without a round trip to JavaScript.

    fsync: (_path, _datasync, fd, cb) => run(cb, async () => fs.fsync(handle(fd))),

    fsyncdir: (path, _datasync, _fd, cb) =>
      run(cb, async () => {
        for (const entry of await fs.readdir(await resolve(path))) await fs.fsync(entry.ino);
      }),

    release: (_path, fd, cb) =>
      run(cb, async () => {
        const ino = handle(fd);
        handles.delete(fd);
        await fs.release(ino);
      }),

    truncate: (path, size, cb) => run(cb, async () => fs.setattr(await resolve(path), { size })),

    ftruncate: (_path, fd, size, cb) => run(cb, async () => fs.setattr(handle(fd), { size })),

    utimens: (path, atime, mtime, cb) =>
      run(cb, async () =>
        fs.setattr(await resolve(path), {
          atimeMs: atime >= TIME_OMITTED ? undefined : atime,
          mtimeMs: mtime >= TIME_OMITTED ? undefined : mtime,
        }),
      ),

    chmod: (path, mode, cb) => run(cb, async () => fs.setattr(await resolve(path), { mode: mode & 0o7777 })),

    chown: (path, uid, gid, cb) =>
      run(cb, async () =>
        fs.setattr(await resolve(path), {
          uid: uid === NO_ID || uid === -1 ? undefined : uid,
          gid: gid === NO_ID || gid === -1 ? undefined : gid,
        }),
      ),

    readlink: (path, cb) => run(cb, async () => fs.readlink(await resolve(path)), true),

    symlink: (target, path, cb) => {
      const ids = caller();
      run(cb, async () => {
        const { parent, name } = await parentOf(path);
        await fs.create(parent, name, InodeKind.Symlink, 0o777, ids.uid, ids.gid, target);
      });
    },

    link: (existing, path, cb) =>
      run(cb, async () => {
        const ino = await resolve(existing);
        const { parent, name } = await parentOf(path);
        await fs.link(ino, parent, name);
      }),

    mkdir: (path, mode, cb) => {
      const ids = caller();
      run(cb, async () => {
        const { parent, name } = await parentOf(path);
        await fs.create(parent, name, InodeKind.Dir, mode & 0o7777, ids.uid, ids.gid);
      });
    },

    rmdir: (path, cb) =>
      run(cb, async () => {
        const { parent, name } = await parentOf(path);
        await fs.rmdir(parent, name);
      }),

    unlink: (path, cb) =>
      run(cb, async () => {
        if (hidden.delete(path)) return;
        const { parent, name } = await parentOf(path);
        await fs.unlink(parent, name);
      }),

    rename: (from, to, cb) =>
      run(cb, async () => {
        const src = await parentOf(from);
        const dst = await parentOf(to);
        if (HIDDEN_NAME.test(dst.name)) {
          const ino = await fs.lookup(src.parent, src.name);
          await fs.unlink(src.parent, src.name);
          hidden.set(to, ino);
          return;
        }
        await fs.rename(src.parent, src.name, dst.parent, dst.name);
      }),

    getxattr: (path, name, _position, cb) => run(cb, async () => fs.getxattr(await resolve(path), name), true),

    setxattr: (path, name, value, _position, flags, cb) =>
      run(cb, async () => fs.setxattr(await resolve(path), name, Buffer.from(value), flags)),

    listxattr: (path, cb) => run(cb, async () => fs.listxattr(await resolve(path)), true),

    removexattr: (path, name, cb) => run(cb, async () => fs.removexattr(await resolve(path), name)),
  };
}

/**
 * fuse-native carries every statfs field as a 32-bit number: grow the block size (by powers of two)
 * until the block counts fit, and cap the inode counts, so the reply never wraps around.
 */
function statfsReply(s: FilesystemStats): FuseStatfs {
  const scale = s.blocks > UINT32_MAX ? 2 ** Math.ceil(Math.log2(s.blocks / UINT32_MAX)) : 1;
  const blockSize = s.blockSize * scale;
  const blocks = Math.floor(s.blocks / scale);
  const blocksFree = Math.min(blocks, Math.floor(s.blocksFree / scale));
  const files = Math.min(s.files, UINT32_MAX);
  const filesFree = Math.min(files, s.filesFree);
  return {
    bsize: blockSize,
    frsize: blockSize,
    blocks,
    bfree: blocksFree,
    bavail: blocksFree,
    files,
    ffree: filesFree,
    favail: filesFree,
    fsid: 0,
    flag: 0,
    namemax: s.nameMax,
  };
}

function stat(a: Attributes): FuseStat {
  return {
    // 32 bits in fuse-native: the inode's sequence number within its group (mounted with use_ino).
    ino: a.ino % 2 ** 32,
    mode: a.mode,
    uid: a.uid,
    gid: a.gid,
    size: a.size,
    nlink: a.nlink,
    blksize: 4096,
    blocks: Math.ceil(a.size / 512),
    atime: a.atimeMs,
    mtime: a.mtimeMs,
    ctime: a.ctimeMs,
  };
}
