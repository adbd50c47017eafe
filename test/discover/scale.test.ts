// Issue 18's scale "done when", on the sandbox's large tenant: discover --create-in brings 1,000 credentials under
// records (150 IAM users, 425 Entra applications, 425 Wiz service accounts: one command per target), a second call creates nothing and says why, the created records rotate with their scripts, and the
// report lists every one with its target. Discover stays polite at that size: each list is paged to the end and
// no further (pages = ceil(n / page size)), one Keeper read for the whole vault, the targets' budgets untouched.
//
// What is left out here, and where it is measured instead:
// - Keeper's create budget. Keeper serves 100 requests per client and endpoint, then nothing until 10 s of
//   silence (src/sandbox/ksm/budget.ts), so 1,000 creates cost nine quiet periods, about 100 s, whatever the
//   client does. The sandbox's KSM budget is off in this file; discover.test.ts checks the pause with the budget
//   on, and `npm run bench` (its fleet section) times 1,000 creates under it.
// - Rotating all 1,000. A seeded sample of 24 (8 per target, the AWS ones spread over users with 0, 1 and 2 keys)
//   rotates in this process through the scripts' own entry (test/helpers/rotate-in-process.ts): 1,000 would take
//   about a minute and a half here. `npm run bench` rotates every record the same way and reports the exit codes.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cloneData, readText, writeText } from '../../src/keeper/record.js';
import { type DiscoverRun, discoverInProcess } from '../helpers/discover-in-process.js';
import { DEMO } from '../../src/sandbox/demo-vault.js';
import { type LargeTenant, seedLargeTenant } from '../../src/sandbox/large-tenant.js';
import { type Sandbox, startSandbox } from '../../src/sandbox/sandbox.js';
import { gatewayParams, rotateInProcess } from '../helpers/rotate-in-process.js';
import { report } from '../report/run-report.js';

const AWS = 150;
const AZURE = 425;
const WIZ = 425;
const PAGE = 100;
const CONCURRENCY = 4;

let dir: string;
let sb: Sandbox;
let fleet: LargeTenant;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keeper-rotate-discover-scale-'));
  sb = await startSandbox({ dir });
  fleet = seedLargeTenant(sb, { awsUsers: AWS, azureApps: AZURE, wizAccounts: WIZ });
  sb.ksm.setBudget({ enabled: false });
});

after(async () => {
  await sb.close();
  rmSync(dir, { recursive: true, force: true });
});

type Run = DiscoverRun;

const discover = (args: string[]): Promise<Run> => discoverInProcess([...args, '--create-in', fleet.folderUid, '--concurrency', String(CONCURRENCY)], sb.env);

/**
 * The three commands one after the other, as separate processes would run them side by side: in one process they
 * cannot overlap, because the Keeper SDK keeps record and folder keys in one module-wide cache that each read of
 * the vault clears (a create then fails with "Unable to load the key").
 */
const all = async (): Promise<[Run, Run, Run]> => [
  await discover(['aws', '--config', fleet.pamConfigurations.aws!, '--path-prefix', fleet.path]),
  await discover(['azure', '--config', fleet.pamConfigurations.azure]),
  await discover(['wiz', '--config', fleet.pamConfigurations.wiz!]),
];

