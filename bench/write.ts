// Sequential write throughput through a tidefs mount, against uploading the same bytes with the SDK
// (issue #3). Each run writes a 1 GiB file of random bytes (from a local file kept in the page
// cache) into a fresh mount with `dd bs=1M conv=fsync` in a child process — tidefs's fsync returns
// only once the object is in the bucket, so dd's time covers the whole way to S3 — and checks that
// the bucket then holds exactly those bytes; then it uploads the same file with the SDK as a
// multipart upload (8 MiB parts, 4 in flight): the baseline, whose parts the SDK signs (SHA-256 of
// every byte, checked again by the server), and for reference the same with unsigned parts, as
// tidefs sends them by default. Medians of TIDEFS_BENCH_RUNS runs.
//
//   npm run bench -- write [--json]
//   env: TIDEFS_BENCH_RUNS (3), TIDEFS_BENCH_FILE_SIZE (1GiB), TIDEFS_BENCH_MOUNT_ARGS ('')
import path from 'node:path';
import { checkObject, uploadMultipart, type ParallelTransfer } from './support/direct-s3.js';
import { ddRead, ddWrite, mbPerSec, median, MiB, round, timed } from './support/measure.js';
import { writePayload, type Payload } from './support/payload.js';
import { progress, report, startRun, summaryLine } from './support/report.js';
import { deleteObjects, requireRoom } from './support/s3.js';
import { withBenchSession, type BenchSession } from './support/session.js';
import type { BenchArgs } from './main.js';

const UPLOAD: ParallelTransfer = { pieceBytes: 8 * MiB, inFlight: 4 };
const TARGETS = { writeVsDirect: 0.8 };

/** MB/s of one run. */
interface WriteRun {
  write: number;
  direct: number;
  directUnsigned: number;
  /** Seconds the mount took to stop after the write (unmount and any write-back left). */
  stopSec: number;
}

async function measureOnce(session: BenchSession, payload: Payload, runIndex: number): Promise<WriteRun> {
  const { s3, bucket, workDir } = session;
  const bytes = payload.bytes;
  const dataDir = path.join(workDir, `data-${runIndex}`);
  const mount = await session.mount(`mnt-${runIndex}`, dataDir);
  const key = `write-${runIndex}.bin`;
  await ddRead(payload.file, bytes);
  const writeMs = await ddWrite(payload.file, path.join(mount.mountpoint, key), bytes);
  await checkObject(s3.client, bucket, key, bytes, payload.sha256);
  const stopped = await timed(() => mount.stop());
  await session.removeDir(dataDir);
  await deleteObjects(s3, bucket, [key]);

  const directKey = `direct-${runIndex}.bin`;
  await ddRead(payload.file, bytes);
  const direct = await timed(() => uploadMultipart(s3.client, bucket, directKey, payload.file, bytes, UPLOAD));
  await deleteObjects(s3, bucket, [directKey]);
  await ddRead(payload.file, bytes);
  const unsigned = await timed(() => uploadMultipart(s3.unsignedClient, bucket, directKey, payload.file, bytes, UPLOAD));
  await checkObject(s3.client, bucket, directKey, bytes, payload.sha256);
  await deleteObjects(s3, bucket, [directKey]);
  return {
    write: mbPerSec(bytes, writeMs),
    direct: mbPerSec(bytes, direct.ms),
    directUnsigned: mbPerSec(bytes, unsigned.ms),
    stopSec: stopped.ms / 1000,
  };
}

export async function run(args: BenchArgs): Promise<void> {
  const finish = await startRun();
  const { settings, runs } = await withBenchSession('write', async (session) => {
    const bytes = session.settings.fileBytes;
    await requireRoom(bytes + 256 * MiB, 'the write benchmark');
    progress(`write: writing ${bytes} random bytes to a local file`);
    const payload = await writePayload(path.join(session.workDir, 'payload.bin'), bytes);
    const measured: WriteRun[] = [];
    for (let i = 1; i <= session.settings.runs; i++) {
      const r = await measureOnce(session, payload, i);
      progress(
        `write run ${i}/${session.settings.runs} (MB/s): through the mount ${r.write.toFixed(0)}, SDK multipart ${r.direct.toFixed(0)} ` +
          `(unsigned parts ${r.directUnsigned.toFixed(0)}); ` +
          `the mount took ${r.stopSec.toFixed(1)} s to stop`,
      );
      measured.push(r);
    }
    return { settings: session.settings, runs: measured };
  });
  const summary = await finish();

  const writeMBps = median(runs.map((r) => r.write));
  const directMBps = median(runs.map((r) => r.direct));
  const directUnsignedMBps = median(runs.map((r) => r.directUnsigned));
  const ratios = { writeVsDirect: round(writeMBps / directMBps), writeVsDirectUnsigned: round(writeMBps / directUnsignedMBps) };
  const result = {
    benchmark: 'write',
    bytes: settings.fileBytes,
    runs: settings.runs,
    writeMBps: round(writeMBps, 1),
    directMBps: round(directMBps, 1),
    directUnsignedMBps: round(directUnsignedMBps, 1),
    ratios,
    targets: TARGETS,
    medianRunRatios: { writeVsDirect: round(median(runs.map((r) => r.write / r.direct))) },
    direct: { partBytes: UPLOAD.pieceBytes, partsInFlight: UPLOAD.inFlight },
    perRun: runs.map((r) => ({
      writeMBps: round(r.write, 1),
      directMBps: round(r.direct, 1),
      directUnsignedMBps: round(r.directUnsigned, 1),
      mountStopSec: round(r.stopSec, 1),
    })),
    mountArgs: settings.mountArgs,
    ...summary,
  };
  const mb = (n: number): string => n.toFixed(0);
  const heading = [`write: ${settings.fileBytes} bytes, median of ${settings.runs} runs, MB/s (10^6 bytes/s)`, summaryLine(summary)];
  report(args, result, heading, [
    ['', 'tidefs', 'baseline', 'ratio', 'target', 'baseline is'],
    [
      'write',
      mb(writeMBps),
      mb(directMBps),
      String(ratios.writeVsDirect),
      `>= ${TARGETS.writeVsDirect}`,
      `SDK multipart upload, ${UPLOAD.pieceBytes / MiB} MiB parts x${UPLOAD.inFlight} (tidefs: dd bs=1M conv=fsync)`,
    ],
    ['write', mb(writeMBps), mb(directUnsignedMBps), String(ratios.writeVsDirectUnsigned), '', 'the same, parts sent unsigned (as tidefs sends them)'],
  ]);
}
