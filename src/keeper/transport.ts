// The HTTPS transport for KSM requests, handed to the SDK through its `queryFunction` option. The SDK builds,
// encrypts and signs every request itself and only asks us to carry the bytes; its own transport has no
// timeout (a hung Keeper would hold the gateway's script slot forever) and opens a new TLS connection per
// request. This one sends the same headers, bounds each request by the run's deadline and reuses one
// connection for the run, through the proxy the gateway's environment names for Keeper's host, if any
// (src/http/agent.ts). TLS verification stays on: trust comes from Node's store and NODE_EXTRA_CA_CERTS.
import { request } from 'node:https';
import type { EncryptedPayload, KeeperHttpResponse, TransmissionKey } from '@keeper-security/secrets-manager-core';
import type { Deadline } from '../deadline.js';
import { FREE_SOCKET_MS, RoutingAgent } from '../http/agent.js';
import { MAX_REPLY_BYTES, ReplyTooLargeError } from '../http/reply-limit.js';

/** A KSM request that did not complete in time; the SDK passes it through unchanged. */
export class KsmTimeoutError extends Error {
  override readonly name = 'KsmTimeoutError';
}

/** The connection broke before a complete answer arrived. */
export class KsmConnectionError extends Error {
  override readonly name = 'KsmConnectionError';
}

/** The server had closed the kept-alive connection before our request reached it. */
class StaleConnectionError extends KsmConnectionError {}

export interface KsmTransportOptions {
  deadline: Deadline;
  /** Upper bound for one request, before the deadline shortens it. */
  requestTimeoutMs: number;
  /** Called once per request, for the step log and the benchmark. */
  onRequest?: (endpoint: string) => void;
}

export type QueryFunction = (url: string, transmissionKey: TransmissionKey, payload: EncryptedPayload) => Promise<KeeperHttpResponse>;

/** Keeper refused a request as throttled. */
export interface KsmThrottle {
  endpoint: string;
  /** 429 from Keeper now, 403 before KSM-1395. */
  status: number;
  /** The reply's `retry_after`, when it had a positive one. */
  retryAfterMs?: number;
}

/**
 * Keeper's throttle reply: 403 or 429 with a JSON body whose `error` (or `result_code`) is "throttled" and an
 * optional `retry_after` in seconds, as the SDKs read it (secrets-manager sdk/javascript/packages/core/src/keeper.ts
 * parseThrottle; KSM-1395 for 429). Undefined for anything else.
 */
export function parseThrottle(endpoint: string, status: number, data: Uint8Array | undefined): KsmThrottle | undefined {
  if ((status !== 403 && status !== 429) || !data || data.length === 0) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    return undefined;
  }
  if (!body || typeof body !== 'object') return undefined;
  const { error, result_code: resultCode, retry_after: retryAfter } = body as Record<string, unknown>;
  if ((resultCode ?? error) !== 'throttled') return undefined;
  const seconds = Number(retryAfter);
  return { endpoint, status, ...(Number.isFinite(seconds) && seconds > 0 ? { retryAfterMs: seconds * 1000 } : {}) };
}

/** KSM endpoints that change nothing, and so may be sent twice. */
const READS = new Set(['get_secret', 'get_folders']);

export function createKsmTransport(options: KsmTransportOptions): { query: QueryFunction; close(): void; lastStatus(): number | undefined; lastThrottle(): KsmThrottle | undefined } {
  // An idle kept-alive connection is closed after FREE_SOCKET_MS (the agent's timeout only ends free sockets).
  const agent = new RoutingAgent({ keepAlive: true, maxSockets: 1, timeout: FREE_SOCKET_MS });
  // The SDK throws a non-200 reply as an Error holding only the body; whether Keeper refused a write (4xx) or
  // failed with it in an unknown state (5xx, no reply) is this status.
  let last: number | undefined;
  let throttle: KsmThrottle | undefined;
  // Keeper answers a throttled request with 429 now (secrets-manager PR #1161, KSM-1395: "A fix changed the shared
  // response code to 429"), but SDK 17.5.0, the newest on npm, retries only a 403 throttle and throws a 429 at once,
  // so the run would fail without waiting. The SDK is shown a 403 instead: its own retry loop then re-encrypts and
  // re-signs the request with a new transmission key, and waits through `throttleSleep` (vault.ts), which honours
  // retry_after and the run's deadline. `lastStatus` keeps the real status.
  const query: QueryFunction = async (url, transmissionKey, payload) => {
    last = undefined;
    throttle = undefined;
    const endpoint = url.slice(url.lastIndexOf('/') + 1);
    const seen = (res: KeeperHttpResponse): KeeperHttpResponse => {
      last = res.statusCode;
      throttle = parseThrottle(endpoint, res.statusCode, res.data);
      return throttle && res.statusCode === 429 ? { ...res, statusCode: 403 } : res;
    };
    try {
      return seen(await send(url, transmissionKey, payload));
    } catch (err) {
      // A kept-alive connection the server closed while idle fails the next request with ECONNRESET (Node's
      // documented race). A reset after the server applied the request looks the same, so only a read is sent
      // again; a write's outcome stays the caller's to judge. Idle sockets are also dropped before a server's
      // usual 5 s keep-alive ends (FREE_SOCKET_MS), which keeps writes out of the race in the first place.
      if (!(err instanceof StaleConnectionError) || !READS.has(endpoint)) throw err;
      return seen(await send(url, transmissionKey, payload));
    }
  };
  const send: QueryFunction = (url, transmissionKey, payload) => {
    const endpoint = url.slice(url.lastIndexOf('/') + 1);
    options.onRequest?.(endpoint);
    const timeoutMs = options.deadline.timeout(options.requestTimeoutMs);
    return new Promise<KeeperHttpResponse>((resolve, reject) => {
      const body = Buffer.from(payload.payload);
      const req = request(url, {
        method: 'POST',
        agent,
        headers: {
          'Content-Type': 'application/octet-stream',
          'Content-Length': body.length,
          'User-Agent': `Node/${process.version}`,
          PublicKeyId: String(transmissionKey.publicKeyId),
          TransmissionKey: Buffer.from(transmissionKey.encryptedKey).toString('base64'),
          Authorization: `Signature ${Buffer.from(payload.signature).toString('base64')}`,
        },
      });
      const timer = setTimeout(() => req.destroy(new KsmTimeoutError(`KSM ${endpoint} did not answer within ${timeoutMs} ms`)), timeoutMs);
      let gotResponse = false;
      req.on('response', (res) => {
        gotResponse = true;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_REPLY_BYTES) {
            clearTimeout(timer);
            req.destroy();
            return reject(new KsmConnectionError(new ReplyTooLargeError(`KSM ${endpoint}`).message));
          }
          chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(timer);
          if (!res.complete) return reject(new KsmConnectionError(`KSM ${endpoint}: the connection closed mid-answer`));
          resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, data: Buffer.concat(chunks) });
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(err instanceof KsmTimeoutError ? err : new KsmConnectionError(`KSM ${endpoint}: ${err.message}`));
        });
      });
      req.on('error', (err) => {
        clearTimeout(timer);
        const code = (err as NodeJS.ErrnoException).code;
        if (req.reusedSocket && code === 'ECONNRESET' && !gotResponse) return reject(new StaleConnectionError(`KSM ${endpoint}: ECONNRESET on a reused connection`));
        reject(err instanceof KsmTimeoutError ? err : new KsmConnectionError(`KSM ${endpoint}: ${code ?? err.message}`));
      });
      req.end(body);
    });
  };
  return { query, close: () => agent.destroy(), lastStatus: () => last, lastThrottle: () => throttle };
}
