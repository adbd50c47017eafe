// The `azure` sandbox service: Entra's token endpoint and Microsoft Graph on one HTTPS host, which is what
// @azure/identity (authorityHost) and the Graph client (baseUrl + customHosts) need to agree on one name.
// Routing and the state API live here; wire formats are in entra.ts and graph.ts, rules in directory.ts.
import type { ControlApi } from '../control.js';
import type { Budget } from '../rate-limit.js';
import { RequestBudget, type Reply, type Route, type SandboxRequest, type SandboxService, type ThrottleContext } from '../service.js';
import { registerAzureControl } from './control.js';
import {
  type AppIds,
  type AppState,
  type CreateAppOptions,
  Directory,
  type DirectoryOptions,
  type DirectoryTiming,
  type SecretOptions,
  type SecretState,
  type TenantOptions,
  type TenantState,
  type TenantUpdate,
} from './directory.js';
import { LoopDetector, entraContext, openidConfiguration, tokenEndpoint } from './entra.js';
import { type GraphTarget, applicationJson, graphError, handleGraph, parseGraphPath } from './graph.js';
import { handleGraphList, parseGraphListPath } from './graph-lists.js';
import { newGuid } from './formats.js';
import { SANDBOX_CLOUDS, type SandboxCloud, TokenIssuer } from './tokens.js';

export const AZURE_SERVICE = 'azure';
export const AZURE_OPERATIONS = ['openidConfiguration', 'token', 'getApplication', 'listOwners', 'addPassword', 'removePassword'] as const;
export type AzureOperation = (typeof AZURE_OPERATIONS)[number];

/**
 * Graph's identity-and-access limits per application and tenant, as token buckets
 * (https://learn.microsoft.com/graph/throttling-limits, "Identity and access service limits"; the page says the
 * service itself is "based on a token bucket algorithm"): a resource-unit quota of 3,500 per 10 seconds for a
 * small tenant (under 50 users: the sandbox has none), a write quota of 3,000 per 2 minutes 30 seconds, and, for
 * apps open to personal Microsoft accounts, writes to the application "60 requests per minute". Costs, from the
 * same page: GET `applications` 2 resource units, less 1 with `$select`, never below 1; any other identity GET 1;
 * a POST 1 resource unit and 1 write. The per-app-across-tenants and per-tenant limits are far above anything one
 * sandbox tenant can send before these, so they are not modelled.
 */
export const GRAPH_DEFAULT_BUDGETS = {
  resourceUnits: { burst: 3500, perSecond: 350 },
  writes: { burst: 3000, perSecond: 20 },
  personalAppWrites: { burst: 60, perSecond: 1 },
} as const satisfies Record<string, Budget>;
export type GraphLimit = keyof typeof GRAPH_DEFAULT_BUDGETS;

const PERSONAL_AUDIENCES = new Set(['AzureADandPersonalMicrosoftAccount', 'PersonalMicrosoftAccount']);

/** Entra's usual app-only token lifetime. */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 3599;

export interface AzureServiceOptions {
  /** Clock for secrets, tokens and timestamps (ms since the epoch). */
  now?: () => number;
  tokenLifetimeSeconds?: number;
  /**
   * Graph's per-app-per-tenant request budgets: true for GRAPH_DEFAULT_BUDGETS, some of them overridden, or
   * false / absent for none. Only Graph calls are charged; the token endpoint has its own protection (entra.ts).
   */
  budget?: boolean | Partial<Record<GraphLimit, Budget>>;
  /** The budgets' clock (performance.now() by default); a test that stops it gets exactly `burst` calls. */
  budgetNow?: () => number;
  /** Timing of new secrets: propagation and read-lag medians, their spread and the seed (directory.ts). */
  timing?: Partial<DirectoryTiming>;
  /** The cloud this sandbox serves as (default `public`): tokens are issued and accepted for its Graph only. */
  cloud?: SandboxCloud;
}

const OPENID = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration\/?$/i;
const TOKEN = /^\/([^/]+)\/oauth2\/v2\.0\/token\/?$/i;

