// Names from outside printed through every path to stdout and stderr: the text and JSON step logs, the summary
// line, the error line (a RotateError's, and the catch-all's for any other thrown value), and --doctor. The values
// come from where a hostile party puts them: a record's title and type (its editor), a Wiz service account's name
// (whoever administers Wiz). No raw control character may reach the output; each must show as a visible escape.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runScript, type ScriptDefinition } from '../../src/cli/main.js';
import { RotateError } from '../../src/errors.js';
import { encodeGatewayInput } from '../../src/gateway/input.js';
import type { RecordData } from '../../src/keeper/record-data.js';
import { Logger, escapeControls } from '../../src/log.js';
import { rotationScript } from '../../src/pipeline/rotate.js';
import { DEMO } from '../../src/sandbox/demo-vault.js';
import { type Sandbox, startSandbox } from '../../src/sandbox/sandbox.js';
import { azureAppSecret } from '../../src/targets/azure-app-secret/index.js';
import { wizServiceAccount } from '../../src/targets/wiz-service-account/index.js';
import { HOSTILE } from './bad-input-corpus.js';

/** Every character a line may not carry raw; the line breaks that end lines are split off first. */
const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
/** What HOSTILE's characters look like escaped. */
const ESCAPED = ['\\u001b[31m', '\\u001b]8;;https://attacker.example/\\u0007', '\\r', '\\u202e', '\\u009b', '\\u2066'];

