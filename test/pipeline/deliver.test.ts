// Delivery end to end (issue 17): the real scripts as the gateway runs them, a file destination on this host, and
// the sandbox's own state as the judge. What must hold after every run: the record's credential works, the file
// holds it or a credential still valid, a failed delivery retires nothing and exits 4, and the next run brings the
// file up to date before it changes anything.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { cloneData, readText, writeText } from '../../src/keeper/record.js';
import { ALLOW_FILE_DIRS, SENTINEL_PROVIDED, SENTINEL_UPDATED } from '../../src/destinations/file.js';
import { ALLOW_K8S_RESTARTS, ALLOW_K8S_SECRETS, RESTARTED_AT_ANNOTATION } from '../../src/destinations/kubernetes-secret.js';
import { DEMO } from '../../src/sandbox/demo-vault.js';
import type { Sandbox } from '../../src/sandbox/sandbox.js';
import { type ScriptResult, type ScriptSandbox, loadFixture, startScriptSandbox } from '../helpers/run-script.js';

type Script = 'azure-app-secret' | 'aws-iam-access-key' | 'wiz-service-account';
const UIDS: Record<Script, string> = { 'azure-app-secret': DEMO.azure.userRecordUid, 'aws-iam-access-key': DEMO.aws.userRecordUid, 'wiz-service-account': DEMO.wiz.userRecordUid };
const TEST = { timeout: 90_000 };
const show = (r: ScriptResult) => `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;

interface Env {
  s: ScriptSandbox;
  sb: Sandbox;
  uid: string;
  /** The folder the gateway owner allows. */
  out: string;
  run(env?: Record<string, string>): Promise<ScriptResult>;
  settings(values: Record<string, string>): void;
  text(label: string): string | undefined;
}

async function withDelivery(script: Script, fn: (e: Env) => Promise<void>): Promise<void> {
  const s = await startScriptSandbox(script);
  const out = join(s.dir, 'delivered');
  mkdirSync(out);
  const uid = UIDS[script];
  const e: Env = {
    s,
    sb: s.sandbox,
    uid,
    out,
    run: async (env = {}) => {
      const r = await s.run(loadFixture(script), { env: { [ALLOW_FILE_DIRS]: out, ...env } });
      let leaked = 0;
      for (const issued of [s.sandbox.aws.issued, s.sandbox.azure.directory.issued, s.sandbox.wiz.issued]) for (const v of issued) if ((r.stdout + r.stderr).includes(v)) leaked++;
      assert.equal(leaked, 0, `secret values in the output\n${show(r)}`);
      return r;
    },
    settings: (values) => {
      const data = cloneData(s.sandbox.ksm.readRecord(uid)!.data);
      for (const [label, value] of Object.entries(values)) writeText(data, { label, kind: 'text' }, value);
      s.sandbox.ksm.editRecord(uid, data);
    },
    text: (label) => readText(s.sandbox.ksm.readRecord(uid)!.data, label),
  };
  try {
    await fn(e);
  } finally {
    await s.close();
  }
}

/** KEY=value lines of an env file. */
function envFile(path: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

function journalPhase(e: Env): string | undefined {
  const found: string[] = [];
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir, { withFileTypes: true })) {
      if (name.isDirectory()) walk(join(dir, name.name));
      else if (name.name === `${e.uid}.journal.json`) found.push(join(dir, name.name));
    }
  };
  walk(join(e.s.dir, 'state'));
  return found[0] ? (JSON.parse(readFileSync(found[0], 'utf8')) as { phase: string }).phase : undefined;
}

describe('delivery to a file', { concurrency: 3 }, () => {
  // Review2: under Keeper's immediate transaction model a read shows another gateway's open, unverified save.
  // Catch-up delivers it; when that gateway's verification fails it rolls back and deletes the key, and the file
  // is left holding a deleted key while the record keeps the old one (A exits 3, B exits 3).
  test('aws-iam-access-key, immediate model, two gateways: catch-up must not deliver a key held only in another gateway\'s open transaction', { timeout: 120_000 }, () =>
    withDelivery('aws-iam-access-key', async (e) => {
      e.sb.ksm.setTransactionModel('immediate');
      const path = join(e.out, 'app.env');
      e.settings({ file_destinations: path, verify_timeout_seconds: '15' });
      const first = await e.run();
      assert.equal(first.code, 0, show(first));
      const k1 = e.text('aws_access_key_id');
      const configB = join(e.s.dir, 'gateway-b-config.json');
      writeFileSync(configB, JSON.stringify(e.sb.ksm.createClient(new URL(e.sb.urls.ksm!).host), null, 2), { mode: 0o600 });
      // B's new key never authenticates within its verification window.
      e.sb.aws.setPropagationDelay(600_000);
      writeFileSync(path, 'AWS_ACCESS_KEY_ID=hand-edited\n');
      // the file is behind; B's catch-up restores k1 first, then B rotates and its save stays open while it verifies
      const second = e.run({ KEEPER_GATEWAY_CONFIG: configB, KEEPER_ROTATE_STATE_DIR: join(e.s.dir, 'state-b') });
      while (e.text('aws_access_key_id') === k1) await new Promise((r) => setTimeout(r, 50));
      writeFileSync(path, 'AWS_ACCESS_KEY_ID=hand-edited-again\n');
      const a = await e.run();
      const b = await second;
      const vars = envFile(path);
      assert.equal(e.text('aws_access_key_id'), k1, `record keeps k1 (A exit ${a.code}, B exit ${b.code})`);
      // A met B's open transaction at its write check and delivered nothing: B's unverified key never reached the
      // file (before the fix it did, and B's undo then deleted it). The hand edit stays until the next clean run.
      assert.equal(a.code, 3, show(a));
      assert.equal(vars.AWS_ACCESS_KEY_ID, 'hand-edited-again', `A wrote the file while B's transaction was open\n--- A\n${show(a)}\n--- B\n${show(b)}`);
      e.sb.aws.setPropagationDelay(0);
      const next = await e.run();
      assert.equal(next.code, 0, show(next));
      const healed = envFile(path);
      assert.ok(e.sb.aws.checkKey(healed.AWS_ACCESS_KEY_ID ?? '', healed.AWS_SECRET_ACCESS_KEY ?? ''), 'the next clean run leaves the file with a key that signs in');
    }),
  );

  test('aws-iam-access-key: the new key lands in an env file that signs in, with its sentinels, and the journal is clear', TEST, () =>
    withDelivery('aws-iam-access-key', async (e) => {
      const path = join(e.out, 'app.env');
      e.settings({ file_destinations: path });
      const r = await e.run();
      assert.equal(r.code, 0, show(r));
      const vars = envFile(path);
      assert.equal(vars.AWS_ACCESS_KEY_ID, e.text('aws_access_key_id'));
      assert.ok(e.sb.aws.checkKey(vars.AWS_ACCESS_KEY_ID!, vars.AWS_SECRET_ACCESS_KEY!), 'the delivered key signs in');
      assert.ok(existsSync(join(e.out, SENTINEL_PROVIDED)) && existsSync(join(e.out, SENTINEL_UPDATED)));
      assert.match(r.stderr, /delivered AKIA[A-Z0-9]+ to file /);
      assert.equal(journalPhase(e), undefined);

      // Someone edits the file by hand: the next run puts the record's key back before it rotates, then delivers the new one.
      writeFileSync(path, 'AWS_ACCESS_KEY_ID=hand-edited\n');
      const again = await e.run();
      assert.equal(again.code, 0, show(again));
      assert.match(again.stderr, /do not hold the record's credential .* yet; delivering it before rotating/);
      const now = envFile(path);
      assert.equal(now.AWS_ACCESS_KEY_ID, e.text('aws_access_key_id'));
      assert.ok(e.sb.aws.checkKey(now.AWS_ACCESS_KEY_ID!, now.AWS_SECRET_ACCESS_KEY!));
    }),
  );

  test('--doctor and a dry run: each destination checked and read back, nothing written; one outside the allow-list FAILs with exit 2', TEST, () =>
    withDelivery('aws-iam-access-key', async (e) => {
      const path = join(e.out, 'app.env');
      e.settings({ file_destinations: path });
      const doctor = await e.s.run(loadFixture('aws-iam-access-key'), { args: ['--doctor'], env: { [ALLOW_FILE_DIRS]: e.out } });
      assert.equal(doctor.code, 0, show(doctor));
      assert.match(doctor.stdout, /^ok {4}destinations: 1 destination\(s\)$/m);
      assert.match(doctor.stdout, /file .*app\.env \(env\): allowed and writable; does not hold the record's credential yet: a run delivers it first/);
      const dry = await e.s.run(loadFixture('aws-iam-access-key'), { args: ['--dry-run'], env: { [ALLOW_FILE_DIRS]: e.out } });
      assert.equal(dry.code, 0, show(dry));
      assert.match(dry.stderr, /would deliver the new credential to file .*app\.env \(env\) \(checked: allowed and writable\)/);
      assert.deepEqual(readdirSync(e.out), [], 'neither wrote anything');

      e.settings({ file_destinations: '/etc/keeper-rotate-test.env' });
      const refused = await e.s.run(loadFixture('aws-iam-access-key'), { args: ['--doctor'], env: { [ALLOW_FILE_DIRS]: e.out } });
      assert.equal(refused.code, 2, show(refused));
      assert.match(refused.stdout, /^FAIL {2}destinations: DESTINATION_NOT_ALLOWED: file destination \/etc\/keeper-rotate-test\.env is outside the folders this gateway allows/m);
      const run = await e.run();
      assert.equal(run.code, 2, show(run));
      assert.match(run.stderr, /keeper-rotate: DESTINATION_NOT_ALLOWED: /);
    }),
  );

  test('wiz-service-account: the replaced secret lands in a json file and signs in', TEST, () =>
    withDelivery('wiz-service-account', async (e) => {
      const path = join(e.out, 'wiz.json');
      e.settings({ file_destinations: path, file_format: 'json' });
      const r = await e.run();
      assert.equal(r.code, 0, show(r));
      const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>;
      assert.equal(json.client_id, DEMO.wiz.clientId);
      assert.ok(e.sb.wiz.checkSecret(json.client_id!, json.client_secret!), 'the delivered secret signs in');
      assert.equal(journalPhase(e), undefined);
    }),
  );

  test('azure-app-secret: a setting that retires the replaced secret at once is refused with a destination, unless the record accepts it', TEST, () =>
    withDelivery('azure-app-secret', async (e) => {
      e.settings({ file_destinations: join(e.out, 'app.env'), keep_previous_secrets: '0' });
      const before = e.sb.ksm.readRecord(e.uid)!.revision;
      const r = await e.run();
      assert.equal(r.code, 2, show(r));
      assert.match(r.stderr, /keeper-rotate: SETTING_INVALID: keep_previous_secrets is 0, .*retire_before_consumers_reload/);
      assert.equal(e.sb.ksm.readRecord(e.uid)!.revision, before, 'nothing was written, not even the outcome');
      assert.equal(existsSync(join(e.out, 'app.env')), false);
      e.settings({ retire_before_consumers_reload: 'true' });
      const accepted = await e.run();
      assert.equal(accepted.code, 0, show(accepted));
    }),
  );

  test('azure-app-secret: delivery fails after the rotation: exit 4, nothing retired, the journal says delivering; the next run delivers first, then rotates and retires', TEST, () =>
    withDelivery('azure-app-secret', async (e) => {
      const path = join(e.out, 'app.env');
      // Retire everything but the new secret: what a failed delivery must hold back.
      e.settings({ file_destinations: path, keep_previous_secrets: '0', retire_before_consumers_reload: 'true' });
      const app = () => e.sb.azure.directory.getApp(DEMO.azure.targetObjectId)!;
      const first = await e.run();
      assert.equal(first.code, 0, show(first));
      const firstId = e.text('client_secret_id')!;
      // The outcome rides in the rotation's own save: no update_secret of its own. The run's three are the write
      // check held while it delivered the record's first secret to the new file (catch-up), the rotation's save, and
      // the write check held while it delivered the new one (another gateway may have rotated since the finalize).
      assert.deepEqual([e.text('last_rotation_exit'), e.text('last_rotation_error'), e.text('last_rotation_message')], ['0', undefined, `rotated to ${firstId}`]);
      assert.match(e.text('last_rotation_at')!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.match(first.stderr, /delivering it before rotating/);
      assert.equal(e.sb.log.entries({ service: 'ksm', operation: 'update_secret' }).length, 3);
      assert.deepEqual(app().secrets.map((s) => s.keyId), [firstId], 'keep 0: only the new secret is left');

      // A folder where the UPDATED sentinel goes: the file is written, but the consumers' signal cannot be.
      const sentinel = join(e.out, SENTINEL_UPDATED);
      rmSync(sentinel);
      mkdirSync(sentinel);
      const failed = await e.run();
      assert.equal(failed.code, 4, show(failed));
      assert.match(failed.stderr, /keeper-rotate: DELIVERY_INCOMPLETE: rotated to [0-9a-f-]+ and saved it, but delivering it failed; nothing was retired/);
      const secondId = e.text('client_secret_id')!;
      assert.notEqual(secondId, firstId);
      const tenant = app().tenantId;
      const appId = app().appId;
      const works = (id: string) => {
        const secret = app().secrets.find((s) => s.keyId === id);
        return secret !== undefined && e.sb.azure.directory.checkSecret(tenant, appId, secret.secretText);
      };
      assert.ok(works(secondId), "the record's new secret works");
      assert.ok(works(firstId), 'the secret consumers were given before is still valid');
      assert.equal(journalPhase(e), 'delivering');
      // Written after the run, with a plain update: what the vault and `report` show without the gateway's log.
      assert.deepEqual([e.text('last_rotation_exit'), e.text('last_rotation_error')], ['4', 'DELIVERY_INCOMPLETE']);
      assert.match(e.text('last_rotation_message')!, /^rotated to [0-9a-f-]+ and saved it, but delivering it failed/);

      rmSync(sentinel, { recursive: true });
      const next = await e.run();
      assert.equal(next.code, 0, show(next));
      assert.match(next.stderr, /rotated but did not finish delivering; delivering first/);
      const thirdId = e.text('client_secret_id')!;
      assert.equal(envFile(path).AZURE_CLIENT_SECRET, app().secrets.find((s) => s.keyId === thirdId)?.secretText);
      assert.deepEqual(app().secrets.map((s) => s.keyId), [thirdId], 'retired once delivered');
      assert.equal(journalPhase(e), undefined);
    }),
  );

  // Review (finding 2): with destinations, the write that ends the rotation's journal entry is journal.write('delivering')
  // instead of journal.clear(), and a journal write that fails throws STATE_DIR_UNAVAILABLE, whose exit code is 2
  // ("rejected before any change"). A state folder that fails right after the finalize (a full disk) turns a
  // saved, verified, finalized rotation into exit 2: a lie, and the destinations are not even tried.
  test('aws-iam-access-key: the journal cannot be written once the rotation is finalized: the run still exits 0 or 4 (it rotated), not 2', TEST, () =>
    withDelivery('aws-iam-access-key', async (e) => {
      const path = join(e.out, 'app.env');
      e.settings({ file_destinations: path });
      // A clean run first, so the file already holds the record's key and this run's catch-up writes nothing.
      const clean = await e.run();
      assert.equal(clean.code, 0, show(clean));
      const before = e.text('aws_access_key_id');
      const { held, release } = holdNext(e, 'ksm', 'finalize_secret_update');
      const run = e.run();
      try {
        await held;
        // The run is waiting on its finalize: its journal's folder stops taking writes (here: it is no folder any more).
        const found: string[] = [];
        const walk = (dir: string) => {
          for (const d of readdirSync(dir, { withFileTypes: true })) {
            if (d.isDirectory()) walk(join(dir, d.name));
            else if (d.name === `${e.uid}.journal.json`) found.push(dir);
          }
        };
        walk(join(e.s.dir, 'state'));
        assert.equal(found.length, 1, 'the run journals its rotation');
        // The journal's next write goes to <journal>.<pid>.tmp first: a link there to a folder that does not exist
        // fails it as a full disk would, and touches nothing else of the run's (its lock file stays writable).
        const { pid } = JSON.parse(readFileSync(join(found[0]!, `${e.uid}.lock`), 'utf8')) as { pid: number };
        symlinkSync(join(e.s.dir, 'no-such-folder', 'x'), join(found[0]!, `${e.uid}.journal.json.${pid}.tmp`));
      } finally {
        release();
      }
      const r = await run;
      const after = e.text('aws_access_key_id');
      assert.notEqual(after, before, 'the rotation was finalized');
      assert.ok(e.sb.aws.checkKey(after!, e.text('aws_secret_access_key')!), "the record's new key works");
      assert.ok(r.code === 0 || r.code === 4, `the record holds a new, verified key, so the exit code is 0 or 4 (exit 2 says nothing was changed, 3 that the record holds its old key)\n${show(r)}`);
    }),
  );

  // Review (finding 3): README: "a symbolic link that leads outside stops the run before any change (exit 2,
  // DESTINATION_NOT_ALLOWED)". The link is only resolved in held()/deliver(), after the record passed deliveryFor, so
  // the refusal reaches the run through catchUp's incomplete(): DELIVERY_INCOMPLETE, exit 4 ("rotated, follow-up
  // pending"), and the run writes its outcome into the record, though nothing was rotated and nothing may be.
  test('a folder link in the allowed folder that leads outside: exit 2 DESTINATION_NOT_ALLOWED before any change, nothing written outside', TEST, () =>
    withDelivery('aws-iam-access-key', async (e) => {
      const outside = join(e.s.dir, 'outside');
      mkdirSync(outside);
      symlinkSync(outside, join(e.out, 'escape'));
      e.settings({ file_destinations: join(e.out, 'escape', 'app.env') });
      const revision = e.sb.ksm.readRecord(e.uid)!.revision;
      const r = await e.run();
      assert.deepEqual(readdirSync(outside), [], 'nothing was written outside the allowed folder');
      assert.equal(r.code, 2, show(r));
      assert.match(r.stderr, /keeper-rotate: DESTINATION_NOT_ALLOWED: /);
      assert.equal(e.sb.ksm.readRecord(e.uid)!.revision, revision, 'exit 2: the record was not written');
    }),
  );
});

const K8S_ENV = { [ALLOW_K8S_SECRETS]: 'demo/*', [ALLOW_K8S_RESTARTS]: 'demo/app' };

/** Holds the next call of an operation (from now) until `release`; `held` settles once a client waits on it. */
function holdNext(e: Env, service: string, operation: string): { held: Promise<void>; release: () => void } {
  let release = () => {};
  const released = new Promise<void>((done) => (release = done));
  const held = new Promise<void>((done) => {
    const off = e.sb.faults.onFire((f) => {
      if (f.service === service && f.operation === operation) {
        off();
        done();
      }
    });
  });
  e.sb.faults.arm({ service, operation, nth: 1, kind: 'delay', delayMs: 30_000, release: released });
  return { held, release };
}

/** A run whose catch-up read of the Secret (its first GetSecret) waits while a person edits the record's text fields. */
async function whileCatchUpReads(e: Env, edits: Record<string, string>, alsoWhileHeld?: () => void): Promise<ScriptResult> {
  const { held, release } = holdNext(e, 'kubernetes', 'GetSecret');
  const running = e.run(K8S_ENV);
  try {
    await held;
    const data = cloneData(e.sb.ksm.readRecord(e.uid)!.data);
    for (const [label, value] of Object.entries(edits)) writeText(data, { label, kind: label.includes('secret') && !label.startsWith('k8s') ? 'secret' : 'text' }, value);
    e.sb.ksm.editRecord(e.uid, data);
    alsoWhileHeld?.();
  } finally {
    release();
  }
  return running;
}

/** The Wiz record delivers to a new Secret, demo/wiz-creds; after a run, a person edits the Secret (so the next run catches it up). */
async function wizSecretEditedByHand(e: Env): Promise<void> {
  e.settings({ k8s_secret: 'demo/wiz-creds', k8s_create: 'true' });
  const first = await e.run(K8S_ENV);
  assert.equal(first.code, 0, show(first));
  e.sb.kubernetes.cluster.editSecret('demo', 'wiz-creds', { client_secret: 'edited-by-hand' });
}

describe('delivery to a Kubernetes Secret', { concurrency: 3 }, () => {
  test('aws-iam-access-key: the new key is patched into demo/app-creds (its other keys kept) and demo/app restarted; a hand edit of the Secret is put right before the next rotation', TEST, () =>
    withDelivery('aws-iam-access-key', async (e) => {
      const cluster = e.sb.kubernetes.cluster;
      const before = cluster.secretText('demo', 'app-creds')!;
      e.settings({ k8s_secret: 'demo/app-creds', k8s_restart: 'app' });
      const r = await e.run(K8S_ENV);
      assert.equal(r.code, 0, show(r));
      const secret = cluster.secretText('demo', 'app-creds')!;
      assert.equal(secret.access_key_id, e.text('aws_access_key_id'));
      assert.ok(e.sb.aws.checkKey(secret.access_key_id!, secret.secret_access_key!), 'the key in the Secret signs in');
      for (const [k, v] of Object.entries(before)) assert.equal(secret[k], v, `the Secret's own key ${k} is kept`);
      const template = (cluster.deployment('demo', 'app') as { spec: { template: { metadata?: { annotations?: Record<string, string> } } } }).spec.template;
      assert.match(template.metadata?.annotations?.[RESTARTED_AT_ANNOTATION] ?? '', /^\d{4}-/, 'the Deployment was restarted');

      cluster.editSecret('demo', 'app-creds', { secret_access_key: 'edited-by-hand' });
      const again = await e.run(K8S_ENV);
      assert.equal(again.code, 0, show(again));
      assert.match(again.stderr, /do not hold the record's credential .* yet; delivering it before rotating/);
      const now = cluster.secretText('demo', 'app-creds')!;
      assert.equal(now.access_key_id, e.text('aws_access_key_id'));
      assert.ok(e.sb.aws.checkKey(now.access_key_id!, now.secret_access_key!));
    }),
  );

  test('aws-iam-access-key: the Secret is written but the restart fails: exit 4, and the next run writes and restarts again before it retires the key the pods still use', TEST, () =>
    withDelivery('aws-iam-access-key', async (e) => {
      const cluster = e.sb.kubernetes.cluster;
      e.settings({ k8s_secret: 'demo/app-creds', k8s_restart: 'app' });
      const first = await e.run(K8S_ENV);
      assert.equal(first.code, 0, show(first));
      const template = () => (cluster.deployment('demo', 'app') as { spec: { template: { metadata?: { annotations?: Record<string, string> } } } }).spec.template.metadata?.annotations ?? {};
      const restartedFirst = template()[RESTARTED_AT_ANNOTATION];
      e.sb.faults.arm({ service: 'kubernetes', operation: 'PatchDeployment', kind: 'status', status: 500, body: '{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcdserver: request timed out","reason":"InternalError","code":500}' });
      const failed = await e.run(K8S_ENV);
      e.sb.faults.clear();
      assert.equal(failed.code, 4, show(failed));
      assert.match(failed.stderr, /keeper-rotate: DELIVERY_INCOMPLETE: /);
      const secretNow = cluster.secretText('demo', 'app-creds')!;
      assert.equal(secretNow.access_key_id, e.text('aws_access_key_id'), 'the Secret was written');
      assert.equal(template()[RESTARTED_AT_ANNOTATION], restartedFirst, 'but the pods were not restarted');
      // The pods still use the key before this one (LAST now): the next run must not delete it before they restart.
      const podsKey = e.text('previous_aws_access_key_id')!;
      const events: string[] = [];
      const off = e.sb.log.onRecord((x) => {
        if (x.service === 'kubernetes' && x.operation === 'PatchDeployment' && x.status < 300) events.push('restart');
        if (x.service === 'iam' && x.operation === 'DeleteAccessKey' && x.status < 300) events.push('delete');
      });
      const next = await e.run(K8S_ENV);
      off();
      assert.equal(next.code, 0, show(next));
      assert.match(next.stderr, /delivering it before rotating/);
      assert.deepEqual(events.slice(0, 2), ['restart', 'delete'], `the pods restart before ${podsKey} goes`);
      const secret = cluster.secret('demo', 'app-creds') as { metadata: { annotations: Record<string, string> } };
      assert.equal(template()['keeper-rotate/delivery-id'], secret.metadata.annotations['keeper-rotate/delivery-id'], 'the pods were restarted for what the Secret holds');
    }),
  );

  test("a record cannot aim the gateway's cluster rights at another team's Secret: no allow-list, or outside it, exit 2 before any request", TEST, () =>
    withDelivery('azure-app-secret', async (e) => {
      e.settings({ k8s_secret: 'other-team/db-creds' });
      for (const env of [{}, K8S_ENV]) {
        const mark = e.sb.log.entries().length;
        const r = await e.run(env);
        assert.equal(r.code, 2, show(r));
        assert.match(r.stderr, /keeper-rotate: DESTINATION_NOT_ALLOWED: /);
        assert.deepEqual(e.sb.log.entries().slice(mark).filter((x) => x.service !== 'ksm').map((x) => x.service), [], 'no request but the record read');
      }
      assert.equal(e.sb.kubernetes.cluster.secret('other-team', 'db-creds'), undefined);
    }),
  );

  // Review (finding 4): catch-up delivers the record as the run read it at its start. Gateway B (another instance
  // of a pool, same cluster) reads the record, then A rotates and delivers; B's catch-up then finds the Secret
  // "behind" its stale read and writes the replaced secret back over A's. For Wiz the replaced secret is dead: the
  // Secret ends holding a credential that does not work, after A's exit 0 and B's exit 3.
  test('wiz-service-account, two gateways on one cluster: a catch-up from a read made before the other gateway rotated must not put the replaced secret back into the Secret', TEST, () =>
    withDelivery('wiz-service-account', async (e) => {
      const cluster = e.sb.kubernetes.cluster;
      e.settings({ k8s_secret: 'demo/wiz-creds', k8s_create: 'true' });
      const configB = join(e.s.dir, 'gateway-b-config.json');
      writeFileSync(configB, JSON.stringify(e.sb.ksm.createClient(new URL(e.sb.urls.ksm!).host), null, 2), { mode: 0o600 });
      const gatewayB = { ...K8S_ENV, KEEPER_GATEWAY_CONFIG: configB, KEEPER_ROTATE_STATE_DIR: join(e.s.dir, 'state-b') };
      // B's catch-up read of the Secret (the first GetSecret from now) waits until A has rotated and delivered.
      const { held, release } = holdNext(e, 'kubernetes', 'GetSecret');
      const second = e.run(gatewayB);
      let a: ScriptResult;
      try {
        await held;
        a = await e.run(K8S_ENV);
      } finally {
        release();
      }
      const b = await second;
      assert.equal(a.code, 0, show(a));
      const delivered = cluster.secretText('demo', 'wiz-creds')!;
      assert.equal(e.text('client_secret'), e.sb.wiz.getServiceAccount(DEMO.wiz.clientId)!.clientSecret, "the record holds A's secret");
      assert.ok(
        e.sb.wiz.checkSecret(DEMO.wiz.clientId, delivered.client_secret ?? ''),
        `the Secret must hold a secret Wiz accepts after both runs (A exit ${a.code}, B exit ${b.code})\n--- B\n${show(b)}`,
      );
    }),
  );

  // Review (session 7, findings F3 and F4): the catch-up found the record changed under it and exited 3 without
  // checking that the changed credential works, and delivered to the destinations of its first read.
  test('wiz-service-account: the record is edited while a catch-up reads the Secret (a secret that does not sign in, another Secret): nothing is delivered, and the run exits 5, not 3', TEST, () =>
    withDelivery('wiz-service-account', async (e) => {
      const cluster = e.sb.kubernetes.cluster;
      await wizSecretEditedByHand(e);
      const r = await whileCatchUpReads(e, { client_secret: 'typed-in-by-a-person', k8s_secret: 'demo/wiz-creds-2' });
      assert.equal(r.code, 5, show(r));
      assert.match(r.stderr, /keeper-rotate: KEEPER_REVISION_CONFLICT: .*its secret does not sign in .*so nothing was delivered/);
      assert.equal(cluster.secretText('demo', 'wiz-creds-2'), undefined, 'a secret that does not sign in is delivered nowhere');
      assert.equal(cluster.secretText('demo', 'wiz-creds')?.client_secret, 'edited-by-hand', 'the Secret the record no longer names is left alone');
    }),
  );

  test('wiz-service-account: the record is edited to name another Secret while a catch-up reads the first: its secret goes where the record says now (exit 3, nothing else changed)', TEST, () =>
    withDelivery('wiz-service-account', async (e) => {
      const cluster = e.sb.kubernetes.cluster;
      await wizSecretEditedByHand(e);
      const r = await whileCatchUpReads(e, { k8s_secret: 'demo/wiz-creds-2' });
      assert.equal(r.code, 3, show(r));
      assert.equal(r.stderr.match(/keeper-rotate: ([A-Z_]+)/)?.[1], 'KEEPER_REVISION_CONFLICT', show(r));
      const secret = e.text('client_secret') ?? '';
      assert.ok(e.sb.wiz.checkSecret(DEMO.wiz.clientId, secret), "the record's secret signs in");
      assert.ok(cluster.secretText('demo', 'wiz-creds-2')?.client_secret === secret, 'the Secret the record names now holds its secret');
      assert.equal(cluster.secretText('demo', 'wiz-creds')?.client_secret, 'edited-by-hand', 'the Secret the record no longer names is left alone');
    }),
  );

  // Review3: the catch-up's `moved` check (F3) runs only when the delivery succeeds. When a destination cannot be
  // written, DELIVERY_INCOMPLETE (exit 4: "the record holds a working, verified credential") is thrown from
  // catchUp first, though the record was edited under the run to a secret that does not sign in.
  test('wiz-service-account: the record is edited to a secret that does not sign in while a catch-up reads the Secret, and delivering to the Secret it now names fails: exit 5, not 4', TEST, () =>
    withDelivery('wiz-service-account', async (e) => {
      const cluster = e.sb.kubernetes.cluster;
      await wizSecretEditedByHand(e);
      // The cluster refuses to create the Secret the record names now.
      const running = whileCatchUpReads(e, { client_secret: 'typed-in-by-a-person', k8s_secret: 'demo/wiz-creds-2' }, () =>
        e.sb.faults.arm({ service: 'kubernetes', operation: 'CreateSecret', kind: 'status', status: 500, times: 50 }),
      );
      const r = await running;
      const record = e.sb.ksm.readRecord(e.uid)!;
      assert.equal(e.sb.wiz.checkSecret(DEMO.wiz.clientId, readText(record.data, 'client_secret') ?? ''), false, "the record's secret does not sign in");
      assert.notEqual(r.code, 4, `exit 4 says the record holds a working credential, and it does not\n${show(r)}`);
      assert.equal(r.code, 5, show(r));
    }),
  );

  // Review3: when the record moved under the catch-up, its fresh secret is delivered before it is checked (F3
  // checks it only afterwards, for the exit code). A person's typo in the record then overwrites a destination
  // that held the one secret Wiz accepts: the last copy of a working credential is lost.
  test('wiz-service-account: the record is edited to a secret that does not sign in while a catch-up reads a Secret; another Secret, holding the secret Wiz accepts, keeps it', TEST, () =>
    withDelivery('wiz-service-account', async (e) => {
      const cluster = e.sb.kubernetes.cluster;
      e.settings({ k8s_secret: 'demo/wiz-creds, demo/wiz-creds-b', k8s_create: 'true' });
      const first = await e.run(K8S_ENV);
      assert.equal(first.code, 0, show(first));
      const working = cluster.secretText('demo', 'wiz-creds-b')!.client_secret!;
      assert.ok(e.sb.wiz.checkSecret(DEMO.wiz.clientId, working), 'the second Secret holds the secret Wiz accepts');
      cluster.editSecret('demo', 'wiz-creds', { client_secret: 'edited-by-hand' });
      const running = whileCatchUpReads(e, { client_secret: 'typed-in-by-a-person' });
      const r = await running;
      assert.equal(r.code, 5, show(r));
      assert.match(r.stderr, /keeper-rotate: KEEPER_REVISION_CONFLICT: .*its secret does not sign in .*so nothing was delivered/);
      assert.ok(e.sb.wiz.checkSecret(DEMO.wiz.clientId, working), 'Wiz still accepts the secret the second Secret held');
      // (Compared without printing either value: the one it holds may be the working secret.)
      assert.ok(cluster.secretText('demo', 'wiz-creds-b')?.client_secret === working, 'the Secret that held the working secret was overwritten with one that does not sign in');
    }),
  );

  test('wiz-service-account: a Secret patch that gets no reply: exit 4 DELIVERY_INCOMPLETE, journal delivering; the next run delivers before rotating', TEST, () =>
    withDelivery('wiz-service-account', async (e) => {
      const cluster = e.sb.kubernetes.cluster;
      e.settings({ k8s_secret: 'demo/wiz-creds', k8s_create: 'true' });
      // The catch-up creates the Secret with the record's secret; the patch after the rotation gets no reply.
      e.sb.faults.arm({ service: 'kubernetes', operation: 'PatchSecret', kind: 'drop' });
      const failed = await e.run(K8S_ENV);
      e.sb.faults.clear();
      assert.equal(failed.code, 4, show(failed));
      assert.match(failed.stderr, /keeper-rotate: DELIVERY_INCOMPLETE: rotated to .* but delivering it failed/);
      assert.ok(e.sb.wiz.checkSecret(DEMO.wiz.clientId, e.text('client_secret')!), "the record's secret signs in");
      assert.equal(journalPhase(e), 'delivering');
      const next = await e.run(K8S_ENV);
      assert.equal(next.code, 0, show(next));
      assert.match(next.stderr, /rotated but did not finish delivering; delivering first/);
      const secret = cluster.secretText('demo', 'wiz-creds')!;
      assert.equal(secret.client_id, DEMO.wiz.clientId);
      assert.equal(secret.client_secret, e.text('client_secret'));
      assert.ok(e.sb.wiz.checkSecret(DEMO.wiz.clientId, secret.client_secret!));
      assert.equal(journalPhase(e), undefined);
    }),
  );
});
