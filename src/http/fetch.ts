// `fetch` for the clients that speak it (the Graph client, Wiz), sent through a RoutingAgent (agent.ts) so that
// they follow the proxy rules like every other client. Node 20's global fetch cannot be given an http.Agent, and
// its proxy-aware dispatcher lives in the undici package, ~400 KiB minified: more than a whole script. So this is
// fetch's contract, as far as these callers use it, over node:http(s): string or byte bodies, the abort signal
// (rejecting with its reason, as fetch does), a WHATWG Response with a streamed body, network failures as
// `TypeError('fetch failed', { cause })`. It never follows a redirect (both callers ask for `manual`: a redirect
// must not carry a token or a secret elsewhere), and it asks for no compression.
import { type Agent, type IncomingMessage, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';

export type Fetch = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** Statuses whose Response may have no body (the Response constructor refuses one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

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

function toResponse(res: IncomingMessage, method: string): Response {
  const status = res.statusCode ?? 0;
  const headers = new Headers();
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
  const empty = NULL_BODY.has(status) || method === 'HEAD';
  if (empty) res.resume();
  const body = empty ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
  return new Response(body, { status, statusText: res.statusMessage ?? '', headers });
}

/** A fetch whose connections come from `agent`. */
export function agentFetch(agent: Agent): Fetch {
  return (input, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(String(input));
      const method = (init.method ?? 'GET').toUpperCase();
      const signal = init.signal ?? undefined;
      if (signal?.aborted) return reject(signal.reason);
      const send = url.protocol === 'https:' ? httpsRequest : url.protocol === 'http:' ? httpRequest : undefined;
      if (!send) return reject(failed(new Error(`unsupported protocol ${url.protocol}`)));
      let body: Buffer | undefined;
      const headers = new Headers(init.headers);
      try {
        body = bodyBytes(init.body);
      } catch (err) {
        return reject(err);
      }
      if (init.body instanceof URLSearchParams && !headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
      else if (typeof init.body === 'string' && !headers.has('content-type')) headers.set('content-type', 'text/plain;charset=UTF-8');
      if (body || method === 'POST' || method === 'PUT' || method === 'PATCH') headers.set('content-length', String(body?.length ?? 0));
      const req = send(url, { method, headers: Object.fromEntries(headers), agent });
      let response: IncomingMessage | undefined;
      // After the headers, an abort ends the body stream with the signal's reason; before, the request.
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
        try {
          resolve(toResponse(res, method));
        } catch (err) {
          // A status or header value a Response cannot hold is no HTTP answer these services give.
          res.destroy();
          reject(failed(err));
        }
      });
      req.end(body);
    });
}
