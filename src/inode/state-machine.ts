// The filesystem's metadata state machine: applies committed inode commands (proto/inode.proto)
// to the LMDB tables of MetadataStore and the chunk files of ChunkStore. apply() is
// deterministic: it reads no clock (times come in the command) and no network, and every member
// of a group that applies the same log reaches the same tables. It never talks to the bucket: the
// node does that and reports results back as commands (listings, object metadata, flushes).
import { serialize, deserialize } from 'node:v8';
import type { Entry } from '../raft/types.js';
import type { StateMachine } from '../raft/state-machine.js';
import { Kind } from '../gen/inode.js';
import type * as cmd from '../gen/inode.js';
import { BucketKeys, isRepresentableName } from './bucket-keys.js';
import type { ChunkStore } from './chunk-store.js';
import { type ApplyResult, decodeCommand, OK } from './commands.js';
import { type FsErrorCode } from './errors.js';
import { addInterval, clipIntervals, coversRange } from './intervals.js';
import { MetadataStore, REPLICATED_TABLES } from './metadata-store.js';
import {
  INODE_SEQUENCE_BITS,
  InodeKind,
  ROOT_INO,
  isDirty,
  type InodeId,
  type InodeRecord,
} from './types.js';

export interface InodeConfig {
  chunkSize: number;
  /** Normalised key prefix of the mount ('' or 'a/b/'). */
  prefix: string;
  /** The owning group's id: the high bits of every inode id it allocates. */
  groupId: number;
  /** Owner and modes of entries found in the bucket without tidefs metadata. */
  defaultUid: number;
  defaultGid: number;
  defaultFilePerm: number;
  defaultDirPerm: number;
}

/** Directories hold at most this many bytes of xattrs (they are stored as object metadata). */
export const MAX_XATTR_BYTES = 1536;

class Rejection extends Error {
  constructor(
    readonly code: FsErrorCode,
    message: string,
  ) {
    super(message);
  }
}
const reject = (code: FsErrorCode, message: string): never => {
  throw new Rejection(code, message);
};

const kindOf = (k: Kind): InodeKind =>
  k === Kind.KIND_DIR ? InodeKind.Dir : k === Kind.KIND_SYMLINK ? InodeKind.Symlink : InodeKind.File;

export class InodeStateMachine implements StateMachine<ApplyResult> {
  /** Every apply commits the tables and the applied index in one LMDB transaction. */
  readonly persistent = true;
  readonly store: MetadataStore;
  readonly keys: BucketKeys;
  /** The tables' applied index, kept in memory: only apply() and restore() change it. */
  private applied: number;

  constructor(
    store: MetadataStore,
    readonly chunks: ChunkStore,
    readonly config: InodeConfig,
  ) {
    this.store = store;
    this.keys = new BucketKeys(store, config.prefix);
    if (!store.inode(ROOT_INO)) {
      chunks.transaction(() => this.createRoot());
    }
    this.applied = store.metaValue('applied');
  }

  appliedIndex(): number {
    return this.applied;
  }

  apply(entry: Entry): ApplyResult {
    if (entry.index <= this.applied) return OK;
    if (entry.data.length === 0) {
      this.chunks.transaction(() => this.store.meta.putSync('applied', entry.index));
      this.applied = entry.index;
      return OK;
    }
    const command = decodeCommand(entry.data);
    let result: ApplyResult = OK;
    try {
      this.chunks.transaction(() => {
        result = this.dispatch(command, entry.index);
        this.store.meta.putSync('applied', entry.index);
      });
    } catch (err) {
      if (!(err instanceof Rejection)) throw err;
      this.chunks.transaction(() => this.store.meta.putSync('applied', entry.index));
      result = { ok: false, error: err.code, message: err.message };
    }
    this.applied = entry.index;
    return result;
  }

  async snapshot(): Promise<Uint8Array> {
    const tables: Record<string, Array<[unknown, unknown]>> = {};
    for (const name of REPLICATED_TABLES) {
      tables[name] = [...this.store.table(name).getRange({})].map(({ key, value }) => [key, value]);
    }
    const chunkData: Array<[number, number, Uint8Array]> = [];
    for (const [key, ranges] of tables.chunks as Array<[[number, number], number[]]>) {
      const end = ranges[ranges.length - 1] ?? 0;
      const buf = Buffer.alloc(end);
      await this.chunks.read(key[0] as InodeId, key[1], 0, end, buf, 0);
      chunkData.push([key[0], key[1], buf]);
    }
    return serialize({ tables, chunkData });
  }

