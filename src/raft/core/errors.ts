// The errors the consensus core throws at its boundary (RawNode). Every one is a RaftCoreError; the
// driver maps them to its own boundary's errors (src/raft/errors.ts). Nothing here holds state.
import { NO_NODE, type NodeId } from '../types.js';

export class RaftCoreError extends Error {
  constructor(message: string) {
    super(`raft core: ${message}`);
    this.name = new.target.name;
  }
}

/**
 * This node cannot take the request because it is not the leader. `leader` is the node to retry at:
 * the known leader, the transfer target while a leadership transfer is under way, or NO_NODE.
 */
export class NotLeaderError extends RaftCoreError {
  constructor(
    readonly leader: NodeId,
    reason = leader === NO_NODE ? 'not the leader, and no leader is known' : `not the leader; the leader is ${leader}`,
  ) {
    super(reason);
  }
}

/** The leader refuses this membership change now (one is pending, or it is invalid for the group). */
export class ConfChangeRejectedError extends RaftCoreError {}

/**
 * The log, the storage or the caller broke an invariant the protocol relies on (a committed entry
 * would be overwritten, ready() was called twice without advance(), ...). The node must stop.
 */
export class RaftInvariantError extends RaftCoreError {}
