// A typed face for tidefs's FUSE addon (native/tidefs-fuse.c, built by scripts/build-native):
// libfuse 2's low-level, inode-based API, served on Node's main thread. Every request calls a
// handler with a request id; the handler answers it exactly once, now or later, through the
// session's reply methods. Nothing here knows about tidefs's file system.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A request the kernel is waiting on; answer it once. */
export type Request = number & { readonly __brand: 'FuseRequest' };

/** What the kernel is told about an inode. Times in ms since the epoch. */
export interface FuseAttributes {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** Which fields a setattr request changes (libfuse's FUSE_SET_ATTR_* bits; *_NOW arrive as times). */
export const SetAttr = { mode: 1, uid: 2, gid: 4, size: 8, atime: 16, mtime: 32 } as const;

/** The handlers the kernel's requests are delivered to (a missing one answers ENOSYS). */
export interface FuseHandlers {
  lookup(req: Request, parent: number, name: string): void;
  getattr(req: Request, ino: number): void;
  setattr(req: Request, ino: number, valid: number, mode: number, uid: number, gid: number, size: number, atimeMs: number, mtimeMs: number): void;
  readlink(req: Request, ino: number): void;
  mknod(req: Request, parent: number, name: string, mode: number, uid: number, gid: number): void;
  mkdir(req: Request, parent: number, name: string, mode: number, uid: number, gid: number): void;
  unlink(req: Request, parent: number, name: string): void;
  rmdir(req: Request, parent: number, name: string): void;
  symlink(req: Request, target: string, parent: number, name: string, uid: number, gid: number): void;
  rename(req: Request, parent: number, name: string, newParent: number, newName: string): void;
  link(req: Request, ino: number, newParent: number, newName: string): void;
  open(req: Request, ino: number, flags: number): void;
  read(req: Request, ino: number, size: number, offset: number): void;
  /** `data` is the handler's own copy. */
  write(req: Request, ino: number, data: Buffer, offset: number): void;
  release(req: Request, ino: number): void;
  fsync(req: Request, ino: number): void;
  opendir(req: Request, ino: number): void;
  /** `handle` is what opendir answered; entries from `offset` on, in at most `size` bytes. */
  readdir(req: Request, handle: number, size: number, offset: number): void;
  releasedir(req: Request, handle: number): void;
  fsyncdir(req: Request, ino: number): void;
  statfs(req: Request, ino: number): void;
  setxattr(req: Request, ino: number, name: string, value: Buffer, flags: number): void;
  /** `size` 0 asks for the value's length only. */
  getxattr(req: Request, ino: number, name: string, size: number): void;
  listxattr(req: Request, ino: number, size: number): void;
  removexattr(req: Request, ino: number, name: string): void;
  /** `flags` are open(2)'s. */
  create(req: Request, parent: number, name: string, mode: number, flags: number, uid: number, gid: number): void;
}

interface Addon {
  mount(
    mountpoint: string,
    mountOptions: string,
    sessionOptions: string,
    maxWrite: number,
    busyPollUs: number,
    handlers: FuseHandlers,
    onEvent: (event: 'ready' | 'gone') => void,
  ): object;
  unmount(session: object): void;
  replyErr(req: Request, errno: number): void;
  replyEntry(req: Request, attributes: Float64Array, entryTimeout: number, attrTimeout: number): void;
  replyCreate(req: Request, attributes: Float64Array, entryTimeout: number, attrTimeout: number): void;
  replyAttr(req: Request, attributes: Float64Array, attrTimeout: number): void;
  replyOpen(req: Request, handle: number, keepCache: boolean): void;
  replyWrite(req: Request, count: number): void;
  replyBuffer(req: Request, data: Buffer): void;
  replyReadlink(req: Request, target: string): void;
  replyXattr(req: Request, size: number, value: Buffer): void;
  replyStatfs(req: Request, fields: number[]): void;
  replyDirectory(req: Request, size: number, offset: number, names: string[], inos: number[], modes: number[]): void;
}

const addon = createRequire(import.meta.url)(addonPath()) as Addon;

/** native/build/Release/tidefs_fuse.node, found from this module up (it runs from src/ and dist/src/). */
function addonPath(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'native', 'build', 'Release', 'tidefs_fuse.node');
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) throw new Error('the tidefs FUSE addon is not built: run scripts/build-native');
  }
}

