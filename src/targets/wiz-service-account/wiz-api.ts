// Wiz's token endpoint and GraphQL API through fetch on our agent (src/http/fetch.ts: direct or through the
// gateway's proxy, which Node's global fetch cannot be told about): client-credentials tokens, reading a service
// account, replacing its secret and setting its expiry. Every call is bounded by its own timeout and the run's
// deadline; failures become RotateErrors with stable codes, and messages are built from IDs, status codes and
// the service's own error text (scrubbed), never from a request body or a reply that may hold a secret.
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Deadline } from '../../deadline.js';
import { RotateError, describe, type ErrorCode } from '../../errors.js';
import { Secret, redact } from '../../secret.js';
import { sharedAgent } from '../../http/agent.js';
import { type Fetch, type FetchReply, type ReplyHeaders, agentFetch } from '../../http/fetch.js';
import { ReplyTooLargeError } from '../../http/reply-limit.js';
import { Pacer } from '../../discover/pacer.js';

export const DEFAULT_AUTH_URL = 'https://auth.app.wiz.io/oauth/token';
/** What the account that authenticates needs: reading the account, rotating it and setting its expiry. */
export const REQUIRED_SCOPES = ['read:service_accounts', 'update:service_accounts'] as const;
export type RequiredScope = (typeof REQUIRED_SCOPES)[number];

/**
 * The scopes that grant each requirement: the scope itself, then the umbrella scopes that include it, which an
 * admin account often holds instead. The umbrella scopes are Wiz's (the scope enum of
 * AxtonGrams/terraform-provider-wiz, internal/common.go ServiceAccountScopes); `read:all` includes every read
 * scope ("read:all includes read:detections", tamnoon-io/Tamnoon-Public-Permissions CNAPPs/Wiz/wiz-permissions.md,
 * after Wiz's RBAC docs); Wiz's own MCP server strips the `:all` permissions Wiz names in its UNAUTHORIZED
 * messages (wiz_mcp_server, clean_error_message). That admin:all covers everything and write:* covers update
 * (not read) is inferred from Wiz's R/W role matrix; Wiz itself decides at the call, and a refusal there says so.
 */
export const SCOPES_GRANTING: Readonly<Record<RequiredScope, readonly string[]>> = {
  'read:service_accounts': ['read:service_accounts', 'read:all', 'admin:all'],
  'update:service_accounts': ['update:service_accounts', 'write:service_accounts', 'update:all', 'write:all', 'admin:all'],
};

/** The requirements none of `held` grants, in REQUIRED_SCOPES order. */
export function missingScopes(held: readonly string[]): RequiredScope[] {
  const have = new Set(held);
  return REQUIRED_SCOPES.filter((need) => !SCOPES_GRANTING[need].some((s) => have.has(s)));
}

/** "read:service_accounts (or read:all, admin:all)": a requirement and what else grants it, for messages. */
export function describeScope(need: RequiredScope): string {
  const others = SCOPES_GRANTING[need].filter((s) => s !== need);
  return `${need} (or ${others.join(', ')})`;
}

/** Failures other than throttling: tries per call. */
const ATTEMPTS = 3;
/**
 * Throttled replies per call, each waited out as long as Wiz asks (Retry-After) within the run's deadline: a
 * throttled request was not applied, so trying again is safe for a mutation too, and a budget of a few requests
 * per second (limits.ts in the sandbox) is back within seconds.
 */
const THROTTLED_ATTEMPTS = 6;
/** A Retry-After longer than this is not waited for: the run reports the throttling instead. */
const MAX_RETRY_WAIT_MS = 30_000;
/** Waits between throttled tries when Wiz names none: doubling from 1 s, at most this. */
const MAX_THROTTLE_BACKOFF_MS = 8_000;
/** Wiz's legacy Auth0 hosts issue API tokens for another audience than the Cognito ones. */
const LEGACY_AUTH_HOSTS = new Set(['auth.wiz.io', 'auth0.gov.wiz.io']);
const DATA_CENTER = /^[a-z0-9-]{1,32}$/;
const PAGE_SIZE = 100;
const MAX_PAGES = 5;

