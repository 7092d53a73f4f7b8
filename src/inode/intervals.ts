// Sets of byte ranges within one chunk, as sorted, disjoint, non-adjacent [start, end) pairs
// flattened into one array: [s0, e0, s1, e1, ...]. Pure functions; inputs are never mutated.

export type Intervals = readonly number[];

export function addInterval(set: Intervals, start: number, end: number): number[] {
  if (end <= start) return set.slice();
  const out: number[] = [];
  let i = 0;
  while (i < set.length && set[i + 1]! < start) {
    out.push(set[i]!, set[i + 1]!);
    i += 2;
  }
  let s = start;
  let e = end;
  while (i < set.length && set[i]! <= e) {
    s = Math.min(s, set[i]!);
    e = Math.max(e, set[i + 1]!);
    i += 2;
  }
  out.push(s, e);
  while (i < set.length) {
    out.push(set[i]!, set[i + 1]!);
    i += 2;
  }
  return out;
}

/** The part of the set below `limit`. */
export function clipIntervals(set: Intervals, limit: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < set.length; i += 2) {
    if (set[i]! >= limit) break;
    out.push(set[i]!, Math.min(set[i + 1]!, limit));
  }
  return out;
}

/** Sub-ranges of [start, end) that are covered (`covered = true`) or not covered by the set, in order. */
export function* splitRange(
  set: Intervals,
  start: number,
  end: number,
): Generator<{ start: number; end: number; covered: boolean }> {
  let pos = start;
  for (let i = 0; i < set.length && pos < end; i += 2) {
    const s = set[i]!;
    const e = set[i + 1]!;
    if (e <= pos) continue;
    if (s >= end) break;
    if (s > pos) {
      yield { start: pos, end: s, covered: false };
      pos = s;
    }
    const stop = Math.min(e, end);
    yield { start: pos, end: stop, covered: true };
    pos = stop;
  }
  if (pos < end) yield { start: pos, end, covered: false };
}

export function coversRange(set: Intervals, start: number, end: number): boolean {
  for (let i = 0; i < set.length; i += 2) {
    if (set[i]! <= start && set[i + 1]! >= end) return true;
  }
  return end <= start;
}