  async restore(data: Uint8Array): Promise<void> {
    const image = deserialize(data) as {
      tables: Record<string, Array<[unknown, unknown]>>;
      chunkData: Array<[number, number, Uint8Array]>;
    };
    this.chunks.transaction(() => {
      for (const ino of new Set([...this.store.inodes.getKeys({})])) this.chunks.removeInodeSync(ino as InodeId);
      for (const name of REPLICATED_TABLES) {
        const table = this.store.table(name);
        table.clearSync();
        for (const [key, value] of image.tables[name] ?? []) table.putSync(key as never, value);
      }
      for (const [ino, chunk, bytes] of image.chunkData) {
        this.chunks.writeSync(ino as InodeId, chunk, 0, bytes);
      }
    });
    this.applied = this.store.metaValue('applied');
  }

  // ---- dispatch ----

  private dispatch(command: cmd.Command, index: number): ApplyResult {
    const now = command.nowMs;
    const op = command.op;
    if (!op) return reject('EINVAL', 'empty command');
    switch (op.$case) {
      case 'create':
        return this.create(op.value, now);
      case 'write':
        return this.write(op.value, now);
      case 'truncate':
        return this.truncate(op.value, now);
      case 'setAttr':
        return this.setAttr(op.value, now);
      case 'unlink':
        return this.unlink(op.value, now);
      case 'rename':
        return this.rename(op.value, now);
      case 'link':
        return this.link(op.value, now);
      case 'setXattr':
        return this.setXattr(op.value, now);
      case 'removeXattr':
        return this.removeXattr(op.value, now);
      case 'mergeListing':
        return this.mergeListing(op.value, now);
      case 'finishListing':
        return this.finishListing(op.value, now);
      case 'loadObjectMeta':
        return this.loadObjectMeta(op.value);
      case 'beginFlush':
        return this.beginFlush(op.value);
      case 'finishFlush':
        return this.finishFlush(op.value, index);
      case 'forgetTombstone':
        return this.forgetTombstone(op.value, index);
      case 'dropOrphan':
        return this.dropOrphan(op.value);
      case 'objectVanished':
        return this.objectVanished(op.value);
    }
  }

  // ---- namespace ----

  private create(c: cmd.Create, now: number): ApplyResult {
    const parent = this.dirInode(c.parent as InodeId);
    if (this.store.lookup(c.parent as InodeId, c.name) !== undefined) reject('EEXIST', c.name);
    const kind = kindOf(c.kind);
    const ino = this.allocateInode();
    const rec: InodeRecord = {
      kind,
      perm: c.mode & 0o7777,
      uid: c.uid,
      gid: c.gid,
      size: kind === InodeKind.Symlink ? Buffer.byteLength(c.symlinkTarget) : 0,
      atime: now,
      mtime: now,
      ctime: now,
      nlink: kind === InodeKind.Dir ? 2 : 1,
      objectKeys: [],
      baseLimit: 0,
      metaLoaded: true,
      version: 1,
      flushedVersion: 0,
    };
    if (kind === InodeKind.Symlink) rec.symlinkTarget = c.symlinkTarget;
    if (kind === InodeKind.Dir) rec.listedAt = now;
    this.linkEntry(c.parent as InodeId, c.name, ino);
    this.store.inodes.putSync(ino, rec);
    this.store.dirty.putSync(ino, now);
    this.touchDir(c.parent as InodeId, parent, now, kind === InodeKind.Dir ? 1 : 0);
    return { ok: true, ino };
  }

  private unlink(c: cmd.Unlink, now: number): ApplyResult {
    const parentIno = c.parent as InodeId;
    const parent = this.dirInode(parentIno);
    const ino = this.store.lookup(parentIno, c.name) ?? reject('ENOENT', c.name);
    const rec = this.inode(ino);
    if (c.dir) {
      if (rec.kind !== InodeKind.Dir) reject('ENOTDIR', c.name);
      if (this.store.hasChildren(ino)) reject('ENOTEMPTY', c.name);
    } else if (rec.kind === InodeKind.Dir) {
      reject('EISDIR', c.name);
    }
    const key = this.keys.keyOf(parentIno, c.name, rec.kind);
    this.unlinkEntry(parentIno, c.name, ino);
    this.touchDir(parentIno, parent, now, rec.kind === InodeKind.Dir ? -1 : 0);
    this.keepEmptyDir(parentIno, parent, now);
    if (key !== undefined) this.forgetKey(rec, key);
    this.releaseLink(ino, rec, now, c.keepOrphan);
    return OK;
  }

