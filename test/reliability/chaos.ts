// The history tester (`npm run chaos`, and a fixed set of seeds in chaos.test.ts): seeded random histories of
// runs, faults, kills, overlapping gateways and what people do between runs, each against a fresh in-process
// sandbox, judged after every step from the sandbox's own state and request log. The fault matrix proves one
// fault in one run; real gateways see sequences: a kill, then a hand edit, then another gateway's run over the
// first one's journal. A seed fixes the whole plan before anything runs (the PRNG is never consulted after a
// run started), so `npm run chaos -- --seed N` replays the history a report printed.
//
// How overlapping runs stay repeatable: a run is held at a chosen call with a `delay` fault whose `release`
// settles only when the run nested in it has ended (concurrency.test.ts does the same), so at any moment exactly
// one run makes calls. That makes each request in the log, and each credential that appears or disappears on the
// target, attributable to one run; and the sandbox's fault plan (which counts calls per service and operation,
// from any client) is disarmed while a run is held and re-armed for it, counting on from where it stopped.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { HARD_STOP_GRACE_MS } from '../../src/cli/main.js';
import type { RecordData } from '../../src/keeper/record-data.js';
import { cloneData, readText, writeText } from '../../src/keeper/record.js';
import { sameBesidesOutcome } from '../../src/pipeline/outcome.js';
import { ECR_TOKEN_LIFETIME_MS } from '../../src/sandbox/aws/ecr-tokens.js';
import { DEMO } from '../../src/sandbox/demo-vault.js';
import { TRANSPORT_FAULT_KINDS as FAULT_KINDS, type FaultSpec, type RequestLogEntry } from '../../src/sandbox/faults.js';
import { type RecordView, TRANSACTION_MODELS, type TransactionModel } from '../../src/sandbox/ksm/index.js';
import { type Sandbox, startSandbox } from '../../src/sandbox/sandbox.js';
import { type DestinationAction, type DestinationPlan, DESTINATION_WRITES, HistoryDestinations, actionsFor, describeDestinations, drawDestinations } from './chaos-destinations.js';
import {
  type CaseKind,
  ORACLES,
  ORACLE_NAMES,
  REQUEST_TIMEOUT_SECONDS,
  type RunLimits,
  type TargetOracle,
  faultSpec,
  journalEntries,
  possibleData,
  runBuilt,
} from './fault-matrix.js';

// ---------------------------------------------------------------------------------------------------------------
// Seeded choices.

/** mulberry32: a tiny PRNG whose whole state is one 32-bit word, so a seed is all a history needs. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Rng {
  readonly #next: () => number;
  constructor(seed: number) {
    // Consecutive seeds would otherwise start from neighbouring states; one multiply spreads them.
    this.#next = mulberry32(Math.imul(seed >>> 0, 0x9e3779b1) ^ 0x5bd1e995);
  }
  next(): number {
    return this.#next();
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  weighted<T>(items: ReadonlyArray<readonly [T, number]>): T {
    const total = items.reduce((n, [, w]) => n + w, 0);
    let r = this.next() * total;
    for (const [item, w] of items) {
      r -= w;
      if (r < 0) return item;
    }
    return items[items.length - 1]![0];
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Plans: everything a history will do, fixed by the seed before it starts.

/**
 * The rotations the histories walk, ECR's among them: its "credential" is a set of registry logins that expire on
 * their own and are never listed or removed on AWS, so it is judged by value (the logins in the record were
 * issued by the run that claims them), and its hand actions are its own (a login expired or revoked, the record
 * edited with a dead login, the AWS key it asks with rotated by hand).
 */
export const CHAOS_TARGETS: readonly string[] = ORACLE_NAMES;
const ECR = 'aws-ecr-pull-secret';
export const MODELS: readonly TransactionModel[] = TRANSACTION_MODELS;
export const GATEWAY_NAMES = ['A', 'B', 'C'] as const;
export const DEFAULT_STEPS = 8;

export interface Call {
  service: string;
  operation: string;
  /** The nth call of this service and operation in the run (from its start), 1 = the first. */
  nth: number;
}

export interface PlannedFault extends Call {
  kind: (typeof FAULT_KINDS)[number];
}

export interface PlannedRun {
  gateway: string;
  faults: PlannedFault[];
  /** SIGKILL the script the moment this call arrives (the sandbox still applies it, as fault-matrix.ts does). */
  kill?: Call;
}

export type HandAction =
  /** A person makes a new credential on the target and saves it in the record (the old current one as previous). */
  | { kind: 'replace' }
  /** A person adds a credential on the target that the record does not name (AWS: a key made a day ago). */
  | { kind: 'add' }
  /**
   * AWS: a person adds a key dated now, which the record does not name: right after a create whose outcome stayed
   * unknown it falls inside that create's window, where the README's known limit lets the next run take it for
   * the leftover.
   */
  | { kind: 'add-now' }
  /**
   * A person points the record at the other resource it can name (AWS: another IAM user, with that user's key;
   * Azure: another app the admin owns, with its secret), saving what the record held for the one it leaves; the
   * next time, back. The person's remedy after RECOVERY_RETARGETED (see History.remedy) is the same move.
   */
  | { kind: 'retarget'; to?: string }
  /** A person removes a credential on the target other than the record's current one. */
  | { kind: 'remove' }
  /** A person edits a field of the record no script reads. */
  | { kind: 'edit' }
  /** A person deletes a gateway's state folder (only when it holds no journal: the README says to keep it then). */
  | { kind: 'wipe-state'; gateway: string }
  /** ECR: the record's logins expire (twelve hours pass on ECR's clock, and every login issued so far is dead). */
  | { kind: 'login-expire' }
  /** ECR: the record's logins are revoked. */
  | { kind: 'login-revoke' }
  /** ECR: a person pastes a Docker config with a dead login into the record. */
  | { kind: 'dead-login' }
  /** ECR: a person rotates the AWS key the record asks ECR with: a new key saved in the record, the old one deleted. */
  | { kind: 'key-rotate' }
  /** What a person does to one of the record's destinations (chaos-destinations.ts). */
  | { kind: 'destination'; action: DestinationAction }
  /** Never planned from a seed: the control tests break the record's credential to prove the checker sees it. */
  | { kind: 'sabotage' }
  /** Never planned: a control puts a retired credential into the Secret (or drops its own key), as a bug would. */
  | { kind: 'sabotage-destination'; what: 'retired' | 'own-key' };

export type Step =
  | { kind: 'run'; run: PlannedRun }
  /** runs[i] is held at holds[i] until runs[i + 1] (and whatever is nested in it) has ended. */
  | { kind: 'overlap'; runs: PlannedRun[]; holds: Call[] }
  | { kind: 'hand'; action: HandAction };

export interface HistoryPlan {
  seed: number;
  target: string;
  model: TransactionModel;
  gateways: string[];
  /** Settings written into the record before the first step. */
  settings: Record<string, string>;
  /** Azure: the record names an app open to personal accounts, which may hold two secrets at most. */
  personalApp: boolean;
  /** Where the record delivers (none when absent or empty). */
  destinations?: DestinationPlan;
  steps: Step[];
}

export interface PlanOptions {
  target?: string;
  model?: TransactionModel;
  steps?: number;
  /** true: at least one destination; false: none; unset: the seed draws (none among the choices). */
  destinations?: boolean;
}

/** Operations a rotation makes, recovery ones included, and how often a fault there is worth trying. */
const OPERATIONS: Record<string, ReadonlyArray<readonly [readonly [string, string], number]>> = {
  'azure-app-secret': [
    [['ksm', 'get_secret'], 2],
    [['azure', 'token'], 2],
    [['azure', 'getApplication'], 1],
    [['azure', 'addPassword'], 3],
    [['ksm', 'update_secret'], 3],
    [['ksm', 'finalize_secret_update'], 3],
    [['ksm', 'rollback_secret_update'], 1],
    [['azure', 'removePassword'], 2],
  ],
  'aws-iam-access-key': [
    [['ksm', 'get_secret'], 2],
    [['iam', 'ListAccessKeys'], 2],
    [['iam', 'DeleteAccessKey'], 2],
    [['iam', 'CreateAccessKey'], 3],
    [['ksm', 'update_secret'], 3],
    [['sts', 'GetCallerIdentity'], 2],
    [['ksm', 'finalize_secret_update'], 3],
    [['ksm', 'rollback_secret_update'], 1],
    [['iam', 'UpdateAccessKey'], 1],
  ],
  'wiz-service-account': [
    [['ksm', 'get_secret'], 2],
    [['wiz-auth', 'token'], 2],
    [['wiz-api', 'serviceAccounts'], 1],
    [['ksm', 'update_secret'], 3],
    [['ksm', 'rollback_secret_update'], 2],
    [['wiz-api', 'rotateServiceAccountSecret'], 3],
    [['ksm', 'finalize_secret_update'], 3],
    [['wiz-api', 'updateServiceAccount'], 1],
  ],
  'aws-ecr-pull-secret': [
    [['ksm', 'get_secret'], 2],
    [['ecr', 'GetAuthorizationToken'], 3],
    [['ecr-registry', 'ApiVersionCheck'], 3],
    [['ksm', 'update_secret'], 3],
    [['ksm', 'finalize_secret_update'], 3],
    [['ksm', 'rollback_secret_update'], 1],
  ],
};

/** The Kubernetes calls a delivery makes, by what the record's Secret asks for (none for a file: it makes no call). */
function deliveryOperations(plan: DestinationPlan): ReadonlyArray<readonly [readonly [string, string], number]> {
  const s = plan.secret;
  if (!s) return [];
  return [
    [['kubernetes', 'GetSecret'], 2],
    [['kubernetes', 'PatchSecret'], 3],
    ...(s.create ? ([[['kubernetes', 'CreateSecret'], 1]] as const) : []),
    ...(s.restart ? ([[['kubernetes', 'GetDeployment'], 1], [['kubernetes', 'PatchDeployment'], 2]] as const) : []),
  ];
}

