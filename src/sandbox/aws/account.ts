// The state behind the AWS sandbox: one account's IAM users, their access keys, roles and the temporary
// credentials STS hands out, plus the rules AWS applies to them (the two-key quota, who may act on whom, when a
// new key starts to authenticate, when temporary credentials expire). Wire formats live in iam.ts and sts.ts,
// signature checking in sigv4.ts; this module knows no HTTP.
import { timingSafeEqual } from 'node:crypto';
import {
  ACCESS_KEYS_PER_USER,
  AwsError,
  entityExists,
  expiredToken,
  invalidClientTokenId,
  limitExceeded,
  noSuchKey,
  noSuchUser,
  validationError,
} from './errors.js';
import {
  ACCESS_KEY_ID,
  IAM_NAME,
  awsDateTime,
  newAccessKeyId,
  newAccountId,
  newSecretAccessKey,
  newSessionToken,
  newUniqueId,
  parseDateTime,
} from './formats.js';
import { SeededRandom, checkSpread } from '../random.js';

export const PARTITIONS = ['aws', 'aws-us-gov', 'aws-cn'] as const;
export type Partition = (typeof PARTITIONS)[number];

/** The one region IAM's global endpoint accepts in a signature's credential scope, per partition. */
export const IAM_SIGNING_REGION: Record<Partition, string> = { aws: 'us-east-1', 'aws-us-gov': 'us-gov-west-1', 'aws-cn': 'cn-north-1' };

/**
 * What a user may do. `all` stands for an admin policy; `self` for the usual "manage your own keys" policy on
 * `arn:aws:iam::*:user/${aws:username}` (every IAM action, only on the caller's own user); a list names the
 * allowed actions (`iam:CreateAccessKey`, `iam:*`, `sts:*`), on any resource. sts:GetCallerIdentity needs no
 * permission, as in AWS.
 */
export type Permissions = 'all' | 'self' | readonly string[];
/** A role has no `${aws:username}`, so `self` would grant it nothing: roles take `all` or a list. */
export type RolePermissions = 'all' | readonly string[];

export type AccessKeyStatus = 'Active' | 'Inactive';
export const ACCESS_KEY_STATUSES: readonly AccessKeyStatus[] = ['Active', 'Inactive'];

export const DEFAULT_MAX_SESSION_DURATION_SECONDS = 3600;
export const DEFAULT_SESSION_DURATION_SECONDS = 3600;

export interface AccountOptions {
  /** The clock every rule reads (ms since the epoch); tests move it instead of sleeping. */
  now?: () => number;
  /** Twelve digits; random when absent. */
  accountId?: string;
  partition?: Partition;
  /**
   * The median of how long after CreateAccessKey a new key keeps failing to authenticate (default 0: at once).
   * Each key draws its own delay around it (`delaySpread`), fixed when the key is made.
   */
  propagationDelayMs?: number;
  /**
   * The median of how long a new key stays missing from ListAccessKeys (default 0: listed at once). IAM is
   * eventually consistent: "Any changes that you make in IAM ... take time to become visible from all possible
   * endpoints" (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot.html, "Changes that I make are not
   * always immediately visible"), and a read may reach a replica that has not seen the key yet.
   */
  readLagMs?: number;
  /**
   * The shape (sigma) of the log-normal each key's delays are drawn from around those medians (random.ts
   * `spread`; default 0: every key waits exactly the median, the old fixed delay). Real propagation ranges from
   * seconds to tens of seconds for the same operation, a right-skewed spread.
   */
  delaySpread?: number;
  /**
   * Whether CreateAccessKey checks the two-key quota against the same lagging replica ListAccessKeys reads, so
   * creates racing within the lag all succeed (default false: the quota is exact). Public reports show IAM
   * doing this: eight keys on one user from quick successive creates
   * (https://github.com/hashicorp/terraform-provider-aws/issues/39693).
   */
  nonAtomicQuota?: boolean;
  /** Seeds every delay draw (random.ts); the same seed and the same history give every key the same delays. */
  seed?: number;
}

/** The account's timing knobs, as the control API shows and takes them. */
export interface AccountTiming {
  propagationDelayMs: number;
  readLagMs: number;
  delaySpread: number;
  nonAtomicQuota: boolean;
  seed: number;
}

export interface CreateUserOptions {
  userName: string;
  /** `/` (default) or `/division/`: part of the ARN, not of the name. */
  path?: string;
  permissions?: Permissions;
}

