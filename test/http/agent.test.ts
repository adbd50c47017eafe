// RoutingAgent (src/http/agent.ts) against a real forward proxy and real servers on loopback: the routes the
// rotation tests cannot reach (plain http in absolute form, a pooled tunnel), and what a refusing proxy becomes.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import { ProxyError, RoutingAgent } from '../../src/http/agent.js';
import { agentFetch } from '../../src/http/fetch.js';
import { useProxyEnvironment } from '../../src/http/proxy.js';
import { sandboxTlsMaterial } from '../../src/sandbox/tls.js';
import { type ForwardProxy, PROXY_SOURCE_ADDRESS, deadPort, startForwardProxy } from '../helpers/forward-proxy.js';

interface Origin {
  url: string;
  /** The peer address of every connection it accepted. */
  peers: string[];
  paths: string[];
  close(): Promise<void>;
}

async function startOrigin(secure: boolean): Promise<Origin> {
  const peers: string[] = [];
  const paths: string[] = [];
  const sockets = new Set<Socket>();
  const onRequest = (req: IncomingMessage, res: import('node:http').ServerResponse) => {
    paths.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`hello ${req.method} ${req.url}`);
  };
  const tls = sandboxTlsMaterial();
  const server: Server = secure ? createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, onRequest) : createServer(onRequest);
  server.on('connection', (s: Socket) => {
    peers.push((s.remoteAddress ?? '').replace(/^::ffff:/, ''));
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${secure ? 'https://localhost' : 'http://127.0.0.1'}:${port}`,
    peers,
    paths,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('RoutingAgent', () => {
  let proxy: ForwardProxy;
  let plain: Origin;
  let secure: Origin;
  let agent: RoutingAgent;

  before(async () => {
    proxy = await startForwardProxy({ credentials: { user: 'gw', password: 'agent-Passw0rd' } });
    plain = await startOrigin(false);
    secure = await startOrigin(true);
  });
  after(async () => {
    useProxyEnvironment({});
    await Promise.all([proxy.close(), plain.close(), secure.close()]);
  });
  afterEach(() => {
    agent?.destroy();
    proxy.clear();
    plain.peers.length = 0;
    secure.peers.length = 0;
  });

  const withAuth = (url: string, password = 'agent-Passw0rd') => url.replace('//', `//gw:${password}@`);

  test('http through HTTP_PROXY: absolute-form requests with the credentials, from the proxy, on a kept-alive connection too', async () => {
    useProxyEnvironment({ HTTP_PROXY: withAuth(proxy.url) });
    agent = new RoutingAgent({ keepAlive: true });
    const send = agentFetch(agent);
    const res = await send(`${plain.url}/path?q=1`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'hello GET /path?q=1');
    // The second request reuses the connection to the proxy: its request line must be absolute-form all the same.
    const again = await send(`${plain.url}/two`, { method: 'POST', body: 'Action=Two' });
    assert.equal(await again.text(), 'hello POST /two');
    assert.deepEqual(proxy.requests, [`${plain.url}/path?q=1`, `${plain.url}/two`]);
    assert.deepEqual(proxy.connects, []);
    const auth = `Basic ${Buffer.from('gw:agent-Passw0rd').toString('base64')}`;
    assert.deepEqual(proxy.authorizations, [auth, auth]);
    assert.ok(plain.peers.length >= 1 && plain.peers.every((p) => p === PROXY_SOURCE_ADDRESS));
  });

  test('https through HTTPS_PROXY: one CONNECT, and the tunnel is kept for the next request', async () => {
    useProxyEnvironment({ HTTPS_PROXY: withAuth(proxy.url) });
    agent = new RoutingAgent({ keepAlive: true, maxSockets: 1 });
    const get = agentFetch(agent);
    for (const path of ['/one', '/two']) {
      const res = await get(`${secure.url}${path}`);
      assert.equal(await res.text(), `hello GET ${path}`);
    }
    assert.deepEqual(proxy.connects, [new URL(secure.url).host]);
    assert.deepEqual(secure.peers, [PROXY_SOURCE_ADDRESS]);
  });

  test('a host in NO_PROXY goes direct, beside one that does not', async () => {
    useProxyEnvironment({ HTTPS_PROXY: withAuth(proxy.url), HTTP_PROXY: withAuth(proxy.url), NO_PROXY: '127.0.0.1' });
    agent = new RoutingAgent();
    const get = agentFetch(agent);
    assert.equal((await get(`${plain.url}/direct`)).status, 200);
    assert.equal((await get(`${secure.url}/proxied`)).status, 200);
    assert.deepEqual(plain.peers, ['127.0.0.1']);
    assert.deepEqual(proxy.requests, []);
    assert.deepEqual(proxy.connects, [new URL(secure.url).host]);
  });

  test('a refused CONNECT is a ProxyError naming the proxy and the status, never the password', async () => {
    useProxyEnvironment({ HTTPS_PROXY: withAuth(proxy.url, 'wr0ng-Passw0rd') });
    agent = new RoutingAgent();
    const err = await agentFetch(agent)(`${secure.url}/x`).then(
      () => assert.fail('the request went through'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof TypeError && err.message === 'fetch failed');
    const cause = (err as { cause?: unknown }).cause;
    assert.ok(cause instanceof ProxyError);
    assert.equal(cause.message, `the proxy ${proxy.url} from HTTPS_PROXY refused the tunnel to localhost:${new URL(secure.url).port}: HTTP 407 Proxy Authentication Required`);
    assert.deepEqual(secure.peers, [], 'the origin was never reached');
  });

  test('a proxy that is down is a ProxyError saying so', async () => {
    const port = await deadPort();
    useProxyEnvironment({ HTTPS_PROXY: `http://127.0.0.1:${port}` });
    agent = new RoutingAgent();
    const err = await agentFetch(agent)(`${secure.url}/x`).then(
      () => assert.fail('the request went through'),
      (e: unknown) => (e as { cause?: unknown }).cause,
    );
    assert.ok(err instanceof ProxyError);
    assert.equal(err.message, `cannot reach the proxy http://127.0.0.1:${port} from HTTPS_PROXY (ECONNREFUSED)`);
  });

  test('no proxy variables: every connection direct', async () => {
    useProxyEnvironment({});
    agent = new RoutingAgent();
    assert.equal((await agentFetch(agent)(`${secure.url}/d`)).status, 200);
    assert.deepEqual(secure.peers, ['127.0.0.1']);
    assert.deepEqual(proxy.connects, []);
  });
});
