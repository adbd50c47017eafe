// The Kubernetes Secret destination driving the real @kubernetes/client-node against the sandbox's API server,
// reached through the kubeconfig `startSandbox({dir})` writes (KUBECONFIG), as the gateway host's would be.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Deadline } from '../../src/deadline.js';
import type { DeliveryPayload } from '../../src/destinations/destination.js';
import {
  ALLOW_K8S_RESTARTS,
  ALLOW_K8S_SECRETS,
  CREDENTIAL_ID_ANNOTATION,
  KEYS_ANNOTATION,
  RESTARTED_AT_ANNOTATION,
  kubernetesSecretDestination,
  parseSecretRef,
  type KubernetesSecretSpec,
} from '../../src/destinations/kubernetes-secret.js';
import { entry, fingerprint } from '../../src/destinations/payload.js';
import { RotateError } from '../../src/errors.js';
import { useProxyEnvironment } from '../../src/http/proxy.js';
import { type Sandbox, startSandbox } from '../../src/sandbox/sandbox.js';
import { Secret } from '../../src/secret.js';
import { PROXY_SOURCE_ADDRESS, startForwardProxy } from '../helpers/forward-proxy.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

let counter = 0;
/** A fresh AWS-style payload: a key ID and a secret this test run made up (never a real one). */
function awsPayload(): { payload: DeliveryPayload; secret: string; id: string } {
  counter += 1;
  const id = `AKIATESTKEY${String(counter).padStart(9, '0')}`;
  const secret = `sandbox-secret-${counter}-${Math.random().toString(36).slice(2)}-value`;
  const entries = [entry('access_key_id', 'AWS_ACCESS_KEY_ID', id), entry('secret_access_key', 'AWS_SECRET_ACCESS_KEY', new Secret(secret))];
  return { payload: { target: 'aws-iam-access-key', credentialId: id, entries, fingerprint: fingerprint(entries) }, secret, id };
}

async function rejection(p: Promise<unknown> | (() => unknown)): Promise<RotateError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    assert.ok(err instanceof RotateError, `a RotateError, not ${inspect(err)}`);
    return err;
  }
  assert.fail('it did not throw');
}