/** A failed call, and whether repeating it may help (throttling, a server error, a lost connection). */
export class WizCallError extends RotateError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly transient: boolean,
    readonly retryAfterMs?: number,
    cause?: unknown,
    /** Wiz refused the call in so many words (a 4xx, a GraphQL error that names why): it was not applied. */
    refused = false,
    /** The HTTP status of the reply, when one came. */
    status?: number,
  ) {
    super(code, message, { ...(cause === undefined ? {} : { cause }), refused, ...(status === undefined ? {} : { status }) });
  }

  /** Throttled (429, RATE_LIMIT_EXCEEDED) and refused: not applied, and worth trying again after the wait. */
  get throttled(): boolean {
    return this.code === 'TARGET_THROTTLED' && this.refused;
  }

  /** The same failure, no longer known to be a refusal: an earlier attempt of the same call may have been applied. */
  uncertain(): WizCallError {
    return new WizCallError(this.code, `${this.message} (an earlier attempt may have been applied)`, this.transient, this.retryAfterMs, this, false, this.status);
  }
}

/** Called before a transient failure is retried, so the log says why the run waits. */
export type RetryListener = (what: string, attempt: number, err: WizCallError, waitMs: number) => void;

export interface CallOptions {
  deadline: Deadline;
  onRetry?: RetryListener | undefined;
}

export interface WizToken {
  clientId: string;
  bearer: Secret;
  /** The scopes the token carries (its `scope` field or claim); undefined when Wiz does not say. */
  scopes: string[] | undefined;
  /** The `dc` claim: the data centre the API lives in. */
  dataCenter: string | undefined;
  /** When the token stops working (ms since the epoch), from `expires_in` or the `exp` claim, when Wiz says. */
  expiresAt?: number;
}

/** `throttled`: the token endpoint throttled the request (not refused the secret); retryAfterMs is its Retry-After. */
export type TokenResult = { ok: true; token: WizToken } | { ok: false; reason: string; throttled?: boolean; retryAfterMs?: number };

export interface ServiceAccount {
  id: string;
  name: string;
  clientId: string;
  enabled: boolean;
  scopes: string[];
  expiresAt: string | null;
  lastRotatedAt: string | null;
}

export function audienceFor(authUrl: string): string {
  return LEGACY_AUTH_HOSTS.has(new URL(authUrl).hostname) ? 'beyond-api' : 'wiz-api';
}

/**
 * Where each auth host's tenants find their API: `https://api.<dc>.<domain>/graphql`, `<dc>` the token's `dc`
 * claim. Wiz for Gov (FedRAMP) signs in at auth.app.wiz.us, a Cognito host like auth.app.wiz.io (RegScale CLI,
 * integrations/commercial/wizv2/wiz_auth.py, COGNITO_URLS), and serves its API from api.<dc>.app.wiz.us, its data
 * centres named like the commercial ones (us1, us2...), not "gov": paramify/paramify-fetchers,
 * fetchers/wiz/_shared/wiz_client.py ("https://api.<dc>.app.wiz.us/graphql for Wiz for Government", written
 * against a live Wiz for Gov tenant; its README and tests pair https://api.us2.app.wiz.us/graphql with
 * https://auth.app.wiz.us/oauth/token). Other hosts (auth.gov.wiz.io, which public sources call both Wiz
 * commercial on AWS GovCloud and a legacy Auth0 host, and whose API host they disagree on) keep the commercial API
 * host: set wiz_api_url for them. Every host here is Wiz's own, and `<dc>` cannot leave it (DATA_CENTER).
 */
const API_DOMAIN_BY_AUTH_HOST: Readonly<Record<string, string>> = {
  'auth.app.wiz.io': 'app.wiz.io',
  'auth.wiz.io': 'app.wiz.io',
  'auth.app.wiz.us': 'app.wiz.us',
};

