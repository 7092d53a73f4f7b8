// Unit tests of the core's small parts: the ConfChange encoding, majority arithmetic, the in-flight
// window, MemoryStorage's log shape rules, and the log's conflict search.
import { describe, expect, it } from 'vitest';
import { applyConfChange, decodeConfChange, encodeConfChange } from '../../../src/raft/core/conf-change.js';
import { RaftLog } from '../../../src/raft/core/log.js';
import { MemoryStorage } from '../../../src/raft/core/memory-storage.js';
import { Inflights } from '../../../src/raft/core/progress.js';
import { VoteResult, quorumValue, voteResult } from '../../../src/raft/core/quorum.js';
import { CompactedError, ConfChangeType, EntryType, UnavailableError, nodeId, type Entry, type NodeId } from '../../../src/raft/types.js';

const ids = (...ns: number[]): NodeId[] => ns.map(nodeId);
const entries = (...terms: number[]): Entry[] =>
  terms.map((term, i) => ({ index: i + 1, term, type: EntryType.Normal, data: new Uint8Array(i % 3) }));

describe('ConfChange encoding', () => {
  it('round-trips every kind of change', () => {
    for (const cc of [
      { type: ConfChangeType.AddVoter, node: nodeId(1), address: '10.0.0.1:7000' },
      { type: ConfChangeType.AddLearner, node: nodeId(2 ** 40), address: 'höst:1' },
      { type: ConfChangeType.RemoveNode, node: nodeId(7), address: '' },
    ]) {
      expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
    }
  });

  it('refuses bytes it did not produce', () => {
    expect(() => decodeConfChange(new Uint8Array(3))).toThrow(RangeError);
    const bytes = encodeConfChange({ type: ConfChangeType.AddVoter, node: nodeId(1), address: '' });
    bytes[1] = 9;
    expect(() => decodeConfChange(bytes)).toThrow(/type/);
  });

  it('applies a change by setting the node`s role, whatever it was', () => {
    const conf = { voters: ids(1, 2), learners: ids(3), addresses: { 1: 'a', 2: 'b', 3: 'c' } };
    expect(applyConfChange(conf, { type: ConfChangeType.AddVoter, node: nodeId(3), address: '' })).toEqual({
      voters: ids(1, 2, 3), learners: [], addresses: { 1: 'a', 2: 'b', 3: 'c' },
    });
    expect(applyConfChange(conf, { type: ConfChangeType.RemoveNode, node: nodeId(2), address: '' })).toEqual({
      voters: ids(1), learners: ids(3), addresses: { 1: 'a', 3: 'c' },
    });
    const single = { voters: ids(1), learners: [], addresses: {} };
    expect(applyConfChange(single, { type: ConfChangeType.RemoveNode, node: nodeId(1), address: '' })).toBe(single);
  });
});

describe('quorum', () => {
  it('finds the value a majority reached', () => {
    const match: Record<number, number> = { 1: 5, 2: 9, 3: 7, 4: 1, 5: 7 };
    expect(quorumValue(ids(1, 2, 3, 4, 5), (id) => match[id]!)).toBe(7);
    expect(quorumValue(ids(1, 2, 3, 4), (id) => match[id]!)).toBe(5);
    expect(quorumValue(ids(4), (id) => match[id]!)).toBe(1);
  });

  it('tallies votes, ignoring non-voters', () => {
    const votes = new Map<NodeId, boolean>([[nodeId(1), true], [nodeId(2), false], [nodeId(9), true]]);
    expect(voteResult(ids(1, 2, 3), votes)).toBe(VoteResult.Pending);
    votes.set(nodeId(3), true);
    expect(voteResult(ids(1, 2, 3), votes)).toBe(VoteResult.Won);
    expect(voteResult(ids(1, 2, 3, 4), new Map([[nodeId(2), false], [nodeId(3), false], [nodeId(4), false]]))).toBe(VoteResult.Lost);
  });
});

describe('in-flight window', () => {
  it('fills, frees acknowledged appends in order, and wraps around', () => {
    const window = new Inflights(3);
    window.add(10);
    window.add(20);
    window.add(30);
    expect(window.full()).toBe(true);
    expect(() => window.add(40)).toThrow(RangeError);
    window.freeUpTo(20);
    expect(window.count).toBe(1);
    window.add(40);
    window.add(50);
    window.freeUpTo(45);
    expect(window.count).toBe(1);
  });
});

describe('MemoryStorage', () => {
  it('appends, replaces a conflicting suffix, and refuses gaps', () => {
    const storage = new MemoryStorage();
    storage.append(entries(1, 1, 2, 2));
    storage.append([{ index: 3, term: 3, type: EntryType.Normal, data: new Uint8Array(0) }]);
    expect([1, 2, 3].map((i) => storage.term(i))).toEqual([1, 1, 3]);
    expect(storage.lastIndex()).toBe(3);
    expect(() => storage.append([{ index: 9, term: 3, type: EntryType.Normal, data: new Uint8Array(0) }])).toThrow(/gap/);
  });

  it('limits entries by bytes, keeping at least one', () => {
    const storage = new MemoryStorage();
    storage.append(entries(1, 1, 1, 1, 1, 1)); // data sizes 0, 1, 2, 0, 1, 2
    expect(storage.entries(1, 7, 3).map((e) => e.index)).toEqual([1, 2, 3, 4]);
    expect(storage.entries(3, 7, 0).map((e) => e.index)).toEqual([3]);
  });

  it('compacts only up to its snapshot, and answers the term at the compaction point', () => {
    const storage = new MemoryStorage();
    storage.append(entries(1, 1, 2, 2, 3));
    expect(() => storage.compact(2)).toThrow(/snapshot/);
    storage.createSnapshot(4, { voters: ids(1), learners: [], addresses: {} }, new Uint8Array([1]));
    storage.compact(3);
    expect(storage.firstIndex()).toBe(4);
    expect(storage.term(3)).toBe(2);
    expect(() => storage.term(2)).toThrow(CompactedError);
    expect(() => storage.entries(3, 5)).toThrow(CompactedError);
    expect(() => storage.entries(4, 7)).toThrow(UnavailableError);
    expect(storage.initialState().confState.voters).toEqual(ids(1));
  });
});

describe('RaftLog', () => {
  it('finds, for a rejected append, the last index whose term is not after the leader`s', () => {
    const storage = new MemoryStorage();
    storage.append(entries(1, 1, 2, 2, 2, 5, 5));
    const log = new RaftLog(storage);
    expect(log.findConflictByTerm(7, 4)).toEqual({ index: 5, term: 2 });
    expect(log.findConflictByTerm(7, 5)).toEqual({ index: 7, term: 5 });
    expect(log.findConflictByTerm(5, 1)).toEqual({ index: 2, term: 1 });
    expect(log.findConflictByTerm(5, 0)).toEqual({ index: 0, term: 0 });
  });

  it('never lets an append overwrite a committed entry', () => {
    const storage = new MemoryStorage();
    storage.append(entries(1, 1, 1));
    const log = new RaftLog(storage);
    log.commitTo(2);
    expect(() => log.append([{ index: 2, term: 2, type: EntryType.Normal, data: new Uint8Array(0) }])).toThrow(/committed/);
    expect(() => log.commitTo(9)).toThrow(/past the last index/);
  });
});