export interface SeedKeyOptions {
  status?: AccessKeyStatus;
  createDate?: string | Date;
  /**
   * Whether the key skips the propagation delay (default true: a seeded key stands for one that has existed
   * for a while). `false` makes it wait like a key just made by CreateAccessKey, counted from now.
   */
  propagated?: boolean;
  /** Fixed credentials for demos; generated when absent. */
  accessKeyId?: string;
  secretAccessKey?: string;
}

export interface LastUsed {
  date: string;
  serviceName: string;
  region: string;
}

export interface AccessKeyState {
  userName: string;
  accessKeyId: string;
  /** The secret itself: kept so tests can prove which keys work; IAM returns it only from CreateAccessKey. */
  secretAccessKey: string;
  status: AccessKeyStatus;
  createDate: string;
  /**
   * When the key was made, to the millisecond (createDate is IAM's form, to the second); a key made by
   * CreateAccessKey counts its delays from here, a seeded one from the moment it was seeded.
   */
  madeAt: string;
  /** Whether the propagation delay no longer holds this key back. */
  propagated: boolean;
  /** When the key starts (started) to authenticate, drawn when it was made; null for a key that never waited. */
  usableAt: string | null;
  /** Whether ListAccessKeys shows this key yet (IAM's eventually consistent read). */
  listed: boolean;
  /** When ListAccessKeys starts (started) to show the key; null for a key listed from the start. */
  listedAt: string | null;
  /** Whether a request signed with this key would authenticate right now. */
  acceptedNow: boolean;
  lastUsed: LastUsed | null;
}

export interface UserState {
  userName: string;
  path: string;
  userId: string;
  arn: string;
  createDate: string;
  permissions: Permissions;
  accessKeys: AccessKeyState[];
}

export interface CreateRoleOptions {
  roleName: string;
  path?: string;
  /** Names of the users the trust policy names as principals (same account). */
  trustedUsers: string[];
  /** Names of roles whose sessions may assume this one (role chaining, same account). */
  trustedRoles?: string[];
  /** Service principals the trust policy names, e.g. `ec2.amazonaws.com` for an instance profile's role. */
  trustedServices?: string[];
  permissions?: RolePermissions;
  /** The role's MaxSessionDuration: 3600 (default) to 43200. */
  maxSessionDurationSeconds?: number;
}

export interface RoleState {
  roleName: string;
  path: string;
  roleId: string;
  arn: string;
  createDate: string;
  trustedUsers: string[];
  trustedRoles: string[];
  trustedServices: string[];
  permissions: RolePermissions;
  maxSessionDurationSeconds: number;
}

export interface AssumeRoleInput {
  roleArn: string;
  roleSessionName: string;
  durationSeconds?: number;
}

export interface TemporaryCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: string;
  /** `arn:aws:sts::<account>:assumed-role/<role>/<session>`. */
  assumedRoleArn: string;
  /** `<role id>:<session>`. */
  assumedRoleId: string;
}

/** Who signed a request, once the signature checked out. */
export type Principal =
  | { kind: 'user'; accessKeyId: string; userName: string; userId: string; arn: string }
  | { kind: 'role'; accessKeyId: string; roleName: string; roleId: string; sessionName: string; arn: string };

/** What an action is performed on, as the policy engine sees it and as AccessDenied names it. */
export interface Resource {
  arn: string;
  /** How IAM's AccessDenied message names it: `user bob`, or an ARN. */
  text: string;
  /** For user resources: what `${aws:username}` is compared with. */
  userName?: string;
}

interface KeyRecord {
  accessKeyId: string;
  secret: string;
  status: AccessKeyStatus;
  createdMs: number;
  /**
   * When the key starts to authenticate: fixed when it is made, so changing the delay later does not
   * un-propagate keys that already work. Undefined for keys that never wait.
   */
  usableAtMs: number | undefined;
  /** When ListAccessKeys starts to show the key, drawn when it is made; undefined for keys listed at once. */
  listedAtMs: number | undefined;
  lastUsed: { ms: number; serviceName: string; region: string } | undefined;
}

interface UserRecord {
  userName: string;
  path: string;
  userId: string;
  createdMs: number;
  permissions: Permissions;
  keys: KeyRecord[];
  /** Keys ever made for this user: names each key's delay draws (`aws/propagation/<user>/<n>`). */
  made: number;
}

interface RoleRecord {
  roleName: string;
  path: string;
  roleId: string;
  createdMs: number;
  trustedUsers: string[];
  trustedRoles: string[];
  trustedServices: string[];
  permissions: RolePermissions;
  maxSessionDurationSeconds: number;
}

