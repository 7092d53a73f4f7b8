// Ranged GETs from a custom S3 endpoint (http:// or https://, path-style addressing as the SDK
// uses for one) that read the body straight into the buffer the caller gets, through the socket's
// `onread`: no buffer per network read, no copy out of it. The SDK's response stream allocates a
// buffer for every read and the body is then copied out of them; for 16 MiB chunks that cost
// about three times the CPU per byte (measured here over HTTP: 512 MiB in 16 MiB ranges, 4 in
// flight, ~1.15 CPU-s through the SDK, ~0.42 here). AWS's own endpoints (no custom endpoint) keep
// the SDK, which resolves their virtual-hosted addresses.
//
// Requests are signed by the S3 client's own signer, with the server's time as the client estimates
// it (an answer rejecting the request's time corrects that estimate, as the SDK's answers do).
// Keep-alive connections are pooled (one closed by the server while idle leaves the pool).
// Failures are shaped like the SDK's (an S3 error Code and $metadata.httpStatusCode, a socket's
// errno, TimeoutError, IncompleteBody), so the store classifies and retries them alike.
import net from 'node:net';
import tls from 'node:tls';
import { IncompleteBodyError, isClockSkewCode } from './s3-errors.js';

/** Status line and headers must fit in this (S3 sends well under 2 KiB). */
const HEAD_LIMIT = 16 * 1024;
/** An error answer's body (an XML document of a few hundred bytes) is read up to this. */
const ERROR_BODY_LIMIT = 64 * 1024;
/** Idle connections kept for the next requests. */
const IDLE_CONNECTIONS = 16;
/** Buffers handed back (recycle) kept for the next bodies of their size: as many as reads in flight. */
const SPARE_BUFFERS = 6;

/** A request as the SDK's signers take it. */
interface SignableRequest {
  method: string;
  protocol: string;
  hostname: string;
  port: number;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
}

/** The S3 client's signer (SignatureV4): adds the date, the credentials' token and the signature. */
export interface RequestSigner {
  sign(request: SignableRequest, options: { signingDate: Date }): Promise<{ headers: Record<string, string> }>;
}

/** The S3 client's estimate of the server's clock (its config holds it as the SDK keeps it). */
export interface ServerClock {
  /** Milliseconds the server's clock is ahead of this host's. */
  systemClockOffset: number;
}

export interface HttpRangeReaderOptions {
  /** http(s)://host[:port] of the S3 service; requests are path-style (/bucket/key). */
  endpoint: URL;
  /** Certificates trusted besides Node's defaults, for https (tests; a mount trusts the defaults, as the SDK does). */
  ca?: string | Buffer;
  bucket: string;
  /** The S3 client's signer (made on first use). */
  signer: () => Promise<RequestSigner>;
  /** Requests are signed with this clock's time; a clock-skew rejection corrects it. */
  clock: ServerClock;
  connectTimeoutMs: number;
  /** A request fails when its connection shows no progress for this long. */
  requestTimeoutMs: number;
}

/** A failed request in the SDK's shape: the S3 error code as name/Code, the status in $metadata. */
export class HttpStatusError extends Error {
  readonly Code: string;
  readonly $metadata: { httpStatusCode: number };
  constructor(
    status: number,
    code: string,
    message: string,
    /** The answer's Date header: the server's time. */
    readonly serverTime?: string,
  ) {
    super(message || code);
    this.name = code;
    this.Code = code;
    this.$metadata = { httpStatusCode: status };
  }
}

/** The answer to one request as it arrives. */
interface Answer {
  /** Bytes of the status line and headers received so far (the head phase), or undefined once parsed. */
  headBytes: number | undefined;
  status: number;
  keepAlive: boolean;
  /** Where the body goes: the caller's buffer (2xx) or the error text. */
  body: Buffer;
  expected: number;
  filled: number;
  chunked: boolean;
  /** The Date header. */
  date?: string;
  resolve: (body: Buffer | undefined) => void;
  reject: (error: Error) => void;
}

