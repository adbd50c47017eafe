// Issue 14, end to end: what a PAM User record's editor (less trusted than whoever runs the gateway) can make the
// real scripts do with the gateway owner's admin credentials. Each script runs as the gateway runs it, against a
// fresh sandbox. Every refusal is judged from the sandbox: exit 2 with its code, not one Keeper write
// (update_secret, finalize_secret_update, rollback_secret_update), not one request that changes a target, the
// vault and the target's credentials as they were. Each refusal has a control beside it that the same setup
// rotates (or would, without the guard), so the assertions cannot pass by never reaching the target.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { cloneData, writeText } from '../../src/keeper/record.js';
import { DEMO } from '../../src/sandbox/demo-vault.js';
import type { RequestLogEntry } from '../../src/sandbox/faults.js';
import type { Sandbox } from '../../src/sandbox/sandbox.js';
import { type RunOptions, type ScriptResult, type ScriptSandbox, loadFixture, startScriptSandbox } from '../helpers/run-script.js';

const TEST = { timeout: 90_000 };
const ERROR_LINE = /^keeper-rotate: ([A-Z_]+): (.*)$/;
const KEEPER_WRITES = ['update_secret', 'finalize_secret_update', 'rollback_secret_update'];
const TARGET_SERVICES = ['azure', 'iam', 'sts', 'imds', 'wiz-auth', 'wiz-api'];
const TARGET_WRITES = ['addPassword', 'removePassword', 'CreateAccessKey', 'DeleteAccessKey', 'UpdateAccessKey', 'rotateServiceAccountSecret', 'updateServiceAccount'];
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const ADMIN_AWS_PERMISSIONS = ['iam:ListAccessKeys', 'iam:CreateAccessKey', 'iam:DeleteAccessKey', 'iam:UpdateAccessKey'];

type Script = 'azure-app-secret' | 'aws-iam-access-key' | 'wiz-service-account';

interface Run extends ScriptResult {
  error: string | undefined;
  message: string | undefined;
  calls: RequestLogEntry[];
}

async function withSandbox(script: Script, body: (s: ScriptSandbox, sb: Sandbox) => Promise<void>): Promise<void> {
  const s = await startScriptSandbox(script);
  try {
    await body(s, s.sandbox);
  } finally {
    await s.close();
  }
}

async function run(s: ScriptSandbox, params: Record<string, unknown>, options?: RunOptions): Promise<Run> {
  const mark = s.sandbox.log.entries().length;
  const r = await s.run(params, options);
  const line = r.stderr.split('\n').find((l) => l.startsWith('keeper-rotate: '));
  const m = line ? ERROR_LINE.exec(line) : null;
  return { ...r, error: m?.[1], message: m?.[2], calls: s.sandbox.log.entries().slice(mark) };
}