describe('Kubernetes Secret destination against the sandbox, through DIR/kubeconfig', () => {
  let dir: string;
  let sb: Sandbox;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'k8s-dest-'));
    sb = await startSandbox({ dir, realism: false });
  });
  after(async () => {
    await sb.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    sb.faults.clear();
    sb.log.clear();
    const c = sb.kubernetes.cluster;
    c.seedSecret({ namespace: 'demo', name: 'app-creds', stringData: { database_host: 'db.demo.svc' } });
    c.deleteSecret('demo', 'new-creds');
    c.deleteSecret('demo', 'pull');
    c.seedDeployment({ namespace: 'demo', name: 'app' });
    env = { KUBECONFIG: sb.env.KUBECONFIG, [ALLOW_K8S_SECRETS]: 'demo/*', [ALLOW_K8S_RESTARTS]: 'demo/app' };
  });

  const spec = (over: Partial<KubernetesSecretSpec> = {}): KubernetesSecretSpec => ({ namespace: 'demo', name: 'app-creds', create: false, restart: [], ...over });
  const calls = (operation?: string) => sb.log.entries({ service: 'kubernetes', ...(operation ? { operation } : {}) });

  test('deliver patches only the payload keys, keeps the others, annotates the credential ID, and held() reads the fingerprint back', async () => {
    const d = kubernetesSecretDestination(spec(), env);
    const { payload, secret, id } = awsPayload();
    await d.deliver(payload);
    assert.deepEqual(sb.kubernetes.cluster.secretText('demo', 'app-creds'), { database_host: 'db.demo.svc', access_key_id: id, secret_access_key: secret });
    const stored = sb.kubernetes.cluster.secret('demo', 'app-creds')! as any;
    assert.equal(stored.metadata.annotations[CREDENTIAL_ID_ANNOTATION], id);
    assert.equal(stored.metadata.annotations[KEYS_ANNOTATION], 'access_key_id,secret_access_key');
    assert.ok(!JSON.stringify(stored.metadata).includes(secret), 'no value in the metadata');
    assert.equal(await d.held(), payload.fingerprint);
    // A hand edit of a delivered value shows as another fingerprint; a Secret we never wrote holds nothing of ours.
    sb.kubernetes.cluster.editSecret('demo', 'app-creds', { secret_access_key: 'edited-by-hand' });
    assert.notEqual(await d.held(), payload.fingerprint);
    sb.kubernetes.cluster.seedSecret({ namespace: 'demo', name: 'app-creds', stringData: { other: 'x' } });
    assert.equal(await d.held(), undefined);
    assert.deepEqual(calls('PatchSecret').map((e) => e.status), [200]);
  });

  test('a missing Secret is created only with create: true; without it, a refused DELIVERY_FAILED and no write', async () => {
    const { payload, secret } = awsPayload();
    const err = await rejection(kubernetesSecretDestination(spec({ name: 'new-creds' }), env).deliver(payload));
    assert.equal(err.code, 'DELIVERY_FAILED');
    assert.equal(err.exitCode, 4);
    assert.equal(err.refused, true);
    assert.deepEqual(calls().map((e) => e.operation), ['GetSecret']);
    await kubernetesSecretDestination(spec({ name: 'new-creds', create: true }), env).deliver(payload);
    const made = sb.kubernetes.cluster.secret('demo', 'new-creds') as any;
    assert.equal(made.type, 'Opaque');
    assert.equal(Buffer.from(made.data.secret_access_key, 'base64').toString(), secret);
    assert.deepEqual(calls('CreateSecret').map((e) => e.status), [201]);
  });

  test('a registry login becomes a kubernetes.io/dockerconfigjson Secret under .dockerconfigjson; an Opaque Secret is refused unwritten', async () => {
    const config = JSON.stringify({ auths: { 'registry.invalid': { auth: b64(`AWS:${'t'.repeat(40)}`) } } });
    const payload: DeliveryPayload = { target: 'aws-ecr-pull-secret', credentialId: 'registry.invalid', entries: [], dockerConfigJson: new Secret(config), fingerprint: fingerprint([], new Secret(config)) };
    const pull = kubernetesSecretDestination(spec({ name: 'pull', create: true }), env);
    await pull.deliver(payload);
    const made = sb.kubernetes.cluster.secret('demo', 'pull') as any;
    assert.equal(made.type, 'kubernetes.io/dockerconfigjson');
    assert.deepEqual(JSON.parse(Buffer.from(made.data['.dockerconfigjson'], 'base64').toString()), JSON.parse(config));
    assert.equal(await pull.held(), payload.fingerprint);
    await pull.deliver(payload);
    sb.log.clear();
    const err = await rejection(kubernetesSecretDestination(spec(), env).deliver(payload));
    assert.equal(err.refused, true);
    assert.match(err.message, /is of type Opaque; a registry login needs a kubernetes\.io\/dockerconfigjson Secret/);
    assert.deepEqual(calls('PatchSecret'), []);
  });

  test('a concurrent edit between the read and the patch (409 Conflict) is retried on the fresh Secret, keeping the other writer\'s change', async () => {
    const stop = sb.faults.onFire((f) => {
      if (f.operation === 'PatchSecret') sb.kubernetes.cluster.editSecret('demo', 'app-creds', { added_by_app: 'yes' });
    });
    try {
      sb.faults.arm({ service: 'kubernetes', operation: 'PatchSecret', kind: 'delay', delayMs: 0 });
      const { payload, secret } = awsPayload();
      await kubernetesSecretDestination(spec(), env).deliver(payload);
      assert.deepEqual(calls('PatchSecret').map((e) => e.status), [409, 200]);
      assert.equal(calls('GetSecret').length, 2);
      const text = sb.kubernetes.cluster.secretText('demo', 'app-creds')!;
      assert.equal(text.added_by_app, 'yes');
      assert.equal(text.secret_access_key, secret);
      // An edit before every patch: the delivery gives up after a bounded number of reads, refused (nothing written).
      sb.log.clear();
      sb.faults.arm({ service: 'kubernetes', operation: 'PatchSecret', kind: 'delay', delayMs: 0, times: 10 });
      const err = await rejection(kubernetesSecretDestination(spec(), env).deliver(awsPayload().payload));
      assert.equal(err.refused, true);
      assert.equal(err.status, 409);
      assert.deepEqual(calls('PatchSecret').map((e) => e.status), [409, 409, 409, 409]);
      assert.equal(sb.kubernetes.cluster.secretText('demo', 'app-creds')!.secret_access_key, secret);
    } finally {
      stop();
    }
  });

  test('RBAC: a Secret the allow-list admits but the service account cannot write is a refused 403 with the API message', async () => {
    sb.kubernetes.cluster.seedSecret({ namespace: 'kube-system', name: 'app-creds', stringData: { k: 'v' } });
    const d = kubernetesSecretDestination(spec({ namespace: 'kube-system' }), { ...env, [ALLOW_K8S_SECRETS]: 'demo/*, kube-system/app-creds' });
    const err = await rejection(d.deliver(awsPayload().payload));
    assert.equal(err.code, 'DELIVERY_FAILED');
    assert.equal(err.refused, true);
    assert.equal(err.status, 403);
    assert.match(err.message, /secrets "app-creds" is forbidden: User "system:serviceaccount:keeper:gateway" cannot get resource "secrets" in API group "" in the namespace "kube-system"/);
    assert.deepEqual(sb.kubernetes.cluster.secretText('kube-system', 'app-creds'), { k: 'v' });
  });

  test('restart: each named Deployment gets kubectl\'s restartedAt annotation on its pod template, after the Secret is written', async () => {
    const before = sb.kubernetes.cluster.deployment('demo', 'app') as any;
    await kubernetesSecretDestination(spec({ restart: ['app'] }), env).deliver(awsPayload().payload);
    const d = sb.kubernetes.cluster.deployment('demo', 'app') as any;
    assert.match(d.spec.template.metadata.annotations[RESTARTED_AT_ANNOTATION], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(d.metadata.generation, before.metadata.generation + 1);
    assert.deepEqual(calls().map((e) => e.operation), ['GetSecret', 'PatchSecret', 'PatchDeployment']);
  });

  test('check() writes nothing: access reviews and one read; it names what RBAC denies, and a missing Secret without create', async () => {
    await kubernetesSecretDestination(spec({ restart: ['app'], create: true }), env).check();
    assert.deepEqual(calls().map((e) => e.operation), ['CreateSelfSubjectAccessReview', 'CreateSelfSubjectAccessReview', 'CreateSelfSubjectAccessReview', 'CreateSelfSubjectAccessReview', 'CreateSelfSubjectAccessReview', 'GetSecret']);
    const other = { ...env, [ALLOW_K8S_SECRETS]: 'demo/*,team-x/*', [ALLOW_K8S_RESTARTS]: 'demo/*,team-x/*' };
    sb.kubernetes.cluster.seedDeployment({ namespace: 'demo', name: 'worker' });
    const denied = await rejection(kubernetesSecretDestination(spec({ restart: ['worker'] }), other).check());
    assert.equal(denied.refused, true);
    assert.match(denied.message, /RBAC does not let gateway at https:\/\/localhost:\d+ patch deployments demo\/worker/);
    const missing = await rejection(kubernetesSecretDestination(spec({ name: 'new-creds' }), env).check());
    assert.match(missing.message, /does not exist, and the record does not allow creating it/);
    assert.deepEqual(calls().filter((e) => !['CreateSelfSubjectAccessReview', 'GetSecret'].includes(e.operation)), []);
    assert.equal(sb.kubernetes.cluster.secret('demo', 'new-creds'), undefined);
  });

  test('allow-lists, deny by default: refused before any request, with DESTINATION_NOT_ALLOWED or SETTING_INVALID', async () => {
    const cases: Array<[NodeJS.ProcessEnv, Partial<KubernetesSecretSpec>, string, RegExp]> = [
      [{ KUBECONFIG: env.KUBECONFIG }, {}, 'DESTINATION_NOT_ALLOWED', /allows none until its owner lists namespace\/name patterns in KEEPER_ROTATE_ALLOW_K8S_SECRETS/],
      [{ ...env, [ALLOW_K8S_SECRETS]: '  ' }, {}, 'DESTINATION_NOT_ALLOWED', /allows none/],
      // RBAC would let the gateway write other-team's Secret: the allow-list is what stops the record.
      [env, { namespace: 'other-team' }, 'DESTINATION_NOT_ALLOWED', /other-team\/app-creds is not in this gateway's allow-list KEEPER_ROTATE_ALLOW_K8S_SECRETS \(demo\/\*\)/],
      [{ ...env, [ALLOW_K8S_SECRETS]: 'demo/app-*' }, { name: 'db-creds' }, 'DESTINATION_NOT_ALLOWED', /demo\/db-creds is not in/],
      [{ ...env, [ALLOW_K8S_SECRETS]: '*' }, {}, 'SETTING_INVALID', /KEEPER_ROTATE_ALLOW_K8S_SECRETS: "\*" is not namespace\/name/],
      [{ ...env, [ALLOW_K8S_RESTARTS]: undefined }, { restart: ['app'] }, 'DESTINATION_NOT_ALLOWED', /restarting Deployment demo\/app cannot be written: this gateway allows none until its owner lists namespace\/name patterns in KEEPER_ROTATE_ALLOW_K8S_RESTARTS/],
      [env, { restart: ['worker'] }, 'DESTINATION_NOT_ALLOWED', /Deployment demo\/worker is not in this gateway's allow-list KEEPER_ROTATE_ALLOW_K8S_RESTARTS/],
      [env, { restart: ['other-team/app'] }, 'SETTING_INVALID', /not a Deployment name/],
      [env, { name: 'Bad_Name' }, 'SETTING_INVALID', /not a Kubernetes Secret as namespace\/name/],
      [env, { restart: ['app', 'app'] }, 'SETTING_INVALID', /named twice/],
    ];
    for (const [e, s, code, message] of cases) {
      const err = await rejection(() => kubernetesSecretDestination(spec(s), e));
      assert.equal(err.code, code, `${JSON.stringify(s)} ${String(e[ALLOW_K8S_SECRETS])}`);
      assert.match(err.message, message);
      assert.equal(err.exitCode, 2);
    }
    assert.deepEqual(calls(), [], 'no request reached the cluster');
    assert.deepEqual(parseSecretRef(' team-a/app-creds '), { namespace: 'team-a', name: 'app-creds' });
    for (const bad of ['team-a', 'a/b/c', '/x', 'A/b', 'ns/\u001b[31mx']) assert.equal((await rejection(() => parseSecretRef(bad))).code, 'SETTING_INVALID');
    assert.ok(!(await rejection(() => parseSecretRef('ns/\u001b[31mx'))).message.includes('\u001b'), 'no control character from the record in the message');
  });

  test('faults: a dropped connection, a 500 and a timeout leave the outcome unknown (refused false); a 4xx is refused', async () => {
    const d = kubernetesSecretDestination(spec(), env, { deadline: new Deadline(60_000, Date.now, 500) });
    sb.faults.arm({ service: 'kubernetes', operation: 'PatchSecret', kind: 'drop', after: true });
    const dropped = await rejection(d.deliver(awsPayload().payload));
    assert.equal(dropped.refused, false);
    assert.equal(dropped.status, undefined);
    sb.faults.arm({ service: 'kubernetes', operation: 'PatchSecret', kind: 'status', status: 500, body: '{"kind":"Status","status":"Failure","reason":"InternalError","code":500}' });
    const failed = await rejection(d.deliver(awsPayload().payload));
    assert.equal(failed.refused, false);
    assert.equal(failed.status, 500);
    let release!: () => void;
    sb.faults.arm({ service: 'kubernetes', operation: 'PatchSecret', kind: 'delay', delayMs: 30_000, release: new Promise<void>((r) => (release = r)) });
    try {
      const slow = await rejection(d.deliver(awsPayload().payload));
      assert.equal(slow.refused, false);
      assert.match(slow.message, /no reply in time/);
    } finally {
      release();
    }
    sb.faults.arm({ service: 'kubernetes', operation: 'PatchSecret', kind: 'status', status: 422, body: '{"kind":"Status","status":"Failure","reason":"Invalid","code":422}' });
    const invalid = await rejection(d.deliver(awsPayload().payload));
    assert.equal(invalid.refused, true);
    assert.equal(invalid.status, 422);
    sb.faults.arm({ service: 'kubernetes', operation: 'PatchSecret', kind: 'throttle', retryAfterSeconds: 2 });
    const throttled = await rejection(d.deliver(awsPayload().payload));
    assert.equal(throttled.refused, true);
    assert.equal(throttled.status, 429);
  });

  test('no secret in any error: a refusal that echoes the request, or quotes the Secret as the patch handler does, is not passed on', async () => {
    sb.kubernetes.cluster.seedSecret({ namespace: 'demo', name: 'app-creds', stringData: { database_password: 'another-teams-password-value' } });
    const d = kubernetesSecretDestination(spec(), env);
    const echo = (status: number, reason: string) =>
      sb.faults.arm({ service: 'kubernetes', operation: 'PatchSecret', kind: 'status', status, body: `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"refused: {{request:json}} \\u001b[2J","reason":"${reason}","details":{"causes":[{"field":"patch","message":"{{request:json}}"}]},"code":${status}}` });
    for (const [status, reason] of [[422, 'Invalid'], [400, 'BadRequest'], [403, 'Forbidden'], [409, 'AlreadyExists'], [500, 'InternalError']] as const) {
      const { payload, secret } = awsPayload();
      echo(status, reason);
      const err = await rejection(d.deliver(payload));
      const all = `${err.message}\n${err.toLine()}\n${inspect(err, { showHidden: true, depth: 8 })}`;
      for (const leak of [secret, b64(secret), 'another-teams-password-value', b64('another-teams-password-value')]) assert.ok(!all.includes(leak), `${status}: the error carries ${leak.slice(0, 12)}...`);
      assert.ok(!/[\u0000-\u001f\u007f]/.test(err.message), `${status}: a control character from the reply`);
    }
    // The real patch handler's 422 for undecodable data quotes the whole patched Secret, every key's base64 in it.
    const patched = await rejection(
      (async () => {
        // Through the API itself: a value the API cannot decode is impossible from deliver() (it encodes), so the
        // sandbox's own 422 is provoked by a merge patch of a non-base64 value with the same client.
        const { connectCluster, kubernetesError } = await import('../../src/destinations/kubernetes/client.js');
        try {
          await connectCluster(env, undefined).mergePatchSecret('demo', 'app-creds', { data: { access_key_id: 'not base64!' } });
        } catch (err) {
          throw kubernetesError('Kubernetes Secret demo/app-creds: patch', err);
        }
      })(),
    );
    assert.equal(patched.status, 422);
    assert.equal(patched.refused, true);
    assert.match(patched.message, /HTTP 422 Invalid: the API server refused the request \(fields: patch\)/);
    assert.ok(!inspect(patched, { showHidden: true, depth: 8 }).includes(b64('another-teams-password-value')));
  });

  test('HTTPS_PROXY applies: the calls go through a CONNECT tunnel to the API server, as every other client of the tool does', async () => {
    const proxy = await startForwardProxy();
    try {
      useProxyEnvironment({ HTTPS_PROXY: proxy.url });
      const { payload, secret } = awsPayload();
      await kubernetesSecretDestination(spec({ restart: ['app'] }), env).deliver(payload);
      assert.equal(sb.kubernetes.cluster.secretText('demo', 'app-creds')!.secret_access_key, secret);
      assert.ok(proxy.connects.length > 0 && proxy.connects.every((c) => c === new URL(sb.urls.kubernetes!).host), `CONNECTs: ${proxy.connects.join(', ')}`);
      const peers = sb.log.connections().filter((c) => c.service === 'kubernetes');
      assert.ok(peers.length > 0 && peers.every((c) => c.remoteAddress === PROXY_SOURCE_ADDRESS), 'every connection came from the proxy');
    } finally {
      useProxyEnvironment(process.env);
      await proxy.close();
    }
  });

  test('the kubeconfig: a KUBECONFIG naming no file is refused before any request; the sandbox file reaches the cluster', async () => {
    const err = await rejection(kubernetesSecretDestination(spec(), { ...env, KUBECONFIG: join(dir, 'absent') }).deliver(awsPayload().payload));
    assert.equal(err.code, 'DELIVERY_FAILED');
    assert.equal(err.refused, true);
    assert.match(err.message, /KUBECONFIG names no file that exists/);
    assert.deepEqual(calls(), []);
    await kubernetesSecretDestination(spec(), env).deliver(awsPayload().payload);
    assert.equal(calls('PatchSecret').length, 1);
  });
});
