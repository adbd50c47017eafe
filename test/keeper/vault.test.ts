// KeeperVault (our transport under the real SDK) against the KSM sandbox over HTTPS: one-call fetch, rotation
// transactions under both server models, revision conflicts, and every fault kind mapped to a stable code.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { Deadline } from '../../src/deadline.js';
import { RotateError } from '../../src/errors.js';
import { toGatewayConfig } from '../../src/keeper/config.js';
import type { RecordData } from '../../src/keeper/record-data.js';
import { readText, writeText, cloneData } from '../../src/keeper/record.js';
import { KeeperVault } from '../../src/keeper/vault.js';
import { FaultPlan, RequestLog, type FaultSpec } from '../../src/sandbox/faults.js';
import { KsmService, type TransactionModel } from '../../src/sandbox/ksm/index.js';
import { serve, type RunningService } from '../../src/sandbox/service.js';
import { sandboxTlsMaterial } from '../../src/sandbox/tls.js';

const faults = new FaultPlan();
const log = new RequestLog();
const ksm = new KsmService();
let running: RunningService;
let folder: string;

before(async () => {
  running = await serve({ service: ksm, faults, log, tls: sandboxTlsMaterial() });
  folder = ksm.createFolder('vault tests');
});
after(() => running.close());
afterEach(() => {
  faults.clear();
  ksm.setTransactionModel('pending');
  ksm.resetBudget();
});

function record(secret = 'old-secret-value'): string {
  const data: RecordData = { title: 'r', type: 'pamUser', fields: [{ type: 'login', value: ['app'] }], custom: [{ type: 'secret', label: 'client_secret', value: [secret] }] };
  return ksm.seedRecord({ data, folderUid: folder }).uid;
}

function vault(requestTimeoutMs = 5_000, deadlineMs = 60_000): KeeperVault {
  const config = toGatewayConfig({ ...ksm.createClient(`localhost:${running.port}`) }, 'test');
  return new KeeperVault(config, { deadline: new Deadline(deadlineMs), requestTimeoutMs });
}

async function expectCode(p: Promise<unknown>, code: string): Promise<RotateError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof RotateError, String(err));
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

/**
 * Statuses of the KSM requests that arrived since `since` (performance.now(), the log's clock): a request an
 * earlier test left held by a `delay` fault is logged only when the sandbox finishes it, possibly during a later
 * test, with the time it arrived.
 */
const statuses = (since: number, operation?: string) =>
  log
    .entries({ service: 'ksm', ...(operation ? { operation } : {}) })
    .filter((e) => e.t >= since)
    .map((e) => e.status);

function changed(data: RecordData, value: string): RecordData {
  const copy = cloneData(data);
  writeText(copy, { label: 'client_secret', kind: 'secret' }, value);
  return copy;
}