const why = (r: ScriptResult) => `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
const ops = (r: Run) => r.calls.map((c) => `${c.service}/${c.operation}`).join(' ');
const count = (r: Run, service: string, operation?: string) => r.calls.filter((c) => c.service === service && (operation === undefined || c.operation === operation)).length;

/** What a refusal must leave: the whole vault and whatever target state the test names, exactly as before. */
type Snapshot = () => unknown;

async function refused(s: ScriptSandbox, params: Record<string, unknown>, code: string, options: RunOptions & { reads: boolean; state: Snapshot }): Promise<Run> {
  const vault = s.sandbox.ksm.listRecords();
  const state = JSON.stringify(options.state());
  const r = await run(s, params, options);
  const w = `${why(r)}\nrequests: ${ops(r)}`;
  assert.equal(r.code, 2, w);
  assert.equal(r.error, code, w);
  assert.equal(r.stdout.split('\n').filter(Boolean).length, 1, w);
  assert.match(r.stdout, new RegExp(`: failed: ${code}\\b`), w);
  assert.deepEqual(r.calls.filter((c) => c.service === 'ksm' && KEEPER_WRITES.includes(c.operation)), [], `a Keeper write\n${w}`);
  assert.deepEqual(r.calls.filter((c) => TARGET_SERVICES.includes(c.service) && TARGET_WRITES.includes(c.operation)), [], `a target write\n${w}`);
  if (!options.reads) assert.deepEqual(r.calls.filter((c) => TARGET_SERVICES.includes(c.service)), [], `a request to the target\n${w}`);
  assert.deepEqual(s.sandbox.ksm.listRecords(), vault, 'the vault as it was');
  assert.equal(JSON.stringify(options.state()), state, "the target's credentials as they were");
  assert.doesNotMatch(r.stdout + r.stderr, RAW_CONTROL, w);
  return r;
}

function edit(sb: Sandbox, uid: string, changes: Record<string, string | null>): void {
  const data = cloneData(sb.ksm.readRecord(uid)!.data);
  for (const [label, value] of Object.entries(changes)) {
    if (label === 'login') data.fields = data.fields.map((f) => (f.type === 'login' ? { ...f, value: [value ?? ''] } : f));
    else if (value === null) data.custom = (data.custom ?? []).filter((f) => f.label !== label);
    else writeText(data, { label, kind: /secret/.test(label) ? 'secret' : 'text' }, value);
  }
  sb.ksm.editRecord(uid, data);
}

const withRecords = (params: Record<string, unknown>, ...extra: object[]) => ({ ...params, records: [...(params.records as object[]), ...extra] });

// ---------------------------------------------------------------------------------------------------------------

describe('AWS: the admin user is never the rotated user', { concurrency: 4 }, () => {
  const SCRIPT = 'aws-iam-access-key';
  const U = DEMO.aws.userRecordUid;
  const keys = (sb: Sandbox, ...users: string[]) => () => users.map((u) => sb.aws.listKeys(u).map((k) => [k.accessKeyId, k.status]));

  test("the PAM configuration's admin user named as the login: TARGET_IS_ADMIN after the key list, nothing written", TEST, () =>
    withSandbox(SCRIPT, async (s, sb) => {
      edit(sb, U, { login: DEMO.aws.adminUserName });
      const r = await refused(s, loadFixture(SCRIPT), 'TARGET_IS_ADMIN', { reads: true, state: keys(sb, DEMO.aws.adminUserName, DEMO.aws.userName) });
      assert.equal(count(r, 'iam', 'ListAccessKeys'), 1, ops(r));
      assert.match(r.message!, new RegExp(`IAM user ${DEMO.aws.adminUserName} is the admin's own user: the admin key \\S+ \\(PAM configuration ${DEMO.aws.pamConfigurationUid}`));
      // The control: the same record, its login back to the machine user, rotates.
      edit(sb, U, { login: DEMO.aws.userName });
      const ok = await run(s, loadFixture(SCRIPT));
      assert.equal(ok.code, 0, why(ok));
    }),
  );

  test("an attached record's admin user, even with its key ID copied into the record", TEST, () =>
    withSandbox(SCRIPT, async (s, sb) => {
      sb.aws.createUser({ userName: 'attached-admin', permissions: ADMIN_AWS_PERMISSIONS });
      const key = sb.aws.seedAccessKey('attached-admin');
      const params = withRecords(loadFixture(SCRIPT), { uid: 'AttachedAwsAdminRec001', title: 'AWS rotation credential', aws_access_key_id: key.accessKeyId, aws_secret_access_key: key.secretAccessKey });
      edit(sb, U, { login: 'attached-admin', aws_access_key_id: key.accessKeyId });
      await refused(s, params, 'TARGET_IS_ADMIN', { reads: true, state: keys(sb, 'attached-admin', DEMO.aws.userName) });
    }),
  );

  test("the user whose key assumes the admin role (the role session's source user)", TEST, () =>
    withSandbox(SCRIPT, async (s, sb) => {
      sb.aws.createUser({ userName: 'jump-user', permissions: [] });
      const jump = sb.aws.seedAccessKey('jump-user');
      const role = sb.aws.createRole({ roleName: 'key-rotator', trustedUsers: ['jump-user'], permissions: ['iam:*AccessKey*'] });
      const params = withRecords(loadFixture(SCRIPT), { uid: 'AttachedAwsAdminRec001', title: 'AWS rotation credential', aws_access_key_id: jump.accessKeyId, aws_secret_access_key: jump.secretAccessKey, role_arn: role.arn });
      edit(sb, U, { login: 'jump-user' });
      const r = await refused(s, params, 'TARGET_IS_ADMIN', { reads: true, state: keys(sb, 'jump-user', DEMO.aws.userName) });
      assert.equal(count(r, 'sts', 'AssumeRole'), 1, ops(r));
    }),
  );

  test("the gateway host's own user, through the host's credential chain (admin_credentials = host, and no credentials anywhere, on a gateway that allows both)", TEST, () =>
    withSandbox(SCRIPT, async (s, sb) => {
      sb.aws.createUser({ userName: 'gateway-host', permissions: ADMIN_AWS_PERMISSIONS });
      const host = sb.aws.seedAccessKey('gateway-host');
      // The gateway owner's opt-in: without it neither way reaches the host's chain (the next describe).
      const hostEnv = { AWS_ACCESS_KEY_ID: host.accessKeyId, AWS_SECRET_ACCESS_KEY: host.secretAccessKey, KEEPER_ROTATE_AWS_HOST_CREDENTIALS: 'allow' };
      const p = loadFixture(SCRIPT);
      // No PAM configuration: the record's own key would be the admin, unless the record asks for the host.
      const selfParams = { ...p, providerRecordUid: undefined, records: [(p.records as Array<{ uid: string }>).find((r) => r.uid === U)] };
      const state = keys(sb, 'gateway-host', DEMO.aws.userName);
      edit(sb, U, { login: 'gateway-host', admin_credentials: 'host' });
      const viaSetting = await refused(s, selfParams, 'TARGET_IS_ADMIN', { reads: true, state, env: hostEnv });
      assert.match(viaSetting.message!, /the gateway host's AWS credential chain/);
      edit(sb, U, { admin_credentials: null, aws_access_key_id: null, aws_secret_access_key: null });
      await refused(s, selfParams, 'TARGET_IS_ADMIN', { reads: true, state, env: hostEnv });
      // The control: the host rotating another user.
      edit(sb, U, { login: DEMO.aws.userName, aws_access_key_id: sb.aws.listKeys(DEMO.aws.userName)[0]!.accessKeyId });
      const ok = await run(s, selfParams, { env: hostEnv });
      assert.equal(ok.code, 0, why(ok));
      assert.match(ok.stderr, /using admin credentials from the gateway host's AWS credential chain/);
    }),
  );

  test("USE_INSTANCE_ROLE (the gateway host's identity) only from the PAM configuration the input names: in an attached record, the PAM User record, or a configuration the input does not name, ADMIN_CREDENTIALS_INVALID", TEST, () =>
    withSandbox(SCRIPT, async (s, sb) => {
      const MARKER = 'USE_INSTANCE_ROLE';
      // The host has an instance role that could rotate the user, so each refusal is the rule's, not a missing role.
      sb.aws.createRole({ roleName: 'gateway-instance', trustedUsers: [], trustedServices: ['ec2.amazonaws.com'], permissions: ADMIN_AWS_PERMISSIONS });
      sb.imds.attachRole('gateway-instance');
      const hostOnly = { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: '', AWS_SHARED_CREDENTIALS_FILE: `${s.dir}/none`, AWS_CONFIG_FILE: `${s.dir}/none` };
      const state = keys(sb, DEMO.aws.userName);
      const noHostAsked = (r: Run) => assert.equal(count(r, 'imds'), 0, `the host's identity was asked for\n${ops(r)}`);

      // An attached record, which whoever attaches the script may pick, outranks the PAM configuration's keys.
      const attached = { uid: 'AttachedAwsAdminRec001', title: 'AWS rotation credential', aws_access_key_id: MARKER, aws_secret_access_key: MARKER };
      const viaAttached = await refused(s, withRecords(loadFixture(SCRIPT), attached), 'ADMIN_CREDENTIALS_INVALID', { reads: false, state, env: hostOnly });
      assert.match(viaAttached.message!, /attached record AttachedAwsAdminRec001 says USE_INSTANCE_ROLE: only the PAM configuration the gateway input names may ask/);
      noHostAsked(viaAttached);

      // No PAM configuration named: any record shaped like one would be taken for it.
      const p = loadFixture(SCRIPT);
      const lookalike = { uid: 'LookalikePamConfig0001', title: 'not the PAM configuration', accessKeyId: MARKER, accessSecretKey: MARKER };
      const unnamed = { ...p, providerRecordUid: undefined, records: [...(p.records as Array<{ uid: string }>).filter((r) => r.uid === U), lookalike] };
      const viaLookalike = await refused(s, unnamed, 'ADMIN_CREDENTIALS_INVALID', { reads: false, state, env: hostOnly });
      assert.match(viaLookalike.message!, /record LookalikePamConfig0001 \(the gateway input names no PAM configuration\) says USE_INSTANCE_ROLE/);
      noHostAsked(viaLookalike);

      // The PAM User record itself, with no PAM configuration keys to outrank it.
      const selfParams = { ...p, providerRecordUid: undefined, records: (p.records as Array<{ uid: string }>).filter((r) => r.uid === U) };
      edit(sb, U, { aws_access_key_id: MARKER, aws_secret_access_key: MARKER });
      const viaSelf = await refused(s, selfParams, 'ADMIN_CREDENTIALS_INVALID', { reads: false, state, env: hostOnly });
      assert.match(viaSelf.message!, new RegExp(`the PAM User record ${U} says USE_INSTANCE_ROLE`));
      noHostAsked(viaSelf);

      // The control: the PAM configuration saying it rotates with the instance role.
      edit(sb, U, { aws_access_key_id: sb.aws.listKeys(DEMO.aws.userName)[0]!.accessKeyId, aws_secret_access_key: sb.aws.listKeys(DEMO.aws.userName)[0]!.secretAccessKey });
      edit(sb, DEMO.aws.pamConfigurationUid, { accessKeyId: MARKER, accessSecretKey: MARKER });
      const ok = await run(s, loadFixture(SCRIPT), { env: hostOnly });
      assert.equal(ok.code, 0, why(ok));
      assert.equal(count(ok, 'imds', 'GetCredentials'), 1, ops(ok));
    }),
  );

  test("USE_INSTANCE_ROLE whose chain gives an IAM user's key (the host's environment): that user is still never the target", TEST, () =>
    withSandbox(SCRIPT, async (s, sb) => {
      sb.aws.createUser({ userName: 'gateway-host', permissions: ADMIN_AWS_PERMISSIONS });
      const host = sb.aws.seedAccessKey('gateway-host');
      edit(sb, DEMO.aws.pamConfigurationUid, { accessKeyId: 'USE_INSTANCE_ROLE', accessSecretKey: 'USE_INSTANCE_ROLE' });
      edit(sb, U, { login: 'gateway-host', aws_access_key_id: null, aws_secret_access_key: null });
      const env = { AWS_ACCESS_KEY_ID: host.accessKeyId, AWS_SECRET_ACCESS_KEY: host.secretAccessKey };
      const r = await refused(s, loadFixture(SCRIPT), 'TARGET_IS_ADMIN', { reads: true, state: keys(sb, 'gateway-host', DEMO.aws.userName), env });
      assert.match(r.message!, /as PAM configuration \S+ asks \(USE_INSTANCE_ROLE\)/);
      edit(sb, U, { login: DEMO.aws.userName });
      const ok = await run(s, loadFixture(SCRIPT), { env });
      assert.equal(ok.code, 0, why(ok));
    }),
  );

  test('the allow-list: names outside it are refused before any request; paths are read with GetUser', TEST, () =>
    withSandbox(SCRIPT, async (s, sb) => {
      const state = keys(sb, DEMO.aws.userName);
      const byName = await refused(s, loadFixture(SCRIPT), 'TARGET_NOT_ALLOWED', { reads: false, state, env: { KEEPER_ROTATE_ALLOW_AWS_USERS: 'svc-*,ci-?-bot' } });
      assert.match(byName.message!, /KEEPER_ROTATE_ALLOW_AWS_USERS \(svc-\*, ci-\?-bot\)/);
      sb.aws.setPermissions(DEMO.aws.adminUserName, [...ADMIN_AWS_PERMISSIONS, 'iam:GetUser']);
      const byPath = await refused(s, loadFixture(SCRIPT), 'TARGET_NOT_ALLOWED', { reads: true, state, env: { KEEPER_ROTATE_ALLOW_AWS_USERS: 'svc-*, /rotated/' } });
      assert.equal(count(byPath, 'iam', 'GetUser'), 1, ops(byPath));
      assert.equal(count(byPath, 'iam', 'ListAccessKeys'), 0, 'refused before the key list');
      assert.match(byPath.message!, /\(path \/\)/);

      // Inside the list: by name (no GetUser), and by path.
      const named = await run(s, loadFixture(SCRIPT), { env: { KEEPER_ROTATE_ALLOW_AWS_USERS: 'DEMO-*' } });
      assert.equal(named.code, 0, why(named));
      assert.equal(count(named, 'iam', 'GetUser'), 0, ops(named));
      sb.aws.createUser({ userName: 'svc-rotated', path: '/rotated/team/' });
      sb.aws.seedAccessKey('svc-rotated');
      edit(sb, U, { login: 'svc-rotated', aws_access_key_id: null, aws_secret_access_key: null, previous_aws_access_key_id: null });
      const pathed = await run(s, loadFixture(SCRIPT), { env: { KEEPER_ROTATE_ALLOW_AWS_USERS: 'ci-*, /rotated/' } });
      assert.equal(pathed.code, 0, why(pathed));
      assert.equal(count(pathed, 'iam', 'GetUser'), 1, ops(pathed));
    }),
  );
});

