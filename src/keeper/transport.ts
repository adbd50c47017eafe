// The HTTPS transport for KSM requests, handed to the SDK through its `queryFunction` option. The SDK builds,
// encrypts and signs every request itself and only asks us to carry the bytes; its own transport has no
// timeout (a hung Keeper would hold the gateway's script slot forever) and opens a new TLS connection per
// request. This one sends the same headers, bounds each request by the run's deadline and reuses one
// connection for the run. TLS verification stays on: trust comes from the system store or NODE_EXTRA_CA_CERTS.
import { Agent, request } from 'node:https';
import type { EncryptedPayload, KeeperHttpResponse, TransmissionKey } from '@keeper-security/secrets-manager-core';
import type { Deadline } from '../deadline.js';
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

/** KSM endpoints that change nothing, and so may be sent twice. */
const READS = new Set(['get_secret', 'get_folders']);
/** An idle kept-alive connection is closed after this long (the agent's timeout only ends free sockets). */
const FREE_SOCKET_MS = 4_000;

export function createKsmTransport(options: KsmTransportOptions): { query: QueryFunction; close(): void; lastStatus(): number | undefined } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1, timeout: FREE_SOCKET_MS });
  // The SDK throws a non-200 reply as an Error holding only the body; whether Keeper refused a write (4xx) or
  // failed with it in an unknown state (5xx, no reply) is this status.
  let last: number | undefined;
  const query: QueryFunction = async (url, transmissionKey, payload) => {
    last = undefined;
    try {
      const res = await send(url, transmissionKey, payload);
      last = res.statusCode;
      return res;
    } catch (err) {
      // A kept-alive connection the server closed while idle fails the next request with ECONNRESET (Node's
      // documented race). A reset after the server applied the request looks the same, so only a read is sent
      // again; a write's outcome stays the caller's to judge. Idle sockets are also dropped before a server's
      // usual 5 s keep-alive ends (FREE_SOCKET_MS), which keeps writes out of the race in the first place.
      const endpoint = url.slice(url.lastIndexOf('/') + 1);
      if (!(err instanceof StaleConnectionError) || !READS.has(endpoint)) throw err;
      const res = await send(url, transmissionKey, payload);
      last = res.statusCode;
      return res;
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
  return { query, close: () => agent.destroy(), lastStatus: () => last };
}
