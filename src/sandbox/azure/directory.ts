// The state behind the Azure sandbox: tenants, app registrations and their password credentials, and the rules
// Entra applies to them (who may add or remove a secret, how many, how long they live, when the token endpoint
// starts accepting a new one). The wire formats live in entra.ts and graph.ts; this module knows no HTTP.
import { createHash, timingSafeEqual } from 'node:crypto';
import { SeededRandom, checkSpread } from '../random.js';
import { graphDateTime, isGuid, newGuid, newSecretText, parseDateTime } from './formats.js';

export const APP_PERMISSIONS = ['Application.ReadWrite.All', 'Application.ReadWrite.OwnedBy'] as const;
/** The Graph application permission an app holds; `null` means it holds none that touch applications. */
export type AppPermission = (typeof APP_PERMISSIONS)[number];

export const SIGN_IN_AUDIENCES = ['AzureADMyOrg', 'AzureADMultipleOrgs', 'AzureADandPersonalMicrosoftAccount', 'PersonalMicrosoftAccount'] as const;
export type SignInAudience = (typeof SIGN_IN_AUDIENCES)[number];

/** Apps that personal Microsoft accounts can sign in to may hold at most this many passwords. */
export const PERSONAL_ACCOUNT_PASSWORD_LIMIT = 2;

/** Graph's default endDateTime: two calendar years after the start (so 731 days across a 29 February). */
export function defaultPasswordEnd(startMs: number): number {
  const d = new Date(startMs);
  d.setUTCFullYear(d.getUTCFullYear() + 2);
  return d.getTime();
}

export interface TenantOptions {
  tenantId?: string;
  /**
   * The median of how long after addPassword the token endpoint keeps rejecting the new secret (default: the
   * directory's `propagationDelayMs`, itself 0 unless set). Each secret waits the tenant's current median times
   * a factor of its own, drawn when it is added (DirectoryOptions `delaySpread`).
   */
  propagationDelayMs?: number;
  /** An app management policy's password maxLifetime, in days; absent or null means no policy. */
  maxLifetimeDays?: number | null;
}

export interface TenantUpdate {
  propagationDelayMs?: number;
  maxLifetimeDays?: number | null;
}

export interface TenantState {
  tenantId: string;
  propagationDelayMs: number;
  maxLifetimeDays: number | null;
  /** The id the lifetime error names as the "assigned policy". */
  lifetimePolicyId: string;
}

export interface CreateAppOptions {
  tenantId: string;
  displayName: string;
  appId?: string;
  objectId?: string;
  signInAudience?: SignInAudience;
  permission?: AppPermission | null;
  /** appIds of the apps that own this one (what Application.ReadWrite.OwnedBy is checked against). */
  owners?: string[];
}

export interface AppIds {
  tenantId: string;
  objectId: string;
  appId: string;
  displayName: string;
}

export interface SecretOptions {
  displayName?: string | null;
  startDateTime?: string | Date;
  endDateTime?: string | Date;
  /**
   * State API only: whether the secret skips the tenant's propagation delay (default true, because a seeded
   * secret stands for one that has existed for a while).
   */
  propagated?: boolean;
}

export interface SecretState {
  keyId: string;
  displayName: string | null;
  hint: string;
  /** The value itself: the sandbox keeps it so tests can prove which secrets work; Graph never returns it on reads. */
  secretText: string;
  startDateTime: string;
  endDateTime: string;
  /** When the secret was added; the propagation delay counts from here. */
  addedAt: string;
  /** Whether the token endpoint would accept this secret right now. */
  acceptedNow: boolean;
  /**
   * When the token endpoint starts (started) to accept the secret under the tenant's current median: null for a
   * secret that never waited (seeded as propagated).
   */
  usableAt: string | null;
  /** Whether a GET of the application shows this secret yet (Entra's eventually consistent read). */
  listed: boolean;
  /** When a GET of the application starts (started) to show it; null for a secret shown from the start. */
  listedAt: string | null;
}

export interface AppState extends AppIds {
  signInAudience: SignInAudience;
  permission: AppPermission | null;
  owners: string[];
  createdDateTime: string;
  secrets: SecretState[];
}

/** Why the token endpoint refuses (or accepts) a client_credentials request. */
export type AuthVerdict =
  | { ok: true; tenantId: string; appId: string; objectId: string; permission: AppPermission | null }
  | { ok: false; reason: 'unknown_tenant' | 'unknown_client' | 'invalid_secret' | 'expired_secret' };

