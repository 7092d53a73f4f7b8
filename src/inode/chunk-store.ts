// The chunks on this node's local disk: per (inode, chunk index), the bytes written to that chunk
// and, where it has been fetched, the unmodified bytes of the inode's bucket object ("base"). A
// chunk of up to INLINE_LIMIT bytes lives inside LMDB (small files cost no file creation), cut into
// pieces that each fit in one LMDB page; a bigger one is a file of its own. A small local index
// (LMDB, not replicated) records which object version each chunk holds as base, how big it is and
// where it is, for reads and LRU eviction.
//
// Invariant kept by the state machine: a chunk file never holds stale bytes at positions past the
// file's logical size (those read as zeros), and written positions always hold the written data.
// Base positions are trusted only while `holds` names the inode's current object ETag.
//
// Writes are synchronous (local disk page cache, never a FUSE mount) so that an apply() and a fill
// can never interleave; reads are asynchronous so that many can be in flight. Every change to the
// files happens in a transaction() (the state machine runs its applies in one too): in 'fsync'
// durability the files and directories it changed are flushed before it commits, and files it
// removed are unlinked only after.
import fs from 'node:fs';
import path from 'node:path';
import { TransactionFlags, type Database, type RootDatabase } from 'lmdb';
import type { Durability } from '../raft/storage/lmdb-log-storage.js';
import type { InodeId } from './types.js';

interface LocalChunk {
  /** ETag of the object whose bytes the chunk holds at base positions, '' when none. */
  holds: string;
  /** Bytes of the chunk (its file's length). */
  bytes: number;
  /** Kept in LMDB rather than in a file. */
  inline?: boolean;
}

/** A chunk's new content, written ahead by prepareReplacement() and put in place by adoptSync(). */
export type Replacement = { file: string } | { bytes: Uint8Array };

/** Chunks up to this size are stored inside LMDB. */
export const INLINE_LIMIT = 64 * 1024;
/**
 * Inline bytes are stored in pieces of at most this many bytes, each small enough to sit in an LMDB
 * leaf page. A bigger value would take contiguous overflow pages, and once many had been freed
 * (small files deleted or evicted), finding room for the next one meant searching a fragmented free
 * list: with whole 32 KiB chunks as values, creating a small file went from 0.28 to 10–14 ms after
 * 10,000 had been deleted.
 */
const INLINE_PIECE = 1920;
/** LMDB's page size: each piece takes a page of its own (pages split half-full). */
const PAGE_BYTES = 4096;

/** Bytes of local disk a chunk takes: an inline one, the pages of its pieces. */
function footprint(entry: LocalChunk): number {
  return entry.inline ? Math.ceil(entry.bytes / INLINE_PIECE) * PAGE_BYTES : entry.bytes;
}

type LocalChunkKey = [number, number];
/** [ino, chunk, piece number]. */
type PieceKey = [number, number, number];

interface OpenFile {
  fd: number;
  users: number;
  closing: boolean;
}

const MAX_OPEN_FILES = 256;

export class ChunkStore {
  private readonly index: Database<LocalChunk, LocalChunkKey>;
  private readonly pieces: Database<Buffer, PieceKey>;
  private readonly open = new Map<string, OpenFile>();
  /** Recency order for eviction: Map iteration order is insertion order; a use re-inserts. */
  private readonly recency = new Map<string, LocalChunkKey>();
  private used = 0;
  private replacements = 0;
  private readonly tmpDir: string;
  private readonly txnFlags: number;
  /** 'fsync' durability: changes to files are flushed before the transaction recording them commits. */
  private readonly flushesFiles: boolean;
  /** Chunk files written or cut in the running transaction ('fsync' durability only). */
  private readonly changedFiles = new Set<string>();
  /** Directories whose entries changed in it: a chunk file created or renamed in, a shard made. */
  private readonly changedDirs = new Set<string>();
  /** Paths of chunk files removed in the running transaction, unlinked once it commits. */
  private readonly removedFiles = new Set<string>();
  /** Paths of chunk files created in the running transaction, unlinked if it fails. */
  private readonly createdFiles = new Set<string>();
  /** Transactions running: 1 inside the outermost, which commits. */
  private depth = 0;

