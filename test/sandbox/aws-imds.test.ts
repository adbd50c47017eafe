// The sandbox's EC2 instance metadata service against the AWS SDK's own credential chain
// (@aws-sdk/credential-provider-node, the provider the IAM and STS clients use by default): IMDSv2's session
// token, the instance profile's role and its temporary credentials, which STS and IAM then accept as the role's
// session. Raw requests cover what the SDK never sends (no token, no TTL, a proxied token request). Role
// chaining, which an instance role needs to assume another role, is here too.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { IAMClient, ListAccessKeysCommand } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { FaultPlan, RequestLog } from '../../src/sandbox/faults.js';
import { type RunningService, serve } from '../../src/sandbox/service.js';
import { AwsAccount, IamService, InstanceMetadataService, StsService } from '../../src/sandbox/aws/index.js';

const ACCOUNT = '210987654321';
const faults = new FaultPlan();
const log = new RequestLog();
let skewMs = 0;
const account = new AwsAccount({ accountId: ACCOUNT, now: () => Date.now() + skewMs });
const imds = new InstanceMetadataService(account);
const empty = mkdtempSync(join(tmpdir(), 'kr-imds-'));
let servers: RunningService[] = [];
let iamUrl: string;
let stsUrl: string;
let imdsUrl: string;

before(async () => {
  servers = [await serve({ service: new IamService(account), faults, log }), await serve({ service: new StsService(account), faults, log }), await serve({ service: imds, faults, log })];
  [iamUrl, stsUrl, imdsUrl] = servers.map((s) => s.url) as [string, string, string];
  // This process's AWS chain sees only the sandbox's IMDS: no keys in the environment, no profile files.
  for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_EC2_METADATA_DISABLED']) delete process.env[name];
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(empty, 'credentials');
  process.env.AWS_CONFIG_FILE = join(empty, 'config');
  process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = imdsUrl;
  account.createUser({ userName: 'svc', permissions: [] });
  account.seedAccessKey('svc');
  account.createRole({ roleName: 'gateway-instance', trustedUsers: [], trustedServices: ['ec2.amazonaws.com'], permissions: ['iam:ListAccessKeys', 'sts:AssumeRole'] });
});

after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  rmSync(empty, { recursive: true, force: true });
});

