// Random operation sequences against a plain-array model of the log: the in-memory tail cache on
// its own (small limits, so eviction happens), and LmdbLogStorage both live (answers partly from
// the cache) and after a reopen (answers from LMDB and the payload segments only). fast-check prints the seed and the
// shrunk sequence of a failure, so any failure can be replayed.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { INLINE_PAYLOAD_BYTES, LmdbLogStorage } from '../../../src/raft/storage/lmdb-log-storage.js';
import { RecentEntries } from '../../../src/raft/storage/recent-entries.js';
import { EntryType, nodeId, type Entry } from '../../../src/raft/types.js';

type Op =
  | { kind: 'append'; overlap: number; count: number; bumpTerm: boolean }
  | { kind: 'saveSnapshot'; back: number }
  | { kind: 'compact'; back: number }
  | { kind: 'snapshotAhead'; ahead: number }
  | { kind: 'reopen' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('append' as const), overlap: fc.nat(6), count: fc.integer({ min: 1, max: 40 }), bumpTerm: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('saveSnapshot' as const), back: fc.nat(10) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact' as const), back: fc.nat(10) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('snapshotAhead' as const), ahead: fc.integer({ min: 1, max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const) }) },
);

/** The log as a plain array: entries after `start` (index start+1 first). */
class ModelLog {
  start = { index: 0, term: 0 };
  snapshotIndex = 0;
  entries: Entry[] = [];
  term = 1;

  last(): number {
    return this.start.index + this.entries.length;
  }

  termAt(i: number): number {
    return i === this.start.index ? this.start.term : this.entries[i - this.start.index - 1]!.term;
  }

  append(fresh: Entry[]): void {
    this.entries.length = fresh[0]!.index - this.start.index - 1;
    this.entries.push(...fresh);
  }
}

function makeEntries(first: number, count: number, term: number): Entry[] {
  return Array.from({ length: count }, (_, k) => ({
    index: first + k,
    term,
    type: k % 7 === 3 ? EntryType.ConfChange : EntryType.Normal,
    // Every fifth entry is big enough to live in a payload segment.
    data: new TextEncoder().encode(`${first + k}@${term}`.repeat((first + k) % 5 === 4 ? 400 : (first + k) % 3)),
  }));
}

const isBig = (e: Entry): boolean => e.data.byteLength >= INLINE_PAYLOAD_BYTES;
// Small segments: a few payloads each, so rotation and whole-segment deletion happen.
const SEGMENT_BYTES = 4096;

const view = (e: Entry): [number, number, EntryType, string] => [e.index, e.term, e.type, new TextDecoder().decode(e.data)];
const conf = { voters: [nodeId(1)], learners: [], addresses: {} };

describe('log storage against a model', () => {
  it('RecentEntries holds a contiguous run ending at the last write, within its limits', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
        const model = new ModelLog();
        const recent = new RecentEntries(50, 400);
        for (const op of ops) {
          if (op.kind === 'append') {
            if (op.bumpTerm) model.term++;
            const first = Math.max(model.start.index + 1, model.last() + 1 - op.overlap);
            const fresh = makeEntries(first, op.count, model.term);
            model.append(fresh);
            recent.written(fresh);
          } else if (op.kind === 'compact' || op.kind === 'saveSnapshot') {
            const to = Math.max(model.start.index, model.last() - op.back);
            model.entries = model.entries.slice(to - model.start.index);
            model.start = { index: to, term: 0 };
            recent.forgetThrough(to);
          } else if (op.kind === 'reopen') {
            continue;
          } else {
            model.start = { index: model.last() + op.ahead, term: model.term };
            model.entries = [];
            recent.clear();
          }
          const first = recent.firstIndex();
          if (first === Infinity) continue;
          expect(first).toBeGreaterThan(model.start.index);
          const held = recent.slice(first, model.last() + 1, Infinity);
          expect(held.length).toBeLessThanOrEqual(50);
          expect(held.map(view)).toEqual(model.entries.slice(first - model.start.index - 1).map(view));
        }
      }),
    );
  });

  it('LmdbLogStorage answers like the model, live and after a reopen', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
        const dir = await mkdtemp(path.join(tmpdir(), 'tidefs-raft-model-'));
        let storage = LmdbLogStorage.open(dir, { durability: 'process', segmentBytes: SEGMENT_BYTES });
        const model = new ModelLog();
        const check = (s: LmdbLogStorage): void => {
          expect(s.firstIndex()).toBe(model.start.index + 1);
          expect(s.lastIndex()).toBe(model.last());
          for (let i = model.start.index; i <= model.last(); i++) expect(s.term(i)).toBe(model.termAt(i));
          if (model.entries.length > 0) {
            expect(s.entries(model.start.index + 1, model.last() + 1).map(view)).toEqual(model.entries.map(view));
            const mid = model.start.index + 1 + Math.floor(model.entries.length / 2);
            expect(s.entries(mid, model.last() + 1).map(view)).toEqual(model.entries.slice(mid - model.start.index - 1).map(view));
          }
        };
        const reopen = async (): Promise<void> => {
          await storage.close();
          storage = LmdbLogStorage.open(dir, { durability: 'process', segmentBytes: SEGMENT_BYTES });
        };
        try {
          for (const op of ops) {
            if (op.kind === 'append') {
              if (op.bumpTerm) model.term++;
              const first = Math.max(model.start.index + 1, model.last() + 1 - op.overlap);
              const fresh = makeEntries(first, op.count, model.term);
              await storage.append(fresh);
              model.append(fresh);
            } else if (op.kind === 'reopen') {
              await reopen();
            } else if (op.kind === 'saveSnapshot') {
              const at = model.last() - op.back;
              if (at <= Math.max(model.start.index, model.snapshotIndex)) continue;
              storage.saveSnapshot({ meta: { index: at, term: model.termAt(at), conf }, data: new Uint8Array([at % 256]) });
              model.snapshotIndex = at;
            } else if (op.kind === 'compact') {
              const to = model.snapshotIndex - op.back;
              if (to <= model.start.index) continue;
              storage.compact(to);
              const term = model.termAt(to);
              model.entries = model.entries.slice(to - model.start.index);
              model.start = { index: to, term };
            } else {
              const at = model.last() + op.ahead;
              await storage.applySnapshot({ meta: { index: at, term: model.term, conf }, data: new Uint8Array([1]) });
              model.start = { index: at, term: model.term };
              model.snapshotIndex = at;
              model.entries = [];
            }
            check(storage);
          }
          await reopen();
          check(storage);
          // Reopened, only segments that live entries point into are left.
          const segments = (await readdir(path.join(dir, 'raft.payloads'))).length;
          expect(segments).toBeLessThanOrEqual(model.entries.filter(isBig).length);
        } finally {
          await storage.close();
          await rm(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 40 },
    );
  });
});