  constructor(
    readonly dir: string,
    readonly chunkSize: number,
    private readonly env: RootDatabase,
    durability: Durability,
  ) {
    this.txnFlags = tableTxnFlags(durability);
    this.flushesFiles = durability === 'fsync';
    if (!fs.existsSync(dir)) {
      fs.mkdirSync(dir, { recursive: true });
      if (this.flushesFiles) flushSync(path.dirname(dir), 'directory');
    }
    // Replacements a crash left half-written.
    this.tmpDir = path.join(dir, 'tmp');
    fs.rmSync(this.tmpDir, { recursive: true, force: true });
    fs.mkdirSync(this.tmpDir);
    this.index = env.openDB({ name: 'local.chunks' });
    this.pieces = env.openDB({ name: 'local.chunkPieces', encoding: 'binary' });
    this.adoptWholeInlineChunks();
    this.countChunks();
  }

  /** Space used and recency order, from the index (recency is index order until chunks are used). */
  private countChunks(): void {
    this.used = 0;
    this.recency.clear();
    for (const { key, value } of this.index.getRange({})) {
      this.recency.set(name(key[0], key[1]), [key[0], key[1]]);
      this.used += footprint(value);
    }
  }

  /** Local disk the chunks take (an inline chunk counts the LMDB pages of its pieces). */
  usedBytes(): number {
    return this.used;
  }

  /** The object ETag whose bytes this chunk file holds at base positions, if any. */
  holds(ino: InodeId, chunk: number): string | undefined {
    const entry = this.index.get([ino, chunk]);
    return entry && entry.holds !== '' ? entry.holds : undefined;
  }

  exists(ino: InodeId, chunk: number): boolean {
    return this.index.doesExist([ino, chunk]);
  }

  /** Write `data` at `offset` within the chunk. */
  writeSync(ino: InodeId, chunk: number, offset: number, data: Uint8Array): void {
    this.transaction(() => {
      const entry = this.entryFor(ino, chunk, offset + data.length);
      if (entry.inline) {
        const bytes = this.inlineBytes(ino, chunk, entry, Math.max(entry.bytes, offset + data.length));
        bytes.set(data, offset);
        this.putInline(ino, chunk, entry, bytes);
        return;
      }
      const file = this.acquire(ino, chunk, true, entry.bytes === 0);
      try {
        writeFully(file.fd, data, offset);
      } finally {
        this.release(ino, chunk, file);
      }
      this.grow(entry, offset + data.length);
      this.index.putSync([ino, chunk], entry);
      this.touch(ino, chunk);
      this.changedFile(ino, chunk);
    });
  }

  /**
   * Write base bytes of object `etag` into the given gaps ([start, end) pairs within the chunk;
   * `data` is the base content from chunk offset 0) and record that the file holds that version.
   */
  fillSync(ino: InodeId, chunk: number, etag: string, data: Uint8Array, gaps: readonly number[]): void {
    this.transaction(() => {
      const end = gaps.length ? Math.min(gaps[gaps.length - 1]!, data.length) : 0;
      const entry = this.entryFor(ino, chunk, end);
      entry.holds = '';
      this.index.putSync([ino, chunk], entry);
      if (entry.inline) {
        const bytes = this.inlineBytes(ino, chunk, entry, Math.max(entry.bytes, end));
        for (let i = 0; i < gaps.length; i += 2) {
          const stop = Math.min(gaps[i + 1]!, data.length);
          if (stop > gaps[i]!) bytes.set(data.subarray(gaps[i]!, stop), gaps[i]!);
        }
        entry.holds = etag;
        this.putInline(ino, chunk, entry, bytes);
        return;
      }
      const file = this.acquire(ino, chunk, true, entry.bytes === 0);
      try {
        for (let i = 0; i < gaps.length; i += 2) {
          const start = gaps[i]!;
          const stop = Math.min(gaps[i + 1]!, data.length);
          if (stop > start) writeFully(file.fd, data.subarray(start, stop), start);
        }
      } finally {
        this.release(ino, chunk, file);
      }
      this.grow(entry, end);
      entry.holds = etag;
      this.index.putSync([ino, chunk], entry);
      this.touch(ino, chunk);
      this.changedFile(ino, chunk);
    });
  }

