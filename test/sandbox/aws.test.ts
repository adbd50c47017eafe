// The AWS sandbox against the real, unmodified @aws-sdk/client-iam and @aws-sdk/client-sts over HTTP: the SDK
// signs every request with SigV4 and the sandbox checks the signature for real, so a wrong secret, a key not yet
// propagated or a stale clock fail here the way they fail against AWS. No mocks; a few raw requests cover what
// the SDK never sends (no signature, a body changed after signing).
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, afterEach, before, describe, test } from 'node:test';
import { inspect } from 'node:util';
import {
  CreateAccessKeyCommand,
  DeleteAccessKeyCommand,
  GetAccessKeyLastUsedCommand,
  GetUserCommand,
  IAMClient,
  IAMServiceException,
  LimitExceededException,
  ListAccessKeysCommand,
  NoSuchEntityException,
  UpdateAccessKeyCommand,
} from '@aws-sdk/client-iam';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient, STSServiceException } from '@aws-sdk/client-sts';
import { ControlApi } from '../../src/sandbox/control.js';
import { FaultPlan, RequestLog } from '../../src/sandbox/faults.js';
import { type RunningService, serve } from '../../src/sandbox/service.js';
import { sandboxTlsMaterial } from '../../src/sandbox/tls.js';
import {
  type AccessKeyState,
  AwsAccount,
  IAM_DEFAULT_BUDGET,
  IAM_OPERATIONS,
  IamService,
  type Permissions,
  registerAwsControl,
  signRequest,
  STS_DEFAULT_BUDGET,
  STS_OPERATIONS,
  StsService,
} from '../../src/sandbox/aws/index.js';
import { controlCall } from '../helpers/control-api.js';

const ACCOUNT = '123456789012';
const AKIA = /^AKIA[A-Z0-9]{16}$/;
const ASIA = /^ASIA[A-Z0-9]{16}$/;
const SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

const faults = new FaultPlan();
const log = new RequestLog();
// Tests that need time to pass (propagation, expiry) move this instead of sleeping.
let skewMs = 0;
const account = new AwsAccount({ accountId: ACCOUNT, now: () => Date.now() + skewMs });
let iamServer: RunningService;
let stsServer: RunningService;
let admin: Credentials;

before(async () => {
  iamServer = await serve({ service: new IamService(account), faults, log });
  stsServer = await serve({ service: new StsService(account), faults, log });
  account.createUser({ userName: 'admin', permissions: 'all' });
  admin = credentialsOf(account.seedAccessKey('admin'));
});

after(async () => {
  await iamServer.close();
  await stsServer.close();
});

afterEach(() => {
  faults.clear();
  skewMs = 0;
  account.setTiming({ propagationDelayMs: 0, readLagMs: 0, delaySpread: 0, nonAtomicQuota: false, seed: 1 });
});

function credentialsOf(key: AccessKeyState | { AccessKeyId?: string; SecretAccessKey?: string; SessionToken?: string }): Credentials {
  if ('accessKeyId' in key) return { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
  assert.ok(key.AccessKeyId && key.SecretAccessKey, 'the SDK returned no credentials');
  return { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey, ...(key.SessionToken ? { sessionToken: key.SessionToken } : {}) };
}

type ClientExtras = { maxAttempts?: number; region?: string; systemClockOffset?: number; endpoint?: string };

function iam(credentials: Credentials, extra: ClientExtras = {}): IAMClient {
  return new IAMClient({ endpoint: iamServer.url, region: 'us-east-1', credentials, maxAttempts: 1, ...extra });
}

function sts(credentials: Credentials, extra: ClientExtras = {}): STSClient {
  return new STSClient({ endpoint: stsServer.url, region: 'us-east-1', credentials, maxAttempts: 1, ...extra });
}

let counter = 0;
/** A fresh user (unique name) with one seeded key. */
function newUser(permissions: Permissions = 'all', prefix = 'user'): { userName: string; key: Credentials } {
  const userName = `${prefix}-${++counter}`;
  account.createUser({ userName, permissions });
  return { userName, key: credentialsOf(account.seedAccessKey(userName)) };
}

interface SdkError extends Error {
  Code?: string;
  Type?: string;
  $fault: string;
  $metadata: { httpStatusCode?: number; attempts?: number; requestId?: string };
}

/** The error a call fails with; the assertion fails if it succeeds or fails with something not from the SDK. */
async function sdkError(promise: Promise<unknown>, type: abstract new (...args: never[]) => Error = Error): Promise<SdkError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof type, `expected ${type.name}, got ${inspect(err)}`);
    assert.ok('$metadata' in err, `not an SDK service error: ${inspect(err)}`);
    return err as SdkError;
  }
  assert.fail('expected the call to fail, but it succeeded');
}

async function callerArn(credentials: Credentials): Promise<string> {
  const out = await sts(credentials).send(new GetCallerIdentityCommand({}));
  return String(out.Arn);
}

/** 'ok', or the error name GetCallerIdentity fails with. */
async function identityOutcome(credentials: Credentials, extra: ClientExtras = {}): Promise<string> {
  try {
    await sts(credentials, extra).send(new GetCallerIdentityCommand({}));
    return 'ok';
  } catch (err) {
    return (err as Error).name;
  }
}

function count(service: string, operation: string): number {
  return log.entries({ service, operation }).length;
}

