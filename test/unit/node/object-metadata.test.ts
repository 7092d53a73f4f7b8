// Attributes as S3 user metadata: a round trip keeps modes, owners, times and xattrs, and the
// security.* / system.* names tidefs does not store are dropped in both directions.
import { describe, expect, it } from 'vitest';
import { InodeKind, type InodeRecord } from '../../../src/inode/types.js';
import { fromObjectMetadata, isStoredXattrName, toObjectMetadata } from '../../../src/node/object-metadata.js';

function file(xattrs: Record<string, string>): InodeRecord {
  return {
    kind: InodeKind.File,
    perm: 0o640,
    uid: 1000,
    gid: 100,
    size: 1,
    atime: 1_700_000_000_123,
    mtime: 1_700_000_001_456,
    ctime: 1_700_000_001_456,
    nlink: 1,
    xattrs: Object.fromEntries(Object.entries(xattrs).map(([k, v]) => [k, Buffer.from(v)])),
    objectKeys: [],
    baseLimit: 0,
    metaLoaded: true,
    version: 1,
    flushedVersion: 0,
  };
}

describe('object metadata', () => {
  it('keeps every name outside security.* and system.*', () => {
    for (const name of ['user.a', 'trusted.b', 'securityx.c', 'systems.d', 'user.security.e']) expect(isStoredXattrName(name)).toBe(true);
    for (const name of ['security.capability', 'security.selinux', 'system.posix_acl_access', 'system.posix_acl_default']) {
      expect(isStoredXattrName(name)).toBe(false);
    }
  });

  it('round-trips attributes and stored xattrs, and drops the others both ways', () => {
    const meta = toObjectMetadata(file({ 'user.color': 'blue', 'security.capability': 'cap', 'trusted.t': '' }));
    expect(JSON.parse(meta.xattrs!)).toEqual({ 'user.color': Buffer.from('blue').toString('base64'), 'trusted.t': '' });
    const parsed = fromObjectMetadata(meta);
    expect(parsed).toMatchObject({ mode: 0o640, uid: 1000, gid: 100, mtimeMs: 1_700_000_001_456, atimeMs: 1_700_000_000_123, isSymlink: false });
    expect(parsed.xattrs).toEqual({ 'user.color': Buffer.from('blue'), 'trusted.t': Buffer.alloc(0) });

    const injected = JSON.stringify({ 'system.posix_acl_access': 'AAAA', 'user.x': Buffer.from('y').toString('base64') });
    expect(fromObjectMetadata({ xattrs: injected }).xattrs).toEqual({ 'user.x': Buffer.from('y') });
    expect(toObjectMetadata(file({ 'security.selinux': 'label' })).xattrs).toBeUndefined();
  });
});