  /**
   * Write a chunk's replacement content ahead (a file in the store's tmp directory, or kept in
   * memory when small enough to live inline) to adoptSync() later.
   */
  async prepareReplacement(ino: InodeId, chunk: number, data: Uint8Array): Promise<Replacement> {
    if (data.length <= INLINE_LIMIT) return { bytes: data };
    const file = path.join(this.tmpDir, `${name(ino, chunk)}-${++this.replacements}`);
    try {
      await fs.promises.writeFile(file, data, { mode: 0o600 });
    } catch (err) {
      fs.rmSync(file, { force: true }); // a full disk must not also leak the partial file
      throw err;
    }
    return { file };
  }

  /**
   * Make a replacement the chunk's content, holding clean bytes of object `etag`, cut to `bytes`.
   * The caller has checked, in the same synchronous turn, that the chunk has no written ranges.
   */
  adoptSync(ino: InodeId, chunk: number, etag: string, replacement: Replacement, bytes: number): void {
    this.transaction(() => {
      this.removeSync(ino, chunk);
      if ('bytes' in replacement) {
        this.putInline(ino, chunk, { holds: etag, bytes: 0, inline: true }, Buffer.from(replacement.bytes.subarray(0, bytes)));
        return;
      }
      const target = this.pathOf(ino, chunk);
      this.ensureShard(target);
      fs.truncateSync(replacement.file, bytes);
      fs.renameSync(replacement.file, target);
      this.removedFiles.delete(target);
      this.createdFiles.add(target);
      this.changedDir(path.dirname(target));
      this.used += bytes;
      this.index.putSync([ino, chunk], { holds: etag, bytes });
      this.touch(ino, chunk);
      this.changedFile(ino, chunk);
    });
  }

  /** Drop a replacement that will not be adopted. */
  discardReplacement(replacement: Replacement): void {
    if ('file' in replacement) fs.rmSync(replacement.file, { force: true });
  }

  /** Record that the file now holds base bytes of `etag` (after a flush made it the object's content). */
  rebaseSync(ino: InodeId, chunk: number, etag: string): void {
    const entry = this.index.get([ino, chunk]);
    if (!entry) return;
    entry.holds = etag;
    this.index.putSync([ino, chunk], entry);
  }

  /** Forget any base bytes the file holds (they are no longer trustworthy). */
  disownSync(ino: InodeId, chunk: number): void {
    const entry = this.index.get([ino, chunk]);
    if (!entry || entry.holds === '') return;
    entry.holds = '';
    this.index.putSync([ino, chunk], entry);
  }

  /** Cut the chunk file to `length` bytes (no-op when it is shorter or absent). */
  truncateSync(ino: InodeId, chunk: number, length: number): void {
    this.transaction(() => {
      const entry = this.index.get([ino, chunk]);
      if (!entry || entry.bytes <= length) return;
      if (entry.inline) {
        this.putInline(ino, chunk, entry, this.inlineBytes(ino, chunk, entry, length));
        return;
      }
      fs.truncateSync(this.pathOf(ino, chunk), length);
      this.used -= entry.bytes - length;
      entry.bytes = length;
      this.index.putSync([ino, chunk], entry);
      this.changedFile(ino, chunk);
    });
  }

  removeSync(ino: InodeId, chunk: number): void {
    this.transaction(() => {
      const entry = this.index.get([ino, chunk]);
      if (!entry) return;
      if (entry.inline) {
        this.removePieces(ino, chunk, 0, entry.bytes);
      } else {
        this.closeFile(name(ino, chunk));
        this.removedFiles.add(this.pathOf(ino, chunk));
      }
      this.used -= footprint(entry);
      this.index.removeSync([ino, chunk]);
      this.recency.delete(name(ino, chunk));
      this.changedFiles.delete(name(ino, chunk));
    });
  }

  /**
   * The index names a file that is not there (a failed transaction replaced it, or something
   * outside tidefs removed it): the chunk is not stored. Written bytes it held are lost, which the
   * state machine's record of them makes a read report.
   */
  private forgetMissing(ino: InodeId, chunk: number): void {
    const entry = this.index.get([ino, chunk]);
    if (entry && !entry.inline && !fs.existsSync(this.pathOf(ino, chunk))) this.removeSync(ino, chunk);
  }

  /** Chunk indexes of the inode that have a local file, ascending. */
  chunksOf(ino: InodeId, from = 0): number[] {
    const out: number[] = [];
    for (const key of this.index.getKeys({ start: [ino, from], end: [ino + 1, 0] })) out.push(key[1]);
    return out;
  }