function raw(method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    const req = request(`${imdsUrl}${path}`, { method, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => done({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

const token = async () => (await raw('PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '60' })).body;

describe('IMDSv2 through the SDK credential chain', () => {
  test("the instance role's session: the chain fetches a token, the role and its credentials; STS and IAM accept them as the role", async () => {
    imds.attachRole('gateway-instance');
    log.clear();
    const provider = defaultProvider();
    const creds = await provider();
    assert.match(creds.accessKeyId, /^ASIA[A-Z0-9]{16}$/);
    assert.ok(creds.sessionToken && creds.sessionToken.length > 100, 'no session token');
    assert.ok(creds.expiration && creds.expiration.getTime() > Date.now() + 30 * 60_000, 'credentials valid for well over the 5 minutes the SDK renews before');
    assert.deepEqual(
      log.entries({ service: 'imds' }).map((e) => [e.operation, e.status]),
      [
        ['GetToken', 200],
        ['GetRoleName', 200],
        ['GetCredentials', 200],
      ],
    );
    const sts = new STSClient({ endpoint: stsUrl, region: 'us-east-1', credentials: provider });
    const me = await sts.send(new GetCallerIdentityCommand({}));
    assert.equal(me.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/gateway-instance/${imds.instanceId}`);
    const iam = new IAMClient({ endpoint: iamUrl, region: 'us-east-1', credentials: provider });
    assert.equal((await iam.send(new ListAccessKeysCommand({ UserName: 'svc' }))).AccessKeyMetadata?.length, 1);
    assert.equal(log.entries({ service: 'imds' }).length, 3, 'the provider is memoized: one fetch for both clients');
    sts.destroy();
    iam.destroy();
  });

  test('no role attached: the chain finds no credentials', async () => {
    imds.attachRole(undefined);
    await assert.rejects(defaultProvider()(), (err: Error) => err.name === 'CredentialsProviderError' || /credentials/i.test(err.message));
    imds.attachRole('gateway-instance');
  });
});

describe('IMDSv2 as the wire sees it', () => {
  test('a token needs its TTL (1 to 21600 s) and is refused through a proxy; every read needs a valid token', async () => {
    imds.attachRole('gateway-instance');
    assert.equal((await raw('PUT', '/latest/api/token')).status, 400);
    assert.equal((await raw('PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '21601' })).status, 400);
    assert.equal((await raw('PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '60', 'x-forwarded-for': '10.0.0.1' })).status, 403);
    assert.equal((await raw('GET', '/latest/meta-data/iam/security-credentials/')).status, 401, 'IMDSv1 (no token) is refused');
    assert.equal((await raw('GET', '/latest/meta-data/iam/security-credentials/', { 'x-aws-ec2-metadata-token': 'forged' })).status, 401);
    const t = await token();
    const role = await raw('GET', '/latest/meta-data/iam/security-credentials/', { 'x-aws-ec2-metadata-token': t });
    assert.deepEqual(role, { status: 200, body: 'gateway-instance' });
    const creds = await raw('GET', '/latest/meta-data/iam/security-credentials/gateway-instance', { 'x-aws-ec2-metadata-token': t });
    assert.equal(creds.status, 200);
    const body = JSON.parse(creds.body) as Record<string, string>;
    assert.deepEqual(Object.keys(body), ['Code', 'LastUpdated', 'Type', 'AccessKeyId', 'SecretAccessKey', 'Token', 'Expiration']);
    assert.equal(body.Code, 'Success');
    assert.equal(body.Type, 'AWS-HMAC');
    assert.match(body.Expiration!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal((await raw('GET', '/latest/meta-data/iam/security-credentials/another-role', { 'x-aws-ec2-metadata-token': t })).status, 404);
    skewMs = 61_000;
    assert.equal((await raw('GET', '/latest/meta-data/iam/security-credentials/', { 'x-aws-ec2-metadata-token': t })).status, 401, 'the token expired');
    skewMs = 0;
  });

  test('the same credentials until 15 minutes before they expire, then new ones; the old ones work until their expiry', async () => {
    imds.attachRole('gateway-instance');
    const read = async () => JSON.parse((await raw('GET', '/latest/meta-data/iam/security-credentials/gateway-instance', { 'x-aws-ec2-metadata-token': await token() })).body) as Record<string, string>;
    const first = await read();
    assert.equal((await read()).AccessKeyId, first.AccessKeyId);
    skewMs = Date.parse(first.Expiration!) - Date.now() - 10 * 60_000;
    const renewed = await read();
    assert.notEqual(renewed.AccessKeyId, first.AccessKeyId);
    assert.equal(account.checkKey(first.AccessKeyId!, first.SecretAccessKey!, first.Token), true, 'still valid for 10 minutes');
    skewMs = 0;
  });

  test('only a role that trusts ec2.amazonaws.com can be an instance role', () => {
    account.createRole({ roleName: 'users-only', trustedUsers: ['svc'] });
    assert.throws(() => imds.attachRole('users-only'), /does not trust ec2\.amazonaws\.com/);
    assert.throws(() => imds.attachRole('no-such-role'), /cannot be found/);
  });
});

describe('role chaining', () => {
  test("the instance role's session assumes a role that trusts it, for an hour at most; a role that does not trust it refuses", async () => {
    imds.attachRole('gateway-instance');
    const chained = account.createRole({ roleName: 'key-rotator', trustedUsers: [], trustedRoles: ['gateway-instance'], permissions: ['iam:*AccessKey*'] });
    const other = account.createRole({ roleName: 'not-for-instances', trustedUsers: ['svc'], permissions: 'all' });
    const sts = new STSClient({ endpoint: stsUrl, region: 'us-east-1', credentials: defaultProvider(), maxAttempts: 1 });
    const out = await sts.send(new AssumeRoleCommand({ RoleArn: chained.arn, RoleSessionName: 'chained', DurationSeconds: 900 }));
    assert.equal(out.AssumedRoleUser?.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/key-rotator/chained`);
    await assert.rejects(sts.send(new AssumeRoleCommand({ RoleArn: chained.arn, RoleSessionName: 'long', DurationSeconds: 7200 })), /1 hour session limit for roles assumed by role chaining/);
    await assert.rejects(sts.send(new AssumeRoleCommand({ RoleArn: other.arn, RoleSessionName: 'nope' })), (err: Error) => err.name === 'AccessDenied');
    sts.destroy();
  });
});