  private rename(c: cmd.Rename, now: number): ApplyResult {
    const from = c.parent as InodeId;
    const to = c.newParent as InodeId;
    const fromDir = this.dirInode(from);
    const toDir = from === to ? fromDir : this.dirInode(to);
    const ino = this.store.lookup(from, c.name) ?? reject('ENOENT', c.name);
    const rec = this.inode(ino);
    if (from === to && c.name === c.newName) return OK;
    const existing = this.store.lookup(to, c.newName);
    if (existing !== undefined) {
      if (c.noReplace) reject('EEXIST', c.newName);
      if (existing === ino) return OK;
      const target = this.inode(existing);
      if (rec.kind === InodeKind.Dir && target.kind !== InodeKind.Dir) reject('ENOTDIR', c.newName);
      if (rec.kind !== InodeKind.Dir && target.kind === InodeKind.Dir) reject('EISDIR', c.newName);
      if (target.kind === InodeKind.Dir && this.store.hasChildren(existing)) reject('ENOTEMPTY', c.newName);
    }
    if (rec.kind === InodeKind.Dir) {
      for (let up: InodeId | undefined = to; up !== undefined && up !== ROOT_INO; up = this.store.firstLink(up)?.parent) {
        if (up === ino) reject('EINVAL', 'cannot move a directory into itself');
      }
    }
    const dirDelta = rec.kind === InodeKind.Dir ? 1 : 0;
    if (existing !== undefined) {
      const target = this.inode(existing);
      const targetKey = this.keys.keyOf(to, c.newName, target.kind);
      this.unlinkEntry(to, c.newName, existing);
      if (targetKey !== undefined) this.forgetKey(target, targetKey);
      if (target.kind === InodeKind.Dir) this.touchDir(to, toDir, now, -1);
      this.releaseLink(existing, target, now, c.keepTargetOrphan);
    }
    const oldKey = this.keys.keyOf(from, c.name, rec.kind);
    this.unlinkEntry(from, c.name, ino);
    this.linkEntry(to, c.newName, ino);
    if (oldKey !== undefined) this.forgetKey(rec, oldKey);
    this.touchDir(from, this.inode(from), now, -dirDelta);
    this.touchDir(to, this.inode(to), now, dirDelta);
    this.keepEmptyDir(from, this.inode(from), now);
    rec.ctime = now;
    this.bump(ino, rec, now);
    this.store.inodes.putSync(ino, rec);
    if (rec.kind === InodeKind.Dir) this.markSubtreeMoved(ino, now);
    return OK;
  }

  private link(c: cmd.Link, now: number): ApplyResult {
    const ino = c.ino as InodeId;
    const rec = this.inode(ino);
    if (rec.kind === InodeKind.Dir) reject('EPERM', 'hard links to directories are not allowed');
    const parent = this.dirInode(c.newParent as InodeId);
    if (this.store.lookup(c.newParent as InodeId, c.newName) !== undefined) reject('EEXIST', c.newName);
    if (rec.orphan) reject('ENOENT', 'the file has been unlinked');
    this.linkEntry(c.newParent as InodeId, c.newName, ino);
    this.touchDir(c.newParent as InodeId, parent, now, 0);
    rec.nlink++;
    rec.ctime = now;
    this.bump(ino, rec, now);
    this.store.inodes.putSync(ino, rec);
    return OK;
  }

  // ---- data ----

  private write(c: cmd.Write, now: number): ApplyResult {
    const ino = c.ino as InodeId;
    const rec = this.fileInode(ino);
    const size = this.config.chunkSize;
    const end = c.offset + c.data.length;
    for (let pos = c.offset; pos < end; ) {
      const chunk = Math.floor(pos / size);
      const within = pos - chunk * size;
      const n = Math.min(size - within, end - pos);
      this.chunks.writeSync(ino, chunk, within, c.data.subarray(pos - c.offset, pos - c.offset + n));
      const ranges = this.store.writtenRanges(ino, chunk) ?? [];
      this.store.chunks.putSync([ino, chunk], addInterval(ranges, within, within + n));
      pos += n;
    }
    if (end > rec.size) rec.size = end;
    rec.mtime = now;
    rec.ctime = now;
    this.bump(ino, rec, now);
    this.store.inodes.putSync(ino, rec);
    return { ok: true, size: rec.size };
  }

