// Deterministic simulation of the Raft core under random schedules (fast-check): crashes, restarts,
// partitions, lossy/duplicating/reordering network, membership changes, transfers, snapshots and
// compaction, with client puts and gets. Safety is checked on every step (simulation.ts), then the
// client history's linearizability and the group's liveness after healing.
//
// TIDEFS_SIM_RUNS sets the number of runs (default 200). A failure prints its seed and path;
// TIDEFS_SIM_SEED=<seed> TIDEFS_SIM_PATH=<path> replays it. Failures are reported as found; add
// TIDEFS_SIM_SHRINK=1 to shrink one to a small schedule first (it replays thousands of runs).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { scenarioArbitrary } from './scenarios.js';
import { Simulation } from './simulation.js';

const runs = Number(process.env.TIDEFS_SIM_RUNS ?? 200);
const seed = process.env.TIDEFS_SIM_SEED === undefined ? undefined : Number(process.env.TIDEFS_SIM_SEED);
const path = process.env.TIDEFS_SIM_PATH;
const shrink = process.env.TIDEFS_SIM_SHRINK === '1';

describe('raft core simulation', () => {
  it(
    `keeps election safety, log matching, leader completeness, state machine safety, linearizability and liveness (${runs} runs)`,
    () => {
      const details = fc.check(
        fc.property(scenarioArbitrary, ({ config, actions }) => {
          new Simulation(config).run(actions);
        }),
        { numRuns: runs, seed, path, endOnFailure: !shrink },
      );
      if (details.failed) {
        const replay = `TIDEFS_SIM_SEED=${details.seed} TIDEFS_SIM_PATH=${details.counterexamplePath}`;
        console.error(`raft simulation failed; replay with ${replay}`);
        throw new Error(`${fc.defaultReportMessage(details)}\nreplay: ${replay}`);
      }
      if (path === undefined) expect(details.numRuns).toBe(runs);
    },
    Math.max(120_000, runs * 2_000),
  );
});
