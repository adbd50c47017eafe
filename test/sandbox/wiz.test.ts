// The Wiz sandbox as a real client sees it: Node's global fetch posts a form to `wiz-auth` for a token and JSON
// to `wiz-api` for GraphQL, over HTTPS with the test run's certificate (trusted through NODE_EXTRA_CA_CERTS, set
// by scripts/test.ts). The queries are the ones the public rotator (rotate.py) sends, fragments and all.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { ControlApi } from '../../src/sandbox/control.js';
import { FaultPlan, RequestLog } from '../../src/sandbox/faults.js';
import { type RunningService, serve } from '../../src/sandbox/service.js';
import { sandboxTlsMaterial } from '../../src/sandbox/tls.js';
import {
  type ServiceAccountState,
  WIZ_API_OPERATIONS,
  WIZ_AUTH_OPERATIONS,
  WizApiService,
  WizAuthService,
  WizTenant,
  registerWizControl,
} from '../../src/sandbox/wiz/index.js';
import { controlCall } from '../helpers/control-api.js';

const DAY = 86_400_000;
const WIZ_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

// rotate.py's three documents, verbatim in structure: a fragment on ServiceAccount that selects integration.
const SERVICE_ACCOUNT_FRAGMENT = `
  fragment ServiceAccount on ServiceAccount {
    id
    enabled
    name
    clientId
    scopes
    lastRotatedAt
    expiresAt
    integration {
      id
      name
      typeConfiguration {
        type
        iconUrl
      }
    }
  }`;

const LIST_QUERY = `
  query ServiceAccountsTable($first: Int, $after: String, $filterBy: ServiceAccountFilters) {
    serviceAccounts(first: $first, after: $after, filterBy: $filterBy) {
      nodes {
        ...ServiceAccount
        type
        assignedProjects {
          id
          name
        }
        createdAt
        expiresAt
        clientSecret
      }
      pageInfo {
        hasNextPage
        endCursor
      }
      totalCount
    }
  }
  ${SERVICE_ACCOUNT_FRAGMENT}`;

const ORDERED_LIST_QUERY = `
  query ($first: Int, $after: String, $filterBy: ServiceAccountFilters, $orderBy: ServiceAccountOrder) {
    serviceAccounts(first: $first, after: $after, filterBy: $filterBy, orderBy: $orderBy) {
      nodes { id name }
      pageInfo { hasNextPage endCursor }
      totalCount
    }
  }`;

const ROTATE_MUTATION = `
  mutation RotateServiceAccountSecret($input: String!) {
    rotateServiceAccountSecret(ID: $input) {
      serviceAccount {
        ...ServiceAccount
        clientSecret
      }
    }
  }
  ${SERVICE_ACCOUNT_FRAGMENT}`;

const UPDATE_MUTATION = `
  mutation UpdateServiceAccount($input: UpdateServiceAccountInput!) {
    updateServiceAccount(input: $input) {
      serviceAccount {
        ...ServiceAccount
        clientSecret
      }
    }
  }
  ${SERVICE_ACCOUNT_FRAGMENT}`;

const GET_QUERY = `query ($id: ID!) { serviceAccount(id: $id) { id name clientId scopes type createdAt lastRotatedAt lastLoginAt description clientSecret } }`;

const faults = new FaultPlan();
const log = new RequestLog();
// Tests that need time to pass (expired tokens and accounts) move this instead of sleeping for a day.
let skewMs = 0;
// No request budget here: these tests fire requests faster than Wiz's 3 a second. The budget's own tests set one.
const tenant = new WizTenant({ now: () => Date.now() + skewMs, rateLimits: { api: null } });
let auth: RunningService;
let api: RunningService;
let rotator: ServiceAccountState;

before(async () => {
  const tls = sandboxTlsMaterial();
  auth = await serve({ service: new WizAuthService(tenant), faults, log, tls });
  api = await serve({ service: new WizApiService(tenant), faults, log, tls });
  rotator = tenant.createServiceAccount({ name: 'keeper-rotator' });
});

after(async () => {
  await Promise.all([auth.close(), api.close()]);
});

afterEach(() => {
  faults.clear();
  skewMs = 0;
  tenant.rateLimits.set({ api: null, auth: null });
});