  private truncate(c: cmd.Truncate, now: number): ApplyResult {
    const ino = c.ino as InodeId;
    const rec = this.fileInode(ino);
    this.resize(ino, rec, c.size);
    if (rec.flush) rec.flush.truncatedTo = Math.min(rec.flush.truncatedTo, c.size);
    rec.mtime = now;
    rec.ctime = now;
    this.bump(ino, rec, now);
    this.store.inodes.putSync(ino, rec);
    return { ok: true, size: rec.size };
  }

  /**
   * Set the file's size, keeping the chunk invariants: nothing past the new size survives in the
   * written ranges, the base, or the chunk files, so a later extension reads zeros.
   */
  private resize(ino: InodeId, rec: InodeRecord, size: number): void {
    const chunkSize = this.config.chunkSize;
    const boundary = Math.min(size, rec.size);
    const firstGone = Math.ceil(boundary / chunkSize);
    for (const { chunk, ranges } of [...this.store.dirtyChunks(ino)]) {
      if (chunk >= firstGone) this.store.chunks.removeSync([ino, chunk]);
      else if ((chunk + 1) * chunkSize > boundary) {
        this.store.chunks.putSync([ino, chunk], clipIntervals(ranges, boundary - chunk * chunkSize));
      }
    }
    this.chunks.removeInodeSync(ino, firstGone);
    if (boundary % chunkSize !== 0) {
      const chunk = Math.floor(boundary / chunkSize);
      this.chunks.truncateSync(ino, chunk, boundary - chunk * chunkSize);
    }
    rec.baseLimit = Math.min(rec.baseLimit, boundary);
    rec.size = size;
  }

  // ---- attributes ----

  private setAttr(c: cmd.SetAttr, now: number): ApplyResult {
    const ino = c.ino as InodeId;
    const rec = this.inode(ino);
    let persistent = false;
    if (c.mode !== undefined) {
      rec.perm = c.mode & 0o7777;
      persistent = true;
    }
    if (c.uid !== undefined) {
      rec.uid = c.uid;
      persistent = true;
    }
    if (c.gid !== undefined) {
      rec.gid = c.gid;
      persistent = true;
    }
    if (c.mtimeMs !== undefined) {
      rec.mtime = c.mtimeMs;
      persistent = true;
    }
    if (c.atimeMs !== undefined) rec.atime = c.atimeMs;
    rec.ctime = now;
    rec.metaLoaded = true;
    if (persistent) this.bump(ino, rec, now);
    this.store.inodes.putSync(ino, rec);
    return OK;
  }

  private setXattr(c: cmd.SetXattr, now: number): ApplyResult {
    const ino = c.ino as InodeId;
    const rec = this.inode(ino);
    const xattrs = { ...(rec.xattrs ?? {}) };
    const exists = Object.hasOwn(xattrs, c.name);
    if (c.flags === 1 && exists) reject('EEXIST', c.name);
    if (c.flags === 2 && !exists) reject('ENODATA', c.name);
    xattrs[c.name] = new Uint8Array(c.value);
    if (xattrBytes(xattrs) > MAX_XATTR_BYTES) reject('ENOSPC', `xattrs are limited to ${MAX_XATTR_BYTES} bytes`);
    rec.xattrs = xattrs;
    rec.ctime = now;
    this.bump(ino, rec, now);
    this.store.inodes.putSync(ino, rec);
    return OK;
  }

  private removeXattr(c: cmd.RemoveXattr, now: number): ApplyResult {
    const ino = c.ino as InodeId;
    const rec = this.inode(ino);
    if (!rec.xattrs || !Object.hasOwn(rec.xattrs, c.name)) reject('ENODATA', c.name);
    const xattrs = { ...rec.xattrs };
    delete xattrs[c.name];
    rec.xattrs = xattrs;
    rec.ctime = now;
    this.bump(ino, rec, now);
    this.store.inodes.putSync(ino, rec);
    return OK;
  }

  // ---- what the bucket says ----