/** The API URL for a token from `authUrl` whose `dc` claim is `dataCenter` (already checked against DATA_CENTER). */
export function apiUrlFor(authUrl: string, dataCenter: string): string {
  if (!DATA_CENTER.test(dataCenter)) throw new Error(`not a Wiz data centre: ${JSON.stringify(dataCenter)}`);
  const domain = API_DOMAIN_BY_AUTH_HOST[new URL(authUrl).hostname.toLowerCase()] ?? 'app.wiz.io';
  return `https://api.${dataCenter}.${domain}/graphql`;
}

/** The claims of a JWT, decoded without verifying (only Wiz verifies them); undefined when it is not a JWT. */
export function jwtClaims(token: string): Record<string, unknown> | undefined {
  const body = token.split('.')[1];
  if (token.split('.').length !== 3 || !body) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    return claims && typeof claims === 'object' && !Array.isArray(claims) ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function retryAfterMs(headers: ReplyHeaders): number | undefined {
  const v = headers.get('retry-after');
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

const clip = (text: string) => redact(text.replace(/\s+/g, ' ')).slice(0, 200);

interface Reply {
  status: number;
  headers: ReplyHeaders;
  body: unknown;
}

let wizFetch: Fetch | undefined;

/** One HTTP exchange: network failures and timeouts become WizCallErrors; the body is parsed as JSON when it is JSON. */
async function send(what: string, url: string, init: RequestInit, deadline: Deadline): Promise<Reply> {
  deadline.check(what);
  let res: FetchReply;
  let text: string;
  try {
    wizFetch ??= agentFetch(sharedAgent());
    res = await wizFetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(deadline.timeout()) });
    text = (await res.bytes(`${what}: ${new URL(url).host}`)).toString('utf8');
  } catch (err) {
    if (err instanceof ReplyTooLargeError) throw new WizCallError('TARGET_REQUEST_FAILED', err.message, false, undefined, err);
    const name = err instanceof Error ? err.name : '';
    if (name === 'TimeoutError' || name === 'AbortError') throw new WizCallError('TARGET_TIMEOUT', `${what}: no answer from ${new URL(url).host} in time`, true, undefined, err);
    const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
    const code = typeof cause?.code === 'string' ? cause.code : '';
    // A wrong host or an untrusted certificate will not fix itself; a reset or refused connection may.
    const permanent = code === 'ENOTFOUND' || /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code);
    const detail = code || (typeof cause?.message === 'string' ? cause.message : describe(err));
    throw new WizCallError('TARGET_REQUEST_FAILED', `${what}: cannot reach ${new URL(url).host} (${clip(detail)})`, !permanent, undefined, err);
  }
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, body };
}

/**
 * Runs a call up to three times while it fails transiently, honouring Retry-After within the run's deadline.
 * `settleTimeouts`: a timed-out call is not repeated at once but thrown, because the server may still apply it
 * after the repeat (see WizSession.create).
 */
async function withRetries<T>(what: string, options: CallOptions, call: () => Promise<T>, settleTimeouts = false): Promise<T> {
  let uncertain = false;
  let failures = 0;
  let throttles = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      const last = uncertain && err instanceof WizCallError && err.refused ? err.uncertain() : err;
      if (!(err instanceof WizCallError) || !err.transient) throw last;
      // Throttling has its own count: a refusal to be waited out, not a failure that may repeat.
      const throttled = err.throttled;
      if (throttled ? ++throttles >= THROTTLED_ATTEMPTS : ++failures >= ATTEMPTS) throw last;
      if (settleTimeouts && err.code === 'TARGET_TIMEOUT') throw last;
      uncertain ||= !err.refused;
      const wait = err.retryAfterMs ?? (throttled ? Math.min(MAX_THROTTLE_BACKOFF_MS, 1000 * 2 ** (throttles - 1)) : 500 * 2 ** (failures - 1));
      if (wait > MAX_RETRY_WAIT_MS || wait >= options.deadline.remaining() - 1000) throw last;
      options.onRetry?.(what, attempt, err, wait);
      await sleep(wait);
    }
  }
}

