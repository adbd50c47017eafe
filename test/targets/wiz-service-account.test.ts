// wiz-service-account end to end: the real script in a child process, fed the way the Keeper Gateway feeds it,
// against a fresh sandbox per test (KSM + Wiz token endpoint + Wiz GraphQL, over HTTPS). After every run the
// sandbox's own state is checked against the invariant: the record holds the account's current secret and it
// gets a token, exit codes tell the truth, and no secret or token reached stdout or stderr. The one exception
// is RECOVERY_PENDING: Wiz replaced the secret and Keeper refused every save, so the record still holds the old
// one (which no longer works) and the new one waits, sealed, in the state folder; the tests assert that
// explicitly, and that the next run of any script stores it.
import assert from 'node:assert/strict';
import { outcomeWritten, withoutOutcome } from '../helpers/outcome.js';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cloneData, readText, writeText } from '../../src/keeper/record.js';
import { DEMO } from '../../src/sandbox/demo-vault.js';
import type { RequestLogEntry } from '../../src/sandbox/faults.js';
import type { RecordView } from '../../src/sandbox/ksm/index.js';
import type { Sandbox } from '../../src/sandbox/sandbox.js';
import type { ServiceAccountState, WizTenant } from '../../src/sandbox/wiz/index.js';
import { Journal, type JournalEntry } from '../../src/state/journal.js';
import { type RunOptions, type ScriptResult, type ScriptSandbox, loadFixture, runScript, startScriptSandbox } from '../helpers/run-script.js';

const SCRIPT = 'wiz-service-account';
const Z = DEMO.wiz;
const UID = Z.userRecordUid;
const CLIENT_ID = Z.clientId;
const DAY = 86_400_000;
const ERROR_LINE = /^keeper-rotate: ([A-Z_]+): /;
const WIZ = ['wiz-auth', 'wiz-api'];
const CONCURRENCY = 4;
const TEST = { timeout: 90_000 };

// ---------------------------------------------------------------------------------------------------------------
// One fresh sandbox per test, and the invariant checked after every run.

interface Env {
  s: ScriptSandbox;
  sb: Sandbox;
  wiz: WizTenant;
  /** Every secret and access token the tenant ever handed out, replaced ones included. */
  values: Set<string>;
}

async function withSandbox(fn: (env: Env) => Promise<void>): Promise<void> {
  const s = await startScriptSandbox(SCRIPT);
  try {
    const wiz = s.sandbox.wiz;
    const values = new Set<string>();
    const create = wiz.createServiceAccount.bind(wiz);
    const rotateSecret = wiz.rotateSecret.bind(wiz);
    const issue = wiz.issueAccessToken.bind(wiz);
    wiz.createServiceAccount = (options) => remember(values, create(options));
    wiz.rotateSecret = (id) => remember(values, rotateSecret(id));
    wiz.issueAccessToken = (clientId, issuer) => {
      const issued = issue(clientId, issuer);
      values.add(issued.accessToken);
      return issued;
    };
    for (const a of wiz.listServiceAccounts()) values.add(a.clientSecret);
    // The Azure and AWS demo secrets too: a later run of another script must not print them either.
    for (const sec of s.sandbox.azure.directory.getApp(DEMO.azure.targetObjectId)!.secrets) values.add(sec.secretText);
    await fn({ s, sb: s.sandbox, wiz, values });
  } finally {
    await s.close();
  }
}

function remember(values: Set<string>, account: ServiceAccountState): ServiceAccountState {
  values.add(account.clientSecret);
  return account;
}

interface Run extends ScriptResult {
  error: string | undefined;
  before: RecordView;
  after: RecordView;
  accountBefore: ServiceAccountState | undefined;
  accountAfter: ServiceAccountState | undefined;
  /** The sandbox's request log for this run only. */
  calls: RequestLogEntry[];
}

interface RotateOptions {
  uid?: string;
  params?: Record<string, unknown>;
  run?: RunOptions;
  /** What exit 0 must mean: a finished rotation (default), or nothing changed (dry run, skip). */
  expect?: 'rotated' | 'unchanged';
  /** The test kills this run: only secret hygiene and "a working secret is in the record or sealed" apply. */
  killed?: boolean;
  /** The record is known to hold a secret that no longer works before the run starts (the secret was lost). */
  stale?: boolean;
}

/** 1 when the run wrote its outcome into the record after failing (src/pipeline/outcome.ts), else 0. */
const outcomeWrites = (run: { before: RecordView; after: RecordView }) => (outcomeWritten(run.before.data, run.after.data) ? 1 : 0);
const text = (view: RecordView, label: string) => readText(view.data, label);
/**
 * The sandbox's Wiz budget (3 a second per account, as Wiz's) may throttle a run that follows another closely:
 * such a 429 (no fault armed) was never applied and the client tries again, so the counts leave it out. Throttles
 * a test arms itself carry `fault` and are counted.
 */
const budgetThrottle = (c: RequestLogEntry) => c.status === 429 && c.fault === undefined;
const count = (calls: RequestLogEntry[], service: string, operation?: string) =>
  calls.filter((c) => c.service === service && (operation === undefined || c.operation === operation) && !budgetThrottle(c)).length;
const wizOps = (calls: RequestLogEntry[]) => calls.filter((c) => WIZ.includes(c.service) && !budgetThrottle(c)).map((c) => c.operation);
const describeRun = (run: ScriptResult) => `exit ${run.code}\n--- stdout\n${run.stdout}--- stderr\n${run.stderr}`;

async function rotate(env: Env, options: RotateOptions = {}): Promise<Run> {
  const uid = options.uid ?? UID;
  const { sb, wiz } = env;
  const before = sb.ksm.readRecord(uid)!;
  const clientId = text(before, 'login')!;
  const accountBefore = wiz.getServiceAccount(clientId);
  const mark = sb.log.entries().length;
  const result = await env.s.run(options.params ?? loadFixture(SCRIPT), options.run);
  const after = sb.ksm.readRecord(uid)!;
  const run: Run = { ...result, error: undefined, before, after, accountBefore, accountAfter: wiz.getServiceAccount(clientId), calls: sb.log.entries().slice(mark) };
  const errorLines = result.stderr.split('\n').filter((l) => l.startsWith('keeper-rotate: '));
  if (errorLines.length) run.error = ERROR_LINE.exec(errorLines[0]!)?.[1];
  checkInvariant(env, run, options, errorLines);
  return run;
}

