// Read-index requests waiting on the leader for a heartbeat round that a quorum acknowledges
// (proof that no newer leader existed when the request arrived). Requests that arrive between two
// broadcasts share one round. It only does bookkeeping: raft.ts sends the heartbeats and answers.
import type { NodeId } from '../types.js';
import { quorumValue } from './quorum.js';

export interface ReadRequest {
  /** The node that asked (the leader itself for local requests). */
  from: NodeId;
  context: Uint8Array;
  /** The leader's commit index when the request arrived: the read is safe once this is applied. */
  index: number;
}

const ROUND_BYTES = 8;

/** The heartbeat context that carries a read round. */
export function encodeReadRound(round: number): Uint8Array {
  const bytes = new Uint8Array(ROUND_BYTES);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(round));
  return bytes;
}

/** The round in a heartbeat(-response) context; 0 when the context is not a round. */
export function decodeReadRound(context: Uint8Array): number {
  if (context.byteLength !== ROUND_BYTES) return 0;
  return Number(new DataView(context.buffer, context.byteOffset, ROUND_BYTES).getBigUint64(0));
}

export class ReadRounds {
  private lastRound = 0;
  /** The round collecting requests that no heartbeat has carried yet (0: none). */
  private openRound = 0;
  private readonly waiting: { round: number; request: ReadRequest }[] = [];
  /** The newest round each peer has acknowledged. */
  private readonly acked = new Map<NodeId, number>();

  add(request: ReadRequest): void {
    if (this.openRound === 0) this.openRound = ++this.lastRound;
    this.waiting.push({ round: this.openRound, request });
  }

  /** Closes and returns the open round, if requests joined one since the last broadcast. */
  takeOpenRound(): number | undefined {
    const round = this.openRound;
    this.openRound = 0;
    return round === 0 ? undefined : round;
  }

  /** The round a periodic heartbeat should carry: the open one, else the newest still waiting. */
  heartbeatRound(): number | undefined {
    return this.takeOpenRound() ?? this.waiting.at(-1)?.round;
  }

  /**
   * `from` acknowledged a heartbeat of `round`. Returns the requests this confirms: every request
   * of every round up to the newest one a quorum of `voters` (the leader `self` included) has acked.
   */
  acknowledge(from: NodeId, round: number, voters: readonly NodeId[], self: NodeId): ReadRequest[] {
    if (round > (this.acked.get(from) ?? 0)) this.acked.set(from, round);
    const confirmed = quorumValue(voters, (id) => (id === self ? this.lastRound : (this.acked.get(id) ?? 0)));
    let released = 0;
    while (released < this.waiting.length && this.waiting[released]!.round <= confirmed) released++;
    return this.waiting.splice(0, released).map((waiting) => waiting.request);
  }
}
