// Crash safety of a real mount: the mount process is killed with SIGKILL while writes are in
// flight, then mounted again from the same data directory. Every fsync'd byte must be there, every
// write the kernel acknowledged must be there (the log survives a killed process), no write call
// may be torn, no byte may appear that nobody wrote — and after the remount writes everything back,
// the bucket must hold exactly what the files hold.
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestBucket, s3TestClient, type TestBucket } from '../support/s3.js';
import { startMount, stopAllMounts } from '../support/mount.js';

const BLOCK = 64 * 1024;
const BASE_BLOCKS = 32;

/** A block whose every byte says which write made it: (write number, generation). */
function block(n: number, generation: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  for (let i = 0; i < BLOCK; i += 4) b.writeUInt32LE(n * 16 + generation, i);
  return b;
}

function whichWrite(b: Buffer): { n: number; generation: number } | 'torn' {
  const tag = b.readUInt32LE(0);
  for (let i = 0; i < b.length; i += 4) if (b.readUInt32LE(i) !== tag) return 'torn';
  return { n: Math.floor(tag / 16), generation: tag % 16 };
}

describe('a mount killed with SIGKILL', () => {
  let bucket: TestBucket;

  beforeAll(async () => {
    bucket = await createTestBucket('crash');
  });

  afterAll(async () => {
    await stopAllMounts();
    await bucket?.destroy();
  });

  it('loses no acknowledged write, tears none, and writes back exactly what the files hold', async () => {
    // Long delays: nothing is written back before the crash unless fsync'd.
    const args = ['--close-delay', '1h', '--max-dirty-age', '1h', '--chunk-size', '256KiB'];
    const first = await startMount({ bucket: bucket.name, args });
    const base = path.join(first.mountpoint, 'base.bin');
    const log = path.join(first.mountpoint, 'log.bin');

    const fh = await fsp.open(base, 'w');
    for (let i = 0; i < BASE_BLOCKS; i++) await fh.write(block(i, 1), 0, BLOCK, i * BLOCK);
    await fh.sync();
    await fh.close();

    // Appends to log.bin and overwrites of base.bin race with the kill.
    const ackedAppends: number[] = [];
    const ackedOverwrites = new Set<number>();
    let stop = false;
    const appender = (async () => {
      const h = await fsp.open(log, 'w');
      try {
        for (let n = 0; !stop; n++) {
          await h.write(block(n, 3), 0, BLOCK, n * BLOCK);
          ackedAppends.push(n);
        }
      } catch {
        // The mount died under us.
      } finally {
        await closeDead(h);
      }
    })();
    const overwriter = (async () => {
      const h = await fsp.open(base, 'r+');
      try {
        for (let k = 0; !stop; k++) {
          const i = (k * 7) % BASE_BLOCKS;
          await h.write(block(i, 2), 0, BLOCK, i * BLOCK);
          ackedOverwrites.add(i);
        }
      } catch {
        // The mount died under us.
      } finally {
        await closeDead(h);
      }
    })();
    // Killed only after the log has been compacted, and payload segments dropped, a few times (a
    // node alone compacts every 1,024 entries; each append and overwrite is one).
    while (ackedAppends.length < 1500 || ackedOverwrites.size < 8) await new Promise((r) => setTimeout(r, 10));
    await first.kill();
    stop = true;
    await Promise.all([appender, overwriter]);

    const second = await startMount({ bucket: bucket.name, dataDir: first.dataDir, args: ['--close-delay', '100ms'] });
    const baseAfter = await fsp.readFile(path.join(second.mountpoint, 'base.bin'));
    expect(baseAfter.length).toBe(BASE_BLOCKS * BLOCK);
    for (let i = 0; i < BASE_BLOCKS; i++) {
      const w = whichWrite(baseAfter.subarray(i * BLOCK, (i + 1) * BLOCK));
      expect(w, `base block ${i}`).not.toBe('torn');
      if (w === 'torn') continue;
      expect(w.n, `base block ${i} holds another block's data`).toBe(i);
      expect(ackedOverwrites.has(i) ? [2] : [1, 2], `base block ${i}`).toContain(w.generation);
    }
    const logAfter = await fsp.readFile(path.join(second.mountpoint, 'log.bin'));
    expect(logAfter.length % BLOCK, 'a torn append').toBe(0);
    expect(logAfter.length / BLOCK).toBeGreaterThanOrEqual(ackedAppends.length);
    for (let n = 0; n < logAfter.length / BLOCK; n++) {
      expect(whichWrite(logAfter.subarray(n * BLOCK, (n + 1) * BLOCK)), `log block ${n}`).toEqual({ n, generation: 3 });
    }

    expect(await second.stop()).toBe(0);
    const client = s3TestClient();
    try {
      for (const [key, expected] of [['base.bin', baseAfter], ['log.bin', logAfter]] as const) {
        const got = await client.send(new GetObjectCommand({ Bucket: bucket.name, Key: key }));
        const body = Buffer.from(await got.Body!.transformToByteArray());
        expect(body.equals(expected), `${key} in the bucket`).toBe(true);
      }
    } finally {
      client.destroy();
    }
  });
});

/**
 * Closes a handle on a mount that was killed: the close fails (ENOTCONN), and a handle left open
 * would be closed by the garbage collector instead, whose failure is an uncaught exception.
 */
async function closeDead(handle: FileHandle): Promise<void> {
  await handle.close().catch(() => undefined);
}
