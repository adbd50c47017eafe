// How @kubernetes/client-node's requests travel: through the HTTP library the generated client takes in its
// configuration (`httpApi`), in place of its default, node-fetch with an https.Agent of its own. Why:
// - Proxies: the client's agent knows only the kubeconfig's `proxy-url`; ours (src/http/agent.ts) follows
//   HTTPS_PROXY/NO_PROXY like every other client of this tool, tunnels TLS end to end, and names the proxy when
//   it fails. The cluster's CA, client certificate and server name from the kubeconfig go with each request, so
//   they apply inside a proxy's tunnel as well as on a direct connection.
// - Bounds: every reply body is capped (src/http/reply-limit.ts) and every call has a timeout from the run's
//   deadline; node-fetch reads bodies whole and the client sets no timeout.
// The client still does everything else: its kubeconfig handling (tokens, token files, exec plugins, client
// certificates), request building and (de)serialization.
import { type IncomingMessage, request as httpRequest } from 'node:http';
import { type Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { PromiseHttpLibrary, RequestContext } from '@kubernetes/client-node';
import { ResponseContext } from '@kubernetes/client-node';
import type { RoutingAgent } from '../../http/agent.js';
import { capStream } from '../../http/reply-limit.js';

/** The TLS options of the kubeconfig's cluster and user, as the client put them on the agent it made. */
export type ClusterTls = Pick<SecureContextOptions, 'ca' | 'cert' | 'key' | 'pfx' | 'passphrase'> & { rejectUnauthorized?: boolean; servername?: string };

const TLS_KEYS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

/** The TLS options of the agent the client's authentication step made for this request (a plain https.Agent). */
export function tlsOf(agent: unknown): ClusterTls {
  const options = (agent as HttpsAgent | undefined)?.options as Record<string, unknown> | undefined;
  const out: Record<string, unknown> = {};
  for (const k of TLS_KEYS) if (options?.[k] !== undefined) out[k] = options[k];
  return out as ClusterTls;
}

/** A call that got no reply in time: its outcome is unknown. */
export class KubernetesTimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

export class KubernetesHttp implements PromiseHttpLibrary {
  constructor(
    private readonly agent: RoutingAgent,
    /** The timeout for the next call, in ms (the run's deadline decides). */
    private readonly timeoutMs: () => number,
  ) {}

  send(request: RequestContext): Promise<ResponseContext> {
    const url = new URL(request.getUrl());
    const body = request.getBody();
    if (body !== undefined && typeof body !== 'string') return Promise.reject(new Error('keeper-rotate sends only JSON bodies to the Kubernetes API'));
    const tls = tlsOf(request.getAgent());
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    const timeout = this.timeoutMs();
    return new Promise<ResponseContext>((resolve, reject) => {
      const signal = request.getSignal();
      const req = send(url, { method: request.getHttpMethod(), headers: request.getHeaders(), agent: this.agent, ...tls, timeout, ...(signal ? { signal } : {}) }, (res: IncomingMessage) => {
        const capped = res.pipe(capStream(`Kubernetes API ${url.host}`));
        const chunks: Buffer[] = [];
        res.on('error', (err) => capped.destroy(err));
        capped.on('data', (c: Buffer) => chunks.push(c));
        capped.on('error', (err) => {
          res.destroy();
          reject(err);
        });
        capped.on('end', () => {
          const data = Buffer.concat(chunks);
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
          resolve(new ResponseContext(res.statusCode ?? 0, headers, { text: async () => data.toString('utf8'), binary: async () => data }));
        });
      });
      // The socket's timeout is an idle one: a reply that trickles in a byte at a time never trips it. This bounds
      // the whole call, reply included.
      const timedOut = () => new KubernetesTimeoutError(`no reply from the Kubernetes API at ${url.host} within ${Math.round(timeout / 1000)} s`);
      const timer = setTimeout(() => req.destroy(timedOut()), timeout);
      const settle = <T,>(fn: (v: T) => void) => (v: T) => {
        clearTimeout(timer);
        fn(v);
      };
      resolve = settle(resolve);
      reject = settle(reject);
      req.on('timeout', () => req.destroy(timedOut()));
      req.on('error', reject);
      req.end(body);
    });
  }
}
