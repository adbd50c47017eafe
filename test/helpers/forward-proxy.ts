// A real forward proxy on loopback for the proxy tests: TooTallNate's `proxy` (CONNECT tunnels and absolute-form
// http requests, as Squid serves them), listening on 127.0.0.1 and connecting onward from 127.0.0.2. The sandbox
// binds 127.0.0.1 and records each connection's peer address, so a connection from 127.0.0.2 came through this
// proxy and one from 127.0.0.1 went around it: no timing, no port bookkeeping.
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { createProxy } from 'proxy';
import type { Sandbox } from '../../src/sandbox/sandbox.js';
import type { TlsMaterial } from '../../src/sandbox/tls.js';

/** The address the proxy connects onward from; the sandbox never sees it otherwise. */
export const PROXY_SOURCE_ADDRESS = '127.0.0.2';

export interface ForwardProxy {
  /** `http://127.0.0.1:port` (or `https://localhost:port` for a TLS proxy), without credentials. */
  url: string;
  port: number;
  /** Every CONNECT target (`host:port`), in order, answered or refused. */
  connects: string[];
  /** Every absolute-form request URL. */
  requests: string[];
  /** The Proxy-Authorization header of each CONNECT or request ('' when none was sent). */
  authorizations: string[];
  clear(): void;
  close(): Promise<void>;
}

export interface ForwardProxyOptions {
  /** Require `Proxy-Authorization: Basic base64(user:password)`; anything else gets 407. */
  credentials?: { user: string; password: string };
  /** Serve the proxy itself over TLS with this certificate (an `https://` proxy). */
  tls?: TlsMaterial;
}

export async function startForwardProxy(options: ForwardProxyOptions = {}): Promise<ForwardProxy> {
  const server: Server = options.tls ? createHttpsServer({ cert: options.tls.certPem, key: options.tls.keyPem }) : createHttpServer();
  const connects: string[] = [];
  const requests: string[] = [];
  const authorizations: string[] = [];
  const sockets = new Set<Socket>();
  const note = (req: IncomingMessage) => authorizations.push(String(req.headers['proxy-authorization'] ?? ''));
  // Registered before the proxy's own listeners, so every attempt is seen, refused ones included.
  server.on('connect', (req: IncomingMessage) => {
    connects.push(req.url ?? '');
    note(req);
  });
  server.on('request', (req: IncomingMessage) => {
    requests.push(req.url ?? '');
    note(req);
  });
  server.on(options.tls ? 'secureConnection' : 'connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const proxy = createProxy(server);
  proxy.localAddress = PROXY_SOURCE_ADDRESS;
  const wanted = options.credentials;
  if (wanted) {
    const expected = `Basic ${Buffer.from(`${wanted.user}:${wanted.password}`).toString('base64')}`;
    proxy.authenticate = (req) => req.headers['proxy-authorization'] === expected;
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: options.tls ? `https://localhost:${port}` : `http://127.0.0.1:${port}`,
    port,
    connects,
    requests,
    authorizations,
    clear: () => {
      connects.length = 0;
      requests.length = 0;
      authorizations.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port nothing listens on (bound, then released): a proxy that is down. */
export async function deadPort(): Promise<number> {
  const server = createHttpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Every proxy variable empty, so a developer's own shell settings cannot leak into a test's run. */
export const NO_PROXY_ENV: Record<string, string> = { HTTPS_PROXY: '', https_proxy: '', HTTP_PROXY: '', http_proxy: '', NO_PROXY: '', no_proxy: '' };

/**
 * Everything the sandbox served since its log was last cleared came through `proxy`: a CONNECT (https) or
 * absolute-form requests (http) for every service that was called, no CONNECT to anything else, and every
 * connection any service accepted came from the proxy's address, so none went around it.
 */
export function assertAllThroughProxy(sandbox: Sandbox, proxy: ForwardProxy): void {
  const called = new Set(sandbox.log.entries().map((e) => e.service));
  assert.ok(called.size > 0, 'the sandbox served something');
  for (const service of called) {
    const url = new URL(sandbox.urls[service]!);
    if (url.protocol === 'https:') assert.ok(proxy.connects.includes(url.host), `a CONNECT to ${service} (${url.host}); CONNECTs: ${proxy.connects.join(', ')}`);
    else assert.ok(proxy.requests.some((r) => r.startsWith(`${url.origin}/`)), `absolute-form requests to ${service} (${url.origin})`);
  }
  const hosts = new Set(Object.values(sandbox.urls).map((u) => new URL(u).host));
  for (const target of proxy.connects) assert.ok(hosts.has(target), `a CONNECT to ${target}, which is no sandbox host`);
  for (const c of sandbox.log.connections()) assert.equal(c.remoteAddress, PROXY_SOURCE_ADDRESS, `${c.service} accepted a connection from ${c.remoteAddress}: it went around the proxy`);
}
