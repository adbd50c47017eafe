// The KSM transport: a read on a kept-alive connection the server dropped is retried once on a fresh one;
// a write, or a reset on a fresh connection, is not.
import assert from 'node:assert/strict';
import { createServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, test } from 'node:test';
import type { EncryptedPayload, TransmissionKey } from '@keeper-security/secrets-manager-core';
import { Deadline } from '../../src/deadline.js';
import { createKsmTransport } from '../../src/keeper/transport.js';
import { sandboxTlsMaterial } from '../../src/sandbox/tls.js';

let url: string;
let requests = 0;
/** When set, the server drops the connection of the next request on a reused socket without answering. */
let dropNextReused = false;
let dropEvery = false;
/** When set, the server answers every request with this status and JSON body instead of "ok". */
let answer: { status: number; body: string } | undefined;
const seen = new WeakSet<Socket>();
const tls = sandboxTlsMaterial();
const server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
  requests += 1;
  const reused = seen.has(req.socket);
  seen.add(req.socket);
  if (dropEvery || (dropNextReused && reused)) {
    dropNextReused = false;
    req.socket.destroy();
    return;
  }
  req.resume();
  req.on('end', () => {
    if (!answer) return res.end('ok');
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(answer.body);
  });
});

before(async () => {
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  url = `https://localhost:${(server.address() as AddressInfo).port}/api/rest/sm/v1/get_secret`;
});
after(() => new Promise<void>((done) => server.close(() => done())));

const key = { publicKeyId: 10, encryptedKey: new Uint8Array([1, 2, 3]) } as unknown as TransmissionKey;
const payload = { payload: new Uint8Array([4, 5]), signature: new Uint8Array([6]) } as unknown as EncryptedPayload;

test('a reused connection reset before any answer is retried once, on a fresh connection', async () => {
  const t = createKsmTransport({ deadline: new Deadline(30_000), requestTimeoutMs: 5_000 });
  try {
    requests = 0;
    assert.equal((await t.query(url, key, payload)).statusCode, 200);
    dropNextReused = true;
    const second = await t.query(url, key, payload);
    assert.equal(second.statusCode, 200);
    assert.equal(requests, 3, 'the dropped request was sent again once');
  } finally {
    t.close();
  }
});

test('a write is never sent twice: the reset may have come after Keeper applied it', async () => {
  const t = createKsmTransport({ deadline: new Deadline(30_000), requestTimeoutMs: 5_000 });
  try {
    requests = 0;
    assert.equal((await t.query(url, key, payload)).statusCode, 200);
    dropNextReused = true;
    await assert.rejects(t.query(url.replace('get_secret', 'update_secret'), key, payload), (err: Error) => err.name === 'KsmConnectionError');
    assert.equal(requests, 2, 'the write was sent once');
  } finally {
    t.close();
  }
});

test('a reset on a fresh connection is not retried: the caller decides', async () => {
  const t = createKsmTransport({ deadline: new Deadline(30_000), requestTimeoutMs: 5_000 });
  try {
    requests = 0;
    dropEvery = true;
    await assert.rejects(t.query(url, key, payload), (err: Error) => err.name === 'KsmConnectionError');
    assert.equal(requests, 1);
  } finally {
    dropEvery = false;
    t.close();
  }
});

test("Keeper's 429 throttle reaches the SDK as the 403 it retries (KSM-1395); the real status and retry_after are kept", async () => {
  const t = createKsmTransport({ deadline: new Deadline(30_000), requestTimeoutMs: 5_000 });
  const cases: Array<[number, string, number, { endpoint: string; status: number; retryAfterMs?: number } | undefined]> = [
    [429, '{"error":"throttled","message":"throttled"}', 403, { endpoint: 'get_secret', status: 429 }],
    [429, '{"result_code":"throttled","retry_after":2}', 403, { endpoint: 'get_secret', status: 429, retryAfterMs: 2000 }],
    [403, '{"error":"throttled","retry_after":"3"}', 403, { endpoint: 'get_secret', status: 403, retryAfterMs: 3000 }],
    // Not throttles: another 429, a throttle body under a status the SDKs do not treat as one, a body that is not JSON.
    [429, '{"error":"rate_limited"}', 429, undefined],
    [502, '{"error":"throttled"}', 502, undefined],
    [429, 'throttled', 429, undefined],
  ];
  try {
    for (const [status, body, seen, throttle] of cases) {
      answer = { status, body };
      const res = await t.query(url, key, payload);
      assert.equal(res.statusCode, seen, `${status} ${body}`);
      assert.equal(Buffer.from(res.data).toString('utf8'), body);
      assert.equal(t.lastStatus(), status);
      assert.deepEqual(t.lastThrottle(), throttle, `${status} ${body}`);
    }
    answer = undefined;
    assert.equal((await t.query(url, key, payload)).statusCode, 200);
    assert.equal(t.lastThrottle(), undefined, 'a later answer clears it');
  } finally {
    answer = undefined;
    t.close();
  }
});
