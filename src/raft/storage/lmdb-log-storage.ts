// A Raft group member's durable log: hard state, entries, the latest snapshot and the compaction
// point, in three named databases of one LMDB environment. The environment is either owned (opened
// from a directory, closed with the storage) or shared with the state machine (the caller opens it
// with openRaftEnvironment, names a prefix, and closes it itself).
//
// Every write() is exactly one LMDB write transaction. Reads are synchronous and only ever see
// committed transactions. Durability: 'fsync' waits for the disk after every write that needs it;
// 'process' leaves writes in the OS page cache (they survive kill -9, not a power loss) except a
// hard state that records a vote, which is always flushed before write() resolves.
//
// Entry data of INLINE_PAYLOAD_BYTES or more lives in payload segment files beside the environment
// (PayloadSegments: LMDB handles big values badly once they are freed); LMDB keeps where it is.
//
// This module never decides what to write: the driver tells it (from a Ready); it only refuses writes
// that would break the log's shape (gaps, compaction past the snapshot).
import path from 'node:path';
import { open, type Database, type RootDatabase, type RootDatabaseOptionsWithPath } from 'lmdb';
import {
  CompactedError,
  NO_NODE,
  UnavailableError,
  type ConfState,
  type Entry,
  type HardState,
  type LogStorage,
  type Snapshot,
  type SnapshotMeta,
} from '../types.js';
import { decodeEntryValue, encodeEntryRef, encodeEntryValue, payloadRefOf, termOfEntryValue } from './entry-codec.js';
import { PayloadSegments, type PayloadRef } from './payload-segments.js';
import { RecentEntries } from './recent-entries.js';

export type Durability = 'fsync' | 'process';

/** A write the storage refuses (a gap in the log, compaction past the snapshot, use after close). */
export class LogStorageError extends Error {
  constructor(message: string) {
    super(`raft storage: ${message}`);
    this.name = 'LogStorageError';
  }
}

/** What one Ready asks to make durable. Applied in the order snapshot, entries, hard state. */
export interface LogWrite {
  snapshot?: Snapshot;
  entries?: Entry[];
  hardState?: HardState;
  /**
   * In 'fsync' mode: whether write() must wait for the disk (Ready.mustSync). Defaults to true.
   * A hard state carrying a new vote is flushed regardless of this flag and of the mode.
   */
  mustSync?: boolean;
}

export interface StorageOptions {
  durability: Durability;
  /** Size at which a payload segment file is finished and the next one begun (default 64 MiB). */
  segmentBytes?: number;
}

export interface SharedStorageOptions extends StorageOptions {
  /** Prefix of the named databases in the shared environment (default "raft"). */
  prefix?: string;
}

/** The entry just before firstIndex(): its term is still answerable after compaction. */
interface LogStart {
  index: number;
  term: number;
}

/** lmdb-js keeps these on the root database but does not declare them. */
interface EnvironmentFlags {
  /** The environment's directory. */
  path: string;
  noSync?: boolean;
  overlappingSync?: boolean;
  sync(callback: (error?: Error) => void): void;
}

const TXN_ABORTABLE = 0x1;
const TXN_SYNCHRONOUS_COMMIT = 0x2;
const TXN_NO_SYNC_FLUSH = 0x10000;

const HARD_STATE_KEY = 'hardState';
const SNAPSHOT_META_KEY = 'snapshotMeta';
const LOG_START_KEY = 'logStart';
const SNAPSHOT_DATA_KEY = 'data';

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The newest entries stay readable from memory (they are read again to send and to apply). */
const RECENT_ENTRIES = 8_192;
const RECENT_BYTES = 16 * 1024 * 1024;

/** Entry data this big goes to a payload segment (LMDB starts overflow pages at about 2 KiB). */
export const INLINE_PAYLOAD_BYTES = 1024;
const SEGMENT_BYTES = 64 * 1024 * 1024;

const EMPTY_CONF: ConfState = { voters: [], learners: [], addresses: {} };
const EMPTY_HARD_STATE: HardState = { term: 0, vote: NO_NODE, commit: 0 };

