// Chaos: 3 raft-kv processes on 127.0.0.1 with concurrent clients writing; the leader is killed with
// SIGKILL mid-load, once per durability mode ('process' promises exactly to survive this). A new leader must be elected within a bound, and every acknowledged write must be
// on both survivors and, after the killed node restarts from its data directory, on it too.
//
// beforeAll compiles the fixture (and only what it imports) into dist/ with tsc, so this test does
// not need `npm run build` first. Every process is stopped by PID in afterAll.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RaftKvCluster } from '../../fixtures/raft-kv/cluster.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const SERVER_SCRIPT = path.join(REPO, 'dist/test/fixtures/raft-kv/server.js');
const TICK_MS = 100;
const ELECTION_TICK = 10;
/** Followers wait 1-2 election timeouts (randomized) before campaigning; allow 2.5 of the longest. */
const NEW_LEADER_BOUND_MS = 2.5 * 2 * TICK_MS * ELECTION_TICK;
const CLIENTS = 8;

/** Compiles the fixture once per test file run (both suites share it). */
let fixtureBuilt: Promise<void> | undefined;

async function buildFixture(): Promise<void> {
  const scratch = await mkdtemp(path.join(tmpdir(), 'tidefs-raft-kv-build-'));
  const config = path.join(scratch, 'tsconfig.raft-kv.json');
  await writeFile(
    config,
    JSON.stringify({
      extends: path.join(REPO, 'tsconfig.json'),
      compilerOptions: {
        outDir: path.join(REPO, 'dist'),
        rootDir: REPO,
        noEmit: false,
        typeRoots: [path.join(REPO, 'node_modules/@types')],
      },
      files: [path.join(REPO, 'test/fixtures/raft-kv/server.ts')],
      include: [],
    }),
  );
  try {
    await promisify(execFile)(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', config], { cwd: REPO });
  } catch (error) {
    // Exit code 2: type errors, JavaScript emitted anyway. Type checking is `npm run typecheck`'s
    // job; this test only needs the JavaScript, so it says so and goes on.
    const failure = error as { code?: number; stdout?: string };
    if (failure.code !== 2) throw new Error(`compiling the raft-kv fixture failed:\n${failure.stdout ?? ''}`);
    process.stderr.write(`raft-kv fixture compiled with type errors:\n${failure.stdout ?? ''}`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

interface Acked {
  key: string;
  value: string;
}

/** A client that writes unique keys to whoever it believes leads, following redirects and failures. */
async function writer(cluster: RaftKvCluster, client: number, acked: Acked[], stop: { now: boolean }): Promise<number> {
  let target = cluster.ids()[client % cluster.ids().length]!;
  let attempts = 0;
  for (let seq = 0; !stop.now; seq++) {
    const key = `c${client}-${seq}`;
    const value = `v${seq}-${'x'.repeat(seq % 50)}`;
    attempts++;
    try {
      const reply = await cluster.request(target, 'POST', '/put', { k: key, v: value }, 5_000);
      if (reply.status === 200) acked.push({ key, value });
      else if (reply.status === 421 && typeof reply.body.leader === 'number' && reply.body.leader !== 0) target = reply.body.leader;
      else await new Promise((r) => setTimeout(r, 20));
    } catch {
      // the target is dead or unreachable: try the others in turn
      const ids = cluster.ids().filter((id) => cluster.isRunning(id));
      target = ids[(ids.indexOf(target) + 1) % ids.length] ?? ids[0]!;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return attempts;
}

/** Waits until `count` writes were acknowledged (fails after `timeoutMs`: the group made no progress). */
async function untilAcked(acked: Acked[], count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (acked.length < count) {
    if (Date.now() > deadline) throw new Error(`only ${acked.length} of ${count} writes acknowledged within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function missingOn(cluster: RaftKvCluster, id: number, acked: Acked[]): Promise<Acked[]> {
  const { body } = await cluster.request(id, 'GET', '/dump', undefined, 10_000);
  return acked.filter(({ key, value }) => body[key] !== value);
}

async function untilComplete(cluster: RaftKvCluster, id: number, acked: Acked[], timeoutMs: number): Promise<Acked[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const missing = await missingOn(cluster, id, acked);
    if (missing.length === 0 || Date.now() > deadline) return missing;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.each(['process', 'fsync'] as const)('raft chaos (%s durability): kill -9 the leader under load', (durability) => {
  let scratch: string;
  let cluster: RaftKvCluster | undefined;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'tidefs-chaos-raft-'));
    await (fixtureBuilt ??= buildFixture());
    cluster = await RaftKvCluster.start({
      serverScript: SERVER_SCRIPT,
      baseDir: scratch,
      size: 3,
      durability,
      tickMs: TICK_MS,
      electionTick: ELECTION_TICK,
      snapshotEvery: 2_000,
      compactionMargin: 500,
    });
  });

  afterAll(async () => {
    await cluster?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('elects a new leader in bounded time and loses no acknowledged write', async () => {
    const c = cluster!;
    const oldLeader = await c.leader(15_000);
    const acked: Acked[] = [];
    const stop = { now: false };
    const writers = Array.from({ length: CLIENTS }, (_, k) => writer(c, k, acked, stop));

    await untilAcked(acked, 200, 30_000);

    const killedAt = Date.now();
    await c.kill(oldLeader);
    const newLeader = await c.leader(NEW_LEADER_BOUND_MS + 5_000, [oldLeader]);
    const electionMs = Date.now() - killedAt;
    process.stderr.write(`raft chaos (${durability}): leader ${oldLeader} killed; ${newLeader} leads after ${electionMs} ms\n`);
    expect(newLeader).not.toBe(oldLeader);
    expect(electionMs).toBeLessThan(NEW_LEADER_BOUND_MS);

    await untilAcked(acked, acked.length + 100, 30_000); // writes resumed under the new leader
    stop.now = true;
    await Promise.all(writers);

    const survivors = c.ids().filter((id) => id !== oldLeader);
    // Linearizable reads (read barrier, on the leader and through it from a follower) see the
    // last acknowledged write of every client at once, without waiting.
    const lastPerClient = new Map(acked.map((write) => [write.key.split('-')[0], write]));
    for (const id of survivors) {
      for (const { key, value } of lastPerClient.values()) {
        const reply = await c.request(id, 'GET', `/get?k=${encodeURIComponent(key)}`);
        expect(reply.body.value, `linearizable read of ${key} on ${id}`).toBe(value);
      }
    }
    for (const id of survivors) {
      const missing = await untilComplete(c, id, acked, 10_000);
      expect(missing.slice(0, 5), `acknowledged writes missing on survivor ${id}`).toEqual([]);
    }

    await c.launch(oldLeader);
    const missing = await untilComplete(c, oldLeader, acked, 20_000);
    expect(missing.slice(0, 5), `acknowledged writes missing on restarted node ${oldLeader}`).toEqual([]);
    process.stderr.write(`raft chaos (${durability}): ${acked.length} acknowledged writes, all present on 3 nodes\n`);
  });
});
