// Microsoft Graph and Entra through the real clients: @azure/identity for tokens, the Graph client for the
// application's passwords. This module turns their errors into our codes and bounds every call by a timeout
// and the run's deadline (neither client has a deadline of its own, and Graph's retry honours Retry-After up
// to three minutes).
import { createHash } from 'node:crypto';
import { type HttpClient, type PipelineRequest, type PipelineResponse, createDefaultHttpClient } from '@azure/core-rest-pipeline';
import { type AccessToken, ClientSecretCredential } from '@azure/identity';
import {
  AuthenticationHandler,
  Client,
  type Context,
  GraphError,
  type Middleware,
  RetryHandler,
  RetryHandlerOptions,
  TelemetryHandler,
  type GraphRequest,
} from '@microsoft/microsoft-graph-client';
import type { Deadline } from '../../deadline.js';
import { RotateError, describe, type ErrorCode } from '../../errors.js';
import { sharedAgent } from '../../http/agent.js';
import { type Fetch, type FetchReply, agentFetch } from '../../http/fetch.js';
import { MAX_REPLY_BYTES, ReplyTooLargeError } from '../../http/reply-limit.js';
import { type Secret, redact } from '../../secret.js';
import type { PasswordCredential } from './plan.js';

/** The global cloud's Graph scope; a national cloud's is its own Graph's (clouds.ts). */
export const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';
const GRAPH_MAX_RETRIES = 3;

export interface AzureEndpoints {
  authorityHost: string;
  graphEndpoint: string;
  /** The cloud's Graph resource (`https://graph.microsoft.us`): the token's audience, whatever graphEndpoint is. */
  graphResource: string;
}

export const graphScope = (endpoints: AzureEndpoints) => `${endpoints.graphResource}/.default`;

export interface Application {
  id: string;
  appId: string;
  displayName: string;
  signInAudience: string | undefined;
  passwordCredentials: PasswordCredential[];
}

/** An owner of an application, as Graph lists it; `appId` is null when the caller may not read service principals. */
export interface DirectoryObject {
  id: string;
  type: string | undefined;
  appId: string | undefined;
}

const AADSTS = /AADSTS(\d+)/;

/**
 * Entra's throttling codes: AADSTS50196 (a client request loop: too many identical requests in a short time; the
 * public reports quote it after a handful to ~20 quick repeats, answered as HTTP 400, e.g. MSAL.PS#28,
 * pnp/powershell#2995, microsoft-authentication-library-for-dotnet#2353) and AADSTS90055 (TenantThrottlingError,
 * too many requests for the tenant).
 */
const THROTTLING_CODES = new Set(['50196', '90055']);

/**
 * Maps an @azure/identity failure to a code; `invalidSecret` is the propagation case for verification and
 * `throttled` the case where Entra asks the caller to slow down, which will also fix itself.
 */
export function classifyTokenError(err: unknown): { code: ErrorCode; invalidSecret: boolean; throttled: boolean; message: string } {
  const message = redact(describe(err));
  const sts = AADSTS.exec(message)?.[1];
  if (sts === '7000215' || sts === '7000222') return { code: 'TARGET_AUTH_FAILED', invalidSecret: true, throttled: false, message };
  if (sts && THROTTLING_CODES.has(sts)) return { code: 'TARGET_THROTTLED', invalidSecret: false, throttled: true, message };
  if (sts) return { code: 'TARGET_AUTH_FAILED', invalidSecret: false, throttled: false, message };
  if (err instanceof Error && (err.name === 'AbortError' || /abort|timed? ?out/i.test(err.message))) return { code: 'TARGET_TIMEOUT', invalidSecret: false, throttled: false, message };
  return { code: 'TARGET_REQUEST_FAILED', invalidSecret: false, throttled: false, message };
}

/**
 * What a failed Graph reply said, for the error line: Graph's own error code and message when the body was
 * Graph's, else what the body was (empty, HTML from a proxy, not JSON), never a parser's complaint.
 */