/** One slot, reused: the addon copies attributes before it returns. */
const scratch = new Float64Array(9);
function pack(a: FuseAttributes): Float64Array {
  scratch[0] = a.ino;
  scratch[1] = a.mode;
  scratch[2] = a.nlink;
  scratch[3] = a.uid;
  scratch[4] = a.gid;
  scratch[5] = a.size;
  scratch[6] = a.atimeMs;
  scratch[7] = a.mtimeMs;
  scratch[8] = a.ctimeMs;
  return scratch;
}
const NO_ENTRY = new Float64Array(9);

/**
 * A mounted session. After unmount() every answer is dropped: the kernel has forgotten the
 * requests, and the descriptor they would be written to is closed.
 */
export class FuseSession {
  private closed = false;
  private readonly native: object;
  private onGone: (() => void) | undefined;
  private gone = false;
  /** Resolves once the kernel's INIT is answered: the connection's limits are then in force. */
  readonly ready: Promise<void>;

  private constructor(start: (onEvent: (event: 'ready' | 'gone') => void) => object) {
    let markReady!: () => void;
    this.ready = new Promise<void>((resolve) => (markReady = resolve));
    this.native = start((event) => {
      if (event === 'ready') markReady();
      else if (!this.gone) {
        this.gone = true;
        this.onGone?.();
      }
    });
  }

  /**
   * Mounts and starts serving; mountOptions go to the kernel, sessionOptions to libfuse. Reads and
   * writes come in requests of up to maxWrite bytes (at most 1 MiB: 256 pages). After serving what
   * the kernel had queued, the session looks for its next request for busyPollUs before sleeping.
   */
  static mount(
    mountpoint: string,
    mountOptions: string[],
    sessionOptions: string[],
    maxWrite: number,
    busyPollUs: number,
    handlers: FuseHandlers,
  ): FuseSession {
    const session = [...sessionOptions, 'big_writes', `max_write=${maxWrite}`].join(',');
    return new FuseSession((onEvent) => addon.mount(mountpoint, mountOptions.join(','), session, maxWrite, busyPollUs, handlers, onEvent));
  }

  /** Call `onGone` (once) when the kernel drops the connection: unmounted, or aborted. */
  whenGone(onGone: () => void): void {
    this.onGone = onGone;
    if (this.gone) onGone();
  }

  unmount(): void {
    if (this.closed) return;
    this.closed = true;
    addon.unmount(this.native);
  }

  /** errno 0 is success for the operations that answer nothing else. */
  replyErr(req: Request, errno: number): void {
    if (!this.closed) addon.replyErr(req, errno);
  }

  replyEntry(req: Request, a: FuseAttributes, timeoutSec: number): void {
    if (!this.closed) addon.replyEntry(req, pack(a), timeoutSec, timeoutSec);
  }

  /** "No such name", which the kernel may remember for `timeoutSec`. */
  replyNoEntry(req: Request, timeoutSec: number): void {
    if (!this.closed) addon.replyEntry(req, NO_ENTRY, timeoutSec, 0);
  }

  replyCreate(req: Request, a: FuseAttributes, timeoutSec: number): void {
    if (!this.closed) addon.replyCreate(req, pack(a), timeoutSec, timeoutSec);
  }

  replyAttr(req: Request, a: FuseAttributes, timeoutSec: number): void {
    if (!this.closed) addon.replyAttr(req, pack(a), timeoutSec);
  }

  replyOpen(req: Request, handle: number, keepCache: boolean): void {
    if (!this.closed) addon.replyOpen(req, handle, keepCache);
  }

  replyWrite(req: Request, count: number): void {
    if (!this.closed) addon.replyWrite(req, count);
  }

  replyBuffer(req: Request, data: Buffer): void {
    if (!this.closed) addon.replyBuffer(req, data);
  }

  replyReadlink(req: Request, target: string): void {
    if (!this.closed) addon.replyReadlink(req, target);
  }

  replyXattr(req: Request, size: number, value: Buffer): void {
    if (!this.closed) addon.replyXattr(req, size, value);
  }

  /** Block and inode counts of the file system; nameMax is the longest name. */
  replyStatfs(req: Request, blockSize: number, blocks: number, blocksFree: number, files: number, filesFree: number, nameMax: number): void {
    if (!this.closed) addon.replyStatfs(req, [blockSize, blocks, blocksFree, files, filesFree, nameMax]);
  }

  /** Entries `offset`.. of a listing; the kernel asks again from where the answer stopped. */
  replyDirectory(req: Request, size: number, offset: number, names: string[], inos: number[], modes: number[]): void {
    if (!this.closed) addon.replyDirectory(req, size, offset, names, inos, modes);
  }
}