/** A rule violation, carried in Graph's own terms because Graph is the only API that can break these rules. */
export class DirectoryError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Array<{ code: string; message?: string; target: string }>,
  ) {
    super(message);
  }
}

export const notFound = (id: string) =>
  new DirectoryError(404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
export const invalidId = (id: string) => new DirectoryError(400, 'Request_BadRequest', `Invalid object identifier '${id}'.`);
export const invalidProperty = (property: string, resource: string) =>
  new DirectoryError(400, 'Request_BadRequest', `Invalid value specified for property '${property}' of resource '${resource}'.`);

interface SecretRecord {
  keyId: string;
  displayName: string | null;
  secretText: string;
  digest: Buffer;
  startMs: number;
  endMs: number;
  addedMs: number;
  /** Seeded secrets stand for ones added long ago: the propagation delay never applies to them. */
  propagated: boolean;
  /** This secret's multiple of the tenant's median propagation delay, drawn when it was added. */
  propagationFactor: number;
  /** When a GET of the application starts to show the secret; undefined: shown at once. */
  listedAtMs: number | undefined;
}

interface AppRecord {
  tenantId: string;
  objectId: string;
  appId: string;
  displayName: string;
  signInAudience: SignInAudience;
  permission: AppPermission | null;
  owners: string[];
  createdMs: number;
  secrets: SecretRecord[];
  /** Secrets ever added to this app: names each one's delay draws (`azure/propagation/<object id>/<n>`). */
  made: number;
}

interface TenantRecord {
  tenantId: string;
  propagationDelayMs: number;
  maxLifetimeDays: number | null;
  lifetimePolicyId: string;
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

function checkDelay(ms: unknown, name = 'propagationDelayMs'): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw new DirectoryError(400, 'Request_BadRequest', `${name} must be a number >= 0`);
  return ms;
}

function checked<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new DirectoryError(400, 'Request_BadRequest', `${name}: ${(err as Error).message}`);
  }
}

function checkLifetime(days: unknown): number | null {
  if (days === null) return null;
  if (typeof days !== 'number' || !Number.isFinite(days) || days <= 0) throw new DirectoryError(400, 'Request_BadRequest', 'maxLifetimeDays must be a number > 0 or null');
  return days;
}

export interface DirectoryOptions {
  /** The clock every rule reads (ms since the epoch); tests move it to expire secrets and tokens. */
  now?: () => number;
  /** The median propagation delay of tenants created without one (default 0). */
  propagationDelayMs?: number;
  /**
   * The median of how long a new secret stays missing from a GET of its application (default 0: shown at once).
   * Entra is eventually consistent: "A successful write to Microsoft Entra does not guarantee that an immediate
   * read will reflect that change ... A recently updated property to not yet be visible"
   * (https://devblogs.microsoft.com/identity/designing-for-eventual-consistency-for-microsoft-entra/).
   */
  readLagMs?: number;
  /** The log-normal shape (sigma) both delays are drawn with around their medians (random.ts; default 0: fixed). */
  delaySpread?: number;
  /** Seeds every delay draw; the same seed and the same history give every secret the same delays. */
  seed?: number;
}

/** The directory-wide timing knobs, as the control API shows and takes them. */
export interface DirectoryTiming {
  /** For new tenants; setting it sets every existing tenant's too. */
  propagationDelayMs: number;
  readLagMs: number;
  delaySpread: number;
  seed: number;
}

export class Directory {
  /** Every secret value this sandbox ever handed out, removed ones included: the tests scan a script's output for them. */
  readonly issued = new Set<string>();
  readonly now: () => number;
  #tenants = new Map<string, TenantRecord>();
  #apps: AppRecord[] = [];
  #propagationDelayMs: number;
  #readLagMs: number;
  #delaySpread: number;
  readonly #random: SeededRandom;

  constructor(options: DirectoryOptions = {}) {
    this.now = options.now ?? Date.now;
    this.#propagationDelayMs = checkDelay(options.propagationDelayMs ?? 0);
    this.#readLagMs = checkDelay(options.readLagMs ?? 0, 'readLagMs');
    this.#delaySpread = checked('delaySpread', () => checkSpread(options.delaySpread ?? 0));
    this.#random = checked('seed', () => new SeededRandom(options.seed));
  }

