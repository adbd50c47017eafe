// azure-app-secret end to end: the real script in a child process, fed the way the Keeper Gateway feeds it, against
// a fresh sandbox per test (KSM + Entra + Graph over HTTPS). After every run the sandbox's own state is checked
// against the invariant: the record's client_secret still signs in, exit 0 means the rotation finished, the exit
// code tells the truth about what was left behind, and no secret value reached stdout or stderr.
import assert from 'node:assert/strict';
import { withoutOutcome } from '../helpers/outcome.js';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RecordData } from '../../src/keeper/record-data.js';
import { cloneData, readText, writeText } from '../../src/keeper/record.js';
import type { AppIds, Directory, SecretState } from '../../src/sandbox/azure/index.js';
import { DEMO } from '../../src/sandbox/demo-vault.js';
import type { RequestLogEntry } from '../../src/sandbox/faults.js';
import type { RecordView, TransactionModel } from '../../src/sandbox/ksm/index.js';
import type { Sandbox } from '../../src/sandbox/sandbox.js';
import { type RunOptions, type ScriptResult, type ScriptSandbox, loadFixture, startScriptSandbox } from '../helpers/run-script.js';

const SCRIPT = 'azure-app-secret';
const A = DEMO.azure;
const UID = A.userRecordUid;
const DAY = 86_400_000;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ERROR_LINE = /^keeper-rotate: ([A-Z_]+): /;
/** Each test has a sandbox of its own, so tests run side by side; four at a time keep the file near 25 s. */
const CONCURRENCY = 4;
const TEST = { timeout: 90_000 };

// ---------------------------------------------------------------------------------------------------------------
// One fresh sandbox per test, and the invariant checked after every run.

interface Env {
  s: ScriptSandbox;
  sb: Sandbox;
  dir: Directory;
  tenant: string;
  /** Every secret value the directory ever handed out (seeded or added through Graph), removed ones included. */
  values: Set<string>;
}

async function withSandbox(fn: (env: Env) => Promise<void>, options: Parameters<typeof startScriptSandbox>[1] = {}): Promise<void> {
  const s = await startScriptSandbox(SCRIPT, options);
  try {
    const dir = s.sandbox.azure.directory;
    const values = new Set<string>();
    // Removed secrets vanish from the directory, so remember every value at the moment it is made.
    const addSecret = dir.addSecret.bind(dir);
    const addPassword = dir.addPassword.bind(dir);
    dir.addSecret = (id, options) => remember(values, addSecret(id, options));
    dir.addPassword = (id, input) => remember(values, addPassword(id, input));
    for (const id of [A.targetObjectId, A.adminObjectId]) for (const sec of dir.getApp(id)!.secrets) values.add(sec.secretText);
    await fn({ s, sb: s.sandbox, dir, tenant: A.tenantId, values });
  } finally {
    await s.close();
  }
}

function remember(values: Set<string>, secret: SecretState): SecretState {
  values.add(secret.secretText);
  return secret;
}

interface Run extends ScriptResult {
  /** The CODE of the `keeper-rotate: CODE: message` line, when the run failed. */
  error: string | undefined;
  before: RecordView;
  after: RecordView;
  appBefore: SecretState[];
  appAfter: SecretState[];
  /** The sandbox's request log for this run only. */
  calls: RequestLogEntry[];
}

interface RotateOptions {
  /** The PAM User record (default the demo one). */
  uid?: string;
  /** The application the record rotates, by object ID (default the demo target). */
  app?: string;
  params?: Record<string, unknown>;
  run?: RunOptions;
  /** What exit 0 must mean for this run: a finished rotation (default), or nothing changed (dry run). */
  expect?: 'rotated' | 'unchanged';
  /** The test kills this run: only the record invariant and secret hygiene apply, not the exit-code rules. */
  killed?: boolean;
}

const text = (view: RecordView, label: string) => readText(view.data, label);
const keyIds = (list: SecretState[]) => list.map((s) => s.keyId).sort();
const count = (calls: RequestLogEntry[], service: string, operation?: string) =>
  calls.filter((c) => c.service === service && (operation === undefined || c.operation === operation)).length;

async function rotate(env: Env, options: RotateOptions = {}): Promise<Run> {
  const uid = options.uid ?? UID;
  const appRef = options.app ?? A.targetObjectId;
  const { sb, dir } = env;
  const before = sb.ksm.readRecord(uid)!;
  const appBefore = dir.getApp(appRef)!.secrets;
  const mark = sb.log.entries().length;
  const result = await env.s.run(options.params ?? loadFixture(SCRIPT), options.run);
  const after = sb.ksm.readRecord(uid)!;
  const run: Run = {
    ...result,
    error: undefined,
    before,
    after,
    appBefore,
    appAfter: dir.getApp(appRef)!.secrets,
    calls: sb.log.entries().slice(mark),
  };
  const errorLines = result.stderr.split('\n').filter((l) => l.startsWith('keeper-rotate: '));
  if (errorLines.length) run.error = ERROR_LINE.exec(errorLines[0]!)?.[1];
  checkInvariant(env, run, appRef, options.expect ?? 'rotated', errorLines, options.killed === true);
  return run;
}

function describeRun(run: ScriptResult): string {
  return `exit ${run.code}\n--- stdout\n${run.stdout}--- stderr\n${run.stderr}`;
}