  removeInodeSync(ino: InodeId, from = 0): void {
    this.transaction(() => {
      for (const chunk of this.chunksOf(ino, from)) this.removeSync(ino, chunk);
    });
  }

  /**
   * Read `length` bytes at `offset` within the chunk into `into` at `intoOffset`; bytes past the
   * end of the file read as zeros. Returns false (and reads nothing) if the chunk is not stored,
   * e.g. because it was just evicted (a file the index does not name is never read).
   */
  async read(
    ino: InodeId,
    chunk: number,
    offset: number,
    length: number,
    into: Buffer,
    intoOffset: number,
  ): Promise<boolean> {
    const entry = this.index.get([ino, chunk]);
    if (!entry) return false;
    if (entry.inline) {
      const bytes = this.inlineBytes(ino, chunk, entry, entry.bytes);
      const copied = offset < bytes.length ? bytes.copy(into, intoOffset, offset, Math.min(bytes.length, offset + length)) : 0;
      if (copied < length) into.fill(0, intoOffset + copied, intoOffset + length);
      this.touch(ino, chunk);
      return true;
    }
    let file: OpenFile;
    try {
      file = this.acquire(ino, chunk, false);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.forgetMissing(ino, chunk);
      return false;
    }
    try {
      let done = 0;
      while (done < length) {
        const n = await readAt(file.fd, into, intoOffset + done, length - done, offset + done);
        if (n === 0) break;
        done += n;
      }
      if (done < length) into.fill(0, intoOffset + done, intoOffset + length);
    } finally {
      this.release(ino, chunk, file);
    }
    if (this.recency.has(name(ino, chunk))) this.touch(ino, chunk);
    return true;
  }

  /**
   * Evict least recently used chunk files until usage is at most `target` bytes. `evictable`
   * says whether a chunk may go (dirty chunks never may).
   */
  evict(target: number, evictable: (ino: InodeId, chunk: number) => boolean): number {
    let freed = 0;
    this.transaction(() => {
      for (const [key, [ino, chunk]] of this.recency) {
        if (this.used <= target) break;
        if (!evictable(ino as InodeId, chunk)) continue;
        const before = this.used;
        this.removeSync(ino as InodeId, chunk);
        freed += before - this.used;
        this.recency.delete(key);
      }
    });
    return freed;
  }

  close(): void {
    for (const key of [...this.open.keys()]) this.closeFile(key);
  }

  pathOf(ino: InodeId, chunk: number): string {
    const n = name(ino, chunk);
    return path.join(this.dir, shard(n), n);
  }

  /**
   * The chunk's index entry, made ready for content up to `end`: a new chunk starts inline if it
   * fits; an inline chunk outgrowing INLINE_LIMIT moves to a file of its own.
   */
  private entryFor(ino: InodeId, chunk: number, end: number): LocalChunk {
    const entry = this.index.get([ino, chunk]);
    if (!entry) return { holds: '', bytes: 0, inline: end <= INLINE_LIMIT };
    if (entry.inline && Math.max(entry.bytes, end) > INLINE_LIMIT) {
      const bytes = this.inlineBytes(ino, chunk, entry, entry.bytes);
      this.removePieces(ino, chunk, 0, entry.bytes);
      const file = this.acquire(ino, chunk, true, true);
      try {
        writeFully(file.fd, bytes, 0);
      } finally {
        this.release(ino, chunk, file);
      }
      this.used -= footprint(entry);
      delete entry.inline;
      this.used += footprint(entry);
      this.changedFile(ino, chunk);
    }
    return entry;
  }

  /**
   * A copy of an inline chunk's bytes, cut or zero-extended to `length`. Only the pieces within the
   * entry's size are read: a process killed between storing pieces and recording the entry may
   * have left others.
   */
  private inlineBytes(ino: InodeId, chunk: number, entry: LocalChunk, length: number): Buffer {
    const out = Buffer.alloc(length);
    const stored = Math.min(entry.bytes, length);
    if (stored === 0) return out;
    const pieces = this.pieces.getRange({ start: [ino, chunk, 0], end: [ino, chunk, Math.ceil(stored / INLINE_PIECE)] });
    for (const { key, value } of pieces) value.copy(out, key[2] * INLINE_PIECE, 0, Math.min(value.length, stored - key[2] * INLINE_PIECE));
    return out;
  }

