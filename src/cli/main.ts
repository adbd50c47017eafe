// The entry every script shares: flags, stdin, config, vault, then the script's own work, and one exit code
// that tells the truth. Nothing touches the network until the input and the config have been validated.
import { DEFAULT_REQUEST_TIMEOUT_MS, Deadline } from '../deadline.js';
import { ExitCode, RotateError, describe, isRotateError } from '../errors.js';
import { type GatewayInput, parseGatewayInput, readAll } from '../gateway/input.js';
import { useProxyEnvironment } from '../http/proxy.js';
import { type GatewayConfig, loadGatewayConfig } from '../keeper/config.js';
import { KeeperVault } from '../keeper/vault.js';
import { openStateDir } from '../state/dir.js';
import { Journal } from '../state/journal.js';
import { type LogFormat, Logger, type Writable, escapeControls } from '../log.js';
import { redact } from '../secret.js';
import { VERSION } from '../version.js';

/** How the script was started, for --help: a bundle run by `node`, or a target of the keeper-rotate executable. */
export interface Invocation {
  /** The command that runs this script, as the usage lines show it (`node azure-app-secret.cjs`). */
  command: string;
  /** How a PAM User record runs it: the rest of the sentence after "The gateway pipes ... to stdin;". */
  attach: string;
}

/** The .cjs bundle's own invocation: the file itself, attached with the command "node". */
export function bundleInvocation(name: string): Invocation {
  return { command: `node ${name}.cjs`, attach: 'attach this file\nto a PAM User record with the command "node" and mark the record "Run PAM scripts only".' };
}

export interface ScriptIo {
  argv: readonly string[];
  /** How --help says to run the script (default: the .cjs bundle's). */
  invocation?: Invocation;
  stdin: AsyncIterable<Buffer | string>;
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
}

export interface RunContext {
  input: GatewayInput;
  config: GatewayConfig;
  vault: KeeperVault;
  log: Logger;
  deadline: Deadline;
  env: NodeJS.ProcessEnv;
  dryRun: boolean;
  /** This gateway's private state folder (locks, journals), created before any network call. */
  stateDir: string;
  journal: Journal;
}

export interface ScriptOutcome {
  exitCode: ExitCode;
  /** Short word for the summary line: rotated, skipped, planned, ... */
  outcome: string;
  message: string;
  fields?: Record<string, string | number | boolean | readonly string[] | undefined>;
}

export interface ScriptDefinition {
  name: string;
  summary: string;
  /** Extra help text: the record fields and settings this script reads. */
  help: string;
  run(ctx: RunContext): Promise<ScriptOutcome>;
  /** `--doctor`: checks everything a run needs, one line per check on stdout, changing nothing; returns the exit code. */
  doctor?(io: DoctorIo): Promise<number>;
}

/** What `--doctor` gets: the raw input and environment, since validating them is part of its report. */
export interface DoctorIo {
  stdin: AsyncIterable<Buffer | string>;
  /** `--record UID [--config UID]`: the gateway input is built from these, and stdin is not read. */
  record?: string | undefined;
  config?: string | undefined;
  stdout: Writable;
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  log: Logger;
  deadline: Deadline;
  /** How long stdin may stay silent before INPUT_TIMEOUT (KEEPER_ROTATE_STDIN_TIMEOUT_SECONDS). */
  stdinIdleMs: number;
}

interface Flags {
  help: boolean;
  version: boolean;
  dryRun: boolean;
  doctor: boolean;
  logFormat: LogFormat;
  /** `--record UID` and `--config UID` (or `--record=UID`): only with --doctor; checked as the gateway's UIDs are. */
  record?: string;
  config?: string;
}

export const DEFAULT_DEADLINE_SECONDS = 600;
/** The gateway writes its line as it starts the script; a pipe silent this long is not the gateway's. */
export const DEFAULT_STDIN_TIMEOUT_SECONDS = 10;
/** Extra time past the run's deadline before the process ends itself (entry.ts), whatever is still pending. */
export const HARD_STOP_GRACE_MS = 15_000;

