// The state behind the Wiz sandbox: one tenant's service accounts and the rules Wiz applies to them (who may get
// a token, what a rotation does to the old secret, when an account expires). The wire formats live in auth.ts and
// api.ts; this module knows no HTTP and no GraphQL.
import { createHash, timingSafeEqual } from 'node:crypto';
import { isUuid, newClientId, newClientSecret, newUuid, parseDateTime, wizDateTime } from './formats.js';
import { type WizRateLimitOptions, WizRateLimits } from './limits.js';
import { type TokenCheck, type WizAccessTokenClaims, WizTokenSigner } from './tokens.js';

/** What the two service-account calls of a rotation need (the README of the public rotator asks for these). */
export const WIZ_ROTATION_SCOPES = ['read:service_accounts', 'update:service_accounts'] as const;

/** The types the API's filterBy accepts; the sandbox gives them no behaviour of their own. */
export const SERVICE_ACCOUNT_TYPES = ['THIRD_PARTY', 'SENSOR', 'BROKER', 'KUBERNETES_CONNECTOR'] as const;
export type ServiceAccountType = (typeof SERVICE_ACCOUNT_TYPES)[number];

/** Wiz issues API tokens for 24 hours (`expires_in: 86400`). */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 86_400;
export const DEFAULT_DATA_CENTER = 'us17';

/** The error codes Wiz puts in `extensions.code`; the tenant raises the two that rule violations map to. */
export type WizErrorCode = 'UNAUTHENTICATED' | 'UNAUTHORIZED' | 'BAD_USER_INPUT' | 'NOT_FOUND' | 'INTERNAL' | 'RATE_LIMIT_EXCEEDED';

export class WizError extends Error {
  constructor(
    readonly code: WizErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export const accountNotFound = (id: string) => new WizError('NOT_FOUND', `Service account '${id}' not found`);
const badInput = (message: string) => new WizError('BAD_USER_INPUT', message);

export interface WizTenantOptions {
  /** The clock every rule reads (ms since the epoch); tests move it to expire tokens and accounts. */
  now?: () => number;
  dataCenter?: string;
  tokenLifetimeSeconds?: number;
  /** Request budgets per service account (limits.ts): the API's is on by default, the token endpoint's off. */
  rateLimits?: WizRateLimitOptions;
}

export interface CreateServiceAccountOptions {
  name: string;
  /** Default: WIZ_ROTATION_SCOPES. */
  scopes?: string[];
  enabled?: boolean;
  /** When the account stops getting tokens; null or absent means never. */
  expiresAt?: string | Date | null;
  type?: ServiceAccountType;
  description?: string | null;
  /** Seeding only (fixtures that need fixed credentials); generated when absent. */
  id?: string;
  clientId?: string;
  clientSecret?: string;
}

export interface ServiceAccountUpdate {
  name?: string;
  description?: string | null;
  enabled?: boolean;
  scopes?: string[];
  expiresAt?: string | Date | null;
}

export interface ServiceAccountState {
  id: string;
  name: string;
  clientId: string;
  /** The current secret: the sandbox keeps it so tests can prove which secret works; the API returns it only from a rotation. */
  clientSecret: string;
  enabled: boolean;
  scopes: string[];
  type: ServiceAccountType;
  description: string | null;
  createdAt: string;
  lastRotatedAt: string | null;
  expiresAt: string | null;
  lastLoginAt: string | null;
  /** Whether the current secret would get a token right now (enabled and not expired). */
  canAuthenticate: boolean;
}

export interface TenantSettings {
  dataCenter: string;
  tokenLifetimeSeconds: number;
}

/** Why the token endpoint refuses (or accepts) a client_credentials request. */
export type AuthVerdict =
  | { ok: true; account: ServiceAccountState }
  | { ok: false; reason: 'unknown_client' | 'invalid_secret' | 'disabled' | 'expired' };

/** What the API decides about a bearer token. */
export type BearerVerdict =
  | { ok: true; claims: WizAccessTokenClaims; account: ServiceAccountState }
  | { ok: false; reason: Extract<TokenCheck, { ok: false }>['reason'] | 'unknown_account' | 'disabled' };

interface AccountRecord {
  id: string;
  name: string;
  clientId: string;
  secret: string;
  digest: Buffer;
  enabled: boolean;
  scopes: string[];
  type: ServiceAccountType;
  description: string | null;
  createdMs: number;
  lastRotatedMs: number | null;
  expiresMs: number | null;
  lastLoginMs: number | null;
  /** Creation order, the tie-break when two accounts share a createdAt second. */
  seq: number;
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.trim() === '') throw badInput('name must be a non-empty string');
  return name;
}

function checkScopes(scopes: unknown): string[] {
  if (!Array.isArray(scopes) || !scopes.every((s) => typeof s === 'string' && /^[a-z_]+:[a-z_]+$/.test(s))) {
    throw badInput('scopes must be a list of scopes like "read:service_accounts"');
  }
  return [...new Set(scopes as string[])];
}

function checkExpiry(value: unknown): number | null {
  if (value === null) return null;
  const ms = parseDateTime(value);
  if (ms === undefined) throw badInput(`expiresAt must be an ISO 8601 date-time with a zone, got ${JSON.stringify(value)}`);
  return ms;
}

function checkDataCenter(dc: unknown): string {
  if (typeof dc !== 'string' || !/^[a-z0-9-]{1,32}$/.test(dc)) throw badInput('dataCenter must be lowercase letters, digits and dashes, e.g. "us17"');
  return dc;
}

function checkLifetime(seconds: unknown): number {
  if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds <= 0) throw badInput('tokenLifetimeSeconds must be a positive integer');
  return seconds;
}

