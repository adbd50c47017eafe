// Azure app client secret rotation (Microsoft Graph). Records made from Keeper's template keep working:
// same field names, and `application_object_id` may hold the client ID that Keeper's guide tells users to
// paste there by mistake.
import { timingSafeEqual } from 'node:crypto';
import { RotateError } from '../../errors.js';
import { describeSource } from '../../keeper/admin.js';
import { readText, readUnambiguous } from '../../keeper/record.js';
import { parseSettings, type SettingSpec } from '../../pipeline/settings.js';
import type { NewCredential, PlanContext, RecordFieldSpec, Target, TargetContext, TargetSession, VerifyResult } from '../../pipeline/target.js';
import { Secret } from '../../secret.js';
import type { DeliveryPayload } from '../../destinations/destination.js';
import type { RecordData } from '../../keeper/record-data.js';
import { entry, fingerprint } from '../../destinations/payload.js';
import { ALLOW_AZURE_APPS, notAllowed, readEntries } from '../allow-list.js';
import { checkRecordShape } from '../record-shape.js';
import { AZURE_CLOUD_ENV, resolveEndpoints } from './clouds.js';
import type { AzureEndpoints, Application, GraphApplications } from './graph.js';
import { isOurs, planSecrets, secretDisplayName, type SecretPlan } from './plan.js';

const AADSTS_CODE = /AADSTS\d+/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A tenant is a GUID or a verified domain such as contoso.onmicrosoft.com. */
const TENANT = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+)$/i;
/** Apps open to personal Microsoft accounts may hold only two passwords. */
const PERSONAL_AUDIENCES = new Set(['AzureADandPersonalMicrosoftAccount', 'PersonalMicrosoftAccount']);
const PERSONAL_ACCOUNT_LIMIT = 2;

export const FIELDS = {
  objectId: { label: 'application_object_id', kind: 'text', required: true, example: '00000000-0000-0000-0000-000000000000', description: "The application's Object ID (its Application (client) ID is accepted too)." },
  secretId: { label: 'client_secret_id', kind: 'text', required: false, example: 'set-by-rotation', description: 'Written by each rotation: the key ID of the current client secret.' },
  secret: { label: 'client_secret', kind: 'secret', required: false, example: 'set-by-rotation', description: 'Written by each rotation: the current client secret.' },
  expires: { label: 'expires', kind: 'text', required: false, example: 'set-by-rotation', description: 'Written by each rotation: when the current secret expires (ISO-8601 UTC).' },
  previous: { label: 'previous_client_secret_ids', kind: 'text', required: false, example: 'set-by-rotation', description: 'Written by each rotation: key IDs of the earlier secrets still kept, newest first, then those the rotation retires (so the next run retries a removal that failed).' },
} as const satisfies Record<string, RecordFieldSpec>;

export const SETTINGS = {
  lifetimeDays: { kind: 'integer', label: 'secret_lifetime_days', default: 365, min: 1, max: 3650, description: 'Lifetime of each new client secret, in days.' },
  keepPrevious: { kind: 'integer', label: 'keep_previous_secrets', default: 1, min: 0, max: 10, description: 'How many earlier secrets stay valid for consumers still using them (1 = the one just replaced).' },
  removeOthers: { kind: 'boolean', label: 'remove_other_secrets', default: false, description: "Also remove the app's secrets that keeper-rotate did not create (Keeper's own script always did)." },
  verifyTimeoutSeconds: { kind: 'integer', label: 'verify_timeout_seconds', default: 300, min: 0, max: 3600, description: 'How long to keep trying the new secret while Entra propagates it.' },
  authorityHost: {
    kind: 'https-url',
    label: 'authority_host',
    default: undefined,
    hosts: /^login\.(microsoftonline\.(com|us)|chinacloudapi\.cn|partner\.microsoftonline\.cn)$/,
    hostHint: "an Entra cloud's login host (login.microsoftonline.com, login.microsoftonline.us, login.chinacloudapi.cn, login.partner.microsoftonline.cn)",
    description: "Entra authority host for national clouds (default: the login host of graph_endpoint's cloud).",
  },
  graphEndpoint: {
    kind: 'https-url',
    label: 'graph_endpoint',
    default: undefined,
    hosts: /^(graph\.microsoft\.(com|us)|dod-graph\.microsoft\.us|microsoftgraph\.chinacloudapi\.cn)$/,
    hostHint: 'a Microsoft Graph cloud host (graph.microsoft.com, graph.microsoft.us, dod-graph.microsoft.us, microsoftgraph.chinacloudapi.cn)',
    description: "Microsoft Graph endpoint; it names the cloud, and tokens are asked for that cloud's Graph (default: the gateway's KEEPER_ROTATE_AZURE_CLOUD, else https://graph.microsoft.com).",
  },
} as const satisfies Record<string, SettingSpec>;

