// The `sts` sandbox service: GetCallerIdentity (what a rotator calls to prove a new key works) and AssumeRole,
// in awsQuery (API version 2011-06-15), signed for `sts` in any region of the account's partition (STS has
// regional endpoints, unlike IAM).
import type { AwsAccount, Partition } from './account.js';
import { Validation } from './errors.js';
import { IAM_NAME } from './formats.js';
import type { Budget } from '../rate-limit.js';
import { el, type QueryBudgetOptions, QueryService, type QueryHandler } from './query.js';

export const STS_SERVICE = 'sts';
export const STS_VERSION = '2011-06-15';
export const STS_NAMESPACE = 'https://sts.amazonaws.com/doc/2011-06-15/';
export const STS_OPERATIONS = ['GetCallerIdentity', 'AssumeRole'] as const;
export type StsOperation = (typeof STS_OPERATIONS)[number];

/**
 * STS's documented request quota: "For AWS STS requests made using AWS credentials, the default request quota is
 * 600 requests per second, per account, per Region", shared by AssumeRole, GetCallerIdentity and the rest
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html, "STS request quotas"). As a token
 * bucket: 600 at once, 600 a second.
 */
export const STS_DEFAULT_BUDGET: Budget = { burst: 600, perSecond: 600 };

export const MIN_SESSION_DURATION_SECONDS = 900;
export const MAX_SESSION_DURATION_SECONDS = 43200;

/** Whether a region name belongs to the partition: `cn-*` to aws-cn, `us-gov-*` to aws-us-gov, the rest to aws. */
export function regionInPartition(region: string, partition: Partition): boolean {
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) return false;
  if (region.startsWith('cn-')) return partition === 'aws-cn';
  if (region.startsWith('us-gov-')) return partition === 'aws-us-gov';
  return partition === 'aws';
}

const handlers: Record<StsOperation, QueryHandler> = {
  GetCallerIdentity(ctx) {
    const { principal, account } = ctx;
    return [el('Arn', principal.arn), el('UserId', account.callerUserId(principal)), el('Account', account.accountId)];
  },

  AssumeRole(ctx) {
    const v = new Validation();
    const roleArn = ctx.params.get('RoleArn');
    const sessionName = ctx.params.get('RoleSessionName');
    const durationText = ctx.params.get('DurationSeconds');
    if (v.required('roleArn', roleArn)) v.length('roleArn', roleArn, 20, 2048);
    if (v.required('roleSessionName', sessionName)) v.length('roleSessionName', sessionName, 2, 64).pattern('roleSessionName', sessionName, IAM_NAME, '[\\w+=,.@-]*');
    let durationSeconds: number | undefined;
    if (durationText !== null) {
      durationSeconds = Number(durationText);
      if (!Number.isInteger(durationSeconds) || durationSeconds < MIN_SESSION_DURATION_SECONDS) {
        v.fail('durationSeconds', durationText, `have value greater than or equal to ${MIN_SESSION_DURATION_SECONDS}`);
      } else if (durationSeconds > MAX_SESSION_DURATION_SECONDS) {
        v.fail('durationSeconds', durationText, `have value less than or equal to ${MAX_SESSION_DURATION_SECONDS}`);
      }
    }
    v.throwIfFailed();
    const creds = ctx.account.assumeRole(ctx.principal, { roleArn: roleArn!, roleSessionName: sessionName!, ...(durationSeconds === undefined ? {} : { durationSeconds }) });
    return [
      el('AssumedRoleUser', [el('AssumedRoleId', creds.assumedRoleId), el('Arn', creds.assumedRoleArn)]),
      el('Credentials', [
        el('AccessKeyId', creds.accessKeyId),
        el('SecretAccessKey', creds.secretAccessKey),
        el('SessionToken', creds.sessionToken),
        el('Expiration', creds.expiration),
      ]),
    ];
  },
};

export class StsService extends QueryService {
  constructor(account: AwsAccount, budget: QueryBudgetOptions = {}) {
    super(account, {
      name: STS_SERVICE,
      namespace: STS_NAMESPACE,
      version: STS_VERSION,
      signingName: 'sts',
      regionAllowed: (region) => regionInPartition(region, account.partition),
      handlers,
      defaultBudget: STS_DEFAULT_BUDGET,
    }, budget);
  }
}