  private mergeListing(c: cmd.MergeListing, now: number): ApplyResult {
    const dir = c.dir as InodeId;
    const dirRec = this.store.inode(dir);
    if (!dirRec || dirRec.kind !== InodeKind.Dir || dirRec.orphan) return OK;
    const prefix = this.keys.childPrefix(dir);
    if (prefix === undefined) return OK;
    const gen = c.generation;
    let subdirs = 0;
    for (const name of c.dirs) {
      if (!isRepresentableName(name) || this.deletedSince(`${prefix}${name}/`, gen)) continue;
      const existing = this.store.lookup(dir, name);
      if (existing !== undefined) {
        const rec = this.inode(existing);
        if (rec.kind === InodeKind.Dir) {
          if ((rec.seenGeneration ?? -1) < gen) {
            rec.seenGeneration = gen;
            this.store.inodes.putSync(existing, rec);
          }
          continue;
        }
        // A file and a directory of the same name: the directory wins, unless the file has local changes.
        if (isDirty(rec) || rec.flush) continue;
        this.unlinkEntry(dir, name, existing);
        this.dropInode(existing, rec, false);
      }
      const ino = this.allocateInode();
      // A directory that is only a prefix has no time of its own: it appears when first seen.
      this.store.inodes.putSync(ino, this.listedRecord(InodeKind.Dir, 0, now, gen));
      this.linkEntry(dir, name, ino);
      subdirs++;
    }
    for (const obj of c.files) {
      const key = `${prefix}${obj.name}`;
      if (!isRepresentableName(obj.name) || this.deletedSince(key, gen)) continue;
      const existing = this.store.lookup(dir, obj.name);
      if (existing === undefined) {
        const ino = this.allocateInode();
        const rec = this.listedRecord(InodeKind.File, obj.size, obj.mtimeMs, gen);
        rec.object = { key, etag: obj.etag, size: obj.size };
        rec.objectKeys = [key];
        rec.baseLimit = obj.size;
        this.store.inodes.putSync(ino, rec);
        this.store.objectRefs.putSync([key, ino], true);
        this.linkEntry(dir, obj.name, ino);
        continue;
      }
      const rec = this.inode(existing);
      if (rec.kind === InodeKind.Dir || (rec.seenGeneration ?? -1) >= gen) continue;
      rec.seenGeneration = gen;
      if (!isDirty(rec) && !rec.flush && rec.object?.key === key && rec.object.etag !== obj.etag) {
        this.replaceObject(existing, rec, { key, etag: obj.etag, size: obj.size }, obj.mtimeMs);
      }
      this.store.inodes.putSync(existing, rec);
    }
    if (c.hasMarker && !dirRec.hasMarker) dirRec.hasMarker = true;
    dirRec.nlink += subdirs;
    this.store.inodes.putSync(dir, dirRec);
    return OK;
  }

  /**
   * A listing that started at generation `gen` is complete: entries known from the bucket before it
   * started and absent from it were deleted outside tidefs, unless they (or anything under them)
   * have local changes.
   */
  private finishListing(c: cmd.FinishListing, now: number): ApplyResult {
    const dir = c.dir as InodeId;
    const dirRec = this.store.inode(dir);
    if (!dirRec || dirRec.kind !== InodeKind.Dir || dirRec.orphan) return OK;
    const gen = c.generation;
    for (const { name, ino } of [...this.store.children(dir)]) {
      const rec = this.inode(ino);
      if (rec.seenGeneration === undefined || rec.seenGeneration >= gen) continue;
      if (!this.subtreeIsClean(ino, rec)) continue;
      this.unlinkEntry(dir, name, ino);
      if (rec.kind === InodeKind.Dir) dirRec.nlink--;
      this.dropSubtree(ino, rec);
    }
    const prefix = this.keys.childPrefix(dir);
    if (prefix !== undefined) {
      for (const { key, value } of [...this.store.tombstones.getRange({ start: prefix, end: `${prefix}\uffff` })]) {
        if (value > 0 && value < gen && !key.slice(prefix.length, -1).includes('/')) {
          this.store.tombstones.removeSync(key);
        }
      }
    }
    dirRec.listedAt = now;
    dirRec.listingGeneration = gen;
    if (dirRec.mtime === 0) {
      dirRec.mtime = now;
      dirRec.ctime = now;
      dirRec.atime = now;
    }
    this.store.inodes.putSync(dir, dirRec);
    return OK;
  }

  private loadObjectMeta(c: cmd.LoadObjectMeta): ApplyResult {
    const ino = c.ino as InodeId;
    const rec = this.store.inode(ino);
    if (!rec || isDirty(rec) || rec.flush) return OK;
    if (rec.kind !== InodeKind.Dir && rec.object && rec.object.etag !== c.etag) {
      this.replaceObject(ino, rec, { key: rec.object.key, etag: c.etag, size: c.size }, c.mtimeMs);
    }
    if (c.mode !== undefined) rec.perm = c.mode & 0o7777;
    if (c.uid !== undefined) rec.uid = c.uid;
    if (c.gid !== undefined) rec.gid = c.gid;
    if (c.mtimeMs !== undefined && c.mtimeMs > 0) rec.mtime = c.mtimeMs;
    if (c.atimeMs !== undefined) rec.atime = c.atimeMs;
    if (c.symlinkTarget !== undefined && rec.kind === InodeKind.File) {
      rec.kind = InodeKind.Symlink;
      rec.symlinkTarget = c.symlinkTarget;
      rec.size = Buffer.byteLength(c.symlinkTarget);
    }
    if (Object.keys(c.xattrs).length > 0) {
      rec.xattrs = Object.fromEntries(Object.entries(c.xattrs).map(([k, v]) => [k, new Uint8Array(v)]));
    }
    rec.metaLoaded = true;
    this.store.inodes.putSync(ino, rec);
    return OK;
  }

