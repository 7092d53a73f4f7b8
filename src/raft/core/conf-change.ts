// Membership changes: the byte encoding of a ConfChange (the data of a ConfChange entry) and the
// pure function that applies one to a ConfState. It never decides whether a change is allowed
// (the leader does, in raft.ts) and never touches replication state.
import { ConfChangeType, nodeId, type ConfChange, type ConfState, type NodeId } from '../types.js';

const FORMAT_VERSION = 1;
const HEADER_BYTES = 10; // version, type, node id (u64 big-endian)
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const address = utf8Encoder.encode(cc.address);
  const bytes = new Uint8Array(HEADER_BYTES + address.byteLength);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, FORMAT_VERSION);
  view.setUint8(1, cc.type);
  view.setBigUint64(2, BigInt(cc.node));
  bytes.set(address, HEADER_BYTES);
  return bytes;
}

/** Inverse of encodeConfChange; throws RangeError on bytes it did not produce. */
export function decodeConfChange(bytes: Uint8Array): ConfChange {
  if (bytes.byteLength < HEADER_BYTES) throw new RangeError(`conf change too short (${bytes.byteLength} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint8(0);
  if (version !== FORMAT_VERSION) throw new RangeError(`unknown conf change format ${version}`);
  const type = view.getUint8(1);
  if (type !== ConfChangeType.AddVoter && type !== ConfChangeType.AddLearner && type !== ConfChangeType.RemoveNode) {
    throw new RangeError(`unknown conf change type ${type}`);
  }
  const node = nodeId(Number(view.getBigUint64(2)));
  const address = utf8Decoder.decode(bytes.subarray(HEADER_BYTES));
  return { type, node, address };
}

/** The changes that build `conf` from an empty membership (a new group's, written into its log). */
export function changesBuilding(conf: ConfState): ConfChange[] {
  const address = (node: NodeId) => conf.addresses[node] ?? '';
  return [
    ...conf.voters.map((node) => ({ type: ConfChangeType.AddVoter, node, address: address(node) })),
    ...conf.learners.map((node) => ({ type: ConfChangeType.AddLearner, node, address: address(node) })),
  ];
}

export function isMember(conf: ConfState, id: NodeId): boolean {
  return conf.voters.includes(id) || conf.learners.includes(id);
}

export function cloneConfState(conf: ConfState): ConfState {
  return { voters: conf.voters.slice(), learners: conf.learners.slice(), addresses: { ...conf.addresses } };
}

/**
 * The membership after `cc`. Each change sets one node's role (voter, learner or absent) and its
 * address, whatever the role was before, so re-applying a suffix of already-applied changes on
 * startup is harmless. A change that would leave no voter is ignored (the leader never proposes one).
 */
export function applyConfChange(conf: ConfState, cc: ConfChange): ConfState {
  const voters = conf.voters.filter((id) => id !== cc.node);
  const learners = conf.learners.filter((id) => id !== cc.node);
  const addresses = { ...conf.addresses };
  switch (cc.type) {
    case ConfChangeType.AddVoter:
      voters.push(cc.node);
      break;
    case ConfChangeType.AddLearner:
      learners.push(cc.node);
      break;
    case ConfChangeType.RemoveNode:
      delete addresses[cc.node];
      break;
  }
  if (voters.length === 0) return conf;
  if (cc.type !== ConfChangeType.RemoveNode && cc.address !== '') addresses[cc.node] = cc.address;
  voters.sort((a, b) => a - b);
  learners.sort((a, b) => a - b);
  return { voters, learners, addresses };
}
