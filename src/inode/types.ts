// The records the inode state machine keeps in LMDB, and the ids that name them. Ids and keys are
// independent of which group owns them, so ownership can move between groups without rewriting.

/** An inode number, unique in the whole cluster: (owning group's id << 40) | sequence. */
export type InodeId = number & { readonly __brand: 'InodeId' };
export const ROOT_INO = 1 as InodeId;
export const inodeId = (n: number): InodeId => {
  if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`invalid inode id ${n}`);
  return n as InodeId;
};
export const INODE_SEQUENCE_BITS = 40;

export enum InodeKind {
  File = 0,
  Dir = 1,
  Symlink = 2,
}

/** Where an inode's clean content lives in the bucket, as last written or listed. */
export interface ObjectVersion {
  key: string;
  etag: string;
  size: number;
}

/** An upload of the inode to the bucket that has begun and not finished. */
export interface FlushInProgress {
  version: number;
  keys: string[];
  uploadId: string;
  /** The smallest size the file was truncated to since this flush began. */
  truncatedTo: number;
}

export interface InodeRecord {
  kind: InodeKind;
  /** Permission bits (0o7777); the file type comes from `kind`. */
  perm: number;
  uid: number;
  gid: number;
  size: number;
  /** Times in ms since the epoch (fractional ms keep sub-ms precision). */
  atime: number;
  mtime: number;
  ctime: number;
  nlink: number;
  symlinkTarget?: string;
  xattrs?: Record<string, Uint8Array>;
  /** The bucket object this file's unmodified bytes come from. */
  object?: ObjectVersion;
  /** Keys in the bucket that hold (an old or current version of) this inode, to delete when it goes. */
  objectKeys: string[];
  /** Bytes [0, baseLimit) that are not overwritten come from `object`; beyond it, from zeros. */
  baseLimit: number;
  /** Attributes (mode, owner, times) are known: set here, or read from the object's metadata. */
  metaLoaded: boolean;
  /** Bumped by every change that must reach the bucket. */
  version: number;
  /** The version the bucket holds; the inode is dirty while version !== flushedVersion. */
  flushedVersion: number;
  flush?: FlushInProgress;
  /** Directories: the last complete listing of the prefix from the bucket. */
  listedAt?: number;
  listingGeneration?: number;
  /** The generation of the parent's listing that last saw this entry in the bucket. */
  seenGeneration?: number;
  /** Directories: a "dir/" marker object exists in the bucket. */
  hasMarker?: boolean;
  /** Unlinked while still open: kept until DropOrphan. */
  orphan?: boolean;
}

export interface DirEntry {
  name: string;
  ino: InodeId;
}

export const isDirty = (r: InodeRecord): boolean => r.version !== r.flushedVersion;