// Issue 16: the gateway host's AWS identity (often an instance role worth more than any admin key) is the gateway
// owner's. A record editor who clears the record's keys and attaches nothing, or sets admin_credentials = host,
// must not reach it: only USE_INSTANCE_ROLE in the PAM configuration or the gateway's environment allows it.
describe("AWS: the gateway host's credential chain only where the gateway owner allows it", { concurrency: 4 }, () => {
  const SCRIPT = 'aws-iam-access-key';
  const U = DEMO.aws.userRecordUid;
  const OPT_IN = 'KEEPER_ROTATE_AWS_HOST_CREDENTIALS';
  const keys = (sb: Sandbox) => () => sb.aws.listKeys(DEMO.aws.userName).map((k) => [k.accessKeyId, k.status]);
  /** The host is an EC2 instance whose role could rotate the demo user; nothing else in its chain. */
  const instanceHost = (s: ScriptSandbox, sb: Sandbox) => {
    sb.aws.createRole({ roleName: 'gateway-instance', trustedUsers: [], trustedServices: ['ec2.amazonaws.com'], permissions: ADMIN_AWS_PERMISSIONS });
    sb.imds.attachRole('gateway-instance');
    return { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_SESSION_TOKEN: '', AWS_PROFILE: '', AWS_SHARED_CREDENTIALS_FILE: `${s.dir}/none`, AWS_CONFIG_FILE: `${s.dir}/none` };
  };
  /** No PAM configuration named, nothing attached: the PAM User record alone. */
  const recordOnly = () => {
    const p = loadFixture(SCRIPT);
    return { ...p, providerRecordUid: undefined, records: (p.records as Array<{ uid: string }>).filter((r) => r.uid === U) };
  };
  const BOTH_WAYS = new RegExp(`USE_INSTANCE_ROLE in the PAM configuration's accessKeyId and accessSecretKey, or ${OPT_IN}=allow in the gateway's environment`);

  test('no keys anywhere: ADMIN_CREDENTIALS_NOT_FOUND naming both opt-ins, before any request to AWS or the host; with the opt-in, the instance role rotates', TEST, () =>
    withSandbox(SCRIPT, async (s, sb) => {
      const host = instanceHost(s, sb);
      edit(sb, U, { aws_secret_access_key: null });
      for (const value of [undefined, '', '  ']) {
        const env = value === undefined ? host : { ...host, [OPT_IN]: value };
        const r = await refused(s, recordOnly(), 'ADMIN_CREDENTIALS_NOT_FOUND', { reads: false, state: keys(sb), env });
        assert.match(r.message!, BOTH_WAYS, why(r));
      }
      // The control: the gateway owner opts in, and the same record signs with the host's instance role.
      const ok = await run(s, recordOnly(), { env: { ...host, [OPT_IN]: 'allow' } });
      assert.equal(ok.code, 0, why(ok));
      assert.equal(count(ok, 'imds', 'GetCredentials'), 1, ops(ok));
      assert.match(ok.stderr, new RegExp(`using admin credentials from the gateway host's AWS credential chain .*, as the gateway's environment allows \\(${OPT_IN}=allow\\)`));
    }),
  );

  test('admin_credentials = host: SETTING_INVALID before any request, whatever else holds keys; with the opt-in, the instance role rotates', TEST, () =>
    withSandbox(SCRIPT, async (s, sb) => {
      const host = instanceHost(s, sb);
      edit(sb, U, { admin_credentials: 'host' });
      // The record's own key, and the PAM configuration's, would both sign: the setting is refused, not skipped.
      for (const params of [recordOnly(), loadFixture(SCRIPT)]) {
        const r = await refused(s, params, 'SETTING_INVALID', { reads: false, state: keys(sb), env: host });
        assert.match(r.message!, /admin_credentials = host asks for the gateway host's AWS credential chain/, why(r));
        assert.match(r.message!, BOTH_WAYS, why(r));
      }
      const ok = await run(s, recordOnly(), { env: { ...host, [OPT_IN]: 'allow' } });
      assert.equal(ok.code, 0, why(ok));
      assert.equal(count(ok, 'imds', 'GetCredentials'), 1, ops(ok));
    }),
  );

  test('the opt-in misspelt: SETTING_INVALID on every run, before any request, the value not echoed', TEST, () =>
    withSandbox(SCRIPT, async (s, sb) => {
      const r = await refused(s, loadFixture(SCRIPT), 'SETTING_INVALID', { reads: false, state: keys(sb), env: { [OPT_IN]: 'allowed-please' } });
      assert.match(r.message!, new RegExp(`${OPT_IN} must be allow, or unset`));
      assert.doesNotMatch(r.stdout + r.stderr, /allowed-please/);
      const ok = await run(s, loadFixture(SCRIPT), { env: { [OPT_IN]: ' Allow ' } });
      assert.equal(ok.code, 0, why(ok));
      assert.equal(count(ok, 'imds'), 0, 'keys in the PAM configuration come first: the host is not asked');
    }),
  );
});

describe('Azure: the admin app is never the rotated app, and the allow-list holds', { concurrency: 4 }, () => {
  const SCRIPT = 'azure-app-secret';
  const A = DEMO.azure;
  const U = A.userRecordUid;
  const secrets = (sb: Sandbox, ...apps: string[]) => () => apps.map((id) => sb.azure.getApp(id)!.secrets.map((x) => [x.keyId, x.secretText]));

  test('the admin app by object ID (after one read) and by client ID (before any request), from the PAM configuration and from an attached record', TEST, () =>
    withSandbox(SCRIPT, async (s, sb) => {
      const state = secrets(sb, A.adminObjectId, A.targetObjectId);
      edit(sb, U, { application_object_id: A.adminObjectId });
      const byObject = await refused(s, loadFixture(SCRIPT), 'TARGET_IS_ADMIN', { reads: true, state });
      assert.equal(count(byObject, 'azure', 'getApplication'), 1, ops(byObject));
      edit(sb, U, { application_object_id: A.adminAppId });
      await refused(s, loadFixture(SCRIPT), 'TARGET_IS_ADMIN', { reads: false, state });

      // Another admin, attached to the script, naming itself.
      const appId = randomUUID();
      const other = sb.azure.createApp({ tenantId: A.tenantId, displayName: 'attached-admin', appId, permission: 'Application.ReadWrite.All' });
      const secret = sb.azure.addSecret(other.objectId, { displayName: 'admin' });
      const attached = { uid: 'AttachedAzureAdmin0001', title: 'Azure rotation credential', application_client_id: appId, client_secret: secret.secretText, tenant_id: A.tenantId };
      edit(sb, U, { application_object_id: other.objectId });
      await refused(s, withRecords(loadFixture(SCRIPT), attached), 'TARGET_IS_ADMIN', { reads: true, state: secrets(sb, other.objectId, A.targetObjectId) });
      // The control: the attached admin rotates the demo app.
      edit(sb, U, { application_object_id: A.targetObjectId });
      const ok = await run(s, withRecords(loadFixture(SCRIPT), attached));
      assert.equal(ok.code, 0, why(ok));
    }),
  );

  test("an admin with Application.ReadWrite.All and remove_other_secrets on someone else's app: done without an allow-list, refused with 'owned' or by ID", TEST, () =>
    withSandbox(SCRIPT, async (s, sb) => {
      // A broad admin, as the issue found it: it may change every app of the tenant.
      const appId = randomUUID();
      const broad = sb.azure.createApp({ tenantId: A.tenantId, displayName: 'broad-admin', appId, permission: 'Application.ReadWrite.All' });
      const broadSecret = sb.azure.addSecret(broad.objectId, { displayName: 'admin' });
      const attached = { uid: 'AttachedAzureAdmin0001', title: 'Azure rotation credential', application_client_id: appId, client_secret: broadSecret.secretText, tenant_id: A.tenantId };
      const params = withRecords(loadFixture(SCRIPT), attached);
      const victim = () => {
        const app = sb.azure.createApp({ tenantId: A.tenantId, displayName: `someone-elses-app-${randomUUID().slice(0, 8)}` });
        const theirs = sb.azure.addSecret(app.objectId, { displayName: 'their production secret' });
        return { app, theirs };
      };
      edit(sb, U, { remove_other_secrets: 'true' });

      // The control shows the danger: without an allow-list, the editor's record takes the app over.
      const first = victim();
      edit(sb, U, { application_object_id: first.app.objectId });
      const taken = await run(s, params);
      assert.equal(taken.code, 0, why(taken));
      assert.ok(!sb.azure.checkSecret(A.tenantId, first.app.appId, first.theirs.secretText), "without an allow-list the app's own secret is gone");

      const second = victim();
      edit(sb, U, { application_object_id: second.app.objectId });
      const state = secrets(sb, second.app.objectId);
      const owned = await refused(s, params, 'TARGET_NOT_ALLOWED', { reads: true, state, env: { KEEPER_ROTATE_ALLOW_AZURE_APPS: 'owned' } });
      assert.equal(count(owned, 'azure', 'listOwners'), 1, ops(owned));
      assert.match(owned.message!, /which the admin app does not own/);
      await refused(s, params, 'TARGET_NOT_ALLOWED', { reads: true, state, env: { KEEPER_ROTATE_ALLOW_AZURE_APPS: A.targetObjectId } });
      assert.ok(sb.azure.checkSecret(A.tenantId, second.app.appId, second.theirs.secretText), "the app's own secret still works");
    }),
  );

  test("inside the allow-list: the demo app by object ID or client ID, and as an app the admin owns (its owners read once, the admin known by its token's oid)", TEST, () =>
    withSandbox(SCRIPT, async (s, sb) => {
      const byId = await run(s, loadFixture(SCRIPT), { env: { KEEPER_ROTATE_ALLOW_AZURE_APPS: `${randomUUID()}, ${A.targetAppId.toUpperCase()}` } });
      assert.equal(byId.code, 0, why(byId));
      assert.equal(count(byId, 'azure', 'listOwners'), 0, ops(byId));
      const owned = await run(s, loadFixture(SCRIPT), { env: { KEEPER_ROTATE_ALLOW_AZURE_APPS: 'Owned' } });
      assert.equal(owned.code, 0, why(owned));
      assert.equal(count(owned, 'azure', 'listOwners'), 1, ops(owned));
    }),
  );
});

describe('Wiz: the admin account is never the rotated account, and the allow-list holds', { concurrency: 4 }, () => {
  const SCRIPT = 'wiz-service-account';
  const U = DEMO.wiz.userRecordUid;
  const accounts = (sb: Sandbox) => () => sb.wiz.listServiceAccounts().map((a) => [a.clientId, a.clientSecret, a.expiresAt, a.lastRotatedAt]);

  test('an admin account naming itself as the login: TARGET_IS_ADMIN before any request', TEST, () =>
    withSandbox(SCRIPT, async (s, sb) => {
      const admin = sb.wiz.createServiceAccount({ name: 'keeper-rotate-admin' });
      const attached = { uid: 'AttachedWizAdminRec001', title: 'Wiz rotation credential', wiz_client_id: admin.clientId, wiz_client_secret: admin.clientSecret };
      edit(sb, U, { login: admin.clientId });
      await refused(s, withRecords(loadFixture(SCRIPT), attached), 'TARGET_IS_ADMIN', { reads: false, state: accounts(sb) });
      edit(sb, U, { login: DEMO.wiz.clientId });
      const ok = await run(s, withRecords(loadFixture(SCRIPT), attached));
      assert.equal(ok.code, 0, why(ok));
    }),
  );

  test('an account name outside KEEPER_ROTATE_ALLOW_WIZ_ACCOUNTS: refused once Wiz names it, before the write check and the rotation', TEST, () =>
    withSandbox(SCRIPT, async (s, sb) => {
      const r = await refused(s, loadFixture(SCRIPT), 'TARGET_NOT_ALLOWED', { reads: true, state: accounts(sb), env: { KEEPER_ROTATE_ALLOW_WIZ_ACCOUNTS: 'prod-*, DEMO-ci-scanner' } });
      assert.equal(count(r, 'wiz-api', 'serviceAccounts'), 1, ops(r));
      assert.match(r.message!, new RegExp(`Wiz service account ${DEMO.wiz.accountName} .*is not in this gateway's allow-list`));
      const ok = await run(s, loadFixture(SCRIPT), { env: { KEEPER_ROTATE_ALLOW_WIZ_ACCOUNTS: 'prod-*, demo-ci-*' } });
      assert.equal(ok.code, 0, why(ok));
    }),
  );
});

describe('a record made for another script: RECORD_WRONG_SCRIPT naming the one that fits, before any request to any target', { concurrency: 3 }, () => {
  const scripts: Script[] = ['azure-app-secret', 'aws-iam-access-key', 'wiz-service-account'];
  for (const script of scripts) {
    for (const owner of scripts.filter((x) => x !== script)) {
      test(`${script} run on the demo ${owner} record`, TEST, () =>
        withSandbox(script, async (s, sb) => {
          const state = () => [
            sb.azure.getApp(DEMO.azure.targetObjectId)!.secrets.map((x) => x.keyId),
            sb.aws.listKeys(DEMO.aws.userName).map((k) => k.accessKeyId),
            sb.wiz.listServiceAccounts().map((a) => [a.clientSecret, a.lastLoginAt]),
          ];
          // The other script's own fixture: its record, its PAM configuration, as the gateway would send them.
          const r = await refused(s, loadFixture(owner), 'RECORD_WRONG_SCRIPT', { reads: false, state });
          assert.match(r.message!, new RegExp(`attach ${owner} to it instead`), why(r));
          assert.doesNotMatch(r.stderr, /using admin credentials/, 'no admin credentials were picked');
        }),
      );
    }
  }

  test('the doctor says the same in its record fields check', TEST, () =>
    withSandbox('wiz-service-account', async (s) => {
      const r = await s.run(loadFixture('azure-app-secret'), { args: ['--doctor'] });
      assert.equal(r.code, 2, why(r));
      assert.match(r.stdout, /^FAIL {2}record fields: RECORD_WRONG_SCRIPT: .*application_object_id.*attach azure-app-secret/m);
      assert.equal(s.sandbox.log.entries().filter((c) => TARGET_SERVICES.includes(c.service)).length, 0);
    }),
  );
});

describe('--doctor reports the allow-list', { concurrency: 2 }, () => {
  test('unset, set, and set to something else than the record names (the target check then fails, reading only)', TEST, () =>
    withSandbox('aws-iam-access-key', async (s) => {
      const unset = await s.run(loadFixture('aws-iam-access-key'), { args: ['--doctor'] });
      assert.equal(unset.code, 0, why(unset));
      assert.match(unset.stdout, /^ok {4}allow-list: KEEPER_ROTATE_ALLOW_AWS_USERS is not set: any IAM user the admin credentials can manage, except the admin's own$/m);
      const set = await s.run(loadFixture('aws-iam-access-key'), { args: ['--doctor'], env: { KEEPER_ROTATE_ALLOW_AWS_USERS: 'demo-*' } });
      assert.equal(set.code, 0, why(set));
      assert.match(set.stdout, /^ok {4}allow-list: KEEPER_ROTATE_ALLOW_AWS_USERS: only user names matching demo-\*; never the admin's own user$/m);
      const outside = await s.run(loadFixture('aws-iam-access-key'), { args: ['--doctor'], env: { KEEPER_ROTATE_ALLOW_AWS_USERS: 'svc-*' } });
      assert.equal(outside.code, 2, why(outside));
      assert.match(outside.stdout, /^FAIL {2}settings: TARGET_NOT_ALLOWED: IAM user demo-deploy-bot is not in/m);
      const malformed = await s.run(loadFixture('aws-iam-access-key'), { args: ['--doctor'], env: { KEEPER_ROTATE_ALLOW_AWS_USERS: 'a b' } });
      assert.equal(malformed.code, 2, why(malformed));
      assert.match(malformed.stdout, /^FAIL {2}allow-list: SETTING_INVALID: /m);
    }),
  );

  test('Azure with owned: the target check reads the owners, and fails for an app the admin does not own', TEST, () =>
    withSandbox('azure-app-secret', async (s, sb) => {
      const ok = await s.run(loadFixture('azure-app-secret'), { args: ['--doctor'], env: { KEEPER_ROTATE_ALLOW_AZURE_APPS: 'owned' } });
      assert.equal(ok.code, 0, why(ok));
      assert.match(ok.stdout, /^ok {4}allow-list: KEEPER_ROTATE_ALLOW_AZURE_APPS: only applications the admin app owns/m);
      const app = sb.azure.createApp({ tenantId: DEMO.azure.tenantId, displayName: 'not-ours' });
      edit(sb, DEMO.azure.userRecordUid, { application_object_id: app.objectId });
      const no = await s.run(loadFixture('azure-app-secret'), { args: ['--doctor'], env: { KEEPER_ROTATE_ALLOW_AZURE_APPS: 'owned' } });
      assert.equal(no.code, 2, why(no));
      assert.match(no.stdout, /^FAIL {2}target: TARGET_NOT_ALLOWED: /m);
    }),
  );
});
