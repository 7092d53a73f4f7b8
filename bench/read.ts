// Sequential read throughput of one big file through a tidefs mount, against the fastest way to get
// the same bytes without tidefs (issue #3). The file (1 GiB of random bytes) is uploaded once with
// the SDK as a multipart upload; each run then measures, with `dd bs=1M` in a child process:
//   cold     a fresh mount with an empty data dir, page cache dropped
//            vs direct: the faster (by median) of one GetObject stream and parallel 8 MiB ranged GETs
//   re-read  the same file again in the same mount, once the cache the cold read filled is on disk
//            (the local file it is compared with is read at rest too); also reported: the re-read
//            right after the cold read, while the mount still writes that cache out
//            vs a local file of the same size that is in the page cache
//   warm     a fresh mount process on the data dir the cold read filled, page cache dropped
//            vs the same local file with the page cache dropped
// Medians of TIDEFS_BENCH_RUNS runs; the first run also checks the bytes read through each mount.
//
//   npm run bench -- read [--json]
//   env: TIDEFS_BENCH_RUNS (3), TIDEFS_BENCH_FILE_SIZE (1GiB), TIDEFS_BENCH_MOUNT_ARGS ('')
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { getObjectRanged, getObjectStreamed, uploadMultipart, type ParallelTransfer } from './support/direct-s3.js';
import { ddRead, dropPageCache, flushToDisk, mbPerSec, median, MiB, round, timed } from './support/measure.js';
import { checkSameContent, writePayload, type Payload } from './support/payload.js';
import { progress, report, startRun, summaryLine } from './support/report.js';
import { requireRoom } from './support/s3.js';
import { withBenchSession, type BenchSession } from './support/session.js';
import type { BenchArgs } from './main.js';

const KEY = 'read.bin';
const RANGED: ParallelTransfer = { pieceBytes: 8 * MiB, inFlight: 8 };
const UPLOAD: ParallelTransfer = { pieceBytes: 8 * MiB, inFlight: 4 };
const TARGETS = { coldVsDirect: 0.9, warmVsLocal: 0.5, rereadVsLocalWarm: 0.5 };

/** MB/s of one run. */
interface ReadRun {
  cold: number;
  reread: number;
  /** The re-read started as soon as the cold read ended. */
  rereadAtOnce: number;
  warm: number;
  directStream: number;
  directRanged: number;
  localCold: number;
  localWarm: number;
  /** Bytes in the data dir when the warm mount started (the chunk cache the cold read filled). */
  cachedBytes: number;
}

async function measureOnce(session: BenchSession, payload: Payload, runIndex: number, checkContent: boolean): Promise<ReadRun> {
  const { s3, bucket, workDir } = session;
  const bytes = payload.bytes;
  const rate = (ms: number): number => mbPerSec(bytes, ms);
  const expectBytes = (moved: number, what: string): void => {
    if (moved !== bytes) throw new Error(`${what} returned ${moved} bytes, expected ${bytes}`);
  };

  const stream = await timed(() => getObjectStreamed(s3.client, bucket, KEY));
  expectBytes(stream.value, 'the GetObject stream');
  const ranged = await timed(() => getObjectRanged(s3.client, bucket, KEY, bytes, RANGED));
  expectBytes(ranged.value, 'the ranged GETs');

  const dataDir = path.join(workDir, `data-${runIndex}`);
  const coldMount = await session.mount(`mnt-cold-${runIndex}`, dataDir);
  const coldFile = path.join(coldMount.mountpoint, KEY);
  await dropPageCache(workDir);
  const coldMs = await ddRead(coldFile, bytes);
  const rereadAtOnceMs = await ddRead(coldFile, bytes);
  await cacheOnDisk(dataDir, bytes);
  const rereadMs = await ddRead(coldFile, bytes);
  if (checkContent) await checkSameContent(payload, coldFile);
  await coldMount.stop();

  const cachedBytes = await directoryBytes(dataDir);
  const warmMount = await session.mount(`mnt-warm-${runIndex}`, dataDir);
  const warmFile = path.join(warmMount.mountpoint, KEY);
  await dropPageCache(workDir);
  const warmMs = await ddRead(warmFile, bytes);
  if (checkContent) await checkSameContent(payload, warmFile);
  await warmMount.stop();
  await session.removeDir(dataDir);

  await dropPageCache(workDir);
  const localColdMs = await ddRead(payload.file, bytes);
  const localWarmMs = await ddRead(payload.file, bytes);

  return {
    cold: rate(coldMs),
    reread: rate(rereadMs),
    rereadAtOnce: rate(rereadAtOnceMs),
    warm: rate(warmMs),
    directStream: rate(stream.ms),
    directRanged: rate(ranged.ms),
    localCold: rate(localColdMs),
    localWarm: rate(localWarmMs),
    cachedBytes,
  };
}

