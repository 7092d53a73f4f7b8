// The simulation's replicated state machine: a string map written by put commands. It can image
// itself for a snapshot and restore from one. It knows nothing of Raft beyond the entries it applies.
import { EntryType, type Entry } from '../../../src/raft/types.js';

export interface PutCommand {
  /** Unique id of the client operation that proposed it. */
  op: number;
  key: string;
  value: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodePut(command: PutCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

export function decodePut(entry: Entry): PutCommand | undefined {
  if (entry.type !== EntryType.Normal || entry.data.byteLength === 0) return undefined;
  return JSON.parse(decoder.decode(entry.data)) as PutCommand;
}

export class KvStateMachine {
  appliedIndex = 0;
  private readonly values = new Map<string, string>();

  get(key: string): string | null {
    return this.values.get(key) ?? null;
  }

  /** Applies one committed entry; returns the put it carried, if any. */
  apply(entry: Entry): PutCommand | undefined {
    if (entry.index !== this.appliedIndex + 1) {
      throw new Error(`kv: applying ${entry.index} right after ${this.appliedIndex}`);
    }
    this.appliedIndex = entry.index;
    const put = decodePut(entry);
    if (put) this.values.set(put.key, put.value);
    return put;
  }

  /** A canonical image of the state (equal states give equal strings). */
  fingerprint(): string {
    return JSON.stringify([...this.values].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify({ appliedIndex: this.appliedIndex, values: [...this.values] }));
  }

  static restore(data: Uint8Array, index: number): KvStateMachine {
    const kv = new KvStateMachine();
    kv.appliedIndex = index;
    if (data.byteLength === 0) return kv;
    const image = JSON.parse(decoder.decode(data)) as { appliedIndex: number; values: [string, string][] };
    if (image.appliedIndex !== index) throw new Error(`kv: snapshot image of ${image.appliedIndex} restored as ${index}`);
    for (const [key, value] of image.values) kv.values.set(key, value);
    return kv;
  }
}
