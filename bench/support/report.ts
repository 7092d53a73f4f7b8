// How a benchmark hands over its result: with --json exactly one JSON object on stdout, otherwise an
// aligned table; progress lines go to stderr either way, so stdout stays machine-readable. Also what
// a reader needs to judge a number: which source was measured and how busy the machine was.
import { execFile } from 'node:child_process';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BenchArgs } from '../main.js';
import { round } from './measure.js';

const exec = promisify(execFile);
const REPO = fileURLToPath(new URL('../../..', import.meta.url));

export function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Which source was measured, how busy the machine was, how long the benchmark took. */
export interface RunSummary {
  /** The commit, with "-dirty" when src/ had uncommitted changes ("A then B" if it changed meanwhile). */
  revision: string;
  /** 1-minute load averages; above the core count means the benchmark shared the cores. */
  loadAverage: { atStart: number; atEnd: number; cores: number };
  elapsedSec: number;
}

/** Notes the start of a benchmark; the returned function sums it up at the end. */
export async function startRun(): Promise<() => Promise<RunSummary>> {
  const began = performance.now();
  const atStart = round(os.loadavg()[0]!);
  const revisionAtStart = await sourceRevision();
  return async () => {
    const elapsedSec = round((performance.now() - began) / 1000, 1);
    const revisionAtEnd = await sourceRevision();
    return {
      revision: revisionAtStart === revisionAtEnd ? revisionAtStart : `${revisionAtStart} then ${revisionAtEnd}`,
      loadAverage: { atStart, atEnd: round(os.loadavg()[0]!), cores: os.cpus().length },
      elapsedSec,
    };
  };
}

/** "source abc123, load average 1.2 -> 3.4 on 2 cores, took 56 s" */
export function summaryLine(summary: RunSummary): string {
  const { atStart, atEnd, cores } = summary.loadAverage;
  return `source ${summary.revision}, load average ${atStart} -> ${atEnd} on ${cores} cores, took ${summary.elapsedSec} s`;
}

async function sourceRevision(): Promise<string> {
  try {
    const { stdout: commit } = await exec('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']);
    const { stdout: changes } = await exec('git', ['-C', REPO, 'status', '--porcelain', '--', 'src']);
    return `${commit.trim()}${changes.trim() === '' ? '' : '-dirty'}`;
  } catch {
    return 'unknown';
  }
}

/**
 * Prints `result` as one JSON line, or the `heading` lines and `rows` as a table: the first and
 * last columns (names, remarks) aligned left, the others (numbers) right.
 */
export function report(args: BenchArgs, result: object, heading: string[], rows: string[][]): void {
  if (args.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const widths = rows.reduce<number[]>((w, row) => row.map((cell, i) => Math.max(w[i] ?? 0, cell.length)), []);
  const lines = rows.map(
    (row) => `  ${row.map((cell, i) => (i === 0 || i === row.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('   ').trimEnd()}`,
  );
  process.stdout.write(`${[...heading, ...lines].join('\n')}\n`);
}