function parseFlags(argv: readonly string[], env: NodeJS.ProcessEnv): Flags {
  const flags: Flags = { help: false, version: false, dryRun: false, doctor: false, logFormat: env.KEEPER_ROTATE_LOG === 'json' ? 'json' : 'text' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const valued = /^--(record|config)(?:=(.*))?$/s.exec(arg);
    if (valued) {
      const name = valued[1] as 'record' | 'config';
      const value = valued[2] ?? argv[++i];
      // A flag right after it is a forgotten value, not a UID (one that starts with -- goes as --record=UID).
      if (value === undefined || (valued[2] === undefined && value.startsWith('--'))) throw new RotateError('USAGE', `--${name} needs a record UID; see --help`);
      if (flags[name] !== undefined) throw new RotateError('USAGE', `--${name} is given twice; see --help`);
      flags[name] = value;
      continue;
    }
    if (arg === '--help' || arg === '-h') flags.help = true;
    else if (arg === '--version' || arg === '-v') flags.version = true;
    else if (arg === '--dry-run') flags.dryRun = true;
    else if (arg === '--doctor') flags.doctor = true;
    else if (arg === '--log-format=json' || arg === '--json') flags.logFormat = 'json';
    else if (arg === '--log-format=text') flags.logFormat = 'text';
    // Never echo an unknown argument in full: someone may have pasted a secret on the command line.
    else throw new RotateError('USAGE', `unknown argument ${JSON.stringify(arg.slice(0, 20))}; see --help`);
  }
  if (flags.config !== undefined && flags.record === undefined) throw new RotateError('USAGE', '--config names the PAM configuration of the --record that --doctor checks; give --record too');
  if (flags.record !== undefined && !flags.doctor && !flags.help && !flags.version) {
    throw new RotateError('USAGE', '--record is for --doctor: a rotation reads the gateway input on stdin, as the gateway pipes it');
  }
  return flags;
}

function secondsFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > max) {
    throw new RotateError('SETTING_INVALID', `${name} must be a number of seconds above 0 and at most ${max}`);
  }
  return seconds;
}

export function deadlineFrom(env: NodeJS.ProcessEnv): Deadline {
  const total = secondsFrom(env, 'KEEPER_ROTATE_DEADLINE_SECONDS', DEFAULT_DEADLINE_SECONDS, 86_400);
  const perCall = secondsFrom(env, 'KEEPER_ROTATE_REQUEST_TIMEOUT_SECONDS', DEFAULT_REQUEST_TIMEOUT_MS / 1000, 3_600);
  return new Deadline(total * 1000, Date.now, perCall * 1000);
}

function helpText(script: ScriptDefinition, invocation: Invocation): string {
  const run = invocation.command;
  return `${script.name} ${VERSION}: ${script.summary}

A Keeper Gateway post-rotation script. The gateway pipes one base64 JSON line to stdin; ${invocation.attach}

Usage: ${run} [--dry-run] [--log-format=json] < gateway-input
       ${run} --doctor --record RECORD_UID [--config PAM_CONFIG_UID]
       ${run} --doctor < gateway-input
       ${run} --help | --version

  --dry-run           plan the rotation and print it; change nothing
  --doctor            check the config, Keeper, the record, its fields and settings, and the admin
                      sign-in on the target, one line per check; change nothing
  --record UID        with --doctor: the PAM User record to check, instead of a gateway input on stdin
  --config UID        with --record: its PAM configuration (where the admin credentials usually are)
  --log-format=json   step lines on stderr as JSON (also KEEPER_ROTATE_LOG=json)

Environment:
  KEEPER_GATEWAY_CONFIG           path of the gateway's KSM config (read, never written)
  GATEWAY_CONFIG                  the config as base64, when there is no file (Docker)
  KEEPER_ROTATE_DEADLINE_SECONDS  bound for the whole run (default ${DEFAULT_DEADLINE_SECONDS})
  KEEPER_ROTATE_REQUEST_TIMEOUT_SECONDS  bound for one network call (default ${DEFAULT_REQUEST_TIMEOUT_MS / 1000})
  KEEPER_ROTATE_STDIN_TIMEOUT_SECONDS  how long stdin may stay silent (default ${DEFAULT_STDIN_TIMEOUT_SECONDS})
  KEEPER_ROTATE_STATE_DIR         folder for locks and journals (default: the user's state folder);
                                  it must be the user's own, mode 0700, and not a symbolic link
  HTTPS_PROXY, HTTP_PROXY, NO_PROXY  the proxy for https and for http URLs, and the hosts reached directly
                                  (lower-case names too; curl's rules; see "Proxies and private CAs")
  NODE_EXTRA_CA_CERTS             a PEM file of extra CAs to trust (a private CA, a TLS-inspecting proxy's)
  KEEPER_ROTATE_ALLOW_AWS_USERS, KEEPER_ROTATE_ALLOW_AZURE_APPS, KEEPER_ROTATE_ALLOW_WIZ_ACCOUNTS
                                  what this gateway may rotate, whatever a record names (comma-separated;
                                  see "Security model" in the README); --doctor shows the one in force

${script.help}
Exit codes: 0 done (or nothing to do), 1 internal error, 2 rejected before any change, 3 failed and the
record still holds its previous credential, 4 rotated but cleanup unfinished, 5 needs attention.
Every error line starts with "keeper-rotate: CODE:"; the README explains each code.
`;
}

