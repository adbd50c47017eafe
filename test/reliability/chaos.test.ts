// The history tester under `npm test`: a fixed set of seeds (test/reliability/chaos.ts), each target under both
// of Keeper's transaction models, every history judged after every step; and controls that feed the checker
// histories known to be broken, so that a checker that stopped seeing anything would fail here too.
//
// Seeds were picked for breadth (see `the fixed seeds cover ...` below): between them they overlap two and three
// gateways, fire one gateway twice, kill runs, inject every fault kind, and do every hand action; and for the
// violations the tester found, so that each stays found until it is fixed and stays fixed after.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { DEMO } from '../../src/sandbox/demo-vault.js';
import type { TransactionModel } from '../../src/sandbox/ksm/index.js';
import type { Sandbox } from '../../src/sandbox/sandbox.js';
import { CHAOS_TARGETS, MODELS, type HandAction, type HistoryPlan, type HistoryResult, type RunOutcome, type Step, formatHistory, planHistory, runHistory } from './chaos.js';
import { buildScripts } from './fault-matrix.js';

const built = buildScripts();
after(() => built.cleanup());

const SEEDS: Array<{ seed: number; target: string; destinations: boolean }> = [
  // Without destinations (these were picked before there were any; forced so, they replay as they did).
  // Three gateways nested three deep, one fired twice; an app open to personal accounts (two secrets at most).
  { seed: 77, target: 'azure-app-secret', destinations: false },
  // Three gateways; secrets added, removed and replaced by hand; a state folder deleted.
  { seed: 108, target: 'azure-app-secret', destinations: false },
  // One gateway fired twice; keys added, deleted and replaced by hand; delete_all_keys_before_rotating.
  { seed: 301, target: 'aws-iam-access-key', destinations: false },
  // Three gateways nested three deep; deactivate_previous_key; keys deleted and replaced by hand.
  { seed: 289, target: 'aws-iam-access-key', destinations: false },
  // Three gateways nested three deep, one fired twice; the secret rotated by hand in Wiz and saved.
  { seed: 135, target: 'wiz-service-account', destinations: false },
  // Two gateways, one fired twice; a state folder deleted; hand rotations.
  { seed: 132, target: 'wiz-service-account', destinations: false },
  // Histories that broke the pipeline before pipeline/machine.ts, kept so that it stays fixed:
  // a sealed Wiz secret stored over the newer one a person saved since;
  { seed: 9, target: 'wiz-service-account', destinations: false },
  // a run that read another gateway's uncommitted save deleting the key the rollback side names (immediate);
  { seed: 303, target: 'aws-iam-access-key', destinations: false },
  // a lost addPassword reply leaving a secret of ours that fills an app open to personal accounts for good.
  { seed: 573509, target: 'azure-app-secret', destinations: false },
  // A gateway holding a sealed Wiz secret (or the token to replace it) fails on Keeper before storing it: the
  // record does not sign in, so the run must say exit 5 (RECOVERY_PENDING), not 3.
  { seed: 573395, target: 'wiz-service-account', destinations: false },
  // With destinations (chaos-destinations.ts):
  // ECR: the file deleted, the logins revoked and expired by hand; a Secret write whose reply is lost.
  { seed: 49, target: 'aws-ecr-pull-secret', destinations: true },
  // ECR: the AWS key it asks with rotated by hand; logins expired and revoked; the Secret edited back to an old login.
  { seed: 351, target: 'aws-ecr-pull-secret', destinations: true },
  // ECR, three gateways: the Secret's own key changed, the Secret deleted, edited back; a dead login pasted; a kill at CreateSecret.
  { seed: 160, target: 'aws-ecr-pull-secret', destinations: true },
  // ECR, three gateways nested three deep: holds at the registry check and at finalize; the file deleted.
  { seed: 48, target: 'aws-ecr-pull-secret', destinations: true },
  // deactivate_previous_key with retire_before_consumers_reload; a Secret there before, with a restart: edited to
  // garbage, deleted (and made again), unmarked, its own key changed; a run held at GetDeployment and killed at finalize.
  { seed: 128, target: 'aws-iam-access-key', destinations: true },
  // Three gateways nested three deep over a file and a created Secret; a CreateSecret reply lost; the file deleted.
  { seed: 120, target: 'aws-iam-access-key', destinations: true },
  // A json file and a created Secret with a restart: faults on PatchDeployment, CreateSecret, GetSecret; unmarked;
  // a kill at PatchSecret in a run held at finalize.
  { seed: 305, target: 'azure-app-secret', destinations: true },
  // Wiz, three gateways, a file: kills at the replace and after it, overlaps at the replace and at finalize.
  { seed: 58, target: 'wiz-service-account', destinations: true },
  // A Wiz run held between its finalize and its delivery while another gateway rotates and delivers wrote its
  // own, replaced secret over the newer one when released, and exited 0 with the destination dead (also seeds 138
  // and 114). Delivery after finalize now reads the record again under a write check.
  { seed: 234, target: 'wiz-service-account', destinations: true },
  // That write check's rollback failing (a 503) after a delivery: the run cleared its journal anyway, so no run
  // ever rolled the check back and every later run, on every gateway, was refused by it.
  { seed: 1044, target: 'azure-app-secret', destinations: true },
  // What a person does that review5 found the tester never did (an AWS key dated now; the record pointed elsewhere):
  // a create whose reply was lost leaves a key, which a person deletes to add one dated now, inside its window;
  { seed: 2959, target: 'aws-iam-access-key', destinations: false },
  // the record pointed at another IAM user after a create of unknown outcome: the final run stops with
  // RECOVERY_RETARGETED, the person points it back, and the run again settles and rotates;
  { seed: 5021, target: 'aws-iam-access-key', destinations: false },
  // the same for an app open to personal accounts, three gateways; and for the demo app, mid-history.
  { seed: 707, target: 'azure-app-secret', destinations: false },
  { seed: 512, target: 'azure-app-secret', destinations: false },
];
const CASES = SEEDS.flatMap((s) => MODELS.map((model) => ({ ...s, model })));

