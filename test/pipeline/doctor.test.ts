// `--doctor` as a user runs it: each script spawned the way the gateway runs it, against a real sandbox. It must
// report every check, and change nothing: no write request to any service, the vault and the target state as
// they were, and nothing left in the state folder.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadGatewayConfig } from '../../src/keeper/config.js';
import type { RecordData } from '../../src/keeper/record-data.js';
import type { Sandbox } from '../../src/sandbox/sandbox.js';
import { DEMO } from '../../src/sandbox/demo-vault.js';
import { openStateDir } from '../../src/state/dir.js';
import { Journal } from '../../src/state/journal.js';
import { type ScriptResult, type ScriptSandbox, loadFixture, startScriptSandbox } from '../helpers/run-script.js';
import { NO_PROXY_ENV } from '../helpers/forward-proxy.js';

const CHECKS = ['gateway input', 'gateway config', 'proxy', 'state folder', 'allow-list', 'PAM User record', 'PAM configuration', 'record fields', 'admin credentials', 'settings', 'target', 'destinations'];

/** Every operation that only reads, per sandbox service. Anything else a doctor run sends is a failure. */
const READS: Record<string, readonly string[]> = {
  ksm: ['get_secret', 'get_folders'],
  azure: ['openidConfiguration', 'token', 'getApplication', 'listOwners'],
  iam: ['ListAccessKeys', 'GetAccessKeyLastUsed', 'GetUser'],
  sts: ['GetCallerIdentity'],
  'wiz-auth': ['token'],
  'wiz-api': ['serviceAccounts'],
  imds: ['GetToken', 'GetRoleName', 'GetCredentials'],
};
/** The writes each target's rotation makes, named so a failure says which one slipped through. */
const WRITES = ['update_secret', 'finalize_secret_update', 'rollback_secret_update', 'addPassword', 'removePassword', 'CreateAccessKey', 'DeleteAccessKey', 'UpdateAccessKey', 'rotateServiceAccountSecret', 'updateServiceAccount'];

type Line = { status: string; detail: string };

/** The check lines of a doctor run, by check name. */
function checks(stdout: string): Map<string, Line> {
  const out = new Map<string, Line>();
  for (const line of stdout.split('\n')) {
    const m = /^(ok|warn|FAIL|skip) +([^:]+): (.*)$/.exec(line);
    if (m) out.set(m[2]!, { status: m[1]!, detail: m[3]! });
  }
  return out;
}

function status(result: ScriptResult, name: string): string | undefined {
  return checks(result.stdout).get(name)?.status;
}

/** Sign-ins are recorded by the services (IAM's last use, Wiz's last login): reading cannot avoid that. */
function withoutSignIns(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (key, v: unknown) => (key === 'lastUsed' || key === 'lastLoginAt' ? undefined : v)));
}

/** Everything a run could change: every vault record (data, revision, open transaction) and each target's state. */
function snapshot(sandbox: Sandbox): string {
  const a = DEMO.azure;
  return JSON.stringify({
    vault: sandbox.ksm.listRecords(),
    azure: [sandbox.azure.getApp(a.targetObjectId), sandbox.azure.getApp(a.adminObjectId)],
    aws: withoutSignIns([sandbox.aws.listKeys(DEMO.aws.userName), sandbox.aws.listKeys(DEMO.aws.adminUserName)]),
    wiz: withoutSignIns(sandbox.wiz.listServiceAccounts()),
  });
}

/** Every secret value the sandbox holds: in vault records, and on each target. */
function knownSecrets(sandbox: Sandbox): string[] {
  const out: string[] = [];
  for (const r of sandbox.ksm.listRecords()) {
    for (const f of [...r.data.fields, ...(r.data.custom ?? [])]) if (f.type === 'secret' || f.type === 'password') out.push(...f.value.map(String));
  }
  const a = DEMO.azure;
  for (const app of [sandbox.azure.getApp(a.targetObjectId), sandbox.azure.getApp(a.adminObjectId)]) out.push(...(app?.secrets ?? []).map((s) => s.secretText));
  for (const user of [DEMO.aws.userName, DEMO.aws.adminUserName]) out.push(...sandbox.aws.listKeys(user).map((k) => k.secretAccessKey));
  out.push(...sandbox.wiz.listServiceAccounts().map((s) => s.clientSecret));
  return out.filter((s) => s.length >= 8);
}