const HAND_ACTIONS: Record<string, ReadonlyArray<readonly [HandAction['kind'], number]>> = {
  'azure-app-secret': [['replace', 30], ['add', 15], ['remove', 15], ['edit', 20], ['wipe-state', 20]],
  'aws-iam-access-key': [['replace', 30], ['add', 15], ['remove', 15], ['edit', 20], ['wipe-state', 20]],
  // One secret per account: nothing to add or remove beside it.
  'wiz-service-account': [['replace', 40], ['edit', 30], ['wipe-state', 30]],
  'aws-ecr-pull-secret': [['login-expire', 20], ['login-revoke', 15], ['dead-login', 20], ['key-rotate', 15], ['edit', 15], ['wipe-state', 15]],
};

/** Targets whose record names a resource a person can point elsewhere (Wiz's account is the record's own login). */
const RETARGETS: readonly string[] = ['aws-iam-access-key', 'azure-app-secret'];
/** Of the hand steps on those targets: how many point the record elsewhere (or back). */
const RETARGET_SHARE = 0.15;
/** Of the AWS keys a person adds: how many are dated now rather than a day ago. */
const ADD_NOW_SHARE = 0.6;

const callKey = (c: Call) => `${c.service} ${c.operation}#${c.nth}`;

type Operations = ReadonlyArray<readonly [readonly [string, string], number]>;

function planCall(rng: Rng, ops: Operations, nths: ReadonlyArray<readonly [number, number]> = [[1, 70], [2, 22], [3, 8]]): Call {
  const [service, operation] = rng.weighted(ops);
  return { service, operation, nth: rng.weighted(nths) };
}

/**
 * A held run waits at its hold for the whole nested run, so it gets a request timeout longer than any nested
 * run, and therefore no `delay` of its own: a hang past that timeout would cost a minute.
 */
function planRun(rng: Rng, ops: Operations, gateway: string, hold?: Call): PlannedRun {
  const taken = new Set<string>(hold ? [callKey(hold)] : []);
  const kinds = hold ? FAULT_KINDS.filter((k) => k !== 'delay') : FAULT_KINDS;
  const faults: PlannedFault[] = [];
  const count = rng.weighted([[0, 35], [1, 40], [2, 20], [3, 5]] as const);
  for (let i = 0; i < count; i++) {
    const call = planCall(rng, ops);
    const kind = rng.pick(kinds);
    if (taken.has(callKey(call))) continue;
    taken.add(callKey(call));
    faults.push({ ...call, kind });
  }
  const run: PlannedRun = { gateway, faults };
  if (rng.chance(0.2)) {
    const kill = planCall(rng, ops);
    if (!taken.has(callKey(kill))) run.kill = kill;
  }
  return run;
}

export function planHistory(seed: number, options: PlanOptions = {}): HistoryPlan {
  const rng = new Rng(seed);
  // Drawn even when forced, so that forcing the target does not shift every later choice of the seed.
  const drawnTarget = rng.pick(CHAOS_TARGETS);
  const drawnModel = rng.pick(MODELS);
  const target = options.target ?? drawnTarget;
  const model = options.model ?? drawnModel;
  if (!CHAOS_TARGETS.includes(target)) throw new Error(`unknown target ${target}; one of ${CHAOS_TARGETS.join(', ')}`);
  if (!MODELS.includes(model)) throw new Error(`unknown model ${model}; one of ${MODELS.join(', ')}`);
  const gateways = GATEWAY_NAMES.slice(0, rng.weighted([[1, 25], [2, 45], [3, 30]] as const));
  // Short enough that a verification that cannot succeed ends well inside a run's deadline.
  const settings: Record<string, string> = { verify_timeout_seconds: '5' };
  let personalApp = false;
  if (target === 'aws-iam-access-key') {
    if (rng.chance(0.4)) settings.delete_all_keys_before_rotating = 'true';
    if (rng.chance(0.25)) settings.deactivate_previous_key = 'true';
  } else if (target === 'azure-app-secret') {
    personalApp = rng.chance(0.35);
  }
  // Destinations, and the hand actions on them, come from a stream of their own: a seed's other choices are the
  // same with or without them (so the fixed seeds picked before destinations existed replay as they did).
  const drng = new Rng(seed ^ 0x64657374);
  // The hand actions added later (a key dated now, the record pointed elsewhere) likewise: two draws at every hand
  // step, whatever they decide, so that the seed's own stream goes on as it did before them.
  const prng = new Rng(seed ^ 0x70656f70);
  const destinations = drawDestinations(drng, target, options.destinations);
  const destinationActions = actionsFor(destinations);
  // With destinations a setting that retires the replaced credential at once is refused unless the record accepts
  // it; a history that draws one accepts it (and is judged by the weaker promise, chaos-destinations.ts).
  if (destinationActions.length > 0 && settings.deactivate_previous_key === 'true') settings.retire_before_consumers_reload = 'true';
  const ops: Operations = [...OPERATIONS[target]!, ...deliveryOperations(destinations)];
  const steps: Step[] = [];
  const count = options.steps ?? DEFAULT_STEPS;
  for (let i = 0; i < count; i++) {
    const r = rng.next();
    if (r < 0.45) {
      steps.push({ kind: 'run', run: planRun(rng, ops, rng.pick(gateways)) });
    } else if (r < 0.7) {
      const depth = gateways.length >= 3 && rng.chance(0.35) ? 3 : 2;
      // Distinct gateways race through Keeper's revision check; one gateway fired twice meets its own lock.
      const chosen: string[] = [];
      for (let j = 0; j < depth; j++) {
        const free = gateways.filter((g) => !chosen.includes(g));
        const twice = chosen.length > 0 && rng.chance(0.1);
        chosen.push(free.length > 0 && !twice ? rng.pick(free) : rng.pick(chosen));
      }
      // Mostly the first call of its kind, so that the hold is reached and the runs really overlap.
      const holds = chosen.slice(0, -1).map(() => planCall(rng, ops, [[1, 85], [2, 15]]));
      const runs = chosen.map((g, j) => planRun(rng, ops, g, holds[j]));
      steps.push({ kind: 'overlap', runs, holds });
    } else {
      // A credential added by hand fills IAM's quota (or a personal-account app) for good unless a setting lets
      // runs delete it: one is worth seeing, but it would turn the rest of most histories into refusals.
      const blocks = (target === 'aws-iam-access-key' && settings.delete_all_keys_before_rotating !== 'true') || personalApp;
      const kind = rng.weighted(HAND_ACTIONS[target]!.map(([k, w]) => [k, k === 'add' && blocks ? w / 5 : w] as const));
      let action: HandAction = kind === 'wipe-state' ? { kind, gateway: rng.pick(gateways) } : ({ kind } as HandAction);
      const [pointElsewhere, dateNow] = [prng.next(), prng.next()];
      // Not beside destinations: what they hold is judged against the record's one resource (chaos-destinations.ts).
      if (RETARGETS.includes(target) && destinationActions.length === 0 && pointElsewhere < RETARGET_SHARE) action = { kind: 'retarget' };
      else if (target === 'aws-iam-access-key' && kind === 'add' && dateNow < ADD_NOW_SHARE) action = { kind: 'add-now' };
      // Drawn after the action above, so that the seed's own stream goes on as it would without destinations.
      if (destinationActions.length > 0 && drng.chance(0.5)) {
        const which = drng.pick(destinationActions);
        steps.push({ kind: 'hand', action: { kind: 'destination', action: which === 'secret-edit' ? { kind: which, value: drng.chance(0.5) ? 'old' : 'garbage' } : { kind: which } } });
      } else steps.push({ kind: 'hand', action });
    }
  }
  return { seed, target, model, gateways, settings, personalApp, ...(destinationActions.length > 0 ? { destinations } : {}), steps };
}

export function replayCommand(plan: HistoryPlan): string {
  const destinations = plan.destinations && (plan.destinations.file || plan.destinations.secret) ? 'yes' : 'no';
  return `npm run chaos -- --seed ${plan.seed} --target ${plan.target} --model ${plan.model} --steps ${plan.steps.length} --destinations ${destinations}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Running a history.

/** Ordinary runs: short, so histories are quick; a hang (fault-matrix's HANG_MS) outlasts the request timeout. */
const RUN_LIMITS: RunLimits = { deadlineSeconds: 20, requestTimeoutSeconds: REQUEST_TIMEOUT_SECONDS };
/** A held run waits at its hold for the runs nested in it; its request timeout must outlast them all. */
const HELD_LIMITS: RunLimits = { deadlineSeconds: 150, requestTimeoutSeconds: 100 };
const HOLD_CAP_MS = 90_000;
/** How long to wait for the sandbox to finish faulted calls (a hang lands HANG_MS after it arrived). */
const QUIET_CAP_MS = 30_000;

const WRITES: Record<string, readonly string[]> = {
  ksm: ['update_secret', 'finalize_secret_update', 'rollback_secret_update'],
  azure: ['addPassword', 'removePassword'],
  iam: ['CreateAccessKey', 'DeleteAccessKey', 'UpdateAccessKey'],
  'wiz-api': ['rotateServiceAccountSecret', 'updateServiceAccount'],
  kubernetes: DESTINATION_WRITES,
};
const isWrite = (e: RequestLogEntry) => WRITES[e.service]?.includes(e.operation) ?? false;
const CODE_LINE = /^keeper-rotate: ([A-Z][A-Z0-9_]*): /;
const CALLS_PREFIX = '        requests: ';

export interface RunOutcome {
  /** Where in the history: `3`, `3b`, `final A`. */
  label: string;
  gateway: string;
  plan: PlannedRun;
  hold?: { call: Call; reached: boolean };
  final: boolean;
  exit: number | 'killed';
  /** The CODE of each `keeper-rotate: CODE: message` line on stderr. */
  codes: string[];
  stdout: string;
  stderr: string;
  /** Every request the sandbox saw from this run. */
  calls: RequestLogEntry[];
  /** Credential IDs that appeared on the target while this run was the one running. */
  created: string[];
  /** Credential IDs that disappeared from the target while this run was the one running. */
  removed: string[];
  /** Values the target's sandbox issued while this run was the one running (Wiz: the secrets it switched to). */
  issued: string[];
  /** The transaction this run was last seen to open (see txKey), if any. */
  openedTx?: string;
  /** Faults (and the kill) that fired, as `service operation#nth kind`. */
  fired: string[];
  /** Credential IDs the record named (either side of an open transaction) when the run started. */
  named: string[];
  /**
   * Held runs: whether the record held a credential this run made (no transaction of its own open) when it was
   * held, and what the runs nested in the hold saved: a run held while it retires old credentials finds, once
   * released, a newer rotation in the record, which is no broken promise.
   */
  savedBeforeHold?: boolean;
  savedByNested?: string[];
  /** What the record's destinations held when the run started (chaos-destinations.ts `fingerprint`). */
  destinationsBefore?: string;
  /** The resource the record named when the run started (as the scripts' journal entries name it), if any. */
  principal?: string;
  /** What the record held when the run started. */
  dataBefore?: RecordData;
  /** Its gateway's journal entries when the run started, and when it ended. */
  journal: JournalView[];
  journalAfter?: JournalView[];
}

