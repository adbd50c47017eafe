// The Kubernetes calls a Secret destination makes, through @kubernetes/client-node's generated clients: read,
// create and patch a Secret, patch a Deployment's pod template, ask a SelfSubjectAccessReview. Loaded by the
// destination with `await import()` only when it first talks to the cluster (a rejected record, --help or a run
// without Kubernetes destinations never loads the client). Every failure becomes a RotateError (DELIVERY_FAILED)
// whose message is built from names and the Status reason only: a Status message can quote the object it
// refused (the patch handler's Invalid error quotes the whole patched Secret, every key's base64 value in it),
// so only the messages of refusals that name things and nothing else (401, 403, 404, 409, 429) are passed on,
// scrubbed and cut to one line.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import {
  ApiException,
  AppsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  type RequestContext,
  ServerConfiguration,
  type V1Secret,
  createConfiguration,
  setHeaderOptions,
  wrapHttpLibrary,
} from '@kubernetes/client-node';
import { DEFAULT_REQUEST_TIMEOUT_MS, type Deadline } from '../../deadline.js';
import { RotateError, describe } from '../../errors.js';
import { RoutingAgent } from '../../http/agent.js';
import { escapeControls } from '../../log.js';
import { redact } from '../../secret.js';
import { KubernetesHttp } from './http.js';

/** Where a pod's service account token is mounted (in-cluster configuration). */
const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface SecretObject {
  type: string;
  resourceVersion: string;
  data: Record<string, string>;
  annotations: Record<string, string>;
}

export interface ClusterApi {
  /** Who the cluster will see, for messages: the kubeconfig's user name and server. */
  readonly identity: string;
  readSecret(namespace: string, name: string): Promise<SecretObject | undefined>;
  createSecret(namespace: string, body: V1Secret): Promise<void>;
  /** A JSON merge patch; with `resourceVersion` in its metadata, a 409 if the Secret changed since. */
  mergePatchSecret(namespace: string, name: string, body: object): Promise<void>;
  /** A strategic merge patch of a Deployment, as `kubectl rollout restart` sends it. */
  patchDeployment(namespace: string, name: string, body: object): Promise<void>;
  /** A Deployment's pod-template annotations, or undefined when it does not exist. */
  readDeploymentTemplateAnnotations(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** Whether RBAC lets this user do `verb` (a SelfSubjectAccessReview: writes nothing). */
  canI(verb: string, group: string, resource: string, namespace: string, name?: string): Promise<boolean>;
}

/** One line from text an API server wrote: scrubbed, no control characters, short. */
export function clip(text: string, max = 240): string {
  return escapeControls(redact(text).replace(/\s+/g, ' ')).slice(0, max);
}

interface StatusBody {
  reason?: string;
  message?: string;
  details?: { causes?: Array<{ field?: string }> };
}

function statusOf(body: unknown): StatusBody | undefined {
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as unknown;
      return parsed && typeof parsed === 'object' ? (parsed as StatusBody) : undefined;
    } catch {
      return undefined;
    }
  }
  return body && typeof body === 'object' ? (body as StatusBody) : undefined;
}

/** Statuses whose Status message names objects and users only, never the content of what was sent. */
const NAMING_STATUSES = new Set([401, 403, 404, 409, 429]);

/**
 * A client failure as a RotateError. A reply the server explains with a 4xx refused the request: nothing was
 * written (`refused`). No reply, or a 5xx, leaves the outcome unknown.
 */
export function kubernetesError(what: string, err: unknown): RotateError {
  if (err instanceof RotateError) return err;
  if (err instanceof ApiException) {
    const code = (err as ApiException<unknown>).code;
    const s = statusOf((err as ApiException<unknown>).body);
    const reason = typeof s?.reason === 'string' ? clip(s.reason, 40) : '';
    let detail: string;
    if (code === 401) detail = 'the cluster did not accept the kubeconfig\'s credentials';
    else if (code === 429) detail = 'the API server is throttling this client (Priority and Fairness); the next run retries';
    else if (NAMING_STATUSES.has(code) && typeof s?.message === 'string') detail = clip(s.message);
    else {
      // Invalid, BadRequest and the like can quote what was sent: only the fields they name are kept.
      const fields = (s?.details?.causes ?? []).map((c) => (typeof c.field === 'string' ? clip(c.field, 60) : '')).filter(Boolean);
      detail = fields.length ? `the API server refused the request (fields: ${[...new Set(fields)].join(', ')})` : 'the API server refused the request';
    }
    const refused = code >= 400 && code < 500 && code !== 408;
    return new RotateError('DELIVERY_FAILED', `${what}: HTTP ${code}${reason ? ` ${reason}` : ''}: ${detail}`, { refused, status: code });
  }
  const e = err as { name?: string; code?: string };
  const timeout = e?.name === 'TimeoutError' || e?.name === 'AbortError';
  return new RotateError('DELIVERY_FAILED', `${what}: ${timeout ? 'no reply in time' : 'no reply'}: ${describe(err)}`, { cause: err });
}

