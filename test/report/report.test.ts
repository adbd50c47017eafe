// The report against a sandbox vault holding the demo records (one per target) and seeded ones: an expired Azure
// secret, a Wiz account whose last run failed, an AWS record its target disagrees with, and hostile titles. Each
// format lists what it must, escapes what it must, prints no secret, reads the vault in one request, writes
// nothing anywhere, and exits with the code a cron can gate on.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { DEMO } from '../../src/sandbox/demo-vault.js';
import type { Sandbox } from '../../src/sandbox/sandbox.js';
import { type ScriptSandbox, startScriptSandbox } from '../helpers/run-script.js';
import { HOSTILE_MESSAGE, HOSTILE_TITLE, FORMULA_TITLE, knownSecrets, seedCases, seedDisagreeingAws, seedExpiredAzure, seedFailingWiz, seedHostileAws, seedIgnored } from './fleet.js';
import { type ReportResult, report } from './run-report.js';

const DEMO_UIDS = [DEMO.azure.userRecordUid, DEMO.aws.userRecordUid, DEMO.ecr.userRecordUid, DEMO.wiz.userRecordUid];
/** Every write any service knows: --check must send none of them. */
const WRITES = ['update_secret', 'finalize_secret_update', 'rollback_secret_update', 'addPassword', 'removePassword', 'CreateAccessKey', 'DeleteAccessKey', 'UpdateAccessKey', 'rotateServiceAccountSecret', 'updateServiceAccount'];

function assertNoSecret(result: ReportResult, secrets: readonly string[]): void {
  assert.ok(secrets.length > 0);
  const text = result.stdout + result.stderr;
  for (const s of secrets) assert.ok(!text.includes(s), `a secret (${s.slice(0, 3)}...) was printed`);
}

const getSecretCount = (s: Sandbox) => s.log.entries({ service: 'ksm', operation: 'get_secret' }).length;

interface JsonReport {
  summary: { records: number; exitCode: number; byStatus: Record<string, number>; checked: number };
  records: Array<{ recordUid: string; title: string; target: string; credentialId: string | null; created: string | null; expires: string | null; status: string; lastRotation: { exit: number | null; error: string | null; message: string | null } | null; check: { state: string; findings: string[] } | null; problems: Array<{ status: string; text: string }> }>;
}