/** What the checker reads of a journal entry (src/state/journal.ts JournalEntry). */
export interface JournalView {
  recordUid?: string;
  phase?: string;
  principal?: string;
  since?: string;
  until?: string;
  existing?: string[];
  credentialId?: string;
  inherited?: { since: string; until?: string; existing?: string[] };
}

const journalOf = (stateDir: string) => journalEntries(stateDir) as JournalView[];

/**
 * The resource an entry names when it holds something there and the record names another (machine.ts
 * `retargeted`): a credential it made, a create of unknown outcome (its own or one it carries), a sealed secret.
 * A run on the record then changes nothing and stops with RECOVERY_RETARGETED. An entry owed only a delivery is
 * not resumed, so it stops nothing.
 */
export function elsewhere(entry: JournalView, principal: string | undefined): string | undefined {
  if (!entry.principal || !principal || entry.principal.toLowerCase() === principal || entry.phase === 'delivering') return undefined;
  const holds = entry.credentialId !== undefined || entry.phase === 'creating' || entry.inherited !== undefined || entry.phase === 'unsaved';
  return holds ? entry.principal.toLowerCase() : undefined;
}

/** IAM's clock and the gateway's may differ: a create window is widened by a minute each way (aws plan.ts SKEW_MS). */
const WINDOW_SKEW_MS = 60_000;
/** What the record names per resource: saved when a person points it elsewhere, written back when they point it back. */
const RESOURCE_FIELDS: Record<string, readonly string[]> = {
  'aws-iam-access-key': ['login', 'aws_access_key_id', 'aws_secret_access_key', 'CreateDate', 'previous_aws_access_key_id'],
  'azure-app-secret': ['application_object_id', 'client_secret_id', 'client_secret', 'expires', 'previous_client_secret_ids'],
};
const SECRET_FIELDS = ['aws_secret_access_key', 'client_secret'];
/** The other resource a person points the record at: an IAM user the admin may manage, an app the admin owns. */
const OTHER_AWS_USER = 'demo-moved-bot';
const OTHER_AZURE_APP = 'moved-here-app';
const PERSONAL_AUDIENCES = ['AzureADandPersonalMicrosoftAccount', 'PersonalMicrosoftAccount'];

export interface HistoryResult {
  plan: HistoryPlan;
  /** Final runs run again after the person's remedy for RECOVERY_RETARGETED (on top of one per gateway). */
  remedies: number;
  /** The history as it happened, one line per step or run. */
  lines: string[];
  violations: string[];
  /**
   * States the checker accepted only because a run had said it needs attention (exit 5), or was killed mid-replace,
   * or a person broke the record's credential (ECR: a login expired or revoked, a dead login pasted).
   */
  excused: string[];
  /** What looks wrong without breaking an invariant (see judgeRun). */
  warnings: string[];
  runs: number;
  ms: number;
}

export interface HistoryOptions {
  /** A folder with the built scripts (fault-matrix.ts's buildScripts). */
  bundle: string;
  /**
   * Control tests only: change a run's outcome (or, through the sandbox, what it left behind) before it is
   * judged, to prove the checker catches it.
   */
  tamper?: (o: RunOutcome, sb: Sandbox) => void;
}

interface Gateway {
  name: string;
  env: Record<string, string>;
  stateDir: string;
  /**
   * Why the record may not work until this gateway's next run ends (see excuse()); kept across runs of it that
   * are killed, which finish nothing.
   */
  pending?: string;
  /** Values in its KSM config that must never be printed. */
  secrets: string[];
}

interface Segment {
  seq: number;
  /** On every resource the record has named (a run must not touch one it does not name now). */
  creds: Set<string>;
  issued: number;
  tx: string | undefined;
}

const text = (data: RecordData, label: string) => readText(data, label);

/** The `auths` of a Docker config (empty when it is none). */
function parseAuths(config: string | undefined): Record<string, { password?: unknown }> {
  try {
    const auths = (JSON.parse(config ?? '') as { auths?: unknown }).auths;
    return typeof auths === 'object' && auths !== null ? (auths as Record<string, { password?: unknown }>) : {};
  } catch {
    return {};
  }
}

/** The registry passwords (the logins) a Docker config holds. */
const loginPasswords = (config: string | undefined) => Object.values(parseAuths(config)).flatMap((a) => (typeof a?.password === 'string' ? [a.password] : []));
/** Identifies an open transaction: its revision and data are fixed when it opens. */
const txKey = (view: RecordView) => (view.transaction ? JSON.stringify([view.transaction.revision, view.transaction.data]) : undefined);
/** Runs of an overlap (`3a`, `3b`) sit under their step's line. */
const indent = (label: string) => (/^\d+[a-z]$/.test(label) ? '    ' : '  ');
const exitText = (o: RunOutcome) => (o.exit === 'killed' ? 'killed' : `exit ${o.exit}${o.codes.length > 0 ? ` ${o.codes.join(' ')}` : ''}`);

export function describeRun(run: PlannedRun, fired?: string[]): string {
  const mark = (name: string) => (fired && !fired.includes(name) ? `${name} (not reached)` : name);
  const faults = run.faults.map((f) => mark(`${callKey(f)} ${f.kind === 'status' ? '503' : f.kind}`));
  const parts = [faults.length > 0 ? `faults: ${faults.join(', ')}` : 'no faults'];
  if (run.kill) parts.push(`kill at ${callKey(run.kill)}${fired && !fired.includes(`${callKey(run.kill)} kill`) ? ' (not reached)' : ''}`);
  return `${run.gateway} · ${parts.join(' · ')}`;
}

class History {
  readonly lines: string[] = [];
  readonly violations: string[] = [];
  readonly excused: string[] = [];
  readonly warnings: string[] = [];
  runs = 0;
  /** Credentials a run made (whoever's run), and credentials a person made. */
  readonly ours = new Set<string>();
  readonly hand = new Set<string>();
  /** AWS: when a person made each key they added, and on which user (what a create window is judged by). */
  readonly #handMade = new Map<string, { at: number; principal: string }>();
  /** Every resource the record has named (its principal), and what it held for each one it no longer names. */
  readonly #resources = new Set<string>();
  readonly #saved = new Map<string, Record<string, string>>();
  /** Set by a run that stopped with RECOVERY_RETARGETED: the resource its journal names, where the person points the record back. */
  #remedyDue: string | undefined;
  remedies = 0;
  readonly gateways = new Map<string, Gateway>();
  /** Runs held at a call while a nested run goes on. */
  readonly inFlight: RunOutcome[] = [];
  readonly outcomes: RunOutcome[] = [];
  readonly oracle: TargetOracle;
  #fired = 0;
  #holdsWaiting = 0;
  #edits = 0;
  #tags = 0;
  #max = 0;
  /** A broken record was reported and has not worked since: what follows from it is traced, not counted again. */
  #broken = false;
  /** Why the record's credential does not work through no run's fault (ECR: a login expired or revoked, a dead login pasted). */
  #handBroken: string | undefined;
  readonly destinations: HistoryDestinations;

