// Reference-model test of the filesystem (in the manner of mountpoint-s3's reftests): random
// sequences of create / write / read / truncate / rename / unlink / mkdir / rmdir / fsync / readdir
// / stat run against a real tidefs mount (FUSE, local S3) and against a small in-memory model; every
// observation (result or errno) must agree. Then the mount is stopped (writing everything back),
// a new mount with an empty data directory is started, and every run's final tree must still
// match the model: the bucket alone holds the truth.
// Runs: TIDEFS_SIM_RUNS (default 100); replay: TIDEFS_SIM_SEED.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestBucket, type TestBucket } from '../support/s3.js';
import { startMount, stopAllMounts, type MountHandle } from '../support/mount.js';

type Node = { kind: 'file'; data: Buffer } | { kind: 'dir' };
type Tree = Map<string, Node>;

type Op =
  | { op: 'create'; path: string; data: Payload }
  | { op: 'write'; path: string; offset: number; data: Payload }
  | { op: 'read'; path: string }
  | { op: 'truncate'; path: string; size: number }
  | { op: 'rename'; from: string; to: string }
  | { op: 'unlink'; path: string }
  | { op: 'mkdir'; path: string }
  | { op: 'rmdir'; path: string }
  | { op: 'fsync'; path: string }
  | { op: 'readdir'; path: string }
  | { op: 'stat'; path: string };

type Outcome = { ok: true; value?: unknown } | { ok: false; code: string };

const NAMES = ['a', 'b', 'c'];
const pathArb = fc
  .array(fc.constantFrom(...NAMES), { minLength: 1, maxLength: 3 })
  .map((parts) => '/' + parts.join('/'));
const dirPathArb = fc.oneof(fc.constant('/'), pathArb);
/** Bytes to write, printed briefly in counterexamples. */
class Payload {
  constructor(
    readonly bytes: Buffer,
    private readonly label: string,
  ) {}
  [fc.toStringMethod](): string {
    return this.label;
  }
}
const dataArb = fc.oneof(
  fc.uint8Array({ minLength: 0, maxLength: 64 }).map((a) => new Payload(Buffer.from(a), `bytes(${Buffer.from(a).toString('hex')})`)),
  fc.integer({ min: 1, max: 3 }).map((n) => new Payload(Buffer.alloc(n * 70_000, n), `fill(${n * 70_000} x ${n})`)),
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('create' as const), path: pathArb, data: dataArb }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('write' as const), path: pathArb, offset: fc.integer({ min: 0, max: 200_000 }), data: dataArb }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('read' as const), path: pathArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('truncate' as const), path: pathArb, size: fc.integer({ min: 0, max: 200_000 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('rename' as const), from: pathArb, to: pathArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('unlink' as const), path: pathArb }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('mkdir' as const), path: pathArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('rmdir' as const), path: pathArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('fsync' as const), path: pathArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('readdir' as const), path: dirPathArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('stat' as const), path: pathArb }) },
);

// ---- the model ----

const fail = (code: string): Outcome => ({ ok: false, code });

/** The errno a path walk to `p`'s parent gives, if any. */
function walkError(tree: Tree, p: string): string | undefined {
  const parts = p.split('/').filter(Boolean);
  let cur = '';
  for (const part of parts.slice(0, -1)) {
    cur += '/' + part;
    const node = tree.get(cur);
    if (!node) return 'ENOENT';
    if (node.kind !== 'dir') return 'ENOTDIR';
  }
  return undefined;
}

function children(tree: Tree, dir: string): string[] {
  const prefix = dir === '/' ? '/' : dir + '/';
  return [...tree.keys()].filter((k) => k.startsWith(prefix) && !k.slice(prefix.length).includes('/')).map((k) => k.slice(prefix.length));
}

