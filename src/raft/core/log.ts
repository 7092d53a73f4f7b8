// The node's Raft log as the protocol sees it: the driver's stable storage plus the unstable tail
// (entries, and possibly a received snapshot, that the driver has not persisted yet) and the
// committed/applied marks. It only reads storage; the driver persists the unstable tail from a Ready.
import type { Entry, LogStorage, Snapshot } from '../types.js';
import { RaftInvariantError } from './errors.js';

export interface TermAt {
  index: number;
  term: number;
}

export class RaftLog {
  /** Highest index known to be committed. */
  committed: number;
  /** Highest index the driver has applied (advanced past). */
  applied: number;
  private unstableSnapshot: Snapshot | undefined;
  /** Entries not yet persisted; unstable[0] has index `offset`. */
  private unstable: Entry[] = [];
  private offset: number;

  constructor(private readonly storage: LogStorage) {
    this.offset = storage.lastIndex() + 1;
    this.committed = storage.firstIndex() - 1;
    this.applied = this.committed;
  }

  firstIndex(): number {
    return this.unstableSnapshot ? this.unstableSnapshot.meta.index + 1 : this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstable.length > 0) return this.offset + this.unstable.length - 1;
    if (this.unstableSnapshot) return this.unstableSnapshot.meta.index;
    return this.storage.lastIndex();
  }

  /** Term of entry `index`, or undefined when it is compacted away or not in the log. */
  term(index: number): number | undefined {
    const first = this.firstIndex();
    if (index < first - 1 || index > this.lastIndex()) return undefined;
    if (index >= this.offset) return this.unstable[index - this.offset]!.term;
    if (this.unstableSnapshot) return this.unstableSnapshot.meta.term;
    return this.storage.term(index);
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Entries in [lo, hi), stopping once `maxBytes` of data would be exceeded (at least one entry).
   * Callers keep lo >= firstIndex() and hi <= lastIndex() + 1.
   */
  slice(lo: number, hi: number, maxBytes = Number.POSITIVE_INFINITY): Entry[] {
    if (lo >= hi) return [];
    let result: Entry[] = [];
    let bytes = 0;
    if (lo < this.offset) {
      const storedHi = Math.min(hi, this.offset);
      result = this.storage.entries(lo, storedHi, maxBytes);
      if (result.length < storedHi - lo) return result;
      for (const entry of result) bytes += entry.data.byteLength;
    }
    for (let index = Math.max(lo, this.offset); index < hi; index++) {
      const entry = this.unstable[index - this.offset]!;
      bytes += entry.data.byteLength;
      if (result.length > 0 && bytes > maxBytes) break;
      result.push(entry);
    }
    return result;
  }

  /** Calls `visit` for every entry in [lo, hi), reading `pageBytes` at a time; stops when it returns true. */
  scan(lo: number, hi: number, pageBytes: number, visit: (entry: Entry) => boolean): boolean {
    while (lo < hi) {
      const page = this.slice(lo, hi, pageBytes);
      for (const entry of page) if (visit(entry)) return true;
      lo += page.length;
    }
    return false;
  }

  /** Appends after any index > committed, replacing whatever unstable suffix it conflicts with. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    if (first - 1 < this.committed) {
      throw new RaftInvariantError(`append at ${first} would overwrite committed entries (committed ${this.committed})`);
    }
    if (first === this.offset + this.unstable.length) {
      for (const entry of entries) this.unstable.push(entry);
    } else if (first <= this.offset) {
      this.offset = first;
      this.unstable = entries.slice();
    } else {
      this.unstable = this.unstable.slice(0, first - this.offset);
      for (const entry of entries) this.unstable.push(entry);
    }
  }

  /**
   * Follower side of AppendEntries: if our log has (prevIndex, prevTerm), append `entries` (cutting
   * a conflicting suffix), advance commit to min(commit, last new index) and return that index.
   */
  maybeAppend(prevIndex: number, prevTerm: number, commit: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      if (conflict <= this.committed) {
        throw new RaftInvariantError(`entry ${conflict} conflicts with a committed entry (committed ${this.committed})`);
      }
      this.append(entries.slice(conflict - (prevIndex + 1)));
    }
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  /** Index of the first entry whose term differs from ours (or that we lack); 0 if all match. */
  private findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The last index <= `index` whose term is <= `term`, with that term (term 0 when unknown). Lets a
   * rejected append skip a whole term of divergent entries at once.
   */
  findConflictByTerm(index: number, term: number): TermAt {
    for (; index > 0; index--) {
      const ours = this.term(index);
      if (ours === undefined) return { index, term: 0 };
      if (ours <= term) return { index, term: ours };
    }
    return { index: 0, term: 0 };
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    if (index > this.lastIndex()) {
      throw new RaftInvariantError(`commit ${index} is past the last index ${this.lastIndex()}: log lost or truncated`);
    }
    this.committed = index;
  }

  /** Leader side: commit `index` if it is newer and of the leader's current `term` (Raft §5.4.2). */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.term(index) === term) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  appliedTo(index: number): void {
    if (index > this.committed) {
      throw new RaftInvariantError(`applied ${index} is past the commit index ${this.committed}`);
    }
    if (index > this.applied) this.applied = index;
  }

  hasNextCommittedEntries(): boolean {
    return Math.max(this.applied + 1, this.firstIndex()) <= this.committed;
  }

  nextCommittedEntries(maxBytes: number): Entry[] {
    return this.slice(Math.max(this.applied + 1, this.firstIndex()), this.committed + 1, maxBytes);
  }

  hasUnstableEntries(): boolean {
    return this.unstable.length > 0;
  }

  /** The unstable entries (a copy: later appends must not change what a Ready handed out). */
  unstableEntries(): Entry[] {
    return this.unstable.slice();
  }

  pendingSnapshot(): Snapshot | undefined {
    return this.unstableSnapshot;
  }

  /** The snapshot to send a follower that needs compacted entries. */
  snapshot(): Snapshot {
    return this.unstableSnapshot ?? this.storage.snapshot();
  }

  /** The driver persisted entries up to (index, term); entries replaced since then stay unstable. */
  stableTo(index: number, term: number): void {
    if (index < this.offset || index >= this.offset + this.unstable.length) return;
    if (this.unstable[index - this.offset]!.term !== term) return;
    this.unstable = this.unstable.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapshotTo(index: number): void {
    if (this.unstableSnapshot?.meta.index === index) this.unstableSnapshot = undefined;
  }

  /** Replaces the whole log with a snapshot received from the leader (persisted by the driver). */
  restore(snapshot: Snapshot): void {
    this.committed = snapshot.meta.index;
    this.unstableSnapshot = snapshot;
    this.unstable = [];
    this.offset = snapshot.meta.index + 1;
  }
}
