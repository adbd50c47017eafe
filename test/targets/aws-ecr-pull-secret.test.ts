// aws-ecr-pull-secret: its ECR client (the real @aws-sdk/client-ecr) and registry check against the sandbox, the
// Docker config and its redaction, the settings, delivery from the record, and whole runs of the real script in a
// child process, fed as the gateway feeds it. After every run the sandbox's own state decides: the record's Docker
// config opens the registry (exit 0), or the record is as it was (exit 2, 3), and no form of any login the
// sandbox ever issued reached the output.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { Deadline } from '../../src/deadline.js';
import { RotateError } from '../../src/errors.js';
import { readText, writeText, cloneData } from '../../src/keeper/record.js';
import type { RecordData } from '../../src/keeper/record-data.js';
import { ECR_TOKEN_LIFETIME_MS } from '../../src/sandbox/aws/index.js';
import { DEMO } from '../../src/sandbox/demo-vault.js';
import type { RecordView } from '../../src/sandbox/ksm/index.js';
import { type Sandbox, startSandbox } from '../../src/sandbox/sandbox.js';
import { Secret, redact } from '../../src/secret.js';
import { awsEcrPullSecret, ecrDelivery, loginRequests } from '../../src/targets/aws-ecr-pull-secret/index.js';
import { EcrLogins, dockerConfigJson, passwordOf, verifyRegistry } from '../../src/targets/aws-ecr-pull-secret/ecr.js';
import { readDockerConfig } from '../../src/targets/aws-ecr-pull-secret/docker-config.js';
import { checkRecordShape } from '../../src/targets/record-shape.js';
import { type RunOptions, type ScriptResult, type ScriptSandbox, loadFixture, startScriptSandbox } from '../helpers/run-script.js';

const SCRIPT = 'aws-ecr-pull-secret';
const UID = DEMO.ecr.userRecordUid;
const TEST = { timeout: 90_000 };
const deadline = () => new Deadline(60_000, Date.now, 10_000);
const record = (custom: Array<[string, string]>): RecordData => ({ title: 't', type: 'pamUser', fields: [], custom: custom.map(([label, v]) => ({ type: 'text', label, value: [v] })) });

async function rejects(p: Promise<unknown>): Promise<RotateError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof RotateError, `a RotateError, not ${String(err)}`);
    return err;
  }
  assert.fail('it did not throw');
}

