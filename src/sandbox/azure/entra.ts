// The Entra ID v2.0 endpoints MSAL (inside @azure/identity) calls for a client_credentials token: the tenant's
// OpenID configuration and the token endpoint, with Entra's error bodies byte for byte where public captures
// exist (error, error_description with AADSTS code and the \r\n-separated trace lines, error_codes, ...).
import type { Reply, SandboxRequest } from '../service.js';
import { json } from '../service.js';
import type { Directory } from './directory.js';
import { entraTimestamp, newGuid } from './formats.js';
import { createHash } from 'node:crypto';
import { GRAPH_APP_ID, SANDBOX_CLOUDS, type TokenIssuer } from './tokens.js';

export interface EntraContext {
  /** `https://host:port` exactly as the client addressed the sandbox (MSAL compares the issuer with it). */
  baseUrl: string;
  now: number;
  /** MSAL's `client-request-id`, which Entra echoes as `correlation_id`. */
  correlationId: string;
}

export function entraContext(req: SandboxRequest, baseUrl: string, now: number): EntraContext {
  const header = req.headers['client-request-id'];
  const correlationId = req.query.get('client-request-id') ?? (typeof header === 'string' ? header : undefined) ?? newGuid();
  return { baseUrl, now, correlationId };
}

/** An Entra token-endpoint error: `{error, error_description, error_codes, timestamp, trace_id, correlation_id, error_uri}`. */
export function entraError(ctx: EntraContext, status: number, error: string, code: number, message: string): Reply {
  const traceId = newGuid();
  const timestamp = entraTimestamp(ctx.now);
  return json(
    status,
    {
      error,
      error_description: `AADSTS${code}: ${message}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${ctx.correlationId}\r\nTimestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: ctx.correlationId,
      error_uri: `${ctx.baseUrl}/error?code=${code}`,
    },
    { 'cache-control': 'no-store, no-cache', pragma: 'no-cache', 'x-ms-request-id': traceId },
  );
}

const tenantNotFound = (ctx: EntraContext, tenant: string) =>
  entraError(
    ctx,
    400,
    'invalid_tenant',
    90002,
    `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`,
  );

export function openidConfiguration(ctx: EntraContext, directory: Directory, tenant: string, deps: { resource: string }): Reply {
  const t = directory.getTenant(tenant);
  if (!t) return tenantNotFound(ctx, tenant);
  const base = `${ctx.baseUrl}/${t.tenantId}`;
  return json(200, {
    token_endpoint: `${base}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${base}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    // msal-common 16 rejects an issuer whose scheme, host and port differ from the authority it was given.
    issuer: `${base}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: `${ctx.baseUrl}/oidc/userinfo`,
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${base}/oauth2/v2.0/logout`,
    claims_supported: ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
    kerberos_endpoint: `${base}/kerberos`,
    tenant_region_scope: 'NA',
    cloud_instance_name: Object.values(SANDBOX_CLOUDS).find((c) => c.graph === deps.resource)?.instance ?? 'microsoftonline.com',
    cloud_graph_host_name: 'graph.windows.net',
    msgraph_host: new URL(ctx.baseUrl).host,
    rbac_url: 'https://pas.windows.net',
  });
}

function credentialsFrom(req: SandboxRequest, form: URLSearchParams): { clientId: string | null; secret: string | null } {
  const auth = req.headers.authorization;
  // client_secret_basic: RFC 6749 form-encodes id and secret before base64, so decode both.
  if (typeof auth === 'string' && /^basic /i.test(auth)) {
    const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) {
      const unform = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
      return { clientId: unform(decoded.slice(0, colon)), secret: unform(decoded.slice(colon + 1)) };
    }
  }
  return { clientId: form.get('client_id'), secret: form.get('client_secret') };
}

/** The resource a `.default` scope names, or undefined when the scope is not one `client_credentials` allows. */
function defaultScopeResource(scope: string): string | undefined {
  const parts = scope.split(' ').filter(Boolean);
  if (parts.length !== 1 || !parts[0]!.endsWith('/.default')) return undefined;
  return parts[0]!.slice(0, -'/.default'.length);
}

export interface TokenEndpointDeps {
  directory: Directory;
  tokens: TokenIssuer;
  lifetimeSeconds: number;
  loops: LoopDetector;
}

