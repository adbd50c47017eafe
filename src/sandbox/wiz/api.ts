// The `wiz-api` sandbox service: Wiz's GraphQL endpoint (`POST /graphql` on api.<dc>.app.wiz.io) for service
// accounts. graphql-js parses, validates and executes each request against schema.ts, so a query the real API
// would reject as malformed is rejected here too, with Wiz's error envelope:
//   {"errors":[{"message","extensions":{"code": UNAUTHENTICATED|UNAUTHORIZED|BAD_USER_INPUT|NOT_FOUND|INTERNAL|RATE_LIMIT_EXCEEDED}}],"data":null}
// HTTP status: 401 for a missing/invalid/expired bearer, 429 when throttled, 400 for a request that never reaches
// execution (bad JSON, syntax, validation, variables), 500 for INTERNAL, and 200 for errors raised while executing
// (UNAUTHORIZED, NOT_FOUND, BAD_USER_INPUT from a rule), as GraphQL servers answer field errors. Errors that set a
// non-200 status also carry it in `extensions.http.status`, the shape the research found in Wiz's error docs.
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
  extensions: { code: WizErrorCode; http?: { status: number } };
}

function wireError(code: WizErrorCode, message: string, status: number, extra: Pick<WireError, 'locations' | 'path'> = {}): WireError {
  return { message, ...extra, extensions: { code, ...(status !== 200 ? { http: { status } } : {}) } };
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
    return errorReply(429, [wireError('RATE_LIMIT_EXCEEDED', 'Rate limit exceeded', 429)], { 'retry-after': String(retryAfterSeconds) });
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
    const status = codes.includes('INTERNAL') ? 500 : 200;
    return errorReply(
      status,
      result.errors.map((e, i) => {
        const code = codes[i]!;
        const extra: Pick<WireError, 'locations' | 'path'> = {};
        if (e.locations) extra.locations = e.locations;
        if (e.path) extra.path = e.path;
        return wireError(code, e.message, code === 'INTERNAL' ? 500 : 200, extra);
      }),
      {},
      // Always null: every top-level field is non-null, so any field error nulls the whole of data.
      result.data ?? null,
    );
  }
}
