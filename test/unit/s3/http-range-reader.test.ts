// HttpRangeReader against a scripted HTTP server on loopback: what it sends (path-style, encoded
// key, Range, If-Match, the signer's headers), and how it reads answers that arrive in pieces,
// error answers (with a length, chunked, ended by a close), keep-alive and closed connections,
// answers cut short or never sent, and all of it over TLS. The S3 integration tests cover it
// against radosgw as well.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpRangeReader, type RequestSigner } from '../../../src/node/s3/http-range-reader.js';
import { classifyS3Failure, IncompleteBodyError } from '../../../src/node/s3/s3-errors.js';

/** How the server answers one request: the raw bytes to write, in pieces, and whether to close after. */
interface Script {
  pieces: Array<string | Buffer>;
  close?: boolean;
  /** Never answer (the client must time out). */
  silent?: boolean;
}

interface ScriptedServer {
  url: URL;
  requests: string[];
  connections: number;
  sockets: Set<net.Socket>;
  next(...scripts: Script[]): void;
  stop(): Promise<void>;
}

/** The dates the stand-in signer was asked to sign with, in order. */
const signingDates: Date[] = [];
const signer: RequestSigner = {
  async sign(request, { signingDate }) {
    signingDates.push(signingDate);
    return { headers: { ...request.headers, authorization: 'AWS4-HMAC-SHA256 test', 'x-amz-date': '20261124T000000Z' } };
  },
};

const TLS_CERT = readFileSync(new URL('../../fixtures/tls/cert.pem', import.meta.url));
const TLS_KEY = readFileSync(new URL('../../fixtures/tls/key.pem', import.meta.url));

