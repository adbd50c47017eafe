// Value formats of IAM and STS, kept in one place so the account, the signer and both protocol layers agree.
// Shapes matter beyond looks: rotators and log scrubbers key on `AKIA`/`ASIA` prefixes and 40-character secrets.
import { randomBytes, randomInt, randomUUID } from 'node:crypto';

// Key and unique ids are base32-like: AWS never uses 0, 1, 8 or 9 in them.
const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const SECRET_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function pick(alphabet: string, n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

/** `AKIA` for an IAM user's long-term key, `ASIA` for temporary credentials from STS; 20 characters either way. */
export function newAccessKeyId(prefix: 'AKIA' | 'ASIA'): string {
  return prefix + pick(ID_ALPHABET, 16);
}

export const ACCESS_KEY_ID = /^(AKIA|ASIA)[A-Z0-9]{16}$/;

export function newSecretAccessKey(): string {
  return pick(SECRET_ALPHABET, 40);
}

/** Unique ids: `AIDA` for users, `AROA` for roles, 21 characters. */
export function newUniqueId(prefix: 'AIDA' | 'AROA'): string {
  return prefix + pick(ID_ALPHABET, 17);
}

/** Real session tokens are opaque base64 of several hundred characters; clients must not assume a length. */
export function newSessionToken(): string {
  return 'IQoJb3JpZ2luX2Vj' + randomBytes(480).toString('base64');
}

export function newRequestId(): string {
  return randomUUID();
}

export function newAccountId(): string {
  return String(randomInt(1, 10)) + String(randomInt(0, 100_000_000_000)).padStart(11, '0');
}

/** IAM and STS write timestamps in seconds: `2026-11-22T04:19:31Z`. */
export function awsDateTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The SigV4 `X-Amz-Date` form: `20261122T041931Z`. */
export function amzDate(ms: number): string {
  return awsDateTime(ms).replace(/[-:]/g, '');
}

/** Parses `20261122T041931Z`; undefined when it is not that shape. */
export function parseAmzDate(value: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return Number.isNaN(ms) ? undefined : ms;
}

export { parseDateTime } from '../datetime.js';

/** IAM user, role and session names: `[\w+=,.@-]`. */
export const IAM_NAME = /^[\w+=,.@-]+$/;