/** Maps a non-success status without a recognisable error body. */
function statusFailure(what: string, status: number, retryAfter: number | undefined, detail: string): WizCallError {
  if (status === 429) return new WizCallError('TARGET_THROTTLED', `${what}: throttled (HTTP 429)${detail}`, true, retryAfter, undefined, true, status);
  if (status >= 500) return new WizCallError('TARGET_REQUEST_FAILED', `${what}: HTTP ${status}${detail}`, true, retryAfter, undefined, false, status);
  const refused = status >= 400 && status !== 408;
  if (status === 401) return new WizCallError('TARGET_AUTH_FAILED', `${what}: HTTP 401${detail}`, false, undefined, undefined, refused, status);
  if (status === 403) return new WizCallError('TARGET_PERMISSION_DENIED', `${what}: HTTP 403${detail}`, false, undefined, undefined, refused, status);
  if (status === 404) return new WizCallError('TARGET_NOT_FOUND', `${what}: HTTP 404${detail}`, false, undefined, undefined, refused, status);
  return new WizCallError('TARGET_REQUEST_FAILED', `${what}: HTTP ${status}${detail}`, false, undefined, undefined, refused, status);
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

/**
 * Gets a client-credentials token. `invalid_client` (a wrong or replaced secret, an unknown, disabled or expired
 * account) is an answer, not an error: verification reads it as "not accepted (yet)". Throttling (HTTP 429) is
 * waited out and retried like any transient failure, unless `throttled` is 'answer': then the first throttled
 * reply comes back as `{ ok: false, throttled: true, retryAfterMs }`, for a caller that paces its own tries (the
 * verify loop).
 */
export async function requestToken(authUrl: string, clientId: string, secret: Secret, options: CallOptions, throttled: 'retry' | 'answer' = 'retry'): Promise<TokenResult> {
  const what = `Wiz token request for ${clientId}`;
  return withRetries(what, options, async () => {
    const form = new URLSearchParams({ grant_type: 'client_credentials', audience: audienceFor(authUrl), client_id: clientId, client_secret: secret.reveal() });
    const reply = await send(what, authUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: form.toString() }, options.deadline);
    const body = (reply.body ?? {}) as Record<string, unknown>;
    if (reply.status === 200) {
      const accessToken = str(body.access_token);
      // Transient: an unreadable 200 is a cut or mangled reply far more often than a changed protocol.
      if (!accessToken) throw new WizCallError('TARGET_REQUEST_FAILED', `${what}: the reply holds no access_token`, true);
      const bearer = new Secret(accessToken);
      const claims = jwtClaims(accessToken) ?? {};
      const scope = str(body.scope) ?? str(claims.scope);
      const dc = str(claims.dc);
      const expiresAt = typeof body.expires_in === 'number' ? Date.now() + body.expires_in * 1000 : typeof claims.exp === 'number' ? claims.exp * 1000 : undefined;
      return {
        ok: true,
        token: { clientId, bearer, scopes: scope === undefined ? undefined : scope.split(/\s+/).filter(Boolean), dataCenter: dc && DATA_CENTER.test(dc) ? dc : undefined, ...(expiresAt ? { expiresAt } : {}) },
      };
    }
    const error = str(body.error);
    const description = str(body.error_description);
    const detail = error ? `: ${error}${description ? ` (${clip(description)})` : ''}` : '';
    if (error === 'invalid_client' || (reply.status === 401 && !error)) return { ok: false, reason: `Wiz refuses the client credentials${detail || ' (HTTP 401)'}` };
    const failure = statusFailure(what, reply.status, retryAfterMs(reply.headers), detail);
    if (throttled === 'answer' && failure.throttled) return throttledAnswer(failure);
    throw failure;
  });
}

