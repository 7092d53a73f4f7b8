// An in-memory LogStorage with the write methods a driver needs (append, setHardState,
// applySnapshot, createSnapshot, compact): the simulation's storage and a reference for real ones.
// It keeps no copy of anything outside this process and never reaches into the core.
import {
  CompactedError,
  EntryType,
  NO_NODE,
  UnavailableError,
  type ConfState,
  type Entry,
  type HardState,
  type LogStorage,
  type Snapshot,
} from '../types.js';
import { cloneConfState } from './conf-change.js';

const EMPTY = new Uint8Array(0);

export class MemoryStorage implements LogStorage {
  private hardState: HardState = { term: 0, vote: NO_NODE, commit: 0 };
  private latestSnapshot: Snapshot;
  /** entries[0] stands for the compaction point (its index and term only); real entries follow. */
  private entriesFromCompaction: Entry[];

  /** `conf` is the membership of a new group (its bootstrap ConfState); empty for a joining node. */
  constructor(conf: ConfState = { voters: [], learners: [], addresses: {} }) {
    this.latestSnapshot = { meta: { index: 0, term: 0, conf: cloneConfState(conf) }, data: EMPTY };
    this.entriesFromCompaction = [{ index: 0, term: 0, type: EntryType.Normal, data: EMPTY }];
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: cloneConfState(this.latestSnapshot.meta.conf) };
  }

  entries(lo: number, hi: number, maxBytes = Number.POSITIVE_INFINITY): Entry[] {
    const offset = this.offset();
    if (lo <= offset) throw new CompactedError(lo);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1);
    const result: Entry[] = [];
    let bytes = 0;
    for (let index = lo; index < hi; index++) {
      const entry = this.entriesFromCompaction[index - offset]!;
      bytes += entry.data.byteLength;
      if (result.length > 0 && bytes > maxBytes) break;
      result.push(entry);
    }
    return result;
  }

  term(i: number): number {
    const offset = this.offset();
    if (i < offset) throw new CompactedError(i);
    if (i > this.lastIndex()) throw new UnavailableError(i);
    return this.entriesFromCompaction[i - offset]!.term;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  lastIndex(): number {
    return this.offset() + this.entriesFromCompaction.length - 1;
  }

  snapshot(): Snapshot {
    return this.latestSnapshot;
  }

  setHardState(hardState: HardState): void {
    this.hardState = { ...hardState };
  }

  /** Appends entries, replacing any conflicting suffix; entries already compacted are skipped. */
  append(entries: readonly Entry[]): void {
    const offset = this.offset();
    const fresh = entries.filter((entry) => entry.index > offset);
    if (fresh.length === 0) return;
    const first = fresh[0]!.index;
    if (first > this.lastIndex() + 1) {
      throw new RangeError(`memory storage: append at ${first} leaves a gap after ${this.lastIndex()}`);
    }
    this.entriesFromCompaction.length = first - offset;
    for (const entry of fresh) this.entriesFromCompaction.push(entry);
  }

  /** Replaces the whole log with a snapshot (a leader's, received by this follower). */
  applySnapshot(snapshot: Snapshot): void {
    if (snapshot.meta.index <= this.latestSnapshot.meta.index) {
      throw new RangeError(
        `memory storage: snapshot at ${snapshot.meta.index} is not newer than ${this.latestSnapshot.meta.index}`,
      );
    }
    this.latestSnapshot = snapshot;
    this.entriesFromCompaction = [{ index: snapshot.meta.index, term: snapshot.meta.term, type: EntryType.Normal, data: EMPTY }];
  }

  /** Records a snapshot of the state machine at `index` (an applied entry still in the log). */
  createSnapshot(index: number, conf: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.latestSnapshot.meta.index) {
      throw new RangeError(`memory storage: snapshot at ${index} is not newer than ${this.latestSnapshot.meta.index}`);
    }
    const snapshot: Snapshot = { meta: { index, term: this.term(index), conf: cloneConfState(conf) }, data };
    this.latestSnapshot = snapshot;
    return snapshot;
  }

  /** Drops every entry up to and including `index`, which may not pass the latest snapshot. */
  compact(index: number): void {
    const offset = this.offset();
    if (index <= offset) return;
    if (index > this.latestSnapshot.meta.index) {
      throw new RangeError(`memory storage: cannot compact to ${index} past the snapshot at ${this.latestSnapshot.meta.index}`);
    }
    const term = this.term(index);
    this.entriesFromCompaction = [{ index, term, type: EntryType.Normal, data: EMPTY }, ...this.entriesFromCompaction.slice(index - offset + 1)];
  }

  private offset(): number {
    return this.entriesFromCompaction[0]!.index;
  }
}