function describeGraphBody(err: GraphError): string {
  const headers = err.headers as Headers | undefined;
  const type = headers?.get?.('content-type') ?? undefined;
  if (err.code && err.code !== 'SyntaxError' && err.message) return ` ${err.code}: ${redact(err.message).slice(0, 200)}`;
  // The client keeps a body it could not read as Graph's error in `body` (a string, or what it parsed), and a
  // parser's SyntaxError when the JSON was cut short or empty.
  const length = headers?.get?.('content-length');
  const body = err.code === 'SyntaxError' ? '' : typeof err.body === 'string' ? err.body : err.body == null ? '' : String(JSON.stringify(err.body) ?? '');
  if (length === '0' || (err.code !== 'SyntaxError' && body.trim() === '' && !length)) return ', empty body';
  const facts = [type, length ? `${length} bytes` : undefined].filter(Boolean);
  return `, a body that is not a Graph error${facts.length ? ` (${facts.join(', ')})` : ''}`;
}

function graphError(action: string, err: unknown): RotateError {
  if (err instanceof RotateError) return err;
  // The Graph client wraps token and network failures as GraphError with statusCode -1.
  if (err instanceof GraphError && err.statusCode > 0) {
    const code = err.code ?? '';
    let mapped: ErrorCode = 'TARGET_REQUEST_FAILED';
    if (err.statusCode === 401) mapped = 'TARGET_AUTH_FAILED';
    else if (err.statusCode === 403) mapped = 'TARGET_PERMISSION_DENIED';
    else if (err.statusCode === 404) mapped = 'TARGET_NOT_FOUND';
    else if (err.statusCode === 429) mapped = 'TARGET_THROTTLED';
    else if (code === 'TooManyAppPasswords') mapped = 'TARGET_LIMIT_REACHED';
    else if (/AsPerAppPolicy$/.test(code)) mapped = 'TARGET_POLICY_REJECTED';
    const what = `HTTP ${err.statusCode}${describeGraphBody(err)}`;
    // A 4xx is Graph refusing the request: it was not applied. (The retry handler repeats writes on 429 only,
    // which is a refusal too, so every attempt of a refused call was refused.)
    const refused = err.statusCode >= 400 && err.statusCode < 500 && err.statusCode !== 408;
    return new RotateError(mapped, `Graph ${action}: ${what}`, { cause: err, refused, status: err.statusCode });
  }
  const token = classifyTokenError(err);
  return new RotateError(token.code, `Graph ${action}: Entra ID token request failed: ${token.message}`, { cause: err });
}

/**
 * A Graph token from Entra ID, bounded by the per-call timeout however the credential's own HTTP client behaves:
 * MSAL's authority discovery does not follow the abort signal, so a reply that never ends (a proxy trickling a
 * body) held a run until its hard stop. The request may go on in the background; the run does not wait for it.
 */
