// Destinations in the history tester (chaos.ts): which ones a history gives its record, what people do to them
// between runs, and how they are judged, always from the sandbox's own state (the file on disk, the Secret and
// the Deployment in the sandbox's cluster), never from a run's word.
//
// What is promised (README, *Delivering the new credential*), and so what is judged:
// - After every run and every step, each destination holds the record's credential, or one that still works on
//   the target (the one it replaced, kept valid until delivery is done), or what a person left there: nothing
//   yet, a hand edit, or a credential a person (or time) killed. A person's doing is accepted until a run has
//   brought the destination up to date again; then it is ours once more. Where the replaced credential dies at
//   once (Wiz replaces in place; `retire_before_consumers_reload` accepts it), the promise is weaker: a
//   destination may hold any credential the record held, working or not, until delivery catches up.
// - Exit 0 only when every destination holds the record's credential, its Deployments restarted with it; exit 4
//   DELIVERY_INCOMPLETE only when one does not, or a delivery call failed (a lost reply hides whether a write
//   landed). After a clean run on every gateway, every destination holds the record's credential.
// - Keys of the Secret that are not ours (the application's own) are never lost or changed.
//
// The file is on a folder every gateway reaches (a shared volume): the README's gateway-pool caveat about
// per-host files is a deployment's choice, not something a history can judge.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { RecordData } from '../../src/keeper/record-data.js';
import { cloneData, readText, writeText } from '../../src/keeper/record.js';
import { ALLOW_FILE_DIRS } from '../../src/destinations/file.js';
import { ALLOW_K8S_RESTARTS, ALLOW_K8S_SECRETS, DELIVERY_ID_ANNOTATION, DOCKER_CONFIG_JSON_TYPE, DOCKER_CONFIG_KEY } from '../../src/destinations/kubernetes-secret.js';
import type { RequestLogEntry } from '../../src/sandbox/faults.js';
import type { JsonObject } from '../../src/sandbox/kubernetes/cluster.js';
import type { RecordView } from '../../src/sandbox/ksm/index.js';
import type { Sandbox } from '../../src/sandbox/sandbox.js';
import { type TargetOracle, possibleData } from './fault-matrix.js';

/** Where the history's record delivers, fixed by the seed. Empty: no destination. */
export interface DestinationPlan {
  /** A file in a folder of the history's own. */
  file?: { format: 'env' | 'json' };
  /**
   * A Secret in namespace `demo`: `app-creds` (there from the start, with the application's own key) or one the
   * first delivery creates (`k8s_create`); `restart` restarts Deployment demo/app after each delivery.
   */
  secret?: { name: string; create: boolean; restart: boolean };
}

/** What a person does to a destination between runs. */
export type DestinationAction =
  /** Someone edits our key of the Secret: back to an old value of the record's, or garbage. */
  | { kind: 'secret-edit'; value: 'old' | 'garbage' }
  /** Someone deletes the Secret (one we do not create is made again at once, with only the application's key). */
  | { kind: 'secret-delete' }
  /** Someone removes our delivery-id annotation from the Secret (a restart then looks undone). */
  | { kind: 'secret-unmark' }
  /** Someone changes (or adds) a key of the Secret that is not ours: it must be kept. */
  | { kind: 'secret-other' }
  /** Someone deletes the file. */
  | { kind: 'file-delete' };

export const DESTINATION_ACTIONS = ['secret-edit', 'secret-delete', 'secret-unmark', 'secret-other', 'file-delete'] as const;
export type DestinationActionKind = (typeof DESTINATION_ACTIONS)[number];

export const NAMESPACE = 'demo';
/** The Secret the demo seeds with the application's own key (src/sandbox/kubernetes/seed.ts). */
const SEEDED_SECRET = 'app-creds';
const SEEDED_KEY = 'database_host';
const RESTARTED = 'app';
/** A pull secret must be of the docker-config type; a Secret of ours for the other targets. */
const CREATED_SECRET = (target: string) => (target === 'aws-ecr-pull-secret' ? 'chaos-pull' : 'chaos-creds');

