// The whole sandbox as the tests, the demo and `npm run sandbox` start it: hard by default (spread-out
// propagation, read-after-write lag, request budgets), seeded and reproducible, and tunable through the control
// API. Real SDK clients over HTTPS against startSandbox(); no mocks.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CreateAccessKeyCommand, DeleteAccessKeyCommand, IAMClient, ListAccessKeysCommand } from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { ClientSecretCredential } from '@azure/identity';
import { Client } from '@microsoft/microsoft-graph-client';
import { TokenCredentialAuthenticationProvider } from '@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials/index.js';
import { DEMO } from '../../src/sandbox/demo-vault.js';
import { HARD_REALISM, READ_LAG_MS, type Sandbox, type SandboxOptions, startSandbox } from '../../src/sandbox/sandbox.js';
import { controlCall } from '../helpers/control-api.js';

const W = DEMO.aws;

const call = (sb: Sandbox, method: string, path: string, body?: unknown) => controlCall(sb.controlUrl, method, path, body);

async function withSandbox<T>(options: SandboxOptions, fn: (sb: Sandbox) => Promise<T>): Promise<T> {
  const sb = await startSandbox(options);
  try {
    return await fn(sb);
  } finally {
    await sb.close();
  }
}

/** The demo admin's key (it may list, create, update and delete keys), as the SDK takes it. */
function adminKey(sb: Sandbox): { accessKeyId: string; secretAccessKey: string } {
  const key = sb.aws.getKey(sb.demo!.aws.adminAccessKeyId)!;
  return { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
}

/** A new key's own drawn delays, from the state API: what the bench reads to measure a wait past usableAt. */
function drawnDelays(sb: Sandbox): { propagation: number; lag: number | null; secretPropagation: number; secretLag: number | null } {
  const key = sb.aws.createAccessKey(W.userName);
  const secret = sb.azure.directory.addPassword(DEMO.azure.targetObjectId, {});
  return {
    propagation: Date.parse(key.usableAt!) - Date.parse(key.madeAt),
    lag: key.listedAt === null ? null : Date.parse(key.listedAt) - Date.parse(key.madeAt),
    secretPropagation: Date.parse(secret.usableAt!) - Date.parse(secret.addedAt),
    secretLag: secret.listedAt === null ? null : Date.parse(secret.listedAt) - Date.parse(secret.addedAt),
  };
}

describe('hard by default', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await startSandbox();
  });
  after(async () => {
    await sb.close();
  });

  test('startSandbox() turns on spread-out propagation, the read lag and every budget; the racy quota stays off', async () => {
    const state = (await call(sb, 'GET', '/sandbox')).body;
    assert.deepEqual(HARD_REALISM, { propagationMs: 100, readLagMs: READ_LAG_MS, spread: 0.5, budgets: true, nonAtomicQuota: false });
    assert.equal(READ_LAG_MS, 50);
    assert.equal(state.seed, 1);
    assert.deepEqual(state.aws, { propagationDelayMs: 100, readLagMs: 50, delaySpread: 0.5, nonAtomicQuota: false, seed: 1 });
    assert.deepEqual(state.azure, { propagationDelayMs: 100, readLagMs: 50, delaySpread: 0.5, seed: 1 });
    assert.equal(sb.azure.getTenant(DEMO.azure.tenantId)!.propagationDelayMs, 100, 'the demo tenant has the default median');
    assert.deepEqual(state.budgets, {
      iam: { enabled: true, limits: { requests: { burst: 100, perSecond: 20 } } },
      sts: { enabled: true, limits: { requests: { burst: 600, perSecond: 600 } } },
      ecr: { enabled: true, limits: { requests: { burst: 200, perSecond: 20 } } },
      azure: {
        enabled: true,
        limits: { resourceUnits: { burst: 3500, perSecond: 350 }, writes: { burst: 3000, perSecond: 20 }, personalAppWrites: { burst: 60, perSecond: 1 } },
      },
      kubernetes: { enabled: true, limits: { requests: { burst: 50, perSecond: 20 } } },
    });
    const d = drawnDelays(sb);
    for (const [what, ms, median] of [['propagation', d.propagation, 100], ['secret propagation', d.secretPropagation, 100], ['list lag', d.lag ?? -1, 50], ['secret list lag', d.secretLag ?? -1, 50]] as const) {
      assert.ok(ms >= Math.floor(median * Math.exp(-1)) && ms <= Math.ceil(median * Math.exp(1)), `${what}: ${ms} ms`);
    }
  });

  test('with readLagMs: READ_LAG_MS each new key and secret is missing from reads for its own drawn moment', () =>
    withSandbox({ realism: { readLagMs: READ_LAG_MS } }, async (lagging) => {
      const d = drawnDelays(lagging);
      for (const [what, ms] of [['lag', d.lag], ['secret lag', d.secretLag]] as const) {
        assert.ok(ms !== null && ms >= Math.floor(READ_LAG_MS * Math.exp(-1)) && ms <= Math.ceil(READ_LAG_MS * Math.exp(1)), `${what}: ${ms} ms`);
      }
    }));

  test('a rotation by the SDK waits out the drawn propagation and is never throttled; the key works from its usableAt on', () =>
    withSandbox({}, async (sb) => {
      const region = 'us-east-1';
      const iam = new IAMClient({ endpoint: sb.urls.iam, region, credentials: adminKey(sb), maxAttempts: 1 });
      const mark = sb.log.entries().length;
      const before = (await iam.send(new ListAccessKeysCommand({ UserName: W.userName }))).AccessKeyMetadata!.map((k) => k.AccessKeyId!);
      assert.equal(before.length, 1);
      const made = (await iam.send(new CreateAccessKeyCommand({ UserName: W.userName }))).AccessKey!;
      const fresh = new STSClient({ endpoint: sb.urls.sts, region, credentials: { accessKeyId: made.AccessKeyId!, secretAccessKey: made.SecretAccessKey! }, maxAttempts: 1 });
      const outcomes: string[] = [];
      for (let i = 0; i < 400 && outcomes.at(-1) !== 'ok'; i++) {
        try {
          await fresh.send(new GetCallerIdentityCommand({}));
          outcomes.push('ok');
        } catch (err) {
          outcomes.push((err as Error).name);
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      assert.equal(outcomes.at(-1), 'ok', outcomes.join(','));
      assert.deepEqual(new Set(outcomes.slice(0, -1)), new Set(outcomes.length > 1 ? ['InvalidClientTokenId'] : []));
      const usableAt = Date.parse(sb.aws.getKey(made.AccessKeyId!)!.usableAt!);
      const accepted = sb.log.entries({ service: 'sts', operation: 'GetCallerIdentity' }).filter((e) => e.status === 200).at(-1)!;
      assert.ok(Date.parse(accepted.at) >= usableAt, `accepted at ${accepted.at}, usable at ${new Date(usableAt).toISOString()}`);
      await iam.send(new DeleteAccessKeyCommand({ UserName: W.userName, AccessKeyId: before[0]! }));
      const calls = sb.log.entries().slice(mark);
      assert.deepEqual(calls.filter((e) => e.throttled), []);
      iam.destroy();
      fresh.destroy();
    }));
});

