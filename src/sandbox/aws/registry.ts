// The `ecr-registry` sandbox service: the one registry call a pull-secret refresher makes to prove a login works,
// the Docker Registry HTTP API V2's version check, `GET /v2/`, with `Authorization: Basic base64("AWS:" +
// password)` (https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html: "curl -H
// 'Authorization: Basic $TOKEN' https://<account>.dkr.ecr.<region>.amazonaws.com/v2/..."). It accepts only live
// tokens of the shared table (ecr-tokens.ts): 200 `{}` with `Docker-Distribution-API-Version: registry/2.0`.
// Anything else is 401 with ECR's challenge, `WWW-Authenticate: Basic realm="https://<host>/",
// service="ecr.amazonaws.com"` (quoted from a real ECR reply in https://github.com/mayflower/docker-ls/issues/28),
// and a registry error body `{"errors":[{"code", "message"}]}` (the distribution spec's format). For an expired
// token ECR says "denied: Your authorization token has expired. Reauthenticate and try again." (Docker prints the
// code, lower-cased, before the message: https://github.com/portainer/portainer/issues/6764,
// https://github.com/CircleCI-Public/aws-ecr-orb/issues/265); the other messages are the sandbox's own words.
import type { Reply, Route, SandboxRequest, SandboxService } from '../service.js';
import { ECR_USER, type EcrTokens } from './ecr-tokens.js';

export const REGISTRY_SERVICE = 'ecr-registry';
export const REGISTRY_OPERATIONS = ['ApiVersionCheck'] as const;

export const EXPIRED_MESSAGE = 'Your authorization token has expired. Reauthenticate and try again.';

function registryError(status: number, code: string, message: string, headers: Record<string, string> = {}): Reply {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers }, body: JSON.stringify({ errors: [{ code, message }] }) };
}

export class RegistryService implements SandboxService {
  readonly name = REGISTRY_SERVICE;

  constructor(private readonly tokens: EcrTokens) {}

  route(req: SandboxRequest): Route | undefined {
    if (req.path !== '/v2/' && req.path !== '/v2') return undefined;
    if (req.method !== 'GET' && req.method !== 'HEAD') return undefined;
    return { operation: 'ApiVersionCheck', handle: () => this.#check(req) };
  }

  throttleReply(retryAfterSeconds: number): Reply {
    return registryError(429, 'TOOMANYREQUESTS', 'Rate exceeded', { 'retry-after': String(retryAfterSeconds) });
  }

  #check(req: SandboxRequest): Reply {
    const host = String(req.headers.host ?? 'localhost');
    const challenge = { 'www-authenticate': `Basic realm="https://${host}/",service="ecr.amazonaws.com"` };
    const auth = String(req.headers.authorization ?? '');
    const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(auth);
    if (!m) return registryError(401, 'UNAUTHORIZED', 'authentication required', challenge);
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon < 0 ? '' : decoded.slice(0, colon);
    const password = colon < 0 ? '' : decoded.slice(colon + 1);
    const verdict = user === ECR_USER ? this.tokens.check(password) : 'unknown';
    if (verdict === 'expired') return registryError(401, 'DENIED', EXPIRED_MESSAGE, challenge);
    if (verdict !== 'live') return registryError(401, 'DENIED', 'Your authorization token is invalid.', challenge);
    return { status: 200, headers: { 'content-type': 'application/json; charset=utf-8', 'docker-distribution-api-version': 'registry/2.0' }, body: '{}' };
  }
}
