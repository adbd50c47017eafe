// Value formats the Wiz sandbox writes and reads, in one place so the tenant, the token endpoint and the GraphQL
// layer agree on them.
import { randomInt, randomUUID } from 'node:crypto';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

export function newUuid(): string {
  return randomUUID();
}

function pick(alphabet: string, n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

/** Wiz client ids are 52 lowercase letters and digits. */
export function newClientId(): string {
  return pick('abcdefghijklmnopqrstuvwxyz0123456789', 52);
}

/** Wiz client secrets are 64 letters and digits; nothing in them needs escaping in a form body or a shell file. */
export function newClientSecret(): string {
  return pick('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', 64);
}

/**
 * Wiz DateTimes as the sandbox writes them: seconds precision, `Z` (`2025-03-01T00:00:00Z`). rotate.py parses
 * expiresAt with `%Y-%m-%dT%H:%M:%SZ`, so fractional seconds would break the one public rotator there is.
 */
export function wizDateTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export { parseDateTime } from '../datetime.js';