/** Journal files under the sandbox's state folder (KEEPER_ROTATE_STATE_DIR), by record UID. */
function journals(env: Env): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.journal.json')) out.set(name.replace(/\.journal\.json$/, ''), readFileSync(path, 'utf8'));
    }
  };
  walk(env.s.env.KEEPER_ROTATE_STATE_DIR!);
  return out;
}

function journalPath(env: Env, uid: string): string {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name === `${uid}.journal.json`) found.push(path);
    }
  };
  walk(env.s.env.KEEPER_ROTATE_STATE_DIR!);
  assert.equal(found.length, 1, `one journal for ${uid}`);
  return found[0]!;
}

const sealedFor = (env: Env, uid: string) => {
  const j = journals(env).get(uid);
  return j !== undefined && (JSON.parse(j) as { phase: string }).phase === 'unsaved';
};

function checkInvariant(env: Env, run: Run, options: RotateOptions, errorLines: string[]): void {
  const { wiz, values } = env;
  const why = describeRun(run);
  const clientId = text(run.after, 'login')!;
  const secret = text(run.after, 'client_secret');
  const account = run.accountAfter;

  // No secret or token in the output, not even a replaced one.
  const output = run.stdout + run.stderr;
  const leaked = [...values, text(run.before, 'client_secret') ?? '\0', secret ?? '\0'].filter((v) => output.includes(v)).length;
  assert.equal(leaked, 0, `${leaked} secret value(s) appear in the script's output`);

  const pending = run.code === 5 && run.error === 'RECOVERY_PENDING';
  if (options.killed) {
    assert.match(run.stderr, /killed by SIGKILL/, `the run was meant to be killed but ended by itself\n${why}`);
  } else if (pending) {
    // The one allowed exception: Wiz switched, Keeper refused, the new secret waits sealed on this gateway.
    assert.equal(secret, text(run.before, 'client_secret'), `RECOVERY_PENDING but the record changed\n${why}`);
    assert.ok(sealedFor(env, UID), `RECOVERY_PENDING without a sealed journal\n${why}`);
  } else if (account && !options.stale) {
    // The record holds the account's one secret, and it gets a token whenever the account can.
    assert.equal(secret, account.clientSecret, `the record does not hold the account's current secret\n${why}`);
    if (account.canAuthenticate) assert.ok(wiz.checkSecret(clientId, secret!), `the record's client_secret does not authenticate\n${why}`);
  }
  if (options.killed) return;

  assert.equal(run.stdout.split('\n').filter(Boolean).length, 1, `stdout must be one summary line\n${why}`);
  const rotated = account !== undefined && run.accountBefore !== undefined && account.clientSecret !== run.accountBefore.clientSecret;
  if (run.code === 0) {
    assert.equal(errorLines.length, 0, `exit 0 with an error line\n${why}`);
    assert.equal(run.after.transaction, undefined, `exit 0 left a Keeper transaction open\n${why}`);
    if ((options.expect ?? 'rotated') === 'rotated') {
      assert.match(run.stdout, /^wiz-service-account: rotated: rotated to /, why);
      assert.ok(rotated, `exit 0 but the account's secret did not change\n${why}`);
      assert.notEqual(secret, text(run.before, 'client_secret'), `exit 0 but the record holds the old secret\n${why}`);
      assert.ok(!wiz.checkSecret(clientId, run.accountBefore!.clientSecret), 'the previous secret still authenticates');
      assert.equal(text(run.after, 'expires'), account!.expiresAt, `the record's expires is not the account's expiry\n${why}`);
      assert.notEqual(account!.expiresAt, run.accountBefore!.expiresAt, `exit 0 but the account's expiry did not move\n${why}`);
    } else {
      assert.equal(run.after.revision, run.before.revision, `the record was written\n${why}`);
      assert.deepEqual(run.after.data, run.before.data);
      assert.ok(!rotated, `the account was rotated\n${why}`);
      assert.equal(account?.expiresAt, run.accountBefore?.expiresAt, `the account's expiry changed\n${why}`);
      assert.equal(count(run.calls, 'wiz-api', 'rotateServiceAccountSecret') + count(run.calls, 'wiz-api', 'updateServiceAccount') + count(run.calls, 'ksm', 'update_secret'), 0);
    }
    return;
  }
  assert.equal(errorLines.length, 1, `a failed run prints exactly one keeper-rotate line\n${why}`);
  assert.ok(run.error, `the error line has no CODE\n${why}`);
  assert.match(run.stdout, /: failed: /, why);
  if (run.code === 2) {
    // Rejected before any network call to Wiz: nothing touched.
    assert.deepEqual(wizOps(run.calls), [], `exit 2 after talking to Wiz\n${why}`);
    assert.equal(count(run.calls, 'ksm', 'update_secret'), 0, `exit 2 after writing to the vault\n${why}`);
    assert.equal(run.after.revision, run.before.revision);
    assert.deepEqual(run.after.data, run.before.data);
  } else if (run.code === 3) {
    // Did not happen: the account keeps its secret, the record its data.
    assert.ok(!rotated, `exit 3 but the account was rotated\n${why}`);
    // Its outcome fields aside (src/pipeline/outcome.ts).
    assert.deepEqual(withoutOutcome(run.after.data), withoutOutcome(run.before.data), `exit 3 but the record changed\n${why}`);
    assert.equal(run.after.transaction, undefined, `exit 3 left a Keeper transaction open\n${why}`);
  } else if (run.code === 4) {
    // Rotated and saved; only the follow-up (the expiry) is unfinished.
    assert.ok(rotated, `exit 4 but the account was not rotated\n${why}`);
    assert.notEqual(secret, text(run.before, 'client_secret'));
    assert.equal(run.after.transaction, undefined);
  } else {
    assert.equal(run.code, 5, `unexpected exit code\n${why}`);
  }
}

/** Edits the record in the vault (a person in the web vault would): labels to values, null removes the field. */
function edit(sb: Sandbox, changes: Record<string, string | null>, uid = UID): void {
  const data = cloneData(sb.ksm.readRecord(uid)!.data);
  for (const [label, value] of Object.entries(changes)) {
    if (value === null) data.custom = (data.custom ?? []).filter((f) => f.label !== label);
    else writeText(data, { label, kind: label === 'client_secret' ? 'secret' : 'text' }, value);
  }
  sb.ksm.editRecord(uid, data);
}

