// Microsoft Graph v1.0 as far as a secret rotator uses it: read an application (by object id or by appId, with
// $select), list its owners, addPassword, removePassword. Bearer tokens come from entra.ts; errors use Graph's OData envelope
// `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
import type { Reply, SandboxRequest } from '../service.js';
import { type AppState, type Directory, DirectoryError, invalidId, invalidProperty, notFound, type SecretState } from './directory.js';
import { graphInnerDate, isGuid, newGuid } from './formats.js';
import type { TokenClaims, TokenIssuer } from './tokens.js';

export type GraphAction = 'getApplication' | 'listOwners' | 'addPassword' | 'removePassword';

export interface GraphTarget {
  action: GraphAction;
  version: string;
  /** The id exactly as the request spelled it, for error messages. */
  id: string;
  by: 'objectId' | 'appId';
}

const APPLICATION_PATH =
  /^\/(v1\.0|beta)\/applications(?:\/([^/()]+)|\(appId='([^']*)'\))(?:\/(?:microsoft\.graph\.)?(addPassword|removePassword)|\/(owners))?\/?$/i;

/** Parses `/v1.0/applications/{id}[/action]` and `/v1.0/applications(appId='{appId}')[/action]`, and `/owners`. */
export function parseGraphPath(path: string): GraphTarget | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return undefined;
  }
  const m = APPLICATION_PATH.exec(decoded);
  if (!m) return undefined;
  const [, version, objectId, appId, action, owners] = m;
  // Graph matches action names case-insensitively; the operation name must not depend on the caller's casing.
  const normalized: GraphAction = owners ? 'listOwners' : !action ? 'getApplication' : action.toLowerCase() === 'addpassword' ? 'addPassword' : 'removePassword';
  return objectId !== undefined
    ? { action: normalized, version: version!, id: objectId, by: 'objectId' }
    : { action: normalized, version: version!, id: appId ?? '', by: 'appId' };
}

interface GraphContext {
  baseUrl: string;
  now: number;
  requestId: string;
  clientRequestId: string;
}

const ODATA_JSON = 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';

function headersFor(ctx: GraphContext, extra: Record<string, string> = {}): Record<string, string> {
  return { 'request-id': ctx.requestId, 'client-request-id': ctx.clientRequestId, ...extra };
}

export function graphError(
  ctx: Pick<GraphContext, 'now' | 'requestId' | 'clientRequestId'>,
  status: number,
  code: string,
  message: string,
  options: { details?: DirectoryError['details']; headers?: Record<string, string> } = {},
): Reply {
  const error = {
    code,
    message,
    ...(options.details ? { details: options.details } : {}),
    innerError: { date: graphInnerDate(ctx.now), 'request-id': ctx.requestId, 'client-request-id': ctx.clientRequestId },
  };
  return {
    status,
    headers: { 'content-type': 'application/json', 'request-id': ctx.requestId, 'client-request-id': ctx.clientRequestId, ...options.headers },
    body: JSON.stringify({ error }),
  };
}

function ok(ctx: GraphContext, status: number, value: unknown): Reply {
  return { status, headers: headersFor(ctx, { 'content-type': ODATA_JSON }), body: JSON.stringify(value) };
}

// Graph sends this with every 401 so clients can find the authority; the Graph JS client ignores it.
const WWW_AUTHENTICATE =
  'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"';

const unauthenticated = (ctx: GraphContext, message: string) =>
  graphError(ctx, 401, 'InvalidAuthenticationToken', message, { headers: { 'www-authenticate': WWW_AUTHENTICATE } });

function authenticate(ctx: GraphContext, req: SandboxRequest, tokens: TokenIssuer): TokenClaims | Reply {
  const header = req.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!match) return unauthenticated(ctx, 'Access token is empty.');
  const check = tokens.verify(match[1]!, Math.floor(ctx.now / 1000));
  if (check.ok) return check.claims;
  switch (check.reason) {
    case 'malformed':
      return unauthenticated(ctx, 'CompactToken parsing failed with error code: 80049217');
    case 'expired':
      return unauthenticated(ctx, 'Lifetime validation failed, the token is expired.');
    case 'audience':
      return unauthenticated(ctx, 'Access token validation failure. Invalid audience.');
    case 'signature':
      return unauthenticated(ctx, 'Access token validation failure.');
  }
}