function checkInvariant(env: Env, run: Run, appRef: string, expect: 'rotated' | 'unchanged', errorLines: string[], killed: boolean): void {
  const { dir, values } = env;
  const why = describeRun(run);
  const app = dir.getApp(appRef)!;

  // The record's secret authenticates at the token endpoint, whatever happened.
  const secret = text(run.after, 'client_secret');
  assert.ok(secret, `the record has no client_secret after the run\n${why}`);
  assert.ok(dir.checkSecret(app.tenantId, app.appId, secret), `the record's client_secret does not authenticate after the run\n${why}`);

  // No secret value in the output, not even one removed during the run.
  const output = run.stdout + run.stderr;
  let leaked = 0;
  for (const v of values) if (output.includes(v)) leaked += 1;
  for (const v of [text(run.before, 'client_secret'), secret]) if (v && output.includes(v)) leaked += 1;
  assert.equal(leaked, 0, `${leaked} secret value(s) appear in the script's output`);
  if (killed) {
    assert.match(run.stderr, /killed by SIGKILL/, `the run was meant to be killed but ended by itself\n${why}`);
    return;
  }

  // One summary line on stdout, always.
  assert.equal(run.stdout.split('\n').filter(Boolean).length, 1, `stdout must be one summary line\n${why}`);

  const idBefore = text(run.before, 'client_secret_id');
  const idAfter = text(run.after, 'client_secret_id');
  const created = keyIds(run.appAfter).filter((id) => !keyIds(run.appBefore).includes(id));
  if (run.code === 0) {
    assert.equal(errorLines.length, 0, `exit 0 with an error line\n${why}`);
    assert.equal(run.after.transaction, undefined, `exit 0 left a Keeper transaction open\n${why}`);
    if (expect === 'rotated') {
      // Exit 0 only when the rotation finished: a new secret, on the app, saved and finalized in the record.
      assert.match(run.stdout, /^azure-app-secret: rotated: rotated to /, why);
      assert.ok(idAfter && GUID.test(idAfter), `no client_secret_id after exit 0\n${why}`);
      assert.notEqual(idAfter, idBefore, `exit 0 but the record still holds the old secret ID\n${why}`);
      const made = app.secrets.find((s) => s.keyId === idAfter);
      assert.ok(made, `exit 0 but the record's client_secret_id is not on the app\n${why}`);
      assert.equal(made.secretText, secret, 'the record holds the value of another secret');
      assert.equal(text(run.after, 'expires'), made.endDateTime);
      assert.ok(run.stdout.includes(idAfter), 'the summary names the new secret');
    } else {
      assert.equal(run.after.revision, run.before.revision, `the record was written\n${why}`);
      assert.deepEqual(run.after.data, run.before.data);
      assert.deepEqual(keyIds(run.appAfter), keyIds(run.appBefore), `the app's secrets changed\n${why}`);
      assert.equal(count(run.calls, 'azure', 'addPassword') + count(run.calls, 'azure', 'removePassword') + count(run.calls, 'ksm', 'update_secret'), 0);
    }
    return;
  }

  assert.equal(errorLines.length, 1, `a failed run prints exactly one keeper-rotate line\n${why}`);
  assert.ok(run.error, `the error line has no CODE\n${why}`);
  assert.match(run.stdout, /: failed: /, why);
  if (run.code === 2) {
    // Rejected before any change. Only the application read tells that it is the admin app, or outside the
    // allow-list: those refusals read Azure first; every other one is made before any request to Azure.
    if (run.error === 'TARGET_IS_ADMIN' || run.error === 'TARGET_NOT_ALLOWED') {
      assert.equal(count(run.calls, 'azure', 'addPassword') + count(run.calls, 'azure', 'removePassword'), 0, `exit 2 after changing the app\n${why}`);
    } else {
      assert.equal(count(run.calls, 'azure'), 0, `exit 2 after talking to Azure\n${why}`);
    }
    assert.equal(count(run.calls, 'ksm', 'finalize_secret_update') + count(run.calls, 'ksm', 'rollback_secret_update'), 0, `exit 2 after a Keeper transaction\n${why}`);
    assert.equal(count(run.calls, 'ksm', 'update_secret'), 0, `exit 2 after writing to the vault\n${why}`);
    assert.equal(run.after.revision, run.before.revision);
    assert.deepEqual(run.after.data, run.before.data);
    assert.deepEqual(keyIds(run.appAfter), keyIds(run.appBefore));
  } else if (run.code === 3) {
    // Did not happen or was undone: the record holds a secret that was there before the run (the tests that know
    // which one check it), and nothing this run made stays on the app.
    assert.ok(idAfter && keyIds(run.appBefore).includes(idAfter), `exit 3 but the record holds a secret made by this run\n${why}`);
    assert.deepEqual(created, [], `exit 3 but a secret this run created is still on the app\n${why}`);
    assert.equal(run.after.transaction, undefined, `exit 3 left a Keeper transaction open\n${why}`);
  } else if (run.code === 4) {
    // Rotated; only the cleanup is unfinished.
    assert.notEqual(idAfter, idBefore, `exit 4 but the record was not rotated\n${why}`);
    assert.ok(app.secrets.some((s) => s.keyId === idAfter));
    assert.equal(run.after.transaction, undefined);
  } else {
    assert.equal(run.code, 5, `unexpected exit code\n${why}`);
  }
}

/** Edits the record in the vault (a person in the web vault would): labels to values, null removes the field. */
function edit(sb: Sandbox, uid: string, changes: Record<string, string | null>): void {
  const data = cloneData(sb.ksm.readRecord(uid)!.data);
  for (const [label, value] of Object.entries(changes)) {
    if (value === null) data.custom = (data.custom ?? []).filter((f) => f.label !== label);
    else writeText(data, { label, kind: label === 'client_secret' ? 'secret' : 'text' }, value);
  }
  sb.ksm.editRecord(uid, data);
}

/** The record holds exactly the secret it held before the run. */
function assertKeptSecret(run: Run): void {
  assert.equal(text(run.after, 'client_secret_id'), text(run.before, 'client_secret_id'), describeRun(run));
  assert.equal(text(run.after, 'client_secret'), text(run.before, 'client_secret'), 'the record holds its previous secret');
}

