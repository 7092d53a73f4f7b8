// A linearizability checker for a history of reads and writes on independent registers (keys), in
// the style of Wing & Gong with Lowe's memoization (as in Knossos and Porcupine): per key, search
// for an order of the operations that respects real time (an operation that returned before
// another was invoked comes first) and register semantics. Writes whose outcome is unknown may take
// effect at any point after their invocation, or never. It only judges a history.
import { makeRng } from './prng.js';

export interface RegisterOp {
  key: string;
  kind: 'read' | 'write';
  /** Value written, or value read (null: the key was absent). */
  value: string | null;
  invokedAt: number;
  /** Logical time of the response; Infinity when the outcome is unknown (writes only). */
  returnedAt: number;
}

export type Verdict = { ok: true } | { ok: false; key: string; ops: RegisterOp[] };

export function checkLinearizable(history: readonly RegisterOp[], initial: string | null = null): Verdict {
  const byKey = new Map<string, RegisterOp[]>();
  for (const op of history) {
    let ops = byKey.get(op.key);
    if (!ops) byKey.set(op.key, (ops = []));
    ops.push(op);
  }
  for (const [key, ops] of byKey) {
    if (!checkRegister(ops, initial)) return { ok: false, key, ops };
  }
  return { ok: true };
}

/** A call or return event in the time-ordered, doubly linked event list the search edits. */
interface Event {
  op: number;
  isCall: boolean;
  prev: Event | undefined;
  next: Event | undefined;
  /** For a call: its return event (undefined for an unknown-outcome write). */
  match: Event | undefined;
}

/** Whether one register's history is linearizable. */
export function checkRegister(history: readonly RegisterOp[], initial: string | null): boolean {
  for (const op of history) {
    if (op.kind === 'read' && op.returnedAt === Number.POSITIVE_INFINITY) {
      throw new RangeError('a read without a response must be left out of the history');
    }
  }
  // An unknown-outcome write nobody read can always be taken as never applied.
  const readValues = new Set(history.filter((op) => op.kind === 'read').map((op) => op.value));
  const ops = history.filter((op) => op.kind === 'read' || op.returnedAt !== Number.POSITIVE_INFINITY || readValues.has(op.value));

  // Events in time order; at equal times calls come after returns (they did not overlap).
  const timeline: { time: number; isCall: boolean; op: number }[] = [];
  ops.forEach((op, i) => {
    timeline.push({ time: op.invokedAt, isCall: true, op: i });
    if (op.returnedAt !== Number.POSITIVE_INFINITY) timeline.push({ time: op.returnedAt, isCall: false, op: i });
  });
  timeline.sort((a, b) => a.time - b.time || Number(a.isCall) - Number(b.isCall));
  const head: Event = { op: -1, isCall: false, prev: undefined, next: undefined, match: undefined };
  const calls: Event[] = [];
  let tail = head;
  for (const { isCall, op } of timeline) {
    const event: Event = { op, isCall, prev: tail, next: undefined, match: undefined };
    tail.next = event;
    tail = event;
    if (isCall) calls[op] = event;
    else calls[op]!.match = event;
  }

  // The set of linearized operations, hashed (two 32-bit Zobrist hashes) for the memo.
  const rng = makeRng(ops.length);
  const zobrist = ops.map(() => [Math.floor(rng.next() * 2 ** 32), Math.floor(rng.next() * 2 ** 32)] as const);
  let hash1 = 0;
  let hash2 = 0;
  const seen = new Set<string>();
  const lift = (call: Event) => {
    call.prev!.next = call.next;
    if (call.next) call.next.prev = call.prev;
    const ret = call.match;
    if (ret) {
      ret.prev!.next = ret.next;
      if (ret.next) ret.next.prev = ret.prev;
    }
  };
  const unlift = (call: Event) => {
    const ret = call.match;
    if (ret) {
      ret.prev!.next = ret;
      if (ret.next) ret.next.prev = ret;
    }
    call.prev!.next = call;
    if (call.next) call.next.prev = call;
  };

  const stack: { call: Event; value: string | null }[] = [];
  let value = initial;
  let entry = head.next;
  for (;;) {
    // The end of the list: only unknown-outcome writes (which have no return) are left.
    if (!entry) return true;
    if (entry.isCall) {
      const op = ops[entry.op]!;
      if (op.kind === 'write' || op.value === value) {
        const next = op.kind === 'write' ? op.value : value;
        const [z1, z2] = zobrist[entry.op]!;
        const state = `${(hash1 ^ z1) >>> 0}:${(hash2 ^ z2) >>> 0}|${next}`;
        if (!seen.has(state)) {
          seen.add(state);
          stack.push({ call: entry, value });
          hash1 = (hash1 ^ z1) >>> 0;
          hash2 = (hash2 ^ z2) >>> 0;
          value = next;
          lift(entry);
          entry = head.next;
          continue;
        }
      }
      entry = entry.next;
      continue;
    }
    // A return of an operation not linearized yet: undo the last choice and try the next one.
    const last = stack.pop();
    if (!last) return false;
    const [z1, z2] = zobrist[last.call.op]!;
    hash1 = (hash1 ^ z1) >>> 0;
    hash2 = (hash2 ^ z2) >>> 0;
    value = last.value;
    unlift(last.call);
    entry = last.call.next;
  }
}