interface JsonReply {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function tokenRequest(fields: Record<string, string>, init: RequestInit = {}): Promise<JsonReply> {
  const res = await fetch(`${auth.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields),
    ...init,
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

const credentials = (clientId: string, clientSecret: string) => ({ grant_type: 'client_credentials', audience: 'wiz-api', client_id: clientId, client_secret: clientSecret });

async function token(clientId: string, clientSecret: string): Promise<string> {
  const reply = await tokenRequest(credentials(clientId, clientSecret));
  assert.equal(reply.status, 200, `token request failed: ${JSON.stringify(reply.body)}`);
  return String(reply.body.access_token);
}

function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

async function gql(bearer: string | undefined, query: string, variables?: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<JsonReply> {
  const res = await fetch(`${api.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }) },
    body: JSON.stringify({ query, variables, ...extra }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

interface WireError {
  message: string;
  path?: string[];
  locations?: unknown[];
  extensions: { code: string; http: { status: number } };
}

function errors(reply: JsonReply): WireError[] {
  assert.ok(Array.isArray(reply.body.errors), `expected errors, got ${JSON.stringify(reply.body)}`);
  return reply.body.errors as WireError[];
}

function codes(reply: JsonReply): string[] {
  return errors(reply).map((e) => e.extensions.code);
}

function data<T = Record<string, unknown>>(reply: JsonReply): T {
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  assert.equal(reply.body.errors, undefined, JSON.stringify(reply.body.errors));
  return reply.body.data as T;
}

const rotatorToken = () => token(rotator.clientId, tenant.getServiceAccount(rotator.id)!.clientSecret);

function newAccount(options: Partial<Parameters<WizTenant['createServiceAccount']>[0]> = {}): ServiceAccountState {
  return tenant.createServiceAccount({ name: 'target', ...options });
}


/** One JSON request to a control API. */
describe('wiz-auth token endpoint', () => {
  test('client credentials get a Bearer JWT whose dc claim names the data centre; expires_in is 24 h', async () => {
    const reply = await tokenRequest(credentials(rotator.clientId, rotator.clientSecret));
    assert.equal(reply.status, 200);
    assert.equal(reply.body.token_type, 'Bearer');
    assert.equal(reply.body.expires_in, 86_400);
    assert.equal(reply.body.scope, 'read:service_accounts update:service_accounts');
    assert.equal(reply.headers.get('cache-control'), 'no-store');
    const jwt = String(reply.body.access_token);
    const header = JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    assert.equal(header.alg, 'HS256');
    const c = claims(jwt);
    assert.equal(c.dc, 'us17');
    assert.equal(c.client_id, rotator.clientId);
    assert.equal(c.sub, rotator.clientId);
    assert.equal(c.aud, 'wiz-api');
    assert.equal(c.scope, 'read:service_accounts update:service_accounts');
    assert.equal(Number(c.exp) - Number(c.iat), 86_400);
    assert.ok(Math.abs(Number(c.iat) - Date.now() / 1000) < 60, `iat ${String(c.iat)}`);
    assert.equal(c.iss, `${auth.url}/`);
    assert.match(String(tenant.getServiceAccount(rotator.id)!.lastLoginAt), WIZ_DATETIME);
  });

  test('the generated credentials look like Wiz’s: a 52-character lowercase client id and a 64-character secret', () => {
    assert.match(rotator.clientId, /^[a-z0-9]{52}$/);
    assert.match(rotator.clientSecret, /^[A-Za-z0-9]{64}$/);
    assert.equal(rotator.type, 'THIRD_PARTY');
    assert.deepEqual(rotator.scopes, ['read:service_accounts', 'update:service_accounts']);
  });

  test('setDataCenter changes the dc of tokens minted afterwards; a token minted before keeps its dc and keeps working', async () => {
    const before = await rotatorToken();
    tenant.setDataCenter('eu3');
    try {
      const afterMove = await rotatorToken();
      assert.equal(claims(before).dc, 'us17');
      assert.equal(claims(afterMove).dc, 'eu3');
      data(await gql(before, GET_QUERY, { id: rotator.id }));
    } finally {
      tenant.setDataCenter('us17');
    }
  });

  test('a wrong secret and an unknown client are both 401 invalid_client, and the answer carries no secret', async () => {
    const wrong = await tokenRequest(credentials(rotator.clientId, 'x'.repeat(64)));
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.body, { error: 'invalid_client', error_description: 'Invalid client credentials.' });
    const unknown = await tokenRequest(credentials('a'.repeat(52), rotator.clientSecret));
    assert.equal(unknown.status, 401);
    assert.deepEqual(unknown.body, wrong.body);
    assert.ok(!JSON.stringify(unknown.body).includes(rotator.clientSecret));
  });

  test('a disabled account gets no token until it is enabled again', async () => {
    const sa = newAccount({ enabled: false });
    const refused = await tokenRequest(credentials(sa.clientId, sa.clientSecret));
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error, 'invalid_client');
    assert.equal(refused.body.error_description, 'The service account is disabled.');
    assert.equal(tenant.checkSecret(sa.clientId, sa.clientSecret), false);
    tenant.updateServiceAccount(sa.id, { enabled: true });
    assert.equal(tenant.checkSecret(sa.clientId, sa.clientSecret), true);
    await token(sa.clientId, sa.clientSecret);
  });

  test('an account whose expiresAt has passed gets no token; one that expires later does until the clock passes it', async () => {
    const expired = newAccount({ expiresAt: new Date(Date.now() - 1000) });
    const refused = await tokenRequest(credentials(expired.clientId, expired.clientSecret));
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error_description, 'The service account has expired.');
    assert.equal(tenant.getServiceAccount(expired.id)!.canAuthenticate, false);

    const later = newAccount({ expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    await token(later.clientId, later.clientSecret);
    skewMs = 2 * 3_600_000;
    assert.equal((await tokenRequest(credentials(later.clientId, later.clientSecret))).status, 401);
  });

  test('request errors are 400 OAuth errors: unsupported grant, missing fields, wrong or legacy audience, a JSON body', async () => {
    const base = credentials(rotator.clientId, rotator.clientSecret);
    const cases: Array<[Record<string, string>, string, RegExp]> = [
      [{ ...base, grant_type: 'password' }, 'unsupported_grant_type', /password/],
      [{ audience: 'wiz-api', client_id: rotator.clientId, client_secret: rotator.clientSecret }, 'invalid_request', /grant_type/],
      [{ grant_type: 'client_credentials', audience: 'wiz-api', client_id: rotator.clientId }, 'invalid_request', /client_secret/],
      [{ grant_type: 'client_credentials', client_id: rotator.clientId, client_secret: rotator.clientSecret }, 'invalid_request', /Missing audience/],
      [{ ...base, audience: 'beyond-api' }, 'invalid_request', /legacy Auth0/],
      [{ ...base, audience: 'graph' }, 'invalid_request', /Unsupported audience 'graph'/],
    ];
    for (const [fields, error, description] of cases) {
      const reply = await tokenRequest(fields);
      assert.equal(reply.status, 400, JSON.stringify(fields));
      assert.equal(reply.body.error, error);
      assert.match(String(reply.body.error_description), description);
    }
    const asJson = await tokenRequest({}, { headers: { 'content-type': 'application/json' }, body: JSON.stringify(base) });
    assert.equal(asJson.status, 400);
    assert.equal(asJson.body.error, 'invalid_request');
    const get = await fetch(`${auth.url}/oauth/token`);
    assert.equal(get.status, 405);
    assert.equal(((await get.json()) as Record<string, unknown>).error, 'invalid_request');
  });
});

describe('wiz-api service accounts', () => {
  test('rotate.py’s list query finds the account by its clientId passed as filterBy.name, and never shows a secret', async () => {
    const sa = newAccount({ name: 'ci-scanner', expiresAt: '2031-01-02T03:04:05Z' });
    const d = data<{ serviceAccounts: { nodes: Array<Record<string, unknown>>; totalCount: number; pageInfo: Record<string, unknown> } }>(
      await gql(await rotatorToken(), LIST_QUERY, { first: 20, filterBy: { name: sa.clientId, type: ['THIRD_PARTY'], source: 'MODERN' } }),
    );
    assert.equal(d.serviceAccounts.totalCount, 1);
    assert.deepEqual(d.serviceAccounts.pageInfo.hasNextPage, false);
    assert.deepEqual(d.serviceAccounts.nodes[0], {
      id: sa.id,
      enabled: true,
      name: 'ci-scanner',
      clientId: sa.clientId,
      scopes: ['read:service_accounts', 'update:service_accounts'],
      lastRotatedAt: null,
      expiresAt: '2031-01-02T03:04:05Z',
      integration: null,
      type: 'THIRD_PARTY',
      assignedProjects: null,
      createdAt: sa.createdAt,
      clientSecret: null,
    });
    assert.match(sa.createdAt, WIZ_DATETIME);
  });

  test('filterBy: name matches as a case-insensitive substring; enabled, type, source and expiresAt narrow the list', async () => {
    const tag = `flt${Date.now()}`;
    const a = newAccount({ name: `${tag}-Alpha` });
    const b = newAccount({ name: `${tag}-beta`, enabled: false, expiresAt: '2030-06-01T00:00:00Z' });
    const c = newAccount({ name: `${tag}-gamma`, type: 'SENSOR' });
    const bearer = await rotatorToken();
    const ids = async (filterBy: Record<string, unknown>) =>
      data<{ serviceAccounts: { nodes: Array<{ id: string }> } }>(await gql(bearer, ORDERED_LIST_QUERY, { filterBy })).serviceAccounts.nodes.map((n) => n.id);
    assert.deepEqual(await ids({ name: tag.toUpperCase() }), [a.id, b.id, c.id]);
    assert.deepEqual(await ids({ name: `${tag}-alpha` }), [a.id]);
    assert.deepEqual(await ids({ name: tag, enabled: false }), [b.id]);
    assert.deepEqual(await ids({ name: tag, type: ['SENSOR'] }), [c.id]);
    assert.deepEqual(await ids({ name: tag, type: ['THIRD_PARTY'] }), [a.id, b.id]);
    assert.deepEqual(await ids({ name: tag, source: 'LEGACY' }), []);
    assert.deepEqual(await ids({ name: tag, deleted: true }), []);
    assert.deepEqual(await ids({ name: tag, expiresAt: { before: '2031-01-01T00:00:00Z' } }), [b.id]);
  });

  test('pages with first/after and orders by name', async () => {
    const tag = `pg${Date.now()}`;
    const made = ['c', 'a', 'd', 'b', 'e'].map((n) => newAccount({ name: `${tag}-${n}` }));
    const bearer = await rotatorToken();
    type Page = { serviceAccounts: { nodes: Array<{ id: string; name: string }>; pageInfo: { hasNextPage: boolean; endCursor: string | null }; totalCount: number } };
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const page: Page = data<Page>(await gql(bearer, ORDERED_LIST_QUERY, { first: 2, after, filterBy: { name: tag } }));
      pages += 1;
      assert.equal(page.serviceAccounts.totalCount, 5);
      seen.push(...page.serviceAccounts.nodes.map((n) => n.id));
      if (!page.serviceAccounts.pageInfo.hasNextPage) break;
      after = page.serviceAccounts.pageInfo.endCursor;
    }
    assert.equal(pages, 3);
    assert.deepEqual(seen, made.map((m) => m.id));
    const byName = data<Page>(await gql(bearer, ORDERED_LIST_QUERY, { filterBy: { name: tag }, orderBy: { field: 'NAME', direction: 'DESC' } }));
    assert.deepEqual(byName.serviceAccounts.nodes.map((n) => n.name.slice(-1)), ['e', 'd', 'c', 'b', 'a']);
    const bad = await gql(bearer, ORDERED_LIST_QUERY, { after: 'bm9wZQ==' });
    assert.equal(bad.status, 400);
    assert.deepEqual(codes(bad), ['BAD_USER_INPUT']);
    assert.deepEqual(codes(await gql(bearer, ORDERED_LIST_QUERY, { first: 501 })), ['BAD_USER_INPUT']);
  });

  test('serviceAccount(id) answers by id or by clientId, with clientSecret null', async () => {
    const sa = newAccount({ name: 'one', description: 'seeded' });
    const bearer = await rotatorToken();
    for (const id of [sa.id, sa.clientId]) {
      const got = data<{ serviceAccount: Record<string, unknown> }>(await gql(bearer, GET_QUERY, { id })).serviceAccount;
      assert.equal(got.id, sa.id);
      assert.equal(got.clientId, sa.clientId);
      assert.equal(got.description, 'seeded');
      assert.equal(got.clientSecret, null);
    }
  });

  test('rotate (rotate.py’s mutation, ID = clientId): the new secret works at once, the old one stops, the pre-rotation token still works', async () => {
    const sa = newAccount({ name: 'self-rotating' });
    const oldToken = await token(sa.clientId, sa.clientSecret);
    const reply = await gql(oldToken, ROTATE_MUTATION, { input: sa.clientId });
    const rotated = data<{ rotateServiceAccountSecret: { serviceAccount: Record<string, unknown> } }>(reply).rotateServiceAccountSecret.serviceAccount;
    const newSecret = String(rotated.clientSecret);
    assert.match(newSecret, /^[A-Za-z0-9]{64}$/);
    assert.notEqual(newSecret, sa.clientSecret);
    assert.equal(rotated.clientId, sa.clientId);
    assert.equal(rotated.id, sa.id);
    assert.match(String(rotated.lastRotatedAt), WIZ_DATETIME);

    const old = await tokenRequest(credentials(sa.clientId, sa.clientSecret));
    assert.equal(old.status, 401);
    assert.equal(old.body.error, 'invalid_client');
    assert.equal(tenant.checkSecret(sa.clientId, sa.clientSecret), false);
    assert.equal(tenant.checkSecret(sa.clientId, newSecret), true);
    await token(sa.clientId, newSecret);

    // rotate.py's next call reuses the token it had before rotating.
    const expiry = '2032-02-01T00:00:00Z';
    const updated = data<{ updateServiceAccount: { serviceAccount: Record<string, unknown> } }>(
      await gql(oldToken, UPDATE_MUTATION, { input: { serviceAccountId: sa.clientId, patch: { expiresAt: expiry } } }),
    ).updateServiceAccount.serviceAccount;
    assert.equal(updated.expiresAt, expiry);
    assert.equal(updated.clientSecret, null, 'only the rotate payload may carry the secret');
  });

  test('rotate by the account id works too, and lastRotatedAt follows the clock', async () => {
    const sa = newAccount();
    skewMs = 5 * DAY;
    const bearer = await rotatorToken();
    const rotated = data<{ rotateServiceAccountSecret: { serviceAccount: { lastRotatedAt: string; clientSecret: string } } }>(
      await gql(bearer, ROTATE_MUTATION, { input: sa.id }),
    ).rotateServiceAccountSecret.serviceAccount;
    assert.ok(Math.abs(Date.parse(rotated.lastRotatedAt) - (Date.now() + 5 * DAY)) < 60_000);
    assert.equal(tenant.getServiceAccount(sa.id)!.clientSecret, rotated.clientSecret);
  });

  test('updateServiceAccount moves expiresAt (and null removes it); a past expiry stops the account getting tokens', async () => {
    const sa = newAccount({ expiresAt: new Date(Date.now() + DAY) });
    const bearer = await rotatorToken();
    const update = (expiresAt: string | null) =>
      gql(bearer, `mutation ($input: UpdateServiceAccountInput!) { updateServiceAccount(input: $input) { serviceAccount { id expiresAt } } }`, {
        input: { serviceAccountId: sa.id, patch: { expiresAt } },
      });
    const moved = data<{ updateServiceAccount: { serviceAccount: { id: string; expiresAt: string } } }>(await update('2033-03-03T00:00:00Z'));
    assert.deepEqual(moved.updateServiceAccount.serviceAccount, { id: sa.id, expiresAt: '2033-03-03T00:00:00Z' });
    assert.equal(tenant.getServiceAccount(sa.id)!.expiresAt, '2033-03-03T00:00:00Z');

    data(await update(new Date(Date.now() - 1000).toISOString()));
    assert.equal((await tokenRequest(credentials(sa.clientId, sa.clientSecret))).status, 401);

    assert.equal(data<{ updateServiceAccount: { serviceAccount: { expiresAt: null } } }>(await update(null)).updateServiceAccount.serviceAccount.expiresAt, null);
    await token(sa.clientId, sa.clientSecret);
  });

  test('a bad expiresAt is HTTP 400 BAD_USER_INPUT with data null, and the account is left as it was', async () => {
    const sa = newAccount({ name: 'keep-me', expiresAt: '2030-01-01T00:00:00Z' });
    const reply = await gql(await rotatorToken(), UPDATE_MUTATION, { input: { serviceAccountId: sa.clientId, patch: { name: 'renamed', expiresAt: 'next tuesday' } } });
    assert.equal(reply.status, 400);
    assert.equal(reply.body.data, null);
    assert.deepEqual(codes(reply), ['BAD_USER_INPUT']);
    assert.deepEqual(errors(reply)[0]!.extensions, { code: 'BAD_USER_INPUT', http: { status: 400 } });
    assert.deepEqual(errors(reply)[0]!.path, ['updateServiceAccount']);
    const now = tenant.getServiceAccount(sa.id)!;
    assert.equal(now.name, 'keep-me');
    assert.equal(now.expiresAt, '2030-01-01T00:00:00Z');
  });

  test('without update:service_accounts the mutations are HTTP 403 UNAUTHORIZED and change nothing; without read:, the queries are', async () => {
    const reader = newAccount({ name: 'reader', scopes: ['read:service_accounts'] });
    const target = newAccount({ expiresAt: '2030-01-01T00:00:00Z' });
    const readerToken = await token(reader.clientId, reader.clientSecret);

    const rotate = await gql(readerToken, ROTATE_MUTATION, { input: target.clientId });
    assert.equal(rotate.status, 403);
    assert.equal(rotate.body.data, null);
    assert.deepEqual(errors(rotate)[0]!.extensions, { code: 'UNAUTHORIZED', http: { status: 403 } });
    assert.match(errors(rotate)[0]!.message, /update:service_accounts/);
    const update = await gql(readerToken, UPDATE_MUTATION, { input: { serviceAccountId: target.clientId, patch: { expiresAt: '2040-01-01T00:00:00Z' } } });
    assert.deepEqual(codes(update), ['UNAUTHORIZED']);
    const after = tenant.getServiceAccount(target.id)!;
    assert.equal(after.clientSecret, target.clientSecret);
    assert.equal(after.lastRotatedAt, null);
    assert.equal(after.expiresAt, '2030-01-01T00:00:00Z');
    data(await gql(readerToken, GET_QUERY, { id: target.id }));

    const writer = newAccount({ name: 'writer', scopes: ['update:service_accounts'] });
    const writerToken = await token(writer.clientId, writer.clientSecret);
    const list = await gql(writerToken, LIST_QUERY, { first: 1 });
    assert.equal(list.status, 403);
    assert.deepEqual(codes(list), ['UNAUTHORIZED']);
    assert.deepEqual(codes(await gql(writerToken, GET_QUERY, { id: target.id })), ['UNAUTHORIZED']);
  });

  test('an unknown account is HTTP 404 NOT_FOUND for the query and both mutations', async () => {
    const bearer = await rotatorToken();
    const missing = 'z'.repeat(52);
    const replies = [
      await gql(bearer, GET_QUERY, { id: missing }),
      await gql(bearer, ROTATE_MUTATION, { input: missing }),
      await gql(bearer, UPDATE_MUTATION, { input: { serviceAccountId: missing, patch: { expiresAt: '2030-01-01T00:00:00Z' } } }),
    ];
    for (const reply of replies) {
      assert.equal(reply.status, 404);
      assert.equal(reply.body.data, null);
      assert.deepEqual(errors(reply)[0]!.extensions, { code: 'NOT_FOUND', http: { status: 404 } });
      assert.match(errors(reply)[0]!.message, new RegExp(missing));
    }
  });
});

