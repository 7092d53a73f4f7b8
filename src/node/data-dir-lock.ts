// One process per data directory, and no data directory trusted after a power cut it cannot
// survive. The lock file records the owner's pid, the machine's boot and the durability mode. A
// lock whose owner is gone is taken over, unless that owner ran in an earlier boot of the machine
// with 'process' durability: that mode does not flush the directory to disk, so the machine going
// down under it (a power cut, a kernel crash) may have left torn metadata, or metadata naming
// written bytes that never reached the disk, which a write-back would then send to the bucket.
import fs from 'node:fs';
import path from 'node:path';
import type { Durability } from '../raft/storage/lmdb-log-storage.js';

interface LockRecord {
  pid: number;
  /** The machine's boot id when the lock was taken; absent in locks of older versions. */
  boot?: string;
  durability?: Durability;
}

export interface LockOptions {
  durability: Durability;
  /** Take over a lock left by the machine going down under 'process' durability (it shut down cleanly). */
  trustAfterCrash: boolean;
  /** This boot's id; defaults to the kernel's (/proc/sys/kernel/random/boot_id). */
  boot?: string;
}

/** Takes the lock of `dataDir`; returns the lock file's path, to remove when done. */
export function lockDataDir(dataDir: string, options: LockOptions): string {
  const lockFile = path.join(dataDir, 'lock');
  const boot = options.boot ?? currentBoot();
  const mine: LockRecord = { pid: process.pid, ...(boot !== undefined ? { boot } : {}), durability: options.durability };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockFile, JSON.stringify(mine) + '\n', { flag: 'wx' });
      return lockFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = readLock(lockFile);
      const earlierBoot = owner.boot !== undefined && boot !== undefined && owner.boot !== boot;
      if (!earlierBoot && owner.pid > 0 && owner.pid !== process.pid && processAlive(owner.pid)) {
        throw new Error(`data directory ${dataDir} is in use by process ${owner.pid}`);
      }
      if (earlierBoot && owner.durability === 'process' && !options.trustAfterCrash) {
        throw new Error(
          `data directory ${dataDir} was in use with --durability process when the machine went down, ` +
            'so it may be damaged: remove it (what was not written back to the bucket is lost), ' +
            'or mount with --trust-data-dir if the machine shut down cleanly',
        );
      }
      fs.rmSync(lockFile, { force: true });
    }
  }
  throw new Error(`cannot lock data directory ${dataDir}`);
}

/** The lock's record; a lock of an older version holds the pid alone. */
function readLock(lockFile: string): LockRecord {
  const text = fs.readFileSync(lockFile, 'utf8').trim();
  try {
    const record = JSON.parse(text) as Partial<LockRecord> | number;
    if (typeof record === 'number') return { pid: record };
    return { ...record, pid: Number(record.pid) || 0 };
  } catch {
    return { pid: 0 };
  }
}

function currentBoot(): string | undefined {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