// What a full GET returns. Real Graph sends some 60 properties; these are the ones a rotator could plausibly read.
type ApplicationJson = Record<string, unknown>;

function passwordCredentialJson(s: SecretState, withSecret: boolean): Record<string, unknown> {
  return {
    customKeyIdentifier: null,
    displayName: s.displayName,
    endDateTime: s.endDateTime,
    hint: s.hint,
    keyId: s.keyId,
    secretText: withSecret ? s.secretText : null,
    startDateTime: s.startDateTime,
  };
}

export function applicationJson(app: AppState): ApplicationJson {
  return {
    id: app.objectId,
    deletedDateTime: null,
    appId: app.appId,
    createdDateTime: app.createdDateTime,
    description: null,
    displayName: app.displayName,
    signInAudience: app.signInAudience,
    tags: [],
    keyCredentials: [],
    // The eventually consistent read: a secret added moments ago may be missing (directory.ts `readLagMs`).
    passwordCredentials: app.secrets.filter((s) => s.listed).map((s) => passwordCredentialJson(s, false)),
  };
}

export interface GraphDeps {
  directory: Directory;
  tokens: TokenIssuer;
}

/** Reads the request body as Graph does: empty is allowed for these actions, anything else must be a JSON object. */
function readJsonBody(ctx: GraphContext, req: SandboxRequest): { body: Record<string, unknown> } | { reply: Reply } {
  const text = req.body.toString('utf8').trim();
  if (text === '') return { body: {} };
  try {
    const value: unknown = JSON.parse(text);
    if (value && typeof value === 'object' && !Array.isArray(value)) return { body: value as Record<string, unknown> };
  } catch {
    // fall through to Graph's own message
  }
  return {
    reply: graphError(ctx, 400, 'BadRequest', 'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.'),
  };
}

function fromDirectoryError(ctx: GraphContext, err: unknown): Reply {
  if (err instanceof DirectoryError) return graphError(ctx, err.status, err.code, err.message, err.details ? { details: err.details } : {});
  throw err;
}

export function handleGraph(req: SandboxRequest, target: GraphTarget, baseUrl: string, now: number, deps: GraphDeps): Reply {
  const clientRequestId = req.headers['client-request-id'];
  const ctx: GraphContext = { baseUrl, now, requestId: newGuid(), clientRequestId: typeof clientRequestId === 'string' ? clientRequestId : newGuid() };
  try {
    return dispatch(ctx, req, target, deps);
  } catch (err) {
    return fromDirectoryError(ctx, err);
  }
}

