// `--doctor`: every check a rotation depends on, in the order a run meets them, each reported on one line of
// stdout, and nothing changed: no save or transaction in Keeper, no journal or lock written, nothing created,
// removed or updated on the target. The record and the PAM configuration come in one Keeper request, as in a
// run; on the target the admin signs in and reads what the plan needs (the plan is read-only: a dry run's).
// A failed check skips the checks that need it; the exit code is that of the first failure's error code.
import { accessSync, constants, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DoctorIo, RunContext } from '../cli/main.js';
import { ExitCode, RotateError, describe, isRotateError } from '../errors.js';
import { type GatewayInput, gatewayInputFromFlags, parseGatewayInput, readAll } from '../gateway/input.js';
import { type AdminFieldNames, ambientAllowed, describeSource, hostOptIns, resolveAdmin, type ResolvedAdmin } from '../keeper/admin.js';
import { describeProxyRules, useProxyEnvironment } from '../http/proxy.js';
import { type GatewayConfig, loadGatewayConfig } from '../keeper/config.js';
import { readText } from '../keeper/record.js';
import { KeeperVault, type VaultRecord } from '../keeper/vault.js';
import { type Writable, escapeControls } from '../log.js';
import { redact } from '../secret.js';
import { openStateDir } from '../state/dir.js';
import { Journal } from '../state/journal.js';
import { inspectLock } from '../state/lock.js';
import { VERSION } from '../version.js';
import { COMMON_SETTINGS, fetchUser } from './rotate.js';
import { parseSetting, type SettingSpec } from './settings.js';
import type { Target, TargetContext, TargetSession } from './target.js';
import type { Deadline } from '../deadline.js';
import { DELIVERY_SETTINGS, checkRetention, deliveryFor } from './deliver.js';

type Status = 'ok' | 'warn' | 'FAIL' | 'skip';

/** What a check found: one line, and optional detail lines under it. `warn` reports without failing. */
export interface CheckFinding {
  detail: string;
  notes?: string[];
  warn?: boolean;
}

interface CheckResult {
  name: string;
  status: Status;
  error?: RotateError;
}

/**
 * Prints each check as it finishes and keeps score. Every line is scrubbed of known secrets, then its control
 * characters escaped: details quote record titles and types and target names, which come from outside.
 */
export class DoctorReport {
  readonly #out: Writable;
  readonly #results: CheckResult[] = [];

  constructor(out: Writable) {
    this.#out = out;
  }

  #print(status: Status, name: string, text: string, notes: readonly string[] = []): void {
    const lines = [`${status.padEnd(6)}${name}: ${text}`, ...notes.map((n) => `${' '.repeat(6)}- ${n}`)];
    this.#out.write(lines.map((l) => escapeControls(redact(l))).join('\n') + '\n');
  }

  /** Whether a check ran and passed (a warning passes). */
  passed(name: string): boolean {
    const r = this.#results.find((x) => x.name === name);
    return r?.status === 'ok' || r?.status === 'warn';
  }

  /**
   * Runs one check unless a check it needs did not pass (then it is skipped, naming that check). Returns the
   * check's value, or undefined when it failed or was skipped. Never throws.
   */
  async check<T>(name: string, needs: readonly string[], run: () => Promise<{ value: T } & CheckFinding>): Promise<T | undefined> {
    const missing = needs.find((n) => !this.passed(n));
    if (missing !== undefined) {
      this.#results.push({ name, status: 'skip' });
      this.#print('skip', name, `needs ${missing}`);
      return undefined;
    }
    try {
      const found = await run();
      const status = found.warn ? 'warn' : 'ok';
      this.#results.push({ name, status });
      this.#print(status, name, found.detail, found.notes);
      return found.value;
    } catch (err) {
      const error = isRotateError(err) ? err : new RotateError('INTERNAL', `unexpected error: ${describe(err)}`, { cause: err });
      this.#results.push({ name, status: 'FAIL', error });
      this.#print('FAIL', name, `${error.code}: ${error.message}`);
      return undefined;
    }
  }

  /** Prints the summary line and returns the exit code: 0, or the first failure's. */
  finish(): number {
    const count = (s: Status) => this.#results.filter((r) => r.status === s).length;
    const extra = [count('warn') ? `${count('warn')} warning(s)` : '', count('skip') ? `${count('skip')} skipped` : ''].filter(Boolean);
    this.#out.write(`doctor: ${this.#results.length} checks, ${count('ok')} ok, ${count('FAIL')} failed${extra.map((e) => `, ${e}`).join('')}\n`);
    return this.#results.find((r) => r.error)?.error?.exitCode ?? ExitCode.Ok;
  }
}

