// One part of a multipart upload of a file's content: a server-side copy from the file's base
// object when the file still holds exactly those bytes (nothing is read here or sent), otherwise
// the bytes read through the ContentReader (fetching what the cache lacks) and uploaded.
import type { InodeId } from '../inode/types.js';
import type { ContentReader } from './content-reader.js';
import { StoreError, handOver, type CompletedPart, type ObjectStore } from './s3/object-store.js';

export interface SentPart {
  part: CompletedPart;
  /** Bytes the part holds. */
  bytes: number;
}

/** Part `partNumber` = the file's bytes [offset, offset + length), fewer at its end. */
export async function sendPart(
  objects: ObjectStore,
  reader: ContentReader,
  ino: InodeId,
  upload: { key: string; uploadId: string },
  partNumber: number,
  offset: number,
  length: number,
): Promise<SentPart> {
  const source = reader.unchangedBase(ino, offset, length);
  if (source) {
    try {
      return { part: await objects.uploadPartCopy(upload.key, upload.uploadId, partNumber, source), bytes: length };
    } catch (err) {
      // The base object changed or went away, or the server cannot copy parts (501 is 'invalid'):
      // upload what the file holds (reading it finds out about the first two).
      if (!(err instanceof StoreError && (err.kind === 'changed' || err.kind === 'not-found' || err.kind === 'invalid'))) throw err;
    }
  }
  const body = await reader.read(ino, offset, length);
  const bytes = body.length;
  return { part: await objects.uploadPart(upload.key, upload.uploadId, partNumber, handOver(body)), bytes };
}
