// The Azure sandbox against the real clients: @azure/identity's ClientSecretCredential gets tokens from the
// sandbox's Entra endpoint and @microsoft/microsoft-graph-client calls its Graph, both over HTTPS with the test
// run's certificate (trusted through NODE_EXTRA_CA_CERTS, set by scripts/test.ts). No mocks, no custom fetch.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import { AuthenticationRequiredError, ClientSecretCredential, CredentialUnavailableError } from '@azure/identity';
import { Client, GraphError, RetryHandlerOptions } from '@microsoft/microsoft-graph-client';
import { TokenCredentialAuthenticationProvider } from '@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials/index.js';
import { ControlApi } from '../../src/sandbox/control.js';
import { FaultPlan, RequestLog } from '../../src/sandbox/faults.js';
import { type RunningService, serve } from '../../src/sandbox/service.js';
import { sandboxTlsMaterial } from '../../src/sandbox/tls.js';
import { type AppIds, AzureService, Directory, GRAPH_DEFAULT_BUDGETS, type TenantState } from '../../src/sandbox/azure/index.js';
import { controlCall } from '../helpers/control-api.js';

const SCOPE = 'https://graph.microsoft.com/.default';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DAY = 86_400_000;

const faults = new FaultPlan();
const log = new RequestLog();
// Tests that need time to pass (expired tokens) move this instead of sleeping for an hour.
let skewMs = 0;
const azure = new AzureService({ now: () => Date.now() + skewMs });
let running: RunningService;
let tenant: TenantState;
let admin: AppIds;
let adminSecret: string;

before(async () => {
  running = await serve({ service: azure, faults, log, tls: sandboxTlsMaterial() });
  tenant = azure.createTenant();
  admin = azure.createApp({ tenantId: tenant.tenantId, displayName: 'rotator', permission: 'Application.ReadWrite.All' });
  adminSecret = azure.addSecret(admin.objectId, { displayName: 'seed' }).secretText;
});

after(async () => {
  await running.close();
});

afterEach(() => {
  faults.clear();
  skewMs = 0;
});

function credential(tenantId: string, clientId: string, secret: string): ClientSecretCredential {
  // authorityHost + disableInstanceDiscovery are all identity needs: NODE_EXTRA_CA_CERTS covers TLS trust, so
  // no tlsOptions, and the tenant is named in the constructor, so no additionallyAllowedTenants.
  return new ClientSecretCredential(tenantId, clientId, secret, { authorityHost: running.url, disableInstanceDiscovery: true });
}

function graph(cred: ClientSecretCredential, options: { customHosts?: boolean } = {}): Client {
  return Client.initWithMiddleware({
    authProvider: new TokenCredentialAuthenticationProvider(cred, { scopes: [SCOPE] }),
    baseUrl: running.url,
    ...(options.customHosts === false ? {} : { customHosts: new Set(['localhost']) }),
  });
}

const adminGraph = () => graph(credential(tenant.tenantId, admin.appId, adminSecret));

/**
 * A Graph client for a rotator app of its own (Application.ReadWrite.All): its token requests are its own, so a
 * test using it never meets Entra's loop protection, which counts the identical token requests of one client.
 */
function ownRotatorKey(): { appId: string; secret: string } {
  const app = azure.createApp({ tenantId: tenant.tenantId, displayName: 'own rotator', permission: 'Application.ReadWrite.All' });
  return { appId: app.appId, secret: azure.addSecret(app.objectId).secretText };
}

function ownRotator(): Client {
  const { appId, secret } = ownRotatorKey();
  return graph(credential(tenant.tenantId, appId, secret));
}

/** 'ok', or the AADSTS code a fresh credential (no token cache) fails with. */
async function tokenOutcome(tenantId: string, clientId: string, secret: string): Promise<string> {
  try {
    await credential(tenantId, clientId, secret).getToken(SCOPE);
    return 'ok';
  } catch (err) {
    const m = /AADSTS(\d+)/.exec((err as Error).message);
    return m ? `AADSTS${m[1]}` : `${(err as Error).name}: ${(err as Error).message}`;
  }
}

async function rejection<T extends Error>(promise: Promise<unknown>, type: new (...args: never[]) => T): Promise<T> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof type, `expected ${type.name}, got ${inspect(err)}`);
    return err;
  }
  assert.fail(`expected ${type.name}, but the call succeeded`);
}

const graphRejection = (promise: Promise<unknown>) => rejection(promise, GraphError);

function newTarget(extra: Partial<Parameters<AzureService['createApp']>[0]> = {}): AppIds {
  return azure.createApp({ tenantId: tenant.tenantId, displayName: 'target', ...extra });
}

function count(operation: string): number {
  return log.entries({ service: 'azure', operation }).length;
}

interface PasswordCredentialJson {
  customKeyIdentifier: null;
  displayName: string | null;
  endDateTime: string;
  hint: string;
  keyId: string;
  secretText: string | null;
  startDateTime: string;
}