let sandbox: Sandbox;
let dir: string;
let env: Record<string, string>;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kr-hostile-'));
  sandbox = await startSandbox({ dir });
  env = { ...sandbox.env, KEEPER_ROTATE_STATE_DIR: join(dir, 'state'), KEEPER_ROTATE_DEADLINE_SECONDS: '60' };
  // A Wiz account whose name a Wiz admin made hostile, rotating itself from a record whose editor did the same.
  const a = sandbox.wiz.createServiceAccount({ name: HOSTILE, expiresAt: new Date(Date.now() + 10 * 86_400_000) });
  const data: RecordData = {
    title: HOSTILE,
    type: 'pamUser',
    fields: [{ type: 'login', value: [a.clientId] }],
    custom: [{ type: 'secret', label: 'client_secret', value: [a.clientSecret] }],
  };
  sandbox.ksm.seedRecord({ uid: 'HostileWizRecord000001', folderUid: sandbox.demo!.folderUid, data });
  const typed: RecordData = { ...structuredClone(data), type: `pamUser${HOSTILE}` };
  sandbox.ksm.seedRecord({ uid: 'HostileTypeRecord00001', folderUid: sandbox.demo!.folderUid, data: typed });
});
after(async () => {
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(script: ScriptDefinition, uid: string, argv: string[] = [], extra: Record<string, string> = {}, provider?: string): Promise<Out> {
  let stdout = '';
  let stderr = '';
  const line = encodeGatewayInput({ userRecordUid: uid, ...(provider ? { providerRecordUid: provider } : {}), records: [{ uid, title: 'PAM User' }] }) + '\n';
  const code = await runScript(script, {
    argv,
    stdin: (async function* () {
      yield line;
    })(),
    stdout: { write: (c: string) => (stdout += c) },
    stderr: { write: (c: string) => (stderr += c) },
    env: { ...env, ...extra },
    platform: process.platform,
  });
  return { code, stdout, stderr };
}

/** No raw control character on any line of either stream, and HOSTILE shown escaped at least once. */
function assertEscaped(out: Out, where: string): void {
  const both = `--- stdout\n${out.stdout}--- stderr\n${out.stderr}`;
  for (const [name, text] of [['stdout', out.stdout], ['stderr', out.stderr]] as const) {
    for (const line of text.split('\n')) assert.doesNotMatch(line, RAW_CONTROL, `${where}: a raw control character on ${name}: ${JSON.stringify(line)}`);
  }
  for (const e of ESCAPED) assert.ok(both.includes(e), `${where}: the escape ${e} is not shown\n${both}`);
}

const WIZ = rotationScript(wizServiceAccount);

describe('hostile names reach no terminal raw', () => {
  test('escapeControls: each kind of control character shown, printable text kept, JSON still JSON, twice the same as once', () => {
    const cases: Array<[string, string]> = [
      ['\u0000', '\\u0000'],
      ['\u0007', '\\u0007'],
      ['\t', '\\t'],
      ['\n', '\\n'],
      ['\r', '\\r'],
      ['\u001b', '\\u001b'],
      ['\u007f', '\\u007f'],
      ['\u0085', '\\u0085'],
      ['\u009b', '\\u009b'],
      ['\u061c', '\\u061c'],
      ['\u200e', '\\u200e'],
      ['\u200f', '\\u200f'],
      ['\u2028', '\\u2028'],
      ['\u202a', '\\u202a'],
      ['\u202e', '\\u202e'],
      ['\u2066', '\\u2066'],
      ['\u2069', '\\u2069'],
    ];
    for (const [raw, shown] of cases) assert.equal(escapeControls(`a${raw}b`), `a${shown}b`);
    assert.equal(escapeControls('plain ASCII, ünïcödé, 日本語, emoji 🔑'), 'plain ASCII, ünïcödé, 日本語, emoji 🔑');
    const once = escapeControls(HOSTILE);
    assert.equal(escapeControls(once), once);
    assert.doesNotMatch(once, RAW_CONTROL);
    const json = escapeControls(JSON.stringify({ name: HOSTILE }));
    assert.doesNotMatch(json, RAW_CONTROL);
    assert.equal((JSON.parse(json) as { name: string }).name, HOSTILE, 'a JSON line still parses to the very value');
  });

  test('the Logger, text and JSON, every level and the summary line, message and fields', () => {
    for (const format of ['text', 'json'] as const) {
      let stdout = '';
      let stderr = '';
      const log = new Logger({ script: 't', format, stdout: { write: (c: string) => (stdout += c) }, stderr: { write: (c: string) => (stderr += c) } });
      log.info(HOSTILE, HOSTILE, { name: HOSTILE, list: [HOSTILE, 'x'] });
      log.warn('step', HOSTILE);
      log.error('step', HOSTILE);
      log.result('failed', HOSTILE, { target: HOSTILE });
      assertEscaped({ code: 0, stdout, stderr }, format);
      if (format === 'json') {
        for (const line of [...stdout.split('\n'), ...stderr.split('\n')].filter(Boolean)) {
          const parsed = JSON.parse(line) as { message: string };
          assert.equal(parsed.message, HOSTILE, 'the JSON value is the very name, for whoever parses it');
        }
      }
    }
  });

  test('a run, text log: the Wiz account name in the plan lines and the summary', async () => {
    const out = await run(WIZ, 'HostileWizRecord000001', ['--dry-run']);
    assert.equal(out.code, 0, out.stdout + out.stderr);
    assert.match(out.stderr, /plan: Wiz service account x\\u001b\[31mred/);
    assertEscaped(out, 'text run');
  });

  test('a run, JSON log: every line parses, and none carries a raw control character', async () => {
    const out = await run(WIZ, 'HostileWizRecord000001', ['--dry-run', '--log-format=json']);
    assert.equal(out.code, 0, out.stdout + out.stderr);
    assertEscaped(out, 'json run');
    const messages = out.stderr.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { message: string }).message);
    assert.ok(messages.some((m) => m.includes(HOSTILE)), 'the account name is in the JSON, whole');
  });

  test('the error line: a record type, and a Wiz account name refused by the allow-list, text and JSON', async () => {
    for (const argv of [[], ['--log-format=json']]) {
      const typed = await run(WIZ, 'HostileTypeRecord00001', argv);
      assert.equal(typed.code, 2, typed.stderr);
      assert.match(typed.stderr, /^keeper-rotate: RECORD_WRONG_TYPE: record HostileTypeRecord00001 is a "pamUserx\\u001b\[31m/m);
      assertEscaped(typed, 'record type');
      const named = await run(WIZ, 'HostileWizRecord000001', argv, { KEEPER_ROTATE_ALLOW_WIZ_ACCOUNTS: 'demo-*' });
      assert.equal(named.code, 2, named.stderr);
      assert.match(named.stderr, /^keeper-rotate: TARGET_NOT_ALLOWED: Wiz service account x\\u001b\[31m/m);
      assertEscaped(named, 'allow-list refusal');
    }
  });

  test('the catch-all: any thrown value, and a RotateError, quoting the name', async () => {
    for (const thrown of [new Error(HOSTILE), HOSTILE, new RotateError('TARGET_REQUEST_FAILED', HOSTILE)]) {
      const script: ScriptDefinition = {
        name: 'hostile',
        summary: 'throws',
        help: '',
        run: async () => {
          throw thrown;
        },
      };
      const out = await run(script, 'HostileWizRecord000001');
      assert.ok(out.code === 1 || out.code === 3, out.stderr);
      assert.equal(out.stderr.split('\n').filter((l) => l.startsWith('keeper-rotate: ')).length, 1, out.stderr);
      for (const line of (out.stdout + out.stderr).split('\n')) assert.doesNotMatch(line, RAW_CONTROL, JSON.stringify(line));
      assert.ok(out.stderr.includes('\\u001b[31m'), out.stderr);
    }
  });

  test('--doctor: the record title and the Wiz account name', async () => {
    const out = await run(WIZ, 'HostileWizRecord000001', ['--doctor']);
    assert.equal(out.code, 0, out.stdout + out.stderr);
    assert.match(out.stdout, /^ok {4}PAM User record: .*"x\\u001b\[31mred/m);
    assert.match(out.stdout, /^ok {4}target: the admin signs in and reads Wiz service account x\\u001b\[31mred/m);
    assertEscaped(out, 'doctor');
    const typed = await run(WIZ, 'HostileTypeRecord00001', ['--doctor']);
    assert.equal(typed.code, 2, typed.stdout);
    assert.match(typed.stdout, /^FAIL {2}PAM User record: RECORD_WRONG_TYPE: .*\\u202e/m);
    for (const line of typed.stdout.split('\n')) assert.doesNotMatch(line, RAW_CONTROL);
  });

  test('a control: the Azure demo record, untouched, prints nothing that needed escaping', async () => {
    const out = await run(rotationScript(azureAppSecret), DEMO.azure.userRecordUid, ['--dry-run'], {}, DEMO.pamConfigurationUid);
    assert.equal(out.code, 0, out.stdout + out.stderr);
    assert.ok(!(out.stdout + out.stderr).includes('\\u'), out.stderr);
  });
});