describe('the ECR client against the sandbox', () => {
  let sb: Sandbox;
  let keys: { accessKeyId: string; secretAccessKey: Secret };
  before(async () => {
    sb = await startSandbox({ demo: false, realism: false });
    sb.aws.createUser({ userName: 'puller', permissions: ['ecr:GetAuthorizationToken'] });
    sb.aws.createUser({ userName: 'iam-only', permissions: ['iam:*'] });
    const k = sb.aws.seedAccessKey('puller');
    keys = { accessKeyId: k.accessKeyId, secretAccessKey: new Secret(k.secretAccessKey) };
  });
  after(() => sb.close());

  const withLogins = async <T>(fn: (l: EcrLogins) => Promise<T>, signer: { accessKeyId: string; secretAccessKey: Secret } = keys): Promise<T> => {
    const l = new EcrLogins(sb.urls.ecr, signer, deadline());
    try {
      return await fn(l);
    } finally {
      l.destroy();
    }
  };

  test('a login per region opens the registry; expired or revoked, it does not', async () => {
    const [login] = await withLogins((l) => l.logins('us-east-1', []));
    assert.ok(login);
    assert.equal(login.proxyEndpoint, sb.urls['ecr-registry']);
    assert.equal(sb.ecrTokens.check(login.password.reveal()), 'live');
    assert.deepEqual(await verifyRegistry(login.proxyEndpoint, login.password, deadline()), { ok: true });

    const [other] = await withLogins((l) => l.logins('us-east-1', []));
    sb.ecrTokens.revoke(other!.password.reveal());
    const revoked = await verifyRegistry(other!.proxyEndpoint, other!.password, deadline());
    assert.equal(revoked.ok, false);
    assert.match(!revoked.ok ? revoked.reason : '', /HTTP 401 DENIED/);
    assert.equal(!revoked.ok && revoked.throttled, undefined);

    sb.ecrTokens.advance(ECR_TOKEN_LIFETIME_MS);
    const expired = await verifyRegistry(login.proxyEndpoint, login.password, deadline());
    assert.equal(expired.ok, false, 'a login 12 hours old no longer opens the registry');
  });

  test('a throttled registry is "not yet" with its Retry-After; another status throws', async () => {
    const [login] = await withLogins((l) => l.logins('us-east-1', []));
    sb.faults.arm({ service: 'ecr-registry', operation: 'ApiVersionCheck', kind: 'throttle', retryAfterSeconds: 7 });
    assert.deepEqual(await verifyRegistry(login!.proxyEndpoint, login!.password, deadline()), { ok: false, throttled: true, reason: `registry ${new URL(login!.proxyEndpoint).host} throttled the check (HTTP 429)`, retryAfterMs: 7000 });
    sb.faults.arm({ service: 'ecr-registry', operation: 'ApiVersionCheck', kind: 'status', status: 503, body: '' });
    const unavailable = await verifyRegistry(login!.proxyEndpoint, login!.password, deadline());
    assert.equal(!unavailable.ok && unavailable.throttled, true);
    sb.faults.arm({ service: 'ecr-registry', operation: 'ApiVersionCheck', kind: 'status', status: 500, body: '{}' });
    const failed = await rejects(verifyRegistry(login!.proxyEndpoint, login!.password, deadline()));
    assert.equal(failed.code, 'TARGET_REQUEST_FAILED');
    assert.equal((await verifyRegistry(login!.proxyEndpoint, login!.password, deadline())).ok, true, 'the faults are spent');
  });

  test('refusals become coded errors, all marked refused (a login request makes nothing)', async () => {
    const k = sb.aws.seedAccessKey('iam-only');
    const denied = await rejects(withLogins((l) => l.logins('us-east-1', []), { accessKeyId: k.accessKeyId, secretAccessKey: new Secret(k.secretAccessKey) }));
    assert.equal(denied.code, 'TARGET_PERMISSION_DENIED');
    assert.equal(denied.refused, true);
    const badKey = await rejects(withLogins((l) => l.logins('us-east-1', []), { ...keys, secretAccessKey: new Secret('y'.repeat(40)) }));
    assert.equal(badKey.code, 'TARGET_AUTH_FAILED');
    // A 503 the SDK retries three times, then gives up: an unknown outcome for most calls, not for this one.
    sb.faults.arm({ service: 'ecr', operation: 'GetAuthorizationToken', kind: 'status', status: 503, body: '{"__type":"ServerException","message":"down"}', times: 3 });
    const down = await rejects(withLogins((l) => l.logins('us-east-1', [])));
    assert.equal(down.code, 'TARGET_REQUEST_FAILED');
    assert.equal(down.refused, true);
  });

  test('throttling is honoured: the SDK waits and retries, and past its retries it is TARGET_THROTTLED', async () => {
    sb.faults.arm({ service: 'ecr', operation: 'GetAuthorizationToken', kind: 'throttle', times: 2 });
    const mark = sb.log.entries({ service: 'ecr' }).length;
    const logins = await withLogins((l) => l.logins('us-east-1', []));
    assert.equal(logins.length, 1);
    assert.deepEqual(sb.log.entries({ service: 'ecr' }).slice(mark).map((e) => e.status), [400, 400, 200]);
    sb.faults.arm({ service: 'ecr', operation: 'GetAuthorizationToken', kind: 'throttle', times: 3 });
    const throttled = await rejects(withLogins((l) => l.logins('us-east-1', [])));
    assert.equal(throttled.code, 'TARGET_THROTTLED');
  });

  test('a login echoed in an error reply reaches no message: the SDK error is kept scrubbed', async () => {
    const issued = sb.ecrTokens.list().length;
    sb.faults.arm({ service: 'ecr', operation: 'GetAuthorizationToken', kind: 'status', status: 500, after: true, body: '{"__type":"ServerException","message":"{{reply:json}}"}', times: 3 });
    const e = await rejects(withLogins((l) => l.logins('us-east-1', [])));
    const made = sb.ecrTokens.list().slice(issued);
    assert.equal(made.length, 3, 'each attempt made a login the client never saw');
    const text = `${e.message}\n${inspect(e, { depth: 8, showHidden: true })}`;
    for (const t of made) {
      assert.equal(text.includes(t.password), false, 'a password is in the error');
      assert.equal(text.includes(Buffer.from(`AWS:${t.password}`).toString('base64')), false, 'a token is in the error');
    }
  });

  test('a 200 without authorizationData is a coded error, not an empty list of logins', async () => {
    sb.faults.arm({ service: 'ecr', operation: 'GetAuthorizationToken', kind: 'status', status: 200, body: '{"authorizationData":[]}' });
    const e = await rejects(withLogins((l) => l.logins('us-east-1', [])));
    assert.equal(e.code, 'TARGET_REQUEST_FAILED');
    assert.match(e.message, /holds no authorizationData/);
  });
});