/** One keep-alive connection: one request at a time, its answer read into the caller's buffer. */
class Connection {
  readonly socket: net.Socket;
  private readonly head = Buffer.allocUnsafe(HEAD_LIMIT);
  private answer: Answer | undefined;
  private connected = false;
  closed = false;

  constructor(
    options: HttpRangeReaderOptions,
    private readonly onIdleClose: (c: Connection) => void,
    /** A buffer of `length` bytes for a successful answer's body. */
    private readonly bodyBuffer: (length: number) => Buffer,
  ) {
    const { hostname, port, protocol } = options.endpoint;
    const secure = protocol === 'https:';
    const onread: net.OnReadOpts = {
      buffer: () => this.nextBuffer(),
      callback: (n: number) => {
        this.received(n);
        return true;
      },
    };
    const host = hostname.replace(/^\[(.*)\]$/, '$1'); // an IPv6 address without its brackets
    // tls.connect passes `onread` on to the socket as net.connect does (its types leave it out;
    // the TLS test of this module checks that the body still lands in the caller's buffer).
    const secureOptions: tls.ConnectionOptions & { onread: net.OnReadOpts } = {
      host,
      port: Number(port || 443),
      servername: net.isIP(host) ? undefined : host,
      ca: withDefaultCAs(options.ca),
      onread,
    };
    this.socket = secure ? tls.connect(secureOptions) : net.connect({ host, port: Number(port || 80), noDelay: true, onread });
    // No progress for the timeout while connecting, waiting, reading or idle in the pool: closed.
    this.socket.setTimeout(options.connectTimeoutMs);
    this.socket.on('timeout', () =>
      this.fail(this.connected ? timeoutError('on the connection', options.requestTimeoutMs) : timeoutError('connecting', options.connectTimeoutMs)),
    );
    this.socket.once(secure ? 'secureConnect' : 'connect', () => {
      this.connected = true;
      this.socket.setNoDelay(true);
      this.socket.setTimeout(options.requestTimeoutMs);
    });
    this.socket.on('error', (error) => this.fail(error));
    this.socket.on('end', () => this.fail(connectionClosed()));
    this.socket.on('close', () => this.fail(connectionClosed()));
  }

