// The Kubernetes sandbox as the real @kubernetes/client-node sees it, over HTTPS with the test run's certificate:
// Secrets read, created, replaced and patched with each patch type, Deployments patched, access reviews asked,
// and every refusal with the Status body the real API server writes. Raw requests (fetch) only where the client
// drops the body (it keeps none for a 401) or cannot send what is tested (a wrong content type).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { ApiException, AppsV1Api, AuthorizationV1Api, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { ControlApi } from '../../src/sandbox/control.js';
import { FaultPlan, RequestLog } from '../../src/sandbox/faults.js';
import { KubernetesCluster, KubernetesService, type RbacRule, base64Error, registerKubernetesControl } from '../../src/sandbox/kubernetes/index.js';
import { startSandbox } from '../../src/sandbox/sandbox.js';
import { type RunningService, serve } from '../../src/sandbox/service.js';
import { sandboxTlsMaterial } from '../../src/sandbox/tls.js';
import { controlCall } from '../helpers/control-api.js';

const GATEWAY = 'system:serviceaccount:keeper:gateway';
const RULES: RbacRule[] = [
  { namespace: 'team-a', resources: ['secrets'], verbs: ['get', 'create', 'patch', 'update'] },
  { namespace: 'team-a', resources: ['deployments'], verbs: ['get', 'patch'], resourceNames: ['web'] },
  { namespace: 'team-b', resources: ['secrets'], verbs: ['get'] },
];

function clients(url: string, token: string) {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'sandbox', server: url, skipTLSVerify: false }],
    users: [{ name: 'gateway', token }],
    contexts: [{ name: 'sandbox', cluster: 'sandbox', user: 'gateway' }],
    currentContext: 'sandbox',
  });
  return { core: kc.makeApiClient(CoreV1Api), apps: kc.makeApiClient(AppsV1Api), authz: kc.makeApiClient(AuthorizationV1Api) };
}

const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const strategic = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** The client's exception and the Status body it carries (as text: the client does not parse error bodies). */
async function refusal(p: Promise<unknown>): Promise<{ code: number; body: any; headers: Record<string, string> }> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ApiException, `an ApiException, not ${String(err)}`);
    const e = err as ApiException<unknown>;
    return { code: e.code, body: typeof e.body === 'string' && e.body.startsWith('{') ? JSON.parse(e.body) : e.body, headers: e.headers };
  }
  assert.fail('the call succeeded');
}