  timing(): DirectoryTiming {
    return { propagationDelayMs: this.#propagationDelayMs, readLagMs: this.#readLagMs, delaySpread: this.#delaySpread, seed: this.#random.seed };
  }

  /**
   * Changes the directory's timing. The propagation median becomes every tenant's (and new tenants' default),
   * and applies to secrets still waiting; the lag, spread and seed apply to secrets added from now on.
   */
  setTiming(update: Partial<DirectoryTiming>): DirectoryTiming {
    const delay = update.propagationDelayMs === undefined ? undefined : checkDelay(update.propagationDelayMs);
    const lag = update.readLagMs === undefined ? this.#readLagMs : checkDelay(update.readLagMs, 'readLagMs');
    const spread = update.delaySpread === undefined ? this.#delaySpread : checked('delaySpread', () => checkSpread(update.delaySpread));
    if (update.seed !== undefined) checked('seed', () => new SeededRandom(update.seed));
    if (delay !== undefined) {
      this.#propagationDelayMs = delay;
      for (const t of this.#tenants.values()) t.propagationDelayMs = delay;
    }
    this.#readLagMs = lag;
    this.#delaySpread = spread;
    if (update.seed !== undefined) this.#random.seed = update.seed;
    return this.timing();
  }

  createTenant(options: TenantOptions = {}): TenantState {
    const tenantId = (options.tenantId ?? newGuid()).toLowerCase();
    if (!isGuid(tenantId)) throw invalidId(tenantId);
    if (this.#tenants.has(tenantId)) throw new DirectoryError(409, 'Request_BadRequest', `Tenant '${tenantId}' already exists.`);
    const tenant: TenantRecord = {
      tenantId,
      propagationDelayMs: checkDelay(options.propagationDelayMs ?? this.#propagationDelayMs),
      maxLifetimeDays: checkLifetime(options.maxLifetimeDays ?? null),
      lifetimePolicyId: newGuid(),
    };
    this.#tenants.set(tenantId, tenant);
    return { ...tenant };
  }

  getTenant(tenantId: string): TenantState | undefined {
    const t = this.#tenants.get(tenantId.toLowerCase());
    return t && { ...t };
  }

  updateTenant(tenantId: string, update: TenantUpdate): TenantState {
    const t = this.#tenant(tenantId);
    if (update.propagationDelayMs !== undefined) t.propagationDelayMs = checkDelay(update.propagationDelayMs);
    if (update.maxLifetimeDays !== undefined) t.maxLifetimeDays = checkLifetime(update.maxLifetimeDays);
    return { ...t };
  }

  setPropagationDelay(tenantId: string, ms: number): void {
    this.updateTenant(tenantId, { propagationDelayMs: ms });
  }

  createApp(options: CreateAppOptions): AppIds {
    const tenant = this.#tenant(options.tenantId);
    const objectId = (options.objectId ?? newGuid()).toLowerCase();
    const appId = (options.appId ?? newGuid()).toLowerCase();
    for (const id of [objectId, appId]) {
      if (!isGuid(id)) throw invalidId(id);
      if (this.#apps.some((a) => a.objectId === id || a.appId === id)) throw new DirectoryError(409, 'Request_BadRequest', `Another object with the id '${id}' already exists.`);
    }
    const signInAudience = options.signInAudience ?? 'AzureADMyOrg';
    if (!SIGN_IN_AUDIENCES.includes(signInAudience)) throw invalidProperty('signInAudience', 'Application');
    const permission = options.permission ?? null;
    if (permission !== null && !APP_PERMISSIONS.includes(permission)) throw invalidProperty('permission', 'Application');
    const owners = (options.owners ?? []).map((o) => o.toLowerCase());
    for (const o of owners) if (!isGuid(o)) throw invalidId(o);
    if (typeof options.displayName !== 'string' || options.displayName === '') throw invalidProperty('displayName', 'Application');
    const app: AppRecord = {
      tenantId: tenant.tenantId,
      objectId,
      appId,
      displayName: options.displayName,
      signInAudience,
      permission,
      owners,
      createdMs: this.now(),
      secrets: [],
      made: 0,
    };
    this.#apps.push(app);
    return { tenantId: app.tenantId, objectId, appId, displayName: app.displayName };
  }

  /** An app by object id or appId, with every secret's value. */
  getApp(id: string): AppState | undefined {
    const app = this.#find(id);
    return app && this.#appState(app);
  }

  /** A tenant's applications in creation order (what Graph's lists page through). */
  listApps(tenantId: string): AppState[] {
    return this.#apps.filter((a) => a.tenantId === tenantId).map((a) => this.#appState(a));
  }

  /** Internal lookup for the Graph layer, addressed the way the request addressed it. */
  findApp(address: { objectId: string } | { appId: string }): AppState | undefined {
    const app = 'objectId' in address ? this.#apps.find((a) => a.objectId === address.objectId.toLowerCase()) : this.#apps.find((a) => a.appId === address.appId.toLowerCase());
    return app && this.#appState(app);
  }

  /** Seeds a secret without Graph's rules (count, lifetime policy); for setting up tests and demos. */
  addSecret(id: string, options: SecretOptions = {}): SecretState {
    const app = this.#require(id);
    const now = this.now();
    const startMs = this.#date(options.startDateTime, 'startDateTime') ?? now;
    const endMs = this.#date(options.endDateTime, 'endDateTime') ?? defaultPasswordEnd(startMs);
    const record = this.#insert(app, options.displayName ?? null, startMs, endMs, now, options.propagated ?? true, false);
    return this.#secretState(app, record);
  }

  /** addPassword as Graph does it: defaults, the personal-account count limit and the tenant lifetime policy. */
  addPassword(objectId: string, input: { displayName?: string | null; startDateTime?: unknown; endDateTime?: unknown }): SecretState {
    const app = this.#require(objectId);
    const tenant = this.#tenant(app.tenantId);
    const now = this.now();
    const startMs = input.startDateTime == null ? now : parseDateTime(input.startDateTime);
    if (startMs === undefined) throw invalidProperty('startDateTime', 'PasswordCredential');
    const endMs = input.endDateTime == null ? defaultPasswordEnd(startMs) : parseDateTime(input.endDateTime);
    // Unverified against the live service: an end before the start is rejected with the generic property error.
    if (endMs === undefined || endMs <= startMs) throw invalidProperty('endDateTime', 'PasswordCredential');
    if (
      (app.signInAudience === 'AzureADandPersonalMicrosoftAccount' || app.signInAudience === 'PersonalMicrosoftAccount') &&
      app.secrets.length >= PERSONAL_ACCOUNT_PASSWORD_LIMIT
    ) {
      throw new DirectoryError(
        400,
        'TooManyAppPasswords',
        `Not allowed to add ${app.secrets.length + 1} passwords. You can only add a maximum of ${PERSONAL_ACCOUNT_PASSWORD_LIMIT} passwords.`,
        [{ target: 'passwordCredentials', code: 'TooManyAppPasswords' }],
      );
    }
    if (tenant.maxLifetimeDays !== null && endMs - startMs > tenant.maxLifetimeDays * 86_400_000) {
      const message = `Credential lifetime exceeds the max value allowed as per assigned policy '${tenant.lifetimePolicyId}'.`;
      throw new DirectoryError(400, 'CredentialInvalidLifetimeAsPerAppPolicy', message, [{ code: 'InvalidKeyEndDate', message, target: 'EndDate' }]);
    }
    const displayName = typeof input.displayName === 'string' ? input.displayName : null;
    return this.#secretState(app, this.#insert(app, displayName, startMs, endMs, now, false));
  }

  /** Removes a password credential; false when the app has no credential with that keyId. */
  removePassword(objectId: string, keyId: string): boolean {
    const app = this.#require(objectId);
    const before = app.secrets.length;
    app.secrets = app.secrets.filter((s) => s.keyId !== keyId.toLowerCase());
    return app.secrets.length < before;
  }

  /** What the token endpoint decides for a client_credentials request. */
  authenticate(tenantId: string, clientId: string, secret: string): AuthVerdict {
    const tenant = this.#tenants.get(tenantId.toLowerCase());
    if (!tenant) return { ok: false, reason: 'unknown_tenant' };
    // An app registered in another tenant is as unknown here as one that does not exist (AADSTS700016 either way).
    const app = this.#apps.find((a) => a.appId === clientId.toLowerCase() && a.tenantId === tenant.tenantId);
    if (!app) return { ok: false, reason: 'unknown_client' };
    const presented = digest(secret);
    const match = app.secrets.find((s) => timingSafeEqual(s.digest, presented));
    if (!match) return { ok: false, reason: 'invalid_secret' };
    const status = this.#status(tenant, match);
    if (status === 'expired') return { ok: false, reason: 'expired_secret' };
    if (status !== 'ok') return { ok: false, reason: 'invalid_secret' };
    return { ok: true, tenantId: tenant.tenantId, appId: app.appId, objectId: app.objectId, permission: app.permission };
  }

  /** Would the token endpoint accept this secret right now? */
  checkSecret(tenantId: string, appId: string, secret: string): boolean {
    return this.authenticate(tenantId, appId, secret).ok;
  }

  #status(tenant: TenantRecord, s: SecretRecord): 'ok' | 'not_started' | 'expired' | 'propagating' {
    const now = this.now();
    if (now >= s.endMs) return 'expired';
    if (now < s.startMs) return 'not_started';
    // The tenant's current delay applies, so raising or lowering it at run time takes effect at once.
    if (!s.propagated && now < this.#usableAtMs(tenant, s)) return 'propagating';
    return 'ok';
  }

  #usableAtMs(tenant: TenantRecord, s: SecretRecord): number {
    return s.addedMs + Math.round(tenant.propagationDelayMs * s.propagationFactor);
  }

  #listed(s: SecretRecord): boolean {
    return s.listedAtMs === undefined || this.now() >= s.listedAtMs;
  }

  /**
   * Adds a secret. One made through Graph (`propagated` false) draws its propagation factor and its read lag,
   * seeded and labelled by app and secret number; a seeded one is shown at once (it stands for an old secret).
   */
  #insert(app: AppRecord, displayName: string | null, startMs: number, endMs: number, addedMs: number, propagated: boolean, lags = !propagated): SecretRecord {
    const secretText = newSecretText();
    this.issued.add(secretText);
    app.made += 1;
    const label = `${app.objectId}/${app.made}`;
    const propagationFactor = propagated ? 1 : this.#random.spread(`azure/propagation/${label}`, this.#delaySpread);
    const lag = lags ? this.#readLagMs * this.#random.spread(`azure/read-lag/${label}`, this.#delaySpread) : 0;
    const record: SecretRecord = {
      keyId: newGuid(),
      displayName,
      secretText,
      digest: digest(secretText),
      startMs,
      endMs,
      addedMs,
      propagated,
      propagationFactor,
      listedAtMs: lag > 0 ? addedMs + Math.round(lag) : undefined,
    };
    app.secrets.push(record);
    return record;
  }

  #date(value: string | Date | undefined, property: string): number | undefined {
    if (value === undefined) return undefined;
    const ms = parseDateTime(value);
    if (ms === undefined) throw invalidProperty(property, 'PasswordCredential');
    return ms;
  }

  #tenant(tenantId: string): TenantRecord {
    const t = this.#tenants.get(String(tenantId).toLowerCase());
    if (!t) throw notFound(String(tenantId));
    return t;
  }