  constructor(
    readonly sb: Sandbox,
    readonly dir: string,
    readonly plan: HistoryPlan,
    readonly options: HistoryOptions,
  ) {
    this.oracle = ORACLES[plan.target]!;
    sb.faults.onFire(() => (this.#fired += 1));
    // Where the replaced credential dies before delivery (in place; or accepted by the record), a destination may
    // hold a dead credential of the record's until delivery catches up.
    const weak = this.oracle.inPlace === true || plan.settings.retire_before_consumers_reload === 'true';
    this.destinations = new HistoryDestinations(sb, dir, plan.destinations ?? {}, plan.target, this.oracle, weak);
  }

  record(): RecordView {
    return this.sb.ksm.readRecord(this.oracle.uid)!;
  }

  creds(): string[] {
    return this.oracle.credentials(this.sb, this.record().data);
  }

  /** The resource the record names, as the scripts' journal entries name it (Target.principal), lower-cased. */
  principal(data: RecordData): string | undefined {
    if (this.plan.target === 'aws-iam-access-key') {
      const user = text(data, 'login');
      return user ? `iam-user:${user.toLowerCase()}` : undefined;
    }
    if (this.plan.target === 'azure-app-secret') return `application:${(text(data, 'application_object_id') ?? DEMO.azure.targetObjectId).toLowerCase()}`;
    return undefined;
  }

  #listOn(principal: string): string[] {
    const [kind, id] = [principal.slice(0, principal.indexOf(':')), principal.slice(principal.indexOf(':') + 1)];
    if (kind === 'iam-user') return this.sb.aws.getUser(id) ? this.sb.aws.listKeys(id).map((k) => k.accessKeyId) : [];
    return this.sb.azure.directory.getApp(id)?.secrets.map((s) => s.keyId) ?? [];
  }

  /** The credentials on every resource the record has named, the current one's included. */
  #everywhere(): string[] {
    const out = new Set(this.creds());
    for (const p of this.#resources) for (const id of this.#listOn(p)) out.add(id);
    return [...out];
  }

  /** What the record held for a resource: its data now for the one it names, else what it held when it left it. */
  #dataFor(principal: string, view: RecordView): RecordData {
    if (this.principal(view.data) === principal) return view.data;
    const data = cloneData(view.data);
    for (const [label, value] of Object.entries(this.#saved.get(principal) ?? {})) writeText(data, { label, kind: SECRET_FIELDS.includes(label) ? 'secret' : 'text' }, value);
    return data;
  }

  /** The most credentials the target may hold at any moment (IAM's quota, Graph's personal-account limit). */
  limit(): number | undefined {
    if (this.plan.target === 'aws-iam-access-key') return 2;
    if (this.plan.target === 'azure-app-secret') {
      const app = this.sb.azure.directory.getApp(text(this.record().data, 'application_object_id') ?? DEMO.azure.targetObjectId);
      if (app && PERSONAL_AUDIENCES.includes(app.signInAudience)) return 2;
    }
    return undefined;
  }

  sampleLimit(): void {
    this.#max = Math.max(this.#max, this.creds().length);
  }

  line(s: string): void {
    this.lines.push(s);
  }

  violation(where: string, problem: string): void {
    this.violations.push(`${where}: ${problem}`);
    this.line(`      VIOLATION: ${problem}`);
  }

  warning(where: string, problem: string): void {
    this.warnings.push(`${where}: ${problem}`);
    this.line(`      warning: ${problem}`);
  }

  // --- setup ---------------------------------------------------------------------------------------------------

  setup(): void {
    const { sb, plan } = this;
    for (const name of plan.gateways) {
      let configPath = sb.env.KEEPER_GATEWAY_CONFIG!;
      let config = sb.gatewayConfig;
      if (name !== 'A') {
        config = sb.ksm.createClient(new URL(sb.urls.ksm!).host);
        configPath = join(this.dir, `gateway-${name}-config.json`);
        writeFileSync(configPath, JSON.stringify(config, null, 2), { mode: 0o600 });
      }
      const stateDir = join(this.dir, `state-${name}`);
      this.gateways.set(name, { name, stateDir, env: { ...sb.env, ...this.destinations.env(), KEEPER_GATEWAY_CONFIG: configPath, KEEPER_ROTATE_STATE_DIR: stateDir }, secrets: [config.privateKey, config.appKey] });
    }
    this.destinations.setup();
    const data = cloneData(this.record().data);
    for (const [label, value] of Object.entries({ ...plan.settings, ...this.destinations.settings() })) writeText(data, { label, kind: 'text' }, value);
    if (plan.personalApp) {
      const dir = sb.azure.directory;
      const app = dir.createApp({ tenantId: DEMO.azure.tenantId, displayName: 'personal-accounts-app', signInAudience: 'AzureADandPersonalMicrosoftAccount', owners: [DEMO.azure.adminAppId] });
      const current = dir.addSecret(app.objectId, { displayName: 'Client Secret Rotated by Keeper', startDateTime: new Date(Date.now() - 30 * 86_400_000) });
      writeText(data, { label: 'application_object_id', kind: 'text' }, app.objectId);
      writeText(data, { label: 'client_secret_id', kind: 'text' }, current.keyId);
      writeText(data, { label: 'client_secret', kind: 'secret' }, current.secretText);
      writeText(data, { label: 'expires', kind: 'text' }, current.endDateTime);
    }
    sb.ksm.editRecord(this.oracle.uid, data);
    const settings = Object.entries(plan.settings).map(([k, v]) => `${k}=${v}`);
    if (plan.personalApp) settings.push('an app open to personal accounts (two secrets at most)');
    const delivers = describeDestinations(plan.destinations ?? {});
    if (delivers.length > 0) settings.push(`delivers to ${delivers.join(' and ')}`);
    this.destinations.noteRecord(this.record());
    const principal = this.principal(this.record().data);
    if (principal) this.#resources.add(principal);
    this.line(`seed ${plan.seed} · ${plan.target} · ${plan.model} transactions · gateways ${plan.gateways.join(', ')} · ${settings.join(', ')}`);
  }

  // --- attribution ---------------------------------------------------------------------------------------------

  #issued(): string[] {
    return [...this.oracle.issued(this.sb)];
  }

  #begin(): Segment {
    return { seq: this.sb.log.entries().at(-1)?.seq ?? 0, creds: new Set(this.#everywhere()), issued: this.#issued().length, tx: txKey(this.record()) };
  }

  #end(o: RunOutcome, seg: Segment): void {
    const now = new Set(this.#everywhere());
    for (const id of now) {
      if (seg.creds.has(id)) continue;
      o.created.push(id);
      this.ours.add(id);
    }
    for (const id of seg.creds) if (!now.has(id)) o.removed.push(id);
    o.calls.push(...this.sb.log.entries().filter((e) => e.seq > seg.seq));
    o.issued.push(...this.#issued().slice(seg.issued));
    const tx = txKey(this.record());
    if (tx !== undefined && tx !== seg.tx) o.openedTx = tx;
    // Also when a run is held: a credential the record holds only until a nested run replaces it is one it held.
    this.destinations.noteRecord(this.record());
  }

  /** Waits until every faulted call the sandbox took has been handled (a hang lands after its client gave up). */
  async quiet(): Promise<void> {
    const until = Date.now() + QUIET_CAP_MS;
    for (;;) {
      const handled = this.sb.log.entries().filter((e) => e.fault !== undefined).length;
      if (handled + this.#holdsWaiting >= this.#fired) return;
      if (Date.now() > until) {
        this.line('      (a faulted call was still unhandled in the sandbox after 30 s)');
        return;
      }
      await sleep(20);
    }
  }

  // --- runs ----------------------------------------------------------------------------------------------------

  #tag(): Record<string, string> {
    this.#tags += 1;
    return { 'x-chaos': String(this.#tags) };
  }

  /** Arms a run's faults (and kill), counting from now; returns tag → name, to know which fired. */
  #arm(run: PlannedRun, seen: Map<string, number>): Map<string, string> {
    const names = new Map<string, string>();
    const arm = (call: Call, kind: CaseKind) => {
      const nth = call.nth - (seen.get(`${call.service} ${call.operation}`) ?? 0);
      if (nth < 1) return;
      const headers = this.#tag();
      const spec: FaultSpec = { ...faultSpec({ ...call, nth }, kind), headers };
      names.set(headers['x-chaos']!, `${callKey(call)} ${kind === 'status' ? '503' : kind}`);
      this.sb.faults.arm(spec);
    };
    for (const f of run.faults) arm(f, f.kind);
    if (run.kill) arm(run.kill, 'kill');
    return names;
  }

  async run(plan: PlannedRun, label: string, opts: { hold?: Call; inner?: () => Promise<void>; final?: boolean } = {}): Promise<RunOutcome> {
    const gw = this.gateways.get(plan.gateway)!;
    const before = this.record();
    const o: RunOutcome = {
      label,
      gateway: gw.name,
      plan,
      final: opts.final ?? false,
      exit: 1,
      codes: [],
      stdout: '',
      stderr: '',
      calls: [],
      created: [],
      removed: [],
      issued: [],
      fired: [],
      named: possibleData(before).flatMap((d) => this.oracle.referenced(d)),
      ...(opts.hold ? { hold: { call: opts.hold, reached: false } } : {}),
      destinationsBefore: this.destinations.fingerprint(),
      ...(this.principal(before.data) ? { principal: this.principal(before.data)! } : {}),
      dataBefore: before.data,
      journal: journalOf(gw.stateDir),
    };
    this.runs += 1;
    const { sb } = this;
    sb.faults.clear();
    const names = this.#arm(plan, new Map());
    let child: ChildProcess | undefined;
    const offFired = sb.faults.onFire((f) => {
      const tag = f.headers?.['x-chaos'];
      const name = tag === undefined ? undefined : names.get(tag);
      if (name === undefined) return;
      o.fired.push(name);
      if (name.endsWith(' kill')) child?.kill('SIGKILL');
    });
    let release = () => {};
    let offHold = () => {};
    const held = new Promise<void>((resolve) => {
      if (!opts.hold) return;
      const headers = this.#tag();
      const released = new Promise<void>((r) => (release = r));
      offHold = sb.faults.onFire((f) => {
        if (f.headers?.['x-chaos'] === headers['x-chaos']) resolve();
      });
      sb.faults.arm({ ...opts.hold, kind: 'delay', delayMs: HOLD_CAP_MS, release: released, headers });
    });
    let seg = this.#begin();
    const proc = runBuilt(this.options.bundle, this.oracle.script, gw.env, (c) => (child = c), opts.hold ? HELD_LIMITS : RUN_LIMITS);
    if (opts.hold) {
      const first = await Promise.race([held.then(() => 'held' as const), proc.then(() => 'ended' as const)]);
      if (first === 'held') {
        o.hold!.reached = true;
        this.#holdsWaiting += 1;
        await this.quiet();
        this.#end(o, seg);
        // The held call was taken by the fault plan but is not logged until it is handled: it counts as seen.
        const seen = new Map<string, number>();
        for (const e of o.calls) seen.set(`${e.service} ${e.operation}`, (seen.get(`${e.service} ${e.operation}`) ?? 0) + 1);
        const heldKey = `${opts.hold.service} ${opts.hold.operation}`;
        seen.set(heldKey, (seen.get(heldKey) ?? 0) + 1);
        sb.faults.clear();
        o.savedBeforeHold = this.#holdsOwn(o, this.record());
        const nestedFrom = this.outcomes.length;
        this.line(`${indent(label)}${label}. ${describeRun(plan)}: held at ${callKey(opts.hold)} until the run nested in it ends`);
        this.inFlight.push(o);
        try {
          await opts.inner?.();
        } finally {
          o.savedByNested = this.outcomes.slice(nestedFrom).flatMap((n) => (n.exit === 0 || n.exit === 4 ? [...n.created, ...n.issued] : []));
          this.inFlight.pop();
          sb.faults.clear();
          for (const [tag, name] of this.#arm(plan, seen)) names.set(tag, name);
          seg = this.#begin();
          this.#holdsWaiting -= 1;
          release();
        }
      }
    }
    const result = await proc;
    offFired();
    offHold();
    release();
    await this.quiet();
    this.#end(o, seg);
    sb.faults.clear();
    o.exit = result.code;
    o.journalAfter = journalOf(gw.stateDir);
    o.stdout = result.stdout;
    o.stderr = result.stderr;
    o.codes = result.stderr.split('\n').flatMap((l) => CODE_LINE.exec(l)?.[1] ?? []);
    this.options.tamper?.(o, this.sb);
    const reached = o.hold?.reached !== false;
    const heldNote = o.hold && reached ? ' released' : '';
    const missed = o.hold && !reached ? ` (ended before its hold at ${callKey(o.hold.call)})` : '';
    this.line(`${indent(label)}${label}. ${o.hold && reached ? `${gw.name}${heldNote}` : describeRun(plan, o.fired)}${missed} → ${exitText(o)}${o.hold && reached ? ` · fired: ${o.fired.join(', ') || 'none'}` : ''}`);
    this.line(`${CALLS_PREFIX}${o.calls.map((e) => `${e.service} ${e.operation} ${e.status}${e.fault ? ` (${e.fault})` : ''}`).join(', ') || 'no requests'}`);
    this.outcomes.push(o);
    this.judgeRun(o);
    gw.pending = this.#pending(gw, o);
    if (o.exit === 5) this.line(`      needs attention: ${o.codes.join(' ')} (exit 5)`);
    if (o.exit === 5 && o.codes[0] === 'RECOVERY_RETARGETED') {
      const named = o.journal.map((e) => elsewhere(e, o.principal)).find((p) => p !== undefined);
      if (named) this.#remedyDue = named;
    }
    // The nested run never got to run beside it: it runs now, after it.
    if (o.hold && !reached) await opts.inner?.();
    return o;
  }

  /** runs[0] held at holds[0] while runs[1] (held at holds[1] while runs[2] ...) goes on. */
  async overlap(runs: PlannedRun[], holds: Call[], step: number, depth = 0): Promise<void> {
    const label = `${step}${'abc'[depth]}`;
    const [first, ...rest] = runs;
    if (!first) return;
    if (rest.length === 0) {
      await this.run(first, label);
      return;
    }
    await this.run(first, label, { hold: holds[0]!, inner: () => this.overlap(rest, holds.slice(1), step, depth + 1) });
  }

  // --- what people do ------------------------------------------------------------------------------------------

  /** What a credential is to the history, for the trace (IDs change from one replay to the next). */
  role(id: string, data: RecordData): string {
    const named = this.oracle.referenced(data);
    if (named[0] === id) return 'the current one';
    if (named.includes(id)) return 'a previous one the record names';
    if (this.hand.has(id)) return 'a hand-made one';
    if (this.ours.has(id)) return 'one of ours the record does not name';
    return 'one that predates the history';
  }

  /** The credential a person removes: never the current one; hand-made ones first, then previous ones, then ours. */
  #removable(ids: Array<{ id: string; at: string }>, data: RecordData): string | undefined {
    const named = this.oracle.referenced(data);
    const rank = (id: string) => (this.hand.has(id) && !named.includes(id) ? 0 : named.includes(id) ? 1 : this.ours.has(id) ? 2 : 3);
    return ids
      .filter((k) => k.id !== named[0])
      .sort((a, b) => rank(a.id) - rank(b.id) || a.at.localeCompare(b.at))
      .at(0)?.id;
  }

  act(action: HandAction): string {
    const view = this.record();
    if (action.kind === 'destination') return this.destinations.act(action.action, view);
    if (action.kind === 'sabotage-destination') return action.what === 'retired' ? this.destinations.sabotage(view) : this.destinations.sabotageOthers();
    // What a person does to the target or the record may kill what a destination holds: that is theirs, not a run's.
    const done = this.destinations.around(view, () => this.#act(action, view));
    const works = this.#works(this.record());
    if (!works.ok && action.kind !== 'sabotage') this.#handBroken = `a person's hand action (${action.kind}) broke the record's credential, and no run has made a new one since`;
    return done;
  }

  #act(action: HandAction, view: RecordView): string {
    if (action.kind === 'wipe-state') {
      const gw = this.gateways.get(action.gateway)!;
      if (journalEntries(gw.stateDir).length > 0) return `skipped deleting gateway ${gw.name}'s state folder: it holds a journal`;
      rmSync(gw.stateDir, { recursive: true, force: true });
      return `deleted gateway ${gw.name}'s state folder`;
    }
    // The record refuses every write while a rotation transaction is open; a person waits, as they would.
    if (view.transaction && action.kind !== 'sabotage') return `skipped ${action.kind}: a rotation transaction is open on the record`;
    const data = cloneData(view.data);
    const save = () => this.sb.ksm.editRecord(this.oracle.uid, data);
    if (action.kind === 'edit') {
      writeText(data, { label: 'owner_team', kind: 'text' }, `team-${++this.#edits}`);
      save();
      return 'edited an unrelated field (owner_team)';
    }
    if (action.kind === 'retarget') return this.#pointAt(data, save, action.to);
    switch (this.plan.target) {
      case 'aws-iam-access-key':
        return this.#handAws(action, data, save);
      case 'azure-app-secret':
        return this.#handAzure(action, data, save);
      case ECR:
        return this.#handEcr(action, data, save);
      default:
        return this.#handWiz(action, data, save);
    }
  }

  /**
   * Points the record at `to` (else at the other resource, made the first time), after saving what it holds for
   * the one it names now; writes back what it held for `to` when it named it before.
   */
  #pointAt(data: RecordData, save: () => void, to?: string): string {
    const fields = RESOURCE_FIELDS[this.plan.target];
    const here = this.principal(data);
    if (!fields || !here) return 'skipped retarget: the record names no resource a person could change';
    const there = to ?? [...this.#resources].find((p) => p !== here) ?? this.#makeOther();
    const held = this.#saved.get(there);
    if (there === here) return `skipped retarget: the record names ${there} already`;
    if (!held) return `skipped retarget: nothing known of ${there}`;
    this.#saved.set(here, Object.fromEntries(fields.map((l) => [l, text(data, l) ?? ''])));
    for (const [label, value] of Object.entries(held)) writeText(data, { label, kind: SECRET_FIELDS.includes(label) ? 'secret' : 'text' }, value);
    save();
    return `pointed the record at ${there}${to ? '' : ', with what it held for it'} (it named ${here})`;
  }

  /** The other resource: an IAM user with one key a month old; an app the admin owns, with one secret. */
  #makeOther(): string {
    const monthAgo = new Date(Date.now() - 30 * 86_400_000);
    let principal: string;
    if (this.plan.target === 'aws-iam-access-key') {
      this.sb.aws.createUser({ userName: OTHER_AWS_USER });
      const key = this.sb.aws.seedAccessKey(OTHER_AWS_USER, { createDate: monthAgo });
      principal = `iam-user:${OTHER_AWS_USER}`;
      this.#saved.set(principal, { login: OTHER_AWS_USER, aws_access_key_id: key.accessKeyId, aws_secret_access_key: key.secretAccessKey, CreateDate: key.createDate, previous_aws_access_key_id: '' });
    } else {
      const dir = this.sb.azure.directory;
      const app = dir.createApp({ tenantId: DEMO.azure.tenantId, displayName: OTHER_AZURE_APP, owners: [DEMO.azure.adminAppId] });
      const secret = dir.addSecret(app.objectId, { displayName: 'Client Secret Rotated by Keeper', startDateTime: monthAgo });
      principal = `application:${app.objectId.toLowerCase()}`;
      this.#saved.set(principal, { application_object_id: app.objectId, client_secret_id: secret.keyId, client_secret: secret.secretText, expires: secret.endDateTime, previous_client_secret_ids: '' });
    }
    this.#resources.add(principal);
    return principal;
  }

  /**
   * The person's remedy after RECOVERY_RETARGETED, as its message gives it: point the record back at the resource
   * the journal names (then the next run settles it). Undefined when none is due, or while a rotation transaction
   * is open on the record (a person waits: the record refuses edits then).
   */
  remedy(): string | undefined {
    const to = this.#remedyDue;
    if (!to) return undefined;
    if (this.principal(this.record().data) === to) {
      this.#remedyDue = undefined;
      return undefined;
    }
    if (this.record().transaction) {
      this.line(`      person: waits to point the record back at ${to}: a rotation transaction is open on the record`);
      return undefined;
    }
    this.#remedyDue = undefined;
    return `${this.act({ kind: 'retarget', to })}, as RECOVERY_RETARGETED asked`;
  }

  #handAws(action: HandAction, data: RecordData, save: () => void): string {
    const aws = this.sb.aws;
    const user = text(data, 'login') ?? DEMO.aws.userName;
    const keys = () => aws.listKeys(user).map((k) => ({ id: k.accessKeyId, at: k.createDate }));
    const current = text(data, 'aws_access_key_id');
    // A person making room for a key (IAM allows two): deletes one that is not CURRENT. What it says, or undefined
    // when only CURRENT could go.
    const makeRoom = (): string | undefined => {
      if (keys().length < 2) return '';
      const victim = this.#removable(keys(), data);
      if (!victim) return undefined;
      const said = `, after deleting ${this.role(victim, data)}`;
      aws.deleteAccessKey(user, victim);
      return said;
    };
    switch (action.kind) {
      case 'replace': {
        const removed = makeRoom();
        if (removed === undefined) return 'skipped replace: no key but CURRENT to make room with';
        const key = aws.seedAccessKey(user);
        this.hand.add(key.accessKeyId);
        writeText(data, { label: 'aws_access_key_id', kind: 'text' }, key.accessKeyId);
        writeText(data, { label: 'aws_secret_access_key', kind: 'secret' }, key.secretAccessKey);
        writeText(data, { label: 'CreateDate', kind: 'text' }, key.createDate);
        if (current && keys().some((k) => k.id === current)) writeText(data, { label: 'previous_aws_access_key_id', kind: 'text' }, current);
        save();
        return `replaced the key by hand: a new key saved as CURRENT, the old CURRENT as LAST${removed}`;
      }
      case 'add': {
        if (keys().length >= 2) return 'skipped adding a key: the user has two';
        // Made a day ago, so delete_all_keys_before_rotating may delete it (it spares young keys).
        const key = aws.seedAccessKey(user, { createDate: new Date(Date.now() - 86_400_000) });
        this.hand.add(key.accessKeyId);
        this.#handMade.set(key.accessKeyId, { at: Date.parse(key.createDate), principal: `iam-user:${user.toLowerCase()}` });
        return 'added a key by hand (not in the record)';
      }
      case 'add-now': {
        // Making room as a person must (IAM allows two): else after most runs (CURRENT and LAST) there is none, and
        // the window of a create whose outcome is unknown would rarely see a key added in it.
        const removed = makeRoom();
        if (removed === undefined) return 'skipped adding a key dated now: no key but CURRENT to make room with';
        const key = aws.seedAccessKey(user, { createDate: new Date() });
        this.hand.add(key.accessKeyId);
        this.#handMade.set(key.accessKeyId, { at: Date.parse(key.createDate), principal: `iam-user:${user.toLowerCase()}` });
        return `added a key dated now by hand (not in the record)${removed}`;
      }
      case 'remove': {
        const victim = this.#removable(keys(), data);
        if (!victim) return 'skipped deleting a key: the user has only CURRENT';
        const role = this.role(victim, data);
        aws.deleteAccessKey(user, victim);
        return `deleted ${role} by hand`;
      }
      case 'sabotage':
        if (current) aws.deleteAccessKey(user, current);
        return "deleted the record's CURRENT key on the target (sabotage)";
      default:
        return `skipped ${action.kind}`;
    }
  }

  #handAzure(action: HandAction, data: RecordData, save: () => void): string {
    const dir = this.sb.azure.directory;
    const objectId = text(data, 'application_object_id') ?? DEMO.azure.targetObjectId;
    const secrets = () => dir.getApp(objectId)!.secrets.map((s) => ({ id: s.keyId, at: s.addedAt }));
    const full = () => this.plan.personalApp && secrets().length >= 2;
    const current = text(data, 'client_secret_id');
    switch (action.kind) {
      case 'replace': {
        let removed = '';
        if (full()) {
          const victim = this.#removable(secrets(), data);
          if (!victim) return 'skipped replace: no secret but the current one to make room with';
          removed = `, after removing ${this.role(victim, data)}`;
          dir.removePassword(objectId, victim);
        }
        const secret = dir.addSecret(objectId, { displayName: 'added by hand' });
        this.hand.add(secret.keyId);
        const previous = [current ?? '', ...(text(data, 'previous_client_secret_ids') ?? '').split(',')].map((s) => s.trim()).filter(Boolean);
        writeText(data, { label: 'client_secret_id', kind: 'text' }, secret.keyId);
        writeText(data, { label: 'client_secret', kind: 'secret' }, secret.secretText);
        writeText(data, { label: 'expires', kind: 'text' }, secret.endDateTime);
        writeText(data, { label: 'previous_client_secret_ids', kind: 'text' }, [...new Set(previous)].join(','));
        save();
        return `replaced the secret by hand: a new secret saved as current, the old one first among the previous${removed}`;
      }
      case 'add': {
        if (full()) return 'skipped adding a secret: the app holds two';
        this.hand.add(dir.addSecret(objectId, { displayName: 'added by hand' }).keyId);
        return 'added a secret by hand (not in the record)';
      }
      case 'remove': {
        const victim = this.#removable(secrets(), data);
        if (!victim) return 'skipped removing a secret: the app holds only the current one';
        const role = this.role(victim, data);
        dir.removePassword(objectId, victim);
        return `removed ${role} by hand`;
      }
      case 'sabotage':
        if (current) dir.removePassword(objectId, current);
        return "removed the record's current secret on the target (sabotage)";
      default:
        return `skipped ${action.kind}`;
    }
  }

  #handEcr(action: HandAction, data: RecordData, save: () => void): string {
    const tokens = this.sb.ecrTokens;
    const config = text(data, 'ecr_docker_config_json');
    switch (action.kind) {
      case 'login-expire':
        tokens.advance(ECR_TOKEN_LIFETIME_MS);
        return "twelve hours passed on ECR's clock: every login issued so far expired";
      case 'login-revoke':
      case 'sabotage': {
        const n = loginPasswords(config).reduce((k, p) => k + tokens.revoke(p), 0);
        return `revoked the record's ${n} login(s)${action.kind === 'sabotage' ? ' (sabotage)' : ''}`;
      }
      case 'dead-login': {
        const host = Object.keys(parseAuths(config))[0] ?? new URL(this.sb.urls['ecr-registry']!).host;
        const password = `pasted-by-hand-${++this.#edits}`;
        const auth = Buffer.from(`AWS:${password}`).toString('base64');
        writeText(data, { label: 'ecr_docker_config_json', kind: 'secret' }, JSON.stringify({ auths: { [host]: { username: 'AWS', password, auth } } }));
        save();
        return 'pasted a Docker config with a dead login into the record';
      }
      case 'key-rotate': {
        const aws = this.sb.aws;
        const user = DEMO.ecr.userName;
        const current = text(data, 'aws_access_key_id');
        const key = aws.seedAccessKey(user);
        writeText(data, { label: 'aws_access_key_id', kind: 'text' }, key.accessKeyId);
        writeText(data, { label: 'aws_secret_access_key', kind: 'secret' }, key.secretAccessKey);
        save();
        if (current && aws.getKey(current)) aws.deleteAccessKey(user, current);
        return 'rotated the AWS key the record asks ECR with by hand: a new key saved in the record, the old one deleted';
      }
      default:
        return `skipped ${action.kind}`;
    }
  }