/** Runs one script and returns its exit code; never throws. */
export async function runScript(script: ScriptDefinition, io: ScriptIo): Promise<number> {
  let log = new Logger({ script: script.name, format: 'text', stderr: io.stderr, stdout: io.stdout });
  let vault: KeeperVault | undefined;
  try {
    const flags = parseFlags(io.argv, io.env);
    log = new Logger({ script: script.name, format: flags.logFormat, stderr: io.stderr, stdout: io.stdout });
    if (flags.help) {
      io.stdout.write(helpText(script, io.invocation ?? bundleInvocation(script.name)));
      return ExitCode.Ok;
    }
    if (flags.version) {
      io.stdout.write(`${script.name} ${VERSION}\n`);
      return ExitCode.Ok;
    }
    const deadline = deadlineFrom(io.env);
    const stdinIdleMs = secondsFrom(io.env, 'KEEPER_ROTATE_STDIN_TIMEOUT_SECONDS', DEFAULT_STDIN_TIMEOUT_SECONDS, 3_600) * 1000;
    if (flags.doctor) {
      if (!script.doctor) throw new RotateError('USAGE', `${script.name} has no --doctor`);
      return await script.doctor({ stdin: io.stdin, record: flags.record, config: flags.config, stdout: io.stdout, env: io.env, platform: io.platform, log, deadline, stdinIdleMs });
    }
    // Every client's connections route by these (src/http/proxy.ts); a proxy URL it cannot use stops the run here.
    useProxyEnvironment(io.env);
    const input = parseGatewayInput(await readAll(io.stdin, { idleMs: stdinIdleMs }));
    const config = loadGatewayConfig({ env: io.env, platform: io.platform });
    const stateDir = openStateDir(config, { env: io.env, platform: io.platform });
    log.info('input', 'gateway input accepted', { user_record: input.userRecordUid, records: input.records.length, config: config.source });
    vault = new KeeperVault(config, { deadline });
    const journal = new Journal(stateDir, config);
    const outcome = await script.run({ input, config, vault, log, deadline, env: io.env, dryRun: flags.dryRun, stateDir, journal });
    log.result(outcome.outcome, outcome.message, { exit: outcome.exitCode, ...outcome.fields });
    return outcome.exitCode;
  } catch (err) {
    const error = isRotateError(err) ? err : new RotateError('INTERNAL', `unexpected error: ${describe(err)}`, { cause: err });
    // Escaped again after scrubbing: this line bypasses the logger, and it may quote anything a thrown value held.
    io.stderr.write(escapeControls(redact(error.toLine())) + '\n');
    log.result('failed', error.code, { exit: error.exitCode });
    return error.exitCode;
  } finally {
    vault?.close();
  }
}
