// `fetch` for the clients that speak it (the Graph client, Wiz), sent through a RoutingAgent (agent.ts) so that
// they follow the proxy rules like every other client. Node 20's global fetch cannot be given an http.Agent, and
// its proxy-aware dispatcher lives in the undici package, ~400 KiB minified: more than a whole script. So this is
// fetch's contract, as far as these callers use it, over node:http(s): string or byte bodies, the abort signal
// (rejecting with its reason, as fetch does), network failures as `TypeError('fetch failed', { cause })`. It never
// follows a redirect (both callers ask for `manual`: a redirect must not carry a token or a secret elsewhere), and
// it asks for no compression.
//
// The reply is not a WHATWG Response but the part of one these callers read (FetchReply): Node builds Response,
// Headers, Request and FormData from undici, and touching any of them, even `typeof Request`, loads and starts
// all of undici: ~40 ms of CPU and 10 MB of peak memory per run on Node 26, a fifth of a rotation. Its body is
// read from the Node stream at most up to the cap (src/http/reply-limit.ts), once.
import { type Agent, type IncomingMessage, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { MAX_REPLY_BYTES, ReplyTooLargeError } from './reply-limit.js';

/** A reply's headers, read as fetch's Headers reads them: names in any case, repeated values joined by ", ". */
export class ReplyHeaders {
  readonly #values = new Map<string, string>();

  constructor(raw: readonly string[] = []) {
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      const seen = this.#values.get(name);
      this.#values.set(name, seen === undefined ? raw[i + 1]! : `${seen}, ${raw[i + 1]!}`);
    }
  }

  get(name: string): string | null {
    return this.#values.get(name.toLowerCase()) ?? null;
  }

  has(name: string): boolean {
    return this.#values.has(name.toLowerCase());
  }

  forEach(each: (value: string, name: string) => void): void {
    for (const [name, value] of this.#values) each(value, name);
  }
}

/** Statuses that have no body (fetch's Response has a null body for them). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/**
 * What these callers read of a fetch Response: status, headers, and the body, whole and capped. The body is read
 * as soon as the reply arrives (both callers read every body whole anyway), so a failure while it streams (an
 * abort of the request's signal, a dropped connection, the cap) is always caught, and reading it is reading bytes.
 */
export class FetchReply {
  readonly status: number;
  readonly statusText: string;
  readonly headers: ReplyHeaders;
  readonly #bytes: Promise<Buffer>;
  #read: Buffer | undefined;

  constructor(res: IncomingMessage, method: string) {
    this.status = res.statusCode ?? 0;
    this.statusText = res.statusMessage ?? '';
    this.headers = new ReplyHeaders(res.rawHeaders);
    const bodiless = NULL_BODY.has(this.status) || method === 'HEAD';
    this.#bytes = new Promise<Buffer>((resolve, reject) => {
      if (bodiless) {
        res.resume();
        return resolve(Buffer.alloc(0));
      }
      const chunks: Buffer[] = [];
      let seen = 0;
      res.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (seen > MAX_REPLY_BYTES) return void res.destroy(new ReplyTooLargeError('the reply'));
        chunks.push(chunk);
      });
      // An abort of the signal destroys the reply with its reason, which is what fetch rejects the body with.
      res.on('error', reject);
      res.on('end', () => resolve((this.#read = Buffer.concat(chunks))));
      res.on('close', () => {
        if (!res.readableEnded) reject(failed(new Error('the connection closed before the body ended')));
      });
    });
    // Read or not, a failed body is no unhandled rejection.
    this.#bytes.catch(() => undefined);
  }

  get ok(): boolean {
    return this.status >= 200 && this.status <= 299;
  }

  /** The body's bytes; past the cap, a ReplyTooLargeError naming the reply `what`. */
  async bytes(what = 'the reply'): Promise<Buffer> {
    try {
      return await this.#bytes;
    } catch (err) {
      throw err instanceof ReplyTooLargeError ? new ReplyTooLargeError(what) : err;
    }
  }

  async text(): Promise<string> {
    return (await this.bytes()).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const b = await this.bytes();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }

  async blob(): Promise<Blob> {
    return new Blob([await this.bytes()]);
  }

  /**
   * The body once read, as an opaque Blob (null when empty or not read): the Graph client hands `body` on for a
   * reply that is not JSON, and a caller describes that reply by its headers, never by its bytes.
   */
  get body(): Blob | null {
    return this.#read && this.#read.length > 0 ? new Blob([this.#read]) : null;
  }
}

export type Fetch = (input: string | URL, init?: RequestInit) => Promise<FetchReply>;

function failed(cause: unknown): TypeError {
  return new TypeError('fetch failed', { cause });
}

function bodyBytes(body: RequestInit['body']): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof URLSearchParams) return Buffer.from(body.toString(), 'utf8');
  throw new TypeError('this fetch sends string, URLSearchParams or byte bodies only');
}

/** Request headers as a plain object with lower-case names: from an object, pairs, or anything with entries(). */
function headerObject(init: RequestInit['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  if (!init) return out;
  const pairs: Iterable<readonly [string, string]> = Array.isArray(init)
    ? (init as Array<[string, string]>)
    : typeof (init as { entries?: unknown }).entries === 'function'
      ? (init as { entries(): Iterable<[string, string]> }).entries()
      : Object.entries(init as Record<string, string>);
  for (const [name, value] of pairs) out[name.toLowerCase()] = String(value);
  return out;
}

/** A fetch whose connections come from `agent`. */
export function agentFetch(agent: Agent): Fetch {
  return (input, init = {}) =>
    new Promise<FetchReply>((resolve, reject) => {
      const url = new URL(String(input));
      const method = (init.method ?? 'GET').toUpperCase();
      const signal = init.signal ?? undefined;
      if (signal?.aborted) return reject(signal.reason);
      const send = url.protocol === 'https:' ? httpsRequest : url.protocol === 'http:' ? httpRequest : undefined;
      if (!send) return reject(failed(new Error(`unsupported protocol ${url.protocol}`)));
      let body: Buffer | undefined;
      const headers = headerObject(init.headers);
      try {
        body = bodyBytes(init.body);
      } catch (err) {
        return reject(err);
      }
      if (init.body instanceof URLSearchParams && !('content-type' in headers)) headers['content-type'] = 'application/x-www-form-urlencoded;charset=UTF-8';
      else if (typeof init.body === 'string' && !('content-type' in headers)) headers['content-type'] = 'text/plain;charset=UTF-8';
      if (body || method === 'POST' || method === 'PUT' || method === 'PATCH') headers['content-length'] = String(body?.length ?? 0);
      const req = send(url, { method, headers, agent });
      let response: IncomingMessage | undefined;
      // After the headers, an abort ends the body with the signal's reason; before, the request.
      const onAbort = () => (response ? response.destroy(signal!.reason) : req.destroy(signal!.reason));
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => signal?.removeEventListener('abort', onAbort);
      req.on('error', (err) => {
        done();
        reject(signal?.aborted && err === signal.reason ? err : failed(err));
      });
      req.on('response', (res) => {
        response = res;
        res.on('close', done);
        resolve(new FetchReply(res, method));
      });
      req.end(body);
    });
}