const CHECK = {
  input: 'gateway input',
  config: 'gateway config',
  proxy: 'proxy',
  state: 'state folder',
  allowList: 'allow-list',
  record: 'PAM User record',
  provider: 'PAM configuration',
  fields: 'record fields',
  admin: 'admin credentials',
  settings: 'settings',
  target: 'target',
  destinations: 'destinations',
} as const;

/** Runs every check for one target and returns the exit code. Reads stdin as a run does; writes nothing. */
export async function runDoctor<K extends string, S extends K, C>(target: Target<K, S, C>, io: DoctorIo): Promise<number> {
  const report = new DoctorReport(io.stdout);
  const { deadline, log, env } = io;
  // The version first: a report pasted into a ticket says which script made it.
  io.stdout.write(`${target.name} ${VERSION} doctor: checks only, nothing is changed\n`);

  const input = await report.check(CHECK.input, [], async () => {
    if (io.record !== undefined) {
      const value = gatewayInputFromFlags(io.record, io.config);
      const provider = value.providerRecordUid ? `, PAM configuration ${value.providerRecordUid}` : '';
      const notes = [
        'no records attached (the gateway adds the script\'s Rotation Credential records): admin credentials are looked for in the PAM configuration and the record only',
        ...(value.providerRecordUid ? [] : ['no --config: the PAM configuration is not read (Commander\'s `pam config list` shows its UID)']),
      ];
      return { value, detail: `PAM User record ${value.userRecordUid}${provider}, from --record${value.providerRecordUid ? ' and --config' : ''} (stdin is not read)`, notes };
    }
    const value = parseGatewayInput(await readAll(io.stdin, { idleMs: io.stdinIdleMs }));
    const provider = value.providerRecordUid ? `, PAM configuration ${value.providerRecordUid}` : '';
    return { value, detail: `PAM User record ${value.userRecordUid}${provider}, ${value.records.length} record(s) attached` };
  });
  const config = await report.check(CHECK.config, [], async () => {
    const value = loadGatewayConfig({ env, platform: io.platform });
    return { value, detail: `${value.source} (Keeper host ${value.hostname})` };
  });
  // Before any request: every client routes by these rules, and a value they cannot use fails here (PROXY_INVALID).
  await report.check(CHECK.proxy, [], async () => ({
    value: true,
    ...describeProxyRules(useProxyEnvironment(env), config ? { Keeper: `https://${config.hostname}/` } : {}),
  }));
  await report.check(CHECK.state, [CHECK.config], async () => checkStateDir(config!, input, io));
  // The gateway owner's, from the environment only: what this gateway may rotate, whatever any record says.
  const allowList = target.allowList;
  if (allowList) await report.check(CHECK.allowList, [], async () => ({ value: true, detail: allowList(env) }));

  let vault: KeeperVault | undefined;
  try {
    if (input && config) vault = new KeeperVault(config, { deadline });
    const fetched = await report.check(CHECK.record, [CHECK.input, CHECK.config, CHECK.proxy], async () => {
      deadline.check('reaching Keeper');
      const uids = [input!.userRecordUid, ...(input!.providerRecordUid ? [input!.providerRecordUid] : [])];
      // The same single request, and the same checks and messages, as a rotation's first read.
      const value = await fetchUser({ vault: vault!, input: input! }, target, uids);
      return { value, detail: `Keeper answered; record ${value.user.uid} "${value.user.title}" is a PAM User` };
    });
    const user = fetched?.user;
    const provider = fetched?.provider;
    if (input?.providerRecordUid) {
      await report.check(CHECK.provider, [CHECK.record], async () =>
        provider
          ? { value: provider, detail: `record ${provider.uid} "${provider.title}" (${provider.type})` }
          : {
              value: undefined,
              warn: true,
              detail: `record ${input.providerRecordUid} is not shared with the gateway's application; admin credentials must then come from the gateway input, an attached record or the PAM User record`,
            },
      );
    }
    await report.check(CHECK.fields, [CHECK.record], async () => checkFields(target, user!));
    const admin = await report.check(CHECK.admin, [CHECK.record], async () => {
      const value = resolveAdmin(target.admin, { input: input!, user: user!, provider, env });
      return { value, detail: `from ${describeSource(value.source)}`, notes: hostNotes(target.admin, env) };
    });
    const tctx = (): TargetContext<K, S> => ({ input: input!, user: user!, admin: admin as ResolvedAdmin<K, S>, env, log, deadline });
    const prepared = await report.check(CHECK.settings, [CHECK.fields, CHECK.admin, ...(allowList ? [CHECK.allowList] : [])], async () => checkSettings(target, tctx(), user!));
    let session: TargetSession | undefined;
    await report.check(CHECK.target, [CHECK.settings], async () => {
      deadline.check('connecting to the target');
      session = await target.connect(prepared!.config, tctx());
      // The plan reads the target and decides; it changes nothing (a dry run stops right after it).
      const plan = await session.plan({});
      const notes = [...plan.notes];
      if (plan.skip) notes.push(`a run now would change nothing: ${plan.skip}`);
      else {
        for (const c of plan.removeBefore) notes.push(`a run would remove ${c.id} before creating (${c.reason})`);
        notes.push(target.mode === 'in-place' ? 'a run would replace the credential on the target and save it in the record' : 'a run would create a new credential and save it in the record');
        for (const c of plan.removeAfter) notes.push(`a run would ${c.deactivate ? 'deactivate' : 'remove'} ${c.id} after verifying the new one (${c.reason})`);
      }
      return { value: true, detail: `the admin signs in and reads ${session.describe()}`, notes };
    });
    await report.check(CHECK.destinations, [CHECK.target], async () => checkDestinations(target, prepared!.config, user!, env, session!, deadline));
  } finally {
    vault?.close();
  }
  return report.finish();
}

