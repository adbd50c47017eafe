// The script as the gateway runs it: bad input gets one coded line, exit code 2, and not a single request to
// any sandbox service (the sandbox counts every request it sees).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeGatewayInput } from '../../src/gateway/input.js';
import { type Sandbox, startSandbox } from '../../src/sandbox/sandbox.js';

const SCRIPT = join('src', 'entrypoints', 'azure-app-secret.ts');
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

/** Runs the script with `stdin` piped in and closed; null leaves the pipe open and silent (killed after 60 s). */
function run(stdin: string | null, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { env: { ...process.env, ...sandbox.env, ...env }, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    if (stdin !== null) child.stdin.end(stdin);
    const backstop = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => {
      clearTimeout(backstop);
      child.stdin.destroy();
      done({ code: code ?? -1, stdout, stderr });
    });
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

  for (const name of ['KEEPER_ROTATE_DEADLINE_SECONDS', 'KEEPER_ROTATE_REQUEST_TIMEOUT_SECONDS', 'KEEPER_ROTATE_STDIN_TIMEOUT_SECONDS']) {
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

  test('--help and --version, without reading stdin (left open and silent here)', async () => {
    const help = await run(null, ['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /application_object_id/);
    assert.match(help.stdout, /keep_previous_secrets/);
    assert.match(help.stdout, /^ {2}--doctor /m);
    const version = await run(null, ['--version']);
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

  test('stdin left open and silent: INPUT_TIMEOUT after KEEPER_ROTATE_STDIN_TIMEOUT_SECONDS, exit 2, no request', async () => {
    sandbox.log.clear();
    const r = await run(null, [], { KEEPER_ROTATE_STDIN_TIMEOUT_SECONDS: '1' });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^keeper-rotate: INPUT_TIMEOUT: stdin sent nothing for 1 s /m);
    assert.deepEqual(sandbox.log.entries(), []);
  });

  test('--doctor on silent stdin: the input check FAILs with INPUT_TIMEOUT, exit 2, no request', async () => {
    sandbox.log.clear();
    const r = await run(null, ['--doctor'], { KEEPER_ROTATE_STDIN_TIMEOUT_SECONDS: '1' });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout, /^FAIL {2}gateway input: INPUT_TIMEOUT: /m);
    assert.match(r.stdout, /^skip {2}PAM User record: needs gateway input$/m);
    assert.deepEqual(sandbox.log.entries(), []);
  });

  test('--doctor --record --config with stdin left open and silent: never read, every check runs, exit 0', async () => {
    sandbox.log.clear();
    const r = await run(null, ['--doctor', '--record', USER, '--config', 'DemoPamConfiguration01'], { KEEPER_ROTATE_STDIN_TIMEOUT_SECONDS: '1' });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^azure-app-secret \S+ doctor: checks only, nothing is changed\n/);
    assert.match(r.stdout, /^ok {4}gateway input: PAM User record DemoAzureAppSecret0001, PAM configuration DemoPamConfiguration01, from --record and --config/m);
    assert.match(r.stdout, /^doctor: 12 checks, 12 ok, 0 failed$/m);
  });

  const usage: Array<[string, string[], RegExp]> = [
    ['--record without --doctor', ['--record', USER], /--record is for --doctor/],
    ['--config without --record', ['--doctor', '--config', 'DemoPamConfiguration01'], /give --record too/],
    ['--record with no value', ['--doctor', '--record'], /--record needs a record UID/],
    ['--record followed by a flag', ['--record', '--doctor'], /--record needs a record UID/],
    ['--record twice', ['--doctor', '--record', USER, `--record=${USER}`], /--record is given twice/],
  ];
  for (const [name, args, message] of usage) {
    test(`${name}: USAGE, exit 2, no request`, async () => {
      sandbox.log.clear();
      const r = await run(null, args, { KEEPER_ROTATE_STDIN_TIMEOUT_SECONDS: '1' });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /^keeper-rotate: USAGE: /m);
      assert.match(r.stderr, message);
      assert.deepEqual(sandbox.log.entries(), []);
    });
  }

  const hasScript = process.platform === 'linux' && spawnSync('script', ['--version']).status === 0;
  test('a terminal on stdin: INPUT_NOT_PIPED at once, exit 2, no request', { skip: !hasScript && 'needs util-linux script(1) for a pseudo-terminal' }, async () => {
    sandbox.log.clear();
    const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    // script(1) runs the command on a new pseudo-terminal: its stdin is a terminal, as when started by hand.
    const r = await new Promise<{ code: number; out: string }>((done) => {
      const child = spawn('script', ['-qec', `${quote(process.execPath)} --import tsx ${quote(SCRIPT)}`, '/dev/null'], {
        env: { ...process.env, ...sandbox.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c));
      child.stderr.on('data', (c: Buffer) => (out += c));
      const backstop = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('exit', (code) => {
        clearTimeout(backstop);
        done({ code: code ?? -1, out });
      });
    });
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /^keeper-rotate: INPUT_NOT_PIPED: /m);
    assert.deepEqual(sandbox.log.entries(), []);
  });
});

describe('a state folder that is not private to this user is refused before any request', () => {
  const input = () => encodeGatewayInput({ userRecordUid: USER });
  const refused = async (stateDir: string, message: RegExp) => {
    sandbox.log.clear();
    const r = await run(input(), [], { KEEPER_ROTATE_STATE_DIR: stateDir });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^keeper-rotate: STATE_DIR_UNAVAILABLE: /m);
    assert.match(r.stderr, message);
    assert.deepEqual(sandbox.log.entries(), []);
  };

  test('a symbolic link', async () => {
    const real = join(dir, 'real-state');
    mkdirSync(real, { mode: 0o700 });
    symlinkSync(real, join(dir, 'link-state'));
    await refused(join(dir, 'link-state'), /is a symbolic link/);
  });

  test('group or other permission bits: refused with the command that fixes it, and not changed', async () => {
    const open = join(dir, 'open-state');
    mkdirSync(open);
    chmodSync(open, 0o750);
    const literal = open.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    await refused(open, new RegExp(`has mode 0750; .*: chmod 700 '${literal}'`));
    assert.equal(statSync(open).mode & 0o777, 0o750);
  });

  test('owned by another user', { skip: process.getuid?.() !== 0 && 'only root can give a folder to another user' }, async () => {
    const theirs = join(dir, 'their-state');
    mkdirSync(theirs, { mode: 0o700 });
    chownSync(theirs, 54_321, 54_321);
    await refused(theirs, /belongs to uid 54321, not to this user \(uid 0\); .*chown -R 0 /);
  });
});