describe('chaos: seeded histories, judged after every step', { concurrency: 2 }, () => {
  for (const c of CASES) {
    test(`seed ${c.seed} · ${c.target} · ${c.model} transactions`, { timeout: 300_000 }, async () => {
      const plan = planHistory(c.seed, { target: c.target, model: c.model, destinations: c.destinations });
      const r = await runHistory(plan, { bundle: built.dir });
      // A history that stopped early (an engine error, a sandbox that never started) must not pass as clean.
      const planned = plan.steps.reduce((n, s) => n + (s.kind === 'run' ? 1 : s.kind === 'overlap' ? s.runs.length : 0), 0);
      // A final run stopped by RECOVERY_RETARGETED runs again once the person has pointed the record back.
      assert.equal(r.runs, planned + plan.gateways.length + r.remedies, `every planned run and one final run per gateway ran\n${formatHistory(r, { calls: true })}`);
      assert.deepEqual(r.violations, [], formatHistory(r, { calls: true }));
    });
  }
});

test('a seed fixes the whole plan; the fixed seeds cover every target, model, fault kind, hand action and destination', () => {
  assert.deepEqual(planHistory(4242), planHistory(4242));
  assert.notDeepEqual(planHistory(4242).steps, planHistory(4243).steps);
  // Forcing the target or model changes only that: the steps are the seed's.
  assert.deepEqual(planHistory(4242, { model: 'immediate' }).gateways, planHistory(4242, { model: 'pending' }).gateways);
  // A history that drew destinations is the same when they are forced (its replay command forces them).
  const drew = [...Array(50).keys()].find((seed) => planHistory(seed).destinations !== undefined)!;
  assert.deepEqual(planHistory(drew, { destinations: true }), planHistory(drew));
  assert.equal(planHistory(drew, { destinations: false }).destinations, undefined);

  const plans = CASES.map((c) => planHistory(c.seed, { target: c.target, model: c.model, destinations: c.destinations }));
  const seen = new Set<string>();
  for (const p of plans) {
    seen.add(`target ${p.target}`).add(`model ${p.model}`).add(`gateways ${p.gateways.length}`);
    if (p.personalApp) seen.add('personal-account app');
    for (const k of Object.keys(p.settings)) seen.add(`setting ${k}`);
    const d = p.destinations;
    if (d) seen.add(`destinations in ${p.target} (${p.model})`);
    if (d?.file) seen.add(`${d.file.format} file`);
    if (d?.secret) seen.add(d.secret.create ? 'Secret created by the run' : 'Secret there before').add(d.secret.restart ? 'Secret with a restart' : 'Secret without a restart');
    if (d?.file && d.secret) seen.add('file and Secret');
    for (const s of p.steps) {
      if (s.kind === 'hand') seen.add(`hand ${s.action.kind === 'destination' ? `${s.action.action.kind}${s.action.action.kind === 'secret-edit' ? ` ${s.action.action.value}` : ''}` : s.action.kind}`);
      if (s.kind === 'overlap') {
        seen.add(`overlap of ${s.runs.length}`);
        if (new Set(s.runs.map((r) => r.gateway)).size < s.runs.length) seen.add('one gateway fired twice');
        if (s.holds.some((h) => h.service === 'kubernetes')) seen.add('held at a Kubernetes call');
      }
      for (const run of s.kind === 'run' ? [s.run] : s.kind === 'overlap' ? s.runs : []) {
        if (run.kill) seen.add('kill');
        // Killed as its finalize lands: the rotation stands, its delivery is the next run's catch-up.
        if (d && run.kill?.operation === 'finalize_secret_update') seen.add('killed between finalize and delivery');
        if (d && run.kill?.service === 'kubernetes') seen.add('killed at a Kubernetes call');
        for (const f of run.faults) {
          seen.add(`fault ${f.kind}`);
          if (f.service === 'kubernetes') seen.add(`fault on Kubernetes ${f.operation}`);
        }
      }
    }
  }
  const wanted = [
    ...CHAOS_TARGETS.map((t) => `target ${t}`),
    ...MODELS.map((m) => `model ${m}`),
    ...['status', 'throttle', 'delay', 'drop', 'corrupt'].map((k) => `fault ${k}`),
    ...['replace', 'add', 'add-now', 'retarget', 'remove', 'edit', 'wipe-state'].map((k) => `hand ${k}`),
    'kill',
    'overlap of 2',
    'overlap of 3',
    'one gateway fired twice',
    'gateways 1',
    'gateways 3',
    'personal-account app',
    'setting delete_all_keys_before_rotating',
    'setting deactivate_previous_key',
    'setting retire_before_consumers_reload',
    ...CHAOS_TARGETS.flatMap((t) => MODELS.map((m) => `destinations in ${t} (${m})`)),
    'env file',
    'json file',
    'Secret created by the run',
    'Secret there before',
    'Secret with a restart',
    'Secret without a restart',
    'file and Secret',
    ...['secret-edit old', 'secret-edit garbage', 'secret-delete', 'secret-unmark', 'secret-other', 'file-delete'].map((k) => `hand ${k}`),
    ...['login-expire', 'login-revoke', 'dead-login', 'key-rotate'].map((k) => `hand ${k}`),
    ...['GetSecret', 'PatchSecret', 'CreateSecret', 'PatchDeployment'].map((o) => `fault on Kubernetes ${o}`),
    'held at a Kubernetes call',
    'killed between finalize and delivery',
    'killed at a Kubernetes call',
  ];
  assert.deepEqual(wanted.filter((w) => !seen.has(w)), []);
});

