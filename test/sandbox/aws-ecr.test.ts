// ECR's API and registry in the sandbox, against the real, unmodified @aws-sdk/client-ecr over HTTPS: the SDK signs
// with SigV4 and speaks awsJson1.1, and the sandbox checks both for real. A few raw requests cover what the SDK
// hides (the JSON reply's number, the registry's challenge). The registry is asked with plain HTTPS requests, as
// Docker asks it.
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { type Sandbox, startSandbox } from '../../src/sandbox/sandbox.js';
import { ECR_TARGET_PREFIX, ECR_TOKEN_LIFETIME_MS, EXPIRED_MESSAGE, signRequest } from '../../src/sandbox/aws/index.js';

let sb: Sandbox;
let puller: { accessKeyId: string; secretAccessKey: string };
let noEcr: { accessKeyId: string; secretAccessKey: string };

before(async () => {
  sb = await startSandbox({ demo: false, realism: false });
  sb.aws.createUser({ userName: 'puller', permissions: ['ecr:GetAuthorizationToken'] });
  sb.aws.createUser({ userName: 'iam-only', permissions: ['iam:*'] });
  const k = sb.aws.seedAccessKey('puller');
  puller = { accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey };
  const n = sb.aws.seedAccessKey('iam-only');
  noEcr = { accessKeyId: n.accessKeyId, secretAccessKey: n.secretAccessKey };
});
after(() => sb.close());

const client = (credentials = puller, maxAttempts = 1) => new ECRClient({ region: 'us-east-1', endpoint: sb.urls.ecr!, credentials, maxAttempts });

async function login(credentials = puller, registryIds?: string[]) {
  const c = client(credentials);
  try {
    return await c.send(new GetAuthorizationTokenCommand(registryIds ? { registryIds } : {}));
  } finally {
    c.destroy();
  }
}

async function sdkError(p: Promise<unknown>): Promise<{ name: string; message: string; status: number | undefined }> {
  try {
    await p;
  } catch (err) {
    const e = err as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, message: e.message, status: e.$metadata?.httpStatusCode };
  }
  assert.fail('the call succeeded');
}

