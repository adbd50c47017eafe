// ECR pull secrets: a record whose "rotation" fetches fresh ECR registry logins (GetAuthorizationToken, one per
// region), checks each against its registry (`GET /v2/`), and saves them as a Docker config in the record, for
// delivery as a `kubernetes.io/dockerconfigjson` Secret. Nothing is ever retired: a login is not a resource on
// AWS, it expires by itself 12 hours after it was issued, and no API revokes one. So the pipeline's overlap
// path serves as is: plan removes nothing, and `remove` (which only the undo of a failed run would call) has
// nothing to do.
import { createHash } from 'node:crypto';
import { RotateError } from '../../errors.js';
import type { RecordData } from '../../keeper/record-data.js';
import { readText } from '../../keeper/record.js';
import { parseSettings, type SettingSpec } from '../../pipeline/settings.js';
import type { NewCredential, RecordFieldSpec, RotationPlan, Target, TargetContext, TargetSession, VerifyResult } from '../../pipeline/target.js';
import type { DeliveryPayload } from '../../destinations/destination.js';
import { entry, fingerprint } from '../../destinations/payload.js';
import { Secret } from '../../secret.js';
import type { Signer } from '../aws-iam-access-key/iam.js';
import { checkRecordShape } from '../record-shape.js';
import { type RegistryLogin, dockerConfigJson, readDockerConfig, registryHost } from './docker-config.js';

const ACCESS_KEY_ID = /^[A-Z0-9]{16,128}$/;
const ROLE_ARN = /^arn:aws(?:-[a-z]+)*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;
const ACCOUNT_ID = /^\d{12}$/;
/**
 * An ECR private registry host: `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`. A record names only these:
 * the run sends each login to the proxyEndpoint ECR answers with, never to a host of the record's choosing.
 */
const REGISTRY_HOST = /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d{1,2})\.amazonaws\.com(?:\.cn)?$/;
const LIST = (item: string) => new RegExp(`^\\s*(?:${item})(?:\\s*,\\s*(?:${item}))*\\s*$`);
const REGION_ITEM = '[a-z]{2}(?:-[a-z]+)+-\\d{1,2}';
const REGISTRY_ITEM = `\\d{12}|\\d{12}\\.dkr\\.ecr(?:-fips)?\\.${REGION_ITEM}\\.amazonaws\\.com(?:\\.cn)?`;
/** ECR's registryIds takes at most 10 IDs per call. */
const MAX_REGISTRIES_PER_REGION = 10;
const MAX_REGIONS = 10;

export const FIELDS = {
  dockerConfig: {
    label: 'ecr_docker_config_json',
    kind: 'secret',
    required: false,
    example: 'set-by-rotation',
    description: 'The Docker config of the pull secret: {"auths":{"<registry host>":{"username":"AWS","password":...,"auth":...}}} for every registry. Written by each rotation.',
  },
  expires: { label: 'ecr_token_expires', kind: 'text', required: false, example: 'set-by-rotation', description: 'When the first of its logins expires (ISO-8601 UTC), 12 hours after the rotation. Written by each rotation.' },
  tokenId: { label: 'ecr_token_id', kind: 'text', required: false, example: 'set-by-rotation', description: 'An ID for the logins the last rotation saved (a digest, not secret), as logs name them. Written by each rotation.' },
} as const satisfies Record<string, RecordFieldSpec>;

export const SETTINGS = {
  registries: {
    kind: 'pattern',
    label: 'ecr_registries',
    default: undefined,
    pattern: LIST(REGISTRY_ITEM),
    hint: 'a comma-separated list of 12-digit AWS account IDs or ECR registry hosts such as 123456789012.dkr.ecr.us-east-1.amazonaws.com',
    description: "The registries to log in to: account IDs (in each of ecr_regions) or registry hosts (in their own region). Default: the signing account's own registry.",
  },
  regions: {
    kind: 'pattern',
    label: 'ecr_regions',
    default: undefined,
    pattern: LIST(REGION_ITEM),
    hint: 'a comma-separated list of AWS regions such as us-east-1,eu-west-1',
    description: 'The regions to log in to (one login each). Default: AWS_REGION, else us-east-1; none when ecr_registries names only hosts.',
  },
  verifyTimeoutSeconds: { kind: 'integer', label: 'verify_timeout_seconds', default: 60, min: 0, max: 3600, description: 'How long to keep trying each new login against its registry.' },
} as const satisfies Record<string, SettingSpec>;

