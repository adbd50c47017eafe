// AWS Signature Version 4, verified for real: the sandbox rebuilds the canonical request from what arrived,
// derives the signing key from the secret of the access key named in the credential scope, and compares HMACs
// in constant time. A client that signs wrongly (wrong secret, wrong service, stale clock) fails here exactly
// as it would against AWS, with AWS's codes and messages. The checks follow the order AWS applies them:
// header syntax, credential scope, date, key, signature.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { AwsError } from './errors.js';
import { amzDate, parseAmzDate } from './formats.js';

export const ALGORITHM = 'AWS4-HMAC-SHA256';
/** How far a request's X-Amz-Date may be from the server clock, either way. */
export const MAX_CLOCK_SKEW_MS = 15 * 60_000;

export interface SignableRequest {
  method: string;
  /** The path as it arrived, still percent-encoded. */
  path: string;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface VerifyOptions {
  /** The signing name the scope must carry: `iam`, `sts`. */
  service: string;
  /** Whether the scope's region is one this endpoint accepts. */
  regionAllowed(region: string): boolean;
  nowMs: number;
  /** The secret for the access key (and session token), or throws the AwsError AWS answers for a bad key. */
  secretFor(accessKeyId: string, sessionToken: string | undefined): string;
}

export interface VerifiedRequest {
  accessKeyId: string;
  sessionToken: string | undefined;
  region: string;
  signedAtMs: number;
}

const SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

const incomplete = (message: string) => new AwsError(400, 'IncompleteSignature', message);
const mismatch = (message = SIGNATURE_MISMATCH) => new AwsError(403, 'SignatureDoesNotMatch', message);

function header(headers: SignableRequest['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** RFC 3986 encoding as SigV4 wants it: only unreserved characters stay as they are. */
export function uriEscape(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Non-S3 services normalize the path, then encode it once more (the client already encoded it once). */
export function canonicalPath(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalized = `${path.startsWith('/') ? '/' : ''}${segments.join('/')}${segments.length > 0 && path.endsWith('/') ? '/' : ''}`;
  return uriEscape(normalized).replace(/%2F/g, '/');
}

export function canonicalQuery(query: URLSearchParams): string {
  const pairs: Array<[string, string]> = [];
  for (const [k, v] of query) if (k.toLowerCase() !== 'x-amz-signature') pairs.push([uriEscape(k), uriEscape(v)]);
  pairs.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

export function canonicalRequest(req: SignableRequest, signedHeaders: string[], payloadHash: string): string {
  const headerLines = signedHeaders.map((name) => `${name}:${(header(req.headers, name) ?? '').trim().replace(/\s+/g, ' ')}`);
  return [req.method.toUpperCase(), canonicalPath(req.path), canonicalQuery(req.query), ...headerLines, '', signedHeaders.join(';'), payloadHash].join('\n');
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function signingKey(secretAccessKey: string, date: string, region: string, service: string): Buffer {
  let key: Buffer = Buffer.from(`AWS4${secretAccessKey}`, 'utf8');
  for (const part of [date, region, service, 'aws4_request']) key = createHmac('sha256', key).update(part, 'utf8').digest();
  return key;
}

export function stringToSign(longDate: string, scope: string, canonical: string): string {
  return [ALGORITHM, longDate, scope, sha256Hex(canonical)].join('\n');
}

interface ParsedAuthorization {
  credential: string;
  signedHeaders: string[];
  signature: string;
}

function parseAuthorization(value: string): ParsedAuthorization {
  const space = value.indexOf(' ');
  const algorithm = space < 0 ? value : value.slice(0, space);
  if (algorithm !== ALGORITHM) throw incomplete(`Unsupported AWS 'algorithm': '${algorithm}'`);
  const fields = new Map<string, string>();
  for (const part of value.slice(space + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const missing = ['Credential', 'Signature', 'SignedHeaders'].filter((k) => !fields.get(k));
  if (missing.length > 0) throw incomplete(missing.map((k) => `Authorization header requires '${k}' parameter.`).join(' ') + ` Authorization=${value}`);
  return { credential: fields.get('Credential')!, signedHeaders: fields.get('SignedHeaders')!.split(';'), signature: fields.get('Signature')! };
}

/** Verifies a header-signed request; throws the AwsError AWS would answer, or returns who signed it. */
export function verifySigV4(req: SignableRequest, options: VerifyOptions): VerifiedRequest {
  const authorization = header(req.headers, 'authorization');
  if (!authorization) throw new AwsError(403, 'MissingAuthenticationToken', 'Request is missing Authentication Token');
  const auth = parseAuthorization(authorization);

  const scopeParts = auth.credential.split('/');
  if (scopeParts.length !== 5) {
    throw incomplete(`Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '${auth.credential}'`);
  }
  const [accessKeyId, scopeDate, region, service, terminator] = scopeParts as [string, string, string, string, string];

  const longDate = header(req.headers, 'x-amz-date');
  if (!longDate) throw incomplete(`Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=${authorization}`);
  const signedAtMs = parseAmzDate(longDate);
  if (signedAtMs === undefined) throw incomplete(`Date must be in ISO-8601 'basic format'. Got '${longDate}'. See http://en.wikipedia.org/wiki/ISO_8601`);

  // AWS lists every scope problem in one message, each sentence followed by a space.
  let scopeErrors = '';
  if (!options.regionAllowed(region)) scopeErrors += 'Credential should be scoped to a valid region. ';
  if (service !== options.service) scopeErrors += `Credential should be scoped to correct service: '${options.service}'. `;
  if (terminator !== 'aws4_request') scopeErrors += `Credential should be scoped with a valid terminator: 'aws4_request', not '${terminator}'. `;
  if (scopeDate !== longDate.slice(0, 8)) {
    scopeErrors += `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${scopeDate}' != '${longDate.slice(0, 8)}', from '${longDate}'.`;
  }
  if (scopeErrors) throw mismatch(scopeErrors);

  if (!auth.signedHeaders.includes('host')) throw mismatch(`'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.`);

  const now = options.nowMs;
  if (signedAtMs < now - MAX_CLOCK_SKEW_MS) {
    throw mismatch(`Signature expired: ${longDate} is now earlier than ${amzDate(now - MAX_CLOCK_SKEW_MS)} (${amzDate(now)} - 15 min.)`);
  }
  if (signedAtMs > now + MAX_CLOCK_SKEW_MS) {
    throw mismatch(`Signature not yet current: ${longDate} is still later than ${amzDate(now + MAX_CLOCK_SKEW_MS)} (${amzDate(now)} + 15 min.)`);
  }

  const sessionToken = header(req.headers, 'x-amz-security-token');
  const secret = options.secretFor(accessKeyId, sessionToken);

  // The hash of what actually arrived, never the client's x-amz-content-sha256 claim: a body changed in transit
  // must break the signature.
  const canonical = canonicalRequest(req, auth.signedHeaders, sha256Hex(req.body));
  const scope = `${scopeDate}/${region}/${service}/${terminator}`;
  const expected = createHmac('sha256', signingKey(secret, scopeDate, region, service)).update(stringToSign(longDate, scope, canonical), 'utf8').digest();
  const presented = /^[0-9a-f]{64}$/.test(auth.signature) ? Buffer.from(auth.signature, 'hex') : Buffer.alloc(0);
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) throw mismatch();
  return { accessKeyId, sessionToken, region, signedAtMs };
}

export interface SignInput {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  region: string;
  service: string;
  nowMs?: number;
}

/**
 * Signs a request the way the SDK does (host, x-amz-date, the token and every header given), for tests and
 * scripts that talk to the sandbox without the SDK. Returns the headers to send.
 */
export function signRequest(input: SignInput): Record<string, string> {
  const longDate = amzDate(input.nowMs ?? Date.now());
  const body = input.body ?? '';
  const headers: Record<string, string> = { ...input.headers, host: input.url.host, 'x-amz-date': longDate };
  if (input.credentials.sessionToken) headers['x-amz-security-token'] = input.credentials.sessionToken;
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const signed = Object.keys(lower).sort();
  const request: SignableRequest = { method: input.method, path: input.url.pathname, query: input.url.searchParams, headers: lower, body: Buffer.from(body) };
  const scope = `${longDate.slice(0, 8)}/${input.region}/${input.service}/aws4_request`;
  const canonical = canonicalRequest(request, signed, sha256Hex(body));
  const signature = createHmac('sha256', signingKey(input.credentials.secretAccessKey, longDate.slice(0, 8), input.region, input.service))
    .update(stringToSign(longDate, scope, canonical), 'utf8')
    .digest('hex');
  return { ...lower, authorization: `${ALGORITHM} Credential=${input.credentials.accessKeyId}/${scope}, SignedHeaders=${signed.join(';')}, Signature=${signature}` };
}
