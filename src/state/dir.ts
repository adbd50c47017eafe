// Where a run keeps what must outlive it: the per-record lock, the journal of an unfinished rotation, and a
// sealed secret that Keeper refused to store. It is local to the gateway host and private to the gateway's
// user (0700), and namespaced by the gateway's KSM client so two gateways on one host never share state.
import { createHash } from 'node:crypto';
import { mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { RotateError } from '../errors.js';
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

/** Creates (0700) and returns this gateway's state folder. Local only: no network. */
export function openStateDir(config: GatewayConfig, environment: StateDirEnvironment): string {
  const client = createHash('sha256').update(config.values.clientId ?? config.hostname).digest('hex').slice(0, 16);
  const dir = join(stateRoot(environment), client);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new RotateError('STATE_DIR_UNAVAILABLE', `cannot use the state folder ${dir} (${why}); set KEEPER_ROTATE_STATE_DIR to a folder the gateway's user can write`);
  }
  return dir;
}
