// The rotation pipeline every target shares. Its order is the safety argument:
//   lock the record → store sealed secrets of earlier runs → read → finish or undo this record's interrupted
//   run → plan → (remove orphans / make room) → create → save in a Keeper rotation transaction (revision-
//   checked) → verify the new credential on the target → finalize → retire what the plan retires.
// At each point the record holds a credential that works: the new one is written only after it exists, the
// old ones are removed only after the new one is saved, verified and finalized, and whatever this run created
// is removed again when a later step fails, but only after a fresh read shows the record does not hold it.
// Each step is written to the record's journal (state/journal.ts) before it is taken, so a killed run leaves
// the next one enough to finish or undo it. Targets that replace in place (Wiz) follow replaceInPlace below.
import { setTimeout as sleep } from 'node:timers/promises';
import { ExitCode, RotateError, describe as describeError, isRotateError } from '../errors.js';
import { describeSource, resolveAdmin } from '../keeper/admin.js';
import { cloneData, readText, writeText } from '../keeper/record.js';
import type { VaultRecord } from '../keeper/vault.js';
import { HARD_STOP_GRACE_MS, type RunContext, type ScriptDefinition, type ScriptOutcome } from '../cli/main.js';
import { redact } from '../secret.js';
import { lockRecord } from '../state/lock.js';
import { recoverInterrupted, saveWithRetries, storeUnsaved } from './recovery.js';
import { runDoctor } from './doctor.js';
import { parseSetting, type SettingSpec } from './settings.js';
import type { CredentialInfo, NewCredential, PlanContext, Target, TargetContext, TargetSession, VerifyResult } from './target.js';
import { abandon, confirmFinalized, removeCredential, saveMayHaveOpened, withExit } from './undo.js';

/** Settings every target reads, besides its own. */
export const COMMON_SETTINGS = {
  dryRun: {
    kind: 'boolean',
    label: 'dry_run',
    default: false,
    description: 'Plan the rotation and log what it would create and remove, without changing anything.',
  },
} as const satisfies Record<string, SettingSpec>;

const VERIFY_FIRST_DELAY_MS = 250;
/** Polls at most this far apart, so a run waits at most about this long past the moment a credential works. */
const VERIFY_MAX_DELAY_MS = 500;

export function rotationScript<K extends string, S extends K, C>(target: Target<K, S, C>): ScriptDefinition {
  return { name: target.name, summary: target.summary, help: targetHelp(target), run: (ctx) => rotate(target, ctx), doctor: (io) => runDoctor(target, io) };
}

/** The record fields and settings, for --help; the README and the CSV templates use the same declarations. */
export function targetHelp(target: Pick<Target, 'fields' | 'settings'>): string {
  const fields = target.fields.map((f) => `  ${f.label.padEnd(34)}${f.kind === 'secret' ? 'hidden' : 'text  '}  ${f.required ? '(required) ' : ''}${f.description}`);
  const settings = [...Object.values(target.settings), ...Object.values(COMMON_SETTINGS)].map(
    (s) => `  ${s.label.padEnd(34)}${String(s.default ?? '-').padEnd(8)}${s.description}`,
  );
  return `PAM User record fields:\n${fields.join('\n')}\n\nOptional settings (custom fields on the record; default in the middle):\n${settings.join('\n')}\n`;
}

const ids = (list: CredentialInfo[]) => list.map((c) => c.id);

async function rotate<K extends string, S extends K, C>(target: Target<K, S, C>, ctx: RunContext): Promise<ScriptOutcome> {
  // Local, before any network call: a second run on this record stops here having touched nothing.
  const lock = lockRecord(ctx.stateDir, ctx.input.userRecordUid, ctx.deadline.endsAt() + HARD_STOP_GRACE_MS);
  try {
    return await rotateLocked(target, ctx, lock.runId);
  } finally {
    lock.release();
  }
}

/** The run's one read of the PAM User record (and the PAM configuration); doctor.ts makes the same read. */
export async function fetchUser(ctx: Pick<RunContext, 'vault' | 'input'>, target: Pick<Target, 'name'>, uids: string[]) {
  const records = await ctx.vault.fetch(uids);
  const user = records.get(ctx.input.userRecordUid);
  if (!user) {
    throw new RotateError('RECORD_NOT_FOUND', `PAM User record ${ctx.input.userRecordUid} is not shared with the gateway's application, or does not exist`);
  }
  if (user.type !== 'pamUser') {
    throw new RotateError('RECORD_WRONG_TYPE', `record ${user.uid} is a "${user.type}" record; ${target.name} rotates PAM User records (convert it to PAM User)`);
  }
  return { user, provider: ctx.input.providerRecordUid ? records.get(ctx.input.providerRecordUid) : undefined };
}

