// How the namespace maps onto the bucket: a file is the object at its path (under the mount's
// prefix), a directory is the prefix "path/" (with an optional empty "path/" marker object).
// Also the limits that come from that mapping: 255-byte names, 1024-byte keys.
import type { MetadataStore } from './metadata-store.js';
import { FsError } from './errors.js';
import { InodeKind, ROOT_INO, type InodeId } from './types.js';

export const MAX_NAME_BYTES = 255;
export const MAX_KEY_BYTES = 1024;

/** Normalise a mount prefix: no leading slash, a trailing slash unless empty. */
export function normalisePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+/, '').replace(/\/+$/, '');
  return trimmed === '' ? '' : `${trimmed}/`;
}

/** Reject names the bucket mapping cannot represent. */
export function checkName(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new FsError('EINVAL', `invalid name ${JSON.stringify(name)}`);
  }
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw new FsError('ENAMETOOLONG', `name longer than ${MAX_NAME_BYTES} bytes`);
  }
}

export function checkKey(key: string): void {
  checkKeyBytes(Buffer.byteLength(key));
}

/** Reject a key of `bytes` bytes (e.g. a moved directory's prefix plus its longest descendant). */
export function checkKeyBytes(bytes: number): void {
  if (bytes > MAX_KEY_BYTES) {
    throw new FsError('ENAMETOOLONG', `object key longer than ${MAX_KEY_BYTES} bytes`);
  }
}

/** A name from a bucket listing that can appear in the namespace. */
export function isRepresentableName(name: string): boolean {
  return (
    name !== '' && name !== '.' && name !== '..' && !name.includes('\0') && Buffer.byteLength(name) <= MAX_NAME_BYTES
  );
}

export class BucketKeys {
  constructor(
    private readonly store: MetadataStore,
    readonly prefix: string,
  ) {}

  /** The path of a directory inode relative to the mount root ('' for the root), or undefined if unlinked. */
  dirPath(dir: InodeId): string | undefined {
    const parts: string[] = [];
    let ino = dir;
    for (let depth = 0; ino !== ROOT_INO; depth++) {
      const link = this.store.firstLink(ino);
      if (!link || depth > 4096) return undefined;
      parts.push(link.name);
      ino = link.parent;
    }
    return parts.reverse().join('/');
  }

  /** The key prefix of a directory's children ("prefix/a/b/"). */
  childPrefix(dir: InodeId): string | undefined {
    const p = this.dirPath(dir);
    if (p === undefined) return undefined;
    return p === '' ? this.prefix : `${this.prefix}${p}/`;
  }

  /** The object key for entry `name` of directory `parent`, of the given kind (dirs end in "/"). */
  keyOf(parent: InodeId, name: string, kind: InodeKind): string | undefined {
    const prefix = this.childPrefix(parent);
    if (prefix === undefined) return undefined;
    return kind === InodeKind.Dir ? `${prefix}${name}/` : `${prefix}${name}`;
  }

  /** Every key the inode currently maps to (one per link; a directory's is its marker key). */
  keysOf(ino: InodeId, kind: InodeKind): string[] {
    if (ino === ROOT_INO) return [this.prefix];
    const keys: string[] = [];
    for (const link of this.store.links(ino)) {
      const key = this.keyOf(link.parent, link.name, kind);
      if (key !== undefined) keys.push(key);
    }
    return keys;
  }

  /**
   * Bytes of the longest key below a directory, after its children's prefix: "name" for a file,
   * "name/" plus what is below for a directory. 0 for an empty directory. Only what is loaded counts.
   */
  longestKeyBelow(dir: InodeId): number {
    let longest = 0;
    for (const child of this.store.children(dir)) {
      const name = Buffer.byteLength(child.name);
      const below = this.store.inode(child.ino)?.kind === InodeKind.Dir ? name + 1 + this.longestKeyBelow(child.ino) : name;
      if (below > longest) longest = below;
    }
    return longest;
  }

  /** The inode currently at `key`, if any (a key ending in "/" names a directory). */
  inodeAt(key: string): InodeId | undefined {
    if (!key.startsWith(this.prefix)) return undefined;
    const rel = key.slice(this.prefix.length);
    const isDir = rel.endsWith('/');
    const parts = (isDir ? rel.slice(0, -1) : rel).split('/');
    if (rel === '') return ROOT_INO;
    let ino: InodeId = ROOT_INO;
    for (const part of parts) {
      const next = this.store.lookup(ino, part);
      if (next === undefined) return undefined;
      ino = next;
    }
    const kind = this.store.inode(ino)?.kind;
    return (kind === InodeKind.Dir) === isDir ? ino : undefined;
  }
}