export class WizTenant {
  /** Every secret value this sandbox ever handed out, removed ones included: the tests scan a script's output for them. */
  readonly issued = new Set<string>();
  readonly now: () => number;
  /** What each service account may send; the API and the token endpoint spend from it, the control API tunes it. */
  readonly rateLimits: WizRateLimits;
  readonly #signer = new WizTokenSigner();
  #dataCenter: string;
  #tokenLifetimeSeconds: number;
  #accounts: AccountRecord[] = [];
  #seq = 0;

  constructor(options: WizTenantOptions = {}) {
    this.now = options.now ?? Date.now;
    this.rateLimits = new WizRateLimits(options.rateLimits);
    this.#dataCenter = checkDataCenter(options.dataCenter ?? DEFAULT_DATA_CENTER);
    this.#tokenLifetimeSeconds = checkLifetime(options.tokenLifetimeSeconds ?? DEFAULT_TOKEN_LIFETIME_SECONDS);
  }

  get dataCenter(): string {
    return this.#dataCenter;
  }

  get tokenLifetimeSeconds(): number {
    return this.#tokenLifetimeSeconds;
  }

  settings(): TenantSettings {
    return { dataCenter: this.#dataCenter, tokenLifetimeSeconds: this.#tokenLifetimeSeconds };
  }

  /** Moves the tenant to another data centre: tokens minted from now on carry the new `dc`; earlier ones keep theirs. */
  setDataCenter(dc: string): void {
    this.#dataCenter = checkDataCenter(dc);
  }

  createServiceAccount(options: CreateServiceAccountOptions): ServiceAccountState {
    const id = (options.id ?? newUuid()).toLowerCase();
    if (!isUuid(id)) throw badInput(`id must be a uuid, got '${id}'`);
    const clientId = options.clientId ?? newClientId();
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(clientId)) throw badInput('clientId must be 1-128 letters, digits, "_" or "-"');
    for (const a of this.#accounts) {
      if (a.id === id || a.clientId === clientId || a.id === clientId || a.clientId === id) throw badInput(`a service account with id or clientId '${a.id === id || a.clientId === id ? id : clientId}' already exists`);
    }
    const secret = options.clientSecret ?? newClientSecret();
    this.issued.add(secret);
    if (typeof secret !== 'string' || secret === '') throw badInput('clientSecret must be a non-empty string');
    const type = options.type ?? 'THIRD_PARTY';
    if (!SERVICE_ACCOUNT_TYPES.includes(type)) throw badInput(`type must be one of ${SERVICE_ACCOUNT_TYPES.join(', ')}`);
    if (options.enabled !== undefined && typeof options.enabled !== 'boolean') throw badInput('enabled must be a boolean');
    if (options.description != null && typeof options.description !== 'string') throw badInput('description must be a string or null');
    const record: AccountRecord = {
      id,
      name: checkName(options.name),
      clientId,
      secret,
      digest: digest(secret),
      enabled: options.enabled ?? true,
      scopes: checkScopes(options.scopes ?? [...WIZ_ROTATION_SCOPES]),
      type,
      description: options.description ?? null,
      createdMs: this.now(),
      lastRotatedMs: null,
      expiresMs: checkExpiry(options.expiresAt ?? null),
      lastLoginMs: null,
      seq: ++this.#seq,
    };
    this.#accounts.push(record);
    return this.#state(record);
  }

  /** An account by id or by clientId (the public rotators address accounts by clientId everywhere). */
  getServiceAccount(idOrClientId: string): ServiceAccountState | undefined {
    const a = this.#find(idOrClientId);
    return a && this.#state(a);
  }

