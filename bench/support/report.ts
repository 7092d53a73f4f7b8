// How a benchmark hands over its result: with --json exactly one JSON object on stdout, otherwise an
// aligned table; progress lines go to stderr either way, so stdout stays machine-readable.
import type { BenchArgs } from '../main.js';

export function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}

/**
 * Prints `result` as one JSON line, or `title` and `rows` as a table: the first and last columns
 * (names, remarks) aligned left, the others (numbers) right.
 */
export function report(args: BenchArgs, result: object, title: string, rows: string[][]): void {
  if (args.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const widths = rows.reduce<number[]>((w, row) => row.map((cell, i) => Math.max(w[i] ?? 0, cell.length)), []);
  const lines = rows.map((row) => `  ${row.map((cell, i) => (i === 0 || i === row.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('   ').trimEnd()}`);
  process.stdout.write(`${title}\n${lines.join('\n')}\n`);
}
