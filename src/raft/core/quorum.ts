// Majority arithmetic over a set of voters: the index a majority has reached, and election tallies.
// Pure functions of their arguments; it never looks at learners, the log or any node state.
import type { NodeId } from '../types.js';

export enum VoteResult {
  Pending = 0,
  Won = 1,
  Lost = 2,
}

export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The largest value that at least a majority of `voters` have reached (e.g. the quorum-replicated
 * index when `valueOf` is each voter's match index). 0 for an empty voter set.
 */
export function quorumValue(voters: readonly NodeId[], valueOf: (id: NodeId) => number): number {
  if (voters.length === 0) return 0;
  const values = voters.map(valueOf).sort((a, b) => b - a);
  return values[majority(voters.length) - 1]!;
}

/** Tallies `votes` (granted or rejected; absent = not yet answered); votes of non-voters do not count. */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === undefined) missing++;
    else if (vote) granted++;
  }
  const needed = majority(voters.length);
  if (granted >= needed) return VoteResult.Won;
  if (granted + missing >= needed) return VoteResult.Pending;
  return VoteResult.Lost;
}