interface SessionRecord {
  accessKeyId: string;
  secret: string;
  token: string;
  expiresMs: number;
  roleName: string;
  sessionName: string;
}

const PATH = /^\/([\x21-\x7e]+\/)?$/;
const ACTION_PATTERN = /^(\*|[a-z0-9-]+:[A-Za-z0-9*?]+)$/;

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

function checkDelay(ms: unknown, name = 'propagationDelayMs'): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw validationError(`${name} must be a number >= 0`);
  return ms;
}

function guardedSpread(sigma: unknown): number {
  try {
    return checkSpread(sigma);
  } catch (err) {
    throw validationError(`delaySpread: ${(err as Error).message}`);
  }
}

function checkName(kind: 'userName' | 'roleName', name: unknown): string {
  if (typeof name !== 'string') throw validationError(`1 validation error detected: Value null at '${kind}' failed to satisfy constraint: Member must not be null`);
  const failures: string[] = [];
  if (name.length < 1) failures.push('have length greater than or equal to 1');
  if (name.length > 64) failures.push('have length less than or equal to 64');
  if (!IAM_NAME.test(name)) failures.push('satisfy regular expression pattern: [\\w+=,.@-]+');
  if (failures.length > 0) {
    const n = failures.length;
    throw validationError(
      `${n} validation error${n === 1 ? '' : 's'} detected: ` + failures.map((f) => `Value '${name}' at '${kind}' failed to satisfy constraint: Member must ${f}`).join('; '),
    );
  }
  return name;
}

function checkPath(path: unknown): string {
  if (path === undefined) return '/';
  if (typeof path !== 'string' || path.length > 512 || !PATH.test(path)) {
    throw validationError(`1 validation error detected: Value '${String(path)}' at 'path' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)`);
  }
  return path;
}

function checkActions(list: readonly unknown[]): string[] {
  for (const a of list) {
    if (typeof a !== 'string' || !ACTION_PATTERN.test(a)) throw validationError(`permissions: '${String(a)}' is not an action such as iam:CreateAccessKey or iam:*`);
  }
  return [...(list as string[])];
}

function checkPermissions(p: unknown): Permissions {
  if (p === undefined) return 'all';
  if (p === 'all' || p === 'self') return p;
  if (Array.isArray(p)) return checkActions(p);
  throw validationError(`permissions must be 'all', 'self' or a list of actions`);
}

function checkRolePermissions(p: unknown): RolePermissions {
  if (p === undefined) return 'all';
  if (p === 'all') return p;
  if (Array.isArray(p)) return checkActions(p);
  throw validationError(`a role's permissions must be 'all' or a list of actions`);
}

/** IAM action matching: case-insensitive, `*` and `?` wildcards, as in a policy's Action element. */
function actionMatches(pattern: string, action: string): boolean {
  const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$', 'i');
  return re.test(action);
}

export class AwsAccount {
  /** Every secret value this sandbox ever handed out, removed ones included: the tests scan a script's output for them. */
  readonly issued = new Set<string>();
  readonly now: () => number;
  readonly accountId: string;
  readonly partition: Partition;
  #propagationDelayMs: number;
  #readLagMs: number;
  #delaySpread: number;
  #nonAtomicQuota: boolean;
  readonly #random: SeededRandom;
  // Keyed by lower-cased name: IAM names are unique regardless of case.
  #users = new Map<string, UserRecord>();
  #roles = new Map<string, RoleRecord>();
  #sessions = new Map<string, SessionRecord>();

  constructor(options: AccountOptions = {}) {
    this.now = options.now ?? Date.now;
    const accountId = options.accountId ?? newAccountId();
    if (!/^\d{12}$/.test(accountId)) throw new Error(`an AWS account id is 12 digits, not '${accountId}'`);
    this.accountId = accountId;
    const partition = options.partition ?? 'aws';
    if (!PARTITIONS.includes(partition)) throw new Error(`unknown partition '${String(partition)}'`);
    this.partition = partition;
    this.#propagationDelayMs = checkDelay(options.propagationDelayMs ?? 0);
    this.#readLagMs = checkDelay(options.readLagMs ?? 0, 'readLagMs');
    this.#delaySpread = guardedSpread(options.delaySpread ?? 0);
    this.#nonAtomicQuota = options.nonAtomicQuota ?? false;
    try {
      this.#random = new SeededRandom(options.seed);
    } catch (err) {
      throw validationError(`seed: ${(err as Error).message}`);
    }
  }