/**
 * Entra's client-loop protection: the same token request repeated too often in a short time is refused with
 * AADSTS50196 (HTTP 400, `invalid_request`, no Retry-After), until the caller slows down. Microsoft publishes no
 * threshold; public reports see it after a handful to about twenty quick repeats and see it lift within about
 * two minutes (AzureAD/MSAL.PS#28, pnp/powershell#2995, microsoft-authentication-library-for-dotnet#2353), and
 * MSAL's docs blame a missing token cache. The sandbox refuses the 21st identical request within 60 s: a
 * verification that polls every half second trips it in ten seconds, and one that backs off never does.
 */
export class LoopDetector {
  #seen = new Map<string, number[]>();

  constructor(
    readonly limit = 20,
    readonly windowMs = 60_000,
  ) {}

  /** Counts the request; true when it is one too many. Refused requests count too: a loop keeps itself refused. */
  tooMany(parts: string[], now: number): boolean {
    const key = createHash('sha256').update(parts.join('\0')).digest('base64');
    const recent = (this.#seen.get(key) ?? []).filter((t) => now - t < this.windowMs);
    recent.push(now);
    this.#seen.set(key, recent);
    return recent.length > this.limit;
  }
}

export function tokenEndpoint(ctx: EntraContext, req: SandboxRequest, tenant: string, deps: TokenEndpointDeps): Reply {
  if (req.method !== 'POST') return entraError(ctx, 405, 'invalid_request', 900561, 'The endpoint only accepts POST requests.');
  const form = new URLSearchParams(req.body.toString('utf8'));
  if (!deps.directory.getTenant(tenant)) return tenantNotFound(ctx, tenant);
  const missing = (p: string) => entraError(ctx, 400, 'invalid_request', 900144, `The request body must contain the following parameter: '${p}'.`);
  const grantType = form.get('grant_type');
  if (!grantType) return missing('grant_type');
  if (grantType !== 'client_credentials') return entraError(ctx, 400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grantType}'.`);
  const { clientId, secret } = credentialsFrom(req, form);
  if (!clientId) return missing('client_id');
  const scope = form.get('scope');
  if (!scope) return missing('scope');
  const resource = defaultScopeResource(scope);
  if (resource === undefined) {
    return entraError(
      ctx,
      400,
      'invalid_scope',
      1002012,
      `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
    );
  }
  if (resource.replace(/\/$/, '') !== deps.tokens.resource && resource !== GRAPH_APP_ID) {
    return entraError(
      ctx,
      400,
      'invalid_resource',
      500011,
      `The resource principal named ${resource} was not found in the tenant named ${tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`,
    );
  }
  if (deps.loops.tooMany([tenant, clientId, secret ?? '', scope], ctx.now)) {
    return entraError(ctx, 400, 'invalid_request', 50196, 'The server terminated an operation because it encountered a client request loop. Please contact your app vendor.');
  }
  if (!secret) {
    return entraError(ctx, 401, 'invalid_client', 7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.");
  }
  const verdict = deps.directory.authenticate(tenant, clientId, secret);
  if (!verdict.ok) {
    switch (verdict.reason) {
      case 'unknown_tenant':
        return tenantNotFound(ctx, tenant);
      case 'unknown_client':
        return entraError(
          ctx,
          400,
          'unauthorized_client',
          700016,
          `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
        );
      case 'expired_secret':
        // Entra answers an expired secret with its own code, not 7000215 (captured in many public reports).
        return entraError(
          ctx,
          401,
          'invalid_client',
          7000222,
          `The provided client secret keys for app '${clientId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`,
        );
      case 'invalid_secret':
        return entraError(
          ctx,
          401,
          'invalid_client',
          7000215,
          `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
        );
    }
  }
  const nowSeconds = Math.floor(ctx.now / 1000);
  const accessToken = deps.tokens.issue({
    tenantId: verdict.tenantId,
    appId: verdict.appId,
    objectId: verdict.objectId,
    roles: verdict.permission ? [verdict.permission] : [],
    audience: deps.tokens.resource,
    nowSeconds,
    lifetimeSeconds: deps.lifetimeSeconds,
  });
  deps.directory.issued.add(accessToken);
  return json(
    200,
    { token_type: 'Bearer', expires_in: deps.lifetimeSeconds, ext_expires_in: deps.lifetimeSeconds, access_token: accessToken },
    { 'cache-control': 'no-store, no-cache', pragma: 'no-cache', 'x-ms-request-id': newGuid(), 'client-request-id': ctx.correlationId },
  );
}
