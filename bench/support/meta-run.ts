// Runs the metadata load (support/meta-worker.ts) in its own process on one directory and returns
// its phase times; shared by the `meta` and `churn` benchmarks.
import { fileURLToPath } from 'node:url';
import { runChild } from './measure.js';
import type { MetaPhases } from './meta-worker.js';

export const PHASES = ['create', 'stat', 'ls', 'unlink'] as const;
export type PhaseTimes = Record<(typeof PHASES)[number] | 'total', number>;

const WORKER = fileURLToPath(new URL('./meta-worker.js', import.meta.url));

/** Creates `files` files of `bytes` bytes in `dir` (which must not exist), stats, lists and unlinks them. */
export async function metaPhases(dir: string, files: number, bytes: number): Promise<PhaseTimes> {
  const { stdout } = await runChild(process.execPath, [WORKER, dir, String(files), String(bytes)]);
  const p = JSON.parse(stdout) as MetaPhases;
  return { create: p.createMs, stat: p.statMs, ls: p.lsMs, unlink: p.unlinkMs, total: p.createMs + p.statMs + p.lsMs + p.unlinkMs };
}