describe('the Docker config and its secrets', () => {
  const login = (host: string, password: string) => ({ region: 'us-east-1', proxyEndpoint: `https://${host}`, password: new Secret(password), expiresAt: new Date() });

  test('has an entry per registry host with user AWS, the password and base64("AWS:" + password)', () => {
    const a = 'pw-a-' + 'A'.repeat(40);
    const b = 'pw-b-' + 'B'.repeat(40);
    const config = dockerConfigJson([login('111122223333.dkr.ecr.us-east-1.amazonaws.com', a), login('444455556666.dkr.ecr.eu-west-1.amazonaws.com', b), login('111122223333.dkr.ecr.us-east-1.amazonaws.com', 'pw-c-' + 'C'.repeat(40))]);
    assert.ok(config instanceof Secret);
    assert.equal(String(config), '[secret]');
    assert.deepEqual(JSON.parse(config.reveal()), {
      auths: {
        '111122223333.dkr.ecr.us-east-1.amazonaws.com': { username: 'AWS', password: a, auth: Buffer.from(`AWS:${a}`).toString('base64') },
        '444455556666.dkr.ecr.eu-west-1.amazonaws.com': { username: 'AWS', password: b, auth: Buffer.from(`AWS:${b}`).toString('base64') },
      },
    });
  });

  test('every form of a login is scrubbed from text: token, password, auth, the whole JSON and its base64', () => {
    const password = 'eyJwYXlsb2FkIjoi' + 'Qk'.repeat(60);
    const token = Buffer.from(`AWS:${password}`).toString('base64');
    // Only the password is wrapped here: every other form must be registered by the builder itself.
    const config = dockerConfigJson([login('111122223333.dkr.ecr.us-east-1.amazonaws.com', password)]).reveal();
    const forms = { token, password, config, configBase64: Buffer.from(config).toString('base64'), configInJson: JSON.stringify(config).slice(1, -1) };
    for (const [name, form] of Object.entries(forms)) {
      const out = redact(`before ${form} after`);
      // The longer forms may be scrubbed piece by piece (the password inside the JSON first): what counts is
      // that no form of the login is left.
      for (const [other, value] of Object.entries(forms)) assert.equal(out.includes(value), false, `${other} is left in the scrubbed ${name}`);
      assert.match(out, /^before .*\[secret\].* after$/, name);
    }
    assert.equal(passwordOf(new Secret(token))?.reveal(), password);
    assert.equal(passwordOf(new Secret(Buffer.from('admin:x').toString('base64'))), undefined, 'not a login of user AWS');
  });

  test('read back from a record: checked, registered, and refused when it is not a login config', () => {
    const password = 'stored-' + 'D'.repeat(50);
    const text = JSON.stringify({ auths: { 'localhost:5000': { username: 'AWS', password, auth: Buffer.from(`AWS:${password}`).toString('base64') } } });
    const stored = readDockerConfig(text, 'f');
    assert.deepEqual(stored.hosts, ['localhost:5000']);
    assert.equal(redact(Buffer.from(`AWS:${password}`).toString('base64')), '[secret]');
    for (const bad of ['not json', '{}', '{"auths":{}}', '{"auths":{"h":{"username":"root","password":"x"}}}', '{"auths":{"bad host/":{"username":"AWS","password":"x"}}}']) {
      assert.throws(() => readDockerConfig(bad, 'f'), (e: unknown) => e instanceof RotateError && e.code === 'RECORD_FIELD_INVALID' && !e.message.includes(bad.slice(0, 20).replace('{', 'x')), bad);
    }
  });
});