/** The destination actions that apply to a plan (none without a destination). */
export function actionsFor(plan: DestinationPlan): DestinationActionKind[] {
  const out: DestinationActionKind[] = [];
  if (plan.secret) out.push('secret-edit', 'secret-delete', 'secret-other', ...(plan.secret.restart ? (['secret-unmark'] as const) : []));
  if (plan.file) out.push('file-delete');
  return out;
}

export interface DrawSource {
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
}

const KINDS = ['none', 'file', 'secret', 'both', 'both'] as const;

/**
 * Draws a history's destinations: `want` true forces at least one, false none. A forced draw is the unforced one
 * whenever that agrees, so a history that drew destinations replays the same when they are forced.
 */
export function drawDestinations(rng: DrawSource, target: string, want?: boolean): DestinationPlan {
  let kind = rng.pick(KINDS);
  if (want === false) kind = 'none';
  else if (want === true && kind === 'none') kind = rng.pick(KINDS.slice(1));
  const plan: DestinationPlan = {};
  const format = rng.chance(0.6) ? 'env' : 'json';
  const create = rng.chance(0.5);
  // A pull secret needs no restart: the kubelet reads it at each image pull (README, ECR).
  const restart = target !== 'aws-ecr-pull-secret' && rng.chance(0.5);
  if (kind === 'file' || kind === 'both') plan.file = { format };
  if (kind === 'secret' || kind === 'both') {
    plan.secret = { name: create || target === 'aws-ecr-pull-secret' ? CREATED_SECRET(target) : SEEDED_SECRET, create, restart };
  }
  return plan;
}

export function describeDestinations(plan: DestinationPlan): string[] {
  const out: string[] = [];
  if (plan.file) out.push(`a ${plan.file.format} file`);
  if (plan.secret) {
    const s = plan.secret;
    out.push(`Secret ${NAMESPACE}/${s.name}${s.create ? ' (k8s_create)' : ''}${s.restart ? `, restarting ${NAMESPACE}/${RESTARTED}` : ''}`);
  }
  return out;
}

/** The record's credential labels, compared between a destination and the record. */
const CREDENTIAL_LABELS: Record<string, readonly string[]> = {
  'aws-iam-access-key': ['aws_access_key_id', 'aws_secret_access_key'],
  'azure-app-secret': ['client_secret'],
  'wiz-service-account': ['client_secret'],
  'aws-ecr-pull-secret': ['ecr_docker_config_json'],
};

/** A destination's key (Secret and json) and env name, as the record's label for the value. */
const LABEL_OF: Record<string, string> = {
  access_key_id: 'aws_access_key_id',
  secret_access_key: 'aws_secret_access_key',
  client_secret: 'client_secret',
  docker_config_json: 'ecr_docker_config_json',
  [DOCKER_CONFIG_KEY]: 'ecr_docker_config_json',
  AWS_ACCESS_KEY_ID: 'aws_access_key_id',
  AWS_SECRET_ACCESS_KEY: 'aws_secret_access_key',
  AZURE_CLIENT_SECRET: 'client_secret',
  WIZ_CLIENT_SECRET: 'client_secret',
  ECR_DOCKER_CONFIG_JSON: 'ecr_docker_config_json',
};
/** The Secret key a person edits: the one the consumer uses to sign in (for a pull secret, the kubelet's). */
const EDITED_KEY: Record<string, string> = {
  'aws-iam-access-key': 'secret_access_key',
  'azure-app-secret': 'client_secret',
  'wiz-service-account': 'client_secret',
  'aws-ecr-pull-secret': DOCKER_CONFIG_KEY,
};

type Values = Record<string, string>;

/** What one destination holds right now. */
interface Held {
  where: string;
  /** The credential values by the record's labels; undefined when it holds nothing of ours. */
  values: Values | undefined;
  /** Every named Deployment carries the Secret's delivery ID (always true for a file, or without restarts). */
  restarted: boolean;
}

type Verdict = 'current' | 'works' | 'record-held' | 'other' | 'nothing';