  #handWiz(action: HandAction, data: RecordData, save: () => void): string {
    const wiz = this.sb.wiz;
    switch (action.kind) {
      case 'replace': {
        const account = wiz.rotateSecret(DEMO.wiz.clientId);
        writeText(data, { label: 'client_secret', kind: 'secret' }, account.clientSecret);
        save();
        return 'rotated the secret by hand in Wiz and saved it in the record';
      }
      case 'sabotage':
        wiz.rotateSecret(DEMO.wiz.clientId);
        return 'rotated the secret in Wiz without saving it (sabotage)';
      default:
        return `skipped ${action.kind}`;
    }
  }

  // --- the checker ---------------------------------------------------------------------------------------------

  leaks(output: string): number {
    const values = new Set<string>([...this.sb.aws.issued, ...this.sb.azure.directory.issued, ...this.sb.wiz.issued]);
    for (const gw of this.gateways.values()) for (const s of gw.secrets) values.add(s);
    return [...values].filter((v) => v.length >= 8 && output.includes(v)).length;
  }

  /**
   * Why a record whose credential does not work is accepted right now, if it is: a run said it needs attention
   * (exit 5) and its gateway has not run since; or, in place (Wiz), a run was killed with the new secret (or
   * the token to replace it again) sealed in its state folder, which that gateway's next run restores.
   */
  excuse(except?: string): string | undefined {
    for (const gw of this.gateways.values()) if (gw.name !== except && gw.pending) return `gateway ${gw.name} ${gw.pending}`;
    return this.#handBroken;
  }

  #pending(gw: Gateway, o: RunOutcome): string | undefined {
    // It changed nothing: whatever its gateway held before (or did not) stands.
    if (o.exit === 5 && o.codes[0] === 'RECOVERY_RETARGETED') return gw.pending;
    if (o.exit === 5) return `said it needs attention (exit 5, ${o.codes.join(' ')}) and has not run since`;
    if (o.exit !== 'killed') return undefined;
    // Killed after Wiz switched to a secret that run made: the gateway holds it (or the token to replace it) sealed.
    const switched = this.oracle.inPlace && o.issued.includes(this.sb.wiz.getServiceAccount(DEMO.wiz.clientId)?.clientSecret ?? '');
    if (switched && journalEntries(gw.stateDir).some((e) => e.sealed !== undefined || e.resume !== undefined)) return 'was killed after Wiz switched to its new secret, which it holds sealed, and has not run since';
    return gw.pending;
  }

  /**
   * What tells whose the record's credential is: the secret itself where the target issues values and lists no
   * credential of its own (Wiz in place; ECR, the first login of its Docker config), else the current ID.
   */
  #mark(data: RecordData): string | undefined {
    if (this.oracle.inPlace) return text(data, 'client_secret');
    if (this.plan.target === ECR) return loginPasswords(text(data, 'ecr_docker_config_json'))[0];
    return this.oracle.referenced(data)[0];
  }

  /** Did this run make the credential `mark` names? */
  #made(o: RunOutcome, mark: string | undefined): boolean {
    if (mark === undefined) return false;
    return this.oracle.inPlace || this.plan.target === ECR ? o.issued.includes(mark) : o.created.includes(mark);
  }

  /** Does the record hold a credential this run made, with no transaction of this run's open on it? */
  #holdsOwn(o: RunOutcome, view: RecordView): boolean {
    return this.#made(o, this.#mark(view.data)) && !(view.transaction !== undefined && txKey(view) === o.openedTx);
  }

  #works(view: RecordView): { ok: boolean; note: string } {
    const broken = possibleData(view).filter((d) => !this.oracle.works(this.sb, d));
    return { ok: broken.length === 0, note: view.transaction ? ` (on ${broken.length === 2 ? 'both sides' : 'one side'} of its open transaction)` : '' };
  }

  judgeRun(o: RunOutcome): void {
    const where = `step ${o.label} (gateway ${o.gateway}, ${exitText(o)})`;
    const problem = (p: string) => this.violation(where, p);
    const view = this.record();
    const works = this.#works(view);
    const inPlace = this.oracle.inPlace === true;
    const current = this.#mark(view.data);
    const leftOpen = view.transaction !== undefined && txKey(view) === o.openedTx;

    if (o.exit === 1) problem('exit 1: an internal error');
    if (o.exit === 0 && o.codes.length > 0) problem(`exit 0 with an error line (${o.codes.join(', ')})`);
    if (typeof o.exit === 'number' && o.exit !== 0 && o.codes.length !== 1) problem(`${o.codes.length} "keeper-rotate: CODE:" lines on stderr, not exactly one`);
    const leaked = this.leaks(o.stdout + o.stderr);
    if (leaked > 0) problem(`${leaked} secret value(s) a sandbox issued appear in the output`);

    // Exit 4 also says a destination could not be brought up to date before rotating (deliver.ts catchUp): then the
    // run made nothing on the target (it may have stored a secret its gateway sealed earlier, or settled an earlier
    // run), and promises what exit 3 does about the record. ECR makes nothing on AWS: a finalized save is its rotation.
    const finalized = o.calls.some((e) => e.service === 'ksm' && e.operation === 'finalize_secret_update' && e.status < 300);
    const replaced = o.calls.some((e) => e.service === 'wiz-api' && e.operation === 'rotateServiceAccountSecret' && (e.status < 300 || e.fault !== undefined));
    const madeNothing = inPlace ? !replaced : this.plan.target === ECR ? !finalized : o.created.length === 0;
    const stoppedBeforeRotating = o.exit === 4 && o.codes[0] === 'DELIVERY_INCOMPLETE' && !this.#holdsOwn(o, view) && madeNothing;
    if (stoppedBeforeRotating && !works.ok && !this.excuse(o.gateway)) this.#brokenRecord(where, works.note);
    if (o.exit === 0 || (o.exit === 4 && !stoppedBeforeRotating)) {
      const superseded = o.savedBeforeHold === true && current !== undefined && (o.savedByNested ?? []).includes(current);
      // Exit 4 after a rotation may leave the write check held while delivering (its reply lost, or its rollback
      // failed): it holds the record's own data, so both sides of it are the credential this run made; as with exit
      // 3, that stops other gateways until this one runs again, which is worth knowing, not a broken promise.
      const checkLeft = o.exit === 4 && leftOpen && view.transaction !== undefined && isDeepStrictEqual(view.transaction.data, view.data);
      if (!(checkLeft ? this.#made(o, current) : this.#holdsOwn(o, view)) && !superseded) problem('the record does not hold a credential this run made');
      if (checkLeft) this.warning(where, 'exit 4 with its write check left open: other gateways get KEEPER_TRANSACTION_OPEN until this one runs again');
      else if (leftOpen) problem('its Keeper transaction is left open');
      // A run held after it had saved (and so verified and finalized) its credential, while a nested run replaced
      // it in place and was killed holding the newer secret sealed: the exit 0 was true when the run finished its
      // rotation, and the broken record is that nested run's, which its gateway's next run repairs.
      const replacedSince = !works.ok && inPlace && o.savedBeforeHold === true ? this.excuse(o.gateway) : undefined;
      if (!works.ok && !replacedSince) problem(`the record's credential does not work${works.note}`);
      else if (works.ok) this.#broken = false;
    }
    if (works.ok) this.#handBroken = undefined;
    if (o.exit === 2) {
      const writes = o.calls.filter(isWrite);
      if (writes.length > 0) problem(`rejected, yet it wrote: ${writes.map((e) => `${e.service} ${e.operation}`).join(', ')}`);
      // A file write makes no request: what the destinations hold must be what they held before (no run beside it).
      if (o.hold?.reached !== true && o.destinationsBefore !== undefined && this.destinations.fingerprint() !== o.destinationsBefore) problem('rejected, yet a destination changed');
    }
    if (o.exit === 3) {
      // Another gateway's run holding a replaced secret, or one that said it needs attention, broke it first.
      const excuse = this.excuse(o.gateway) ?? (inPlace && this.inFlight.length > 0 ? 'a run that replaces in place is in flight' : undefined);
      if (!works.ok && !excuse) this.#brokenRecord(where, works.note);
      if (!inPlace) {
        const now = new Set(this.creds());
        const named = new Set(this.oracle.referenced(view.data));
        const left = o.created.filter((id) => now.has(id) && !named.has(id));
        if (left.length > 0) problem(`${left.length} credential(s) it created remain on the target, not named by the record`);
        if (this.#made(o, current)) problem('the record holds the credential this run made');
      }
      // Exit 3 promises nothing left on the target; a transaction left open is left in Keeper, where it stops
      // every other gateway (KEEPER_TRANSACTION_OPEN) until this one runs again. Worth knowing, not a broken promise.
      if (leftOpen) this.warning(where, 'exit 3 with its own Keeper transaction left open: other gateways get KEEPER_TRANSACTION_OPEN until this one runs again');
    }
    // Not in the exit-code table, but implied by every row of it: a run removes only what it made or what the
    // record names (retention), unless a setting says otherwise.
    // A person's key among them: AWS keys carry no name, so one added inside the window of a create whose outcome
    // stayed unknown (journaled on the same user, not listed before it) is taken for that create's leftover: the
    // README's known limit, accepted for exactly such a key (its window as the run's plan computes it) and no other.
    if (!inPlace && this.plan.settings.delete_all_keys_before_rotating !== 'true') {
      const named = new Set([...o.named, ...possibleData(view).flatMap((d) => this.oracle.referenced(d))]);
      const foreign = o.removed.filter((id) => !this.ours.has(id) && !named.has(id));
      const windowed = foreign.flatMap((id) => {
        const why = this.#inWindow(o, id);
        return why ? [`${id}: ${why}`] : [];
      });
      for (const w of windowed) {
        this.excused.push(`${where}: it removed a key a person added inside an interrupted create's window (${w}): the README's known limit for AWS`);
        this.line(`      removed a key a person added inside an interrupted create's window (${w}): accepted, the README's known limit`);
      }
      const beyond = foreign.filter((id) => !windowed.some((w) => w.startsWith(`${id}:`)));
      if (beyond.length > 0) problem(`it removed ${beyond.length} credential(s) it did not make and the record did not name (${beyond.map((id) => this.role(id, view.data)).join(', ')})`);
    }
    this.#judgeRetarget(o, problem);
    // Its exit code against what the destinations hold; a run held while others ran may have been overtaken.
    const judge = { violation: (w: string, p: string) => this.violation(w, p), warning: (w: string, p: string) => this.warning(w, p), line: (l: string) => this.line(l) };
    this.destinations.judgeExit(where, o, view, judge, o.hold?.reached === true);
    this.destinations.judge(where, view, judge, works.ok ? undefined : this.excuse(o.gateway));
    this.#judgeLimit(where);
  }

  /**
   * Exit 5 RECOVERY_RETARGETED is true only when its gateway's journal named another resource than the record,
   * with something on it; such a run changes nothing (no write anywhere, its journal kept). And whatever a run with
   * such a journal says, it writes nothing on the target: what the earlier run left is on the other resource.
   */
  #judgeRetarget(o: RunOutcome, problem: (p: string) => void): void {
    const other = o.journal.map((e) => elsewhere(e, o.principal)).find((p) => p !== undefined);
    const targetWrites = o.calls.filter((e) => isWrite(e) && e.service !== 'ksm' && e.service !== 'kubernetes');
    if (other && (targetWrites.length > 0 || o.created.length > 0 || o.removed.length > 0)) {
      problem(`its gateway's journal names ${other}, not ${o.principal ?? 'what the record names'}, yet it changed the target (${[...targetWrites.map((e) => `${e.service} ${e.operation}`), ...o.created.map((id) => `made ${id}`), ...o.removed.map((id) => `removed ${id}`)].join(', ')})`);
    }
    if (o.codes[0] !== 'RECOVERY_RETARGETED') return;
    if (o.exit !== 5) problem(`RECOVERY_RETARGETED with exit ${String(o.exit)}, not 5`);
    if (!other) problem(`RECOVERY_RETARGETED, yet its gateway's journal names no resource but the record's (${o.principal ?? 'none'}) with anything on it`);
    // Its one Keeper write may be its outcome (the last_rotation_* fields, README "Exit codes"): no transaction.
    const writes = o.calls.filter((e) => isWrite(e) && !(e.service === 'ksm' && e.operation === 'update_secret'));
    if (writes.length > 0) problem(`RECOVERY_RETARGETED, yet it wrote: ${writes.map((e) => `${e.service} ${e.operation}`).join(', ')}`);
    if (o.openedTx !== undefined) problem('RECOVERY_RETARGETED, yet it opened a Keeper transaction');
    // A run held while others ran finds the record as they left it.
    const now = this.record().data;
    if (o.hold?.reached !== true && o.dataBefore && !sameBesidesOutcome(o.dataBefore, now)) problem('RECOVERY_RETARGETED, yet the record changed besides its last_rotation_* fields');
    if (o.journalAfter && !isDeepStrictEqual(o.journal, o.journalAfter)) problem('RECOVERY_RETARGETED, yet its journal changed (the person who moves it aside needs it as it was)');
  }

  /**
   * Why a key a person added lies in the window of an interrupted create this run's gateway journaled (so the
   * run's plan takes it for that create's leftover), or undefined: the window opens at the entry's `since` and
   * ends at its `until` (the create was answered) or, with none, as long after as the resuming run could last
   * (its deadline plus the hard stop's grace), each end a minute wider; it is on the same user; and the key was
   * not listed when that create began (`existing`).
   */
  #inWindow(o: RunOutcome, id: string): string | undefined {
    const made = this.#handMade.get(id);
    if (!made) return undefined;
    const limits = o.hold ? HELD_LIMITS : RUN_LIMITS;
    const longest = limits.deadlineSeconds * 1000 + HARD_STOP_GRACE_MS;
    for (const e of o.journal) {
      if (e.recordUid !== undefined && e.recordUid !== this.oracle.uid) continue;
      if (e.principal && e.principal.toLowerCase() !== made.principal) continue;
      const w = e.phase === 'creating' ? e : e.inherited;
      if (!w?.since) continue;
      const from = Date.parse(w.since);
      const to = w.until ? Date.parse(w.until) : from + longest;
      if (made.at < from - WINDOW_SKEW_MS || made.at > to + WINDOW_SKEW_MS || (w.existing ?? []).includes(id)) continue;
      return `made ${((made.at - from) / 1000).toFixed(0)} s after the window opened at ${w.since}, which ends ${w.until ? `at the create's answer, ${w.until}` : `${longest / 1000} s later (no answer)`}, a minute wider each way`;
    }
    return undefined;
  }

  #judgeLimit(where: string): void {
    const limit = this.limit();
    this.sampleLimit();
    if (limit !== undefined && this.#max > limit) this.violation(where, `the target held ${this.#max} credentials, over its limit of ${limit}`);
    this.#max = 0;
  }

  /** After a whole step, with no run in flight. */
  judgeState(where: string): void {
    const view = this.record();
    const works = this.#works(view);
    if (!works.ok) {
      const excuse = this.excuse();
      if (excuse) {
        this.excused.push(`${where}: the record's credential does not work${works.note}; accepted because ${excuse}`);
        this.line(`      record does not work${works.note}: accepted, ${excuse}`);
      } else this.#brokenRecord(where, works.note);
    } else {
      this.#broken = false;
      this.#handBroken = undefined;
    }
    this.destinations.judge(where, view, { violation: (w, p) => this.violation(w, p), warning: (w, p) => this.warning(w, p), line: (l) => this.line(l) }, works.ok ? undefined : this.excuse());
    this.#judgeLimit(where);
  }

  /** Counted once from the moment it breaks until it works again; the steps in between only say it still does not. */
  #brokenRecord(where: string, note: string): void {
    if (this.#broken) {
      this.line(`      the record's credential still does not work${note}`);
      return;
    }
    this.#broken = true;
    this.violation(where, `the record's credential does not work${note}`);
  }

  /**
   * A hand-made credential the record does not name fills the target, and no setting lets a run remove it now:
   * delete_all_keys_before_rotating spares a key young enough to be another run's new one (made less than the
   * longest run, and a minute, before the run starts; judged before it starts, so a key that may still be young
   * for it counts).
   */
  blockedByHand(): boolean {
    const limit = this.limit();
    const creds = this.creds();
    if (limit === undefined || creds.length < limit) return false;
    const named = this.oracle.referenced(this.record().data);
    const foreign = creds.filter((id) => !this.ours.has(id) && !named.includes(id));
    if (this.plan.settings.delete_all_keys_before_rotating !== 'true') return foreign.length > 0;
    const youngSince = Date.now() - (RUN_LIMITS.deadlineSeconds * 1000 + HARD_STOP_GRACE_MS) - WINDOW_SKEW_MS;
    return foreign.some((id) => {
      const made = this.#handMade.get(id)?.at;
      return made !== undefined && made >= youngSince;
    });
  }

  async final(): Promise<void> {
    // The gateway whose journal may hold a Keeper transaction open goes first (every other one would stop at it
    // with KEEPER_TRANSACTION_OPEN, by design), then the others holding a journal, then the rest.
    const rank = (gw: Gateway) => {
      const entries = journalEntries(gw.stateDir);
      if (entries.some((e) => e.txn !== undefined || ['preparing', 'saving', 'verified', 'unsaved'].includes(e.phase ?? ''))) return 0;
      return entries.length > 0 ? 1 : 2;
    };
    const order = [...this.gateways.values()].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
    // A clean run that says it needs attention (exit 5) because another gateway holds what repairs the record
    // (the token of a replace it was killed in) is right to say so; it holds if a later gateway's clean run then
    // leaves everything whole (checked below).
    const deferred: string[] = [];
    for (const gw of order) {
      let blocked = this.blockedByHand();
      let o = await this.run({ gateway: gw.name, faults: [] }, `final ${gw.name}`, { final: true });
      // The record was pointed elsewhere since this gateway's journal was written: the person does what the
      // message asks (points it back), and the gateway runs again.
      const remedy = o.exit === 5 && o.codes[0] === 'RECOVERY_RETARGETED' ? this.remedy() : undefined;
      if (remedy) {
        this.line(`      person: ${remedy}`);
        this.remedies += 1;
        blocked = this.blockedByHand();
        o = await this.run({ gateway: gw.name, faults: [] }, `final ${gw.name} again`, { final: true });
      }
      if (o.exit === 0) continue;
      if (blocked && o.exit === 3 && o.codes[0] === 'TARGET_LIMIT_REACHED') {
        this.line('      a hand-made credential fills the target: TARGET_LIMIT_REACHED is the answer the README gives');
        continue;
      }
      // Likewise a quota refusal caused by another gateway's leftover that only that gateway's run may remove (a
      // young key of unknown owner is never deleted): its run, later in this round, clears the way.
      const quota = o.exit === 3 && o.codes[0] === 'TARGET_LIMIT_REACHED';
      if ((o.exit === 5 || quota) && gw !== order[order.length - 1]) {
        deferred.push(gw.name);
        continue;
      }
      this.violation(`final run on gateway ${gw.name}`, `the clean run exited ${exitText(o).replace(/^exit /, '')}, not 0`);
    }
    const where = 'after the final runs';
    const view = this.record();
    if (deferred.length > 0) {
      if (!this.#works(view).ok || view.transaction) for (const name of deferred) this.violation(`final run on gateway ${name}`, 'the clean run did not finish and no later gateway repaired the record');
      else this.line(`      accepted: the clean run on gateway ${deferred.join(', ')} stopped (another gateway held what repairs the record, or its leftover filled the quota), and a later one repaired it`);
    }
    if (view.transaction) this.violation(where, 'a Keeper transaction is still open');
    const works = this.#works(view);
    if (!works.ok) this.#brokenRecord(where, works.note);
    if (!this.oracle.inPlace) {
      // On each resource the record has named: what it names there now, or named when a person pointed it away.
      const current = this.principal(view.data);
      const resources = this.#resources.size > 0 ? [...this.#resources] : [undefined];
      for (const p of resources) {
        const on = p === undefined || p === current ? '' : ` of ${p} (which the record named before a person pointed it elsewhere)`;
        const named = new Set(this.oracle.referenced(p === undefined ? view.data : this.#dataFor(p, view)));
        const mine = (p === undefined ? this.creds() : this.#listOn(p)).filter((id) => this.ours.has(id));
        const orphans = mine.filter((id) => !named.has(id));
        if (orphans.length > 0) this.violation(where, `${orphans.length} credential(s) of ours on the target${on} that the record does not name`);
        // keep_previous_secrets = 1 (Azure) and CURRENT + LAST (AWS): the new one and one before it.
        if (mine.length > 2) this.violation(where, `${mine.length} credentials of ours on the target${on}, more than the current one and one previous`);
      }
    }
    for (const gw of this.gateways.values()) {
      const left = journalEntries(gw.stateDir).length;
      if (left > 0) this.violation(where, `gateway ${gw.name} still keeps ${left} journal(s) for the record`);
    }
    this.destinations.judgeFinal(where, view, { violation: (w, p) => this.violation(w, p), warning: (w, p) => this.warning(w, p), line: (l) => this.line(l) });
  }
}

export async function runHistory(plan: HistoryPlan, options: HistoryOptions): Promise<HistoryResult> {
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'keeper-rotate-chaos-'));
  let sb: Sandbox | undefined;
  let h: History | undefined;
  let sampler: NodeJS.Timeout | undefined;
  try {
    // The sandbox's delays (propagation, list lag) follow the history's seed, so a replay meets the same ones.
    sb = await startSandbox({ dir, transactionModel: plan.model, seed: plan.seed });
    h = new History(sb, dir, plan, options);
    h.setup();
    const history = h;
    // Between the judge's reads, a credential may come and go: sample the count while runs are going on.
    sampler = setInterval(() => history.sampleLimit(), 5);
    for (const [i, step] of plan.steps.entries()) {
      const n = i + 1;
      if (step.kind === 'run') {
        await h.run(step.run, String(n));
      } else if (step.kind === 'overlap') {
        h.line(`  ${n}. overlap of ${step.runs.length} runs:`);
        await h.overlap(step.runs, step.holds, n);
      } else {
        h.line(`  ${n}. hand: ${h.act(step.action)}`);
      }
      h.judgeState(`after step ${n}`);
      // A run stopped with RECOVERY_RETARGETED: the person does what its message asks before anything else.
      const remedy = h.remedy();
      if (remedy) {
        h.line(`  person: ${remedy}`);
        h.judgeState(`after the person's remedy following step ${n}`);
      }
    }
    h.line('  final: a clean run on every gateway, one after another');
    await h.final();
  } catch (err) {
    const message = `the chaos engine failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
    if (h) h.violation('engine', message);
    else return { plan, remedies: 0, lines: [], violations: [message], excused: [], warnings: [], runs: 0, ms: Date.now() - started };
  } finally {
    if (sampler) clearInterval(sampler);
    sb?.faults.clear();
    await sb?.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return { plan, remedies: h!.remedies, lines: h!.lines, violations: h!.violations, excused: h!.excused, warnings: h!.warnings, runs: h!.runs, ms: Date.now() - started };
}

/** The whole history, its violations and how to replay it; `calls` adds each run's requests as the sandbox saw them. */
export function formatHistory(r: HistoryResult, options: { calls?: boolean } = {}): string {
  const out = r.lines.filter((l) => options.calls || !l.startsWith(CALLS_PREFIX));
  if (r.violations.length > 0) out.push(`  ${r.violations.length} violation(s):`, ...r.violations.map((v) => `    - ${v}`));
  if (r.warnings.length > 0) out.push(`  ${r.warnings.length} warning(s):`, ...r.warnings.map((v) => `    - ${v}`));
  if (r.excused.length > 0) out.push(`  accepted after exit 5, a sealed secret, or a person's doing:`, ...r.excused.map((v) => `    - ${v}`));
  out.push(`  replay: ${replayCommand(r.plan)}`);
  return out.join('\n');
}

/** One line per history, for progress output. */
export function historyLine(r: HistoryResult): string {
  const extra = [r.excused.length > 0 ? `${r.excused.length} accepted after exit 5 or a person's doing` : '', r.warnings.length > 0 ? `${r.warnings.length} warning(s)` : ''].filter(Boolean);
  return `seed ${r.plan.seed} ${r.plan.target} ${r.plan.model} gateways=${r.plan.gateways.length}: ${r.runs} runs, ${r.violations.length} violation(s)${extra.map((e) => `, ${e}`).join('')}, ${(r.ms / 1000).toFixed(1)} s`;
}

export function summaryLine(results: HistoryResult[]): string {
  const runs = results.reduce((n, r) => n + r.runs, 0);
  const violations = results.reduce((n, r) => n + r.violations.length, 0);
  return `chaos: ${results.length} histories, ${runs} runs, ${violations} violations`;
}
