// The KSM sandbox against the real, unmodified @keeper-security/secrets-manager-core over HTTPS: if the SDK can
// read, update and run rotation transactions here, and fails here the way it fails against Keeper, the rotation
// scripts' tests mean something. Raw requests cover what the SDK never sends (malformed payloads).
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type RawReply, rawKsmCall as rawCall } from '../helpers/ksm-raw.js';
import { randomBytes } from 'node:crypto';
import {
  KeeperThrottleError,
  UpdateTransactionType,
  completeTransaction,
  getFolders,
  getSecrets,
  loadJsonConfig,
  updateSecret2,
  type KeeperRecord,
  type SecretManagerOptions,
} from '@keeper-security/secrets-manager-core';
import type { RecordData } from '../../src/keeper/record-data.js';
import { ControlApi } from '../../src/sandbox/control.js';
import { FaultPlan, RequestLog } from '../../src/sandbox/faults.js';
import { startSandbox } from '../../src/sandbox/sandbox.js';
import { serve, type RunningService } from '../../src/sandbox/service.js';
import { sandboxTlsMaterial } from '../../src/sandbox/tls.js';
import { KSM_DEFAULT_BUDGET, KsmBudgetGate } from '../../src/sandbox/ksm/budget.js';
import {
  KsmService,
  fromBase64,
  gcmDecrypt,
  gcmEncrypt,
  type GatewayConfig,
  type TransactionModel,
} from '../../src/sandbox/ksm/index.js';

const faults = new FaultPlan();
const log = new RequestLog();
const ksm = new KsmService();
let running: RunningService;
let host: string;
let folderUid: string;
let config: GatewayConfig;

before(async () => {
  running = await serve({ service: ksm, faults, log, tls: sandboxTlsMaterial() });
  host = `localhost:${running.port}`;
  folderUid = ksm.createFolder('Rotation');
  config = ksm.createClient(host);
});

after(async () => {
  await running.close();
});

afterEach(() => {
  faults.clear();
  ksm.setTransactionModel('pending');
  ksm.resetBudget();
});

function options(cfg: GatewayConfig = config, extra: Partial<SecretManagerOptions> = {}): SecretManagerOptions {
  // A fresh storage per call, as a script loading the Gateway config would have.
  return { storage: loadJsonConfig(JSON.stringify(cfg)), ...extra };
}

function pamUser(title: string, password: string): RecordData {
  return {
    title,
    type: 'pamUser',
    fields: [
      { type: 'login', value: ['svc-app'] },
      { type: 'password', value: [password] },
    ],
    custom: [
      { type: 'text', label: 'client_secret_id', value: ['id-1'] },
      { type: 'secret', label: 'client_secret', value: ['s3cret'] },
    ],
    notes: '',
  };
}

/** Seeds a pamUser record, in the shared folder unless `where` says `folderUid: undefined` (shared to the app directly). */
function seed(password = 'old-password', where: { folderUid?: string; editable?: boolean } = {}) {
  const folder = 'folderUid' in where ? where.folderUid : folderUid;
  return ksm.seedRecord({
    data: pamUser(`user ${randomBytes(3).toString('hex')}`, password),
    ...(folder !== undefined ? { folderUid: folder } : {}),
    ...(where.editable !== undefined ? { editable: where.editable } : {}),
  });
}

const passwordOf = (data: { fields: { type: string; value: unknown[] }[] }) => data.fields.find((f) => f.type === 'password')?.value[0];

function setPassword(record: KeeperRecord, password: string): KeeperRecord {
  const field = (record.data as RecordData).fields.find((f) => f.type === 'password');
  assert.ok(field, 'seeded records have a password field');
  field.value = [password];
  return record;
}

async function fetchOne(uid: string, cfg: GatewayConfig = config): Promise<KeeperRecord> {
  const { records } = await getSecrets(options(cfg), [uid]);
  assert.equal(records.length, 1, `expected record ${uid}`);
  return records[0]!;
}

/** The SDK throws the server's error body as the message; this returns it parsed. */
async function ksmFailure(call: Promise<unknown>): Promise<Record<string, unknown>> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof Error, 'expected the SDK call to fail');
  return JSON.parse(err.message) as Record<string, unknown>;
}

async function failure(call: Promise<unknown>): Promise<Error> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof Error, 'expected the call to fail');
  return err;
}

const statuses = (operation: string) => log.entries({ service: 'ksm', operation }).map((e) => e.status);

describe('reading records', () => {
  test('one getSecrets call returns a folder-shared and an app-shared record with their data and revisions', async () => {
    const inFolder = seed('folder-pw');
    const direct = seed('direct-pw', { folderUid: undefined });
    const before = log.entries({ operation: 'get_secret' }).length;
    const secrets = await getSecrets(options(), [inFolder.uid, direct.uid, 'AAAAAAAAAAAAAAAAAAAAAA']);
    assert.equal(log.entries({ operation: 'get_secret' }).length, before + 1);
    assert.deepEqual(secrets.appData, { title: 'keeper-rotate sandbox', type: 'app' });
    assert.deepEqual(secrets.records.map((r) => r.recordUid).sort(), [inFolder.uid, direct.uid].sort());

    const a = secrets.records.find((r) => r.recordUid === inFolder.uid)!;
    assert.deepEqual(a.data, ksm.readRecord(inFolder.uid)!.data);
    assert.equal(a.revision, inFolder.revision);
    assert.equal(a.folderUid, folderUid);
    assert.equal(passwordOf(a.data), 'folder-pw');

    const b = secrets.records.find((r) => r.recordUid === direct.uid)!;
    assert.deepEqual(b.data, ksm.readRecord(direct.uid)!.data);
    assert.equal(b.revision, direct.revision);
    assert.equal(b.folderUid, undefined);
  });

  test('requestedRecords returns only those records; without it the app gets every record it can see', async () => {
    const one = seed();
    const two = seed('x', { folderUid: undefined });
    const only = await getSecrets(options(), [one.uid]);
    assert.deepEqual(only.records.map((r) => r.recordUid), [one.uid]);
    const all = await getSecrets(options());
    const uids = all.records.map((r) => r.recordUid);
    assert.ok(uids.includes(one.uid) && uids.includes(two.uid));
    assert.equal(uids.length, ksm.listRecords().length);
  });

  test('an app sees only the folders and records shared with it', async () => {
    const otherFolder = ksm.createFolder('Other');
    const hidden = seed();
    const viaFolder = seed('pw', { folderUid: otherFolder });
    const viaShare = seed('pw', { folderUid: undefined });
    const restricted = ksm.createClient(host, { folders: [otherFolder], records: [viaShare.uid] });
    const { records } = await getSecrets(options(restricted));
    assert.deepEqual(records.map((r) => r.recordUid).sort(), [viaFolder.uid, viaShare.uid].sort());
    assert.ok(!records.some((r) => r.recordUid === hidden.uid));
  });

  test('getFolders returns the shared folders with their names', async () => {
    const folders = await getFolders(options());
    const names = new Map(folders.map((f) => [f.folderUid, f.name]));
    assert.equal(names.get(folderUid), 'Rotation');
    assert.equal(folders.length, ksm.listFolders().length);
  });
});

