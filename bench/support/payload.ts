// The bytes the data benchmarks move: a local file of random (incompressible) content and its
// SHA-256, so whatever comes back through a mount or from the bucket can be checked against it.
// Checksums of other files are computed by a `sha256sum` child process, never by reading a mount
// from this process.
import { createHash, randomFillSync } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { MiB, runChild } from './measure.js';

export interface Payload {
  file: string;
  bytes: number;
  sha256: string;
}

/** Writes `bytes` random bytes to `file` (8 MiB at a time) and flushes it to the disk. */
export async function writePayload(file: string, bytes: number): Promise<Payload> {
  const block = Buffer.allocUnsafe(8 * MiB);
  const hash = createHash('sha256');
  const handle = await fsp.open(file, 'w');
  try {
    for (let offset = 0; offset < bytes; offset += block.length) {
      const piece = block.subarray(0, Math.min(block.length, bytes - offset));
      randomFillSync(piece);
      hash.update(piece);
      await handle.write(piece, 0, piece.length, offset);
    }
    // On the disk now: the kernel writing it back must not share the first measurement's cores.
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { file, bytes, sha256: hash.digest('hex') };
}

/** SHA-256 of a file (on a mount or not), computed by a child process. */
async function sha256OfFile(file: string): Promise<string> {
  const { stdout } = await runChild('sha256sum', ['-b', file]);
  const digest = /^([0-9a-f]{64}) /.exec(stdout);
  if (!digest) throw new Error(`sha256sum printed something unexpected for ${file}: ${stdout.trim()}`);
  return digest[1]!;
}

/** Throws unless `file`'s content is the payload's. */
export async function checkSameContent(payload: Payload, file: string): Promise<void> {
  const actual = await sha256OfFile(file);
  if (actual !== payload.sha256) throw new Error(`${file} does not hold the bytes written (sha256 ${actual}, expected ${payload.sha256})`);
}
