// The kernel's FUSE requests (inode based, as libfuse's low-level API delivers them) turned into
// Filesystem calls, and their outcomes into answers. Owns the listings of open directories, and
// the rule for keeping the kernel's page cache of a file across opens.
import { constants } from 'node:fs';
import { InodeKind, type InodeId } from '../inode/types.js';
import { FsError } from '../inode/errors.js';
import type { Attributes, Filesystem } from '../node/filesystem.js';
import { SetAttr, type FuseHandlers, type FuseSession, type Request } from './binding.js';
import { toErrno } from './errno.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const { O_EXCL, O_TRUNC } = constants;
/** How many files the page-cache rule remembers (see PageCacheRule). */
const REMEMBERED_FILES = 65_536;

/** A directory's entries as opendir (or a rewind) found them; an entry's offset is its index + 1. */
interface Listing {
  ino: InodeId;
  names: string[];
  inos: number[];
  /** Whether readdir has been called since: a later request from offset 0 is a rewind. */
  read: boolean;
}

export interface OperationOptions {
  /**
   * How long (s) the kernel may cache attributes. What a lookup finds in a directory (an entry,
   * or "no such name") may be cached that much longer than the directory's listing stays current.
   */
  timeoutSec: number;
  log: (message: string) => void;
}

/**
 * The kernel may keep a file's cached pages across an open only if the file was not seen to change
 * since its last open (libfuse's auto_cache): every size and mtime the kernel is told, and the one
 * at this open, must match those of the last open. Writes through this mount change them too, so
 * such a file's next open starts with an empty page cache, as an object replaced in the bucket does.
 * A file not remembered (first open, or pushed out of the bounded memory) starts with an empty cache.
 */
class PageCacheRule {
  /** Per file: its size and mtime at the last open, and whether nothing else was seen since. */
  private readonly seen = new Map<InodeId, { signature: string; unchanged: boolean }>();

  /** Whether the kernel may keep its pages at this open; remembers the file. */
  atOpen(a: Attributes): boolean {
    const signature = `${a.size}:${a.mtimeMs}`;
    const last = this.seen.get(a.ino);
    const keep = last !== undefined && last.unchanged && last.signature === signature;
    this.seen.delete(a.ino);
    this.seen.set(a.ino, { signature, unchanged: true });
    if (this.seen.size > REMEMBERED_FILES) this.seen.delete(this.seen.keys().next().value as InodeId);
    return keep;
  }

  /** The kernel is told these attributes. */
  told(a: Attributes): void {
    const last = this.seen.get(a.ino);
    if (last !== undefined && last.signature !== `${a.size}:${a.mtimeMs}`) last.unchanged = false;
  }
}

