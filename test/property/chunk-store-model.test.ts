// Reference-model test of ChunkStore: random sequences of writes, fills, truncations, removals (and
// a chunk made again in the transaction that removed it), adoptions of fetched chunks, evictions,
// transactions that fail and reopenings (the space count must survive one) run against the
// store (LMDB on disk, chunk files) and against a model of each chunk's bytes and held version.
// After every step each chunk must read back as the model has it, and have a file exactly when it
// has outgrown LMDB: a removed chunk's file is gone once its transaction committed (files are
// unlinked after the commit), and a chunk written again in the transaction that removed it keeps
// its file. Both
// durability modes: 'fsync' flushes inside every transaction, which must change nothing visible.
// Runs: TIDEFS_SIM_RUNS (default 100; 'fsync' a quarter of them, at least 20); replay: TIDEFS_SIM_SEED.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { RootDatabase } from 'lmdb';
import { describe, expect, it } from 'vitest';
import { ChunkStore, INLINE_LIMIT } from '../../src/inode/chunk-store.js';
import type { InodeId } from '../../src/inode/types.js';
import { openRaftEnvironment, type Durability } from '../../src/raft/storage/lmdb-log-storage.js';

const CHUNK = 4 * INLINE_LIMIT;
const CHUNKS = 4;
const INO = 3 as InodeId;

interface ModelChunk {
  bytes: Buffer;
  /** The object version whose bytes it holds at base positions ('' for none). */
  holds: string;
  /** Kept in a file: it has been bigger than INLINE_LIMIT since it was made. */
  file: boolean;
}
type Model = Map<number, ModelChunk>;

type Op =
  | { op: 'write'; chunk: number; offset: number; length: number; seed: number }
  | { op: 'fill'; chunk: number; cuts: number[]; length: number; seed: number }
  | { op: 'truncate'; chunk: number; length: number }
  | { op: 'remove'; chunk: number }
  | { op: 'removeThenWrite'; chunk: number; length: number; seed: number }
  | { op: 'removeThenFill'; chunk: number; cuts: number[]; length: number; seed: number }
  | { op: 'failedNewChunk'; chunk: number; length: number; seed: number }
  | { op: 'adopt'; chunk: number; length: number; seed: number }
  | { op: 'failedRemoval'; chunk: number }
  | { op: 'evict'; keepBytes: number }
  | { op: 'reopen' };

/** Sizes around the inline limit matter most: a chunk moves from LMDB to a file there. */
const sizeArb = fc.oneof(fc.integer({ min: 1, max: 4096 }), fc.integer({ min: INLINE_LIMIT - 2048, max: INLINE_LIMIT + 2048 }), fc.integer({ min: 1, max: CHUNK }));
const chunkArb = fc.integer({ min: 0, max: CHUNKS - 1 });
const seedArb = fc.integer({ min: 1, max: 0x7fffffff });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('write' as const), chunk: chunkArb, offset: fc.integer({ min: 0, max: CHUNK - 1 }), length: sizeArb, seed: seedArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('fill' as const), chunk: chunkArb, cuts: fc.uniqueArray(fc.integer({ min: 0, max: CHUNK }), { maxLength: 6 }), length: sizeArb, seed: seedArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('truncate' as const), chunk: chunkArb, length: fc.integer({ min: 0, max: CHUNK }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('remove' as const), chunk: chunkArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('removeThenWrite' as const), chunk: chunkArb, length: sizeArb, seed: seedArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('removeThenFill' as const), chunk: chunkArb, cuts: fc.uniqueArray(fc.integer({ min: 0, max: CHUNK }), { maxLength: 6 }), length: sizeArb, seed: seedArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('failedNewChunk' as const), chunk: chunkArb, length: sizeArb, seed: seedArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('adopt' as const), chunk: chunkArb, length: sizeArb, seed: seedArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('failedRemoval' as const), chunk: chunkArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('evict' as const), keepBytes: fc.integer({ min: 0, max: 2 * CHUNK }) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'reopen' as const }) },
);