const ids = (list: string | undefined) => (list ?? '').split(',').filter(Boolean);
const ourName = (at: Date, uid: string = UID) => `keeper-rotate ${uid} ${at.toISOString().slice(0, 19)}Z`;

/** Puts the demo record in the state one earlier rotation by this tool leaves: current (ours), previous (Keeper's). */
function rotatedOnce(env: Env): { current: SecretState; previous: SecretState } {
  const previousId = text(env.sb.ksm.readRecord(UID)!, 'client_secret_id')!;
  const previous = env.dir.getApp(A.targetObjectId)!.secrets.find((s) => s.keyId === previousId)!;
  const at = new Date(Date.now() - 2 * DAY);
  const current = env.dir.addSecret(A.targetObjectId, { displayName: ourName(at), startDateTime: at });
  edit(env.sb, UID, {
    client_secret_id: current.keyId,
    client_secret: current.secretText,
    expires: current.endDateTime,
    previous_client_secret_ids: previous.keyId,
  });
  return { current, previous };
}

/** A personal-account app (two secrets at most) that the demo admin owns. */
function personalApp(env: Env): AppIds {
  return env.dir.createApp({ tenantId: env.tenant, displayName: 'personal-accounts-app', signInAudience: 'AzureADandPersonalMicrosoftAccount', owners: [A.adminAppId] });
}

function pointRecordAt(env: Env, app: AppIds, current: SecretState, previous?: SecretState): void {
  edit(env.sb, UID, {
    application_object_id: app.objectId,
    client_secret_id: current.keyId,
    client_secret: current.secretText,
    expires: current.endDateTime,
    previous_client_secret_ids: previous ? previous.keyId : null,
  });
}

/** Waits until every armed fault has fired (a `delay` fault fires when its request arrives, before it is handled). */
async function untilFired(sb: Sandbox, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (sb.faults.pending().length > 0) {
    if (Date.now() > end) throw new Error(`the fault on ${what} never fired`);
    await sleep(10);
  }
}

// ---------------------------------------------------------------------------------------------------------------

