// Control-API routes for the AWS sandbox (`/aws/...`): create users and roles, seed access keys, read keys back
// with their secrets (and when each became usable and listed), ask whether credentials would authenticate now,
// and tune the account's timing: the propagation and read-lag medians, their spread, the seed, the racy quota.
import { ControlError, bodyObject as object, optionalString, requiredString, type ControlApi } from '../control.js';
import type { AccessKeyStatus, AccountTiming, AwsAccount, CreateRoleOptions, CreateUserOptions, SeedKeyOptions } from './account.js';
import { AwsError } from './errors.js';
import type { EcrTokens } from './ecr-tokens.js';
import type { InstanceMetadataService } from './imds.js';

function optionalBoolean(body: Record<string, unknown>, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ControlError(400, `"${key}" must be true or false`);
  return v;
}

function stringList(body: Record<string, unknown>, key: string): string[] | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new ControlError(400, `"${key}" must be an array of strings`);
  return v as string[];
}

/** Permissions are `"all"`, `"self"` (users only) or a list of actions. */
function permissions(body: Record<string, unknown>): 'all' | 'self' | string[] | undefined {
  const v = body.permissions;
  if (v === undefined || v === 'all' || v === 'self') return v;
  const list = stringList(body, 'permissions');
  if (list === undefined) throw new ControlError(400, '"permissions" must be "all", "self" or an array of actions');
  return list;
}

/** Runs an account call, turning its AWS-shaped errors into control errors with the same status. */
function guarded<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof AwsError) throw new ControlError(err.status, `${err.code}: ${err.message}`);
    throw err;
  }
}

function accountState(account: AwsAccount) {
  return { accountId: account.accountId, partition: account.partition, ...account.timing() };
}

const TIMING_KEYS = ['propagationDelayMs', 'readLagMs', 'delaySpread', 'nonAtomicQuota', 'seed'] as const;

