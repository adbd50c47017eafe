// Wiz service account secret rotation. Wiz keeps one secret per account and `rotateServiceAccountSecret`
// replaces it in place: the old secret stops getting tokens at once. So this target runs in the pipeline's
// in-place mode (Keeper's write checked first, the new secret sealed on the gateway before anything else), and
// only knows Wiz: read the account, decide whether it is time, replace the secret, prove the new one gets a
// token, then push the account's expiry out. The account may rotate itself (the seed tool's setup) or be
// rotated by an admin account.
import { RotateError, isRotateError } from '../../errors.js';
import { readText, readUnambiguous } from '../../keeper/record.js';
import { describeSource } from '../../keeper/admin.js';
import type { RecordData } from '../../keeper/record-data.js';
import { parseSettings, type SettingSpec } from '../../pipeline/settings.js';
import type { NewCredential, PlanContext, RecordFieldSpec, RotationPlan, Target, TargetContext, TargetSession, VerifyResult } from '../../pipeline/target.js';
import { Secret, redact } from '../../secret.js';
import type { DeliveryPayload } from '../../destinations/destination.js';
import { entry, fingerprint } from '../../destinations/payload.js';
import { ALLOW_WIZ_ACCOUNTS, globMatcher, notAllowed, readEntries } from '../allow-list.js';
import { checkRecordShape } from '../record-shape.js';
import { decideRotation, formatSpan, isExpired, newExpiry, sameInstant } from './schedule.js';
import {
  type CallOptions,
  DEFAULT_AUTH_URL,
  REQUIRED_SCOPES,
  type ServiceAccount,
  type TokenResult,
  WizCallError,
  WizGraphql,
  type WizToken,
  apiUrlFor,
  describeScope,
  missingScopes,
  adminToken,
  requestToken,
  throttledAnswer,
} from './wiz-api.js';

/** Wiz client IDs are 52 lowercase letters and digits; this accepts any plausible ID and nothing that needs escaping. */
const CLIENT_ID = /^[A-Za-z0-9_-]{1,128}$/;

export const FIELDS = {
  login: { label: 'login', kind: 'text', required: true, standard: true, example: 'wiz-service-account-client-id', description: "The service account's client ID (the record's login)." },
  secret: {
    label: 'client_secret',
    kind: 'secret',
    required: false,
    example: 'current-client-secret',
    description: "The account's client secret. Written by each rotation; without admin credentials the account signs in with it to rotate itself.",
  },
  expires: { label: 'expires', kind: 'text', required: false, example: 'set-by-rotation', description: "Written by each rotation: the account's new expiry in Wiz (ISO-8601 UTC)." },
} as const satisfies Record<string, RecordFieldSpec>;

/** Wiz's commercial and government clouds: the only hosts a record may send the admin secret to. */
const WIZ_HOSTS = /^([a-z0-9-]+\.)*wiz\.(io|us)$/;

export const SETTINGS = {
  lifetimeDays: { kind: 'integer', label: 'secret_lifetime_days', default: 30, min: 1, max: 3650, description: 'Each rotation sets the account to expire this many days later.' },
  rotateWithinDays: {
    kind: 'integer',
    label: 'rotate_within_days',
    default: 0,
    min: 0,
    max: 3650,
    description: 'Rotate only when the account expires within this many days (0: every run rotates). With a daily schedule, e.g. 2.',
  },
  verifyTimeoutSeconds: { kind: 'integer', label: 'verify_timeout_seconds', default: 60, min: 0, max: 3600, description: 'How long to keep trying to get a token with the new secret.' },
  authUrl: {
    kind: 'https-url',
    label: 'wiz_auth_url',
    default: undefined,
    hosts: WIZ_HOSTS,
    hostHint: 'a Wiz host (under wiz.io or wiz.us)',
    description: `Wiz token URL (default KEEPER_ROTATE_WIZ_AUTH_URL, else ${DEFAULT_AUTH_URL}; gov tenants set theirs).`,
  },
  apiUrl: {
    kind: 'https-url',
    label: 'wiz_api_url',
    default: undefined,
    hosts: WIZ_HOSTS,
    hostHint: 'a Wiz host (under wiz.io or wiz.us)',
    description:
      "Wiz GraphQL URL (default KEEPER_ROTATE_WIZ_API_URL, else https://api.<dc>.app.wiz.io/graphql from the token's dc claim, or api.<dc>.app.wiz.us/graphql when the token comes from auth.app.wiz.us).",
  },
} as const satisfies Record<string, SettingSpec>;