// ---------------------------------------------------------------------------------------------------------------
// Controls: histories the checker must find broken.

const controlPlan = (target: string, steps: Step[], model: TransactionModel = 'pending'): HistoryPlan => ({
  seed: 0,
  target,
  model,
  gateways: ['A'],
  settings: { verify_timeout_seconds: '5' },
  personalApp: false,
  steps,
});
const cleanRun: Step = { kind: 'run', run: { gateway: 'A', faults: [] } };
const violationsOf = async (plan: HistoryPlan, tamper?: (o: RunOutcome, sb: Sandbox) => void) => {
  const r = await runHistory(plan, { bundle: built.dir, ...(tamper ? { tamper } : {}) });
  return { r, text: formatHistory(r, { calls: true }) };
};
/** Changes step 1's outcome only: the final clean run is judged as it happened. */
const onStep1 = (change: (o: RunOutcome) => void) => (o: RunOutcome) => {
  if (o.label === '1') change(o);
};

describe('controls: the checker reports a broken history', { concurrency: 2 }, () => {
  for (const target of CHAOS_TARGETS) {
    test(`${target}: the record's credential removed on the target by hand is a violation`, { timeout: 120_000 }, async () => {
      const { r, text } = await violationsOf(controlPlan(target, [cleanRun, { kind: 'hand', action: { kind: 'sabotage' } }]));
      assert.ok(
        r.violations.some((v) => v.startsWith("after step 2: the record's credential does not work")),
        `expected a violation after the sabotage\n${text}`,
      );
      assert.equal(r.violations.filter((v) => v.startsWith('step 1 ')).length, 0, `the clean run before it is not blamed\n${text}`);
    });
  }

  test('exit 1 is a violation, and so is an exit without exactly one coded error line', { timeout: 120_000 }, async () => {
    const { r, text } = await violationsOf(
      controlPlan('aws-iam-access-key', [cleanRun]),
      onStep1((o) => {
        o.exit = 1;
        o.stderr += 'keeper-rotate: INTERNAL: one\nkeeper-rotate: INTERNAL: two\n';
        o.codes = ['INTERNAL', 'INTERNAL'];
      }),
    );
    assert.ok(r.violations.some((v) => v.includes('exit 1: an internal error')), text);
    assert.ok(r.violations.some((v) => v.includes('2 "keeper-rotate: CODE:" lines on stderr, not exactly one')), text);
  });

  test("a secret any sandbox issued, in a run's output, is a violation", { timeout: 120_000 }, async () => {
    // The new secret the run made, as if a log line had carried it.
    const { r, text } = await violationsOf(controlPlan('azure-app-secret', [cleanRun]), onStep1((o) => (o.stdout += `\n${o.issued[0] ?? ''}`)));
    assert.ok(r.violations.some((v) => v.startsWith('step 1 ') && v.includes('secret value(s) a sandbox issued appear in the output')), text);
  });

  test('exit 2 after writes, exit 3 with the run\'s credential in the record, exit 0 without one: violations', { timeout: 120_000 }, async () => {
    const rejected = await violationsOf(controlPlan('aws-iam-access-key', [cleanRun]), onStep1((o) => (o.exit = 2)));
    assert.ok(rejected.r.violations.some((v) => v.includes('rejected, yet it wrote: iam CreateAccessKey')), rejected.text);

    const failed = await violationsOf(controlPlan('aws-iam-access-key', [cleanRun]), onStep1((o) => (o.exit = 3)));
    assert.ok(failed.r.violations.some((v) => v.includes('the record holds the credential this run made')), failed.text);

    // A run refused on its first Keeper read saved nothing: claiming exit 0 for it is a lie the checker must see.
    const refused: Step = { kind: 'run', run: { gateway: 'A', faults: [{ service: 'ksm', operation: 'get_secret', nth: 1, kind: 'status' }] } };
    const claimed = await violationsOf(controlPlan('wiz-service-account', [refused]), onStep1((o) => ((o.exit = 0), (o.codes = []))));
    assert.ok(claimed.r.violations.some((v) => v.includes('the record does not hold a credential this run made')), claimed.text);
  });
});

