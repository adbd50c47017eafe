// The `azure` sandbox service: Entra's token endpoint and Microsoft Graph on one HTTPS host, which is what
// @azure/identity (authorityHost) and the Graph client (baseUrl + customHosts) need to agree on one name.
// Routing and the state API live here; wire formats are in entra.ts and graph.ts, rules in directory.ts.
import type { ControlApi } from '../control.js';
import type { Reply, Route, SandboxRequest, SandboxService } from '../service.js';
import { registerAzureControl } from './control.js';
import {
  type AppIds,
  type AppState,
  type CreateAppOptions,
  Directory,
  type SecretOptions,
  type SecretState,
  type TenantOptions,
  type TenantState,
  type TenantUpdate,
} from './directory.js';
import { LoopDetector, entraContext, openidConfiguration, tokenEndpoint } from './entra.js';
import { graphError, handleGraph, parseGraphPath } from './graph.js';
import { newGuid } from './formats.js';
import { SANDBOX_CLOUDS, type SandboxCloud, TokenIssuer } from './tokens.js';

export const AZURE_SERVICE = 'azure';
export const AZURE_OPERATIONS = ['openidConfiguration', 'token', 'getApplication', 'listOwners', 'addPassword', 'removePassword'] as const;
export type AzureOperation = (typeof AZURE_OPERATIONS)[number];

/** Entra's usual app-only token lifetime. */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 3599;

export interface AzureServiceOptions {
  /** Clock for secrets, tokens and timestamps (ms since the epoch). */
  now?: () => number;
  tokenLifetimeSeconds?: number;
  /** The cloud this sandbox serves as (default `public`): tokens are issued and accepted for its Graph only. */
  cloud?: SandboxCloud;
}

const OPENID = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration\/?$/i;
const TOKEN = /^\/([^/]+)\/oauth2\/v2\.0\/token\/?$/i;

export class AzureService implements SandboxService {
  readonly name = AZURE_SERVICE;
  readonly directory: Directory;
  readonly #tokens: TokenIssuer;
  #loops = new LoopDetector();
  readonly #tokenLifetimeSeconds: number;
  #baseUrl: string | undefined;

  constructor(options: AzureServiceOptions = {}) {
    this.directory = new Directory(options.now ? { now: options.now } : {});
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
        handle: () => handleGraph(req, target, baseUrl, now(), { directory: this.directory, tokens: this.#tokens }),
      };
    }
    return undefined;
  }

  throttleReply(retryAfterSeconds: number): Reply {
    const id = newGuid();
    // One body for Graph and the token endpoint alike: the fault plan does not say which operation it throttles,
    // and both clients act on the status and Retry-After, not on the body.
    return graphError({ now: this.directory.now(), requestId: id, clientRequestId: id }, 429, 'TooManyRequests', 'Please retry again later.', {
      headers: { 'retry-after': String(retryAfterSeconds) },
    });
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