/** Appended to --help: where the admin credentials come from and what they need. */
export const ADMIN_HELP = `Admin credentials, the first place that has them: a record attached to this script with wiz_client_id and
wiz_client_secret; the PAM configuration's wizClientId and wizClientSecret; else the service account rotates
itself with the record's login and client_secret. The account that signs in needs the Wiz API scopes
${REQUIRED_SCOPES.map(describeScope).join(' and ')}.
`;

type AdminKey = 'clientId' | 'clientSecret';

/** Account names are free text that Wiz admins set: patterns match them as written, case included. */
export function wizAllowList(env: NodeJS.ProcessEnv): { entries: string[]; matches: Array<(name: string) => boolean> } | undefined {
  const entries = readEntries(env, ALLOW_WIZ_ACCOUNTS);
  return entries && { entries, matches: entries.map((e) => globMatcher(e, false)) };
}

function describeAllowList(env: NodeJS.ProcessEnv): string {
  const list = wizAllowList(env);
  if (!list) return `${ALLOW_WIZ_ACCOUNTS} is not set: any service account the admin account can rotate, except the admin account itself`;
  return `${ALLOW_WIZ_ACCOUNTS}: only service accounts named ${list.entries.join(', ')}; never the admin account itself`;
}

interface WizConfig {
  clientId: string;
  recordExpires: string | undefined;
  lifetimeDays: number;
  rotateWithinDays: number;
  verifyTimeoutMs: number;
  authUrl: string;
  /** Undefined: derived from the token's `dc` claim. */
  apiUrl: string | undefined;
  adminClientId: string;
  adminSecret: Secret;
  adminIsSelf: boolean;
  adminSource: string;
  allow: ReturnType<typeof wizAllowList>;
}

function envUrl(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name];
  if (!raw) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (!url || url.protocol !== 'https:' || url.username || url.password || url.search || url.hash) {
    throw new RotateError('SETTING_INVALID', `${name} must be an https:// URL without credentials, query or fragment`);
  }
  return url.origin + url.pathname.replace(/\/+$/, '');
}

function prepare(ctx: TargetContext<AdminKey, 'clientSecret'>): WizConfig {
  const data = ctx.user.data;
  const clientId = readUnambiguous(data, FIELDS.login.label, 'RECORD_FIELD_INVALID');
  if (!clientId) throw new RotateError('RECORD_FIELD_MISSING', `record ${ctx.user.uid} has no login (the service account's client ID)`);
  if (!CLIENT_ID.test(clientId)) throw new RotateError('RECORD_FIELD_INVALID', "the login must be the service account's client ID: 1 to 128 letters, digits, _ or -");
  const settings = parseSettings(SETTINGS, data);
  const authUrl = settings.authUrl ?? envUrl(ctx.env, 'KEEPER_ROTATE_WIZ_AUTH_URL') ?? DEFAULT_AUTH_URL;
  const apiUrl = settings.apiUrl ?? envUrl(ctx.env, 'KEEPER_ROTATE_WIZ_API_URL');

  const { clientId: adminClientId, clientSecret: adminSecret } = ctx.admin.values;
  if (!adminClientId || !CLIENT_ID.test(adminClientId)) throw new RotateError('ADMIN_CREDENTIALS_INVALID', 'the admin client ID must be 1 to 128 letters, digits, _ or -');
  if (!adminSecret) throw new RotateError('ADMIN_CREDENTIALS_INVALID', 'the admin client secret is empty');
  const adminIsSelf = ctx.admin.source.kind === 'self';
  // Compared without case as well: whether Wiz matches client IDs by case is not documented, and the plan
  // checks again against the account Wiz returns.
  if (!adminIsSelf && adminClientId.toLowerCase() === clientId.toLowerCase()) {
    // Rotating would break the secret that other record holds, and nothing would ever update it; and this record's
    // editor would get the admin account's new secret.
    throw new RotateError(
      'TARGET_IS_ADMIN',
      `the admin credentials from ${describeSource(ctx.admin.source)} are this service account's own; the rotation would make the secret stored there stop working. Remove them there, and the account rotates itself from this record`,
    );
  }
  return {
    clientId,
    recordExpires: readText(data, FIELDS.expires.label),
    lifetimeDays: settings.lifetimeDays,
    rotateWithinDays: settings.rotateWithinDays,
    verifyTimeoutMs: settings.verifyTimeoutSeconds * 1000,
    authUrl,
    apiUrl,
    adminClientId,
    adminSecret,
    adminIsSelf,
    adminSource: describeSource(ctx.admin.source),
    allow: wizAllowList(ctx.env),
  };
}