describe('KeeperVault', () => {
  test('fetches several records in one request and leaves out the unknown', async () => {
    const a = record();
    const b = record();
    const v = vault();
    log.clear();
    const got = await v.fetch([a, b, 'AAAAAAAAAAAAAAAAAAAAAA']);
    assert.deepEqual([...got.keys()].sort(), [a, b].sort());
    assert.equal(log.entries({ service: 'ksm' }).length, 1);
    assert.equal(readText(got.get(a)!.data, 'client_secret'), 'old-secret-value');
    v.close();
  });

  for (const model of ['pending', 'immediate'] as TransactionModel[]) {
    test(`rotation transaction, finalized and rolled back (${model} model)`, async () => {
      ksm.setTransactionModel(model);
      const uid = record();
      const v = vault();
      const r = (await v.fetch([uid])).get(uid)!;
      await v.saveInTransaction(r, changed(r.data, 'new-secret-value'));
      assert.ok(ksm.readRecord(uid)!.transaction, 'a transaction is open');
      await v.finalize(uid);
      assert.equal(readText(ksm.readRecord(uid)!.data, 'client_secret'), 'new-secret-value');
      assert.equal(ksm.readRecord(uid)!.transaction, undefined);

      const r2 = (await v.fetch([uid])).get(uid)!;
      assert.ok(r2.revision > r.revision);
      await v.saveInTransaction(r2, changed(r2.data, 'third-secret-value'));
      await v.rollback(uid);
      assert.equal(readText(ksm.readRecord(uid)!.data, 'client_secret'), 'new-secret-value');
      v.close();
    });
  }

  test('an edit made after our read fails the save with KEEPER_REVISION_CONFLICT', async () => {
    const uid = record();
    const v = vault();
    const r = (await v.fetch([uid])).get(uid)!;
    // Someone edits the record in the vault between our read and our save.
    ksm.editRecord(uid, changed(ksm.readRecord(uid)!.data, 'theirs-value'));
    await expectCode(v.saveInTransaction(r, changed(r.data, 'mine-value')), 'KEEPER_REVISION_CONFLICT');
    assert.equal(readText(ksm.readRecord(uid)!.data, 'client_secret'), 'theirs-value');
    assert.equal(ksm.readRecord(uid)!.transaction, undefined);
    v.close();
  });

  test('a record from an older fetch cannot be saved (its key is gone)', async () => {
    const a = record();
    const v = vault();
    const r = (await v.fetch([a])).get(a)!;
    await v.fetch([record()]);
    await expectCode(v.saveInTransaction(r, changed(r.data, 'x-value')), 'INTERNAL');
    v.close();
  });

  test('a save while another transaction is open fails with KEEPER_TRANSACTION_OPEN', async () => {
    const uid = record();
    const v = vault();
    const r = (await v.fetch([uid])).get(uid)!;
    await v.saveInTransaction(r, changed(r.data, 'first-value'));
    const again = (await v.fetch([uid])).get(uid)!;
    await expectCode(v.saveInTransaction(again, changed(again.data, 'second-value')), 'KEEPER_TRANSACTION_OPEN');
    await v.rollback(uid);
    v.close();
  });

  test('finalizing or rolling back with no open transaction fails with KEEPER_NO_TRANSACTION', async () => {
    const uid = record();
    const v = vault();
    await v.fetch([uid]);
    await expectCode(v.finalize(uid), 'KEEPER_NO_TRANSACTION');
    await expectCode(v.rollback(uid), 'KEEPER_NO_TRANSACTION');
    v.close();
  });

  const faultCases: Array<[string, Omit<FaultSpec, 'service'>, string]> = [
    ['an HTTP 500', { operation: 'get_secret', kind: 'status', status: 500, body: '{"error":"internal","message":"boom"}' }, 'KEEPER_REQUEST_FAILED'],
    ['access denied', { operation: 'get_secret', kind: 'status', status: 403, body: '{"error":"access_denied","message":"Signature is invalid"}' }, 'KEEPER_ACCESS_DENIED'],
    ['a hang past the request timeout', { operation: 'get_secret', kind: 'delay', delayMs: 3_000 }, 'KEEPER_TIMEOUT'],
    ['a dropped connection', { operation: 'get_secret', kind: 'drop' }, 'KEEPER_REQUEST_FAILED'],
    ['a corrupt body', { operation: 'get_secret', kind: 'corrupt' }, 'KEEPER_REQUEST_FAILED'],
  ];
  for (const [name, spec, code] of faultCases) {
    test(`fetch fails with ${code} on ${name}`, async () => {
      const uid = record();
      faults.arm({ service: 'ksm', ...spec });
      const v = vault(500, 10_000);
      await expectCode(v.fetch([uid]), code);
      v.close();
    });
  }

  test('a throttle whose retry_after the deadline cannot hold fails at once with KEEPER_THROTTLED, refused', async () => {
    const uid = record();
    faults.arm({ service: 'ksm', operation: 'get_secret', kind: 'throttle', retryAfterSeconds: 30, times: 10 });
    const v = vault(500, 10_000);
    const since = performance.now();
    const err = await expectCode(v.fetch([uid]), 'KEEPER_THROTTLED');
    assert.equal(err.refused, true);
    assert.equal(err.status, 429);
    assert.equal(err.exitCode, 3);
    assert.match(err.message, /^Keeper throttled get_secret \(HTTP 429\) and asks for 30 s before a retry; waiting \d+ s leaves less than 5 s of the \d+ s left of the run's deadline of 10 s/);
    assert.deepEqual(statuses(since), [429], 'no retry was sent');
    v.close();
  });

  for (const status of [429, 403] as const) {
    test(`a throttled request (HTTP ${status}) is retried within the deadline and succeeds`, async () => {
      ksm.setBudget({ status });
      const uid = record();
      faults.arm({ service: 'ksm', operation: 'get_secret', kind: 'throttle', retryAfterSeconds: 1 });
      const v = vault();
      const since = performance.now();
      assert.ok((await v.fetch([uid])).has(uid));
      assert.deepEqual(statuses(since), [status, 200]);
      v.close();
    });
  }

  test("a rotation against a tiny request budget succeeds, each throttled call retried once after Keeper's retry_after", async () => {
    // One request per endpoint, then one every 4 s: consecutive calls are throttled however slow the machine, and
    // a retry sent before retry_after would be refused again (and restart the quiet second), so one 429 then a
    // 200 per throttled call shows the wait was honoured.
    ksm.setBudget({ burst: 1, perSecond: 0.25, quietSeconds: 1, retryAfter: true });
    const uid = record();
    const v = vault();
    const since = performance.now();
    const r = (await v.fetch([uid])).get(uid)!;
    const again = (await v.fetch([uid])).get(uid)!;
    assert.equal(again.revision, r.revision);
    await v.saveInTransaction(again, changed(again.data, 'discarded-value'));
    await v.rollback(uid);
    await v.saveInTransaction(again, changed(again.data, 'budget-value'));
    await v.finalize(uid);
    assert.equal(readText(ksm.readRecord(uid)!.data, 'client_secret'), 'budget-value');
    assert.equal(ksm.readRecord(uid)!.transaction, undefined);
    assert.deepEqual(statuses(since, 'get_secret'), [200, 429, 200]);
    assert.deepEqual(statuses(since, 'update_secret'), [200, 429, 200]);
    assert.deepEqual(statuses(since, 'rollback_secret_update'), [200]);
    assert.deepEqual(statuses(since, 'finalize_secret_update'), [200]);
    v.close();
  });

  test('a budget throttle without retry_after that the deadline cannot hold: KEEPER_THROTTLED, and the save was not applied', async () => {
    // Keeper sends no retry_after (budget.ts): the client waits at least the 11 s its counter needs to clear.
    ksm.setBudget({ burst: 1, perSecond: 0.01, retryAfter: false });
    const uid = record();
    const v = vault(5_000, 15_000);
    const r = (await v.fetch([uid])).get(uid)!;
    await v.saveInTransaction(r, changed(r.data, 'first-value'));
    await v.rollback(uid);
    const since = performance.now();
    const err = await expectCode(v.saveInTransaction(r, changed(r.data, 'second-value')), 'KEEPER_THROTTLED');
    assert.equal(err.refused, true);
    assert.match(err.message, /^Keeper throttled update_secret \(HTTP 429\) and gave no retry_after \(its count clears after 10 s without a request\); waiting \d+ s leaves less than 5 s/);
    assert.deepEqual(statuses(since), [429]);
    assert.equal(readText(ksm.readRecord(uid)!.data, 'client_secret'), 'old-secret-value');
    assert.equal(ksm.readRecord(uid)!.transaction, undefined);
    v.close();
  });

  test('a save refused by the server fails, and the record is unchanged', async () => {
    const uid = record();
    const v = vault();
    const r = (await v.fetch([uid])).get(uid)!;
    faults.arm({ service: 'ksm', operation: 'update_secret', kind: 'status', status: 500, body: '{"error":"internal"}' });
    await expectCode(v.saveInTransaction(r, changed(r.data, 'lost-value')), 'KEEPER_REQUEST_FAILED');
    assert.equal(readText(ksm.readRecord(uid)!.data, 'client_secret'), 'old-secret-value');
    assert.equal(ksm.readRecord(uid)!.transaction, undefined);
    v.close();
  });
});