describe('updating records', () => {
  test('a plain update is applied at once and bumps the revision', async () => {
    const seeded = seed();
    const record = await fetchOne(seeded.uid);
    await updateSecret2(options(), setPassword(record, 'new-password'));
    const stored = ksm.readRecord(seeded.uid)!;
    assert.equal(passwordOf(stored.data), 'new-password');
    assert.ok(stored.revision > seeded.revision);
    assert.equal(stored.transaction, undefined);
    const fresh = await fetchOne(seeded.uid);
    assert.equal(passwordOf(fresh.data), 'new-password');
    assert.equal(fresh.revision, stored.revision);
  });

  test('an update with a stale revision is refused and changes nothing', async () => {
    const seeded = seed();
    const record = await fetchOne(seeded.uid);
    await updateSecret2(options(), setPassword(record, 'first'));
    const afterFirst = ksm.readRecord(seeded.uid)!;
    // The SDK does not bump record.revision after a save: a second save of the same object is stale.
    const body = await ksmFailure(updateSecret2(options(), setPassword(record, 'second')));
    assert.equal(body.error, 'invalid_revision');
    assert.equal(body.location, 'default exception manager - api validation exception');
    assert.equal(statuses('update_secret').at(-1), 400);
    assert.deepEqual(ksm.readRecord(seeded.uid), afterFirst);
  });

  test('a read-only record cannot be updated', async () => {
    const seeded = seed('pw', { folderUid, editable: false });
    const record = await fetchOne(seeded.uid);
    const body = await ksmFailure(updateSecret2(options(), setPassword(record, 'nope')));
    assert.equal(body.error, 'access_denied');
    assert.equal(statuses('update_secret').at(-1), 403);
    assert.equal(passwordOf(ksm.readRecord(seeded.uid)!.data), 'pw');
  });
});

describe('rotation transactions', () => {
  for (const model of ['pending', 'immediate'] as const satisfies readonly TransactionModel[]) {
    test(`${model}: update with a rotation transaction, then finalize`, async () => {
      ksm.setTransactionModel(model);
      const seeded = seed('old');
      const record = await fetchOne(seeded.uid);
      await updateSecret2(options(), setPassword(record, 'new'), { transactionType: UpdateTransactionType.Rotation });

      const open = ksm.readRecord(seeded.uid)!;
      assert.equal(open.transaction?.model, model);
      assert.equal(open.transaction?.type, 'rotation');
      const during = await fetchOne(seeded.uid);
      if (model === 'pending') {
        assert.equal(passwordOf(open.data), 'old');
        assert.equal(open.revision, seeded.revision);
        assert.equal(passwordOf(open.transaction!.data), 'new');
        assert.equal(open.transaction!.revision, seeded.revision);
        assert.equal(passwordOf(during.data), 'old');
        assert.equal(during.revision, seeded.revision);
      } else {
        assert.equal(passwordOf(open.data), 'new');
        assert.ok(open.revision > seeded.revision);
        assert.equal(passwordOf(open.transaction!.data), 'old');
        assert.equal(open.transaction!.revision, seeded.revision);
        assert.equal(passwordOf(during.data), 'new');
        assert.equal(during.revision, open.revision);
      }

      await completeTransaction(options(), seeded.uid, false);
      const done = ksm.readRecord(seeded.uid)!;
      assert.equal(done.transaction, undefined);
      assert.equal(passwordOf(done.data), 'new');
      if (model === 'pending') assert.ok(done.revision > seeded.revision);
      else assert.equal(done.revision, open.revision);
      const fresh = await fetchOne(seeded.uid);
      assert.equal(passwordOf(fresh.data), 'new');
      assert.equal(fresh.revision, done.revision);
    });

    test(`${model}: update with a rotation transaction, then roll back`, async () => {
      ksm.setTransactionModel(model);
      const seeded = seed('old');
      const record = await fetchOne(seeded.uid);
      await updateSecret2(options(), setPassword(record, 'new'), { transactionType: UpdateTransactionType.Rotation });
      const open = ksm.readRecord(seeded.uid)!;
      assert.equal(passwordOf(open.data), model === 'pending' ? 'old' : 'new');

      await completeTransaction(options(), seeded.uid, true);
      const done = ksm.readRecord(seeded.uid)!;
      assert.equal(done.transaction, undefined);
      assert.equal(passwordOf(done.data), 'old');
      if (model === 'pending') assert.equal(done.revision, seeded.revision);
      else assert.ok(done.revision > open.revision, 'an undone immediate update still moves the revision forward');
      const fresh = await fetchOne(seeded.uid);
      assert.equal(passwordOf(fresh.data), 'old');
      assert.equal(fresh.revision, done.revision);
      // The record is writable again with the revision a fresh read returns.
      await updateSecret2(options(), setPassword(fresh, 'after-rollback'));
      assert.equal(passwordOf(ksm.readRecord(seeded.uid)!.data), 'after-rollback');
    });

    test(`${model}: while a transaction is open, a second transaction and a plain update are refused`, async () => {
      ksm.setTransactionModel(model);
      const seeded = seed('old');
      await updateSecret2(options(), setPassword(await fetchOne(seeded.uid), 'first'), { transactionType: UpdateTransactionType.Rotation });
      const open = ksm.readRecord(seeded.uid)!;

      // Re-read so the revision is current: the refusal must come from the open transaction, not a stale revision.
      const again = await ksmFailure(
        updateSecret2(options(), setPassword(await fetchOne(seeded.uid), 'second'), { transactionType: UpdateTransactionType.Rotation }),
      );
      assert.equal(again.error, 'transaction_in_progress');
      const plain = await ksmFailure(updateSecret2(options(), setPassword(await fetchOne(seeded.uid), 'plain')));
      assert.equal(plain.error, 'transaction_in_progress');
      assert.deepEqual(ksm.readRecord(seeded.uid), open);

      await completeTransaction(options(), seeded.uid, true);
      assert.equal(ksm.readRecord(seeded.uid)!.transaction, undefined);
    });
  }

  test('finalize and rollback without an open transaction fail', async () => {
    const seeded = seed();
    await fetchOne(seeded.uid);
    const finalize = await ksmFailure(completeTransaction(options(), seeded.uid, false));
    assert.equal(finalize.error, 'no_transaction');
    const rollback = await ksmFailure(completeTransaction(options(), seeded.uid, true));
    assert.equal(rollback.error, 'no_transaction');
    assert.deepEqual(statuses('rollback_secret_update').at(-1), 400);
    assert.equal(ksm.readRecord(seeded.uid)!.revision, seeded.revision);
  });

  test('switching the model leaves an open transaction under the model it started with', async () => {
    ksm.setTransactionModel('pending');
    const seeded = seed('old');
    await updateSecret2(options(), setPassword(await fetchOne(seeded.uid), 'new'), { transactionType: UpdateTransactionType.General });
    ksm.setTransactionModel('immediate');
    assert.equal(ksm.readRecord(seeded.uid)!.transaction?.model, 'pending');
    assert.equal(passwordOf(ksm.readRecord(seeded.uid)!.data), 'old');
    await completeTransaction(options(), seeded.uid, false);
    const done = ksm.readRecord(seeded.uid)!;
    assert.equal(passwordOf(done.data), 'new');
    assert.ok(done.revision > seeded.revision);
  });
});

