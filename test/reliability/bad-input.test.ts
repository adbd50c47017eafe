// Every case of the bad-input corpus (bad-input-corpus.ts), run in-process through runScript against one sandbox,
// one case at a time. Each case is judged from the sandbox's own state, not from the script's word: exit 2 and
// one `keeper-rotate: CODE: ` line with the expected code; no secret in the output; no request at all for a
// gateway-input case, and only Keeper reads for a record case; not one request to a target service; every vault
// record (content, revision, open transactions) and every target credential as before; no lock or journal left.
// A record-editor case that only the target can refuse (the admin as the target, an allow-list the target's data
// decides) may read the target, and is judged by the request log: not one request that changes a target. Every
// case's output is checked for raw control characters, whatever the case is about.
// The controls at the end run the same harness on the unmodified records (dry run): there the target requests
// show up, so the assertions above can see them.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runScript, type ScriptDefinition } from '../../src/cli/main.js';
import { encodeGatewayInput, parseGatewayInput } from '../../src/gateway/input.js';
import { readUnambiguous } from '../../src/keeper/record.js';
import type { RecordData } from '../../src/keeper/record-data.js';
import { rotationScript } from '../../src/pipeline/rotate.js';
import { DEMO } from '../../src/sandbox/demo-vault.js';
import type { RequestLogEntry } from '../../src/sandbox/faults.js';
import { type Sandbox, startSandbox } from '../../src/sandbox/sandbox.js';
import { awsIamAccessKey } from '../../src/targets/aws-iam-access-key/index.js';
import { azureAppSecret } from '../../src/targets/azure-app-secret/index.js';
import { wizServiceAccount } from '../../src/targets/wiz-service-account/index.js';
import { CORPUS, DEMO_PROVIDER, DEMO_USER, SCRIPTS, type BadInputCase, type ScriptName, type Seeded, caseSecret, gatewayParams } from './bad-input-corpus.js';

const SCRIPT_DEFS: Record<ScriptName, ScriptDefinition> = {
  'azure-app-secret': rotationScript(azureAppSecret),
  'aws-iam-access-key': rotationScript(awsIamAccessKey),
  'wiz-service-account': rotationScript(wizServiceAccount),
};
const TARGET_SERVICES = ['azure', 'iam', 'sts', 'wiz-auth', 'wiz-api'];
/** The requests that change a target; a record-editor case may read the target, never send one of these. */
const TARGET_WRITES = ['addPassword', 'removePassword', 'CreateAccessKey', 'DeleteAccessKey', 'UpdateAccessKey', 'rotateServiceAccountSecret', 'updateServiceAccount'];
/** Any control character a line may not carry raw (the line breaks between lines aside). */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
/** Keeper endpoints that only read; anything else (update_secret, finalize, rollback) is a write. */
const KEEPER_READS = ['get_secret', 'get_folders'];
const ERROR_LINE = /^keeper-rotate: ([A-Z0-9_]+): /;