describe('report on the demo vault', () => {
  let box: ScriptSandbox;
  before(async () => {
    box = await startScriptSandbox('report');
  });
  after(async () => box.close());

  test('with the sandbox env loaded, `npm run report -- --format json` lists every demo record with its target and expiry', async () => {
    const result = await new Promise<ReportResult>((done, fail) => {
      const child = spawn('npm', ['run', '-s', 'report', '--', '--format', 'json'], { env: { ...process.env, ...box.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', fail);
      child.on('close', (code) => done({ code: code ?? 1, stdout, stderr }));
    });
    assert.equal(result.code, 0, result.stderr);
    const parsed = JSON.parse(result.stdout) as JsonReport;
    const byUid = new Map(parsed.records.map((r) => [r.recordUid, r]));
    assert.deepEqual([...byUid.keys()].sort(), [...DEMO_UIDS].sort());
    const vault = new Map(box.sandbox.ksm.listRecords().map((r) => [r.uid, r]));
    const field = (uid: string, label: string) => vault.get(uid)!.data.custom!.find((f) => f.label === label)!.value[0] as string;
    assert.equal(byUid.get(DEMO.azure.userRecordUid)!.target, 'azure-app-secret');
    assert.equal(byUid.get(DEMO.azure.userRecordUid)!.expires, new Date(field(DEMO.azure.userRecordUid, 'expires')).toISOString());
    assert.equal(byUid.get(DEMO.azure.userRecordUid)!.credentialId, field(DEMO.azure.userRecordUid, 'client_secret_id'));
    assert.equal(byUid.get(DEMO.wiz.userRecordUid)!.target, 'wiz-service-account');
    assert.equal(byUid.get(DEMO.wiz.userRecordUid)!.expires, new Date(field(DEMO.wiz.userRecordUid, 'expires')).toISOString());
    // AWS keys never expire: the record's CreateDate is what there is.
    assert.equal(byUid.get(DEMO.aws.userRecordUid)!.target, 'aws-iam-access-key');
    assert.equal(byUid.get(DEMO.aws.userRecordUid)!.expires, null);
    assert.equal(byUid.get(DEMO.aws.userRecordUid)!.created, new Date(field(DEMO.aws.userRecordUid, 'CreateDate')).toISOString());
    // ECR logins last 12 hours: an expiry, never "expiring".
    assert.equal(byUid.get(DEMO.ecr.userRecordUid)!.target, 'aws-ecr-pull-secret');
    assert.equal(byUid.get(DEMO.ecr.userRecordUid)!.expires, new Date(field(DEMO.ecr.userRecordUid, 'ecr_token_expires')).toISOString());
    assert.equal(byUid.get(DEMO.ecr.userRecordUid)!.status, 'ok');
    // The demo's Wiz account expires in ten days: expiring, which does not fail the report.
    assert.equal(byUid.get(DEMO.wiz.userRecordUid)!.status, 'expiring');
    assert.equal(parsed.summary.exitCode, 0);
  });

  test('--fail-days counts a credential expiring that soon as expired: exit 9', async () => {
    const r = await report(box.env, ['--fail-days', '15']);
    assert.equal(r.code, 9, r.stdout + r.stderr);
    assert.match(r.stdout, /DemoWizServiceAcct0001 .*: expired: expires .*, within --fail-days 15/);
  });

  test('--max-key-age-days gives AWS keys an expiry: the demo key, 90 days old, is expired at 60 days', async () => {
    const r = await report(box.env, ['--format', 'json', '--max-key-age-days', '60']);
    assert.equal(r.code, 9, r.stderr);
    const aws = (JSON.parse(r.stdout) as JsonReport).records.find((x) => x.recordUid === DEMO.aws.userRecordUid)!;
    assert.equal(aws.status, 'expired');
    assert.equal(Date.parse(aws.expires!), Date.parse(aws.created!) + 60 * 86_400_000);
  });
});

describe('report on a vault with findings', () => {
  let box: ScriptSandbox;
  let s: Sandbox;
  before(async () => {
    box = await startScriptSandbox('report');
    s = box.sandbox;
  });
  after(async () => box.close());

  test('each kind of finding sets its bit in the exit code, and the report is one Keeper read', async () => {
    assert.equal((await report(box.env, [])).code, 0);
    seedFailingWiz(s);
    assert.equal((await report(box.env, [])).code, 8 | 2);
    seedExpiredAzure(s);
    assert.equal((await report(box.env, [])).code, 8 | 2 | 1);
    const drifted = seedDisagreeingAws(s);
    // Only the target can tell that it disagrees.
    assert.equal((await report(box.env, [])).code, 8 | 2 | 1);
    const before = getSecretCount(s);
    const checked = await report(box.env, ['--check', '--format', 'json']);
    assert.equal(checked.code, 8 | 4 | 2 | 1, checked.stderr);
    assert.equal(getSecretCount(s) - before, 1, 'one get_secret for the whole report');
    const row = (JSON.parse(checked.stdout) as JsonReport).records.find((r) => r.recordUid === drifted)!;
    assert.equal(row.check?.state, 'disagrees');
    assert.ok(row.check!.findings.some((f) => /AKIAREPORTGONEKEY001 is not on the target/.test(f)), row.check!.findings.join('; '));
    assert.ok(row.check!.findings.some((f) => /is neither the record's CURRENT nor its LAST key/.test(f)), row.check!.findings.join('; '));
    assert.equal(row.status, 'disagrees');
  });
});

describe('every format, with --check, on records of all three targets', () => {
  let box: ScriptSandbox;
  let s: Sandbox;
  let cases: ReturnType<typeof seedCases>;
  const results = new Map<string, ReportResult>();
  let writesBefore = 0;
  before(async () => {
    box = await startScriptSandbox('report');
    s = box.sandbox;
    cases = seedCases(s);
    writesBefore = s.log.entries().filter((e) => WRITES.includes(e.operation)).length;
    for (const format of ['table', 'json', 'csv', 'html']) results.set(format, await report(box.env, ['--check', '--format', format]));
  });
  after(async () => box.close());

  const listed = [...DEMO_UIDS];

  test('every format exits 15 (expired, failing, disagreeing) and lists every record of ours, and only those', () => {
    const ours = [...listed, cases.expiredAzure, cases.failingWiz, cases.disagreeingAws, cases.hostileAws];
    for (const [format, r] of results) {
      assert.equal(r.code, 15, `${format}: ${r.stderr}`);
      for (const uid of ours) assert.ok(r.stdout.includes(uid), `${format} lists ${uid}`);
      for (const uid of cases.ignored) assert.ok(!r.stdout.includes(uid), `${format} leaves out ${uid}`);
    }
  });

  test('--check sends no write to Keeper or any target, and the checked demo records agree', () => {
    assert.equal(s.log.entries().filter((e) => WRITES.includes(e.operation)).length, writesBefore);
    const parsed = JSON.parse(results.get('json')!.stdout) as JsonReport;
    assert.equal(parsed.summary.checked, 8);
    for (const uid of [...DEMO_UIDS, cases.hostileAws, cases.expiredAzure, cases.failingWiz]) {
      assert.equal(parsed.records.find((r) => r.recordUid === uid)!.check?.state, 'agrees', uid);
    }
  });

  test('no secret in any output: not the records\' hidden fields, not the targets\' secrets', () => {
    const secrets = knownSecrets(s);
    for (const r of results.values()) assertNoSecret(r, secrets);
  });

  test('JSON: the hostile title and message survive exactly, and the text holds no raw control or bidi character', () => {
    const raw = results.get('json')!.stdout;
    assert.doesNotMatch(raw, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    const parsed = JSON.parse(raw) as JsonReport;
    const hostile = parsed.records.find((r) => r.recordUid === cases.hostileAws)!;
    assert.equal(hostile.title, HOSTILE_TITLE);
    assert.equal(hostile.lastRotation?.message, HOSTILE_MESSAGE);
    const failing = parsed.records.find((r) => r.recordUid === cases.failingWiz)!;
    assert.deepEqual([failing.status, failing.lastRotation?.exit, failing.lastRotation?.error], ['failing', 3, 'TARGET_THROTTLED']);
    assert.equal(parsed.records.find((r) => r.recordUid === cases.expiredAzure)!.status, 'expired');
  });

  test('table: control and bidi characters are shown as escapes, never written raw', () => {
    const out = results.get('table')!.stdout;
    assert.doesNotMatch(out, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    assert.ok(out.includes('\\u202egnp.exe \\u001b[31mred'), out);
    // The title's line break is an escape: the forged line is not a line of its own.
    assert.ok(!out.split('\n').some((line) => line.startsWith('forged line')));
    assert.match(out, /^report: 8 record\(s\) \(aws 3, ecr 1, azure 2, wiz 2\), 8 checked on their targets; 1 expired, 1 failing, 1 disagreeing, 0 unreadable, 1 expiring soon, 4 ok; exit 15$/m);
  });

  test('CSV: one line per record, a formula title is made inert, control characters are escapes', () => {
    const out = results.get('csv')!.stdout;
    const lines = out.split('\r\n').filter(Boolean);
    assert.equal(lines.length, 1 + 8);
    assert.doesNotMatch(out.replace(/\r\n/g, ''), /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    const formula = lines.find((l) => l.startsWith(cases.expiredAzure))!;
    assert.ok(formula.includes(`"'${FORMULA_TITLE.replace(/"/g, '""')}"`), formula);
    assert.ok(!lines.some((l) => /(^|,)"?=/.test(l)), 'no cell starts with =');
  });

  test('HTML: self-contained, a strict CSP, every record value escaped', () => {
    const html = results.get('html')!.stdout;
    assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; img-src 'none'; script-src 'none'; base-uri 'none'; form-action 'none'">/);
    assert.doesNotMatch(html, /<(script|img|iframe|link|object|embed|base|form)\b|<[^>]*\s(src|href|on[a-z]+)=/i);
    assert.doesNotMatch(html, /https?:\/\//);
    assert.ok(html.includes('\\u202egnp.exe \\u001b[31mred\\u001b[0m &lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;\\nforged line'));
    assert.ok(html.includes('&lt;/td&gt;&lt;/tr&gt;&lt;script&gt;alert(3)&lt;/script&gt;\\u2066isolated\\u2069 \\u009b2J'));
    assert.doesNotMatch(html, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    assert.match(html, /<svg id="expiry-chart"/);
    assert.equal((html.match(/<tr class="/g) ?? []).length, 8);
  });
});
