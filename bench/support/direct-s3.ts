// The baselines the mount is compared with: moving the same bytes with the AWS SDK directly, as an
// application without tidefs would. Downloads discard the data (they count it and, on request, hash
// it); uploads read the payload file from the page cache. Nothing here knows about tidefs.
import { createHash, type Hash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

export interface ParallelTransfer {
  /** Bytes per ranged GET or per part. */
  pieceBytes: number;
  /** Requests in flight at once. */
  inFlight: number;
}

/** One GetObject, its body streamed and discarded (hashed if `hash` is given); returns the bytes. */
export async function getObjectStreamed(client: S3Client, bucket: string, key: string, hash?: Hash): Promise<number> {
  const reply = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  let bytes = 0;
  for await (const piece of reply.Body as Readable) {
    bytes += (piece as Buffer).length;
    hash?.update(piece as Buffer);
  }
  return bytes;
}

/** Ranged GETs of `pieceBytes`, `inFlight` at a time, bodies discarded; returns the bytes. */
export async function getObjectRanged(client: S3Client, bucket: string, key: string, size: number, transfer: ParallelTransfer): Promise<number> {
  let next = 0;
  let bytes = 0;
  const worker = async (): Promise<void> => {
    while (next < size) {
      const start = next;
      next = Math.min(size, next + transfer.pieceBytes);
      const reply = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${next - 1}` }));
      for await (const piece of reply.Body as Readable) bytes += (piece as Buffer).length;
    }
  };
  await Promise.all(Array.from({ length: transfer.inFlight }, worker));
  return bytes;
}

/** Multipart upload of `file` (`size` bytes) to `key`, `inFlight` parts at a time; aborted on failure. */
export async function uploadMultipart(client: S3Client, bucket: string, key: string, file: string, size: number, transfer: ParallelTransfer): Promise<void> {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const handle = await fsp.open(file, 'r');
  try {
    const parts: Array<{ PartNumber: number; ETag: string }> = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      const buffer = Buffer.allocUnsafe(transfer.pieceBytes);
      while (next < size) {
        const start = next;
        const length = Math.min(transfer.pieceBytes, size - start);
        next = start + length;
        const partNumber = start / transfer.pieceBytes + 1;
        const { bytesRead } = await handle.read(buffer, 0, length, start);
        if (bytesRead !== length) throw new Error(`${file} is shorter than ${size} bytes`);
        const reply = await client.send(
          new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: partNumber, Body: buffer.subarray(0, length), ContentLength: length }),
        );
        parts.push({ PartNumber: partNumber, ETag: reply.ETag! });
      }
    };
    await Promise.all(Array.from({ length: transfer.inFlight }, worker));
    parts.sort((a, b) => a.PartNumber - b.PartNumber);
    await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
  } catch (error) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })).catch(() => undefined);
    throw error;
  } finally {
    await handle.close();
  }
}

/** Throws unless the object `key` exists with `size` bytes whose SHA-256 is `sha256`. */
export async function checkObject(client: S3Client, bucket: string, key: string, size: number, sha256: string): Promise<void> {
  const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  if (head.ContentLength !== size) throw new Error(`s3://${bucket}/${key} has ${head.ContentLength} bytes, expected ${size}`);
  const hash = createHash('sha256');
  await getObjectStreamed(client, bucket, key, hash);
  const actual = hash.digest('hex');
  if (actual !== sha256) throw new Error(`s3://${bucket}/${key} does not hold the bytes written (sha256 ${actual}, expected ${sha256})`);
}