function assertNoSecret(result: ScriptResult, secrets: string[]): void {
  const text = result.stdout + result.stderr;
  for (const s of secrets) assert.ok(!text.includes(s), `a secret (${s.slice(0, 3)}...) was printed`);
}

/** Files in the sandbox's state folder (KEEPER_ROTATE_STATE_DIR), at any depth. */
function stateFiles(env: Record<string, string>): string[] {
  const root = env.KEEPER_ROTATE_STATE_DIR!;
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

function assertOnlyReads(sandbox: Sandbox): void {
  const entries = sandbox.log.entries();
  for (const e of entries) {
    assert.ok(!WRITES.includes(e.operation), `doctor sent ${e.service} ${e.operation}`);
    assert.ok((READS[e.service] ?? []).includes(e.operation), `doctor sent ${e.service} ${e.operation}, which is not a known read`);
  }
}

async function withSandbox(script: string, body: (s: ScriptSandbox) => Promise<void>): Promise<void> {
  const s = await startScriptSandbox(script);
  try {
    await body(s);
  } finally {
    await s.close();
  }
}

const doctor = (s: ScriptSandbox, params: Record<string, unknown>, env?: Record<string, string>) => s.run(params, { args: ['--doctor'], ...(env ? { env } : {}) });

describe('--doctor on the demo records', () => {
  const targets: Array<[string, string, string]> = [
    ['azure-app-secret', 'azure', 'getApplication'],
    ['aws-iam-access-key', 'iam', 'ListAccessKeys'],
    ['wiz-service-account', 'wiz-api', 'serviceAccounts'],
  ];
  for (const [script, service, read] of targets) {
    test(`${script}: every check ok, exit 0, and nothing written anywhere`, () =>
      withSandbox(script, async (s) => {
        const before = snapshot(s.sandbox);
        const secrets = knownSecrets(s.sandbox);
        s.sandbox.log.clear();
        const r = await doctor(s, loadFixture(script));
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const found = checks(r.stdout);
        assert.deepEqual([...found.keys()], CHECKS, r.stdout);
        for (const [name, line] of found) assert.equal(line.status, 'ok', `${name}: ${line.detail}`);
        assert.match(r.stdout, new RegExp(`^doctor: ${CHECKS.length} checks, ${CHECKS.length} ok, 0 failed$`, 'm'));
        // It did reach Keeper and read the target, with reads only.
        assert.ok(s.sandbox.log.entries({ service: 'ksm', operation: 'get_secret' }).length > 0, 'doctor never read the vault');
        assert.ok(s.sandbox.log.entries({ service, operation: read }).length > 0, `doctor never read the target (${service} ${read})`);
        assertOnlyReads(s.sandbox);
        assert.equal(snapshot(s.sandbox), before);
        assert.deepEqual(stateFiles(s.env), []);
        assertNoSecret(r, secrets);
      }));

    test(`${script}: --record and --config instead of a gateway input: the same checks, all ok, stdin not read`, () =>
      withSandbox(script, async (s) => {
        const before = snapshot(s.sandbox);
        const fixture = loadFixture(script);
        s.sandbox.log.clear();
        // The stdin this run gets is a gateway input with no userRecordUid: read, it would fail the input check.
        const r = await s.run({}, { args: ['--doctor', '--record', fixture.userRecordUid as string, `--config=${fixture.providerRecordUid as string}`] });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout.split('\n')[0]!, new RegExp(`^${script} \\S+ doctor: checks only, nothing is changed$`));
        const found = checks(r.stdout);
        assert.deepEqual([...found.keys()], CHECKS, r.stdout);
        for (const [name, line] of found) assert.equal(line.status, 'ok', `${name}: ${line.detail}`);
        assert.match(found.get('gateway input')!.detail, new RegExp(`^PAM User record ${fixture.userRecordUid as string}, PAM configuration ${fixture.providerRecordUid as string}, from --record and --config \\(stdin is not read\\)$`));
        assert.ok(s.sandbox.log.entries({ service, operation: read }).length > 0, `doctor never read the target (${service} ${read})`);
        assertOnlyReads(s.sandbox);
        assert.equal(snapshot(s.sandbox), before);
        assert.deepEqual(stateFiles(s.env), []);
      }));

    test(`${script}: the same checks catch a real rotation (so they can fail)`, () =>
      withSandbox(script, async (s) => {
        const before = snapshot(s.sandbox);
        s.sandbox.log.clear();
        const r = await s.run(loadFixture(script));
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.notEqual(snapshot(s.sandbox), before);
        assert.throws(() => assertOnlyReads(s.sandbox), /doctor sent /);
        assert.ok(s.sandbox.log.entries().some((e) => WRITES.includes(e.operation)));
      }));
  }
});

