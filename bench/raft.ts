// Raft throughput and latency: 3 raft-kv replicas as separate processes on loopback, small proposals
// (32-byte values) from many concurrent callers generated inside the leader process (so the load
// generator is not a client bottleneck). Each durability mode runs RUNS fresh clusters; we report the
// median run (by commits/s) and its latency percentiles, plus the latency of a lone proposer (one
// proposal at a time: the commit latency without queueing).
//
//   npm run bench -- raft [--json]
//   env: RAFT_BENCH_RUNS (3), RAFT_BENCH_SECONDS (5), RAFT_BENCH_CONCURRENCY (1024)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Durability } from '../src/raft/storage/lmdb-log-storage.js';
import { RaftKvCluster } from '../test/fixtures/raft-kv/cluster.js';
import type { LoadResult } from '../test/fixtures/raft-kv/protocol.js';
import type { BenchArgs } from './main.js';

const RUNS = Number(process.env.RAFT_BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.RAFT_BENCH_SECONDS ?? 5);
const CONCURRENCY = Number(process.env.RAFT_BENCH_CONCURRENCY ?? 1024);
const VALUE_BYTES = 32;
const SERVER_SCRIPT = fileURLToPath(new URL('../test/fixtures/raft-kv/server.js', import.meta.url));

interface RunResult {
  loaded: LoadResult;
  alone: LoadResult;
}

interface ModeResult {
  durability: Durability;
  commitsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  loneProposerP50Ms: number;
  loneProposerP99Ms: number;
}

async function measureOnce(durability: Durability): Promise<RunResult> {
  const baseDir = await mkdtemp(path.join(tmpdir(), 'tidefs-bench-raft-'));
  const cluster = await RaftKvCluster.start({ serverScript: SERVER_SCRIPT, baseDir, size: 3, durability });
  try {
    const leader = await cluster.leader(15_000);
    await cluster.request(leader, 'POST', '/load', { durationMs: 1_000, concurrency: CONCURRENCY, valueBytes: VALUE_BYTES }, 30_000);
    const load = async (durationMs: number, concurrency: number): Promise<LoadResult> => {
      const reply = await cluster.request(leader, 'POST', '/load', { durationMs, concurrency, valueBytes: VALUE_BYTES }, durationMs + 60_000);
      if (reply.status !== 200) throw new Error(`load failed: ${JSON.stringify(reply.body)}`);
      return reply.body as unknown as LoadResult;
    };
    const loaded = await load(SECONDS * 1_000, CONCURRENCY);
    const alone = await load(1_000, 1);
    return { loaded, alone };
  } finally {
    await cluster.stop();
    await rm(baseDir, { recursive: true, force: true });
  }
}

function median<T>(runs: T[], by: (run: T) => number): T {
  return [...runs].sort((a, b) => by(a) - by(b))[Math.floor(runs.length / 2)]!;
}

const round = (n: number, digits = 2): number => Number(n.toFixed(digits));

export async function run(args: BenchArgs): Promise<void> {
  const modes: ModeResult[] = [];
  for (const durability of ['fsync', 'process'] as const) {
    const runs: RunResult[] = [];
    for (let i = 0; i < RUNS; i++) {
      const { loaded, alone } = await measureOnce(durability);
      process.stderr.write(
        `raft ${durability} run ${i + 1}/${RUNS}: ${Math.round(loaded.commitsPerSec)} commits/s, p50 ${round(loaded.p50Ms)} ms, ` +
          `p99 ${round(loaded.p99Ms)} ms, ${loaded.errors} errors; lone proposer p50 ${round(alone.p50Ms)} ms\n`,
      );
      runs.push({ loaded, alone });
    }
    const loaded = median(runs, (r) => r.loaded.commitsPerSec).loaded;
    const alone = median(runs, (r) => r.alone.p50Ms).alone;
    modes.push({
      durability,
      commitsPerSec: Math.round(loaded.commitsPerSec),
      p50Ms: round(loaded.p50Ms),
      p99Ms: round(loaded.p99Ms),
      loneProposerP50Ms: round(alone.p50Ms),
      loneProposerP99Ms: round(alone.p99Ms),
    });
  }
  const [fsync, processMode] = modes as [ModeResult, ModeResult];
  if (args.json) {
    process.stdout.write(
      `${JSON.stringify({
        benchmark: 'raft',
        replicas: 3,
        concurrency: CONCURRENCY,
        valueBytes: VALUE_BYTES,
        seconds: SECONDS,
        runsPerMode: RUNS,
        durability: 'fsync',
        commitsPerSec: fsync.commitsPerSec,
        p50Ms: fsync.p50Ms,
        p99Ms: fsync.p99Ms,
        loneProposerP50Ms: fsync.loneProposerP50Ms,
        modes: Object.fromEntries(modes.map(({ durability, ...numbers }) => [durability, numbers])),
      })}\n`,
    );
    return;
  }
  process.stdout.write(`raft: 3 replicas on loopback, ${CONCURRENCY} concurrent proposers, ${VALUE_BYTES}-byte values, median of ${RUNS} x ${SECONDS} s\n`);
  for (const m of [fsync, processMode]) {
    process.stdout.write(
      `  ${m.durability.padEnd(8)} ${String(m.commitsPerSec).padStart(7)} commits/s   p50 ${m.p50Ms} ms   p99 ${m.p99Ms} ms` +
        `   (lone proposer: p50 ${m.loneProposerP50Ms} ms, p99 ${m.loneProposerP99Ms} ms)\n`,
    );
  }
}
