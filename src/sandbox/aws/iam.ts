// The `iam` sandbox service: the six IAM actions a key rotator uses, in awsQuery (API version 2010-05-08), signed
// for the `iam` service in the partition's one IAM region. Each action authorizes first (AccessDenied names the
// resource even when it does not exist, as IAM does), then applies the account's rules.
import { ACCESS_KEY_STATUSES, type AccessKeyState, type AccessKeyStatus, type AwsAccount, IAM_SIGNING_REGION } from './account.js';
import { Validation, noSuchUser, validationError } from './errors.js';
import type { Budget } from '../rate-limit.js';
import { el, type QueryBudgetOptions, QueryService, type QueryContext, type QueryHandler, type XmlElement } from './query.js';

export const IAM_SERVICE = 'iam';
export const IAM_VERSION = '2010-05-08';
export const IAM_NAMESPACE = 'https://iam.amazonaws.com/doc/2010-05-08/';
export const IAM_OPERATIONS = ['CreateAccessKey', 'ListAccessKeys', 'UpdateAccessKey', 'DeleteAccessKey', 'GetAccessKeyLastUsed', 'GetUser', 'ListUsers'] as const;
export type IamOperation = (typeof IAM_OPERATIONS)[number];

/**
 * IAM's per-account request budget. AWS publishes no IAM request rates: AWS Support describes "a token bucket
 * algorithm ... refilled every second ... The number of tokens that a bucket holds and the refill rate depends
 * on the API" without numbers (quoted in https://github.com/hashicorp/terraform-provider-aws/issues/44853), and
 * says the rates "can't be increased" (https://repost.aws/knowledge-center/iam-sts-throttling-error). These are
 * stand-ins, in the shape of EC2's documented request buckets (100 at once, 20 a second refill): far above a
 * rotation (at most eight IAM calls) and a few gateways rotating at once, far below a client in a tight loop.
 */
export const IAM_DEFAULT_BUDGET: Budget = { burst: 100, perSecond: 20 };

// existingUserNameType in the IAM model: longer than a new user's name may be, so an overlong name is "not found".
const EXISTING_USER_NAME = { min: 1, max: 128, pattern: /^[\w+=,.@-]+$/, shown: '[\\w+=,.@-]+' };
const ACCESS_KEY_ID = { min: 16, max: 128, pattern: /^[\w]+$/, shown: '[\\w]+' };

/** The UserName parameter, or the caller's own user when it is absent (role sessions must name one). */
function targetUser(ctx: QueryContext, v: Validation): string {
  const given = ctx.params.get('UserName');
  if (given !== null) {
    v.length('userName', given, EXISTING_USER_NAME.min, EXISTING_USER_NAME.max).pattern('userName', given, EXISTING_USER_NAME.pattern, EXISTING_USER_NAME.shown);
    return given;
  }
  if (ctx.principal.kind !== 'user') throw validationError('Must specify userName when calling with non-User credentials');
  return ctx.principal.userName;
}

function accessKeyIdParam(ctx: QueryContext, v: Validation): string {
  const id = ctx.params.get('AccessKeyId');
  if (v.required('accessKeyId', id)) v.length('accessKeyId', id, ACCESS_KEY_ID.min, ACCESS_KEY_ID.max).pattern('accessKeyId', id, ACCESS_KEY_ID.pattern, ACCESS_KEY_ID.shown);
  return id ?? '';
}

function authorizeOnUser(ctx: QueryContext, action: IamOperation, userName: string): void {
  ctx.account.authorize(ctx.principal, `iam:${action}`, ctx.account.userResource(userName));
}

/**
 * IAM's list pagination (every List* action): MaxItems 1 to 1000, default 100; a truncated page says IsTruncated
 * true and gives a Marker to send for the next one. IAM's docs warn that a page may hold fewer than MaxItems even
 * when more follow, so a client must follow IsTruncated, never count. The marker is opaque; the sandbox's names the
 * list and the position, and a marker for another list, or a made-up one, is a ValidationError.
 */
function page<T>(ctx: QueryContext, v: Validation, list: string, items: T[]): { items: T[]; tail: XmlElement[] } {
  const maxText = ctx.params.get('MaxItems');
  let max = 100;
  if (maxText !== null) {
    max = Number(maxText);
    if (!/^\d+$/.test(maxText) || max < 1 || max > 1000) v.fail('maxItems', maxText, 'have value greater than or equal to 1 and less than or equal to 1000');
  }
  const marker = ctx.params.get('Marker');
  let offset = 0;
  if (marker !== null) {
    const m = /^(\d+):(.*)$/s.exec(Buffer.from(marker, 'base64').toString('utf8'));
    if (!m || m[2] !== list) v.fail('marker', marker, 'be a marker from the previous page of this list');
    else offset = Number(m[1]);
  }
  v.throwIfFailed();
  const slice = items.slice(offset, offset + max);
  const next = offset + slice.length;
  const truncated = next < items.length;
  return { items: slice, tail: truncated ? [el('IsTruncated', true), el('Marker', Buffer.from(`${next}:${list}`, 'utf8').toString('base64'))] : [el('IsTruncated', false)] };
}

const keyMetadata = (k: AccessKeyState): XmlElement =>
  el('member', [el('UserName', k.userName), el('AccessKeyId', k.accessKeyId), el('Status', k.status), el('CreateDate', k.createDate)]);