describe('azure-app-secret end to end', { concurrency: CONCURRENCY }, () => {
  test('happy path: rotates, keeps the replaced secret, and later runs retire only what retention drops', TEST, () =>
    withSandbox(async (env) => {
      const { dir } = env;
      const original = text(env.sb.ksm.readRecord(UID)!, 'client_secret_id')!;
      const foreign = dir.addSecret(A.targetObjectId, { displayName: 'ci-pipeline', startDateTime: new Date(Date.now() - DAY) });

      const first = await rotate(env);
      assert.equal(first.code, 0, describeRun(first));
      const n1 = text(first.after, 'client_secret_id')!;
      assert.deepEqual(ids(text(first.after, 'previous_client_secret_ids')), [original]);
      const expires = Date.parse(text(first.after, 'expires')!);
      assert.ok(Math.abs(expires - (Date.now() + 365 * DAY)) < 5 * 60_000, `expires ${text(first.after, 'expires')} is not about 365 days away`);
      const kept = dir.getApp(A.targetObjectId)!.secrets.find((s) => s.keyId === original)!;
      assert.ok(dir.checkSecret(A.tenantId, A.targetAppId, kept.secretText), 'the replaced secret still authenticates');
      assert.deepEqual(keyIds(first.appAfter), [foreign.keyId, n1, original].sort());
      assert.ok(dir.getApp(A.targetObjectId)!.secrets.find((s) => s.keyId === n1)!.displayName!.startsWith(`keeper-rotate ${UID} `));
      assert.match(first.stdout, new RegExp(`new_id=${n1} `));

      const second = await rotate(env);
      assert.equal(second.code, 0, describeRun(second));
      const n2 = text(second.after, 'client_secret_id')!;
      // The one kept, then the one this run retired (listed so that a failed removal would be retried).
      assert.deepEqual(ids(text(second.after, 'previous_client_secret_ids')), [n1, original]);
      assert.deepEqual(keyIds(second.appAfter), [foreign.keyId, n1, n2].sort(), 'the secret beyond the one kept is retired; the foreign one stays');

      const third = await rotate(env);
      assert.equal(third.code, 0, describeRun(third));
      const n3 = text(third.after, 'client_secret_id')!;
      assert.deepEqual(ids(text(third.after, 'previous_client_secret_ids')), [n2, n1]);
      assert.deepEqual(keyIds(third.appAfter), [foreign.keyId, n2, n3].sort(), `the first secret this tool made is retired\n${describeRun(third)}`);

      edit(env.sb, UID, { remove_other_secrets: 'true' });
      const fourth = await rotate(env);
      assert.equal(fourth.code, 0, describeRun(fourth));
      const n4 = text(fourth.after, 'client_secret_id')!;
      assert.deepEqual(keyIds(fourth.appAfter), [n3, n4].sort(), `remove_other_secrets removes the foreign secret\n${describeRun(fourth)}`);
    }),
  );

  for (const keep of [0, 2]) {
    test(`retention: keep_previous_secrets = ${keep}`, TEST, () =>
      withSandbox(async (env) => {
        const { current, previous } = rotatedOnce(env);
        edit(env.sb, UID, { keep_previous_secrets: String(keep) });
        const run = await rotate(env);
        assert.equal(run.code, 0, describeRun(run));
        const now = text(run.after, 'client_secret_id')!;
        if (keep === 0) {
          assert.deepEqual(keyIds(run.appAfter), [now], `only the new secret is left\n${describeRun(run)}`);
          assert.ok(!env.dir.checkSecret(A.tenantId, A.targetAppId, current.secretText), 'the replaced secret no longer works');
          // Nothing kept; the retired ones stay listed until a run finds them gone.
          assert.deepEqual(new Set(ids(text(run.after, 'previous_client_secret_ids'))), new Set([current.keyId, previous.keyId]));
        } else {
          assert.deepEqual(keyIds(run.appAfter), [current.keyId, previous.keyId, now].sort(), 'two earlier secrets stay');
          assert.deepEqual(ids(text(run.after, 'previous_client_secret_ids')), [current.keyId, previous.keyId]);
          assert.ok(env.dir.checkSecret(A.tenantId, A.targetAppId, previous.secretText));
        }
      }),
    );
  }

  test('application_object_id may hold the client ID', TEST, () =>
    withSandbox(async (env) => {
      edit(env.sb, UID, { application_object_id: A.targetAppId.toUpperCase() });
      const run = await rotate(env);
      assert.equal(run.code, 0, describeRun(run));
      assert.match(run.stderr, new RegExp(`holds the client ID; the object ID is ${A.targetObjectId}`));
    }),
  );

  test('a non-GUID application_object_id is rejected before any request to Azure', TEST, () =>
    withSandbox(async (env) => {
      edit(env.sb, UID, { application_object_id: 'demo-target-app' });
      const run = await rotate(env);
      assert.equal(run.code, 2, describeRun(run));
      assert.equal(run.error, 'RECORD_FIELD_INVALID');
      assert.deepEqual(env.sb.log.entries({ service: 'azure' }), []);
    }),
  );

  for (const value of ['abc', '0']) {
    test(`a bad setting (secret_lifetime_days = ${value}) is rejected before any request to Azure`, TEST, () =>
      withSandbox(async (env) => {
        edit(env.sb, UID, { secret_lifetime_days: value });
        const run = await rotate(env);
        assert.equal(run.code, 2, describeRun(run));
        assert.equal(run.error, 'SETTING_INVALID');
        assert.match(run.stderr, /secret_lifetime_days/);
        assert.deepEqual(env.sb.log.entries({ service: 'azure' }), []);
      }),
    );
  }

  test('a propagation delay is waited out', TEST, () =>
    withSandbox(async (env) => {
      env.dir.setPropagationDelay(env.tenant, 1500);
      const run = await rotate(env);
      assert.equal(run.code, 0, describeRun(run));
      assert.match(run.stderr, /verify: not accepted yet/);
      const attempts = Number(/authenticates \(attempts=(\d+)\)/.exec(run.stderr)?.[1]);
      assert.ok(attempts > 1, describeRun(run));
    }),
  );

  test('a propagation delay longer than verify_timeout_seconds: VERIFY_FAILED, rolled back, new secret removed', TEST, () =>
    withSandbox(async (env) => {
      env.dir.setPropagationDelay(env.tenant, 120_000);
      edit(env.sb, UID, { verify_timeout_seconds: '1' });
      const run = await rotate(env);
      assert.equal(run.code, 3, describeRun(run));
      assert.equal(run.error, 'VERIFY_FAILED');
      assertKeptSecret(run);
      assert.equal(count(run.calls, 'azure', 'addPassword'), 1);
      assert.equal(count(run.calls, 'ksm', 'rollback_secret_update'), 1);
      assert.equal(count(run.calls, 'azure', 'removePassword'), 1);
      assert.deepEqual(keyIds(run.appAfter), keyIds(run.appBefore));
    }),
  );

  // verify_timeout_seconds (300 by default) may outlast the run: verification then stops early enough to undo.
  test('a propagation delay longer than the run: verification stops before the deadline with time to undo (exit 3, not 5)', TEST, () =>
    withSandbox(async (env) => {
      env.dir.setPropagationDelay(env.tenant, 120_000);
      const run = await rotate(env, { run: { deadlineSeconds: 12 } });
      assert.equal(run.code, 3, describeRun(run));
      assert.equal(run.error, 'VERIFY_FAILED');
      assertKeptSecret(run);
      assert.equal(count(run.calls, 'ksm', 'rollback_secret_update'), 1);
      assert.equal(count(run.calls, 'azure', 'removePassword'), 1);
      assert.deepEqual(keyIds(run.appAfter), keyIds(run.appBefore));
    }),
  );

  test('Graph throttling addPassword is retried', TEST, () =>
    withSandbox(async (env) => {
      env.sb.faults.arm({ service: 'azure', operation: 'addPassword', kind: 'throttle', retryAfterSeconds: 1 });
      const run = await rotate(env);
      assert.equal(run.code, 0, describeRun(run));
      assert.equal(run.calls.filter((c) => c.operation === 'addPassword' && c.fault === 'throttle').length, 1);
      assert.equal(count(run.calls, 'azure', 'addPassword'), 2);
    }),
  );

  test('Entra throttles the verification (429, Retry-After): each try waits as asked, and the secret verifies', TEST, () =>
    withSandbox(async (env) => {
      // Token request 1 is the admin's; 2 to 6 are the new secret's first five tries.
      env.sb.faults.arm({ service: 'azure', operation: 'token', kind: 'throttle', retryAfterSeconds: 1, nth: 2, times: 5 });
      const run = await rotate(env);
      assert.equal(run.code, 0, describeRun(run));
      const tries = run.calls.filter((c) => c.operation === 'token').slice(1);
      assert.deepEqual(tries.map((c) => c.fault ?? 'ok'), ['throttle', 'throttle', 'throttle', 'throttle', 'throttle', 'ok'], describeRun(run));
      for (let i = 1; i < tries.length; i++) assert.ok(tries[i]!.t - tries[i - 1]!.t >= 990, `try ${i + 1} came ${Math.round(tries[i]!.t - tries[i - 1]!.t)} ms after the one before, sooner than Retry-After`);
      assert.match(run.stderr, /verify: throttled \(Entra throttled the token request \(HTTP 429\)\)/);
    }),
  );

  test("a 12 s propagation is waited out without tripping Entra's client-loop protection (AADSTS50196)", { timeout: 120_000 }, () =>
    withSandbox(async (env) => {
      // The sandbox refuses the 21st identical token request within a minute, as Entra does with a tight loop:
      // polling every half second reached it in ten seconds; the backing-off schedule stays near a dozen tries.
      env.dir.setPropagationDelay(env.tenant, 12_000);
      const run = await rotate(env, { run: { deadlineSeconds: 60 } });
      assert.equal(run.code, 0, describeRun(run));
      const tries = run.calls.filter((c) => c.operation === 'token').length - 1;
      assert.ok(tries <= 14, `${tries} token requests to verify a secret that took 12 s to propagate\n${describeRun(run)}`);
      assert.doesNotMatch(run.stderr, /AADSTS50196/);
    }),
  );

  test('a verification that meets AADSTS50196 is throttled, not refused: it gives up only when the wait outlasts its timeout', TEST, () =>
    withSandbox(async (env) => {
      env.sb.azure.setLoopLimit(2);
      env.dir.setPropagationDelay(env.tenant, 120_000);
      edit(env.sb, UID, { verify_timeout_seconds: '10' });
      const run = await rotate(env);
      assert.equal(run.code, 3, describeRun(run));
      assert.equal(run.error, 'VERIFY_FAILED');
      // Entra asks for no particular wait; the loop waits a minute before trying a looping request again, which is
      // past this record's 10 s, so it stops at the third try instead of hammering on.
      assert.match(run.stderr, /VERIFY_FAILED: .*Entra throttled the token request \(AADSTS50196\) \(still after 3 attempt\(s\), 1 throttled\)/, describeRun(run));
      assert.equal(run.calls.filter((c) => c.operation === 'token').length, 4);
      assertKeptSecret(run);
      assert.deepEqual(keyIds(run.appAfter), keyIds(run.appBefore));
    }),
  );

  test('national cloud: a sandbox serving as Azure US Government issues tokens only for graph.microsoft.us, and the rotation asks for that', TEST, () =>
    withSandbox(
      async (env) => {
        assert.equal(env.s.env.KEEPER_ROTATE_AZURE_CLOUD, 'usgov');
        // Asked for the global Graph, US Government's Entra refuses, as the real one does (AADSTS500011).
        const global = await rotate(env, { run: { env: { KEEPER_ROTATE_AZURE_CLOUD: 'public' } }, expect: 'unchanged' });
        assert.equal(global.error, 'TARGET_AUTH_FAILED', describeRun(global));
        assert.match(global.stderr, /AADSTS500011/);
        assert.equal(count(global.calls, 'azure', 'addPassword'), 0);
        const run = await rotate(env);
        assert.equal(run.code, 0, describeRun(run));
        assert.equal(count(run.calls, 'azure', 'addPassword'), 1);
      },
      { azureCloud: 'usgov' },
    ),
  );

  test('the Keeper save fails: the new secret is removed and the record is unchanged', TEST, () =>
    withSandbox(async (env) => {
      env.sb.faults.arm({ service: 'ksm', operation: 'update_secret', kind: 'status', status: 500, body: '{"error":"server_error","message":"boom"}' });
      const run = await rotate(env);
      assert.equal(run.code, 3, describeRun(run));
      assert.equal(run.error, 'KEEPER_REQUEST_FAILED');
      assert.deepEqual(run.after.data, run.before.data);
      assert.equal(count(run.calls, 'azure', 'addPassword'), 1);
      assert.equal(count(run.calls, 'azure', 'removePassword'), 1);
    }),
  );

  for (const model of ['pending', 'immediate'] as TransactionModel[]) {
    test(`the Keeper save is applied but its reply fails (${model} transactions): nothing is lost`, TEST, () =>
      withSandbox(async (env) => {
        env.sb.ksm.setTransactionModel(model);
        env.sb.faults.arm({ service: 'ksm', operation: 'update_secret', kind: 'status', status: 502, after: true });
        const run = await rotate(env);
        assert.notEqual(run.code, 0, describeRun(run));
        assert.equal(run.code, 3, describeRun(run));
        assert.deepEqual(run.after.data, run.before.data, 'the rollback restored the record');
        assert.equal(count(run.calls, 'ksm', 'rollback_secret_update'), 1);
        // Both the old secret (in the record) and nothing else: the new one was removed after the re-read.
        assert.deepEqual(keyIds(run.appAfter), keyIds(run.appBefore));
      }),
    );
  }

  for (const [model, after] of [
    ['pending', false],
    ['immediate', false],
    ['pending', true],
  ] as Array<[TransactionModel, boolean]>) {
    test(`one failed finalize (${model} transactions${after ? ', applied but the reply lost' : ''}) is tried again: the rotation finishes`, TEST, () =>
      withSandbox(async (env) => {
        env.sb.ksm.setTransactionModel(model);
        env.sb.faults.arm({ service: 'ksm', operation: 'finalize_secret_update', kind: 'status', status: 500, after });
        const run = await rotate(env, { expect: 'rotated' });
        assert.equal(run.code, 0, describeRun(run));
        assert.equal(count(run.calls, 'ksm', 'finalize_secret_update'), 2, describeRun(run));
        assert.equal(run.after.transaction, undefined, describeRun(run));
        assert.notEqual(text(run.after, 'client_secret_id'), text(run.before, 'client_secret_id'));
      }),
    );

    test(`finalize fails twice (${model} transactions${after ? ', applied but the reply lost' : ''}): nothing is retired, and the next run finalizes from the journal`, TEST, () =>
      withSandbox(async (env) => {
        env.sb.ksm.setTransactionModel(model);
        env.sb.faults.arm({ service: 'ksm', operation: 'finalize_secret_update', kind: 'status', status: 500, after, times: 2 });
        const run = await rotate(env);
        assert.equal(run.code, 5, describeRun(run));
        assert.equal(run.error, 'KEEPER_FINALIZE_UNCERTAIN');
        // Nothing was retired: the old secret (which consumers may still use) works too, and so does the new one.
        assert.ok(env.dir.checkSecret(A.tenantId, A.targetAppId, text(run.before, 'client_secret')!));
        // With `after`, the first finalize landed (its reply was lost) and the second found none open.
        assert.equal(run.after.transaction === undefined, after, 'the verified save waits in its open transaction unless it landed');
        const saved = model === 'immediate' || after ? run.after.data : run.after.transaction!.data;
        assert.ok(env.dir.checkSecret(A.tenantId, A.targetAppId, readText(saved, 'client_secret')!));

        // The next run finalizes what was left from the journal (or finds it finalized), then rotates.
        const next = await rotate(env, { expect: 'rotated' });
        assert.equal(next.code, 0, describeRun(next));
        assert.equal(next.after.transaction, undefined, describeRun(next));
        assert.match(next.stderr, /an earlier run on record \S+ stopped at "verified"/, describeRun(next));
        assert.match(next.stderr, after ? /recover: record \S+ holds \S+; keeping it/ : /recover: finalized/, describeRun(next));
      }),
    );
  }

  test('retiring an old secret fails: CLEANUP_INCOMPLETE, and the next run finishes the cleanup', TEST, () =>
    withSandbox(async (env) => {
      const { current, previous } = rotatedOnce(env);
      env.sb.faults.arm({
        service: 'azure',
        operation: 'removePassword',
        kind: 'status',
        status: 403,
        headers: { 'content-type': 'application/json' },
        body: '{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation."}}',
      });
      const run = await rotate(env);
      assert.equal(run.code, 4, describeRun(run));
      assert.equal(run.error, 'CLEANUP_INCOMPLETE');
      const n1 = text(run.after, 'client_secret_id')!;
      assert.ok(env.dir.checkSecret(A.tenantId, A.targetAppId, text(run.after, 'client_secret')!), 'the record holds the new, verified secret');
      assert.deepEqual(keyIds(run.appAfter), [current.keyId, previous.keyId, n1].sort(), 'the secret to retire is still there');

      const next = await rotate(env);
      assert.equal(next.code, 0, describeRun(next));
      const n2 = text(next.after, 'client_secret_id')!;
      assert.deepEqual(keyIds(next.appAfter), [n1, n2].sort(), `the next run retires what the failed one could not\n${describeRun(next)}`);
    }),
  );

  test('the record changes between fetch and save: KEEPER_REVISION_CONFLICT, new secret removed', TEST, () =>
    withSandbox(async (env) => {
      const { sb } = env;
      sb.faults.arm({ service: 'ksm', operation: 'update_secret', kind: 'delay', delayMs: 3000 });
      const running = rotate(env);
      await untilFired(sb, 'update_secret');
      // Someone edits the record while the script's save is on its way.
      const data: RecordData = cloneData(sb.ksm.readRecord(UID)!.data);
      data.notes = 'edited by a person during the rotation';
      sb.ksm.editRecord(UID, data);
      const run = await running;
      assert.equal(run.code, 3, describeRun(run));
      assert.equal(run.error, 'KEEPER_REVISION_CONFLICT');
      assertKeptSecret(run);
      assert.equal(run.after.data.notes, 'edited by a person during the rotation', 'the edit survives');
      assert.equal(count(run.calls, 'azure', 'removePassword'), 1);
    }),
  );

  test('the two-secret limit: room is made with the secret retention drops anyway', TEST, () =>
    withSandbox(async (env) => {
      const app = personalApp(env);
      const previous = env.dir.addSecret(app.objectId, { displayName: 'Client Secret Rotated by Keeper', startDateTime: new Date(Date.now() - 60 * DAY) });
      const current = env.dir.addSecret(app.objectId, { displayName: ourName(new Date(Date.now() - DAY)), startDateTime: new Date(Date.now() - DAY) });
      pointRecordAt(env, app, current, previous);
      const run = await rotate(env, { app: app.objectId });
      assert.equal(run.code, 0, describeRun(run));
      assert.deepEqual(keyIds(run.appAfter), [current.keyId, text(run.after, 'client_secret_id')!].sort());
      assert.match(run.stderr, new RegExp(`prepare: removed ${previous.keyId}`));
    }),
  );

  test('the two-secret limit: two foreign secrets fill the app, so the run refuses up front', TEST, () =>
    withSandbox(async (env) => {
      const app = personalApp(env);
      const current = env.dir.addSecret(app.objectId, { displayName: 'Client Secret Rotated by Keeper', startDateTime: new Date(Date.now() - 60 * DAY) });
      env.dir.addSecret(app.objectId, { displayName: 'someone else', startDateTime: new Date(Date.now() - DAY) });
      pointRecordAt(env, app, current);
      const run = await rotate(env, { app: app.objectId });
      assert.equal(run.code, 3, describeRun(run));
      assert.equal(run.error, 'TARGET_LIMIT_REACHED');
      assert.equal(count(run.calls, 'azure', 'addPassword') + count(run.calls, 'azure', 'removePassword'), 0, 'nothing created or removed');
      assert.deepEqual(keyIds(run.appAfter), keyIds(run.appBefore));
      // Only the run's outcome was written (src/pipeline/outcome.ts).
      assert.deepEqual(withoutOutcome(run.after.data), withoutOutcome(run.before.data));
      assert.equal(text(run.after, 'last_rotation_exit'), '3');
    }),
  );

  test('a tenant lifetime policy rejects the new secret: TARGET_POLICY_REJECTED, nothing changed', TEST, () =>
    withSandbox(async (env) => {
      env.dir.updateTenant(env.tenant, { maxLifetimeDays: 30 });
      edit(env.sb, UID, { secret_lifetime_days: '365' });
      const run = await rotate(env);
      assert.equal(run.code, 3, describeRun(run));
      assert.equal(run.error, 'TARGET_POLICY_REJECTED');
      assert.deepEqual(keyIds(run.appAfter), keyIds(run.appBefore));
      // Only the run's outcome was written (src/pipeline/outcome.ts).
      assert.deepEqual(withoutOutcome(run.after.data), withoutOutcome(run.before.data));
      assert.equal(text(run.after, 'last_rotation_exit'), '3');
      assert.equal(count(run.calls, 'ksm', 'update_secret'), 1, 'the outcome write only');
    }),
  );

  for (const keep of [1, 0]) {
    test(`self-rotation: the record's own admin fields rotate its app (keep_previous_secrets = ${keep})`, TEST, () =>
      withSandbox(async (env) => {
        const { sb, dir } = env;
        const appId = randomUUID();
        const app = dir.createApp({ tenantId: env.tenant, displayName: 'self-rotating-app', appId, permission: 'Application.ReadWrite.OwnedBy', owners: [appId] });
        const own = dir.addSecret(app.objectId, { displayName: 'initial', startDateTime: new Date(Date.now() - 10 * DAY) });
        const uid = keep === 1 ? 'SelfRotatingRecord0001' : 'SelfRotatingRecord0002';
        const data: RecordData = {
          title: 'Self-rotating app',
          type: 'pamUser',
          fields: [{ type: 'login', value: ['self-rotating-app'] }],
          custom: [
            { type: 'text', label: 'application_object_id', value: [app.objectId] },
            { type: 'text', label: 'tenant_id', value: [env.tenant] },
            { type: 'text', label: 'application_client_id', value: [appId] },
            { type: 'secret', label: 'client_secret', value: [own.secretText] },
            { type: 'text', label: 'client_secret_id', value: [own.keyId] },
            { type: 'text', label: 'keep_previous_secrets', value: [String(keep)] },
          ],
        };
        sb.ksm.seedRecord({ uid, folderUid: sb.demo!.folderUid, data });
        // Without a provider at all, or with a PAM configuration that holds no Azure credentials.
        const provider = 'EmptyPamConfiguration1';
        if (keep === 0) sb.ksm.seedRecord({ uid: provider, folderUid: sb.demo!.folderUid, data: { title: 'Empty PAM configuration', type: 'pamAzureConfiguration', fields: [] } });
        const params = {
          userRecordUid: uid,
          ...(keep === 0 ? { providerRecordUid: provider } : {}),
          records: [{ uid, title: 'Self-rotating app', application_object_id: app.objectId }, ...(keep === 0 ? [{ uid: provider, title: 'Empty PAM configuration' }] : [])],
        };
        const run = await rotate(env, { uid, app: app.objectId, params });
        assert.equal(run.code, 0, describeRun(run));
        assert.match(run.stderr, new RegExp(`using admin credentials from the PAM User record ${uid} itself`));
        assert.match(run.stderr, /it rotates its own secret/);
        const now = text(run.after, 'client_secret_id')!;
        if (keep === 1) {
          assert.deepEqual(keyIds(run.appAfter), [own.keyId, now].sort());
          assert.ok(dir.checkSecret(env.tenant, appId, own.secretText), 'the replaced secret is kept');
        } else {
          assert.deepEqual(keyIds(run.appAfter), [now], `the old secret is removed once the run signs in with the new one\n${describeRun(run)}`);
          assert.ok(!dir.checkSecret(env.tenant, appId, own.secretText));
          // The sandbox does not revoke tokens, so prove the switch from the calls: after the record is finalized,
          // the run signs in again (with the new secret) before it removes the old one.
          const ops = run.calls.filter((c) => c.service === 'azure' || c.operation === 'finalize_secret_update').map((c) => c.operation);
          const finalized = ops.indexOf('finalize_secret_update');
          const removed = ops.indexOf('removePassword');
          assert.ok(finalized >= 0 && removed > finalized, ops.join(' '));
          assert.ok(ops.slice(finalized, removed).includes('token'), `no sign-in between finalize and removing the old secret: ${ops.join(' ')}`);
        }
      }),
    );
  }

  test("the PAM configuration's own app named by the record is the admin app: TARGET_IS_ADMIN, exit 2, nothing written", TEST, () =>
    withSandbox(async (env) => {
      const { sb, dir } = env;
      const appId = randomUUID();
      const app = dir.createApp({ tenantId: env.tenant, displayName: 'admin-rotates-itself', appId, permission: 'Application.ReadWrite.OwnedBy', owners: [appId] });
      const configSecret = dir.addSecret(app.objectId, { displayName: 'admin secret', startDateTime: new Date(Date.now() - 30 * DAY) });
      const current = dir.addSecret(app.objectId, { displayName: 'Client Secret Rotated by Keeper', startDateTime: new Date(Date.now() - 10 * DAY) });
      const provider = 'SelfAdminPamConfig0001';
      sb.ksm.seedRecord({
        uid: provider,
        folderUid: sb.demo!.folderUid,
        data: {
          title: 'PAM configuration of the app itself',
          type: 'pamAzureConfiguration',
          fields: [
            { type: 'text', label: 'clientId', value: [appId] },
            { type: 'secret', label: 'clientSecret', value: [configSecret.secretText] },
            { type: 'text', label: 'tenantId', value: [env.tenant] },
          ],
        },
      });
      pointRecordAt(env, app, current);
      // Retention and remove_other_secrets would both take the configuration's secret.
      edit(sb, UID, { keep_previous_secrets: '0', remove_other_secrets: 'true' });
      const params = { ...loadFixture(SCRIPT), providerRecordUid: provider, records: [{ uid: provider, title: 'PAM configuration of the app itself', clientId: appId, tenantId: env.tenant }] };
      // The record's editor would get the admin app's new secret, and retention would take the configuration's.
      const run = await rotate(env, { app: app.objectId, params });
      assert.equal(run.code, 2, describeRun(run));
      assert.equal(run.error, 'TARGET_IS_ADMIN');
      assert.deepEqual(keyIds(run.appAfter), keyIds(run.appBefore));
      assert.equal(count(run.calls, 'azure', 'getApplication'), 1, 'refused once the application read named its client ID');
      assert.equal(count(run.calls, 'ksm', 'update_secret'), 0);
      assert.ok(dir.checkSecret(env.tenant, appId, configSecret.secretText), "the PAM configuration's secret still works");

      // The same app, when the configuration holds the very secret the record holds: the editor already has it,
      // so the app rotates itself, and the secret the configuration signs in with is kept.
      pointRecordAt(env, app, configSecret);
      const own = await rotate(env, { app: app.objectId, params });
      assert.equal(own.code, 0, describeRun(own));
      assert.match(own.stderr, new RegExp(`keeping ${configSecret.keyId}: the admin credentials authenticate with it`));
      assert.ok(dir.checkSecret(env.tenant, appId, configSecret.secretText), "the PAM configuration's secret still works");
    }),
  );

  test('orphans from interrupted runs are removed; a fresh one is left alone', TEST, () =>
    withSandbox(async (env) => {
      const oldAt = new Date(Date.now() - 2 * 3_600_000);
      const orphan = env.dir.addSecret(A.targetObjectId, { displayName: ourName(oldAt), startDateTime: oldAt });
      const fresh = env.dir.addSecret(A.targetObjectId, { displayName: ourName(new Date()), startDateTime: new Date() });
      const otherRecords = env.dir.addSecret(A.targetObjectId, { displayName: ourName(oldAt, 'SomeOtherRecordUid0001'), startDateTime: oldAt });
      const run = await rotate(env);
      assert.equal(run.code, 0, describeRun(run));
      const ids = keyIds(run.appAfter);
      assert.ok(!ids.includes(orphan.keyId), `the orphan is removed\n${describeRun(run)}`);
      assert.ok(ids.includes(fresh.keyId), 'a fresh secret may belong to a run in progress');
      assert.ok(ids.includes(otherRecords.keyId), "another record's secret is not this record's orphan");
      assert.match(run.stderr, new RegExp(`prepare: removed ${orphan.keyId}`));
    }),
  );

  for (const how of ['--dry-run flag', 'dry_run setting'] as const) {
    test(`${how}: plans, exits 0, changes nothing`, TEST, () =>
      withSandbox(async (env) => {
        const oldAt = new Date(Date.now() - 2 * 3_600_000);
        const orphan = env.dir.addSecret(A.targetObjectId, { displayName: ourName(oldAt), startDateTime: oldAt });
        edit(env.sb, UID, { keep_previous_secrets: '0', ...(how === 'dry_run setting' ? { dry_run: 'true' } : {}) });
        const run = await rotate(env, { expect: 'unchanged', run: how === '--dry-run flag' ? { args: ['--dry-run'] } : {} });
        assert.equal(run.code, 0, describeRun(run));
        assert.match(run.stdout, /^azure-app-secret: planned: dry run: nothing was changed/);
        assert.match(run.stderr, new RegExp(`would remove ${orphan.keyId} before creating`));
        assert.match(run.stderr, new RegExp(`would remove ${text(run.before, 'client_secret_id')} after verifying`));
      }),
    );
  }

  // A SIGKILL while each call of a rotation is in flight (the server still applies it, the reply never
  // arrives): the record keeps a working secret, and the next run finishes or undoes what was left, then
  // rotates, and the app ends with exactly what retention keeps.
  for (const [service, operation, nth] of [
    ['azure', 'addPassword', 1],
    ['ksm', 'update_secret', 1],
    ['azure', 'token', 2],
    ['ksm', 'finalize_secret_update', 1],
    ['azure', 'removePassword', 1],
  ] as const) {
    test(`killed during ${operation}${nth > 1 ? ` #${nth}` : ''}: the next run recovers and rotates`, TEST, () =>
      withSandbox(async (env) => {
        rotatedOnce(env);
        env.sb.faults.arm({ service, operation, nth, kind: 'delay', delayMs: 300 });
        const stop = env.sb.faults.onFire(() => victim?.kill('SIGKILL'));
        let victim: import('node:child_process').ChildProcess | undefined;
        const killed = await rotate(env, { killed: true, run: { onSpawn: (child) => (victim = child) } });
        stop();
        // The delayed call lands after the kill, as a server finishing a request whose client died.
        await sleep(500);
        const holds = text(env.sb.ksm.readRecord(UID)!, 'client_secret')!;
        assert.ok(env.dir.checkSecret(A.tenantId, A.targetAppId, holds), `the record's secret stopped working\n${describeRun(killed)}`);

        const next = await rotate(env);
        assert.equal(next.code, 0, describeRun(next));
        assert.equal(next.after.transaction, undefined);
        // Retention (keep_previous_secrets 1): the record's secret and the one it replaced, nothing else; no orphan
        // of the killed run survives.
        const previous = (text(next.after, 'previous_client_secret_ids') ?? '').split(',')[0]!;
        assert.deepEqual(keyIds(next.appAfter), [text(next.after, 'client_secret_id')!, previous].sort(), `the app holds more than retention keeps\n${describeRun(next)}`);
      }),
    );
  }
});