/**
 * Opens (creating if needed) an LMDB environment suited to a durability mode. A state machine that
 * wants its data in the same environment as the log opens it with this and passes it to
 * LmdbLogStorage.inEnvironment.
 *
 * The map is writable (MDB_WRITEMAP): a commit then only flips the meta page instead of writing
 * every dirty page with its own pwrite, which made small transactions (a create, an unlink) ~15%
 * cheaper end to end. Its costs do not apply here: no nested transactions are used (lmdb-js runs a
 * nested transactionSync inline), and only this process opens the environment (a lock file says so).
 *
 * Values are MessagePack maps, not msgpackr's records: without shared structures (which would
 * need writes of their own inside every transaction that meets a new shape) each record carries
 * its own definition, and reading it back rebuilt a reader every time (~7% of a create's CPU).
 * Both forms decode either way, so existing data directories read as before.
 */
export function openRaftEnvironment(dir: string, durability: Durability, maxDbs = 32): RootDatabase {
  // useRecords is passed on to msgpackr for every database of the environment (lmdb's types omit it).
  const options = { path: dir, noSync: durability === 'process', maxDbs, useWritemap: true, useRecords: false };
  return open(options as RootDatabaseOptionsWithPath);
}

export class LmdbLogStorage implements LogStorage {
  private readonly flags: EnvironmentFlags;
  private readonly commitFlags: number;
  private readonly meta: Database<unknown, string>;
  private readonly log: Database<Buffer, number>;
  private readonly snapshotData: Database<Buffer, string>;
  private hardStateValue: HardState;
  private flushedVote: { term: number; vote: number };
  private snapshotMetaValue: SnapshotMeta;
  private start: LogStart;
  private last: number;
  private readonly recent = new RecentEntries(RECENT_ENTRIES, RECENT_BYTES);
  private readonly payloads: PayloadSegments;
  private closed = false;

  /** A storage with an environment of its own in `dir`. close() closes the environment. */
  static open(dir: string, options: StorageOptions): LmdbLogStorage {
    return new LmdbLogStorage(openRaftEnvironment(dir, options.durability), true, options, 'raft');
  }

  /**
   * A storage inside an environment the caller owns (opened with openRaftEnvironment, with enough
   * maxDbs for its own databases plus three). close() leaves the environment open.
   */
  static inEnvironment(env: RootDatabase, options: SharedStorageOptions): LmdbLogStorage {
    return new LmdbLogStorage(env, false, options, options.prefix ?? 'raft');
  }

  readonly durability: Durability;

  private constructor(
    private readonly env: RootDatabase,
    private readonly ownsEnv: boolean,
    options: StorageOptions,
    prefix: string,
  ) {
    const durability = options.durability;
    this.durability = durability;
    this.flags = env as unknown as EnvironmentFlags;
    if (durability === 'fsync' && this.flags.noSync) {
      throw new LogStorageError("'fsync' durability needs an environment opened without noSync");
    }
    this.commitFlags =
      TXN_ABORTABLE | TXN_SYNCHRONOUS_COMMIT | (this.flags.overlappingSync ? TXN_NO_SYNC_FLUSH : 0);
    this.meta = env.openDB<unknown, string>(`${prefix}.meta`, {});
    this.log = env.openDB<Buffer, number>(`${prefix}.log`, { encoding: 'binary' });
    this.snapshotData = env.openDB<Buffer, string>(`${prefix}.snapshot`, { encoding: 'binary' });

    this.hardStateValue = (this.meta.get(HARD_STATE_KEY) as HardState | undefined) ?? EMPTY_HARD_STATE;
    this.flushedVote = { term: this.hardStateValue.term, vote: this.hardStateValue.vote };
    this.snapshotMetaValue = (this.meta.get(SNAPSHOT_META_KEY) as SnapshotMeta | undefined) ?? {
      index: 0,
      term: 0,
      conf: EMPTY_CONF,
    };
    this.start = (this.meta.get(LOG_START_KEY) as LogStart | undefined) ?? { index: 0, term: 0 };
    let last = this.start.index;
    const live = new Map<number, number>();
    for (const { key, value } of this.log.getRange({})) {
      last = key;
      const ref = payloadRefOf(value);
      if (ref) live.set(ref.segment, key);
    }
    this.last = last;
    this.payloads = new PayloadSegments(path.join(this.flags.path, `${prefix}.payloads`), options.segmentBytes ?? SEGMENT_BYTES, live);
  }