function applyModel(tree: Tree, o: Op): Outcome {
  const get = (p: string): Node | undefined => (p === '/' ? { kind: 'dir' } : tree.get(p));
  switch (o.op) {
    case 'create': {
      const e = walkError(tree, o.path);
      if (e) return fail(e);
      if (get(o.path)?.kind === 'dir') return fail('EISDIR');
      tree.set(o.path, { kind: 'file', data: Buffer.from(o.data.bytes) });
      return { ok: true };
    }
    case 'write': {
      const e = walkError(tree, o.path);
      if (e) return fail(e);
      const n = get(o.path);
      if (!n) return fail('ENOENT');
      if (n.kind === 'dir') return fail('EISDIR');
      // POSIX: a write of no bytes changes nothing, not even the size when it starts past the end.
      if (o.data.bytes.length === 0) return { ok: true };
      const end = o.offset + o.data.bytes.length;
      const grown = end > n.data.length ? Buffer.concat([n.data, Buffer.alloc(end - n.data.length)]) : n.data;
      o.data.bytes.copy(grown, o.offset);
      n.data = grown;
      return { ok: true };
    }
    case 'read': {
      const e = walkError(tree, o.path);
      if (e) return fail(e);
      const n = get(o.path);
      if (!n) return fail('ENOENT');
      if (n.kind === 'dir') return fail('EISDIR');
      return { ok: true, value: n.data.toString('base64') };
    }
    case 'truncate': {
      const e = walkError(tree, o.path);
      if (e) return fail(e);
      const n = get(o.path);
      if (!n) return fail('ENOENT');
      if (n.kind === 'dir') return fail('EISDIR');
      n.data = o.size <= n.data.length ? n.data.subarray(0, o.size) : Buffer.concat([n.data, Buffer.alloc(o.size - n.data.length)]);
      return { ok: true };
    }
    case 'mkdir': {
      const e = walkError(tree, o.path);
      if (e) return fail(e);
      if (get(o.path)) return fail('EEXIST');
      tree.set(o.path, { kind: 'dir' });
      return { ok: true };
    }
    case 'rmdir': {
      const e = walkError(tree, o.path);
      if (e) return fail(e);
      const n = get(o.path);
      if (!n) return fail('ENOENT');
      if (n.kind !== 'dir') return fail('ENOTDIR');
      if (children(tree, o.path).length > 0) return fail('ENOTEMPTY');
      tree.delete(o.path);
      return { ok: true };
    }
    case 'unlink': {
      const e = walkError(tree, o.path);
      if (e) return fail(e);
      const n = get(o.path);
      if (!n) return fail('ENOENT');
      if (n.kind === 'dir') return fail('EISDIR');
      tree.delete(o.path);
      return { ok: true };
    }
    case 'rename': {
      const e = walkError(tree, o.from) ?? walkError(tree, o.to);
      if (e) return fail(e);
      const src = get(o.from);
      if (!src) return fail('ENOENT');
      if (o.from === o.to) return { ok: true };
      if (src.kind === 'dir' && (o.to + '/').startsWith(o.from + '/')) return fail('EINVAL');
      const dst = get(o.to);
      if (dst) {
        if (src.kind === 'dir' && dst.kind !== 'dir') return fail('ENOTDIR');
        if (src.kind !== 'dir' && dst.kind === 'dir') return fail('EISDIR');
        if (dst.kind === 'dir' && children(tree, o.to).length > 0) return fail('ENOTEMPTY');
      }
      const moved = [...tree.entries()].filter(([k]) => k === o.from || k.startsWith(o.from + '/'));
      tree.delete(o.to);
      for (const [k] of moved) tree.delete(k);
      for (const [k, v] of moved) tree.set(o.to + k.slice(o.from.length), v);
      return { ok: true };
    }
    case 'fsync': {
      const e = walkError(tree, o.path);
      if (e) return fail(e);
      return get(o.path) ? { ok: true } : fail('ENOENT');
    }
    case 'readdir': {
      const e = o.path === '/' ? undefined : walkError(tree, o.path);
      if (e) return fail(e);
      const n = get(o.path);
      if (!n) return fail('ENOENT');
      if (n.kind !== 'dir') return fail('ENOTDIR');
      return { ok: true, value: children(tree, o.path).sort() };
    }
    case 'stat': {
      const e = walkError(tree, o.path);
      if (e) return fail(e);
      const n = get(o.path);
      if (!n) return fail('ENOENT');
      return { ok: true, value: n.kind === 'dir' ? 'dir' : `file:${n.data.length}` };
    }
  }
}

// ---- the real thing ----