describe('settings and record shape', () => {
  test('registries and regions become one request per region', () => {
    assert.deepEqual(loginRequests(undefined, undefined, 'us-east-1'), [{ region: 'us-east-1', registryIds: [] }]);
    assert.deepEqual(loginRequests(undefined, 'us-east-1, eu-west-1', 'us-west-2'), [
      { region: 'us-east-1', registryIds: [] },
      { region: 'eu-west-1', registryIds: [] },
    ]);
    assert.deepEqual(loginRequests('111122223333,444455556666.dkr.ecr.eu-west-1.amazonaws.com', 'us-east-1', 'us-west-2'), [
      { region: 'eu-west-1', registryIds: ['444455556666'] },
      { region: 'us-east-1', registryIds: ['111122223333'] },
    ]);
    assert.deepEqual(loginRequests('444455556666.dkr.ecr.eu-west-1.amazonaws.com', undefined, 'us-west-2'), [{ region: 'eu-west-1', registryIds: ['444455556666'] }]);
    const tooMany = Array.from({ length: 11 }, (_, i) => String(100000000000 + i)).join(',');
    assert.throws(() => loginRequests(tooMany, undefined, 'us-east-1'), (e: unknown) => e instanceof RotateError && e.code === 'SETTING_INVALID');
  });

  test('a record may name only ECR\'s own registry hosts', () => {
    const spec = awsEcrPullSecret.settings.registries!;
    assert.equal(spec.kind, 'pattern');
    const pattern = spec.kind === 'pattern' ? spec.pattern : /$^/;
    assert.ok(pattern.test('123456789012.dkr.ecr.us-east-1.amazonaws.com, 210987654321'));
    for (const hostile of ['123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example', 'evil.example', '123456789012.dkr.ecr.us-east-1.amazonaws.com/v2', 'https://123456789012.dkr.ecr.us-east-1.amazonaws.com']) {
      assert.equal(pattern.test(hostile), false, hostile);
    }
  });

  test('an ECR record may hold an AWS key; the IAM script refuses it, and the ECR script refuses an IAM record', () => {
    const ecr = record([['aws_access_key_id', 'AKIAAAAAAAAAAAAAAAAA'], ['aws_secret_access_key', 's'], ['ecr_regions', 'us-east-1']]);
    assert.doesNotThrow(() => checkRecordShape('aws-ecr-pull-secret', 'u', ecr));
    assert.throws(() => checkRecordShape('aws-iam-access-key', 'u', ecr), (e: unknown) => e instanceof RotateError && e.code === 'RECORD_WRONG_SCRIPT' && /aws-ecr-pull-secret/.test(e.message));
    const iam = record([['aws_access_key_id', 'AKIAAAAAAAAAAAAAAAAA'], ['aws_secret_access_key', 's'], ['CreateDate', '2026-01-01T00:00:00Z']]);
    assert.doesNotThrow(() => checkRecordShape('aws-iam-access-key', 'u', iam));
    assert.throws(() => checkRecordShape('aws-ecr-pull-secret', 'u', iam), (e: unknown) => e instanceof RotateError && e.code === 'RECORD_WRONG_SCRIPT' && /attach aws-iam-access-key/.test(e.message));
  });
});

