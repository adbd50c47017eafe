// Entra's protections the sandbox reproduces, against the real @azure/identity client: the client-loop refusal
// (AADSTS50196) and national clouds (a token only for the cloud's own Graph, and Graph accepting only that).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ClientSecretCredential } from '@azure/identity';
import { FaultPlan, RequestLog } from '../../src/sandbox/faults.js';
import { type RunningService, serve } from '../../src/sandbox/service.js';
import { sandboxTlsMaterial } from '../../src/sandbox/tls.js';
import { AzureService } from '../../src/sandbox/azure/index.js';

const tls = sandboxTlsMaterial();
const log = new RequestLog();
const services: Array<{ azure: AzureService; running: RunningService }> = [];

async function start(cloud?: 'public' | 'usgov') {
  const azure = new AzureService(cloud ? { cloud } : {});
  const running = await serve({ service: azure, faults: new FaultPlan(), log, tls });
  services.push({ azure, running });
  const tenant = azure.createTenant();
  const app = azure.createApp({ tenantId: tenant.tenantId, displayName: 'rotator', permission: 'Application.ReadWrite.All' });
  const secret = azure.addSecret(app.objectId, { displayName: 'seed' }).secretText;
  const credential = (s = secret) => new ClientSecretCredential(tenant.tenantId, app.appId, s, { authorityHost: running.url, disableInstanceDiscovery: true, retryOptions: { maxRetries: 0 } });
  return { azure, running, credential };
}

const failure = (p: Promise<unknown>) => p.then(() => assert.fail('expected the token request to fail'), (err: unknown) => String((err as Error).message));

let pub: Awaited<ReturnType<typeof start>>;
let gov: Awaited<ReturnType<typeof start>>;

before(async () => {
  pub = await start();
  gov = await start('usgov');
});

after(async () => {
  for (const s of services) await s.running.close();
});

test('the 21st identical token request within a minute is refused with AADSTS50196; other requests are not', async () => {
  pub.azure.setLoopLimit(20);
  // A fresh credential each time, as a verification builds one: no token cache between them.
  for (let i = 0; i < 20; i++) await pub.credential().getToken('https://graph.microsoft.com/.default');
  const refused = await failure(pub.credential().getToken('https://graph.microsoft.com/.default'));
  assert.match(refused, /AADSTS50196: The server terminated an operation because it encountered a client request loop/);
  // A wrong secret is another request: it gets its own answer, not the loop's.
  assert.match(await failure(pub.credential('not-the-secret').getToken('https://graph.microsoft.com/.default')), /AADSTS7000215/);
  pub.azure.setLoopLimit(20);
});

test('a sandbox serving as US Government issues tokens for graph.microsoft.us only', async () => {
  assert.equal(gov.azure.graphResource, 'https://graph.microsoft.us');
  assert.match(await failure(gov.credential().getToken('https://graph.microsoft.com/.default')), /AADSTS500011: The resource principal named https:\/\/graph\.microsoft\.com was not found/);
  const token = await gov.credential().getToken('https://graph.microsoft.us/.default');
  const claims = JSON.parse(Buffer.from(token.token.split('.')[1]!, 'base64url').toString('utf8')) as { aud: string };
  assert.equal(claims.aud, 'https://graph.microsoft.us');
  // And the global cloud's sandbox refuses the US Government Graph.
  assert.match(await failure(pub.credential().getToken('https://graph.microsoft.us/.default')), /AADSTS500011/);
});

test("a US Government Graph refuses the global cloud's token", async () => {
  const token = (await pub.credential().getToken('https://graph.microsoft.com/.default')).token;
  const res = await fetch(`${gov.running.url}/v1.0/applications/00000000-0000-0000-0000-000000000001`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 401);
  assert.match(await res.text(), /"code":"InvalidAuthenticationToken"/);
});
