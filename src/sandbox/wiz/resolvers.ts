// What each top-level field of the Wiz schema does against the tenant, with the scope it needs. graphql-js calls
// these as root-value functions; everything below the top level is plain data.
import { GraphQLError } from 'graphql';
import { parseDateTime } from './formats.js';
import { type ServiceAccountState, type ServiceAccountUpdate, type WizTenant, WizError } from './tenant.js';

export const WIZ_API_FIELDS = ['serviceAccounts', 'serviceAccount', 'rotateServiceAccountSecret', 'updateServiceAccount'] as const;
export type WizApiField = (typeof WIZ_API_FIELDS)[number];

export const REQUIRED_SCOPE: Record<WizApiField, string> = {
  serviceAccounts: 'read:service_accounts',
  serviceAccount: 'read:service_accounts',
  rotateServiceAccountSecret: 'update:service_accounts',
  updateServiceAccount: 'update:service_accounts',
};

/**
 * The scopes that grant each requirement: the scope itself and the umbrella scopes that include it. Sources:
 *   - the umbrella scopes exist: the scope enum of AxtonGrams/terraform-provider-wiz (internal/common.go,
 *     ServiceAccountScopes) lists admin:all, read:all, update:all, write:all and write:service_accounts beside
 *     read:service_accounts and update:service_accounts;
 *   - `<verb>:all` includes every `<verb>:<resource>`: "some aggregate others (e.g., read:all includes
 *     read:detections)" (tamnoon-io/Tamnoon-Public-Permissions, CNAPPs/Wiz/wiz-permissions.md, from Wiz's RBAC docs);
 *   - Wiz's own MCP server strips "any permissions containing ':all'" from UNAUTHORIZED messages before showing them
 *     (wiz_mcp_server's GraphQL client, clean_error_message): Wiz names the umbrella scopes as granting the call.
 * Inferred, not verified: admin:all includes everything; write:<resource> (and write:all) is the create, update
 * and delete umbrella of <resource>, as Wiz's role matrix has W beside R, and does not include read.
 */
export const SCOPES_GRANTING: Readonly<Record<string, readonly string[]>> = {
  'read:service_accounts': ['read:service_accounts', 'read:all', 'admin:all'],
  'update:service_accounts': ['update:service_accounts', 'write:service_accounts', 'update:all', 'write:all', 'admin:all'],
};

export interface WizApiContext {
  tenant: WizTenant;
  /** The scopes of the bearer token (what the account held when the token was minted, as with any JWT). */
  scopes: ReadonlySet<string>;
}

/** Unverified against the live service: Wiz's largest page is 500 in the public tools' pagination loops. */
export const MAX_PAGE_SIZE = 500;
const DEFAULT_PAGE_SIZE = 50;

interface ServiceAccountNode extends Omit<ServiceAccountState, 'clientSecret' | 'canAuthenticate'> {
  clientSecret: string | null;
  integration: null;
  assignedProjects: null;
}

function node(state: ServiceAccountState, clientSecret: string | null = null): ServiceAccountNode {
  const { clientSecret: _secret, canAuthenticate: _can, ...rest } = state;
  return { ...rest, clientSecret, integration: null, assignedProjects: null };
}

export function graphqlError(code: WizError['code'], message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code } });
}

function requireScope(ctx: WizApiContext, field: WizApiField): void {
  const granting = SCOPES_GRANTING[REQUIRED_SCOPE[field]]!;
  if (!granting.some((s) => ctx.scopes.has(s))) throw graphqlError('UNAUTHORIZED', `Unauthorized: ${field} requires one of the scopes [${granting.join(', ')}]`);
}

interface DateFilter {
  after?: string | null;
  before?: string | null;
}

interface Filters {
  name?: string | null;
  enabled?: boolean | null;
  deleted?: boolean | null;
  type?: string[] | null;
  source?: string | null;
  createdAt?: DateFilter | null;
  lastLoginAt?: DateFilter | null;
  expiresAt?: DateFilter | null;
  lastRotatedAt?: DateFilter | null;
}

function filterDate(name: string, filter: DateFilter | null | undefined): ((value: string | null) => boolean) | undefined {
  if (!filter) return undefined;
  const bound = (key: 'after' | 'before') => {
    const v = filter[key];
    if (v == null) return undefined;
    const ms = parseDateTime(v);
    if (ms === undefined) throw graphqlError('BAD_USER_INPUT', `filterBy.${name}.${key} must be an ISO 8601 date-time`);
    return ms;
  };
  const after = bound('after');
  const before = bound('before');
  return (value) => {
    if (value === null) return false;
    const ms = Date.parse(value);
    return (after === undefined || ms > after) && (before === undefined || ms < before);
  };
}