  get propagationDelayMs(): number {
    return this.#propagationDelayMs;
  }

  /**
   * The median delay of keys made from now on; a key's delay is drawn when it is made, so keys already made keep
   * theirs (a key that already authenticates never stops).
   */
  setPropagationDelay(ms: number): void {
    this.#propagationDelayMs = checkDelay(ms);
  }

  timing(): AccountTiming {
    return { propagationDelayMs: this.#propagationDelayMs, readLagMs: this.#readLagMs, delaySpread: this.#delaySpread, nonAtomicQuota: this.#nonAtomicQuota, seed: this.#random.seed };
  }

  /** Changes any of the timing knobs; like the delay, they apply to keys made from now on. */
  setTiming(update: Partial<AccountTiming>): AccountTiming {
    // Checked whole before anything changes: a bad field leaves the account as it was.
    const delay = update.propagationDelayMs === undefined ? this.#propagationDelayMs : checkDelay(update.propagationDelayMs);
    const lag = update.readLagMs === undefined ? this.#readLagMs : checkDelay(update.readLagMs, 'readLagMs');
    const spread = update.delaySpread === undefined ? this.#delaySpread : guardedSpread(update.delaySpread);
    if (update.nonAtomicQuota !== undefined && typeof update.nonAtomicQuota !== 'boolean') throw validationError('nonAtomicQuota must be true or false');
    if (update.seed !== undefined && !Number.isSafeInteger(update.seed)) throw validationError('seed: a seed is an integer');
    this.#propagationDelayMs = delay;
    this.#readLagMs = lag;
    this.#delaySpread = spread;
    if (update.nonAtomicQuota !== undefined) this.#nonAtomicQuota = update.nonAtomicQuota;
    if (update.seed !== undefined) this.#random.seed = update.seed;
    return this.timing();
  }

  // Users and their keys.

  createUser(options: CreateUserOptions): UserState {
    const userName = checkName('userName', options.userName);
    if (this.#users.has(userName.toLowerCase())) throw entityExists('User', userName);
    const user: UserRecord = {
      userName,
      path: checkPath(options.path),
      userId: newUniqueId('AIDA'),
      createdMs: this.now(),
      permissions: checkPermissions(options.permissions),
      keys: [],
      made: 0,
    };
    this.#users.set(userName.toLowerCase(), user);
    return this.#userState(user);
  }

  getUser(userName: string): UserState | undefined {
    const user = this.#users.get(String(userName).toLowerCase());
    return user && this.#userState(user);
  }

  /** Every user whose path starts with the prefix (case-sensitive, as IAM paths are), in IAM's order: by name. */
  listUsers(pathPrefix = '/'): UserState[] {
    return [...this.#users.values()]
      .filter((u) => u.path.startsWith(pathPrefix))
      .sort((a, b) => (a.userName.toLowerCase() < b.userName.toLowerCase() ? -1 : a.userName.toLowerCase() > b.userName.toLowerCase() ? 1 : 0))
      .map((u) => this.#userState(u));
  }

  /** What ListUsers is authorized on: the users under the path, as IAM's AccessDenied names them. */
  usersResource(pathPrefix: string): Resource {
    const arn = `arn:${this.partition}:iam::${this.accountId}:user${pathPrefix}`;
    return { arn, text: arn };
  }

  setPermissions(userName: string, permissions: Permissions): UserState {
    const user = this.#requireUser(userName);
    user.permissions = checkPermissions(permissions);
    return this.#userState(user);
  }

  /** Adds a key outside the API (still within the two-key quota, which no AWS account can exceed). */
  seedAccessKey(userName: string, options: SeedKeyOptions = {}): AccessKeyState {
    const user = this.#requireUser(userName);
    if (user.keys.length >= ACCESS_KEYS_PER_USER) throw limitExceeded();
    const status = options.status ?? 'Active';
    if (!ACCESS_KEY_STATUSES.includes(status)) throw validationError(`status must be Active or Inactive, not '${String(status)}'`);
    const now = this.now();
    let createdMs = now;
    if (options.createDate !== undefined) {
      const ms = parseDateTime(options.createDate);
      if (ms === undefined) throw validationError(`createDate '${String(options.createDate)}' is not an ISO 8601 date-time`);
      createdMs = ms;
    }
    const accessKeyId = options.accessKeyId ?? newAccessKeyId('AKIA');
    if (!ACCESS_KEY_ID.test(accessKeyId) || !accessKeyId.startsWith('AKIA')) throw validationError(`accessKeyId '${accessKeyId}' is not AKIA followed by 16 letters or digits`);
    if (this.#findKey(accessKeyId)) throw new AwsError(409, 'EntityAlreadyExists', `The Access Key with id ${accessKeyId} already exists.`);
    const secret = options.secretAccessKey ?? newSecretAccessKey();
    this.issued.add(secret);
    if (typeof secret !== 'string' || secret.length !== 40) throw validationError('secretAccessKey must be 40 characters');
    const waits = options.propagated === false ? this.#draw(user, now) : undefined;
    // A seeded key is listed at once: it stands for a key that exists, even when made to wait for propagation.
    const key: KeyRecord = { accessKeyId, secret, status, createdMs, usableAtMs: waits?.usableAtMs, listedAtMs: undefined, lastUsed: undefined };
    user.keys.push(key);
    return this.#keyState(user, key);
  }

  /** Every key of a user, secrets included: the account's own truth, whatever a lagging read shows. */
  listKeys(userName: string): AccessKeyState[] {
    const user = this.#requireUser(userName);
    return user.keys.map((k) => this.#keyState(user, k));
  }

  /** What ListAccessKeys answers right now: the keys a read may miss (made within the read lag) left out. */
  listAccessKeys(userName: string): AccessKeyState[] {
    const user = this.#requireUser(userName);
    return user.keys.filter((k) => this.#listed(k)).map((k) => this.#keyState(user, k));
  }

  /** Whether an access key ID is one of this account's (a user's key or temporary credentials), in any state. */
  knowsAccessKey(accessKeyId: string): boolean {
    return this.#sessions.has(accessKeyId) || this.#findKey(accessKeyId) !== undefined;
  }

  /** One key by id, secret included, or undefined. */
  getKey(accessKeyId: string): AccessKeyState | undefined {
    const found = this.#findKey(accessKeyId);
    return found && this.#keyState(found.user, found.key);
  }

  /** Would a request signed with these credentials authenticate right now? */
  checkKey(accessKeyId: string, secretAccessKey: string, sessionToken?: string): boolean {
    try {
      return sameSecret(this.resolveCredentials(accessKeyId, sessionToken).secretAccessKey, secretAccessKey);
    } catch (err) {
      if (err instanceof AwsError) return false;
      throw err;
    }
  }

  // The rules the IAM API applies (authorization is the caller's job: see authorize()).

  createAccessKey(userName: string): AccessKeyState {
    const user = this.#requireUser(userName);
    // With nonAtomicQuota the quota is checked against the lagging replica: keys still missing from
    // ListAccessKeys are not counted, so creates racing within the lag can all succeed.
    const counted = this.#nonAtomicQuota ? user.keys.filter((k) => this.#listed(k)) : user.keys;
    if (counted.length >= ACCESS_KEYS_PER_USER) throw limitExceeded();
    const now = this.now();
    let accessKeyId = newAccessKeyId('AKIA');
    while (this.#findKey(accessKeyId)) accessKeyId = newAccessKeyId('AKIA');
    const { usableAtMs, listedAtMs } = this.#draw(user, now);
    const key: KeyRecord = { accessKeyId, secret: newSecretAccessKey(), status: 'Active', createdMs: now, usableAtMs, listedAtMs, lastUsed: undefined };
    this.issued.add(key.secret);
    user.keys.push(key);
    return this.#keyState(user, key);
  }

  updateAccessKey(userName: string, accessKeyId: string, status: AccessKeyStatus): void {
    const user = this.#requireUser(userName);
    const key = user.keys.find((k) => k.accessKeyId === accessKeyId);
    if (!key) throw noSuchKey(accessKeyId);
    key.status = status;
  }

  deleteAccessKey(userName: string, accessKeyId: string): void {
    const user = this.#requireUser(userName);
    const index = user.keys.findIndex((k) => k.accessKeyId === accessKeyId);
    if (index < 0) throw noSuchKey(accessKeyId);
    user.keys.splice(index, 1);
  }

  /** GetAccessKeyLastUsed: the owner's name and the last use, if any. */
  accessKeyLastUsed(accessKeyId: string): { userName: string; lastUsed: LastUsed | null } {
    const found = this.#findKey(accessKeyId);
    if (!found) throw noSuchKey(accessKeyId);
    return { userName: found.user.userName, lastUsed: this.#lastUsed(found.key) };
  }

  /** The resource an action on a user is performed on; the user need not exist (authorization comes first). */
  userResource(userName: string): Resource {
    const user = this.#users.get(userName.toLowerCase());
    const name = user?.userName ?? userName;
    return { arn: this.#userArn(user?.path ?? '/', name), text: `user ${name}`, userName: name };
  }

  /** Throws AccessDenied unless the principal's permissions allow the action on the resource. */
  authorize(principal: Principal, action: string, resource: Resource): void {
    if (this.#allows(principal, action, resource)) return;
    throw new AwsError(
      403,
      'AccessDenied',
      `User: ${principal.arn} is not authorized to perform: ${action} on resource: ${resource.text} because no identity-based policy allows the ${action} action`,
    );
  }

  // Roles and STS.

  createRole(options: CreateRoleOptions): RoleState {
    const roleName = checkName('roleName', options.roleName);
    if (this.#roles.has(roleName.toLowerCase())) throw entityExists('Role', roleName);
    if (!Array.isArray(options.trustedUsers)) throw validationError('trustedUsers must be a list of user names');
    const trustedUsers = options.trustedUsers.map((name) => {
      const user = typeof name === 'string' ? this.#users.get(name.toLowerCase()) : undefined;
      // IAM resolves principals when the trust policy is saved and refuses ones that do not exist.
      if (!user) throw new AwsError(400, 'MalformedPolicyDocument', `Invalid principal in policy: "AWS":"${this.#userArn('/', String(name))}"`);
      return user.userName;
    });
    const trustedRoles = (options.trustedRoles ?? []).map((name) => {
      const role = typeof name === 'string' ? this.#roles.get(name.toLowerCase()) : undefined;
      if (!role) throw new AwsError(400, 'MalformedPolicyDocument', `Invalid principal in policy: "AWS":"arn:${this.partition}:iam::${this.accountId}:role/${String(name)}"`);
      return role.roleName;
    });
    const trustedServices = options.trustedServices ?? [];
    if (!Array.isArray(trustedServices) || !trustedServices.every((x) => typeof x === 'string' && /^[a-z0-9.-]+\.amazonaws\.com$/.test(x))) {
      throw new AwsError(400, 'MalformedPolicyDocument', 'Invalid principal in policy: a service principal is a name such as ec2.amazonaws.com');
    }
    const max = options.maxSessionDurationSeconds ?? DEFAULT_MAX_SESSION_DURATION_SECONDS;
    if (!Number.isInteger(max) || max < 3600 || max > 43200) {
      throw validationError(`1 validation error detected: Value '${max}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value ${max < 3600 ? 'greater than or equal to 3600' : 'less than or equal to 43200'}`);
    }
    const role: RoleRecord = {
      roleName,
      path: checkPath(options.path),
      roleId: newUniqueId('AROA'),
      createdMs: this.now(),
      trustedUsers,
      trustedRoles,
      trustedServices: [...trustedServices],
      permissions: checkRolePermissions(options.permissions),
      maxSessionDurationSeconds: max,
    };
    this.#roles.set(roleName.toLowerCase(), role);
    return this.#roleState(role);
  }

  getRole(roleName: string): RoleState | undefined {
    const role = this.#roles.get(String(roleName).toLowerCase());
    return role && this.#roleState(role);
  }

  /**
   * STS AssumeRole. Same-account trust that names the user is enough on its own (AWS needs no identity policy
   * then), so the check is the trust list alone. A role session may assume a role whose trust names its role
   * (role chaining), for an hour at most: "Role chaining limits your AWS CLI or AWS API role session to a
   * maximum of one hour" (IAM User Guide, "Methods to assume a role").
   */
  assumeRole(principal: Principal, input: AssumeRoleInput): TemporaryCredentials {
    const role = [...this.#roles.values()].find((r) => this.#roleArn(r) === input.roleArn);
    const trusted =
      role !== undefined &&
      (principal.kind === 'user'
        ? role.trustedUsers.some((u) => u.toLowerCase() === principal.userName.toLowerCase())
        : role.trustedRoles.some((r) => r.toLowerCase() === principal.roleName.toLowerCase()));
    // A role that does not exist is refused exactly like one that does not trust the caller.
    if (!role || !trusted) throw new AwsError(403, 'AccessDenied', `User: ${principal.arn} is not authorized to perform: sts:AssumeRole on resource: ${input.roleArn}`);
    const duration = input.durationSeconds ?? DEFAULT_SESSION_DURATION_SECONDS;
    if (principal.kind === 'role' && duration > 3600) throw validationError('The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.');
    if (duration > role.maxSessionDurationSeconds) throw validationError('The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
    return this.#openSession(role, input.roleSessionName, duration);
  }

  /**
   * Temporary credentials a service hands out for a role that trusts it, as EC2 does for an instance profile's
   * role (the session is named after the instance). No caller signs this: the service itself is the principal.
   */
  serviceSession(service: string, roleName: string, sessionName: string, durationSeconds = DEFAULT_SESSION_DURATION_SECONDS): TemporaryCredentials {
    const role = this.#roles.get(String(roleName).toLowerCase());
    if (!role || !role.trustedServices.includes(service)) throw new AwsError(403, 'AccessDenied', `${service} is not authorized to perform: sts:AssumeRole on resource: arn:${this.partition}:iam::${this.accountId}:role/${roleName}`);
    if (!IAM_NAME.test(sessionName) || sessionName.length < 2 || sessionName.length > 64) throw validationError(`session name '${sessionName}' is not 2 to 64 of [\\w+=,.@-]`);
    return this.#openSession(role, sessionName, durationSeconds);
  }

  #openSession(role: RoleRecord, sessionName: string, duration: number): TemporaryCredentials {
    let accessKeyId = newAccessKeyId('ASIA');
    while (this.#sessions.has(accessKeyId)) accessKeyId = newAccessKeyId('ASIA');
    const session: SessionRecord = {
      accessKeyId,
      secret: newSecretAccessKey(),
      token: newSessionToken(),
      // STS reports whole seconds; keeping the record on the same second keeps "expired" consistent with it.
      expiresMs: Math.floor(this.now() / 1000) * 1000 + duration * 1000,
      roleName: role.roleName,
      sessionName,
    };
    this.#sessions.set(accessKeyId, session);
    this.issued.add(session.secret).add(session.token);
    return {
      accessKeyId,
      secretAccessKey: session.secret,
      sessionToken: session.token,
      expiration: awsDateTime(session.expiresMs),
      assumedRoleArn: this.#assumedRoleArn(role, session.sessionName),
      assumedRoleId: `${role.roleId}:${session.sessionName}`,
    };
  }

  // Authentication, for the signature check.

  /**
   * The secret a request signed with this access key id must have used, and who it stands for. Throws the error
   * AWS answers before it looks at the signature: an unknown, inactive or not-yet-propagated key, or temporary
   * credentials without their token, are all "invalid"; expired temporary credentials are "expired".
   */
  resolveCredentials(accessKeyId: string, sessionToken: string | undefined): { secretAccessKey: string; principal: Principal } {
    if (accessKeyId.startsWith('ASIA')) {
      const session = this.#sessions.get(accessKeyId);
      if (!session || sessionToken === undefined || !sameSecret(session.token, sessionToken)) throw invalidClientTokenId();
      if (this.now() >= session.expiresMs) throw expiredToken();
      const role = this.#roles.get(session.roleName.toLowerCase());
      if (!role) throw invalidClientTokenId();
      return {
        secretAccessKey: session.secret,
        principal: { kind: 'role', accessKeyId, roleName: role.roleName, roleId: role.roleId, sessionName: session.sessionName, arn: this.#assumedRoleArn(role, session.sessionName) },
      };
    }
    const found = this.#findKey(accessKeyId);
    if (!found || sessionToken !== undefined || !this.#acceptedNow(found.key)) throw invalidClientTokenId();
    const { user } = found;
    return {
      secretAccessKey: found.key.secret,
      principal: { kind: 'user', accessKeyId, userName: user.userName, userId: user.userId, arn: this.#userArn(user.path, user.userName) },
    };
  }

  /** Records an authenticated use of a long-term key (what GetAccessKeyLastUsed reports). */
  recordKeyUse(accessKeyId: string, serviceName: string, region: string, atMs: number = this.now()): void {
    const found = this.#findKey(accessKeyId);
    if (found) found.key.lastUsed = { ms: atMs, serviceName, region };
  }

  /** GetCallerIdentity's UserId: the user's unique id, or `<role id>:<session>`. */
  callerUserId(principal: Principal): string {
    return principal.kind === 'user' ? principal.userId : `${principal.roleId}:${principal.sessionName}`;
  }

  // Internals.

  #allows(principal: Principal, action: string, resource: Resource): boolean {
    if (action.toLowerCase() === 'sts:getcalleridentity') return true;
    let permissions: Permissions;
    if (principal.kind === 'user') {
      const user = this.#users.get(principal.userName.toLowerCase());
      if (!user) return false;
      permissions = user.permissions;
    } else {
      const role = this.#roles.get(principal.roleName.toLowerCase());
      if (!role) return false;
      permissions = role.permissions;
    }
    if (permissions === 'all') return true;
    if (permissions === 'self') {
      return (
        principal.kind === 'user' &&
        action.toLowerCase().startsWith('iam:') &&
        resource.userName !== undefined &&
        resource.userName.toLowerCase() === principal.userName.toLowerCase()
      );
    }
    return permissions.some((p) => actionMatches(p, action));
  }

  /**
   * The delays of the user's next key: each the configured median times a seeded log-normal factor, labelled by
   * user and key number so they do not depend on what else the sandbox did in between. A zero median stays zero.
   */
  #draw(user: UserRecord, now: number): { usableAtMs: number; listedAtMs: number | undefined } {
    user.made += 1;
    const label = `${user.userName.toLowerCase()}/${user.made}`;
    const delay = this.#propagationDelayMs * this.#random.spread(`aws/propagation/${label}`, this.#delaySpread);
    const lag = this.#readLagMs * this.#random.spread(`aws/read-lag/${label}`, this.#delaySpread);
    return { usableAtMs: now + Math.round(delay), listedAtMs: lag > 0 ? now + Math.round(lag) : undefined };
  }

  #listed(key: KeyRecord): boolean {
    return key.listedAtMs === undefined || this.now() >= key.listedAtMs;
  }

  #acceptedNow(key: KeyRecord): boolean {
    return key.status === 'Active' && this.#propagated(key);
  }

  #propagated(key: KeyRecord): boolean {
    return key.usableAtMs === undefined || this.now() >= key.usableAtMs;
  }

  #lastUsed(key: KeyRecord): LastUsed | null {
    return key.lastUsed ? { date: awsDateTime(key.lastUsed.ms), serviceName: key.lastUsed.serviceName, region: key.lastUsed.region } : null;
  }

  #findKey(accessKeyId: string): { user: UserRecord; key: KeyRecord } | undefined {
    for (const user of this.#users.values()) {
      const key = user.keys.find((k) => k.accessKeyId === accessKeyId);
      if (key) return { user, key };
    }
    return undefined;
  }

  #requireUser(userName: string): UserRecord {
    const user = this.#users.get(String(userName).toLowerCase());
    if (!user) throw noSuchUser(String(userName));
    return user;
  }

  #userArn(path: string, userName: string): string {
    return `arn:${this.partition}:iam::${this.accountId}:user${path}${userName}`;
  }

  #roleArn(role: RoleRecord): string {
    return `arn:${this.partition}:iam::${this.accountId}:role${role.path}${role.roleName}`;
  }

  #assumedRoleArn(role: RoleRecord, sessionName: string): string {
    // The assumed-role ARN never carries the role's path.
    return `arn:${this.partition}:sts::${this.accountId}:assumed-role/${role.roleName}/${sessionName}`;
  }

  #keyState(user: UserRecord, key: KeyRecord): AccessKeyState {
    return {
      userName: user.userName,
      accessKeyId: key.accessKeyId,
      secretAccessKey: key.secret,
      status: key.status,
      createDate: awsDateTime(key.createdMs),
      madeAt: new Date(key.createdMs).toISOString(),
      propagated: this.#propagated(key),
      usableAt: key.usableAtMs === undefined ? null : new Date(key.usableAtMs).toISOString(),
      listed: this.#listed(key),
      listedAt: key.listedAtMs === undefined ? null : new Date(key.listedAtMs).toISOString(),
      acceptedNow: this.#acceptedNow(key),
      lastUsed: this.#lastUsed(key),
    };
  }

  #userState(user: UserRecord): UserState {
    return {
      userName: user.userName,
      path: user.path,
      userId: user.userId,
      arn: this.#userArn(user.path, user.userName),
      createDate: awsDateTime(user.createdMs),
      permissions: Array.isArray(user.permissions) ? [...user.permissions] : user.permissions,
      accessKeys: user.keys.map((k) => this.#keyState(user, k)),
    };
  }

  #roleState(role: RoleRecord): RoleState {
    return {
      roleName: role.roleName,
      path: role.path,
      roleId: role.roleId,
      arn: this.#roleArn(role),
      createDate: awsDateTime(role.createdMs),
      trustedUsers: [...role.trustedUsers],
      trustedRoles: [...role.trustedRoles],
      trustedServices: [...role.trustedServices],
      permissions: Array.isArray(role.permissions) ? [...role.permissions] : role.permissions,
      maxSessionDurationSeconds: role.maxSessionDurationSeconds,
    };
  }
}
