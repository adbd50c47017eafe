// The sandbox cluster's state: namespaces, Secrets, Deployments and the bearer tokens that reach them, each with
// its RBAC rules. Objects are kept as the API serves them (JSON, Secret data in base64), so what a test reads
// back through the control API is byte for byte what a client would get. One resourceVersion counter for the
// whole cluster, bumped by every write, as etcd's revision is.
import { randomBytes, randomUUID } from 'node:crypto';
import { type RbacRule, type ResourceAttributes, authorize, type Decision } from './rbac.js';
import type { Json } from './patch.js';

export type JsonObject = { [key: string]: Json };

export interface Identity {
  user: string;
  rules: RbacRule[];
}

export interface SeedSecret {
  namespace: string;
  name: string;
  type?: string;
  /** Values as text; stored base64-encoded, as `stringData` would be. */
  stringData?: Record<string, string>;
  /** Values already base64-encoded (any bytes). */
  data?: Record<string, string>;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  immutable?: boolean;
}

export interface SeedDeployment {
  namespace: string;
  name: string;
  replicas?: number;
  image?: string;
  /** Pod-template annotations to start with. */
  templateAnnotations?: Record<string, string>;
}

export const DEFAULT_SECRET_TYPE = 'Opaque';

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class KubernetesCluster {
  readonly namespaces = new Set<string>();
  readonly #secrets = new Map<string, JsonObject>();
  readonly #deployments = new Map<string, JsonObject>();
  readonly #tokens = new Map<string, Identity>();
  #revision = 1000;

  /** The next resourceVersion: every write takes one. */
  nextResourceVersion(): string {
    this.#revision += 1;
    return String(this.#revision);
  }

  createNamespace(name: string): void {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name) || name.length > 63) throw new Error(`"${name}" is not a valid namespace name (RFC 1123 label)`);
    this.namespaces.add(name);
  }

  /** Registers a bearer token for `user` with these rules; a fresh random token when none is given. */
  addToken(user: string, rules: RbacRule[], token: string = randomBytes(24).toString('base64url')): string {
    this.#tokens.set(token, { user, rules });
    return token;
  }

  setRules(token: string, rules: RbacRule[]): void {
    const id = this.#tokens.get(token);
    if (!id) throw new Error('no such token');
    id.rules = rules;
  }

  identify(token: string): Identity | undefined {
    return this.#tokens.get(token);
  }

  tokens(): Array<{ user: string; rules: RbacRule[] }> {
    return [...this.#tokens.values()].map((t) => ({ user: t.user, rules: t.rules }));
  }

  authorize(id: Identity, a: ResourceAttributes): Decision {
    return authorize(id.user, id.rules, a);
  }

  /** A new object's metadata, as the server fills it in on create. */
  newMetadata(namespace: string, name: string, given: JsonObject = {}): JsonObject {
    return { ...given, name, namespace, uid: randomUUID(), resourceVersion: this.nextResourceVersion(), creationTimestamp: now() };
  }

  seedSecret(s: SeedSecret): JsonObject {
    if (!this.namespaces.has(s.namespace)) this.createNamespace(s.namespace);
    const data: Record<string, string> = { ...(s.data ?? {}) };
    for (const [k, v] of Object.entries(s.stringData ?? {})) data[k] = Buffer.from(v, 'utf8').toString('base64');
    const metadata = this.newMetadata(s.namespace, s.name, {
      ...(s.labels ? { labels: s.labels } : {}),
      ...(s.annotations ? { annotations: s.annotations } : {}),
    });
    const secret: JsonObject = { kind: 'Secret', apiVersion: 'v1', metadata, ...(s.immutable ? { immutable: true } : {}), data, type: s.type ?? DEFAULT_SECRET_TYPE };
    this.#secrets.set(key(s.namespace, s.name), secret);
    return structuredClone(secret);
  }

  seedDeployment(d: SeedDeployment): JsonObject {
    if (!this.namespaces.has(d.namespace)) this.createNamespace(d.namespace);
    const labels = { app: d.name };
    const deployment: JsonObject = {
      kind: 'Deployment',
      apiVersion: 'apps/v1',
      metadata: { ...this.newMetadata(d.namespace, d.name, { labels }), generation: 1 },
      spec: {
        replicas: d.replicas ?? 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels, ...(d.templateAnnotations ? { annotations: d.templateAnnotations } : {}) },
          spec: { containers: [{ name: d.name, image: d.image ?? `registry.invalid/${d.name}:1` }] },
        },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } },
        revisionHistoryLimit: 10,
        progressDeadlineSeconds: 600,
      },
      status: { observedGeneration: 1, replicas: d.replicas ?? 1, updatedReplicas: d.replicas ?? 1, readyReplicas: d.replicas ?? 1, availableReplicas: d.replicas ?? 1 },
    };
    this.#deployments.set(key(d.namespace, d.name), deployment);
    return structuredClone(deployment);
  }

  /** A copy of the stored Secret, or undefined. */
  secret(namespace: string, name: string): JsonObject | undefined {
    const s = this.#secrets.get(key(namespace, name));
    return s ? structuredClone(s) : undefined;
  }

  /** The Secret's values decoded as UTF-8 text, for tests; undefined when there is no such Secret. */
  secretText(namespace: string, name: string): Record<string, string> | undefined {
    const s = this.#secrets.get(key(namespace, name));
    if (!s) return undefined;
    const data = (s.data ?? {}) as Record<string, string>;
    return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
  }

  putSecret(namespace: string, name: string, secret: JsonObject): void {
    this.#secrets.set(key(namespace, name), structuredClone(secret));
  }

  deleteSecret(namespace: string, name: string): boolean {
    return this.#secrets.delete(key(namespace, name));
  }

  /**
   * Another writer's edit, as a kubectl user or a controller would make it between a client's read and its
   * write: sets (or, with null, removes) these text values, bumping the resourceVersion.
   */
  editSecret(namespace: string, name: string, values: Record<string, string | null>): JsonObject {
    const s = this.#secrets.get(key(namespace, name));
    if (!s) throw new Error(`no Secret ${namespace}/${name}`);
    const data = { ...((s.data ?? {}) as Record<string, string>) };
    for (const [k, v] of Object.entries(values)) {
      if (v === null) delete data[k];
      else data[k] = Buffer.from(v, 'utf8').toString('base64');
    }
    s.data = data;
    (s.metadata as JsonObject).resourceVersion = this.nextResourceVersion();
    return structuredClone(s);
  }

  secretNames(): string[] {
    return [...this.#secrets.keys()];
  }

  deployment(namespace: string, name: string): JsonObject | undefined {
    const d = this.#deployments.get(key(namespace, name));
    return d ? structuredClone(d) : undefined;
  }

  putDeployment(namespace: string, name: string, deployment: JsonObject): void {
    this.#deployments.set(key(namespace, name), structuredClone(deployment));
  }

  deploymentNames(): string[] {
    return [...this.#deployments.keys()];
  }
}