describe('controls: the checker reports a broken destination', { concurrency: 2 }, () => {
  const delivering = (steps: Step[], target = 'aws-iam-access-key'): HistoryPlan => ({
    ...controlPlan(target, steps),
    destinations: { file: { format: 'env' }, secret: { name: 'app-creds', create: false, restart: true } },
  });

  test('a retired credential in the Secret, no person having put it there, is a violation', { timeout: 120_000 }, async () => {
    // Two rotations: the demo's first key is deleted by the second (IAM keeps CURRENT and LAST).
    const { r, text } = await violationsOf(delivering([cleanRun, cleanRun, { kind: 'hand', action: { kind: 'sabotage-destination', what: 'retired' } }]));
    assert.ok(r.violations.some((v) => v.startsWith('after step 3: the Secret demo/app-creds holds a credential the record held, which no longer works')), text);
    assert.equal(r.violations.filter((v) => /^step [12] /.test(v)).length, 0, `the clean runs before it are not blamed\n${text}`);
  });

  test("the Secret's own key lost is a violation", { timeout: 120_000 }, async () => {
    const { r, text } = await violationsOf(delivering([cleanRun, { kind: 'hand', action: { kind: 'sabotage-destination', what: 'own-key' } }]));
    assert.ok(r.violations.some((v) => v.startsWith("after step 2: the Secret's own key database_host (not ours) was lost")), text);
  });

  test('exit 0 with a destination behind, and exit 4 with none behind, are violations', { timeout: 120_000 }, async () => {
    // The Secret's write refused: the run stops before rotating (exit 4), here claimed as a success.
    const refused: Step = { kind: 'run', run: { gateway: 'A', faults: [{ service: 'kubernetes', operation: 'PatchSecret', nth: 1, kind: 'status' }] } };
    const claimed = await violationsOf(delivering([refused]), onStep1((o) => ((o.exit = 0), (o.codes = []))));
    assert.ok(claimed.r.violations.some((v) => v.startsWith('step 1 ') && v.includes('exit 0, yet Secret demo/app-creds (holds nothing of ours)')), claimed.text);

    const alarmed = await violationsOf(delivering([cleanRun]), onStep1((o) => ((o.exit = 4), (o.codes = ['DELIVERY_INCOMPLETE']))));
    assert.ok(alarmed.r.violations.some((v) => v.startsWith('step 1 ') && v.includes("exit 4 DELIVERY_INCOMPLETE, yet every destination holds the record's credential")), alarmed.text);
  });

  test('a destination left behind after the final clean runs is a violation', { timeout: 120_000 }, async () => {
    // The final run's work undone behind its back: its Deployment no longer carries the Secret's delivery.
    const undo = (o: RunOutcome, sb: Sandbox) => {
      if (o.label !== 'final A') return;
      const d = sb.kubernetes.cluster.deployment('demo', 'app')!;
      const template = (d.spec as { template: { metadata: { annotations?: Record<string, string> } } }).template;
      template.metadata.annotations = {};
      sb.kubernetes.cluster.putDeployment('demo', 'app', d);
    };
    const { r, text } = await violationsOf(delivering([cleanRun]), undo);
    assert.ok(r.violations.some((v) => v.startsWith('after the final runs: the Secret demo/app-creds (Deployment demo/app not restarted with it), after a clean run on every gateway')), text);
  });
});