describe('--doctor finds what a rotation would stop at', () => {
  const editRecord = (sandbox: Sandbox, uid: string, edit: (data: RecordData) => void) => {
    const data = sandbox.ksm.readRecord(uid)!.data;
    edit(data);
    sandbox.ksm.editRecord(uid, data);
  };

  test('a required custom field left empty: record fields FAIL with RECORD_FIELD_MISSING, exit 2, the target untouched', () =>
    withSandbox('azure-app-secret', async (s) => {
      editRecord(s.sandbox, DEMO.azure.userRecordUid, (d) => {
        d.custom = (d.custom ?? []).filter((f) => f.label !== 'application_object_id');
      });
      const before = snapshot(s.sandbox);
      s.sandbox.log.clear();
      const r = await doctor(s, loadFixture('azure-app-secret'));
      assert.equal(r.code, 2, r.stdout + r.stderr);
      const found = checks(r.stdout);
      assert.equal(found.get('record fields')?.status, 'FAIL');
      assert.match(found.get('record fields')!.detail, /^RECORD_FIELD_MISSING: .*"application_object_id"/);
      assert.equal(status(r, 'admin credentials'), 'ok');
      assert.deepEqual(found.get('settings'), { status: 'skip', detail: 'needs record fields' });
      assert.deepEqual(found.get('target'), { status: 'skip', detail: 'needs settings' });
      assert.match(r.stdout, /^doctor: 12 checks, 8 ok, 1 failed, 3 skipped$/m);
      assert.deepEqual(s.sandbox.log.entries({ service: 'azure' }), []);
      assertOnlyReads(s.sandbox);
      assert.equal(snapshot(s.sandbox), before);
    }));

  test('an empty login (a standard field): RECORD_FIELD_MISSING names it, exit 2', () =>
    withSandbox('aws-iam-access-key', async (s) => {
      editRecord(s.sandbox, DEMO.aws.userRecordUid, (d) => {
        for (const f of d.fields) if (f.type === 'login') f.value = [];
      });
      const r = await doctor(s, loadFixture('aws-iam-access-key'));
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.equal(status(r, 'record fields'), 'FAIL');
      assert.match(checks(r.stdout).get('record fields')!.detail, /^RECORD_FIELD_MISSING: .*"login"/);
      assert.deepEqual(s.sandbox.log.entries({ service: 'iam' }), []);
    }));

  test('a wrong admin secret in the PAM configuration: the target check FAILs with TARGET_AUTH_FAILED, exit 3', () =>
    withSandbox('azure-app-secret', async (s) => {
      const wrong = 'Wr0ng-admin-secret-for-doctor-test';
      editRecord(s.sandbox, DEMO.pamConfigurationUid, (d) => {
        for (const f of d.fields) if (f.label === 'clientSecret') f.value = [wrong];
      });
      const before = snapshot(s.sandbox);
      s.sandbox.log.clear();
      const r = await doctor(s, loadFixture('azure-app-secret'));
      assert.equal(r.code, 3, r.stdout + r.stderr);
      const found = checks(r.stdout);
      for (const name of CHECKS.slice(0, -2)) assert.equal(found.get(name)?.status, 'ok', `${name}: ${found.get(name)?.detail}`);
      assert.equal(found.get('target')?.status, 'FAIL');
      assert.match(found.get('target')!.detail, /^TARGET_AUTH_FAILED: /);
      assert.match(r.stdout, /^doctor: 12 checks, 10 ok, 1 failed, 1 skipped$/m);
      assert.ok(s.sandbox.log.entries({ service: 'azure', operation: 'token' }).length > 0, 'doctor never tried to sign in');
      assertOnlyReads(s.sandbox);
      assert.equal(snapshot(s.sandbox), before);
      assertNoSecret(r, [wrong, ...knownSecrets(s.sandbox)]);
    }));

  test("the Wiz account's own secret is wrong: TARGET_AUTH_FAILED, exit 5 (the record holds nothing that works), nothing rotated", () =>
    withSandbox('wiz-service-account', async (s) => {
      editRecord(s.sandbox, DEMO.wiz.userRecordUid, (d) => {
        for (const f of d.custom ?? []) if (f.label === 'client_secret') f.value = ['not-the-secret-wiz-holds'];
      });
      const before = snapshot(s.sandbox);
      s.sandbox.log.clear();
      const r = await doctor(s, loadFixture('wiz-service-account'));
      assert.equal(r.code, 5, r.stdout + r.stderr);
      assert.equal(status(r, 'target'), 'FAIL');
      assert.match(checks(r.stdout).get('target')!.detail, /^TARGET_AUTH_FAILED: /);
      assertOnlyReads(s.sandbox);
      assert.equal(snapshot(s.sandbox), before);
    }));

  test('a record that does not exist: RECORD_NOT_FOUND, exit 2, every later check skipped', () =>
    withSandbox('azure-app-secret', async (s) => {
      s.sandbox.log.clear();
      const r = await doctor(s, { ...loadFixture('azure-app-secret'), userRecordUid: 'NoSuchRecord0000000000' });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      const found = checks(r.stdout);
      assert.equal(found.get('PAM User record')?.status, 'FAIL');
      assert.match(found.get('PAM User record')!.detail, /^RECORD_NOT_FOUND: .*NoSuchRecord0000000000/);
      for (const name of CHECKS.slice(CHECKS.indexOf('PAM User record') + 1)) assert.equal(found.get(name)?.status, 'skip', name);
      assert.match(r.stdout, /^doctor: 12 checks, 5 ok, 1 failed, 6 skipped$/m);
      assert.deepEqual(s.sandbox.log.entries({ service: 'azure' }), []);
      assertOnlyReads(s.sandbox);
    }));

  test('--record without --config: the PAM configuration is not read, so admin credentials kept there are not found (Azure); a self-rotating Wiz account passes', () =>
    withSandbox('azure-app-secret', async (s) => {
      s.sandbox.log.clear();
      const r = await s.run({}, { args: ['--doctor', '--record', DEMO.azure.userRecordUid] });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      const found = checks(r.stdout);
      assert.equal(found.get('gateway input')?.status, 'ok');
      assert.match(r.stdout, /no --config: the PAM configuration is not read \(Commander's `pam config list` shows its UID\)/);
      assert.equal(found.has('PAM configuration'), false, 'no PAM configuration named, none checked');
      assert.equal(found.get('admin credentials')?.status, 'FAIL');
      assert.match(found.get('admin credentials')!.detail, /^ADMIN_CREDENTIALS_NOT_FOUND: /);
      assert.deepEqual(s.sandbox.log.entries({ service: 'azure' }), []);
      assertOnlyReads(s.sandbox);
    }).then(() =>
      withSandbox('wiz-service-account', async (s) => {
        const r = await s.run({}, { args: ['--doctor', `--record=${DEMO.wiz.userRecordUid}`] });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(checks(r.stdout).get('admin credentials')!.detail, /^from the PAM User record /);
      }),
    ));

  // Issue 16: the doctor's admin credentials check resolves them as a run does, so a record with no keys anywhere
  // fails there unless the gateway owner allows the host's chain; and it says which way this gateway is set.
  test("AWS, no keys anywhere: admin credentials FAIL with ADMIN_CREDENTIALS_NOT_FOUND naming both opt-ins, the host not asked; with KEEPER_ROTATE_AWS_HOST_CREDENTIALS=allow the check says so and the target check signs with the instance role", () =>
    withSandbox('aws-iam-access-key', async (s) => {
      const OPT_IN = 'KEEPER_ROTATE_AWS_HOST_CREDENTIALS';
      const sb = s.sandbox;
      sb.aws.createRole({ roleName: 'gateway-instance', trustedUsers: [], trustedServices: ['ec2.amazonaws.com'], permissions: ['iam:ListAccessKeys', 'iam:CreateAccessKey', 'iam:DeleteAccessKey'] });
      sb.imds.attachRole('gateway-instance');
      const host = { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_SESSION_TOKEN: '', AWS_PROFILE: '', AWS_SHARED_CREDENTIALS_FILE: join(s.dir, 'none'), AWS_CONFIG_FILE: join(s.dir, 'none') };
      const noteOf = (r: ScriptResult) => r.stdout.split('\n').find((l) => l.includes(`- ${OPT_IN}`));

      // The demo record, keys in the PAM configuration: ok, and a note says the host's chain is not allowed here.
      const plain = await s.run({}, { args: ['--doctor', '--record', DEMO.aws.userRecordUid, '--config', DEMO.aws.pamConfigurationUid], env: host });
      assert.equal(plain.code, 0, plain.stdout + plain.stderr);
      assert.match(noteOf(plain) ?? '', new RegExp(`${OPT_IN} is not set: the gateway host's AWS credential chain .* signs only where the gateway owner allows it, with USE_INSTANCE_ROLE in the PAM configuration's accessKeyId and accessSecretKey, or ${OPT_IN}=allow`), plain.stdout);

      // The record's secret cleared, no PAM configuration: nothing holds keys.
      editRecord(sb, DEMO.aws.userRecordUid, (d) => {
        d.custom = (d.custom ?? []).filter((f) => f.label !== 'aws_secret_access_key');
      });
      const before = snapshot(sb);
      sb.log.clear();
      const r = await s.run({}, { args: ['--doctor', '--record', DEMO.aws.userRecordUid], env: host });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      const found = checks(r.stdout);
      assert.equal(found.get('admin credentials')?.status, 'FAIL', r.stdout);
      assert.match(found.get('admin credentials')!.detail, new RegExp(`^ADMIN_CREDENTIALS_NOT_FOUND: .*Not the gateway host's AWS credential chain .*: only the gateway owner allows it, with USE_INSTANCE_ROLE .*, or ${OPT_IN}=allow in the gateway's environment`));
      assert.deepEqual(found.get('target'), { status: 'skip', detail: 'needs settings' });
      assert.deepEqual([...sb.log.entries({ service: 'imds' }), ...sb.log.entries({ service: 'iam' }), ...sb.log.entries({ service: 'sts' })], []);
      assert.equal(snapshot(sb), before);

      // A misspelt opt-in fails the same check, and is not echoed.
      const typo = await s.run({}, { args: ['--doctor', '--record', DEMO.aws.userRecordUid], env: { ...host, [OPT_IN]: 'allowed-please' } });
      assert.equal(typo.code, 2, typo.stdout + typo.stderr);
      assert.match(checks(typo.stdout).get('admin credentials')!.detail, new RegExp(`^SETTING_INVALID: ${OPT_IN} must be allow, or unset`));
      assert.doesNotMatch(typo.stdout + typo.stderr, /allowed-please/);

      // The gateway owner opts in: the check names the host and why, and the target check signs with the instance role.
      sb.log.clear();
      const ok = await s.run({}, { args: ['--doctor', '--record', DEMO.aws.userRecordUid], env: { ...host, [OPT_IN]: 'allow' } });
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      const okChecks = checks(ok.stdout);
      assert.match(okChecks.get('admin credentials')!.detail, new RegExp(`^from the gateway host's AWS credential chain .*, as the gateway's environment allows \\(${OPT_IN}=allow\\)$`));
      assert.match(noteOf(ok) ?? '', new RegExp(`${OPT_IN}=allow: a record with no admin credentials anywhere, or with admin_credentials = host, signs with the gateway host's AWS credential chain`), ok.stdout);
      assert.equal(okChecks.get('target')?.status, 'ok', ok.stdout);
      assert.equal(sb.log.entries({ service: 'imds', operation: 'GetCredentials' }).length, 1);
      assertOnlyReads(sb);
      assert.equal(snapshot(sb), before);
    }));

  for (const [name, args, message] of [
    ['a --record that is no record UID', ['--record', '../etc/passwd-Hunter2-secret'], /^INPUT_INVALID: --record is not a Keeper record UID \(22 URL-safe base64 characters\)$/],
    ['a --config that is no record UID', ['--record', DEMO.azure.userRecordUid, '--config', 'x'.repeat(23)], /^INPUT_INVALID: --config is not a Keeper record UID/],
    ['a --config naming the record itself', ['--record', DEMO.azure.userRecordUid, '--config', DEMO.azure.userRecordUid], /^INPUT_INVALID: --config names the PAM User record itself/],
  ] as const) {
    test(`${name}: the input check FAILs with INPUT_INVALID as the gateway's line would, exit 2, no request, the value not echoed`, () =>
      withSandbox('azure-app-secret', async (s) => {
        s.sandbox.log.clear();
        const r = await s.run({}, { args: ['--doctor', ...args] });
        assert.equal(r.code, 2, r.stdout + r.stderr);
        const found = checks(r.stdout);
        assert.equal(found.get('gateway input')?.status, 'FAIL');
        assert.match(found.get('gateway input')!.detail, message);
        assert.equal(found.get('PAM User record')?.status, 'skip');
        assert.doesNotMatch(r.stdout + r.stderr, /Hunter2/);
        assert.deepEqual(s.sandbox.log.entries(), []);
      }));
  }

  test('a missing gateway config and bad input are both reported, exit 2, and no request is made', () =>
    withSandbox('azure-app-secret', async (s) => {
      s.sandbox.log.clear();
      const r = await s.run({ userRecordUid: '../etc/passwd' }, { args: ['--doctor'], env: { KEEPER_GATEWAY_CONFIG: join(s.dir, 'missing.json') } });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      const found = checks(r.stdout);
      assert.match(found.get('gateway input')!.detail, /^INPUT_INVALID: /);
      assert.match(found.get('gateway config')!.detail, /^CONFIG_NOT_FOUND: .*missing\.json/);
      assert.equal(found.get('gateway input')?.status, 'FAIL');
      assert.equal(found.get('gateway config')?.status, 'FAIL');
      assert.equal(found.get('state folder')?.status, 'skip');
      assert.equal(found.get('PAM User record')?.status, 'skip');
      assert.deepEqual(s.sandbox.log.entries(), []);
    }));

  test('the proxy check names the proxy without its credentials and where Keeper is reached; an unusable one FAILs', () =>
    withSandbox('wiz-service-account', async (s) => {
      const ksm = new URL(s.sandbox.urls.ksm!).host;
      // The proxy is never used: every sandbox host is in NO_PROXY.
      const ok = await s.run(loadFixture('wiz-service-account'), { args: ['--doctor'], env: { ...NO_PROXY_ENV, HTTPS_PROXY: 'http://gw:d0ctor-Passw0rd@127.0.0.1:9', NO_PROXY: 'localhost' } });
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      assert.match(ok.stdout, /^ok {4}proxy: https through http:\/\/127\.0\.0\.1:9 \(HTTPS_PROXY, with credentials\); http direct$/m);
      assert.match(ok.stdout, new RegExp(`^ {6}- Keeper \\(${ksm}\\): direct$`, 'm'));
      s.sandbox.log.clear();
      const bad = await s.run(loadFixture('wiz-service-account'), { args: ['--doctor'], env: { ...NO_PROXY_ENV, HTTPS_PROXY: 'socks5://gw:d0ctor-Passw0rd@127.0.0.1:1080' } });
      assert.equal(bad.code, 2, bad.stdout + bad.stderr);
      const found = checks(bad.stdout);
      assert.match(found.get('proxy')!.detail, /^PROXY_INVALID: HTTPS_PROXY names a "socks5" proxy/);
      assert.equal(found.get('PAM User record')?.status, 'skip');
      assert.deepEqual(s.sandbox.log.entries(), [], 'no request');
      for (const out of [ok.stdout, ok.stderr, bad.stdout, bad.stderr]) assert.ok(!out.includes('d0ctor-Passw0rd'));
    }));

  test("an interrupted run's journal is reported, left as it was, and not recovered", () =>
    withSandbox('azure-app-secret', async (s) => {
      const env = { ...process.env, ...s.env };
      const dir = openStateDir(loadGatewayConfig({ env, platform: process.platform }), { env, platform: process.platform });
      const uid = DEMO.azure.userRecordUid;
      new Journal(dir, loadGatewayConfig({ env, platform: process.platform })).write({
        runId: 'doctor-test',
        target: 'azure-app-secret',
        recordUid: uid,
        phase: 'created',
        since: new Date().toISOString(),
        credentialId: '00000000-0000-4000-8000-000000000001',
        idField: 'client_secret_id',
        principal: `application:${DEMO.azure.targetObjectId.toLowerCase()}`,
      });
      const path = join(dir, `${uid}.journal.json`);
      const journal = readFileSync(path, 'utf8');
      const before = snapshot(s.sandbox);
      s.sandbox.log.clear();
      const r = await doctor(s, loadFixture('azure-app-secret'));
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(status(r, 'state folder'), 'warn');
      assert.match(r.stdout, new RegExp(`stopped at "created" on ${DEMO.azure.targetObjectId.toLowerCase()} .*finishes or undoes it first while the record names that`));
      assert.equal(status(r, 'target'), 'ok');
      assert.match(r.stdout, /^doctor: 12 checks, 11 ok, 0 failed, 1 warning\(s\)$/m);
      assert.equal(readFileSync(path, 'utf8'), journal);
      assert.deepEqual(stateFiles(s.env), [path]);
      assertOnlyReads(s.sandbox);
      assert.equal(snapshot(s.sandbox), before);
    }));

  test('an unreadable journal: state folder FAILs with STATE_DIR_UNAVAILABLE, exit 2, the other checks still run', () =>
    withSandbox('azure-app-secret', async (s) => {
      const env = { ...process.env, ...s.env };
      const dir = openStateDir(loadGatewayConfig({ env, platform: process.platform }), { env, platform: process.platform });
      writeFileSync(join(dir, `${DEMO.azure.userRecordUid}.journal.json`), '{ half a journal');
      const r = await doctor(s, loadFixture('azure-app-secret'));
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.equal(status(r, 'state folder'), 'FAIL');
      assert.match(checks(r.stdout).get('state folder')!.detail, /^STATE_DIR_UNAVAILABLE: /);
      assert.equal(status(r, 'target'), 'ok');
    }));
});
