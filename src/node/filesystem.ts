// The node's filesystem operations, by inode: what src/fuse calls. Each operation makes sure the
// namespace it touches is loaded from the bucket (NamespaceLoader), then either reads the tables
// directly or proposes a command through the log (InodeLog) and waits for it to apply. Tracks
// open files, which decides when an unlinked file is an orphan and when a closed file is flushed.
import { checkKey, checkKeyBytes, checkName, type BucketKeys } from '../inode/bucket-keys.js';
import type { ChunkStore } from '../inode/chunk-store.js';
import { FsError } from '../inode/errors.js';
import type { MetadataStore } from '../inode/metadata-store.js';
import { Kind } from '../gen/inode.js';
import { InodeKind, ROOT_INO, isDirty, type DirEntry, type InodeId, type InodeRecord } from '../inode/types.js';
import type { ContentReader } from './content-reader.js';
import type { InodeLog } from './inode-log.js';
import type { NamespaceLoader } from './namespace-loader.js';
import { fileTypeBits, isStoredXattrName } from './object-metadata.js';
import type { OpenFileTable } from './open-files.js';
import type { WriteBack } from './write-back.js';

export interface Attributes {
  ino: InodeId;
  kind: InodeKind;
  /** st_mode: file type bits and permission bits. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
}

export interface SetAttributes {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atimeMs?: number;
  mtimeMs?: number;
}

export interface FilesystemStats {
  blockSize: number;
  blocks: number;
  blocksFree: number;
  files: number;
  filesFree: number;
  nameMax: number;
}

/** Largest file size: S3's 5 TiB object limit. */
export const MAX_FILE_SIZE = 5 * 1024 ** 4;

export interface FilesystemParts {
  store: MetadataStore;
  keys: BucketKeys;
  chunks: ChunkStore;
  log: InodeLog;
  loader: NamespaceLoader;
  reader: ContentReader;
  writeBack: WriteBack;
  openFiles: OpenFileTable;
  /** Bytes of local cache; writes wait for write-back when dirty data fills it. */
  cacheSize: number;
}

export class Filesystem {
  private readonly store: MetadataStore;
  private readonly keys: BucketKeys;
  private readonly chunks: ChunkStore;
  private readonly log: InodeLog;
  private readonly loader: NamespaceLoader;
  private readonly reader: ContentReader;
  private readonly writeBack: WriteBack;
  private readonly openFiles: OpenFileTable;
  private readonly cacheSize: number;

  constructor(parts: FilesystemParts) {
    this.store = parts.store;
    this.keys = parts.keys;
    this.chunks = parts.chunks;
    this.log = parts.log;
    this.loader = parts.loader;
    this.reader = parts.reader;
    this.cacheSize = parts.cacheSize;
    this.writeBack = parts.writeBack;
    this.openFiles = parts.openFiles;
  }

  /** A filesystem operation is being served (background write-back makes way for it). */
  noteActivity(): void {
    this.writeBack.noteForeground();
  }

  // ---- namespace ----

  async lookup(parent: InodeId, name: string): Promise<InodeId> {
    const ino = await this.find(parent, name);
    if (ino === undefined) throw new FsError('ENOENT', name);
    return ino;
  }

  /** lookup() for callers to whom a missing name is an answer, not an error. */
  async find(parent: InodeId, name: string): Promise<InodeId | undefined> {
    checkName(name);
    await this.loader.ensureListed(parent);
    return this.store.lookup(parent, name);
  }

  /**
   * How long (ms) what the directory says about its entries (their names and attributes) stays
   * as current as the bucket listing it came from: a cache of it may be kept that long.
   */
  entriesFreshMs(dir: InodeId): number {
    return this.loader.listingFreshMs(dir);
  }

  async getattr(ino: InodeId): Promise<Attributes> {
    return attributesOf(ino, await this.loadedRecord(ino));
  }

  async readdir(dir: InodeId): Promise<DirEntry[]> {
    const rec = this.record(dir);
    if (rec.kind !== InodeKind.Dir) throw new FsError('ENOTDIR', `inode ${dir}`);
    await this.loader.ensureListed(dir);
    return [...this.store.children(dir)];
  }

