import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RotateError } from '../../src/errors.js';
import type { GatewayInput, GatewayRecord } from '../../src/gateway/input.js';
import { type AdminFieldNames, describeSource, resolveAdmin } from '../../src/keeper/admin.js';
import type { VaultRecord } from '../../src/keeper/vault.js';
import { Secret } from '../../src/secret.js';

/** A gateway whose owner opted in to nothing. */
const NO_ENV: NodeJS.ProcessEnv = {};
const USER = 'UUUUUUUUUUUUUUUUUUUUUU';
const CONFIG = 'CCCCCCCCCCCCCCCCCCCCCC';
const ATTACHED = 'AAAAAAAAAAAAAAAAAAAAAA';

const AZURE: AdminFieldNames<'tenantId' | 'clientId' | 'clientSecret', 'clientSecret'> = {
  attached: { tenantId: 'tenant_id', clientId: 'application_client_id', clientSecret: 'client_secret' },
  pamConfiguration: { tenantId: 'tenantId', clientId: 'clientId', clientSecret: 'clientSecret' },
  self: { tenantId: 'tenant_id', clientId: 'application_client_id', clientSecret: 'client_secret' },
  secrets: ['clientSecret'],
};

function input(records: GatewayRecord[], providerRecordUid: string | undefined = CONFIG): GatewayInput {
  return { userRecordUid: USER, providerRecordUid, resourceRecordUid: undefined, user: undefined, newPassword: undefined, oldPassword: undefined, records };
}

function vaultRecord(uid: string, custom: Record<string, string>, type = 'pamUser'): VaultRecord {
  return {
    uid,
    revision: 1,
    title: uid,
    type,
    data: { title: uid, type, fields: [], custom: Object.entries(custom).map(([label, v]) => ({ type: 'text', label, value: [v] })) },
  };
}

const user = vaultRecord(USER, { application_object_id: 'x' });
const configDict: GatewayRecord = { uid: CONFIG, title: 'cfg', fields: { clientId: 'cfg-client', clientSecret: 'cfg-secret-value', tenantId: 'cfg-tenant' } };
const attached: GatewayRecord = { uid: ATTACHED, title: 'admin', fields: { application_client_id: 'att-client', client_secret: 'att-secret-value', tenant_id: 'att-tenant' } };
const userDict: GatewayRecord = { uid: USER, title: 'user', fields: { application_client_id: 'u', client_secret: 'u-secret-value', tenant_id: 'u' } };