const handlers: Record<IamOperation, QueryHandler> = {
  CreateAccessKey(ctx) {
    const v = new Validation();
    const userName = targetUser(ctx, v);
    v.throwIfFailed();
    authorizeOnUser(ctx, 'CreateAccessKey', userName);
    const k = ctx.account.createAccessKey(userName);
    return [
      el('AccessKey', [
        el('UserName', k.userName),
        el('AccessKeyId', k.accessKeyId),
        el('Status', k.status),
        el('SecretAccessKey', k.secretAccessKey),
        el('CreateDate', k.createDate),
      ]),
    ];
  },

  ListAccessKeys(ctx) {
    const v = new Validation();
    const userName = targetUser(ctx, v);
    v.throwIfFailed();
    authorizeOnUser(ctx, 'ListAccessKeys', userName);
    // The eventually consistent read: a key made moments ago may be missing (account.ts `readLagMs`).
    const keys = ctx.account.listAccessKeys(userName);
    const canonical = ctx.account.getUser(userName)!.userName;
    // Two keys at most, so truncated only when the caller asks for one at a time (MaxItems=1).
    const { items, tail } = page(ctx, new Validation(), `keys:${canonical.toLowerCase()}`, keys);
    return [el('UserName', canonical), el('AccessKeyMetadata', items.map(keyMetadata)), ...tail];
  },

  UpdateAccessKey(ctx) {
    const v = new Validation();
    const userName = targetUser(ctx, v);
    const accessKeyId = accessKeyIdParam(ctx, v);
    const status = ctx.params.get('Status');
    if (v.required('status', status) && !ACCESS_KEY_STATUSES.includes(status as AccessKeyStatus)) {
      v.fail('status', status, `satisfy enum value set: [${ACCESS_KEY_STATUSES.join(', ')}]`);
    }
    v.throwIfFailed();
    authorizeOnUser(ctx, 'UpdateAccessKey', userName);
    ctx.account.updateAccessKey(userName, accessKeyId, status as AccessKeyStatus);
    return undefined;
  },

  DeleteAccessKey(ctx) {
    const v = new Validation();
    const userName = targetUser(ctx, v);
    const accessKeyId = accessKeyIdParam(ctx, v);
    v.throwIfFailed();
    authorizeOnUser(ctx, 'DeleteAccessKey', userName);
    ctx.account.deleteAccessKey(userName, accessKeyId);
    return undefined;
  },

  GetAccessKeyLastUsed(ctx) {
    const v = new Validation();
    const accessKeyId = accessKeyIdParam(ctx, v);
    v.throwIfFailed();
    // The key names its owner, and the owner is the resource the permission is checked on.
    const { userName, lastUsed } = ctx.account.accessKeyLastUsed(accessKeyId);
    authorizeOnUser(ctx, 'GetAccessKeyLastUsed', userName);
    return [
      el('UserName', userName),
      el(
        'AccessKeyLastUsed',
        lastUsed
          ? [el('LastUsedDate', lastUsed.date), el('ServiceName', lastUsed.serviceName), el('Region', lastUsed.region)]
          : // A key never used reports N/A for both, and no date at all.
            [el('ServiceName', 'N/A'), el('Region', 'N/A')],
      ),
    ];
  },

  ListUsers(ctx) {
    const v = new Validation();
    const prefix = ctx.params.get('PathPrefix') ?? '/';
    // pathPrefixType: 1 to 512 characters, a slash first; IAM's path characters.
    v.length('pathPrefix', prefix, 1, 512).pattern('pathPrefix', prefix, /^\u002F[\u0021-\u007F]*$/, '\\u002F[\\u0021-\\u007F]*');
    v.throwIfFailed();
    ctx.account.authorize(ctx.principal, 'iam:ListUsers', ctx.account.usersResource(prefix));
    const { items, tail } = page(ctx, new Validation(), `users:${prefix}`, ctx.account.listUsers(prefix));
    const member = (u: (typeof items)[number]) =>
      el('member', [el('Path', u.path), el('UserName', u.userName), el('UserId', u.userId), el('Arn', u.arn), el('CreateDate', u.createDate)]);
    return [el('Users', items.map(member)), ...tail];
  },

  GetUser(ctx) {
    const v = new Validation();
    const userName = targetUser(ctx, v);
    v.throwIfFailed();
    authorizeOnUser(ctx, 'GetUser', userName);
    const user = ctx.account.getUser(userName);
    if (!user) throw noSuchUser(userName);
    return [el('User', [el('Path', user.path), el('UserName', user.userName), el('UserId', user.userId), el('Arn', user.arn), el('CreateDate', user.createDate)])];
  },
};

export class IamService extends QueryService {
  constructor(account: AwsAccount, budget: QueryBudgetOptions = {}) {
    super(account, {
      name: IAM_SERVICE,
      namespace: IAM_NAMESPACE,
      version: IAM_VERSION,
      signingName: 'iam',
      // IAM is global: its endpoint takes signatures scoped to the partition's one region only.
      regionAllowed: (region) => region === IAM_SIGNING_REGION[account.partition],
      handlers,
      defaultBudget: IAM_DEFAULT_BUDGET,
    }, budget);
  }
}
