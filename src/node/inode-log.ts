// Proposes inode commands through the node's Raft group and returns what apply() decided; a
// rejection becomes the FsError the filesystem operation reports. The one place where the node
// turns an operation into a log entry.
import { type ApplyResult, type CommandOp, encodeCommand } from '../inode/commands.js';
import { FsError } from '../inode/errors.js';

/** The part of a Raft group the node needs: propose an entry, get apply()'s result. */
export interface CommandGroup {
  propose(data: Uint8Array): Promise<ApplyResult>;
}

export type Applied = Extract<ApplyResult, { ok: true }>;

export class InodeLog {
  constructor(private readonly group: CommandGroup) {}

  async run(op: CommandOp): Promise<Applied> {
    let result: ApplyResult;
    try {
      result = await this.group.propose(encodeCommand(op, Date.now()));
    } catch (err) {
      throw new FsError('EIO', `metadata log unavailable: ${(err as Error).message}`, { cause: err });
    }
    if (!result.ok) throw new FsError(result.error, result.message);
    return result;
  }
}