/**
 * For a target that can sign with the host's own identity: whether this gateway lets any record do so, which is
 * the gateway owner's decision and worth seeing beside where this record's credentials come from.
 */
function hostNotes<K extends string, S extends K>(names: AdminFieldNames<K, S>, env: NodeJS.ProcessEnv): string[] {
  if (!names.ambient) return [];
  const { variable, value } = names.ambient.optIn;
  return ambientAllowed(names.ambient, env)
    ? [`${variable}=${value}: a record with no admin credentials anywhere, or with admin_credentials = host, signs with ${names.ambient.description}`]
    : [`${variable} is not set: ${names.ambient.description} signs only where the gateway owner allows it, with ${hostOptIns(names)}`];
}

/** The folder, and what it holds for this record: a lock, an interrupted run, sealed secrets. Reads only. */
async function checkStateDir(config: GatewayConfig, input: GatewayInput | undefined, io: DoctorIo): Promise<{ value: string } & CheckFinding> {
  // Creating the folder (0700) is what every run does first; it writes nothing in it.
  const dir = openStateDir(config, { env: io.env, platform: io.platform });
  try {
    accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new RotateError('STATE_DIR_UNAVAILABLE', `cannot write the state folder ${dir} (${(err as NodeJS.ErrnoException).code ?? 'error'}); set KEEPER_ROTATE_STATE_DIR to a folder the gateway's user can write`);
  }
  const notes: string[] = [];
  let warn = false;
  const journal = new Journal(dir, config);
  if (input) {
    const uid = input.userRecordUid;
    const lock = inspectLock(dir, uid);
    if (lock.state === 'unreadable' && lock.stale) notes.push(`an unreadable lock for record ${uid}: the next run takes it over`);
    else if (lock.state === 'unreadable') {
      warn = true;
      notes.push(`a lock for record ${uid} that cannot be read yet (another run may be writing it): a run now would stop with ROTATION_IN_PROGRESS`);
    } else if (lock.state === 'held') {
      warn = true;
      notes.push(
        lock.overdue
          ? `a run (pid ${lock.pid}) holds the lock on record ${uid} past its hard stop and may be hung; runs stop with ROTATION_IN_PROGRESS until that process ends`
          : `a run (pid ${lock.pid}) is rotating record ${uid} now; a second run would stop with ROTATION_IN_PROGRESS`,
      );
    } else if (lock.state === 'stale') notes.push(`a stale lock for record ${uid} (pid ${lock.pid} is gone): the next run takes it over`);
    // Throws STATE_DIR_UNAVAILABLE when the journal cannot be read: a run would stop there too.
    const pending = journal.read(uid);
    if (pending && pending.phase !== 'unsaved') {
      warn = true;
      // The resource it worked on: a run whose record names another stops with RECOVERY_RETARGETED instead.
      const where = pending.principal ? ` on ${pending.principal.replace(/^[a-z-]+:/, '')}` : '';
      const next = where ? 'the next run finishes or undoes it first while the record names that, else it stops with RECOVERY_RETARGETED' : 'the next run finishes or undoes it first';
      notes.push(`a ${pending.target} run stopped at "${pending.phase}"${where} on ${pending.at}; ${next}`);
    }
  }
  const { entries, unreadable } = journal.unsaved();
  for (const entry of entries) {
    // Opening the seal proves the next run can store it; the values stay in memory and are dropped.
    journal.unseal(entry);
    warn = true;
    notes.push(`a secret Keeper refused is sealed here for record ${entry.recordUid} (${entry.target}); the next run of any script stores it first`);
  }
  for (const uid of unreadable) {
    warn = true;
    notes.push(`the journal of record ${uid} is unreadable or fails its integrity check; that record's runs stop until it is checked by hand and moved aside`);
  }
  if (input) {
    for (const foreign of journal.foreignSealed(input.userRecordUid)) {
      warn = true;
      notes.push(`another registration of this gateway left a journal for record ${input.userRecordUid} in ${foreign}, which this config cannot open`);
    }
  }
  return { value: dir, detail: dir, notes, warn };
}