describe('faults and what the SDK does with them', () => {
  test('status before apply: the SDK throws "unknown ksm error" for an empty body and nothing changes', async () => {
    const seeded = seed();
    const record = await fetchOne(seeded.uid);
    faults.arm({ service: 'ksm', operation: 'update_secret', kind: 'status', status: 500 });
    const err = await failure(updateSecret2(options(), setPassword(record, 'new')));
    assert.equal(err.message, 'unknown ksm error, code 500');
    assert.deepEqual(ksm.readRecord(seeded.uid)!.revision, seeded.revision);
  });

  test('status after apply: the SDK throws the body text although the update was stored', async () => {
    const seeded = seed();
    const record = await fetchOne(seeded.uid);
    const body = '{"error":"bad_gateway","message":"upstream went away"}';
    faults.arm({ service: 'ksm', operation: 'update_secret', kind: 'status', status: 502, body, after: true });
    const err = await failure(updateSecret2(options(), setPassword(record, 'new')));
    assert.equal(err.message, body);
    const stored = ksm.readRecord(seeded.uid)!;
    assert.equal(passwordOf(stored.data), 'new');
    assert.ok(stored.revision > seeded.revision);
  });

  test('throttle, as 429 (what Keeper answers now): SDK 17.5.0 does not retry it and throws the body at once', async () => {
    const seeded = seed('pw');
    const sleeps: number[] = [];
    faults.arm({ service: 'ksm', operation: 'get_secret', kind: 'throttle', retryAfterSeconds: 2 });
    log.clear();
    const body = await ksmFailure(getSecrets(options(config, { throttleSleep: async (ms) => void sleeps.push(ms) }), [seeded.uid]));
    // KSM-1395 (secrets-manager PR #1161): the SDK's 403-only gate; our transport turns it into a retry (vault.test).
    assert.deepEqual(body, { error: 'throttled', message: 'throttled', retry_after: 2 });
    assert.deepEqual(statuses('get_secret'), [429]);
    assert.deepEqual(sleeps, []);
  });

  test('throttle, as 403 (before KSM-1395): the SDK sleeps retry_after (±25%) and retries until it gets through', async () => {
    ksm.setBudget({ status: 403 });
    const seeded = seed('pw');
    const sleeps: number[] = [];
    faults.arm({ service: 'ksm', operation: 'get_secret', kind: 'throttle', retryAfterSeconds: 2, times: 2 });
    log.clear();
    const { records } = await getSecrets(options(config, { throttleSleep: async (ms) => void sleeps.push(ms) }), [seeded.uid]);
    assert.equal(passwordOf(records[0]!.data), 'pw');
    assert.deepEqual(statuses('get_secret'), [403, 403, 200]);
    assert.equal(sleeps.length, 2);
    for (const ms of sleeps) assert.ok(ms >= 1500 && ms <= 2500, `slept ${ms} ms for retry_after 2`);
  });

  test('throttle on update_secret (403): nothing is applied until the retry, which applies once', async () => {
    ksm.setBudget({ status: 403 });
    const seeded = seed();
    const record = await fetchOne(seeded.uid);
    faults.arm({ service: 'ksm', operation: 'update_secret', kind: 'throttle', retryAfterSeconds: 1 });
    log.clear();
    await updateSecret2(options(config, { throttleSleep: async () => {} }), setPassword(record, 'new'));
    assert.deepEqual(statuses('update_secret'), [403, 200]);
    assert.equal(passwordOf(ksm.readRecord(seeded.uid)!.data), 'new');
  });

  test('throttle (403) that never lets up: five retries, then KeeperThrottleError', async () => {
    ksm.setBudget({ status: 403 });
    const sleeps: number[] = [];
    faults.arm({ service: 'ksm', operation: 'get_secret', kind: 'throttle', times: 10 });
    log.clear();
    const err = await failure(getSecrets(options(config, { throttleSleep: async (ms) => void sleeps.push(ms) })));
    assert.ok(err instanceof KeeperThrottleError, `got ${err.name}: ${err.message}`);
    assert.deepEqual(statuses('get_secret'), [403, 403, 403, 403, 403, 403]);
    assert.equal(sleeps.length, 5);
  });

  test('delay: the SDK has no timeout of its own and simply waits', async () => {
    const seeded = seed('pw');
    faults.arm({ service: 'ksm', operation: 'get_secret', kind: 'delay', delayMs: 400 });
    const started = performance.now();
    const record = await fetchOne(seeded.uid);
    assert.ok(performance.now() - started >= 390, 'the reply came before the delay was over');
    assert.equal(passwordOf(record.data), 'pw');
  });

  test('drop before apply: the SDK fails with a socket error and the record is unchanged', async () => {
    const seeded = seed();
    const record = await fetchOne(seeded.uid);
    faults.arm({ service: 'ksm', operation: 'update_secret', kind: 'drop' });
    const err = await failure(updateSecret2(options(), setPassword(record, 'new')));
    assert.match(`${(err as NodeJS.ErrnoException).code} ${err.message}`, /ECONNRESET|socket hang up/);
    assert.equal(ksm.readRecord(seeded.uid)!.revision, seeded.revision);
    // Nothing was applied, so the same save simply works when tried again.
    await updateSecret2(options(), record);
    assert.equal(passwordOf(ksm.readRecord(seeded.uid)!.data), 'new');
  });

  test('drop after apply: the SDK fails, the update is stored, and a blind retry hits a stale revision', async () => {
    const seeded = seed();
    const record = await fetchOne(seeded.uid);
    faults.arm({ service: 'ksm', operation: 'update_secret', kind: 'drop', after: true });
    const err = await failure(updateSecret2(options(), setPassword(record, 'new')));
    assert.match(`${(err as NodeJS.ErrnoException).code} ${err.message}`, /ECONNRESET|socket hang up/);
    const stored = ksm.readRecord(seeded.uid)!;
    assert.equal(passwordOf(stored.data), 'new');
    assert.ok(stored.revision > seeded.revision);
    const retry = await ksmFailure(updateSecret2(options(), record));
    assert.equal(retry.error, 'invalid_revision');
  });

  test('drop after finalize: the transaction is closed although the SDK failed, and a retry finds none', async () => {
    const seeded = seed('old');
    await updateSecret2(options(), setPassword(await fetchOne(seeded.uid), 'new'), { transactionType: UpdateTransactionType.Rotation });
    faults.arm({ service: 'ksm', operation: 'finalize_secret_update', kind: 'drop', after: true });
    await failure(completeTransaction(options(), seeded.uid, false));
    const stored = ksm.readRecord(seeded.uid)!;
    assert.equal(stored.transaction, undefined);
    assert.equal(passwordOf(stored.data), 'new');
    const retry = await ksmFailure(completeTransaction(options(), seeded.uid, false));
    assert.equal(retry.error, 'no_transaction');
  });

  test('corrupt get_secret: the SDK cannot decrypt the reply and throws', async () => {
    const seeded = seed();
    faults.arm({ service: 'ksm', operation: 'get_secret', kind: 'corrupt' });
    const err = await failure(getSecrets(options(), [seeded.uid]));
    assert.match(err.message, /unable to authenticate data/i);
  });

  test('corrupt update_secret: the SDK throws although the update was stored', async () => {
    const seeded = seed();
    const record = await fetchOne(seeded.uid);
    faults.arm({ service: 'ksm', operation: 'update_secret', kind: 'corrupt' });
    const err = await failure(updateSecret2(options(), setPassword(record, 'new')));
    assert.match(err.message, /unable to authenticate data/i);
    assert.equal(passwordOf(ksm.readRecord(seeded.uid)!.data), 'new');
  });
});

