// Scenario tests: single-step membership changes. Learners replicate without voting or counting for
// commit; promotion waits until a learner caught up; one change at a time, and only after the
// leader committed in its term; a joining node rebuilds the membership from the log; a removed
// leader hands off before stepping down; a restart replays changes applied since the snapshot.
import { describe, expect, it } from 'vitest';
import { ConfChangeRejectedError } from '../../../src/raft/core/raw-node.js';
import { MemoryStorage } from '../../../src/raft/core/memory-storage.js';
import { RawNode } from '../../../src/raft/core/raw-node.js';
import { encodeConfChange } from '../../../src/raft/core/conf-change.js';
import { ConfChangeType, EntryType, MessageType, Role, nodeId, type ConfChange } from '../../../src/raft/types.js';
import { TestCluster, encode } from './cluster.js';

const addLearner = (n: number): ConfChange => ({ type: ConfChangeType.AddLearner, node: nodeId(n), address: `host-${n}:7000` });
const addVoter = (n: number): ConfChange => ({ type: ConfChangeType.AddVoter, node: nodeId(n), address: `host-${n}:7000` });
const remove = (n: number): ConfChange => ({ type: ConfChangeType.RemoveNode, node: nodeId(n), address: '' });

/** A 3-voter group with node 4 added as a learner. */
function withLearner(options = {}): TestCluster {
  const c = new TestCluster([1, 2, 3], options);
  c.addNode(4, options);
  c.elect(1);
  c.raw(1).proposeConfChange(addLearner(4));
  c.stabilize();
  return c;
}

describe('learners', () => {
  it('a joining node gets the log, and with it the whole membership', () => {
    const c = withLearner();
    c.raw(1).propose(encode('a'));
    c.stabilize();
    expect(c.raw(4).status().conf).toEqual(c.raw(1).status().conf);
    expect(c.raw(1).status().conf).toMatchObject({ voters: [1, 2, 3], learners: [4] });
    expect(c.raw(4).status().conf.addresses[4]).toBe('host-4:7000');
    expect([...c.node(4).applied.values()]).toEqual(['a']);
  });

  it('a learner does not count for commit', () => {
    const c = withLearner();
    c.isolate(2);
    c.isolate(3);
    c.raw(1).propose(encode('only-on-1-and-4'));
    c.stabilize();
    expect(c.logTerms(4).length).toBe(c.logTerms(1).length);
    expect(c.node(1).applied.size).toBe(0);
  });

  it('a learner does not vote and never campaigns', () => {
    const c = withLearner();
    c.isolate(1);
    c.raw(4).campaign();
    c.elect(2);
    expect(c.raw(4).status().role).toBe(Role.Follower);
    expect(c.deliveredOf(MessageType.Vote, { to: 4 })).toEqual([]);
    expect(c.raw(2).status().role).toBe(Role.Leader);
  });

  it('is promoted only once it has caught up', () => {
    const c = withLearner({ maxLearnerLag: 16 });
    c.isolate(4);
    for (let i = 0; i < 20; i++) c.raw(1).propose(encode(`e${i}`));
    c.stabilize();
    expect(() => c.raw(1).proposeConfChange(addVoter(4))).toThrow(/has not caught up/);
    c.heal();
    c.run(2);
    c.raw(1).proposeConfChange(addVoter(4));
    c.stabilize();
    expect(c.raw(1).status().conf).toMatchObject({ voters: [1, 2, 3, 4], learners: [] });
    expect(c.raw(4).status().conf.voters).toContain(4);
  });
});