export class AzureService implements SandboxService {
  readonly name = AZURE_SERVICE;
  readonly directory: Directory;
  readonly budget: RequestBudget | undefined;
  readonly #tokens: TokenIssuer;
  #loops = new LoopDetector();
  readonly #tokenLifetimeSeconds: number;
  #baseUrl: string | undefined;

  constructor(options: AzureServiceOptions = {}) {
    const directory: DirectoryOptions = { ...options.timing };
    if (options.now) directory.now = options.now;
    this.directory = new Directory(directory);
    if (options.budget) {
      const chosen: Record<string, Budget> = { ...GRAPH_DEFAULT_BUDGETS, ...(options.budget === true ? {} : options.budget) };
      this.budget = new RequestBudget(Object.entries(chosen).map(([name, budget]) => ({ name, budget })), options.budgetNow);
    } else this.budget = undefined;
    this.#tokenLifetimeSeconds = options.tokenLifetimeSeconds ?? DEFAULT_TOKEN_LIFETIME_SECONDS;
    this.#tokens = new TokenIssuer(SANDBOX_CLOUDS[options.cloud ?? 'public'].graph);
  }

  /** Tunes Entra's client-loop protection (entra.ts): tests lower it to reach AADSTS50196 quickly. */
  setLoopLimit(limit: number, windowMs = 60_000): void {
    this.#loops = new LoopDetector(limit, windowMs);
  }

  /** The Graph resource of the cloud this sandbox serves as. */
  get graphResource(): string {
    return this.#tokens.resource;
  }

  /**
   * Pins the base URL the service writes into discovery documents and OData contexts. Without it the Host header
   * decides, which is what keeps the issuer on the very host:port the client used (MSAL compares them).
   */
  setBaseUrl(url: string | undefined): void {
    this.#baseUrl = url?.replace(/\/+$/, '');
  }