describe('request budget', () => {
  const body = (reply: { body?: Buffer | string } | undefined) => JSON.parse(String(reply?.body)) as Record<string, unknown>;

  test("on by default at Keeper's 100 requests per 10 s, per client and endpoint; once throttled, only 10 s of silence lets a client in", () => {
    let now = 0;
    const gate = new KsmBudgetGate({}, () => now);
    assert.deepEqual(gate.budget, KSM_DEFAULT_BUDGET);
    for (let i = 0; i < 100; i++) assert.equal(gate.charge('c1', 'get_secret'), undefined, `request ${i + 1}`);
    const refused = gate.charge('c1', 'get_secret');
    assert.equal(refused?.status, 429);
    assert.equal(refused?.headers?.['content-type'], 'application/json');
    assert.deepEqual(body(refused), { error: 'throttled', message: 'throttled' }, 'no retry_after: Keeper sends none');
    assert.equal(gate.charge('c1', 'update_secret'), undefined, 'another endpoint has its own count');
    assert.equal(gate.charge('c2', 'get_secret'), undefined, 'another client has its own count');
    // A token bucket alone would let c1 in again after 0.1 s; Keeper's count only clears after 10 s of silence,
    // and a request inside those 10 s starts them again.
    now += 9_000;
    assert.equal(gate.charge('c1', 'get_secret')?.status, 429);
    now += 9_000;
    assert.equal(gate.charge('c1', 'get_secret')?.status, 429);
    now += 10_000;
    for (let i = 0; i < 100; i++) assert.equal(gate.charge('c1', 'get_secret'), undefined, `after the silence, request ${i + 1}`);
    assert.equal(gate.charge('c1', 'get_secret')?.status, 429);
  });

  test('retry_after, when enabled, is the whole seconds until the client would be served: the quiet period or the refill', () => {
    let now = 0;
    const gate = new KsmBudgetGate({ burst: 1, perSecond: 0.25, quietSeconds: 1, retryAfter: true, status: 403 }, () => now);
    assert.equal(gate.charge('c', 'get_secret'), undefined);
    const refused = gate.charge('c', 'get_secret');
    assert.equal(refused?.status, 403);
    assert.deepEqual(body(refused), { error: 'throttled', message: 'throttled', retry_after: 4 });
    now += 3_999;
    assert.deepEqual(body(gate.charge('c', 'get_secret')), { error: 'throttled', message: 'throttled', retry_after: 1 }, 'early: the quiet second starts again');
    now += 1_000;
    assert.equal(gate.charge('c', 'get_secret'), undefined);
    gate.set({ enabled: false });
    for (let i = 0; i < 5; i++) assert.equal(gate.charge('c', 'get_secret'), undefined, 'a disabled budget throttles nobody');
  });

  test('settings are checked, and reset restores the budget the gate was made with and lets everyone in', () => {
    let now = 0;
    const gate = new KsmBudgetGate({ burst: 1, perSecond: 0.001 }, () => now);
    for (const bad of [{ burst: 0 }, { burst: 1.5 }, { perSecond: 0 }, { quietSeconds: -1 }, { status: 500 }, { retryAfter: 'yes' }, { enabled: 1 }]) {
      assert.throws(() => gate.set(bad as never), /must be/, JSON.stringify(bad));
    }
    assert.equal(gate.charge('c', 'get_secret'), undefined);
    assert.equal(gate.charge('c', 'get_secret')?.status, 429);
    assert.deepEqual(gate.set({ burst: 5 }), { ...KSM_DEFAULT_BUDGET, burst: 5, perSecond: 0.001 });
    assert.deepEqual(gate.reset(), { ...KSM_DEFAULT_BUDGET, burst: 1, perSecond: 0.001 });
    assert.equal(gate.charge('c', 'get_secret'), undefined);
  });

  test("over HTTPS: past its budget a client gets Keeper's throttle reply, which SDK 17.5.0 throws at once; its other endpoints and other clients are served", async () => {
    ksm.setBudget({ burst: 2, perSecond: 0.001, quietSeconds: 3600 });
    const client = ksm.createClient(host);
    const other = ksm.createClient(host);
    const get = { clientVersion: 'ms17.5.0', clientId: client.clientId };
    log.clear();
    assert.equal((await rawCall(client, 'get_secret', get)).status, 200);
    assert.equal((await rawCall(client, 'get_secret', get)).status, 200);
    const refused = await rawCall(client, 'get_secret', get);
    assert.equal(refused.status, 429);
    assert.deepEqual(JSON.parse(refused.body.toString('utf8')), { error: 'throttled', message: 'throttled' });
    assert.equal((await rawCall(client, 'get_folders', get)).status, 200);
    assert.equal((await rawCall(other, 'get_secret', { ...get, clientId: other.clientId })).status, 200);
    const sleeps: number[] = [];
    const thrown = await ksmFailure(getSecrets(options(client, { throttleSleep: async (ms) => void sleeps.push(ms) })));
    assert.deepEqual(thrown, { error: 'throttled', message: 'throttled' });
    assert.deepEqual(sleeps, [], 'the SDK retries only a 403 throttle (KSM-1395)');
    assert.deepEqual(statuses('get_secret'), [200, 200, 429, 200, 429]);
  });

  test("every sandbox starts with KSM's budget on, but `realism: false` (nothing throttled) turns it off", async () => {
    for (const [options, enabled] of [[{}, true], [{ realism: false }, false]] as const) {
      const sb = await startSandbox({ ...options, demo: false });
      try {
        assert.equal(sb.ksm.budgetSettings.enabled, enabled, JSON.stringify(options));
      } finally {
        await sb.close();
      }
    }
  });

  test('a request that fails authentication is not charged to the client it names', async () => {
    ksm.setBudget({ burst: 1, perSecond: 0.001, quietSeconds: 3600 });
    const client = ksm.createClient(host);
    const forged = { ...client, privateKey: ksm.createClient(host).privateKey };
    for (let i = 0; i < 3; i++) assert.equal((await rawCall(forged, 'get_secret', { clientVersion: 'ms17.5.0', clientId: client.clientId })).status, 403);
    assert.equal((await rawCall(client, 'get_secret', { clientVersion: 'ms17.5.0', clientId: client.clientId })).status, 200);
  });
});

