// agentFetch (src/http/fetch.ts) keeps the parts of fetch's contract the Graph client and Wiz rely on: bodies and
// their content types, the abort signal's reason before and after the headers, network failures as
// TypeError('fetch failed') with the cause, no redirects followed, bodiless statuses; and answers with a
// FetchReply (no fetch class, so no undici), whose body is read once and capped.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { RoutingAgent } from '../../src/http/agent.js';
import { agentFetch } from '../../src/http/fetch.js';
import { MAX_REPLY_BYTES, ReplyTooLargeError } from '../../src/http/reply-limit.js';
import { useProxyEnvironment } from '../../src/http/proxy.js';
import { deadPort } from '../helpers/forward-proxy.js';

describe('agentFetch', () => {
  let base = '';
  let close: () => Promise<void>;
  const agent = new RoutingAgent();
  const fetchVia = agentFetch(agent);
  const seen: Array<{ method: string; headers: IncomingMessage['headers']; body: string }> = [];

  before(async () => {
    useProxyEnvironment({});
    const sockets = new Set<Socket>();
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        if (req.url === '/redirect') return res.writeHead(302, { location: 'http://elsewhere.invalid/' }).end();
        if (req.url === '/empty') return res.writeHead(204).end();
        if (req.url === '/hang') return; // never answers
        if (req.url === '/twice') {
          res.setHeader('X-Twice', ['a', 'b']);
          return res.writeHead(200, { 'content-type': 'text/plain' }).end('plain');
        }
        if (req.url === '/big') {
          // One byte over the cap, in pieces; the client stops reading at the cap.
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          const piece = Buffer.alloc(64 * 1024, 0x61);
          let left = MAX_REPLY_BYTES + 1;
          const more = () => {
            while (left > 0) {
              const n = Math.min(left, piece.length);
              left -= n;
              if (!res.write(piece.subarray(0, n))) return void res.once('drain', more);
            }
            res.end();
          };
          res.on('error', () => undefined);
          return more();
        }
        if (req.url === '/half') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('{"partial":'); // and never ends
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json', 'x-twice': 'a' }).end('{"ok":true}');
      });
    });
    server.on('connection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
  });
  after(async () => {
    agent.destroy();
    await close();
  });

  test('a string body with its content type and length; the reply read as fetch reads it', async () => {
    const res = await fetchVia(`${base}/json`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: '{"q":1}' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.deepEqual(await res.json(), { ok: true });
    const req = seen.at(-1)!;
    assert.equal(req.method, 'POST');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers['content-length'], '7');
    assert.equal(req.headers['accept-encoding'], undefined, 'no compression asked for');
    assert.equal(req.body, '{"q":1}');
  });

  test("repeated header values are joined as fetch's Headers joins them, names in any case; the body read once", async () => {
    const res = await fetchVia(`${base}/twice`);
    assert.equal(res.ok, true);
    assert.equal(res.headers.get('x-twice'), 'a, b');
    assert.equal(res.headers.get('X-TWICE'), 'a, b');
    assert.equal(res.headers.has('content-type'), true);
    assert.equal(res.headers.get('absent'), null);
    assert.equal(await res.text(), 'plain');
    assert.equal(await res.text(), 'plain', 'read again, the same bytes');
    assert.equal(await res.body?.text(), 'plain');
  });

  test('a body over the cap fails as too large, named by its reader, and is not kept', async () => {
    const res = await fetchVia(`${base}/big`);
    assert.equal(res.status, 200);
    const err = await res.bytes('Graph example.test').then(
      () => assert.fail('read past the cap'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ReplyTooLargeError);
    assert.match(err.message, /^Graph example\.test: the reply is over 8 MiB/);
    assert.equal(res.body, null);
  });

  test('URLSearchParams is sent as a form', async () => {
    await fetchVia(`${base}/form`, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', a: 'b c' }) });
    const req = seen.at(-1)!;
    assert.equal(req.headers['content-type'], 'application/x-www-form-urlencoded;charset=UTF-8');
    assert.equal(req.body, 'grant_type=client_credentials&a=b+c');
  });

  test('a redirect is returned, not followed; a 204 has no body', async () => {
    const r = await fetchVia(`${base}/redirect`, { redirect: 'manual' });
    assert.equal(r.status, 302);
    assert.equal(r.headers.get('location'), 'http://elsewhere.invalid/');
    const e = await fetchVia(`${base}/empty`);
    assert.equal(e.status, 204);
    assert.equal(e.body, null);
  });

  test('an abort before the headers rejects with the signal reason', async () => {
    const err = await fetchVia(`${base}/hang`, { signal: AbortSignal.timeout(100) }).then(
      () => assert.fail('answered'),
      (e: unknown) => e,
    );
    assert.equal((err as Error).name, 'TimeoutError');
  });

  test('an abort while the body streams fails the body with the signal reason', async () => {
    const controller = new AbortController();
    const res = await fetchVia(`${base}/half`, { signal: controller.signal });
    assert.equal(res.status, 200);
    const reading = res.text();
    controller.abort(new Error('stop reading'));
    await assert.rejects(reading, /stop reading/);
  });

  test('a connection failure is TypeError("fetch failed") with the cause, as fetch throws it', async () => {
    const port = await deadPort();
    const err = await fetchVia(`http://127.0.0.1:${port}/`).then(
      () => assert.fail('answered'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof TypeError);
    assert.equal(err.message, 'fetch failed');
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  });
});