  /** Sends `request`; resolves with a successful answer's body (undefined for 416). */
  send(request: string): Promise<Buffer | undefined> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(connectionClosed());
      this.answer = {
        headBytes: 0,
        status: 0,
        keepAlive: true,
        body: this.head,
        expected: 0,
        filled: 0,
        chunked: false,
        resolve: (body) => {
          this.answer = undefined;
          resolve(body);
        },
        reject: (error) => {
          this.answer = undefined;
          reject(error);
        },
      };
      this.socket.write(request);
    });
  }

  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private nextBuffer(): Buffer {
    const a = this.answer;
    if (a === undefined || a.headBytes !== undefined) return this.head.subarray(a?.headBytes ?? 0);
    return a.body.subarray(a.filled);
  }

  private received(n: number): void {
    const a = this.answer;
    if (a === undefined) return this.fail(new Error('the server sent bytes nobody asked for'));
    if (a.headBytes !== undefined) {
      a.headBytes += n;
      this.parseHead(a);
    } else {
      a.filled += n;
    }
    if (this.answer === a && a.headBytes === undefined) this.maybeDone(a);
  }

  private parseHead(a: Answer): void {
    const end = this.head.subarray(0, a.headBytes).indexOf('\r\n\r\n');
    if (end < 0) {
      if (a.headBytes === HEAD_LIMIT) this.fail(new Error(`the answer's headers exceed ${HEAD_LIMIT} bytes`));
      return;
    }
    const lines = this.head.toString('latin1', 0, end).split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!)?.[1]);
    if (!Number.isInteger(status)) return this.fail(new Error(`not an HTTP answer: ${JSON.stringify(lines[0])}`));
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const length = headers.get('content-length');
    a.status = status;
    a.date = headers.get('date');
    a.keepAlive = headers.get('connection')?.toLowerCase() !== 'close';
    a.chunked = headers.get('transfer-encoding')?.toLowerCase().includes('chunked') ?? false;
    const ok = status >= 200 && status < 300;
    if (ok && (length === undefined || a.chunked)) return this.fail(new Error('a ranged GET answer without Content-Length'));
    const declared = length === undefined ? undefined : Number(length);
    if (declared !== undefined && !(declared >= 0)) return this.fail(new Error(`a bad Content-Length: ${length}`));
    a.expected = declared === undefined ? ERROR_BODY_LIMIT : ok ? declared : Math.min(declared, ERROR_BODY_LIMIT);
    // What is not read of an error answer would be taken for the start of the next answer.
    if (!ok && (declared === undefined || declared > ERROR_BODY_LIMIT)) a.keepAlive = false;
    a.body = ok ? this.bodyBuffer(a.expected) : Buffer.allocUnsafe(ERROR_BODY_LIMIT);
    const early = a.headBytes! - end - 4;
    if (early > a.expected) a.keepAlive = false;
    a.filled = this.head.copy(a.body, 0, end + 4, end + 4 + Math.min(early, a.expected));
    a.headBytes = undefined;
  }

  private maybeDone(a: Answer): void {
    const ok = a.status >= 200 && a.status < 300;
    const complete = a.chunked ? dechunked(a.body.subarray(0, a.filled)).complete : a.filled >= a.expected;
    if (!complete) {
      if (a.filled >= a.body.length) this.fail(new Error('an error answer too long to read'));
      return;
    }
    if (!a.keepAlive) this.destroy();
    if (ok) return a.resolve(a.body);
    if (a.status === 416) return a.resolve(undefined);
    a.reject(statusError(a, errorText(a)));
  }

  /** The connection is unusable: fail the request in flight (if any) and close. */
  private fail(error: Error): void {
    const a = this.answer;
    const wasIdle = a === undefined && !this.closed;
    if (!this.closed) this.destroy();
    if (a !== undefined && a.headBytes === undefined) {
      // Headers came: a success cut short, or an error answer ended by the close.
      const ok = a.status >= 200 && a.status < 300;
      if (a.status === 416) a.resolve(undefined);
      else a.reject(ok ? new IncompleteBodyError(a.expected, a.filled) : statusError(a, errorText(a)));
    } else if (a !== undefined) {
      a.reject(error);
    } else if (wasIdle) {
      this.onIdleClose(this);
    }
  }
}

export class HttpRangeReader {
  private readonly idle: Connection[] = [];
  private readonly spare: Buffer[] = [];
  private readonly hostHeader: string;
  private signer: Promise<RequestSigner> | undefined;
  private closed = false;

  constructor(private readonly options: HttpRangeReaderOptions) {
    if (!HttpRangeReader.serves(options.endpoint)) throw new Error(`HttpRangeReader cannot serve ${options.endpoint.href}`);
    this.hostHeader = options.endpoint.host;
  }

  /** Whether the endpoint is one this reader can talk to (http or https, no path). */
  static serves(endpoint: URL): boolean {
    return (endpoint.protocol === 'http:' || endpoint.protocol === 'https:') && (endpoint.pathname === '/' || endpoint.pathname === '');
  }