describe('IAM access keys through @aws-sdk/client-iam', () => {
  test('the whole rotation: list, create, prove, last-used, deactivate, delete', async () => {
    const { userName, key: oldKey } = newUser('all', 'rotated');
    const client = iam(admin);

    const before = await client.send(new ListAccessKeysCommand({ UserName: userName }));
    assert.equal(before.IsTruncated, false);
    assert.deepEqual(
      before.AccessKeyMetadata?.map((k) => [k.UserName, k.AccessKeyId, k.Status, 'SecretAccessKey' in k]),
      [[userName, oldKey.accessKeyId, 'Active', false]],
    );

    const created = await client.send(new CreateAccessKeyCommand({ UserName: userName }));
    const newKey = created.AccessKey!;
    assert.equal(newKey.UserName, userName);
    assert.match(String(newKey.AccessKeyId), AKIA);
    assert.match(String(newKey.SecretAccessKey), /^[A-Za-z0-9+/]{40}$/);
    assert.equal(newKey.Status, 'Active');
    assert.ok(newKey.CreateDate instanceof Date, 'CreateDate was not parsed as a date');
    assert.ok(Math.abs(newKey.CreateDate.getTime() - Date.now()) < 5_000, `CreateDate ${newKey.CreateDate.toISOString()}`);
    assert.match(String(created.$metadata.requestId), /^[0-9a-f-]{36}$/);

    const fresh = credentialsOf(newKey);
    assert.equal(await callerArn(fresh), `arn:aws:iam::${ACCOUNT}:user/${userName}`);

    const usedNew = await client.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: fresh.accessKeyId }));
    assert.equal(usedNew.UserName, userName);
    assert.equal(usedNew.AccessKeyLastUsed?.ServiceName, 'sts');
    assert.equal(usedNew.AccessKeyLastUsed?.Region, 'us-east-1');
    assert.ok(usedNew.AccessKeyLastUsed?.LastUsedDate instanceof Date);
    const usedOld = await client.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: oldKey.accessKeyId }));
    assert.deepEqual(usedOld.AccessKeyLastUsed, { ServiceName: 'N/A', Region: 'N/A' });

    await client.send(new UpdateAccessKeyCommand({ UserName: userName, AccessKeyId: oldKey.accessKeyId, Status: 'Inactive' }));
    const listed = await client.send(new ListAccessKeysCommand({ UserName: userName }));
    assert.deepEqual(
      listed.AccessKeyMetadata?.map((k) => [k.AccessKeyId, k.Status]),
      [
        [oldKey.accessKeyId, 'Inactive'],
        [fresh.accessKeyId, 'Active'],
      ],
    );
    assert.equal(await identityOutcome(oldKey), 'InvalidClientTokenId');

    await client.send(new DeleteAccessKeyCommand({ UserName: userName, AccessKeyId: oldKey.accessKeyId }));
    assert.deepEqual(
      account.listKeys(userName).map((k) => [k.accessKeyId, k.secretAccessKey, k.status]),
      [[fresh.accessKeyId, fresh.secretAccessKey, 'Active']],
    );
    assert.equal(account.checkKey(fresh.accessKeyId, fresh.secretAccessKey), true);
    assert.equal(account.checkKey(oldKey.accessKeyId, oldKey.secretAccessKey), false);
  });

  test('without UserName every action works on the signing key’s own user', async () => {
    const { userName, key } = newUser('self', 'implicit');
    const client = iam(key);
    const user = (await client.send(new GetUserCommand({}))).User!;
    const state = account.getUser(userName)!;
    assert.deepEqual(
      [user.UserName, user.Path, user.UserId, user.Arn, user.CreateDate?.toISOString().replace('.000', '')],
      [userName, '/', state.userId, `arn:aws:iam::${ACCOUNT}:user/${userName}`, state.createDate],
    );
    assert.match(String(user.UserId), /^AIDA[A-Z0-9]{17}$/);
    const created = await client.send(new CreateAccessKeyCommand({}));
    assert.equal(created.AccessKey?.UserName, userName);
    const listed = await client.send(new ListAccessKeysCommand({}));
    assert.equal(listed.AccessKeyMetadata?.length, 2);
    await client.send(new DeleteAccessKeyCommand({ AccessKeyId: created.AccessKey!.AccessKeyId! }));
    assert.deepEqual(
      account.listKeys(userName).map((k) => k.accessKeyId),
      [key.accessKeyId],
    );
  });

  test('GetUser names another user when asked', async () => {
    const { userName } = newUser('all', 'other');
    const user = (await iam(admin).send(new GetUserCommand({ UserName: userName }))).User!;
    assert.equal(user.UserName, userName);
    assert.equal(user.Arn, `arn:aws:iam::${ACCOUNT}:user/${userName}`);
  });

  test('a third key fails with LimitExceededException, HTTP 409, and changes nothing', async () => {
    const { userName } = newUser('all', 'full');
    await iam(admin).send(new CreateAccessKeyCommand({ UserName: userName }));
    const before = account.listKeys(userName).map((k) => k.accessKeyId);
    assert.equal(before.length, 2);
    const err = await sdkError(iam(admin).send(new CreateAccessKeyCommand({ UserName: userName })), LimitExceededException);
    assert.equal(err.name, 'LimitExceededException');
    assert.equal(err.message, 'Cannot exceed quota for AccessKeysPerUser: 2');
    assert.equal(err.Code, 'LimitExceeded');
    assert.equal(err.Type, 'Sender');
    assert.equal(err.$fault, 'client');
    assert.equal(err.$metadata.httpStatusCode, 409);
    assert.deepEqual(
      account.listKeys(userName).map((k) => k.accessKeyId),
      before,
    );
  });

  test('gotcha: the SDK’s default retry (maxAttempts 3) sends a refused third CreateAccessKey three times', async () => {
    const { userName } = newUser('all', 'retried');
    await iam(admin).send(new CreateAccessKeyCommand({ UserName: userName }));
    const before = count('iam', 'CreateAccessKey');
    // LimitExceededException is in the SDK's list of throttling error names, so it is backed off and retried.
    const err = await sdkError(iam(admin, { maxAttempts: 3 }).send(new CreateAccessKeyCommand({ UserName: userName })), LimitExceededException);
    assert.equal(count('iam', 'CreateAccessKey') - before, 3);
    assert.equal(err.$metadata.attempts, 3);
    assert.equal(account.listKeys(userName).length, 2);
  });

  test('unknown users and keys fail with NoSuchEntityException, HTTP 404, with IAM’s messages', async () => {
    const client = iam(admin);
    const noUser = await sdkError(client.send(new ListAccessKeysCommand({ UserName: 'nobody-here' })), NoSuchEntityException);
    assert.equal(noUser.message, 'The user with name nobody-here cannot be found.');
    assert.equal(noUser.$metadata.httpStatusCode, 404);
    assert.equal((await sdkError(client.send(new CreateAccessKeyCommand({ UserName: 'nobody-here' })), NoSuchEntityException)).name, 'NoSuchEntityException');
    assert.equal((await sdkError(client.send(new GetUserCommand({ UserName: 'nobody-here' })), NoSuchEntityException)).$metadata.httpStatusCode, 404);

    const { userName } = newUser('all', 'keyless');
    const { key: otherKey } = newUser('all', 'owner');
    const missing = 'AKIAAAAAAAAAAAAAAAAA';
    const noKey = await sdkError(client.send(new DeleteAccessKeyCommand({ UserName: userName, AccessKeyId: missing })), NoSuchEntityException);
    assert.equal(noKey.message, `The Access Key with id ${missing} cannot be found.`);
    // Another user's key is not found under this user: the UserName must be the key's owner.
    const wrongOwner = await sdkError(
      client.send(new UpdateAccessKeyCommand({ UserName: userName, AccessKeyId: otherKey.accessKeyId, Status: 'Inactive' })),
      NoSuchEntityException,
    );
    assert.equal(wrongOwner.message, `The Access Key with id ${otherKey.accessKeyId} cannot be found.`);
    assert.equal(account.getKey(otherKey.accessKeyId)?.status, 'Active');
    assert.equal((await sdkError(client.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: missing })), NoSuchEntityException)).$metadata.httpStatusCode, 404);
  });

  test('bad input fails with ValidationError, HTTP 400, worded like AWS', async () => {
    const client = iam(admin);
    const badName = await sdkError(client.send(new CreateAccessKeyCommand({ UserName: 'bad name!' })), IAMServiceException);
    assert.equal(badName.name, 'ValidationError');
    assert.equal(badName.$metadata.httpStatusCode, 400);
    assert.equal(badName.message, "1 validation error detected: Value 'bad name!' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+");
    const { userName, key } = newUser('all', 'status');
    const badStatus = await sdkError(client.send(new UpdateAccessKeyCommand({ UserName: userName, AccessKeyId: key.accessKeyId, Status: 'Paused' as 'Active' })), IAMServiceException);
    assert.equal(badStatus.name, 'ValidationError');
    assert.equal(badStatus.message, "1 validation error detected: Value 'Paused' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]");
    assert.throws(() => account.createUser({ userName: 'x'.repeat(65) }), /Member must have length less than or equal to 64/);
  });

  test('deleting (or deactivating) the very key that signs the request is allowed, and that key stops working', async () => {
    const { userName, key } = newUser('self', 'suicidal');
    const second = credentialsOf(account.seedAccessKey(userName));
    await iam(key).send(new UpdateAccessKeyCommand({ AccessKeyId: second.accessKeyId, Status: 'Inactive' }));
    await iam(key).send(new DeleteAccessKeyCommand({ AccessKeyId: key.accessKeyId }));
    assert.deepEqual(
      account.listKeys(userName).map((k) => [k.accessKeyId, k.status]),
      [[second.accessKeyId, 'Inactive']],
    );
    const err = await sdkError(iam(key).send(new ListAccessKeysCommand({})), IAMServiceException);
    assert.equal(err.name, 'InvalidClientTokenId');
    assert.equal(err.message, 'The security token included in the request is invalid.');
    assert.equal(err.$metadata.httpStatusCode, 403);
  });
});