/**
 * Admin tokens in this process, by auth URL, client ID and secret (hashed): `report --check` reads a thousand
 * accounts with one admin, and asked Wiz for a token per record (1,343 for 1,001 records). A rotation is a process
 * of its own and asks once either way. Kept while it has more than ADMIN_TOKEN_MARGIN_MS to live (a token whose
 * lifetime Wiz does not say, for ADMIN_TOKEN_UNKNOWN_MS); a refusal or an error is not kept, so the next caller
 * asks again. Only for admin credentials: a check of a record's own secret (an account that rotates itself,
 * verification) is a request of its own, as the proof that the secret signs in must be.
 */
const adminTokens = new Map<string, { result: Promise<TokenResult>; until: number }>();
const ADMIN_TOKEN_MARGIN_MS = 5 * 60_000;
const ADMIN_TOKEN_UNKNOWN_MS = 10 * 60_000;

export async function adminToken(authUrl: string, clientId: string, secret: Secret, options: CallOptions): Promise<TokenResult> {
  const key = createHash('sha256').update([authUrl, clientId, secret.reveal()].join('\0')).digest('base64');
  const known = adminTokens.get(key);
  if (known && Date.now() < known.until) return known.result;
  // Callers that ask while the request is out share it (its deadline is the first caller's).
  const entry = { result: requestToken(authUrl, clientId, secret, options), until: Infinity };
  adminTokens.set(key, entry);
  const forget = () => {
    if (adminTokens.get(key) === entry) adminTokens.delete(key);
  };
  try {
    const result = await entry.result;
    if (!result.ok) forget();
    else entry.until = result.token.expiresAt === undefined ? Date.now() + ADMIN_TOKEN_UNKNOWN_MS : result.token.expiresAt - ADMIN_TOKEN_MARGIN_MS;
    return result;
  } catch (err) {
    forget();
    throw err;
  }
}

/** A throttled token request as an answer: not a refusal of the secret, a "not now" with the wait Wiz asked for. */
export function throttledAnswer(err: WizCallError): Extract<TokenResult, { ok: false }> {
  return { ok: false, reason: redact(err.message), throttled: true, ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }) };
}

interface GraphqlError {
  message?: unknown;
  extensions?: { code?: unknown };
}

/**
 * Maps a GraphQL error reply (`errors[0].extensions.code`, else the HTTP status) to a coded, scrubbed error. Wiz
 * answers each code with its own 4xx (see the sandbox's api.ts for the sources), and a 4xx is a refusal: the call
 * was not applied. A code under a 5xx is not trusted to mean that: a gateway or a failing server may have sent
 * it after the request reached Wiz, so the outcome stays unknown. A code under a 200 (a GraphQL server's field
 * error) is Wiz's answer, so it counts as a refusal too.
 */
export function graphqlFailure(what: string, status: number, body: unknown, retryAfter?: number): WizCallError {
  const first = (body as { errors?: GraphqlError[] } | undefined)?.errors?.[0];
  const code = str(first?.extensions?.code);
  const message = str(first?.message);
  const detail = `${code ? `: ${code}` : ''}${message ? ` (${clip(message)})` : ''}`;
  if (status >= 500) return statusFailure(what, status, retryAfter, detail);
  const scopes = REQUIRED_SCOPES.map(describeScope).join(' and ');
  switch (code) {
    case 'UNAUTHENTICATED':
      return new WizCallError('TARGET_AUTH_FAILED', `${what}${detail}`, false, undefined, undefined, true, status);
    case 'UNAUTHORIZED':
    case 'FORBIDDEN':
    case 'FORBIDDEN_IP':
      return new WizCallError('TARGET_PERMISSION_DENIED', `${what}${detail}; the account that authenticates needs the scopes ${scopes}`, false, undefined, undefined, true, status);
    case 'NOT_FOUND':
      return new WizCallError('TARGET_NOT_FOUND', `${what}${detail}`, false, undefined, undefined, true, status);
    case 'RATE_LIMIT_EXCEEDED':
      return new WizCallError('TARGET_THROTTLED', `${what}${detail}`, true, retryAfter, undefined, true, status);
    case 'BAD_USER_INPUT':
      return new WizCallError('TARGET_REQUEST_FAILED', `${what}${detail}`, false, undefined, undefined, true, status);
    case 'INTERNAL':
      return new WizCallError('TARGET_REQUEST_FAILED', `${what}${detail}`, true, retryAfter, undefined, false, status);
    default:
      // A 2xx we cannot read (cut short, mangled by a proxy) is retried like a 5xx: every call we make is safe to
      // repeat, and for the rotation a repeat is the only way to learn a secret Wiz has already switched to.
      return status >= 200 && status < 300
        ? new WizCallError('TARGET_REQUEST_FAILED', `${what}${detail || ': the reply holds no data'}`, true, retryAfter, undefined, false, status)
        : statusFailure(what, status, retryAfter, detail);
  }
}