describe('hard by default, Graph', () => {
  test('a rotation through Graph (read, add, remove) is never throttled by the default budgets; the new secret is missing from the read after it', () =>
    withSandbox({ realism: { readLagMs: 10_000 } }, async (sb) => {
      const a = DEMO.azure;
      const adminSecret = sb.azure.getApp(a.adminObjectId)!.secrets[0]!.secretText;
      const url = sb.urls.azure!;
      const cred = new ClientSecretCredential(a.tenantId, a.adminAppId, adminSecret, { authorityHost: url, disableInstanceDiscovery: true });
      const graph = Client.initWithMiddleware({
        authProvider: new TokenCredentialAuthenticationProvider(cred, { scopes: ['https://graph.microsoft.com/.default'] }),
        baseUrl: url,
        customHosts: new Set([new URL(url).hostname]),
      });
      const mark = sb.log.entries().length;
      const read = async () => ((await graph.api(`/applications/${a.targetObjectId}`).select('id,passwordCredentials').get()) as { passwordCredentials: Array<{ keyId: string }> }).passwordCredentials.map((p) => p.keyId);
      const before = await read();
      const added = (await graph.api(`/applications/${a.targetObjectId}/addPassword`).post({ passwordCredential: { displayName: 'realism' } })) as { keyId: string };
      assert.deepEqual(await read(), before, 'the new secret is not in the read that follows it (10 s lag)');
      await graph.api(`/applications/${a.targetObjectId}/removePassword`).post({ keyId: before[0]! });
      const graphCalls = sb.log.entries().slice(mark).filter((e) => e.service === 'azure' && e.operation !== 'token' && e.operation !== 'openidConfiguration');
      assert.deepEqual(graphCalls.map((e) => [e.operation, e.status, e.throttled ?? false]), [
        ['getApplication', 200, false],
        ['addPassword', 200, false],
        ['getApplication', 200, false],
        ['removePassword', 204, false],
      ]);
      assert.deepEqual(sb.azure.getApp(a.targetObjectId)!.secrets.map((s) => s.keyId), [added.keyId]);
    }));
});