/** Requests the sandbox logged, by service and operation, since `from` (a log length). */
function counts(from: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of sb.log.entries().slice(from)) {
    const k = `${e.service} ${e.operation}${e.status === 200 ? '' : ` ${e.status}`}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

const pages = (n: number) => Math.ceil(n / PAGE);
/** Keys the large tenant seeds: user i has i % 3. */
const seededKeys = (users: number) => Array.from({ length: users }, (_, i) => i % 3).reduce((a, b) => a + b, 0);
const tenantId = DEMO.azure.tenantId;

/** A deterministic pick of `k` of `items` (a seeded shuffle), so the sample is the same in every run. */
function sample<T>(items: readonly T[], k: number, seed: number): T[] {
  const copy = [...items];
  let s = seed >>> 0;
  for (let i = copy.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, k);
}

let created: { aws: string[]; azure: string[]; wiz: string[] };

test('1,000 credentials under records in one discover --create-in per target; every list paged to its end, one Keeper read each', { timeout: 300_000 }, async () => {
  const from = sb.log.entries().length;
  const [aws, azure, wiz] = await all();
  for (const r of [aws, azure, wiz]) assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(aws.created.length, AWS);
  assert.equal(azure.created.length, AZURE);
  assert.equal(wiz.created.length, WIZ);
  const made = sb.ksm.listRecords().filter((r) => r.folderUid === fleet.folderUid);
  assert.equal(made.length, AWS + AZURE + WIZ);
  assert.equal(new Set(made.map((r) => r.uid)).size, 1000);
  assert.deepEqual(new Set(made.filter((r) => readText(r.data, 'aws_access_key_id') !== undefined).map((r) => readText(r.data, 'login'))), new Set(fleet.awsUsers));
  assert.deepEqual(new Set(made.map((r) => readText(r.data, 'application_object_id')).filter(Boolean)), new Set(fleet.azureApps.map((a) => a.objectId)));
  created = { aws: aws.created, azure: azure.created, wiz: wiz.created };

  // What each list holds in the sandbox, beside the fleet: the demo's apps the admin owns, the Wiz admin accounts.
  const owned = sb.azure.directory.listApps(tenantId).filter((a) => a.owners.includes(DEMO.azure.adminAppId)).length;
  const accounts = sb.wiz.listServiceAccounts().length;
  const keys = seededKeys(AWS);
  assert.deepEqual(counts(from), {
    // One read of every record per command (the idempotency check), one folder list, one create per credential.
    'ksm get_secret': 3,
    'ksm get_folders': 3,
    'ksm create_secret': AWS + AZURE + WIZ,
    'iam ListUsers': pages(AWS),
    // One per user and one per key, under IAM's budget (the pacer): nothing throttled, nothing sent twice.
    'iam ListAccessKeys': AWS,
    'iam GetAccessKeyLastUsed': keys,
    'azure openidConfiguration': 1,
    'azure token': 1,
    'azure listOwnedObjects': pages(owned),
    'wiz-auth token': 1,
    // Paced under Wiz's 3 a second: no RATE_LIMIT_EXCEEDED to wait out.
    'wiz-api serviceAccounts': pages(accounts),
  });
  assert.equal(aws.discovery!.requests, pages(AWS) + AWS + keys);
  assert.equal(wiz.discovery!.requests, 1 + pages(accounts));
  // Two keys each: the admin must say which one goes before the first rotation, and discover says so.
  assert.equal(aws.stderr.match(/has two access keys/g)?.length, Array.from({ length: AWS }, (_, i) => i % 3).filter((k) => k === 2).length);
});

test('a second call creates nothing: every credential is reported as already having a record, and no key is listed again', { timeout: 120_000 }, async () => {
  assert.ok(created, 'the first test created the records');
  const from = sb.log.entries().length;
  const [aws, azure, wiz] = await all();
  for (const r of [aws, azure, wiz]) {
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.created.length, 0);
    assert.match(r.stderr, /: 0 to bring under records/);
  }
  assert.equal(aws.discovery!.skipped.filter((s) => s.reason === 'has-record').length, AWS);
  // The demo's own app and Wiz account have records too.
  assert.equal(azure.discovery!.skipped.filter((s) => s.reason === 'has-record').length, AZURE + 1);
  assert.equal(wiz.discovery!.skipped.filter((s) => s.reason === 'has-record').length, WIZ + 1);
  assert.match(aws.stderr, new RegExp(`skipped ${fleet.awsUsers[0]}: already has a record ${created.aws[0]}`));
  const second = counts(from);
  assert.equal(second['ksm create_secret'], undefined);
  // A user that already has a record is skipped before its keys are read.
  assert.equal(second['iam ListAccessKeys'], undefined);
  assert.equal(second['iam GetAccessKeyLastUsed'], undefined);
  assert.equal(sb.ksm.listRecords().filter((r) => r.folderUid === fleet.folderUid).length, 1000);
});

test('a seeded sample of the created records rotates with its script, and the report lists all 1,000 with target and expiry', { timeout: 300_000 }, async () => {
  assert.ok(created, 'the first test created the records');
  const byUser = new Map(sb.ksm.listRecords().filter((r) => r.folderUid === fleet.folderUid).map((r) => [readText(r.data, 'login') ?? '', r.uid]));
  // AWS: users with 0, 1 and 2 keys (index % 3), two or three of each.
  const awsSample = [0, 1, 2].flatMap((k) => sample(fleet.awsUsers.filter((_, i) => i % 3 === k), k === 2 ? 2 : 3, 18 + k));
  const picks = [
    ...awsSample.map((user) => ({ target: 'aws-iam-access-key', config: fleet.pamConfigurations.aws!, uid: byUser.get(user)! })),
    ...sample(created.azure, 8, 1000).map((uid) => ({ target: 'azure-app-secret', config: fleet.pamConfigurations.azure, uid })),
    ...sample(created.wiz, 8, 2026).map((uid) => ({ target: 'wiz-service-account', config: fleet.pamConfigurations.wiz!, uid })),
  ];
  assert.equal(picks.length, 24);
  for (const p of picks) {
    let record = sb.ksm.readRecord(p.uid)!;
    const login = readText(record.data, 'login')!;
    if (p.target === 'aws-iam-access-key' && sb.aws.listKeys(login).length === 2) {
      // As discover's warning asks: the admin names the key that may be deleted (the inactive one, else the older).
      const keys = [...sb.aws.listKeys(login)].sort((a, b) => (a.status === b.status ? Date.parse(String(a.createDate)) - Date.parse(String(b.createDate)) : a.status === 'Inactive' ? -1 : 1));
      const data = cloneData(record.data);
      writeText(data, { label: 'previous_aws_access_key_id', kind: 'text' }, keys[0]!.accessKeyId);
      sb.ksm.editRecord(p.uid, data);
      record = sb.ksm.readRecord(p.uid)!;
    }
    const run = await rotateInProcess(p.target, gatewayParams(p.config, p.uid, record.data.title, login), { ...process.env, ...sb.env });
    assert.equal(run.code, 0, `${p.target} ${p.uid}: ${run.stderr}`);
    const after = sb.ksm.readRecord(p.uid)!.data;
    if (p.target === 'aws-iam-access-key') {
      const key = sb.aws.listKeys(login).find((k) => k.accessKeyId === readText(after, 'aws_access_key_id'));
      assert.ok(key && key.status === 'Active' && key.secretAccessKey === readText(after, 'aws_secret_access_key'), `${login}: the record holds a working key`);
    } else if (p.target === 'azure-app-secret') {
      const app = sb.azure.getApp(readText(after, 'application_object_id')!)!;
      const secret = app.secrets.find((s) => s.keyId === readText(after, 'client_secret_id'));
      assert.ok(secret && secret.secretText === readText(after, 'client_secret'), `${app.displayName}: the record holds a working secret`);
    } else {
      const account = sb.wiz.listServiceAccounts().find((a) => a.clientId === login)!;
      assert.equal(account.clientSecret, readText(after, 'client_secret'), `${login}: the record holds the account's secret`);
    }
  }

  const r = await report(sb.env, ['--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const rows = (JSON.parse(r.stdout) as { records: Array<{ recordUid: string; target: string | null; principal: string | null; expires: string | null; created: string | null; lastRotation: { exit: number | null } | null }> }).records;
  const byUid = new Map(rows.map((row) => [row.recordUid, row]));
  const expected = { 'aws-iam-access-key': created.aws, 'azure-app-secret': created.azure, 'wiz-service-account': created.wiz };
  for (const [target, uids] of Object.entries(expected)) {
    for (const uid of uids) {
      const row = byUid.get(uid);
      assert.ok(row, `the report lists ${uid}`);
      assert.equal(row.target, target);
      assert.ok(row.principal, `${uid} names what holds its credential`);
    }
  }
  // A record's expiry is what its last rotation wrote: the sample's have one (AWS keys never expire; they carry
  // their CreateDate, from which --max-key-age-days counts), the others none yet.
  for (const p of picks) {
    const row = byUid.get(p.uid)!;
    assert.equal(row.lastRotation?.exit, 0);
    if (p.target === 'aws-iam-access-key') assert.ok(row.created && !row.expires, p.uid);
    else assert.ok(row.expires && Date.parse(row.expires) > Date.now(), `${p.uid} expires ${row.expires}`);
  }
  const rotated = new Set(picks.map((p) => p.uid));
  for (const uid of [...created.aws, ...created.azure, ...created.wiz]) if (!rotated.has(uid)) assert.equal(byUid.get(uid)!.expires, null, uid);
  const aged = await report(sb.env, ['--format', 'json', '--max-key-age-days', '90']);
  const agedRows = new Map((JSON.parse(aged.stdout) as { records: Array<{ recordUid: string; expires: string | null }> }).records.map((row) => [row.recordUid, row]));
  for (const p of picks.filter((x) => x.target === 'aws-iam-access-key')) assert.ok(agedRows.get(p.uid)!.expires, `${p.uid} expires by --max-key-age-days`);
});