async function applyReal(root: string, o: Op): Promise<Outcome> {
  const at = (p: string): string => path.join(root, p);
  try {
    switch (o.op) {
      case 'create':
        await fsp.writeFile(at(o.path), o.data.bytes);
        return { ok: true };
      case 'write': {
        const fh = await fsp.open(at(o.path), 'r+');
        try {
          await fh.write(o.data.bytes, 0, o.data.bytes.length, o.offset);
        } finally {
          await fh.close();
        }
        return { ok: true };
      }
      case 'read':
        return { ok: true, value: (await fsp.readFile(at(o.path))).toString('base64') };
      case 'truncate':
        await fsp.truncate(at(o.path), o.size);
        return { ok: true };
      case 'mkdir':
        await fsp.mkdir(at(o.path));
        return { ok: true };
      case 'rmdir':
        await fsp.rmdir(at(o.path));
        return { ok: true };
      case 'unlink':
        await fsp.unlink(at(o.path));
        return { ok: true };
      case 'rename':
        await fsp.rename(at(o.from), at(o.to));
        return { ok: true };
      case 'fsync': {
        const fh = await fsp.open(at(o.path), 'r');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
        return { ok: true };
      }
      case 'readdir':
        return { ok: true, value: (await fsp.readdir(at(o.path))).sort() };
      case 'stat': {
        const st = await fsp.stat(at(o.path));
        return { ok: true, value: st.isDirectory() ? 'dir' : `file:${st.size}` };
      }
    }
  } catch (err) {
    return { ok: false, code: (err as NodeJS.ErrnoException).code ?? String(err) };
  }
}

async function snapshotTree(root: string, rel = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await fsp.readdir(path.join(root, rel), { withFileTypes: true })) {
    const p = `${rel}/${entry.name}`;
    if (entry.isDirectory()) {
      out[p] = 'dir';
      Object.assign(out, await snapshotTree(root, p));
    } else {
      out[p] = (await fsp.readFile(path.join(root, p))).toString('base64');
    }
  }
  return out;
}

function modelSnapshot(tree: Tree): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of tree) out[k] = v.kind === 'dir' ? 'dir' : v.data.toString('base64');
  return out;
}

describe('filesystem against a reference model', () => {
  let bucket: TestBucket;
  let mount: MountHandle;
  const finalTrees = new Map<string, Record<string, string>>();

  beforeAll(async () => {
    bucket = await createTestBucket('model');
    // 64 KiB chunks: writes of up to 210 KB cross chunk boundaries.
    mount = await startMount({ bucket: bucket.name, args: ['--close-delay', '200ms', '--chunk-size', '64KiB'] });
  });

  afterAll(async () => {
    await stopAllMounts();
    await bucket?.destroy();
  });

  it('agrees with the model operation by operation, and after a remount from the bucket alone', async () => {
    const runs = Number(process.env.TIDEFS_SIM_RUNS ?? 100);
    const seed = process.env.TIDEFS_SIM_SEED ? Number(process.env.TIDEFS_SIM_SEED) : undefined;
    let runNo = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
        const dir = `/run${runNo++}`;
        await fsp.mkdir(path.join(mount.mountpoint, dir));
        const root = path.join(mount.mountpoint, dir);
        const tree: Tree = new Map();
        for (const [i, o] of ops.entries()) {
          const expected = applyModel(tree, o);
          const actual = await applyReal(root, o);
          if (JSON.stringify(actual) !== JSON.stringify(expected)) {
            throw new Error(`step ${i} ${fc.stringify(o)}: expected ${JSON.stringify(expected).slice(0, 200)}, got ${JSON.stringify(actual).slice(0, 200)}`);
          }
        }
        expect(await snapshotTree(root)).toEqual(modelSnapshot(tree));
        finalTrees.set(dir, modelSnapshot(tree));
      }),
      { numRuns: runs, seed, endOnFailure: false, verbose: 1 },
    );

    expect(await mount.stop()).toBe(0);
    const fresh = await startMount({ bucket: bucket.name });
    for (const [dir, expected] of finalTrees) {
      expect(await snapshotTree(path.join(fresh.mountpoint, dir)), `after remount, ${dir}`).toEqual(expected);
    }
    expect(await fresh.stop()).toBe(0);
  });
});