describe('seeded and reproducible', () => {
  test('one seed gives the demo user\'s new key and the demo app\'s new secret the same delays in every sandbox; another seed others', async () => {
    const lag = { readLagMs: READ_LAG_MS };
    const a = await withSandbox({ seed: 5, realism: lag }, async (sb) => drawnDelays(sb));
    const b = await withSandbox({ seed: 5, realism: lag }, async (sb) => drawnDelays(sb));
    const c = await withSandbox({ seed: 6, realism: lag }, async (sb) => drawnDelays(sb));
    assert.notEqual(a.lag, null);
    assert.deepEqual(a, b);
    assert.notDeepEqual(c, a);
    // Reseeding through the control API before anything is made gives that seed's draws.
    const d = await withSandbox({ seed: 6, realism: lag }, async (sb) => {
      const put = await call(sb, 'PUT', '/sandbox', { seed: 5 });
      assert.equal(put.body.seed, 5);
      return drawnDelays(sb);
    });
    assert.deepEqual(d, a);
  });

  test('realism: false is the old sandbox: every credential at once, listed at once, nothing throttled', async () => {
    await withSandbox({ realism: false }, async (sb) => {
      const state = (await call(sb, 'GET', '/sandbox')).body;
      assert.deepEqual(state.aws, { propagationDelayMs: 0, readLagMs: 0, delaySpread: 0, nonAtomicQuota: false, seed: 1 });
      assert.deepEqual([state.budgets.iam.enabled, state.budgets.sts.enabled, state.budgets.azure.enabled], [false, false, false]);
      const key = sb.aws.createAccessKey(W.userName);
      assert.deepEqual([key.acceptedNow, key.listed, key.listedAt], [true, true, null]);
    });
  });

  test('options override one field at a time, and a service\'s budget can start off', async () => {
    await withSandbox({ realism: { propagationMs: 2_000, budgets: { iam: { burst: 5, perSecond: 1 }, sts: false } } }, async (sb) => {
      const state = (await call(sb, 'GET', '/sandbox')).body;
      assert.equal(state.aws.propagationDelayMs, 2_000);
      assert.equal(state.aws.delaySpread, 0.5, 'the fields not given keep the defaults');
      assert.deepEqual(state.budgets.iam, { enabled: true, limits: { requests: { burst: 5, perSecond: 1 } } });
      assert.equal(state.budgets.sts.enabled, false);
      assert.equal(state.budgets.azure.enabled, true);
    });
  });
});