export async function boundedToken(credential: ClientSecretCredential, deadline: Deadline, scope: string): Promise<AccessToken | null> {
  const ms = deadline.timeout();
  const signal = AbortSignal.timeout(ms);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RotateError('TARGET_TIMEOUT', `Entra ID token request: no complete reply within ${Math.round(ms / 1000)} s`)), ms + 250);
    timer.unref();
  });
  try {
    return await Promise.race([credential.getToken(scope, { abortSignal: signal }), late]);
  } catch (err) {
    // MSAL reports a failed metadata request as `endpoints_resolution_error` and drops why: a refused proxy tunnel,
    // a refused connection, an untrusted certificate. The HTTP client saw it; the error line says it.
    const failure = replies.get(credential)?.failure;
    if (failure && !(err instanceof RotateError) && !describe(err).includes(failure)) throw new Error(`${describe(err)} (the request failed: ${failure})`, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** What each credential's HTTP client saw of its last request (newCredential, newProbe). */
const replies = new WeakMap<ClientSecretCredential, TokenReplySeen>();

/** What the last token-endpoint reply said about throttling: the identity library's errors keep neither. */
export interface TokenReplySeen {
  status?: number;
  retryAfterMs?: number;
  /** The last request failed with no reply at all (a connection or proxy failure): why, scrubbed. */
  failure?: string;
}

/** Retry-After as delay-seconds or an HTTP date (RFC 9110 §10.2.3), in ms; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Entra's HTTP client: the identity library's own default client, with every reply read as a stream and capped
 * (src/http/reply-limit.ts) before the library parses it from `bodyAsText`, and every connection from our
 * RoutingAgent (src/http/agent.ts). The pipeline has a proxy policy of its own that reads the same variables
 * differently (HTTPS_PROXY for http URLs too, NO_PROXY hosts matched exactly, no `*`, no ports); it steps aside
 * for a request that already has an agent, which the credential's `agent` option gives every request before it
 * runs. The agent is set here again so that Entra's route is ours whatever the pipeline does.
 */
function cappedIdentityClient(observed?: TokenReplySeen): HttpClient {
  const inner = createDefaultHttpClient();
  return {
    sendRequest: async (request: PipelineRequest): Promise<PipelineResponse> => {
      request.agent = sharedAgent();
      request.streamResponseStatusCodes = new Set([Number.POSITIVE_INFINITY]);
      if (observed) observed.failure = undefined;
      let response: PipelineResponse;
      try {
        response = await inner.sendRequest(request);
      } catch (err) {
        if (observed) observed.failure = describe(err);
        throw err;
      }
      if (observed) {
        observed.status = response.status;
        observed.retryAfterMs = retryAfterMs(response.headers.get('retry-after'));
      }
      const stream = response.readableStreamBody;
      if (!stream) return response;
      const chunks: Buffer[] = [];
      let seen = 0;
      for await (const chunk of stream as AsyncIterable<Buffer | string>) {
        seen += chunk.length;
        if (seen > MAX_REPLY_BYTES) {
          (stream as { destroy?: () => void }).destroy?.();
          throw new ReplyTooLargeError(`Entra ID ${new URL(request.url).host}`);
        }
        chunks.push(Buffer.from(chunk));
      }
      response.readableStreamBody = undefined;
      response.bodyAsText = Buffer.concat(chunks).toString('utf8');
      return response;
    },
  };
}

/** Links middleware the way the Graph client expects: each one's setNext, the first returned. */
function chain(handlers: Middleware[]): Middleware {
  for (let i = 0; i < handlers.length - 1; i++) handlers[i]!.setNext?.(handlers[i + 1]!);
  return handlers[0]!;
}

/** Reads every Graph reply body at most up to the cap (src/http/reply-limit.ts), and never follows a redirect. */
function capReplies(host: string): Middleware {
  let next: Middleware | undefined;
  return {
    setNext: (n: Middleware) => {
      next = n;
    },
    execute: async (context: Context) => {
      context.options = { ...context.options, redirect: 'manual' };
      await next!.execute(context);
      const res = context.response as unknown as FetchReply | undefined;
      if (!res) return;
      // Read here, so that the cap's error is ours; the client then parses the bytes already read.
      await res.bytes(`Graph ${host}`).catch((err: unknown) => {
        throw err instanceof ReplyTooLargeError ? new RotateError('TARGET_REQUEST_FAILED', `${err.message} (HTTP ${res.status})`, { status: res.status }) : err;
      });
    },
  };
}

/**
 * The end of the chain, in place of the SDK's HTTPMessageHandler (which calls the global fetch, deaf to proxies):
 * the same call through a fetch on our agent (src/http/fetch.ts). The Graph client sends the URL as a string.
 */
function sendWith(fetch: Fetch): Middleware {
  return {
    execute: async (context: Context) => {
      // The client reads a reply only as far as FetchReply goes (status, headers, json, text, body).
      context.response = (await fetch(context.request as string, context.options ?? {})) as unknown as Response;
    },
  };
}

/** What a reply held, for a message: its keys, never its values. */
function shapeOf(reply: unknown): string {
  if (reply === null || typeof reply !== 'object') return `a ${reply === null ? 'null' : typeof reply}`;
  const keys = Object.keys(reply).slice(0, 5).map((k) => JSON.stringify(k.slice(0, 30)));
  return keys.length ? `an object with ${keys.join(', ')}` : 'an empty object';
}

/**
 * A Graph reply that claims to be an application, checked before anything reads it: a 200 of another shape (a
 * proxy's page, an error body) must end as a coded error, not as a TypeError deep in the plan.
 */
function asApplication(what: string, reply: unknown): Application {
  const r = (reply ?? {}) as Record<string, unknown>;
  const creds = r.passwordCredentials;
  const ok =
    typeof r.id === 'string' &&
    typeof r.appId === 'string' &&
    (creds === undefined || creds === null || (Array.isArray(creds) && creds.every((c) => c !== null && typeof c === 'object' && typeof (c as { keyId?: unknown }).keyId === 'string')));
  if (!ok) throw new RotateError('TARGET_REQUEST_FAILED', `Graph ${what}: HTTP 200, but the reply is not an application (${shapeOf(reply)})`, { status: 200 });
  return {
    id: r.id as string,
    appId: r.appId as string,
    displayName: typeof r.displayName === 'string' ? r.displayName : '',
    signInAudience: typeof r.signInAudience === 'string' ? r.signInAudience : undefined,
    passwordCredentials: (creds ?? []) as PasswordCredential[],
  };
}

/**
 * The admin credentials' ClientSecretCredential, one per tenant, client, secret and authority in a process, so its
 * token cache serves every Graph call made with them: `report --check` connects once per record, and a token
 * request per record would be the same request repeated, which Entra's loop protection refuses after about twenty
 * a minute (AADSTS50196). A rotation makes one anyway. Keyed by a digest: the map holds no secret of its own.
 */
const credentials = new Map<string, ClientSecretCredential>();

export function newCredential(tenantId: string, clientId: string, secret: Secret, endpoints: AzureEndpoints): ClientSecretCredential {
  const key = createHash('sha256').update([endpoints.authorityHost, tenantId.toLowerCase(), clientId.toLowerCase(), secret.reveal()].join('\0')).digest('base64');
  const known = credentials.get(key);
  if (known) return known;
  const made = makeCredential(tenantId, clientId, secret, endpoints);
  credentials.set(key, made);
  return made;
}

function makeCredential(tenantId: string, clientId: string, secret: Secret, endpoints: AzureEndpoints): ClientSecretCredential {
  // Instance discovery asks login.microsoftonline.com to vouch for the authority: one more round trip per
  // credential, and impossible for national clouds and the sandbox. The authority is the user's setting.
  // No redirects: a token request sends the secret, and a 3xx must not carry it to wherever it points.
  const seen: TokenReplySeen = {};
  const credential = new ClientSecretCredential(tenantId, clientId, secret.reveal(), {
    authorityHost: endpoints.authorityHost,
    disableInstanceDiscovery: true,
    redirectOptions: { maxRetries: 0 },
    httpClient: cappedIdentityClient(seen),
    agent: sharedAgent(),
  });
  replies.set(credential, seen);
  return credential;
}

/**
 * A one-token credential for verification: no retries of its own (the verify loop paces the tries and honours
 * Retry-After itself; the pipeline's retries would multiply the requests it counts), and `seen` tells what the
 * last reply's status and Retry-After were.
 */
export function newProbe(tenantId: string, clientId: string, secret: Secret, endpoints: AzureEndpoints): { credential: ClientSecretCredential; seen: TokenReplySeen } {
  const seen: TokenReplySeen = {};
  const credential = new ClientSecretCredential(tenantId, clientId, secret.reveal(), {
    authorityHost: endpoints.authorityHost,
    disableInstanceDiscovery: true,
    redirectOptions: { maxRetries: 0 },
    retryOptions: { maxRetries: 0 },
    httpClient: cappedIdentityClient(seen),
    agent: sharedAgent(),
  });
  replies.set(credential, seen);
  return { credential, seen };
}

export class GraphApplications {
  readonly #client: Client;
  readonly #deadline: Deadline;
  readonly #credential: ClientSecretCredential;
  readonly #host: string;
  readonly #scope: string;

  constructor(credential: ClientSecretCredential, endpoints: AzureEndpoints, deadline: Deadline) {
    this.#deadline = deadline;
    this.#credential = credential;
    this.#scope = graphScope(endpoints);
    const host = new URL(endpoints.graphEndpoint).hostname;
    this.#host = host;
    // Not the SDK's TokenCredentialAuthenticationProvider: it asks for the token with no abort signal, so a
    // hung token endpoint would hold the run until its deadline. Each token request gets the per-call bound.
    const authProvider = {
      getAccessToken: async () => {
        const token = await boundedToken(credential, deadline, this.#scope);
        if (!token) throw new RotateError('TARGET_AUTH_FAILED', 'Entra ID issued no token for Microsoft Graph');
        return token.token;
      },
    };
    this.#client = Client.initWithMiddleware({
      // The SDK's default chain without its redirect handler (a redirect is an answer to report, never one to
      // follow with the admin's token), with every reply body capped before anything parses it, and sent through
      // the gateway's proxy when it has one.
      middleware: chain([new AuthenticationHandler(authProvider), new RetryHandler(new RetryHandlerOptions()), new TelemetryHandler(), capReplies(host), sendWith(agentFetch(sharedAgent()))]),
      baseUrl: endpoints.graphEndpoint,
      // The client only attaches the token for Microsoft's hosts and the ones listed here.
      customHosts: new Set([host]),
    });
  }

  /**
   * Bounds a request by a timeout and the deadline. `onlyThrottled` keeps the retry handler from repeating a
   * POST that may have been applied: it retries 503 and 504 too, and a repeated addPassword makes a second secret.
   */
  #bounded(req: GraphRequest, onlyThrottled = false): GraphRequest {
    const deadline = this.#deadline;
    return req
      .option('signal', AbortSignal.timeout(deadline.timeout()))
      .middlewareOptions([
        new RetryHandlerOptions(1, GRAPH_MAX_RETRIES, (delaySeconds, _attempt, _req, _opts, res) =>
          (!onlyThrottled || res.status === 429) && delaySeconds * 1000 < deadline.remaining() - 5_000,
        ),
      ]);
  }

  async #call<T>(action: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw graphError(action, err);
    }
  }

  /** Reads an application by object ID, or by client ID when no object has that ID (Keeper's guide mixes them up). */
  async getApplication(id: string): Promise<Application> {
    const select = 'id,appId,displayName,signInAudience,passwordCredentials';
    try {
      return asApplication(`reading application ${id}`, await this.#call(`reading application ${id}`, () => this.#bounded(this.#client.api(`/applications/${id}`).select(select)).get()));
    } catch (err) {
      if (!(err instanceof RotateError) || err.code !== 'TARGET_NOT_FOUND') throw err;
    }
    try {
      const what = `reading application with client ID ${id}`;
      return asApplication(what, await this.#call(what, () => this.#bounded(this.#client.api(`/applications(appId='${id}')`).select(select)).get()));
    } catch (err) {
      if (err instanceof RotateError && err.code === 'TARGET_NOT_FOUND') {
        throw new RotateError('TARGET_NOT_FOUND', `no application has object ID or client ID ${id} in this tenant (or the admin app may not see it)`, { cause: err });
      }
      throw err;
    }
  }

  /** GET /applications/{id}/owners, every page of it. */
  async listOwners(objectId: string): Promise<DirectoryObject[]> {
    const out: DirectoryObject[] = [];
    const what = `listing the owners of application ${objectId}`;
    // A reply that is not a list of owners (a proxy's page, an error body under 200) must not read as "no owners":
    // that would refuse a correct allow-list with TARGET_NOT_ALLOWED instead of naming the bad reply.
    const asPage = (reply: unknown) => {
      const r = reply as { value?: unknown; '@odata.nextLink'?: unknown } | null;
      if (r === null || typeof r !== 'object' || !Array.isArray(r.value) || !r.value.every((o) => o !== null && typeof o === 'object') || (r['@odata.nextLink'] !== undefined && typeof r['@odata.nextLink'] !== 'string')) {
        throw new RotateError('TARGET_REQUEST_FAILED', `Graph ${what}: HTTP 200, but the reply is not a list of owners (${shapeOf(reply)})`, { status: 200 });
      }
      return r as { value: Array<Record<string, unknown>>; '@odata.nextLink'?: string };
    };
    let page = asPage(await this.#call(what, () => this.#bounded(this.#client.api(`/applications/${objectId}/owners`)).get()));
    for (let pages = 1; ; pages += 1) {
      for (const o of page.value) {
        if (typeof o.id !== 'string') continue;
        out.push({ id: o.id, type: typeof o['@odata.type'] === 'string' ? o['@odata.type'] : undefined, appId: typeof o.appId === 'string' ? o.appId : undefined });
      }
      const next = page['@odata.nextLink'];
      if (!next || pages >= 20) break;
      // Only on Graph's own host: the client attaches the admin's token to whatever link it is given.
      if (new URL(next).hostname !== this.#host) throw new RotateError('TARGET_REQUEST_FAILED', `Graph listed the owners of application ${objectId} with a next page on another host`);
      page = asPage(await this.#call(what, () => this.#bounded(this.#client.api(next)).get()));
    }
    return out;
  }

  /**
   * Every application, a page at a time (`$top` 100): those the admin app owns (its service principal's
   * ownedObjects, which Application.ReadWrite.OwnedBy may read), or the tenant's whole list. Each page's
   * `@odata.nextLink` is followed until there is none, only on Graph's own host (the client sends the admin's
   * token wherever the link points).
   */
  async *applications(scope: { ownedBy: string } | 'all', maxPages = 10_000): AsyncGenerator<Application[]> {
    const select = 'id,appId,displayName,signInAudience,passwordCredentials';
    const first = scope === 'all' ? '/applications' : `/servicePrincipals(appId='${scope.ownedBy}')/ownedObjects/microsoft.graph.application`;
    const what = scope === 'all' ? 'listing applications' : `listing the applications app ${scope.ownedBy} owns`;
    const asPage = (reply: unknown) => {
      const r = reply as { value?: unknown; '@odata.nextLink'?: unknown } | null;
      if (r === null || typeof r !== 'object' || !Array.isArray(r.value) || (r['@odata.nextLink'] !== undefined && typeof r['@odata.nextLink'] !== 'string')) {
        throw new RotateError('TARGET_REQUEST_FAILED', `Graph ${what}: HTTP 200, but the reply is not a list (${shapeOf(reply)})`, { status: 200 });
      }
      return r as { value: unknown[]; '@odata.nextLink'?: string };
    };
    let page = asPage(await this.#call(what, () => this.#bounded(this.#client.api(first).top(100).select(select)).get()));
    for (let pages = 1; ; pages += 1) {
      yield page.value.map((v) => asApplication(what, v));
      const next = page['@odata.nextLink'];
      if (!next) return;
      if (pages >= maxPages) throw new RotateError('TARGET_REQUEST_FAILED', `Graph ${what}: more than ${maxPages} pages`);
      if (new URL(next).hostname !== this.#host) throw new RotateError('TARGET_REQUEST_FAILED', `Graph ${what}: the next page is on another host`);
      page = asPage(await this.#call(what, () => this.#bounded(this.#client.api(next)).get()));
    }
  }

  /**
   * The admin's service principal object ID, from the `oid` claim of the token Graph is called with (MSAL's cache
   * answers, no request). An owner listed without permission to read service principals has only its ID, so this
   * is what tells the admin among the owners. Undefined when the token is not a readable JWT: Microsoft reserves
   * the right to change its format, and then only owners listed with their appId are recognised.
   */
  async callerObjectId(): Promise<string | undefined> {
    try {
      const token = await boundedToken(this.#credential, this.#deadline, this.#scope);
      const payload = token?.token.split('.')[1];
      if (!payload) return undefined;
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { oid?: unknown };
      return typeof claims.oid === 'string' ? claims.oid.toLowerCase() : undefined;
    } catch (err) {
      if (err instanceof SyntaxError) return undefined;
      throw graphError('reading the admin token', err);
    }
  }

  async addPassword(objectId: string, displayName: string, endDateTime: string): Promise<{ keyId: string; secretText: string; endDateTime: string }> {
    const what = `adding a client secret to application ${objectId}`;
    const reply: unknown = await this.#call(what, () =>
      this.#bounded(this.#client.api(`/applications/${objectId}/addPassword`), true).post({ passwordCredential: { displayName, endDateTime } }),
    );
    const r = (reply ?? {}) as Record<string, unknown>;
    if (typeof r.keyId !== 'string' || typeof r.secretText !== 'string' || !r.secretText) {
      // Answered, so whatever it made is on the app now: the caller looks for it (status set).
      throw new RotateError('TARGET_REQUEST_FAILED', `Graph ${what}: the reply has no keyId and secretText (${shapeOf(reply)}); Graph may have added a secret anyway`, { status: 200 });
    }
    return { keyId: r.keyId, secretText: r.secretText, endDateTime: typeof r.endDateTime === 'string' ? r.endDateTime : endDateTime };
  }

  async removePassword(objectId: string, keyId: string): Promise<void> {
    await this.#call(`removing client secret ${keyId} from application ${objectId}`, () =>
      this.#bounded(this.#client.api(`/applications/${objectId}/removePassword`)).post({ keyId }),
    );
  }
}