  async create(parent: InodeId, name: string, kind: InodeKind, mode: number, uid: number, gid: number, symlinkTarget = ''): Promise<InodeId> {
    checkName(name);
    await this.loader.ensureListed(parent);
    const key = this.keys.keyOf(parent, name, kind);
    if (key === undefined) throw new FsError('ENOENT', 'parent directory was removed');
    checkKey(key);
    const protoKind = kind === InodeKind.Dir ? Kind.KIND_DIR : kind === InodeKind.Symlink ? Kind.KIND_SYMLINK : Kind.KIND_FILE;
    const r = await this.log.run({ $case: 'create', value: { parent, name, kind: protoKind, mode, uid, gid, symlinkTarget } });
    return r.ino!;
  }

  async readlink(ino: InodeId): Promise<string> {
    const rec = await this.loadedRecord(ino);
    if (rec.kind !== InodeKind.Symlink) throw new FsError('EINVAL', 'not a symbolic link');
    return rec.symlinkTarget ?? '';
  }

  async unlink(parent: InodeId, name: string): Promise<void> {
    const ino = await this.lookup(parent, name);
    await this.log.run({ $case: 'unlink', value: { parent, name, dir: false, keepOrphan: this.openFiles.openCount(ino) > 0 } });
  }

  async rmdir(parent: InodeId, name: string): Promise<void> {
    const ino = await this.lookup(parent, name);
    await this.loader.ensureListed(ino);
    await this.log.run({ $case: 'unlink', value: { parent, name, dir: true, keepOrphan: false } });
  }

  async rename(parent: InodeId, name: string, newParent: InodeId, newName: string, noReplace = false): Promise<void> {
    checkName(newName);
    const ino = await this.lookup(parent, name);
    await this.loader.ensureListed(newParent);
    const rec = this.record(ino);
    const key = this.keys.keyOf(newParent, newName, rec.kind);
    if (key === undefined) throw new FsError('ENOENT', 'target directory was removed');
    checkKey(key);
    const target = this.store.lookup(newParent, newName);
    if (rec.kind === InodeKind.Dir) {
      // Every object under the directory moves: the whole subtree must be known first, and every
      // key it will have must fit.
      await this.loader.ensureSubtreeListed(ino);
      checkKeyBytes(Buffer.byteLength(key) + this.keys.longestKeyBelow(ino));
      if (target !== undefined) await this.loader.ensureListed(target);
    }
    const keepTargetOrphan = target !== undefined && this.openFiles.openCount(target) > 0;
    await this.log.run({ $case: 'rename', value: { parent, name, newParent, newName, noReplace, keepTargetOrphan } });
  }

  async link(ino: InodeId, newParent: InodeId, newName: string): Promise<void> {
    checkName(newName);
    await this.loader.ensureListed(newParent);
    const rec = await this.loadedRecord(ino);
    const key = this.keys.keyOf(newParent, newName, rec.kind);
    if (key === undefined) throw new FsError('ENOENT', 'target directory was removed');
    checkKey(key);
    await this.log.run({ $case: 'link', value: { ino, newParent, newName } });
  }

  async setattr(ino: InodeId, attrs: SetAttributes): Promise<Attributes> {
    await this.loadedRecord(ino);
    if (attrs.size !== undefined) {
      if (attrs.size > MAX_FILE_SIZE) throw new FsError('EFBIG', 'larger than the largest object');
      await this.log.run({ $case: 'truncate', value: { ino, size: attrs.size } });
      this.writeBack.noteTruncate(ino);
    }
    const { mode, uid, gid, atimeMs, mtimeMs } = attrs;
    if (mode !== undefined || uid !== undefined || gid !== undefined || atimeMs !== undefined || mtimeMs !== undefined) {
      await this.log.run({ $case: 'setAttr', value: { ino, mode, uid, gid, atimeMs, mtimeMs } });
    }
    return attributesOf(ino, this.record(ino));
  }

  // ---- extended attributes ----

  async getxattr(ino: InodeId, name: string): Promise<Buffer> {
    const rec = await this.loadedRecord(ino);
    const value = isStoredXattrName(name) ? rec.xattrs?.[name] : undefined;
    if (value === undefined) throw new FsError('ENODATA', name);
    return Buffer.from(value);
  }