/** A token request that did not get a token, as verification reports it. */
function notYet(result: Extract<TokenResult, { ok: false }>): VerifyResult {
  if (!result.throttled) return { ok: false, reason: result.reason };
  return { ok: false, reason: result.reason, throttled: true, ...(result.retryAfterMs === undefined ? {} : { retryAfterMs: result.retryAfterMs }) };
}

class WizSession implements TargetSession {
  #api: WizGraphql | undefined;
  #account: ServiceAccount | undefined;
  /** The expiry this run gives the account: computed once, written to the record and set in Wiz. */
  #expiry: string | undefined;
  /** Self-rotation: the token verification got with the new secret, for what follows the rotation. */
  #newToken: WizToken | undefined;
  /** The token the API calls carry, kept for resumeState. */
  #token: WizToken | undefined;
  readonly #call: CallOptions;

  constructor(
    private readonly config: WizConfig,
    private readonly ctx: TargetContext<AdminKey, 'clientSecret'>,
  ) {
    this.#call = {
      deadline: ctx.deadline,
      onRetry: (_what, attempt, err, waitMs) => ctx.log.warn('wiz', `${redact(err.message)} (attempt ${attempt}); retrying in ${(waitMs / 1000).toFixed(1)} s`),
    };
  }

  describe(): string {
    const a = this.#account;
    return a ? `Wiz service account ${a.name} (client ID ${a.clientId})` : `Wiz service account with client ID ${this.config.clientId}`;
  }

  /** WIZ_CLIENT_ID and WIZ_CLIENT_SECRET, as the Wiz CLI and Wiz's integrations read them. */
  delivery(data: RecordData): DeliveryPayload | undefined {
    const id = readText(data, FIELDS.login.label);
    const secret = readText(data, FIELDS.secret.label);
    if (!id || !secret || secret === FIELDS.secret.example) return undefined;
    const entries = [entry('client_id', 'WIZ_CLIENT_ID', id), entry('client_secret', 'WIZ_CLIENT_SECRET', new Secret(secret))];
    // The client ID stays the same across rotations: the fingerprint is what tells two secrets apart.
    return { target: 'wiz-service-account', credentialId: id, entries, fingerprint: fingerprint(entries) };
  }

  /** Signs in with the admin credentials (the account's own when it rotates itself) and opens the API. */
  async #connect(context: PlanContext): Promise<WizGraphql> {
    const c = this.config;
    // An account that rotates itself signs in with the record's own secret: a request of its own, always.
    const result = c.adminIsSelf ? await requestToken(c.authUrl, c.adminClientId, c.adminSecret, this.#call) : await adminToken(c.authUrl, c.adminClientId, c.adminSecret, this.#call);
    if (!result.ok && c.adminIsSelf && context.interrupted?.resume) {
      const resumed = this.#resume(context.interrupted.resume);
      if (resumed) return resumed;
    }
    if (!result.ok) {
      if (!c.adminIsSelf) throw new RotateError('TARGET_AUTH_FAILED', `the admin credentials from ${c.adminSource} (client ID ${c.adminClientId}) do not sign in: ${result.reason}`);
      const lost = context.interrupted
        ? '; an earlier run stopped while Wiz was replacing the secret, so Wiz may hold a secret nobody knows: make a new secret for the account in the Wiz console, put it in the record\'s client_secret, then run again'
        : '';
      // The record's own secret was refused: exit 3 would promise a record that works, and this proves it does
      // not (another gateway may hold the token that repairs it, or a person has to).
      throw new RotateError('TARGET_AUTH_FAILED', `the record's client_secret does not sign in as ${c.clientId}: ${result.reason}${lost}`, { exitCode: 5 });
    }
    const token = result.token;
    // Umbrella scopes count: an admin holding admin:all or write:all, and nothing narrower, is accepted (wiz-api.ts
    // SCOPES_GRANTING); Wiz has the last word at the call itself.
    const missing = token.scopes === undefined ? [] : missingScopes(token.scopes);
    if (missing.length > 0) {
      throw new RotateError(
        'TARGET_PERMISSION_DENIED',
        `service account ${c.adminClientId} (${c.adminIsSelf ? 'rotating itself' : `admin, from ${c.adminSource}`}) lacks the Wiz API scope(s) ${missing.join(', ')}; it needs ${REQUIRED_SCOPES.map(describeScope).join(' and ')}`,
      );
    }
    let url = c.apiUrl;
    if (!url) {
      if (!token.dataCenter) throw new RotateError('TARGET_REQUEST_FAILED', `the Wiz token has no dc claim to find the API by; set ${SETTINGS.apiUrl.label} on the record`);
      url = apiUrlFor(c.authUrl, token.dataCenter);
    }
    this.#token = token;
    return new WizGraphql(url, token, this.#call);
  }

  /**
   * A self-rotating account whose run died inside the replace call, after Wiz applied it: nobody knows the new
   * secret and the old one is dead, but the token that run held still works (tokens outlive a rotation). It is
   * the one way back to a secret the record can hold: replace again with it. Only ever for this account's own
   * token, and only while it is valid.
   */
  #resume(sealed: string): WizGraphql | undefined {
    let saved: { clientId?: unknown; bearer?: unknown; url?: unknown; scopes?: unknown; dataCenter?: unknown; expiresAt?: unknown };
    try {
      saved = JSON.parse(sealed) as typeof saved;
    } catch {
      return undefined;
    }
    const c = this.config;
    if (saved.clientId !== c.clientId || typeof saved.bearer !== 'string' || typeof saved.url !== 'string') return undefined;
    if (typeof saved.expiresAt === 'number' && saved.expiresAt < Date.now() + 60_000) return undefined;
    const token: WizToken = {
      clientId: c.clientId,
      bearer: new Secret(saved.bearer),
      scopes: Array.isArray(saved.scopes) ? saved.scopes.filter((s): s is string => typeof s === 'string') : undefined,
      dataCenter: typeof saved.dataCenter === 'string' ? saved.dataCenter : undefined,
      ...(typeof saved.expiresAt === 'number' ? { expiresAt: saved.expiresAt } : {}),
    };
    this.ctx.log.warn('wiz', `the record's client_secret no longer signs in: an earlier run stopped while Wiz replaced it; replacing it again with the token that run held`);
    this.#token = token;
    return new WizGraphql(saved.url, token, this.#call);
  }

  resumeState(): string | undefined {
    const token = this.#token;
    if (!this.config.adminIsSelf || !token || !this.#api) return undefined;
    return JSON.stringify({ clientId: token.clientId, bearer: token.bearer.reveal(), url: this.#api.url, scopes: token.scopes, dataCenter: token.dataCenter, expiresAt: token.expiresAt });
  }

  async plan(context: PlanContext): Promise<RotationPlan> {
    const c = this.config;
    this.#api ??= await this.#connect(context);
    const account = await this.#api.findServiceAccount(c.clientId);
    if (!account) throw new RotateError('TARGET_NOT_FOUND', `no Wiz service account has client ID ${c.clientId}${c.adminIsSelf ? '' : ' (or the admin account cannot see it)'}`);
    this.#account = account;
    if (!c.adminIsSelf && account.clientId.toLowerCase() === c.adminClientId.toLowerCase()) {
      throw new RotateError('TARGET_IS_ADMIN', `${this.describe()} is the admin account (the admin credentials from ${c.adminSource}); its new secret would be saved in this record`);
    }
    // The name is the account's, not the record's: only reading the account tells, and nothing has changed yet.
    if (c.allow && !c.allow.matches.some((matches) => matches(account.name))) throw notAllowed(ALLOW_WIZ_ACCOUNTS, this.describe(), c.allow.entries);
    const now = new Date();
    // An account that cannot get tokens would take a new secret that no check can prove: refuse before replacing it.
    if (!account.enabled) throw new RotateError('TARGET_AUTH_FAILED', `${this.describe()} is disabled, so it cannot get tokens; enable it in Wiz, then run again`);
    if (isExpired(account.expiresAt, now)) {
      throw new RotateError('TARGET_AUTH_FAILED', `${this.describe()} expired at ${account.expiresAt}, so it cannot get tokens; extend its expiry in Wiz, then run again`);
    }
    const notes = [
      `${this.describe()} ${account.expiresAt ? `expires at ${account.expiresAt} (in ${formatSpan(Date.parse(account.expiresAt) - now.getTime())})` : 'never expires'}; last rotated ${account.lastRotatedAt ?? 'never'}${c.adminIsSelf ? '; it rotates its own secret' : ''}`,
    ];
    if (c.recordExpires && !sameInstant(c.recordExpires, account.expiresAt)) notes.push(`the record's expires (${c.recordExpires}) differs from the account's; Wiz's counts`);
    const decision = decideRotation({ expiresAt: account.expiresAt, now, withinDays: c.rotateWithinDays, interrupted: context.interrupted !== undefined });
    if (!decision.rotate) return { removeBefore: [], removeAfter: [], notes, skip: `not rotated: ${decision.reason}` };
    notes.push(`rotating: ${decision.reason}; the new secret expires ${c.lifetimeDays} day(s) after the rotation`);
    return { removeBefore: [], removeAfter: [], notes };
  }

  async create(): Promise<NewCredential> {
    const c = this.config;
    const expiry = newExpiry(new Date(), c.lifetimeDays);
    this.#expiry = expiry;
    let secret: Secret;
    try {
      secret = await this.#api!.rotateSecret(c.clientId);
    } catch (err) {
      if (!(err instanceof RotateError) || err.code !== 'TARGET_TIMEOUT') throw err;
      // Wiz may still be working on the call we gave up on, and would apply it after an immediate repeat,
      // replacing the secret we are about to save with one nobody knows. Give it one more request timeout to
      // land, then replace again: the last rotation wins, and it is ours.
      const settle = this.ctx.deadline.requestTimeoutMs;
      this.ctx.log.warn('wiz', `no answer to the rotation in time; waiting ${Math.round(settle / 1000)} s for a late one to land, then replacing the secret again`);
      await this.ctx.deadline.wait(settle, 'a late rotation to land');
      try {
        secret = await this.#api!.rotateSecret(c.clientId);
      } catch (again) {
        // Refused now, but the call we gave up on may have been applied: the outcome stays unknown.
        throw again instanceof WizCallError && again.refused ? again.uncertain() : again;
      }
    }
    return {
      id: c.clientId,
      secret,
      expires: expiry,
      // The client ID does not change, so the record always "holds" it: the pipeline never removes anything.
      idField: FIELDS.login.label,
      recordUpdates: [
        [FIELDS.secret, secret.reveal()],
        [FIELDS.expires, expiry],
      ],
    };
  }

  async verify(credential: NewCredential): Promise<VerifyResult> {
    // A fresh token request with the new secret: the one proof that consumers can sign in with it. A throttled
    // reply is "not yet", with Wiz's Retry-After: the verify loop paces the tries, so it comes back at once.
    const result = await requestToken(this.config.authUrl, this.config.clientId, credential.secret, this.#call, 'answer');
    if (!result.ok) return notYet(result);
    if (this.config.adminIsSelf) this.#newToken = result.token;
    return { ok: true };
  }

  async verifyRecord(data: RecordData): Promise<VerifyResult> {
    // The record's own secret for this account, as a consumer of the record would sign in with it.
    const clientId = readText(data, FIELDS.login.label);
    if (clientId !== this.config.clientId) return { ok: false, reason: `the record's login is no longer ${this.config.clientId}` };
    const secret = readText(data, FIELDS.secret.label);
    if (!secret) return { ok: false, reason: 'the record holds no client_secret' };
    // Asked once, not in a loop: throttling is waited out here first (as Wiz asks, within the deadline), and only
    // a throttle that outlasts that comes back, as throttled, so the caller does not read it as "does not sign in".
    let result: TokenResult;
    try {
      result = await requestToken(this.config.authUrl, clientId, new Secret(secret), this.#call);
    } catch (err) {
      if (err instanceof WizCallError && err.throttled) return notYet(throttledAnswer(err));
      throw err;
    }
    return result.ok ? { ok: true } : notYet(result);
  }

  async adopt(credential: NewCredential): Promise<void> {
    const c = this.config;
    const expiry = this.#expiry!;
    let api = this.#api!;
    if (c.adminIsSelf) {
      // The account rotated itself: from here on it signs in with the new secret, never with a token from before.
      let token = this.#newToken;
      if (!token) {
        const result = await requestToken(c.authUrl, c.clientId, credential.secret, this.#call);
        if (!result.ok) throw new RotateError('TARGET_AUTH_FAILED', `the new secret does not sign in as ${c.clientId}: ${result.reason}; the account still expires at ${this.#account?.expiresAt ?? 'never'}`);
        token = result.token;
      }
      api = new WizGraphql(api.url, token, this.#call);
      this.#api = api;
    }
    let reported: string | null;
    try {
      reported = await api.setExpiry(c.clientId, expiry);
    } catch (err) {
      if (!isRotateError(err)) throw err;
      throw new RotateError(err.code, `${err.message}; the secret was replaced and saved, but the account still expires at ${this.#account?.expiresAt ?? 'never'} (the record's expires says ${expiry})`, { cause: err });
    }
    if (sameInstant(reported, expiry)) this.ctx.log.info('expiry', `${this.describe()} now expires at ${expiry}`);
    else this.ctx.log.warn('expiry', `Wiz reports the expiry of ${this.describe()} as ${reported ?? 'never'}, not ${expiry} as asked (and as the record says)`);
  }

  async remove(): Promise<void> {
    // Nothing to remove: Wiz holds one secret per account, and replacing it retired the old one already.
  }
}

export const wizServiceAccount: Target<AdminKey, 'clientSecret', WizConfig> = {
  name: 'wiz-service-account',
  summary: 'rotates a Wiz service account client secret in place and pushes its expiry out',
  fields: Object.values(FIELDS),
  settings: SETTINGS,
  admin: {
    attached: { clientId: 'wiz_client_id', clientSecret: 'wiz_client_secret' },
    // Not clientId/clientSecret: those are the Azure PAM configuration's, for another service entirely.
    pamConfiguration: { clientId: 'wizClientId', clientSecret: 'wizClientSecret' },
    self: { clientId: 'login', clientSecret: 'client_secret' },
    secrets: ['clientSecret'],
    checkRecord: (user) => checkRecordShape('wiz-service-account', user.uid, user.data),
  },
  prepare,
  allowList: describeAllowList,
  connect: async (config, ctx) => new WizSession(config, ctx),
  verifyTimeoutMs: (config) => config.verifyTimeoutMs,
  mode: 'in-place',
  // The auth host too: the same client ID at another Wiz tenant is another account.
  principal: (config) => `wiz-account:${config.authUrl.toLowerCase()} ${config.clientId.toLowerCase()}`,
};