/** The account's expiry is about `days` after the run (the new expiry is taken during the run). */
function assertExpiresIn(run: Run, days: number): void {
  const at = Date.parse(run.accountAfter!.expiresAt!);
  const expected = Date.now() + days * DAY;
  assert.ok(Math.abs(at - expected) < 5 * 60_000, `the account expires at ${run.accountAfter!.expiresAt}, not about ${days} days from now\n${describeRun(run)}`);
}

/** A second service account with the rotation scopes, to act as the admin. */
function adminAccount(env: Env, scopes?: string[]): ServiceAccountState {
  return env.wiz.createServiceAccount({ name: 'keeper-rotate-admin', ...(scopes ? { scopes } : {}) });
}

/** The fixture plus a record attached to the script that holds admin credentials. */
function withAttachedAdmin(admin: { clientId: string; clientSecret: string }): Record<string, unknown> {
  const p = loadFixture(SCRIPT);
  const attached = { uid: 'AttachedWizAdminRec001', title: 'Wiz rotation credential', wiz_client_id: admin.clientId, wiz_client_secret: admin.clientSecret };
  return { ...p, records: [...(p.records as object[]), attached] };
}

/**
 * Makes the tenant reject any token minted before the latest rotation of its account (stricter than the working
 * assumption, under which such tokens stay valid), and records which token each API call carried.
 */
function revokeOnRotation(env: Env): Array<{ clientId: string; mintedAfterRotation: boolean }> {
  const { wiz } = env;
  const minted = new Map<string, { clientId: string; epoch: number }>();
  const epochs = new Map<string, number>();
  const used: Array<{ clientId: string; mintedAfterRotation: boolean }> = [];
  const rotateSecret = wiz.rotateSecret.bind(wiz);
  wiz.rotateSecret = (id) => {
    const state = rotateSecret(id);
    epochs.set(state.clientId, (epochs.get(state.clientId) ?? 0) + 1);
    return state;
  };
  const issue = wiz.issueAccessToken.bind(wiz);
  wiz.issueAccessToken = (clientId, issuer) => {
    const issued = issue(clientId, issuer);
    minted.set(issued.accessToken, { clientId, epoch: epochs.get(clientId) ?? 0 });
    return issued;
  };
  const verify = wiz.verifyAccessToken.bind(wiz);
  wiz.verifyAccessToken = (token) => {
    const m = minted.get(token);
    if (m && m.epoch < (epochs.get(m.clientId) ?? 0)) return { ok: false, reason: 'expired' };
    if (m) used.push({ clientId: m.clientId, mintedAfterRotation: m.epoch > 0 });
    return verify(token);
  };
  return used;
}

/** Waits until every armed fault has fired (a `delay` fault fires when its request arrives, before it is handled). */
async function untilFired(sb: Sandbox, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (sb.faults.pending().length > 0) {
    if (Date.now() > end) throw new Error(`the fault on ${what} never fired`);
    await sleep(10);
  }
}

const GRAPHQL_ERROR = (code: string, message: string) => JSON.stringify({ errors: [{ message, extensions: { code } }], data: null });

// ---------------------------------------------------------------------------------------------------------------