type AdminKey = 'tenantId' | 'clientId' | 'clientSecret';

interface AzureAllowList {
  entries: string[];
  /** Object IDs and client IDs, lower case: either one names the application. */
  ids: Set<string>;
  /** `owned`: applications whose owners include the admin's service principal. */
  owned: boolean;
}

export function azureAllowList(env: NodeJS.ProcessEnv): AzureAllowList | undefined {
  const entries = readEntries(env, ALLOW_AZURE_APPS);
  if (!entries) return undefined;
  const list: AzureAllowList = { entries, ids: new Set(), owned: false };
  for (const e of entries) {
    if (e.toLowerCase() === 'owned') list.owned = true;
    else if (GUID.test(e)) list.ids.add(e.toLowerCase());
    else throw new RotateError('SETTING_INVALID', `${ALLOW_AZURE_APPS}: "${e}" is neither an application's object ID or client ID (a GUID) nor the word owned`);
  }
  return list;
}

function describeAllowList(env: NodeJS.ProcessEnv): string {
  const list = azureAllowList(env);
  if (!list) return `${ALLOW_AZURE_APPS} is not set: any application the admin app may change, except the admin app itself`;
  const parts = [
    ...(list.ids.size ? [`the application(s) ${[...list.ids].join(', ')}`] : []),
    ...(list.owned ? ["applications the admin app owns (one Graph request per run for an application not listed by ID)"] : []),
  ];
  return `${ALLOW_AZURE_APPS}: only ${parts.join(', and ')}; never the admin app itself`;
}

