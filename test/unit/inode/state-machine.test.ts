// The inode state machine applied directly (no Raft): namespace rules, chunk bookkeeping,
// listings from the bucket, and the write-back protocol's effects on dirtiness and tombstones.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Kind } from '../../../src/gen/inode.js';
import { ChunkStore } from '../../../src/inode/chunk-store.js';
import { type ApplyResult, type CommandOp, encodeCommand } from '../../../src/inode/commands.js';
import { MetadataStore } from '../../../src/inode/metadata-store.js';
import { InodeStateMachine } from '../../../src/inode/state-machine.js';
import { ROOT_INO, isDirty, type InodeId } from '../../../src/inode/types.js';
import { EntryType } from '../../../src/raft/types.js';

const CHUNK = 16;

describe('InodeStateMachine', () => {
  let dir: string;
  let env: RootDatabase;
  let sm: InodeStateMachine;
  let store: MetadataStore;
  let index = 0;
  let clock = 1000;

  const apply = (op: CommandOp): ApplyResult =>
    sm.apply({ term: 1, index: ++index, type: EntryType.Normal, data: encodeCommand(op, ++clock) }) as ApplyResult;
  const ok = (op: CommandOp): Extract<ApplyResult, { ok: true }> => {
    const r = apply(op);
    if (!r.ok) throw new Error(`${op.$case} failed: ${r.message}`);
    return r;
  };
  const create = (parent: InodeId, name: string, kind = Kind.KIND_FILE): InodeId =>
    ok({ $case: 'create', value: { parent, name, kind, mode: 0o644, uid: 0, gid: 0, symlinkTarget: '' } }).ino!;
  const read = async (ino: InodeId, chunk: number): Promise<string> => {
    const buf = Buffer.alloc(CHUNK);
    await sm.chunks.read(ino, chunk, 0, CHUNK, buf, 0);
    return buf.toString('latin1').replace(/\0+$/, '');
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidefs-sm-'));
    env = open({ path: path.join(dir, 'meta'), maxDbs: 32 });
    store = new MetadataStore(env);
    sm = new InodeStateMachine(store, new ChunkStore(path.join(dir, 'chunks'), CHUNK, env, 'process'), {
      chunkSize: CHUNK,
      prefix: 'pre/',
      groupId: 1,
      defaultUid: 7,
      defaultGid: 8,
      defaultFilePerm: 0o644,
      defaultDirPerm: 0o755,
    });
    index = 0;
  });

  afterEach(async () => {
    sm.chunks.close();
    await env.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates entries, refuses duplicates and reports the right errors', () => {
    const d = create(ROOT_INO, 'd', Kind.KIND_DIR);
    const f = create(d, 'f');
    expect(store.lookup(d, 'f')).toBe(f);
    expect(apply({ $case: 'create', value: { parent: d, name: 'f', kind: Kind.KIND_FILE, mode: 0, uid: 0, gid: 0, symlinkTarget: '' } })).toMatchObject({ ok: false, error: 'EEXIST' });
    expect(apply({ $case: 'create', value: { parent: f, name: 'x', kind: Kind.KIND_FILE, mode: 0, uid: 0, gid: 0, symlinkTarget: '' } })).toMatchObject({ ok: false, error: 'ENOTDIR' });
    expect(apply({ $case: 'unlink', value: { parent: ROOT_INO, name: 'd', dir: true, keepOrphan: false } })).toMatchObject({ ok: false, error: 'ENOTEMPTY' });
    expect(apply({ $case: 'unlink', value: { parent: ROOT_INO, name: 'd', dir: false, keepOrphan: false } })).toMatchObject({ ok: false, error: 'EISDIR' });
    expect(apply({ $case: 'unlink', value: { parent: d, name: 'f', dir: true, keepOrphan: false } })).toMatchObject({ ok: false, error: 'ENOTDIR' });
    expect(store.inode(ROOT_INO)!.nlink).toBe(3);
    expect(sm.keys.keysOf(f, store.inode(f)!.kind)).toEqual(['pre/d/f']);
    expect(sm.appliedIndex()).toBe(index);
  });

  it('writes across chunks, records written ranges, and truncates them away', async () => {
    const f = create(ROOT_INO, 'f');
    ok({ $case: 'write', value: { ino: f, offset: 10, data: Buffer.from('abcdefghij') } });
    expect(store.inode(f)!.size).toBe(20);
    expect(store.writtenRanges(f, 0)).toEqual([10, 16]);
    expect(store.writtenRanges(f, 1)).toEqual([0, 4]);
    expect(await read(f, 1)).toBe('ghij');
    ok({ $case: 'truncate', value: { ino: f, size: 12 } });
    expect(store.writtenRanges(f, 1)).toBeUndefined();
    expect(store.writtenRanges(f, 0)).toEqual([10, 12]);
    expect(sm.chunks.exists(f, 1)).toBe(false);
    ok({ $case: 'truncate', value: { ino: f, size: 40 } });
    const buf = Buffer.alloc(CHUNK);
    await sm.chunks.read(f, 0, 0, CHUNK, buf, 0);
    expect(buf.subarray(10, 16).toString('latin1')).toBe('ab\0\0\0\0');
  });

  it('renames over an existing file and tombstones the objects that go away', () => {
    ok({ $case: 'mergeListing', value: { dir: ROOT_INO, generation: 0, files: [{ name: 'a', size: 3, etag: 'e1', mtimeMs: 5 }, { name: 'b', size: 4, etag: 'e2', mtimeMs: 5 }], dirs: ['sub'], hasMarker: false } });
    ok({ $case: 'finishListing', value: { dir: ROOT_INO, generation: 0 } });
    const a = store.lookup(ROOT_INO, 'a')!;
    const b = store.lookup(ROOT_INO, 'b')!;
    expect(isDirty(store.inode(a)!)).toBe(false);
    ok({ $case: 'rename', value: { parent: ROOT_INO, name: 'a', newParent: ROOT_INO, newName: 'b', noReplace: false, keepTargetOrphan: false } });
    expect(store.lookup(ROOT_INO, 'b')).toBe(a);
    expect(store.inode(b)).toBeUndefined();
    expect([...store.pendingDeletes()].sort()).toEqual(['pre/a', 'pre/b']);
    // The moved file's content still lives at pre/a until it is flushed to pre/b.
    expect([...store.objectReferrers('pre/a')]).toEqual([a]);
    expect(isDirty(store.inode(a)!)).toBe(true);
    const rec = store.inode(a)!;
    ok({ $case: 'beginFlush', value: { ino: a, version: rec.version, keys: ['pre/b'], uploadId: '' } });
    ok({ $case: 'finishFlush', value: { ino: a, version: rec.version, keys: ['pre/b'], etag: 'e3', size: 3 } });
    expect(isDirty(store.inode(a)!)).toBe(false);
    expect([...store.objectReferrers('pre/a')]).toEqual([]);
    expect([...store.pendingDeletes()]).toEqual(['pre/a']);
    expect(store.inode(a)!.object).toEqual({ key: 'pre/b', etag: 'e3', size: 3 });
  });

  it('forgets the tombstones of deleted objects, a batch per entry or one key per entry (older logs)', () => {
    ok({ $case: 'mergeListing', value: { dir: ROOT_INO, generation: 0, files: ['a', 'b', 'c', 'd'].map((name) => ({ name, size: 1, etag: `e-${name}`, mtimeMs: 5 })), dirs: [], hasMarker: false } });
    ok({ $case: 'finishListing', value: { dir: ROOT_INO, generation: 0 } });
    for (const name of ['a', 'b', 'c', 'd']) ok({ $case: 'unlink', value: { parent: ROOT_INO, name, dir: false, keepOrphan: false } });
    expect([...store.pendingDeletes()].sort()).toEqual(['pre/a', 'pre/b', 'pre/c', 'pre/d']);
    ok({ $case: 'forgetTombstone', value: { key: '', keys: ['pre/a', 'pre/c'] } });
    expect([...store.pendingDeletes()].sort()).toEqual(['pre/b', 'pre/d']);
    ok({ $case: 'forgetTombstone', value: { key: 'pre/d', keys: [] } });
    expect([...store.pendingDeletes()]).toEqual(['pre/b']);
  });

  it('keeps local changes when a listing no longer shows an entry, and drops clean vanished ones', () => {
    ok({ $case: 'mergeListing', value: { dir: ROOT_INO, generation: 1, files: [{ name: 'x', size: 1, etag: 'e', mtimeMs: 1 }, { name: 'y', size: 1, etag: 'e', mtimeMs: 1 }], dirs: [], hasMarker: false } });
    ok({ $case: 'finishListing', value: { dir: ROOT_INO, generation: 1 } });
    const y = store.lookup(ROOT_INO, 'y')!;
    ok({ $case: 'write', value: { ino: y, offset: 0, data: Buffer.from('z') } });
    const local = create(ROOT_INO, 'local');
    ok({ $case: 'mergeListing', value: { dir: ROOT_INO, generation: index, files: [], dirs: [], hasMarker: false } });
    ok({ $case: 'finishListing', value: { dir: ROOT_INO, generation: index - 1 } });
    expect(store.lookup(ROOT_INO, 'x')).toBeUndefined();
    expect(store.lookup(ROOT_INO, 'y')).toBe(y);
    expect(store.lookup(ROOT_INO, 'local')).toBe(local);
    expect([...store.pendingDeletes()]).toEqual([]);
  });

  it('adopts an object changed outside tidefs only when the listing is newer than what it knows', () => {
    ok({ $case: 'mergeListing', value: { dir: ROOT_INO, generation: 1, files: [{ name: 'f', size: 10, etag: 'old', mtimeMs: 1 }], dirs: [], hasMarker: false } });
    const f = store.lookup(ROOT_INO, 'f')!;
    ok({ $case: 'mergeListing', value: { dir: ROOT_INO, generation: 1, files: [{ name: 'f', size: 4, etag: 'stale', mtimeMs: 2 }], dirs: [], hasMarker: false } });
    expect(store.inode(f)!.object!.etag).toBe('old');
    ok({ $case: 'mergeListing', value: { dir: ROOT_INO, generation: 5, files: [{ name: 'f', size: 4, etag: 'new', mtimeMs: 2 }], dirs: [], hasMarker: false } });
    expect(store.inode(f)!).toMatchObject({ size: 4, baseLimit: 4, object: { etag: 'new', size: 4 } });
  });

  it('a file and a directory of the same name: the directory wins', () => {
    ok({ $case: 'mergeListing', value: { dir: ROOT_INO, generation: 1, files: [{ name: 'n', size: 1, etag: 'e', mtimeMs: 1 }], dirs: [], hasMarker: false } });
    ok({ $case: 'mergeListing', value: { dir: ROOT_INO, generation: 1, files: [], dirs: ['n'], hasMarker: false } });
    expect(store.inode(store.lookup(ROOT_INO, 'n')!)!.kind).toBe(1);
    expect([...store.pendingDeletes()]).toEqual([]);
  });

  it('keeps an unlinked open file as an orphan until it is dropped', () => {
    const f = create(ROOT_INO, 'f');
    ok({ $case: 'write', value: { ino: f, offset: 0, data: Buffer.from('data') } });
    ok({ $case: 'unlink', value: { parent: ROOT_INO, name: 'f', dir: false, keepOrphan: true } });
    expect(store.inode(f)!.orphan).toBe(true);
    expect(store.dirtyCount()).toBe(0);
    expect([...store.orphanInodes()]).toEqual([f]);
    ok({ $case: 'dropOrphan', value: { ino: f } });
    expect(store.inode(f)).toBeUndefined();
    expect(sm.chunks.exists(f, 0)).toBe(false);
  });

  it('rejects moving a directory into itself', () => {
    const a = create(ROOT_INO, 'a', Kind.KIND_DIR);
    const b = create(a, 'b', Kind.KIND_DIR);
    expect(apply({ $case: 'rename', value: { parent: ROOT_INO, name: 'a', newParent: b, newName: 'a', noReplace: false, keepTargetOrphan: false } })).toMatchObject({ ok: false, error: 'EINVAL' });
  });

  it('survives a snapshot and restore', async () => {
    const f = create(ROOT_INO, 'f');
    ok({ $case: 'write', value: { ino: f, offset: 0, data: Buffer.from('hello world, more than a chunk') } });
    const image = await sm.snapshot();
    ok({ $case: 'unlink', value: { parent: ROOT_INO, name: 'f', dir: false, keepOrphan: false } });
    await sm.restore(image);
    expect(store.lookup(ROOT_INO, 'f')).toBe(f);
    expect(await read(f, 1)).toBe('e than a chunk');
  });
});