async function scriptedServer(secure = false): Promise<ScriptedServer> {
  const queue: Script[] = [];
  const sockets = new Set<net.Socket>();
  const state = { requests: [] as string[], connections: 0 };
  const serve = (socket: net.Socket): void => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let pending = '';
    socket.on('data', async (data) => {
      pending += data.toString('latin1');
      while (pending.includes('\r\n\r\n')) {
        const end = pending.indexOf('\r\n\r\n') + 4;
        state.requests.push(pending.slice(0, end));
        pending = pending.slice(end);
        const script = queue.shift() ?? { pieces: ['HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n'] };
        if (script.silent) continue;
        for (const piece of script.pieces) {
          socket.write(piece);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        if (script.close) socket.end();
      }
    });
    socket.on('error', () => undefined);
  };
  const server = secure ? tls.createServer({ key: TLS_KEY, cert: TLS_CERT }, serve) : net.createServer(serve);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return {
    url: new URL(`${secure ? 'https' : 'http'}://127.0.0.1:${port}`),
    get requests() {
      return state.requests;
    },
    get connections() {
      return state.connections;
    },
    sockets,
    next: (...scripts) => queue.push(...scripts),
    async stop() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

const ok = (body: Buffer | string, extra = ''): string[] => [
  `HTTP/1.1 206 Partial Content\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n`,
  body.toString('latin1'),
];

describe('HttpRangeReader', () => {
  let server: ScriptedServer;
  let reader: HttpRangeReader;
  const clock = { systemClockOffset: 0 };

  async function start(requestTimeoutMs = 2_000, secure = false): Promise<void> {
    server = await scriptedServer(secure);
    clock.systemClockOffset = 0;
    signingDates.length = 0;
    reader = new HttpRangeReader({
      endpoint: server.url,
      bucket: 'bkt',
      signer: async () => signer,
      clock,
      connectTimeoutMs: 2_000,
      requestTimeoutMs,
      ...(secure ? { ca: TLS_CERT } : {}),
    });
  }

  afterEach(async () => {
    reader?.close();
    await server?.stop();
  });

  it('sends a signed path-style GET with the range and version, and reads the body arriving in pieces', async () => {
    await start();
    const body = Buffer.from('0123456789abcdefghij');
    // Headers split mid-line, the body partly in the same piece as the headers' end.
    server.next({ pieces: ['HTTP/1.1 206 Partial Content\r\ncontent-le', 'ngth: 20\r\n\r\n0123', '456789abcdef', 'ghij'] });
    const got = await reader.read('dir/a b+c?d#é!', 'bytes=5-24', 'abc123');
    expect(got?.equals(body)).toBe(true);
    const request = server.requests[0]!;
    expect(request.split('\r\n')[0]).toBe('GET /bkt/dir/a%20b%2Bc%3Fd%23%C3%A9%21 HTTP/1.1');
    expect(request).toContain(`\r\nhost: ${server.url.host}\r\n`);
    expect(request).toContain('\r\nrange: bytes=5-24\r\n');
    expect(request).toContain('\r\nif-match: "abc123"\r\n');
    expect(request).toContain('\r\nauthorization: AWS4-HMAC-SHA256 test\r\n');
    expect(request).toContain('\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\n');
  });

  it('keeps the connection for the next request, and opens another after the server closes it', async () => {
    await start();
    server.next({ pieces: ok('first') }, { pieces: ok('second'), close: true }, { pieces: ok('third') });
    expect((await reader.read('k', 'bytes=0-4', undefined))?.toString()).toBe('first');
    expect((await reader.read('k', 'bytes=0-5', undefined))?.toString()).toBe('second');
    await new Promise((resolve) => setTimeout(resolve, 50)); // the close reaches the pool
    expect((await reader.read('k', 'bytes=0-4', undefined))?.toString()).toBe('third');
    expect(server.connections).toBe(2);
  });

  it('answers 416 with undefined, and keeps the connection', async () => {
    await start();
    const xml = '<Error><Code>InvalidRange</Code></Error>';
    server.next({ pieces: [`HTTP/1.1 416 Requested Range Not Satisfiable\r\ncontent-length: ${xml.length}\r\n\r\n${xml}`] }, { pieces: ok('x') });
    expect(await reader.read('k', 'bytes=10-20', undefined)).toBeUndefined();
    expect((await reader.read('k', 'bytes=0-0', undefined))?.toString()).toBe('x');
    expect(server.connections).toBe(1);
  });

  it('turns error answers into errors the store classifies: with a length, chunked, or ended by a close', async () => {
    // The request timeout is far longer than the test's: an answer whose end is missed fails it.
    await start(60_000);
    const xml = (code: string): string => `<?xml version="1.0"?><Error><Code>${code}</Code><Message>m ${code}</Message></Error>`;
    /** In chunks of at most 16 bytes, the last one followed by `trailers`. */
    const chunked = (text: string, trailers = ''): string[] => [
      ...(text.match(/.{1,16}/gs) ?? []).map((piece) => `${piece.length.toString(16)}\r\n${piece}\r\n`),
      `0\r\n${trailers}\r\n`,
    ];
    server.next(
      { pieces: [`HTTP/1.1 404 Not Found\r\ncontent-length: ${xml('NoSuchKey').length}\r\n\r\n`, xml('NoSuchKey')] },
      { pieces: ['HTTP/1.1 412 Precondition Failed\r\ntransfer-encoding: chunked\r\n\r\n', ...chunked(xml('PreconditionFailed'))] },
      { pieces: ['HTTP/1.1 403 Forbidden\r\ntransfer-encoding: chunked\r\n\r\n', ...chunked(xml('AccessDenied'), 'x-checksum: 1\r\n')] },
      { pieces: [`HTTP/1.1 503 Slow Down\r\nconnection: close\r\n\r\n${xml('SlowDown')}`], close: true },
    );
    const failure = async (): Promise<ReturnType<typeof classifyS3Failure>> =>
      classifyS3Failure(await reader.read('k', 'bytes=0-1', 'e').then(() => expect.fail('expected an error'), (e: unknown) => e));
    expect(await failure()).toMatchObject({ kind: 'not-found', transient: false, status: 404, code: 'NoSuchKey', message: 'm NoSuchKey' });
    expect(await failure()).toMatchObject({ kind: 'changed', transient: false, status: 412, code: 'PreconditionFailed', message: 'm PreconditionFailed' });
    expect(await failure()).toMatchObject({ kind: 'access-denied', transient: false, status: 403, code: 'AccessDenied', message: 'm AccessDenied' });
    expect(await failure()).toMatchObject({ kind: 'unavailable', transient: true, status: 503, code: 'SlowDown' });
    // The 404 (read to its length) left its connection usable; a chunked or close-ended error
    // answer is not trusted to have been read to its end, so the 412, the 403 and the 503 closed theirs.
    expect(server.connections).toBe(3);
  }, 15_000);

  it('reports a body cut short as incomplete (retried), and a connection reset as a socket error (retried)', async () => {
    await start();
    server.next({ pieces: ['HTTP/1.1 206 Partial Content\r\ncontent-length: 100\r\n\r\n', 'only forty bytes of the hundred promised'], close: true });
    const cut = await reader.read('k', 'bytes=0-99', undefined).catch((e: unknown) => e);
    expect(cut).toBeInstanceOf(IncompleteBodyError);
    expect(classifyS3Failure(cut)).toMatchObject({ transient: true, kind: 'unavailable' });

    server.next({ pieces: [], close: true });
    const closed = await reader.read('k', 'bytes=0-1', undefined).catch((e: unknown) => e);
    expect(classifyS3Failure(closed)).toMatchObject({ transient: true, kind: 'unavailable' });
  });

  it("signs with the server's time as the clock has it, and sets the clock by an answer refusing the request's time", async () => {
    await start();
    const hour = 3_600_000;
    clock.systemClockOffset = -hour;
    server.next({ pieces: ok('x') });
    await reader.read('k', 'bytes=0-0', undefined);
    expect(Math.abs(signingDates[0]!.getTime() - (Date.now() - hour))).toBeLessThan(5_000);

    // The server's clock is an hour ahead of this host's.
    const serverTime = new Date(Date.now() + hour).toUTCString();
    const xml = '<Error><Code>RequestTimeTooSkewed</Code><Message>too far</Message></Error>';
    server.next({ pieces: [`HTTP/1.1 403 Forbidden\r\ndate: ${serverTime}\r\ncontent-length: ${xml.length}\r\n\r\n${xml}`] });
    const refused = await reader.read('k', 'bytes=0-0', undefined).catch((e: unknown) => e);
    expect(classifyS3Failure(refused)).toMatchObject({ transient: true, kind: 'access-denied', code: 'RequestTimeTooSkewed', status: 403 });
    expect(Math.abs(clock.systemClockOffset - hour)).toBeLessThan(5_000);
    server.next({ pieces: ok('x') });
    await reader.read('k', 'bytes=0-0', undefined);
    expect(Math.abs(signingDates[2]!.getTime() - (Date.now() + hour))).toBeLessThan(5_000);

    // Any other refusal leaves the clock alone.
    const denied = '<Error><Code>AccessDenied</Code></Error>';
    server.next({ pieces: [`HTTP/1.1 403 Forbidden\r\ndate: ${new Date().toUTCString()}\r\ncontent-length: ${denied.length}\r\n\r\n${denied}`] });
    await reader.read('k', 'bytes=0-0', undefined).catch(() => undefined);
    expect(Math.abs(clock.systemClockOffset - hour)).toBeLessThan(5_000);
  });

  it('gives up on an answer that makes no progress for the request timeout', async () => {
    await start(200);
    server.next({ pieces: [], silent: true });
    const began = Date.now();
    const error = await reader.read('k', 'bytes=0-1', undefined).catch((e: unknown) => e);
    expect(classifyS3Failure(error)).toMatchObject({ transient: true, kind: 'unavailable' });
    expect((error as Error).name).toBe('TimeoutError');
    expect(Date.now() - began).toBeLessThan(1_500);
  });

  it('over TLS: the body read in pieces into the buffer, the connection kept, an error answer classified', async () => {
    await start(2_000, true);
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 0x5c);
    big.write('first bytes', 0);
    big.write('last bytes', big.length - 10);
    server.next({ pieces: [`HTTP/1.1 206 Partial Content\r\ncontent-length: ${big.length}\r\n\r\n`, big] });
    server.next({ pieces: ['HTTP/1.1 404 Not Found\r\ncontent-length: 40\r\n\r\n<Error><Code>NoSuchKey</Code></Error>   '] });
    expect((await reader.read('model/weights.bin', `bytes=0-${big.length - 1}`, undefined))?.equals(big)).toBe(true);
    const missing = await reader.read('gone', 'bytes=0-1', undefined).catch((e: unknown) => e);
    expect(classifyS3Failure(missing)).toMatchObject({ kind: 'not-found', status: 404 });
    expect(server.connections).toBe(1);
    expect(server.requests[0]).toContain(`\r\nhost: ${server.url.host}\r\n`);
  });

  it('refuses a successful answer without a length, and an answer that is not HTTP', async () => {
    await start();
    server.next({ pieces: ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'] }, { pieces: ['SSH-2.0-OpenSSH\r\n\r\n'] });
    await expect(reader.read('k', 'bytes=0-4', undefined)).rejects.toThrow(/without Content-Length/);
    await expect(reader.read('k', 'bytes=0-4', undefined)).rejects.toThrow(/not an HTTP answer/);
  });
});