describe('SigV4 checking', () => {
  test('a wrong secret fails with SignatureDoesNotMatch, HTTP 403, and nothing is applied or recorded as used', async () => {
    const { userName, key } = newUser('all', 'wrongsecret');
    const wrong = { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey.slice(0, 39) + (key.secretAccessKey.endsWith('A') ? 'B' : 'A') };
    const err = await sdkError(iam(wrong).send(new CreateAccessKeyCommand({})), IAMServiceException);
    assert.equal(err.name, 'SignatureDoesNotMatch');
    assert.equal(err.message, SIGNATURE_MISMATCH);
    assert.equal(err.$metadata.httpStatusCode, 403);
    assert.equal(account.listKeys(userName).length, 1);
    assert.equal(account.getKey(key.accessKeyId)?.lastUsed, null);
    assert.equal(await identityOutcome(wrong), 'SignatureDoesNotMatch');
    assert.equal(await identityOutcome(key), 'ok');
  });

  test('an unknown, an inactive or a deleted key fails with InvalidClientTokenId, HTTP 403', async () => {
    const unknown = await sdkError(sts({ accessKeyId: 'AKIAZZZZZZZZZZZZZZZZ', secretAccessKey: 'x'.repeat(40) }).send(new GetCallerIdentityCommand({})), STSServiceException);
    assert.equal(unknown.name, 'InvalidClientTokenId');
    assert.equal(unknown.message, 'The security token included in the request is invalid.');
    assert.equal(unknown.$metadata.httpStatusCode, 403);
    const { userName } = newUser('all', 'inactive');
    const inactive = credentialsOf(account.seedAccessKey(userName, { status: 'Inactive' }));
    assert.equal(await identityOutcome(inactive), 'InvalidClientTokenId');
    await iam(admin).send(new UpdateAccessKeyCommand({ UserName: userName, AccessKeyId: inactive.accessKeyId, Status: 'Active' }));
    assert.equal(await identityOutcome(inactive), 'ok');
    await iam(admin).send(new DeleteAccessKeyCommand({ UserName: userName, AccessKeyId: inactive.accessKeyId }));
    assert.equal(await identityOutcome(inactive), 'InvalidClientTokenId');
  });

  test('a signature scoped to the wrong service or region is refused with AWS’s scope messages', async () => {
    // An IAM client pointed at the STS endpoint signs for `iam`.
    const wrongService = await sdkError(iam(admin, { endpoint: stsServer.url }).send(new GetUserCommand({})), IAMServiceException);
    assert.equal(wrongService.name, 'SignatureDoesNotMatch');
    assert.equal(wrongService.message, "Credential should be scoped to correct service: 'sts'. ");
    // IAM is global: only us-east-1 is a valid scope in the aws partition; STS takes any region.
    const wrongRegion = await sdkError(iam(admin, { region: 'eu-west-1' }).send(new GetUserCommand({})), IAMServiceException);
    assert.equal(wrongRegion.message, 'Credential should be scoped to a valid region. ');
    assert.equal(await identityOutcome(admin, { region: 'eu-west-1' }), 'ok');
    assert.equal(await identityOutcome(admin, { region: 'cn-north-1' }), 'SignatureDoesNotMatch');
  });

  test('a clock 20 minutes off fails the signature; with a retry the SDK corrects its clock from the Date header', async () => {
    // The sandbox's clock runs ahead, so the machine's (and the SDK's) looks 20 minutes slow to it.
    skewMs = 20 * 60_000;
    const err = await sdkError(sts(admin).send(new GetCallerIdentityCommand({})), STSServiceException);
    assert.equal(err.name, 'SignatureDoesNotMatch');
    assert.equal(err.$metadata.httpStatusCode, 403);
    assert.match(err.message, /^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 15 min\.\)$/);
    const out = await sts(admin, { maxAttempts: 2 }).send(new GetCallerIdentityCommand({}));
    assert.equal(out.$metadata.attempts, 2);
    assert.equal(out.Account, ACCOUNT);
    skewMs = -20 * 60_000;
    const early = await sdkError(sts(admin).send(new GetCallerIdentityCommand({})), STSServiceException);
    assert.match(early.message, /^Signature not yet current: \d{8}T\d{6}Z is still later than \d{8}T\d{6}Z \(\d{8}T\d{6}Z \+ 15 min\.\)$/);
  });

  test('raw requests: no Authorization is MissingAuthenticationToken; a body changed after signing breaks the signature', async () => {
    const body = 'Action=GetCallerIdentity&Version=2011-06-15';
    const unsigned = await raw(stsServer.url, { 'content-type': 'application/x-www-form-urlencoded' }, body);
    assert.equal(unsigned.status, 403);
    assert.match(unsigned.body, /<Code>MissingAuthenticationToken<\/Code>/);
    assert.match(unsigned.body, /<Message>Request is missing Authentication Token<\/Message>/);
    assert.match(unsigned.body, /^<ErrorResponse xmlns="https:\/\/sts\.amazonaws\.com\/doc\/2011-06-15\/">/);

    const url = new URL(stsServer.url + '/');
    const headers = signRequest({ method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body, credentials: admin, region: 'us-east-1', service: 'sts' });
    const ok = await raw(stsServer.url, headers, body);
    assert.equal(ok.status, 200, ok.body);
    assert.match(ok.body, new RegExp(`<Arn>arn:aws:iam::${ACCOUNT}:user/admin</Arn>`));
    const tampered = await raw(stsServer.url, headers, body.replace('GetCallerIdentity', 'GetCallerIdentitx'));
    assert.equal(tampered.status, 403);
    assert.match(tampered.body, /<Code>SignatureDoesNotMatch<\/Code>/);

    const listGroups = 'Action=ListGroups&Version=2010-05-08';
    const iamUrl = new URL(iamServer.url + '/');
    const unknown = await raw(
      iamServer.url,
      signRequest({ method: 'POST', url: iamUrl, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: listGroups, credentials: admin, region: 'us-east-1', service: 'iam' }),
      listGroups,
    );
    assert.equal(unknown.status, 400);
    assert.match(unknown.body, /<Code>InvalidAction<\/Code>\s*<Message>Could not find operation ListGroups for version 2010-05-08<\/Message>/);
    assert.equal(log.entries({ service: 'iam' }).at(-1)?.operation, 'ListGroups');

    // The query protocol also takes GET with the parameters in the query string, signed as the canonical query.
    const getUrl = new URL(`${stsServer.url}/?Action=GetCallerIdentity&Version=2011-06-15`);
    const getHeaders = signRequest({ method: 'GET', url: getUrl, credentials: admin, region: 'us-east-1', service: 'sts' });
    const viaGet = await raw(getUrl.toString(), getHeaders, undefined, 'GET');
    assert.equal(viaGet.status, 200, viaGet.body);
    assert.match(viaGet.body, /<GetCallerIdentityResult>/);
  });

  test('another partition: IAM takes its own region and writes its own ARNs', async () => {
    const gov = new AwsAccount({ accountId: '210987654321', partition: 'aws-us-gov' });
    gov.createUser({ userName: 'gov-admin' });
    const key = credentialsOf(gov.seedAccessKey('gov-admin'));
    const govIam = await serve({ service: new IamService(gov), faults, log });
    try {
      const user = await iam(key, { endpoint: govIam.url, region: 'us-gov-west-1' }).send(new GetUserCommand({}));
      assert.equal(user.User?.Arn, 'arn:aws-us-gov:iam::210987654321:user/gov-admin');
      const wrong = await sdkError(iam(key, { endpoint: govIam.url, region: 'us-east-1' }).send(new GetUserCommand({})), IAMServiceException);
      assert.equal(wrong.message, 'Credential should be scoped to a valid region. ');
    } finally {
      await govIam.close();
    }
  });

  test('served over TLS, the SDK works against https://localhost with the sandbox certificate trusted', async () => {
    const tlsSts = await serve({ service: new StsService(account), faults, log, tls: sandboxTlsMaterial() });
    try {
      assert.match(tlsSts.url, /^https:\/\/localhost:\d+$/);
      const out = await sts(admin, { endpoint: tlsSts.url }).send(new GetCallerIdentityCommand({}));
      assert.equal(out.Arn, `arn:aws:iam::${ACCOUNT}:user/admin`);
    } finally {
      await tlsSts.close();
    }
  });
});

