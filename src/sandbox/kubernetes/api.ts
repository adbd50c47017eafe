// The `kubernetes` sandbox service: the subset of the Kubernetes API server that a Secret destination uses,
// over HTTPS with bearer tokens, as @kubernetes/client-node sends it:
//   core/v1 Secrets: get, create, replace (PUT), patch (JSON patch, merge patch, strategic merge patch);
//   apps/v1 Deployments: get, patch (a restart is a patch of the pod template's annotations);
//   authorization.k8s.io/v1 SelfSubjectAccessReviews: create (the "can I?" question, answered by RBAC);
//   the legacy discovery documents kubectl reads first (/version, /api, /apis, /api/v1, /apis/<group>/<version>).
// The order of checks follows the server's handler chain: authentication (401), Priority and Fairness (429),
// authorization (403, before anything about the object is revealed), then the object (404, 409, 422) and
// `?dryRun=All`, which runs every check and stores nothing
// (https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run).
// API reference: https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/secret-v1/,
// .../workload-resources/deployment-v1/, .../authorization-resources/self-subject-access-review-v1/.
import { type BudgetLimit, RequestBudget, type Reply, type Route, type SandboxRequest, type SandboxService, json } from '../service.js';
import type { Budget } from '../rate-limit.js';
import { DEFAULT_SECRET_TYPE, type Identity, type JsonObject, type KubernetesCluster } from './cluster.js';
import { ACCEPTED_PATCH_TYPES, type Json, PATCH_TYPES, PatchError, type PatchType, applyPatch } from './patch.js';
import {
  DEPLOYMENTS,
  type FieldError,
  NAMESPACES,
  type ResourceKind,
  SECRETS,
  alreadyExists,
  badRequest,
  conflict,
  forbidden,
  invalid,
  methodNotAllowed,
  notFound,
  status,
  tooManyRequests,
  unauthorized,
  unsupportedMediaType,
} from './status.js';

export const KUBERNETES_SERVICE = 'kubernetes';
export const KUBERNETES_OPERATIONS = [
  'GetSecret',
  'CreateSecret',
  'ReplaceSecret',
  'PatchSecret',
  'GetDeployment',
  'PatchDeployment',
  'CreateSelfSubjectAccessReview',
  'Discovery',
] as const;
export type KubernetesOperation = (typeof KUBERNETES_OPERATIONS)[number];

/**
 * Priority and Fairness shares the server's concurrency among flows, not a request rate; a per-user token bucket
 * is the sandbox's stand-in: a burst of 50, 20 a second after that, far above what one delivery sends, so only a
 * test that lowers it (PUT /budgets/kubernetes) sees a 429.
 */
export const KUBERNETES_DEFAULT_BUDGET: Budget = { burst: 50, perSecond: 20 };

/** The Secret types whose data the server checks (pkg/apis/core/validation ValidateSecret). */
const DOCKER_CONFIG_JSON = 'kubernetes.io/dockerconfigjson';
const DOCKER_CONFIG_KEY = '.dockerconfigjson';
const MAX_SECRET_BYTES = 1024 * 1024;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

/** The index Go's base64.StdEncoding reports for the first bad byte, or -1 when the text decodes. */
export function base64Error(text: string): number {
  const clean = text.replace(/[\r\n]/g, '');
  const bad = clean.search(/[^A-Za-z0-9+/=]/);
  if (bad >= 0) return bad;
  const pad = clean.indexOf('=');
  if (pad >= 0 && (!/^=*$/.test(clean.slice(pad)) || clean.length - pad > 2)) return pad;
  if (clean.length % 4 !== 0) return clean.length - (clean.length % 4);
  return -1;
}

