// aws-iam-access-key end to end: the real script in a child process, fed the way the Keeper Gateway feeds it,
// against a fresh sandbox per test (KSM over HTTPS, IAM and STS with real SigV4). After every run the sandbox's
// own state is checked: the record's key authenticates, the user never holds more than two keys, exit 0 means
// a finished rotation, exit 3 means the record holds what it held before, and no secret reached the output.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cloneData, readText, writeText } from '../../src/keeper/record.js';
import type { AccessKeyState, AwsAccount } from '../../src/sandbox/aws/index.js';
import { DEMO } from '../../src/sandbox/demo-vault.js';
import type { RequestLogEntry } from '../../src/sandbox/faults.js';
import type { RecordView } from '../../src/sandbox/ksm/index.js';
import type { Sandbox } from '../../src/sandbox/sandbox.js';
import { type RunOptions, type ScriptResult, type ScriptSandbox, loadFixture, startScriptSandbox } from '../helpers/run-script.js';

const SCRIPT = 'aws-iam-access-key';
const W = DEMO.aws;
const UID = W.userRecordUid;
const ERROR_LINE = /^keeper-rotate: ([A-Z_]+): /;
const TEST = { timeout: 90_000 };

interface Env {
  s: ScriptSandbox;
  sb: Sandbox;
  aws: AwsAccount;
  /** Every secret the account ever handed out, deleted keys included. */
  values: Set<string>;
}

async function withSandbox(fn: (env: Env) => Promise<void>): Promise<void> {
  const s = await startScriptSandbox(SCRIPT);
  try {
    const aws = s.sandbox.aws;
    const values = new Set<string>();
    const remember = (k: AccessKeyState) => (values.add(k.secretAccessKey), k);
    const create = aws.createAccessKey.bind(aws);
    const seed = aws.seedAccessKey.bind(aws);
    aws.createAccessKey = (user) => remember(create(user));
    aws.seedAccessKey = (user, options) => remember(seed(user, options));
    for (const user of [W.userName, W.adminUserName]) for (const k of aws.listKeys(user)) values.add(k.secretAccessKey);
    await fn({ s, sb: s.sandbox, aws, values });
  } finally {
    await s.close();
  }
}

interface Run extends ScriptResult {
  error: string | undefined;
  before: RecordView;
  after: RecordView;
  keysBefore: AccessKeyState[];
  keysAfter: AccessKeyState[];
  calls: RequestLogEntry[];
}

const text = (view: RecordView, label: string) => readText(view.data, label);
const ids = (keys: AccessKeyState[]) => keys.map((k) => k.accessKeyId).sort();
const count = (calls: RequestLogEntry[], service: string, operation?: string) =>
  calls.filter((c) => c.service === service && (operation === undefined || c.operation === operation)).length;
const describeRun = (run: ScriptResult) => `exit ${run.code}\n--- stdout\n${run.stdout}--- stderr\n${run.stderr}`;

interface RotateOptions {
  params?: Record<string, unknown>;
  run?: RunOptions;
  expect?: 'rotated' | 'unchanged';
  killed?: boolean;
}

async function rotate(env: Env, options: RotateOptions = {}): Promise<Run> {
  const before = env.sb.ksm.readRecord(UID)!;
  const keysBefore = env.aws.listKeys(W.userName);
  const mark = env.sb.log.entries().length;
  const result = await env.s.run(options.params ?? loadFixture(SCRIPT), options.run);
  const run: Run = {
    ...result,
    error: undefined,
    before,
    after: env.sb.ksm.readRecord(UID)!,
    keysBefore,
    keysAfter: env.aws.listKeys(W.userName),
    calls: env.sb.log.entries().slice(mark),
  };
  const errorLines = result.stderr.split('\n').filter((l) => l.startsWith('keeper-rotate: '));
  if (errorLines.length) run.error = ERROR_LINE.exec(errorLines[0]!)?.[1];
  checkInvariant(env, run, options.expect ?? 'rotated', errorLines, options.killed === true);
  return run;
}

