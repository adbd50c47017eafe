// The bundles a gateway runs: built by `npm run build`, copied alone into an empty folder (no node_modules
// anywhere up the tree that could hide a missing dependency), and run there as the gateway runs them.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeGatewayInput } from '../src/gateway/input.js';
import { readText } from '../src/keeper/record.js';
import { startSandbox, type Sandbox } from '../src/sandbox/sandbox.js';

const ROOT = resolve(import.meta.dirname, '..');
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const SCRIPTS = readdirSync(join(ROOT, 'src', 'entrypoints')).filter((f) => f.endsWith('.ts') && f !== 'entry.ts').map((f) => f.slice(0, -3));
const built = mkdtempSync(join(tmpdir(), 'keeper-rotate-built-'));
const empty = mkdtempSync(join(tmpdir(), 'keeper-rotate-empty-'));
const sandboxDir = mkdtempSync(join(tmpdir(), 'keeper-rotate-bundle-sandbox-'));
let sandbox: Sandbox;
/** The hidden field each script rewrites (a new script adds its line here, or the test fails on it). */
const SECRET_FIELD: Record<string, string> = {
  'azure-app-secret': 'client_secret',
  'aws-iam-access-key': 'aws_secret_access_key',
  'wiz-service-account': 'client_secret',
};

before(async () => {
  const build = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/build.ts', '--outdir', built], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(build.status, 0, build.stderr);
  for (const name of SCRIPTS) copyFileSync(join(built, `${name}.cjs`), join(empty, `${name}.cjs`));
  sandbox = await startSandbox({ dir: sandboxDir });
});

after(async () => {
  await sandbox?.close();
  for (const d of [built, empty, sandboxDir]) rmSync(d, { recursive: true, force: true });
});

function run(name: string, args: string[], stdin: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    // Only what a gateway host has: PATH and the variables the run needs; no NODE_PATH, cwd in the empty folder.
    const child = spawn(process.execPath, [join(empty, `${name}.cjs`), ...args], { cwd: empty, env: { PATH: process.env.PATH, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.stdin.end(stdin);
    child.on('close', (code) => done({ code: code ?? 1, stdout, stderr }));
  });
}

describe('bundles', () => {
  test('one file per script, starting with the node shebang', () => {
    for (const name of SCRIPTS) assert.match(readFileSync(join(empty, `${name}.cjs`), 'utf8'), /^#!\/usr\/bin\/env node\n/);
    assert.ok(SCRIPTS.includes('azure-app-secret') && SCRIPTS.includes('aws-iam-access-key'));
  });

  for (const name of SCRIPTS) {
    test(`${name}: --version and --help work from an empty folder`, async () => {
      const v = await run(name, ['--version'], '');
      assert.equal(v.code, 0, v.stderr);
      assert.equal(v.stdout, `${name} ${version}\n`);
      const h = await run(name, ['--help'], '');
      assert.equal(h.code, 0, h.stderr);
      assert.match(h.stdout, /PAM User record fields:/);
    });

    test(`${name}: rotates the demo record from an empty folder, as the gateway runs it`, async () => {
      const fixture = JSON.parse(readFileSync(join(ROOT, 'fixtures', `${name}.json`), 'utf8')) as Record<string, unknown>;
      const uid = fixture.userRecordUid as string;
      const before = sandbox.ksm.readRecord(uid)!;
      const r = await run(name, [], encodeGatewayInput(fixture) + '\n', sandbox.env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^${name}: rotated: `));
      const after = sandbox.ksm.readRecord(uid)!;
      assert.ok(after.revision > before.revision, 'the record was saved');
      assert.notEqual(readText(after.data, SECRET_FIELD[name] ?? ''), readText(before.data, SECRET_FIELD[name] ?? ''), 'the record holds a new secret');
    });
  }
});
