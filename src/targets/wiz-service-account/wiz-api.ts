// Wiz's token endpoint and GraphQL API through Node's global fetch: client-credentials tokens, reading a service
// account, replacing its secret and setting its expiry. Every call is bounded by its own timeout and the run's
// deadline; failures become RotateErrors with stable codes, and messages are built from IDs, status codes and
// the service's own error text (scrubbed), never from a request body or a reply that may hold a secret.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Deadline } from '../../deadline.js';
import { RotateError, describe, type ErrorCode } from '../../errors.js';
import { Secret, redact } from '../../secret.js';
import { ReplyTooLargeError, readCapped } from '../../http/reply-limit.js';

export const DEFAULT_AUTH_URL = 'https://auth.app.wiz.io/oauth/token';
/** What the account that authenticates needs: reading the account, rotating it and setting its expiry. */
export const REQUIRED_SCOPES = ['read:service_accounts', 'update:service_accounts'] as const;

const ATTEMPTS = 3;
/** A Retry-After longer than this is not waited for: the run reports the throttling instead. */
const MAX_RETRY_WAIT_MS = 30_000;
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
  ) {
    super(code, message, { ...(cause === undefined ? {} : { cause }), refused });
  }

  /** The same failure, no longer known to be a refusal: an earlier attempt of the same call may have been applied. */
  uncertain(): WizCallError {
    return new WizCallError(this.code, `${this.message} (an earlier attempt may have been applied)`, this.transient, this.retryAfterMs, this, false);
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

export type TokenResult = { ok: true; token: WizToken } | { ok: false; reason: string };

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

/** `https://api.<dc>.app.wiz.io/graphql`, from the token's `dc` claim (commercial tenants; gov tenants set wiz_api_url). */
export function apiUrlFor(dataCenter: string): string {
  return `https://api.${dataCenter}.app.wiz.io/graphql`;
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

function retryAfterMs(headers: Headers): number | undefined {
  const v = headers.get('retry-after');
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

const clip = (text: string) => redact(text.replace(/\s+/g, ' ')).slice(0, 200);

interface Reply {
  status: number;
  headers: Headers;
  body: unknown;
}

/** One HTTP exchange: network failures and timeouts become WizCallErrors; the body is parsed as JSON when it is JSON. */
async function send(what: string, url: string, init: RequestInit, deadline: Deadline): Promise<Reply> {
  deadline.check(what);
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(deadline.timeout()) });
    text = Buffer.from(await readCapped(res.body, `${what}: ${new URL(url).host}`)).toString('utf8');
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
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      const last = uncertain && err instanceof WizCallError && err.refused ? err.uncertain() : err;
      if (!(err instanceof WizCallError) || !err.transient || attempt >= ATTEMPTS) throw last;
      if (settleTimeouts && err.code === 'TARGET_TIMEOUT') throw last;
      uncertain ||= !err.refused;
      const wait = err.retryAfterMs ?? 500 * 2 ** (attempt - 1);
      if (wait > MAX_RETRY_WAIT_MS || wait >= options.deadline.remaining() - 1000) throw uncertain ? (err.refused ? err.uncertain() : err) : err;
      options.onRetry?.(what, attempt, err, wait);
      await sleep(wait);
    }
  }
}

/** Maps a non-success status without a recognisable error body. */
function statusFailure(what: string, status: number, retryAfter: number | undefined, detail: string): WizCallError {
  if (status === 429) return new WizCallError('TARGET_THROTTLED', `${what}: throttled (HTTP 429)${detail}`, true, retryAfter, undefined, true);
  if (status >= 500) return new WizCallError('TARGET_REQUEST_FAILED', `${what}: HTTP ${status}${detail}`, true, retryAfter);
  const refused = status >= 400 && status !== 408;
  if (status === 401) return new WizCallError('TARGET_AUTH_FAILED', `${what}: HTTP 401${detail}`, false, undefined, undefined, refused);
  if (status === 403) return new WizCallError('TARGET_PERMISSION_DENIED', `${what}: HTTP 403${detail}`, false, undefined, undefined, refused);
  if (status === 404) return new WizCallError('TARGET_NOT_FOUND', `${what}: HTTP 404${detail}`, false, undefined, undefined, refused);
  return new WizCallError('TARGET_REQUEST_FAILED', `${what}: HTTP ${status}${detail}`, false, undefined, undefined, refused);
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

/**
 * Gets a client-credentials token. `invalid_client` (a wrong or replaced secret, an unknown, disabled or expired
 * account) is an answer, not an error: verification reads it as "not accepted (yet)".
 */
export async function requestToken(authUrl: string, clientId: string, secret: Secret, options: CallOptions): Promise<TokenResult> {
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
    throw statusFailure(what, reply.status, retryAfterMs(reply.headers), detail);
  });
}

interface GraphqlError {
  message?: unknown;
  extensions?: { code?: unknown };
}

/** Maps a GraphQL error reply (`errors[0].extensions.code`, else the HTTP status) to a coded, scrubbed error. */
export function graphqlFailure(what: string, status: number, body: unknown, retryAfter?: number): WizCallError {
  const first = (body as { errors?: GraphqlError[] } | undefined)?.errors?.[0];
  const code = str(first?.extensions?.code);
  const message = str(first?.message);
  const detail = `${code ? `: ${code}` : ''}${message ? ` (${clip(message)})` : ''}`;
  switch (code) {
    case 'UNAUTHENTICATED':
      return new WizCallError('TARGET_AUTH_FAILED', `${what}${detail}`, false, undefined, undefined, true);
    case 'UNAUTHORIZED':
    case 'FORBIDDEN':
    case 'FORBIDDEN_IP':
      return new WizCallError('TARGET_PERMISSION_DENIED', `${what}${detail}; the account that authenticates needs the scopes ${REQUIRED_SCOPES.join(' and ')}`, false, undefined, undefined, true);
    case 'NOT_FOUND':
      return new WizCallError('TARGET_NOT_FOUND', `${what}${detail}`, false, undefined, undefined, true);
    case 'RATE_LIMIT_EXCEEDED':
      return new WizCallError('TARGET_THROTTLED', `${what}${detail}`, true, retryAfter, undefined, true);
    case 'BAD_USER_INPUT':
      return new WizCallError('TARGET_REQUEST_FAILED', `${what}${detail}`, false, undefined, undefined, true);
    case 'INTERNAL':
      return new WizCallError('TARGET_REQUEST_FAILED', `${what}${detail}`, true, retryAfter);
    default:
      // A 2xx we cannot read (cut short, mangled by a proxy) is retried like a 5xx: every call we make is safe to
      // repeat, and for the rotation a repeat is the only way to learn a secret Wiz has already switched to.
      return status >= 200 && status < 300 ? new WizCallError('TARGET_REQUEST_FAILED', `${what}${detail || ': the reply holds no data'}`, true, retryAfter) : statusFailure(what, status, retryAfter, detail);
  }
}

const ACCOUNT_FIELDS = 'id name clientId enabled scopes expiresAt lastRotatedAt';

const FIND_QUERY = `query ServiceAccountsForRotation($first: Int, $after: String, $filterBy: ServiceAccountFilters) {
  serviceAccounts(first: $first, after: $after, filterBy: $filterBy) {
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

/** Wiz's GraphQL API with one bearer token. */
export class WizGraphql {
  constructor(
    readonly url: string,
    private readonly token: WizToken,
    private readonly options: CallOptions,
  ) {}

  async #request(what: string, query: string, variables: Record<string, unknown>, settleTimeouts = false): Promise<Record<string, unknown>> {
    return withRetries(what, this.options, async () => {
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