describe('Entra token endpoint', () => {
  test('serves an OpenID configuration whose issuer is on the very host:port the client used', async () => {
    const res = await fetch(`${running.url}/${tenant.tenantId}/v2.0/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as Record<string, string>;
    assert.equal(doc.issuer, `${running.url}/${tenant.tenantId}/v2.0`);
    assert.equal(doc.token_endpoint, `${running.url}/${tenant.tenantId}/oauth2/v2.0/token`);
    assert.equal(doc.authorization_endpoint, `${running.url}/${tenant.tenantId}/oauth2/v2.0/authorize`);
    assert.equal(doc.jwks_uri, `${running.url}/${tenant.tenantId}/discovery/v2.0/keys`);
  });

  test('a seeded secret gets a Graph token bound to its tenant and app', async () => {
    const token = await credential(tenant.tenantId, admin.appId, adminSecret).getToken(SCOPE);
    assert.ok(token, 'getToken returned null');
    // identity turns expires_in (3599) into an absolute time; off by more than a minute means it was misread.
    assert.ok(Math.abs(token.expiresOnTimestamp - (Date.now() + 3599_000)) < 60_000, `expiresOn ${token.expiresOnTimestamp}`);
    const claims = JSON.parse(Buffer.from(token.token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    assert.equal(claims.tid, tenant.tenantId);
    assert.equal(claims.appid, admin.appId);
    assert.deepEqual(claims.roles, ['Application.ReadWrite.All']);
    assert.equal(claims.aud, 'https://graph.microsoft.com');
  });

  test('a wrong secret fails with AADSTS7000215 as AuthenticationRequiredError, and the message does not carry the secret', async () => {
    const wrong = 'abc8Q~thisIsNotTheSecretValueAtAll.....';
    const err = await rejection(credential(tenant.tenantId, admin.appId, wrong).getToken(SCOPE), AuthenticationRequiredError);
    assert.match(err.message, /^invalid_client: Error\(s\): 7000215 - /);
    assert.match(err.message, new RegExp(`AADSTS7000215: Invalid client secret provided\\. .*for a secret added to app '${admin.appId}'\\.`));
    assert.ok(!inspect(err, { depth: 10 }).includes(wrong), 'the presented secret leaked into the error');
    assert.ok(!inspect(err, { depth: 10 }).includes(adminSecret), 'the real secret leaked into the error');
  });

  test('the raw 401 body is Entra’s: invalid_client, AADSTS7000215 with trace lines, the client-request-id echoed', async () => {
    const clientRequestId = '11111111-2222-3333-4444-555555555555';
    const res = await fetch(`${running.url}/${tenant.tenantId}/oauth2/v2.0/token?client-request-id=${clientRequestId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: admin.appId, client_secret: 'nope', scope: SCOPE }),
    });
    assert.equal(res.status, 401);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.error, 'invalid_client');
    assert.deepEqual(body.error_codes, [7000215]);
    assert.equal(body.correlation_id, clientRequestId);
    assert.match(String(body.trace_id), GUID);
    assert.match(String(body.timestamp), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z$/);
    assert.equal(body.error_uri, `${running.url}/error?code=7000215`);
    assert.equal(
      body.error_description,
      `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${admin.appId}'.` +
        `\r\nTrace ID: ${String(body.trace_id)}\r\nCorrelation ID: ${clientRequestId}\r\nTimestamp: ${String(body.timestamp)}`,
    );
  });

  test('an expired secret fails with AADSTS7000222 and a not-yet-started one with AADSTS7000215', async () => {
    const app = newTarget();
    const expired = azure.addSecret(app.objectId, { startDateTime: new Date(Date.now() - 10 * DAY), endDateTime: new Date(Date.now() - DAY) });
    const future = azure.addSecret(app.objectId, { startDateTime: new Date(Date.now() + DAY) });
    const current = azure.addSecret(app.objectId);
    assert.equal(await tokenOutcome(tenant.tenantId, app.appId, expired.secretText), 'AADSTS7000222');
    assert.equal(await tokenOutcome(tenant.tenantId, app.appId, future.secretText), 'AADSTS7000215');
    assert.equal(await tokenOutcome(tenant.tenantId, app.appId, current.secretText), 'ok');
    assert.deepEqual(
      azure.getApp(app.objectId)!.secrets.map((s) => s.acceptedNow),
      [false, false, true],
    );
  });

  test('an unknown client id, or an app from another tenant, fails with AADSTS700016', async () => {
    const other = azure.createTenant();
    const foreign = azure.createApp({ tenantId: other.tenantId, displayName: 'elsewhere' });
    const foreignSecret = azure.addSecret(foreign.objectId).secretText;
    assert.equal(await tokenOutcome(tenant.tenantId, '00000000-0000-0000-0000-00000000dead', adminSecret), 'AADSTS700016');
    assert.equal(await tokenOutcome(tenant.tenantId, foreign.appId, foreignSecret), 'AADSTS700016');
    assert.equal(await tokenOutcome(other.tenantId, foreign.appId, foreignSecret), 'ok');
    const res = await fetch(`${running.url}/${tenant.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: foreign.appId, client_secret: foreignSecret, scope: SCOPE }),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.error, 'unauthorized_client');
    assert.match(String(body.error_description), new RegExp(`^AADSTS700016: Application with identifier '${foreign.appId}' was not found in the directory '${tenant.tenantId}'\\.`));
  });

  test('an unknown tenant fails discovery (AADSTS90002), which identity reports as CredentialUnavailableError', async () => {
    const unknown = '0badc0de-0000-4000-8000-000000000000';
    const res = await fetch(`${running.url}/${unknown}/v2.0/.well-known/openid-configuration`);
    assert.equal(res.status, 400);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.error, 'invalid_tenant');
    assert.deepEqual(body.error_codes, [90002]);
    const err = await rejection(credential(unknown, admin.appId, adminSecret).getToken(SCOPE), CredentialUnavailableError);
    assert.match(err.message, /endpoints_resolution_error/);
  });

  test('a scope without /.default is refused with AADSTS1002012', async () => {
    const res = await fetch(`${running.url}/${tenant.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: admin.appId, client_secret: adminSecret, scope: 'User.Read' }),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.error, 'invalid_scope');
    assert.deepEqual(body.error_codes, [1002012]);
  });
});