function dispatch(ctx: GraphContext, req: SandboxRequest, target: GraphTarget, deps: GraphDeps): Reply {
  // Graph checks the token before it looks at anything else, so a request without one learns nothing.
  const caller = authenticate(ctx, req, deps.tokens);
  if ('status' in caller) return caller;
  const expected = target.action === 'getApplication' || target.action === 'listOwners' ? 'GET' : 'POST';
  if (req.method !== expected) return graphError(ctx, 405, 'Request_BadRequest', 'Specified HTTP method is not allowed for the request target.');
  if (!isGuid(target.id)) throw invalidId(target.id);
  const roles = new Set(caller.roles);
  const all = roles.has('Application.ReadWrite.All');
  const ownedBy = roles.has('Application.ReadWrite.OwnedBy');
  if (!all && !ownedBy) return graphError(ctx, 403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
  const app = deps.directory.findApp(target.by === 'objectId' ? { objectId: target.id } : { appId: target.id });
  // Another tenant's app is invisible, not forbidden: the caller's token only reaches its own directory.
  if (!app || app.tenantId !== caller.tid) throw notFound(target.id);
  // OwnedBy can read every application in the tenant (as the live service does) but only change the ones it owns.
  if ((target.action === 'addPassword' || target.action === 'removePassword') && !all && !app.owners.includes(caller.appid)) {
    return graphError(ctx, 403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
  }
  switch (target.action) {
    case 'getApplication':
      return getApplication(ctx, req, target, app);
    case 'listOwners':
      return listOwners(ctx, target, app, all, deps.directory);
    case 'addPassword':
      return addPassword(ctx, req, target, app, deps.directory);
    case 'removePassword':
      return removePassword(ctx, req, app, deps.directory);
  }
}

function getApplication(ctx: GraphContext, req: SandboxRequest, target: GraphTarget, app: AppState): Reply {
  const full = applicationJson(app);
  const select = req.query.get('$select');
  const metadata = `${ctx.baseUrl}/${target.version}/$metadata#applications`;
  if (select === null || select.trim() === '') return ok(ctx, 200, { '@odata.context': `${metadata}/$entity`, ...full });
  const names = select.split(',').map((s) => s.trim()).filter(Boolean);
  const out: Record<string, unknown> = { '@odata.context': `${metadata}(${names.join(',')})/$entity` };
  for (const name of names) {
    // OData property names are case-sensitive on Graph's directory objects.
    if (!(name in full)) return graphError(ctx, 400, 'Request_BadRequest', `Could not find a property named '${name}' on type 'microsoft.graph.application'.`);
    out[name] = full[name];
  }
  return ok(ctx, 200, out);
}

/**
 * GET /applications/{id}/owners: the owners as directoryObjects. Application owners here are always service
 * principals (the sandbox has no users), and the sandbox's service principal of an app is the app's object id,
 * as in the tokens it issues (tokens.ts, `oid`). Microsoft documents Application.ReadWrite.OwnedBy as enough to
 * list the owners of an application (https://learn.microsoft.com/en-us/graph/api/application-list-owners,
 * "Permissions"), and that a caller without permission to read a member's type gets that member "with limited
 * information": only `@odata.type` and `id`, every other property null (same page, and "Limited information
 * returned for inaccessible member objects" in the Graph docs). Whether OwnedBy may read service principals is
 * not documented, so the sandbox takes the narrower reading: with OwnedBy alone, owners come back as type and id.
 */
function listOwners(ctx: GraphContext, target: GraphTarget, app: AppState, readsServicePrincipals: boolean, directory: Directory): Reply {
  const value = app.owners.map((appId) => {
    const owner = directory.findApp({ appId });
    const id = owner?.objectId ?? appId;
    return {
      '@odata.type': '#microsoft.graph.servicePrincipal',
      id,
      appId: readsServicePrincipals ? appId : null,
      displayName: readsServicePrincipals ? (owner?.displayName ?? null) : null,
    };
  });
  return ok(ctx, 200, { '@odata.context': `${ctx.baseUrl}/${target.version}/$metadata#directoryObjects`, value });
}

function addPassword(ctx: GraphContext, req: SandboxRequest, target: GraphTarget, app: AppState, directory: Directory): Reply {
  const parsed = readJsonBody(ctx, req);
  if ('reply' in parsed) return parsed.reply;
  const input = parsed.body.passwordCredential;
  if (input !== undefined && input !== null && (typeof input !== 'object' || Array.isArray(input))) throw invalidProperty('passwordCredential', 'Application');
  const pc = (input ?? {}) as Record<string, unknown>;
  if (pc.displayName !== undefined && pc.displayName !== null && typeof pc.displayName !== 'string') throw invalidProperty('displayName', 'PasswordCredential');
  const secret = directory.addPassword(app.objectId, {
    displayName: (pc.displayName as string | null | undefined) ?? null,
    startDateTime: pc.startDateTime,
    endDateTime: pc.endDateTime,
  });
  return ok(ctx, 200, { '@odata.context': `${ctx.baseUrl}/${target.version}/$metadata#microsoft.graph.passwordCredential`, ...passwordCredentialJson(secret, true) });
}

function removePassword(ctx: GraphContext, req: SandboxRequest, app: AppState, directory: Directory): Reply {
  const parsed = readJsonBody(ctx, req);
  if ('reply' in parsed) return parsed.reply;
  const keyId = parsed.body.keyId;
  if (typeof keyId !== 'string' || !isGuid(keyId)) throw invalidProperty('keyId', 'PasswordCredential');
  // The live answer to an unknown keyId is undocumented. A 400 (not a 404) is deliberate: a rotator that reads
  // 404 as "already removed" would get false comfort here, so it has to re-read passwordCredentials instead.
  if (!directory.removePassword(app.objectId, keyId)) throw invalidProperty('keyId', 'PasswordCredential');
  return { status: 204, headers: headersFor(ctx) };
}
