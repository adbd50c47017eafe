// AWS IAM access key rotation with the CURRENT/LAST two-key pattern. Records made from Keeper's AWS template
// keep working: same field names, the IAM user name in the login field. The key the record held stays active as
// LAST, so jobs that fetched it before the rotation keep running; the next rotation deletes it.
import { HARD_STOP_GRACE_MS } from '../../cli/main.js';
import { timingSafeEqual } from 'node:crypto';
import { RotateError } from '../../errors.js';
import { type AdminFieldNames, ambientAllowed, describeSource, hostOptIns } from '../../keeper/admin.js';
import { readText, readUnambiguous } from '../../keeper/record.js';
import { parseSettings, type SettingSpec } from '../../pipeline/settings.js';
import type { NewCredential, PlanContext, RecordFieldSpec, Target, TargetContext, TargetSession, VerifyResult } from '../../pipeline/target.js';
import { Secret } from '../../secret.js';
import type { DeliveryPayload } from '../../destinations/destination.js';
import { entry, fingerprint } from '../../destinations/payload.js';
import type { RecordData } from '../../keeper/record-data.js';
import { ALLOW_AWS_USERS, globMatcher, notAllowed, readEntries } from '../allow-list.js';
import { checkRecordShape } from '../record-shape.js';
import type { AwsEndpoints, IamAccessKeys, Signer, StaticKeys } from './iam.js';
import { type KeyPlan, LIST_LAG_MS, planKeys } from './plan.js';

/** IAM's rule for user names. */
const USER_NAME = /^[\w+=,.@-]{1,64}$/;
const ACCESS_KEY_ID = /^[A-Z0-9]{16,128}$/;
const ROLE_ARN = /^arn:aws(?:-[a-z]+)*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;
/** An IAM path prefix in the allow-list: IAM's path characters, less the comma that separates entries. */
const PATH_ENTRY = /^\/(?:[\x21-\x2b\x2d-\x7e]+\/)?$/;
/** A user name pattern in the allow-list: IAM's name characters (less the comma) and the wildcards * and ?. */
const NAME_ENTRY = /^[\w+=.@*?-]{1,128}$/;

interface AwsAllowList {
  entries: string[];
  /** IAM user names are unique regardless of case, so `Admin` is `admin`: names match case-insensitively. */
  names: Array<(name: string) => boolean>;
  paths: string[];
}

export function awsAllowList(env: NodeJS.ProcessEnv): AwsAllowList | undefined {
  const entries = readEntries(env, ALLOW_AWS_USERS);
  if (!entries) return undefined;
  const list: AwsAllowList = { entries, names: [], paths: [] };
  for (const e of entries) {
    if (e.startsWith('/')) {
      if (!PATH_ENTRY.test(e)) throw new RotateError('SETTING_INVALID', `${ALLOW_AWS_USERS}: "${e}" is not an IAM path prefix such as /rotated/ (it starts and ends with /)`);
      list.paths.push(e);
    } else if (NAME_ENTRY.test(e)) list.names.push(globMatcher(e, true));
    else throw new RotateError('SETTING_INVALID', `${ALLOW_AWS_USERS}: "${e}" is neither an IAM path prefix (/path/) nor a user name pattern (letters, digits, +=.@_- and the wildcards * and ?)`);
  }
  return list;
}

function describeAllowList(env: NodeJS.ProcessEnv): string {
  const list = awsAllowList(env);
  if (!list) return `${ALLOW_AWS_USERS} is not set: any IAM user the admin credentials can manage, except the admin's own`;
  const parts = [
    ...(list.names.length ? [`user names matching ${list.entries.filter((e) => !e.startsWith('/')).join(', ')}`] : []),
    ...(list.paths.length ? [`users under the path ${list.paths.join(', ')} (one IAM GetUser per run)`] : []),
  ];
  return `${ALLOW_AWS_USERS}: only ${parts.join(', or ')}; never the admin's own user`;
}

