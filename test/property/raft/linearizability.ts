// A linearizability checker for a history of reads and writes on independent registers (keys), in
// the style of Wing & Gong / Lowe's search with memoization: per key, find an order of the
// operations that respects real time (an operation that returned before another was invoked comes
// first) and register semantics. Writes whose outcome is unknown may take effect at any point after
// their invocation or never. It only judges a history; it never produces one.

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

/** Whether one register's history is linearizable. */
export function checkRegister(history: readonly RegisterOp[], initial: string | null): boolean {
  for (const op of history) {
    if (op.kind === 'read' && op.returnedAt === Number.POSITIVE_INFINITY) {
      throw new RangeError('a read without a response must be left out of the history');
    }
  }
  // An unknown-outcome write nobody read can always be taken as never applied.
  const readValues = new Set(history.filter((op) => op.kind === 'read').map((op) => op.value));
  const ops = history
    .filter((op) => op.kind === 'read' || op.returnedAt !== Number.POSITIVE_INFINITY || readValues.has(op.value))
    .slice()
    .sort((a, b) => a.invokedAt - b.invokedAt);
  const required = ops.filter((op) => op.returnedAt !== Number.POSITIVE_INFINITY).length;
  const done = new Uint8Array(ops.length);
  const seen = new Set<string>();

  const search = (value: string | null, doneRequired: number): boolean => {
    if (doneRequired === required) return true;
    let firstReturn = Number.POSITIVE_INFINITY;
    for (let i = 0; i < ops.length; i++) if (!done[i] && ops[i]!.returnedAt < firstReturn) firstReturn = ops[i]!.returnedAt;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (op.invokedAt > firstReturn) break;
      if (done[i]) continue;
      if (op.kind === 'read' && op.value !== value) continue;
      const next = op.kind === 'write' ? op.value : value;
      done[i] = 1;
      const state = `${done.join('')}|${next}`;
      if (!seen.has(state)) {
        seen.add(state);
        if (search(next, doneRequired + (op.returnedAt === Number.POSITIVE_INFINITY ? 0 : 1))) return true;
      }
      done[i] = 0;
    }
    return false;
  };
  return search(initial, 0);
}