  listServiceAccounts(): ServiceAccountState[] {
    return [...this.#accounts].sort((a, b) => a.seq - b.seq).map((a) => this.#state(a));
  }

  /** Changes an account's settings; the GraphQL updateServiceAccount patch goes through here too. */
  updateServiceAccount(idOrClientId: string, update: ServiceAccountUpdate): ServiceAccountState {
    const a = this.#require(idOrClientId);
    // Check everything before changing anything, so a bad field leaves the account as it was.
    const next = {
      name: update.name === undefined ? a.name : checkName(update.name),
      description: update.description === undefined ? a.description : update.description,
      enabled: update.enabled === undefined ? a.enabled : update.enabled,
      scopes: update.scopes === undefined ? a.scopes : checkScopes(update.scopes),
      expiresMs: update.expiresAt === undefined ? a.expiresMs : checkExpiry(update.expiresAt),
    };
    if (next.description !== null && typeof next.description !== 'string') throw badInput('description must be a string or null');
    if (typeof next.enabled !== 'boolean') throw badInput('enabled must be a boolean');
    Object.assign(a, next);
    return this.#state(a);
  }

  /**
   * Replaces the account's secret. Wiz keeps one secret per account, so the old one stops minting tokens at once;
   * access tokens already minted stay valid until they expire (rotate.py goes on using its pre-rotation token for
   * updateServiceAccount). Both halves are the research's working assumption, unverified against the live service.
   */
  rotateSecret(idOrClientId: string): ServiceAccountState {
    const a = this.#require(idOrClientId);
    a.secret = newClientSecret();
    this.issued.add(a.secret);
    a.digest = digest(a.secret);
    a.lastRotatedMs = this.now();
    return this.#state(a);
  }

  deleteServiceAccount(idOrClientId: string): boolean {
    const a = this.#find(idOrClientId);
    if (!a) return false;
    this.#accounts = this.#accounts.filter((x) => x !== a);
    return true;
  }

  /** What the token endpoint decides for a client_credentials request. */
  authenticate(clientId: string, secret: string): AuthVerdict {
    const a = this.#accounts.find((x) => x.clientId === clientId);
    if (!a) return { ok: false, reason: 'unknown_client' };
    if (!timingSafeEqual(a.digest, digest(secret))) return { ok: false, reason: 'invalid_secret' };
    if (!a.enabled) return { ok: false, reason: 'disabled' };
    if (this.#expired(a)) return { ok: false, reason: 'expired' };
    return { ok: true, account: this.#state(a) };
  }

  /** Would this secret get a token right now? */
  checkSecret(clientId: string, secret: string): boolean {
    return this.authenticate(clientId, secret).ok;
  }

  /** Mints an access token for an authenticated account and records the login. */
  issueAccessToken(clientId: string, issuer: string): { accessToken: string; expiresIn: number; scope: string } {
    const a = this.#accounts.find((x) => x.clientId === clientId);
    if (!a) throw accountNotFound(clientId);
    const now = this.now();
    a.lastLoginMs = now;
    const scope = a.scopes.join(' ');
    const accessToken = this.#signer.issue({
      iss: issuer,
      client_id: a.clientId,
      dc: this.#dataCenter,
      scope,
      iat: Math.floor(now / 1000),
      lifetimeSeconds: this.#tokenLifetimeSeconds,
    });
    this.issued.add(accessToken);
    return { accessToken, expiresIn: this.#tokenLifetimeSeconds, scope };
  }

  /**
   * Checks a bearer token: signature, audience, expiry, and that its account still exists and is enabled. The
   * account's expiresAt is not checked here: it governs minting, and a token outlives a rotation the same way.
   */
  verifyAccessToken(token: string): BearerVerdict {
    const check = this.#signer.verify(token, Math.floor(this.now() / 1000));
    if (!check.ok) return check;
    const a = this.#accounts.find((x) => x.clientId === check.claims.client_id);
    if (!a) return { ok: false, reason: 'unknown_account' };
    if (!a.enabled) return { ok: false, reason: 'disabled' };
    return { ok: true, claims: check.claims, account: this.#state(a) };
  }

  #expired(a: AccountRecord): boolean {
    return a.expiresMs !== null && this.now() >= a.expiresMs;
  }

  #find(idOrClientId: string): AccountRecord | undefined {
    const key = String(idOrClientId);
    return this.#accounts.find((a) => a.id === key.toLowerCase()) ?? this.#accounts.find((a) => a.clientId === key);
  }

  #require(idOrClientId: string): AccountRecord {
    const a = this.#find(idOrClientId);
    if (!a) throw accountNotFound(String(idOrClientId));
    return a;
  }

  #state(a: AccountRecord): ServiceAccountState {
    const at = (ms: number | null) => (ms === null ? null : wizDateTime(ms));
    return {
      id: a.id,
      name: a.name,
      clientId: a.clientId,
      clientSecret: a.secret,
      enabled: a.enabled,
      scopes: [...a.scopes],
      type: a.type,
      description: a.description,
      createdAt: wizDateTime(a.createdMs),
      lastRotatedAt: at(a.lastRotatedMs),
      expiresAt: at(a.expiresMs),
      lastLoginAt: at(a.lastLoginMs),
      canAuthenticate: a.enabled && !this.#expired(a),
    };
  }
}