describe("controls: a person's key, and a record pointed at another resource", { concurrency: 2 }, () => {
  const AWS = 'aws-iam-access-key';
  // IAM answers the create with a 503 and makes nothing: the run ends with the create's window journaled (exit 5).
  const createUnanswered: Step = { kind: 'run', run: { gateway: 'A', faults: [{ service: 'iam', operation: 'CreateAccessKey', nth: 1, kind: 'status' }] } };
  const hand = (action: HandAction): Step => ({ kind: 'hand', action });
  /** The run of step `label` deletes the key a person added (as a bug would), and says so. */
  const deletesHandKey = (label: string) => (o: RunOutcome, sb: Sandbox) => {
    if (o.label !== label) return;
    const user = DEMO.aws.userName;
    const theirs = sb.aws.listKeys(user).find((k) => !o.named.includes(k.accessKeyId) && !o.created.includes(k.accessKeyId));
    assert.ok(theirs, 'the key a person added is on the user');
    sb.aws.deleteAccessKey(user, theirs.accessKeyId);
    o.removed.push(theirs.accessKeyId);
  };
  /** Step 1 said it needs attention: its create's outcome stays unknown, and its window is journaled. */
  const journaled = (r: HistoryResult) => r.lines.some((l) => /^ {2}1\. .* → exit 5 /.test(l));

  test('a key a person added, removed by a run with no create window journaled, is a violation', { timeout: 120_000 }, async () => {
    const { r, text } = await violationsOf(controlPlan(AWS, [hand({ kind: 'add-now' }), cleanRun]), deletesHandKey('2'));
    assert.ok(r.lines.includes('  1. hand: added a key dated now by hand (not in the record)'), text);
    assert.ok(r.violations.some((v) => v.startsWith('step 2 ') && v.includes('it removed 1 credential(s) it did not make and the record did not name (a hand-made one)')), text);
  });

  test("a key a person added a day before an interrupted create's window, removed by the next run, is a violation", { timeout: 120_000 }, async () => {
    const { r, text } = await violationsOf(controlPlan(AWS, [createUnanswered, hand({ kind: 'add' }), cleanRun]), deletesHandKey('3'));
    assert.ok(r.lines.includes('  2. hand: added a key by hand (not in the record)'), text);
    assert.ok(journaled(r), `step 1 ends with the create's window journaled\n${text}`);
    assert.ok(r.violations.some((v) => v.startsWith('step 3 ') && v.includes('it removed 1 credential(s) it did not make and the record did not name (a hand-made one)')), text);
  });

  test("a key a person adds inside an interrupted create's window may be taken for its leftover (the README's known limit), and only then", { timeout: 120_000 }, async () => {
    const { r, text } = await violationsOf(controlPlan(AWS, [createUnanswered, hand({ kind: 'add-now' }), cleanRun]));
    assert.ok(journaled(r), `step 1 ends with the create's window journaled\n${text}`);
    assert.ok(r.lines.includes('  2. hand: added a key dated now by hand (not in the record)'), text);
    assert.deepEqual(r.violations, [], text);
    assert.ok(r.excused.some((e) => e.startsWith('step 3 ') && e.includes("a key a person added inside an interrupted create's window")), `the run removed the person's key, and the checker said why it accepts that\n${text}`);
  });

  test('RECOVERY_RETARGETED with a journal that names the record\'s own resource (or none) is a violation', { timeout: 120_000 }, async () => {
    const { r, text } = await violationsOf(
      controlPlan(AWS, [cleanRun]),
      onStep1((o) => ((o.exit = 5), (o.codes = ['RECOVERY_RETARGETED']))),
    );
    assert.ok(r.violations.some((v) => v.startsWith('step 1 ') && v.includes("RECOVERY_RETARGETED, yet its gateway's journal names no resource but the record's (iam-user:demo-deploy-bot)")), text);
    assert.ok(r.violations.some((v) => v.startsWith('step 1 ') && v.includes('RECOVERY_RETARGETED, yet it wrote: iam CreateAccessKey')), text);
    assert.ok(r.violations.some((v) => v.startsWith('step 1 ') && v.includes('RECOVERY_RETARGETED, yet the record changed besides its last_rotation_* fields')), text);
  });

  test('a run whose journal names another resource stops with RECOVERY_RETARGETED, the person points the record back, and the next run settles it', { timeout: 120_000 }, async () => {
    const { r, text } = await violationsOf(controlPlan(AWS, [createUnanswered, hand({ kind: 'retarget' }), cleanRun]));
    assert.deepEqual(r.violations, [], text);
    assert.ok(r.lines.some((l) => l.startsWith('  3. ') && l.endsWith('→ exit 5 RECOVERY_RETARGETED')), text);
    assert.ok(r.lines.some((l) => l.startsWith('  person: pointed the record at iam-user:demo-deploy-bot') && l.endsWith('as RECOVERY_RETARGETED asked')), text);
    assert.ok(r.lines.some((l) => l === '  final A. A · no faults → exit 0'), text);
  });

  test('a run that changes the target while its journal names another resource is a violation', { timeout: 120_000 }, async () => {
    const { r, text } = await violationsOf(controlPlan(AWS, [createUnanswered, hand({ kind: 'retarget' }), cleanRun]), (o) => {
      if (o.label === '3') o.calls.push({ ...o.calls[0]!, service: 'iam', operation: 'DeleteAccessKey' });
    });
    assert.ok(r.violations.some((v) => v.startsWith('step 3 ') && v.includes("its gateway's journal names iam-user:demo-deploy-bot, not iam-user:demo-moved-bot, yet it changed the target (iam DeleteAccessKey)")), text);
  });
});