describe('membership changes', () => {
  it('one at a time: a second change waits until the first is applied', () => {
    const c = new TestCluster([1, 2, 3]);
    c.addNode(4);
    c.addNode(5);
    c.elect(1);
    c.raw(1).proposeConfChange(addLearner(4));
    expect(() => c.raw(1).proposeConfChange(addLearner(5))).toThrow(ConfChangeRejectedError);
    c.stabilize();
    expect(() => c.raw(1).proposeConfChange(addLearner(5))).not.toThrow();
  });

  it('not before the leader has committed an entry of its own term', () => {
    const c = new TestCluster([1, 2, 3]);
    c.addNode(4);
    c.elect(1);
    c.intercept = (m) => !(m.type === MessageType.App && m.from === 2);
    c.elect(2);
    expect(() => c.raw(2).proposeConfChange(addLearner(4))).toThrow(/not applied yet/);
    c.intercept = () => true;
    c.run(2);
    expect(() => c.raw(2).proposeConfChange(addLearner(4))).not.toThrow();
  });

  it('refuses changes that make no sense', () => {
    const c = new TestCluster([1, 2]);
    c.elect(1);
    expect(() => c.raw(1).proposeConfChange(addVoter(2))).toThrow(/already a voter/);
    expect(() => c.raw(1).proposeConfChange(addLearner(2))).toThrow(/demotion/);
    expect(() => c.raw(1).proposeConfChange(remove(7))).toThrow(/not a member/);
    c.raw(1).proposeConfChange(remove(2));
    c.stabilize();
    expect(() => c.raw(1).proposeConfChange(remove(1))).toThrow(/last voter/);
  });

  it('a removed leader hands leadership to an informed voter, then steps down', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.raw(1).proposeConfChange(remove(1));
    c.stabilize();
    expect(c.raw(1).status()).toMatchObject({ role: Role.Follower });
    expect(c.deliveredOf(MessageType.TimeoutNow, { from: 1 })).toHaveLength(1);
    const leader = c.leader();
    expect(leader && leader.id !== 1).toBe(true);
    expect(leader!.raw.status().conf.voters).toEqual([2, 3]);
    leader!.raw.propose(encode('after'));
    c.stabilize();
    expect([...leader!.applied.values()]).toEqual(['after']);
  });

  it('two voters, the leader removes itself and shuts down: the other carries on alone', () => {
    const c = new TestCluster([1, 2]);
    c.elect(2);
    c.raw(2).proposeConfChange(remove(2));
    c.stabilize();
    expect(c.raw(2).status().role).toBe(Role.Follower);
    expect(c.deliveredOf(MessageType.TimeoutNow, { from: 2, to: 1 })).toHaveLength(1);
    c.isolate(2); // shut down once it stepped down
    c.run(25);
    expect(c.raw(1).status()).toMatchObject({ role: Role.Leader, conf: { voters: [1] } });
  });

  it('a restart replays the membership changes applied since the snapshot', () => {
    const voters = [nodeId(1), nodeId(2)];
    const storage = new MemoryStorage({ voters, learners: [], addresses: {} });
    storage.append([
      { index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array(0) },
      { index: 2, term: 1, type: EntryType.ConfChange, data: encodeConfChange(addLearner(3)) },
      { index: 3, term: 1, type: EntryType.ConfChange, data: encodeConfChange(addVoter(3)) },
      { index: 4, term: 1, type: EntryType.ConfChange, data: encodeConfChange(remove(2)) },
    ]);
    storage.setHardState({ term: 1, vote: nodeId(1), commit: 4 });
    const start = (applied: number) =>
      new RawNode({
        id: nodeId(1), storage, applied, electionTick: 10, heartbeatTick: 1, maxSizePerMsg: 1 << 20,
        maxInflightMsgs: 16, checkQuorum: false, preVote: false, readOnly: 'safe', random: () => 0.5,
      });
    // The state machine applied up to 3: changes 2 and 3 are the core's to replay, 4 comes in a Ready.
    const node = start(3);
    expect(node.status().conf).toMatchObject({ voters: [1, 2, 3], learners: [] });
    const rd = node.ready();
    expect(rd.committedEntries.map((e) => e.index)).toEqual([4]);
    node.advance(rd);
    expect(node.status().conf).toMatchObject({ voters: [1, 3], learners: [] });
  });
});
