// The inode state machine's tables in LMDB: what they hold, how their keys are laid out, and typed
// reads. Nothing is kept in the JS heap: a bucket with a million objects is a million LMDB rows.
// Writes happen only inside InodeStateMachine.apply (through MetadataWriter), so every change is
// in the Raft log first.
import type { Database, Key, RootDatabase } from 'lmdb';
import { type DirEntry, type InodeId, type InodeRecord } from './types.js';
import type { Intervals } from './intervals.js';


type DentryKey = [number, string];
type BacklinkKey = [number, number, string];
type ChunkKey = [number, number];
type ObjectRefKey = [string, number];

/** The replicated tables, in the order snapshots list them. */
export const REPLICATED_TABLES = [
  'inodes',
  'dentries',
  'backlinks',
  'chunks',
  'dirty',
  'tombstones',
  'objectRefs',
  'orphans',
  'meta',
] as const;
export type ReplicatedTable = (typeof REPLICATED_TABLES)[number];

export interface MetaValues {
  /** Index of the last Raft entry applied. */
  applied: number;
  /** Next inode sequence number. */
  nextSequence: number;
}

export class MetadataStore {
  /** ino -> InodeRecord */
  readonly inodes: Database<InodeRecord, number>;
  /** [parent, name] -> child ino */
  readonly dentries: Database<number, DentryKey>;
  /** [child, parent, name] -> true: the links of each inode, to find its paths */
  readonly backlinks: Database<true, BacklinkKey>;
  /** [ino, chunk index] -> byte ranges of the chunk written since the inode was last flushed */
  readonly chunks: Database<number[], ChunkKey>;
  /** ino -> ms since it became dirty: the flusher's work list */
  readonly dirty: Database<number, number>;
  /** bucket key -> 0 while the object must still be deleted, else the log index at which it was */
  readonly tombstones: Database<number, string>;
  /** [bucket key, ino] -> true: inodes whose content (current or old) is an object at that key */
  readonly objectRefs: Database<true, ObjectRefKey>;
  /** ino -> true: unlinked inodes kept while open */
  readonly orphans: Database<true, number>;
  readonly meta: Database<number, keyof MetaValues>;

  constructor(readonly env: RootDatabase) {
    this.inodes = env.openDB({ name: 'inode.inodes' });
    this.dentries = env.openDB({ name: 'inode.dentries' });
    this.backlinks = env.openDB({ name: 'inode.backlinks' });
    this.chunks = env.openDB({ name: 'inode.chunks' });
    this.dirty = env.openDB({ name: 'inode.dirty' });
    this.tombstones = env.openDB({ name: 'inode.tombstones' });
    this.objectRefs = env.openDB({ name: 'inode.objectRefs' });
    this.orphans = env.openDB({ name: 'inode.orphans' });
    this.meta = env.openDB({ name: 'inode.meta' });
  }

  table(name: ReplicatedTable): Database<unknown, Key> {
    return this[name] as unknown as Database<unknown, Key>;
  }

  metaValue(name: keyof MetaValues): number {
    return this.meta.get(name) ?? (name === 'applied' ? 0 : 1);
  }

  inode(ino: InodeId): InodeRecord | undefined {
    return this.inodes.get(ino);
  }

  lookup(parent: InodeId, name: string): InodeId | undefined {
    return this.dentries.get([parent, name]) as InodeId | undefined;
  }

  /** Entries of a directory in name order, starting after `after` (exclusive) when given. */
  *children(dir: InodeId, after?: string): Generator<DirEntry> {
    const start: DentryKey = [dir, after ?? ''];
    for (const { key, value } of this.dentries.getRange({ start, end: [dir + 1, ''] })) {
      if (after !== undefined && key[1] === after) continue;
      yield { name: key[1], ino: value as InodeId };
    }
  }

  hasChildren(dir: InodeId): boolean {
    for (const _ of this.dentries.getKeys({ start: [dir, ''], end: [dir + 1, ''], limit: 1 })) return true;
    return false;
  }

  /** The (parent, name) links of an inode. */
  *links(ino: InodeId): Generator<{ parent: InodeId; name: string }> {
    for (const key of this.backlinks.getKeys({ start: [ino, 0, ''], end: [ino + 1, 0, ''] })) {
      yield { parent: key[1] as InodeId, name: key[2] };
    }
  }

  firstLink(ino: InodeId): { parent: InodeId; name: string } | undefined {
    for (const link of this.links(ino)) return link;
    return undefined;
  }

  writtenRanges(ino: InodeId, chunk: number): Intervals | undefined {
    return this.chunks.get([ino, chunk]);
  }

  /** Chunk indexes of the inode that have written ranges, ascending. */
  *dirtyChunks(ino: InodeId): Generator<{ chunk: number; ranges: Intervals }> {
    for (const { key, value } of this.chunks.getRange({ start: [ino, 0], end: [ino + 1, 0] })) {
      yield { chunk: key[1], ranges: value };
    }
  }

  /** Whether any chunk of the inode has written ranges. */
  hasDirtyChunks(ino: InodeId): boolean {
    for (const _ of this.chunks.getKeys({ start: [ino, 0], end: [ino + 1, 0], limit: 1 })) return true;
    return false;
  }

  /** Whether any inode's content lives in the object at `key`. */
  isObjectReferenced(key: string): boolean {
    // Leaving the loop closes the range. (A generator read once with next() and dropped would keep
    // its LMDB read transaction, and so a reader slot, until garbage-collected: enough of those and
    // every read fails with MDB_READERS_FULL.)
    for (const _ of this.objectReferrers(key)) return true;
    return false;
  }

  /** Inodes whose content lives in an object at `key`. Iterate to the end or leave the loop. */
  *objectReferrers(key: string): Generator<InodeId> {
    for (const k of this.objectRefs.getKeys({ start: [key, 0], end: [key + '\u0000', 0] })) {
      if (k[0] === key) yield k[1] as InodeId;
    }
  }

  /** Dirty inodes with the time each became dirty, oldest entries unordered. */
  *dirtyInodes(): Generator<{ ino: InodeId; since: number }> {
    for (const { key, value } of this.dirty.getRange({})) yield { ino: key as InodeId, since: value };
  }

  dirtyCount(): number {
    return this.dirty.getCount();
  }

  *orphanInodes(): Generator<InodeId> {
    for (const key of this.orphans.getKeys({})) yield key as InodeId;
  }

  *pendingDeletes(): Generator<string> {
    for (const { key, value } of this.tombstones.getRange({})) if (value === 0) yield key;
  }
}
