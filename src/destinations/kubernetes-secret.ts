// The Kubernetes Secret destination (issue 17): the record's credential patched into one Secret, under the
// target's own keys, and the named Deployments restarted so their pods read it.
//
// - Allow-lists, deny by default. The gateway's kubeconfig can usually write more than any one record should
//   reach (a shared gateway's service account often writes Secrets in many namespaces). So which Secrets a
//   record may name is the gateway owner's call: KEEPER_ROTATE_ALLOW_K8S_SECRETS, a comma list of
//   `namespace/name` globs (`team-a/*`, `*/app-creds`); unset or blank allows none. Deployments to restart must
//   be in the Secret's namespace and match KEEPER_ROTATE_ALLOW_K8S_RESTARTS (same format, also deny by
//   default). Both are checked when the destination is made, before any network call.
// - Only our keys. A JSON merge patch of `data` with the payload's keys: every other key (the application's
//   own) stays. The patch carries the resourceVersion the Secret was read at, so a Secret edited in between is
//   a 409 Conflict, and the delivery reads it again and retries (a bounded number of times): the decision to
//   write (the Secret's type fits) is always made on the Secret as it is.
// - Annotations, never values: `keeper-rotate/credential-id` (the credential's ID, not secret) tells a reader which
//   credential the Secret holds; `keeper-rotate/keys` lists the keys delivered, so `held` can read those values
//   back and fingerprint what is really there (a hand edit of a value shows as a different fingerprint).
// - A pull secret (payload.dockerConfigJson) is a `kubernetes.io/dockerconfigjson` Secret with `.dockerconfigjson`;
//   a Secret's type cannot change (the API refuses), so an existing Secret of another type is refused by name.
// - Restart: `kubectl rollout restart` patches the pod template's `kubectl.kubernetes.io/restartedAt` annotation
//   with the time, which makes the Deployment roll its pods (kubectl's rollout restart implementation,
//   k8s.io/kubectl pkg/polymorphichelpers/objectrestarter.go); this does the same.
// - check() writes nothing: SelfSubjectAccessReviews (get and patch the Secret, create it when allowed, patch
//   and get each Deployment: held() reads its delivery ID back) and a read of the Secret. A dry-run patch would need the payload, and it runs admission
//   webhooks; an access review answers exactly "may this identity do it", also for a Secret not yet created.
import { randomBytes } from 'node:crypto';
import { RotateError, type ErrorCode } from '../errors.js';
import type { Deadline } from '../deadline.js';
import { Secret } from '../secret.js';
import { globMatcher, readEntries } from '../targets/allow-list.js';
import type { DeliveryPayload, Destination } from './destination.js';
import type { ClusterApi, SecretObject } from './kubernetes/client.js';
import { entry, fingerprint } from './payload.js';

export const ALLOW_K8S_SECRETS = 'KEEPER_ROTATE_ALLOW_K8S_SECRETS';
export const ALLOW_K8S_RESTARTS = 'KEEPER_ROTATE_ALLOW_K8S_RESTARTS';
export const KIND = 'kubernetes-secret';
export const CREDENTIAL_ID_ANNOTATION = 'keeper-rotate/credential-id';
export const KEYS_ANNOTATION = 'keeper-rotate/keys';
/**
 * A random ID each delivery writes on the Secret and, once it has restarted them, on each named Deployment's pod
 * template: a Secret whose Deployments do not carry its ID was written but its pods were not restarted, so `held`
 * says it does not hold the credential and the next run delivers (and restarts) again before it retires anything.
 * Random and not derived from any value: a Deployment is readable by more people than its Secret.
 */
export const DELIVERY_ID_ANNOTATION = 'keeper-rotate/delivery-id';
export const RESTARTED_AT_ANNOTATION = 'kubectl.kubernetes.io/restartedAt';
export const DOCKER_CONFIG_JSON_TYPE = 'kubernetes.io/dockerconfigjson';
export const DOCKER_CONFIG_KEY = '.dockerconfigjson';
/** How many times a delivery re-reads the Secret after a concurrent edit (409 Conflict) before it gives up. */
export const CONFLICT_RETRIES = 3;