function raw(url: string, headers: Record<string, string>, body?: string, method = 'POST'): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('propagation delay of a new key', () => {
  test('a key made by CreateAccessKey fails with InvalidClientTokenId until the delay has passed', async () => {
    account.setPropagationDelay(10_000);
    const { userName, key: oldKey } = newUser('all', 'propagating');
    const created = await iam(admin).send(new CreateAccessKeyCommand({ UserName: userName }));
    const fresh = credentialsOf(created.AccessKey!);
    assert.equal(account.checkKey(fresh.accessKeyId, fresh.secretAccessKey), false);
    assert.equal(account.getKey(fresh.accessKeyId)?.propagated, false);
    assert.equal(await identityOutcome(fresh), 'InvalidClientTokenId');
    assert.equal((await sdkError(iam(fresh).send(new GetUserCommand({})), IAMServiceException)).name, 'InvalidClientTokenId');
    // The key is already listed, and the old one keeps working throughout.
    assert.equal((await iam(admin).send(new ListAccessKeysCommand({ UserName: userName }))).AccessKeyMetadata?.length, 2);
    assert.equal(await identityOutcome(oldKey), 'ok');
    skewMs = 9_000;
    assert.equal(await identityOutcome(fresh), 'InvalidClientTokenId');
    skewMs = 10_000;
    assert.equal(await identityOutcome(fresh), 'ok');
    assert.equal(account.checkKey(fresh.accessKeyId, fresh.secretAccessKey), true);
  });

  test('a key waits for the delay in force when it was made; a seeded key waits only when seeded with propagated: false', async () => {
    const { userName } = newUser('all', 'seeded');
    account.setPropagationDelay(60_000);
    const waiting = credentialsOf(account.seedAccessKey(userName, { propagated: false }));
    assert.equal(await identityOutcome(waiting), 'InvalidClientTokenId');
    const { key: seeded } = newUser('all', 'seeded');
    assert.equal(await identityOutcome(seeded), 'ok');
    // Lowering the delay later does not release a key made under the longer one, and raising it does not
    // take back a key that already works: each key's moment is fixed when IAM makes it.
    account.setPropagationDelay(0);
    assert.equal(await identityOutcome(waiting), 'InvalidClientTokenId');
    const { userName: other } = newUser('all', 'seeded');
    const quick = credentialsOf(account.seedAccessKey(other, { propagated: false }));
    account.setPropagationDelay(60_000);
    assert.equal(await identityOutcome(quick), 'ok');
    account.setPropagationDelay(0);
  });
});

describe('propagation delays drawn per key from a seeded distribution', () => {
  /** Every key's drawn delay (usableAt less the moment it was made), for users u0..u{n-1} with two keys each. */
  function delays(seed: number, options: { users?: number; interleave?: boolean; spread?: number; median?: number } = {}): number[] {
    const t = 1_700_000_000_000;
    const a = new AwsAccount({ accountId: ACCOUNT, now: () => t, propagationDelayMs: options.median ?? 1000, delaySpread: options.spread ?? 0.5, seed });
    const out: number[] = [];
    for (let i = 0; i < (options.users ?? 100); i++) {
      a.createUser({ userName: `u${i}` });
      // Unrelated work in between (another user's key) must not change this user's draws.
      if (options.interleave) {
        a.createUser({ userName: `other${i}` });
        a.createAccessKey(`other${i}`);
      }
      for (let k = 0; k < 2; k++) out.push(Date.parse(a.createAccessKey(`u${i}`).usableAt!) - t);
    }
    return out;
  }

  test('each key waits its own delay: log-normal around the median (sigma 0.5), never below 0.37x nor above 2.72x', () => {
    const d = delays(7);
    assert.equal(d.length, 200);
    assert.ok(new Set(d).size > 150, `too few distinct delays: ${new Set(d).size}`);
    for (const x of d) assert.ok(x >= Math.floor(1000 * Math.exp(-1)) && x <= Math.ceil(1000 * Math.exp(1)), String(x));
    const sorted = [...d].sort((x, y) => x - y);
    const median = (sorted[99]! + sorted[100]!) / 2;
    assert.ok(median > 850 && median < 1180, `median ${median}`);
    // Right-skewed, like real propagation: the mean sits above the median, and some keys take twice as long.
    assert.ok(d.reduce((x, y) => x + y, 0) / d.length > median);
    assert.ok(d.some((x) => x > 2000));
    assert.ok(d.some((x) => x < 500));
  });

  test('the same seed draws the same delays, even with other keys made in between; another seed draws others', () => {
    assert.deepEqual(delays(7, { users: 20 }), delays(7, { users: 20 }));
    assert.deepEqual(delays(7, { users: 20, interleave: true }), delays(7, { users: 20 }));
    assert.notDeepEqual(delays(8, { users: 20 }), delays(7, { users: 20 }));
  });

  test('a median of 0 stays 0 whatever the spread; a spread of 0 is the old fixed delay', () => {
    assert.deepEqual(new Set(delays(7, { users: 10, median: 0 })), new Set([0]));
    assert.deepEqual(new Set(delays(7, { users: 10, spread: 0 })), new Set([1000]));
  });

  test('through the SDK: the new key fails with InvalidClientTokenId until its own usableAt, then works', async () => {
    account.setTiming({ propagationDelayMs: 10_000, delaySpread: 0.5, seed: 42 });
    const { userName } = newUser('all', 'drawn');
    const created = await iam(admin).send(new CreateAccessKeyCommand({ UserName: userName }));
    const fresh = credentialsOf(created.AccessKey!);
    const usableAt = Date.parse(account.getKey(fresh.accessKeyId)!.usableAt!);
    assert.ok(Number.isFinite(usableAt));
    skewMs = usableAt - Date.now() - 1_000;
    assert.equal(await identityOutcome(fresh), 'InvalidClientTokenId');
    skewMs = usableAt - Date.now() + 1;
    assert.equal(await identityOutcome(fresh), 'ok');
    assert.equal(account.getKey(fresh.accessKeyId)!.propagated, true);
  });
});