  // ---- LogStorage (the core's synchronous view) ----

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardStateValue }, confState: this.snapshotMetaValue.conf };
  }

  entries(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    this.assertOpen();
    if (lo <= this.start.index) throw new CompactedError(lo);
    if (hi > this.last + 1) throw new UnavailableError(hi - 1);
    if (lo >= this.recent.firstIndex()) return this.recent.slice(lo, hi, maxBytes);
    const result: Entry[] = [];
    let bytes = 0;
    for (const { key, value } of this.log.getRange({ start: lo, end: hi })) {
      const entry = decodeEntryValue(key, value, (ref) => this.readPayload(key, ref));
      bytes += entry.data.byteLength;
      if (result.length > 0 && bytes > maxBytes) break;
      result.push(entry);
    }
    if (result.length !== hi - lo && bytes <= maxBytes) {
      throw new LogStorageError(`log has a hole in [${lo}, ${hi})`);
    }
    return result;
  }

  term(i: number): number {
    this.assertOpen();
    if (i === this.start.index) return this.start.term;
    if (i < this.start.index) throw new CompactedError(i);
    if (i > this.last) throw new UnavailableError(i);
    const recent = this.recent.get(i);
    if (recent) return recent.term;
    const term = this.storedTerm(i);
    if (term === undefined) throw new LogStorageError(`entry ${i} is missing`);
    return term;
  }

  firstIndex(): number {
    return this.start.index + 1;
  }

  lastIndex(): number {
    return this.last;
  }

  snapshot(): Snapshot {
    this.assertOpen();
    const stored = this.snapshotData.get(SNAPSHOT_DATA_KEY);
    const data = stored ? new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength) : new Uint8Array(0);
    return { meta: this.snapshotMetaValue, data };
  }

  // ---- the driver's view and writes ----

  /** The latest snapshot's metadata, without reading its data. */
  snapshotMeta(): SnapshotMeta {
    return this.snapshotMetaValue;
  }

  /** The hard state as last written (not necessarily flushed in 'process' mode). */
  hardState(): HardState {
    return { ...this.hardStateValue };
  }

  /**
   * Makes one Ready's worth of state durable in a single transaction. Entries overwrite any
   * conflicting suffix (everything from the first new index on is replaced); entries at or below
   * the compaction point are ignored. A snapshot keeps the log after it only if the log holds the
   * snapshot's own entry with the same term; otherwise the whole log is dropped.
   */
  async write(update: LogWrite): Promise<void> {
    this.assertOpen();
    const { snapshot, entries, hardState } = update;
    let start = this.start;
    let last = this.last;
    let meta = this.snapshotMetaValue;
    let keepsSuffix = false;
    // A snapshot moves the start of the log to its index; entries at or below it are not kept.
    const fresh = entries?.filter((entry) => entry.index > (snapshot ? snapshot.meta.index : start.index)) ?? [];
    const stored = fresh.map((entry) => this.storedValue(entry));
    const modeWantsSync = this.durability === 'fsync' && (update.mustSync ?? true);
    // Payloads must be on the disk before LMDB says where they are.
    if (modeWantsSync) {
      await this.payloads.sync();
      this.assertOpen();
    }
    this.env.transactionSync(() => {
      if (snapshot) {
        const { index, term } = snapshot.meta;
        keepsSuffix = index > start.index && index <= last && this.storedTerm(index) === term;
        this.removeEntries(start.index + 1, keepsSuffix ? index : last);
        meta = snapshot.meta;
        start = { index, term };
        if (!keepsSuffix) last = index;
        this.meta.putSync(SNAPSHOT_META_KEY, meta);
        this.meta.putSync(LOG_START_KEY, start);
        this.snapshotData.putSync(SNAPSHOT_DATA_KEY, asBuffer(snapshot.data));
      }
      if (fresh.length > 0) {
        const first = fresh[0]!.index;
        if (first > last + 1) throw new LogStorageError(`append at ${first} leaves a gap after ${last}`);
        fresh.forEach((entry, k) => this.log.putSync(entry.index, stored[k]!));
        const newLast = fresh[fresh.length - 1]!.index;
        this.removeEntries(newLast + 1, last);
        last = newLast;
      }
      if (hardState) this.meta.putSync(HARD_STATE_KEY, hardState);
    }, this.commitFlags);
    this.start = start;
    this.last = last;
    this.snapshotMetaValue = meta;
    if (hardState) this.hardStateValue = { ...hardState };
    if (snapshot && keepsSuffix) this.recent.forgetThrough(snapshot.meta.index);
    else if (snapshot) this.recent.clear();
    if (snapshot) this.dropPayloadsThrough(start.index);
    this.recent.written(fresh);

    const recordsNewVote =
      hardState !== undefined &&
      hardState.vote !== NO_NODE &&
      (hardState.term !== this.flushedVote.term || hardState.vote !== this.flushedVote.vote);
    if (recordsNewVote || modeWantsSync) await this.sync();
    if (hardState) this.flushedVote = { term: hardState.term, vote: hardState.vote };
  }

  append(entries: Entry[]): Promise<void> {
    return this.write({ entries });
  }

  setHardState(hardState: HardState): Promise<void> {
    return this.write({ hardState });
  }

  applySnapshot(snapshot: Snapshot): Promise<void> {
    return this.write({ snapshot });
  }

  /**
   * Stores a snapshot the state machine took of entries this log holds, keeping the log itself
   * (compact() trims it later, leaving a margin for followers that lag slightly).
   */
  saveSnapshot(snapshot: Snapshot): void {
    this.assertOpen();
    const { index, term } = snapshot.meta;
    // The same index again replaces the image (one first stored without any).
    if (index < this.snapshotMetaValue.index) return;
    if (index > this.last || this.term(index) !== term) {
      throw new LogStorageError(`snapshot at ${index} (term ${term}) does not match the log`);
    }
    this.env.transactionSync(() => {
      this.meta.putSync(SNAPSHOT_META_KEY, snapshot.meta);
      this.snapshotData.putSync(SNAPSHOT_DATA_KEY, asBuffer(snapshot.data));
    }, this.commitFlags);
    this.snapshotMetaValue = snapshot.meta;
  }

  /**
   * Deletes every entry up to and including `index` (freed pages are reused by later writes).
   * `index` may not pass the latest snapshot: entries beyond it are the only way to catch up a
   * follower that is past the snapshot.
   */
  compact(index: number): void {
    this.assertOpen();
    if (index <= this.start.index) return;
    if (index > this.snapshotMetaValue.index) {
      throw new LogStorageError(`cannot compact to ${index}: the latest snapshot is at ${this.snapshotMetaValue.index}`);
    }
    const start: LogStart = { index, term: this.term(index) };
    this.env.transactionSync(() => {
      this.removeEntries(this.start.index + 1, index);
      this.meta.putSync(LOG_START_KEY, start);
    }, this.commitFlags);
    this.start = start;
    this.recent.forgetThrough(index);
    this.dropPayloadsThrough(index);
  }

  /** Forces everything written so far to the disk. */
  async sync(): Promise<void> {
    this.assertOpen();
    await this.payloads.sync();
    if (this.flags.noSync) {
      await new Promise<void>((resolve, reject) => this.flags.sync((error) => (error ? reject(error) : resolve())));
    } else {
      await this.env.flushed;
    }
    await this.payloads.removeDropped();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.payloads.close();
    if (this.ownsEnv) await this.env.close();
  }

  private storedTerm(i: number): number | undefined {
    const value = this.log.getBinaryFast(i);
    return value === undefined ? undefined : termOfEntryValue(value);
  }

  /**
   * Payload segments the log no longer reaches go once that is durable: at once in 'process' mode
   * (a killed process loses nothing LMDB committed), after the next flush (sync) in 'fsync' mode.
   */
  private dropPayloadsThrough(index: number): void {
    this.payloads.dropThrough(index);
    if (this.durability === 'process') void this.payloads.removeDropped();
  }

  /** The LMDB value for `entry`, its data appended to a payload segment if big. */
  private storedValue(entry: Entry): Buffer {
    if (entry.data.byteLength < INLINE_PAYLOAD_BYTES) return encodeEntryValue(entry);
    return encodeEntryRef(entry, this.payloads.append(entry.index, entry.data));
  }

  private readPayload(index: number, ref: PayloadRef): Buffer {
    const data = this.payloads.read(ref);
    if (!data) throw new LogStorageError(`the data of entry ${index} is missing from payload segment ${ref.segment}`);
    return data;
  }

  private removeEntries(from: number, to: number): void {
    for (let i = from; i <= to; i++) this.log.removeSync(i);
  }

  private assertOpen(): void {
    if (this.closed) throw new LogStorageError('used after close');
  }
}
