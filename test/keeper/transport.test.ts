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
  req.on('end', () => res.end('ok'));
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
