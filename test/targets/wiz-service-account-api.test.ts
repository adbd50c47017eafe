// The Wiz client (wiz-api.ts) against the Wiz sandbox over HTTPS, call by call: each refusal Wiz documents comes
// back under its own HTTP status, and the client must tell a refusal (the call was not applied) from an unknown
// outcome, honour throttling as Wiz asks, and hand a throttled token request back as an answer when asked to.
// No mocks: the real client, the real emulator, the sandbox's fault plan for what a healthy emulator never does.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { Deadline } from '../../src/deadline.js';
import { FaultPlan, RequestLog } from '../../src/sandbox/faults.js';
import { type RunningService, serve } from '../../src/sandbox/service.js';
import { sandboxTlsMaterial } from '../../src/sandbox/tls.js';
import { type ServiceAccountState, WizApiService, WizAuthService, WizTenant } from '../../src/sandbox/wiz/index.js';
import { Secret } from '../../src/secret.js';
import { type CallOptions, WizCallError, WizGraphql, type WizToken, adminToken, requestToken } from '../../src/targets/wiz-service-account/wiz-api.js';

const faults = new FaultPlan();
const log = new RequestLog();
// No budget unless a test sets one: the tests below send faster than Wiz's 3 requests a second.
const tenant = new WizTenant({ rateLimits: { api: null } });
let auth: RunningService;
let api: RunningService;

before(async () => {
  const tls = sandboxTlsMaterial();
  auth = await serve({ service: new WizAuthService(tenant), faults, log, tls });
  api = await serve({ service: new WizApiService(tenant), faults, log, tls });
});

after(async () => {
  await Promise.all([auth.close(), api.close()]);
});

afterEach(() => {
  faults.clear();
  log.clear();
  tenant.rateLimits.set({ api: null, auth: null });
});

const tokenUrl = () => `${auth.url}/oauth/token`;
const call = (): CallOptions => ({ deadline: new Deadline(120_000) });

async function signIn(account: ServiceAccountState, options: CallOptions = call()): Promise<WizToken> {
  const result = await requestToken(tokenUrl(), account.clientId, new Secret(tenant.getServiceAccount(account.id)!.clientSecret), options);
  assert.ok(result.ok, result.ok ? '' : result.reason);
  return result.token;
}

async function client(account: ServiceAccountState, options: CallOptions = call()): Promise<WizGraphql> {
  return new WizGraphql(`${api.url}/graphql`, await signIn(account, options), options);
}

async function failure(promise: Promise<unknown>): Promise<WizCallError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof WizCallError, String(err));
    return err;
  }
  assert.fail('expected the call to fail');
}

const admin = (scopes?: string[]) => tenant.createServiceAccount({ name: 'admin', ...(scopes ? { scopes } : {}) });
const target = () => tenant.createServiceAccount({ name: 'target', expiresAt: '2030-01-01T00:00:00Z' });
const apiCalls = (operation: string) => log.entries({ service: 'wiz-api', operation });

describe('refusals, as Wiz answers them', () => {
  test('UNAUTHORIZED is HTTP 403: TARGET_PERMISSION_DENIED, refused, not retried, nothing changed', async () => {
    const t = target();
    const err = await failure((await client(admin(['read:service_accounts']))).rotateSecret(t.clientId));
    assert.equal(err.code, 'TARGET_PERMISSION_DENIED');
    assert.equal(err.status, 403);
    assert.equal(err.refused, true);
    assert.match(err.message, /UNAUTHORIZED/);
    assert.equal(apiCalls('rotateServiceAccountSecret').length, 1);
    assert.equal(tenant.getServiceAccount(t.id)!.clientSecret, t.clientSecret);
  });

  test('NOT_FOUND is HTTP 404: TARGET_NOT_FOUND, refused', async () => {
    const err = await failure((await client(admin())).rotateSecret('z'.repeat(52)));
    assert.equal(err.code, 'TARGET_NOT_FOUND');
    assert.equal(err.status, 404);
    assert.equal(err.refused, true);
    assert.equal(apiCalls('rotateServiceAccountSecret').length, 1);
  });

  test('BAD_USER_INPUT is HTTP 400: refused, not retried, the expiry left as it was', async () => {
    const t = target();
    const err = await failure((await client(admin())).setExpiry(t.clientId, 'next tuesday'));
    assert.equal(err.code, 'TARGET_REQUEST_FAILED');
    assert.equal(err.status, 400);
    assert.equal(err.refused, true);
    assert.equal(err.transient, false);
    assert.equal(apiCalls('updateServiceAccount').length, 1);
    assert.equal(tenant.getServiceAccount(t.id)!.expiresAt, '2030-01-01T00:00:00Z');
  });

  test('UNAUTHENTICATED is HTTP 401: a token whose account was disabled since is TARGET_AUTH_FAILED, refused', async () => {
    const a = admin();
    const graphql = await client(a);
    tenant.updateServiceAccount(a.id, { enabled: false });
    const err = await failure(graphql.findServiceAccount(a.clientId));
    assert.equal(err.code, 'TARGET_AUTH_FAILED');
    assert.equal(err.status, 401);
    assert.equal(err.refused, true);
  });

  test('umbrella scopes are honoured by Wiz: admin:all alone reads, rotates and sets the expiry', async () => {
    const t = target();
    const graphql = await client(admin(['admin:all']));
    assert.equal((await graphql.findServiceAccount(t.clientId))?.id, t.id);
    const secret = await graphql.rotateSecret(t.clientId);
    assert.equal(tenant.getServiceAccount(t.id)!.clientSecret, secret.reveal());
    assert.equal(await graphql.setExpiry(t.clientId, '2031-01-01T00:00:00Z'), '2031-01-01T00:00:00Z');
  });
});