describe('Graph applications', () => {
  test('GET by object id returns the application with passwordCredentials but never their secretText', async () => {
    const app = newTarget({ displayName: 'payments-api' });
    const seeded = azure.addSecret(app.objectId, { displayName: 'first' });
    const got = (await adminGraph().api(`/applications/${app.objectId}`).get()) as Record<string, unknown>;
    assert.equal(got['@odata.context'], `${running.url}/v1.0/$metadata#applications/$entity`);
    assert.equal(got.id, app.objectId);
    assert.equal(got.appId, app.appId);
    assert.equal(got.displayName, 'payments-api');
    assert.deepEqual(got.passwordCredentials, [
      {
        customKeyIdentifier: null,
        displayName: 'first',
        endDateTime: seeded.endDateTime,
        hint: seeded.secretText.slice(0, 3),
        keyId: seeded.keyId,
        secretText: null,
        startDateTime: seeded.startDateTime,
      },
    ]);
  });

  test("GET by appId honours $select (applications(appId='...')?$select=id,appId,passwordCredentials)", async () => {
    const app = newTarget();
    azure.addSecret(app.objectId);
    const got = (await adminGraph().api(`/applications(appId='${app.appId}')`).select(['id', 'appId', 'passwordCredentials']).get()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(got).sort(), ['@odata.context', 'appId', 'id', 'passwordCredentials']);
    assert.equal(got['@odata.context'], `${running.url}/v1.0/$metadata#applications(id,appId,passwordCredentials)/$entity`);
    assert.equal(got.id, app.objectId);
    assert.equal((got.passwordCredentials as unknown[]).length, 1);
  });

  test('addPassword returns a 40-character Entra-shaped secret once; it authenticates only after the propagation delay', async () => {
    const app = newTarget();
    const old = azure.addSecret(app.objectId).secretText;
    azure.setPropagationDelay(tenant.tenantId, 1000);
    try {
      const added = (await adminGraph()
        .api(`/applications/${app.objectId}/addPassword`)
        .post({ passwordCredential: { displayName: 'rotated' } })) as PasswordCredentialJson;
      const secret = added.secretText;
      assert.ok(secret);
      assert.match(secret, /^[A-Za-z0-9~._-]{3}\dQ~[A-Za-z0-9~._-]{34}$/);
      assert.equal(added.hint, secret.slice(0, 3));
      assert.equal(added.displayName, 'rotated');
      assert.match(added.keyId, GUID);
      // Default lifetime: two calendar years from the start.
      const start = new Date(added.startDateTime);
      assert.equal(Date.parse(added.endDateTime), start.setUTCFullYear(start.getUTCFullYear() + 2));
      assert.match(added.endDateTime, /\.\d{7}Z$/);

      // Visible on the application at once, refused by the token endpoint until the delay has passed.
      const stored = azure.getApp(app.appId)!.secrets.find((s) => s.keyId === added.keyId);
      assert.equal(stored?.secretText, secret);
      assert.equal(azure.checkSecret(tenant.tenantId, app.appId, secret), false);
      assert.equal(await tokenOutcome(tenant.tenantId, app.appId, secret), 'AADSTS7000215');
      assert.equal(await tokenOutcome(tenant.tenantId, app.appId, old), 'ok');
      await sleep(1100);
      assert.equal(azure.checkSecret(tenant.tenantId, app.appId, secret), true);
      assert.equal(await tokenOutcome(tenant.tenantId, app.appId, secret), 'ok');
    } finally {
      azure.setPropagationDelay(tenant.tenantId, 0);
    }
  });

  test('the propagation delay can change at run time and applies to secrets already added', async () => {
    const app = newTarget();
    azure.setPropagationDelay(tenant.tenantId, 60_000);
    try {
      const added = (await adminGraph().api(`/applications/${app.objectId}/addPassword`).post({})) as PasswordCredentialJson;
      assert.equal(await tokenOutcome(tenant.tenantId, app.appId, added.secretText!), 'AADSTS7000215');
      azure.setPropagationDelay(tenant.tenantId, 0);
      assert.equal(await tokenOutcome(tenant.tenantId, app.appId, added.secretText!), 'ok');
    } finally {
      azure.setPropagationDelay(tenant.tenantId, 0);
    }
  });

  test('removePassword answers 204 (the client resolves undefined) and the removed secret stops authenticating', async () => {
    const app = newTarget();
    const keep = azure.addSecret(app.objectId);
    const drop = azure.addSecret(app.objectId);
    assert.equal(await tokenOutcome(tenant.tenantId, app.appId, drop.secretText), 'ok');
    const result: unknown = await adminGraph().api(`/applications(appId='${app.appId}')/removePassword`).post({ keyId: drop.keyId });
    assert.equal(result, undefined);
    assert.equal(log.entries({ operation: 'removePassword' }).at(-1)?.status, 204);
    assert.equal(await tokenOutcome(tenant.tenantId, app.appId, drop.secretText), 'AADSTS7000215');
    assert.equal(await tokenOutcome(tenant.tenantId, app.appId, keep.secretText), 'ok');
    assert.deepEqual(azure.getApp(app.objectId)!.secrets.map((s) => s.keyId), [keep.keyId]);

    // Removing it again: a 400, deliberately not a 404 (the live answer is undocumented).
    const err = await graphRejection(adminGraph().api(`/applications/${app.objectId}/removePassword`).post({ keyId: drop.keyId }));
    assert.equal(err.statusCode, 400);
    assert.equal(err.code, 'Request_BadRequest');
  });

  test('apps open to personal accounts hold at most 2 passwords: the third addPassword is TooManyAppPasswords', async () => {
    const app = newTarget({ signInAudience: 'AzureADandPersonalMicrosoftAccount' });
    azure.addSecret(app.objectId);
    const client = adminGraph();
    await client.api(`/applications(appId='${app.appId}')/addPassword`).post({ passwordCredential: { displayName: 'second' } });
    const err = await graphRejection(client.api(`/applications/${app.objectId}/addPassword`).post({ passwordCredential: { displayName: 'third' } }));
    assert.equal(err.statusCode, 400);
    assert.equal(err.code, 'TooManyAppPasswords');
    assert.equal(err.message, 'Not allowed to add 3 passwords. You can only add a maximum of 2 passwords.');
    assert.deepEqual((JSON.parse(String(err.body)) as { details: unknown }).details, [{ target: 'passwordCredentials', code: 'TooManyAppPasswords' }]);
    assert.equal(azure.getApp(app.objectId)!.secrets.length, 2);

    // The limit is about the audience: an organisation-only app takes a third.
    const org = newTarget();
    azure.addSecret(org.objectId);
    azure.addSecret(org.objectId);
    await client.api(`/applications/${org.objectId}/addPassword`).post({});
    assert.equal(azure.getApp(org.objectId)!.secrets.length, 3);
  });

  test('a tenant lifetime policy refuses longer passwords with CredentialInvalidLifetimeAsPerAppPolicy', async () => {
    const strict = azure.createTenant({ maxLifetimeDays: 30 });
    const owner = azure.createApp({ tenantId: strict.tenantId, displayName: 'rotator', permission: 'Application.ReadWrite.All' });
    const ownerSecret = azure.addSecret(owner.objectId).secretText;
    const app = azure.createApp({ tenantId: strict.tenantId, displayName: 'target' });
    const client = graph(credential(strict.tenantId, owner.appId, ownerSecret));
    const start = new Date();

    const tooLong = await graphRejection(
      client.api(`/applications/${app.objectId}/addPassword`).post({ passwordCredential: { displayName: 'x', endDateTime: new Date(start.getTime() + 60 * DAY).toISOString() } }),
    );
    assert.equal(tooLong.statusCode, 400);
    assert.equal(tooLong.code, 'CredentialInvalidLifetimeAsPerAppPolicy');
    assert.equal(tooLong.message, `Credential lifetime exceeds the max value allowed as per assigned policy '${strict.lifetimePolicyId}'.`);
    assert.deepEqual((JSON.parse(String(tooLong.body)) as { details: unknown }).details, [{ code: 'InvalidKeyEndDate', message: tooLong.message, target: 'EndDate' }]);
    // Leaving endDateTime out means two years, which the policy refuses as well.
    const byDefault = await graphRejection(client.api(`/applications/${app.objectId}/addPassword`).post({}));
    assert.equal(byDefault.code, 'CredentialInvalidLifetimeAsPerAppPolicy');

    const ok = (await client
      .api(`/applications/${app.objectId}/addPassword`)
      .post({ passwordCredential: { displayName: 'short', endDateTime: new Date(start.getTime() + 20 * DAY).toISOString() } })) as PasswordCredentialJson;
    assert.equal(azure.getApp(app.objectId)!.secrets.length, 1);
    assert.equal(azure.getApp(app.objectId)!.secrets[0]!.keyId, ok.keyId);

    // The policy can be lifted at run time.
    azure.updateTenant(strict.tenantId, { maxLifetimeDays: null });
    await client.api(`/applications/${app.objectId}/addPassword`).post({});
    assert.equal(azure.getApp(app.objectId)!.secrets.length, 2);
  });

  test('without customHosts the Graph client sends no token at all: 401 InvalidAuthenticationToken, and no token request', async () => {
    const app = newTarget();
    const tokensBefore = count('token');
    const err = await graphRejection(graph(credential(tenant.tenantId, admin.appId, adminSecret), { customHosts: false }).api(`/applications/${app.objectId}`).get());
    assert.equal(err.statusCode, 401);
    assert.equal(err.code, 'InvalidAuthenticationToken');
    assert.equal(err.message, 'Access token is empty.');
    assert.equal(count('token'), tokensBefore);
  });

  test('an expired access token is refused with 401, and the cached credential keeps sending it', async () => {
    const app = newTarget();
    const client = adminGraph();
    await client.api(`/applications/${app.objectId}`).get();
    const tokensBefore = count('token');
    skewMs = 3600_000;
    const err = await graphRejection(client.api(`/applications/${app.objectId}`).get());
    assert.equal(err.statusCode, 401);
    assert.equal(err.code, 'InvalidAuthenticationToken');
    assert.equal(err.message, 'Lifetime validation failed, the token is expired.');
    // identity judges expiry by its own clock, so it did not fetch a new token: the server's clock decided.
    assert.equal(count('token'), tokensBefore);
  });

  test('a token from another sandbox signer is refused (tokens are verified, not just present)', async () => {
    const app = newTarget();
    const other = new AzureService();
    const t = other.createTenant({ tenantId: tenant.tenantId });
    const a = other.createApp({ tenantId: t.tenantId, appId: admin.appId, displayName: 'impostor', permission: 'Application.ReadWrite.All' });
    const s = other.addSecret(a.objectId).secretText;
    const otherRunning = await serve({ service: other, faults: new FaultPlan(), log: new RequestLog(), tls: sandboxTlsMaterial() });
    try {
      const forged = await new ClientSecretCredential(t.tenantId, a.appId, s, { authorityHost: otherRunning.url, disableInstanceDiscovery: true }).getToken(SCOPE);
      const res = await fetch(`${running.url}/v1.0/applications/${app.objectId}`, { headers: { authorization: `Bearer ${forged!.token}` } });
      assert.equal(res.status, 401);
      const body = (await res.json()) as { error: { code: string; innerError: Record<string, string> } };
      assert.equal(body.error.code, 'InvalidAuthenticationToken');
      assert.match(body.error.innerError['request-id']!, GUID);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer /);
    } finally {
      await otherRunning.close();
    }
  });

  test('Application.ReadWrite.OwnedBy reads any app in its tenant but changes only the ones it owns (403 otherwise)', async () => {
    const limited = newTarget({ displayName: 'limited-rotator', permission: 'Application.ReadWrite.OwnedBy' });
    const limitedSecret = azure.addSecret(limited.objectId).secretText;
    const owned = newTarget({ owners: [limited.appId] });
    const notOwned = newTarget();
    const client = graph(credential(tenant.tenantId, limited.appId, limitedSecret));

    await client.api(`/applications/${owned.objectId}/addPassword`).post({});
    assert.equal(azure.getApp(owned.objectId)!.secrets.length, 1);

    const read = (await client.api(`/applications/${notOwned.objectId}`).select('id').get()) as { id: string };
    assert.equal(read.id, notOwned.objectId);

    const err = await graphRejection(client.api(`/applications/${notOwned.objectId}/addPassword`).post({}));
    assert.equal(err.statusCode, 403);
    assert.equal(err.code, 'Authorization_RequestDenied');
    assert.equal(err.message, 'Insufficient privileges to complete the operation.');
    assert.equal(azure.getApp(notOwned.objectId)!.secrets.length, 0);
  });

  test("GET /applications/{id}/owners lists service principals: whole for Application.ReadWrite.All, type and id only for OwnedBy; the id is the token's oid", async () => {
    const limited = newTarget({ displayName: 'owner-rotator', permission: 'Application.ReadWrite.OwnedBy' });
    const limitedSecret = azure.addSecret(limited.objectId).secretText;
    const app = newTarget({ owners: [limited.appId, admin.appId] });
    const before = count('listOwners');
    type Owners = { '@odata.context': string; value: Array<Record<string, unknown>> };
    const full = (await adminGraph().api(`/applications/${app.objectId}/owners`).get()) as Owners;
    assert.match(full['@odata.context'], /\/v1\.0\/\$metadata#directoryObjects$/);
    assert.deepEqual(full.value, [
      { '@odata.type': '#microsoft.graph.servicePrincipal', id: limited.objectId, appId: limited.appId, displayName: 'owner-rotator' },
      { '@odata.type': '#microsoft.graph.servicePrincipal', id: admin.objectId, appId: admin.appId, displayName: 'rotator' },
    ]);
    const cred = credential(tenant.tenantId, limited.appId, limitedSecret);
    const brief = (await graph(cred).api(`/applications(appId='${app.appId}')/owners`).get()) as Owners;
    assert.deepEqual(brief.value.map((o) => [o.id, o.appId, o.displayName]), [[limited.objectId, null, null], [admin.objectId, null, null]]);
    const token = (await cred.getToken(SCOPE))!.token;
    const oid = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { oid: string }).oid;
    assert.equal(oid, limited.objectId, "the caller finds itself among the owners by its token's oid");
    assert.equal(count('listOwners'), before + 2);
    const err = await graphRejection(adminGraph().api(`/applications/${app.objectId}/owners`).post({}));
    assert.equal(err.statusCode, 405);
  });

  test('an app without an Application permission is refused even reads (403)', async () => {
    const plain = newTarget();
    const secret = azure.addSecret(plain.objectId).secretText;
    const err = await graphRejection(graph(credential(tenant.tenantId, plain.appId, secret)).api(`/applications/${plain.objectId}`).get());
    assert.equal(err.statusCode, 403);
    assert.equal(err.code, 'Authorization_RequestDenied');
  });

  test('unknown ids are 404 Request_ResourceNotFound, other tenants’ apps too; malformed ids are 400', async () => {
    const missing = '6b0d1c5e-0000-4000-8000-0000000000aa';
    const client = adminGraph();
    const err = await graphRejection(client.api(`/applications/${missing}`).get());
    assert.equal(err.statusCode, 404);
    assert.equal(err.code, 'Request_ResourceNotFound');
    assert.equal(err.message, `Resource '${missing}' does not exist or one of its queried reference-property objects are not present.`);
    assert.match(String(err.requestId), GUID);

    const byAppId = await graphRejection(client.api(`/applications(appId='${missing}')/addPassword`).post({}));
    assert.equal(byAppId.statusCode, 404);

    const other = azure.createTenant();
    const foreign = azure.createApp({ tenantId: other.tenantId, displayName: 'elsewhere' });
    const cross = await graphRejection(client.api(`/applications/${foreign.objectId}/addPassword`).post({}));
    assert.equal(cross.statusCode, 404);
    assert.equal(azure.getApp(foreign.objectId)!.secrets.length, 0);

    const malformed = await graphRejection(client.api('/applications/not-a-guid').get());
    assert.equal(malformed.statusCode, 400);
    assert.equal(malformed.code, 'Request_BadRequest');
    assert.equal(malformed.message, "Invalid object identifier 'not-a-guid'.");
  });

  test('a Graph call whose credential cannot get a token surfaces the identity error as a GraphError with statusCode -1', async () => {
    const err = await graphRejection(graph(credential(tenant.tenantId, admin.appId, 'wrong')).api(`/applications/${admin.objectId}`).get());
    assert.equal(err.statusCode, -1);
    assert.equal(err.code, 'AuthenticationRequiredError');
    assert.match(err.message, /AADSTS7000215/);
  });
});

