// ChunkBytes against the same bytes joined into one buffer: any range copies out the same bytes,
// whatever the pieces (empty ones too). fast-check prints the seed of a failure.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChunkBytes } from '../../../src/node/chunk-bytes.js';

const pieces = fc.array(fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)), { maxLength: 12 });

describe('ChunkBytes', () => {
  it('copies any range exactly as the joined bytes would', () => {
    fc.assert(
      fc.property(pieces, fc.nat(500), fc.nat(500), fc.nat(8), (parts, a, b, outOffset) => {
        const bytes = new ChunkBytes(parts);
        const whole = Buffer.concat(parts);
        expect(bytes.length).toBe(whole.length);
        expect(bytes.joined().equals(whole)).toBe(true);
        const [from, to] = [Math.min(a, b), Math.max(a, b)];
        const out = Buffer.alloc(outOffset + to - from, 0xee);
        const copied = bytes.copy(out, outOffset, from, to);
        const expected = whole.subarray(Math.min(from, whole.length), Math.min(to, whole.length));
        expect(copied).toBe(expected.length);
        expect(out.subarray(outOffset, outOffset + copied).equals(expected)).toBe(true);
        expect(out.subarray(0, outOffset).every((v) => v === 0xee)).toBe(true);
        expect(out.subarray(outOffset + copied).every((v) => v === 0xee)).toBe(true);
      }),
    );
  });
});