describe('the control API tunes budgets and timing', () => {
  test('PUT /budgets/:service throttles a loop through the real SDK; the throttled calls are logged; DELETE /budgets refills', async () => {
    await withSandbox({}, async (sb) => {
      const put = await call(sb, 'PUT', '/budgets/iam', { limits: { requests: { burst: 3, perSecond: 0.001 } } });
      assert.deepEqual(put.body, { enabled: true, limits: { requests: { burst: 3, perSecond: 0.001 } } });
      const iam = new IAMClient({ endpoint: sb.urls.iam, region: 'us-east-1', credentials: adminKey(sb), maxAttempts: 1 });
      const outcomes: string[] = [];
      for (let i = 0; i < 5; i++) {
        outcomes.push(
          await iam.send(new ListAccessKeysCommand({ UserName: W.userName })).then(
            () => 'ok',
            (err: Error) => err.name,
          ),
        );
      }
      assert.deepEqual(outcomes, ['ok', 'ok', 'ok', 'Throttling', 'Throttling']);
      const logged = (await call(sb, 'GET', '/requests?service=iam')).body as Array<{ status: number; throttled?: boolean }>;
      assert.deepEqual(logged.map((e) => [e.status, e.throttled ?? false]), [[200, false], [200, false], [200, false], [400, true], [400, true]]);
      assert.equal((await call(sb, 'DELETE', '/budgets')).status, 200);
      assert.equal(await iam.send(new ListAccessKeysCommand({ UserName: W.userName })).then(() => 'ok'), 'ok');
      // Off for every service at once, then on again.
      assert.equal((await call(sb, 'PUT', '/sandbox', { budgets: false })).body.budgets.iam.enabled, false);
      for (let i = 0; i < 5; i++) await iam.send(new ListAccessKeysCommand({ UserName: W.userName }));
      assert.equal((await call(sb, 'PUT', '/sandbox', { budgets: true })).body.budgets.azure.enabled, true);
      iam.destroy();
    });
  });

  test('PUT /sandbox sets the timing of both services at once; bad input is a 4xx that changes nothing', async () => {
    await withSandbox({}, async (sb) => {
      const put = await call(sb, 'PUT', '/sandbox', { propagationMs: 5_000, readLagMs: 700, spread: 0.2, nonAtomicQuota: true, seed: 9 });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      assert.deepEqual(put.body.aws, { propagationDelayMs: 5_000, readLagMs: 700, delaySpread: 0.2, nonAtomicQuota: true, seed: 9 });
      assert.deepEqual(put.body.azure, { propagationDelayMs: 5_000, readLagMs: 700, delaySpread: 0.2, seed: 9 });
      assert.equal(sb.azure.getTenant(DEMO.azure.tenantId)!.propagationDelayMs, 5_000);
      for (const bad of [{ spread: 9 }, { propagationMs: -1 }, { seed: 0.5 }, { budgets: 'yes' }, { nonAtomicQuota: 1 }]) {
        assert.equal((await call(sb, 'PUT', '/sandbox', { readLagMs: 1, ...bad })).status, 400, JSON.stringify(bad));
      }
      assert.equal((await call(sb, 'GET', '/sandbox')).body.aws.readLagMs, 700);
      assert.equal((await call(sb, 'PUT', '/budgets/nope', {})).status, 404);
      assert.equal((await call(sb, 'PUT', '/budgets/iam', { limits: { bogus: { burst: 1, perSecond: 1 } } })).status, 400);
      assert.equal((await call(sb, 'PUT', '/budgets/iam', { limits: { requests: { burst: 0, perSecond: 1 } } })).status, 400);
      assert.equal((await call(sb, 'PUT', '/budgets/iam', { enabled: 'no' })).status, 400);
      assert.deepEqual((await call(sb, 'GET', '/budgets')).body.iam, { enabled: true, limits: { requests: { burst: 100, perSecond: 20 } } });
    });
  });
});