function raw(url: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const v2 = (password?: string, user = 'AWS') =>
  raw(`${sb.urls['ecr-registry']!}/v2/`, password === undefined ? {} : { headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` } });

const passwordOf = (token: string) => {
  const decoded = Buffer.from(token, 'base64').toString('utf8');
  assert.ok(decoded.startsWith('AWS:'), 'the token is base64("AWS:" + password)');
  return decoded.slice(4);
};

describe('ECR GetAuthorizationToken', () => {
  test('answers one login for the caller\'s registry, valid 12 hours, at the sandbox registry', async () => {
    const before = Date.now();
    const out = await login();
    const after = Date.now();
    assert.equal(out.authorizationData?.length, 1);
    const d = out.authorizationData![0]!;
    assert.equal(d.proxyEndpoint, sb.urls['ecr-registry']);
    assert.ok(d.expiresAt instanceof Date, 'the SDK read expiresAt as a timestamp');
    // 12 hours from when the sandbox answered, in whole seconds (cut down to one).
    const expires = d.expiresAt.getTime();
    assert.equal(expires % 1000, 0);
    assert.ok(expires > before + ECR_TOKEN_LIFETIME_MS - 1000 && expires <= after + ECR_TOKEN_LIFETIME_MS, `lives 12 hours (${expires - before} ms after the call)`);
    assert.equal(sb.ecrTokens.check(passwordOf(d.authorizationToken!)), 'live');
    assert.ok(sb.aws.issued.has(d.authorizationToken!), 'both forms count as issued secrets');
  });

  test('speaks awsJson1.1 on the wire: the reply\'s expiresAt is epoch seconds as a JSON number', async () => {
    const url = new URL(sb.urls.ecr!);
    const body = '{}';
    const headers = signRequest({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${ECR_TARGET_PREFIX}.GetAuthorizationToken` },
      body,
      credentials: puller,
      region: 'eu-west-1',
      service: 'ecr',
    });
    const sent = Date.now();
    const reply = await raw(url.href, { method: 'POST', headers, body });
    const answered = Date.now();
    assert.equal(reply.status, 200);
    assert.match(String(reply.headers['content-type']), /^application\/x-amz-json-1\.1/);
    const json = JSON.parse(reply.body) as { authorizationData: Array<{ expiresAt: unknown; authorizationToken: unknown; proxyEndpoint: unknown }> };
    assert.equal(typeof json.authorizationData[0]!.expiresAt, 'number');
    const expires = (json.authorizationData[0]!.expiresAt as number) * 1000;
    assert.ok(expires > sent + ECR_TOKEN_LIFETIME_MS - 1000 && expires <= answered + ECR_TOKEN_LIFETIME_MS);
    assert.equal(sb.ecrTokens.list().at(-1)!.region, 'eu-west-1', 'the login is for the signature\'s region');

    const wrongTarget = signRequest({ method: 'POST', url, headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${ECR_TARGET_PREFIX}.DeleteRepository` }, body, credentials: puller, region: 'us-east-1', service: 'ecr' });
    const unknown = await raw(url.href, { method: 'POST', headers: wrongTarget, body });
    assert.equal(unknown.status, 400);
    assert.equal((JSON.parse(unknown.body) as { __type: string }).__type, 'UnknownOperationException');
  });

  test('the deprecated registryIds: one login per ID; a malformed ID is InvalidParameterException', async () => {
    const out = await login(puller, ['111122223333', '444455556666']);
    assert.equal(out.authorizationData?.length, 2);
    assert.deepEqual(sb.ecrTokens.list().slice(-2).map((t) => t.registryId), ['111122223333', '444455556666']);
    const bad = await sdkError(login(puller, ['1234']));
    assert.equal(bad.name, 'InvalidParameterException');
    assert.equal(bad.status, 400);
    assert.match(bad.message, /registryIds/);
  });

  test('refuses a wrong secret (InvalidSignatureException) and an unknown key (UnrecognizedClientException)', async () => {
    const wrong = await sdkError(login({ ...puller, secretAccessKey: 'x'.repeat(40) }));
    assert.equal(wrong.name, 'InvalidSignatureException');
    assert.equal(wrong.status, 400);
    const unknown = await sdkError(login({ accessKeyId: 'AKIAAAAAAAAAAAAAAAAA', secretAccessKey: 'x'.repeat(40) }));
    assert.equal(unknown.name, 'UnrecognizedClientException');
    assert.equal(unknown.status, 400);
  });

  test('a user without ecr:GetAuthorizationToken gets AccessDeniedException, and no login is made', async () => {
    const made = sb.ecrTokens.list().length;
    const denied = await sdkError(login(noEcr));
    assert.equal(denied.name, 'AccessDeniedException');
    assert.match(denied.message, /is not authorized to perform: ecr:GetAuthorizationToken on resource: \*/);
    assert.equal(sb.ecrTokens.list().length, made);
  });

  test('throttles past the account\'s budget with ThrottlingException (400), which the SDK retries', async () => {
    const budget = sb.budgets.ecr!;
    budget.set('requests', { burst: 1, perSecond: 0.001 });
    budget.enabled = true;
    try {
      await login();
      const throttled = await sdkError(login());
      assert.equal(throttled.name, 'ThrottlingException');
      assert.equal(throttled.status, 400);
    } finally {
      budget.enabled = false;
      budget.reset({ budgets: true });
    }
    // One throttled reply, then the SDK's own retry gets through.
    sb.faults.arm({ service: 'ecr', operation: 'GetAuthorizationToken', kind: 'throttle' });
    const mark = sb.log.entries({ service: 'ecr' }).length;
    const c = client(puller, 3);
    try {
      const out = await c.send(new GetAuthorizationTokenCommand({}));
      assert.equal(out.authorizationData?.length, 1);
    } finally {
      c.destroy();
    }
    assert.deepEqual(sb.log.entries({ service: 'ecr' }).slice(mark).map((e) => e.status), [400, 200]);
  });
});

describe('ECR registry /v2/', () => {
  test('opens to a live login with the registry API version header, and challenges anything else', async () => {
    const d = (await login()).authorizationData![0]!;
    const ok = await v2(passwordOf(d.authorizationToken!));
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.equal(ok.body, '{}');

    const none = await v2();
    assert.equal(none.status, 401);
    assert.match(String(none.headers['www-authenticate']), /^Basic realm="https:\/\/localhost:\d+\/",service="ecr\.amazonaws\.com"$/);
    const wrongUser = await v2(passwordOf(d.authorizationToken!), 'admin');
    assert.equal(wrongUser.status, 401);
    const made = await v2('not-a-login');
    assert.equal(made.status, 401);
    assert.equal((JSON.parse(made.body) as { errors: Array<{ code: string }> }).errors[0]!.code, 'DENIED');
  });

  test('an expired login is refused with ECR\'s message; a revoked one too', async () => {
    const first = passwordOf((await login()).authorizationData![0]!.authorizationToken!);
    const second = passwordOf((await login()).authorizationData![0]!.authorizationToken!);
    assert.equal(sb.ecrTokens.revoke(first), 1);
    const revoked = await v2(first);
    assert.equal(revoked.status, 401);
    assert.equal((await v2(second)).status, 200, 'revoking one leaves the other');

    sb.ecrTokens.advance(ECR_TOKEN_LIFETIME_MS);
    const expired = await v2(second);
    assert.equal(expired.status, 401);
    assert.deepEqual(JSON.parse(expired.body), { errors: [{ code: 'DENIED', message: EXPIRED_MESSAGE }] });
    // A login made after the clock moved lives 12 hours from then.
    const fresh = passwordOf((await login()).authorizationData![0]!.authorizationToken!);
    assert.equal((await v2(fresh)).status, 200);
  });
});