describe('wiz-api authentication', () => {
  test('no bearer, a garbage bearer, a non-Bearer scheme: 401 UNAUTHENTICATED, and the mutation does not run', async () => {
    const sa = newAccount();
    const replies = [
      await gql(undefined, ROTATE_MUTATION, { input: sa.clientId }),
      await gql('not-a-jwt', ROTATE_MUTATION, { input: sa.clientId }),
      await (async () => {
        const res = await fetch(`${api.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${sa.clientId}:${sa.clientSecret}`).toString('base64')}` },
          body: JSON.stringify({ query: ROTATE_MUTATION, variables: { input: sa.clientId } }),
        });
        return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
      })(),
    ];
    for (const reply of replies) {
      assert.equal(reply.status, 401);
      assert.equal(reply.body.data, null);
      assert.deepEqual(errors(reply)[0]!.extensions, { code: 'UNAUTHENTICATED', http: { status: 401 } });
      assert.match(String(reply.headers.get('www-authenticate')), /^Bearer/);
    }
    assert.equal(tenant.getServiceAccount(sa.id)!.lastRotatedAt, null);
    assert.equal(tenant.getServiceAccount(sa.id)!.clientSecret, sa.clientSecret);
  });

  test('tokens are verified: another tenant’s signature and a tampered scope are refused', async () => {
    const other = new WizTenant();
    other.createServiceAccount({ name: 'impostor', clientId: rotator.clientId, scopes: ['read:service_accounts'] });
    const foreign = other.issueAccessToken(rotator.clientId, 'https://elsewhere/').accessToken;
    assert.deepEqual(codes(await gql(foreign, GET_QUERY, { id: rotator.id })), ['UNAUTHENTICATED']);

    const reader = newAccount({ scopes: ['read:service_accounts'] });
    const [head, , signature] = (await token(reader.clientId, reader.clientSecret)).split('.');
    const body = Buffer.from(JSON.stringify({ ...claims(await token(reader.clientId, reader.clientSecret)), scope: 'read:service_accounts update:service_accounts' })).toString('base64url');
    const tampered = await gql(`${head}.${body}.${signature}`, ROTATE_MUTATION, { input: reader.clientId });
    assert.equal(tampered.status, 401);
    assert.deepEqual(codes(tampered), ['UNAUTHENTICATED']);
  });

  test('a token works until exp (24 h) and is refused from then on', async () => {
    const bearer = await rotatorToken();
    skewMs = DAY - 60_000;
    data(await gql(bearer, GET_QUERY, { id: rotator.id }));
    skewMs = DAY;
    const expired = await gql(bearer, GET_QUERY, { id: rotator.id });
    assert.equal(expired.status, 401);
    assert.deepEqual(codes(expired), ['UNAUTHENTICATED']);
    assert.match(errors(expired)[0]!.message, /expired/);
  });

  test('a token dies with its account: disabled or deleted after minting', async () => {
    const sa = newAccount();
    const bearer = await token(sa.clientId, sa.clientSecret);
    tenant.updateServiceAccount(sa.id, { enabled: false });
    assert.deepEqual(codes(await gql(bearer, GET_QUERY, { id: sa.id })), ['UNAUTHENTICATED']);
    tenant.updateServiceAccount(sa.id, { enabled: true });
    data(await gql(bearer, GET_QUERY, { id: sa.id }));
    assert.equal(tenant.deleteServiceAccount(sa.id), true);
    const gone = await gql(bearer, GET_QUERY, { id: sa.id });
    assert.equal(gone.status, 401);
    assert.match(errors(gone)[0]!.message, /no longer exists/);
  });
});

describe('wiz-api malformed requests', () => {
  test('syntax errors, validation errors, bad variables and bad bodies are 400 BAD_USER_INPUT, never a 500', async () => {
    const bearer = await rotatorToken();
    const syntax = await gql(bearer, 'query { serviceAccounts( { nodes { id } }');
    assert.equal(syntax.status, 400);
    assert.deepEqual(codes(syntax), ['BAD_USER_INPUT']);
    assert.match(errors(syntax)[0]!.message, /^Syntax Error/);
    assert.ok(Array.isArray(errors(syntax)[0]!.locations));

    const unknownField = await gql(bearer, '{ serviceAccounts { nodes { id password } } }');
    assert.equal(unknownField.status, 400);
    assert.match(errors(unknownField)[0]!.message, /Cannot query field "password"/);

    const wrongArg = await gql(bearer, 'mutation { rotateServiceAccountSecret(id: "x") { serviceAccount { id } } }');
    assert.equal(wrongArg.status, 400);
    assert.ok(errors(wrongArg).some((e) => /Unknown argument "id"/.test(e.message)));

    const missingVariable = await gql(bearer, ROTATE_MUTATION, {});
    assert.equal(missingVariable.status, 400);
    assert.match(errors(missingVariable)[0]!.message, /\$input/);

    const twoOps = await gql(bearer, 'query A { serviceAccount(id: "x") { id } } query B { serviceAccount(id: "y") { id } }');
    assert.equal(twoOps.status, 400);
    assert.deepEqual(codes(twoOps), ['BAD_USER_INPUT']);

    const rawBodies: Array<[string, string]> = [
      ['{not json', 'application/json'],
      ['[]', 'application/json'],
      ['{"variables":{}}', 'application/json'],
      [JSON.stringify({ query: GET_QUERY, variables: [1] }), 'application/json'],
      [JSON.stringify({ query: GET_QUERY }), 'text/plain'],
    ];
    for (const [body, type] of rawBodies) {
      const res = await fetch(`${api.url}/graphql`, { method: 'POST', headers: { 'content-type': type, authorization: `Bearer ${bearer}` }, body });
      assert.equal(res.status, 400, body);
      const parsed = (await res.json()) as Record<string, unknown>;
      assert.equal(parsed.data, null);
      assert.equal((parsed.errors as WireError[])[0]!.extensions.code, 'BAD_USER_INPUT');
    }
    const get = await fetch(`${api.url}/graphql?query=${encodeURIComponent('{ serviceAccounts { totalCount } }')}`, { headers: { authorization: `Bearer ${bearer}` } });
    assert.equal(get.status, 405);
    assert.equal(log.entries({ service: 'wiz-api' }).filter((e) => e.status >= 500).length, 0);
  });

  test('operationName selects among several operations', async () => {
    const sa = newAccount({ name: 'chosen' });
    const doc = `query ReadOne($id: ID!) { serviceAccount(id: $id) { name } } query Count { serviceAccounts { totalCount } }`;
    const one = data<{ serviceAccount: { name: string } }>(await gql(await rotatorToken(), doc, { id: sa.id }, { operationName: 'ReadOne' }));
    assert.equal(one.serviceAccount.name, 'chosen');
    const count = data<{ serviceAccounts: { totalCount: number } }>(await gql(await rotatorToken(), doc, {}, { operationName: 'Count' }));
    assert.equal(count.serviceAccounts.totalCount, tenant.listServiceAccounts().length);
  });
});

describe('faults and the request log', () => {
  beforeEach(() => log.clear());

  test('the log names each call by its top-level field (fragments, aliases and unparseable bodies included)', async () => {
    const sa = newAccount();
    const bearer = await rotatorToken();
    await gql(bearer, LIST_QUERY, { first: 1 });
    await gql(bearer, `query { ...Root } fragment Root on Query { x: serviceAccount(id: "${sa.id}") { id } }`);
    await gql(bearer, ROTATE_MUTATION, { input: sa.clientId });
    await gql(bearer, UPDATE_MUTATION, { input: { serviceAccountId: sa.clientId, patch: {} } });
    await gql(bearer, 'this is not graphql');
    await gql(bearer, '{ __typename }');
    assert.deepEqual(
      log.entries().map((e) => [e.service, e.operation, e.status]),
      [
        ['wiz-auth', 'token', 200],
        ['wiz-api', 'serviceAccounts', 200],
        ['wiz-api', 'serviceAccount', 200],
        ['wiz-api', 'rotateServiceAccountSecret', 200],
        ['wiz-api', 'updateServiceAccount', 200],
        ['wiz-api', 'graphql', 400],
        ['wiz-api', 'graphql', 200],
      ],
    );
    assert.deepEqual([...WIZ_AUTH_OPERATIONS], ['token']);
    for (const e of log.entries({ service: 'wiz-api' })) assert.ok((WIZ_API_OPERATIONS as readonly string[]).includes(e.operation));
  });

  test('throttle on a mutation: 429 RATE_LIMIT_EXCEEDED with Retry-After, and the secret is not rotated', async () => {
    const sa = newAccount();
    const bearer = await rotatorToken();
    faults.arm({ service: 'wiz-api', operation: 'rotateServiceAccountSecret', kind: 'throttle', retryAfterSeconds: 7 });
    const read = data(await gql(bearer, GET_QUERY, { id: sa.id }));
    assert.ok(read, 'the throttle must hit only the armed operation');
    const throttled = await gql(bearer, ROTATE_MUTATION, { input: sa.clientId });
    assert.equal(throttled.status, 429);
    assert.equal(throttled.headers.get('retry-after'), '7');
    assert.equal(throttled.body.data, null);
    assert.deepEqual(errors(throttled)[0]!.extensions, { code: 'RATE_LIMIT_EXCEEDED', http: { status: 429 } });
    assert.equal(tenant.getServiceAccount(sa.id)!.clientSecret, sa.clientSecret);
    const retried = data<{ rotateServiceAccountSecret: { serviceAccount: { clientSecret: string } } }>(await gql(bearer, ROTATE_MUTATION, { input: sa.clientId }));
    assert.equal(tenant.getServiceAccount(sa.id)!.clientSecret, retried.rotateServiceAccountSecret.serviceAccount.clientSecret);
    assert.deepEqual(
      log.entries({ operation: 'rotateServiceAccountSecret' }).map((e) => [e.status, e.fault]),
      [
        [429, 'throttle'],
        [200, undefined],
      ],
    );
  });

  test('throttle on the token endpoint: 429 too_many_requests with Retry-After', async () => {
    faults.arm({ service: 'wiz-auth', operation: 'token', kind: 'throttle', retryAfterSeconds: 3 });
    const reply = await tokenRequest(credentials(rotator.clientId, rotator.clientSecret));
    assert.equal(reply.status, 429);
    assert.equal(reply.headers.get('retry-after'), '3');
    assert.equal(reply.body.error, 'too_many_requests');
    await rotatorToken();
  });

  test('status 503 after applying the rotation: the caller sees the error although the secret changed; without after, nothing changes', async () => {
    const sa = newAccount();
    const bearer = await rotatorToken();
    faults.arm({ service: 'wiz-api', operation: 'rotateServiceAccountSecret', kind: 'status', status: 503, body: '{"message":"unavailable"}' });
    assert.equal((await gql(bearer, ROTATE_MUTATION, { input: sa.clientId })).status, 503);
    assert.equal(tenant.getServiceAccount(sa.id)!.clientSecret, sa.clientSecret);

    faults.arm({ service: 'wiz-api', operation: 'rotateServiceAccountSecret', kind: 'status', status: 503, after: true, body: '{"message":"unavailable"}' });
    assert.equal((await gql(bearer, ROTATE_MUTATION, { input: sa.clientId })).status, 503);
    const now = tenant.getServiceAccount(sa.id)!;
    assert.notEqual(now.clientSecret, sa.clientSecret);
    assert.equal(tenant.checkSecret(sa.clientId, sa.clientSecret), false);
    assert.match(String(now.lastRotatedAt), WIZ_DATETIME);
  });
});

describe('control API', () => {
  let control: { url: string; close(): Promise<void> };
  before(async () => {
    const controlApi = new ControlApi(faults, log);
    registerWizControl(controlApi, tenant);
    control = await controlApi.listen();
  });
  after(async () => {
    await control.close();
  });

  const call = (method: string, path: string, body?: unknown) => controlCall(control.url, method, path, body);

  test('creates an account (the answer carries the secret), reads, updates, rotates, checks and deletes it', async () => {
    const created = await call('POST', '/wiz/service-accounts', { name: 'seeded', scopes: ['read:service_accounts'], expiresAt: '2031-05-05T00:00:00Z' });
    assert.equal(created.status, 200);
    const clientId = String(created.body.clientId);
    const secret = String(created.body.clientSecret);
    assert.match(secret, /^[A-Za-z0-9]{64}$/);
    assert.equal(created.body.expiresAt, '2031-05-05T00:00:00Z');
    await token(clientId, secret);

    const read = await call('GET', `/wiz/service-accounts/${clientId}`);
    assert.equal(read.body.id, created.body.id);
    assert.equal(read.body.clientSecret, secret);
    assert.equal(read.body.canAuthenticate, true);

    const disabled = await call('PATCH', `/wiz/service-accounts/${String(created.body.id)}`, { enabled: false });
    assert.equal(disabled.body.enabled, false);
    assert.deepEqual((await call('POST', '/wiz/check', { clientId, clientSecret: secret })).body, { valid: false });
    await call('PATCH', `/wiz/service-accounts/${clientId}`, { enabled: true, expiresAt: null, scopes: ['read:service_accounts', 'update:service_accounts'] });
    assert.deepEqual((await call('POST', '/wiz/check', { clientId, clientSecret: secret })).body, { valid: true });
    assert.equal(tenant.getServiceAccount(clientId)!.expiresAt, null);

    const rotated = await call('POST', `/wiz/service-accounts/${clientId}/rotate`);
    assert.notEqual(rotated.body.clientSecret, secret);
    assert.deepEqual((await call('POST', '/wiz/check', { clientId, clientSecret: secret })).body, { valid: false });
    assert.deepEqual((await call('POST', '/wiz/check', { clientId, clientSecret: rotated.body.clientSecret })).body, { valid: true });

    const list = await call('GET', '/wiz/service-accounts');
    assert.ok((list.body as unknown as ServiceAccountState[]).some((a) => a.clientId === clientId));

    assert.deepEqual((await call('DELETE', `/wiz/service-accounts/${clientId}`)).body, { deleted: true });
    assert.equal((await call('GET', `/wiz/service-accounts/${clientId}`)).status, 404);
  });

  test('moves the tenant to another data centre; new tokens carry it', async () => {
    assert.deepEqual((await call('GET', '/wiz/tenant')).body, { dataCenter: 'us17', tokenLifetimeSeconds: 86_400 });
    try {
      assert.equal((await call('PUT', '/wiz/tenant', { dataCenter: 'us44' })).body.dataCenter, 'us44');
      assert.equal(claims(await rotatorToken()).dc, 'us44');
    } finally {
      tenant.setDataCenter('us17');
    }
    assert.equal((await call('PUT', '/wiz/tenant', { dataCenter: 'US 44' })).status, 400);
  });

  test('reports bad input and unknown accounts with 4xx', async () => {
    assert.equal((await call('POST', '/wiz/service-accounts', {})).status, 400);
    assert.equal((await call('POST', '/wiz/service-accounts', { name: 'x', expiresAt: 'soon' })).status, 400);
    assert.equal((await call('POST', '/wiz/service-accounts', { name: 'x', type: 'ROBOT' })).status, 400);
    assert.equal((await call('POST', '/wiz/service-accounts', { name: 'dup', clientId: rotator.clientId })).status, 400);
    assert.equal((await call('PATCH', `/wiz/service-accounts/${rotator.id}`, { clientSecret: 'mine' })).status, 400);
    assert.equal((await call('PATCH', `/wiz/service-accounts/${rotator.id}`, { enabled: 'yes' })).status, 400);
    assert.equal((await call('PATCH', '/wiz/service-accounts/nope', { enabled: true })).status, 404);
    assert.equal((await call('POST', '/wiz/service-accounts/nope/rotate')).status, 404);
    assert.equal((await call('DELETE', '/wiz/service-accounts/nope')).status, 404);
    assert.equal((await call('POST', '/wiz/check', { clientId: rotator.clientId })).status, 400);
    assert.equal(tenant.getServiceAccount(rotator.id)!.enabled, true);
  });
});

describe('umbrella scopes', () => {
  // Wiz grants through umbrella scopes (src/sandbox/wiz/resolvers.ts, SCOPES_GRANTING, has the sources).
  async function bearerWith(scopes: string[]): Promise<string> {
    const sa = newAccount({ name: `holder of ${scopes.join(' ')}`, scopes });
    return token(sa.clientId, sa.clientSecret);
  }
  const read = (bearer: string, target: ServiceAccountState) => gql(bearer, GET_QUERY, { id: target.id });
  const rotate = (bearer: string, target: ServiceAccountState) => gql(bearer, ROTATE_MUTATION, { input: target.clientId });
  const expire = (bearer: string, target: ServiceAccountState) =>
    gql(bearer, UPDATE_MUTATION, { input: { serviceAccountId: target.clientId, patch: { expiresAt: '2040-01-01T00:00:00Z' } } });

  test('admin:all alone reads, rotates and sets the expiry', async () => {
    const target = newAccount();
    const bearer = await bearerWith(['admin:all']);
    data(await read(bearer, target));
    data(await rotate(bearer, target));
    data(await expire(bearer, target));
    const now = tenant.getServiceAccount(target.id)!;
    assert.notEqual(now.clientSecret, target.clientSecret);
    assert.equal(now.expiresAt, '2040-01-01T00:00:00Z');
  });

  test('read:all reads but does not write; write:all, update:all and write:service_accounts write but do not read', async () => {
    const target = newAccount({ expiresAt: '2030-01-01T00:00:00Z' });
    const reader = await bearerWith(['read:all']);
    data(await read(reader, target));
    for (const reply of [await rotate(reader, target), await expire(reader, target)]) {
      assert.equal(reply.status, 403);
      assert.deepEqual(codes(reply), ['UNAUTHORIZED']);
    }
    assert.equal(tenant.getServiceAccount(target.id)!.clientSecret, target.clientSecret);
    for (const scope of ['write:all', 'update:all', 'write:service_accounts']) {
      const writer = await bearerWith([scope]);
      const denied = await read(writer, target);
      assert.equal(denied.status, 403, scope);
      data(await expire(writer, target));
      const before = tenant.getServiceAccount(target.id)!.clientSecret;
      data(await rotate(writer, target));
      assert.notEqual(tenant.getServiceAccount(target.id)!.clientSecret, before, scope);
    }
  });

  test('scopes of other resources grant nothing, and the refusal names every scope that would', async () => {
    const target = newAccount();
    const bearer = await bearerWith(['read:issues', 'write:issues', 'create:all', 'delete:service_accounts']);
    const denied = await rotate(bearer, target);
    assert.equal(denied.status, 403);
    assert.match(errors(denied)[0]!.message, /\[update:service_accounts, write:service_accounts, update:all, write:all, admin:all\]/);
    assert.equal((await read(bearer, target)).status, 403);
    assert.equal(tenant.getServiceAccount(target.id)!.clientSecret, target.clientSecret);
  });
});

describe('request budgets', () => {
  // A budget that refills one request per 1000 s: whatever the machine's load, nothing refills during a test.
  const TINY = { burst: 2, perSecond: 0.001 };
  let control: { url: string; close(): Promise<void> };
  before(async () => {
    const controlApi = new ControlApi(faults, log);
    registerWizControl(controlApi, tenant);
    control = await controlApi.listen();
  });
  after(async () => {
    await control.close();
  });
  beforeEach(() => log.clear());

  const call = (method: string, path: string, body?: unknown) => controlCall(control.url, method, path, body);

  test("on by default: Wiz's 3 requests a second per service account for the API, none for the token endpoint", async () => {
    assert.deepEqual(new WizTenant().rateLimits.settings(), { api: { burst: 3, perSecond: 3 }, auth: null });
    const other = new WizTenant({ rateLimits: { api: { burst: 5, perSecond: 1 }, auth: { burst: 1, perSecond: 0.5 } } });
    assert.deepEqual(other.rateLimits.settings(), { api: { burst: 5, perSecond: 1 }, auth: { burst: 1, perSecond: 0.5 } });
    assert.throws(() => new WizTenant({ rateLimits: { api: { burst: 0, perSecond: 1 } } }), /burst >= 1/);
  });

  test('past the budget: HTTP 429 RATE_LIMIT_EXCEEDED with Retry-After, and a throttled rotation is not applied', async () => {
    const target = newAccount();
    const bearer = await rotatorToken();
    assert.equal((await call('PUT', '/wiz/rate-limits', { api: TINY, reset: true })).status, 200);
    data(await gql(bearer, GET_QUERY, { id: target.id }));
    data(await gql(bearer, GET_QUERY, { id: target.id }));
    const throttled = await gql(bearer, ROTATE_MUTATION, { input: target.clientId });
    assert.equal(throttled.status, 429);
    assert.equal(throttled.body.data, null);
    assert.deepEqual(errors(throttled)[0]!.extensions, { code: 'RATE_LIMIT_EXCEEDED', http: { status: 429 } });
    assert.ok(Number(throttled.headers.get('retry-after')) >= 1, String(throttled.headers.get('retry-after')));
    assert.equal(tenant.getServiceAccount(target.id)!.clientSecret, target.clientSecret);
    assert.equal(tenant.getServiceAccount(target.id)!.lastRotatedAt, null);
    // The budget, not a fault: the log shows a plain 429.
    assert.deepEqual(log.entries({ service: 'wiz-api' }).map((e) => [e.operation, e.status, e.fault]), [
      ['serviceAccount', 200, undefined],
      ['serviceAccount', 200, undefined],
      ['rotateServiceAccountSecret', 429, undefined],
    ]);
  });

  test('counted per service account; an unauthenticated request is refused as such and spends nothing', async () => {
    const target = newAccount();
    const other = newAccount({ name: 'other caller' });
    const bearer = await rotatorToken();
    const otherBearer = await token(other.clientId, other.clientSecret);
    tenant.rateLimits.set({ api: TINY });
    tenant.rateLimits.reset();
    for (let i = 0; i < 3; i++) assert.equal((await gql(undefined, GET_QUERY, { id: target.id })).status, 401);
    data(await gql(bearer, GET_QUERY, { id: target.id }));
    data(await gql(bearer, GET_QUERY, { id: target.id }));
    assert.equal((await gql(bearer, GET_QUERY, { id: target.id })).status, 429);
    data(await gql(otherBearer, GET_QUERY, { id: target.id }));
    // A second token for the same account shares its budget: the limit is the account's, not the token's.
    assert.equal((await gql(await rotatorToken(), GET_QUERY, { id: target.id })).status, 429);
  });

  test('the token endpoint, given a budget: HTTP 429 too_many_requests with Retry-After before the secret is checked', async () => {
    const sa = newAccount();
    tenant.rateLimits.set({ auth: { burst: 1, perSecond: 0.001 } });
    await token(sa.clientId, sa.clientSecret);
    for (const secret of [sa.clientSecret, 'wrong']) {
      const reply = await tokenRequest(credentials(sa.clientId, secret));
      assert.equal(reply.status, 429);
      assert.equal(reply.body.error, 'too_many_requests');
      assert.ok(Number(reply.headers.get('retry-after')) >= 1);
    }
    await rotatorToken();
    tenant.rateLimits.set({ auth: null });
    await token(sa.clientId, sa.clientSecret);
  });

  test('the control API reads and sets the budgets, refills them, and refuses a bad one without changing anything', async () => {
    assert.deepEqual((await call('GET', '/wiz/rate-limits')).body, { api: null, auth: null });
    assert.deepEqual((await call('PUT', '/wiz/rate-limits', { api: { burst: 4, perSecond: 2 } })).body, { api: { burst: 4, perSecond: 2 }, auth: null });
    for (const bad of [{ api: { burst: 0, perSecond: 1 } }, { auth: { burst: 1 } }, { api: 'fast' }, { burst: 3 }, { reset: 'yes' }, { api: TINY, auth: { burst: 1, perSecond: -1 } }]) {
      assert.equal((await call('PUT', '/wiz/rate-limits', bad)).status, 400, JSON.stringify(bad));
    }
    assert.deepEqual(tenant.rateLimits.settings(), { api: { burst: 4, perSecond: 2 }, auth: null });

    const bearer = await rotatorToken();
    const target = newAccount();
    await call('PUT', '/wiz/rate-limits', { api: { burst: 1, perSecond: 0.001 }, reset: true });
    data(await gql(bearer, GET_QUERY, { id: target.id }));
    assert.equal((await gql(bearer, GET_QUERY, { id: target.id })).status, 429);
    await call('PUT', '/wiz/rate-limits', { reset: true });
    data(await gql(bearer, GET_QUERY, { id: target.id }));
    assert.deepEqual((await call('PUT', '/wiz/rate-limits', { api: null })).body, { api: null, auth: null });
    for (let i = 0; i < 3; i++) data(await gql(bearer, GET_QUERY, { id: target.id }));
  });
});