describe('unknown outcomes', () => {
  test('INTERNAL is HTTP 500: retried, and when it persists the outcome is unknown (the rotation may have been applied)', async () => {
    const t = target();
    const graphql = await client(admin());
    const body = JSON.stringify({ errors: [{ message: 'Internal server error', extensions: { code: 'INTERNAL', http: { status: 500 } } }], data: null });
    faults.arm({ service: 'wiz-api', operation: 'rotateServiceAccountSecret', kind: 'status', status: 500, after: true, times: 3, body, headers: { 'content-type': 'application/json' } });
    const err = await failure(graphql.rotateSecret(t.clientId));
    assert.equal(err.code, 'TARGET_REQUEST_FAILED');
    assert.equal(err.status, 500);
    assert.equal(err.refused, false);
    assert.equal(apiCalls('rotateServiceAccountSecret').length, 3);
    assert.notEqual(tenant.getServiceAccount(t.id)!.clientSecret, t.clientSecret, 'Wiz did apply it: refused would have been a lie');
  });

  test('a refusal code under a 5xx is not trusted: a gateway error quoting NOT_FOUND after the call was applied stays unknown', async () => {
    const t = target();
    const graphql = await client(admin());
    const body = JSON.stringify({ errors: [{ message: 'not found', extensions: { code: 'NOT_FOUND' } }], data: null });
    faults.arm({ service: 'wiz-api', operation: 'rotateServiceAccountSecret', kind: 'status', status: 502, after: true, times: 3, body, headers: { 'content-type': 'application/json' } });
    const err = await failure(graphql.rotateSecret(t.clientId));
    assert.equal(err.refused, false);
    assert.equal(err.status, 502);
    assert.notEqual(tenant.getServiceAccount(t.id)!.clientSecret, t.clientSecret);
  });
});

