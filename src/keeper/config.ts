// The gateway's own KSM configuration is how a script reaches the vault. It is read, never written: the SDK's
// localConfigStorage rewrites the whole file on several paths (binding, a server key hint), and a broken
// gateway config takes the gateway down with it. So the JSON is loaded into memory only.
import { readFileSync } from 'node:fs';
import { RotateError } from '../errors.js';

export const LINUX_CONFIG_PATH = '/etc/keeper-gateway/gateway-config.json';
export const WINDOWS_CONFIG_PATH = 'C:\\ProgramData\\KeeperGateway\\config\\gateway-config.json';

/** Keys a bound KSM client config must have (Commander's validate_ksm_config_dict). */
const REQUIRED_KEYS = ['hostname', 'clientId', 'privateKey', 'appKey'] as const;

export interface GatewayConfig {
  /** Where it came from, for messages: a path, or the name of the environment variable. */
  source: string;
  /** The config's key/value pairs as strings, as the SDK's storage expects them. */
  values: Readonly<Record<string, string>>;
  hostname: string;
}

export interface ConfigEnvironment {
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  readFile?: (path: string) => string;
}

function parseConfigText(text: string, source: string): Record<string, unknown> {
  const trimmed = text.trim();
  if (!trimmed) throw new RotateError('CONFIG_INVALID', `gateway config at ${source} is empty`);
  // Plain JSON (the file the gateway installer writes) or base64 of it (what `GATEWAY_CONFIG` holds in Docker).
  let json = trimmed;
  if (!trimmed.startsWith('{')) {
    const decoded = Buffer.from(trimmed, 'base64').toString('utf8').trim();
    if (!decoded.startsWith('{')) throw new RotateError('CONFIG_INVALID', `gateway config at ${source} is neither JSON nor base64 JSON`);
    json = decoded;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new RotateError('CONFIG_INVALID', `gateway config at ${source} is not valid JSON`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new RotateError('CONFIG_INVALID', `gateway config at ${source} is not a JSON object`);
  return parsed as Record<string, unknown>;
}

/** Validates a parsed config; exported for the sandbox and doctor. */
export function toGatewayConfig(raw: Record<string, unknown>, source: string): GatewayConfig {
  const missing = REQUIRED_KEYS.filter((k) => typeof raw[k] !== 'string' || raw[k] === '');
  if (missing.length) {
    const hint = typeof raw.clientKey === 'string' ? ' (it holds a one-time clientKey: the gateway has not bound it yet)' : '';
    throw new RotateError('CONFIG_INVALID', `gateway config at ${source} lacks ${missing.join(', ')}${hint}`);
  }
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) if (typeof v === 'string' || typeof v === 'number') values[k] = String(v);
  return { source, values, hostname: values.hostname! };
}

/**
 * Finds and loads the gateway config: `KEEPER_GATEWAY_CONFIG` (a path), else `GATEWAY_CONFIG` (base64 or JSON, as
 * the gateway's Docker image has it), else the platform's default path.
 */
export function loadGatewayConfig({ env, platform, readFile = (p) => readFileSync(p, 'utf8') }: ConfigEnvironment): GatewayConfig {
  const path = env.KEEPER_GATEWAY_CONFIG;
  if (path) return fromFile(path, 'KEEPER_GATEWAY_CONFIG', readFile);
  const inline = env.GATEWAY_CONFIG;
  if (inline) return toGatewayConfig(parseConfigText(inline, 'GATEWAY_CONFIG'), 'GATEWAY_CONFIG');
  return fromFile(platform === 'win32' ? WINDOWS_CONFIG_PATH : LINUX_CONFIG_PATH, 'the default path', readFile);
}

function fromFile(path: string, via: string, readFile: (p: string) => string): GatewayConfig {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (code ?? 'unreadable');
    throw new RotateError('CONFIG_NOT_FOUND', `cannot read the gateway config at ${path} (from ${via}): ${why}; set KEEPER_GATEWAY_CONFIG to its path or GATEWAY_CONFIG to its base64`);
  }
  return toGatewayConfig(parseConfigText(text, path), path);
}
