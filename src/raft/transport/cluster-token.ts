// The shared secret every Raft call carries (gRPC metadata `x-tidefs-token`), and its check. The
// check compares SHA-256 digests with timingSafeEqual, so its timing says nothing about the token.
// Never logs or echoes a token.
import { createHash, timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';

export const TOKEN_METADATA_KEY = 'x-tidefs-token';

const digest = (token: string): Uint8Array => {
  const bytes = createHash('sha256').update(token, 'utf8').digest();
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
};

/** Metadata for an outgoing call (a fresh object per call: grpc-js may modify what it is given). */
export function tokenMetadata(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set(TOKEN_METADATA_KEY, token);
  return metadata;
}

export class ClusterToken {
  private readonly expected: Uint8Array;

  constructor(token: string) {
    if (token.length === 0) throw new RangeError('the cluster token must not be empty');
    this.expected = digest(token);
  }

  /** True when `metadata` carries exactly this token (one value, a string). */
  admits(metadata: grpc.Metadata): boolean {
    const values = metadata.get(TOKEN_METADATA_KEY);
    const given = values.length === 1 && typeof values[0] === 'string' ? values[0] : '';
    return timingSafeEqual(digest(given), this.expected) && values.length === 1;
  }
}