  async listxattr(ino: InodeId): Promise<string[]> {
    return Object.keys((await this.loadedRecord(ino)).xattrs ?? {}).filter(isStoredXattrName);
  }

  async setxattr(ino: InodeId, name: string, value: Buffer, flags: number): Promise<void> {
    if (name === '' || Buffer.byteLength(name) > 255) throw new FsError('ERANGE', 'bad attribute name');
    if (!isStoredXattrName(name)) throw new FsError('ENOTSUP', `${name}: security.* and system.* attributes are not supported`);
    await this.loadedRecord(ino);
    await this.log.run({ $case: 'setXattr', value: { ino, name, value, flags } });
  }

  async removexattr(ino: InodeId, name: string): Promise<void> {
    await this.loadedRecord(ino);
    await this.log.run({ $case: 'removeXattr', value: { ino, name } });
  }

  // ---- file content ----

  /** Counts the file open and returns its attributes at this open. */
  async open(ino: InodeId): Promise<Attributes> {
    const rec = await this.loadedRecord(ino);
    this.openFiles.open(ino);
    return attributesOf(ino, rec);
  }

  async release(ino: InodeId): Promise<void> {
    if (this.openFiles.close(ino) > 0) return;
    this.reader.forget(ino);
    const rec = this.store.inode(ino);
    if (!rec || !isDirty(rec)) this.openFiles.forget(ino);
    if (rec?.orphan) await this.log.run({ $case: 'dropOrphan', value: { ino } });
  }

  /** For the kernel: may be a view of a chunk in memory (see ContentReader.readShared). */
  async read(ino: InodeId, offset: number, length: number): Promise<Buffer> {
    return this.reader.readShared(ino, offset, length);
  }

  async write(ino: InodeId, offset: number, data: Buffer): Promise<number> {
    if (offset + data.length > MAX_FILE_SIZE) throw new FsError('EFBIG', 'larger than the largest object');
    await this.makeRoom();
    await this.log.run({ $case: 'write', value: { ino, offset, data } });
    this.writeBack.noteWrite(ino, offset, data.length);
    return data.length;
  }

  /** Returns once everything written to the file before the call is in the bucket. */
  async fsync(ino: InodeId): Promise<void> {
    await this.writeBack.flush(ino);
    const rec = this.store.inode(ino);
    if (rec && isDirty(rec) && !rec.orphan) await this.writeBack.flush(ino);
  }

  statfs(): FilesystemStats {
    const blockSize = 4096;
    const total = 2 ** 50 / blockSize;
    const used = Math.ceil(this.chunks.usedBytes() / blockSize);
    return { blockSize, blocks: total, blocksFree: total - used, files: 2 ** 40, filesFree: 2 ** 40, nameMax: 255 };
  }

  /** Keep the local cache under its size: evict clean chunks, then wait for dirty data to be written back. */
  private async makeRoom(): Promise<void> {
    if (this.chunks.usedBytes() <= this.cacheSize) return;
    this.reader.evictIfNeeded();
    for (let i = 0; i < 8 && this.chunks.usedBytes() > this.cacheSize; i++) {
      const oldest = [...this.store.dirtyInodes()].sort((a, b) => a.since - b.since)[0];
      if (!oldest) return;
      await this.writeBack.flush(oldest.ino);
      this.reader.evictIfNeeded();
    }
  }

  private record(ino: InodeId): InodeRecord {
    return this.store.inode(ino) ?? missing(ino);
  }

  /** The inode's record, its attributes first read from the bucket if they were not yet. */
  private async loadedRecord(ino: InodeId): Promise<InodeRecord> {
    return (await this.loader.loadedRecord(ino)) ?? missing(ino);
  }
}

function missing(ino: InodeId): never {
  throw new FsError('ENOENT', `inode ${ino}`);
}

export function attributesOf(ino: InodeId, rec: InodeRecord): Attributes {
  return {
    ino,
    kind: rec.kind,
    mode: fileTypeBits(rec.kind) | rec.perm,
    uid: rec.uid,
    gid: rec.gid,
    size: rec.size,
    nlink: ino === ROOT_INO ? Math.max(rec.nlink, 2) : rec.nlink,
    atimeMs: rec.atime,
    mtimeMs: rec.mtime,
    ctimeMs: rec.ctime,
  };
}
