// The `wiz-api` sandbox service: Wiz's GraphQL endpoint (`POST /graphql` on api.<dc>.app.wiz.io) for service
// accounts. graphql-js parses, validates and executes each request against schema.ts, so a query the real API
// would reject as malformed is rejected here too, with Wiz's error envelope:
//   {"errors":[{"message","extensions":{"code","http":{"status"}}}],"data":null}
// Every error answers with the HTTP status its code stands for, and carries it in `extensions.http.status`
// (ERROR_STATUS below), field errors raised while executing included: Wiz answers a refusal with a 4xx, not with
// the 200 a plain GraphQL server gives field errors. Sources: Wiz's "Handling API errors" page
// (docs.wiz.io/wiz-docs/docs/handling-api-errors, behind the customer login) as the `wizapi` package on PyPI
// carries it: its WizErrorCode lists UNAUTHENTICATED, UNAUTHORIZED, BAD_USER_INPUT, INTERNAL, RATE_LIMIT_EXCEEDED,
// FORBIDDEN_IP and NOT_FOUND, and its RaiseWizError reads errors[0].extensions.http.status off any reply that is
// not ok, i.e. Wiz's errors come with a non-2xx status that the error repeats. The status for each code is the
// HTTP meaning the page gives it (token missing/invalid/expired 401, scopes not permitting 403, invalid arguments
// 400, not found 404, rate limited 429, internal 500).
// Each service account's requests spend from its budget (limits.ts; on by default); past it, 429
// RATE_LIMIT_EXCEEDED with Retry-After, the request not applied.
import { type DocumentNode, type GraphQLError, type OperationDefinitionNode, type SelectionSetNode, Kind, execute, parse, validate } from 'graphql';
import type { Reply, Route, SandboxRequest, SandboxService } from '../service.js';
import { json } from '../service.js';
import { WIZ_API_FIELDS, type WizApiContext, type WizApiField, errorCode, rootValue } from './resolvers.js';
import { wizSchema } from './schema.js';
import type { WizErrorCode, WizTenant } from './tenant.js';

export const WIZ_API_SERVICE = 'wiz-api';
/** The top-level fields, plus `graphql` for a request whose field cannot be told (unparseable, unknown, GET). */
export const WIZ_API_OPERATIONS = [...WIZ_API_FIELDS, 'graphql'] as const;
export type WizApiOperation = (typeof WIZ_API_OPERATIONS)[number];

interface WireError {
  message: string;
  locations?: ReadonlyArray<{ line: number; column: number }>;
  path?: ReadonlyArray<string | number>;
  extensions: { code: WizErrorCode; http: { status: number } };
}

/** The HTTP status each error code answers with (see the header). */
export const ERROR_STATUS: Record<WizErrorCode, number> = {
  UNAUTHENTICATED: 401,
  UNAUTHORIZED: 403,
  BAD_USER_INPUT: 400,
  NOT_FOUND: 404,
  RATE_LIMIT_EXCEEDED: 429,
  INTERNAL: 500,
};

function wireError(code: WizErrorCode, message: string, status: number = ERROR_STATUS[code], extra: Pick<WireError, 'locations' | 'path'> = {}): WireError {
  return { message, ...extra, extensions: { code, http: { status } } };
}

function errorReply(status: number, errors: WireError[], headers: Record<string, string> = {}, data: unknown = null): Reply {
  return json(status, { errors, data }, headers);
}

function unauthenticated(message: string): Reply {
  return errorReply(401, [wireError('UNAUTHENTICATED', message, 401)], { 'www-authenticate': 'Bearer error="invalid_token"' });
}

const badRequest = (message: string, extra: Pick<WireError, 'locations'> = {}) => errorReply(400, [wireError('BAD_USER_INPUT', message, 400, extra)]);

interface ParsedRequest {
  query: string;
  variables: Record<string, unknown> | undefined;
  operationName: string | undefined;
  document: DocumentNode | undefined;
  syntaxError: GraphQLError | undefined;
}

/** The request body as GraphQL-over-HTTP defines it, or a message saying what is wrong with it. */
function parseRequest(body: Buffer): ParsedRequest | string {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return 'The body must be a JSON object {"query", "variables", "operationName"}';
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return 'The body must be a JSON object {"query", "variables", "operationName"}';
  const { query, variables, operationName } = value as Record<string, unknown>;
  if (typeof query !== 'string' || query.trim() === '') return '"query" must be a non-empty string';
  if (variables != null && (typeof variables !== 'object' || Array.isArray(variables))) return '"variables" must be a JSON object';
  if (operationName != null && typeof operationName !== 'string') return '"operationName" must be a string';
  let document: DocumentNode | undefined;
  let syntaxError: GraphQLError | undefined;
  try {
    document = parse(query);
  } catch (err) {
    syntaxError = err as GraphQLError;
  }
  return {
    query,
    variables: (variables ?? undefined) as Record<string, unknown> | undefined,
    operationName: (operationName ?? undefined) as string | undefined,
    document,
    syntaxError,
  };
}