  private objectVanished(c: cmd.ObjectVanished): ApplyResult {
    const ino = c.ino as InodeId;
    const rec = this.store.inode(ino);
    if (!rec || rec.object?.etag !== c.etag) return OK;
    for (const link of this.store.links(ino)) {
      const parent = this.store.inode(link.parent);
      if (parent?.listedAt !== undefined) {
        delete parent.listedAt;
        this.store.inodes.putSync(link.parent, parent);
      }
    }
    return OK;
  }

  // ---- write-back ----

  private beginFlush(c: cmd.BeginFlush): ApplyResult {
    const ino = c.ino as InodeId;
    const rec = this.store.inode(ino);
    if (!rec) return reject('ENOENT', `inode ${ino}`);
    const truncatedTo = rec.flush?.version === c.version ? rec.flush.truncatedTo : rec.size;
    rec.flush = { version: c.version, keys: c.keys, uploadId: c.uploadId, truncatedTo };
    this.store.inodes.putSync(ino, rec);
    return OK;
  }

  private finishFlush(c: cmd.FinishFlush, index: number): ApplyResult {
    const ino = c.ino as InodeId;
    const rec = this.store.inode(ino);
    const written = c.etag === '' ? [] : c.keys;
    if (!rec) {
      for (const key of written) this.tombstone(key);
      return OK;
    }
    const flush = rec.flush;
    delete rec.flush;
    if (written.length === 0) {
      this.store.inodes.putSync(ino, rec);
      return OK;
    }
    for (const key of written) this.store.tombstones.removeSync(key);
    if (rec.orphan) {
      for (const key of written) this.tombstone(key);
      this.store.inodes.putSync(ino, rec);
      return OK;
    }
    const oldEtag = rec.object?.etag;
    const oldBaseLimit = rec.baseLimit;
    const current = c.version === rec.version;
    rec.object = { key: written[0]!, etag: c.etag, size: c.size };
    rec.seenGeneration = index;
    if (current) {
      rec.flushedVersion = c.version;
      rec.baseLimit = c.size;
      this.store.dirty.removeSync(ino);
      this.rebaseChunks(ino, oldEtag, oldBaseLimit, c.etag, true);
      const stale = rec.objectKeys.filter((k) => !written.includes(k));
      for (const key of stale) this.tombstone(key);
      this.setObjectKeys(ino, rec, written);
    } else {
      rec.baseLimit = Math.min(c.size, flush?.truncatedTo ?? c.size, rec.size);
      this.rebaseChunks(ino, oldEtag, oldBaseLimit, c.etag, false);
      this.setObjectKeys(ino, rec, [...new Set([...rec.objectKeys, ...written])]);
    }
    this.store.inodes.putSync(ino, rec);
    return OK;
  }

  private forgetTombstone(c: cmd.ForgetTombstone, index: number): ApplyResult {
    for (const key of c.keys.length > 0 ? c.keys : [c.key]) {
      if (this.store.tombstones.get(key) === 0) this.store.tombstones.putSync(key, index);
    }
    return OK;
  }

  private dropOrphan(c: cmd.DropOrphan): ApplyResult {
    const ino = c.ino as InodeId;
    const rec = this.store.inode(ino);
    if (rec?.orphan) this.dropInode(ino, rec, true);
    return OK;
  }

  // ---- helpers ----

  private createRoot(): void {
    const rec = this.listedRecord(InodeKind.Dir, 0, 0, 0);
    rec.perm = this.config.defaultDirPerm;
    delete rec.seenGeneration;
    this.store.inodes.putSync(ROOT_INO, rec);
    this.store.meta.putSync('nextSequence', 2);
  }

  private listedRecord(kind: InodeKind, size: number, mtime: number, gen: number): InodeRecord {
    const dir = kind === InodeKind.Dir;
    return {
      kind,
      perm: dir ? this.config.defaultDirPerm : this.config.defaultFilePerm,
      uid: this.config.defaultUid,
      gid: this.config.defaultGid,
      size,
      atime: mtime,
      mtime,
      ctime: mtime,
      nlink: dir ? 2 : 1,
      objectKeys: [],
      baseLimit: 0,
      metaLoaded: false,
      version: 0,
      flushedVersion: 0,
      seenGeneration: gen,
    };
  }