  #find(id: string): AppRecord | undefined {
    const key = String(id).toLowerCase();
    return this.#apps.find((a) => a.objectId === key) ?? this.#apps.find((a) => a.appId === key);
  }

  #require(id: string): AppRecord {
    const app = this.#find(id);
    if (!app) throw notFound(String(id));
    return app;
  }

  #secretState(app: AppRecord, s: SecretRecord): SecretState {
    const tenant = this.#tenant(app.tenantId);
    return {
      keyId: s.keyId,
      displayName: s.displayName,
      hint: s.secretText.slice(0, 3),
      secretText: s.secretText,
      startDateTime: graphDateTime(s.startMs),
      endDateTime: graphDateTime(s.endMs),
      addedAt: new Date(s.addedMs).toISOString(),
      acceptedNow: this.#status(tenant, s) === 'ok',
      usableAt: s.propagated ? null : new Date(this.#usableAtMs(tenant, s)).toISOString(),
      listed: this.#listed(s),
      listedAt: s.listedAtMs === undefined ? null : new Date(s.listedAtMs).toISOString(),
    };
  }

  #appState(app: AppRecord): AppState {
    return {
      tenantId: app.tenantId,
      objectId: app.objectId,
      appId: app.appId,
      displayName: app.displayName,
      signInAudience: app.signInAudience,
      permission: app.permission,
      owners: [...app.owners],
      createdDateTime: graphDateTime(app.createdMs),
      secrets: app.secrets.map((s) => this.#secretState(app, s)),
    };
  }
}
