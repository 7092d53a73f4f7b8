// classifyS3Failure: which failures are retried and which StoreErrorKind each becomes, for the shapes
// the AWS SDK and Node's sockets actually throw.
import { describe, expect, it } from 'vitest';
import { classifyS3Failure, describeS3Failure, IncompleteBodyError } from '../../../src/node/s3/s3-errors.js';

/** An error shaped like the SDK's S3ServiceException for an HTTP answer. */
function serviceError(name: string, status: number, message = 'UnknownError'): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status }, $fault: status >= 500 ? 'server' : 'client' });
}

function socketError(code: string, message = `connect ${code} 127.0.0.1:7480`): Error {
  return Object.assign(new Error(message), { code });
}

describe('classifyS3Failure', () => {
  it.each([
    ['InternalError', 500],
    ['SlowDown', 503],
    ['ServiceUnavailable', 503],
    ['Unknown', 502],
    ['RequestTimeout', 408],
    ['TooManyRequests', 429],
    ['SlowDown', 400],
    ['RequestTimeout', 400],
    ['Throttling', 400],
  ])('retries %s (HTTP %i), then reports unavailable', (name, status) => {
    expect(classifyS3Failure(serviceError(name, status))).toMatchObject({ transient: true, kind: 'unavailable', code: name, status });
  });

  it.each([
    ['NoSuchKey', 404, 'not-found'],
    ['NotFound', 404, 'not-found'],
    ['NoSuchUpload', 404, 'not-found'],
    ['NoSuchBucket', 404, 'no-such-bucket'],
    ['AccessDenied', 403, 'access-denied'],
    ['InvalidAccessKeyId', 403, 'access-denied'],
    ['SignatureDoesNotMatch', 403, 'access-denied'],
    ['Unknown', 403, 'access-denied'],
    ['PreconditionFailed', 412, 'changed'],
    ['InvalidObjectName', 400, 'invalid'],
    ['EntityTooSmall', 400, 'invalid'],
    ['InvalidRange', 416, 'invalid'],
    ['PermanentRedirect', 301, 'invalid'],
    ['NotImplemented', 501, 'invalid'],
  ] as const)('never retries %s (HTTP %i): %s', (name, status, kind) => {
    expect(classifyS3Failure(serviceError(name, status))).toMatchObject({ transient: false, kind, code: name, status });
  });

  it('retries a request refused for its time (the clock is corrected meanwhile), then reports access denied', () => {
    for (const name of ['RequestTimeTooSkewed', 'RequestInTheFuture']) {
      expect(classifyS3Failure(serviceError(name, 403))).toMatchObject({ transient: true, kind: 'access-denied', code: name, status: 403 });
    }
  });

  it.each(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH'])(
    'retries the connection error %s',
    (code) => {
      const failure = classifyS3Failure(socketError(code));
      expect(failure).toMatchObject({ transient: true, kind: 'unavailable', code });
      expect(failure.status).toBeUndefined();
    },
  );

  it('retries timeouts and bodies cut short', () => {
    const timeout = Object.assign(new Error('socket timed out after 300 ms of inactivity'), { name: 'TimeoutError' });
    expect(classifyS3Failure(timeout)).toMatchObject({ transient: true, kind: 'unavailable' });
    expect(classifyS3Failure(new IncompleteBodyError(100, 40))).toMatchObject({ transient: true, code: 'IncompleteBody' });
  });

  it('retries an unparseable answer to a successful request', () => {
    expect(classifyS3Failure(serviceError('Error', 200, 'char 0: unexpected end'))).toMatchObject({ transient: true, kind: 'unavailable' });
  });

  it('does not retry missing credentials or unknown errors', () => {
    const noCredentials = Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
    expect(classifyS3Failure(noCredentials)).toMatchObject({ transient: false, kind: 'access-denied' });
    expect(classifyS3Failure(new TypeError('boom'))).toMatchObject({ transient: false, kind: 'unavailable' });
    expect(classifyS3Failure('a string')).toMatchObject({ transient: false, code: 'Unknown', message: 'a string' });
  });
});

describe('describeS3Failure', () => {
  it('names the code and status, and the message when it says more', () => {
    expect(describeS3Failure(classifyS3Failure(serviceError('NoSuchKey', 404)))).toBe('NoSuchKey (HTTP 404)');
    expect(describeS3Failure(classifyS3Failure(serviceError('InvalidRequest', 400, 'copy to itself')))).toBe(
      'InvalidRequest (HTTP 400): copy to itself',
    );
  });

  it('uses the socket message, adding the code only when missing', () => {
    expect(describeS3Failure(classifyS3Failure(socketError('ECONNREFUSED')))).toBe('connect ECONNREFUSED 127.0.0.1:7480');
    expect(describeS3Failure(classifyS3Failure(socketError('ECONNRESET', 'socket hang up')))).toBe('ECONNRESET: socket hang up');
  });
});