function checkInvariant(env: Env, run: Run, expect: 'rotated' | 'unchanged', errorLines: string[], killed: boolean): void {
  const why = describeRun(run);
  const id = text(run.after, 'aws_access_key_id');
  const secret = text(run.after, 'aws_secret_access_key');
  // A record fresh from the template holds no key yet; a run that changed nothing (exit 2) leaves it so.
  const heldNone = text(run.before, 'aws_access_key_id') === 'set-by-rotation';
  if (!(heldNone && run.code === 2)) {
    assert.ok(id && secret, `the record holds no key after the run\n${why}`);
    assert.ok(env.aws.checkKey(id, secret), `the record's key does not authenticate after the run\n${why}`);
  }
  assert.ok(run.keysAfter.length <= 2, `the user holds ${run.keysAfter.length} keys\n${why}`);
  const output = run.stdout + run.stderr;
  const leaked = [...env.values].filter((v) => output.includes(v)).length;
  assert.equal(leaked, 0, `${leaked} secret value(s) appear in the script's output`);
  if (killed) {
    assert.match(run.stderr, /killed by SIGKILL/, `the run was meant to be killed\n${why}`);
    return;
  }
  assert.equal(run.stdout.split('\n').filter(Boolean).length, 1, `stdout must be one summary line\n${why}`);
  const idBefore = text(run.before, 'aws_access_key_id');
  const made = ids(run.keysAfter).filter((k) => !ids(run.keysBefore).includes(k));
  if (run.code === 0) {
    assert.equal(errorLines.length, 0, why);
    assert.equal(run.after.transaction, undefined, `exit 0 left a Keeper transaction open\n${why}`);
    if (expect === 'rotated') {
      assert.match(run.stdout, /^aws-iam-access-key: rotated: rotated to /, why);
      assert.notEqual(id, idBefore, `exit 0 but the record holds the old key\n${why}`);
      assert.deepEqual(made, [id], `exit 0: the one new key is the record's\n${why}`);
      const last = text(run.after, 'previous_aws_access_key_id') || undefined;
      if (run.keysBefore.some((k) => k.accessKeyId === idBefore)) assert.equal(last, idBefore, `CURRENT became LAST\n${why}`);
      // Nothing untracked: every key the user keeps is the record's CURRENT or LAST (a record with no CURRENT
      // adopts the user's one key as LAST).
      const untracked = ids(run.keysAfter).filter((k) => k !== id && k !== last);
      assert.deepEqual(untracked, [], `exit 0 left keys the record does not name\n${why}`);
    } else {
      assert.equal(run.after.revision, run.before.revision, `the record was written\n${why}`);
      assert.deepEqual(ids(run.keysAfter), ids(run.keysBefore), `the user's keys changed\n${why}`);
    }
    return;
  }
  assert.equal(errorLines.length, 1, `a failed run prints exactly one keeper-rotate line\n${why}`);
  if (run.code === 2) {
    // Only what the target alone can refuse (ADOPTION_AMBIGUOUS) may read it first; nothing else reaches AWS.
    const reads = run.error === 'ADOPTION_AMBIGUOUS' ? ['iam/ListAccessKeys'] : [];
    const aws = run.calls.filter((c) => c.service === 'iam' || c.service === 'sts').map((c) => `${c.service}/${c.operation}`);
    assert.deepEqual(aws, reads, `exit 2 after talking to AWS\n${why}`);
    assert.deepEqual(run.keysAfter, run.keysBefore, `exit 2 changed the user's keys\n${why}`);
    assert.equal(run.after.revision, run.before.revision, why);
    assert.equal(count(run.calls, 'ksm', 'update_secret'), 0, why);
    assert.deepEqual(run.after.data, run.before.data);
  } else if (run.code === 3) {
    assert.equal(id, idBefore, `exit 3 but the record changed keys\n${why}`);
    assert.equal(run.after.transaction, undefined, `exit 3 left a Keeper transaction open\n${why}`);
    assert.deepEqual(made, [], `exit 3 but a key this run made is still there\n${why}`);
  } else if (run.code === 4) {
    assert.notEqual(id, idBefore, `exit 4 but the record was not rotated\n${why}`);
  } else {
    assert.equal(run.code, 5, `unexpected exit code\n${why}`);
  }
}

function edit(sb: Sandbox, changes: Record<string, string | null>): void {
  const data = cloneData(sb.ksm.readRecord(UID)!.data);
  for (const [label, value] of Object.entries(changes)) {
    if (label === 'login') data.fields = data.fields.map((f) => (f.type === 'login' ? { ...f, value: [value ?? ''] } : f));
    else if (value === null) data.custom = (data.custom ?? []).filter((f) => f.label !== label);
    else writeText(data, { label, kind: label === 'aws_secret_access_key' ? 'secret' : 'text' }, value);
  }
  sb.ksm.editRecord(UID, data);
}

/** Gateway parameters for a record that rotates itself: no PAM configuration holds AWS keys. */
function selfParams(): Record<string, unknown> {
  const p = loadFixture(SCRIPT);
  return { ...p, providerRecordUid: undefined, records: [(p.records as Array<{ uid: string }>).find((r) => r.uid === UID)] };
}

