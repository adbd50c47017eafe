// Where a run keeps what must outlive it: the per-record lock, the journal of an unfinished rotation, and a
// sealed secret that Keeper refused to store. It is local to the gateway host and private to the gateway's
// user (0700), and namespaced by the gateway's KSM client so two gateways on one host never share state.
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { RotateError, describe, isRotateError } from '../errors.js';
import type { GatewayConfig } from '../keeper/config.js';

export interface StateDirEnvironment {
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  home?: () => string;
}

/**
 * `KEEPER_ROTATE_STATE_DIR`, else the platform's per-user state folder. Not the temp folder: a sealed secret
 * there could be swept away before the next run stores it.
 */
export function stateRoot({ env, platform, home = homedir }: StateDirEnvironment): string {
  if (env.KEEPER_ROTATE_STATE_DIR) return env.KEEPER_ROTATE_STATE_DIR;
  if (platform === 'win32') return join(env.LOCALAPPDATA || join(home(), 'AppData', 'Local'), 'keeper-rotate');
  return join(env.XDG_STATE_HOME || join(home(), '.local', 'state'), 'keeper-rotate');
}

/** Quoted for a POSIX shell, so that the command in a message can be pasted as it is. */
function shellQuote(path: string): string {
  return `'${path.replace(/'/g, `'\\''`)}'`;
}

function unavailable(message: string, cause?: unknown): RotateError {
  return new RotateError('STATE_DIR_UNAVAILABLE', message, cause === undefined ? {} : { cause });
}

/**
 * Makes sure `dir` is a private folder of this user, creating it (0700) if it is missing. What it holds decides
 * whether a run may start (a lock) and what the next run does to the target (a journal, a sealed secret), so a
 * folder someone else can write, or a link someone else can point elsewhere, is refused, not used.
 *
 * On Windows only the link check applies (lstat reports symbolic links and junctions as links): Node reports no
 * owner and a mode made up from the read-only flag, and the folder's privacy comes from the ACL it inherits
 * from the user's %LOCALAPPDATA%.
 */
function ensurePrivateDir(dir: string, posix: boolean, createParents: boolean): void {
  let created = false;
  try {
    if (createParents) mkdirSync(dirname(dir), { recursive: true, mode: 0o700 });
    mkdirSync(dir, { mode: 0o700 });
    created = true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST') throw unavailable(`cannot create the state folder ${dir} (${code ?? describe(err)}); set KEEPER_ROTATE_STATE_DIR to a folder the gateway's user can write`, err);
  }
  const st = lstatSync(dir);
  if (st.isSymbolicLink()) {
    throw unavailable(`the state folder ${dir} is a symbolic link; whoever can change a link can redirect the locks and journals: set KEEPER_ROTATE_STATE_DIR to the real folder`);
  }
  if (!st.isDirectory()) throw unavailable(`the state folder ${dir} is not a folder; set KEEPER_ROTATE_STATE_DIR to a folder the gateway's user can write`);
  if (!posix) return;
  const uid = process.getuid!();
  if (st.uid !== uid) {
    throw unavailable(`the state folder ${dir} belongs to uid ${st.uid}, not to this user (uid ${uid}); run the script as the gateway's user, or give the folder to this one: chown -R ${uid} ${shellQuote(dir)}`);
  }
  if ((st.mode & 0o777) !== 0o700) {
    // Made by this run: the umask may have left it without an owner bit. Someone else's choice is not undone.
    if (created) chmodSync(dir, 0o700);
    else throw unavailable(`the state folder ${dir} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}; it must be private to the gateway's user: chmod 700 ${shellQuote(dir)}`);
  }
}

/**
 * Creates (0700) and returns this gateway's state folder after checking it and the root above it: a folder,
 * not a link, and (POSIX) this user's and 0700. Local only: no network.
 */
export function openStateDir(config: GatewayConfig, environment: StateDirEnvironment): string {
  const client = createHash('sha256').update(config.values.clientId ?? config.hostname).digest('hex').slice(0, 16);
  // Resolved: a trailing separator would make lstat follow a link instead of reporting it.
  const root = resolve(stateRoot(environment));
  const dir = join(root, client);
  const posix = environment.platform !== 'win32' && typeof process.getuid === 'function';
  try {
    ensurePrivateDir(root, posix, true);
    ensurePrivateDir(dir, posix, false);
  } catch (err) {
    if (isRotateError(err)) throw err;
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw unavailable(`cannot use the state folder ${dir} (${why}); set KEEPER_ROTATE_STATE_DIR to a folder the gateway's user can write`, err);
  }
  return dir;
}