describe('Kubernetes sandbox through @kubernetes/client-node', () => {
  const tls = sandboxTlsMaterial();
  const faults = new FaultPlan();
  const log = new RequestLog();
  const control = new ControlApi(faults, log);
  let cluster: KubernetesCluster;
  let service: KubernetesService;
  let running: RunningService;
  let controlServer: { url: string; close(): Promise<void> };
  let token: string;
  let k: ReturnType<typeof clients>;

  before(async () => {
    cluster = new KubernetesCluster();
    service = new KubernetesService(cluster);
    registerKubernetesControl(control, cluster);
    running = await serve({ service, faults, log, tls });
    controlServer = await control.listen();
  });
  after(async () => {
    await running.close();
    await controlServer.close();
  });
  beforeEach(() => {
    // A fresh cluster state for each test, behind the same server.
    for (const name of cluster.secretNames()) cluster.deleteSecret(name.split('/')[0]!, name.split('/')[1]!);
    cluster.createNamespace('team-a');
    cluster.createNamespace('team-b');
    cluster.seedSecret({ namespace: 'team-a', name: 'app-creds', stringData: { database_host: 'db.team-a', access_key_id: 'AKIAOLD' } });
    cluster.seedSecret({ namespace: 'team-b', name: 'app-creds', stringData: { token: 'team-b-value' } });
    cluster.seedDeployment({ namespace: 'team-a', name: 'web' });
    cluster.seedDeployment({ namespace: 'team-a', name: 'worker' });
    token = cluster.addToken(GATEWAY, RULES);
    k = clients(running.url, token);
    faults.clear();
    service.budget.reset({ budgets: true });
  });

  test('get returns the Secret as the API serves it: data in base64, type, resourceVersion', async () => {
    const s = await k.core.readNamespacedSecret({ name: 'app-creds', namespace: 'team-a' });
    assert.equal(s.kind, 'Secret');
    assert.equal(s.type, 'Opaque');
    assert.deepEqual(s.data, { database_host: b64('db.team-a'), access_key_id: b64('AKIAOLD') });
    assert.match(s.metadata!.resourceVersion!, /^\d+$/);
    assert.equal(s.metadata!.namespace, 'team-a');
  });

  test('no token, or one the server does not know: 401 with the one-word Status, before anything else', async () => {
    for (const headers of [{}, { authorization: 'Bearer not-a-token' }] as Array<Record<string, string>>) {
      const res = await fetch(`${running.url}/api/v1/namespaces/team-a/secrets/app-creds`, { headers });
      assert.equal(res.status, 401);
      assert.deepEqual(await res.json(), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
    }
    const r = await refusal(clients(running.url, 'wrong-token-value').core.readNamespacedSecret({ name: 'app-creds', namespace: 'team-a' }));
    assert.equal(r.code, 401);
  });

  test('RBAC: a verb the token lacks is a 403 with the real message and details, whether or not the Secret exists', async () => {
    const r = await refusal(k.core.patchNamespacedSecret({ name: 'app-creds', namespace: 'team-b', body: { data: { token: b64('x') } } }, merge));
    assert.equal(r.code, 403);
    assert.deepEqual(r.body, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: `secrets "app-creds" is forbidden: User "${GATEWAY}" cannot patch resource "secrets" in API group "" in the namespace "team-b"`,
      reason: 'Forbidden',
      details: { name: 'app-creds', kind: 'secrets' },
      code: 403,
    });
    const missing = await refusal(k.core.readNamespacedSecret({ name: 'nothing-here', namespace: 'team-c' }));
    assert.equal(missing.code, 403, 'authorization comes before existence');
    const create = await refusal(k.core.createNamespacedSecret({ namespace: 'team-b', body: { metadata: { name: 'new' }, data: {} } }));
    assert.equal(create.body.message, `secrets is forbidden: User "${GATEWAY}" cannot create resource "secrets" in API group "" in the namespace "team-b"`);
    assert.deepEqual(create.body.details, { kind: 'secrets' });
    const deploy = await refusal(k.apps.patchNamespacedDeployment({ name: 'worker', namespace: 'team-a', body: { spec: { replicas: 2 } } }, strategic));
    assert.equal(deploy.body.message, `deployments.apps "worker" is forbidden: User "${GATEWAY}" cannot patch resource "deployments" in API group "apps" in the namespace "team-a"`);
    assert.deepEqual(deploy.body.details, { name: 'worker', group: 'apps', kind: 'deployments' });
    assert.equal(cluster.secretText('team-b', 'app-creds')!.token, 'team-b-value');
  });

  test('a missing Secret is a 404 NotFound Status; a create into a missing namespace names the namespace', async () => {
    const r = await refusal(k.core.readNamespacedSecret({ name: 'absent', namespace: 'team-a' }));
    assert.equal(r.code, 404);
    assert.deepEqual(r.body, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'secrets "absent" not found', reason: 'NotFound', details: { name: 'absent', kind: 'secrets' }, code: 404 });
    const patch = await refusal(k.core.patchNamespacedSecret({ name: 'absent', namespace: 'team-a', body: { data: {} } }, merge));
    assert.equal(patch.code, 404);
    cluster.addToken('admin', [{ namespace: '*', resources: ['secrets'], verbs: ['*'] }], 'admin-token-1');
    const ns = await refusal(clients(running.url, 'admin-token-1').core.createNamespacedSecret({ namespace: 'nowhere', body: { metadata: { name: 'x' } } }));
    assert.equal(ns.code, 404);
    assert.equal(ns.body.message, 'namespaces "nowhere" not found');
  });

  test('create: 201 with a new resourceVersion and uid, stringData folded into data; a second create is 409 AlreadyExists', async () => {
    const made = await k.core.createNamespacedSecret({ namespace: 'team-a', body: { metadata: { name: 'fresh' }, stringData: { client_secret: 'v1' }, data: { client_id: b64('id-1') } } });
    assert.deepEqual(made.data, { client_id: b64('id-1'), client_secret: b64('v1') });
    assert.equal((made as { stringData?: unknown }).stringData, undefined);
    assert.match(made.metadata!.uid!, /^[0-9a-f-]{36}$/);
    assert.deepEqual(cluster.secretText('team-a', 'fresh'), { client_id: 'id-1', client_secret: 'v1' });
    const again = await refusal(k.core.createNamespacedSecret({ namespace: 'team-a', body: { metadata: { name: 'fresh' }, data: {} } }));
    assert.equal(again.code, 409);
    assert.equal(again.body.reason, 'AlreadyExists');
    assert.equal(again.body.message, 'secrets "fresh" already exists');
  });

  test('merge, strategic merge and JSON patch change only what they name; other keys and labels stay', async () => {
    const before = cluster.secret('team-a', 'app-creds')!;
    const a = await k.core.patchNamespacedSecret({ name: 'app-creds', namespace: 'team-a', body: { data: { access_key_id: b64('AKIANEW') }, metadata: { annotations: { 'keeper-rotate/credential-id': 'AKIANEW' } } } }, merge);
    assert.deepEqual(a.data, { database_host: b64('db.team-a'), access_key_id: b64('AKIANEW') });
    assert.ok(Number(a.metadata!.resourceVersion) > Number((before.metadata as any).resourceVersion), 'every write bumps the resourceVersion');
    const b = await k.core.patchNamespacedSecret({ name: 'app-creds', namespace: 'team-a', body: { data: { secret_access_key: b64('s3cr3t-value') } } }, strategic);
    assert.deepEqual(Object.keys(b.data!).sort(), ['access_key_id', 'database_host', 'secret_access_key']);
    assert.equal(b.metadata!.annotations!['keeper-rotate/credential-id'], 'AKIANEW');
    // The client's own default patch type is JSON patch.
    const c = await k.core.patchNamespacedSecret({ name: 'app-creds', namespace: 'team-a', body: [{ op: 'test', path: '/data/access_key_id', value: b64('AKIANEW') }, { op: 'remove', path: '/data/secret_access_key' }] });
    assert.deepEqual(Object.keys(c.data!).sort(), ['access_key_id', 'database_host']);
    const failedTest = await refusal(k.core.patchNamespacedSecret({ name: 'app-creds', namespace: 'team-a', body: [{ op: 'test', path: '/data/access_key_id', value: b64('other') }, { op: 'remove', path: '/data/database_host' }] }));
    assert.equal(failedTest.code, 422);
    assert.ok(cluster.secretText('team-a', 'app-creds')!.database_host, 'a failed test applies none of the patch');
  });

  test('a patch with any other content type is a 415 that lists the accepted patch types', async () => {
    const res = await fetch(`${running.url}/api/v1/namespaces/team-a/secrets/app-creds`, { method: 'PATCH', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 415);
    const body = (await res.json()) as any;
    assert.equal(body.reason, 'UnsupportedMediaType');
    assert.equal(body.message, 'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json');
  });

  test('resourceVersion preconditions: a stale replace or patch is a 409 Conflict with the real message, and writes nothing', async () => {
    const read = await k.core.readNamespacedSecret({ name: 'app-creds', namespace: 'team-a' });
    cluster.editSecret('team-a', 'app-creds', { database_host: 'db2.team-a' });
    const put = await refusal(k.core.replaceNamespacedSecret({ name: 'app-creds', namespace: 'team-a', body: { ...read, data: { ...read.data, access_key_id: b64('AKIAPUT') } } }));
    assert.equal(put.code, 409);
    assert.deepEqual(put.body, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Operation cannot be fulfilled on secrets "app-creds": the object has been modified; please apply your changes to the latest version and try again',
      reason: 'Conflict',
      details: { name: 'app-creds', kind: 'secrets' },
      code: 409,
    });
    const patch = await refusal(k.core.patchNamespacedSecret({ name: 'app-creds', namespace: 'team-a', body: { metadata: { resourceVersion: read.metadata!.resourceVersion }, data: { access_key_id: b64('AKIAPATCH') } } }, merge));
    assert.equal(patch.code, 409);
    assert.deepEqual(cluster.secretText('team-a', 'app-creds'), { database_host: 'db2.team-a', access_key_id: 'AKIAOLD' });
    const fresh = await k.core.readNamespacedSecret({ name: 'app-creds', namespace: 'team-a' });
    const ok = await k.core.replaceNamespacedSecret({ name: 'app-creds', namespace: 'team-a', body: { ...fresh, data: { ...fresh.data, access_key_id: b64('AKIAPUT') } } });
    assert.equal(Buffer.from(ok.data!.access_key_id!, 'base64').toString(), 'AKIAPUT');
  });

  test('dryRun=All validates, authorizes and answers as if written, and stores nothing', async () => {
    const before = cluster.secret('team-a', 'app-creds');
    const patched = await k.core.patchNamespacedSecret({ name: 'app-creds', namespace: 'team-a', dryRun: 'All', body: { data: { access_key_id: b64('AKIADRY') } } }, merge);
    assert.equal(patched.data!.access_key_id, b64('AKIADRY'));
    assert.deepEqual(cluster.secret('team-a', 'app-creds'), before);
    await k.core.createNamespacedSecret({ namespace: 'team-a', dryRun: 'All', body: { metadata: { name: 'dry' }, data: {} } });
    assert.equal(cluster.secret('team-a', 'dry'), undefined);
    const denied = await refusal(k.core.patchNamespacedSecret({ name: 'app-creds', namespace: 'team-b', dryRun: 'All', body: { data: {} } }, merge));
    assert.equal(denied.code, 403, 'a dry run is authorized like the real thing');
    const bad = await refusal(k.core.patchNamespacedSecret({ name: 'app-creds', namespace: 'team-a', dryRun: 'Some', body: { data: {} } }, merge));
    assert.equal(bad.code, 400);
  });

  test('bad base64: a create is a 400 BadRequest; a patch is the patcher 422 that quotes the whole patched object', async () => {
    const create = await refusal(k.core.createNamespacedSecret({ namespace: 'team-a', body: { metadata: { name: 'bad' }, data: { key: 'not base64!' } } }));
    assert.equal(create.code, 400);
    assert.equal(create.body.reason, 'BadRequest');
    assert.equal(create.body.message, 'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3');
    const patch = await refusal(k.core.patchNamespacedSecret({ name: 'app-creds', namespace: 'team-a', body: { data: { access_key_id: 'no good' } } }, merge));
    assert.equal(patch.code, 422);
    assert.equal(patch.body.reason, 'Invalid');
    assert.equal(patch.body.details.causes[0].field, 'patch');
    // As the real server does: the other keys' values are in the message (a client must not print it).
    assert.ok(patch.body.message.includes(b64('db.team-a')));
    assert.equal(cluster.secretText('team-a', 'app-creds')!.access_key_id, 'AKIAOLD');
    assert.equal(base64Error('QUJD'), -1);
    assert.equal(base64Error('QUJ'), 0);
    assert.equal(base64Error('QU=D'), 2);
  });

  test('type is immutable (422 with a FieldValueInvalid cause); a dockerconfigjson Secret needs a JSON .dockerconfigjson', async () => {
    const r = await refusal(k.core.patchNamespacedSecret({ name: 'app-creds', namespace: 'team-a', body: { type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('{}') } } }, merge));
    assert.equal(r.code, 422);
    assert.equal(r.body.message, 'Secret "app-creds" is invalid: type: Invalid value: "kubernetes.io/dockerconfigjson": field is immutable');
    assert.deepEqual(r.body.details, { name: 'app-creds', kind: 'Secret', causes: [{ reason: 'FieldValueInvalid', message: 'Invalid value: "kubernetes.io/dockerconfigjson": field is immutable', field: 'type' }] });
    const missing = await refusal(k.core.createNamespacedSecret({ namespace: 'team-a', body: { metadata: { name: 'pull' }, type: 'kubernetes.io/dockerconfigjson', data: {} } }));
    assert.equal(missing.body.message, 'Secret "pull" is invalid: data[.dockerconfigjson]: Required value');
    const notJson = await refusal(k.core.createNamespacedSecret({ namespace: 'team-a', body: { metadata: { name: 'pull' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('password-like') } } }));
    assert.equal(notJson.code, 422);
    assert.ok(!notJson.body.message.includes('password-like') && notJson.body.message.includes('<secret contents redacted>'));
    const ok = await k.core.createNamespacedSecret({ namespace: 'team-a', body: { metadata: { name: 'pull' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('{"auths":{}}') } } });
    assert.equal(ok.type, 'kubernetes.io/dockerconfigjson');
  });

  test('a Deployment restart: patching the pod template annotation bumps generation; the selector is immutable', async () => {
    const at = '2026-01-01T00:00:00Z';
    const before = await k.apps.readNamespacedDeployment({ name: 'web', namespace: 'team-a' });
    const d = await k.apps.patchNamespacedDeployment({ name: 'web', namespace: 'team-a', body: { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': at } } } } } }, strategic);
    assert.equal(d.spec!.template.metadata!.annotations!['kubectl.kubernetes.io/restartedAt'], at);
    assert.equal(d.metadata!.generation, before.metadata!.generation! + 1);
    assert.deepEqual(d.spec!.template.metadata!.labels, { app: 'web' }, 'a merge keeps the template labels');
    const sel = await refusal(k.apps.patchNamespacedDeployment({ name: 'web', namespace: 'team-a', body: { spec: { selector: { matchLabels: { app: 'other' } } } } }, merge));
    assert.equal(sel.code, 422);
    assert.match(sel.body.message, /^Deployment\.apps "web" is invalid: spec\.selector: Invalid value: .*field is immutable$/);
    const missing = await refusal(k.apps.readNamespacedDeployment({ name: 'gone', namespace: 'team-a' }));
    assert.equal(missing.code, 403, 'resourceNames limit the rule to web');
  });

  test('SelfSubjectAccessReview answers from the same rules, with the RBAC reason when allowed, and writes nothing', async () => {
    const ask = (verb: string, resource: string, namespace: string, name?: string) =>
      k.authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { verb, resource, namespace, group: resource === 'deployments' ? 'apps' : '', ...(name ? { name } : {}) } } } });
    const yes = await ask('patch', 'secrets', 'team-a', 'app-creds');
    assert.equal(yes.status!.allowed, true);
    assert.equal(yes.status!.reason, 'RBAC: allowed by RoleBinding "keeper-rotate/team-a" of Role "keeper-rotate" to ServiceAccount "gateway/keeper"');
    assert.equal((await ask('patch', 'secrets', 'team-b', 'app-creds')).status!.allowed, false);
    assert.equal((await ask('patch', 'deployments', 'team-a', 'web')).status!.allowed, true);
    assert.equal((await ask('patch', 'deployments', 'team-a', 'worker')).status!.allowed, false);
    assert.equal((await ask('create', 'deployments', 'team-a')).status!.allowed, false);
  });

  test('Priority and Fairness: past the budget, 429 with Retry-After and the filter plain-text body; a throttle fault the same', async () => {
    service.budget.set('requests', { burst: 1, perSecond: 0.001 });
    await k.core.readNamespacedSecret({ name: 'app-creds', namespace: 'team-a' });
    const r = await refusal(k.core.readNamespacedSecret({ name: 'app-creds', namespace: 'team-a' }));
    assert.equal(r.code, 429);
    assert.equal(r.body, 'Too many requests, please try again later.\n');
    assert.ok(Number(r.headers['retry-after']) >= 1);
    service.budget.reset({ budgets: true });
    faults.arm({ service: 'kubernetes', operation: 'PatchSecret', kind: 'throttle', retryAfterSeconds: 3 });
    const t = await refusal(k.core.patchNamespacedSecret({ name: 'app-creds', namespace: 'team-a', body: { data: {} } }, merge));
    assert.equal(t.code, 429);
    assert.equal(t.headers['retry-after'], '3');
  });

  test('the control API seeds tokens and Secrets, makes a concurrent edit, and reads objects back', async () => {
    const made = await controlCall(controlServer.url, 'POST', '/kubernetes/tokens', { user: 'alice', rules: [{ namespace: 'team-a', resources: ['secrets'], verbs: ['get'] }] });
    assert.equal(made.status, 200);
    const alice = clients(running.url, made.body.token);
    assert.equal((await alice.core.readNamespacedSecret({ name: 'app-creds', namespace: 'team-a' })).metadata!.name, 'app-creds');
    assert.equal((await controlCall(controlServer.url, 'PUT', '/kubernetes/secrets/team-a/seeded', { stringData: { k: 'v' }, type: 'Opaque' })).status, 200);
    const edit = await controlCall(controlServer.url, 'PATCH', '/kubernetes/secrets/team-a/seeded', { values: { k: null, other: 'x' } });
    assert.deepEqual(edit.body.data, { other: b64('x') });
    const read = await controlCall(controlServer.url, 'GET', '/kubernetes/secrets/team-a/seeded');
    assert.deepEqual(read.body.text, { other: 'x' });
    assert.equal((await controlCall(controlServer.url, 'POST', '/kubernetes/tokens', { rules: [] })).status, 400);
    const state = await controlCall(controlServer.url, 'GET', '/kubernetes');
    assert.ok(!JSON.stringify(state.body).includes(made.body.token), 'tokens are never listed back');
  });
});