describe('authentication', () => {
  test('a config whose private key was replaced is refused: 403 access_denied "Signature is invalid"', async () => {
    const other = ksm.createClient(host);
    const forged = { ...config, privateKey: other.privateKey };
    log.clear();
    const body = await ksmFailure(getSecrets(options(forged)));
    assert.equal(body.error, 'access_denied');
    assert.equal(body.message, 'Signature is invalid');
    assert.equal(body.additional_info, '');
    assert.match(String(body.path), new RegExp(`^https://${host}/api/rest/sm/v1/get_secret, POST, Node/v\\d+`));
    assert.deepEqual(statuses('get_secret'), [403]);
  });

  test('an unknown client id is refused: 403 access_denied', async () => {
    const unknown = { ...config, clientId: randomBytes(64).toString('base64') };
    const body = await ksmFailure(getSecrets(options(unknown)));
    assert.equal(body.error, 'access_denied');
    assert.equal(body.message, 'Unable to validate application access');
  });

  test('a config naming another server key id gets the key hint, which the SDK refuses for a custom key', async () => {
    const err = await failure(getSecrets(options({ ...config, serverPublicKeyId: '7' })));
    assert.match(err.message, /Server rejected the custom server public key \(id 7\)\. The server suggested key id 10/);
  });

  test("the SDK's key cache is process-wide: a call right after another config's getSecrets signs with that config's key", async () => {
    const other = ksm.createClient(host);
    const seeded = seed();
    await fetchOne(seeded.uid, other);
    // completeTransaction does not reload keys, so `config` sends its client id with `other`'s cached private key.
    const body = await ksmFailure(completeTransaction(options(config), seeded.uid, true));
    assert.equal(body.message, 'Signature is invalid');
  });
});

