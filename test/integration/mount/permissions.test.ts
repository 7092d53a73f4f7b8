// Permissions of a mount served by root: it mounts with allow_other and default_permissions, so
// other users can use it and the kernel checks modes and owners. Another user (nobody, 65534, run
// through setpriv) is refused a 0600 file of root's, reads a 0644 one, cannot write or chmod root's
// files or create in root's directories, and owns (uid and gid, in the mount and in the bucket's
// object metadata) what it creates in a directory open to it.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3ObjectStore } from '../../../src/node/s3/s3-object-store.js';
import { startMount, stopAllMounts, type MountHandle } from '../../support/mount.js';
import { createTestBucket, s3TestStore, type TestBucket } from '../../support/s3.js';
import { runAs, waitUntil } from './mount-test-tools.js';

const NOBODY = 65534;

describe('a mount served by root, used by another user', () => {
  let bucket: TestBucket;
  let store: S3ObjectStore;
  let mount: MountHandle;
  const at = (...parts: string[]): string => path.join(mount.mountpoint, ...parts);

  beforeAll(async () => {
    bucket = await createTestBucket('mount-perms');
    store = s3TestStore(bucket.name);
    mount = await startMount({ bucket: bucket.name, args: ['--close-delay', '100ms'] });
    // The temporary directory above the mountpoint is 0700: let the other user reach the mount.
    await fsp.chmod(path.dirname(mount.mountpoint), 0o755);
  });

  afterAll(async () => {
    await stopAllMounts();
    store?.close();
    await bucket?.destroy();
  });

  it('is mounted with allow_other and default_permissions', async () => {
    const mounts = await fsp.readFile('/proc/self/mounts', 'utf8');
    const line = mounts.split('\n').find((l) => l.split(' ')[1] === mount.mountpoint);
    expect(line).toBeDefined();
    expect(line).toMatch(/\ballow_other\b/);
    expect(line).toMatch(/\bdefault_permissions\b/);
  });

  it('refuses a 0600 file of root to another user (EACCES) and lets it read the file at 0644', async () => {
    await fsp.writeFile(at('secret.txt'), 'only for root', { mode: 0o600 });
    await fsp.chmod(at('secret.txt'), 0o600);
    const refused = await runAs(NOBODY, ['cat', at('secret.txt')]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Permission denied/);
    expect(refused.stdout).toBe('');

    await fsp.chmod(at('secret.txt'), 0o644);
    const allowed = await runAs(NOBODY, ['cat', at('secret.txt')]);
    expect(allowed).toMatchObject({ code: 0, stdout: 'only for root' });

    // Readable is not writable, and only the owner may change the mode.
    const write = await runAs(NOBODY, ['sh', '-c', `echo more >> '${at('secret.txt')}'`]);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/Permission denied/);
    const chmod = await runAs(NOBODY, ['chmod', '666', at('secret.txt')]);
    expect(chmod.code).not.toBe(0);
    expect(chmod.stderr).toMatch(/Operation not permitted/);
    expect(await fsp.readFile(at('secret.txt'), 'utf8')).toBe('only for root');
    expect((await fsp.stat(at('secret.txt'))).mode & 0o7777).toBe(0o644);
  });

  it('refuses to let another user create entries in a directory of root\'s (0755)', async () => {
    const touch = await runAs(NOBODY, ['touch', at('not-allowed.txt')]);
    expect(touch.code).not.toBe(0);
    expect(touch.stderr).toMatch(/Permission denied/);
    const mkdir = await runAs(NOBODY, ['mkdir', at('not-allowed-dir')]);
    expect(mkdir.code).not.toBe(0);
    expect(mkdir.stderr).toMatch(/Permission denied/);
    expect(await fsp.readdir(mount.mountpoint)).not.toContain('not-allowed.txt');
  });

  it('gives what another user creates to that user (uid and gid), in the mount and in the bucket', async () => {
    await fsp.mkdir(at('pub'));
    await fsp.chmod(at('pub'), 0o777);
    const made = await runAs(NOBODY, ['sh', '-c', `echo hi > '${at('pub', 'mine.txt')}' && mkdir '${at('pub', 'mydir')}'`]);
    expect(made, made.stderr).toMatchObject({ code: 0 });
    for (const name of ['mine.txt', 'mydir']) {
      const st = await fsp.stat(at('pub', name));
      expect([st.uid, st.gid], name).toEqual([NOBODY, NOBODY]);
    }
    // Its own file: it may change the mode; root's files stay root's.
    expect(await runAs(NOBODY, ['chmod', '600', at('pub', 'mine.txt')])).toMatchObject({ code: 0 });
    expect((await fsp.stat(at('pub', 'mine.txt'))).mode & 0o7777).toBe(0o600);
    await waitUntil('pub/mine.txt is in the bucket with its owner', async () => {
      const meta = (await store.head('pub/mine.txt'))?.metadata;
      return meta?.uid === String(NOBODY) && meta.gid === String(NOBODY) && (Number(meta.mode) & 0o7777) === 0o600;
    });
    await waitUntil('pub/mydir/ is in the bucket with its owner', async () => (await store.head('pub/mydir/'))?.metadata?.uid === String(NOBODY));
  });
});
