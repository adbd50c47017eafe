// Runs a post-rotation script end to end, exactly as the Keeper Gateway does: a child process of this Node,
// the script's source through tsx, one base64 line (encodeGatewayInput) on stdin, the gateway's KSM config in
// KEEPER_GATEWAY_CONFIG, and a fresh sandbox on port 0 for the services. Shared by every target's e2e tests.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { encodeGatewayInput } from '../../src/gateway/input.js';
import { type Sandbox, type SandboxOptions, startSandbox } from '../../src/sandbox/sandbox.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Extra command-line arguments, e.g. ['--dry-run']. */
  args?: string[];
  /** Extra environment (wins over the sandbox's). */
  env?: Record<string, string>;
  /** KEEPER_ROTATE_DEADLINE_SECONDS for the run (default 30: no case here needs longer). */
  deadlineSeconds?: number;
  /** Kill the child after this long (default: the deadline plus the script's own 15 s grace, plus 5 s). */
  killAfterMs?: number;
  /** Given the running child, e.g. to SIGKILL it at a chosen moment. */
  onSpawn?: (child: ChildProcess) => void;
}

/** The gateway parameters a fixture in fixtures/ holds (the demo vault's UIDs and IDs). */
export function loadFixture(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(ROOT, 'fixtures', `${name}.json`), 'utf8')) as Record<string, unknown>;
}

/** Spawns `src/entrypoints/<script>.ts` with the given gateway parameters on stdin and waits for it to exit. */
export function runScript(script: string, params: Record<string, unknown>, env: Record<string, string>, options: RunOptions = {}): Promise<ScriptResult> {
  const deadlineSeconds = options.deadlineSeconds ?? 30;
  const child = spawn(process.execPath, ['--import', 'tsx', join('src', 'entrypoints', `${script}.ts`), ...(options.args ?? [])], {
    cwd: ROOT,
    env: { ...process.env, ...env, KEEPER_ROTATE_DEADLINE_SECONDS: String(deadlineSeconds), ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => stdout.push(c));
  child.stderr.on('data', (c: Buffer) => stderr.push(c));
  child.stdin.end(encodeGatewayInput(params) + '\n');
  options.onSpawn?.(child);
  const killAfter = options.killAfterMs ?? (deadlineSeconds + 20) * 1000;
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfter);
  return new Promise((done, fail) => {
    child.on('error', (err) => {
      clearTimeout(timer);
      fail(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8') + (signal ? `\n[run-script: killed by ${signal}]` : ''),
      });
    });
  });
}

export interface ScriptSandbox {
  sandbox: Sandbox;
  /** The folder holding gateway-config.json and ca.pem. */
  dir: string;
  /** The environment a script needs: the sandbox's, with KEEPER_GATEWAY_CONFIG. */
  env: Record<string, string>;
  run(params: Record<string, unknown>, options?: RunOptions): Promise<ScriptResult>;
  close(): Promise<void>;
}

/** Starts a fresh sandbox (port 0, config files in a temp folder) bound to one script. */
export async function startScriptSandbox(script: string, options: Omit<SandboxOptions, 'dir'> = {}): Promise<ScriptSandbox> {
  const dir = mkdtempSync(join(tmpdir(), `keeper-rotate-${script}-`));
  let sandbox: Sandbox;
  try {
    sandbox = await startSandbox({ ...options, dir });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  if (!sandbox.env.KEEPER_GATEWAY_CONFIG) throw new Error('the sandbox wrote no gateway config');
  const env = { ...sandbox.env };
  return {
    sandbox,
    dir,
    env,
    run: (params, runOptions) => runScript(script, params, env, runOptions),
    close: async () => {
      await sandbox.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
