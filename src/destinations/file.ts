// The file destination (the push-to-file mode of the Conjur Secrets Provider, issue 17): the record's credential
// written to a file on the gateway host, for a consumer on the same host or on a shared volume.
//
// - Only under directories the gateway's owner allows (KEEPER_ROTATE_ALLOW_FILE_DIRS, deny by default): a record
//   editor picks the path, and the gateway's user can write where the editor must not (another service's
//   credentials, a shell profile, the gateway's own config). The parent directory is resolved through symlinks
//   before the check, and the file itself may not be a symlink, so a link planted in an allowed folder cannot
//   aim the write elsewhere.
// - Atomic: a temporary file beside it (created exclusively, mode 0600), written, fsynced, renamed over the
//   destination, then the directory fsynced. A reader sees the old file or the new, never half of one; a crash
//   leaves at most a `.keeper-rotate-*` temporary file, which the next delivery removes.
// - Sentinels beside it, as the Conjur provider does for its consumers: `KEEPER_ROTATE_PROVIDED` is created on the
//   first write into the folder, `KEEPER_ROTATE_UPDATED` rewritten on every delivery (a file watcher or a
//   liveness check can key on either). They hold a time and the file's name, never a value.
// - Formats: `env` (KEY=value lines, the names the consumer's own SDK reads), `json` (an object of the target's
//   keys), `aws-profile` (one profile of an AWS shared-credentials file; the file's other profiles are kept).
//   The env and json files are wholly this destination's. Each holds the payload's fingerprint, which `held`
//   reads back.
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, fsyncSync, lstatSync, openSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { RotateError } from '../errors.js';
import { Secret } from '../secret.js';
import { readEntries } from '../targets/allow-list.js';
import type { DeliveryPayload, Destination } from './destination.js';

export const ALLOW_FILE_DIRS = 'KEEPER_ROTATE_ALLOW_FILE_DIRS';
export const FILE_FORMATS = ['env', 'json', 'aws-profile'] as const;
export type FileFormat = (typeof FILE_FORMATS)[number];
export const SENTINEL_PROVIDED = 'KEEPER_ROTATE_PROVIDED';
export const SENTINEL_UPDATED = 'KEEPER_ROTATE_UPDATED';
const TEMP_PREFIX = '.keeper-rotate-';
const FINGERPRINT_LINE = /^# keeper-rotate fingerprint=([0-9a-f]{16,64})\s*$/m;
/** AWS profile names as the CLI accepts them in a credentials file. */
const PROFILE = /^[A-Za-z0-9_.+@-]{1,64}$/;

export interface FileDestinationSpec {
  path: string;
  format: FileFormat;
  /** `aws-profile` only: the profile to write (default `default`). */
  profile?: string;
}

const revealed = (v: string | Secret) => (v instanceof Secret ? v.reveal() : v);

/**
 * Validates a file destination against the owner's allow-list, with no filesystem write: throws
 * DESTINATION_NOT_ALLOWED (no list, or the path outside it) or SETTING_INVALID (a path that is not plain).
 */