let sandbox: Sandbox;
let dir: string;
let env: Record<string, string>;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kr-bad-input-'));
  sandbox = await startSandbox({ dir });
  env = { ...sandbox.env, KEEPER_ROTATE_STATE_DIR: join(dir, 'state'), KEEPER_ROTATE_DEADLINE_SECONDS: '60' };
});
after(async () => {
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(script: ScriptName, stdin: string | string[], argv: string[] = [], extraEnv: Record<string, string> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const chunks = typeof stdin === 'string' ? [stdin] : stdin;
  const code = await runScript(SCRIPT_DEFS[script], {
    argv,
    stdin: (async function* () {
      for (const chunk of chunks) yield chunk;
    })(),
    stdout: { write: (c: string) => (stdout += c) },
    stderr: { write: (c: string) => (stderr += c) },
    env: { ...env, ...extraEnv },
    platform: process.platform,
  });
  return { code, stdout, stderr };
}

/**
 * What each target holds now: its credentials, and when each Wiz account last signed in (unless the case may sign
 * in: a sign-in is a read, which Wiz records). Apps and users a case seeded are watched too.
 */
function targetState(signIns = true, watched: Seeded = {}): unknown {
  const apps = [DEMO.azure.adminObjectId, DEMO.azure.targetObjectId, ...(watched.objectId ? [watched.objectId] : [])];
  const azure = apps.map((id) => sandbox.azure.directory.getApp(id)!.secrets.map((s) => [s.keyId, s.secretText, s.endDateTime]));
  const users = [DEMO.aws.userName, DEMO.aws.adminUserName, ...(watched.userName ? [watched.userName] : [])];
  const aws = users.map((u) => sandbox.aws.listKeys(u).map((k) => [k.accessKeyId, k.secretAccessKey, k.status]));
  const wiz = sandbox.wiz.listServiceAccounts().map((a) => [a.clientId, a.clientSecret, a.expiresAt, a.lastRotatedAt, ...(signIns ? [a.lastLoginAt] : [])]);
  return { azure, aws, wiz };
}

/** Every secret value the vault and the targets hold, at least 6 characters (shorter ones are not secrets here). */
function knownSecrets(extra: string[]): string[] {
  const values = new Set(extra);
  for (const r of sandbox.ksm.listRecords()) {
    for (const f of [...r.data.fields, ...(r.data.custom ?? [])]) if (f.type === 'secret') for (const v of f.value) if (typeof v === 'string') values.add(v);
  }
  for (const v of [...sandbox.azure.directory.issued, ...sandbox.aws.issued, ...sandbox.wiz.issued]) values.add(v);
  return [...values].filter((v) => v.length >= 6);
}

/** Lock and journal files anywhere under the state folder. */
function stateFiles(root: string): string[] {
  let names: string[];
  try {
    names = readdirSync(root, { recursive: true }) as string[];
  } catch {
    return [];
  }
  return names.filter((n) => /\.(lock|journal\.json|tmp)$/.test(n));
}

let nextUid = 0;
/** A fresh, well-formed record UID (22 URL-safe characters) that no other case uses. */
const freshUid = () => `BadInputCase${String(++nextUid).padStart(10, '0')}`;

/** Seeds what a record case needs and returns the stdin line that names it, and what its setup seeded. */
function prepareRecordCase(c: Extract<BadInputCase, { kind: 'record' }>, secret: string, index: number): { stdin: string; seeded: Seeded } {
  const uids = { user: freshUid(), provider: DEMO_PROVIDER[c.script] };
  const folderUid = sandbox.demo!.folderUid;
  const seeded = c.setup?.(sandbox, index) ?? {};
  if (c.user !== 'absent') {
    const data = structuredClone(sandbox.ksm.readRecord(DEMO_USER[c.script])!.data) as RecordData;
    data.title = `bad input: ${c.name}`;
    c.user?.(data, secret, seeded);
    sandbox.ksm.seedRecord({ uid: uids.user, folderUid, data });
  }
  if (c.provider) {
    uids.provider = freshUid();
    sandbox.ksm.seedRecord({ uid: uids.provider, folderUid, data: c.provider(secret, seeded) });
  }
  const params = gatewayParams(c.script, uids, secret);
  c.params?.(params, uids, secret, seeded);
  return { stdin: encodeGatewayInput(params) + '\n', seeded };
}

const describeRun = (r: Run, calls: RequestLogEntry[]) =>
  `exit ${r.code}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(0, 2000)}\nrequests: ${calls.map((e) => `${e.service}/${e.operation}`).join(' ') || '(none)'}`;

describe('bad input: a coded error, exit 2, no vault write and no target call', () => {
  test('the corpus covers each script with both kinds of case, at least 50 in all', () => {
    assert.ok(CORPUS.length >= 50, `${CORPUS.length} cases`);
    for (const script of SCRIPTS) {
      for (const kind of ['input', 'record'] as const) {
        assert.ok(CORPUS.filter((c) => c.script === script && c.kind === kind).length >= 10, `${script} has fewer than 10 ${kind} cases`);
      }
    }
    const names = CORPUS.map((c) => `${c.script} ${c.name}`);
    assert.equal(new Set(names).size, names.length, 'case names are unique');
  });

  CORPUS.forEach((c, index) => {
    test(`${c.script}, ${c.kind}: ${c.name} → ${c.code}`, async () => {
      const secret = caseSecret(index);
      const prepared = c.kind === 'input' ? { stdin: c.stdin(secret), seeded: {} } : prepareRecordCase(c, secret, index);
      const reads = c.kind === 'record' && c.targetReads === true;
      const vaultBefore = sandbox.ksm.listRecords();
      const targetBefore = targetState(!reads, prepared.seeded);
      sandbox.log.clear();

      const r = await run(c.script, prepared.stdin, [], c.kind === 'record' ? c.env : {});
      const calls = sandbox.log.entries();
      const why = describeRun(r, calls);

      assert.equal(r.code, 2, why);
      const errors = r.stderr.split('\n').filter((l) => ERROR_LINE.test(l));
      assert.equal(errors.length, 1, `one error line\n${why}`);
      assert.equal(ERROR_LINE.exec(errors[0]!)![1], c.code, why);
      assert.doesNotMatch(errors[0]!, RAW_CONTROL, 'the error line carries no control characters');
      assert.doesNotMatch(r.stdout + r.stderr, RAW_CONTROL, `no raw control character anywhere in the output\n${why}`);
      const summary = r.stdout.split('\n').filter(Boolean);
      assert.equal(summary.length, 1, `one summary line on stdout\n${why}`);
      assert.match(summary[0]!, new RegExp(`^${c.script}: failed: ${c.code}\\b`));

      const output = r.stdout + r.stderr;
      for (const value of knownSecrets([secret, `${secret}-old`, `${secret}-2`])) {
        assert.ok(!output.includes(value), `a secret (${value.length} characters, starting ${value.slice(0, 3)}) reached the output\n${why}`);
      }

      if (reads) {
        const writes = calls.filter((e) => TARGET_SERVICES.includes(e.service) && TARGET_WRITES.includes(e.operation));
        assert.deepEqual(writes, [], `no request that changes a target\n${why}`);
        assert.ok(calls.some((e) => TARGET_SERVICES.includes(e.service)), `only the target could refuse this case, so it was read\n${why}`);
      } else {
        for (const service of TARGET_SERVICES) assert.deepEqual(sandbox.log.entries({ service }), [], `no request to ${service}\n${why}`);
      }
      if (c.kind === 'input') {
        assert.deepEqual(calls, [], `no request at all\n${why}`);
      } else {
        // The target requests are judged above; of the rest, only Keeper reads.
        const writes = calls.filter((e) => !(reads && TARGET_SERVICES.includes(e.service)) && (e.service !== 'ksm' || !KEEPER_READS.includes(e.operation)));
        assert.deepEqual(writes, [], `Keeper reads only\n${why}`);
        assert.ok(sandbox.log.entries({ service: 'ksm', operation: 'get_secret' }).length >= 1, `the records were read: this is a record-content rejection\n${why}`);
      }
      assert.deepEqual(sandbox.ksm.listRecords(), vaultBefore, 'every vault record, its revision and transaction, as before');
      assert.deepEqual(targetState(!reads, prepared.seeded), targetBefore, "every target's credentials as before");
      assert.deepEqual(stateFiles(env.KEEPER_ROTATE_STATE_DIR!), [], 'no lock or journal left behind');
    });
  });

  // The controls: the same harness, the unmodified records, a dry run. The target calls show up here, so the
  // "no request" assertions above are not blind; and a dry run still writes nothing.
  for (const script of SCRIPTS) {
    test(`control: ${script} on an unmodified copy of its demo record (dry run) reaches its target`, async () => {
      const { stdin } = prepareRecordCase({ kind: 'record', script, name: `control ${script}`, code: 'INTERNAL' }, caseSecret(999), 999);
      const vaultBefore = sandbox.ksm.listRecords();
      const targetBefore = targetState();
      sandbox.log.clear();
      const r = await run(script, stdin, ['--dry-run']);
      const calls = sandbox.log.entries();
      const why = describeRun(r, calls);
      assert.equal(r.code, 0, why);
      assert.match(r.stdout, new RegExp(`^${script}: planned: `), why);
      assert.ok(calls.some((e) => TARGET_SERVICES.includes(e.service)), `the target was called\n${why}`);
      assert.ok(calls.some((e) => e.service === 'ksm' && e.operation === 'get_secret'), why);
      assert.deepEqual(calls.filter((e) => e.service === 'ksm' && !KEEPER_READS.includes(e.operation)), [], why);
      assert.deepEqual(sandbox.ksm.listRecords(), vaultBefore);
      if (script !== 'wiz-service-account') assert.deepEqual(targetState(), targetBefore);
    });
  }
});

// The checks this corpus added (duplicate keys, ambiguous fields) must not refuse what the gateway really sends.
describe('what the duplicate checks still accept', () => {
  const U = DEMO.azure.userRecordUid;
  const b64 = (json: string) => Buffer.from(json).toString('base64');

  test('the same key in different objects, a key name as a value, and braces and quotes inside strings', () => {
    const records = b64(JSON.stringify([{ uid: DEMO.pamConfigurationUid, title: '{"uid":"x"}' }, { uid: U, title: 'a\\"}{,"uid"', uid2: 'uid' }]));
    const json = `{"userRecordUid":"${U}","x":{"userRecordUid":1,"y":[{"a":1},{"a":2}]},"z":"userRecordUid","w":"\\\"}{","records":"${records}"}`;
    const input = parseGatewayInput(b64(json));
    assert.equal(input.userRecordUid, U);
    assert.equal(input.records.length, 2);
  });

  test('a field repeated with the same value, or blank, is not ambiguous; two values are', () => {
    const data: RecordData = {
      title: 't',
      type: 'pamUser',
      fields: [{ type: 'login', value: ['bot'] }],
      custom: [
        { type: 'text', label: 'login', value: [' bot '] },
        { type: 'text', label: 'dry_run', value: [] },
        { type: 'text', label: 'dry_run', value: ['true'] },
        { type: 'text', label: 'n', value: ['1'] },
        { type: 'text', label: 'n', value: ['2'] },
      ],
    };
    assert.equal(readUnambiguous(data, 'login', 'RECORD_FIELD_INVALID'), 'bot');
    assert.equal(readUnambiguous(data, 'dry_run', 'SETTING_INVALID'), 'true', 'a blank field does not hide the one that is set');
    assert.throws(() => readUnambiguous(data, 'n', 'SETTING_INVALID'), (e: unknown) => (e as { code?: string }).code === 'SETTING_INVALID');
  });
});
