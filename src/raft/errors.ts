// The errors a Raft group's callers see (the RaftNode boundary). Every failure that crosses it is a
// RaftError; the subclasses say which case it is, so callers branch with instanceof and map to
// their own boundary (errno, gRPC status) in one place. Nothing here does I/O.
import { NO_NODE, type NodeId } from './types.js';

export class RaftError extends Error {
  constructor(message: string) {
    super(`raft: ${message}`);
    this.name = new.target.name;
  }
}

/** This node is not the leader. `leader` is NO_NODE when no leader is known right now. */
export class NotLeaderError extends RaftError {
  constructor(
    readonly leader: NodeId = NO_NODE,
    /** The leader's transport address (host:port), when this node knows it. */
    readonly leaderAddress?: string,
  ) {
    super(leader === NO_NODE ? 'not the leader, no leader known' : `not the leader; the leader is ${leader}${leaderAddress ? ` at ${leaderAddress}` : ''}`);
  }
}

/**
 * A proposal (or membership change, read barrier, leadership transfer) did not complete within its
 * deadline. It may still take effect later.
 */
export class ProposalTimeoutError extends RaftError {
  constructor(
    readonly timeoutMs: number,
    what = 'proposal',
  ) {
    super(`${what} not done within ${timeoutMs} ms (it may still take effect later)`);
  }
}

/** The proposal's log slot was taken by another entry (a new leader overwrote it): it will never apply. */
export class ProposalDroppedError extends RaftError {
  constructor(
    readonly index: number,
    readonly term: number,
  ) {
    super(`proposal at index ${index} term ${term} was overwritten by a new leader`);
  }
}

/**
 * The proposal's entry was committed or overwritten, but this node learned the outcome only through
 * a snapshot, so it cannot tell which, nor the result.
 */
export class ProposalOutcomeUnknownError extends RaftError {
  constructor(readonly index: number) {
    super(`proposal at index ${index} was covered by a snapshot: outcome unknown here`);
  }
}

/** A membership change the group cannot take now (another one is pending, or it would leave no voter). */
export class ConfChangeRejectedError extends RaftError {}

/** This node has been removed from its group; it will never serve the group again. */
export class RemovedFromGroupError extends RaftError {
  constructor() {
    super('this node has been removed from the group');
  }
}

/** The node is closed (or closing); nothing more will be applied here. */
export class ClosedError extends RaftError {
  constructor() {
    super('node is closed');
  }
}