describe('raw protocol', () => {
  test('a payload that is not JSON gets 400 bad_request in the real error shape', async () => {
    const reply = await rawCall(config, 'get_secret', Buffer.from('{not json'));
    assert.equal(reply.status, 400);
    const body = JSON.parse(reply.body.toString('utf8')) as Record<string, unknown>;
    assert.equal(body.error, 'bad_request');
    assert.equal(body.location, 'default exception manager - api validation exception');
    assert.match(String(body.path), /\/api\/rest\/sm\/v1\/get_secret, POST, /);
  });

  test('update_secret with a malformed revision or undecryptable data gets 400 bad_request', async () => {
    const seeded = seed();
    const base = { clientVersion: 'ms17.5.0', clientId: config.clientId, recordUid: seeded.uid };
    const badRevision = await rawCall(config, 'update_secret', { ...base, data: 'AAAA', revision: 'abc' });
    assert.equal(badRevision.status, 400);
    assert.equal(JSON.parse(badRevision.body.toString('utf8')).error, 'bad_request');
    const badData = await rawCall(config, 'update_secret', { ...base, data: randomBytes(60).toString('base64url'), revision: seeded.revision });
    assert.equal(badData.status, 400);
    assert.equal(JSON.parse(badData.body.toString('utf8')).error, 'bad_request');
    assert.equal(ksm.readRecord(seeded.uid)!.revision, seeded.revision);
  });

  test('update_secret on a record not shared with the app gets 403 access_denied', async () => {
    const seeded = seed();
    const restricted = ksm.createClient(host, { folders: [], records: [] });
    const reply = await rawCall(restricted, 'update_secret', {
      clientVersion: 'ms17.5.0',
      clientId: restricted.clientId,
      recordUid: seeded.uid,
      data: randomBytes(60).toString('base64url'),
      revision: seeded.revision,
    });
    assert.equal(reply.status, 403);
    assert.equal(JSON.parse(reply.body.toString('utf8')).error, 'access_denied');
  });

  test('get_secret wraps keys as the SDK expects and pads the record JSON with trailing spaces', async () => {
    // A title that leaves the JSON off a 16-byte boundary, so the reply must carry padding.
    let data = pamUser('padded', 'pw');
    while (Buffer.byteLength(JSON.stringify(data)) % 16 === 0) data = { ...data, title: data.title + '!' };
    const seeded = ksm.seedRecord({ data });
    const reply = await rawCall(config, 'get_secret', { clientVersion: 'ms17.5.0', clientId: config.clientId, requestedRecords: [seeded.uid] });
    assert.equal(reply.status, 200);
    const response = JSON.parse(gcmDecrypt(reply.transmissionKey, reply.body).toString('utf8'));
    assert.equal(response.expiresOn, 0);
    assert.equal(response.warnings, null);
    assert.equal(response.extra, null);
    assert.equal(response.folders, null);
    assert.equal(response.records.length, 1);
    const entry = response.records[0];
    const recordKey = gcmDecrypt(fromBase64(config.appKey), fromBase64(entry.recordKey));
    const json = gcmDecrypt(recordKey, fromBase64(entry.data)).toString('utf8');
    assert.ok(json.endsWith(' '), 'the record JSON is padded');
    assert.equal(json.length % 16, 0);
    assert.equal(json.trimEnd(), JSON.stringify(data));
    assert.deepEqual(JSON.parse(gcmDecrypt(fromBase64(config.appKey), fromBase64(response.appData)).toString('utf8')), {
      title: 'keeper-rotate sandbox',
      type: 'app',
    });
  });

  /**
   * A record shared to the app directly, read over raw get_secret: its key (unwrapped with the app key), data and
   * revision, so a raw update_secret can be built as each SDK builds it.
   */
  async function rawRead(uid: string, getPayload: object, indent?: number): Promise<{ key: Buffer; data: RecordData; revision: number }> {
    const reply = await rawCall(config, 'get_secret', indent ? Buffer.from(JSON.stringify(getPayload, null, indent)) : getPayload);
    assert.equal(reply.status, 200, reply.body.toString('utf8'));
    const response = JSON.parse(gcmDecrypt(reply.transmissionKey, reply.body).toString('utf8'));
    const entry = (response.records as Array<{ recordUid: string; recordKey: string; data: string; revision: number }>).find((r) => r.recordUid === uid);
    assert.ok(entry, `get_secret returned record ${uid}`);
    const key = gcmDecrypt(fromBase64(config.appKey), fromBase64(entry.recordKey));
    return { key, data: JSON.parse(gcmDecrypt(key, fromBase64(entry.data)).toString('utf8')) as RecordData, revision: entry.revision };
  }

  const withPassword = (data: RecordData, password: string): RecordData => ({
    ...data,
    fields: data.fields.map((f) => (f.type === 'password' ? { ...f, value: [password] } : f)),
  });
  const status = (reply: RawReply) => [reply.status, reply.body.length && reply.status !== 200 ? JSON.parse(reply.body.toString('utf8')).message : ''];

  // Each official SDK's payloads as its builder serializes them (Keeper-Security/secrets-manager @ 8a93aa7, and
  // Keeper-Security/secrets-manager-go @ c7603d6). Python sends every optional field as null and indents its JSON
  // (sdk/python/core/keeper_secrets_manager_core/dto/payload.py GetPayload/UpdatePayload, core.py
  // prepare_update_payload, utils.dict_to_json); Rust sends GetPayload's optionals as null (sdk/rust/src/dto/
  // payload.rs); Go sends requestedRecords/requestedFolders null, omits an empty transactionType and encodes data
  // URL-safe without padding (core/payload.go, core/core.go prepareUpdatePayload); Java, .NET, JS and Ruby omit
  // what they do not set, Java sending an empty links2Remove list when given one (sdk/java/core/.../
  // SecretsManager.kt UpdatePayload, sdk/dotNet/SecretsManager/SecretsManagerClient.cs, sdk/javascript/packages/
  // core/src/keeper.ts prepareUpdatePayload, sdk/ruby/lib/keeper_secrets_manager/dto/payload.rb).
  const sdkShapes: Array<{ sdk: string; indent?: number; get: (uid: string) => object; update: (u: { uid: string; data: string; revision: number }) => object; encode: (b: Buffer) => string }> = [
    {
      sdk: 'Python',
      indent: 4,
      get: (uid) => ({ clientVersion: 'mp17.3.0', clientId: config.clientId, publicKey: null, requestedRecords: [uid], requestedFolders: null, requestLinks: null }),
      update: (u) => ({ clientVersion: 'mp17.3.0', clientId: config.clientId, recordUid: u.uid, data: u.data, revision: u.revision, transactionType: null, links2Remove: null }),
      encode: (b) => b.toString('base64'),
    },
    {
      sdk: 'Rust',
      get: (uid) => ({ clientVersion: 'mr17.1.0', clientId: config.clientId, publicKey: null, requestedRecords: [uid], requestedFolders: null, requestLinks: null }),
      update: (u) => ({ clientVersion: 'mr17.1.0', clientId: config.clientId, recordUid: u.uid, revision: u.revision, data: u.data }),
      encode: (b) => b.toString('base64url'),
    },
    {
      sdk: 'Go',
      get: (uid) => ({ clientVersion: 'mg16.6.6', clientId: config.clientId, requestedRecords: [uid], requestedFolders: null }),
      update: (u) => ({ clientVersion: 'mg16.6.6', clientId: config.clientId, recordUid: u.uid, revision: u.revision, data: u.data }),
      encode: (b) => b.toString('base64url'),
    },
    {
      sdk: 'Java',
      get: (uid) => ({ clientVersion: 'mj17.3.0', clientId: config.clientId, requestedRecords: [uid], requestLinks: false }),
      update: (u) => ({ clientVersion: 'mj17.3.0', clientId: config.clientId, recordUid: u.uid, data: u.data, revision: u.revision, links2Remove: [] }),
      encode: (b) => b.toString('base64url'),
    },
    {
      sdk: '.NET',
      get: (uid) => ({ clientVersion: 'mn17.1.0', clientId: config.clientId, requestedRecords: [uid], requestLinks: true }),
      update: (u) => ({ clientVersion: 'mn17.1.0', clientId: config.clientId, recordUid: u.uid, data: u.data, revision: u.revision }),
      encode: (b) => b.toString('base64url'),
    },
  ];

  for (const shape of sdkShapes) {
    test(`${shape.sdk}'s get_secret and plain save are accepted as that SDK sends them`, async () => {
      const seeded = seed('before', { folderUid: undefined });
      const read = await rawRead(seeded.uid, shape.get(seeded.uid), shape.indent);
      assert.equal(read.revision, seeded.revision);
      const data = shape.encode(gcmEncrypt(read.key, Buffer.from(JSON.stringify(withPassword(read.data, `${shape.sdk} save`)))));
      const payload = shape.update({ uid: seeded.uid, data, revision: read.revision });
      const reply = await rawCall(config, 'update_secret', shape.indent ? Buffer.from(JSON.stringify(payload, null, shape.indent)) : payload);
      assert.deepEqual(status(reply), [200, '']);
      const stored = ksm.readRecord(seeded.uid)!;
      assert.equal(passwordOf(stored.data), `${shape.sdk} save`);
      assert.ok(stored.revision > seeded.revision);
      assert.equal(stored.transaction, undefined, 'a save without a transaction type opens no transaction');
    });
  }

  test("Python's rotation save, finalize and rollback (links2Remove null) work under both transaction models", async () => {
    for (const model of ['pending', 'immediate'] as const) {
      ksm.setTransactionModel(model);
      for (const end of ['finalize_secret_update', 'rollback_secret_update'] as const) {
        const seeded = seed('old', { folderUid: undefined });
        const python = shapeOf('Python');
        const read = await rawRead(seeded.uid, python.get(seeded.uid), 4);
        const data = python.encode(gcmEncrypt(read.key, Buffer.from(JSON.stringify(withPassword(read.data, 'new')))));
        const save = { ...python.update({ uid: seeded.uid, data, revision: read.revision }), transactionType: 'rotation' };
        assert.deepEqual(status(await rawCall(config, 'update_secret', Buffer.from(JSON.stringify(save, null, 4)))), [200, '']);
        assert.equal(ksm.readRecord(seeded.uid)!.transaction?.type, 'rotation');
        assert.equal(ksm.readRecord(seeded.uid)!.transaction?.model, model);
        const complete = { clientVersion: 'mp17.3.0', clientId: config.clientId, recordUid: seeded.uid };
        assert.deepEqual(status(await rawCall(config, end, Buffer.from(JSON.stringify(complete, null, 4)))), [200, '']);
        const done = ksm.readRecord(seeded.uid)!;
        assert.equal(done.transaction, undefined);
        assert.equal(passwordOf(done.data), end === 'finalize_secret_update' ? 'new' : 'old', `${model} ${end}`);
      }
    }
  });

  test('malformed optional fields are still refused with 400 bad_request, and nothing changes', async () => {
    const seeded = seed('kept', { folderUid: undefined });
    const read = await rawRead(seeded.uid, shapeOf('Go').get(seeded.uid));
    const data = gcmEncrypt(read.key, Buffer.from(JSON.stringify(withPassword(read.data, 'changed')))).toString('base64');
    const base = { clientVersion: 'ms17.5.0', clientId: config.clientId, recordUid: seeded.uid, data, revision: read.revision };
    const updates: Array<[string, object]> = [
      ['transactionType "bogus"', { ...base, transactionType: 'bogus' }],
      ['transactionType 1', { ...base, transactionType: 1 }],
      // No SDK sends an empty type: Go and Rust leave "no transaction" out of the JSON (omitempty, skip_serializing_if).
      ['transactionType ""', { ...base, transactionType: '' }],
      ['links2Remove a string', { ...base, links2Remove: 'file-uid' }],
      ['links2Remove of numbers', { ...base, links2Remove: [1] }],
      ['recordUid null', { ...base, recordUid: null }],
      ['revision null', { ...base, revision: null }],
      ['data null', { ...base, data: null }],
    ];
    for (const [what, payload] of updates) {
      const reply = await rawCall(config, 'update_secret', payload);
      assert.equal(reply.status, 400, `update_secret with ${what}`);
      assert.equal(JSON.parse(reply.body.toString('utf8')).error, 'bad_request', what);
    }
    const gets: Array<[string, object]> = [
      ['requestLinks "yes"', { clientVersion: 'ms17.5.0', clientId: config.clientId, requestLinks: 'yes' }],
      ['requestedRecords a string', { clientVersion: 'ms17.5.0', clientId: config.clientId, requestedRecords: seeded.uid }],
      ['requestedFolders of numbers', { clientVersion: 'ms17.5.0', clientId: config.clientId, requestedFolders: [1] }],
      ['publicKey a number', { clientVersion: 'ms17.5.0', clientId: config.clientId, publicKey: 7 }],
    ];
    for (const [what, payload] of gets) {
      const reply = await rawCall(config, 'get_secret', payload);
      assert.equal(reply.status, 400, `get_secret with ${what}`);
      assert.equal(JSON.parse(reply.body.toString('utf8')).error, 'bad_request', what);
    }
    for (const end of ['finalize_secret_update', 'rollback_secret_update']) {
      const reply = await rawCall(config, end, { clientVersion: 'ms17.5.0', clientId: config.clientId, recordUid: null });
      assert.equal(reply.status, 400, `${end} without a recordUid`);
    }
    const stored = ksm.readRecord(seeded.uid)!;
    assert.equal(passwordOf(stored.data), 'kept');
    assert.equal(stored.revision, seeded.revision);
    assert.equal(stored.transaction, undefined);
  });

  function shapeOf(sdk: string) {
    const shape = sdkShapes.find((s) => s.sdk === sdk);
    assert.ok(shape);
    return shape;
  }

  test('an endpoint the sandbox does not serve is a 404', async () => {
    const reply = await rawCall(config, 'delete_secret', { clientVersion: 'ms17.5.0', clientId: config.clientId });
    assert.equal(reply.status, 404);
  });
});

