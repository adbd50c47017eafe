// `npm run replay -- FIXTURE [--script NAME] [--sandbox DIR] [--dry-run] [--doctor] [--source]`: replays gateway input
// the way the gateway sends it (base64 JSON on stdin of a child process) and reports the exit code.
// Without --sandbox and without a gateway config in the environment, it starts a sandbox of its own.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { encodeGatewayInput } from '../src/gateway/input.js';
import { startSandbox, type Sandbox } from '../src/sandbox/sandbox.js';

const EXIT_MEANINGS: Record<number, string> = {
  0: 'done (or nothing to do)',
  1: 'internal error',
  2: 'rejected before any change',
  3: 'failed; the record still holds its previous credential',
  4: 'rotated, but cleanup is unfinished',
  5: 'needs attention',
};

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { script: { type: 'string' }, sandbox: { type: 'string' }, 'dry-run': { type: 'boolean' }, doctor: { type: 'boolean' }, source: { type: 'boolean' } },
});
const fixturePath = positionals[0];
if (!fixturePath) {
  console.error('usage: npm run replay -- FIXTURE [--script NAME] [--sandbox DIR] [--dry-run] [--doctor] [--source]');
  process.exit(2);
}
const script = values.script ?? basename(fixturePath).replace(/\.json$/, '');
const fixture = JSON.parse(readFileSync(fixturePath, 'utf8')) as Record<string, unknown>;
const line = encodeGatewayInput(fixture);

const built = resolve('dist', `${script}.cjs`);
const source = resolve('src', 'entrypoints', `${script}.ts`);
const useBuilt = !values.source && existsSync(built);
if (!useBuilt && !existsSync(source)) {
  console.error(`no script named ${script} (looked for ${built} and ${source})`);
  process.exit(2);
}
const command = useBuilt ? [built] : ['--import', 'tsx', source];

let env: NodeJS.ProcessEnv = { ...process.env };
let sandbox: Sandbox | undefined;
let tempDir: string | undefined;
if (values.sandbox) {
  for (const l of readFileSync(join(values.sandbox, 'env'), 'utf8').split('\n')) {
    const eq = l.indexOf('=');
    if (eq > 0) env[l.slice(0, eq)] = l.slice(eq + 1);
  }
} else if (!env.KEEPER_GATEWAY_CONFIG && !env.GATEWAY_CONFIG) {
  tempDir = mkdtempSync(join(tmpdir(), 'keeper-rotate-replay-'));
  sandbox = await startSandbox({ dir: tempDir });
  env = { ...env, ...sandbox.env };
  console.error(`replay: started a sandbox of its own (control API ${sandbox.controlUrl})`);
}

console.error(`replay: ${useBuilt ? built : source} < ${fixturePath}`);
const flags = [...(values['dry-run'] ? ['--dry-run'] : []), ...(values.doctor ? ['--doctor'] : [])];
const child = spawn(process.execPath, [...command, ...flags], { env, stdio: ['pipe', 'inherit', 'inherit'] });
child.stdin.end(line + '\n');
const code: number = await new Promise((done) => child.on('exit', (c, signal) => done(c ?? (signal ? 128 : 1))));
console.error(`replay: exit code ${code}: ${EXIT_MEANINGS[code] ?? 'unknown'}`);
await sandbox?.close();
if (tempDir) rmSync(tempDir, { recursive: true, force: true });
process.exit(code);