describe('read-after-write lag of ListAccessKeys', () => {
  const listed = async (userName: string) =>
    ((await iam(admin).send(new ListAccessKeysCommand({ UserName: userName }))).AccessKeyMetadata ?? []).map((k) => k.AccessKeyId!).sort();

  test('a key just made is missing from ListAccessKeys until its listedAt; the account and GetAccessKeyLastUsed know it at once', async () => {
    account.setTiming({ readLagMs: 10_000 });
    const { userName, key: old } = newUser('all', 'lagging');
    const created = await iam(admin).send(new CreateAccessKeyCommand({ UserName: userName }));
    const fresh = created.AccessKey!.AccessKeyId!;
    assert.deepEqual(await listed(userName), [old.accessKeyId]);
    const state = account.getKey(fresh)!;
    assert.equal(state.listed, false);
    assert.deepEqual(account.listKeys(userName).map((k) => k.accessKeyId).sort(), [old.accessKeyId, fresh].sort());
    assert.equal((await iam(admin).send(new GetAccessKeyLastUsedCommand({ AccessKeyId: fresh }))).UserName, userName);
    skewMs = Date.parse(state.listedAt!) - Date.now() + 1;
    assert.deepEqual(await listed(userName), [old.accessKeyId, fresh].sort());
  });

  test('the quota stays exact while the list lags: a third CreateAccessKey fails though ListAccessKeys shows one key', async () => {
    account.setTiming({ readLagMs: 10_000 });
    const { userName } = newUser('all', 'lag-quota');
    await iam(admin).send(new CreateAccessKeyCommand({ UserName: userName }));
    assert.equal((await listed(userName)).length, 1);
    await sdkError(iam(admin).send(new CreateAccessKeyCommand({ UserName: userName })), LimitExceededException);
    assert.equal(account.listKeys(userName).length, 2);
  });

  test('nonAtomicQuota: two CreateAccessKey racing within the lag both succeed and the user holds three keys', async () => {
    account.setTiming({ readLagMs: 10_000, nonAtomicQuota: true });
    const { userName } = newUser('all', 'racing');
    const client = iam(admin);
    const both = await Promise.all([client.send(new CreateAccessKeyCommand({ UserName: userName })), client.send(new CreateAccessKeyCommand({ UserName: userName }))]);
    assert.equal(both.filter((r) => r.AccessKey?.AccessKeyId).length, 2);
    assert.equal(account.listKeys(userName).length, 3);
    // Once the replica has caught up, the quota holds again.
    skewMs = 30_000;
    await sdkError(iam(admin).send(new CreateAccessKeyCommand({ UserName: userName })), LimitExceededException);
  });
});

describe('request budgets per account', () => {
  // Budgets whose clock stands still: nothing refills, so exactly `burst` calls pass, however slow the machine.
  const iamService = new IamService(account, { budget: true, budgetNow: () => 0 });
  const stsService = new StsService(account, { budget: true, budgetNow: () => 0 });
  let limitedIam: RunningService;
  let limitedSts: RunningService;
  before(async () => {
    limitedIam = await serve({ service: iamService, faults, log });
    limitedSts = await serve({ service: stsService, faults, log });
  });
  after(async () => {
    await limitedIam.close();
    await limitedSts.close();
  });
  afterEach(() => {
    iamService.budget!.reset({ budgets: true });
    stsService.budget!.reset({ budgets: true });
  });

  /** Sends `n` calls, ten at a time; resolves with how many succeeded and the errors of the rest. */
  async function burst(n: number, send: () => Promise<unknown>): Promise<{ ok: number; errors: SdkError[] }> {
    const out = { ok: 0, errors: [] as SdkError[] };
    for (let i = 0; i < n; i += 10) {
      const settled = await Promise.allSettled(Array.from({ length: Math.min(10, n - i) }, send));
      for (const r of settled) r.status === 'fulfilled' ? (out.ok += 1) : out.errors.push(r.reason as SdkError);
    }
    return out;
  }

  test('the defaults: IAM a stand-in 100 at once and 20 a second (AWS publishes none), STS its documented 600 a second', () => {
    assert.deepEqual(iamService.budget!.limits(), { requests: IAM_DEFAULT_BUDGET });
    assert.deepEqual(IAM_DEFAULT_BUDGET, { burst: 100, perSecond: 20 });
    assert.deepEqual(stsService.budget!.limits(), { requests: STS_DEFAULT_BUDGET });
    assert.deepEqual(STS_DEFAULT_BUDGET, { burst: 600, perSecond: 600 });
    // Without the option a service has no budget at all (what the other tests in this file use).
    assert.equal(new IamService(account).budget, undefined);
  });

  test('a whole rotation fits the default budget even with no refill at all', async () => {
    const { userName, key } = newUser('all', 'budget-rotation');
    const mark = log.entries().length;
    const client = iam(admin, { endpoint: limitedIam.url });
    await client.send(new ListAccessKeysCommand({ UserName: userName }));
    const made = credentialsOf((await client.send(new CreateAccessKeyCommand({ UserName: userName }))).AccessKey!);
    assert.equal(await identityOutcome(made, { endpoint: limitedSts.url }), 'ok');
    await client.send(new UpdateAccessKeyCommand({ UserName: userName, AccessKeyId: key.accessKeyId, Status: 'Inactive' }));
    await client.send(new DeleteAccessKeyCommand({ UserName: userName, AccessKeyId: key.accessKeyId }));
    await client.send(new ListAccessKeysCommand({ UserName: userName }));
    const calls = log.entries().slice(mark);
    assert.equal(calls.length, 6);
    assert.deepEqual(calls.filter((e) => e.throttled || e.status !== 200), []);
  });

  test('IAM: a tight loop gets 100 calls through, then Throttling (HTTP 400, "Rate exceeded", no Retry-After), logged as throttled and not applied', async () => {
    const { userName } = newUser('all', 'loop');
    const client = iam(admin, { endpoint: limitedIam.url });
    const mark = log.entries().length;
    const first = await burst(100, () => client.send(new ListAccessKeysCommand({ UserName: userName })));
    assert.deepEqual([first.ok, first.errors.map((e) => e.name)], [100, []]);
    const err = await sdkError(client.send(new CreateAccessKeyCommand({ UserName: userName })), IAMServiceException);
    assert.equal(err.name, 'Throttling');
    assert.equal(err.message, 'Rate exceeded');
    assert.equal(err.$metadata.httpStatusCode, 400);
    assert.equal(account.listKeys(userName).length, 1, 'a throttled CreateAccessKey made no key');
    const last = log.entries().at(-1)!;
    assert.deepEqual([last.service, last.operation, last.status, last.throttled, last.fault], ['iam', 'CreateAccessKey', 400, true, undefined]);
    assert.equal(log.entries().slice(mark).filter((e) => e.throttled).length, 1);

    // On the wire: IAM's ErrorResponse, a Sender error, and no Retry-After header.
    const body = 'Action=ListAccessKeys&Version=2010-05-08';
    const url = new URL(limitedIam.url + '/');
    const headers = signRequest({ method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body, credentials: admin, region: 'us-east-1', service: 'iam' });
    const reply = await raw(limitedIam.url, headers, body);
    assert.equal(reply.status, 400);
    assert.match(reply.body, /<Error>\s*<Type>Sender<\/Type>\s*<Code>Throttling<\/Code>\s*<Message>Rate exceeded<\/Message>\s*<\/Error>/);
    assert.equal(reply.headers['retry-after'], undefined);
  });

  test('IAM counts per account: every key of the account shares the budget; a key the account does not know is not charged', async () => {
    const { key: other } = newUser('all', 'same-account');
    const adminClient = iam(admin, { endpoint: limitedIam.url });
    iamService.budget!.set('requests', { burst: 3, perSecond: 1 });
    assert.equal((await burst(3, () => adminClient.send(new GetUserCommand({})))).ok, 3);
    const err = await sdkError(iam(other, { endpoint: limitedIam.url }).send(new GetUserCommand({})), IAMServiceException);
    assert.equal(err.name, 'Throttling');
    const stranger = { accessKeyId: 'AKIAZZZZZZZZZZZZZZZZ', secretAccessKey: 'x'.repeat(40) };
    assert.equal((await sdkError(iam(stranger, { endpoint: limitedIam.url }).send(new GetUserCommand({})), IAMServiceException)).name, 'InvalidClientTokenId');
    iamService.budget!.reset();
    assert.equal((await iam(other, { endpoint: limitedIam.url }).send(new GetUserCommand({}))).User?.UserName, account.getKey(other.accessKeyId)!.userName);
  });

  test('STS: 600 calls at once per account and region, then Throttling; the same key in another region has its own', async () => {
    const client = sts(admin, { endpoint: limitedSts.url });
    const first = await burst(600, () => client.send(new GetCallerIdentityCommand({})));
    assert.deepEqual([first.ok, first.errors.length], [600, 0]);
    const err = await sdkError(client.send(new GetCallerIdentityCommand({})), STSServiceException);
    assert.equal(err.name, 'Throttling');
    assert.equal(err.$metadata.httpStatusCode, 400);
    assert.equal(await identityOutcome(admin, { endpoint: limitedSts.url, region: 'us-west-2' }), 'ok');
  });

  test('a throttled call never reaches the fault plan: the armed fault fires on the next call that gets through', async () => {
    iamService.budget!.set('requests', { burst: 1, perSecond: 1 });
    const client = iam(admin, { endpoint: limitedIam.url });
    await client.send(new GetUserCommand({}));
    faults.arm({ service: 'iam', operation: 'GetUser', kind: 'status', status: 503 });
    assert.equal((await sdkError(client.send(new GetUserCommand({})), IAMServiceException)).name, 'Throttling');
    assert.equal(faults.pending().length, 1);
    iamService.budget!.reset();
    assert.equal((await sdkError(client.send(new GetUserCommand({})))).$metadata.httpStatusCode, 503);
    assert.equal(faults.pending().length, 0);
  });

  test('a budget turned off never throttles', async () => {
    iamService.budget!.set('requests', { burst: 1, perSecond: 1 });
    iamService.budget!.enabled = false;
    try {
      const client = iam(admin, { endpoint: limitedIam.url });
      assert.equal((await burst(5, () => client.send(new GetUserCommand({})))).ok, 5);
    } finally {
      iamService.budget!.enabled = true;
    }
  });
});