function reasonOf(err: unknown): string | undefined {
  if (!(err instanceof ApiException)) return undefined;
  return statusOf((err as ApiException<unknown>).body)?.reason;
}

export function isConflict(err: unknown): boolean {
  return err instanceof ApiException && (err as ApiException<unknown>).code === 409 && reasonOf(err) === 'Conflict';
}

export function isAlreadyExists(err: unknown): boolean {
  return err instanceof ApiException && (err as ApiException<unknown>).code === 409 && reasonOf(err) === 'AlreadyExists';
}

/**
 * The kubeconfig the gateway host gives: the first file of KUBECONFIG that exists (kubectl merges them all; one
 * file is what a gateway host has), else the pod's service account when running in a cluster, else
 * ~/.kube/config. A file that cannot be read is named, never quoted (it holds tokens).
 */
export function loadKubeConfig(env: NodeJS.ProcessEnv): { kc: KubeConfig; source: string } {
  const kc = new KubeConfig();
  const load = (path: string) => {
    try {
      kc.loadFromFile(path);
    } catch (err) {
      throw new RotateError('DELIVERY_FAILED', `the kubeconfig ${path} cannot be read (${(err as Error)?.name ?? 'error'})`, { refused: true });
    }
    return { kc, source: path };
  };
  const listed = (env.KUBECONFIG ?? '').split(delimiter).filter((p) => p.trim() !== '');
  if (listed.length > 0) {
    const path = listed.find((p) => existsSync(p));
    if (!path) throw new RotateError('DELIVERY_FAILED', `KUBECONFIG names no file that exists (${listed.join(delimiter)})`, { refused: true });
    return load(path);
  }
  if (env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN)) {
    kc.loadFromCluster();
    return { kc, source: "the pod's service account" };
  }
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return load(home);
  throw new RotateError('DELIVERY_FAILED', `no kubeconfig: set KUBECONFIG in the gateway's environment, or run the gateway in the cluster with a service account`, { refused: true });
}

const asMap = (v: unknown): Record<string, string> => (v && typeof v === 'object' ? (v as Record<string, string>) : {});

export function connectCluster(env: NodeJS.ProcessEnv, deadline: Deadline | undefined): ClusterApi {
  const { kc, source } = loadKubeConfig(env);
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster) throw new RotateError('DELIVERY_FAILED', `the kubeconfig (${source}) has no current context`, { refused: true });
  // The kubeconfig's own proxy would be the client's agent, which this module replaces (http.ts says why).
  if (cluster.proxyUrl) throw new RotateError('DELIVERY_FAILED', `the kubeconfig (${source}) sets proxy-url for its cluster, which keeper-rotate does not use: set HTTPS_PROXY and NO_PROXY in the gateway's environment instead`, { refused: true });
  const agent = new RoutingAgent({ keepAlive: true, maxSockets: 4 });
  const http = new KubernetesHttp(agent, () => (deadline ? deadline.timeout() : DEFAULT_REQUEST_TIMEOUT_MS));
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    // The client's own authentication step (tokens, exec plugins, client certificates), which also puts the
    // cluster's TLS options on the request for http.ts to carry.
    authMethods: { default: { getName: () => 'kubeconfig', applySecurityAuthentication: (context: RequestContext) => kc.applySecurityAuthentication(context) } },
    httpApi: wrapHttpLibrary(http),
  });
  const core = new CoreV1Api(configuration);
  const apps = new AppsV1Api(configuration);
  const authz = new AuthorizationV1Api(configuration);
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  const strategic = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
  return {
    identity: `${user?.name ?? 'the kubeconfig user'} at ${cluster.server}`,
    async readSecret(namespace, name) {
      try {
        const s = await core.readNamespacedSecret({ name, namespace });
        return { type: s.type ?? 'Opaque', resourceVersion: s.metadata?.resourceVersion ?? '', data: asMap(s.data), annotations: asMap(s.metadata?.annotations) };
      } catch (err) {
        if (err instanceof ApiException && (err as ApiException<unknown>).code === 404) return undefined;
        throw err;
      }
    },
    async createSecret(namespace, body) {
      await core.createNamespacedSecret({ namespace, body });
    },
    async mergePatchSecret(namespace, name, body) {
      await core.patchNamespacedSecret({ name, namespace, body }, merge);
    },
    async patchDeployment(namespace, name, body) {
      await apps.patchNamespacedDeployment({ name, namespace, body }, strategic);
    },
    async readDeploymentTemplateAnnotations(namespace, name) {
      try {
        const d = await apps.readNamespacedDeployment({ name, namespace });
        return asMap(d.spec?.template?.metadata?.annotations);
      } catch (err) {
        if (err instanceof ApiException && (err as ApiException<unknown>).code === 404) return undefined;
        throw err;
      }
    },
    async canI(verb, group, resource, namespace, name) {
      const review = await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { verb, group, resource, namespace, ...(name ? { name } : {}) } } } });
      return review.status?.allowed === true;
    },
  };
}