/** A namespace: an RFC 1123 label. */
const NAMESPACE = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
/** A Secret or Deployment name: an RFC 1123 subdomain. */
const OBJECT_NAME = /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
/** A Secret data key, as the API validates it. */
const DATA_KEY = /^[-._a-zA-Z0-9]{1,253}$/;
/** An allow-list entry: a namespace glob and a name glob (the name characters, and * and ?). */
const ENTRY = /^([a-z0-9*?-]{1,63})\/([a-z0-9.*?-]{1,253})$/;

export interface SecretRef {
  namespace: string;
  name: string;
}

export interface KubernetesSecretSpec extends SecretRef {
  /** Create the Secret when it does not exist (default: refuse, so a typo does not make a stray Secret). */
  create: boolean;
  /** Deployments in the Secret's namespace to restart after each delivery. */
  restart: string[];
}

export interface KubernetesSecretContext {
  /** Bounds each call (its timeout) when given. */
  deadline?: Deadline;
}

const safe = (text: string) => text.replace(/[\u0000-\u001f\u007f]/g, '?').slice(0, 300);

/** `namespace/name` from a record's text: both parts as the API allows them, nothing else. SETTING_INVALID otherwise. */
export function parseSecretRef(text: string): SecretRef {
  const t = text.trim();
  const m = /^([^/]+)\/([^/]+)$/.exec(t);
  if (!m || !NAMESPACE.test(m[1]!) || !OBJECT_NAME.test(m[2]!)) {
    throw new RotateError('SETTING_INVALID', `"${safe(t)}" is not a Kubernetes Secret as namespace/name (lower-case letters, digits and -, the name also .)`);
  }
  return { namespace: m[1]!, name: m[2]! };
}

interface AllowList {
  entries: string[];
  allows(namespace: string, name: string): boolean;
}

function allowList(env: NodeJS.ProcessEnv, variable: string): AllowList | undefined {
  const entries = readEntries(env, variable);
  if (!entries) return undefined;
  const matchers = entries.map((e) => {
    const m = ENTRY.exec(e);
    if (!m) throw new RotateError('SETTING_INVALID', `${variable}: "${safe(e)}" is not namespace/name (each may use the wildcards * and ?), e.g. team-a/* or team-a/app-creds`);
    const ns = globMatcher(m[1]!, false);
    const name = globMatcher(m[2]!, false);
    return (n: string, o: string) => ns(n) && name(o);
  });
  return { entries, allows: (namespace, name) => matchers.some((f) => f(namespace, name)) };
}

function notAllowed(variable: string, what: string, list: AllowList | undefined): RotateError {
  const why = list
    ? `is not in this gateway's allow-list ${variable} (${list.entries.join(', ')})`
    : `cannot be written: this gateway allows none until its owner lists namespace/name patterns in ${variable}`;
  return new RotateError('DESTINATION_NOT_ALLOWED', `${what} ${why}; the gateway owner sets it in the gateway's environment, where a record editor cannot`);
}

/**
 * Validates a Kubernetes Secret destination against the gateway owner's allow-lists, with no network call, and
 * returns it. Throws DESTINATION_NOT_ALLOWED (a list unset, or the Secret or a Deployment outside it) or
 * SETTING_INVALID (a name the API would not take, a malformed list).
 */
export function kubernetesSecretDestination(spec: KubernetesSecretSpec, env: NodeJS.ProcessEnv, ctx: KubernetesSecretContext = {}): Destination {
  const { namespace, name } = parseSecretRef(`${spec.namespace}/${spec.name}`);
  const restart = spec.restart.map((d) => d.trim());
  for (const d of restart) {
    if (!OBJECT_NAME.test(d)) throw new RotateError('SETTING_INVALID', `"${safe(d)}" is not a Deployment name (the Deployments to restart are named without their namespace: they are in the Secret's, ${namespace})`);
  }
  if (new Set(restart).size !== restart.length) throw new RotateError('SETTING_INVALID', 'a Deployment to restart is named twice');
  const secrets = allowList(env, ALLOW_K8S_SECRETS);
  if (!secrets?.allows(namespace, name)) throw notAllowed(ALLOW_K8S_SECRETS, `Kubernetes Secret ${namespace}/${name}`, secrets);
  if (restart.length > 0) {
    const restarts = allowList(env, ALLOW_K8S_RESTARTS);
    for (const d of restart) if (!restarts?.allows(namespace, d)) throw notAllowed(ALLOW_K8S_RESTARTS, `restarting Deployment ${namespace}/${d}`, restarts);
  }
  return new KubernetesSecretDestination({ namespace, name, create: spec.create, restart }, env, ctx);
}