export interface Judge {
  violation(where: string, problem: string): void;
  warning(where: string, problem: string): void;
  line(s: string): void;
}

/** Requests that write to a destination (a rejected run must make none). */
export const DESTINATION_WRITES = ['PatchSecret', 'CreateSecret', 'ReplaceSecret', 'PatchDeployment'];

/** A delivery call that failed, or whose outcome the run could not know, as the sandbox logged it. */
function failedDeliveryCall(e: RequestLogEntry): boolean {
  if (e.service !== 'kubernetes') return false;
  if (e.fault !== undefined || e.throttled) return true;
  // A missing Secret (to create it) and a lost race (read again and retried) are answers delivery expects.
  if ((e.operation === 'GetSecret' && e.status === 404) || (e.status === 409 && (e.operation === 'PatchSecret' || e.operation === 'CreateSecret'))) return false;
  return e.status >= 400;
}

export class HistoryDestinations {
  readonly folder: string;
  readonly file: string;
  /**
   * Per destination: what it holds is a person's doing (nothing delivered yet, a hand edit, a credential a person
   * or time killed), accepted until it holds a working credential again.
   */
  readonly #theirs = new Map<string, string>();
  /** The Secret's keys that are not ours and their values, as the application (or a person) last set them. */
  readonly #others = new Map<string, string>();
  /** Every credential the record held (by its labels' values), for the weaker promise and `old` hand edits. */
  readonly #recordHeld: Values[] = [];
  #edits = 0;

  constructor(
    readonly sb: Sandbox,
    dir: string,
    readonly plan: DestinationPlan,
    readonly target: string,
    readonly oracle: TargetOracle,
    /** Whether the replaced credential may die before delivery (in place, or retire_before_consumers_reload). */
    readonly weak: boolean,
  ) {
    this.folder = join(dir, 'delivered');
    this.file = join(this.folder, plan.file?.format === 'json' ? 'app.json' : 'app.env');
  }

  get any(): boolean {
    return this.plan.file !== undefined || this.plan.secret !== undefined;
  }

  /** Record settings for the plan's destinations. */
  settings(): Record<string, string> {
    const out: Record<string, string> = {};
    if (this.plan.file) {
      out.file_destinations = this.file;
      out.file_format = this.plan.file.format;
    }
    if (this.plan.secret) {
      out.k8s_secret = `${NAMESPACE}/${this.plan.secret.name}`;
      if (this.plan.secret.create) out.k8s_create = 'true';
      if (this.plan.secret.restart) out.k8s_restart = RESTARTED;
    }
    return out;
  }

  /** The gateway owner's allow-lists, as the fault matrix's `delivery` scenario sets them: exactly what the plan needs. */
  env(): Record<string, string> {
    if (!this.any) return {};
    return {
      ...(this.plan.file ? { [ALLOW_FILE_DIRS]: this.folder } : {}),
      ...(this.plan.secret ? { [ALLOW_K8S_SECRETS]: `${NAMESPACE}/*` } : {}),
      ...(this.plan.secret?.restart ? { [ALLOW_K8S_RESTARTS]: `${NAMESPACE}/${RESTARTED}` } : {}),
    };
  }

  setup(): void {
    if (this.plan.file) {
      mkdirSync(this.folder, { recursive: true });
      this.#theirs.set(this.#fileWhere, 'nothing delivered yet');
    }
    const s = this.plan.secret;
    if (!s) return;
    const cluster = this.sb.kubernetes.cluster;
    // A pull secret a person made beforehand, of the right type, with a key of its own beside the login.
    if (!s.create && !cluster.secret(NAMESPACE, s.name)) {
      cluster.seedSecret({ namespace: NAMESPACE, name: s.name, type: DOCKER_CONFIG_JSON_TYPE, stringData: { [DOCKER_CONFIG_KEY]: '{"auths":{}}', [SEEDED_KEY]: 'registry-mirror.demo.svc' } });
    }
    for (const [k, v] of Object.entries(cluster.secretText(NAMESPACE, s.name) ?? {})) if (!this.#ours(k)) this.#others.set(k, v);
    this.#theirs.set(this.#secretWhere, 'nothing delivered yet');
  }

  get #fileWhere(): string {
    return `file ${this.plan.file?.format === 'json' ? 'app.json' : 'app.env'}`;
  }

