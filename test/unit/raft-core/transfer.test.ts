// Scenario tests: leadership transfer. The leader brings the target up to date, sends TimeoutNow,
// refuses proposals meanwhile, and gives up after an election timeout.
import { describe, expect, it } from 'vitest';
import { NotLeaderError } from '../../../src/raft/core/raw-node.js';
import { MessageType, NO_NODE, Role, nodeId } from '../../../src/raft/types.js';
import { TestCluster, encode } from './cluster.js';

describe('leadership transfer', () => {
  it('hands leadership to an up-to-date follower in the next term', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    const term = c.raw(1).status().term;
    c.raw(1).transferLeadership(nodeId(2));
    c.stabilize();
    expect(c.raw(2).status()).toMatchObject({ role: Role.Leader, term: term + 1 });
    expect(c.raw(1).status()).toMatchObject({ role: Role.Follower, leader: 2 });
    expect(c.deliveredOf(MessageType.TimeoutNow, { from: 1, to: 2 })).toHaveLength(1);
  });

  it('catches a lagging target up first, refusing proposals until the transfer ends', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    for (let i = 0; i < 5; i++) c.raw(1).propose(encode(`e${i}`));
    c.stabilize();
    c.heal();
    const last = c.raw(1).status().lastIndex;
    c.raw(1).transferLeadership(nodeId(3));
    const refusal = (() => {
      try {
        c.raw(1).propose(encode('during'));
      } catch (error) {
        return error;
      }
    })();
    expect(refusal).toBeInstanceOf(NotLeaderError);
    expect((refusal as NotLeaderError).leader).toBe(3);
    c.stabilize();
    expect(c.raw(3).status().role).toBe(Role.Leader);
    expect([...c.node(3).applied.values()]).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
    // TimeoutNow went out only after the target acknowledged the whole log.
    const timeoutNow = c.delivered.findIndex((m) => m.type === MessageType.TimeoutNow);
    const caughtUp = c.delivered.findIndex((m) => m.type === MessageType.AppResp && m.from === 3 && m.index === last);
    expect(caughtUp).toBeGreaterThanOrEqual(0);
    expect(timeoutNow).toBeGreaterThan(caughtUp);
  });

  it('gives up after an election timeout if the target does not take over', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    c.raw(1).transferLeadership(nodeId(3));
    expect(c.raw(1).status().leadTransferee).toBe(3);
    c.run(10);
    expect(c.raw(1).status()).toMatchObject({ role: Role.Leader, leadTransferee: NO_NODE });
    expect(() => c.raw(1).propose(encode('after'))).not.toThrow();
  });

  it('refuses targets that are not voters, and callers that are not leader', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    expect(() => c.raw(1).transferLeadership(nodeId(9))).toThrow(RangeError);
    expect(() => c.raw(2).transferLeadership(nodeId(3))).toThrow(NotLeaderError);
  });

  it('the target campaigns despite the lease its peers gave the old leader', () => {
    const c = new TestCluster([1, 2, 3], { checkQuorum: true, preVote: true });
    c.passStartupLease();
    c.elect(1);
    c.run(2);
    c.raw(1).transferLeadership(nodeId(2));
    c.stabilize();
    expect(c.raw(2).status().role).toBe(Role.Leader);
  });
});