  private putInline(ino: InodeId, chunk: number, entry: LocalChunk, bytes: Buffer): void {
    const pieces = this.putPieces(ino, chunk, bytes);
    if (entry.inline) this.removePieces(ino, chunk, pieces, entry.bytes);
    this.used -= footprint(entry);
    entry.bytes = bytes.length;
    entry.inline = true;
    this.used += footprint(entry);
    this.index.putSync([ino, chunk], entry);
    this.touch(ino, chunk);
  }

  /**
   * Runs `change` in one LMDB transaction over the tables (the state machine's) and this store's
   * index; a call made inside one joins it. In 'fsync' durability, the chunk files and directories
   * it changed are flushed before it commits (and the commit is flushed), so that neither the index
   * nor the tables ever describe bytes a power cut could take away. The files it removed are
   * unlinked once it has committed (a leftover file is harmless: a new chunk's file starts empty,
   * and a file the index does not name is never read), so that the index never names a missing
   * file. A change that throws is undone as far as undoFiles() can.
   */
  transaction<T>(change: () => T): T {
    if (this.depth > 0) return change();
    this.depth++;
    let result: T;
    try {
      result = this.env.transactionSync(() => {
        const value = change();
        for (const n of this.changedFiles) flushSync(path.join(this.dir, shard(n), n), 'file');
        for (const d of this.changedDirs) flushSync(d, 'directory');
        return value;
      }, this.txnFlags);
    } catch (err) {
      this.undoFiles();
      throw err;
    } finally {
      this.depth--;
      this.changedFiles.clear();
      this.changedDirs.clear();
    }
    this.createdFiles.clear();
    const removed = [...this.removedFiles];
    this.removedFiles.clear();
    for (const file of removed) {
      try {
        fs.rmSync(file, { force: true });
      } catch {
        // Committed already: a file left behind is never read, and a new chunk's file starts empty.
      }
    }
    return result;
  }

  /**
   * After a failed transaction: the files it created go (closed first), the files it was to remove
   * stay, and the space and recency counts are taken again from the index, which LMDB rolled
   * back. Bytes it wrote into files that were there before are not restored: the state machine
   * checks a command before it changes anything.
   */
  private undoFiles(): void {
    for (const file of this.createdFiles) {
      const n = path.basename(file);
      if (this.open.has(n)) this.closeFile(n);
      fs.rmSync(file, { force: true });
    }
    this.createdFiles.clear();
    this.removedFiles.clear();
    this.countChunks();
  }

  private changedFile(ino: InodeId, chunk: number): void {
    if (this.flushesFiles) this.changedFiles.add(name(ino, chunk));
  }

  private changedDir(dir: string): void {
    if (this.flushesFiles) this.changedDirs.add(dir);
  }

  /** Makes the shard directory of chunk file `target` if it is missing (a change to the chunks directory). */
  private ensureShard(target: string): void {
    const dir = path.dirname(target);
    if (fs.existsSync(dir)) return;
    fs.mkdirSync(dir, { recursive: true });
    this.changedDir(this.dir);
  }

  /** Stores `bytes` as the pieces of an inline chunk; returns how many there are. */
  private putPieces(ino: number, chunk: number, bytes: Buffer): number {
    const pieces = Math.ceil(bytes.length / INLINE_PIECE);
    for (let k = 0; k < pieces; k++) this.pieces.putSync([ino, chunk, k], bytes.subarray(k * INLINE_PIECE, (k + 1) * INLINE_PIECE));
    return pieces;
  }

  /** Removes pieces from number `from` on of an inline chunk of `bytes` bytes. */
  private removePieces(ino: InodeId, chunk: number, from: number, bytes: number): void {
    for (let k = from; k < Math.ceil(bytes / INLINE_PIECE); k++) this.pieces.removeSync([ino, chunk, k]);
  }

  /** A data directory of an earlier version kept each inline chunk as one value: cut them into pieces. */
  private adoptWholeInlineChunks(): void {
    const whole = this.env.openDB<Buffer, LocalChunkKey>({ name: 'local.chunkData', encoding: 'binary' });
    if (whole.getKeysCount() === 0) return;
    // Read first: deleting while iterating the same range skips entries.
    const chunks = [...whole.getRange({})].map(({ key, value }) => ({ key, value: Buffer.from(value) }));
    this.transaction(() => {
      for (const { key, value } of chunks) {
        this.putPieces(key[0], key[1], value);
        whole.removeSync(key);
      }
    });
  }