function sameSecret(a: Secret, b: Secret): boolean {
  const x = Buffer.from(a.reveal(), 'utf8');
  const y = Buffer.from(b.reveal(), 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

export const FIELDS = {
  login: { label: 'login', kind: 'text', required: true, standard: true, example: 'iam-user-name', description: 'The IAM user name (the record\'s login).' },
  keyId: { label: 'aws_access_key_id', kind: 'text', required: false, example: 'set-by-rotation', description: 'CURRENT: the access key ID consumers use. Written by each rotation.' },
  secret: { label: 'aws_secret_access_key', kind: 'secret', required: false, example: 'set-by-rotation', description: 'The secret of the CURRENT key. Written by each rotation.' },
  createDate: { label: 'CreateDate', kind: 'text', required: false, example: 'set-by-rotation', description: 'When IAM created the CURRENT key (ISO-8601 UTC). Written by each rotation.' },
  removed: { label: 'Access_Key_ID_Removed_during_previous_rotation', kind: 'text', required: false, example: 'set-by-rotation', description: 'Key IDs the last rotation deleted (as Keeper\'s script wrote). Written by each rotation.' },
  lastKeyId: { label: 'previous_aws_access_key_id', kind: 'text', required: false, example: 'set-by-rotation', description: 'LAST: the key the CURRENT one replaced, still active for jobs that fetched it. Written by each rotation.' },
} as const satisfies Record<string, RecordFieldSpec>;

export const SETTINGS = {
  deleteUnknown: { kind: 'boolean', label: 'delete_all_keys_before_rotating', default: false, description: "Delete the user's keys the record does not know (never CURRENT) before creating. Keeper's script deleted every key; this one never deletes CURRENT, nor a key younger than the longest run (it may be another run's new key)." },
  deactivateLast: { kind: 'boolean', label: 'deactivate_previous_key', default: false, description: 'Set the replaced key (LAST) Inactive once the new one is verified, instead of leaving it active.' },
  verifyTimeoutSeconds: { kind: 'integer', label: 'verify_timeout_seconds', default: 120, min: 0, max: 3600, description: 'How long to keep trying the new key while IAM propagates it.' },
  region: { kind: 'pattern', label: 'aws_region', default: undefined, pattern: REGION, hint: 'an AWS region such as us-east-1 or us-gov-west-1', description: 'Region for STS and the partition (default AWS_REGION, else us-east-1).' },
  adminCredentials: { kind: 'choice', label: 'admin_credentials', default: 'auto', choices: ['auto', 'host'], description: "auto: attached record, PAM configuration, the record's own key, then the host's AWS credential chain if the gateway allows it (KEEPER_ROTATE_AWS_HOST_CREDENTIALS=allow); host: the host's chain instead of the record's own key, refused unless the gateway allows it." },
} as const satisfies Record<string, SettingSpec>;

type AdminKey = 'accessKeyId' | 'secretAccessKey' | 'roleArn';

/**
 * The gateway owner's opt-in, in the gateway's environment, to the host's AWS credential chain for records that
 * hold no admin keys (or set admin_credentials to host). The chain is the gateway owner's identity, often an
 * instance role worth more than any admin key: without the opt-in a record editor could reach it by clearing keys.
 */
export const HOST_CREDENTIALS_OPT_IN = { variable: 'KEEPER_ROTATE_AWS_HOST_CREDENTIALS', value: 'allow' } as const;

const ADMIN: AdminFieldNames<AdminKey, 'secretAccessKey'> = {
  attached: { accessKeyId: 'aws_access_key_id', secretAccessKey: 'aws_secret_access_key', roleArn: 'role_arn' },
  pamConfiguration: { accessKeyId: 'accessKeyId', secretAccessKey: 'accessSecretKey', roleArn: 'roleArn' },
  self: { accessKeyId: 'aws_access_key_id', secretAccessKey: 'aws_secret_access_key', roleArn: 'role_arn' },
  optional: ['roleArn'],
  secrets: ['secretAccessKey'],
  ambient: { description: "the gateway host's AWS credential chain (environment, profile, instance or task role)", optIn: HOST_CREDENTIALS_OPT_IN },
  // Keeper's AWS guide: "Set this field to USE_INSTANCE_ROLE if the gateway is deployed to an EC2 Instance that
  // supports instance roles", for both the Access Key ID and the Secret Access Key of the PAM configuration.
  hostMarker: { value: 'USE_INSTANCE_ROLE', fields: ['accessKeyId', 'secretAccessKey'] },
  checkRecord: (user) => checkRecordShape('aws-iam-access-key', user.uid, user.data),
};

interface AwsConfig {
  recordUid: string;
  userName: string;
  currentId: string | undefined;
  lastId: string | undefined;
  deleteUnknown: boolean;
  deactivateLast: boolean;
  verifyTimeoutMs: number;
  endpoints: AwsEndpoints;
  /** Undefined: the host's credential chain. */
  admin: StaticKeys | undefined;
  /** Why the host's credential chain signs (for the message when it has nothing); undefined with keys. */
  hostBecause: string | undefined;
  roleArn: string | undefined;
  adminIsSelf: boolean;
  /** Where the admin credentials came from, for messages. */
  adminSource: string;
  /** The record's CURRENT secret: when the admin signs with CURRENT itself, the record already holds the admin key. */
  currentSecret: Secret | undefined;
  /** Set when the user name matched no pattern of the allow-list, so the user's path decides (GetUser). */
  allowPaths: { entries: string[]; paths: string[] } | undefined;
  /** Unknown keys made since then may be another run's new key: never deleted (plan.ts `freshSince`). */
  freshSince: Date;
  currentCreatedAt: Date | undefined;
}

/** IAM is global: each partition signs it in one region, whatever region the gateway is in. */
function iamSigningRegion(region: string): string {
  if (region.startsWith('us-gov-')) return 'us-gov-west-1';
  if (region.startsWith('cn-')) return 'cn-north-1';
  return 'us-east-1';
}

function endpointFromEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name] || env.AWS_ENDPOINT_URL;
  if (!v) return undefined;
  if (!/^https?:\/\/[^/?#@\s]+\/?$/.test(v)) throw new RotateError('SETTING_INVALID', `${env[name] ? name : 'AWS_ENDPOINT_URL'} must be an http(s) URL with no path`);
  return v.replace(/\/+$/, '');
}

function prepare(ctx: TargetContext<AdminKey, 'secretAccessKey'>): AwsConfig {
  const data = ctx.user.data;
  const userName = readUnambiguous(data, FIELDS.login.label, 'RECORD_FIELD_INVALID');
  if (!userName) throw new RotateError('RECORD_FIELD_MISSING', `record ${ctx.user.uid} has no login (the IAM user name)`);
  if (!USER_NAME.test(userName)) throw new RotateError('RECORD_FIELD_INVALID', 'the login must be an IAM user name: 1 to 64 letters, digits or +=,.@_-');
  const keyId = (label: string) => {
    const v = readUnambiguous(data, label, 'RECORD_FIELD_INVALID');
    if (v === undefined || v === 'set-by-rotation') return undefined;
    if (!ACCESS_KEY_ID.test(v)) throw new RotateError('RECORD_FIELD_INVALID', `"${label}" must be an access key ID (16 to 128 capital letters and digits)`);
    return v;
  };
  const currentId = keyId(FIELDS.keyId.label);
  const lastId = keyId(FIELDS.lastKeyId.label);
  const createdText = readText(data, FIELDS.createDate.label);
  const created = createdText && createdText !== FIELDS.createDate.example ? new Date(createdText) : undefined;
  const settings = parseSettings(SETTINGS, data);
  // The name needs no request; a path does (GetUser), so only a name no pattern matches is left to the plan.
  const allow = awsAllowList(ctx.env);
  let allowPaths: AwsConfig['allowPaths'];
  if (allow && !allow.names.some((matches) => matches(userName))) {
    if (allow.paths.length === 0) throw notAllowed(ALLOW_AWS_USERS, `IAM user ${userName}`, allow.entries);
    allowPaths = { entries: allow.entries, paths: allow.paths };
  }
  const currentSecretText = readText(data, FIELDS.secret.label);
  const region = settings.region ?? ctx.env.AWS_REGION ?? ctx.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  if (!REGION.test(region)) throw new RotateError('SETTING_INVALID', 'AWS_REGION must be an AWS region such as us-east-1');

  const source = ctx.admin.source.kind;
  const host = ADMIN.ambient!;
  // The record asks for the gateway owner's identity: only the gateway owner may hand it out. Under the PAM
  // configuration's USE_INSTANCE_ROLE the host signs anyway, and the setting changes nothing.
  const hostAllowed = ambientAllowed(host, ctx.env);
  if (settings.adminCredentials === 'host' && !hostAllowed && source !== 'host') {
    throw new RotateError('SETTING_INVALID', `admin_credentials = host asks for ${host.description}, which this gateway does not allow; the gateway owner allows it with ${hostOptIns(ADMIN)}`);
  }
  const useHost = source === 'ambient' || source === 'host' || (source === 'self' && settings.adminCredentials === 'host');
  const { accessKeyId, secretAccessKey, roleArn } = ctx.admin.values;
  if (!useHost) {
    if (!accessKeyId || !ACCESS_KEY_ID.test(accessKeyId)) throw new RotateError('ADMIN_CREDENTIALS_INVALID', 'the admin access key ID must be 16 to 128 capital letters and digits');
    if (!secretAccessKey) throw new RotateError('ADMIN_CREDENTIALS_INVALID', 'the admin secret access key is empty');
  }
  if (roleArn !== undefined && !ROLE_ARN.test(roleArn)) throw new RotateError('ADMIN_CREDENTIALS_INVALID', 'role_arn must be an IAM role ARN (arn:aws:iam::123456789012:role/name)');
  return {
    recordUid: ctx.user.uid,
    userName,
    currentId,
    lastId,
    // Only a plausible date counts: a future or unreadable one would make a missing key look young forever.
    currentCreatedAt: created && !Number.isNaN(created.getTime()) && created.getTime() <= Date.now() + 60_000 ? created : undefined,
    deleteUnknown: settings.deleteUnknown,
    deactivateLast: settings.deactivateLast,
    verifyTimeoutMs: settings.verifyTimeoutSeconds * 1000,
    endpoints: { region, iam: endpointFromEnv(ctx.env, 'AWS_ENDPOINT_URL_IAM'), sts: endpointFromEnv(ctx.env, 'AWS_ENDPOINT_URL_STS') },
    admin: useHost ? undefined : { accessKeyId: accessKeyId!, secretAccessKey: secretAccessKey! as Secret },
    hostBecause: !useHost
      ? undefined
      : source === 'host'
        ? `PAM configuration ${ctx.admin.source.uid} asks for the gateway host's own credentials (${ctx.admin.source.marker})`
        : source === 'self'
          ? `the record sets admin_credentials to host (${HOST_CREDENTIALS_OPT_IN.variable}=${HOST_CREDENTIALS_OPT_IN.value})`
          : `no record holds admin credentials (${HOST_CREDENTIALS_OPT_IN.variable}=${HOST_CREDENTIALS_OPT_IN.value})`,
    // A role to assume comes from the place that gave the credentials: the PAM configuration, with USE_INSTANCE_ROLE.
    roleArn: useHost && source !== 'host' ? undefined : roleArn,
    adminIsSelf: source === 'self' && !useHost,
    adminSource: useHost && source !== 'host' ? describeSource({ kind: 'ambient', description: host.description, optIn: `${HOST_CREDENTIALS_OPT_IN.variable}=${HOST_CREDENTIALS_OPT_IN.value}` }) : describeSource(ctx.admin.source),
    currentSecret: currentSecretText && currentSecretText !== FIELDS.secret.example ? new Secret(currentSecretText) : undefined,
    allowPaths,
    // This run started (and read the record) no earlier than endsAt - totalMs; another run lasts at most totalMs + grace.
    freshSince: new Date(ctx.deadline.endsAt() - ctx.deadline.totalMs - (ctx.deadline.totalMs + HARD_STOP_GRACE_MS)),
  };
}

/** The AWS SDK clients: loaded by `connect`, once the record is validated, not when the script starts. */
type IamModule = typeof import('./iam.js');

class AwsSession implements TargetSession {
  #iam: IamAccessKeys;
  #plan: KeyPlan | undefined;

  constructor(
    private readonly config: AwsConfig,
    /** What the admin credentials are before any role is assumed: the admin check compares this key. */
    private readonly source: Signer,
    admin: Signer,
    private readonly ctx: TargetContext<AdminKey, 'secretAccessKey'>,
    private readonly sdk: IamModule,
  ) {
    this.#iam = new sdk.IamAccessKeys(this.#iamEndpoints(), admin, ctx.deadline);
  }

  #iamEndpoints(): AwsEndpoints {
    return { ...this.config.endpoints, region: iamSigningRegion(this.config.endpoints.region) };
  }

  describe(): string {
    return `IAM user ${this.config.userName}`;
  }

  /** AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, as every AWS SDK and the CLI read them. */
  delivery(data: RecordData): DeliveryPayload | undefined {
    const id = readText(data, FIELDS.keyId.label);
    const secret = readText(data, FIELDS.secret.label);
    if (!id || !secret || id === FIELDS.keyId.example || secret === FIELDS.secret.example) return undefined;
    const entries = [entry('access_key_id', 'AWS_ACCESS_KEY_ID', id), entry('secret_access_key', 'AWS_SECRET_ACCESS_KEY', new Secret(secret))];
    return { target: 'aws-iam-access-key', credentialId: id, entries, fingerprint: fingerprint(entries) };
  }

  async plan(context: PlanContext): Promise<KeyPlan> {
    const c = this.config;
    if (c.allowPaths) {
      const path = await this.#iam.userPath(c.userName);
      // IAM paths are case-sensitive, unlike user names.
      if (!c.allowPaths.paths.some((p) => path.startsWith(p))) throw notAllowed(ALLOW_AWS_USERS, `IAM user ${c.userName} (path ${path})`, c.allowPaths.entries);
    }
    const keys = await this.#iam.list(c.userName);
    await this.#refuseAdmin(keys.map((k) => k.accessKeyId));
    // A young CURRENT the list does not show: whether STS still accepts it decides what the refusal's exit code
    // may say (one request, only then).
    let currentSignsIn: boolean | undefined;
    if (c.currentCreatedAt && c.currentId && c.currentSecret && !keys.some((k) => k.accessKeyId === c.currentId) && Date.now() - c.currentCreatedAt.getTime() < LIST_LAG_MS) {
      const r = await this.sdk.callerIdentity(c.endpoints, { accessKeyId: c.currentId, secretAccessKey: c.currentSecret }, this.ctx.deadline).catch(() => undefined);
      currentSignsIn = r?.ok === true && r.arn.endsWith(`/${c.userName}`);
    }
    const plan = planKeys({
      currentSignsIn,
      userName: c.userName,
      keys,
      currentId: c.currentId,
      lastId: c.lastId,
      currentCreatedAt: c.currentCreatedAt,
      deleteUnknown: c.deleteUnknown,
      deactivateLast: c.deactivateLast,
      interrupted: context.interrupted,
      freshSince: c.freshSince,
      // A user rotating its own key signs with the new one once it is saved (adopt), so its CURRENT may go.
      protectedIds: c.admin && !c.roleArn && !c.adminIsSelf ? [c.admin.accessKeyId] : [],
    });
    this.#plan = plan;
    return plan;
  }

  /**
   * The admin's own user is never the target: its new key would be saved in a record its editor can read. The
   * key the admin signs with (or assumes its role with) is one of the rotated user's keys exactly when that user
   * is the admin's, so the key list the plan reads anyway answers it, with no request of its own (STS
   * GetCallerIdentity would cost one per run). The host's chain may give an IAM user's key (the environment, a
   * profile): compared the same way. Or a role's session (an instance role, ASIA...): no user's key, and no IAM
   * user can be that role, so there is nothing to compare; the role's own policy and the allow-list bound it.
   */
  async #refuseAdmin(userKeys: string[]): Promise<void> {
    const c = this.config;
    if (c.adminIsSelf) return;
    const signer = typeof this.source === 'function' ? await this.sdk.resolveSigner(this.source) : this.source;
    if (!userKeys.includes(signer.accessKeyId)) return;
    // The record already holds this very key and its secret: the run gives its editor nothing new.
    if (c.currentId === signer.accessKeyId && c.currentSecret && sameSecret(c.currentSecret, signer.secretAccessKey)) return;
    throw new RotateError(
      'TARGET_IS_ADMIN',
      `IAM user ${c.userName} is the admin's own user: the admin key ${signer.accessKeyId} (${c.adminSource}) is one of its keys, and its new key would be saved in this record. Rotate the admin's key from a record that holds it (its own key as admin credentials), never from another record`,
    );
  }

  async create(): Promise<NewCredential> {
    const made = await this.#iam.create(this.config.userName);
    const removed = (this.#plan?.removeBefore ?? []).map((c) => c.id).join(',');
    return {
      id: made.accessKeyId,
      secret: made.secret,
      expires: undefined,
      idField: FIELDS.keyId.label,
      recordUpdates: [
        [FIELDS.keyId, made.accessKeyId],
        [FIELDS.secret, made.secret.reveal()],
        [FIELDS.createDate, made.createDate.toISOString()],
        [FIELDS.removed, removed],
        [FIELDS.lastKeyId, this.#plan?.nextLast ?? ''],
      ],
    };
  }

  async verify(credential: NewCredential): Promise<VerifyResult> {
    const result = await this.sdk.callerIdentity(this.config.endpoints, { accessKeyId: credential.id, secretAccessKey: credential.secret }, this.ctx.deadline);
    if (!result.ok) return result;
    // The key must act as the record's user, not merely work.
    if (!result.arn.endsWith(`/${this.config.userName}`)) {
      throw new RotateError('VERIFY_FAILED', `the new key ${credential.id} authenticates as ${result.arn}, not as user ${this.config.userName}`);
    }
    return { ok: true };
  }

  async adopt(credential: NewCredential): Promise<void> {
    if (!this.config.adminIsSelf) return;
    // The user rotates its own key: from here on sign with the new one, so deactivating LAST cannot lock us out.
    this.#iam.destroy();
    this.#iam = new this.sdk.IamAccessKeys(this.#iamEndpoints(), { accessKeyId: credential.id, secretAccessKey: credential.secret }, this.ctx.deadline);
  }

  async remove(credential: { id: string; deactivate?: boolean }): Promise<void> {
    if (credential.deactivate) await this.#iam.deactivate(this.config.userName, credential.id);
    else await this.#iam.delete(this.config.userName, credential.id);
  }
}

export const awsIamAccessKey: Target<AdminKey, 'secretAccessKey', AwsConfig> = {
  name: 'aws-iam-access-key',
  summary: 'rotates an AWS IAM user access key with the CURRENT/LAST two-key pattern',
  fields: Object.values(FIELDS),
  settings: SETTINGS,
  admin: ADMIN,
  prepare,
  connect: async (config, ctx) => {
    // The AWS SDK is most of the bundle: load it only for a run that gets this far; the host's credential chain
    // only for a run that signs with it.
    const sdk = await import('./iam.js');
    let source: Signer;
    if (config.admin) source = config.admin;
    else {
      const { hostCredentials } = await import('./host-credentials.js');
      source = hostCredentials(config.hostBecause ?? "the host's credentials sign", ctx.log);
      // Asked once, here: a host with no identity stops the run before any request to AWS.
      await source();
    }
    const admin = config.roleArn ? await sdk.assumeRole(config.endpoints, source, config.roleArn, ctx.deadline) : source;
    return new AwsSession(config, source, admin, ctx, sdk);
  },
  verifyTimeoutMs: (config) => config.verifyTimeoutMs,
  retiresReplacedAtOnce: (config) => (config.deactivateLast ? 'deactivate_previous_key is true' : undefined),
  // IAM user names are unique regardless of case.
  principal: (config) => `iam-user:${config.userName.toLowerCase()}`,
  allowList: describeAllowList,
};
