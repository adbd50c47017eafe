// The rotation pipeline every target shares. Its order is the safety argument:
//   read → plan → (remove orphans / make room) → create → save in a Keeper rotation transaction (revision-
//   checked) → verify the new credential on the target → finalize → retire what the plan retires.
// At each point the record holds a credential that works: the new one is written only after it exists, the
// old ones are removed only after the new one is saved, verified and finalized, and whatever this run created
// is removed again when a later step fails, but only after a fresh read shows the record does not hold it.
import { setTimeout as sleep } from 'node:timers/promises';
import { ExitCode, RotateError, describe as describeError, isRotateError } from '../errors.js';
import { describeSource, resolveAdmin } from '../keeper/admin.js';
import { cloneData, readText, writeText } from '../keeper/record.js';
import type { VaultRecord } from '../keeper/vault.js';
import type { RunContext, ScriptDefinition, ScriptOutcome } from '../cli/main.js';
import { redact } from '../secret.js';
import { parseSetting, type SettingSpec } from './settings.js';
import type { CredentialInfo, NewCredential, Target, TargetContext, TargetSession } from './target.js';

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
const VERIFY_MAX_DELAY_MS = 1000;

export function rotationScript<K extends string, S extends K, C>(target: Target<K, S, C>): ScriptDefinition {
  return { name: target.name, summary: target.summary, help: targetHelp(target), run: (ctx) => rotate(target, ctx) };
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
  const { input, vault, log, deadline } = ctx;
  const uids = [input.userRecordUid, ...(input.providerRecordUid ? [input.providerRecordUid] : [])];
  const records = await vault.fetch(uids);
  const user = records.get(input.userRecordUid);
  if (!user) {
    throw new RotateError('RECORD_NOT_FOUND', `PAM User record ${input.userRecordUid} is not shared with the gateway's application, or does not exist`);
  }
  if (user.type !== 'pamUser') {
    throw new RotateError('RECORD_WRONG_TYPE', `record ${user.uid} is a "${user.type}" record; ${target.name} rotates PAM User records (convert it to PAM User)`);
  }
  const admin = resolveAdmin(target.admin, { input, user, provider: input.providerRecordUid ? records.get(input.providerRecordUid) : undefined });
  log.info('admin', `using admin credentials from ${describeSource(admin.source)}`);
  const tctx: TargetContext<K, S> = { input, user, admin, env: ctx.env, log, deadline };
  const config = target.prepare(tctx);
  const dryRun = ctx.dryRun || parseSetting(COMMON_SETTINGS.dryRun, user.data);

  deadline.check('connecting to the target');
  const session = await target.connect(config, tctx);
  const plan = await session.plan();
  for (const note of plan.notes) log.info('plan', note);
  if (plan.skip) {
    return { exitCode: ExitCode.Ok, outcome: 'skipped', message: plan.skip, fields: { target: session.describe() } };
  }
  const planFields = { target: session.describe(), remove_before: ids(plan.removeBefore), remove_after: ids(plan.removeAfter) };
  if (dryRun) {
    for (const c of plan.removeBefore) log.info('plan', `would remove ${c.id} before creating (${c.reason})`);
    log.info('plan', 'would create a new credential and save it in the record');
    for (const c of plan.removeAfter) log.info('plan', `would remove ${c.id} after verifying the new one (${c.reason})`);
    return { exitCode: ExitCode.Ok, outcome: 'planned', message: 'dry run: nothing was changed', fields: planFields };
  }

  for (const c of plan.removeBefore) {
    deadline.check(`removing ${c.id}`);
    await session.remove(c);
    log.info('prepare', `removed ${c.id} (${c.reason})`);
  }

  deadline.check('creating the new credential');
  const created = await session.create();
  log.info('create', `created ${created.id}`, { expires: created.expires });

  const data = cloneData(user.data);
  for (const [ref, value] of created.recordUpdates) writeText(data, ref, value);
  try {
    deadline.check('saving the record');
    await vault.saveInTransaction(user, data);
  } catch (err) {
    throw await abandon(ctx, session, user, created, err, false);
  }
  log.info('save', `saved ${created.id} in record ${user.uid} (rotation transaction open)`);

  const verified = await verifyUntil(target.verifyTimeoutMs(config), session, created, ctx);
  if (!verified.ok) {
    throw await abandon(ctx, session, user, created, new RotateError('VERIFY_FAILED', `the new credential ${created.id} did not authenticate: ${verified.reason}`), true);
  }
  log.info('verify', `${created.id} authenticates`, { attempts: verified.attempts });

  try {
    await vault.finalize(user.uid);
  } catch (err) {
    await confirmFinalized(ctx, session, user, created, err);
  }
  log.info('save', `finalized record ${user.uid}`);

  await session.adopt?.(created);
  const failed: string[] = [];
  for (const c of plan.removeAfter) {
    try {
      deadline.check(`removing ${c.id}`);
      await session.remove(c);
      log.info('retire', `removed ${c.id} (${c.reason})`);
    } catch (err) {
      failed.push(c.id);
      log.warn('retire', `could not remove ${c.id}; the next run retries: ${redact(describeError(err))}`);
    }
  }
  const fields = { target: session.describe(), new_id: created.id, expires: created.expires, removed: [...ids(plan.removeBefore), ...ids(plan.removeAfter).filter((i) => !failed.includes(i))] };
  if (failed.length) {
    throw new RotateError('CLEANUP_INCOMPLETE', `rotated to ${created.id} and saved it, but could not remove ${failed.join(', ')}; the next run retries`);
  }
  return { exitCode: ExitCode.Ok, outcome: 'rotated', message: `rotated to ${created.id}`, fields };
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

/**
 * Undoes a rotation that cannot be completed: roll the Keeper transaction back, read the record afresh, and
 * remove the new credential only when the record does not hold it. Returns the error to report: the original
 * cause with exit code 3 when everything was undone, 5 when something is left for a person or the next run.
 */
async function abandon(ctx: RunContext, session: TargetSession, user: VaultRecord, created: NewCredential, cause: unknown, transactionOpen: boolean): Promise<RotateError> {
  const { vault, log } = ctx;
  const base = isRotateError(cause) ? cause : new RotateError('INTERNAL', describeError(cause), { cause });
  // A failed save may still have opened the transaction (the reply was lost), so roll back either way.
  try {
    await vault.rollback(user.uid);
    log.info('undo', `rolled back the update of record ${user.uid}`);
  } catch (err) {
    if (transactionOpen) log.warn('undo', `could not roll back record ${user.uid}: ${redact(describeError(err))}`);
  }
  let holdsNew: boolean;
  try {
    holdsNew = await recordHolds(ctx, user, created);
  } catch (err) {
    log.warn('undo', `could not re-read record ${user.uid}, so ${created.id} is kept: ${redact(describeError(err))}`);
    return withExit(base, ExitCode.NeedsAttention, `; the new credential ${created.id} was kept because the record could not be re-read (both old and new work; the next run cleans up)`);
  }
  if (holdsNew) {
    return withExit(base, ExitCode.NeedsAttention, `; record ${user.uid} holds the new credential ${created.id} although its rotation failed, so it was kept (the next run re-verifies it)`);
  }
  try {
    await session.remove({ id: created.id, reason: 'created by this failed run' });
    log.info('undo', `removed the new credential ${created.id}; the record keeps its previous credential`);
  } catch (err) {
    return withExit(base, ExitCode.NeedsAttention, `; could not remove the new credential ${created.id} (${redact(describeError(err))}); the record keeps its previous credential and the next run removes it`);
  }
  return withExit(base, ExitCode.Failed, `; undone: the record keeps its previous credential`);
}

/** Reads the record afresh: does it name the credential this run created? */
async function recordHolds({ vault }: RunContext, user: VaultRecord, created: NewCredential): Promise<boolean> {
  const fresh = (await vault.fetch([user.uid])).get(user.uid);
  return fresh !== undefined && readText(fresh.data, created.idField) === created.id;
}

function withExit(err: RotateError, exitCode: ExitCode, suffix: string): RotateError {
  return new RotateError(err.code, err.message + suffix, { cause: err, exitCode });
}

/** A failed finalize: read the record to learn whether it holds the new credential, then undo or carry on. */
async function confirmFinalized(ctx: RunContext, session: TargetSession, user: VaultRecord, created: NewCredential, cause: unknown): Promise<void> {
  let holdsNew: boolean;
  try {
    holdsNew = await recordHolds(ctx, user, created);
  } catch {
    // Both credentials work and nothing was retired; which one the record holds is unknown.
    const base = isRotateError(cause) ? cause : new RotateError('KEEPER_REQUEST_FAILED', describeError(cause));
    throw new RotateError('KEEPER_FINALIZE_UNCERTAIN', `${base.message}; the record could not be re-read, so nothing was removed (old and new credentials both work)`, { cause });
  }
  if (holdsNew) {
    ctx.log.warn('save', `finalize failed but record ${user.uid} holds ${created.id}: ${redact(describeError(cause))}`);
    throw new RotateError('KEEPER_FINALIZE_UNCERTAIN', `finalizing record ${user.uid} failed although it holds the new credential ${created.id}; old credentials were kept and the next run retires them`, { cause });
  }
  throw await abandon(ctx, session, user, created, cause, true);
}
