// Small files coming and going in one long-lived mount: ROUNDS rounds of the `meta` load (create,
// stat, `ls -l`, unlink) with 32 KiB files in the same mount, each beside the same load in a local
// directory. A store whose speed depends on what was deleted before (LMDB free-list fragmentation
// did: 40x slower creates after 10,000 deletions) shows as later rounds slower than the first.
//
//   npm run bench -- churn [--json]
//   env: TIDEFS_BENCH_ROUNDS (6), TIDEFS_BENCH_FILES (2000), TIDEFS_BENCH_MOUNT_ARGS ('')
import path from 'node:path';
import { median, round } from './support/measure.js';
import { metaPhases } from './support/meta-run.js';
import { progress, report, startRun, summaryLine } from './support/report.js';
import { withBenchSession } from './support/session.js';
import type { BenchArgs } from './main.js';

const FILE_BYTES = 32 * 1024;

interface Round {
  tidefsMs: number;
  localMs: number;
}

function rounds(): number {
  const value = Number(process.env.TIDEFS_BENCH_ROUNDS ?? 6);
  if (!Number.isInteger(value) || value < 2) throw new Error('TIDEFS_BENCH_ROUNDS must be an integer of at least 2');
  return value;
}

export async function run(args: BenchArgs): Promise<void> {
  const finish = await startRun();
  const count = rounds();
  const { files, measured } = await withBenchSession('churn', async (session) => {
    const mount = await session.mount('mnt', path.join(session.workDir, 'data'));
    const measured: Round[] = [];
    for (let r = 1; r <= count; r++) {
      const tidefs = await metaPhases(path.join(mount.mountpoint, `churn-${r}`), session.settings.files, FILE_BYTES);
      const local = await metaPhases(path.join(session.workDir, `local-${r}`), session.settings.files, FILE_BYTES);
      measured.push({ tidefsMs: tidefs.total, localMs: local.total });
      progress(`churn round ${r}/${count}: tidefs ${tidefs.total.toFixed(0)} ms, local ${local.total.toFixed(0)} ms`);
    }
    await mount.stop();
    return { files: session.settings.files, measured };
  });
  const summary = await finish();

  const first = measured[0]!;
  const last = measured[measured.length - 1]!;
  const ratios = {
    lastVsFirst: round(last.tidefsMs / first.tidefsMs),
    churnVsLocal: round(median(measured.map((r) => r.tidefsMs / r.localMs))),
  };
  const result = {
    benchmark: 'churn',
    files,
    fileBytes: FILE_BYTES,
    rounds: count,
    unit: 'ms',
    perRound: measured.map((r) => ({ tidefs: round(r.tidefsMs, 1), local: round(r.localMs, 1) })),
    ratios,
    ...summary,
  };
  const heading = [
    `churn: ${count} rounds of ${files} files of ${FILE_BYTES} bytes created, stat'ed, listed and unlinked in one mount`,
    summaryLine(summary),
    `later rounds vs the first: ${ratios.lastVsFirst} (1 = no slowdown); tidefs vs local, median of rounds: ${ratios.churnVsLocal}`,
  ];
  report(args, result, heading, [
    ['round', 'tidefs ms', 'local ms', 'ratio'],
    ...measured.map((r, i) => [String(i + 1), r.tidefsMs.toFixed(0), r.localMs.toFixed(0), (r.tidefsMs / r.localMs).toFixed(1)]),
  ]);
}