async function rotateLocked<K extends string, S extends K, C>(target: Target<K, S, C>, ctx: RunContext, runId: string): Promise<ScriptOutcome> {
  const { input, vault, log, deadline, journal } = ctx;
  const uids = [input.userRecordUid, ...(input.providerRecordUid ? [input.providerRecordUid] : [])];
  const pending = journal.read(input.userRecordUid);
  // A secret that works only on its target and is not in Keeper comes before everything, this record or not.
  if (!ctx.dryRun) await storeUnsaved(ctx, input.userRecordUid);
  let { user, provider } = await fetchUser(ctx, target, uids);
  const admin = resolveAdmin(target.admin, { input, user, provider });
  log.info('admin', `using admin credentials from ${describeSource(admin.source)}`);
  const tctx: TargetContext<K, S> = { input, user, admin, env: ctx.env, log, deadline };
  const config = target.prepare(tctx);
  const dryRun = ctx.dryRun || parseSetting(COMMON_SETTINGS.dryRun, user.data);

  deadline.check('connecting to the target');
  const session = await target.connect(config, tctx);
  let planContext: PlanContext = {};
  if (pending && pending.phase !== 'unsaved') {
    if (dryRun) {
      log.info('plan', `would first finish an earlier run that stopped at "${pending.phase}"`);
    } else {
      planContext = await recoverInterrupted(ctx, session, user, pending, deadline.totalMs + HARD_STOP_GRACE_MS);
      ({ user } = await fetchUser(ctx, target, [user.uid]));
    }
  }
  const plan = await session.plan(planContext);
  for (const note of plan.notes) log.info('plan', note);
  if (plan.skip) {
    return { exitCode: ExitCode.Ok, outcome: 'skipped', message: plan.skip, fields: { target: session.describe() } };
  }
  const planFields = { target: session.describe(), remove_before: ids(plan.removeBefore), remove_after: ids(plan.removeAfter) };
  if (dryRun) {
    for (const c of plan.removeBefore) log.info('plan', `would remove ${c.id} before creating (${c.reason})`);
    log.info('plan', target.mode === 'in-place' ? 'would replace the credential on the target and save it in the record' : 'would create a new credential and save it in the record');
    for (const c of plan.removeAfter) log.info('plan', `would ${c.deactivate ? 'deactivate' : 'remove'} ${c.id} after verifying the new one (${c.reason})`);
    return { exitCode: ExitCode.Ok, outcome: 'planned', message: 'dry run: nothing was changed', fields: planFields };
  }

  for (const c of plan.removeBefore) {
    deadline.check(`removing ${c.id}`);
    await removeCredential(session, c);
    log.info('prepare', `removed ${c.id} (${c.reason})`);
  }

  const step = { runId, target: target.name, recordUid: user.uid, since: new Date().toISOString() };
  const created = target.mode === 'in-place' ? await replaceInPlace(ctx, session, user, step, target.verifyTimeoutMs(config)) : await createAlongside(ctx, session, user, step, target.verifyTimeoutMs(config));

  let adoptError: unknown;
  try {
    await session.adopt?.(created);
  } catch (err) {
    adoptError = err;
  }
  const failed: string[] = [];
  for (const c of plan.removeAfter) {
    try {
      deadline.check(`removing ${c.id}`);
      await removeCredential(session, c);
      log.info('retire', `${c.deactivate ? 'deactivated' : 'removed'} ${c.id} (${c.reason})`);
    } catch (err) {
      failed.push(c.id);
      log.warn('retire', `could not remove ${c.id}; the next run retries: ${redact(describeError(err))}`);
    }
  }
  if (adoptError) {
    const base = isRotateError(adoptError) ? adoptError : new RotateError('INTERNAL', describeError(adoptError), { cause: adoptError });
    throw withExit(base, ExitCode.CleanupIncomplete, `; the record holds the new, verified credential ${created.id}`);
  }
  const done = plan.removeAfter.filter((c) => !failed.includes(c.id));
  const fields = {
    target: session.describe(),
    new_id: created.id,
    expires: created.expires,
    removed: [...ids(plan.removeBefore), ...ids(done.filter((c) => !c.deactivate))],
    ...(done.some((c) => c.deactivate) ? { deactivated: ids(done.filter((c) => c.deactivate)) } : {}),
  };
  if (failed.length) {
    throw new RotateError('CLEANUP_INCOMPLETE', `rotated to ${created.id} and saved it, but could not remove ${failed.join(', ')}; the next run retries`);
  }
  return { exitCode: ExitCode.Ok, outcome: 'rotated', message: `rotated to ${created.id}`, fields };
}

