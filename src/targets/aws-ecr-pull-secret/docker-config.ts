// The Docker config an ECR pull secret carries (`.dockerconfigjson` of a `kubernetes.io/dockerconfigjson` Secret,
// or ~/.docker/config.json): `{"auths":{"<registry host>":{"username":"AWS","password":...,"auth":base64("AWS:" +
// password)}}}`. Built from fresh logins by a rotation, read back from the record by delivery. No SDK here: the
// target's `delivery` runs it without loading the ECR client.
import { RotateError } from '../../errors.js';
import { Secret } from '../../secret.js';

/** The user name of every ECR registry login (`docker login -u AWS`). */
export const ECR_USER = 'AWS';

export interface RegistryLogin {
  region: string;
  /** `https://<registry host>`, as GetAuthorizationToken names it. */
  proxyEndpoint: string;
  password: Secret;
  expiresAt: Date;
}

/**
 * Registers every form a login takes with redact (src/secret.ts), beyond the password itself and its base64 that
 * `new Secret` covers: base64("AWS:" + password) (ECR's authorizationToken, the `auth` of the config, a Basic
 * header).
 */
export function registerLoginForms(logins: readonly RegistryLogin[]): void {
  for (const l of logins) new Secret(`${ECR_USER}:${l.password.reveal()}`);
}

export function registryHost(proxyEndpoint: string): string {
  return new URL(proxyEndpoint).host;
}

/**
 * The Docker config for these logins, one entry per registry host (the first login for a host wins: two regions
 * never share a host on AWS). The whole JSON is a Secret, registered with its base64 (a Kubernetes Secret's data).
 */
export function dockerConfigJson(logins: readonly RegistryLogin[]): Secret {
  registerLoginForms(logins);
  const auths: Record<string, { username: string; password: string; auth: string }> = {};
  for (const l of logins) {
    const host = registryHost(l.proxyEndpoint);
    if (Object.hasOwn(auths, host)) continue;
    const password = l.password.reveal();
    auths[host] = { username: ECR_USER, password, auth: Buffer.from(`${ECR_USER}:${password}`).toString('base64') };
  }
  return new Secret(JSON.stringify({ auths }));
}

export interface StoredConfig {
  config: Secret;
  /** The registry hosts it opens, in order. */
  hosts: string[];
  /** Each host's password, for a check against the registry. */
  logins: Array<{ host: string; password: Secret }>;
}

/**
 * A Docker config as a record holds it, checked for the shape `dockerConfigJson` writes; throws `code` naming the
 * field otherwise (the message never quotes the value). Every form of every password in it is registered first.
 */
export function readDockerConfig(text: string, field: string, code: 'RECORD_FIELD_INVALID' | 'RECORD_FIELD_MISSING' = 'RECORD_FIELD_INVALID'): StoredConfig {
  const config = new Secret(text);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new RotateError(code, `"${field}" is not JSON: a Docker config {"auths":{...}} is expected`);
  }
  const auths = (parsed as { auths?: unknown } | null)?.auths;
  if (typeof auths !== 'object' || auths === null || Array.isArray(auths) || Object.keys(auths).length === 0) {
    throw new RotateError(code, `"${field}" is not a Docker config with at least one registry under "auths"`);
  }
  const logins: StoredConfig['logins'] = [];
  for (const [host, entry] of Object.entries(auths as Record<string, unknown>)) {
    const e = entry as { username?: unknown; password?: unknown } | null;
    if (!/^[a-z0-9.-]+(?::\d{1,5})?$/i.test(host) || typeof e?.password !== 'string' || e.password === '' || e.username !== ECR_USER) {
      throw new RotateError(code, `"${field}": an entry of "auths" is not an ECR login (a registry host with username AWS and a password)`);
    }
    const password = new Secret(e.password);
    registerLoginForms([{ region: '', proxyEndpoint: `https://${host}`, password, expiresAt: new Date(0) }]);
    logins.push({ host, password });
  }
  return { config, hosts: logins.map((l) => l.host), logins };
}