function matches(filters: Filters): (a: ServiceAccountState) => boolean {
  const dates = (['createdAt', 'lastLoginAt', 'expiresAt', 'lastRotatedAt'] as const).flatMap((key) => {
    const test = filterDate(key, filters[key]);
    return test ? [(a: ServiceAccountState) => test(a[key])] : [];
  });
  const name = filters.name?.toLowerCase();
  return (a) =>
    // rotate.py passes the clientId as `name` and takes nodes[0], so a clientId matches exactly as well as a name
    // matching as a case-insensitive substring.
    (filters.name == null || a.clientId === filters.name || a.name.toLowerCase().includes(name!)) &&
    (filters.enabled == null || a.enabled === filters.enabled) &&
    // The sandbox deletes for good, so no account is ever a deleted one; and every account is MODERN.
    filters.deleted !== true &&
    (filters.source == null || filters.source === 'MODERN') &&
    (filters.type == null || filters.type.includes(a.type)) &&
    dates.every((test) => test(a));
}

const encodeCursor = (offset: number) => Buffer.from(`offset:${offset}`, 'utf8').toString('base64');

function decodeCursor(cursor: string): number {
  const m = /^offset:(\d{1,9})$/.exec(Buffer.from(cursor, 'base64').toString('utf8'));
  if (!m) throw graphqlError('BAD_USER_INPUT', `Invalid cursor '${cursor}'`);
  return Number(m[1]);
}

interface ServiceAccountsArgs {
  first?: number | null;
  after?: string | null;
  filterBy?: Filters | null;
  orderBy?: { field: 'CREATED_AT' | 'NAME'; direction: 'ASC' | 'DESC' } | null;
}

function serviceAccounts(args: ServiceAccountsArgs, ctx: WizApiContext) {
  requireScope(ctx, 'serviceAccounts');
  const first = args.first ?? DEFAULT_PAGE_SIZE;
  if (first < 0 || first > MAX_PAGE_SIZE) throw graphqlError('BAD_USER_INPUT', `first must be between 0 and ${MAX_PAGE_SIZE}`);
  const offset = args.after == null ? 0 : decodeCursor(args.after);
  const all = ctx.tenant.listServiceAccounts().filter(matches(args.filterBy ?? {}));
  const order = args.orderBy ?? { field: 'CREATED_AT', direction: 'ASC' };
  const sign = order.direction === 'DESC' ? -1 : 1;
  // listServiceAccounts is in creation order and sort is stable, so equal keys keep that order.
  all.sort((a, b) => sign * (order.field === 'NAME' ? a.name.localeCompare(b.name) : a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
  const page = all.slice(offset, offset + first);
  return {
    nodes: page.map((a) => node(a)),
    pageInfo: { hasNextPage: offset + page.length < all.length, endCursor: page.length > 0 ? encodeCursor(offset + page.length) : null },
    totalCount: all.length,
  };
}

function requireAccount(ctx: WizApiContext, idOrClientId: string): ServiceAccountState {
  const a = ctx.tenant.getServiceAccount(idOrClientId);
  if (!a) throw graphqlError('NOT_FOUND', `Service account '${idOrClientId}' not found`);
  return a;
}

function updatePatch(patch: Record<string, unknown>): ServiceAccountUpdate {
  const update: ServiceAccountUpdate = {};
  // graphql-js leaves fields the caller did not send out of the object, so `in` tells "absent" from "null".
  if ('name' in patch) update.name = patch.name as string;
  if ('description' in patch) update.description = patch.description as string | null;
  if ('scopes' in patch) update.scopes = patch.scopes as string[];
  if ('expiresAt' in patch) update.expiresAt = patch.expiresAt as string | null;
  return update;
}

/** The root value graphql-js executes against. */
export const rootValue = {
  serviceAccounts,
  serviceAccount(args: { id: string }, ctx: WizApiContext) {
    requireScope(ctx, 'serviceAccount');
    return node(requireAccount(ctx, args.id));
  },
  rotateServiceAccountSecret(args: { ID: string }, ctx: WizApiContext) {
    requireScope(ctx, 'rotateServiceAccountSecret');
    const rotated = ctx.tenant.rotateSecret(requireAccount(ctx, args.ID).id);
    return { serviceAccount: node(rotated, rotated.clientSecret) };
  },
  updateServiceAccount(args: { input: { serviceAccountId: string; patch: Record<string, unknown> } }, ctx: WizApiContext) {
    requireScope(ctx, 'updateServiceAccount');
    const account = requireAccount(ctx, args.input.serviceAccountId);
    // Unverified: whether Wiz refuses an expiresAt in the past. rotate.py's forced path writes back whatever it
    // read, which may already be past, so the sandbox accepts it (the account then simply cannot get tokens).
    return { serviceAccount: node(ctx.tenant.updateServiceAccount(account.id, updatePatch(args.input.patch))) };
  },
};

/** The code a resolver failure carries: its own, the tenant rule's, or INTERNAL for a sandbox bug. */
export function errorCode(err: GraphQLError): WizError['code'] {
  const code = err.extensions?.code;
  if (typeof code === 'string') return code as WizError['code'];
  if (err.originalError instanceof WizError) return err.originalError.code;
  return err.originalError ? 'INTERNAL' : 'BAD_USER_INPUT';
}