type AdminKey = 'accessKeyId' | 'secretAccessKey' | 'roleArn';

/** One GetAuthorizationToken call: a region and the registry IDs to name (none: the caller's own registry). */
export interface LoginRequest {
  region: string;
  registryIds: string[];
}

interface EcrConfig {
  requests: LoginRequest[];
  verifyTimeoutMs: number;
  endpoint: string | undefined;
  /** Undefined: the gateway host's credential chain, as the PAM configuration asks (USE_INSTANCE_ROLE). */
  admin: { accessKeyId: string; secretAccessKey: Secret } | undefined;
  hostBecause: string | undefined;
  roleArn: string | undefined;
}

function endpointFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  const name = env.AWS_ENDPOINT_URL_ECR ? 'AWS_ENDPOINT_URL_ECR' : 'AWS_ENDPOINT_URL';
  const v = env[name];
  if (!v) return undefined;
  if (!/^https?:\/\/[^/?#@\s]+\/?$/.test(v)) throw new RotateError('SETTING_INVALID', `${name} must be an http(s) URL with no path`);
  return v.replace(/\/+$/, '');
}

const items = (text: string | undefined) => (text ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');

/** Which logins a run asks for, from the settings (no network). */
export function loginRequests(registries: string | undefined, regions: string | undefined, defaultRegion: string): LoginRequest[] {
  const ids: string[] = [];
  const byRegion = new Map<string, Set<string>>();
  for (const r of items(registries)) {
    if (ACCOUNT_ID.test(r)) {
      if (!ids.includes(r)) ids.push(r);
      continue;
    }
    const m = REGISTRY_HOST.exec(r);
    if (!m) throw new RotateError('SETTING_INVALID', `setting "${SETTINGS.registries.label}" must be ${SETTINGS.registries.hint}`);
    const set = byRegion.get(m[2]!) ?? new Set<string>();
    set.add(m[1]!);
    byRegion.set(m[2]!, set);
  }
  const listed = items(regions);
  // Account IDs need a region to be asked in; hosts carry theirs.
  const base = listed.length > 0 ? listed : byRegion.size > 0 && ids.length === 0 ? [] : [defaultRegion];
  for (const region of base) {
    const set = byRegion.get(region) ?? new Set<string>();
    for (const id of ids) set.add(id);
    byRegion.set(region, set);
  }
  if (byRegion.size > MAX_REGIONS) throw new RotateError('SETTING_INVALID', `at most ${MAX_REGIONS} regions per record (one login each)`);
  const requests: LoginRequest[] = [];
  for (const [region, set] of byRegion) {
    if (set.size > MAX_REGISTRIES_PER_REGION) throw new RotateError('SETTING_INVALID', `at most ${MAX_REGISTRIES_PER_REGION} registries per region (ECR's limit for one request)`);
    requests.push({ region, registryIds: [...set] });
  }
  return requests;
}

function describeRequests(requests: readonly LoginRequest[]): string {
  return requests.map((r) => `${r.registryIds.length ? r.registryIds.join('+') : 'own registry'} in ${r.region}`).join(', ');
}

function prepare(ctx: TargetContext<AdminKey, 'secretAccessKey'>): EcrConfig {
  const data = ctx.user.data;
  const settings = parseSettings(SETTINGS, data);
  const defaultRegion = ctx.env.AWS_REGION ?? ctx.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  if (!REGION.test(defaultRegion)) throw new RotateError('SETTING_INVALID', 'AWS_REGION must be an AWS region such as us-east-1');
  const requests = loginRequests(settings.registries, settings.regions, defaultRegion);
  const source = ctx.admin.source.kind;
  const useHost = source === 'host';
  const { accessKeyId, secretAccessKey, roleArn } = ctx.admin.values;
  if (!useHost) {
    if (!accessKeyId || !ACCESS_KEY_ID.test(accessKeyId)) throw new RotateError('ADMIN_CREDENTIALS_INVALID', 'the access key ID that asks ECR for logins must be 16 to 128 capital letters and digits');
    if (!secretAccessKey) throw new RotateError('ADMIN_CREDENTIALS_INVALID', 'the secret access key that asks ECR for logins is empty');
  }
  if (roleArn !== undefined && !ROLE_ARN.test(roleArn)) throw new RotateError('ADMIN_CREDENTIALS_INVALID', 'role_arn must be an IAM role ARN (arn:aws:iam::123456789012:role/name)');
  return {
    requests,
    verifyTimeoutMs: settings.verifyTimeoutSeconds * 1000,
    endpoint: endpointFromEnv(ctx.env),
    admin: useHost ? undefined : { accessKeyId: accessKeyId!, secretAccessKey: secretAccessKey! },
    hostBecause: useHost && ctx.admin.source.kind === 'host' ? `PAM configuration ${ctx.admin.source.uid} asks for the gateway host's own credentials (${ctx.admin.source.marker})` : undefined,
    roleArn,
  };
}

type EcrModule = typeof import('./ecr.js');

/** A short, stable ID for a set of logins: not secret (a digest of a high-entropy config), unique per rotation. */
export function loginsId(config: Secret): string {
  return `ecr-${createHash('sha256').update(config.reveal()).digest('hex').slice(0, 16)}`;
}

class EcrSession implements TargetSession {
  /** The logins each credential this session made holds, by its ID: what verify checks. */
  readonly #made = new Map<string, RegistryLogin[]>();
  /** The logins `plan` fetched, for `create`. */
  #fetched: RegistryLogin[] | undefined;

  constructor(
    private readonly config: EcrConfig,
    private readonly ctx: TargetContext<AdminKey, 'secretAccessKey'>,
    private readonly logins: InstanceType<EcrModule['EcrLogins']>,
    private readonly sdk: EcrModule,
  ) {}

  describe(): string {
    return `ECR logins (${describeRequests(this.config.requests)})`;
  }

  /**
   * Asks ECR for the logins here, not in `create`: the request is what proves the key may ask (so `--doctor` and a
   * dry run check it, as the other targets' plans read their target), and it makes nothing on AWS, so asking before
   * Keeper has taken any write costs nothing. `create` hands over what was fetched here, moments later.
   */
  async plan(): Promise<RotationPlan> {
    this.#fetched = await this.#fetch();
    return {
      removeBefore: [],
      removeAfter: [],
      notes: [`ECR answered ${this.#fetched.length} login(s) (${describeRequests(this.config.requests)}); nothing to retire (logins expire after 12 hours)`],
      present: [],
    };
  }

  async #fetch(): Promise<RegistryLogin[]> {
    const all: RegistryLogin[] = [];
    for (const r of this.config.requests) {
      this.ctx.deadline.check(`asking ECR for a login in ${r.region}`);
      all.push(...(await this.logins.logins(r.region, r.registryIds)));
    }
    return all;
  }

  async create(): Promise<NewCredential> {
    const all = this.#fetched ?? (await this.#fetch());
    this.#fetched = undefined;
    const config = dockerConfigJson(all);
    const id = loginsId(config);
    this.#made.set(id, all);
    const expires = new Date(Math.min(...all.map((l) => l.expiresAt.getTime()))).toISOString();
    this.ctx.log.info('create', `registries: ${[...new Set(all.map((l) => registryHost(l.proxyEndpoint)))].join(', ')}`);
    return {
      id,
      secret: config,
      expires,
      idField: FIELDS.tokenId.label,
      recordUpdates: [
        [FIELDS.dockerConfig, config.reveal()],
        [FIELDS.expires, expires],
        [FIELDS.tokenId, id],
      ],
    };
  }

  async verify(credential: NewCredential): Promise<VerifyResult> {
    const logins = this.#made.get(credential.id);
    if (!logins) throw new RotateError('INTERNAL', `no logins made for ${credential.id}`);
    // One check per registry host, the login the config holds for it (the first, as dockerConfigJson keeps).
    const seen = new Set<string>();
    for (const l of logins) {
      const host = registryHost(l.proxyEndpoint);
      if (seen.has(host)) continue;
      seen.add(host);
      const result = await this.sdk.verifyRegistry(l.proxyEndpoint, l.password, this.ctx.deadline);
      if (!result.ok) return result;
    }
    return { ok: true };
  }

  delivery(data: RecordData): DeliveryPayload | undefined {
    return ecrDelivery(data);
  }

  /** A login cannot be revoked, and expires by itself: there is nothing to remove. */
  async remove(): Promise<void> {}
}

export const awsEcrPullSecret: Target<AdminKey, 'secretAccessKey', EcrConfig> = {
  name: 'aws-ecr-pull-secret',
  summary: 'refreshes ECR registry logins (a Docker config for a kubernetes.io/dockerconfigjson pull secret)',
  fields: Object.values(FIELDS),
  settings: SETTINGS,
  admin: {
    attached: { accessKeyId: 'aws_access_key_id', secretAccessKey: 'aws_secret_access_key', roleArn: 'role_arn' },
    pamConfiguration: { accessKeyId: 'accessKeyId', secretAccessKey: 'accessSecretKey', roleArn: 'roleArn' },
    self: { accessKeyId: 'aws_access_key_id', secretAccessKey: 'aws_secret_access_key', roleArn: 'role_arn' },
    optional: ['roleArn'],
    secrets: ['secretAccessKey'],
    // No fallback to the host's identity for a record that holds no key: only the PAM configuration may ask for it.
    hostMarker: { value: 'USE_INSTANCE_ROLE', fields: ['accessKeyId', 'secretAccessKey'] },
    checkRecord: (user) => checkRecordShape('aws-ecr-pull-secret', user.uid, user.data),
  },
  prepare,
  connect: async (config, ctx) => {
    // The ECR client is most of this script: loaded only by a run whose record is valid.
    const sdk = await import('./ecr.js');
    let signer: Signer;
    if (config.admin) signer = config.admin;
    else {
      const { hostCredentials } = await import('../aws-iam-access-key/host-credentials.js');
      signer = hostCredentials(config.hostBecause ?? "the host's credentials sign", ctx.log);
      await signer();
    }
    if (config.roleArn) {
      const { assumeRole } = await import('../aws-iam-access-key/iam.js');
      const region = config.requests[0]?.region ?? 'us-east-1';
      signer = await assumeRole({ region, iam: undefined, sts: ctx.env.AWS_ENDPOINT_URL_STS || ctx.env.AWS_ENDPOINT_URL || undefined }, signer, config.roleArn, ctx.deadline);
    }
    return new EcrSession(config, ctx, new sdk.EcrLogins(config.endpoint, signer, ctx.deadline), sdk);
  },
  verifyTimeoutMs: (config) => config.verifyTimeoutMs,
  mode: 'overlap',
};

/**
 * The record's Docker config as a pull secret's payload (`dockerConfigJson`, which a Kubernetes destination writes
 * as a `kubernetes.io/dockerconfigjson` Secret), read from the record, so a retried delivery repeats it; undefined
 * while the record holds none. A config that is not a login config throws RECORD_FIELD_INVALID.
 */
export function ecrDelivery(data: RecordData): DeliveryPayload | undefined {
  const text = readText(data, FIELDS.dockerConfig.label);
  if (!text || text === FIELDS.dockerConfig.example) return undefined;
  const stored = readDockerConfig(text, FIELDS.dockerConfig.label);
  const id = readText(data, FIELDS.tokenId.label);
  const entries = [entry('docker_config_json', 'ECR_DOCKER_CONFIG_JSON', stored.config)];
  return {
    target: awsEcrPullSecret.name,
    credentialId: id && id !== FIELDS.tokenId.example ? id : loginsId(stored.config),
    entries,
    fingerprint: fingerprint(entries, stored.config),
    dockerConfigJson: stored.config,
  };
}