describe('admin credential resolution', () => {
  test('an attached record wins, and the secret comes back as a Secret', () => {
    const got = resolveAdmin(AZURE, { env: NO_ENV, input: input([userDict, configDict, attached]), user, provider: undefined });
    assert.deepEqual(got.source, { kind: 'attached', uid: ATTACHED });
    assert.equal(got.values.clientId, 'att-client');
    assert.ok(got.values.clientSecret instanceof Secret);
    assert.equal(got.values.clientSecret.reveal(), 'att-secret-value');
    assert.equal(describeSource(got.source), `attached record ${ATTACHED}`);
  });

  test('the user record and the PAM configuration are never taken as attached records', () => {
    const configWithAttachedNames: GatewayRecord = { uid: CONFIG, title: 'cfg', fields: { ...attached.fields } };
    const got = resolveAdmin(AZURE, { env: NO_ENV, input: input([userDict, configWithAttachedNames]), user, provider: vaultRecord(CONFIG, { clientId: 'k', clientSecret: 'ksm-secret', tenantId: 't' }) });
    assert.equal(got.source.kind, 'pam-configuration');
    assert.equal(got.values.clientId, 'k');
  });

  test('an attached record missing a required field is passed over', () => {
    const partial: GatewayRecord = { uid: ATTACHED, title: 'admin', fields: { application_client_id: 'att-client', tenant_id: '' } };
    const got = resolveAdmin(AZURE, { env: NO_ENV, input: input([partial, configDict]), user, provider: undefined });
    assert.deepEqual(got.source, { kind: 'pam-configuration', uid: CONFIG, via: 'records' });
    assert.equal(got.values.tenantId, 'cfg-tenant');
  });

  test('without a providerRecordUid, the PAM configuration is recognised by its keys', () => {
    const got = resolveAdmin(AZURE, { env: NO_ENV, input: input([configDict], undefined), user, provider: undefined });
    assert.deepEqual(got.source, { kind: 'pam-configuration', uid: CONFIG, via: 'records' });
  });

  test('then the provider record fetched through KSM, by field label', () => {
    const provider = vaultRecord(CONFIG, { clientId: 'ksm-client', clientSecret: 'ksm-secret-value', tenantId: 'ksm-tenant' }, 'pamAzureConfiguration');
    const got = resolveAdmin(AZURE, { env: NO_ENV, input: input([]), user, provider });
    assert.deepEqual(got.source, { kind: 'pam-configuration', uid: CONFIG, via: 'ksm' });
    assert.equal(got.values.tenantId, 'ksm-tenant');
  });

  test('then the PAM User record itself, for targets that can rotate themselves', () => {
    const self = vaultRecord(USER, { application_client_id: 'me', client_secret: 'my-secret-value', tenant_id: 'mine' });
    const got = resolveAdmin(AZURE, { env: NO_ENV, input: input([]), user: self, provider: undefined });
    assert.deepEqual(got.source, { kind: 'self', uid: USER });
    const { self: _omit, ...noSelf } = AZURE;
    assert.throws(() => resolveAdmin(noSelf, { env: NO_ENV, input: input([]), user: self, provider: undefined }), (e: unknown) => e instanceof RotateError && e.code === 'ADMIN_CREDENTIALS_NOT_FOUND');
  });

  test('optional keys may be absent', () => {
    const aws: AdminFieldNames<'keyId' | 'secret' | 'role', 'secret'> = {
      attached: { keyId: 'aws_access_key_id', secret: 'aws_secret_access_key', role: 'role_arn' },
      pamConfiguration: { keyId: 'accessKeyId', secret: 'accessSecretKey', role: 'roleArn' },
      optional: ['role'],
      secrets: ['secret'],
    };
    const rec: GatewayRecord = { uid: ATTACHED, title: 'aws', fields: { aws_access_key_id: 'AKIA1', aws_secret_access_key: 'shh-secret-value' } };
    const got = resolveAdmin(aws, { env: NO_ENV, input: input([rec]), user, provider: undefined });
    assert.equal(got.values.keyId, 'AKIA1');
    assert.equal(got.values.role, undefined);
  });

  test('nothing found: a coded error listing every place it looked, and no secret', () => {
    assert.throws(
      () => resolveAdmin(AZURE, { env: NO_ENV, input: input([{ uid: CONFIG, title: 'c', fields: { clientSecret: 'cfg-secret-value' } }]), user, provider: undefined }),
      (e: unknown) =>
        e instanceof RotateError &&
        e.code === 'ADMIN_CREDENTIALS_NOT_FOUND' &&
        e.exitCode === 2 &&
        /attached record with tenant_id, application_client_id, client_secret/.test(e.message) &&
        /PAM configuration CCCCCCCCCCCCCCCCCCCCCC with tenantId, clientId, clientSecret/.test(e.message) &&
        /PAM User record/.test(e.message) &&
        !e.message.includes('cfg-secret-value'),
    );
  });
});