function bytesOf(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** `bytes` made at least `length` long (zeros added). */
function grown(bytes: Buffer, length: number): Buffer {
  return bytes.length >= length ? bytes : Buffer.concat([bytes, Buffer.alloc(length - bytes.length)]);
}

class Harness {
  private env!: RootDatabase;
  store!: ChunkStore;
  readonly model: Model = new Map();

  constructor(
    readonly dir: string,
    readonly durability: Durability,
  ) {
    this.open();
  }

  open(): void {
    this.env = openRaftEnvironment(path.join(this.dir, 'meta'), this.durability, 8);
    this.store = new ChunkStore(path.join(this.dir, 'chunks'), CHUNK, this.env, this.durability);
  }

  async close(): Promise<void> {
    this.store.close();
    await this.env.close();
  }

  async apply(o: Op): Promise<void> {
    const { store, model } = this;
    switch (o.op) {
      case 'write': {
        const data = bytesOf(Math.min(o.length, CHUNK - o.offset), o.seed);
        store.writeSync(INO, o.chunk, o.offset, data);
        const was = model.get(o.chunk);
        const bytes = grown(Buffer.from(was?.bytes ?? Buffer.alloc(0)), o.offset + data.length);
        data.copy(bytes, o.offset);
        model.set(o.chunk, { bytes, holds: was?.holds ?? '', file: (was?.file ?? false) || bytes.length > INLINE_LIMIT });
        return;
      }
      case 'fill':
        this.fill(o);
        return;
      case 'removeThenFill':
        store.transaction(() => {
          store.removeSync(INO, o.chunk);
          model.delete(o.chunk);
          this.fill(o);
        });
        return;
      case 'failedNewChunk': {
        if (model.has(o.chunk)) return;
        expect(() =>
          store.transaction(() => {
            store.writeSync(INO, o.chunk, 0, bytesOf(o.length, o.seed));
            throw new Error('the change is refused');
          }),
        ).toThrow('the change is refused');
        return;
      }
      case 'truncate': {
        store.truncateSync(INO, o.chunk, o.length);
        const was = model.get(o.chunk);
        if (was && was.bytes.length > o.length) model.set(o.chunk, { ...was, bytes: was.bytes.subarray(0, o.length) });
        return;
      }
      case 'remove':
        store.removeSync(INO, o.chunk);
        model.delete(o.chunk);
        return;
      case 'removeThenWrite': {
        const data = bytesOf(o.length, o.seed);
        store.transaction(() => {
          store.removeSync(INO, o.chunk);
          store.writeSync(INO, o.chunk, 0, data);
        });
        model.set(o.chunk, { bytes: data, holds: '', file: data.length > INLINE_LIMIT });
        return;
      }
      case 'adopt': {
        const data = bytesOf(o.length, o.seed);
        const etag = `adopt-${o.seed}`;
        const replacement = await store.prepareReplacement(INO, o.chunk, data);
        store.adoptSync(INO, o.chunk, etag, replacement, data.length);
        model.set(o.chunk, { bytes: data, holds: etag, file: data.length > INLINE_LIMIT });
        return;
      }
      case 'failedRemoval': {
        const failed = new Error('the change is refused');
        expect(() =>
          store.transaction(() => {
            store.removeSync(INO, o.chunk);
            throw failed;
          }),
        ).toThrow(failed);
        return;
      }
      case 'evict':
        store.evict(o.keepBytes, () => true);
        // Which chunks went depends on recency: the model follows the store, whose survivors are checked.
        for (const chunk of [...model.keys()]) if (!store.exists(INO, chunk)) model.delete(chunk);
        return;
      case 'reopen': {
        // The space count, kept as chunks change, is what the index says it is.
        const used = store.usedBytes();
        await this.close();
        this.open();
        expect(this.store.usedBytes()).toBe(used);
        return;
      }
    }
  }

  /** A fill of the gaps `cuts` makes (pairs, sorted), on the store and on the model. */
  private fill(o: { chunk: number; cuts: number[]; length: number; seed: number }): void {
    const cuts = [...o.cuts].sort((a, b) => a - b);
    const gaps = cuts.length % 2 === 0 ? cuts : cuts.slice(0, -1);
    const data = bytesOf(o.length, o.seed);
    const etag = `fill-${o.seed}`;
    this.store.fillSync(INO, o.chunk, etag, data, gaps);
    const was = this.model.get(o.chunk);
    const end = gaps.length ? Math.min(gaps[gaps.length - 1]!, data.length) : 0;
    const bytes = grown(Buffer.from(was?.bytes ?? Buffer.alloc(0)), end);
    for (let i = 0; i < gaps.length; i += 2) {
      const stop = Math.min(gaps[i + 1]!, data.length);
      if (stop > gaps[i]!) data.copy(bytes, gaps[i]!, gaps[i]!, stop);
    }
    this.model.set(o.chunk, { bytes, holds: etag, file: (was?.file ?? false) || bytes.length > INLINE_LIMIT });
  }

  /** Every chunk reads back as the model has it, and has a file exactly when the model says so. */
  async check(step: string): Promise<void> {
    for (let chunk = 0; chunk < CHUNKS; chunk++) {
      const expected = this.model.get(chunk);
      expect(this.store.exists(INO, chunk), `${step}: chunk ${chunk} stored`).toBe(expected !== undefined);
      expect(fs.existsSync(this.store.pathOf(INO, chunk)), `${step}: chunk ${chunk} has a file`).toBe(expected?.file ?? false);
      if (!expected) continue;
      const length = expected.bytes.length + 100;
      const out = Buffer.alloc(length, 0xee);
      expect(await this.store.read(INO, chunk, 0, length, out, 0), `${step}: chunk ${chunk} readable`).toBe(true);
      expect(out.equals(grown(Buffer.from(expected.bytes), length)), `${step}: chunk ${chunk} bytes`).toBe(true);
      expect(this.store.holds(INO, chunk) ?? '', `${step}: chunk ${chunk} version`).toBe(expected.holds);
    }
  }
}

describe('ChunkStore against a model', () => {
  const total = Number(process.env.TIDEFS_SIM_RUNS ?? 100);
  const seed = process.env.TIDEFS_SIM_SEED ? Number(process.env.TIDEFS_SIM_SEED) : undefined;

  for (const durability of ['process', 'fsync'] as const) {
    // 'fsync' flushes to the disk at every step: fewer runs of it.
    const runs = durability === 'process' ? total : Math.max(20, Math.floor(total / 4));
    it(`agrees with the model step by step, across reopenings ('${durability}' durability)`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), async (ops) => {
          const harness = new Harness(fs.mkdtempSync(path.join(os.tmpdir(), 'tidefs-chunk-model-')), durability);
          try {
            for (const [i, o] of ops.entries()) {
              await harness.apply(o);
              await harness.check(`step ${i} ${fc.stringify(o)}`);
            }
          } finally {
            await harness.close();
            fs.rmSync(harness.dir, { recursive: true, force: true });
          }
        }),
        { numRuns: runs, seed, endOnFailure: false, verbose: 1 },
      );
    }, 300_000);
  }
});