type Step = { runId: string; target: string; recordUid: string; since: string };

/**
 * Old and new side by side: create → save in a transaction → verify → finalize. Every step is journaled first,
 * so a run killed anywhere leaves the next run enough to finish or undo it.
 */
async function createAlongside(ctx: RunContext, session: TargetSession, user: VaultRecord, step: Step, verifyTimeoutMs: number): Promise<NewCredential> {
  const { vault, log, deadline, journal } = ctx;
  deadline.check('creating the new credential');
  journal.write({ ...step, phase: 'creating' });
  const created = await session.create();
  const made = { ...step, credentialId: created.id, idField: created.idField };
  journal.write({ ...made, phase: 'created' });
  log.info('create', `created ${created.id}`, { expires: created.expires });

  const data = cloneData(user.data);
  for (const [ref, value] of created.recordUpdates) writeText(data, ref, value);
  try {
    deadline.check('saving the record');
    journal.write({ ...made, phase: 'saving' });
    await vault.saveInTransaction(user, data);
  } catch (err) {
    throw await abandon(ctx, session, user, created, err, saveMayHaveOpened(err));
  }
  log.info('save', `saved ${created.id} in record ${user.uid} (rotation transaction open)`);

  const verified = await verifyUntil(verifyTimeoutMs, session, created, ctx);
  if (!verified.ok) {
    throw await abandon(ctx, session, user, created, new RotateError('VERIFY_FAILED', `the new credential ${created.id} did not authenticate: ${verified.reason}`), true);
  }
  log.info('verify', `${created.id} authenticates`, { attempts: verified.attempts });
  journal.write({ ...made, phase: 'verified' });

  try {
    await vault.finalize(user.uid);
  } catch (err) {
    await confirmFinalized(ctx, session, user, created, err);
  }
  journal.clear(user.uid);
  log.info('save', `finalized record ${user.uid}`);
  return created;
}

/**
 * The target swaps its credential in place (no overlap, nothing to go back to). So: first prove Keeper takes
 * a write to this record (open a rotation transaction and roll it back), then replace, seal the new secret
 * into the journal before anything else, save it with retries, verify, finalize. If Keeper refuses every
 * save, the sealed secret waits on this gateway and the next run of any script stores it. If the new secret does
 * not verify because another run replaced it again and saved its own first, the save is rolled back instead
 * (yieldToNewer).
 */
async function replaceInPlace(ctx: RunContext, session: TargetSession, user: VaultRecord, step: Step, verifyTimeoutMs: number): Promise<NewCredential> {
  const { vault, log, deadline, journal } = ctx;
  deadline.check('checking that Keeper accepts the write');
  journal.write({ ...step, phase: 'saving' });
  try {
    await vault.saveInTransaction(user, user.data);
  } catch (err) {
    // A definite refusal opened no transaction: leave no journal, or the next run would roll back one it never opened.
    if (!saveMayHaveOpened(err)) journal.clear(user.uid);
    throw err;
  }
  await vault.rollback(user.uid);
  journal.clear(user.uid);
  log.info('save', `Keeper accepts updates to record ${user.uid}`);

  deadline.check('replacing the credential');
  const resume = session.resumeState?.();
  journal.write({ ...step, phase: 'creating', ...(resume ? { resume: journal.sealText(resume) } : {}) });
  const created = await session.create();
  let sealed = true;
  try {
    journal.write({ ...step, phase: 'unsaved', credentialId: created.id, idField: created.idField, sealed: journal.seal(created.recordUpdates) });
  } catch (err) {
    // The secret already replaced the old one: saving it to Keeper matters more than the journal that failed.
    sealed = false;
    log.warn('save', `could not seal the new secret on this gateway (${redact(describeError(err))}); saving it to Keeper anyway`);
  }
  log.info('create', `replaced the credential of ${created.id}; the previous one no longer works`, { expires: created.expires });

  let before: VaultRecord;
  try {
    before = await saveWithRetries(ctx, user.uid, created.recordUpdates);
  } catch (err) {
    const base = isRotateError(err) ? err : new RotateError('KEEPER_REQUEST_FAILED', describeError(err), { cause: err });
    if (!sealed) throw new RotateError(base.code, `${base.message}; the target's new secret could not be saved or sealed: make a new one in the target's console`, { cause: err, exitCode: ExitCode.NeedsAttention });
    throw new RotateError('RECOVERY_PENDING', `${base.message}; the new secret is sealed on this gateway and the next run stores it in record ${user.uid}`, { cause: err });
  }
  log.info('save', `saved the new secret in record ${user.uid} (rotation transaction open)`);

  // There is no old credential to return to, so a failed verification still finalizes: the record must hold
  // the one secret the target may accept. Unless another run replaced the credential after this one and saved
  // its own secret before this run's save: then that one works and ours never will, so ours is rolled back.
  const verified = await verifyUntil(verifyTimeoutMs, session, created, ctx);
  if (!verified.ok) await yieldToNewer(ctx, session, user, before, created, step, verified.reason);
  try {
    await vault.finalize(user.uid);
  } catch (err) {
    throw new RotateError('RECOVERY_PENDING', `finalizing record ${user.uid} failed (${redact(describeError(err))}); the new secret is sealed on this gateway and the next run stores it`, { cause: err });
  }
  journal.clear(user.uid);
  log.info('save', `finalized record ${user.uid}`);
  if (!verified.ok) {
    throw new RotateError('VERIFY_FAILED', `the new secret for ${created.id} was saved but did not authenticate: ${verified.reason}`, { exitCode: ExitCode.NeedsAttention });
  }
  log.info('verify', `${created.id} authenticates`, { attempts: verified.attempts });
  return created;
}

