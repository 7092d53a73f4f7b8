// The write command's own codec against the generated one: the same bytes out, the same command
// back in, whatever the generated encoder wrote (fast-check prints the seed of a failure).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { Command, Write } from '../../../src/gen/inode.js';
import { decodeCommand, encodeCommand } from '../../../src/inode/commands.js';

const safe = fc.oneof(fc.nat(), fc.maxSafeNat());
const write = fc.record({
  ino: safe,
  offset: safe,
  data: fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)),
});
const nowMs = fc.oneof(fc.constant(0), fc.double({ noNaN: true }), fc.nat());

describe('write command codec', () => {
  it('encodes exactly as the generated encoder does', () => {
    fc.assert(
      fc.property(write, nowMs, (value, now) => {
        const op = { $case: 'write' as const, value };
        const ours = encodeCommand(op, now);
        const generated = Command.encode({ nowMs: now, op }).finish();
        expect(Buffer.from(ours).equals(Buffer.from(generated))).toBe(true);
      }),
    );
  });

  it('decodes what the generated encoder writes, with the data as a view', () => {
    fc.assert(
      fc.property(write, nowMs, (value, now) => {
        const bytes = Command.encode({ nowMs: now, op: { $case: 'write', value } }).finish();
        const decoded = decodeCommand(bytes);
        expect(decoded).toEqual(Command.decode(bytes));
        if (value.data.length > 0 && decoded.op?.$case === 'write') {
          expect(decoded.op.value.data.buffer).toBe(bytes.buffer);
        }
      }),
    );
  });

  it('reads fields in any order, repeated messages and unknown fields as the generated decoder does', () => {
    fc.assert(
      fc.property(write, write, nowMs, (first, second, now) => {
        const w = new BinaryWriter();
        Write.encode(second, w.uint32((11 << 3) | 2).fork()).join();
        w.uint32(9).double(now);
        Write.encode({ ...first, data: Buffer.alloc(0) }, w.uint32((11 << 3) | 2).fork().uint32((9 << 3) | 0).uint32(7)).join();
        const bytes = w.finish();
        expect(decodeCommand(bytes)).toEqual(Command.decode(bytes));
      }),
    );
  });

  it('leaves every other command to the generated codec', () => {
    const op = { $case: 'truncate' as const, value: { ino: 5, size: 9 } };
    const bytes = encodeCommand(op, 12);
    expect(Buffer.from(bytes).equals(Buffer.from(Command.encode({ nowMs: 12, op }).finish()))).toBe(true);
    expect(decodeCommand(bytes)).toEqual({ nowMs: 12, op });
  });

  it('refuses a write message that claims more bytes than there are', () => {
    const bytes = Command.encode({ nowMs: 1, op: { $case: 'write', value: { ino: 1, offset: 2, data: Buffer.from('abc') } } }).finish();
    const broken = Uint8Array.from(bytes);
    broken[10] = 100; // Write's length (after 9 bytes of now_ms)
    expect(() => Command.decode(broken)).toThrow();
    expect(() => decodeCommand(broken)).toThrow();
  });
});