  /**
   * The bytes `range` ("bytes=a-b", "bytes=-n") names of object `key`, if it is version `etag`
   * (when given): a buffer of exactly the answer's Content-Length. Undefined when the server
   * answers 416 (the range starts past the end).
   */
  async read(key: string, range: string, etag: string | undefined): Promise<Buffer | undefined> {
    const path = `/${this.options.bucket}/${key.split('/').map(encodeSegment).join('/')}`;
    const headers: Record<string, string> = { host: this.hostHeader, range, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' };
    if (etag !== undefined) headers['if-match'] = `"${etag}"`;
    const { protocol, hostname, port } = this.options.endpoint;
    const unsigned: SignableRequest = {
      method: 'GET',
      protocol,
      hostname,
      port: Number(port || (protocol === 'https:' ? 443 : 80)),
      path,
      query: {},
      headers,
    };
    this.signer ??= this.options.signer();
    const { clock } = this.options;
    const signed = await (await this.signer).sign(unsigned, { signingDate: new Date(Date.now() + clock.systemClockOffset) });
    const request = [`GET ${path} HTTP/1.1`, ...Object.entries(signed.headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
    const c = this.idle.pop() ?? new Connection(this.options, (idle) => this.forget(idle), (length) => this.bodyBuffer(length));
    try {
      return await c.send(request);
    } catch (error) {
      // The server refused the request's time: sign the next one (the store's retry) with its own.
      const serverTime = error instanceof HttpStatusError && isClockSkewCode(error.Code) ? Date.parse(error.serverTime ?? '') : NaN;
      if (!Number.isNaN(serverTime)) clock.systemClockOffset = serverTime - Date.now();
      throw error;
    } finally {
      // An error answer read to its end leaves the connection as usable as a success does.
      if (c.closed || this.closed || this.idle.length >= IDLE_CONNECTIONS) c.destroy();
      else this.idle.push(c);
    }
  }

  /** A buffer a read returned, which nothing uses any more: the next body of its size goes into it. */
  recycle(buffer: Buffer): void {
    if (buffer.byteLength === 0) return;
    // The oldest goes first: a buffer of a size no read asks for again (a file's last chunk) does not stay.
    if (this.spare.length >= SPARE_BUFFERS) this.spare.shift();
    this.spare.push(buffer);
  }

  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.destroy();
    this.spare.length = 0;
  }

  private bodyBuffer(length: number): Buffer {
    const at = this.spare.findIndex((b) => b.byteLength === length);
    return at >= 0 ? this.spare.splice(at, 1)[0]! : Buffer.allocUnsafe(length);
  }

  private forget(c: Connection): void {
    const at = this.idle.indexOf(c);
    if (at >= 0) this.idle.splice(at, 1);
  }
}

/** A key's path segment as S3 signs it: everything but unreserved characters percent-encoded. */
function encodeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function errorText(a: Answer): string {
  const received = a.body.subarray(0, Math.min(a.filled, a.expected));
  return (a.chunked ? dechunked(received).data : received).toString('utf8');
}

/**
 * A chunked body as received so far: its data, and whether it is complete (the last, empty chunk
 * and its trailers have come). A garbled size line counts as the end: what came is all there is.
 */
function dechunked(raw: Buffer): { data: Buffer; complete: boolean } {
  const pieces: Buffer[] = [];
  const result = (complete: boolean) => ({ data: Buffer.concat(pieces), complete });
  for (let at = 0; ; ) {
    const lineEnd = raw.indexOf('\r\n', at);
    if (lineEnd < 0) return result(false);
    const size = Number.parseInt(raw.toString('latin1', at, lineEnd), 16);
    if (Number.isNaN(size)) return result(true);
    // The last chunk: trailer lines (if any), then an empty line.
    if (size === 0) return result(raw.indexOf('\r\n\r\n', lineEnd) >= 0);
    const start = lineEnd + 2;
    pieces.push(raw.subarray(start, Math.min(start + size, raw.length)));
    if (raw.length < start + size + 2) return result(false);
    at = start + size + 2;
  }
}

function statusError(a: Answer, xml: string): HttpStatusError {
  const field = (name: string): string => new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1] ?? '';
  return new HttpStatusError(a.status, field('Code') || `HTTP${a.status}`, field('Message'), a.date);
}

/** `ca` added to Node's default certificates (tls.connect's `ca` replaces them otherwise). */
function withDefaultCAs(ca: string | Buffer | undefined): string[] | undefined {
  return ca === undefined ? undefined : [...tls.rootCertificates, ca.toString()];
}

function timeoutError(what: string, ms: number): Error {
  return Object.assign(new Error(`no progress ${what} for ${ms} ms`), { name: 'TimeoutError' });
}

function connectionClosed(): Error {
  return Object.assign(new Error('the server closed the connection'), { code: 'ECONNRESET' });
}