describe('permissions', () => {
  test('"self": a user manages its own keys; on another user IAM answers AccessDenied, HTTP 403', async () => {
    const { userName, key } = newUser('self', 'selfish');
    const { userName: victim } = newUser('all', 'victim');
    const client = iam(key);
    assert.equal((await client.send(new ListAccessKeysCommand({ UserName: userName }))).AccessKeyMetadata?.length, 1);
    const err = await sdkError(client.send(new CreateAccessKeyCommand({ UserName: victim })), IAMServiceException);
    assert.equal(err.name, 'AccessDenied');
    assert.equal(err.$metadata.httpStatusCode, 403);
    assert.equal(
      err.message,
      `User: arn:aws:iam::${ACCOUNT}:user/${userName} is not authorized to perform: iam:CreateAccessKey on resource: user ${victim} because no identity-based policy allows the iam:CreateAccessKey action`,
    );
    assert.equal(account.listKeys(victim).length, 1);
    const victimKey = account.listKeys(victim)[0]!.accessKeyId;
    assert.equal((await sdkError(client.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: victimKey })), IAMServiceException)).name, 'AccessDenied');
    assert.equal((await sdkError(client.send(new GetUserCommand({ UserName: victim })), IAMServiceException)).name, 'AccessDenied');
    // Authorization comes before existence: a user that does not exist is denied, not "not found".
    assert.equal((await sdkError(client.send(new GetUserCommand({ UserName: 'ghost' })), IAMServiceException)).name, 'AccessDenied');
  });

  test('a list of actions allows exactly those, with wildcards; GetCallerIdentity needs no permission', async () => {
    const { userName, key } = newUser(['iam:List*', 'iam:GetUser'], 'listed');
    const client = iam(key);
    assert.equal((await client.send(new ListAccessKeysCommand({ UserName: 'admin' }))).AccessKeyMetadata?.[0]?.UserName, 'admin');
    assert.equal((await client.send(new GetUserCommand({}))).User?.UserName, userName);
    const err = await sdkError(client.send(new CreateAccessKeyCommand({})), IAMServiceException);
    assert.equal(err.name, 'AccessDenied');
    assert.match(err.message, /iam:CreateAccessKey on resource: user listed-\d+ because/);
    const { key: nothing } = newUser([], 'powerless');
    assert.equal(await identityOutcome(nothing), 'ok');
    account.setPermissions(userName, ['iam:CreateAccessKey']);
    assert.equal((await client.send(new CreateAccessKeyCommand({}))).AccessKey?.UserName, userName);
  });
});