export function registerAwsControl(api: ControlApi, account: AwsAccount, imds?: InstanceMetadataService): void {
  api.route('GET', '/aws/account', () => accountState(account));

  api.route('PUT', '/aws/account', ({ body }) => {
    const b = object(body);
    const update: Partial<AccountTiming> = {};
    for (const key of TIMING_KEYS) if (b[key] !== undefined) (update as Record<string, unknown>)[key] = b[key];
    guarded(() => account.setTiming(update));
    return accountState(account);
  });

  api.route('POST', '/aws/users', ({ body }) => {
    const b = object(body);
    const options: CreateUserOptions = { userName: requiredString(b, 'userName') };
    const path = optionalString(b, 'path');
    const perms = permissions(b);
    if (path !== undefined) options.path = path;
    if (perms !== undefined) options.permissions = perms;
    return guarded(() => account.createUser(options));
  });

  api.route('GET', '/aws/users/:userName', ({ params }) => {
    const user = account.getUser(params.userName!);
    if (!user) throw new ControlError(404, `no user ${params.userName}`);
    return user;
  });

  api.route('PUT', '/aws/users/:userName/permissions', ({ params, body }) => {
    const perms = permissions(object(body));
    if (perms === undefined) throw new ControlError(400, '"permissions" is required');
    return guarded(() => account.setPermissions(params.userName!, perms));
  });

  api.route('GET', '/aws/users/:userName/keys', ({ params }) => guarded(() => account.listKeys(params.userName!)));

  api.route('POST', '/aws/users/:userName/keys', ({ params, body }) => {
    const b = object(body);
    const options: SeedKeyOptions = {};
    const status = optionalString(b, 'status');
    const createDate = optionalString(b, 'createDate');
    const propagated = optionalBoolean(b, 'propagated');
    const accessKeyId = optionalString(b, 'accessKeyId');
    const secretAccessKey = optionalString(b, 'secretAccessKey');
    if (status !== undefined) {
      if (status !== 'Active' && status !== 'Inactive') throw new ControlError(400, '"status" must be Active or Inactive');
      options.status = status as AccessKeyStatus;
    }
    if (createDate !== undefined) options.createDate = createDate;
    if (propagated !== undefined) options.propagated = propagated;
    if (accessKeyId !== undefined) options.accessKeyId = accessKeyId;
    if (secretAccessKey !== undefined) options.secretAccessKey = secretAccessKey;
    return guarded(() => account.seedAccessKey(params.userName!, options));
  });

  api.route('POST', '/aws/roles', ({ body }) => {
    const b = object(body);
    const trustedUsers = stringList(b, 'trustedUsers');
    if (trustedUsers === undefined) throw new ControlError(400, '"trustedUsers" is required');
    const options: CreateRoleOptions = { roleName: requiredString(b, 'roleName'), trustedUsers };
    const trustedRoles = stringList(b, 'trustedRoles');
    const trustedServices = stringList(b, 'trustedServices');
    if (trustedRoles !== undefined) options.trustedRoles = trustedRoles;
    if (trustedServices !== undefined) options.trustedServices = trustedServices;
    const path = optionalString(b, 'path');
    const perms = permissions(b);
    if (perms === 'self') throw new ControlError(400, 'a role\'s "permissions" must be "all" or an array of actions');
    if (path !== undefined) options.path = path;
    if (perms !== undefined) options.permissions = perms;
    if (b.maxSessionDurationSeconds !== undefined) options.maxSessionDurationSeconds = b.maxSessionDurationSeconds as number;
    return guarded(() => account.createRole(options));
  });

  api.route('GET', '/aws/roles/:roleName', ({ params }) => {
    const role = account.getRole(params.roleName!);
    if (!role) throw new ControlError(404, `no role ${params.roleName}`);
    return role;
  });

  if (imds) {
    const instance = () => ({ instanceId: imds.instanceId, roleName: imds.roleName ?? null });
    api.route('GET', '/aws/instance', instance);
    // The instance profile of the EC2 instance the sandbox's IMDS stands for: a role that trusts ec2.amazonaws.com, or null.
    api.route('PUT', '/aws/instance', ({ body }) => {
      const b = object(body);
      if (b.roleName !== null && typeof b.roleName !== 'string') throw new ControlError(400, '"roleName" must be a role name or null');
      guarded(() => imds.attachRole(b.roleName === null ? undefined : (b.roleName as string)));
      return instance();
    });
  }

  api.route('POST', '/aws/check', ({ body }) => {
    const b = object(body);
    const sessionToken = optionalString(b, 'sessionToken');
    return { valid: account.checkKey(requiredString(b, 'accessKeyId'), requiredString(b, 'secretAccessKey'), sessionToken) };
  });
}

/**
 * Control-API routes for ECR's logins (`/aws/ecr/...`): list them with their passwords and states, move the
 * tokens' clock on (every login expires as it would after that long; SigV4 keeps the account's clock), revoke one
 * login or all, and ask whether a login would open the registry now.
 */
export function registerEcrControl(api: ControlApi, tokens: EcrTokens): void {
  api.route('GET', '/aws/ecr/tokens', () => tokens.list());
  api.route('POST', '/aws/ecr/clock', ({ body }) => {
    const advanceMs = object(body).advanceMs;
    if (typeof advanceMs !== 'number' || !Number.isFinite(advanceMs) || advanceMs < 0) throw new ControlError(400, '"advanceMs" must be a number >= 0');
    return { offsetMs: tokens.advance(advanceMs), now: new Date(tokens.now()).toISOString() };
  });
  api.route('POST', '/aws/ecr/tokens/revoke', ({ body }) => ({ revoked: tokens.revoke(optionalString(object(body), 'password')) }));
  api.route('POST', '/aws/ecr/check', ({ body }) => ({ state: tokens.check(requiredString(object(body), 'password')) }));
}