describe('wiz-service-account end to end', { concurrency: CONCURRENCY }, () => {
  test('the fixture: the account rotates itself, the old secret stops working, the expiry moves by the lifetime', TEST, () =>
    withSandbox(async (env) => {
      const first = await rotate(env);
      assert.equal(first.code, 0, describeRun(first));
      assert.match(first.stderr, new RegExp(`using admin credentials from the PAM User record ${UID} itself`), 'the Azure PAM configuration is not taken for Wiz credentials');
      assert.match(first.stderr, /it rotates its own secret/);
      assertExpiresIn(first, 30);
      // The minimum: a token, one read, the rotation, a token with the new secret, the expiry.
      assert.deepEqual(wizOps(first.calls), ['token', 'serviceAccounts', 'rotateServiceAccountSecret', 'token', 'updateServiceAccount'], describeRun(first));
      assert.match(first.stdout, new RegExp(`new_id=${CLIENT_ID} expires=${first.accountAfter!.expiresAt}`));

      edit(env.sb, { secret_lifetime_days: '7' });
      const second = await rotate(env);
      assert.equal(second.code, 0, describeRun(second));
      assertExpiresIn(second, 7);
      assert.ok(!env.wiz.checkSecret(CLIENT_ID, text(first.after, 'client_secret')!), "the first run's secret no longer works");
    }),
  );

  test('self-rotation sets the expiry with a token from the new secret, never one from before the rotation', TEST, () =>
    withSandbox(async (env) => {
      const used = revokeOnRotation(env);
      const run = await rotate(env);
      assert.equal(run.code, 0, describeRun(run));
      const ops = wizOps(run.calls).filter((op) => op !== 'token');
      assert.deepEqual(ops, ['serviceAccounts', 'rotateServiceAccountSecret', 'updateServiceAccount']);
      assert.deepEqual(
        used.map((u) => u.mintedAfterRotation),
        [false, false, true],
        'the read and the rotation use the first token; the expiry, a token minted after the rotation',
      );
    }),
  );

  test('rotate_within_days: a run before the window changes nothing; one inside it rotates', TEST, () =>
    withSandbox(async (env) => {
      edit(env.sb, { rotate_within_days: '2' });
      const skipped = await rotate(env, { expect: 'unchanged' });
      assert.equal(skipped.code, 0, describeRun(skipped));
      assert.match(skipped.stdout, /^wiz-service-account: skipped: not rotated: it expires at \S+, in 10 days: more than rotate_within_days \(2\) away/, describeRun(skipped));
      assert.deepEqual(wizOps(skipped.calls), ['token', 'serviceAccounts']);

      env.wiz.updateServiceAccount(CLIENT_ID, { expiresAt: new Date(Date.now() + 1.5 * DAY) });
      const run = await rotate(env);
      assert.equal(run.code, 0, describeRun(run));
      assert.match(run.stderr, /rotating: it expires at \S+, in 1.5 days: within rotate_within_days \(2\)/);
      assertExpiresIn(run, 30);
    }),
  );

  test('admin through an attached record: its token does every call, its own secret is untouched', TEST, () =>
    withSandbox(async (env) => {
      const admin = adminAccount(env);
      const used = revokeOnRotation(env);
      const run = await rotate(env, { params: withAttachedAdmin(admin) });
      assert.equal(run.code, 0, describeRun(run));
      assert.match(run.stderr, /using admin credentials from attached record AttachedWizAdminRec001/);
      assert.doesNotMatch(run.stderr, /rotates its own secret/);
      assert.ok(env.wiz.checkSecret(admin.clientId, admin.clientSecret), "the admin's secret still works");
      assert.deepEqual(used.map((u) => u.clientId), [admin.clientId, admin.clientId, admin.clientId], 'read, rotate and expiry all with the admin token');
      assertExpiresIn(run, 30);
    }),
  );

  test('admin through the PAM configuration (wizClientId, wizClientSecret)', TEST, () =>
    withSandbox(async (env) => {
      const admin = adminAccount(env);
      const provider = 'WizPamConfiguration001';
      const fields = [
        { type: 'text', label: 'wizClientId', value: [admin.clientId] },
        { type: 'secret', label: 'wizClientSecret', value: [admin.clientSecret] },
      ];
      env.sb.ksm.seedRecord({ uid: provider, folderUid: env.sb.demo!.folderUid, data: { title: 'Wiz PAM configuration', type: 'pamNetworkConfiguration', fields } });
      const p = loadFixture(SCRIPT);
      // Only in Keeper, not in the gateway input: the script fetches the PAM configuration itself.
      const run = await rotate(env, { params: { ...p, providerRecordUid: provider, records: [(p.records as Array<{ uid: string }>).find((r) => r.uid === UID)] } });
      assert.equal(run.code, 0, describeRun(run));
      assert.match(run.stderr, new RegExp(`using admin credentials from PAM configuration ${provider} \\(fetched from Keeper\\)`));
      assert.ok(env.wiz.checkSecret(admin.clientId, admin.clientSecret));
    }),
  );

  test("admin credentials that are the account's own are refused before any request", TEST, () =>
    withSandbox(async (env) => {
      const own = env.wiz.getServiceAccount(CLIENT_ID)!;
      const run = await rotate(env, { params: withAttachedAdmin(own) });
      assert.equal(run.code, 2, describeRun(run));
      assert.equal(run.error, 'TARGET_IS_ADMIN');
      assert.match(run.stderr, /stop working/);
    }),
  );

  test('Keeper refuses every save after the rotation: RECOVERY_PENDING, sealed; the next run of another script stores it', TEST, () =>
    withSandbox(async (env) => {
      // #1 is the check before rotating; #2 to #4 are the three save attempts after it.
      env.sb.faults.arm({ service: 'ksm', operation: 'update_secret', nth: 2, times: 3, kind: 'status', status: 500, body: '{"error":"server_error","message":"boom"}' });
      const run = await rotate(env);
      assert.equal(run.code, 5, describeRun(run));
      assert.equal(run.error, 'RECOVERY_PENDING');
      assert.equal(count(run.calls, 'wiz-api', 'rotateServiceAccountSecret'), 1);
      assert.equal(count(run.calls, 'ksm', 'update_secret'), 4);
      // The allowed exception, explicitly: the record holds the old secret, which no longer works...
      const old = text(run.after, 'client_secret')!;
      assert.equal(old, text(run.before, 'client_secret'));
      assert.ok(!env.wiz.checkSecret(CLIENT_ID, old), 'the old secret should have stopped working');
      // ...and the new one is sealed in the state folder, not in clear.
      const current = env.wiz.getServiceAccount(CLIENT_ID)!.clientSecret;
      const journal = journals(env).get(UID);
      assert.ok(journal, 'no journal in the state folder');
      assert.equal((JSON.parse(journal) as { phase: string }).phase, 'unsaved');
      for (const form of [current, Buffer.from(current).toString('base64'), encodeURIComponent(current)]) assert.ok(!journal.includes(form), 'the journal holds the secret in clear');
      // No expiry was set: that follows the save.
      assert.equal(count(run.calls, 'wiz-api', 'updateServiceAccount'), 0);

      // The next run of any script, here Azure's, stores it first.
      const mark = env.sb.log.entries().length;
      const azure = await runScript('azure-app-secret', loadFixture('azure-app-secret'), env.s.env);
      assert.equal(azure.code, 0, describeRun(azure));
      assert.match(azure.stderr, new RegExp(`storing the secret an earlier wiz-service-account run could not save in record ${UID}`));
      assert.ok(env.sb.log.entries().slice(mark).every((c) => !WIZ.includes(c.service)), 'storing it needs no call to Wiz');
      const stored = env.sb.ksm.readRecord(UID)!;
      assert.equal(text(stored, 'client_secret'), current);
      assert.ok(env.wiz.checkSecret(CLIENT_ID, text(stored, 'client_secret')!), "the record's secret authenticates again");
      assert.equal(stored.transaction, undefined);
      assert.equal(journals(env).get(UID), undefined, 'the journal is gone once stored');
      for (const v of env.values) assert.ok(!azure.stdout.includes(v) && !azure.stderr.includes(v), 'a secret appears in the next run');

      // And the Wiz script rotates as usual afterwards.
      const next = await rotate(env);
      assert.equal(next.code, 0, describeRun(next));
    }),
  );

  test('Keeper refuses every save: the next Wiz run stores the sealed secret first, then rotates', TEST, () =>
    withSandbox(async (env) => {
      env.sb.faults.arm({ service: 'ksm', operation: 'update_secret', nth: 2, times: 3, kind: 'status', status: 500, body: '{"error":"server_error","message":"boom"}' });
      const failed = await rotate(env);
      assert.equal(failed.code, 5, describeRun(failed));
      const sealed = env.wiz.getServiceAccount(CLIENT_ID)!.clientSecret;
      const next = await rotate(env);
      assert.equal(next.code, 0, describeRun(next));
      assert.match(next.stderr, /recover: stored it/);
      // It signed in with the stored secret, so it rotated from there.
      assert.equal(next.accountBefore!.clientSecret, sealed);
      assert.ok(env.wiz.checkSecret(CLIENT_ID, text(next.after, 'client_secret')!));
    }),
  );

  test('one failed save after the rotation is retried: exit 0', TEST, () =>
    withSandbox(async (env) => {
      env.sb.faults.arm({ service: 'ksm', operation: 'update_secret', nth: 2, kind: 'status', status: 500, body: '{"error":"server_error","message":"boom"}' });
      const run = await rotate(env);
      assert.equal(run.code, 0, describeRun(run));
      assert.match(run.stderr, /attempt 1 to save record \S+ failed/);
      assert.equal(count(run.calls, 'ksm', 'update_secret'), 3);
    }),
  );

  for (const [code, status, body] of [
    ['KEEPER_ACCESS_DENIED', 403, { error: 'access_denied', message: `Record ${UID} is read-only for this application` }],
    ['KEEPER_REVISION_CONFLICT', 400, { error: 'invalid_revision', message: `Record ${UID} revision 1 does not match the current revision 2` }],
  ] as const) {
    test(`Keeper refuses the write before rotating (${code}): exit 3, the account is not rotated`, TEST, () =>
      withSandbox(async (env) => {
        env.sb.faults.arm({ service: 'ksm', operation: 'update_secret', nth: 1, kind: 'status', status, body: JSON.stringify(body) });
        const run = await rotate(env);
        assert.equal(run.code, 3, describeRun(run));
        assert.equal(run.error, code);
        assert.equal(count(run.calls, 'wiz-api', 'rotateServiceAccountSecret'), 0);
        assert.equal(run.accountAfter!.clientSecret, run.accountBefore!.clientSecret);
        assert.ok(env.wiz.checkSecret(CLIENT_ID, text(run.after, 'client_secret')!));
        // A refusal opened no transaction, so nothing is left for the next run to roll back.
        assert.deepEqual([...journals(env).keys()], [], 'a refused check leaves a journal behind');
        const next = await rotate(env);
        assert.equal(next.code, 0, describeRun(next));
        assert.doesNotMatch(next.stderr, /an earlier run/);
      }),
    );
  }

  test('the new secret never gets a token: VERIFY_FAILED (exit 5), the record holds it, the expiry is not set', TEST, () =>
    withSandbox(async (env) => {
      edit(env.sb, { verify_timeout_seconds: '1' });
      env.sb.faults.arm({ service: 'wiz-auth', operation: 'token', nth: 2, times: 100, kind: 'status', status: 401, body: '{"error":"invalid_client","error_description":"Invalid client credentials."}' });
      const run = await rotate(env);
      assert.equal(run.code, 5, describeRun(run));
      assert.equal(run.error, 'VERIFY_FAILED');
      assert.notEqual(text(run.after, 'client_secret'), text(run.before, 'client_secret'), 'the record holds the one secret Wiz may accept');
      assert.equal(run.after.transaction, undefined);
      assert.equal(count(run.calls, 'wiz-api', 'updateServiceAccount'), 0);
      assert.equal(run.accountAfter!.expiresAt, run.accountBefore!.expiresAt);
      assert.ok(count(run.calls, 'wiz-auth', 'token') > 2, 'verification was retried');
    }),
  );

  for (const [label, fault] of [
    ['a rule rejects it', { kind: 'status', status: 200, body: GRAPHQL_ERROR('BAD_USER_INPUT', 'expiresAt is beyond the maximum lifetime') }],
    ['Wiz fails three times', { kind: 'status', status: 500, times: 3, body: GRAPHQL_ERROR('INTERNAL', 'Internal server error') }],
  ] as const) {
    test(`setting the expiry fails (${label}): exit 4, the record holds the new working secret`, TEST, () =>
      withSandbox(async (env) => {
        env.sb.faults.arm({ service: 'wiz-api', operation: 'updateServiceAccount', headers: { 'content-type': 'application/json' }, ...fault });
        const run = await rotate(env);
        assert.equal(run.code, 4, describeRun(run));
        assert.equal(run.error, 'TARGET_REQUEST_FAILED');
        assert.match(run.stderr, /the secret was replaced and saved, but the account still expires at/);
        assert.equal(run.accountAfter!.expiresAt, run.accountBefore!.expiresAt);
        assert.equal(count(run.calls, 'wiz-api', 'updateServiceAccount'), 'times' in fault ? 3 : 1);
      }),
    );
  }

  for (const [service, operation, fault] of [
    ['wiz-auth', 'token', { kind: 'throttle', retryAfterSeconds: 1 }],
    ['wiz-auth', 'token', { kind: 'status', status: 503, body: '{"error":"temporarily_unavailable"}' }],
    ['wiz-api', 'serviceAccounts', { kind: 'throttle', retryAfterSeconds: 1 }],
    ['wiz-api', 'serviceAccounts', { kind: 'status', status: 502, body: 'Bad Gateway' }],
    ['wiz-api', 'rotateServiceAccountSecret', { kind: 'throttle', retryAfterSeconds: 1 }],
    // Applied, then the reply is lost: the secret Wiz switched to is unknown, and only another rotation (with the
    // token from before, which still works) gets back to one the record can hold.
    ['wiz-api', 'rotateServiceAccountSecret', { kind: 'status', status: 503, after: true, body: GRAPHQL_ERROR('INTERNAL', 'unavailable') }],
  ] as const) {
    const applied = 'after' in fault ? ' (applied, reply lost)' : '';
    test(`${fault.kind === 'throttle' ? 'throttling' : `HTTP ${fault.status}`} on ${operation}${applied} is retried`, TEST, () =>
      withSandbox(async (env) => {
        env.sb.faults.arm({ service, operation, ...fault });
        const run = await rotate(env);
        assert.equal(run.code, 0, describeRun(run));
        assert.equal(run.calls.filter((c) => c.operation === operation && c.fault !== undefined).length, 1);
        assert.equal(count(run.calls, service, operation), operation === 'token' ? 3 : 2);
        assert.match(run.stderr, /\(attempt 1\); retrying in/);
      }),
    );
  }

  test('throttling that does not stop: TARGET_THROTTLED after six throttled tries, nothing rotated', TEST, () =>
    withSandbox(async (env) => {
      env.sb.faults.arm({ service: 'wiz-api', operation: 'serviceAccounts', kind: 'throttle', retryAfterSeconds: 1, times: 100 });
      const run = await rotate(env);
      assert.equal(run.code, 3, describeRun(run));
      assert.equal(run.error, 'TARGET_THROTTLED');
      assert.equal(count(run.calls, 'wiz-api', 'serviceAccounts'), 6);
      assert.equal(count(run.calls, 'ksm', 'update_secret'), outcomeWrites(run), 'nothing saved but the outcome');
    }),
  );

  test('a Retry-After longer than the run may wait is not waited for: TARGET_THROTTLED at once, nothing rotated', TEST, () =>
    withSandbox(async (env) => {
      env.sb.faults.arm({ service: 'wiz-api', operation: 'serviceAccounts', kind: 'throttle', retryAfterSeconds: 3600, times: 100 });
      const run = await rotate(env);
      assert.equal(run.code, 3, describeRun(run));
      assert.equal(run.error, 'TARGET_THROTTLED');
      assert.equal(count(run.calls, 'wiz-api', 'serviceAccounts'), 1);
    }),
  );

  for (const who of ['self', 'admin'] as const) {
    test(`a disabled account (${who}): TARGET_AUTH_FAILED before rotating`, TEST, () =>
      withSandbox(async (env) => {
        const admin = who === 'admin' ? adminAccount(env) : undefined;
        env.wiz.updateServiceAccount(CLIENT_ID, { enabled: false });
        const run = await rotate(env, admin ? { params: withAttachedAdmin(admin) } : {});
        // Self: the record's own secret is refused, so the record holds nothing that works: exit 5, not 3.
        assert.equal(run.code, who === 'self' ? 5 : 3, describeRun(run));
        assert.equal(run.error, 'TARGET_AUTH_FAILED');
        assert.match(run.stderr, /disabled/);
        assert.equal(count(run.calls, 'wiz-api', 'rotateServiceAccountSecret') + count(run.calls, 'ksm', 'update_secret') - outcomeWrites(run), 0);
      }),
    );
  }

  test('an expired account (admin): TARGET_AUTH_FAILED before rotating', TEST, () =>
    withSandbox(async (env) => {
      const admin = adminAccount(env);
      env.wiz.updateServiceAccount(CLIENT_ID, { expiresAt: new Date(Date.now() - DAY) });
      const run = await rotate(env, { params: withAttachedAdmin(admin) });
      assert.equal(run.code, 3, describeRun(run));
      assert.equal(run.error, 'TARGET_AUTH_FAILED');
      assert.match(run.stderr, /expired at .* extend its expiry in Wiz/);
      assert.equal(count(run.calls, 'wiz-api', 'rotateServiceAccountSecret'), 0);
    }),
  );

  for (const who of ['self', 'admin'] as const) {
    test(`an account that does not exist (${who}): a coded error, nothing rotated`, TEST, () =>
      withSandbox(async (env) => {
        const admin = who === 'admin' ? adminAccount(env) : undefined;
        const ghost = 'nosuchaccount000000000000000000000000000000000000000';
        const demoSecret = env.wiz.getServiceAccount(CLIENT_ID)!.clientSecret;
        edit(env.sb, { login: ghost });
        const run = await rotate(env, admin ? { params: withAttachedAdmin(admin) } : {});
        assert.equal(run.code, who === 'self' ? 5 : 3, describeRun(run));
        assert.equal(run.error, who === 'admin' ? 'TARGET_NOT_FOUND' : 'TARGET_AUTH_FAILED');
        assert.match(run.stderr, new RegExp(ghost));
        assert.equal(count(run.calls, 'wiz-api', 'rotateServiceAccountSecret') + count(run.calls, 'ksm', 'update_secret') - outcomeWrites(run), 0);
        assert.equal(env.wiz.getServiceAccount(CLIENT_ID)!.clientSecret, demoSecret, 'no account was rotated');
      }),
    );
  }

  for (const [who, missing] of [
    ['self', 'update:service_accounts'],
    ['admin', 'update:service_accounts'],
    ['admin', 'read:service_accounts'],
  ] as const) {
    test(`a missing scope (${who} lacks ${missing}): TARGET_PERMISSION_DENIED before rotating`, TEST, () =>
      withSandbox(async (env) => {
        const scopes = ['read:service_accounts', 'update:service_accounts'].filter((s) => s !== missing);
        let params: Record<string, unknown> | undefined;
        if (who === 'admin') params = withAttachedAdmin(adminAccount(env, scopes));
        else env.wiz.updateServiceAccount(CLIENT_ID, { scopes });
        const run = await rotate(env, params ? { params } : {});
        assert.equal(run.code, 3, describeRun(run));
        assert.equal(run.error, 'TARGET_PERMISSION_DENIED');
        assert.match(run.stderr, new RegExp(`lacks the Wiz API scope\\(s\\) ${missing}`));
        assert.deepEqual(wizOps(run.calls), ['token'], 'refused on the token, before any API call');
      }),
    );
  }

  for (const [who, scopes] of [
    ['admin', ['admin:all']],
    ['admin', ['read:all', 'write:all']],
    ['admin', ['read:service_accounts', 'write:service_accounts']],
    ['self', ['read:all', 'update:all']],
  ] as const) {
    test(`umbrella scopes (${who} holds only ${scopes.join(' ')}): accepted, and the rotation goes through`, TEST, () =>
      withSandbox(async (env) => {
        let params: Record<string, unknown> | undefined;
        if (who === 'admin') params = withAttachedAdmin(adminAccount(env, [...scopes]));
        else env.wiz.updateServiceAccount(CLIENT_ID, { scopes: [...scopes] });
        const run = await rotate(env, params ? { params } : {});
        assert.equal(run.code, 0, describeRun(run));
        assert.equal(count(run.calls, 'wiz-api', 'rotateServiceAccountSecret'), 1);
        assert.notEqual(run.accountAfter!.clientSecret, run.accountBefore!.clientSecret);
        assert.notEqual(run.accountAfter!.expiresAt, run.accountBefore!.expiresAt);
      }),
    );
  }

  test('an umbrella scope of another verb does not stand in: read:all and write:all without read grant no update, write:all no read', TEST, () =>
    withSandbox(async (env) => {
      const run = await rotate(env, { params: withAttachedAdmin(adminAccount(env, ['write:all', 'read:issues'])) });
      assert.equal(run.code, 3, describeRun(run));
      assert.equal(run.error, 'TARGET_PERMISSION_DENIED');
      assert.match(run.stderr, /lacks the Wiz API scope\(s\) read:service_accounts; it needs read:service_accounts \(or read:all, admin:all\)/);
      assert.deepEqual(wizOps(run.calls), ['token']);
    }),
  );

  test("Wiz's request budget (3 a second per service account) is on, and a spent one is waited out: reads and refused writes are retried as Wiz asks", TEST, () =>
    withSandbox(async (env) => {
      assert.deepEqual(env.wiz.rateLimits.settings().api, { burst: 3, perSecond: 3 });
      env.wiz.rateLimits.set({ api: { burst: 1, perSecond: 1 } });
      // The read and the expiry find the account's budget spent, however slow the machine: a zero delay marks the
      // moment each arrives, and the bucket is emptied then, as another caller of the same account would...
      for (const operation of ['serviceAccounts', 'updateServiceAccount']) env.sb.faults.arm({ service: 'wiz-api', operation, kind: 'delay', delayMs: 0 });
      const stop = env.sb.faults.onFire((f) => {
        if (f.kind === 'delay') while (env.wiz.rateLimits.takeApi(CLIENT_ID).ok);
      });
      // ...and the rotation is throttled four times, past the three tries a failing call gets.
      env.sb.faults.arm({ service: 'wiz-api', operation: 'rotateServiceAccountSecret', kind: 'throttle', retryAfterSeconds: 1, times: 4 });
      try {
        const run = await rotate(env);
        assert.equal(run.code, 0, describeRun(run));
        const statuses = (operation: string) => run.calls.filter((c) => c.service === 'wiz-api' && c.operation === operation).map((c) => c.status);
        assert.match(statuses('serviceAccounts').join(','), /^(429,)+200$/);
        assert.match(statuses('updateServiceAccount').join(','), /^(429,)+200$/);
        const rotations = run.calls.filter((c) => c.service === 'wiz-api' && c.operation === 'rotateServiceAccountSecret');
        assert.equal(rotations.filter((c) => c.status === 200).length, 1, 'applied once');
        assert.equal(rotations.filter((c) => c.status === 429 && c.fault === 'throttle').length, 4);
        assert.match(run.stderr, /RATE_LIMIT_EXCEEDED/);
        assert.doesNotMatch(run.stderr, /an earlier attempt may have been applied/);
      } finally {
        stop();
      }
    }),
  );

  test('with a tiny token-endpoint budget, verification is throttled and still verifies: "not yet", waited out as Wiz asks', TEST, () =>
    withSandbox(async (env) => {
      env.wiz.rateLimits.set({ auth: { burst: 1, perSecond: 0.5 } });
      // The verification's token request finds the budget spent, on any machine, however fast or slow: the
      // moment it arrives (a zero delay fault marks it) the bucket is emptied, as another caller would.
      env.sb.faults.arm({ service: 'wiz-auth', operation: 'token', kind: 'delay', delayMs: 0, nth: 2 });
      const stop = env.sb.faults.onFire((f) => {
        if (f.service === 'wiz-auth') while (env.wiz.rateLimits.takeAuth(CLIENT_ID).ok);
      });
      try {
        const run = await rotate(env);
        assert.equal(run.code, 0, describeRun(run));
        const tokens = run.calls.filter((c) => c.service === 'wiz-auth');
        assert.deepEqual(tokens.slice(0, 2).map((c) => c.status), [200, 429], 'the first verification try was throttled');
        assert.equal(tokens[tokens.length - 1]!.status, 200);
        // Throttling came back to the verify loop as "not yet", not as an error or a retry inside the token request.
        assert.match(run.stderr, /verify: [^\n]*Wiz token request for [^\n]*throttled \(HTTP 429\)/);
        assert.doesNotMatch(run.stderr, /Wiz token request for [^\n]*retrying in/);
        assert.ok(env.wiz.checkSecret(CLIENT_ID, text(run.after, 'client_secret')!));
      } finally {
        stop();
      }
    }),
  );

  for (const [label, value] of [
    ['secret_lifetime_days', 'abc'],
    ['secret_lifetime_days', '1.5'],
    ['rotate_within_days', '-1'],
    ['wiz_api_url', 'http://api.us17.app.wiz.io/graphql'],
    ['wiz_auth_url', 'http://auth.app.wiz.io/oauth/token'],
  ] as const) {
    test(`a bad setting (${label} = ${value}) is rejected before any request to Wiz`, TEST, () =>
      withSandbox(async (env) => {
        edit(env.sb, { [label]: value });
        const run = await rotate(env);
        assert.equal(run.code, 2, describeRun(run));
        assert.equal(run.error, 'SETTING_INVALID');
        assert.match(run.stderr, new RegExp(label));
        assert.deepEqual(env.sb.log.entries({ service: 'wiz-auth' }).concat(env.sb.log.entries({ service: 'wiz-api' })), []);
      }),
    );
  }

  test('a bad KEEPER_ROTATE_WIZ_API_URL is rejected before any request to Wiz', TEST, () =>
    withSandbox(async (env) => {
      const run = await rotate(env, { run: { env: { KEEPER_ROTATE_WIZ_API_URL: 'http://127.0.0.1:1/graphql' } } });
      assert.equal(run.code, 2, describeRun(run));
      assert.equal(run.error, 'SETTING_INVALID');
      assert.match(run.stderr, /KEEPER_ROTATE_WIZ_API_URL/);
    }),
  );

  for (const how of ['--dry-run flag', 'dry_run setting'] as const) {
    test(`${how}: plans, exits 0, changes nothing`, TEST, () =>
      withSandbox(async (env) => {
        if (how === 'dry_run setting') edit(env.sb, { dry_run: 'true' });
        const run = await rotate(env, { expect: 'unchanged', run: how === '--dry-run flag' ? { args: ['--dry-run'] } : {} });
        assert.equal(run.code, 0, describeRun(run));
        assert.match(run.stdout, /^wiz-service-account: planned: dry run: nothing was changed/);
        assert.match(run.stderr, /would replace the credential on the target/);
      }),
    );
  }

  // SIGKILL while a call of the rotation is in flight (the server still applies it; the reply never arrives).
  // Every kill point here lies after the new secret was sealed into the journal: from then on the record holds a
  // working secret or the journal does, and the next run finishes. A kill between Wiz replacing the secret and
  // the journal being sealed (during rotateServiceAccountSecret itself) loses the secret when the account rotates
  // itself, unless the next run can replace it again with the token the killed run sealed: the tests after this
  // loop pin both.
  for (const [service, operation, nth] of [
    ['ksm', 'update_secret', 2],
    ['wiz-auth', 'token', 2],
    ['ksm', 'finalize_secret_update', 1],
    ['wiz-api', 'updateServiceAccount', 1],
  ] as const) {
    test(`killed during ${operation} #${nth}: the secret is in the record or sealed, and the next run finishes`, TEST, () =>
      withSandbox(async (env) => {
        env.sb.faults.arm({ service, operation, nth, kind: 'delay', delayMs: 300 });
        let victim: ChildProcess | undefined;
        const stop = env.sb.faults.onFire(() => victim?.kill('SIGKILL'));
        const killed = await rotate(env, { killed: true, run: { onSpawn: (child) => (victim = child) } });
        stop();
        // The delayed call lands after the kill, as a server finishing a request whose client died.
        await sleep(500);
        const current = env.wiz.getServiceAccount(CLIENT_ID)!.clientSecret;
        assert.notEqual(current, killed.accountBefore!.clientSecret, 'the kill came after the rotation');
        const holds = text(env.sb.ksm.readRecord(UID)!, 'client_secret')!;
        assert.ok(env.wiz.checkSecret(CLIENT_ID, holds) || sealedFor(env, UID), `the new secret is neither in the record nor sealed\n${describeRun(killed)}`);

        const next = await rotate(env);
        assert.equal(next.code, 0, describeRun(next));
        assert.equal(next.after.transaction, undefined);
        assert.equal(journals(env).size, 0, 'no journal is left');
      }),
    );
  }

  test('killed during rotateServiceAccountSecret with admin credentials: the next run rotates again, whatever the schedule', TEST, () =>
    withSandbox(async (env) => {
      const admin = adminAccount(env);
      const params = withAttachedAdmin(admin);
      // Due by the schedule for this run: the account expires within rotate_within_days.
      edit(env.sb, { rotate_within_days: '2' });
      env.wiz.updateServiceAccount(CLIENT_ID, { expiresAt: new Date(Date.now() + DAY) });
      env.sb.faults.arm({ service: 'wiz-api', operation: 'rotateServiceAccountSecret', kind: 'delay', delayMs: 300 });
      let victim: ChildProcess | undefined;
      const stop = env.sb.faults.onFire(() => victim?.kill('SIGKILL'));
      await rotate(env, { params, killed: true, run: { onSpawn: (child) => (victim = child) } });
      stop();
      await untilFired(env.sb, 'rotateServiceAccountSecret');
      await sleep(500);
      // Wiz applied the rotation after the kill: nobody knows the secret now.
      assert.ok(!env.wiz.checkSecret(CLIENT_ID, text(env.sb.ksm.readRecord(UID)!, 'client_secret')!));
      // Someone extends the account in Wiz: not near expiry any more, yet the next run rotates, because the
      // journal says an earlier run stopped while rotating. (The record itself cannot be edited now: the killed
      // run's write check holds its rotation transaction open until the next run rolls it back.)
      env.wiz.updateServiceAccount(CLIENT_ID, { expiresAt: new Date(Date.now() + 90 * DAY) });
      assert.throws(() => edit(env.sb, { title: null }), /open update transaction/);
      const next = await rotate(env, { params });
      assert.equal(next.code, 0, describeRun(next));
      assert.match(next.stderr, /rotating: an earlier run stopped while Wiz was replacing the secret/);
      assert.ok(env.wiz.checkSecret(CLIENT_ID, text(next.after, 'client_secret')!));
    }),
  );

  /** Kills a self-rotating run while Wiz holds its rotation call, and waits for Wiz to apply it anyway. */
  async function killDuringRotation(env: Env): Promise<void> {
    env.sb.faults.arm({ service: 'wiz-api', operation: 'rotateServiceAccountSecret', kind: 'delay', delayMs: 300 });
    let victim: ChildProcess | undefined;
    const stop = env.sb.faults.onFire(() => victim?.kill('SIGKILL'));
    await rotate(env, { killed: true, run: { onSpawn: (child) => (victim = child) } });
    stop();
    await sleep(500);
  }

  test('killed during rotateServiceAccountSecret of an account that rotates itself: the next run replaces it again with the sealed token', TEST, () =>
    withSandbox(async (env) => {
      await killDuringRotation(env);
      assert.ok(!env.wiz.checkSecret(CLIENT_ID, text(env.sb.ksm.readRecord(UID)!, 'client_secret')!), 'the secret was lost with the killed reply');
      const journal = JSON.parse(journals(env).get(UID)!) as { phase: string; resume?: string };
      assert.equal(journal.phase, 'creating');
      assert.ok(journal.resume, 'the killed run sealed its token before the call');
      const next = await rotate(env, { stale: true });
      assert.equal(next.code, 0, describeRun(next));
      assert.match(next.stderr, /replacing it again with the token that run held/);
      assert.equal(count(next.calls, 'wiz-api', 'rotateServiceAccountSecret'), 1);
      assert.ok(env.wiz.checkSecret(CLIENT_ID, text(next.after, 'client_secret')!));
      assert.equal(journals(env).size, 0, 'no journal is left');
    }),
  );

  test('the same kill without a usable sealed token: the inherent window of in-place rotation, reported', TEST, () =>
    withSandbox(async (env) => {
      await killDuringRotation(env);
      const path = journalPath(env, UID);
      const original = readFileSync(path, 'utf8');
      // A journal edited by hand fails its integrity check: this record stops before any request to Wiz or any
      // write to Keeper.
      const entry = JSON.parse(original) as { resume?: string };
      entry.resume = Buffer.from('sealed by another gateway').toString('base64');
      writeFileSync(path, JSON.stringify(entry));
      const tampered = await rotate(env, { stale: true });
      assert.equal(tampered.code, 2, describeRun(tampered));
      assert.equal(tampered.error, 'STATE_DIR_UNAVAILABLE');
      assert.match(tampered.stderr, /fails its integrity check/);
      assert.equal(count(tampered.calls, 'wiz-api') + count(tampered.calls, 'wiz-auth'), 0);
      assert.deepEqual(tampered.calls.filter((c) => c.service === 'ksm' && c.operation !== 'get_secret'), []);

      // A token past its expiry (sealed by this gateway, so it opens) cannot be used.
      const gw = env.sb.gatewayConfig;
      const journal = new Journal(dirname(path), { source: 'test', hostname: gw.hostname, values: { ...gw } });
      const real = JSON.parse(original) as JournalEntry;
      const token = JSON.parse(journal.unsealText(UID, real.resume!)!) as Record<string, unknown>;
      journal.write({ ...real, resume: journal.sealText(UID, JSON.stringify({ ...token, expiresAt: Date.now() - 1000 })) });
      const next = await rotate(env, { stale: true });
      // Exit 5, not 3: the record's secret is the one Wiz replaced, and a person has to act.
      assert.equal(next.code, 5, describeRun(next));
      assert.equal(next.error, 'TARGET_AUTH_FAILED');
      assert.match(next.stderr, /the record's client_secret does not sign in/);
      assert.match(next.stderr, /make a new secret for the account in the Wiz console/);
      assert.equal(count(next.calls, 'wiz-api'), 0);
    }),
  );
});