/** kubectl's restartedAt: RFC 3339 to the second. */
function restartedAt(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const base64 = (v: string | Secret) => Buffer.from(v instanceof Secret ? v.reveal() : v, 'utf8').toString('base64');

class KubernetesSecretDestination implements Destination {
  readonly kind = KIND;
  #api: ClusterApi | undefined;

  constructor(
    private readonly spec: KubernetesSecretSpec,
    private readonly env: NodeJS.ProcessEnv,
    private readonly ctx: KubernetesSecretContext,
  ) {}

  describe(): string {
    const restarts = this.spec.restart.length ? `, then restart Deployment ${this.spec.restart.map((d) => `${this.spec.namespace}/${d}`).join(', ')}` : '';
    return `Kubernetes Secret ${this.spec.namespace}/${this.spec.name}${this.spec.create ? ' (created if missing)' : ''}${restarts}`;
  }

  get #where(): string {
    return `Kubernetes Secret ${this.spec.namespace}/${this.spec.name}`;
  }

  async #cluster(): Promise<ClusterApi> {
    if (this.#api) return this.#api;
    // The client is most of what this destination weighs: loaded only by a run that talks to a cluster.
    const { connectCluster } = await import('./kubernetes/client.js');
    this.#api = connectCluster(this.env, this.ctx.deadline);
    return this.#api;
  }

  /** Runs one call, turning any failure into a RotateError that names the step and the object. */
  async #call<T>(step: string, fn: (api: ClusterApi) => Promise<T>, what = this.#where): Promise<T> {
    const api = await this.#cluster();
    this.ctx.deadline?.check(`${step} of ${what}`);
    try {
      return await fn(api);
    } catch (err) {
      const { kubernetesError } = await import('./kubernetes/client.js');
      throw kubernetesError(`${what}: ${step}`, err);
    }
  }

  async check(): Promise<void> {
    const { namespace, name, create, restart } = this.spec;
    const denied: string[] = [];
    const ask = async (verb: string, group: string, resource: string, object?: string) => {
      const allowed = await this.#call(`access review (${verb})`, (api) => api.canI(verb, group, resource, namespace, object));
      if (!allowed) denied.push(`${verb} ${resource}${object ? ` ${namespace}/${object}` : ` in ${namespace}`}`);
    };
    await ask('get', '', 'secrets', name);
    await ask('patch', '', 'secrets', name);
    if (create) await ask('create', '', 'secrets');
    for (const d of restart) {
      await ask('patch', 'apps', 'deployments', d);
      // held() reads each one back (DELIVERY_ID_ANNOTATION).
      await ask('get', 'apps', 'deployments', d);
    }
    const api = await this.#cluster();
    if (denied.length > 0) {
      throw new RotateError('DELIVERY_FAILED', `${this.#where}: RBAC does not let ${api.identity} ${denied.join('; ')}`, { refused: true });
    }
    const existing = await this.#call('read', (a) => a.readSecret(namespace, name));
    if (!existing && !create) throw this.#missing();
  }

  #missing(): RotateError {
    return new RotateError('DELIVERY_FAILED', `${this.#where} does not exist, and the record does not allow creating it (k8s_create)`, { refused: true, status: 404 });
  }

  async held(): Promise<string | undefined> {
    const s = await this.#call('read', (api) => api.readSecret(this.spec.namespace, this.spec.name));
    if (!s) return undefined;
    const keys = (s.annotations[KEYS_ANNOTATION] ?? '').split(',').filter((k) => k !== '');
    if (keys.length === 0) return undefined;
    const docker = keys.includes(DOCKER_CONFIG_KEY);
    const entries = [];
    for (const k of keys) {
      if (k === DOCKER_CONFIG_KEY) continue;
      const v = s.data[k];
      if (v === undefined) return undefined;
      entries.push(entry(k, '', new Secret(Buffer.from(v, 'base64').toString('utf8'))));
    }
    const dc = s.data[DOCKER_CONFIG_KEY];
    if (docker && dc === undefined) return undefined;
    // Written but its pods not restarted (the restart failed, or the run stopped before it): not held yet.
    const id = s.annotations[DELIVERY_ID_ANNOTATION];
    for (const d of this.spec.restart) {
      const template = await this.#call('read', (api) => api.readDeploymentTemplateAnnotations(this.spec.namespace, d), `Deployment ${this.spec.namespace}/${d}`);
      if (!id || template?.[DELIVERY_ID_ANNOTATION] !== id) return undefined;
    }
    return fingerprint(entries, docker ? new Secret(Buffer.from(dc!, 'base64').toString('utf8')) : undefined);
  }

  async deliver(payload: DeliveryPayload): Promise<void> {
    const { namespace, name, create } = this.spec;
    const data: Record<string, string> = {};
    for (const e of payload.entries) {
      if (!DATA_KEY.test(e.key) || e.key === DOCKER_CONFIG_KEY) throw new RotateError('INTERNAL', `${payload.target}'s key "${safe(e.key)}" is not a Kubernetes Secret key`);
      data[e.key] = base64(e.value);
    }
    const keys = payload.entries.map((e) => e.key);
    if (payload.dockerConfigJson) {
      data[DOCKER_CONFIG_KEY] = base64(payload.dockerConfigJson);
      keys.push(DOCKER_CONFIG_KEY);
    }
    const type = payload.dockerConfigJson ? DOCKER_CONFIG_JSON_TYPE : undefined;
    const deliveryId = randomBytes(12).toString('base64url');
    const annotations = { [CREDENTIAL_ID_ANNOTATION]: payload.credentialId, [KEYS_ANNOTATION]: keys.join(','), [DELIVERY_ID_ANNOTATION]: deliveryId };
    let written = false;
    for (let attempt = 0; attempt <= CONFLICT_RETRIES && !written; attempt++) {
      const current = await this.#call('read', (api) => api.readSecret(namespace, name));
      if (!current) {
        if (!create) throw this.#missing();
        written = await this.#tryWrite('create', (api) => api.createSecret(namespace, { metadata: { name, namespace, annotations }, type: type ?? 'Opaque', data }), 'AlreadyExists');
        continue;
      }
      this.#checkType(current, type);
      written = await this.#tryWrite('patch', (api) => api.mergePatchSecret(namespace, name, { metadata: { resourceVersion: current.resourceVersion, annotations }, data }), 'Conflict');
    }
    if (!written) {
      throw new RotateError('DELIVERY_FAILED', `${this.#where} was changed by another writer ${CONFLICT_RETRIES + 1} times while this run wrote it; the next run delivers again`, { refused: true, status: 409 });
    }
    for (const d of this.spec.restart) {
      const body = { spec: { template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: restartedAt(), [DELIVERY_ID_ANNOTATION]: deliveryId } } } } };
      await this.#call('restart (patch of the pod template)', (api) => api.patchDeployment(namespace, d, body), `Deployment ${namespace}/${d}`);
    }
  }

  /** A write that may lose a race: false when it did (a concurrent create, or an edit since the read), to read again. */
  async #tryWrite(step: string, fn: (api: ClusterApi) => Promise<void>, raceReason: 'Conflict' | 'AlreadyExists'): Promise<boolean> {
    const { isAlreadyExists, isConflict } = await import('./kubernetes/client.js');
    const api = await this.#cluster();
    this.ctx.deadline?.check(`${step} of ${this.#where}`);
    try {
      await fn(api);
      return true;
    } catch (err) {
      if (raceReason === 'Conflict' ? isConflict(err) : isAlreadyExists(err)) return false;
      const { kubernetesError } = await import('./kubernetes/client.js');
      throw kubernetesError(`${this.#where}: ${step}`, err);
    }
  }

  #checkType(current: SecretObject, wanted: string | undefined): void {
    const code: ErrorCode = 'DELIVERY_FAILED';
    if (wanted && current.type !== wanted) {
      throw new RotateError(code, `${this.#where} is of type ${safe(current.type)}; a registry login needs a ${wanted} Secret, and a Secret's type cannot change (name another Secret, or have it deleted)`, { refused: true });
    }
    if (!wanted && current.type === DOCKER_CONFIG_JSON_TYPE) {
      throw new RotateError(code, `${this.#where} is a ${DOCKER_CONFIG_JSON_TYPE} pull secret; this credential is not a registry login (name another Secret)`, { refused: true });
    }
  }
}
