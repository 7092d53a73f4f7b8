// fast-check arbitraries for the simulation: a cluster configuration (size, protocol options,
// network and disk behaviour, client load) and a schedule of faults and operator actions.
import fc from 'fast-check';
import type { SimAction, SimConfig } from './simulation.js';

const node = fc.nat(6);

export const actionArbitrary: fc.Arbitrary<SimAction> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ kind: fc.constant('run' as const), steps: fc.integer({ min: 5, max: 120 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('crash' as const), node }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('restart' as const), node }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('partition' as const), sides: fc.nat(127) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('heal' as const) }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('isolateLeader' as const), minority: fc.nat(63) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('crashLeader' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('addLearner' as const), node }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('addVoter' as const), node }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), node }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('transfer' as const), node }) },
);

/** Mostly the group sizes that matter in practice (3 and 5), with spare nodes to add later. */
const groupArbitrary = fc
  .record({
    initialVoters: fc.oneof(
      { weight: 1, arbitrary: fc.constant(1) },
      { weight: 1, arbitrary: fc.constant(2) },
      { weight: 4, arbitrary: fc.constant(3) },
      { weight: 1, arbitrary: fc.constant(4) },
      { weight: 3, arbitrary: fc.constant(5) },
      { weight: 1, arbitrary: fc.constant(7) },
    ),
    spareNodes: fc.integer({ min: 0, max: 2 }),
  })
  .map(({ initialVoters, spareNodes }) => ({ initialVoters, poolSize: Math.min(7, initialVoters + spareNodes) }));

const protocolArbitrary = fc.record({
  seed: fc.integer(),
  preVote: fc.boolean(),
  checkQuorum: fc.boolean(),
  lease: fc.boolean(),
  electionTick: fc.constantFrom(3, 3, 4, 5, 6, 8, 10),
  maxInflightMsgs: fc.integer({ min: 1, max: 8 }),
  maxSizePerMsg: fc.constantFrom(0, 0, 40, 200, 1 << 20),
  snapshotEvery: fc.integer({ min: 2, max: 50 }),
  compactionMargin: fc.integer({ min: 0, max: 5 }),
  dropRate: fc.constantFrom(0, 0.02, 0.1, 0.3),
  duplicateRate: fc.constantFrom(0, 0.02, 0.1),
  maxDelay: fc.integer({ min: 1, max: 8 }),
  persistDelayMax: fc.integer({ min: 0, max: 3 }),
  clients: fc.integer({ min: 1, max: 8 }),
  clientRate: fc.constantFrom(0.05, 0.2, 0.6, 1),
});

export const configArbitrary: fc.Arbitrary<SimConfig> = fc
  .tuple(groupArbitrary, protocolArbitrary)
  .map(([group, protocol]) => ({ ...group, ...protocol }));

export const scenarioArbitrary = fc.record({
  config: configArbitrary,
  actions: fc.array(actionArbitrary, { minLength: 20, maxLength: 250, size: 'max' }),
});