function parseJson(body: Buffer): { ok: true; value: Json } | { ok: false; message: string } {
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) as Json };
  } catch (err) {
    return { ok: false, message: err instanceof Error ? err.message : String(err) };
  }
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function mediaType(req: SandboxRequest): string {
  return String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function bearer(req: SandboxRequest): string | undefined {
  const h = req.headers.authorization;
  const m = typeof h === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
  return m?.[1];
}

function metadataOf(o: JsonObject): JsonObject {
  return isObject(o.metadata) ? o.metadata : {};
}

/** `?dryRun=All` or nothing; any other value is refused (the only dry-run directive there is). */
function dryRunOf(req: SandboxRequest): { dryRun: boolean } | Reply {
  const values = req.query.getAll('dryRun');
  if (values.length === 0) return { dryRun: false };
  if (values.every((v) => v === 'All')) return { dryRun: true };
  return badRequest(`dryRun: Unsupported value: "${values.find((v) => v !== 'All')}": supported values: "All"`);
}

type Match =
  | { kind: 'secrets'; namespace: string; name: string | undefined }
  | { kind: 'deployments'; namespace: string; name: string | undefined }
  | { kind: 'ssar' }
  | { kind: 'discovery'; path: string }
  | { kind: 'unknown' };

function match(path: string): Match {
  const p = path.replace(/\/+$/, '') || '/';
  let m = /^\/api\/v1\/namespaces\/([^/]+)\/secrets(?:\/([^/]+))?$/.exec(p);
  if (m) return { kind: 'secrets', namespace: decodeURIComponent(m[1]!), name: m[2] === undefined ? undefined : decodeURIComponent(m[2]) };
  m = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/deployments(?:\/([^/]+))?$/.exec(p);
  if (m) return { kind: 'deployments', namespace: decodeURIComponent(m[1]!), name: m[2] === undefined ? undefined : decodeURIComponent(m[2]) };
  if (p === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews') return { kind: 'ssar' };
  if (DISCOVERY[p]) return { kind: 'discovery', path: p };
  return { kind: 'unknown' };
}

const resourceList = (groupVersion: string, resources: Array<[string, string, string[], boolean]>) => ({
  kind: 'APIResourceList',
  apiVersion: 'v1',
  groupVersion,
  resources: resources.map(([name, kind, verbs, namespaced]) => ({ name, singularName: kind.toLowerCase(), namespaced, kind, verbs })),
});

/** The legacy discovery documents, enough for kubectl to map `secret` and `deployment` to their paths. */
const DISCOVERY: Record<string, unknown> = {
  '/version': { major: '1', minor: '31', gitVersion: 'v1.31.0-sandbox', platform: 'linux/amd64' },
  '/api': { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }] },
  '/apis': {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: ['apps', 'authorization.k8s.io'].map((name) => ({ name, versions: [{ groupVersion: `${name}/v1`, version: 'v1' }], preferredVersion: { groupVersion: `${name}/v1`, version: 'v1' } })),
  },
  '/api/v1': resourceList('v1', [
    ['namespaces', 'Namespace', ['get', 'list'], false],
    ['secrets', 'Secret', ['create', 'get', 'patch', 'update'], true],
  ]),
  '/apis/apps/v1': resourceList('apps/v1', [['deployments', 'Deployment', ['get', 'patch'], true]]),
  '/apis/authorization.k8s.io/v1': resourceList('authorization.k8s.io/v1', [['selfsubjectaccessreviews', 'SelfSubjectAccessReview', ['create'], false]]),
};

export interface KubernetesServiceOptions {
  /** The per-user budget (true: KUBERNETES_DEFAULT_BUDGET). */
  budget?: Budget | true;
}

export class KubernetesService implements SandboxService {
  readonly name = KUBERNETES_SERVICE;
  readonly budget: RequestBudget;

  constructor(
    readonly cluster: KubernetesCluster,
    options: KubernetesServiceOptions = {},
  ) {
    const limits: BudgetLimit[] = [{ name: 'requests', budget: options.budget === undefined || options.budget === true ? KUBERNETES_DEFAULT_BUDGET : options.budget }];
    this.budget = new RequestBudget(limits);
  }

  throttleReply(retryAfterSeconds: number): Reply {
    return tooManyRequests(retryAfterSeconds);
  }

