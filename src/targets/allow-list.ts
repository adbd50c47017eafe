// The gateway owner's allow-lists: which targets this gateway may rotate, set in the gateway host's environment,
// where a record editor cannot reach. A record picks its target (an IAM user name, an application ID, a Wiz
// client ID); the admin credentials it is rotated with are the gateway owner's. Without a list, the admin
// credentials' own permissions are the only bound, and a record may name anything they reach. Nothing in a
// record or the gateway input is read here: record data can narrow nothing and widen nothing.
import { RotateError } from '../errors.js';

export const ALLOW_AWS_USERS = 'KEEPER_ROTATE_ALLOW_AWS_USERS';
export const ALLOW_AZURE_APPS = 'KEEPER_ROTATE_ALLOW_AZURE_APPS';
export const ALLOW_WIZ_ACCOUNTS = 'KEEPER_ROTATE_ALLOW_WIZ_ACCOUNTS';

/**
 * The comma-separated entries of an allow-list variable, or undefined when it is unset or blank. Blank counts as
 * unset because container runtimes and service managers pass empty variables for ones the owner left out.
 */
export function readEntries(env: NodeJS.ProcessEnv, name: string): string[] | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const entries = raw
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (entries.some((e) => e.length > 512)) throw new RotateError('SETTING_INVALID', `${name}: an entry is longer than 512 characters`);
  return entries;
}

/** `*` any run of characters, `?` one; everything else literal, and the whole value must match. */
export function globMatcher(pattern: string, ignoreCase: boolean): (value: string) => boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[\\s\\S]*').replace(/\?/g, '[\\s\\S]');
  const re = new RegExp(`^${source}$`, ignoreCase ? 'iu' : 'u');
  return (value) => re.test(value);
}

export function notAllowed(name: string, what: string, entries: readonly string[]): RotateError {
  return new RotateError('TARGET_NOT_ALLOWED', `${what} is not in this gateway's allow-list ${name} (${entries.join(', ')}); the gateway owner sets it in the gateway's environment`);
}
