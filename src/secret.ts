// Secrets travel in a type that cannot reach a log by accident: string conversion, JSON, util.inspect and
// console.log all print a placeholder. The value comes out only through `reveal()`, at the one call that hands
// it to a client library. Every secret is also registered with `redact()`, which scrubs it from any text we
// print, because client libraries put request bodies into their error messages.
//
// Registration only covers values this process has wrapped. A secret can reach an error before that: a reply
// that carries a new secret (Graph's secretText, IAM's SecretAccessKey, Wiz's clientSecret) and fails to parse,
// or that an error page echoes, is quoted by the SDK before our code ever sees the value. So `redact()` also
// scrubs, by pattern, the value of every field that carries a secret in the formats these services speak (JSON,
// XML, form bodies, util.inspect output, bearer headers), and `scrubError()` rebuilds an SDK error without the
// bodies and responses SDKs attach to it. Both live here, one mechanism for every target, rather than in each
// target's error wrapper: a wrapper that forgets a field would leak, and a new target gets them for free.
import { inspect } from 'node:util';

const PLACEHOLDER = '[secret]';
const known = new Set<string>();

/** Secrets shorter than this are not scrubbed from text: they would match ordinary words. */
const MIN_SCRUB_LENGTH = 6;

export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
    if (value.length >= MIN_SCRUB_LENGTH) {
      known.add(value);
      // Also the forms a secret takes inside a request body or URL (encodeURIComponent and the form encoding
      // of URLSearchParams differ, e.g. for `~`), base64 (basic auth) and a JSON string (a JSON log line).
      known.add(encodeURIComponent(value));
      known.add(new URLSearchParams({ v: value }).toString().slice(2));
      known.add(JSON.stringify(value).slice(1, -1));
      known.add(Buffer.from(value).toString('base64'));
    }
  }

  reveal(): string {
    return this.#value;
  }

  get length(): number {
    return this.#value.length;
  }

  equals(other: Secret | undefined): boolean {
    return other !== undefined && other.#value === this.#value;
  }

  toString(): string {
    return PLACEHOLDER;
  }

  toJSON(): string {
    return PLACEHOLDER;
  }

  [inspect.custom](): string {
    return PLACEHOLDER;
  }
}

/**
 * Fields whose value is a secret in the bodies our clients send and receive: Graph's `secretText`, Entra's and
 * Wiz's `client_secret`, Wiz's `clientSecret`, IAM's and STS's `SecretAccessKey` and `SessionToken`, OAuth tokens,
 * ECR's `authorizationToken` and a Docker config's `password`. Any spelling (`client_secret`, `clientSecret`,
 * `ClientSecret`).
 */
const SECRET_FIELD = String.raw`(?:secret_?text|client_?secret|secret_?access_?key|session_?token|access_?token|refresh_?token|id_?token|client_?assertion|authorization_?token|password)`;
/**
 * The field name, then what joins it to its value in JSON (`"k":"v"`, also inside a JSON string: `\"k\":\"v\"`),
 * util.inspect (`k: 'v'`), a form body (`k=v`) or XML (`<k>v`); then the value, up to the first character that
 * ends it in any of those formats.
 */
const SECRET_FIELD_VALUE = new RegExp(String.raw`(${SECRET_FIELD})((?:\\*["'])?\s*[:=>]\s*(?:\\*["'])?)((?:\\\/|[^"'\\<&\s,;}[\]])+)`, 'gi');
const BEARER = /\b(Bearer\s+)[\w.~+/=-]{8,}/gi;
/** V8 quotes up to ten characters of the text around a JSON syntax error: the middle of a secret, perhaps. */
const JSON_EXCERPT = /(Unexpected token .{1,3}, )(?:\.\.\.)?"[\s\S]{0,40}?"(?:\.\.\.)?( is not valid JSON)/g;

/** Replaces every registered secret, and the value of every field that carries one, in `text` with a placeholder. */
export function redact(text: string): string {
  let out = text;
  for (const s of known) if (out.includes(s)) out = out.split(s).join(PLACEHOLDER);
  return out
    .replace(SECRET_FIELD_VALUE, (_, key: string, join: string) => `${key}${join}${PLACEHOLDER}`)
    .replace(BEARER, `$1${PLACEHOLDER}`)
    .replace(JSON_EXCERPT, `$1"${PLACEHOLDER}"$2`);
}

/** Properties an error keeps through `scrubError`: codes and statuses. Never bodies, requests, responses or headers. */
const ERROR_FIELDS = ['code', 'errorCode', 'statusCode', 'status', 'requestId', '$fault'] as const;

/**
 * A copy of a thrown value that is safe to keep as a `cause`: same name, redacted message, the original stack's
 * frames, codes and statuses, and a scrubbed cause chain. SDKs attach what they received to their errors (the
 * Graph client's `body`, the AWS SDK's hidden `$response` and `$responseBodyText`, MSAL's `errorResponse`), and
 * util.inspect prints it, hidden fields included with `showHidden`; the copy has none of it.
 */
export function scrubError(err: unknown, depth = 0): unknown {
  if (err === null || err === undefined || typeof err === 'number' || typeof err === 'boolean') return err;
  // A thrown non-Error (a string, a parsed error body) keeps only what String() makes of it: an object's fields
  // are exactly what must not be kept.
  if (!(err instanceof Error)) return redact(String(err)).slice(0, 300);
  const copy = new Error(redact(err.message));
  Object.defineProperty(copy, 'name', { value: err.name, enumerable: false, configurable: true, writable: true });
  const frames = (err.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));
  copy.stack = [`${err.name}: ${copy.message}`, ...frames].join('\n');
  const source = err as unknown as Record<string, unknown>;
  const target = copy as unknown as Record<string, unknown>;
  for (const key of ERROR_FIELDS) {
    const v = source[key];
    if (typeof v === 'string') target[key] = redact(v);
    else if (typeof v === 'number' || typeof v === 'boolean') target[key] = v;
  }
  const meta = source.$metadata as { httpStatusCode?: unknown; requestId?: unknown; attempts?: unknown } | undefined;
  if (meta && typeof meta === 'object') target.$metadata = { httpStatusCode: meta.httpStatusCode, requestId: meta.requestId, attempts: meta.attempts };
  if (err.cause !== undefined) {
    Object.defineProperty(copy, 'cause', { value: depth < 4 ? scrubError(err.cause, depth + 1) : '[cause chain cut]', enumerable: false, configurable: true, writable: true });
  }
  return copy;
}
