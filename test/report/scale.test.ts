// A fleet of 1,000 records: the report reads them all in one Keeper request, and --check asks IAM once per
// record, honouring IAM's throttling, with no write anywhere. Azure records share their admin's token: a token
// request per record is one request repeated, which Entra's loop protection refuses after twenty a minute.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ScriptSandbox, startScriptSandbox } from '../helpers/run-script.js';
import { seedLargeTenant } from '../../src/sandbox/large-tenant.js';
import { seedAwsFleet, seedAzureFleet, secret, text } from './fleet.js';
import { report } from './run-report.js';

const FLEET = 1000;

describe('report on 1,000 records', () => {
  let box: ScriptSandbox;
  before(async () => {
    box = await startScriptSandbox('report');
    seedAwsFleet(box.sandbox, FLEET);
  });
  after(async () => box.close());

  test('one get_secret for every record, and --check lists each user once, writing nothing', async () => {
    const log = box.sandbox.log;
    const r = await report(box.env, ['--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { summary: { records: number } }).summary.records, FLEET + 4);
    assert.equal(log.entries({ service: 'ksm', operation: 'get_secret' }).length, 1);
    const checked = await report(box.env, ['--format', 'csv', '--check', '--concurrency', '16']);
    assert.equal(checked.code, 0, checked.stdout.split('\r\n').filter((l) => !l.includes(',agrees,')).slice(0, 5).join('\n'));
    assert.equal(checked.stdout.split('\r\n').filter((l) => l.includes(',agrees,')).length, FLEET + 4);
    assert.equal(log.entries({ service: 'ksm', operation: 'get_secret' }).length, 2);
    // At least once per AWS record; more where IAM throttled the pace (each throttled request is sent again).
    const listed = log.entries({ service: 'iam', operation: 'ListAccessKeys' }).length;
    assert.ok(listed >= FLEET + 1 && listed < 2 * FLEET, `${listed} ListAccessKeys`);
    assert.deepEqual(log.entries().filter((e) => /^(update_secret|CreateAccessKey|DeleteAccessKey|UpdateAccessKey)$/.test(e.operation)), []);
  });
});

describe('report --check on 100 Azure records of one admin app', () => {
  let box: ScriptSandbox;
  before(async () => {
    box = await startScriptSandbox('report');
    seedAzureFleet(box.sandbox, 100);
  });
  after(async () => box.close());

  // The timeout bounds what a token per record costs: Entra's refusals, which the check waits out, for minutes.
  test('every record is checked with one admin token, not one per record (Entra refuses the 21st identical request in a minute)', { timeout: 120_000 }, async () => {
    const log = box.sandbox.log;
    const checked = await report(box.env, ['--format', 'json', '--check', '--concurrency', '4']);
    const rows = (JSON.parse(checked.stdout) as { records: Array<{ target: string; check: { state: string; findings: string[] } | null }> }).records.filter((r) => r.target === 'azure-app-secret');
    assert.equal(rows.length, 101);
    assert.deepEqual(rows.filter((r) => r.check?.state !== 'agrees').map((r) => r.check?.findings.join('; ')), []);
    assert.equal(log.entries({ service: 'azure', operation: 'getApplication' }).length, 101);
    // One per credential: the admin's (concurrent first checks may each ask before the first token is cached).
    const tokens = log.entries({ service: 'azure', operation: 'token' });
    assert.ok(tokens.length <= 4, `${tokens.length} token requests`);
    assert.deepEqual(tokens.filter((e) => e.status !== 200), []);
  });
});

describe('report --check on 30 Wiz records checked with one admin account, with one token', () => {
  let box: ScriptSandbox;
  before(async () => {
    box = await startScriptSandbox('report');
    // The large tenant's Wiz admin (a PAM configuration) and accounts, each with a record holding its secret.
    const fleet = seedLargeTenant(box.sandbox, { wizAccounts: 30 });
    for (const clientId of fleet.wizClientIds) {
      const account = box.sandbox.wiz.listServiceAccounts().find((a) => a.clientId === clientId)!;
      box.sandbox.ksm.seedRecord({
        folderUid: fleet.folderUid,
        data: { title: `scanner ${clientId.slice(0, 8)}`, type: 'pamUser', fields: [{ type: 'login', value: [clientId] }], custom: [secret('client_secret', account.clientSecret), ...(account.expiresAt ? [text('expires', account.expiresAt)] : [])] },
      });
    }
  });
  after(async () => box.close());

  test("the checks' reads stay under Wiz's 3 requests a second for the admin account: nothing refused", { timeout: 120_000 }, async () => {
    const log = box.sandbox.log;
    const checked = await report(box.env, ['--format', 'json', '--check', '--concurrency', '16']);
    const rows = (JSON.parse(checked.stdout) as { records: Array<{ target: string; check: { state: string; findings: string[] } | null }> }).records.filter((r) => r.target === 'wiz-service-account');
    assert.equal(rows.length, 31);
    assert.deepEqual(rows.filter((r) => r.check?.state !== 'agrees').map((r) => r.check?.findings.join('; ')), []);
    const reads = log.entries({ service: 'wiz-api', operation: 'serviceAccounts' });
    assert.deepEqual(reads.filter((e) => e.status !== 200).map((e) => e.status), [], 'Wiz refused none of the reads');
    assert.equal(reads.length, 31);
    // One token for the admin, shared by all 31 checks (in flight or cached): the demo record too has the PAM
    // configuration's admin.
    const tokens = log.entries({ service: 'wiz-auth', operation: 'token' });
    assert.deepEqual(tokens.map((e) => e.status), [200]);
  });
});