  private grow(entry: LocalChunk, end: number): void {
    if (end <= entry.bytes) return;
    this.used += end - entry.bytes;
    entry.bytes = end;
  }

  private touch(ino: InodeId, chunk: number): void {
    const key = name(ino, chunk);
    this.recency.delete(key);
    this.recency.set(key, [ino, chunk]);
  }

  /**
   * The chunk's open file. `empty`: the chunk holds no bytes yet, so whatever a file at its path
   * holds is left over (a removal that a power cut undid) and is cut away.
   */
  private acquire(ino: InodeId, chunk: number, forWrite: boolean, empty = false): OpenFile {
    const key = name(ino, chunk);
    let file = this.open.get(key);
    if (!file) {
      const p = this.pathOf(ino, chunk);
      // A file removed earlier in this transaction is a new chunk's file now (cut to empty).
      if (forWrite) this.removedFiles.delete(p);
      const { O_RDWR, O_CREAT, O_TRUNC } = fs.constants;
      let fd: number;
      try {
        fd = fs.openSync(p, O_RDWR | (forWrite && empty ? O_TRUNC : 0));
      } catch (err) {
        if (!forWrite || (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        this.ensureShard(p);
        fd = fs.openSync(p, O_RDWR | O_CREAT | O_TRUNC, 0o600);
        this.createdFiles.add(p);
      }
      // A new chunk's file: its name may never have been flushed (a leftover file).
      if (forWrite && empty) this.changedDir(path.dirname(p));
      file = { fd, users: 0, closing: false };
      this.open.set(key, file);
      if (this.open.size > MAX_OPEN_FILES) this.closeIdle();
    } else if (forWrite && empty) {
      fs.ftruncateSync(file.fd, 0);
    }
    file.users++;
    return file;
  }

  private release(ino: InodeId, chunk: number, file: OpenFile): void {
    file.users--;
    if (file.closing && file.users === 0) {
      fs.closeSync(file.fd);
      if (this.open.get(name(ino, chunk)) === file) this.open.delete(name(ino, chunk));
    }
  }

  private closeFile(key: string): void {
    const file = this.open.get(key);
    if (!file) return;
    this.open.delete(key);
    if (file.users === 0) fs.closeSync(file.fd);
    else file.closing = true;
  }

  private closeIdle(): void {
    for (const [key, file] of this.open) {
      if (this.open.size <= MAX_OPEN_FILES / 2) break;
      if (file.users === 0) this.closeFile(key);
    }
  }
}

const name = (ino: number, chunk: number): string => `${ino.toString(16)}.${chunk}`;
const shard = (n: string): string => n.slice(Math.max(0, n.indexOf('.') - 2), n.indexOf('.'));

function writeFully(fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.length) {
    done += fs.writeSync(fd, data, done, data.length - done, position + done);
  }
}

/**
 * Flags of transaction(), by durability mode (a throw rolls the change back in both).
 * 'process' (an environment opened without syncs): commits do not wait for the disk; the log,
 * which the page cache keeps for a killed process, replays what they had not recorded. 'fsync':
 * a commit returns once it is on the disk, so that what comes after it (unlinking the files it
 * removed) can count on it. (LMDB's NOMETASYNC would save one of its two flushes, but a power cut
 * could then undo a commit whose removed files were already gone.)
 */
function tableTxnFlags(durability: Durability): number {
  const flags = TransactionFlags.ABORTABLE | TransactionFlags.SYNCHRONOUS_COMMIT;
  return durability === 'fsync' ? flags : flags | TransactionFlags.NO_SYNC_FLUSH;
}

/** fdatasync of a file, fsync of a directory. A failure (the disk's) fails the transaction. */
function flushSync(target: string, kind: 'file' | 'directory'): void {
  const fd = fs.openSync(target, kind === 'file' ? 'r+' : 'r');
  try {
    if (kind === 'file') fs.fdatasyncSync(fd);
    else fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function readAt(fd: number, into: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, into, offset, length, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}
