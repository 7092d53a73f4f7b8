// The data directory's lock: one process at a time; a lock left by a killed process is taken
// over; a lock left by the machine going down under 'process' durability is refused (unless the
// mount says the machine shut down cleanly), under 'fsync' durability taken over; locks of older
// versions (a pid alone) still work.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockDataDir } from '../../../src/node/data-dir-lock.js';

/** A pid no process has (above the kernel's default pid_max of 4,194,304). */
const GONE = 4_999_999;

describe('lockDataDir', () => {
  let dir: string;
  const lockFile = (): string => path.join(dir, 'lock');
  const leave = (record: unknown): void => fs.writeFileSync(lockFile(), typeof record === 'string' ? record : JSON.stringify(record));
  const lock = (options: Partial<Parameters<typeof lockDataDir>[1]> = {}): string =>
    lockDataDir(dir, { durability: 'process', trustAfterCrash: false, boot: 'boot-now', ...options });

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidefs-lock-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('records the owner, its boot and its durability, and refuses a second owner while it lives', () => {
    expect(lock({ durability: 'fsync' })).toBe(lockFile());
    expect(JSON.parse(fs.readFileSync(lockFile(), 'utf8'))).toEqual({ pid: process.pid, boot: 'boot-now', durability: 'fsync' });
    // The same process again (a remount): its own lock is taken over.
    expect(lock()).toBe(lockFile());
    leave({ pid: process.ppid, boot: 'boot-now', durability: 'process' });
    expect(() => lock()).toThrow(`data directory ${dir} is in use by process ${process.ppid}`);
  });

  it('takes over the lock of a process killed in this boot, whatever its durability', () => {
    for (const durability of ['process', 'fsync']) {
      leave({ pid: GONE, boot: 'boot-now', durability });
      expect(lock()).toBe(lockFile());
    }
  });

  it("refuses a lock the machine going down left under 'process' durability, unless told to trust it", () => {
    leave({ pid: GONE, boot: 'boot-before', durability: 'process' });
    expect(() => lock()).toThrow(/was in use with --durability process when the machine went down.*--trust-data-dir/);
    expect(fs.existsSync(lockFile())).toBe(true);
    // The pid of the earlier boot may belong to a live process now: it is not the owner.
    leave({ pid: process.ppid, boot: 'boot-before', durability: 'process' });
    expect(() => lock()).toThrow(/when the machine went down/);
    expect(lock({ trustAfterCrash: true })).toBe(lockFile());
  });

  it("takes over a lock the machine going down left under 'fsync' durability", () => {
    leave({ pid: process.ppid, boot: 'boot-before', durability: 'fsync' });
    expect(lock()).toBe(lockFile());
  });

  it('reads the lock of an older version (a pid alone), and a garbled one, as locks of unknown boot', () => {
    leave(String(GONE));
    expect(lock()).toBe(lockFile());
    leave(String(process.ppid));
    expect(() => lock()).toThrow(`is in use by process ${process.ppid}`);
    leave('not a lock');
    expect(lock()).toBe(lockFile());
  });
});