  get #secretWhere(): string {
    return `Secret ${NAMESPACE}/${this.plan.secret?.name ?? ''}`;
  }

  /** A Secret key this tool writes (every target's layout), as opposed to the application's own. */
  #ours(key: string): boolean {
    return key in LABEL_OF || key === 'client_id' || key === 'tenant_id';
  }

  // --- reading -------------------------------------------------------------------------------------------------

  #readFile(): Held {
    const where = this.#fileWhere;
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      return { where, values: undefined, restarted: true };
    }
    const values: Values = {};
    if (this.plan.file?.format === 'json') {
      try {
        for (const [k, v] of Object.entries(JSON.parse(text) as Record<string, unknown>)) if (LABEL_OF[k] && typeof v === 'string') values[LABEL_OF[k]!] = v;
      } catch {
        return { where, values: undefined, restarted: true };
      }
    } else {
      for (const line of text.split('\n')) {
        const eq = line.indexOf('=');
        const label = eq > 0 ? LABEL_OF[line.slice(0, eq)] : undefined;
        // A value the env format had to quote (a Docker config's JSON) is read back as a shell reads it.
        const raw = line.slice(eq + 1);
        if (label) values[label] = /^".*"$/.test(raw) ? raw.slice(1, -1).replace(/\\([\\"$`])/g, '$1') : raw;
      }
    }
    return { where, values: Object.keys(values).length > 0 ? values : undefined, restarted: true };
  }

  #readSecret(): Held {
    const where = this.#secretWhere;
    const s = this.plan.secret!;
    const cluster = this.sb.kubernetes.cluster;
    const text = cluster.secretText(NAMESPACE, s.name);
    if (!text) return { where, values: undefined, restarted: false };
    const values: Values = {};
    // The kubelet's key first: for a pull secret that is what a consumer uses.
    for (const [k, v] of Object.entries(text)) if (LABEL_OF[k] && !(LABEL_OF[k]! in values)) values[LABEL_OF[k]!] = v;
    if (this.target === 'aws-ecr-pull-secret' && text[DOCKER_CONFIG_KEY] !== undefined) values.ecr_docker_config_json = text[DOCKER_CONFIG_KEY]!;
    const labels = CREDENTIAL_LABELS[this.target]!;
    const ours = labels.every((l) => values[l] !== undefined && !(this.target === 'aws-ecr-pull-secret' && values[l] === '{"auths":{}}'));
    const id = ((cluster.secret(NAMESPACE, s.name)?.metadata as JsonObject | undefined)?.annotations as Record<string, string> | undefined)?.[DELIVERY_ID_ANNOTATION];
    let restarted = true;
    if (s.restart) {
      const template = ((cluster.deployment(NAMESPACE, RESTARTED)?.spec as JsonObject | undefined)?.template as JsonObject | undefined)?.metadata as JsonObject | undefined;
      restarted = id !== undefined && (template?.annotations as Record<string, string> | undefined)?.[DELIVERY_ID_ANNOTATION] === id;
    }
    return { where, values: ours ? values : undefined, restarted };
  }

  held(): Held[] {
    return [...(this.plan.file ? [this.#readFile()] : []), ...(this.plan.secret ? [this.#readSecret()] : [])];
  }

  /** The credential values the record holds (each side of an open transaction). */
  #recordValues(view: RecordView): Values[] {
    return possibleData(view).map((d) => Object.fromEntries(CREDENTIAL_LABELS[this.target]!.map((l) => [l, readText(d, l) ?? ''])));
  }

  #same(a: Values, b: Values): boolean {
    return CREDENTIAL_LABELS[this.target]!.every((l) => a[l] !== undefined && a[l] === b[l]);
  }

  /** Record data carrying the destination's values, as the oracle judges a record. */
  #asData(values: Values, view: RecordView): RecordData {
    const data = cloneData(view.data);
    for (const [label, value] of Object.entries(values)) writeText(data, { label, kind: label.includes('secret') || label.includes('config') ? 'secret' : 'text' }, value);
    return data;
  }

  #verdict(h: Held, view: RecordView): Verdict {
    if (!h.values) return 'nothing';
    if (this.#recordValues(view).some((r) => this.#same(h.values!, r))) return 'current';
    if (this.oracle.works(this.sb, this.#asData(h.values, view))) return 'works';
    if (this.#recordHeld.some((r) => this.#same(h.values!, r))) return 'record-held';
    return 'other';
  }

  /** Notes what the record holds now, so later checks know every credential it ever held. */
  noteRecord(view: RecordView): void {
    for (const r of this.#recordValues(view)) if (!this.#recordHeld.some((x) => this.#same(x, r))) this.#recordHeld.push(r);
  }

  // --- judging -------------------------------------------------------------------------------------------------

  /**
   * Every destination holds an acceptable credential, and the Secret keeps the application's keys. `recordBroken`:
   * why the record's own credential not working is accepted right now, if it is (a destination that holds exactly
   * the record's credential shares its fate, and the record is judged on its own).
   */
  judge(where: string, view: RecordView, j: Judge, recordBroken: string | undefined): void {
    if (!this.any) return;
    this.noteRecord(view);
    for (const h of this.held()) {
      const v = this.#verdict(h, view);
      const works = v === 'works' || (v === 'current' && this.oracle.works(this.sb, this.#asData(h.values!, view)));
      if (works) {
        this.#theirs.delete(h.where);
        continue;
      }
      if (v === 'current' && recordBroken) {
        this.#theirs.set(h.where, `holds the record's credential, which does not work (${recordBroken})`);
        continue;
      }
      const theirs = this.#theirs.get(h.where);
      if (theirs) continue;
      if (v === 'current') continue; // the record's own broken credential: judged (and reported) as the record's
      if (this.weak && v === 'record-held') continue;
      j.violation(where, `the ${h.where} holds ${v === 'nothing' ? 'nothing of ours' : v === 'record-held' ? 'a credential the record held, which no longer works' : 'a credential that does not work and was never the record\'s'}`);
    }
    this.#judgeOthers(where, j);
  }

  #judgeOthers(where: string, j: Judge): void {
    if (!this.plan.secret) return;
    const text = this.sb.kubernetes.cluster.secretText(NAMESPACE, this.plan.secret.name);
    if (!text) return;
    for (const [k, v] of this.#others) {
      if (text[k] === undefined) j.violation(where, `the Secret's own key ${k} (not ours) was lost`);
      else if (text[k] !== v) j.violation(where, `the Secret's own key ${k} (not ours) was changed`);
    }
  }

  /** The destinations that do not hold the record's credential (or whose Deployments were not restarted with it). */
  behind(view: RecordView): string[] {
    const out: string[] = [];
    for (const h of this.held()) {
      const v = this.#verdict(h, view);
      if (v !== 'current') out.push(`${h.where} (${v === 'nothing' ? 'holds nothing of ours' : 'holds another credential'})`);
      else if (!h.restarted) out.push(`${h.where} (Deployment ${NAMESPACE}/${RESTARTED} not restarted with it)`);
    }
    return out;
  }

  /**
   * Exit codes tell the truth about delivery. `raced`: the run was held while other runs saved, so the record may
   * have moved past what it delivered (judged by the invariant above, not by its exit code).
   */
  judgeExit(where: string, o: { exit: number | 'killed'; codes: string[]; calls: RequestLogEntry[] }, view: RecordView, j: Judge, raced: boolean): void {
    if (!this.any) return;
    const behind = this.behind(view);
    if (raced) {
      // Held while other runs went on, the run may have delivered after a newer rotation: a destination behind is
      // the next run's catch-up, and worth seeing; but one it left with a dead credential makes its exit 0 a lie.
      if (o.exit !== 0 || behind.length === 0) return;
      const dead = this.held().filter((h) => !this.#theirs.has(h.where) && (!h.values || !this.oracle.works(this.sb, this.#asData(h.values, view))));
      if (dead.length > 0) j.violation(where, `exit 0 after being held while other runs went on, yet the ${dead.map((h) => h.where).join(' and ')} ${dead.length > 1 ? 'hold' : 'holds'} a credential that no longer works (written over a newer delivery?)`);
      else j.warning(where, `exit 0 after being held while other runs went on, and ${behind.join('; ')}: the next run's catch-up delivers`);
      return;
    }
    if (o.exit === 0 && behind.length > 0) j.violation(where, `exit 0, yet ${behind.join('; ')}`);
    if (o.exit === 4 && o.codes[0] === 'DELIVERY_INCOMPLETE' && behind.length === 0 && !o.calls.some(failedDeliveryCall)) {
      j.violation(where, 'exit 4 DELIVERY_INCOMPLETE, yet every destination holds the record\'s credential and no delivery call failed');
    }
    // Exit 0 promised they are delivered: whatever a person did to them before is behind us.
    if (o.exit === 0) this.#theirs.clear();
  }

  /** After the final clean runs: delivery completed. */
  judgeFinal(where: string, view: RecordView, j: Judge): void {
    if (!this.any) return;
    for (const b of this.behind(view)) j.violation(where, `the ${b}, after a clean run on every gateway`);
    this.#judgeOthers(where, j);
  }

  /** What a destination holds now, to tell whether a rejected run wrote to it. */
  fingerprint(): string {
    return JSON.stringify(this.held().map((h) => [h.values, h.restarted]));
  }

  // --- what people do ------------------------------------------------------------------------------------------

  /** Applies a person's action; returns what was done, for the trace. */
  act(action: DestinationAction, view: RecordView): string {
    this.noteRecord(view);
    const cluster = this.sb.kubernetes.cluster;
    const s = this.plan.secret;
    if (action.kind === 'file-delete') {
      if (!this.plan.file) return 'skipped deleting the file: the record names none';
      rmSync(this.file, { force: true });
      this.#theirs.set(this.#fileWhere, 'deleted by hand');
      return `deleted the ${this.#fileWhere} by hand`;
    }
    if (!s) return `skipped ${action.kind}: the record names no Secret`;
    const secret = cluster.secret(NAMESPACE, s.name);
    if (!secret) return `skipped ${action.kind}: Secret ${NAMESPACE}/${s.name} does not exist`;
    const meta = secret.metadata as JsonObject;
    const bump = () => {
      meta.resourceVersion = cluster.nextResourceVersion();
      cluster.putSecret(NAMESPACE, s.name, secret);
    };
    switch (action.kind) {
      case 'secret-edit': {
        const key = EDITED_KEY[this.target]!;
        const current = this.#recordValues(view)[0]!;
        const old = action.value === 'old' ? this.#recordHeld.find((r) => !this.#same(r, current)) : undefined;
        if (old) {
          const values: Record<string, string> = {};
          for (const [k, label] of Object.entries(LABEL_OF)) if (label in old && cluster.secretText(NAMESPACE, s.name)?.[k] !== undefined) values[k] = old[label]!;
          cluster.editSecret(NAMESPACE, s.name, values);
        } else {
          cluster.editSecret(NAMESPACE, s.name, { [key]: this.#garbage() });
        }
        this.#theirs.set(this.#secretWhere, 'edited by hand');
        return `edited the Secret's ${old ? 'credential back to an old one of the record\'s' : `${key} to garbage`} by hand`;
      }
      case 'secret-delete': {
        cluster.deleteSecret(NAMESPACE, s.name);
        this.#others.clear();
        this.#theirs.set(this.#secretWhere, 'deleted by hand');
        if (s.create) return `deleted Secret ${NAMESPACE}/${s.name} by hand`;
        // The record may not create it: a person who deletes it makes it again, with the application's key only.
        const type = typeof secret.type === 'string' ? secret.type : undefined;
        const own: Record<string, string> = this.target === 'aws-ecr-pull-secret' ? { [DOCKER_CONFIG_KEY]: '{"auths":{}}' } : {};
        cluster.seedSecret({ namespace: NAMESPACE, name: s.name, ...(type ? { type } : {}), stringData: { ...own, [SEEDED_KEY]: `made-again-${++this.#edits}.demo.svc` } });
        this.#others.set(SEEDED_KEY, `made-again-${this.#edits}.demo.svc`);
        return `deleted Secret ${NAMESPACE}/${s.name} by hand and made it again with only the application's key`;
      }
      case 'secret-unmark': {
        const annotations = { ...((meta.annotations ?? {}) as Record<string, string>) };
        if (!(DELIVERY_ID_ANNOTATION in annotations)) return `skipped removing ${DELIVERY_ID_ANNOTATION}: the Secret does not carry it`;
        delete annotations[DELIVERY_ID_ANNOTATION];
        meta.annotations = annotations;
        bump();
        return `removed ${DELIVERY_ID_ANNOTATION} from the Secret by hand`;
      }
      case 'secret-other': {
        const value = `changed-by-hand-${++this.#edits}`;
        cluster.editSecret(NAMESPACE, s.name, { [SEEDED_KEY]: value });
        this.#others.set(SEEDED_KEY, value);
        return `set the Secret's own key ${SEEDED_KEY} by hand`;
      }
    }
  }

  /** A value no credential has: for a pull secret a Docker config whose login the registry does not know. */
  #garbage(): string {
    const n = ++this.#edits;
    if (this.target !== 'aws-ecr-pull-secret') return `garbage-typed-by-hand-${n}`;
    return JSON.stringify({ auths: { 'registry.invalid': { username: 'AWS', password: `garbage-${n}` } } });
  }

  /**
   * Around a person's action on the target or the record (chaos.ts): a destination that held a working
   * credential before it and does not after was broken by that person, not by a run.
   */
  around(view: RecordView, act: () => string): string {
    if (!this.any) return act();
    const before = new Map(this.held().map((h) => [h.where, h.values ? this.oracle.works(this.sb, this.#asData(h.values, view)) : false]));
    const done = act();
    const after = this.sb.ksm.readRecord(this.oracle.uid)!;
    for (const h of this.held()) {
      const works = h.values ? this.oracle.works(this.sb, this.#asData(h.values, after)) : false;
      if (before.get(h.where) && !works) this.#theirs.set(h.where, 'its credential was killed by hand');
    }
    return done;
  }

  /** A broken destination no person made (control tests only): the record's retired credential put back in the Secret. */
  sabotage(view: RecordView): string {
    const s = this.plan.secret;
    const file = this.plan.file;
    const dead = this.#recordHeld.find((r) => !this.oracle.works(this.sb, this.#asData(r, view)));
    if (!dead) return 'sabotage skipped: no dead credential the record held';
    if (s && this.sb.kubernetes.cluster.secret(NAMESPACE, s.name)) {
      const values: Record<string, string> = {};
      for (const [k, label] of Object.entries(LABEL_OF)) if (label in dead && this.sb.kubernetes.cluster.secretText(NAMESPACE, s.name)?.[k] !== undefined) values[k] = dead[label]!;
      this.sb.kubernetes.cluster.editSecret(NAMESPACE, s.name, values);
      return 'put a retired credential of the record\'s into the Secret (sabotage)';
    }
    if (file) return 'sabotage skipped: only the Secret is sabotaged';
    return 'sabotage skipped: no destination';
  }

  /** Drops the Secret's own key without telling the checker (control tests only). */
  sabotageOthers(): string {
    const s = this.plan.secret;
    if (!s || !this.sb.kubernetes.cluster.secret(NAMESPACE, s.name)) return 'sabotage skipped: no Secret';
    this.sb.kubernetes.cluster.editSecret(NAMESPACE, s.name, { [SEEDED_KEY]: null });
    return `removed the Secret's own key ${SEEDED_KEY} (sabotage)`;
  }
}