describe('startSandbox({dir}) writes a kubeconfig the client uses as it is', () => {
  test('DIR/kubeconfig (0600) and KUBECONFIG in the env file reach the demo namespace as the gateway service account', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'k8s-sandbox-'));
    const sb = await startSandbox({ dir, realism: false });
    try {
      const path = join(dir, 'kubeconfig');
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.match(readFileSync(join(dir, 'env'), 'utf8'), new RegExp(`^KUBECONFIG=${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
      assert.equal(sb.env.KUBECONFIG, path);
      const kc = new KubeConfig();
      kc.loadFromFile(path);
      assert.equal(kc.getCurrentCluster()!.server, sb.urls.kubernetes);
      const core = kc.makeApiClient(CoreV1Api);
      const s = await core.readNamespacedSecret({ name: 'app-creds', namespace: 'demo' });
      assert.equal(Buffer.from(s.data!.database_host!, 'base64').toString(), 'db.demo.svc');
      // RBAC lets the gateway write other-team's Secrets too: only the allow-list keeps a record out of them.
      const authz = kc.makeApiClient(AuthorizationV1Api);
      const review = await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { verb: 'patch', resource: 'secrets', namespace: 'other-team', name: 'app-creds' } } } });
      assert.equal(review.status!.allowed, true);
      const restart = await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { verb: 'patch', resource: 'deployments', group: 'apps', namespace: 'demo', name: 'app' } } } });
      assert.equal(restart.status!.allowed, true);
    } finally {
      await sb.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
