// Scenario tests: leader election, pre-vote keeping a partitioned node from disrupting the group,
// check-quorum step-down, and the lease that makes followers ignore vote requests.
import { describe, expect, it } from 'vitest';
import { MessageType, NO_NODE, Role, nodeId, type Message } from '../../../src/raft/types.js';
import { makeRng } from '../../property/raft/prng.js';
import { TestCluster } from './cluster.js';

describe('election', () => {
  it('a campaigning node with a majority becomes leader; the others follow it in its term', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    const leader = c.raw(1).status();
    expect(leader.role).toBe(Role.Leader);
    expect(leader.term).toBe(1);
    for (const n of [2, 3]) {
      const status = c.raw(n).status();
      expect(status).toMatchObject({ role: Role.Follower, leader: 1, term: 1, vote: 1 });
      // The new group's membership (3 entries) and the leader's no-op are committed everywhere.
      expect(status.commit).toBe(4);
    }
  });

  it('randomized timeouts elect exactly one leader from a cold start', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const c = new TestCluster([1, 2, 3, 4, 5], (id) => {
        const rng = makeRng(seed * 31 + id);
        return { random: () => rng.next() };
      });
      let ticks = 0;
      while (!c.leader() && ticks < 200) {
        c.run(1);
        ticks++;
      }
      const leaders = [...c.nodes.values()].filter((node) => node.role() === Role.Leader);
      expect(leaders.length, `seed ${seed}`).toBe(1);
      expect(ticks, `seed ${seed}`).toBeLessThan(100);
    }
  });

  it('a candidate cut off from the majority does not win', () => {
    const c = new TestCluster([1, 2, 3, 4, 5]);
    c.cut(1, 3);
    c.cut(1, 4);
    c.cut(1, 5);
    c.elect(1);
    expect(c.raw(1).status().role).toBe(Role.Candidate);
    expect(c.leader()).toBeUndefined();
  });

  it('a node votes at most once per term, also across a restart', () => {
    const c = new TestCluster([1, 2, 3]);
    const vote = (from: number): Message => ({
      type: MessageType.Vote, from: nodeId(from), to: nodeId(2), term: 5, logTerm: 0, index: 0,
      entries: [], commit: 0, reject: false, rejectHint: 0, context: new Uint8Array(0),
    });
    c.raw(2).step(vote(1));
    c.stabilize();
    expect(c.deliveredOf(MessageType.VoteResp, { from: 2, to: 1 })[0]?.reject).toBe(false);
    c.node(2).restart();
    c.raw(2).step(vote(3));
    c.stabilize();
    expect(c.deliveredOf(MessageType.VoteResp, { from: 2, to: 3 })[0]?.reject).toBe(true);
    expect(c.raw(2).status().vote).toBe(1);
  });
});

describe('pre-vote', () => {
  const partitionAndRejoin = (preVote: boolean) => {
    const c = new TestCluster([1, 2, 3], { preVote });
    c.elect(1);
    const term = c.raw(1).status().term;
    c.isolate(3);
    c.run(100);
    const isolatedTerm = c.raw(3).status().term;
    c.heal();
    c.run(30);
    return { term, isolatedTerm, after: c.raw(1).status() };
  };

  it('keeps a partitioned node from raising its term and deposing the leader when it rejoins', () => {
    const { term, isolatedTerm, after } = partitionAndRejoin(true);
    expect(isolatedTerm).toBe(term);
    expect(after.role).toBe(Role.Leader);
    expect(after.term).toBe(term);
  });

  it('(without it, the rejoining node does depose the leader)', () => {
    const { term, isolatedTerm, after } = partitionAndRejoin(false);
    expect(isolatedTerm).toBeGreaterThan(term);
    expect(after.term).toBeGreaterThan(term);
  });
});

describe('check quorum', () => {
  it('a leader that has not heard from a quorum for an election timeout steps down', () => {
    const c = new TestCluster([1, 2, 3], { checkQuorum: true });
    c.passStartupLease();
    c.elect(1);
    c.isolate(1);
    for (let i = 0; i < 20; i++) c.raw(1).tick();
    c.stabilize();
    expect(c.raw(1).status()).toMatchObject({ role: Role.Follower, leader: NO_NODE });
  });

  it('a leader that hears from a quorum stays', () => {
    const c = new TestCluster([1, 2, 3], { checkQuorum: true });
    c.passStartupLease();
    c.elect(1);
    c.isolate(3);
    c.run(50);
    expect(c.raw(1).status().role).toBe(Role.Leader);
  });

  it('followers that heard from the leader recently ignore vote requests (the lease)', () => {
    const c = new TestCluster([1, 2, 3], { checkQuorum: true });
    c.passStartupLease();
    c.elect(1);
    c.run(3);
    c.raw(3).campaign();
    c.stabilize();
    expect(c.deliveredOf(MessageType.VoteResp, { to: 3 })).toEqual([]);
    expect(c.raw(3).status().role).not.toBe(Role.Leader);
  });

  it('a restarted node also honours the lease for an election timeout', () => {
    const c = new TestCluster([1, 2, 3], { checkQuorum: true });
    c.passStartupLease();
    c.elect(1);
    c.node(2).restart();
    c.isolate(1);
    c.raw(3).campaign();
    c.stabilize();
    expect(c.deliveredOf(MessageType.VoteResp, { from: 2, to: 3 })).toEqual([]);
    // Once the lease ran out, the restarted node votes.
    c.tick(10, [2]);
    c.raw(3).campaign();
    c.stabilize();
    expect(c.raw(3).status().role).toBe(Role.Leader);
  });
});