describe('delivery', () => {
  test('the payload carries the record\'s Docker config as dockerConfigJson, read from the record alone', () => {
    const password = 'deliver-' + 'E'.repeat(50);
    const text = JSON.stringify({ auths: { 'localhost:5000': { username: 'AWS', password, auth: Buffer.from(`AWS:${password}`).toString('base64') } } });
    const data = record([['ecr_token_id', 'ecr-0123456789abcdef'], ['ecr_token_expires', '2026-01-01T12:00:00.000Z']]);
    writeText(data, { label: 'ecr_docker_config_json', kind: 'secret' }, text);
    const payload = ecrDelivery(data)!;
    assert.equal(payload.target, 'aws-ecr-pull-secret');
    assert.equal(payload.credentialId, 'ecr-0123456789abcdef');
    assert.equal(payload.dockerConfigJson?.reveal(), text);
    assert.equal(JSON.stringify(payload).includes(password), false, 'the payload prints no secret');
    assert.match(payload.fingerprint, /^[0-9a-f]{32}$/);
    assert.equal(payload.fingerprint.includes(password.slice(0, 8)), false);
    // Nothing to deliver yet: a record fresh from the template.
    assert.equal(ecrDelivery(record([['ecr_docker_config_json', 'set-by-rotation']])), undefined);
    const broken = record([]);
    writeText(broken, { label: 'ecr_docker_config_json', kind: 'secret' }, '{"auths":{}}');
    assert.throws(() => ecrDelivery(broken), (e: unknown) => e instanceof RotateError && e.code === 'RECORD_FIELD_INVALID');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Whole runs.

interface Run extends ScriptResult {
  error: string | undefined;
  before: RecordView;
  after: RecordView;
}

async function withScript(fn: (s: ScriptSandbox, sb: Sandbox) => Promise<void>): Promise<void> {
  const s = await startScriptSandbox(SCRIPT);
  try {
    await fn(s, s.sandbox);
  } finally {
    await s.close();
  }
}

/** Every form of every login and key the sandbox issued, the Docker configs the record ever held included. */
function secretForms(sb: Sandbox, configs: string[]): string[] {
  const values = [...sb.aws.issued];
  for (const v of [...values]) if (!v.startsWith('AWS:')) values.push(Buffer.from(`AWS:${v}`).toString('base64'));
  for (const c of configs) values.push(c, Buffer.from(c).toString('base64'));
  return values;
}

async function rotate(s: ScriptSandbox, options: { params?: Record<string, unknown>; run?: RunOptions } = {}): Promise<Run> {
  const sb = s.sandbox;
  const before = sb.ksm.readRecord(UID)!;
  const result = await s.run(options.params ?? loadFixture(SCRIPT), options.run);
  const after = sb.ksm.readRecord(UID)!;
  const why = `exit ${result.code}\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`;
  const configs = [before, after].map((r) => readText(r.data, 'ecr_docker_config_json')).filter((c): c is string => c !== undefined);
  const output = result.stdout + result.stderr;
  const leaked = secretForms(sb, configs).filter((v) => v.length >= 6 && output.includes(v)).length;
  assert.equal(leaked, 0, `${leaked} secret value(s) in the output\n${why}`);
  const errorLine = result.stderr.split('\n').find((l) => l.startsWith('keeper-rotate: '));
  const run: Run = { ...result, error: errorLine ? /^keeper-rotate: ([A-Z_]+): /.exec(errorLine)?.[1] : undefined, before, after };
  if (result.code === 0) {
    assert.equal(run.error, undefined, why);
    assert.equal(after.transaction, undefined, `exit 0 left a transaction open\n${why}`);
  } else {
    assert.ok(run.error, `a failed run prints a coded line\n${why}`);
    // Exit 3 may record its own outcome (pipeline/outcome.ts); nothing else of the record changes. Exit 2 writes nothing.
    const withoutOutcome = (data: RecordData) => ({ ...data, custom: (data.custom ?? []).filter((f) => !String(f.label ?? '').startsWith('last_rotation_')) });
    if (result.code === 2) assert.deepEqual(after.data, before.data, `exit 2 changed the record\n${why}`);
    if (result.code === 3) assert.deepEqual(withoutOutcome(after.data), withoutOutcome(before.data), `exit 3 changed the record\n${why}`);
  }
  return run;
}

/** Whether every login of the record's Docker config opens the registry, per the sandbox's own table. */
const recordOpens = (sb: Sandbox, view: RecordView) => sb.ecrTokens.opens(readText(view.data, 'ecr_docker_config_json'));

const editRecord = (sb: Sandbox, edit: (data: RecordData) => void) => {
  const data = cloneData(sb.ksm.readRecord(UID)!.data);
  edit(data);
  sb.ksm.editRecord(UID, data);
};

describe('aws-ecr-pull-secret end to end', () => {
  test('a run exits 0 with a working login in the record, checked at the registry; the next run replaces it', TEST, () =>
    withScript(async (s, sb) => {
      const started = Date.now();
      const first = await rotate(s);
      const ended = Date.now();
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /^aws-ecr-pull-secret: rotated: rotated to ecr-[0-9a-f]{16} /);
      assert.ok(recordOpens(sb, first.after), 'the record\'s Docker config opens the registry');
      const id = readText(first.after.data, 'ecr_token_id');
      const expires = Date.parse(readText(first.after.data, 'ecr_token_expires') ?? '');
      assert.ok(expires > started + ECR_TOKEN_LIFETIME_MS - 1000 && expires <= ended + ECR_TOKEN_LIFETIME_MS, 'the expiry is 12 hours after the run asked');
      assert.deepEqual(sb.log.entries({ service: 'ecr-registry' }).map((e) => e.status), [200], 'the login was checked at the registry');
      assert.equal(sb.log.entries({ service: 'ecr' }).length, 1);

      // The record's login has expired by the next run: the run replaces it with one that works.
      sb.ecrTokens.advance(ECR_TOKEN_LIFETIME_MS);
      assert.equal(recordOpens(sb, first.after), false);
      const second = await rotate(s);
      assert.equal(second.code, 0, second.stderr);
      assert.notEqual(readText(second.after.data, 'ecr_token_id'), id);
      assert.ok(recordOpens(sb, second.after));
      // What the pipeline will deliver is what the record holds.
      assert.equal(ecrDelivery(second.after.data)?.dockerConfigJson?.reveal(), readText(second.after.data, 'ecr_docker_config_json'));
    }));

  test('a login the registry refuses fails verification: exit 3 and the record keeps what it held', TEST, () =>
    withScript(async (s, sb) => {
      assert.equal((await rotate(s)).code, 0);
      editRecord(sb, (d) => writeText(d, { label: 'verify_timeout_seconds', kind: 'text' }, '1'));
      sb.faults.arm({ service: 'ecr-registry', operation: 'ApiVersionCheck', kind: 'status', status: 401, body: '{"errors":[{"code":"DENIED","message":"no"}]}', times: 100 });
      const run = await rotate(s);
      assert.equal(run.code, 3, run.stderr);
      assert.equal(run.error, 'VERIFY_FAILED');
      assert.ok(recordOpens(sb, run.after), 'the record still holds the earlier login, which works');
      sb.faults.clear();
      assert.equal((await rotate(s)).code, 0, 'the next clean run rotates');
    }));

  test('signing with a principal that may not ask ECR: exit 3 TARGET_PERMISSION_DENIED, nothing written', TEST, () =>
    withScript(async (s, sb) => {
      sb.aws.setPermissions(DEMO.ecr.userName, ['iam:*']);
      const made = sb.ecrTokens.list().length;
      const run = await rotate(s);
      assert.equal(run.code, 3, run.stderr);
      assert.equal(run.error, 'TARGET_PERMISSION_DENIED');
      // One write: the run's outcome (pipeline/outcome.ts), no login.
      assert.equal(sb.log.entries({ service: 'ksm', operation: 'update_secret' }).length, 1);
      assert.equal(readText(run.after.data, 'last_rotation_error'), 'TARGET_PERMISSION_DENIED');
      assert.equal(sb.ecrTokens.list().length, made);
      assert.ok(recordOpens(sb, run.after), 'the record keeps the login it held, which works');
    }));

  test('the key borrowed from the PAM configuration signs when the input names it', TEST, () =>
    withScript(async (s, sb) => {
      sb.aws.setPermissions(DEMO.aws.adminUserName, ['ecr:GetAuthorizationToken']);
      const params = { ...loadFixture(SCRIPT), providerRecordUid: DEMO.aws.pamConfigurationUid };
      const made = sb.ecrTokens.list().length;
      const run = await rotate(s, { params });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /using admin credentials from PAM configuration DemoAwsPamConfigurat01/);
      assert.deepEqual(sb.ecrTokens.list().slice(made).map((t) => t.principal.split('/').pop()), [DEMO.aws.adminUserName], 'the admin asked');
      assert.ok(recordOpens(sb, run.after));
    }));

  test('a dry run asks ECR (proving the key may) and writes nothing; a foreign registry host on the record is refused before any call', TEST, () =>
    withScript(async (s, sb) => {
      const dry = await rotate(s, { run: { args: ['--dry-run'] } });
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /planned/);
      assert.equal(sb.log.entries({ service: 'ecr' }).length, 1);
      assert.equal(sb.log.entries({ service: 'ksm', operation: 'update_secret' }).length, 0);
      assert.deepEqual(dry.after.data, dry.before.data);
      sb.log.clear();
      editRecord(sb, (d) => writeText(d, { label: 'ecr_registries', kind: 'text' }, '123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example'));
      const hostile = await rotate(s);
      assert.equal(hostile.code, 2);
      assert.equal(hostile.error, 'SETTING_INVALID');
      assert.equal(sb.log.entries({ service: 'ecr' }).length + sb.log.entries({ service: 'ecr-registry' }).length, 0);
    }));
});