describe('faults against the real clients', () => {
  test('throttle: the Graph RetryHandler honours Retry-After and retries addPassword until it succeeds', async () => {
    const app = newTarget();
    faults.arm({ service: 'azure', operation: 'addPassword', kind: 'throttle', retryAfterSeconds: 1, times: 2 });
    const client = adminGraph();
    await client.api(`/applications/${app.objectId}`).get(); // token first, so the timing below is the retries'
    const before = count('addPassword');
    const started = Date.now();
    const added = (await client.api(`/applications/${app.objectId}/addPassword`).post({})) as PasswordCredentialJson;
    const elapsed = Date.now() - started;
    const calls = log.entries({ operation: 'addPassword' }).slice(before);
    assert.deepEqual(
      calls.map((c) => [c.status, c.fault ?? null]),
      [
        [429, 'throttle'],
        [429, 'throttle'],
        [200, null],
      ],
    );
    assert.ok(elapsed >= 1900, `two Retry-After: 1 waits took only ${elapsed} ms`);
    assert.deepEqual(azure.getApp(app.objectId)!.secrets.map((s) => s.keyId), [added.keyId]);
  });

  test('throttle past maxRetries: the client gives up with GraphError 429 TooManyRequests', async () => {
    const app = newTarget();
    faults.arm({ service: 'azure', operation: 'addPassword', kind: 'throttle', retryAfterSeconds: 1, times: 5 });
    const before = count('addPassword');
    const err = await graphRejection(
      adminGraph()
        .api(`/applications/${app.objectId}/addPassword`)
        .middlewareOptions([new RetryHandlerOptions(0, 1)])
        .post({}),
    );
    assert.equal(err.statusCode, 429);
    assert.equal(err.code, 'TooManyRequests');
    assert.equal(count('addPassword') - before, 2, 'one try plus one retry');
    assert.equal(azure.getApp(app.objectId)!.secrets.length, 0);
  });

  test('throttle on the token endpoint: identity’s pipeline waits Retry-After and retries on its own', async () => {
    faults.arm({ service: 'azure', operation: 'token', kind: 'throttle', retryAfterSeconds: 1 });
    const before = count('token');
    const started = Date.now();
    const token = await credential(tenant.tenantId, admin.appId, adminSecret).getToken(SCOPE);
    assert.ok(token?.token);
    assert.ok(Date.now() - started >= 900);
    assert.deepEqual(
      log.entries({ operation: 'token' }).slice(before).map((c) => c.status),
      [429, 200],
    );
  });

  test('status 503 after applying addPassword: the RetryHandler re-sends the POST and the app ends up with two new passwords', async () => {
    const app = newTarget();
    faults.arm({
      service: 'azure',
      operation: 'addPassword',
      kind: 'status',
      status: 503,
      after: true,
      body: JSON.stringify({ error: { code: 'ServiceUnavailable', message: 'Service unavailable.', innerError: {} } }),
    });
    const added = (await adminGraph()
      .api(`/applications/${app.objectId}/addPassword`)
      .middlewareOptions([new RetryHandlerOptions(0, 1)])
      .post({ passwordCredential: { displayName: 'once' } })) as PasswordCredentialJson;
    const secrets = azure.getApp(app.objectId)!.secrets;
    assert.equal(secrets.length, 2, 'the first, unacknowledged password is still there');
    assert.equal(secrets[1]!.keyId, added.keyId);
    assert.notEqual(secrets[0]!.keyId, added.keyId);
  });

  test('status 500 after applying removePassword: the client sees the error although the password is gone', async () => {
    const app = newTarget();
    const secret = azure.addSecret(app.objectId);
    faults.arm({
      service: 'azure',
      operation: 'removePassword',
      kind: 'status',
      status: 500,
      after: true,
      body: JSON.stringify({ error: { code: 'generalException', message: 'An internal server error occurred.', innerError: {} } }),
    });
    const err = await graphRejection(adminGraph().api(`/applications/${app.objectId}/removePassword`).post({ keyId: secret.keyId }));
    assert.equal(err.statusCode, 500);
    assert.equal(err.code, 'generalException');
    assert.equal(azure.getApp(app.objectId)!.secrets.length, 0);
  });

  test('delay past the caller’s timeout: the client aborts, the server still adds the password', async () => {
    const app = newTarget();
    const client = adminGraph();
    await client.api(`/applications/${app.objectId}`).get(); // token first, so the timeout only covers addPassword
    faults.arm({ service: 'azure', operation: 'addPassword', kind: 'delay', delayMs: 800 });
    const before = count('addPassword');
    const err = await graphRejection(client.api(`/applications/${app.objectId}/addPassword`).option('signal', AbortSignal.timeout(200)).post({}));
    assert.equal(err.code, 'TimeoutError');
    assert.equal(err.statusCode, -1);
    assert.equal(azure.getApp(app.objectId)!.secrets.length, 0, 'not yet: the request is still held');
    for (let i = 0; i < 50 && count('addPassword') === before; i++) await sleep(50);
    assert.equal(azure.getApp(app.objectId)!.secrets.length, 1);
  });

  test('delay within the caller’s patience just slows the call down', async () => {
    const app = newTarget();
    const client = adminGraph();
    await client.api(`/applications/${app.objectId}`).get();
    faults.arm({ service: 'azure', operation: 'getApplication', kind: 'delay', delayMs: 300 });
    const started = Date.now();
    const got = (await client.api(`/applications/${app.objectId}`).get()) as { id: string };
    assert.equal(got.id, app.objectId);
    assert.ok(Date.now() - started >= 290);
  });

  test('drop on getApplication: the Graph client does not retry; it throws a GraphError with statusCode -1', async () => {
    const app = newTarget();
    const client = adminGraph();
    await client.api(`/applications/${app.objectId}`).get();
    faults.arm({ service: 'azure', operation: 'getApplication', kind: 'drop' });
    const before = count('getApplication');
    const err = await graphRejection(client.api(`/applications/${app.objectId}`).get());
    assert.equal(err.statusCode, -1);
    assert.equal(err.code, 'TypeError');
    assert.equal(err.message, 'fetch failed');
    assert.equal(count('getApplication') - before, 1);
  });

  test('drop on the token endpoint: identity’s pipeline retries the connection error and succeeds', async () => {
    const own = ownRotatorKey();
    faults.arm({ service: 'azure', operation: 'token', kind: 'drop' });
    const before = count('token');
    const token = await credential(tenant.tenantId, own.appId, own.secret).getToken(SCOPE);
    assert.ok(token?.token);
    assert.deepEqual(
      log.entries({ operation: 'token' }).slice(before).map((c) => [c.status, c.fault ?? null]),
      [
        [0, 'drop'],
        [200, null],
      ],
    );
  });

  test('corrupt 200 on getApplication: the Graph client fails to parse it (GraphError SyntaxError, statusCode 200)', async () => {
    const app = newTarget();
    const client = ownRotator();
    faults.arm({ service: 'azure', operation: 'getApplication', kind: 'corrupt' });
    const err = await graphRejection(client.api(`/applications/${app.objectId}`).get());
    assert.equal(err.code, 'SyntaxError');
    assert.equal(err.statusCode, 200);
  });

  test('corrupt 200 on the token endpoint: identity gives up at once with AuthenticationRequiredError network_error', async () => {
    faults.arm({ service: 'azure', operation: 'token', kind: 'corrupt' });
    const before = count('token');
    const err = await rejection(credential(tenant.tenantId, admin.appId, adminSecret).getToken(SCOPE), AuthenticationRequiredError);
    assert.match(err.message, /^network_error/);
    assert.equal(count('token') - before, 1);
  });
});