/**
 * The record was made for this target (no other target's fields), and every field the target declares as
 * required holds a value, read the way the target reads it.
 */
async function checkFields(target: Pick<Target, 'fields'> & { admin: { checkRecord?: (user: VaultRecord) => void } }, user: VaultRecord): Promise<{ value: true } & CheckFinding> {
  target.admin.checkRecord?.(user);
  const required = target.fields.filter((f) => f.required);
  const missing = required.filter((f) => readText(user.data, f.label) === undefined).map((f) => f.label);
  if (missing.length > 0) {
    throw new RotateError('RECORD_FIELD_MISSING', `record ${user.uid} has no value in ${missing.map((l) => `"${l}"`).join(', ')}`);
  }
  const unwritten = target.fields.filter((f) => !f.required && readText(user.data, f.label) === undefined).map((f) => f.label);
  return {
    value: true,
    detail: required.length ? `${required.map((f) => f.label).join(', ')} present` : 'no field is required',
    notes: unwritten.length ? [`not written yet (the first rotation writes them): ${unwritten.join(', ')}`] : [],
  };
}

/**
 * Where a run would deliver, whether each destination is allowed and writable (checked without writing), and
 * whether it already holds the record's credential (read back): a run delivers first to any that does not.
 */
async function checkDestinations<K extends string, S extends K, C>(target: Target<K, S, C>, config: C, user: VaultRecord, env: NodeJS.ProcessEnv, session: TargetSession, deadline: Deadline): Promise<{ value: true } & CheckFinding> {
  const delivery = deliveryFor(user.data, env, target.name, { deadline });
  checkRetention(delivery, target.retiresReplacedAtOnce?.(config));
  if (delivery.destinations.length === 0) return { value: true, detail: 'none: the credential stays in the record (file_destinations, k8s_secret)' };
  const payload = session.delivery?.(user.data);
  const notes: string[] = [];
  for (const d of delivery.destinations) {
    await d.check();
    const held = await d.held();
    notes.push(`${d.describe()}: allowed and writable; ${!payload ? 'the record holds no credential yet' : held === payload.fingerprint ? "holds the record's credential" : "does not hold the record's credential yet: a run delivers it first"}`);
  }
  return { value: true, detail: `${delivery.destinations.length} destination(s)`, notes };
}

/** The target's own validation of the record, its settings and the admin credentials' form: no network. */
async function checkSettings<K extends string, S extends K, C>(target: Target<K, S, C>, tctx: TargetContext<K, S>, user: VaultRecord): Promise<{ value: { config: C } } & CheckFinding> {
  const config = target.prepare(tctx);
  const dryRun = parseSetting(COMMON_SETTINGS.dryRun, user.data);
  const specs: SettingSpec[] = [...Object.values(target.settings), ...Object.values(COMMON_SETTINGS), ...Object.values(DELIVERY_SETTINGS)];
  const set = specs.flatMap((s) => {
    const raw = readText(user.data, s.label);
    return raw === undefined ? [] : [`${s.label}=${raw}`];
  });
  return {
    value: { config },
    detail: set.length ? `valid: ${set.join(', ')}` : 'valid (all defaults)',
    notes: dryRun ? ['dry_run is on: runs plan and change nothing'] : [],
  };
}
