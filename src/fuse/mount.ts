// The kernel mount's lifecycle: clear a dead mount left by a crashed process, mount with the
// options that make FUSE fast and safe (big writes, read-ahead, kernel permission checks; the
// attribute cache lifetimes and the page cache rule are in the answers, see operations.ts), notice
// when someone unmounts us from outside, and unmount.
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Filesystem } from '../node/filesystem.js';
import { FuseSession } from './binding.js';
import { fuseHandlers } from './operations.js';

const exec = promisify(execFile);
/** How far ahead of a sequential reader the kernel reads (it sends reads of up to maxWrite each). */
const READ_AHEAD_BYTES = 4 * 1024 * 1024;

export interface MountOptions {
  mountpoint: string;
  /** Shown in /proc/mounts (e.g. "s3://bucket/prefix"). */
  source: string;
  /** Let other users use the mount (with the kernel checking modes and owners). */
  allowOther: boolean;
  /** Kernel attribute / lookup cache lifetime in seconds. */
  attrTimeoutSec: number;
  /** Largest write the kernel sends in one request. */
  maxWrite: number;
  /** How long to look for the kernel's next request after serving, before sleeping (0: never). */
  busyPollUs: number;
  log: (message: string) => void;
}

export class FuseMount {
  private watcher: NodeJS.Timeout | undefined;
  private unmounted = false;

  private constructor(
    private readonly session: FuseSession,
    readonly mountpoint: string,
  ) {}

  static async mount(fs: Filesystem, options: MountOptions): Promise<FuseMount> {
    const mountpoint = path.resolve(options.mountpoint);
    await clearDeadMount(mountpoint);
    if (await isMounted(mountpoint)) throw new Error(`${mountpoint} is already a mount point`);
    await fsp.mkdir(mountpoint, { recursive: true });
    const mountOptions = [`fsname=${sanitize(options.source)}`, 'subtype=tidefs'];
    if (options.allowOther) mountOptions.push('allow_other', 'default_permissions');
    const sessionOptions = [`max_readahead=${READ_AHEAD_BYTES}`];
    let session: FuseSession | undefined;
    const handlers = fuseHandlers(fs, () => session!, { timeoutSec: options.attrTimeoutSec, log: options.log });
    session = FuseSession.mount(mountpoint, mountOptions, sessionOptions, options.maxWrite, options.busyPollUs, handlers);
    try {
      // The kernel sets the read-ahead window from the INIT answer: widen it only after that.
      await Promise.race([session.ready, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
      await raiseReadAhead(mountpoint, options.log);
    } catch (err) {
      session.unmount();
      throw err;
    }
    return new FuseMount(session, mountpoint);
  }

  /**
   * Call `onGone` (once) if the mount disappears without unmount(): `umount` from a shell (seen in
   * the mount table, even while files are still open), or the connection aborted.
   */
  watch(onGone: () => void, intervalMs = 1000): void {
    const gone = (): void => {
      if (this.unmounted) return;
      this.unmounted = true;
      if (this.watcher) clearInterval(this.watcher);
      onGone();
    };
    this.session.whenGone(gone);
    this.watcher = setInterval(() => {
      void isMounted(this.mountpoint).then((mounted) => {
        if (!mounted) gone();
      });
    }, intervalMs);
    this.watcher.unref();
  }

  /** Unmount; lazily if files are still open, so the process can finish and exit. */
  async unmount(): Promise<void> {
    if (this.watcher) clearInterval(this.watcher);
    this.unmounted = true;
    this.session.unmount();
    // Still in the mount table: the connection was aborted (a dead mount), or detaching failed.
    if (await isMounted(this.mountpoint)) await exec('fusermount', ['-uz', this.mountpoint]).catch(() => undefined);
  }
}

/** The fields of the mount table's (/proc/self/mountinfo) line for `mountpoint`, if it is mounted. */
async function mountInfo(mountpoint: string): Promise<string[] | undefined> {
  return (await fsp.readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((line) => line.split(' '))
    .find((fields) => unescapeMountField(fields[4] ?? '') === mountpoint);
}

async function isMounted(mountpoint: string): Promise<boolean> {
  return (await mountInfo(mountpoint)) !== undefined;
}

/**
 * The kernel gives a new FUSE mount the default read-ahead window of 128 KiB, whatever the INIT
 * answer allows, so sequential reads would come in requests of 128 KiB; as root, widen it. Found
 * through /proc/self/mountinfo: a stat of the mount point would be a request to this very process.
 */
async function raiseReadAhead(mountpoint: string, log: (message: string) => void): Promise<void> {
  const device = (await mountInfo(mountpoint))?.[2];
  if (!device) return;
  try {
    await fsp.writeFile(`/sys/class/bdi/${device}/read_ahead_kb`, String(READ_AHEAD_BYTES / 1024));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS') log(`could not widen read-ahead: ${(err as Error).message}`);
  }
}

/** A FUSE mount whose process died answers ENOTCONN: detach it so the mountpoint can be reused. */
async function clearDeadMount(mountpoint: string): Promise<void> {
  if (!(await isMounted(mountpoint))) return;
  try {
    await fsp.stat(mountpoint);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTCONN') {
      await exec('fusermount', ['-uz', mountpoint]).catch(() => exec('umount', ['-l', mountpoint]));
    }
  }
}

/** The kernel writes space, tab, newline and backslash in mount table fields as octal escapes. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Mount option values cannot contain commas or spaces. */
function sanitize(source: string): string {
  return source.replace(/[,\s\\]/g, '_');
}
