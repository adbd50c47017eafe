// Graph's collection reads a discovery tool pages through: `GET /v1.0/applications` and a service principal's
// `ownedObjects` (optionally cast to `microsoft.graph.application`), with `$top`, `$select` and server-driven paging.
// Graph answers a page with `@odata.nextLink`, an absolute URL carrying an opaque `$skiptoken`; a client must follow
// it until it is absent and never build the next URL itself ("Paging Microsoft Graph data in your app"). Directory
// collections take `$top` from 1 to 999 and give 100 items a page without it.
//
// Permissions (learn.microsoft.com/graph/api/application-list and serviceprincipal-list-ownedobjects, "Permissions"):
// both lists accept Application.ReadWrite.OwnedBy as well as Application.ReadWrite.All (and Read.All). With OwnedBy
// the application list is the tenant's whole list, not the caller's own apps (reported on Microsoft's Tech Community,
// "Application.ReadWrite.OwnedBy: List all applications owned by the calling application"), which is why a tool that
// wants only what it may rotate reads its service principal's ownedObjects. The sandbox's service principal of an
// app has the app's object id as its id (as in the tokens it issues, `oid`).
import type { Reply, SandboxRequest } from '../service.js';
import type { AppState, Directory } from './directory.js';
import { graphError } from './graph.js';
import { isGuid, newGuid } from './formats.js';
import type { TokenIssuer } from './tokens.js';

export type GraphListAction = 'listApplications' | 'listOwnedObjects';

export interface GraphListTarget {
  action: GraphListAction;
  version: string;
  /** The owning service principal, by object id or by appId, for ownedObjects. */
  owner?: { by: 'objectId' | 'appId'; id: string };
  /** `/microsoft.graph.application` after ownedObjects: only applications, typed as such. */
  castToApplication: boolean;
  /** The path as requested, without the query, for nextLink. */
  path: string;
}

const LIST_PATH =
  /^\/(v1\.0|beta)\/(?:(applications)|servicePrincipals(?:\/([^/()]+)|\(appId='([^']*)'\))\/ownedObjects(\/microsoft\.graph\.application)?)\/?$/i;

export function parseGraphListPath(path: string): GraphListTarget | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return undefined;
  }
  const m = LIST_PATH.exec(decoded);
  if (!m) return undefined;
  const [, version, applications, spObjectId, spAppId, cast] = m;
  if (applications) return { action: 'listApplications', version: version!, castToApplication: true, path: decoded };
  return {
    action: 'listOwnedObjects',
    version: version!,
    owner: spObjectId !== undefined ? { by: 'objectId', id: spObjectId } : { by: 'appId', id: spAppId ?? '' },
    castToApplication: cast !== undefined,
    path: decoded,
  };
}

export const GRAPH_DEFAULT_PAGE = 100;
export const GRAPH_MAX_TOP = 999;

const ODATA_JSON = 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';

export interface GraphListDeps {
  directory: Directory;
  tokens: TokenIssuer;
  /** The application JSON a GET returns (graph.ts), so lists and single reads agree. */
  applicationJson: (app: AppState) => Record<string, unknown>;
}

export function handleGraphList(req: SandboxRequest, target: GraphListTarget, baseUrl: string, now: number, deps: GraphListDeps): Reply {
  const clientRequestId = typeof req.headers['client-request-id'] === 'string' ? req.headers['client-request-id'] : newGuid();
  const ctx = { now, requestId: newGuid(), clientRequestId };
  const bad = (message: string) => graphError(ctx, 400, 'Request_BadRequest', message);
  const header = req.headers.authorization;
  const bearer = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!bearer) return graphError(ctx, 401, 'InvalidAuthenticationToken', 'Access token is empty.');
  const check = deps.tokens.verify(bearer[1]!, Math.floor(now / 1000));
  if (!check.ok) return graphError(ctx, 401, 'InvalidAuthenticationToken', 'Access token validation failure.');
  if (req.method !== 'GET') return graphError(ctx, 405, 'Request_BadRequest', 'Specified HTTP method is not allowed for the request target.');
  const roles = new Set(check.claims.roles);
  if (!roles.has('Application.ReadWrite.All') && !roles.has('Application.ReadWrite.OwnedBy')) {
    return graphError(ctx, 403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
  }
  const topText = req.query.get('$top');
  let top = GRAPH_DEFAULT_PAGE;
  if (topText !== null) {
    top = Number(topText);
    if (!/^\d+$/.test(topText) || top < 1 || top > GRAPH_MAX_TOP) return bad(`Invalid page size specified: '${topText}'. Must be between 1 and ${GRAPH_MAX_TOP} inclusive.`);
  }
  let items: AppState[];
  if (target.action === 'listApplications') items = deps.directory.listApps(check.claims.tid);
  else {
    const owner = target.owner!;
    if (!isGuid(owner.id)) return bad(`Invalid object identifier '${owner.id}'.`);
    const sp = deps.directory.findApp(owner.by === 'objectId' ? { objectId: owner.id } : { appId: owner.id });
    if (!sp || sp.tenantId !== check.claims.tid) {
      return graphError(ctx, 404, 'Request_ResourceNotFound', `Resource '${owner.id}' does not exist or one of its queried reference-property objects are not present.`);
    }
    items = deps.directory.listApps(check.claims.tid).filter((a) => a.owners.includes(sp.appId));
  }
  const list = `${target.path}|${check.claims.tid}`;
  const token = req.query.get('$skiptoken');
  let offset = 0;
  if (token !== null) {
    const m = /^(\d+)\|(.*)$/s.exec(Buffer.from(token, 'base64url').toString('utf8'));
    if (!m || m[2] !== list) return bad('Invalid paging token.');
    offset = Number(m[1]);
  }
  const select = (req.query.get('$select') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const page = items.slice(offset, offset + top);
  const value: Record<string, unknown>[] = [];
  for (const app of page) {
    const full: Record<string, unknown> = target.castToApplication ? deps.applicationJson(app) : { '@odata.type': '#microsoft.graph.application', ...deps.applicationJson(app) };
    if (select.length === 0) {
      value.push(full);
      continue;
    }
    const out: Record<string, unknown> = target.castToApplication ? {} : { '@odata.type': '#microsoft.graph.application' };
    for (const name of select) {
      if (!(name in full)) return bad(`Could not find a property named '${name}' on type 'microsoft.graph.application'.`);
      out[name] = full[name];
    }
    value.push(out);
  }
  const next = offset + page.length;
  const body: Record<string, unknown> = {
    '@odata.context': `${baseUrl}/${target.version}/$metadata#${target.castToApplication ? 'applications' : 'directoryObjects'}`,
    value,
  };
  if (next < items.length) {
    const q = new URLSearchParams();
    if (topText !== null) q.set('$top', topText);
    if (select.length) q.set('$select', select.join(','));
    q.set('$skiptoken', Buffer.from(`${next}|${list}`, 'utf8').toString('base64url'));
    body['@odata.nextLink'] = `${baseUrl}${target.path}?${q.toString()}`;
  }
  return { status: 200, headers: { 'content-type': ODATA_JSON, 'request-id': ctx.requestId, 'client-request-id': clientRequestId }, body: JSON.stringify(body) };
}