describe('throttling', () => {
  test('a read and a write past the budget are waited out as Retry-After asks, and the write is applied once', async () => {
    const t = target();
    const a = admin();
    const retries: Array<[string, number]> = [];
    const options: CallOptions = { deadline: new Deadline(120_000), onRetry: (_what, _attempt, err, waitMs) => retries.push([err.code, waitMs]) };
    const graphql = await client(a, options);
    tenant.rateLimits.set({ api: { burst: 1, perSecond: 1 } });
    // Each call's first try finds the account's budget spent, however slow the machine: a zero delay marks the
    // moment it arrives, and the bucket is emptied then, as another caller of the same account would.
    for (const operation of ['serviceAccounts', 'rotateServiceAccountSecret']) faults.arm({ service: 'wiz-api', operation, kind: 'delay', delayMs: 0 });
    const stop = faults.onFire(() => {
      while (tenant.rateLimits.takeApi(a.clientId).ok);
    });
    try {
      assert.equal((await graphql.findServiceAccount(t.clientId))?.id, t.id);
      const secret = await graphql.rotateSecret(t.clientId);
      assert.equal(tenant.getServiceAccount(t.id)!.clientSecret, secret.reveal());
    } finally {
      stop();
    }
    for (const operation of ['serviceAccounts', 'rotateServiceAccountSecret']) {
      // Throttled (once, or again if a timer fired a hair early), then served: one rotation applied.
      assert.match(apiCalls(operation).map((e) => e.status).join(','), /^(429,)+200$/, operation);
    }
    assert.ok(retries.length >= 2 && retries.every(([code, wait]) => code === 'TARGET_THROTTLED' && wait >= 1000), JSON.stringify(retries));
  });

  test('more throttled replies than failures are tried, each a refusal: after six the call gives up, refused, nothing applied', async () => {
    const t = target();
    const graphql = await client(admin());
    faults.arm({ service: 'wiz-api', operation: 'rotateServiceAccountSecret', kind: 'throttle', retryAfterSeconds: 1, times: 100 });
    const err = await failure(graphql.rotateSecret(t.clientId));
    assert.equal(err.code, 'TARGET_THROTTLED');
    assert.equal(err.status, 429);
    assert.equal(err.refused, true);
    assert.equal(apiCalls('rotateServiceAccountSecret').length, 6);
    assert.equal(tenant.getServiceAccount(t.id)!.clientSecret, t.clientSecret);
  });

  test('a wait the run cannot afford is not waited for: thrown at once, still a refusal', async () => {
    const t = target();
    const graphql = await client(admin());
    tenant.rateLimits.set({ api: { burst: 1, perSecond: 0.001 } });
    await graphql.findServiceAccount(t.clientId);
    const err = await failure(graphql.rotateSecret(t.clientId));
    assert.equal(err.code, 'TARGET_THROTTLED');
    assert.equal(err.refused, true);
    assert.ok(err.retryAfterMs! >= 900_000, String(err.retryAfterMs));
    assert.equal(apiCalls('rotateServiceAccountSecret').length, 1);
    assert.equal(tenant.getServiceAccount(t.id)!.clientSecret, t.clientSecret);
  });

  test("a throttled token request: waited out and retried by default; with 'answer', handed back at once as throttled", async () => {
    const a = admin();
    const secret = new Secret(a.clientSecret);
    tenant.rateLimits.set({ auth: { burst: 1, perSecond: 0.001 } });
    assert.ok((await requestToken(tokenUrl(), a.clientId, secret, call())).ok);

    const answered = await requestToken(tokenUrl(), a.clientId, secret, call(), 'answer');
    assert.equal(answered.ok, false);
    assert.ok(!answered.ok && answered.throttled === true, JSON.stringify(answered));
    assert.ok(!answered.ok && answered.retryAfterMs! >= 900_000, JSON.stringify(answered));
    assert.match(!answered.ok ? answered.reason : '', /throttled \(HTTP 429\)/);

    // Retried, the wait (1000 s) is more than the run may spend: thrown as TARGET_THROTTLED, never as a bad secret.
    const err = await failure(requestToken(tokenUrl(), a.clientId, secret, call()));
    assert.equal(err.code, 'TARGET_THROTTLED');
    assert.equal(err.refused, true);

    // A budget that refills in a second, spent as the request arrives: the default mode waits and gets the token.
    tenant.rateLimits.set({ auth: { burst: 1, perSecond: 1 } });
    faults.arm({ service: 'wiz-auth', operation: 'token', kind: 'delay', delayMs: 0 });
    const stop = faults.onFire(() => {
      while (tenant.rateLimits.takeAuth(a.clientId).ok);
    });
    try {
      const mark = log.entries().length;
      assert.ok((await requestToken(tokenUrl(), a.clientId, secret, call())).ok);
      assert.match(log.entries().slice(mark).map((e) => e.status).join(','), /^(429,)+200$/);
    } finally {
      stop();
    }
  });
});

describe('admin tokens: one per admin credentials in a process (report --check reads a fleet with one admin)', () => {
  const tokens = () => log.entries({ service: 'wiz-auth', operation: 'token' }).map((e) => e.status);

  test('asked together and again later, the admin gets one token; another secret is asked for on its own', async () => {
    const a = admin();
    const secret = new Secret(a.clientSecret);
    const [one, two] = await Promise.all([adminToken(tokenUrl(), a.clientId, secret, call()), adminToken(tokenUrl(), a.clientId, secret, call())]);
    const three = await adminToken(tokenUrl(), a.clientId, new Secret(a.clientSecret), call());
    assert.ok(one.ok && two.ok && three.ok);
    // The same token object: the result is shared, never a second request's.
    assert.equal(two.token, one.token);
    assert.equal(three.token, one.token);
    assert.deepEqual(tokens(), [200]);
    const b = admin();
    assert.ok((await adminToken(tokenUrl(), b.clientId, new Secret(b.clientSecret), call())).ok);
    assert.deepEqual(tokens(), [200, 200]);
  });

  test('a refused secret is not kept: each caller asks Wiz, and once the secret is right it signs in', async () => {
    const a = admin();
    const wrong = new Secret(`${a.clientSecret}x`);
    for (let i = 0; i < 2; i++) {
      const refused = await adminToken(tokenUrl(), a.clientId, wrong, call());
      assert.equal(refused.ok, false);
    }
    assert.deepEqual(tokens(), [401, 401]);
    assert.ok((await adminToken(tokenUrl(), a.clientId, new Secret(a.clientSecret), call())).ok);
  });

  test('a token with less than five minutes to live is not handed out again', async () => {
    const shortLived = new WizTenant({ rateLimits: { api: null }, tokenLifetimeSeconds: 240 });
    const shortAuth = await serve({ service: new WizAuthService(shortLived), faults, log, tls: sandboxTlsMaterial() });
    try {
      const a = shortLived.createServiceAccount({ name: 'admin' });
      const url = `${shortAuth.url}/oauth/token`;
      const first = await adminToken(url, a.clientId, new Secret(a.clientSecret), call());
      const second = await adminToken(url, a.clientId, new Secret(a.clientSecret), call());
      assert.ok(first.ok && second.ok);
      assert.notEqual(second.token, first.token, 'a token of its own');
      assert.deepEqual(tokens(), [200, 200]);
    } finally {
      await shortAuth.close();
    }
  });
});
