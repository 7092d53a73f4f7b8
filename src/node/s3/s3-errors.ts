// Classifies what the AWS SDK (or the socket under it) throws: is it worth another attempt, and which
// StoreErrorKind does it become. The one place that knows S3 error codes; it never retries, logs or
// builds messages for users beyond a short description of the failure.
import type { StoreErrorKind } from './object-store.js';

export interface S3Failure {
  /** Worth another attempt: 5xx, throttling, 408/429, timeouts, connection errors, cut-off bodies. */
  transient: boolean;
  /** What it becomes once no further attempt is made ('unavailable' for every transient failure). */
  kind: StoreErrorKind;
  /** The S3 error code (NoSuchKey, SlowDown...) or the socket error code (ECONNRESET...). */
  code: string;
  /** The HTTP status, when the server answered. */
  status?: number;
  message: string;
}

/** A response body that ended before its Content-Length (the connection broke mid-transfer). */
export class IncompleteBodyError extends Error {
  readonly code = 'IncompleteBody';
  constructor(expected: number, received: number) {
    super(`response body ended after ${received} of ${expected} bytes`);
    this.name = 'IncompleteBodyError';
  }
}

const THROTTLING_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestThrottled',
  'TooManyRequests',
  'RequestLimitExceeded',
  // AWS answers 400 RequestTimeout when the connection stalled while sending the body.
  'RequestTimeout',
]);

const ACCESS_DENIED_CODES = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'CredentialsProviderError',
]);

/**
 * The server refused the request's time as too far from its own. Retried: the SDK corrects its
 * estimate of the server's clock from such an answer (and HttpRangeReader does the same).
 */
const CLOCK_SKEW_CODES = new Set(['RequestTimeTooSkewed', 'RequestInTheFuture']);

export const isClockSkewCode = (code: string): boolean => CLOCK_SKEW_CODES.has(code);

const CONNECTION_ERROR_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ERR_STREAM_PREMATURE_CLOSE',
  'IncompleteBody',
]);

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  Code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

export function classifyS3Failure(error: unknown): S3Failure {
  const shape: ErrorShape = typeof error === 'object' && error !== null ? (error as ErrorShape) : {};
  const message = typeof shape.message === 'string' ? shape.message : String(error);
  const status = typeof shape.$metadata?.httpStatusCode === 'number' ? shape.$metadata.httpStatusCode : undefined;
  const code = stringField(shape.Code) ?? stringField(shape.code) ?? stringField(shape.name) ?? 'Unknown';
  const failure = (transient: boolean, kind: StoreErrorKind): S3Failure =>
    status === undefined ? { transient, kind, code, message } : { transient, kind, code, status, message };

  if (status === undefined) {
    if (CONNECTION_ERROR_CODES.has(code) || shape.name === 'TimeoutError') return failure(true, 'unavailable');
    if (ACCESS_DENIED_CODES.has(code)) return failure(false, 'access-denied');
    return failure(false, 'unavailable');
  }
  // A request the server does not implement (501) will not work on a retry either.
  if (status === 501 || code === 'NotImplemented') return failure(false, 'invalid');
  if (status >= 500 || status === 408 || status === 429 || THROTTLING_CODES.has(code)) {
    return failure(true, 'unavailable');
  }
  // An error on a 2xx/3xx answer: the body could not be parsed (cut off or garbled on the way).
  if (status < 300) return failure(true, 'unavailable');
  if (status === 404) return failure(false, code === 'NoSuchBucket' ? 'no-such-bucket' : 'not-found');
  if (CLOCK_SKEW_CODES.has(code)) return failure(true, 'access-denied');
  if (status === 401 || status === 403 || ACCESS_DENIED_CODES.has(code)) return failure(false, 'access-denied');
  if (status === 412 || code === 'PreconditionFailed') return failure(false, 'changed');
  return failure(false, 'invalid');
}

/** "NoSuchKey (HTTP 404)", "ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:7480". */
export function describeS3Failure(failure: S3Failure): string {
  if (failure.status !== undefined) {
    const detail = failure.message && failure.message !== 'UnknownError' && failure.message !== failure.code;
    return `${failure.code} (HTTP ${failure.status})${detail ? `: ${failure.message}` : ''}`;
  }
  return failure.message.includes(failure.code) ? failure.message : `${failure.code}: ${failure.message}`;
}

function stringField(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