const ACCOUNT_FIELDS = 'id name clientId enabled scopes expiresAt lastRotatedAt';

const FIND_QUERY = `query ServiceAccountsForRotation($first: Int, $after: String, $filterBy: ServiceAccountFilters) {
  serviceAccounts(first: $first, after: $after, filterBy: $filterBy) {
    nodes { ${ACCOUNT_FIELDS} }
    pageInfo { hasNextPage endCursor }
  }
}`;

const LIST_QUERY = `query ServiceAccountsForDiscovery($first: Int, $after: String) {
  serviceAccounts(first: $first, after: $after) {
    nodes { ${ACCOUNT_FIELDS} }
    pageInfo { hasNextPage endCursor }
  }
}`;

const ROTATE_MUTATION = `mutation RotateServiceAccountSecret($ID: String!) {
  rotateServiceAccountSecret(ID: $ID) { serviceAccount { id clientId lastRotatedAt clientSecret } }
}`;

const UPDATE_MUTATION = `mutation UpdateServiceAccount($input: UpdateServiceAccountInput!) {
  updateServiceAccount(input: $input) { serviceAccount { id clientId expiresAt } }
}`;

function toAccount(node: unknown): ServiceAccount | undefined {
  const n = node as Record<string, unknown> | null;
  if (!n || typeof n.clientId !== 'string' || typeof n.id !== 'string') return undefined;
  return {
    id: n.id,
    name: str(n.name) ?? n.clientId,
    clientId: n.clientId,
    enabled: n.enabled !== false,
    scopes: Array.isArray(n.scopes) ? n.scopes.filter((s): s is string => typeof s === 'string') : [],
    expiresAt: str(n.expiresAt) ?? null,
    lastRotatedAt: str(n.lastRotatedAt) ?? null,
  };
}

/**
 * Wiz's public guidance is no more than 3 API requests a second per service account (sandbox/wiz/limits.ts). A
 * process that sends many, `report --check` over a fleet or discover's paging, keeps each account a little under
 * that (at exactly the limit, a request that reaches Wiz early is refused) instead of running into
 * RATE_LIMIT_EXCEEDED and waiting it out; a rotation's three requests fit in the burst and never wait.
 */
export const WIZ_API_PACE = { burst: 3, perSecond: 2.5 };
const paces = new Map<string, Pacer>();
function paceFor(clientId: string): Pacer {
  let pacer = paces.get(clientId);
  if (!pacer) paces.set(clientId, (pacer = new Pacer(WIZ_API_PACE.burst, WIZ_API_PACE.perSecond)));
  return pacer;
}

/** Wiz's GraphQL API with one bearer token. */
export class WizGraphql {
  constructor(
    readonly url: string,
    private readonly token: WizToken,
    private readonly options: CallOptions,
  ) {}