export function fuseHandlers(fs: Filesystem, session: () => FuseSession, options: OperationOptions): FuseHandlers {
  const { timeoutSec, log } = options;
  const pageCache = new PageCacheRule();
  const listings = new Map<number, Listing>();
  let nextListing = 1;
  const listing = async (ino: InodeId): Promise<Listing> => {
    const entries = await fs.readdir(ino);
    return { ino, names: ['.', '..', ...entries.map((e) => e.name)], inos: [ino, ino, ...entries.map((e) => e.ino)], read: false };
  };

  /** Run an operation that answers the request itself; a failure answers its errno. */
  const serve = (req: Request, op: () => Promise<void>): void => {
    fs.noteActivity();
    op().catch((err: unknown) => session().replyErr(req, -toErrno(err, log)));
  };
  const ok = (req: Request, op: () => Promise<unknown>): void =>
    serve(req, async () => {
      await op();
      session().replyErr(req, 0);
    });
  /** Cache lifetime (s) of what the kernel learns about entries of `dir`. */
  const entryTimeout = (dir: number): number => timeoutSec + fs.entriesFreshMs(dir as InodeId) / 1000;
  const entry = async (req: Request, parent: number, ino: InodeId): Promise<void> => {
    const a = await fs.getattr(ino);
    pageCache.told(a);
    session().replyEntry(req, a, entryTimeout(parent));
  };
  const attr = (req: Request, a: Attributes): void => {
    pageCache.told(a);
    session().replyAttr(req, a, timeoutSec);
  };

  return {
    lookup: (req, parent, name) =>
      serve(req, async () => {
        const ino = await fs.find(parent as InodeId, name);
        if (ino === undefined) session().replyNoEntry(req, entryTimeout(parent));
        else await entry(req, parent, ino);
      }),

    getattr: (req, ino) => serve(req, async () => attr(req, await fs.getattr(ino as InodeId))),

    setattr: (req, ino, valid, mode, uid, gid, size, atimeMs, mtimeMs) =>
      serve(req, async () => {
        const a = await fs.setattr(ino as InodeId, {
          mode: valid & SetAttr.mode ? mode & 0o7777 : undefined,
          uid: valid & SetAttr.uid ? uid : undefined,
          gid: valid & SetAttr.gid ? gid : undefined,
          size: valid & SetAttr.size ? size : undefined,
          atimeMs: valid & SetAttr.atime ? atimeMs : undefined,
          mtimeMs: valid & SetAttr.mtime ? mtimeMs : undefined,
        });
        attr(req, a);
      }),

    readlink: (req, ino) => serve(req, async () => session().replyReadlink(req, await fs.readlink(ino as InodeId))),

    mknod: (req, parent, name, mode, uid, gid) =>
      serve(req, async () => {
        if ((mode & S_IFMT) !== S_IFREG) throw new FsError('EPERM', 'only regular files can be stored in a bucket');
        await entry(req, parent, await fs.create(parent as InodeId, name, InodeKind.File, mode & 0o7777, uid, gid));
      }),

    mkdir: (req, parent, name, mode, uid, gid) =>
      serve(req, async () => entry(req, parent, await fs.create(parent as InodeId, name, InodeKind.Dir, mode & 0o7777, uid, gid))),

    symlink: (req, target, parent, name, uid, gid) =>
      serve(req, async () => entry(req, parent, await fs.create(parent as InodeId, name, InodeKind.Symlink, 0o777, uid, gid, target))),

    link: (req, ino, newParent, newName) =>
      serve(req, async () => {
        await fs.link(ino as InodeId, newParent as InodeId, newName);
        await entry(req, newParent, ino as InodeId);
      }),

    unlink: (req, parent, name) => ok(req, () => fs.unlink(parent as InodeId, name)),

    rmdir: (req, parent, name) => ok(req, () => fs.rmdir(parent as InodeId, name)),

    rename: (req, parent, name, newParent, newName) =>
      ok(req, () => fs.rename(parent as InodeId, name, newParent as InodeId, newName)),

    create: (req, parent, name, mode, flags, uid, gid) =>
      serve(req, async () => {
        let ino: InodeId;
        try {
          ino = await fs.create(parent as InodeId, name, InodeKind.File, mode & 0o7777, uid, gid);
        } catch (err) {
          // The kernel thought the name free (a cached "no such name", another node's create):
          // without O_EXCL, open(2) opens what is there.
          if (!(err instanceof FsError && err.code === 'EEXIST') || flags & O_EXCL) throw err;
          ino = await fs.lookup(parent as InodeId, name);
          if ((await fs.getattr(ino)).kind !== InodeKind.File) throw err;
          if (flags & O_TRUNC) await fs.setattr(ino, { size: 0 });
        }
        const a = await fs.open(ino);
        pageCache.atOpen(a);
        session().replyCreate(req, a, entryTimeout(parent));
      }),

    open: (req, ino) =>
      serve(req, async () => {
        session().replyOpen(req, 0, pageCache.atOpen(await fs.open(ino as InodeId)));
      }),

    read: (req, ino, size, offset) => serve(req, async () => session().replyBuffer(req, await fs.read(ino as InodeId, offset, size))),

    write: (req, ino, data, offset) => serve(req, async () => session().replyWrite(req, await fs.write(ino as InodeId, offset, data))),

    release: (req, ino) => ok(req, () => fs.release(ino as InodeId)),

    fsync: (req, ino) => ok(req, () => fs.fsync(ino as InodeId)),

    opendir: (req, ino) =>
      serve(req, async () => {
        const handle = nextListing++;
        listings.set(handle, await listing(ino as InodeId));
        session().replyOpen(req, handle, false);
      }),

    readdir: (req, handle, size, offset) =>
      serve(req, async () => {
        let open = listings.get(handle);
        if (!open) throw new FsError('EBADF', `no open directory ${handle}`);
        // Offsets index the listing taken at opendir, so that they stay meaningful however long it
        // is read; rewinddir(3) (offset 0 again) must see the directory as it is now.
        if (offset === 0 && open.read) listings.set(handle, (open = await listing(open.ino)));
        open.read = true;
        const start = Math.min(offset, open.names.length);
        // An entry takes at least 32 bytes: never hand over more names than can fit.
        const end = Math.min(open.names.length, start + Math.ceil(size / 32));
        const modes = new Array<number>(end - start).fill(0);
        if (start < 2) modes.fill(S_IFDIR, 0, 2 - start);
        session().replyDirectory(req, size, start, open.names.slice(start, end), open.inos.slice(start, end), modes);
      }),

    releasedir: (req, handle) => {
      listings.delete(handle);
      session().replyErr(req, 0);
    },

    fsyncdir: (req, ino) =>
      ok(req, async () => {
        for (const e of await fs.readdir(ino as InodeId)) await fs.fsync(e.ino);
      }),

    statfs: (req) =>
      serve(req, async () => {
        const s = fs.statfs();
        session().replyStatfs(req, s.blockSize, s.blocks, s.blocksFree, s.files, s.filesFree, s.nameMax);
      }),

    getxattr: (req, ino, name, size) => serve(req, async () => session().replyXattr(req, size, await fs.getxattr(ino as InodeId, name))),

    listxattr: (req, ino, size) =>
      serve(req, async () => {
        const names = await fs.listxattr(ino as InodeId);
        session().replyXattr(req, size, Buffer.from(names.map((n) => `${n}\0`).join('')));
      }),

    setxattr: (req, ino, name, value, flags) => ok(req, () => fs.setxattr(ino as InodeId, name, value, flags)),

    removexattr: (req, ino, name) => ok(req, () => fs.removexattr(ino as InodeId, name)),
  };
}