/** The first known top-level field of the operation the request selects, looking through fragments. */
function topLevelField(document: DocumentNode, operationName: string | undefined): WizApiField | undefined {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const operation = operationName === undefined ? (operations.length === 1 ? operations[0] : undefined) : operations.find((o) => o.name?.value === operationName);
  if (!operation) return undefined;
  const fragments = new Map(document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])));
  const seen = new Set<string>();
  const walk = (set: SelectionSetNode): WizApiField | undefined => {
    for (const s of set.selections) {
      if (s.kind === Kind.FIELD) {
        if ((WIZ_API_FIELDS as readonly string[]).includes(s.name.value)) return s.name.value as WizApiField;
      } else if (s.kind === Kind.INLINE_FRAGMENT) {
        const found = walk(s.selectionSet);
        if (found) return found;
      } else if (!seen.has(s.name.value)) {
        seen.add(s.name.value);
        const fragment = fragments.get(s.name.value);
        const found = fragment && walk(fragment.selectionSet);
        if (found) return found;
      }
    }
    return undefined;
  };
  return walk(operation.selectionSet);
}

export class WizApiService implements SandboxService {
  readonly name = WIZ_API_SERVICE;

  constructor(readonly tenant: WizTenant) {}

  route(req: SandboxRequest): Route | undefined {
    if (!/^\/graphql\/?$/.test(req.path)) return undefined;
    if (req.method !== 'POST') {
      return { operation: 'graphql', handle: () => errorReply(405, [wireError('BAD_USER_INPUT', 'The GraphQL endpoint accepts POST only', 405)], { allow: 'POST' }) };
    }
    // Parsed here, once, because faults and the request log need the operation before the request is handled.
    const parsed = parseRequest(req.body);
    const operation = typeof parsed === 'string' || !parsed.document ? 'graphql' : (topLevelField(parsed.document, parsed.operationName) ?? 'graphql');
    return { operation, handle: () => this.#handle(req, parsed) };
  }

  throttleReply(retryAfterSeconds: number): Reply {
    return errorReply(429, [wireError('RATE_LIMIT_EXCEEDED', 'Rate limit exceeded: the client is being rate limited', 429)], { 'retry-after': String(retryAfterSeconds) });
  }

  async #handle(req: SandboxRequest, parsed: ParsedRequest | string): Promise<Reply> {
    // Authentication comes first, as on any API gateway: an anonymous caller learns nothing about its query.
    const header = req.headers.authorization;
    const bearer = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : undefined;
    if (!bearer) return unauthenticated('Missing Authorization: Bearer <token> header');
    const verdict = this.tenant.verifyAccessToken(bearer);
    if (!verdict.ok) {
      const why =
        verdict.reason === 'expired'
          ? 'The access token has expired'
          : verdict.reason === 'disabled'
            ? "The access token's service account is disabled"
            : verdict.reason === 'unknown_account'
              ? "The access token's service account no longer exists"
              : 'The access token is invalid';
      return unauthenticated(why);
    }
    // Counted per service account once the caller is known, whatever the request then turns out to be.
    const budget = this.tenant.rateLimits.takeApi(verdict.claims.client_id);
    if (!budget.ok) return this.throttleReply(budget.retryAfterSeconds);
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') return badRequest('Content-Type must be application/json');
    if (typeof parsed === 'string') return badRequest(parsed);
    if (parsed.syntaxError || !parsed.document) {
      const err = parsed.syntaxError;
      return badRequest(err?.message ?? 'Syntax error', err?.locations ? { locations: err.locations } : {});
    }
    const schema = wizSchema();
    const invalid = validate(schema, parsed.document);
    if (invalid.length > 0) {
      return errorReply(400, invalid.map((e) => wireError('BAD_USER_INPUT', e.message, 400, e.locations ? { locations: e.locations } : {})));
    }
    const contextValue: WizApiContext = { tenant: this.tenant, scopes: new Set(verdict.claims.scope.split(' ').filter(Boolean)) };
    const result = await execute({
      schema,
      document: parsed.document,
      rootValue,
      contextValue,
      variableValues: parsed.variables,
      operationName: parsed.operationName,
    });
    if (!result.errors || result.errors.length === 0) return json(200, { data: result.data });
    // No data at all means execution never started (bad variables, no such operation): a request error.
    if (result.data === undefined) {
      return errorReply(400, result.errors.map((e) => wireError('BAD_USER_INPUT', e.message, 400, e.locations ? { locations: e.locations } : {})));
    }
    const codes = result.errors.map(errorCode);
    // One status for the reply: a sandbox bug (INTERNAL) wins, else the first error's, as clients read errors[0].
    const status = codes.includes('INTERNAL') ? 500 : ERROR_STATUS[codes[0]!];
    return errorReply(
      status,
      result.errors.map((e, i) => {
        const code = codes[i]!;
        const extra: Pick<WireError, 'locations' | 'path'> = {};
        if (e.locations) extra.locations = e.locations;
        if (e.path) extra.path = e.path;
        return wireError(code, e.message, ERROR_STATUS[code], extra);
      }),
      {},
      // Always null: every top-level field is non-null, so any field error nulls the whole of data.
      result.data ?? null,
    );
  }
}