describe("the host's own credentials, asked for by the PAM configuration only (USE_INSTANCE_ROLE)", () => {
  type AwsKey = 'accessKeyId' | 'secretAccessKey' | 'roleArn';
  const AWS: AdminFieldNames<AwsKey, 'secretAccessKey'> = {
    attached: { accessKeyId: 'aws_access_key_id', secretAccessKey: 'aws_secret_access_key', roleArn: 'role_arn' },
    pamConfiguration: { accessKeyId: 'accessKeyId', secretAccessKey: 'accessSecretKey', roleArn: 'roleArn' },
    self: { accessKeyId: 'aws_access_key_id', secretAccessKey: 'aws_secret_access_key', roleArn: 'role_arn' },
    optional: ['roleArn'],
    secrets: ['secretAccessKey'],
    ambient: { description: "the gateway host's AWS credential chain", optIn: { variable: 'KEEPER_ROTATE_AWS_HOST_CREDENTIALS', value: 'allow' } },
    hostMarker: { value: 'USE_INSTANCE_ROLE', fields: ['accessKeyId', 'secretAccessKey'] },
  };
  const awsUser = vaultRecord(USER, { login: 'svc' });
  const marked = (extra: Record<string, string> = {}): GatewayRecord => ({ uid: CONFIG, title: 'cfg', fields: { accessKeyId: 'USE_INSTANCE_ROLE', accessSecretKey: 'USE_INSTANCE_ROLE', ...extra } });
  const invalid = (message: RegExp) => (err: unknown) => err instanceof RotateError && err.code === 'ADMIN_CREDENTIALS_INVALID' && message.test(err.message);

  test('in the PAM configuration (gateway input or Keeper): the host, with the role to assume, and never the marker as a key', () => {
    const viaInput = resolveAdmin(AWS, { env: NO_ENV, input: input([marked({ roleArn: 'arn:aws:iam::123456789012:role/r' })]), user: awsUser, provider: undefined });
    assert.deepEqual(viaInput.source, { kind: 'host', uid: CONFIG, via: 'records', description: "the gateway host's AWS credential chain", marker: 'USE_INSTANCE_ROLE' });
    assert.deepEqual(viaInput.values, { accessKeyId: undefined, secretAccessKey: undefined, roleArn: 'arn:aws:iam::123456789012:role/r' });
    assert.equal(describeSource(viaInput.source), `the gateway host's AWS credential chain, as PAM configuration ${CONFIG} asks (USE_INSTANCE_ROLE)`);
    const viaKsm = resolveAdmin(AWS, { env: NO_ENV, input: input([]), user: awsUser, provider: vaultRecord(CONFIG, { accessKeyId: 'use_instance_role', accessSecretKey: '' }, 'pamAwsConfiguration') });
    assert.equal(viaKsm.source.kind, 'host');
  });

  test('beside a key it is refused, not guessed', () => {
    assert.throws(() => resolveAdmin(AWS, { env: NO_ENV, input: input([marked({ accessSecretKey: 'a-real-secret-value' })]), user: awsUser, provider: undefined }), invalid(/accessKeyId says USE_INSTANCE_ROLE, but accessSecretKey holds a value/));
  });

  test('in an attached record, in the PAM User record, or in a record the input does not name as the PAM configuration: refused', () => {
    const att: GatewayRecord = { uid: ATTACHED, title: 'admin', fields: { aws_access_key_id: 'USE_INSTANCE_ROLE', aws_secret_access_key: 'x' } };
    assert.throws(() => resolveAdmin(AWS, { env: NO_ENV, input: input([att, marked()]), user: awsUser, provider: undefined }), invalid(new RegExp(`attached record ${ATTACHED} says USE_INSTANCE_ROLE`)));
    const self = vaultRecord(USER, { login: 'svc', aws_access_key_id: 'USE_INSTANCE_ROLE', aws_secret_access_key: 'USE_INSTANCE_ROLE' });
    // (input()'s default names the PAM configuration: these name none.)
    const unnamed = (records: GatewayRecord[]) => ({ ...input(records), providerRecordUid: undefined });
    assert.throws(() => resolveAdmin(AWS, { env: NO_ENV, input: unnamed([]), user: self, provider: undefined }), invalid(new RegExp(`the PAM User record ${USER} says USE_INSTANCE_ROLE`)));
    assert.throws(() => resolveAdmin(AWS, { env: NO_ENV, input: unnamed([marked()]), user: awsUser, provider: undefined }), invalid(/the gateway input names no PAM configuration/));
  });

  test('a target without a marker reads USE_INSTANCE_ROLE as a value like any other', () => {
    const { hostMarker: _, ...plain } = AWS;
    const got = resolveAdmin(plain, { env: NO_ENV, input: input([marked()]), user: awsUser, provider: undefined });
    assert.equal(got.source.kind, 'pam-configuration');
    assert.equal(got.values.accessKeyId, 'USE_INSTANCE_ROLE');
  });

  // Issue 16: a record editor who leaves every key out (or attaches nothing) must not fall back to the gateway
  // owner's identity; only the gateway's environment may allow that.
  describe("the fallback to the host's credentials when no record holds keys: only with the gateway owner's opt-in", () => {
    const OPT_IN = 'KEEPER_ROTATE_AWS_HOST_CREDENTIALS';
    const bare = vaultRecord(USER, { login: 'svc' });
    const keysInConfig: GatewayRecord = { uid: CONFIG, title: 'cfg', fields: { accessKeyId: 'AKIACONFIGKEY0000001', accessSecretKey: 'config-secret-value' } };
    const notFound = (err: unknown) => err instanceof RotateError && err.code === 'ADMIN_CREDENTIALS_NOT_FOUND' && err.exitCode === 2;

    test('unset or blank: ADMIN_CREDENTIALS_NOT_FOUND, and the message names both ways the gateway owner can allow the host', () => {
      for (const env of [NO_ENV, { [OPT_IN]: '' }, { [OPT_IN]: '   ' }]) {
        assert.throws(
          () => resolveAdmin(AWS, { env, input: input([]), user: bare, provider: undefined }),
          (e: unknown) =>
            notFound(e) &&
            /Not the gateway host's AWS credential chain: only the gateway owner allows it, with USE_INSTANCE_ROLE in the PAM configuration's accessKeyId and accessSecretKey, or KEEPER_ROTATE_AWS_HOST_CREDENTIALS=allow in the gateway's environment/.test((e as Error).message),
          JSON.stringify(env),
        );
      }
      // Also when the input names no PAM configuration at all (the editor attached nothing).
      assert.throws(() => resolveAdmin(AWS, { env: NO_ENV, input: { ...input([]), providerRecordUid: undefined }, user: bare, provider: undefined }), notFound);
    });

    test('allow (in any case, spaces trimmed): the host, named with the opt-in that allowed it, and only as the last resort', () => {
      for (const value of ['allow', ' ALLOW ']) {
        const got = resolveAdmin(AWS, { env: { [OPT_IN]: value }, input: input([]), user: bare, provider: undefined });
        assert.deepEqual(got.source, { kind: 'ambient', description: "the gateway host's AWS credential chain", optIn: `${OPT_IN}=allow` });
        assert.deepEqual(got.values, { accessKeyId: undefined, secretAccessKey: undefined, roleArn: undefined });
        assert.equal(describeSource(got.source), `the gateway host's AWS credential chain, as the gateway's environment allows (${OPT_IN}=allow)`);
      }
      // Keys anywhere, and the PAM configuration's USE_INSTANCE_ROLE (the gateway owner's word already, needing no
      // opt-in), still come first.
      const env = { [OPT_IN]: 'allow' };
      assert.equal(resolveAdmin(AWS, { env, input: input([keysInConfig]), user: bare, provider: undefined }).source.kind, 'pam-configuration');
      assert.equal(resolveAdmin(AWS, { env, input: input([marked()]), user: bare, provider: undefined }).source.kind, 'host');
      assert.equal(resolveAdmin(AWS, { env: NO_ENV, input: input([marked()]), user: bare, provider: undefined }).source.kind, 'host');
    });

    test('any other value is SETTING_INVALID, on every run (a misspelt opt-in is seen at once), and is not echoed; a target with no host identity ignores the variable', () => {
      for (const value of ['yes', 'true', 'allowed']) {
        for (const records of [[], [keysInConfig]]) {
          assert.throws(
            () => resolveAdmin(AWS, { env: { [OPT_IN]: value }, input: input(records), user: bare, provider: undefined }),
            (e: unknown) => e instanceof RotateError && e.code === 'SETTING_INVALID' && e.message.includes(OPT_IN) && !e.message.includes(value),
            value,
          );
        }
      }
      assert.throws(() => resolveAdmin(AZURE, { env: { [OPT_IN]: 'allow' }, input: input([]), user, provider: undefined }), (e: unknown) => notFound(e) && !(e as Error).message.includes(OPT_IN));
      assert.doesNotThrow(() => resolveAdmin(AZURE, { env: { [OPT_IN]: 'nonsense' }, input: input([configDict]), user, provider: undefined }));
    });
  });
});