describe('control API', () => {
  let control: { url: string; close(): Promise<void> };

  before(async () => {
    const api = new ControlApi(faults, log);
    ksm.registerControl(api);
    control = await api.listen();
  });

  after(async () => {
    await control.close();
  });

  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    const res = await fetch(control.url + path, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
    return { status: res.status, json: await res.json() };
  }

  test('seeds a folder, a record and a client that the SDK then reads through', async () => {
    const folder = await call('POST', '/ksm/folders', { name: 'Control' });
    assert.equal(folder.status, 200);
    const created = await call('POST', '/ksm/records', { data: pamUser('via control', 'ctl-pw'), folderUid: folder.json.uid });
    assert.equal(created.status, 200);
    const read = await call('GET', `/ksm/records/${created.json.uid}`);
    assert.equal(read.json.folderUid, folder.json.uid);
    assert.equal(read.json.revision, created.json.revision);

    const client = await call('POST', '/ksm/clients', { hostname: host, folders: [folder.json.uid] });
    assert.equal(client.status, 200);
    const { records } = await getSecrets(options(client.json as GatewayConfig));
    assert.deepEqual(records.map((r) => r.recordUid), [created.json.uid]);
    assert.equal(passwordOf(records[0]!.data), 'ctl-pw');

    const listed = await call('GET', '/ksm/records');
    assert.ok((listed.json as { uid: string }[]).some((r) => r.uid === created.json.uid));
  });

  test('rejects bad input with 4xx', async () => {
    assert.equal((await call('GET', '/ksm/records/nope')).status, 404);
    assert.equal((await call('POST', '/ksm/records', { data: { title: 'no fields' } })).status, 400);
    assert.equal((await call('POST', '/ksm/records', { data: pamUser('x', 'y'), folderUid: 'nope' })).status, 404);
    assert.equal((await call('POST', '/ksm/clients', {})).status, 400);
    assert.equal((await call('PUT', '/ksm/transaction-model', { model: 'eventual' })).status, 400);
    assert.equal(ksm.transactionModel, 'pending');
  });

  test('switches the transaction model at runtime', async () => {
    const put = await call('PUT', '/ksm/transaction-model', { model: 'immediate' });
    assert.deepEqual(put.json, { model: 'immediate' });
    assert.equal(ksm.transactionModel, 'immediate');
    const seeded = seed('old');
    await updateSecret2(options(), setPassword(await fetchOne(seeded.uid), 'new'), { transactionType: UpdateTransactionType.Rotation });
    const read = await call('GET', `/ksm/records/${seeded.uid}`);
    assert.equal(read.json.transaction.model, 'immediate');
    assert.equal(passwordOf(read.json.data), 'new');
    await completeTransaction(options(), seeded.uid, true);
  });

  test('tunes the request budget: PUT changes it (checked), GET reads it, DELETE restores it', async () => {
    const client = ksm.createClient(host);
    const put = await call('PUT', '/ksm/budget', { burst: 1, perSecond: 0.001, quietSeconds: 3600, retryAfter: true, status: 403 });
    assert.equal(put.status, 200);
    assert.deepEqual(put.json, { ...KSM_DEFAULT_BUDGET, burst: 1, perSecond: 0.001, quietSeconds: 3600, retryAfter: true, status: 403 });
    assert.deepEqual((await call('GET', '/ksm/budget')).json, put.json);
    for (const bad of [{ burst: 0 }, { status: 500 }, { retryAfter: 'yes' }, { nope: 1 }, []]) {
      assert.equal((await call('PUT', '/ksm/budget', bad)).status, 400, JSON.stringify(bad));
    }
    assert.deepEqual((await call('GET', '/ksm/budget')).json, put.json, 'a refused change changes nothing');

    await getSecrets(options(client));
    // A 403 throttle is what SDK 17.5.0 retries: it waits retry_after (±25%) five times, then gives up.
    const sleeps: number[] = [];
    const err = await failure(getSecrets(options(client, { throttleSleep: async (ms) => void sleeps.push(ms) })));
    assert.ok(err instanceof KeeperThrottleError, `got ${err.name}: ${err.message}`);
    assert.equal(sleeps.length, 5);
    for (const ms of sleeps) assert.ok(ms >= 2_700_000 && ms <= 4_500_000, `slept ${ms} ms for retry_after 3600`);

    const reset = await call('DELETE', '/ksm/budget');
    assert.deepEqual(reset.json, KSM_DEFAULT_BUDGET);
    await getSecrets(options(client));
  });

  test('arms a KSM fault through the generic /faults route', async () => {
    const armed = await call('POST', '/faults', { service: 'ksm', operation: 'get_secret', kind: 'status', status: 503 });
    assert.equal(armed.status, 200);
    const err = await failure(getSecrets(options()));
    assert.equal(err.message, 'unknown ksm error, code 503');
    await getSecrets(options());
  });
});
