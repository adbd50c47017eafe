// Value formats the Entra and Graph wire use, kept in one place so the directory and both protocol layers agree.
import { randomInt, randomUUID } from 'node:crypto';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isGuid(value: string): boolean {
  return GUID.test(value);
}

export function newGuid(): string {
  return randomUUID();
}

// Entra secrets are 40 characters from this alphabet, shaped `xxxNQ~` + 34 more (e.g. `abc8Q~...`). Matching
// the shape matters: rotators and log scrubbers key on it, and `~`, `.`, `-` must survive form encoding.
const SECRET_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-';

function pick(alphabet: string, n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

export function newSecretText(): string {
  return pick(SECRET_ALPHABET, 3) + pick('0123456789', 1) + 'Q~' + pick(SECRET_ALPHABET, 34);
}

/** Graph writes date-times with seven fractional digits (`2021-09-09T19:50:29.3086381Z`); parsers must cope. */
export function graphDateTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');
}

/** The `innerError.date` format: seconds precision, no zone designator. */
export function graphInnerDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19);
}

/** The `timestamp` format of Entra's token errors: `2023-05-06 06:03:00Z`. */
export function entraTimestamp(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ') + 'Z';
}

export { parseDateTime } from '../datetime.js';
