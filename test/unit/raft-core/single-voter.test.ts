// Scenario tests: a group with a single voter elects itself at once and commits a proposal in the
// same Ready that carries it; and the RawNode contract (one Ready at a time, what needs an fsync).
import { describe, expect, it } from 'vitest';
import { MemoryStorage } from '../../../src/raft/core/memory-storage.js';
import { RaftInvariantError, RawNode, type RaftConfig } from '../../../src/raft/core/raw-node.js';
import { EntryType, Role, nodeId } from '../../../src/raft/types.js';
import { encode } from './cluster.js';

function singleVoter(overrides: Partial<RaftConfig> = {}): { node: RawNode; storage: MemoryStorage } {
  const storage = new MemoryStorage({ voters: [nodeId(1)], learners: [nodeId(2)], addresses: { 1: 'a:1', 2: 'b:1' } });
  const node = new RawNode({
    id: nodeId(1), storage, applied: 0, electionTick: 10, heartbeatTick: 1, maxSizePerMsg: 1 << 20,
    maxInflightMsgs: 16, checkQuorum: true, preVote: true, readOnly: 'safe', random: () => 0.5, ...overrides,
  });
  return { node, storage };
}

/** Persists and advances one Ready (the driver's job, minus the network). */
function persist(node: RawNode, storage: MemoryStorage) {
  const rd = node.ready();
  if (rd.hardState) storage.setHardState(rd.hardState);
  storage.append(rd.entries);
  node.advance(rd);
  return rd;
}

describe('single-voter group', () => {
  it('campaign() makes it leader at once, even with pre-vote and check-quorum', () => {
    const { node } = singleVoter();
    node.campaign();
    expect(node.status()).toMatchObject({ role: Role.Leader, leader: 1, term: 1 });
  });

  it('a proposal is in entries and committedEntries of the same Ready', () => {
    const { node, storage } = singleVoter();
    node.campaign();
    const first = persist(node, storage);
    // The group's membership, then the leader's no-op: all committed at once.
    expect(first.entries.map((e) => e.type)).toEqual([EntryType.ConfChange, EntryType.ConfChange, EntryType.Normal]);
    expect(first.committedEntries).toEqual(first.entries);
    const { index } = node.propose(encode('x'));
    const rd = persist(node, storage);
    expect(rd.entries.map((e) => e.index)).toEqual([index]);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([index]);
    expect(rd.hardState?.commit).toBe(index);
    expect(node.status().applied).toBe(index);
  });

  it('answers a read index at once', () => {
    const { node, storage } = singleVoter();
    node.campaign();
    persist(node, storage);
    node.readIndex(encode('r'));
    const rd = persist(node, storage);
    expect(rd.readStates).toEqual([{ index: node.status().commit, context: encode('r') }]);
  });

  it('elects itself again after a restart, in a new term', () => {
    const { node, storage } = singleVoter();
    node.campaign();
    persist(node, storage);
    const restarted = new RawNode({
      id: nodeId(1), storage, applied: 0, electionTick: 10, heartbeatTick: 1, maxSizePerMsg: 1 << 20,
      maxInflightMsgs: 16, checkQuorum: true, preVote: true, readOnly: 'safe', random: () => 0.5,
    });
    // It first applies the log again (membership included), then campaigns.
    persist(restarted, storage);
    restarted.campaign();
    expect(restarted.status()).toMatchObject({ role: Role.Leader, term: 2 });
  });
});

describe('RawNode contract', () => {
  it('hands out one Ready at a time', () => {
    const { node } = singleVoter();
    node.campaign();
    expect(node.hasReady()).toBe(true);
    const rd = node.ready();
    expect(node.hasReady()).toBe(false);
    expect(() => node.ready()).toThrow(RaftInvariantError);
    expect(() => node.advance({ ...rd })).toThrow(RaftInvariantError);
    node.advance(rd);
    expect(node.hasReady()).toBe(false);
  });

  it('asks for an fsync only when entries, a snapshot, the term or the vote changed', () => {
    const { node, storage } = singleVoter();
    node.campaign();
    expect(persist(node, storage).mustSync).toBe(true);
    node.propose(encode('x'));
    expect(persist(node, storage).mustSync).toBe(true);
    node.readIndex(encode('r'));
    expect(persist(node, storage).mustSync).toBe(false);
  });

  it('hands out a long backlog of committed entries in pages of maxCommittedSizePerReady', () => {
    const storage = new MemoryStorage({ voters: [nodeId(1)], learners: [], addresses: {} });
    storage.append(Array.from({ length: 100 }, (_, i) => ({ index: i + 1, term: 1, type: EntryType.Normal, data: new Uint8Array(10) })));
    storage.setHardState({ term: 1, vote: nodeId(1), commit: 100 });
    const node = new RawNode({
      id: nodeId(1), storage, applied: 0, electionTick: 10, heartbeatTick: 1, maxSizePerMsg: 1 << 20, maxInflightMsgs: 16,
      checkQuorum: false, preVote: false, readOnly: 'safe', random: () => 0.5, maxCommittedSizePerReady: 100,
    });
    const pages: number[] = [];
    while (node.hasReady()) {
      const rd = node.ready();
      pages.push(rd.committedEntries.length);
      node.advance(rd);
    }
    expect(pages).toEqual([10, 10, 10, 10, 10, 10, 10, 10, 10, 10]);
    expect(node.status().applied).toBe(100);
  });

  it('refuses configurations that cannot work', () => {
    expect(() => singleVoter({ heartbeatTick: 10 })).toThrow(RangeError);
    expect(() => singleVoter({ readOnly: 'lease', checkQuorum: false })).toThrow(RangeError);
    expect(() => singleVoter({ applied: 5 })).toThrow(RangeError);
  });
});