  private allocateInode(): InodeId {
    const seq = this.store.metaValue('nextSequence');
    this.store.meta.putSync('nextSequence', seq + 1);
    return (this.config.groupId * 2 ** INODE_SEQUENCE_BITS + seq) as InodeId;
  }

  private inode(ino: InodeId): InodeRecord {
    return this.store.inode(ino) ?? reject('ENOENT', `inode ${ino}`);
  }

  private dirInode(ino: InodeId): InodeRecord {
    const rec = this.inode(ino);
    if (rec.kind !== InodeKind.Dir) reject('ENOTDIR', `inode ${ino}`);
    if (rec.orphan) reject('ENOENT', `directory ${ino} was removed`);
    return rec;
  }

  private fileInode(ino: InodeId): InodeRecord {
    const rec = this.inode(ino);
    if (rec.kind === InodeKind.Dir) reject('EISDIR', `inode ${ino}`);
    if (rec.kind !== InodeKind.File) reject('EINVAL', `inode ${ino} is not a regular file`);
    return rec;
  }

  private linkEntry(parent: InodeId, name: string, ino: InodeId): void {
    this.store.dentries.putSync([parent, name], ino);
    this.store.backlinks.putSync([ino, parent, name], true);
  }

  private unlinkEntry(parent: InodeId, name: string, ino: InodeId): void {
    this.store.dentries.removeSync([parent, name]);
    this.store.backlinks.removeSync([ino, parent, name]);
  }

  private touchDir(ino: InodeId, rec: InodeRecord, now: number, subdirDelta: number): void {
    rec.mtime = now;
    rec.ctime = now;
    rec.nlink += subdirDelta;
    this.store.inodes.putSync(ino, rec);
  }

  /**
   * A directory the bucket knows only as the prefix of its entries would vanish from the bucket
   * with its last entry: once it is empty, it is written back as a "dir/" marker object.
   */
  private keepEmptyDir(ino: InodeId, rec: InodeRecord, now: number): void {
    if (ino === ROOT_INO || rec.hasMarker || rec.objectKeys.length > 0 || isDirty(rec) || this.store.hasChildren(ino)) return;
    this.bump(ino, rec, now);
    this.store.inodes.putSync(ino, rec);
  }

  private bump(ino: InodeId, rec: InodeRecord, now: number): void {
    // The root of a whole-bucket mount has no object of its own to carry its attributes.
    if (ino === ROOT_INO && this.config.prefix === '') return;
    if (!isDirty(rec) && !rec.orphan) this.store.dirty.putSync(ino, now);
    rec.version++;
  }

  /** A pending delete of `key` from the bucket (0 = not yet done). */
  private tombstone(key: string): void {
    this.store.tombstones.putSync(key, 0);
  }

  /** Whether an object listed at generation `gen` is one tidefs deleted, or is deleting. */
  private deletedSince(key: string, gen: number): boolean {
    const t = this.store.tombstones.get(key);
    return t !== undefined && (t === 0 || t > gen);
  }

  /** An inode no longer maps to `key`: delete the object there, if the inode ever put one there. */
  private forgetKey(rec: InodeRecord, key: string): void {
    if (rec.objectKeys.includes(key) || rec.flush?.keys.includes(key) || (rec.kind === InodeKind.Dir && rec.hasMarker)) {
      this.tombstone(key);
    }
  }

  private setObjectKeys(ino: InodeId, rec: InodeRecord, keys: string[]): void {
    for (const key of rec.objectKeys) if (!keys.includes(key)) this.store.objectRefs.removeSync([key, ino]);
    for (const key of keys) this.store.objectRefs.putSync([key, ino], true);
    rec.objectKeys = keys;
  }

  /** One link of `ino` is gone: drop the inode with its last link, or keep it as an open orphan. */
  private releaseLink(ino: InodeId, rec: InodeRecord, now: number, keepOrphan: boolean): void {
    if (rec.kind !== InodeKind.Dir) rec.nlink--;
    rec.ctime = now;
    if (rec.kind === InodeKind.Dir || rec.nlink <= 0) {
      if (keepOrphan && rec.kind !== InodeKind.Dir) {
        rec.nlink = 0;
        rec.orphan = true;
        for (const key of rec.objectKeys) this.tombstone(key);
        this.store.dirty.removeSync(ino);
        this.store.orphans.putSync(ino, true);
        this.store.inodes.putSync(ino, rec);
      } else {
        this.dropInode(ino, rec, true);
      }
      return;
    }
    this.bump(ino, rec, now);
    this.store.inodes.putSync(ino, rec);
  }