describe('propagation delays drawn per secret from a seeded distribution', () => {
  /** Every secret's drawn delay (usableAt less addedAt), for `apps` apps with two secrets each, added through the rules. */
  function delays(seed: number, options: { apps?: number; spread?: number; median?: number; interleave?: boolean } = {}): number[] {
    const t = 1_700_000_000_000;
    const dir = new Directory({ now: () => t, propagationDelayMs: options.median ?? 1000, delaySpread: options.spread ?? 0.5, seed });
    const { tenantId } = dir.createTenant();
    const out: number[] = [];
    for (let i = 0; i < (options.apps ?? 100); i++) {
      // Fixed object ids: the draws are labelled by app and secret number, which is what makes them reproducible.
      const app = dir.createApp({ tenantId, displayName: `a${i}`, objectId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` });
      if (options.interleave) {
        const other = dir.createApp({ tenantId, displayName: `o${i}`, objectId: `00000000-0000-4000-9000-${String(i).padStart(12, '0')}` });
        dir.addPassword(other.objectId, {});
      }
      for (let k = 0; k < 2; k++) {
        const secret = dir.addPassword(app.objectId, {});
        out.push(Date.parse(secret.usableAt!) - Date.parse(secret.addedAt));
      }
    }
    return out;
  }

  test('each secret waits its own multiple of the tenant median: log-normal (sigma 0.5), from 0.37x to 2.72x', () => {
    const d = delays(11);
    assert.ok(new Set(d).size > 150, `too few distinct delays: ${new Set(d).size}`);
    for (const x of d) assert.ok(x >= Math.floor(1000 * Math.exp(-1)) && x <= Math.ceil(1000 * Math.exp(1)), String(x));
    const sorted = [...d].sort((x, y) => x - y);
    const median = (sorted[99]! + sorted[100]!) / 2;
    assert.ok(median > 850 && median < 1180, `median ${median}`);
    assert.ok(d.some((x) => x > 2000) && d.some((x) => x < 500));
  });

  test('the same seed draws the same delays, whatever else was added in between; another seed draws others; a median of 0 stays 0', () => {
    assert.deepEqual(delays(11, { apps: 20 }), delays(11, { apps: 20 }));
    assert.deepEqual(delays(11, { apps: 20, interleave: true }), delays(11, { apps: 20 }));
    assert.notDeepEqual(delays(12, { apps: 20 }), delays(11, { apps: 20 }));
    assert.deepEqual(new Set(delays(11, { apps: 10, median: 0 })), new Set([0]));
    assert.deepEqual(new Set(delays(11, { apps: 10, spread: 0 })), new Set([1000]));
  });

  test('through Graph: the new secret is refused until its own usableAt, which the state API reports, then accepted', async () => {
    const app = newTarget();
    azure.setTiming({ delaySpread: 0.5, seed: 5 });
    azure.setPropagationDelay(tenant.tenantId, 10_000);
    try {
      const added = (await ownRotator().api(`/applications/${app.objectId}/addPassword`).post({})) as PasswordCredentialJson;
      const state = azure.getApp(app.objectId)!.secrets.find((s) => s.keyId === added.keyId)!;
      const usableAt = Date.parse(state.usableAt!);
      assert.notEqual(usableAt - Date.parse(state.addedAt), 10_000, 'drawn, not the median itself');
      skewMs = usableAt - Date.now() - 1_000;
      assert.equal(azure.checkSecret(tenant.tenantId, app.appId, added.secretText!), false);
      assert.equal(await tokenOutcome(tenant.tenantId, app.appId, added.secretText!), 'AADSTS7000215');
      skewMs = usableAt - Date.now() + 1;
      assert.equal(await tokenOutcome(tenant.tenantId, app.appId, added.secretText!), 'ok');
    } finally {
      azure.setPropagationDelay(tenant.tenantId, 0);
      azure.setTiming({ delaySpread: 0, seed: 1 });
    }
  });
});

describe('read-after-write lag of the application', () => {
  test('a secret just added is missing from a GET of its application until its listedAt; the rules and the token endpoint count it at once', async () => {
    const app = newTarget({ signInAudience: 'AzureADandPersonalMicrosoftAccount' });
    const seeded = azure.addSecret(app.objectId);
    azure.setTiming({ readLagMs: 10_000 });
    try {
      const client = ownRotator();
      const added = (await client.api(`/applications/${app.objectId}/addPassword`).post({})) as PasswordCredentialJson;
      const read = async () =>
        ((await client.api(`/applications/${app.objectId}`).select('passwordCredentials').get()) as { passwordCredentials: PasswordCredentialJson[] }).passwordCredentials.map((p) => p.keyId);
      assert.deepEqual(await read(), [seeded.keyId]);
      const state = azure.getApp(app.objectId)!.secrets.find((s) => s.keyId === added.keyId)!;
      assert.equal(state.listed, false);
      assert.equal(await tokenOutcome(tenant.tenantId, app.appId, added.secretText!), 'ok');
      // Two passwords is the limit of a personal-account app: the unlisted one counts.
      assert.equal((await graphRejection(client.api(`/applications/${app.objectId}/addPassword`).post({}))).code, 'TooManyAppPasswords');
      skewMs = Date.parse(state.listedAt!) - Date.now() + 1;
      assert.deepEqual((await read()).sort(), [seeded.keyId, added.keyId].sort());
    } finally {
      azure.setTiming({ readLagMs: 0 });
    }
  });
});

describe('Graph request budgets per app and tenant', () => {
  // A service of its own whose budget clock stands still: nothing refills, so exactly `burst` calls pass.
  const limited = new AzureService({ budget: true, budgetNow: () => 0 });
  let server: RunningService;
  let ltenant: TenantState;
  let rotator: AppIds;
  let rotatorSecret: string;
  before(async () => {
    server = await serve({ service: limited, faults, log, tls: sandboxTlsMaterial() });
    ltenant = limited.createTenant();
    rotator = limited.createApp({ tenantId: ltenant.tenantId, displayName: 'rotator', permission: 'Application.ReadWrite.All' });
    rotatorSecret = limited.addSecret(rotator.objectId).secretText;
  });
  after(async () => {
    await server.close();
  });
  afterEach(() => limited.budget!.reset({ budgets: true }));

  function clientFor(appId: string, secret: string): Client {
    const cred = new ClientSecretCredential(ltenant.tenantId, appId, secret, { authorityHost: server.url, disableInstanceDiscovery: true });
    return Client.initWithMiddleware({ authProvider: new TokenCredentialAuthenticationProvider(cred, { scopes: [SCOPE] }), baseUrl: server.url, customHosts: new Set(['localhost']) });
  }
  const once = [new RetryHandlerOptions(0, 0)];

  test('the defaults are the documented ones: 3,500 resource units per 10 s, 3,000 writes per 150 s, 60 writes a minute to a personal-account app', () => {
    assert.deepEqual(limited.budget!.limits(), {
      resourceUnits: { burst: 3500, perSecond: 350 },
      writes: { burst: 3000, perSecond: 20 },
      personalAppWrites: { burst: 60, perSecond: 1 },
    });
    assert.deepEqual(limited.budget!.limits(), GRAPH_DEFAULT_BUDGETS);
    assert.equal(azure.budget, undefined, 'a service made without the option has none');
  });

  test('a tight loop of writes to a personal-account app: 60 go through, the 61st is 429 TooManyRequests with Retry-After and the write scope, not applied', async () => {
    const personal = limited.createApp({ tenantId: ltenant.tenantId, displayName: 'personal', signInAudience: 'PersonalMicrosoftAccount' });
    const client = clientFor(rotator.appId, rotatorSecret);
    const mark = log.entries().length;
    // Removing a keyId the app does not have is a 400, but a write all the same: it counts.
    for (let i = 0; i < 60; i++) {
      const err = await graphRejection(client.api(`/applications/${personal.objectId}/removePassword`).middlewareOptions(once).post({ keyId: '6b0d1c5e-0000-4000-8000-000000000001' }));
      assert.equal(err.statusCode, 400);
    }
    const err = await graphRejection(client.api(`/applications/${personal.objectId}/addPassword`).middlewareOptions(once).post({}));
    assert.equal(err.statusCode, 429);
    assert.equal(err.code, 'TooManyRequests');
    const headers = err.headers as Headers;
    assert.equal(headers.get('retry-after'), '1');
    assert.equal(headers.get('x-ms-throttle-scope'), `Tenant_Application/Write/${rotator.appId}/${ltenant.tenantId}`);
    assert.equal(headers.get('x-ms-throttle-information'), 'WriteLimitExceeded');
    assert.equal(limited.getApp(personal.objectId)!.secrets.length, 0, 'the throttled addPassword added nothing');
    const calls = log.entries().slice(mark).filter((e) => e.service === 'azure' && e.operation !== 'token' && e.operation !== 'openidConfiguration');
    assert.deepEqual(
      calls.map((e) => [e.operation, e.status, e.throttled ?? false]),
      [...Array.from({ length: 60 }, () => ['removePassword', 400, false]), ['addPassword', 429, true]],
    );
    // The personal-account quota is about that audience: an organisation app in the tenant still takes writes.
    const org = limited.createApp({ tenantId: ltenant.tenantId, displayName: 'org' });
    assert.ok(((await client.api(`/applications/${org.objectId}/addPassword`).middlewareOptions(once).post({})) as PasswordCredentialJson).secretText);
  });

  test('resource units: a GET costs 2, 1 with $select; past the quota a 429 with the read-write scope; another app has its own budget; tokens are never charged', async () => {
    limited.budget!.set('resourceUnits', { burst: 5, perSecond: 1 });
    const target = limited.createApp({ tenantId: ltenant.tenantId, displayName: 'target' });
    const client = clientFor(rotator.appId, rotatorSecret);
    await client.api(`/applications/${target.objectId}`).middlewareOptions(once).get();
    await client.api(`/applications/${target.objectId}`).middlewareOptions(once).get();
    await client.api(`/applications/${target.objectId}`).select('id').middlewareOptions(once).get();
    const err = await graphRejection(client.api(`/applications/${target.objectId}`).select('id').middlewareOptions(once).get());
    assert.equal(err.statusCode, 429);
    assert.equal((err.headers as Headers).get('x-ms-throttle-scope'), `Tenant_Application/ReadWrite/${rotator.appId}/${ltenant.tenantId}`);
    assert.equal((err.headers as Headers).get('x-ms-throttle-information'), 'ResourceUnitLimitExceeded');

    const other = limited.createApp({ tenantId: ltenant.tenantId, displayName: 'other reader', permission: 'Application.ReadWrite.All' });
    const otherSecret = limited.addSecret(other.objectId).secretText;
    const tokensBefore = log.entries({ service: 'azure', operation: 'token' }).length;
    assert.equal(((await clientFor(other.appId, otherSecret).api(`/applications/${target.objectId}`).select('id').middlewareOptions(once).get()) as { id: string }).id, target.objectId);
    const tokens = log.entries({ service: 'azure', operation: 'token' }).slice(tokensBefore);
    assert.deepEqual(tokens.map((e) => [e.status, e.throttled ?? false]), [[200, false]]);
  });
});

describe('control API', () => {
  let control: { url: string; close(): Promise<void> };
  before(async () => {
    const api = new ControlApi(faults, log);
    azure.registerControl(api);
    control = await api.listen();
  });
  after(async () => {
    await control.close();
  });

  const call = (method: string, path: string, body?: unknown) => controlCall(control.url, method, path, body);

  test('seeds a tenant, an app and a secret, tunes the tenant, reads the app back and checks secrets', async () => {
    const t = await call('POST', '/azure/tenants', { propagationDelayMs: 60_000, maxLifetimeDays: 90 });
    assert.equal(t.status, 200);
    const tenantId = String(t.body.tenantId);
    assert.match(tenantId, GUID);
    assert.equal(t.body.maxLifetimeDays, 90);

    const a = await call('POST', '/azure/apps', { tenantId, displayName: 'seeded', permission: 'Application.ReadWrite.All' });
    assert.equal(a.status, 200);
    const objectId = String(a.body.objectId);
    const appId = String(a.body.appId);

    const s = await call('POST', `/azure/apps/${objectId}/secrets`, { displayName: 'fresh', propagated: false });
    assert.equal(s.status, 200);
    const secret = String(s.body.secretText);
    assert.equal((await call('POST', '/azure/check', { tenantId, clientId: appId, clientSecret: secret })).body.valid, false);

    const updated = await call('PUT', `/azure/tenants/${tenantId}`, { propagationDelayMs: 0 });
    assert.equal(updated.body.propagationDelayMs, 0);
    assert.equal((await call('POST', '/azure/check', { tenantId, clientId: appId, clientSecret: secret })).body.valid, true);
    assert.equal((await call('POST', '/azure/check', { tenantId, clientId: appId, clientSecret: 'wrong' })).body.valid, false);

    const app = await call('GET', `/azure/apps/${appId}`);
    assert.equal(app.status, 200);
    assert.equal(app.body.objectId, objectId);
    assert.deepEqual(
      (app.body.secrets as Array<{ secretText: string; acceptedNow: boolean }>).map((x) => [x.secretText, x.acceptedNow]),
      [[secret, true]],
    );
  });

  test('tunes the directory timing (every tenant\'s median, read lag, spread, seed) and shows each secret\'s usableAt and listedAt', async () => {
    const t = azure.createTenant();
    try {
      const put = await call('PUT', '/azure/directory', { propagationDelayMs: 30_000, readLagMs: 4_000, delaySpread: 0.5, seed: 77 });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      assert.deepEqual(put.body, { propagationDelayMs: 30_000, readLagMs: 4_000, delaySpread: 0.5, seed: 77 });
      assert.deepEqual((await call('GET', '/azure/directory')).body, put.body);
      assert.equal(azure.getTenant(t.tenantId)!.propagationDelayMs, 30_000, 'existing tenants take the new median');
      assert.equal(azure.createTenant().propagationDelayMs, 30_000, 'and so do new ones');
      const app = azure.createApp({ tenantId: t.tenantId, displayName: 'timed' });
      const added = azure.directory.addPassword(app.objectId, {});
      const shown = ((await call('GET', `/azure/apps/${app.objectId}`)).body.secrets as Array<Record<string, unknown>>)[0]!;
      assert.equal(shown.keyId, added.keyId);
      assert.equal(shown.usableAt, added.usableAt);
      assert.equal(shown.listedAt, added.listedAt);
      assert.equal(shown.listed, false);
      assert.equal(shown.acceptedNow, false);
      const wait = Date.parse(added.usableAt!) - Date.parse(added.addedAt);
      assert.ok(wait >= 30_000 * Math.exp(-1) && wait <= 30_000 * Math.exp(1) + 1, String(wait));
      // A seeded secret never waited: it has no usableAt, and is listed from the start.
      const seeded = azure.addSecret(app.objectId);
      assert.deepEqual([seeded.usableAt, seeded.listedAt, seeded.listed], [null, null, true]);
      for (const bad of [{ delaySpread: -0.1 }, { readLagMs: -1 }, { seed: 'x' }, { propagationDelayMs: 'slow' }]) {
        assert.equal((await call('PUT', '/azure/directory', { readLagMs: 1, ...bad })).status, 400, JSON.stringify(bad));
      }
      assert.equal((await call('GET', '/azure/directory')).body.readLagMs, 4_000, 'a refused update changes nothing');
    } finally {
      azure.setTiming({ propagationDelayMs: 0, readLagMs: 0, delaySpread: 0, seed: 1 });
    }
  });

  test('reports bad input and unknown ids with 4xx', async () => {
    assert.equal((await call('GET', '/azure/apps/6b0d1c5e-0000-4000-8000-0000000000bb')).status, 404);
    assert.equal((await call('POST', '/azure/apps', { displayName: 'no tenant' })).status, 400);
    assert.equal((await call('POST', '/azure/apps', { tenantId: '6b0d1c5e-0000-4000-8000-0000000000cc', displayName: 'x' })).status, 404);
    assert.equal((await call('PUT', `/azure/tenants/${tenant.tenantId}`, { propagationDelayMs: -1 })).status, 400);
    assert.equal((await call('POST', '/azure/check', { tenantId: tenant.tenantId })).status, 400);
  });
});