describe('STS AssumeRole and temporary credentials', () => {
  test('a trusted user assumes the role; the temporary credentials act with the role’s permissions', async () => {
    const { userName: assumer, key } = newUser([], 'assumer');
    const { userName: target } = newUser('all', 'target');
    const role = account.createRole({ roleName: `rotator-${++counter}`, trustedUsers: [assumer], permissions: ['iam:ListAccessKeys'] });
    const out = await sts(key).send(new AssumeRoleCommand({ RoleArn: role.arn, RoleSessionName: 'keeper-rotation' }));
    assert.match(String(out.Credentials?.AccessKeyId), ASIA);
    assert.equal(out.Credentials?.SecretAccessKey?.length, 40);
    assert.ok((out.Credentials?.SessionToken?.length ?? 0) > 100, 'no session token');
    assert.ok(out.Credentials?.Expiration instanceof Date);
    assert.ok(Math.abs(out.Credentials.Expiration.getTime() - (Date.now() + 3600_000)) < 5_000, `Expiration ${out.Credentials.Expiration.toISOString()}`);
    assert.equal(out.AssumedRoleUser?.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/${role.roleName}/keeper-rotation`);
    assert.equal(out.AssumedRoleUser?.AssumedRoleId, `${role.roleId}:keeper-rotation`);

    const temp = credentialsOf(out.Credentials);
    const me = await sts(temp).send(new GetCallerIdentityCommand({}));
    assert.deepEqual([me.Arn, me.UserId, me.Account], [out.AssumedRoleUser?.Arn, `${role.roleId}:keeper-rotation`, ACCOUNT]);
    assert.equal((await iam(temp).send(new ListAccessKeysCommand({ UserName: target }))).AccessKeyMetadata?.length, 1);
    const denied = await sdkError(iam(temp).send(new CreateAccessKeyCommand({ UserName: target })), IAMServiceException);
    assert.equal(denied.name, 'AccessDenied');
    assert.match(denied.message, new RegExp(`^User: arn:aws:sts::${ACCOUNT}:assumed-role/${role.roleName}/keeper-rotation is not authorized to perform: iam:CreateAccessKey`));
    const noUser = await sdkError(iam(temp).send(new ListAccessKeysCommand({})), IAMServiceException);
    assert.equal(noUser.name, 'ValidationError');
    assert.equal(noUser.message, 'Must specify userName when calling with non-User credentials');
    // Without its session token the temporary key is just invalid.
    assert.equal(await identityOutcome({ accessKeyId: temp.accessKeyId, secretAccessKey: temp.secretAccessKey }), 'InvalidClientTokenId');
    assert.equal(account.checkKey(temp.accessKeyId, temp.secretAccessKey, temp.sessionToken), true);
  });

  test('a user the role does not trust, or a role that does not exist, gets AccessDenied, HTTP 403', async () => {
    const { userName: trusted } = newUser('all', 'trusted');
    const { userName: stranger, key } = newUser('all', 'stranger');
    const role = account.createRole({ roleName: `guarded-${++counter}`, trustedUsers: [trusted], permissions: 'all' });
    const err = await sdkError(sts(key).send(new AssumeRoleCommand({ RoleArn: role.arn, RoleSessionName: 'nope' })), STSServiceException);
    assert.equal(err.name, 'AccessDenied');
    assert.equal(err.$metadata.httpStatusCode, 403);
    assert.equal(err.message, `User: arn:aws:iam::${ACCOUNT}:user/${stranger} is not authorized to perform: sts:AssumeRole on resource: ${role.arn}`);
    const missing = `arn:aws:iam::${ACCOUNT}:role/no-such-role`;
    assert.equal((await sdkError(sts(key).send(new AssumeRoleCommand({ RoleArn: missing, RoleSessionName: 'nope' })), STSServiceException)).name, 'AccessDenied');
  });

  test('temporary credentials expire with ExpiredToken; durations are checked like STS', async () => {
    const { userName, key } = newUser('all', 'shortlived');
    const role = account.createRole({ roleName: `short-${++counter}`, trustedUsers: [userName], permissions: 'all' });
    const out = await sts(key).send(new AssumeRoleCommand({ RoleArn: role.arn, RoleSessionName: 'brief', DurationSeconds: 900 }));
    const temp = credentialsOf(out.Credentials!);
    assert.equal(await identityOutcome(temp), 'ok');
    skewMs = 901_000;
    // A client whose clock agrees with the sandbox's, so the signature is current and only the token is stale.
    const expired = await sdkError(sts(temp, { systemClockOffset: skewMs }).send(new GetCallerIdentityCommand({})), STSServiceException);
    assert.equal(expired.name, 'ExpiredToken');
    assert.equal(expired.message, 'The security token included in the request is expired');
    assert.equal(expired.$metadata.httpStatusCode, 403);
    skewMs = 0;

    const short = await sdkError(sts(key).send(new AssumeRoleCommand({ RoleArn: role.arn, RoleSessionName: 'brief', DurationSeconds: 60 })), STSServiceException);
    assert.equal(short.name, 'ValidationError');
    assert.equal(short.message, "1 validation error detected: Value '60' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900");
    const long = await sdkError(sts(key).send(new AssumeRoleCommand({ RoleArn: role.arn, RoleSessionName: 'brief', DurationSeconds: 7200 })), STSServiceException);
    assert.equal(long.message, 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
    const badName = await sdkError(sts(key).send(new AssumeRoleCommand({ RoleArn: role.arn, RoleSessionName: 'x' })), STSServiceException);
    assert.equal(badName.message, "1 validation error detected: Value 'x' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2");
  });
});

describe('faults and the request log', () => {
  test('the request log names each call by its Action, per service', async () => {
    const { userName, key } = newUser('all', 'logged');
    log.clear();
    await iam(admin).send(new ListAccessKeysCommand({ UserName: userName }));
    await iam(admin).send(new CreateAccessKeyCommand({ UserName: userName }));
    await sts(key).send(new GetCallerIdentityCommand({}));
    await sdkError(iam(admin).send(new CreateAccessKeyCommand({ UserName: userName })), LimitExceededException);
    assert.deepEqual(
      log.entries().map((e) => [e.service, e.operation, e.status]),
      [
        ['iam', 'ListAccessKeys', 200],
        ['iam', 'CreateAccessKey', 200],
        ['sts', 'GetCallerIdentity', 200],
        ['iam', 'CreateAccessKey', 409],
      ],
    );
    for (const e of log.entries({ service: 'iam' })) assert.ok((IAM_OPERATIONS as readonly string[]).includes(e.operation), e.operation);
    for (const e of log.entries({ service: 'sts' })) assert.ok((STS_OPERATIONS as readonly string[]).includes(e.operation), e.operation);
  });

  test('a throttle fault surfaces as Throttling (HTTP 400, "Rate exceeded") and the call is not applied', async () => {
    const { userName } = newUser('all', 'throttled');
    faults.arm({ service: 'iam', operation: 'CreateAccessKey', kind: 'throttle' });
    const err = await sdkError(iam(admin).send(new CreateAccessKeyCommand({ UserName: userName })), IAMServiceException);
    assert.equal(err.name, 'Throttling');
    assert.equal(err.message, 'Rate exceeded');
    assert.equal(err.$metadata.httpStatusCode, 400);
    assert.equal(account.listKeys(userName).length, 1);
    assert.equal(log.entries({ service: 'iam', operation: 'CreateAccessKey' }).at(-1)?.fault, 'throttle');
    // The fault fired once: the next call goes through.
    assert.equal((await iam(admin).send(new CreateAccessKeyCommand({ UserName: userName }))).AccessKey?.UserName, userName);
  });

  test('a status fault surfaces as an SDK error with that HTTP status; with `after`, the key exists though the caller saw a 500', async () => {
    faults.arm({ service: 'sts', operation: 'GetCallerIdentity', kind: 'status', status: 503 });
    const err = await sdkError(sts(admin).send(new GetCallerIdentityCommand({})), STSServiceException);
    assert.equal(err.$metadata.httpStatusCode, 503);

    const { userName } = newUser('all', 'lost-reply');
    faults.arm({ service: 'iam', operation: 'CreateAccessKey', kind: 'status', status: 500, after: true });
    const lost = await sdkError(iam(admin).send(new CreateAccessKeyCommand({ UserName: userName })), IAMServiceException);
    assert.equal(lost.$metadata.httpStatusCode, 500);
    assert.equal(account.listKeys(userName).length, 2);
  });

  test('a corrupt reply makes the SDK fail to parse the XML', async () => {
    faults.arm({ service: 'iam', operation: 'ListAccessKeys', kind: 'corrupt' });
    const err = await sdkError(iam(admin).send(new ListAccessKeysCommand({ UserName: 'admin' })));
    assert.match(err.message, /XML parse error/);
    assert.equal(err.$metadata.httpStatusCode, 200);
  });
});

describe('control API', () => {
  let control: { url: string; close(): Promise<void> };
  before(async () => {
    const api = new ControlApi(faults, log);
    registerAwsControl(api, account);
    control = await api.listen();
  });
  after(async () => {
    await control.close();
  });

  const call = (method: string, path: string, body?: unknown) => controlCall(control.url, method, path, body);

  test('creates a user and a role, seeds keys, reads them back with secrets, checks them, tunes the delay', async () => {
    const user = await call('POST', '/aws/users', { userName: 'ctl-user', path: '/ops/', permissions: 'self' });
    assert.equal(user.status, 200);
    assert.equal(user.body.arn, `arn:aws:iam::${ACCOUNT}:user/ops/ctl-user`);
    assert.equal(user.body.permissions, 'self');

    const seeded = await call('POST', '/aws/users/ctl-user/keys', {});
    assert.equal(seeded.status, 200);
    assert.match(seeded.body.accessKeyId, AKIA);
    const creds = { accessKeyId: seeded.body.accessKeyId as string, secretAccessKey: seeded.body.secretAccessKey as string };
    assert.equal(await callerArn(creds), `arn:aws:iam::${ACCOUNT}:user/ops/ctl-user`);

    assert.equal((await call('PUT', '/aws/account', { propagationDelayMs: 30_000 })).body.propagationDelayMs, 30_000);
    const waiting = await call('POST', '/aws/users/ctl-user/keys', { propagated: false, status: 'Active' });
    const check = (c: { accessKeyId: string; secretAccessKey: string }) => call('POST', '/aws/check', c).then((r) => r.body.valid);
    assert.equal(await check({ accessKeyId: waiting.body.accessKeyId, secretAccessKey: waiting.body.secretAccessKey }), false);
    assert.equal((await call('PUT', '/aws/account', { propagationDelayMs: 0 })).body.propagationDelayMs, 0);
    assert.equal(await check(creds), true);
    assert.equal(await check({ accessKeyId: creds.accessKeyId, secretAccessKey: 'wrong'.padEnd(40, 'x') }), false);

    const keys = await call('GET', '/aws/users/ctl-user/keys');
    assert.deepEqual(
      keys.body.map((k: AccessKeyState) => [k.accessKeyId, k.secretAccessKey, k.acceptedNow]),
      [
        [creds.accessKeyId, creds.secretAccessKey, true],
        // Still waiting: it was made under the 30 s delay.
        [waiting.body.accessKeyId, waiting.body.secretAccessKey, false],
      ],
    );
    assert.equal(keys.body[0].lastUsed.serviceName, 'sts');
    const third = await call('POST', '/aws/users/ctl-user/keys', {});
    assert.equal(third.status, 409);
    assert.match(third.body.error, /^LimitExceeded: Cannot exceed quota for AccessKeysPerUser: 2$/);

    const role = await call('POST', '/aws/roles', { roleName: 'ctl-role', trustedUsers: ['ctl-user'], permissions: ['iam:ListAccessKeys'] });
    assert.equal(role.status, 200);
    assert.equal(role.body.arn, `arn:aws:iam::${ACCOUNT}:role/ctl-role`);
    assert.deepEqual((await call('GET', '/aws/roles/ctl-role')).body.trustedUsers, ['ctl-user']);
    const assumed = await sts(creds).send(new AssumeRoleCommand({ RoleArn: role.body.arn, RoleSessionName: 'ctl' }));
    assert.match(String(assumed.Credentials?.AccessKeyId), ASIA);

    const account = await call('GET', '/aws/account');
    assert.deepEqual(account.body, { accountId: ACCOUNT, partition: 'aws', propagationDelayMs: 0, readLagMs: 0, delaySpread: 0, nonAtomicQuota: false, seed: 1 });
  });

  test('tunes the timing (medians, spread, seed, racy quota) and shows each key\'s drawn usableAt and listedAt', async () => {
    const tuned = await call('PUT', '/aws/account', { propagationDelayMs: 20_000, readLagMs: 5_000, delaySpread: 0.5, seed: 99, nonAtomicQuota: true });
    assert.equal(tuned.status, 200, JSON.stringify(tuned.body));
    assert.deepEqual(tuned.body, { accountId: ACCOUNT, partition: 'aws', propagationDelayMs: 20_000, readLagMs: 5_000, delaySpread: 0.5, nonAtomicQuota: true, seed: 99 });
    await call('POST', '/aws/users', { userName: 'ctl-timed' });
    const made = account.createAccessKey('ctl-timed');
    const [shown] = (await call('GET', '/aws/users/ctl-timed/keys')).body as AccessKeyState[];
    assert.equal(shown!.accessKeyId, made.accessKeyId);
    assert.equal(shown!.usableAt, made.usableAt);
    assert.equal(shown!.listedAt, made.listedAt);
    assert.equal(shown!.listed, false);
    const created = Date.parse(made.createDate);
    // Whole-second CreateDate: the draw is counted from the millisecond the key was made, within that second.
    assert.ok(Date.parse(made.usableAt!) - created >= 20_000 * Math.exp(-1) && Date.parse(made.usableAt!) - created < 20_000 * Math.exp(1) + 1000, made.usableAt!);
    assert.ok(Date.parse(made.listedAt!) - created >= 5_000 * Math.exp(-1) && Date.parse(made.listedAt!) - created < 5_000 * Math.exp(1) + 1000, made.listedAt!);
    // A bad field changes nothing, not even the good fields beside it.
    for (const bad of [{ delaySpread: -1 }, { delaySpread: 4 }, { readLagMs: -5 }, { seed: 1.5 }, { nonAtomicQuota: 'yes' }]) {
      const res = await call('PUT', '/aws/account', { propagationDelayMs: 1, ...bad });
      assert.equal(res.status, 400, JSON.stringify(bad));
    }
    assert.equal((await call('GET', '/aws/account')).body.propagationDelayMs, 20_000);
  });

  test('reports bad input with 400, unknown names with 404, clashes with 409', async () => {
    assert.equal((await call('GET', '/aws/users/nobody-at-all')).status, 404);
    assert.equal((await call('GET', '/aws/users/nobody-at-all/keys')).status, 404);
    assert.equal((await call('POST', '/aws/users/nobody-at-all/keys', {})).status, 404);
    assert.equal((await call('GET', '/aws/roles/nobody-at-all')).status, 404);
    const bad = await call('POST', '/aws/users', { userName: 'bad name' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /^ValidationError: /);
    assert.equal((await call('POST', '/aws/users', {})).status, 400);
    assert.equal((await call('POST', '/aws/users', { userName: 'admin' })).status, 409);
    assert.equal((await call('POST', '/aws/users', { userName: 'x-perm', permissions: 'root' })).status, 400);
    assert.equal((await call('POST', '/aws/users/admin/keys', { status: 'Paused' })).status, 400);
    assert.equal((await call('POST', '/aws/roles', { roleName: 'r-no-trust' })).status, 400);
    assert.equal((await call('POST', '/aws/roles', { roleName: 'r-ghost', trustedUsers: ['ghost'] })).status, 400);
    assert.equal((await call('PUT', '/aws/account', { propagationDelayMs: -1 })).status, 400);
    assert.equal((await call('POST', '/aws/check', { accessKeyId: 'AKIA' })).status, 400);
  });
});