  /** Remove an inode with everything it owns; with `deleteObjects`, its objects are deleted too. */
  private dropInode(ino: InodeId, rec: InodeRecord, deleteObjects: boolean): void {
    if (deleteObjects) {
      for (const key of rec.objectKeys) this.tombstone(key);
      for (const key of rec.flush?.keys ?? []) this.tombstone(key);
    }
    this.setObjectKeys(ino, rec, []);
    for (const { chunk } of [...this.store.dirtyChunks(ino)]) this.store.chunks.removeSync([ino, chunk]);
    for (const link of [...this.store.links(ino)]) this.store.backlinks.removeSync([ino, link.parent, link.name]);
    this.chunks.removeInodeSync(ino);
    this.store.dirty.removeSync(ino);
    if (rec.orphan) this.store.orphans.removeSync(ino);
    this.store.inodes.removeSync(ino);
  }

  private dropSubtree(ino: InodeId, rec: InodeRecord): void {
    if (rec.kind === InodeKind.Dir) {
      for (const child of [...this.store.children(ino)]) {
        const childRec = this.inode(child.ino);
        this.unlinkEntry(ino, child.name, child.ino);
        this.dropSubtree(child.ino, childRec);
      }
    }
    this.dropInode(ino, rec, false);
  }

  private subtreeIsClean(ino: InodeId, rec: InodeRecord): boolean {
    if (isDirty(rec) || rec.flush || rec.orphan) return false;
    if (rec.kind !== InodeKind.Dir) return true;
    for (const child of this.store.children(ino)) {
      if (!this.subtreeIsClean(child.ino, this.inode(child.ino))) return false;
    }
    return true;
  }

  /** Every inode under a moved directory now maps to new keys: each must be written there. */
  private markSubtreeMoved(dir: InodeId, now: number): void {
    for (const child of [...this.store.children(dir)]) {
      const rec = this.inode(child.ino);
      this.bump(child.ino, rec, now);
      this.store.inodes.putSync(child.ino, rec);
      if (rec.kind === InodeKind.Dir) this.markSubtreeMoved(child.ino, now);
    }
  }

  /** The bucket object behind a clean file changed outside tidefs: adopt the new version. */
  private replaceObject(ino: InodeId, rec: InodeRecord, object: { key: string; etag: string; size: number }, mtime: number): void {
    if (object.size < rec.size) this.resize(ino, rec, object.size);
    rec.object = object;
    rec.size = object.size;
    rec.baseLimit = object.size;
    // Other bytes must show as another mtime, or the kernel keeps serving the old ones from its page
    // cache (it compares mtime and size): a listing with second precision can give the same time.
    rec.mtime = mtime === rec.mtime ? mtime + 1 : mtime;
    rec.ctime = rec.mtime;
    rec.metaLoaded = false;
  }

  /**
   * After a flush wrote the file as object `newEtag`, each local chunk file that holds the whole
   * chunk (written ranges plus base bytes of the old object) holds the new object's bytes.
   * When `clean`, the written ranges are dropped: the object has them now.
   */
  private rebaseChunks(ino: InodeId, oldEtag: string | undefined, oldBaseLimit: number, newEtag: string, clean: boolean): void {
    const size = this.config.chunkSize;
    const local = new Set(this.chunks.chunksOf(ino));
    for (const chunk of local) {
      const start = chunk * size;
      const baseEnd = Math.max(0, Math.min(oldBaseLimit - start, size));
      const ranges = this.store.writtenRanges(ino, chunk) ?? [];
      const complete = (oldEtag !== undefined && this.chunks.holds(ino, chunk) === oldEtag) || coversRange(ranges, 0, baseEnd);
      if (complete) this.chunks.rebaseSync(ino, chunk, newEtag);
      else this.chunks.disownSync(ino, chunk);
    }
    if (clean) {
      for (const { chunk } of [...this.store.dirtyChunks(ino)]) this.store.chunks.removeSync([ino, chunk]);
    }
  }
}

function xattrBytes(xattrs: Record<string, Uint8Array>): number {
  let n = 0;
  for (const [k, v] of Object.entries(xattrs)) n += Buffer.byteLength(k) + v.length;
  return n;
}
