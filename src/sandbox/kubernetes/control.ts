// Control-API routes for the Kubernetes sandbox (`/kubernetes/...`): seed namespaces, Secrets, Deployments and
// bearer tokens with their RBAC rules; read objects back as the API serves them; make another writer's edit of a
// Secret (the conflicting edit a delivery must survive). Tokens are never listed back: a test keeps the token the
// POST answered with.
import { ControlError, bodyObject as object, type ControlApi } from '../control.js';
import type { KubernetesCluster, SeedSecret } from './cluster.js';
import { parseRules } from './rbac.js';

function stringMap(b: Record<string, unknown>, key: string, nullable = false): Record<string, string> | undefined {
  const v = b[key];
  if (v === undefined) return undefined;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ControlError(400, `"${key}" must be an object of strings`);
  for (const x of Object.values(v)) if (typeof x !== 'string' && !(nullable && x === null)) throw new ControlError(400, `"${key}" must be an object of strings`);
  return v as Record<string, string>;
}

function attempt<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ControlError) throw err;
    throw new ControlError(400, err instanceof Error ? err.message : String(err));
  }
}

export function registerKubernetesControl(api: ControlApi, cluster: KubernetesCluster): void {
  api.route('GET', '/kubernetes', () => ({
    namespaces: [...cluster.namespaces],
    secrets: cluster.secretNames(),
    deployments: cluster.deploymentNames(),
    users: cluster.tokens(),
  }));

  api.route('POST', '/kubernetes/namespaces', ({ body }) => {
    const b = object(body);
    if (typeof b.name !== 'string') throw new ControlError(400, '"name" is required');
    attempt(() => cluster.createNamespace(b.name as string));
    return { name: b.name };
  });

  api.route('POST', '/kubernetes/tokens', ({ body }) => {
    const b = object(body);
    if (typeof b.user !== 'string' || b.user === '') throw new ControlError(400, '"user" is required (e.g. system:serviceaccount:keeper:gateway)');
    const rules = attempt(() => parseRules(b.rules ?? []));
    if (b.token !== undefined && (typeof b.token !== 'string' || b.token.length < 8)) throw new ControlError(400, '"token" must be a string of at least 8 characters');
    return { user: b.user, token: cluster.addToken(b.user, rules, b.token as string | undefined) };
  });

  api.route('PUT', '/kubernetes/secrets/:namespace/:name', ({ params, body }) => {
    const b = object(body);
    const seed: SeedSecret = { namespace: params.namespace!, name: params.name! };
    if (b.type !== undefined) {
      if (typeof b.type !== 'string') throw new ControlError(400, '"type" must be a string');
      seed.type = b.type;
    }
    const stringData = stringMap(b, 'stringData');
    const data = stringMap(b, 'data');
    const labels = stringMap(b, 'labels');
    const annotations = stringMap(b, 'annotations');
    if (stringData) seed.stringData = stringData;
    if (data) seed.data = data;
    if (labels) seed.labels = labels;
    if (annotations) seed.annotations = annotations;
    if (b.immutable === true) seed.immutable = true;
    return attempt(() => cluster.seedSecret(seed));
  });

  api.route('GET', '/kubernetes/secrets/:namespace/:name', ({ params }) => {
    const s = cluster.secret(params.namespace!, params.name!);
    if (!s) throw new ControlError(404, `no Secret ${params.namespace}/${params.name}`);
    return { ...s, text: cluster.secretText(params.namespace!, params.name!) };
  });

  // Another writer's edit: {values: {key: text or null}}; bumps the resourceVersion.
  api.route('PATCH', '/kubernetes/secrets/:namespace/:name', ({ params, body }) => {
    const values = stringMap(object(body), 'values', true) ?? {};
    if (!cluster.secret(params.namespace!, params.name!)) throw new ControlError(404, `no Secret ${params.namespace}/${params.name}`);
    return cluster.editSecret(params.namespace!, params.name!, values);
  });

  api.route('DELETE', '/kubernetes/secrets/:namespace/:name', ({ params }) => ({ deleted: cluster.deleteSecret(params.namespace!, params.name!) }));

  api.route('PUT', '/kubernetes/deployments/:namespace/:name', ({ params, body }) => {
    const b = object(body);
    if (b.replicas !== undefined && (typeof b.replicas !== 'number' || !Number.isInteger(b.replicas) || b.replicas < 0)) throw new ControlError(400, '"replicas" must be a whole number');
    if (b.image !== undefined && typeof b.image !== 'string') throw new ControlError(400, '"image" must be a string');
    return attempt(() =>
      cluster.seedDeployment({
        namespace: params.namespace!,
        name: params.name!,
        ...(typeof b.replicas === 'number' ? { replicas: b.replicas } : {}),
        ...(typeof b.image === 'string' ? { image: b.image } : {}),
      }),
    );
  });

  api.route('GET', '/kubernetes/deployments/:namespace/:name', ({ params }) => {
    const d = cluster.deployment(params.namespace!, params.name!);
    if (!d) throw new ControlError(404, `no Deployment ${params.namespace}/${params.name}`);
    return d;
  });
}
