// discover aws: the IAM users on a path (and/or matching a name pattern), each with its access keys, their ages
// and last use. ListUsers and ListAccessKeys are paged to the end; requests are paced under IAM's budget.
import type { Deadline } from '../deadline.js';
import type { Logger } from '../log.js';
import { RotateError } from '../errors.js';
import type { Secret } from '../secret.js';
import { ALLOW_AWS_USERS, globMatcher } from '../targets/allow-list.js';
import { awsAllowList } from '../targets/aws-iam-access-key/index.js';
import type { AwsEndpoints, Signer } from '../targets/aws-iam-access-key/iam.js';
import type { AccessKeyInfo } from '../targets/aws-iam-access-key/plan.js';
import { type Candidate, type Discovery, ageText } from './candidate.js';
import { Pacer, eachLimited } from './pacer.js';

/**
 * IAM publishes no request rates (iam.ts IAM_DEFAULT_BUDGET): well under the sandbox's stand-in of 100 at once and
 * 20 a second, so a discovery leaves room for the rotations that run beside it.
 */
export const IAM_PACE = { burst: 50, perSecond: 15 };

export interface AwsDiscoverInput {
  env: NodeJS.ProcessEnv;
  deadline: Deadline;
  pathPrefix: string;
  namePattern: string | undefined;
  /** The admin's keys, or the host's credential chain. */
  admin: { keys: { accessKeyId: string; secretAccessKey: Secret } } | { host: true; because: string };
  roleArn: string | undefined;
  concurrency: number;
  /** The records already in the vault, by lower-cased IAM user name. */
  existing: Map<string, string>;
  /** Whether the records will sign with the host's chain (then each says admin_credentials=host). */
  viaHost: boolean;
  log: (line: string) => void;
  logger: Logger;
}

function endpointFromEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name] || env.AWS_ENDPOINT_URL;
  if (!v) return undefined;
  if (!/^https?:\/\/[^/?#@\s]+\/?$/.test(v)) throw new RotateError('SETTING_INVALID', `${env[name] ? name : 'AWS_ENDPOINT_URL'} must be an http(s) URL with no path`);
  return v.replace(/\/+$/, '');
}

export async function discoverAws(input: AwsDiscoverInput): Promise<Discovery> {
  const sdk = await import('../targets/aws-iam-access-key/iam.js');
  const region = input.env.AWS_REGION ?? input.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const signingRegion = region.startsWith('us-gov-') ? 'us-gov-west-1' : region.startsWith('cn-') ? 'cn-north-1' : 'us-east-1';
  const endpoints: AwsEndpoints = { region, iam: endpointFromEnv(input.env, 'AWS_ENDPOINT_URL_IAM'), sts: endpointFromEnv(input.env, 'AWS_ENDPOINT_URL_STS') };
  let signer: Signer;
  if ('keys' in input.admin) signer = input.admin.keys;
  else {
    const { hostCredentials } = await import('../targets/aws-iam-access-key/host-credentials.js');
    signer = hostCredentials(input.admin.because, input.logger);
    await signer();
  }
  const admin = input.roleArn ? await sdk.assumeRole(endpoints, signer, input.roleArn, input.deadline) : signer;
  // Ten attempts per read: a throttled read was not applied, and the pacer keeps throttling rare.
  const iam = new sdk.IamAccessKeys({ ...endpoints, region: signingRegion }, admin, input.deadline, 10);
  const pacer = new Pacer(IAM_PACE.burst, IAM_PACE.perSecond);
  const adminKey = typeof signer === 'function' ? (await sdk.resolveSigner(signer)).accessKeyId : signer.accessKeyId;
  try {
    const users: Array<{ userName: string; path: string }> = [];
    let marker: string | undefined;
    const byName = input.namePattern ? globMatcher(input.namePattern, true) : undefined;
    do {
      await pacer.take();
      const page = await iam.usersPage(input.pathPrefix, marker);
      for (const u of page.users) if (!byName || byName(u.userName)) users.push(u);
      marker = page.marker;
    } while (marker);
    input.log(`discover aws: ${users.length} IAM user(s) under ${input.pathPrefix}${input.namePattern ? ` matching ${input.namePattern}` : ''}`);

    const allow = awsAllowList(input.env);
    const out: Discovery = { candidates: [], skipped: [], requests: 0 };
    const found: Array<Candidate | undefined> = new Array(users.length);
    await eachLimited(users, input.concurrency, async (u, i) => {
      const allowed = !allow || allow.names.some((m) => m(u.userName)) || allow.paths.some((p) => u.path.startsWith(p));
      if (!allowed) {
        out.skipped.push({ id: u.userName, reason: 'not-allowed', detail: `not in ${ALLOW_AWS_USERS} (${allow!.entries.join(', ')})` });
        return;
      }
      const existing = input.existing.get(u.userName.toLowerCase());
      if (existing) {
        out.skipped.push({ id: u.userName, reason: 'has-record', detail: `record ${existing}` });
        return;
      }
      await pacer.take();
      const keys = await iam.list(u.userName);
      if (keys.some((k) => k.accessKeyId === adminKey)) {
        out.skipped.push({ id: u.userName, reason: 'is-admin', detail: `the admin key ${adminKey} is one of its keys` });
        return;
      }
      const used: Array<{ key: AccessKeyInfo; lastUsed: Date | undefined; service: string | undefined }> = [];
      for (const key of keys) {
        await pacer.take();
        const last = await iam.lastUsed(key.accessKeyId);
        used.push({ key, lastUsed: last.date, service: last.serviceName });
      }
      found[i] = candidate(u.userName, u.path, used, input.viaHost);
    });
    out.candidates = found.filter((c): c is Candidate => c !== undefined);
    out.requests = pacer.sent;
    return out;
  } finally {
    iam.destroy();
  }
}

function candidate(userName: string, path: string, keys: Array<{ key: AccessKeyInfo; lastUsed: Date | undefined; service: string | undefined }>, viaHost: boolean): Candidate {
  const described = keys.map(
    ({ key, lastUsed, service }) => `${key.accessKeyId} (${key.status}, created ${ageText(key.createDate)}, last used ${lastUsed ? `${ageText(lastUsed)}${service ? ` ${service}` : ''}` : 'never'})`,
  );
  const values: Record<string, string> = {};
  // One key: the record names it as CURRENT, so the first rotation keeps it active as LAST (the key consumers use
  // now) and the next deletes it, as adoption does. The record holds its ID only: the secret was never IAM's to give.
  if (keys.length === 1) values.aws_access_key_id = keys[0]!.key.accessKeyId;
  if (viaHost) values.admin_credentials = 'host';
  const c: Candidate = {
    target: 'aws-iam-access-key',
    id: userName,
    aliases: [],
    title: `AWS IAM ${userName}`,
    login: userName,
    values,
    notes: `discovered on path ${path}: ${keys.length === 0 ? 'no access keys' : described.join('; ')}`,
  };
  if (keys.length === 2) {
    c.warning = `user ${userName} has two access keys: before its first rotation, put the ID of the one that may be deleted in previous_aws_access_key_id (else the rotation stops with ADOPTION_AMBIGUOUS)`;
  }
  return c;
}