  route(req: SandboxRequest): Route | undefined {
    const baseUrl = this.#baseUrlFor(req);
    const now = () => this.directory.now();
    const openid = OPENID.exec(req.path);
    if (openid) {
      const tenant = decodeURIComponent(openid[1]!);
      return {
        operation: 'openidConfiguration',
        handle: () => openidConfiguration(entraContext(req, baseUrl, now()), this.directory, tenant, { resource: this.#tokens.resource }),
      };
    }
    const token = TOKEN.exec(req.path);
    if (token) {
      const tenant = decodeURIComponent(token[1]!);
      return {
        operation: 'token',
        handle: () =>
          tokenEndpoint(entraContext(req, baseUrl, now()), req, tenant, {
            directory: this.directory,
            tokens: this.#tokens,
            lifetimeSeconds: this.#tokenLifetimeSeconds,
            loops: this.#loops,
          }),
      };
    }
    const target = parseGraphPath(req.path);
    if (target) {
      return {
        operation: target.action,
        ...this.#charge(req, target),
        handle: () => handleGraph(req, target, baseUrl, now(), { directory: this.directory, tokens: this.#tokens }),
      };
    }
    const list = parseGraphListPath(req.path);
    if (list) {
      return {
        operation: list.action,
        ...this.#chargeRead(req),
        handle: () => handleGraphList(req, list, baseUrl, now(), { directory: this.directory, tokens: this.#tokens, applicationJson }),
      };
    }
    return undefined;
  }

  /**
   * Who a Graph call is charged to and what it costs (GRAPH_DEFAULT_BUDGETS). The caller is the app and tenant
   * of a valid bearer token, the pair Graph counts; a call without one is not charged (it gets a 401 anyway).
   */
  #charge(req: SandboxRequest, target: GraphTarget): Pick<Route, 'client' | 'cost'> {
    if (!this.budget) return {};
    const match = typeof req.headers.authorization === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization) : null;
    const check = match ? this.#tokens.verify(match[1]!, Math.floor(this.directory.now() / 1000)) : undefined;
    if (!check?.ok) return {};
    const write = target.action === 'addPassword' || target.action === 'removePassword';
    const select = (req.query.get('$select') ?? '').trim() !== '';
    const app = this.directory.findApp(target.by === 'objectId' ? { objectId: target.id } : { appId: target.id });
    const personal = write && app !== undefined && PERSONAL_AUDIENCES.has(app.signInAudience);
    return {
      client: `${check.claims.tid}/${check.claims.appid}`,
      cost: {
        resourceUnits: target.action === 'getApplication' ? (select ? 1 : 2) : 1,
        writes: write ? 1 : 0,
        personalAppWrites: personal ? 1 : 0,
      },
    };
  }

  /** A list page costs what a GET of `applications` does: 2 resource units, 1 with `$select`. */
  #chargeRead(req: SandboxRequest): Pick<Route, 'client' | 'cost'> {
    if (!this.budget) return {};
    const match = typeof req.headers.authorization === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization) : null;
    const check = match ? this.#tokens.verify(match[1]!, Math.floor(this.directory.now() / 1000)) : undefined;
    if (!check?.ok) return {};
    const select = (req.query.get('$select') ?? '').trim() !== '';
    return { client: `${check.claims.tid}/${check.claims.appid}`, cost: { resourceUnits: select ? 1 : 2, writes: 0, personalAppWrites: 0 } };
  }

  throttleReply(retryAfterSeconds: number, context?: ThrottleContext): Reply {
    const id = newGuid();
    // One body for Graph and the token endpoint alike: the fault plan does not say which operation it throttles,
    // and both clients act on the status and Retry-After, not on the body. Graph's own 429 is this envelope with
    // code TooManyRequests and a Retry-After header (https://learn.microsoft.com/graph/throttling, "What happens
    // when throttling occurs?"). A budget refusal also names its scope the way identity-and-access throttling does
    // (https://learn.microsoft.com/graph/throttling-limits, "Throttled responses requests"): x-ms-throttle-scope
    // `Tenant_Application/<Read|Write|ReadWrite>/<appId>/<tenantId>` and x-ms-throttle-information.
    const headers: Record<string, string> = { 'retry-after': String(retryAfterSeconds) };
    if (context) {
      const [tenantId, appId] = context.client.split('/');
      const write = context.limit !== 'resourceUnits';
      headers['x-ms-throttle-scope'] = `Tenant_Application/${write ? 'Write' : 'ReadWrite'}/${appId}/${tenantId}`;
      headers['x-ms-throttle-information'] = write ? 'WriteLimitExceeded' : 'ResourceUnitLimitExceeded';
    }
    return graphError({ now: this.directory.now(), requestId: id, clientRequestId: id }, 429, 'TooManyRequests', 'Please retry again later.', { headers });
  }

  // State API: the hooks the real service does not have, for tests, the demo and the control API.

  createTenant(options: TenantOptions = {}): TenantState {
    return this.directory.createTenant(options);
  }

  getTenant(tenantId: string): TenantState | undefined {
    return this.directory.getTenant(tenantId);
  }

  updateTenant(tenantId: string, update: TenantUpdate): TenantState {
    return this.directory.updateTenant(tenantId, update);
  }

  setPropagationDelay(tenantId: string, ms: number): void {
    this.directory.setPropagationDelay(tenantId, ms);
  }

  /** The directory-wide timing of new secrets (propagation median for every tenant, read lag, spread, seed). */
  setTiming(update: Partial<DirectoryTiming>): DirectoryTiming {
    return this.directory.setTiming(update);
  }

  createApp(options: CreateAppOptions): AppIds {
    return this.directory.createApp(options);
  }

  /** Seeds a secret (no Graph rules, no propagation delay unless `propagated: false`); the value is returned. */
  addSecret(objectId: string, options: SecretOptions = {}): SecretState {
    return this.directory.addSecret(objectId, options);
  }

  getApp(id: string): AppState | undefined {
    return this.directory.getApp(id);
  }

  checkSecret(tenantId: string, appId: string, secret: string): boolean {
    return this.directory.checkSecret(tenantId, appId, secret);
  }

  registerControl(api: ControlApi): void {
    registerAzureControl(api, this);
  }

  #baseUrlFor(req: SandboxRequest): string {
    if (this.#baseUrl) return this.#baseUrl;
    const host = req.headers.host;
    // The sandbox only makes sense over TLS (identity refuses http authorities), so the scheme is not in question.
    return `https://${typeof host === 'string' && host !== '' ? host : 'localhost'}`;
  }
}