  async #request(what: string, query: string, variables: Record<string, unknown>, settleTimeouts = false): Promise<Record<string, unknown>> {
    return withRetries(what, this.options, async () => {
      await paceFor(this.token.clientId).take();
      const reply = await send(
        what,
        this.url,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${this.token.bearer.reveal()}`, 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify({ query, variables }),
        },
        this.options.deadline,
      );
      const body = reply.body as { data?: unknown; errors?: unknown[] } | undefined;
      const data = body?.data;
      if (reply.status === 200 && !(body?.errors?.length) && data && typeof data === 'object') return data as Record<string, unknown>;
      throw graphqlFailure(what, reply.status, body, retryAfterMs(reply.headers));
    }, settleTimeouts);
  }

  /** The account whose clientId is exactly this one (filterBy.name also matches names), or undefined. */
  async findServiceAccount(clientId: string): Promise<ServiceAccount | undefined> {
    let after: string | null = null;
    for (let page = 0; page < MAX_PAGES; page++) {
      const data = await this.#request(`reading Wiz service account ${clientId}`, FIND_QUERY, { first: PAGE_SIZE, after, filterBy: { name: clientId } });
      const conn = data.serviceAccounts as { nodes?: unknown[]; pageInfo?: { hasNextPage?: unknown; endCursor?: unknown } } | undefined;
      const found = (conn?.nodes ?? []).map(toAccount).find((a) => a?.clientId === clientId);
      if (found) return found;
      const next = conn?.pageInfo?.hasNextPage === true ? str(conn.pageInfo.endCursor) : undefined;
      if (!next) return undefined;
      after = next;
    }
    return undefined;
  }

  /** Every service account, a page of PAGE_SIZE at a time (serviceAccounts(first, after) and its pageInfo). */
  async *serviceAccounts(maxPages = 10_000): AsyncGenerator<ServiceAccount[]> {
    let after: string | null = null;
    for (let page = 0; page < maxPages; page++) {
      const data = await this.#request('listing Wiz service accounts', LIST_QUERY, { first: PAGE_SIZE, after });
      const conn = data.serviceAccounts as { nodes?: unknown[]; pageInfo?: { hasNextPage?: unknown; endCursor?: unknown } } | undefined;
      if (!conn || !Array.isArray(conn.nodes)) throw new WizCallError('TARGET_REQUEST_FAILED', 'listing Wiz service accounts: the reply holds no nodes', false);
      yield conn.nodes.map(toAccount).filter((a): a is ServiceAccount => a !== undefined);
      const next = conn.pageInfo?.hasNextPage === true ? str(conn.pageInfo.endCursor) : undefined;
      if (!next) return;
      after = next;
    }
    throw new WizCallError('TARGET_REQUEST_FAILED', `listing Wiz service accounts: more than ${maxPages} pages`, false);
  }

  /**
   * Replaces the account's secret; the old one stops working at once. Retried on transient failures: a reply
   * lost after Wiz applied the rotation leaves a secret nobody knows, and only another rotation gets back to one
   * the record can hold (the token keeps working across a rotation).
   */
  async rotateSecret(clientId: string): Promise<Secret> {
    const what = `replacing the secret of Wiz service account ${clientId}`;
    const data = await this.#request(what, ROTATE_MUTATION, { ID: clientId }, true);
    const payload = data.rotateServiceAccountSecret as { serviceAccount?: { clientSecret?: unknown } } | undefined;
    const value = str(payload?.serviceAccount?.clientSecret);
    if (!value) throw new WizCallError('TARGET_REQUEST_FAILED', `${what}: the reply holds no clientSecret (Wiz may have replaced the secret anyway)`, false);
    return new Secret(value);
  }

  /** Sets the account's expiry; returns the expiry Wiz reports back. */
  async setExpiry(clientId: string, expiresAt: string): Promise<string | null> {
    const data = await this.#request(`setting the expiry of Wiz service account ${clientId} to ${expiresAt}`, UPDATE_MUTATION, {
      input: { serviceAccountId: clientId, patch: { expiresAt } },
    });
    const payload = data.updateServiceAccount as { serviceAccount?: { expiresAt?: unknown } } | undefined;
    return str(payload?.serviceAccount?.expiresAt) ?? null;
  }
}