function sameSecret(a: Secret, b: Secret): boolean {
  const x = Buffer.from(a.reveal(), 'utf8');
  const y = Buffer.from(b.reveal(), 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

interface AzureConfig {
  recordUid: string;
  appRef: string;
  currentId: string | undefined;
  previousIds: string[];
  lifetimeDays: number;
  keepPrevious: number;
  removeOthers: boolean;
  verifyTimeoutMs: number;
  endpoints: AzureEndpoints;
  tenantId: string;
  adminClientId: string;
  adminSecret: Secret;
  adminIsSelf: boolean;
  /**
   * The record holds the admin's secret as its own client_secret: wherever the admin credentials were found, the
   * record's editor already has them, so an app rotating itself with them gives nothing away.
   */
  adminHeldByRecord: boolean;
  adminSource: string;
  allow: AzureAllowList | undefined;
  orphanAfterMs: number;
}

const adminRefusal = (app: string, source: string) =>
  new RotateError(
    'TARGET_IS_ADMIN',
    `${app} is the admin app itself (the admin credentials from ${source}); its new secret would be saved in this record, and retiring old secrets could remove the one the admin signs in with. An app rotates its own secret only from a record that holds its credentials (tenant_id, application_client_id, client_secret on the record itself)`,
  );

function prepare(ctx: TargetContext<AdminKey, 'clientSecret'>): AzureConfig {
  const data = ctx.user.data;
  const appRef = readUnambiguous(data, FIELDS.objectId.label, 'RECORD_FIELD_INVALID');
  if (!appRef) throw new RotateError('RECORD_FIELD_MISSING', `record ${ctx.user.uid} has no "${FIELDS.objectId.label}" (the application's Object ID)`);
  if (!GUID.test(appRef)) throw new RotateError('RECORD_FIELD_INVALID', `"${FIELDS.objectId.label}" must be a GUID (the application's Object ID or client ID)`);
  const currentId = readUnambiguous(data, FIELDS.secretId.label, 'RECORD_FIELD_INVALID');
  // A record imported from the CSV template still holds the placeholder until its first rotation.
  const previousIds = (readUnambiguous(data, FIELDS.previous.label, 'RECORD_FIELD_INVALID') ?? '').split(/[\s,]+/).filter((id) => id && id !== FIELDS.previous.example);
  for (const id of [...(currentId && currentId !== FIELDS.secretId.example ? [currentId] : []), ...previousIds]) {
    if (!GUID.test(id)) throw new RotateError('RECORD_FIELD_INVALID', `"${FIELDS.secretId.label}" and "${FIELDS.previous.label}" must hold secret key IDs (GUIDs)`);
  }
  const settings = parseSettings(SETTINGS, data);
  const { tenantId, clientId, clientSecret } = ctx.admin.values;
  if (!tenantId || !TENANT.test(tenantId)) throw new RotateError('ADMIN_CREDENTIALS_INVALID', 'the admin tenant ID must be a GUID or a domain name');
  if (!clientId || !GUID.test(clientId)) throw new RotateError('ADMIN_CREDENTIALS_INVALID', 'the admin client ID must be a GUID');
  if (!clientSecret) throw new RotateError('ADMIN_CREDENTIALS_INVALID', 'the admin client secret is empty');
  const adminIsSelf = ctx.admin.source.kind === 'self';
  const recordSecret = readText(data, FIELDS.secret.label);
  const adminHeldByRecord = adminIsSelf || (recordSecret !== undefined && sameSecret(new Secret(recordSecret), clientSecret));
  const adminSource = describeSource(ctx.admin.source);
  // The record names the admin app by its client ID: refused before its secret is sent anywhere. By object ID,
  // only the application read tells (plan).
  if (!adminHeldByRecord && appRef.toLowerCase() === clientId.toLowerCase()) throw adminRefusal(`application with client ID ${appRef}`, adminSource);
  const allow = azureAllowList(ctx.env);
  const envUrl = (name: string) => {
    const v = ctx.env[name];
    if (!v) return undefined;
    if (!/^https:\/\/[^/?#@]+/.test(v)) throw new RotateError('SETTING_INVALID', `${name} must be an https:// URL`);
    return v.replace(/\/+$/, '');
  };
  return {
    recordUid: ctx.user.uid,
    appRef: appRef.toLowerCase(),
    currentId: currentId && GUID.test(currentId) ? currentId.toLowerCase() : undefined,
    previousIds: previousIds.map((i) => i.toLowerCase()),
    lifetimeDays: settings.lifetimeDays,
    keepPrevious: settings.keepPrevious,
    removeOthers: settings.removeOthers,
    verifyTimeoutMs: settings.verifyTimeoutSeconds * 1000,
    endpoints: resolveEndpoints(
      { authorityHost: settings.authorityHost, graphEndpoint: settings.graphEndpoint },
      { cloud: ctx.env[AZURE_CLOUD_ENV], authorityHost: envUrl('AZURE_AUTHORITY_HOST'), graphEndpoint: envUrl('KEEPER_ROTATE_GRAPH_ENDPOINT') },
    ),
    tenantId,
    adminClientId: clientId.toLowerCase(),
    adminSecret: clientSecret,
    adminIsSelf,
    adminHeldByRecord,
    adminSource,
    allow,
    // A run still in progress cannot be older than its deadline: only older unreferenced secrets are orphans.
    orphanAfterMs: ctx.deadline.totalMs + 60_000,
  };
}

/** The Graph and Entra clients: loaded by `connect`, once the record is validated, not when the script starts. */
type GraphModule = typeof import('./graph.js');

class AzureSession implements TargetSession {
  #graph: GraphApplications;
  #app: Application | undefined;
  #plan: SecretPlan | undefined;

  constructor(
    private readonly config: AzureConfig,
    private readonly ctx: TargetContext<AdminKey, 'clientSecret'>,
    private readonly g: GraphModule,
  ) {
    const { GraphApplications, newCredential } = g;
    this.#graph = new GraphApplications(newCredential(config.tenantId, config.adminClientId, config.adminSecret, config.endpoints), config.endpoints, ctx.deadline);
  }

  describe(): string {
    return this.#app ? `application ${this.#app.id} (client ID ${this.#app.appId})` : `application ${this.config.appRef}`;
  }

  /** AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET: what azure-identity's EnvironmentCredential reads. */
  delivery(data: RecordData): DeliveryPayload | undefined {
    const id = readText(data, FIELDS.secretId.label);
    const secret = readText(data, FIELDS.secret.label);
    if (!this.#app || !id || !secret || id === FIELDS.secretId.example || secret === FIELDS.secret.example) return undefined;
    const entries = [entry('tenant_id', 'AZURE_TENANT_ID', this.config.tenantId), entry('client_id', 'AZURE_CLIENT_ID', this.#app.appId), entry('client_secret', 'AZURE_CLIENT_SECRET', new Secret(secret))];
    return { target: 'azure-app-secret', credentialId: id, entries, fingerprint: fingerprint(entries) };
  }

  #selfRotating(): boolean {
    return this.#app?.appId.toLowerCase() === this.config.adminClientId;
  }

  /** The gateway owner's allow-list, before anything changes: by ID, else (with `owned`) by the app's owners. */
  async #checkAllowed(app: Application): Promise<void> {
    const list = this.config.allow;
    if (!list || list.ids.has(app.id.toLowerCase()) || list.ids.has(app.appId.toLowerCase())) return;
    if (list.owned) {
      const me = await this.#graph.callerObjectId();
      const owners = await this.#graph.listOwners(app.id);
      const admin = this.config.adminClientId;
      if (owners.some((o) => o.appId?.toLowerCase() === admin || (me !== undefined && o.id.toLowerCase() === me))) return;
    }
    throw notAllowed(ALLOW_AZURE_APPS, `${this.describe()}${list.owned ? ', which the admin app does not own,' : ''}`, list.entries);
  }

  async plan(context: PlanContext): Promise<SecretPlan> {
    const app = await this.#graph.getApplication(this.config.appRef);
    this.#app = app;
    const c = this.config;
    const selfRotating = this.#selfRotating();
    if (selfRotating && !c.adminHeldByRecord) throw adminRefusal(this.describe(), c.adminSource);
    await this.#checkAllowed(app);
    // Rotating itself with a secret the record does not hold (from an attached record or the PAM
    // configuration): that secret must outlive the run, or the next run cannot sign in.
    const protectedHints = selfRotating && !c.adminIsSelf ? [c.adminSecret.reveal().slice(0, 3)] : [];
    const plan = planSecrets({
      recordUid: c.recordUid,
      secrets: app.passwordCredentials,
      currentId: c.currentId,
      previousIds: c.previousIds,
      keepPrevious: c.keepPrevious,
      removeOthers: c.removeOthers,
      limit: PERSONAL_AUDIENCES.has(app.signInAudience ?? '') ? PERSONAL_ACCOUNT_LIMIT : undefined,
      orphanAfter: new Date(Date.now() - c.orphanAfterMs),
      interrupted: context.interrupted,
      protectedHints,
    });
    if (app.id.toLowerCase() !== c.appRef) plan.notes.unshift(`"${FIELDS.objectId.label}" holds the client ID; the object ID is ${app.id}`);
    plan.notes.unshift(`${this.describe()} has ${app.passwordCredentials.length} client secret(s), ${app.passwordCredentials.filter((s) => isOurs(s, c.recordUid)).length} made by keeper-rotate for this record${selfRotating ? '; it rotates its own secret' : ''}`);
    this.#plan = plan;
    return plan;
  }

  async create(): Promise<NewCredential> {
    const app = this.#app!;
    const end = new Date(Date.now() + this.config.lifetimeDays * 86_400_000).toISOString();
    const made = await this.#graph.addPassword(app.id, secretDisplayName(this.config.recordUid, new Date()), end);
    const secret = new Secret(made.secretText);
    return {
      id: made.keyId,
      secret,
      expires: made.endDateTime,
      idField: FIELDS.secretId.label,
      recordUpdates: [
        [FIELDS.secretId, made.keyId],
        [FIELDS.secret, secret.reveal()],
        [FIELDS.expires, made.endDateTime],
        [FIELDS.previous, [...this.#plan!.keptPrevious, ...this.#plan!.retiring].join(',')],
      ],
    };
  }

  async verify(credential: NewCredential): Promise<VerifyResult> {
    // A fresh credential each time: a credential caches its token, which would prove nothing.
    const { boundedToken, classifyTokenError, graphScope, newProbe } = this.g;
    const probe = newProbe(this.config.tenantId, this.#app!.appId, credential.secret, this.config.endpoints);
    try {
      await boundedToken(probe.credential, this.ctx.deadline, graphScope(this.config.endpoints));
      return { ok: true };
    } catch (err) {
      if (err instanceof RotateError) throw err;
      const why = classifyTokenError(err);
      if (why.invalidSecret) return { ok: false, reason: 'Entra does not accept it yet (AADSTS7000215)' };
      // Throttled (429, or a loop or tenant throttling code) says nothing about the secret: not yet. Entra sends
      // no Retry-After with AADSTS50196; the reports above saw it lift after about two minutes, so a minute's
      // pause comes first, and the loop's own schedule after that.
      if (why.throttled || probe.seen.status === 429) {
        const after = probe.seen.retryAfterMs ?? (why.throttled ? 60_000 : undefined);
        return { ok: false, throttled: true, reason: `Entra throttled the token request (${why.throttled ? AADSTS_CODE.exec(why.message)?.[0] ?? 'throttled' : 'HTTP 429'})`, ...(after !== undefined ? { retryAfterMs: after } : {}) };
      }
      throw new RotateError(why.code, `Entra ID token request with the new secret failed: ${why.message}`, { cause: err });
    }
  }

  async adopt(credential: NewCredential): Promise<void> {
    if (!this.#selfRotating() || !this.config.adminIsSelf) return;
    // From here on the admin signs in with the new secret, so removing the old one cannot lock this run out.
    const { GraphApplications, newCredential } = this.g;
    this.#graph = new GraphApplications(newCredential(this.config.tenantId, this.config.adminClientId, credential.secret, this.config.endpoints), this.config.endpoints, this.ctx.deadline);
  }

  async remove(credential: { id: string }): Promise<void> {
    // Recovery removes a leftover before this run has planned, so the app may not have been read yet.
    this.#app ??= await this.#graph.getApplication(this.config.appRef);
    try {
      await this.#graph.removePassword(this.#app.id, credential.id);
    } catch (err) {
      // Graph answers 400 (not 404) for a keyId the app does not have: an undo or a recovery repeating a removal
      // that already happened. Only a fresh read tells that apart from a real failure.
      const app = await this.#graph.getApplication(this.#app.id).catch(() => undefined);
      if (app && !app.passwordCredentials.some((s) => s.keyId?.toLowerCase() === credential.id.toLowerCase())) {
        throw new RotateError('TARGET_NOT_FOUND', `client secret ${credential.id} is no longer on ${this.describe()}`, { cause: err });
      }
      throw err;
    }
  }
}

export const azureAppSecret: Target<AdminKey, 'clientSecret', AzureConfig> = {
  name: 'azure-app-secret',
  summary: 'rotates an Azure (Entra ID) application client secret through Microsoft Graph',
  fields: Object.values(FIELDS),
  settings: SETTINGS,
  admin: {
    attached: { tenantId: 'tenant_id', clientId: 'application_client_id', clientSecret: 'client_secret' },
    pamConfiguration: { tenantId: 'tenantId', clientId: 'clientId', clientSecret: 'clientSecret' },
    self: { tenantId: 'tenant_id', clientId: 'application_client_id', clientSecret: 'client_secret' },
    secrets: ['clientSecret'],
    checkRecord: (user) => checkRecordShape('azure-app-secret', user.uid, user.data),
  },
  prepare,
  allowList: describeAllowList,
  // @azure/identity and the Graph client are most of the bundle: load them only for a run that gets this far.
  connect: async (config, ctx) => new AzureSession(config, ctx, await import('./graph.js')),
  verifyTimeoutMs: (config) => config.verifyTimeoutMs,
  retiresReplacedAtOnce: (config) => (config.keepPrevious === 0 ? 'keep_previous_secrets is 0' : undefined),
  // As the record names it: the object ID, or the client ID (then the same application by its other ID counts as
  // another; the run stops and says so, which only costs a person a look).
  principal: (config) => `application:${config.appRef}`,
};