/** Waits until the data dir holds the whole file (every chunk installed), then flushes it to disk. */
async function cacheOnDisk(dataDir: string, bytes: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  while ((await directoryBytes(dataDir)) < bytes) {
    if (Date.now() > deadline) throw new Error(`${dataDir} never held the ${bytes} bytes the cold read fetched`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await flushToDisk(dataDir);
}

/** Total size of the regular files under `dir`. */
async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await fsp.stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

export async function run(args: BenchArgs): Promise<void> {
  const finish = await startRun();
  const { settings, runs, uploadMs } = await withBenchSession('read', async (session) => {
    const bytes = session.settings.fileBytes;
    await requireRoom(bytes + 256 * MiB, 'the read benchmark');
    progress(`read: writing ${bytes} random bytes and uploading them as s3://${session.bucket}/${KEY}`);
    const payload = await writePayload(path.join(session.workDir, 'payload.bin'), bytes);
    const upload = await timed(() => uploadMultipart(session.s3.client, session.bucket, KEY, payload.file, bytes, UPLOAD));
    const measured: ReadRun[] = [];
    for (let i = 1; i <= session.settings.runs; i++) {
      const r = await measureOnce(session, payload, i, i === 1);
      progress(
        `read run ${i}/${session.settings.runs} (MB/s): cold ${r.cold.toFixed(0)}, direct stream ${r.directStream.toFixed(0)} / ranged ` +
          `${r.directRanged.toFixed(0)}; warm ${r.warm.toFixed(0)}, local cold ${r.localCold.toFixed(0)}; re-read ${r.reread.toFixed(0)} ` +
          `(at once ${r.rereadAtOnce.toFixed(0)}), ` +
          `local warm ${r.localWarm.toFixed(0)}; ${r.cachedBytes} bytes cached for the warm mount`,
      );
      measured.push(r);
    }
    return { settings: session.settings, runs: measured, uploadMs: upload.ms };
  });
  const summary = await finish();

  const mid = (pick: (r: ReadRun) => number): number => median(runs.map(pick));
  const direct = (r: ReadRun): number => Math.max(r.directStream, r.directRanged);
  const directStreamMBps = mid((r) => r.directStream);
  const directRangedMBps = mid((r) => r.directRanged);
  const coldMBps = mid((r) => r.cold);
  const directMBps = Math.max(directStreamMBps, directRangedMBps);
  const warmMBps = mid((r) => r.warm);
  const localColdMBps = mid((r) => r.localCold);
  const rereadMBps = mid((r) => r.reread);
  const rereadAtOnceMBps = mid((r) => r.rereadAtOnce);
  const localWarmMBps = mid((r) => r.localWarm);
  const ratios = {
    coldVsDirect: round(coldMBps / directMBps),
    warmVsLocal: round(warmMBps / localColdMBps),
    rereadVsLocalWarm: round(rereadMBps / localWarmMBps),
  };
  const result = {
    benchmark: 'read',
    bytes: settings.fileBytes,
    runs: settings.runs,
    coldMBps: round(coldMBps, 1),
    directMBps: round(directMBps, 1),
    warmMBps: round(warmMBps, 1),
    localColdMBps: round(localColdMBps, 1),
    rereadMBps: round(rereadMBps, 1),
    rereadAtOnceMBps: round(rereadAtOnceMBps, 1),
    rereadAtOnceVsLocalWarm: round(rereadAtOnceMBps / localWarmMBps),
    localWarmMBps: round(localWarmMBps, 1),
    ratios,
    targets: TARGETS,
    // Each run measures tidefs and its baseline within a minute of each other: on a busy machine the
    // median of the runs' own ratios is steadier than the ratio of the medians.
    medianRunRatios: {
      coldVsDirect: round(mid((r) => r.cold / direct(r))),
      warmVsLocal: round(mid((r) => r.warm / r.localCold)),
      rereadVsLocalWarm: round(mid((r) => r.reread / r.localWarm)),
    },
    direct: {
      streamMBps: round(directStreamMBps, 1),
      rangedMBps: round(directRangedMBps, 1),
      rangeBytes: RANGED.pieceBytes,
      rangesInFlight: RANGED.inFlight,
      faster: directStreamMBps >= directRangedMBps ? 'stream' : 'ranged',
    },
    fixtureUploadMBps: round(mbPerSec(settings.fileBytes, uploadMs), 1),
    perRun: runs.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v, 1)]))),
    mountArgs: settings.mountArgs,
    ...summary,
  };
  const mb = (n: number): string => n.toFixed(0);
  const heading = [`read: ${settings.fileBytes} bytes, dd bs=1M, median of ${settings.runs} runs, MB/s (10^6 bytes/s)`, summaryLine(summary)];
  report(args, result, heading, [
    ['', 'tidefs', 'baseline', 'ratio', 'target', 'baseline is'],
    [
      'cold',
      mb(coldMBps),
      mb(directMBps),
      String(ratios.coldVsDirect),
      `>= ${TARGETS.coldVsDirect}`,
      `SDK, the faster of one GetObject stream (${mb(directStreamMBps)}) and 8 MiB ranges x${RANGED.inFlight} (${mb(directRangedMBps)})`,
    ],
    ['warm', mb(warmMBps), mb(localColdMBps), String(ratios.warmVsLocal), `>= ${TARGETS.warmVsLocal}`, 'local file, page cache dropped'],
    ['re-read', mb(rereadMBps), mb(localWarmMBps), String(ratios.rereadVsLocalWarm), `>= ${TARGETS.rereadVsLocalWarm}`, 'local file in the page cache'],
    [
      're-read at once',
      mb(rereadAtOnceMBps),
      mb(localWarmMBps),
      String(round(rereadAtOnceMBps / localWarmMBps)),
      '',
      'the same, right after the cold read (the mount still writing its cache out)',
    ],
  ]);
}
