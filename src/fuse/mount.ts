// The kernel mount's lifecycle: clear a dead mount left by a crashed process, mount with the
// options that make FUSE fast and safe (big writes, page cache kept for unchanged files, short
// kernel attribute caches so bucket changes show within the TTL, kernel permission checks), notice
// when someone unmounts us from outside, and unmount.
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Filesystem } from '../node/filesystem.js';
import { FuseSession } from './fuse-native.js';
import { fuseOperations } from './operations.js';

const exec = promisify(execFile);

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
    const rawOptions = [
      // st_ino is the inode's own number, so hard links show as one file.
      'use_ino',
      'big_writes',
      `max_write=${options.maxWrite}`,
      // Passed here, not as fuse-native's entryTimeout/attrTimeout: it drops a 0 and libfuse's 1 s applies.
      `entry_timeout=${options.attrTimeoutSec}`,
      `attr_timeout=${options.attrTimeoutSec}`,
      `negative_timeout=${options.attrTimeoutSec}`,
      'max_readahead=4194304',
    ];
    let session: FuseSession | undefined;
    const ops = fuseOperations(fs, () => session!.callerIds(), options.log);
    session = new FuseSession(mountpoint, ops, {
      mkdir: true,
      timeout: false,
      allowOther: options.allowOther,
      defaultPermissions: options.allowOther,
      autoCache: true,
      fsname: [sanitize(options.source), ...rawOptions].join(','),
      subtype: 'tidefs',
    });
    await session.mount();
    return new FuseMount(session, mountpoint);
  }

  /** Call `onGone` (once) if the mount disappears without unmount() — e.g. `umount` from a shell. */
  watch(onGone: () => void, intervalMs = 1000): void {
    this.watcher = setInterval(() => {
      void isMounted(this.mountpoint).then((mounted) => {
        if (!mounted && !this.unmounted) {
          this.unmounted = true;
          if (this.watcher) clearInterval(this.watcher);
          onGone();
        }
      });
    }, intervalMs);
    this.watcher.unref();
  }

  /** Unmount; lazily if files are still open, so the process can finish and exit. */
  async unmount(): Promise<void> {
    if (this.watcher) clearInterval(this.watcher);
    if (this.unmounted) return;
    this.unmounted = true;
    try {
      await this.session.unmount();
    } catch {
      await exec('fusermount', ['-uz', this.mountpoint]).catch(() => undefined);
    }
  }
}

async function mountEntries(): Promise<string[]> {
  const text = await fsp.readFile('/proc/self/mounts', 'utf8');
  return text.split('\n').map((line) => line.split(' ')[1]?.replace(/\\040/g, ' ') ?? '');
}

async function isMounted(mountpoint: string): Promise<boolean> {
  return (await mountEntries()).includes(mountpoint);
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

/** Mount option values cannot contain commas or spaces. */
function sanitize(source: string): string {
  return source.replace(/[,\s\\]/g, '_');
}