describe('aws-iam-access-key end to end', { concurrency: 4 }, () => {
  test('the fixture: CURRENT becomes LAST and stays valid; the next run deletes LAST, never CURRENT', TEST, () =>
    withSandbox(async (env) => {
      const first = await rotate(env);
      assert.equal(first.code, 0, describeRun(first));
      const original = text(first.before, 'aws_access_key_id')!;
      const originalSecret = text(first.before, 'aws_secret_access_key')!;
      assert.ok(env.aws.checkKey(original, originalSecret), 'LAST (the key the record held) still authenticates');
      assert.equal(text(first.after, 'previous_aws_access_key_id'), original);
      assert.match(text(first.after, 'CreateDate')!, /^\d{4}-\d\d-\d\dT/);
      assert.equal(count(first.calls, 'iam', 'CreateAccessKey'), 1);
      // One accepted verification; the sandbox's default propagation delay may refuse a try or two before it.
      assert.equal(first.calls.filter((c) => c.operation === 'GetCallerIdentity' && c.status < 400).length, 1);

      const second = await rotate(env);
      assert.equal(second.code, 0, describeRun(second));
      const current1 = text(first.after, 'aws_access_key_id')!;
      assert.deepEqual(ids(second.keysAfter), [current1, text(second.after, 'aws_access_key_id')!].sort(), 'LAST went, CURRENT stayed');
      assert.equal(text(second.after, 'Access_Key_ID_Removed_during_previous_rotation'), original);
      assert.equal(env.aws.checkKey(original, originalSecret), false);
      assert.match(second.stderr, new RegExp(`removed ${original} \\(LAST key`));
    }),
  );

  test('an unknown second key: refused with its ID, nothing changed; removed when delete_all_keys_before_rotating is on', TEST, () =>
    withSandbox(async (env) => {
      const stranger = env.aws.seedAccessKey(W.userName, { createDate: new Date(Date.now() - 2 * 3600_000) });
      const refused = await rotate(env);
      assert.equal(refused.code, 3, describeRun(refused));
      assert.equal(refused.error, 'TARGET_LIMIT_REACHED');
      assert.match(refused.stderr, new RegExp(stranger.accessKeyId));
      assert.equal(count(refused.calls, 'iam', 'CreateAccessKey') + count(refused.calls, 'iam', 'DeleteAccessKey'), 0);

      edit(env.sb, { delete_all_keys_before_rotating: 'true' });
      const opted = await rotate(env);
      assert.equal(opted.code, 0, describeRun(opted));
      assert.ok(!ids(opted.keysAfter).includes(stranger.accessKeyId));
      assert.ok(ids(opted.keysAfter).includes(text(opted.before, 'aws_access_key_id')!), 'CURRENT is never deleted, even when opted in');
    }),
  );

  // A record imported from the template (templates/aws-iam-access-key.csv) leaves the fields the rotation writes
  // as placeholders; its user already has the key its consumers use.
  const asTemplate = { aws_access_key_id: 'set-by-rotation', aws_secret_access_key: 'set-by-rotation', CreateDate: 'set-by-rotation', previous_aws_access_key_id: null };

  test("a record fresh from the template, its user's key in use: run 1 adopts that key as LAST (still valid), run 2 deletes it", TEST, () =>
    withSandbox(async (env) => {
      const [inUse, ...rest] = env.aws.listKeys(W.userName);
      assert.ok(inUse && rest.length === 0, 'the demo user has one key');
      edit(env.sb, asTemplate);
      const first = await rotate(env);
      assert.equal(first.code, 0, describeRun(first));
      assert.equal(text(first.after, 'previous_aws_access_key_id'), inUse.accessKeyId, 'the record names the key in use as LAST');
      assert.ok(env.aws.checkKey(inUse.accessKeyId, inUse.secretAccessKey), 'LAST still authenticates until the next rotation');
      assert.match(first.stderr, new RegExp(`adopting ${inUse.accessKeyId} as LAST`));
      assert.equal(count(first.calls, 'iam', 'DeleteAccessKey') + count(first.calls, 'iam', 'UpdateAccessKey'), 0, 'run 1 retires nothing');

      const second = await rotate(env);
      assert.equal(second.code, 0, describeRun(second));
      assert.equal(text(second.after, 'Access_Key_ID_Removed_during_previous_rotation'), inUse.accessKeyId);
      assert.equal(env.aws.getKey(inUse.accessKeyId), undefined, 'the adopted key was deleted as LAST');
      assert.deepEqual(ids(second.keysAfter), [text(first.after, 'aws_access_key_id')!, text(second.after, 'aws_access_key_id')!].sort());
    }),
  );

  test('a record fresh from the template with deactivate_previous_key: run 1 deactivates the adopted key once the new one verifies', TEST, () =>
    withSandbox(async (env) => {
      const [inUse] = env.aws.listKeys(W.userName);
      edit(env.sb, { ...asTemplate, deactivate_previous_key: 'true' });
      const run = await rotate(env);
      assert.equal(run.code, 0, describeRun(run));
      assert.equal(text(run.after, 'previous_aws_access_key_id'), inUse!.accessKeyId);
      assert.equal(env.aws.getKey(inUse!.accessKeyId)?.status, 'Inactive', describeRun(run));
    }),
  );

  test('a record fresh from the template, its user with two keys it does not know: ADOPTION_AMBIGUOUS, exit 2, nothing changed; naming one as LAST adopts the other', TEST, () =>
    withSandbox(async (env) => {
      const [inUse] = env.aws.listKeys(W.userName);
      const other = env.aws.seedAccessKey(W.userName, { createDate: new Date(Date.now() - 2 * 86_400_000) });
      edit(env.sb, asTemplate);
      const refused = await rotate(env, { expect: 'unchanged' });
      assert.equal(refused.code, 2, describeRun(refused));
      assert.equal(refused.error, 'ADOPTION_AMBIGUOUS');
      assert.match(refused.stderr, new RegExp(`${inUse!.accessKeyId} \\(Active, made [\\d-]+\\) and ${other.accessKeyId} `));
      assert.match(refused.stderr, /put the ID of the key that may be deleted now in previous_aws_access_key_id/);
      // Nothing changed, per the sandbox: one read of the key list, no Keeper write, both keys as they were.
      assert.deepEqual(refused.calls.filter((c) => c.service !== 'ksm').map((c) => `${c.service}/${c.operation}`), ['iam/ListAccessKeys']);
      assert.deepEqual(refused.calls.filter((c) => c.service === 'ksm').map((c) => c.operation), ['get_secret']);
      assert.deepEqual(refused.keysAfter, refused.keysBefore);

      // As the message says: the key that may go now as LAST.
      edit(env.sb, { previous_aws_access_key_id: other.accessKeyId });
      const adopted = await rotate(env);
      assert.equal(adopted.code, 0, describeRun(adopted));
      assert.equal(env.aws.getKey(other.accessKeyId), undefined, 'the key named LAST was deleted before creating');
      assert.equal(text(adopted.after, 'previous_aws_access_key_id'), inUse!.accessKeyId, 'the other is adopted as LAST');
      assert.ok(env.aws.checkKey(inUse!.accessKeyId, inUse!.secretAccessKey));
    }),
  );

  test('delete_all_keys_before_rotating leaves an unknown key made within the longest run (it may be another run\'s new key): refused, nothing changed', TEST, () =>
    withSandbox(async (env) => {
      // The tests' runs have a 30 s deadline: the longest run is 45 s, plus a minute of clock skew.
      const fresh = env.aws.seedAccessKey(W.userName, { createDate: new Date(Date.now() - 60_000) });
      edit(env.sb, { delete_all_keys_before_rotating: 'true' });
      const refused = await rotate(env);
      assert.equal(refused.code, 3, describeRun(refused));
      assert.equal(refused.error, 'TARGET_LIMIT_REACHED');
      assert.match(refused.stderr, new RegExp(`${fresh.accessKeyId} is not in the record as this run read it, but is made 1 min ago`));
      assert.equal(count(refused.calls, 'iam', 'CreateAccessKey') + count(refused.calls, 'iam', 'DeleteAccessKey'), 0);
      assert.deepEqual(ids(refused.keysAfter), ids(refused.keysBefore));
    }),
  );

  test('a user rotating its own key (self permissions), then deactivating LAST with the new key', TEST, () =>
    withSandbox(async (env) => {
      env.aws.setPermissions(W.userName, 'self');
      const first = await rotate(env, { params: selfParams() });
      assert.equal(first.code, 0, describeRun(first));
      assert.match(first.stderr, /using admin credentials from the PAM User record/);
      edit(env.sb, { deactivate_previous_key: 'true' });
      const second = await rotate(env, { params: selfParams() });
      assert.equal(second.code, 0, describeRun(second));
      const last = second.keysAfter.find((k) => k.accessKeyId === text(first.after, 'aws_access_key_id'));
      assert.equal(last?.status, 'Inactive', describeRun(second));
      assert.match(second.stdout, /deactivated=/);
    }),
  );

  test('admin through an attached record that assumes a role', TEST, () =>
    withSandbox(async (env) => {
      env.aws.createUser({ userName: 'jump-user', permissions: [] });
      const jump = env.aws.seedAccessKey('jump-user');
      const role = env.aws.createRole({ roleName: 'key-rotator', trustedUsers: ['jump-user'], permissions: ['iam:*AccessKey*'] });
      const p = loadFixture(SCRIPT);
      const attached = { uid: 'AttachedAwsAdminRec001', title: 'AWS rotation credential', aws_access_key_id: jump.accessKeyId, aws_secret_access_key: jump.secretAccessKey, role_arn: role.arn };
      const run = await rotate(env, { params: { ...p, records: [...(p.records as object[]), attached] } });
      assert.equal(run.code, 0, describeRun(run));
      assert.match(run.stderr, /using admin credentials from attached record AttachedAwsAdminRec001/);
      assert.equal(count(run.calls, 'sts', 'AssumeRole'), 1);
    }),
  );

  test('IAM eventual consistency is waited out; past verify_timeout_seconds the new key is deleted', TEST, () =>
    withSandbox(async (env) => {
      env.aws.setPropagationDelay(1500);
      const waited = await rotate(env);
      assert.equal(waited.code, 0, describeRun(waited));
      assert.ok(Number(/authenticates \(attempts=(\d+)\)/.exec(waited.stderr)?.[1]) > 1, describeRun(waited));

      env.aws.setPropagationDelay(60_000);
      edit(env.sb, { verify_timeout_seconds: '1' });
      const gaveUp = await rotate(env);
      assert.equal(gaveUp.code, 3, describeRun(gaveUp));
      assert.equal(gaveUp.error, 'VERIFY_FAILED');
      assert.equal(count(gaveUp.calls, 'iam', 'DeleteAccessKey'), 2, 'LAST before creating, then the unverified key');
    }),
  );

  test('throttling: reads are retried; CreateAccessKey is not (a retry could make a second key)', TEST, () =>
    withSandbox(async (env) => {
      env.sb.faults.arm({ service: 'iam', operation: 'ListAccessKeys', kind: 'throttle' });
      const retried = await rotate(env);
      assert.equal(retried.code, 0, describeRun(retried));
      assert.equal(count(retried.calls, 'iam', 'ListAccessKeys'), 2);

      env.sb.faults.arm({ service: 'iam', operation: 'CreateAccessKey', kind: 'throttle' });
      const throttled = await rotate(env);
      assert.equal(throttled.code, 3, describeRun(throttled));
      assert.equal(throttled.error, 'TARGET_THROTTLED');
      assert.equal(count(throttled.calls, 'iam', 'CreateAccessKey'), 1);
    }),
  );

  for (const login of ['bad user!', 'x'.repeat(65), '../etc']) {
    test(`an invalid user name (${JSON.stringify(login.slice(0, 12))}) is rejected before any AWS call`, TEST, () =>
      withSandbox(async (env) => {
        edit(env.sb, { login });
        const run = await rotate(env);
        assert.equal(run.code, 2, describeRun(run));
        assert.equal(run.error, 'RECORD_FIELD_INVALID');
      }),
    );
  }

  test('a bad setting is rejected before any AWS call', TEST, () =>
    withSandbox(async (env) => {
      edit(env.sb, { admin_credentials: 'sometimes' });
      const run = await rotate(env);
      assert.equal(run.code, 2, describeRun(run));
      assert.equal(run.error, 'SETTING_INVALID');
    }),
  );

  test('STS throttles the verification: throttled is not yet, and the key verifies once STS answers', TEST, () =>
    withSandbox(async (env) => {
      env.sb.faults.arm({ service: 'sts', operation: 'GetCallerIdentity', kind: 'throttle', times: 3 });
      const run = await rotate(env);
      assert.equal(run.code, 0, describeRun(run));
      assert.deepEqual(run.calls.filter((c) => c.operation === 'GetCallerIdentity').map((c) => c.fault ?? 'ok'), ['throttle', 'throttle', 'throttle', 'ok']);
      assert.match(run.stderr, /verify: throttled \(STS throttled the request \(Throttling\)\)/);
    }),
  );

  const failures: Array<[string, string, string, number, string]> = [
    ['the Keeper save fails', 'ksm', 'update_secret', 3, 'KEEPER_REQUEST_FAILED'],
    // Verification reports why the new key failed under VERIFY_FAILED, whatever the cause.
    ['STS fails while verifying', 'sts', 'GetCallerIdentity', 3, 'VERIFY_FAILED'],
    ['deleting LAST fails', 'iam', 'DeleteAccessKey', 3, 'TARGET_REQUEST_FAILED'],
    // A 5xx create may have made a key IAM does not list yet (its reads lag): 5 until the next run has looked.
    ['CreateAccessKey fails', 'iam', 'CreateAccessKey', 5, 'TARGET_REQUEST_FAILED'],
  ];
  for (const [name, service, operation, code, error] of failures) {
    test(`${name}: exit ${code}, CURRENT still works, and the next run finishes the rotation`, TEST, () =>
      withSandbox(async (env) => {
        await rotate(env); // so the user has CURRENT and LAST, and a LAST to delete
        // Three in a row: the SDK retries a 5xx on reads and deletes (never on CreateAccessKey).
        env.sb.faults.arm({ service, operation, kind: 'status', status: 500, times: 3, body: '<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceFailure</Code><Message>boom</Message></Error></ErrorResponse>' });
        const run = await rotate(env);
        assert.equal(run.code, code, describeRun(run));
        assert.equal(run.error, error);
        env.sb.faults.clear();
        const next = await rotate(env);
        assert.equal(next.code, 0, describeRun(next));
        assert.equal(next.keysAfter.length, 2);
      }),
    );
  }

  test('deactivating LAST fails: exit 4, the record holds the new verified key', TEST, () =>
    withSandbox(async (env) => {
      edit(env.sb, { deactivate_previous_key: 'true' });
      env.sb.faults.arm({ service: 'iam', operation: 'UpdateAccessKey', kind: 'status', status: 500, times: 3, body: '<ErrorResponse><Error><Code>ServiceFailure</Code><Message>boom</Message></Error></ErrorResponse>' });
      const run = await rotate(env);
      assert.equal(run.code, 4, describeRun(run));
      assert.equal(run.error, 'CLEANUP_INCOMPLETE');
    }),
  );

  test('--dry-run: plans, exits 0, changes nothing', TEST, () =>
    withSandbox(async (env) => {
      await rotate(env);
      const run = await rotate(env, { expect: 'unchanged', run: { args: ['--dry-run'] } });
      assert.equal(run.code, 0, describeRun(run));
      assert.match(run.stderr, /would remove \S+ before creating \(LAST key/);
    }),
  );

  for (const [service, operation] of [
    ['iam', 'CreateAccessKey'],
    ['ksm', 'update_secret'],
    ['sts', 'GetCallerIdentity'],
    ['ksm', 'finalize_secret_update'],
  ] as const) {
    test(`killed during ${operation}: the next run recovers, and the user ends with CURRENT and LAST only`, TEST, () =>
      withSandbox(async (env) => {
        await rotate(env);
        env.sb.faults.arm({ service, operation, kind: 'delay', delayMs: 300 });
        let victim: ChildProcess | undefined;
        const stop = env.sb.faults.onFire(() => victim?.kill('SIGKILL'));
        await rotate(env, { killed: true, run: { onSpawn: (child) => (victim = child) } });
        stop();
        await sleep(500);
        const next = await rotate(env);
        assert.equal(next.code, 0, describeRun(next));
        assert.deepEqual(ids(next.keysAfter), [text(next.after, 'aws_access_key_id')!, text(next.after, 'previous_aws_access_key_id')!].sort(), `only CURRENT and LAST remain\n${describeRun(next)}`);
      }),
    );
  }
});

// Keeper's AWS guide: the PAM configuration's Access Key ID and Secret Access Key say USE_INSTANCE_ROLE when the
// gateway runs on EC2 with an instance role. The sandbox's IMDS stands for that instance; the child's credential
// chain sees nothing else (no keys in its environment, no profile files).
describe('aws-iam-access-key with USE_INSTANCE_ROLE: the gateway host\'s own identity, asked for by the PAM configuration', { concurrency: 4 }, () => {
  const MARKER = 'USE_INSTANCE_ROLE';
  const ACCESS_KEY_ACTIONS = ['iam:ListAccessKeys', 'iam:CreateAccessKey', 'iam:DeleteAccessKey', 'iam:UpdateAccessKey'];
  const hostOnly = (env: Env): RunOptions => ({
    env: {
      AWS_ACCESS_KEY_ID: '',
      AWS_SECRET_ACCESS_KEY: '',
      AWS_SESSION_TOKEN: '',
      AWS_PROFILE: '',
      AWS_SHARED_CREDENTIALS_FILE: `${env.s.dir}/no-aws-credentials`,
      AWS_CONFIG_FILE: `${env.s.dir}/no-aws-config`,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: '',
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '',
      AWS_WEB_IDENTITY_TOKEN_FILE: '',
    },
  });
  const editConfig = (sb: Sandbox, changes: Record<string, string>) => {
    const data = cloneData(sb.ksm.readRecord(W.pamConfigurationUid)!.data);
    for (const [label, value] of Object.entries(changes)) writeText(data, { label, kind: label === 'accessSecretKey' ? 'secret' : 'text' }, value);
    sb.ksm.editRecord(W.pamConfigurationUid, data);
  };
  const instanceRole = (env: Env, roleName: string, permissions: string[]) => {
    const role = env.aws.createRole({ roleName, trustedUsers: [], trustedServices: ['ec2.amazonaws.com'], permissions });
    env.sb.imds.attachRole(roleName);
    return role;
  };

  test('the PAM configuration in Keeper says USE_INSTANCE_ROLE: the instance role rotates, IMDS asked once per run; without a role, ADMIN_CREDENTIALS_NOT_FOUND (exit 2) before any AWS call', TEST, () =>
    withSandbox(async (env) => {
      editConfig(env.sb, { accessKeyId: MARKER, accessSecretKey: MARKER });
      const none = await rotate(env, { run: hostOnly(env) });
      assert.equal(none.code, 2, describeRun(none));
      assert.equal(none.error, 'ADMIN_CREDENTIALS_NOT_FOUND');
      assert.match(none.stderr, new RegExp(`PAM configuration ${W.pamConfigurationUid} asks for the gateway host's own credentials \\(${MARKER}\\), but the gateway host's AWS credential chain gave none`));

      instanceRole(env, 'gateway-instance', ACCESS_KEY_ACTIONS);
      const first = await rotate(env, { run: hostOnly(env) });
      assert.equal(first.code, 0, describeRun(first));
      assert.match(first.stderr, new RegExp(`using admin credentials from the gateway host's AWS credential chain .*, as PAM configuration ${W.pamConfigurationUid} asks \\(${MARKER}\\)`));
      assert.deepEqual(first.calls.filter((c) => c.service === 'imds').map((c) => `${c.operation} ${c.status}`), ['GetToken 200', 'GetRoleName 200', 'GetCredentials 200']);
      const second = await rotate(env, { run: hostOnly(env) });
      assert.equal(second.code, 0, describeRun(second));
      assert.equal(count(second.calls, 'iam', 'DeleteAccessKey'), 1, 'LAST deleted with the role');
    }),
  );

  test("the role's own identity signs: a role without iam:CreateAccessKey is refused as that role", TEST, () =>
    withSandbox(async (env) => {
      editConfig(env.sb, { accessKeyId: MARKER, accessSecretKey: MARKER });
      instanceRole(env, 'read-only-instance', ['iam:ListAccessKeys']);
      const run = await rotate(env, { run: hostOnly(env) });
      assert.equal(run.code, 3, describeRun(run));
      assert.equal(run.error, 'TARGET_PERMISSION_DENIED');
      assert.match(run.stderr, new RegExp(`assumed-role/read-only-instance/${env.sb.imds.instanceId} is not authorized to perform: iam:CreateAccessKey`));
    }),
  );

  test('USE_INSTANCE_ROLE in the PAM configuration of the gateway input, with a role to assume: the instance role assumes it (role chaining)', TEST, () =>
    withSandbox(async (env) => {
      instanceRole(env, 'gateway-instance', ['sts:AssumeRole']);
      const rotator = env.aws.createRole({ roleName: 'key-rotator', trustedUsers: [], trustedRoles: ['gateway-instance'], permissions: ACCESS_KEY_ACTIONS });
      const p = loadFixture(SCRIPT);
      const records = (p.records as Array<{ uid: string }>).map((r) => (r.uid === W.pamConfigurationUid ? { ...r, accessKeyId: MARKER, accessSecretKey: MARKER.toLowerCase(), roleArn: rotator.arn } : r));
      const run = await rotate(env, { params: { ...p, records }, run: hostOnly(env) });
      assert.equal(run.code, 0, describeRun(run));
      assert.equal(count(run.calls, 'sts', 'AssumeRole'), 1);
      assert.equal(count(run.calls, 'imds', 'GetCredentials'), 1);
    }),
  );

  test("the chain's other links: a profile in the shared credentials file signs; the chain's own warning comes through the script's log", TEST, () =>
    withSandbox(async (env) => {
      editConfig(env.sb, { accessKeyId: MARKER, accessSecretKey: MARKER });
      env.aws.createUser({ userName: 'gateway-profile-user', permissions: ACCESS_KEY_ACTIONS });
      const key = env.aws.seedAccessKey('gateway-profile-user');
      env.values.add(key.secretAccessKey);
      const file = `${env.s.dir}/aws-credentials`;
      writeFileSync(file, `[gateway]\naws_access_key_id = ${key.accessKeyId}\naws_secret_access_key = ${key.secretAccessKey}\n`, { mode: 0o600 });
      const base = hostOnly(env).env!;
      // AWS_PROFILE beside keys in the environment: the SDK takes the profile, and warns that both are set.
      const run = await rotate(env, { run: { env: { ...base, AWS_SHARED_CREDENTIALS_FILE: file, AWS_PROFILE: 'gateway', AWS_ACCESS_KEY_ID: 'AKIAIGNOREDBYPROFILE', AWS_SECRET_ACCESS_KEY: 'ignored-because-a-profile-is-set-000000' } } });
      assert.equal(run.code, 0, describeRun(run));
      assert.equal(env.aws.getKey(key.accessKeyId)?.lastUsed?.serviceName, 'iam', 'the profile key signed the IAM calls');
      const warning = run.stderr.split('\n').filter((l) => l.includes('Multiple credential sources'));
      assert.ok(warning.length > 0, describeRun(run));
      for (const line of warning) assert.match(line, /^aws-iam-access-key: WARN admin: AWS credential chain: /, 'the warning went through the logger, not straight to stderr');
      assert.equal(count(run.calls, 'imds'), 0, 'the profile came first; IMDS was not asked');
    }),
  );

  // Issue 16: the other way the gateway owner hands out the host's identity is the gateway's environment; the record
  // alone never can (test/targets/trust-boundaries.test.ts has the refusals).
  test("KEEPER_ROTATE_AWS_HOST_CREDENTIALS=allow: a record with no keys anywhere rotates with the instance role, so does admin_credentials = host; a misspelt value stops even a USE_INSTANCE_ROLE run", TEST, () =>
    withSandbox(async (env) => {
      const OPT_IN = 'KEEPER_ROTATE_AWS_HOST_CREDENTIALS';
      instanceRole(env, 'gateway-instance', ACCESS_KEY_ACTIONS);
      const allowed = { env: { ...hostOnly(env).env, [OPT_IN]: 'allow' } };
      edit(env.sb, { aws_secret_access_key: null });
      const fallback = await rotate(env, { params: selfParams(), run: allowed });
      assert.equal(fallback.code, 0, describeRun(fallback));
      assert.match(fallback.stderr, new RegExp(`using admin credentials from the gateway host's AWS credential chain .*, as the gateway's environment allows \\(${OPT_IN}=allow\\)`));
      assert.equal(count(fallback.calls, 'imds', 'GetCredentials'), 1);

      // The record holds its own key again (the last rotation saved it), and asks for the host instead.
      edit(env.sb, { admin_credentials: 'host' });
      const asked = await rotate(env, { params: selfParams(), run: allowed });
      assert.equal(asked.code, 0, describeRun(asked));
      assert.equal(count(asked.calls, 'imds', 'GetCredentials'), 1, 'the host signed, not the record\'s key');

      editConfig(env.sb, { accessKeyId: MARKER, accessSecretKey: MARKER });
      const typo = await rotate(env, { run: { env: { ...hostOnly(env).env, [OPT_IN]: 'on' } }, expect: 'unchanged' });
      assert.equal(typo.code, 2, describeRun(typo));
      assert.equal(typo.error, 'SETTING_INVALID');
      assert.match(typo.stderr, new RegExp(`${OPT_IN} must be allow, or unset`));
      assert.equal(count(typo.calls, 'imds'), 0);
    }),
  );

  test('--help says the host\'s chain needs the gateway\'s opt-in', TEST, () =>
    withSandbox(async (env) => {
      const help = await env.s.run({}, { args: ['--help'] });
      assert.equal(help.code, 0, describeRun(help));
      const line = help.stdout.split('\n').find((l) => l.trimStart().startsWith('admin_credentials'));
      assert.match(line ?? '', /the host's AWS credential chain if the gateway allows it \(KEEPER_ROTATE_AWS_HOST_CREDENTIALS=allow\); host: .*refused unless the gateway allows it/, help.stdout);
    }),
  );

  test('USE_INSTANCE_ROLE beside a real key in the PAM configuration is refused (ADMIN_CREDENTIALS_INVALID, exit 2), not guessed', TEST, () =>
    withSandbox(async (env) => {
      instanceRole(env, 'gateway-instance', ACCESS_KEY_ACTIONS);
      editConfig(env.sb, { accessKeyId: MARKER });
      const run = await rotate(env, { run: hostOnly(env) });
      assert.equal(run.code, 2, describeRun(run));
      assert.equal(run.error, 'ADMIN_CREDENTIALS_INVALID');
      assert.match(run.stderr, /accessKeyId says USE_INSTANCE_ROLE, but accessSecretKey holds a value/);
      assert.equal(count(run.calls, 'imds'), 0);
    }),
  );
});
