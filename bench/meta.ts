// Metadata speed through a tidefs mount against a local directory (issue #3): 2,000 files of 4 KiB
// in a fresh directory — create (write and close) each, stat each, `ls -l`, unlink each — one
// operation at a time, done by a separate process (support/meta-worker.ts) once in the mount and
// once in a local directory on the disk that holds the mount's data dir. Each run uses a fresh mount
// and data dir; after the phases the mount is stopped (it writes back what is pending) and the
// bucket must be empty again. Medians of TIDEFS_BENCH_RUNS runs.
//
//   npm run bench -- meta [--json]
//   env: TIDEFS_BENCH_RUNS (3), TIDEFS_BENCH_FILES (2000), TIDEFS_BENCH_MOUNT_ARGS ('')
import path from 'node:path';
import { median, round, timed } from './support/measure.js';
import { metaPhases, PHASES, type PhaseTimes } from './support/meta-run.js';
import { progress, report, startRun, summaryLine } from './support/report.js';
import { listKeys } from './support/s3.js';
import { withBenchSession, type BenchSession } from './support/session.js';
import type { BenchArgs } from './main.js';

const FILE_BYTES = 4096;
const TARGETS = { metaVsLocal: 3 };

interface MetaRun {
  tidefs: PhaseTimes;
  local: PhaseTimes;
  /** Seconds the mount took to stop after the phases (unmount and the write-back left). */
  stopSec: number;
  /** Objects in the bucket after the mount stopped (every file was unlinked: should be none). */
  leftover: string[];
}

async function measureOnce(session: BenchSession, runIndex: number): Promise<MetaRun> {
  const files = session.settings.files;
  const dataDir = path.join(session.workDir, `data-${runIndex}`);
  const mount = await session.mount(`mnt-${runIndex}`, dataDir);
  const tidefs = await metaPhases(path.join(mount.mountpoint, `meta-${runIndex}`), files, FILE_BYTES);
  const stopped = await timed(() => mount.stop());
  const leftover = await listKeys(session.s3, session.bucket, `meta-${runIndex}/`);
  await session.removeDir(dataDir);
  const local = await metaPhases(path.join(session.workDir, `local-${runIndex}`), files, FILE_BYTES);
  return { tidefs, local, stopSec: stopped.ms / 1000, leftover };
}

function medianPhases(runs: PhaseTimes[]): PhaseTimes {
  const pick = (name: keyof PhaseTimes): number => median(runs.map((r) => r[name]));
  return roundPhases({ create: pick('create'), stat: pick('stat'), ls: pick('ls'), unlink: pick('unlink'), total: pick('total') });
}

function roundPhases(t: PhaseTimes): PhaseTimes {
  return { create: round(t.create, 1), stat: round(t.stat, 1), ls: round(t.ls, 1), unlink: round(t.unlink, 1), total: round(t.total, 1) };
}

export async function run(args: BenchArgs): Promise<void> {
  const finish = await startRun();
  const { settings, runs } = await withBenchSession('meta', async (session) => {
    const measured: MetaRun[] = [];
    for (let i = 1; i <= session.settings.runs; i++) {
      const r = await measureOnce(session, i);
      const ms = (t: PhaseTimes): string => PHASES.map((name) => `${name} ${t[name].toFixed(0)}`).join(', ');
      progress(
        `meta run ${i}/${session.settings.runs} (ms): tidefs ${ms(r.tidefs)}; local ${ms(r.local)}; ` +
          `the mount took ${r.stopSec.toFixed(1)} s to stop`,
      );
      if (r.leftover.length > 0) {
        progress(`meta run ${i}: ${r.leftover.length} object(s) left in the bucket after every file was unlinked: ${r.leftover.slice(0, 5).join(' ')}`);
      }
      measured.push(r);
    }
    return { settings: session.settings, runs: measured };
  });
  const summary = await finish();

  const tidefs = medianPhases(runs.map((r) => r.tidefs));
  const local = medianPhases(runs.map((r) => r.local));
  const ratios = { metaVsLocal: round(tidefs.total / local.total) };
  const result = {
    benchmark: 'meta',
    files: settings.files,
    fileBytes: FILE_BYTES,
    runs: settings.runs,
    unit: 'ms',
    tidefs,
    local,
    ratios,
    targets: TARGETS,
    medianRunRatios: { metaVsLocal: round(median(runs.map((r) => r.tidefs.total / r.local.total))) },
    perPhaseRatios: Object.fromEntries(PHASES.map((name) => [name, round(tidefs[name] / local[name], 1)])),
    perRun: runs.map((r) => ({
      tidefs: roundPhases(r.tidefs),
      local: roundPhases(r.local),
      mountStopSec: round(r.stopSec, 1),
      leftoverObjects: r.leftover,
    })),
    mountArgs: settings.mountArgs,
    ...summary,
  };
  const perSecond = (ms: number): string => ((settings.files / ms) * 1000).toFixed(0);
  const row = (name: keyof PhaseTimes, target = ''): string[] => [
    name,
    tidefs[name].toFixed(0),
    local[name].toFixed(0),
    (tidefs[name] / local[name]).toFixed(1),
    target,
    `${perSecond(tidefs[name])} vs ${perSecond(local[name])} files/s`,
  ];
  const heading = [`meta: ${settings.files} files of ${FILE_BYTES} bytes, one operation at a time, median of ${settings.runs} runs`, summaryLine(summary)];
  report(args, result, heading, [
    ['', 'tidefs ms', 'local ms', 'ratio', 'target', 'rate'],
    ...PHASES.map((name) => row(name)),
    row('total', `<= ${TARGETS.metaVsLocal}`),
  ]);
}
