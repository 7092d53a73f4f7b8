// A typed face for fuse-native (a CommonJS package without types), plus the one thing our patched
// build of its addon adds: which process (uid, gid) made the request being served
// (scripts/build-fuse-native). Nothing here knows about tidefs.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const fuseNativeMain = require.resolve('fuse-native');
const FuseNative = require('fuse-native') as FuseNativeClass;
const nodeGypBuild = createRequire(fuseNativeMain)('node-gyp-build') as (dir: string) => NativeBinding;
const binding = nodeGypBuild(path.dirname(fuseNativeMain));

interface NativeBinding {
  fuse_native_caller?: (handler: Buffer) => number;
}

/** Callback convention of fuse-native: 0 or a negative errno first, then the result. */
export type Done = (code: number) => void;
export type DoneWith<T> = (code: number, value?: T) => void;

export interface FuseStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino?: number;
  blksize?: number;
  blocks?: number;
  /** Times in ms since the epoch. */
  atime: number;
  mtime: number;
  ctime: number;
}

export interface FuseStatfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

export interface FuseOperations {
  init?(cb: Done): void;
  statfs?(path: string, cb: DoneWith<FuseStatfs>): void;
  getattr?(path: string, cb: DoneWith<FuseStat>): void;
  readdir?(path: string, cb: (code: number, names?: string[]) => void): void;
  open?(path: string, flags: number, cb: DoneWith<number>): void;
  create?(path: string, mode: number, cb: DoneWith<number>): void;
  /** cb(bytesRead) or cb(-errno). */
  read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Done): void;
  /** cb(bytesWritten) or cb(-errno). */
  write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Done): void;
  flush?(path: string, fd: number, cb: Done): void;
  fsync?(path: string, datasync: number, fd: number, cb: Done): void;
  fsyncdir?(path: string, datasync: number, fd: number, cb: Done): void;
  release?(path: string, fd: number, cb: Done): void;
  truncate?(path: string, size: number, cb: Done): void;
  ftruncate?(path: string, fd: number, size: number, cb: Done): void;
  utimens?(path: string, atime: number, mtime: number, cb: Done): void;
  chmod?(path: string, mode: number, cb: Done): void;
  chown?(path: string, uid: number, gid: number, cb: Done): void;
  readlink?(path: string, cb: DoneWith<string>): void;
  symlink?(target: string, path: string, cb: Done): void;
  link?(existing: string, path: string, cb: Done): void;
  mkdir?(path: string, mode: number, cb: Done): void;
  mknod?(path: string, mode: number, dev: number, cb: Done): void;
  rmdir?(path: string, cb: Done): void;
  unlink?(path: string, cb: Done): void;
  rename?(from: string, to: string, cb: Done): void;
  getxattr?(path: string, name: string, position: number, cb: DoneWith<Buffer>): void;
  setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Done): void;
  listxattr?(path: string, cb: DoneWith<string[]>): void;
  removexattr?(path: string, name: string, cb: Done): void;
}

export interface FuseNativeOptions {
  force?: boolean;
  mkdir?: boolean;
  /** Per-operation timeout in fuse-native; false turns it off. */
  timeout?: false | number;
  allowOther?: boolean;
  defaultPermissions?: boolean;
  autoCache?: boolean;
  entryTimeout?: number;
  attrTimeout?: number;
  maxRead?: number;
  /** Also the way to pass raw mount options (comma-separated after the name). */
  fsname?: string;
  subtype?: string;
  debug?: boolean;
}

interface FuseNativeInstance {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
  /** fuse-native's dispatch table, one function per operation code; overridden below. */
  _makeHandlerArray(): Array<HandlerFn | undefined>;
}

interface FuseNativeClass {
  new (mountpoint: string, ops: FuseOperations, options: FuseNativeOptions): FuseNativeInstance;
  unmount(mountpoint: string, cb: (err: Error | null) => void): void;
}

type HandlerFn = (nativeHandler: Buffer, ...args: unknown[]) => unknown;

/** A fuse-native mount that knows the caller of the request it is serving. */
export class FuseSession {
  private readonly fuse: FuseNativeInstance;
  private caller = 0;

  constructor(mountpoint: string, ops: FuseOperations, options: FuseNativeOptions) {
    if (!binding.fuse_native_caller) {
      throw new Error('fuse-native was not rebuilt with tidefs\'s patch: run scripts/build-fuse-native');
    }
    const readCaller = binding.fuse_native_caller;
    const session = this;
    class CallerAwareFuse extends FuseNative {
      override _makeHandlerArray(): Array<HandlerFn | undefined> {
        return super._makeHandlerArray().map(
          (handler) =>
            handler &&
            ((nativeHandler: Buffer, ...args: unknown[]) => {
              session.caller = readCaller(nativeHandler);
              return handler(nativeHandler, ...args);
            }),
        );
      }
    }
    this.fuse = new CallerAwareFuse(mountpoint, ops, options);
  }

  /** uid and gid of the process whose request is being served; read it before the first await. */
  callerIds(): { uid: number; gid: number } {
    return { uid: Math.floor(this.caller / 2 ** 32), gid: this.caller % 2 ** 32 };
  }

  mount(): Promise<void> {
    return new Promise((resolve, reject) => this.fuse.mount((err) => (err ? reject(err) : resolve())));
  }

  unmount(): Promise<void> {
    return new Promise((resolve, reject) => this.fuse.unmount((err) => (err ? reject(err) : resolve())));
  }
}
