// The script as the gateway runs it: bad input gets one coded line, exit code 2, and not a single request to
// any sandbox service (the sandbox counts every request it sees).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeGatewayInput } from '../../src/gateway/input.js';
import { type Sandbox, startSandbox } from '../../src/sandbox/sandbox.js';

const SCRIPT = join('src', 'scripts', 'azure-app-secret.ts');
let sandbox: Sandbox;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kr-cli-'));
  sandbox = await startSandbox({ dir });
});
after(async () => {
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
});

function run(stdin: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { env: { ...process.env, ...sandbox.env, ...env }, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.stdin.end(stdin);
    child.on('exit', (code) => done({ code: code ?? -1, stdout, stderr }));
  });
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64');
const USER = 'DemoAzureAppSecret0001';

describe('a script run by the gateway', () => {
  const cases: Array<[string, string, string]> = [
    ['empty stdin', '', 'INPUT_EMPTY'],
    ['bad base64', '%%% not base64 %%%', 'INPUT_NOT_BASE64'],
    ['base64 of something that is not JSON', Buffer.from('hello').toString('base64'), 'INPUT_NOT_JSON'],
    ['a missing userRecordUid', b64({ providerRecordUid: 'DemoPamConfiguration01' }), 'INPUT_INVALID'],
    ['records that are not an array', b64({ userRecordUid: USER, records: b64({ a: 1 }) }), 'INPUT_INVALID'],
    ['a userRecordUid carrying a path', b64({ userRecordUid: '../../../etc/passwd', newPassword: 'Hunter2-secret!' }), 'INPUT_INVALID'],
  ];
  for (const [name, stdin, code] of cases) {
    test(`${name}: ${code}, exit 2, no request anywhere`, async () => {
      sandbox.log.clear();
      const r = await run(stdin);
      assert.equal(r.code, 2);
      const lines = r.stderr.trim().split('\n');
      assert.deepEqual(lines.length, 1, r.stderr);
      assert.match(lines[0]!, new RegExp(`^keeper-rotate: ${code}: `));
      assert.doesNotMatch(r.stdout + r.stderr, /Hunter2-secret/);
      assert.deepEqual(sandbox.log.entries(), []);
    });
  }

  test('a missing gateway config names where it looked, before any request', async () => {
    sandbox.log.clear();
    const r = await run(encodeGatewayInput({ userRecordUid: USER }), [], { KEEPER_GATEWAY_CONFIG: join(dir, 'missing.json') });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^keeper-rotate: CONFIG_NOT_FOUND: .*missing\.json/m);
    assert.deepEqual(sandbox.log.entries(), []);
  });

  for (const name of ['KEEPER_ROTATE_DEADLINE_SECONDS', 'KEEPER_ROTATE_REQUEST_TIMEOUT_SECONDS']) {
    test(`${name} that is not a positive number of seconds: SETTING_INVALID, exit 2, no request`, async () => {
      sandbox.log.clear();
      const r = await run(encodeGatewayInput({ userRecordUid: USER }), [], { [name]: '-5' });
      assert.equal(r.code, 2);
      assert.match(r.stderr, new RegExp(`^keeper-rotate: SETTING_INVALID: ${name} `, 'm'));
      assert.deepEqual(sandbox.log.entries(), []);
    });
  }

  test('an unknown argument is refused without echoing it in full', async () => {
    const r = await run('', ['--client-secret=abcdefghijklmnopqrstuvwxyz']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /USAGE/);
    assert.doesNotMatch(r.stderr, /uvwxyz/);
  });

  test('--help and --version', async () => {
    const help = await run('', ['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /application_object_id/);
    assert.match(help.stdout, /keep_previous_secrets/);
    assert.match(help.stdout, /^ {2}--doctor /m);
    const version = await run('', ['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^azure-app-secret \S+\n$/);
  });

  test('a record the gateway app cannot see: RECORD_NOT_FOUND, exit 2, no target request', async () => {
    sandbox.log.clear();
    const r = await run(encodeGatewayInput({ userRecordUid: 'NoSuchRecord0000000000' }));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^keeper-rotate: RECORD_NOT_FOUND: /m);
    assert.deepEqual(sandbox.log.entries({ service: 'azure' }), []);
  });
});
