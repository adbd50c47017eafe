// The one kind of connection pool every client of this tool uses (KSM, Entra, Graph, IAM/STS, Wiz): an
// http.Agent that decides per destination, by the rules of src/http/proxy.ts, whether to connect directly or
// through the proxy, and hands the request to a pool for that route. Through a proxy, https goes through a
// CONNECT tunnel (TLS runs end to end inside it, verified against the same trust store as a direct connection:
// the proxy sees host names, never the traffic) and http as absolute-form requests to the proxy.
//
// The proxy agents are TooTallNate's https-proxy-agent and http-proxy-agent on agent-base, the ones
// @azure/core-rest-pipeline already bundles (same versions, so no second copy). They get the proxy URL without
// its credentials, and the Proxy-Authorization header separately: the libraries' debug output prints the URL.
import { Agent as AgentBase, type AgentConnectOpts } from 'agent-base';
import { Agent as HttpAgent, type AgentOptions, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { isIP, type Socket } from 'node:net';
import { HttpProxyAgent } from 'http-proxy-agent';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { type Proxy, currentProxyRules, proxyFor } from './proxy.js';

/** The proxy could not be reached, or would not open the tunnel. Its message names the proxy without credentials. */
export class ProxyError extends Error {
  override readonly name = 'ProxyError';
}

/** An idle kept-alive connection is closed after this long, before a server's usual 5 s keep-alive ends. */
export const FREE_SOCKET_MS = 4_000;

const clip = (text: string) => text.replace(/\s+/g, ' ').slice(0, 80);

function proxyUrl(proxy: Proxy): string {
  return `${proxy.protocol}//${isIP(proxy.host) === 6 ? `[${proxy.host}]` : proxy.host}:${proxy.port}`;
}

function proxyHeaders(proxy: Proxy): () => Record<string, string> {
  const none: Record<string, string> = {};
  return () => (proxy.auth ? { 'Proxy-Authorization': proxy.auth.reveal() } : none);
}

function unreachable(proxy: Proxy, err: unknown): ProxyError {
  const e = err as NodeJS.ErrnoException;
  return new ProxyError(`cannot reach the proxy ${proxy.display} from ${proxy.variable} (${e.code ?? clip(e.message ?? String(err))})`);
}

/**
 * A CONNECT tunnel through one proxy. The library answers a refused CONNECT by replaying the proxy's reply as if
 * the server had sent it (a 407 would read as the service's own 407); here it is an error that says so.
 */
class Tunnel extends HttpsProxyAgent<string> {
  readonly #proxy: Proxy;

  constructor(proxy: Proxy, options: AgentOptions) {
    super(proxyUrl(proxy), { ...options, headers: proxyHeaders(proxy) });
    this.#proxy = proxy;
  }

  override async connect(req: ClientRequest, opts: AgentConnectOpts): Promise<Socket> {
    let answer: { statusCode?: number; statusText?: string } | undefined;
    const seen = (connect: { statusCode?: number; statusText?: string }) => (answer = connect);
    req.once('proxyConnect', seen);
    let socket: Socket;
    try {
      socket = await super.connect(req, opts);
    } catch (err) {
      throw unreachable(this.#proxy, err);
    } finally {
      req.off('proxyConnect', seen);
    }
    if (answer?.statusCode !== 200) {
      socket.destroy();
      const status = answer?.statusCode ? `HTTP ${answer.statusCode} ${clip(answer.statusText ?? '')}`.trim() : 'no answer';
      throw new ProxyError(`the proxy ${this.#proxy.display} from ${this.#proxy.variable} refused the tunnel to ${opts.host}:${opts.port}: ${status}`);
    }
    return socket;
  }
}

/** Plain-http requests in absolute form through one proxy. */
class Forwarder extends HttpProxyAgent<string> {
  readonly #proxy: Proxy;

  constructor(proxy: Proxy, options: AgentOptions) {
    super(proxyUrl(proxy), { ...options, headers: proxyHeaders(proxy) });
    this.#proxy = proxy;
  }

  override async connect(req: Parameters<HttpProxyAgent<string>['connect']>[0], opts: AgentConnectOpts): Promise<Socket> {
    try {
      return await super.connect(req, opts);
    } catch (err) {
      throw unreachable(this.#proxy, err);
    }
  }
}

/**
 * Routes each connection: directly (a plain https.Agent or http.Agent, as before proxies were read) or through the
 * proxy the rules name for it. One pool per route, each with the options given (keep-alive, socket limits).
 */
export class RoutingAgent extends AgentBase {
  readonly #agentOptions: AgentOptions;
  readonly #routes = new Map<string, HttpAgent>();

  constructor(options: AgentOptions = {}) {
    const agentOptions = { keepAlive: true, timeout: FREE_SOCKET_MS, ...options };
    super(agentOptions);
    this.#agentOptions = agentOptions;
  }

  override connect(_req: ClientRequest, opts: AgentConnectOpts): HttpAgent {
    const secure = opts.secureEndpoint;
    const port = opts.port ?? (secure ? 443 : 80);
    const proxy = proxyFor(currentProxyRules(), secure, opts.host ?? 'localhost', port);
    const key = `${secure ? 'https' : 'http'} ${proxy ? proxy.display : 'direct'}`;
    let agent = this.#routes.get(key);
    if (!agent) {
      const o = this.#agentOptions;
      agent = proxy ? (secure ? new Tunnel(proxy, o) : new Forwarder(proxy, o)) : secure ? new HttpsAgent(o) : new HttpAgent(o);
      this.#routes.set(key, agent);
    }
    return agent;
  }

  /**
   * Hands each request to its route's pool at once, from the request's constructor, as a plain agent is called.
   * agent-base would hand it over a tick later, after the request has written its head; http-proxy-agent rewrites
   * the request line to absolute form in addRequest, so a request it got late on a kept-alive connection to the
   * proxy would go out in origin form (the proxy answers 500).
   */
  addRequest(req: ClientRequest, options: AgentConnectOpts): void {
    const opts = { ...options, secureEndpoint: this.isSecureEndpoint(options) } as AgentConnectOpts;
    (this.connect(req, opts) as unknown as { addRequest(r: ClientRequest, o: AgentConnectOpts): void }).addRequest(req, opts);
  }

  override destroy(): void {
    for (const agent of this.#routes.values()) agent.destroy();
    this.#routes.clear();
    super.destroy();
  }
}

let shared: RoutingAgent | undefined;

/** The process's pool for the clients that nobody closes (Entra, Graph, Wiz); idle connections end on their own. */
export function sharedAgent(): RoutingAgent {
  return (shared ??= new RoutingAgent());
}