  route(req: SandboxRequest): Route | undefined {
    const m = match(req.path);
    const token = bearer(req);
    const id = token === undefined ? undefined : this.cluster.identify(token);
    // An unauthenticated request is refused before anything else, whatever it asked for, and is charged to no one.
    const guard = (operation: string, handle: (id: Identity) => Reply): Route =>
      id ? { operation, client: id.user, handle: () => handle(id) } : { operation, handle: () => unauthorized() };
    switch (m.kind) {
      case 'secrets': {
        if (m.name === undefined) {
          if (req.method === 'POST') return guard('CreateSecret', (who) => this.#createSecret(req, who, m.namespace));
          return guard('CreateSecret', () => methodNotAllowed('POST', SECRETS));
        }
        const name = m.name;
        if (req.method === 'GET') return guard('GetSecret', (who) => this.#getSecret(who, m.namespace, name));
        if (req.method === 'PUT') return guard('ReplaceSecret', (who) => this.#replaceSecret(req, who, m.namespace, name));
        if (req.method === 'PATCH') return guard('PatchSecret', (who) => this.#patchSecret(req, who, m.namespace, name));
        return guard('GetSecret', () => methodNotAllowed('GET, PUT, PATCH', SECRETS));
      }
      case 'deployments': {
        const name = m.name;
        if (name === undefined) return guard('GetDeployment', () => methodNotAllowed('GET', DEPLOYMENTS));
        if (req.method === 'GET') return guard('GetDeployment', (who) => this.#getDeployment(who, m.namespace, name));
        if (req.method === 'PATCH') return guard('PatchDeployment', (who) => this.#patchDeployment(req, who, m.namespace, name));
        return guard('GetDeployment', () => methodNotAllowed('GET, PATCH', DEPLOYMENTS));
      }
      case 'ssar':
        return guard('CreateSelfSubjectAccessReview', (who) => (req.method === 'POST' ? this.#accessReview(req, who) : methodNotAllowed('POST', { resource: 'selfsubjectaccessreviews', group: 'authorization.k8s.io', kind: 'SelfSubjectAccessReview' })));
      case 'discovery':
        return guard('Discovery', () => json(200, DISCOVERY[m.path]));
      default:
        return guard('Discovery', () => status(404, 'NotFound', 'the server could not find the requested resource', { causes: [{ reason: 'UnexpectedServerResponse', message: '404 page not found', field: '' }] }));
    }
  }

  #deny(id: Identity, r: ResourceKind, verb: string, namespace: string, name: string): Reply | undefined {
    const decision = this.cluster.authorize(id, { namespace, group: r.group, resource: r.resource, verb, name });
    return decision.allowed ? undefined : forbidden(r, name, id.user, verb, namespace);
  }

  #getSecret(id: Identity, namespace: string, name: string): Reply {
    const denied = this.#deny(id, SECRETS, 'get', namespace, name);
    if (denied) return denied;
    const s = this.cluster.secret(namespace, name);
    return s ? json(200, s) : notFound(SECRETS, name);
  }

  /**
   * A Secret as the server decodes it from a create or replace body: `data` values must be base64 (else the
   * decoder's 400), `stringData` is folded into `data` and dropped. Returns the object or the error reply.
   */
  #decodeSecret(body: Json, asPatch: { patched: string } | undefined): { secret: JsonObject } | { reply: Reply } {
    if (!isObject(body)) return { reply: badRequest('Secret in version "v1" cannot be handled as a Secret: json: cannot unmarshal into Go value of type v1.Secret') };
    const data = body.data ?? {};
    const stringData = body.stringData ?? {};
    const fail = (detail: string): { reply: Reply } =>
      asPatch
        ? // A patch whose result does not decode: the patcher's own Invalid error, which quotes the whole patched
          // object as the field `patch`'s value (apiserver endpoints/handlers/patch.go, jsonPatcher and
          // smpPatcher: field.Invalid(field.NewPath("patch"), string(patchedObjJS), err.Error())). Every other
          // key's base64 value is in it: a client must never pass this message on.
          { reply: status(422, 'Invalid', ` "" is invalid: patch: Invalid value: ${JSON.stringify(asPatch.patched)}: ${detail}`, { kind: '', causes: [{ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(asPatch.patched)}: ${detail}`, field: 'patch' }] }) }
        : { reply: badRequest(`Secret in version "v1" cannot be handled as a Secret: ${detail}`) };
    if (!isObject(data) || !isObject(stringData)) return fail('json: cannot unmarshal into Go struct field Secret.data of type map[string][]uint8');
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(data)) {
      if (v === null) continue;
      if (typeof v !== 'string') return fail(`json: cannot unmarshal ${Array.isArray(v) ? 'array' : typeof v} into Go struct field Secret.data of type []uint8`);
      const at = base64Error(v);
      if (at >= 0) return fail(`illegal base64 data at input byte ${at}`);
      out[k] = v.replace(/[\r\n]/g, '');
    }
    for (const [k, v] of Object.entries(stringData)) {
      if (typeof v !== 'string') return fail(`json: cannot unmarshal ${typeof v} into Go struct field Secret.stringData of type string`);
      out[k] = Buffer.from(v, 'utf8').toString('base64');
    }
    const secret: JsonObject = { ...body, data: out };
    delete secret.stringData;
    if (secret.type === undefined || secret.type === '') secret.type = DEFAULT_SECRET_TYPE;
    return { secret };
  }

  /** ValidateSecret (and ValidateSecretUpdate when `old` is given): field errors, none when the Secret is valid. */
  #validateSecret(s: JsonObject, old: JsonObject | undefined): FieldError[] {
    const errors: FieldError[] = [];
    const data = (s.data ?? {}) as Record<string, string>;
    let size = 0;
    for (const [k, v] of Object.entries(data)) {
      if (!CONFIG_KEY.test(k) || k.length > 253 || k === '.' || k === '..') {
        errors.push({
          field: `data[${k}]`,
          type: 'FieldValueInvalid',
          text: `Invalid value: ${JSON.stringify(k)}: a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`,
        });
      }
      size += Buffer.from(v, 'base64').length;
    }
    if (size > MAX_SECRET_BYTES) errors.push({ field: 'data', type: 'FieldValueTooLong', text: `Too long: must have at most ${MAX_SECRET_BYTES} bytes` });
    if (s.type === DOCKER_CONFIG_JSON) {
      const v = data[DOCKER_CONFIG_KEY];
      if (v === undefined) errors.push({ field: `data[${DOCKER_CONFIG_KEY}]`, type: 'FieldValueRequired', text: 'Required value' });
      else {
        try {
          JSON.parse(Buffer.from(v, 'base64').toString('utf8'));
        } catch {
          // The server never echoes a Secret's value in this error: "<secret contents redacted>".
          errors.push({ field: `data[${DOCKER_CONFIG_KEY}]`, type: 'FieldValueInvalid', text: 'Invalid value: "<secret contents redacted>": invalid character looking for beginning of value' });
        }
      }
    }
    if (old) {
      if (s.type !== old.type) errors.push({ field: 'type', type: 'FieldValueInvalid', text: `Invalid value: ${JSON.stringify(s.type)}: field is immutable` });
      if (old.immutable === true) {
        if (JSON.stringify(s.data ?? {}) !== JSON.stringify(old.data ?? {})) errors.push({ field: 'data', type: 'FieldValueForbidden', text: 'Forbidden: field is immutable when `immutable` is set' });
        if (s.immutable !== true) errors.push({ field: 'immutable', type: 'FieldValueForbidden', text: 'Forbidden: field is immutable when `immutable` is set' });
      }
    }
    return errors;
  }

  /** The metadata a client may not change; the server keeps its own (uid, creationTimestamp) and takes a new resourceVersion. */
  #stored(s: JsonObject, namespace: string, name: string, old: JsonObject | undefined): JsonObject {
    const given = metadataOf(s);
    const kept = old ? metadataOf(old) : this.cluster.newMetadata(namespace, name);
    const metadata: JsonObject = { ...given, name, namespace, uid: kept.uid!, creationTimestamp: kept.creationTimestamp!, resourceVersion: this.cluster.nextResourceVersion() };
    for (const k of ['labels', 'annotations'] as const) if (metadata[k] === null) delete metadata[k];
    return { ...s, kind: 'Secret', apiVersion: 'v1', metadata };
  }

  #createSecret(req: SandboxRequest, id: Identity, namespace: string): Reply {
    const denied = this.#deny(id, SECRETS, 'create', namespace, '');
    if (denied) return denied;
    const dry = dryRunOf(req);
    if ('status' in dry) return dry;
    if (mediaType(req) !== 'application/json') return unsupportedMediaType(['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf']);
    const parsed = parseJson(req.body);
    if (!parsed.ok) return badRequest(`the object provided is unrecognized (must be of type Secret): ${parsed.message}`);
    const decoded = this.#decodeSecret(parsed.value, undefined);
    if ('reply' in decoded) return decoded.reply;
    const given = metadataOf(decoded.secret);
    const name = typeof given.name === 'string' ? given.name : '';
    if (name === '') return invalid(SECRETS, '', [{ field: 'metadata.name', type: 'FieldValueRequired', text: 'Required value: name or generateName is required' }]);
    if (given.namespace !== undefined && given.namespace !== namespace) return badRequest('the namespace of the provided object does not match the namespace sent on the request');
    if (!this.cluster.namespaces.has(namespace)) return notFound(NAMESPACES, namespace);
    const errors = this.#validateSecret(decoded.secret, undefined);
    if (errors.length) return invalid(SECRETS, name, errors);
    if (this.cluster.secret(namespace, name)) return alreadyExists(SECRETS, name);
    const stored = this.#stored(decoded.secret, namespace, name, undefined);
    if (!dry.dryRun) this.cluster.putSecret(namespace, name, stored);
    return json(201, stored);
  }

  #replaceSecret(req: SandboxRequest, id: Identity, namespace: string, name: string): Reply {
    const denied = this.#deny(id, SECRETS, 'update', namespace, name);
    if (denied) return denied;
    const dry = dryRunOf(req);
    if ('status' in dry) return dry;
    if (mediaType(req) !== 'application/json') return unsupportedMediaType(['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf']);
    const parsed = parseJson(req.body);
    if (!parsed.ok) return badRequest(`the object provided is unrecognized (must be of type Secret): ${parsed.message}`);
    const decoded = this.#decodeSecret(parsed.value, undefined);
    if ('reply' in decoded) return decoded.reply;
    const given = metadataOf(decoded.secret);
    if (given.name !== name) return badRequest(`the name of the object (${String(given.name ?? '')}) does not match the name on the URL (${name})`);
    const old = this.cluster.secret(namespace, name);
    // An update of a missing Secret is a 404 (Secrets do not allow create-on-update).
    if (!old) return notFound(SECRETS, name);
    const rv = given.resourceVersion;
    // PUT without a resourceVersion is an unconditional update; with one, it must be the stored one.
    if (rv !== undefined && rv !== '' && rv !== metadataOf(old).resourceVersion) return conflict(SECRETS, name);
    const errors = this.#validateSecret(decoded.secret, old);
    if (errors.length) return invalid(SECRETS, name, errors);
    const stored = this.#stored(decoded.secret, namespace, name, old);
    if (!dry.dryRun) this.cluster.putSecret(namespace, name, stored);
    return json(200, stored);
  }

  #patchType(req: SandboxRequest): PatchType | Reply {
    const type = mediaType(req);
    return (PATCH_TYPES as readonly string[]).includes(type) ? (type as PatchType) : unsupportedMediaType(ACCEPTED_PATCH_TYPES);
  }

  #applyPatch(req: SandboxRequest, type: PatchType, current: JsonObject): { patched: JsonObject } | { reply: Reply } {
    const parsed = parseJson(req.body);
    if (!parsed.ok) return { reply: badRequest(`error decoding patch: ${parsed.message}`) };
    try {
      const patched = applyPatch(type, current, parsed.value);
      if (!isObject(patched)) return { reply: badRequest('the patched object is not a JSON object') };
      return { patched };
    } catch (err) {
      if (err instanceof PatchError) return { reply: status(422, 'Invalid', err.message) };
      throw err;
    }
  }

  #patchSecret(req: SandboxRequest, id: Identity, namespace: string, name: string): Reply {
    const denied = this.#deny(id, SECRETS, 'patch', namespace, name);
    if (denied) return denied;
    const dry = dryRunOf(req);
    if ('status' in dry) return dry;
    const type = this.#patchType(req);
    if (typeof type !== 'string') return type;
    const old = this.cluster.secret(namespace, name);
    if (!old) return notFound(SECRETS, name);
    const applied = this.#applyPatch(req, type, old);
    if ('reply' in applied) return applied.reply;
    const decoded = this.#decodeSecret(applied.patched, { patched: JSON.stringify(applied.patched) });
    if ('reply' in decoded) return decoded.reply;
    const meta = metadataOf(decoded.secret);
    if (meta.name !== name) return invalid(SECRETS, name, [{ field: 'metadata.name', type: 'FieldValueInvalid', text: `Invalid value: ${JSON.stringify(meta.name)}: field is immutable` }]);
    // A patch that names a resourceVersion is a precondition: the object must still be at it.
    if (meta.resourceVersion !== metadataOf(old).resourceVersion) return conflict(SECRETS, name);
    const errors = this.#validateSecret(decoded.secret, old);
    if (errors.length) return invalid(SECRETS, name, errors);
    const stored = this.#stored(decoded.secret, namespace, name, old);
    if (!dry.dryRun) this.cluster.putSecret(namespace, name, stored);
    return json(200, stored);
  }

  #getDeployment(id: Identity, namespace: string, name: string): Reply {
    const denied = this.#deny(id, DEPLOYMENTS, 'get', namespace, name);
    if (denied) return denied;
    const d = this.cluster.deployment(namespace, name);
    return d ? json(200, d) : notFound(DEPLOYMENTS, name);
  }

  #patchDeployment(req: SandboxRequest, id: Identity, namespace: string, name: string): Reply {
    const denied = this.#deny(id, DEPLOYMENTS, 'patch', namespace, name);
    if (denied) return denied;
    const dry = dryRunOf(req);
    if ('status' in dry) return dry;
    const type = this.#patchType(req);
    if (typeof type !== 'string') return type;
    const old = this.cluster.deployment(namespace, name);
    if (!old) return notFound(DEPLOYMENTS, name);
    const applied = this.#applyPatch(req, type, old);
    if ('reply' in applied) return applied.reply;
    const d = applied.patched;
    const meta = metadataOf(d);
    if (meta.resourceVersion !== metadataOf(old).resourceVersion) return conflict(DEPLOYMENTS, name);
    const errors: FieldError[] = [];
    if (meta.name !== name) errors.push({ field: 'metadata.name', type: 'FieldValueInvalid', text: `Invalid value: ${JSON.stringify(meta.name)}: field is immutable` });
    const spec = isObject(d.spec) ? d.spec : {};
    const oldSpec = old.spec as JsonObject;
    if (JSON.stringify(spec.selector) !== JSON.stringify(oldSpec.selector)) errors.push({ field: 'spec.selector', type: 'FieldValueInvalid', text: `Invalid value: ${JSON.stringify(spec.selector)}: field is immutable` });
    const template = isObject(spec.template) ? spec.template : {};
    const annotations = isObject(template.metadata) ? template.metadata.annotations : undefined;
    if (annotations !== undefined && annotations !== null && (!isObject(annotations) || !Object.values(annotations).every((v) => typeof v === 'string'))) {
      errors.push({ field: 'spec.template.metadata.annotations', type: 'FieldValueInvalid', text: 'Invalid value: "": annotation values must be strings' });
    }
    if (errors.length) return invalid(DEPLOYMENTS, name, errors);
    const changed = JSON.stringify(spec) !== JSON.stringify(oldSpec);
    const generation = Number(metadataOf(old).generation ?? 1) + (changed ? 1 : 0);
    const oldMeta = metadataOf(old);
    const stored: JsonObject = {
      ...d,
      kind: 'Deployment',
      apiVersion: 'apps/v1',
      metadata: { ...meta, name, namespace, uid: oldMeta.uid!, creationTimestamp: oldMeta.creationTimestamp!, generation, resourceVersion: this.cluster.nextResourceVersion() },
      // The controller's view is not simulated: status is the server's to write, and a patch of it is ignored.
      status: old.status!,
    };
    if (!dry.dryRun) this.cluster.putDeployment(namespace, name, stored);
    return json(200, stored);
  }

  #accessReview(req: SandboxRequest, id: Identity): Reply {
    const dry = dryRunOf(req);
    if ('status' in dry) return dry;
    if (mediaType(req) !== 'application/json') return unsupportedMediaType(['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf']);
    const parsed = parseJson(req.body);
    if (!parsed.ok || !isObject(parsed.value)) return badRequest('the object provided is unrecognized (must be of type SelfSubjectAccessReview)');
    const spec = isObject(parsed.value.spec) ? parsed.value.spec : {};
    const ra = spec.resourceAttributes;
    const kind: ResourceKind = { resource: 'selfsubjectaccessreviews', group: 'authorization.k8s.io', kind: 'SelfSubjectAccessReview' };
    if (!isObject(ra) || spec.nonResourceAttributes !== undefined) {
      return invalid(kind, '', [{ field: 'spec.resourceAttributes', type: 'FieldValueInvalid', text: 'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified' }]);
    }
    const str = (v: Json | undefined) => (typeof v === 'string' ? v : '');
    const decision = this.cluster.authorize(id, { namespace: str(ra.namespace), group: str(ra.group), resource: str(ra.resource), verb: str(ra.verb), name: str(ra.name) });
    return json(201, {
      kind: 'SelfSubjectAccessReview',
      apiVersion: 'authorization.k8s.io/v1',
      metadata: { creationTimestamp: null },
      spec,
      status: decision.allowed ? { allowed: true, reason: decision.reason } : { allowed: false },
    });
  }
}