/**
 * An in-place replacement that did not verify: did another run (another gateway) replace the credential after
 * this one and save its secret in the record before this run's save? `before` is the record as this run's save
 * found it (its committed data, whatever the transaction model). When that data holds a secret other than the
 * one this run started from (which this run replaced, so it cannot be the one Keeper should keep) and it signs
 * in, this run's save is rolled back and the journal dropped (our secret is dead: nothing to store later), and
 * the error thrown says the record keeps a working secret. Otherwise returns, and the caller finalizes.
 */
async function yieldToNewer(ctx: RunContext, session: TargetSession, user: VaultRecord, before: VaultRecord, created: NewCredential, step: Step, reason: string): Promise<void> {
  const { vault, log, journal } = ctx;
  if (!session.verifyRecord) return;
  const changed = created.recordUpdates.some(([ref]) => readText(before.data, ref.label) !== readText(user.data, ref.label));
  const ours = created.recordUpdates.every(([ref, value]) => readText(before.data, ref.label) === value);
  if (!changed || ours) return;
  let result: VerifyResult;
  try {
    result = await session.verifyRecord(before.data);
  } catch (err) {
    log.warn('verify', `could not check the secret record ${user.uid} held before this run's save: ${redact(describeError(err))}`);
    return;
  }
  if (!result.ok) {
    log.info('verify', `the secret record ${user.uid} held before this run's save does not sign in either (${result.reason})`);
    return;
  }
  log.warn('verify', `another run replaced the credential of ${created.id} after this run did and saved its secret in record ${user.uid}; that secret signs in and this run's does not, so this run's save is rolled back`);
  try {
    // No sealed secret any more (ours is dead): if this run dies now, the next one only rolls the save back.
    journal.write({ ...step, phase: 'saving' });
  } catch (err) {
    log.warn('save', `could not update the journal: ${redact(describeError(err))}`);
  }
  const superseded = `another run replaced the secret of ${created.id} after this run did and saved it in record ${user.uid}, so this run's secret no longer signs in (${reason})`;
  try {
    await vault.rollback(user.uid);
  } catch (err) {
    throw new RotateError(
      'ROTATION_SUPERSEDED',
      `${superseded}; rolling back this run's save failed (${redact(describeError(err))}): the record's open transaction holds this run's dead secret, and the next run on this gateway rolls it back`,
      { cause: err, exitCode: ExitCode.NeedsAttention },
    );
  }
  journal.clear(user.uid);
  log.info('save', `rolled back the update of record ${user.uid}`);
  throw new RotateError('ROTATION_SUPERSEDED', `${superseded}; this run's save was rolled back and the record keeps the other run's secret, which signs in`);
}

async function verifyUntil(
  timeoutMs: number,
  session: TargetSession,
  created: NewCredential,
  { deadline, log }: RunContext,
): Promise<{ ok: true; attempts: number } | { ok: false; reason: string }> {
  const giveUpAt = Date.now() + Math.min(timeoutMs, deadline.remaining());
  let delay = VERIFY_FIRST_DELAY_MS;
  for (let attempt = 1; ; attempt++) {
    let result;
    try {
      result = await session.verify(created);
    } catch (err) {
      return { ok: false, reason: redact(describeError(err)) };
    }
    if (result.ok) return { ok: true, attempts: attempt };
    if (attempt === 1) log.info('verify', `not accepted yet (${result.reason}); retrying for up to ${Math.round(timeoutMs / 1000)} s`);
    if (Date.now() + delay >= giveUpAt) return { ok: false, reason: `${result.reason} (still after ${attempt} attempts)` };
    await sleep(delay);
    delay = Math.min(delay * 2, VERIFY_MAX_DELAY_MS);
  }
}