export function fileDestination(spec: FileDestinationSpec, env: NodeJS.ProcessEnv): Destination {
  const { path, format } = spec;
  // The path is the record's text: nothing but a plain absolute path, the same after normalising, is taken.
  if (/[\u0000-\u001f\u007f]/.test(path) || !isAbsolute(path) || normalize(path) !== path || path.endsWith(sep)) {
    throw new RotateError('SETTING_INVALID', `file destination "${path.replace(/[\u0000-\u001f\u007f]/g, '?')}" must be a plain absolute path to a file (no "..", no trailing "/")`);
  }
  const name = basename(path);
  if (name === SENTINEL_PROVIDED || name === SENTINEL_UPDATED || name.startsWith(TEMP_PREFIX)) {
    throw new RotateError('SETTING_INVALID', `file destination ${path} has a name keeper-rotate keeps for itself`);
  }
  const profile = spec.profile ?? 'default';
  if (format === 'aws-profile' && !PROFILE.test(profile)) throw new RotateError('SETTING_INVALID', 'file_aws_profile must be an AWS profile name (letters, digits, _ . + @ -)');
  const allowed = readEntries(env, ALLOW_FILE_DIRS);
  if (!allowed) {
    throw new RotateError('DESTINATION_NOT_ALLOWED', `file destination ${path}: this gateway allows no file destinations; the gateway owner lists the folders records may write to in ${ALLOW_FILE_DIRS}`);
  }
  for (const dir of allowed) {
    if (!isAbsolute(dir)) throw new RotateError('SETTING_INVALID', `${ALLOW_FILE_DIRS}: "${dir}" is not an absolute path`);
  }
  const dir = dirname(path);
  const inside = (real: string) => allowed.some((a) => real === stripSep(a) || real.startsWith(stripSep(a) + sep));
  if (!inside(dir)) throw notAllowed(path, allowed);

  /** The folder, resolved through symlinks, checked again: a link inside an allowed folder may point outside it. */
  const realDir = (): string => {
    let real: string;
    try {
      real = realpathSync(dir);
    } catch (err) {
      throw new RotateError('DELIVERY_FAILED', `file destination ${path}: its folder cannot be opened (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { refused: true });
    }
    const allowedReal = allowed.map((a) => {
      try {
        return realpathSync(a);
      } catch {
        return stripSep(a);
      }
    });
    if (!allowedReal.some((a) => real === a || real.startsWith(a + sep))) throw notAllowed(path, allowed, ` (its folder resolves to ${real})`);
    return real;
  };
  // Resolved now too (a read, no write): a link that leads outside is refused with the record's other settings,
  // before the run changes anything (exit 2). A folder that does not exist yet is left to delivery to report.
  try {
    realpathSync(dir);
    realDir();
  } catch (err) {
    if (err instanceof RotateError && err.code === 'DESTINATION_NOT_ALLOWED') throw err;
  }
  const target = (real: string) => join(real, name);
  const notLink = (file: string) => {
    try {
      if (lstatSync(file).isSymbolicLink()) throw new RotateError('DESTINATION_NOT_ALLOWED', `file destination ${path} is a symbolic link; keeper-rotate writes only regular files it can replace`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  };
  const readCurrent = (file: string): string | undefined => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new RotateError('DELIVERY_FAILED', `file destination ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { refused: true });
    }
  };

  return {
    kind: 'file',
    describe: () => `file ${path} (${format}${format === 'aws-profile' ? `, profile ${profile}` : ''})`,
    async check() {
      const real = realDir();
      notLink(target(real));
      try {
        // Whether the gateway's user may create files there, by the kernel's own answer, writing nothing.
        accessSync(real, constants.W_OK | constants.X_OK);
      } catch (err) {
        throw new RotateError('DELIVERY_FAILED', `file destination ${path}: the gateway cannot write in its folder (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { refused: true });
      }
    },
    async held() {
      const real = realDir();
      const file = target(real);
      notLink(file);
      const text = readCurrent(file);
      if (text === undefined) return undefined;
      if (format === 'json') {
        try {
          const v = (JSON.parse(text) as Record<string, unknown>).keeper_rotate_fingerprint;
          return typeof v === 'string' ? v : undefined;
        } catch {
          return undefined;
        }
      }
      const section = format === 'aws-profile' ? profileSection(text, profile) : text;
      return section === undefined ? undefined : FINGERPRINT_LINE.exec(section)?.[1];
    },
    async deliver(payload) {
      const real = realDir();
      const file = target(real);
      notLink(file);
      const content = render(payload, format, profile, path, () => readCurrent(file));
      for (const leftover of readdirSafe(real)) if (leftover.startsWith(TEMP_PREFIX)) rmSync(join(real, leftover), { force: true });
      const first = !exists(join(real, SENTINEL_PROVIDED));
      writeAtomically(real, name, content);
      const stamp = `${new Date().toISOString()} ${name}\n`;
      if (first) writeAtomically(real, SENTINEL_PROVIDED, stamp);
      writeAtomically(real, SENTINEL_UPDATED, stamp);
    },
  };
}

const stripSep = (p: string) => (p.length > 1 && p.endsWith(sep) ? p.slice(0, -1) : p);

function notAllowed(path: string, allowed: string[], why = ''): RotateError {
  return new RotateError('DESTINATION_NOT_ALLOWED', `file destination ${path} is outside the folders this gateway allows (${ALLOW_FILE_DIRS}: ${allowed.join(', ')})${why}; the gateway owner sets them in the gateway's environment`);
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The bytes to write; a value no format can hold unambiguously (a line break) is refused, not mangled. */
function render(payload: DeliveryPayload, format: FileFormat, profile: string, path: string, current: () => string | undefined): string {
  for (const e of payload.entries) {
    if (/[\u0000-\u001f\u007f]/.test(revealed(e.value))) throw new RotateError('DELIVERY_FAILED', `file destination ${path}: the value of ${e.key} holds a control character, which ${format} cannot carry`, { refused: true });
  }
  const fp = `# keeper-rotate fingerprint=${payload.fingerprint}`;
  if (format === 'json') {
    const out: Record<string, string> = {};
    for (const e of payload.entries) out[e.key] = revealed(e.value);
    out.credential_id = payload.credentialId;
    out.keeper_rotate_fingerprint = payload.fingerprint;
    return JSON.stringify(out, null, 2) + '\n';
  }
  if (format === 'env') {
    const lines = [`# Written by keeper-rotate (${payload.target}); replaced on every rotation.`, fp];
    for (const e of payload.entries) lines.push(`${e.envName}=${envValue(revealed(e.value))}`);
    return lines.join('\n') + '\n';
  }
  const id = payload.entries.find((e) => e.key === 'access_key_id');
  const secret = payload.entries.find((e) => e.key === 'secret_access_key');
  if (!id || !secret) throw new RotateError('SETTING_INVALID', `file destination ${path}: the aws-profile format holds AWS access keys; ${payload.target} delivers ${payload.entries.map((e) => e.key).join(', ')}`);
  const section = [`[${profile}]`, fp, `aws_access_key_id = ${revealed(id.value)}`, `aws_secret_access_key = ${revealed(secret.value)}`];
  return replaceProfile(current() ?? '', profile, section);
}

/** Unquoted when every reader takes the value as it is (systemd, docker --env-file, dotenv, sh); else quoted. */
function envValue(v: string): string {
  if (/^[A-Za-z0-9~._+/=:@%-]*$/.test(v)) return v;
  return `"${v.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;
}

/** The lines of one `[profile]` section of a credentials file, or undefined. */
function profileSection(text: string, profile: string): string | undefined {
  const sections = splitSections(text);
  return sections.find((s) => s.name === profile)?.lines.join('\n');
}

function splitSections(text: string): Array<{ name: string | undefined; lines: string[] }> {
  const out: Array<{ name: string | undefined; lines: string[] }> = [{ name: undefined, lines: [] }];
  for (const line of text.split('\n')) {
    const header = /^\s*\[\s*([^\]]+?)\s*\]\s*$/.exec(line);
    if (header) out.push({ name: header[1]!, lines: [line] });
    else out[out.length - 1]!.lines.push(line);
  }
  return out;
}

/** The credentials file with this profile's section replaced (or added), every other section kept as it was. */
function replaceProfile(text: string, profile: string, section: string[]): string {
  const sections = splitSections(text.replace(/\n+$/, ''));
  let replaced = false;
  const parts: string[] = [];
  for (const s of sections) {
    if (s.name === profile) {
      if (!replaced) parts.push(section.join('\n'));
      replaced = true;
      continue;
    }
    const body = s.lines.join('\n').replace(/\n+$/, '');
    if (body !== '') parts.push(body);
  }
  if (!replaced) parts.push(section.join('\n'));
  return parts.join('\n\n') + '\n';
}

function writeAtomically(dir: string, name: string, content: string): void {
  const temp = join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
  let fd: number | undefined;
  try {
    fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0), 0o600);
    writeSync(fd, content);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, join(dir, name));
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(temp, { force: true });
    // No outcome is unknown here: the old file is intact until the rename, and the rename is all or nothing.
    throw new RotateError('DELIVERY_FAILED', `writing ${join(dir, name)} failed (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { refused: true });
  }
  // The rename is durable only once the folder is: a crash right after could otherwise bring the old file back.
  try {
    const dfd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Some filesystems refuse fsync on a folder; the rename itself has happened.
  }
}
