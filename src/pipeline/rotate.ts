// The rotation pipeline every target shares. Its order is the safety argument:
//   lock the record → read and validate it → store sealed secrets of earlier runs → resume this record's
//   interrupted run → plan → [write check held open while removing what the plan removes first] → create →
//   save in a Keeper rotation transaction (revision-checked) → verify on the target → finalize → retire.
// The steps from the write check to finalize are a state machine journaled before each step (machine.ts); the
// same machine settles a failed step and resumes an interrupted run, so every history goes through one place.
import { ExitCode, RotateError, describe as describeError, isRotateError } from '../errors.js';
import { describeSource, resolveAdmin } from '../keeper/admin.js';
import { HARD_STOP_GRACE_MS, type RunContext, type ScriptDefinition, type ScriptOutcome } from '../cli/main.js';
import { redact } from '../secret.js';
import { cloneData, writeText } from '../keeper/record.js';
import { outcomeUpdates, sameBesidesOutcome, writeOutcome } from './outcome.js';
import { DELIVERY_SETTINGS, catchUp, checkRetention, deliverAll, deliveryFor, incomplete, oneLine } from './deliver.js';
import type { JournalEntry } from '../state/journal.js';
import { lockRecord } from '../state/lock.js';
import { runDoctor } from './doctor.js';
import { type Machine, createAlongside, dropWriteCheck, holdWriteCheck, removeCredential, replaceInPlace, resume, retargeted, storeSealed } from './machine.js';
import { parseSetting, type SettingSpec } from './settings.js';
import type { CredentialInfo, PlanContext, Target, TargetContext, VerifyResult } from './target.js';
import type { VaultRecord } from '../keeper/vault.js';

/** Settings every target reads, besides its own. */
export const COMMON_SETTINGS = {
  dryRun: {
    kind: 'boolean',
    label: 'dry_run',
    default: false,
    description: 'Plan the rotation and log what it would create and remove, without changing anything.',
  },
} as const satisfies Record<string, SettingSpec>;

export function rotationScript<K extends string, S extends K, C>(target: Target<K, S, C>): ScriptDefinition {
  return { name: target.name, summary: target.summary, help: targetHelp(target), run: (ctx) => rotate(target, ctx), doctor: (io) => runDoctor(target, io) };
}

/** The record fields and settings, for --help; the README and the CSV templates use the same declarations. */
export function targetHelp(target: Pick<Target, 'fields' | 'settings'>): string {
  const fields = target.fields.map((f) => `  ${f.label.padEnd(34)}${f.kind === 'secret' ? 'hidden' : 'text  '}  ${f.required ? '(required) ' : ''}${f.description}`);
  const settings = [...Object.values(target.settings), ...Object.values(COMMON_SETTINGS), ...Object.values(DELIVERY_SETTINGS)].map(
    (s) => `  ${s.label.padEnd(34)}${String(s.default ?? '-').padEnd(8)}${s.description}`,
  );
  return `PAM User record fields:\n${fields.join('\n')}\n\nOptional settings (custom fields on the record; default in the middle):\n${settings.join('\n')}\n`;
}

const ids = (list: CredentialInfo[]) => list.map((c) => c.id);

async function rotate<K extends string, S extends K, C>(target: Target<K, S, C>, ctx: RunContext): Promise<ScriptOutcome> {
  // Local, before any network call: a second run on this record stops here having touched nothing.
  const lock = lockRecord(ctx.stateDir, ctx.input.userRecordUid, ctx.deadline.endsAt() + HARD_STOP_GRACE_MS);
  const progress = { wrote: false };
  try {
    return await rotateLocked(target, ctx, lock.runId, progress);
  } catch (err) {
    // Exit 2 promises nothing was written: a run that first stored a sealed secret or settled an earlier run
    // and is then rejected (a setting, the admin guard) did write, so it says 3.
    const rejectedAfterWrites = progress.wrote && isRotateError(err) && err.exitCode === ExitCode.Rejected;
    const base = rejectedAfterWrites
      ? new RotateError(err.code, `${err.message} (after finishing what an earlier run left, which is done)`, { cause: err, exitCode: ExitCode.Failed })
      : err;
    const final = withPendingSecret(target, ctx, base);
    if (mayRecordFailure(ctx, final)) await writeOutcome(ctx, ctx.input.userRecordUid, { exit: final.exitCode, error: final.code, message: final.message });
    throw final;
  } finally {
    lock.release();
  }
}

/**
 * Whether a failed run writes its outcome into the record (pipeline/outcome.ts says when and why). Not for exit
 * 2 (nothing was written, and stays so), not where Keeper refused this application's writes to the record, not
 * while a transaction of this run's may be open on the record (Keeper
 * refuses the write, and closing it is the next run's), not when Keeper itself failed to answer, and not when
 * another run on this gateway holds the record: a write now would move the revision under its save.
 */
function mayRecordFailure(ctx: RunContext, err: unknown): err is RotateError {
  if (!isRotateError(err) || err.exitCode === ExitCode.Rejected || ctx.dryRun) return false;
  if (['ROTATION_IN_PROGRESS', 'KEEPER_TRANSACTION_OPEN', 'KEEPER_ACCESS_DENIED', 'KEEPER_TIMEOUT', 'KEEPER_THROTTLED', 'KEEPER_REQUEST_FAILED', 'DEADLINE_EXCEEDED', 'STATE_DIR_UNAVAILABLE'].includes(err.code)) return false;
  try {
    return ctx.journal.read(ctx.input.userRecordUid)?.txn === undefined;
  } catch {
    return false;
  }
}

/**
 * A run that fails while this gateway holds the record's new secret sealed (Wiz switched, Keeper has not taken
 * it) or while a replace's outcome is unknown: whatever stopped it, the record's secret may not sign in until a
 * later run stores or replaces it, so the exit code is 5 and the message says so. Judged from the journal as the
 * run leaves it.
 */
function withPendingSecret(target: Pick<Target, 'mode'>, ctx: RunContext, err: unknown): unknown {
  if (!isRotateError(err) || err.exitCode === ExitCode.NeedsAttention || err.exitCode === ExitCode.Internal) return err;
  let entry: JournalEntry | undefined;
  try {
    entry = ctx.journal.read(ctx.input.userRecordUid);
  } catch {
    return err;
  }
  const sealed = entry?.phase === 'unsaved';
  // An in-place replace of unknown outcome, this run's or one it carries from an earlier run (`inherited`).
  const replacing = target.mode === 'in-place' && (entry?.phase === 'creating' || entry?.inherited !== undefined);
  if (!sealed && !replacing) return err;
  const why = sealed
    ? `the record's secret may not sign in until the new one sealed on this gateway is stored in it (the next run does, before anything else)`
    : `the record's secret may not sign in: an earlier run's replace of the credential has an unknown outcome`;
  return new RotateError(err.code, `${err.message}; meanwhile ${why}`, { cause: err, exitCode: ExitCode.NeedsAttention });
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

async function rotateLocked<K extends string, S extends K, C>(target: Target<K, S, C>, ctx: RunContext, runId: string, progress: { wrote: boolean }): Promise<ScriptOutcome> {
  const { input, log, deadline, journal } = ctx;
  const own = input.userRecordUid;
  const uids = [own, ...(input.providerRecordUid ? [input.providerRecordUid] : [])];
  // Unreadable or forged: this record stops here, before any write (exit 2).
  let pending = journal.read(own);
  // The one read of the record (and the PAM configuration), validated into the target's config: again whenever
  // this run itself changed the record first (a sealed secret stored, an earlier run settled).
  const readRecord = async () => {
    const { user, provider } = await fetchUser(ctx, target, uids);
    const admin = resolveAdmin(target.admin, { input, user, provider, env: ctx.env });
    const tctx: TargetContext<K, S> = { input, user, admin, env: ctx.env, log, deadline };
    const config = target.prepare(tctx);
    const delivery = deliveryFor(user.data, ctx.env, target.name, { deadline });
    checkRetention(delivery, target.retiresReplacedAtOnce?.(config));
    return { user, admin, tctx, config, delivery };
  };
  let { user, admin, tctx, config, delivery } = await readRecord();
  const dryRun = ctx.dryRun || parseSetting(COMMON_SETTINGS.dryRun, user.data);
  for (const dir of journal.foreignSealed(own)) {
    log.warn('recover', `another registration of this gateway left a journal for record ${own} in ${dir}; it cannot be opened with this gateway's config (see RECOVERY_UNREADABLE in the README)`);
  }

  // A secret that works only on its target and is not in Keeper comes before anything new, once this run's own
  // input is known to be good (a rejected run writes nothing) and unless this is a dry run.
  if (dryRun) {
    if (pending?.phase === 'unsaved') {
      // The record's credential is the one the target replaced: a plan against the target means nothing yet.
      return { exitCode: ExitCode.Ok, outcome: 'planned', message: `dry run: nothing was changed; a run would first store the secret an earlier ${pending.target} run sealed for record ${own}`, fields: {} };
    }
  } else {
    // Another record's fetch makes this one's unsaveable (the SDK keeps only the last fetch's keys): read again.
    const storedOthers = await storeOthers(ctx, own);
    progress.wrote ||= storedOthers;
    if (pending?.phase === 'unsaved' || storedOthers) {
      if (pending?.phase === 'unsaved') {
        // Sealed for the resource the record named then: never stored into a record that names another now.
        const moved = retargeted(pending, target.principal?.(config));
        if (moved) throw moved;
        // Whether the sealed secret, or else the record's own, signs in decides what is stored (machine.ts storeSealed).
        const check = async (data: VaultRecord['data']): Promise<VerifyResult> => {
          const probe = await target.connect(config, tctx);
          if (!probe.verifyRecord) return { ok: false, reason: `${target.name} cannot check a record's secret` };
          return probe.verifyRecord(data);
        };
        progress.wrote = true;
        await storeOwn(ctx, pending, check);
      }
      pending = journal.read(own);
      ({ user, admin, tctx, config, delivery } = await readRecord());
    }
  }
  log.info('admin', `using admin credentials from ${describeSource(admin.source)}`);

  deadline.check('connecting to the target');
  let session = await target.connect(config, tctx);
  const m: Machine = {
    ctx,
    session,
    step: { runId, target: target.name, recordUid: own, since: new Date().toISOString(), ...principalOf(target, config) },
    maxRunMs: deadline.totalMs + HARD_STOP_GRACE_MS,
  };
  let planContext: PlanContext = {};
  // An earlier run that stopped while delivering left nothing to settle: the destinations are read back below
  // and brought up to date before anything changes; the entry stays until they are.
  const deliveryOwed = pending?.phase === 'delivering';
  const owed = deliveryOwed ? pending : undefined;
  if (deliveryOwed) {
    log.info('deliver', `an earlier run on record ${own} rotated but did not finish delivering; delivering first`);
    pending = undefined;
  }
  if (pending) {
    if (dryRun) {
      log.info('plan', `would first finish an earlier run that stopped at "${pending.phase}"`);
    } else {
      progress.wrote = true;
      planContext = await resume(m, pending);
      // What the earlier run leaves for this one (the window of a create whose outcome is unknown), if anything.
      pending = journal.read(own);
      // Settling it may have changed the record (a finalized save names a new current credential, and may be
      // the admin's own when the record rotates itself): validate and connect again from what it holds now, or
      // the plan would take the credential just finalized for a stranger.
      ({ user, admin, tctx, config, delivery } = await readRecord());
      session = await target.connect(config, tctx);
      m.session = session;
      m.step = { ...m.step, ...principalOf(target, config) };
    }
  }
  const plan = await session.plan(planContext);
  for (const note of plan.notes) log.info('plan', note);
  const { destinations } = delivery;
  if (dryRun) {
    for (const d of destinations) {
      await d.check();
      log.info('plan', `would deliver the new credential to ${d.describe()} (checked: allowed and writable)`);
    }
  } else {
    // Only when a destination is behind (pipeline/deliver.ts): the record read again under this run's write check,
    // so what is delivered is committed and no other run can change it meanwhile (machine.ts holdWriteCheck).
    let moved: VaultRecord | undefined;
    let check: JournalEntry | undefined;
    const conflict = () =>
      new RotateError(
        'KEEPER_REVISION_CONFLICT',
        `record ${own} changed since this run read it (another gateway's rotation, or a person); its destinations were given what it holds now and nothing else was changed: the next run rotates from it`,
        { exitCode: ExitCode.Failed, refused: true },
      );
    const changedBy = `whoever changed it may have replaced the credential, and another gateway's next run stores its new secret (with a gateway pool, the instance that ran it); if none does, make a new secret in the target's console and save it in the record`;
    const reread = async () => {
      const fresh = (await ctx.vault.fetch([own])).get(own);
      if (!fresh) throw new RotateError('RECORD_NOT_FOUND', `record ${own} is no longer shared with the gateway`, { exitCode: ExitCode.Failed });
      if (fresh.revision !== user.revision && !sameBesidesOutcome(fresh.data, user.data)) moved = fresh;
      check = await holdWriteCheck(m, fresh, pending ?? owed);
      const none = { payload: undefined, destinations };
      // A destination may hold the only copy of the secret the target accepts (a person typed another into the
      // record): where the target can tell, the record's secret must sign in before it is delivered over it.
      if (session.verifyRecord) {
        let result: VerifyResult;
        try {
          result = await session.verifyRecord(fresh.data);
        } catch (err) {
          result = { ok: false, reason: redact(describeError(err)), throttled: true };
        }
        if (!result.ok) {
          if (moved) {
            const why = result.throttled ? `whether its secret signs in could not be checked (${result.reason})` : `its secret does not sign in (${result.reason})`;
            throw new RotateError(
              'KEEPER_REVISION_CONFLICT',
              `record ${own} changed since this run read it (another gateway's rotation, or a person) and ${why}, so nothing was delivered and nothing else was changed: ${changedBy}`,
              { exitCode: ExitCode.NeedsAttention },
            );
          }
          if (result.throttled) {
            throw new RotateError(
              'DELIVERY_INCOMPLETE',
              `whether record ${own}'s secret signs in could not be checked (${result.reason}), so it was not delivered to the destinations that do not hold it (one may hold the only copy of a secret that works); nothing was changed, and the next run checks again`,
              { exitCode: ExitCode.NeedsAttention },
            );
          }
          log.warn('deliver', `record ${own}'s secret does not sign in (${result.reason}), so it is not delivered over what the destinations hold; a rotation gives them one that does`);
          return none;
        }
      }
      // Where to deliver is the fresh record's too: a person may have changed the destinations since.
      return { payload: session.delivery?.(fresh.data), destinations: moved ? deliveryFor(fresh.data, ctx.env, target.name, { deadline }).destinations : destinations };
    };
    let delivered: number;
    try {
      delivered = await catchUp(destinations, session.delivery?.(user.data), log, reread);
    } finally {
      if (check) await dropWriteCheck(m, check, pending ?? owed);
    }
    if (delivered > 0) progress.wrote = true;
    // The moved record's secret signed in before it was delivered (where the target can tell): exit 3.
    if (moved) throw conflict();
    // The check moved the record's revision (and a fresh read replaced the first): read it again to go on.
    if (check) ({ user, admin, tctx, config, delivery } = await readRecord());
    if (deliveryOwed) journal.clear(own);
  }
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
  if (target.mode === 'in-place' && plan.removeBefore.length > 0) throw new RotateError('INTERNAL', `${target.name} replaces in place and cannot remove credentials before`);

  m.step.since = new Date().toISOString();
  if (destinations.length > 0) m.afterFinalize = { ...m.step, phase: 'delivering' };
  m.alsoSave = (made) => outcomeUpdates({ exit: ExitCode.Ok, error: '', message: `rotated to ${made.id}` });
  const verifyMs = target.verifyTimeoutMs(config);
  const created = target.mode === 'in-place' ? await replaceInPlace(m, user, pending, verifyMs) : await createAlongside(m, user, plan, pending, verifyMs);

  let adoptError: unknown;
  try {
    await session.adopt?.(created);
  } catch (err) {
    adoptError = err;
  }
  let checkLeft: unknown;
  if (destinations.length > 0) {
    // From the record as this run saved it: what the next run would deliver too.
    const saved = cloneData(user.data);
    for (const [ref, value] of created.recordUpdates) writeText(saved, ref, value);
    const payload = session.delivery?.(saved);
    const all = destinations.map((d) => d.describe()).join(', ');
    let undelivered: Array<{ where: string; why: string }> = [{ where: all, why: `${target.name} gave nothing to deliver` }];
    let movedOn: { fresh: VaultRecord; result?: VerifyResult; deliveredOwn: boolean } | undefined;
    let refusal: RotateError | undefined;
    if (payload) {
      // Another gateway may have rotated since this run finalized (this host paused between the two) and delivered
      // its own: ours must not be written over it (for Wiz it is dead already). So the record is read again under
      // a write check, which keeps every other run from saving meanwhile, and ours is delivered only while the
      // record still holds it (as the catch-up does).
      let delivering: JournalEntry | undefined;
      try {
        delivering = journal.read(own);
      } catch {
        delivering = undefined;
      }
      const verify = async (data: VaultRecord['data']): Promise<VerifyResult> => {
        try {
          return await session.verifyRecord!(data);
        } catch (e) {
          return { ok: false, reason: oneLine(e), throttled: true };
        }
      };
      let check: JournalEntry | undefined;
      try {
        deadline.check('reading the record again before delivering');
        const fresh = (await ctx.vault.fetch([own])).get(own);
        if (!fresh) throw new RotateError('RECORD_NOT_FOUND', `record ${own} is no longer shared with the gateway`);
        check = await holdWriteCheck(m, fresh, delivering);
        if (session.delivery?.(fresh.data)?.fingerprint === payload.fingerprint) undelivered = await deliverAll(destinations, payload, log, 'deliver');
        else {
          movedOn = { fresh, deliveredOwn: false };
          if (session.verifyRecord) {
            movedOn.result = await verify(fresh.data);
            // A person typed a secret that does not sign in over this run's, which replaced the old one in place:
            // this run's may be the only one the target accepts. Still under the write check, it goes to the
            // destinations if it signs in, so it is not lost (the record is for a person to put right).
            if (!movedOn.result.ok && !movedOn.result.throttled && target.mode === 'in-place' && (await verify(saved)).ok) {
              undelivered = await deliverAll(destinations, payload, log, 'deliver');
              movedOn.deliveredOwn = undelivered.length === 0;
            }
          }
        }
      } catch (err) {
        // A check refused by another run's open transaction says, for Wiz, whether the record's secret still signs
        // in (machine.ts othersTransaction): exit 5 when it does not. Otherwise the cause, not the settling of the
        // check (which says "undone", though this run's rotation stands).
        const e = isRotateError(err) ? err : new RotateError('INTERNAL', describeError(err), { cause: err });
        if (e.exitCode === ExitCode.NeedsAttention) refusal = e;
        const cause = e.exitCode !== ExitCode.NeedsAttention && isRotateError(e.cause) ? e.cause : e;
        undelivered = [{ where: all, why: `the record could not be read again under a write check before delivering: ${oneLine(cause)}` }];
      } finally {
        if (check) {
          try {
            await dropWriteCheck(m, check, delivering);
          } catch (err) {
            // The check holds the record's own data; the journal keeps it (not cleared below), and the next run
            // rolls it back. Until then other gateways are refused (KEEPER_TRANSACTION_OPEN): a follow-up, exit 4.
            log.warn('deliver', oneLine(err));
            checkLeft = err;
          }
        }
      }
    }
    if (refusal) {
      throw new RotateError('DELIVERY_INCOMPLETE', `rotated to ${created.id} and saved it, but it was delivered nowhere and nothing was retired: ${oneLine(refusal)}`, { cause: refusal, exitCode: ExitCode.NeedsAttention });
    }
    if (movedOn) {
      // Nothing retired, and (unless this run's own secret had to be kept somewhere) nothing delivered: the next run
      // delivers what the record holds (its catch-up checks a Wiz secret signs in first). Exit 4 says the record's
      // credential works: where the target can tell, that is asked.
      const changed = `rotated to ${created.id} and saved it, but the record changed after this run finalized it (another gateway's rotation, or a person)`;
      const result = movedOn.result;
      if (!result || result.ok) throw incomplete([{ where: all, why: 'not delivered' }], `${changed}, so this run's credential was delivered nowhere and nothing was retired`);
      const why = result.throttled ? `whether the secret it holds now signs in could not be checked (${result.reason})` : `the secret it holds now does not sign in (${result.reason})`;
      const where = movedOn.deliveredOwn
        ? `this run's secret, which does sign in, was delivered to ${all}: put it back in the record (or rotate again)`
        : 'nothing was delivered or retired: check the record';
      throw new RotateError('DELIVERY_INCOMPLETE', `${changed}, and ${why}; ${where}`, { exitCode: ExitCode.NeedsAttention });
    }
    if (undelivered.length > 0) {
      // Nothing is retired: the credential the destinations still hold stays valid until they have the new one.
      const retained = plan.removeAfter.length ? `; nothing was retired (${ids(plan.removeAfter).join(', ')} stay until delivery is done)` : '';
      // An in-place target's replace ended the old secret at once: the destinations that failed hold a dead one.
      const kept = target.mode === 'in-place' ? 'each destination that failed still holds the replaced secret, which no longer works (consumers fail until it is delivered)' : 'each destination that failed keeps the credential it had, which stays valid';
      throw incomplete(undelivered, `rotated to ${created.id} and saved it, but delivering it failed${retained}`, undefined, kept);
    }
    if (checkLeft === undefined) journal.clear(own);
  }
  const failed: string[] = [];
  let firstFailure = '';
  for (const c of plan.removeAfter) {
    try {
      deadline.check(`removing ${c.id}`);
      await removeCredential(session, c);
      log.info('retire', `${c.deactivate ? 'deactivated' : 'removed'} ${c.id} (${c.reason})`);
    } catch (err) {
      failed.push(c.id);
      firstFailure ||= redact(describeError(err)).replace(/^RotateError: /, '');
      log.warn('retire', `could not remove ${c.id}; the next run retries: ${redact(describeError(err))}`);
    }
  }
  if (adoptError) {
    const base = isRotateError(adoptError) ? adoptError : new RotateError('INTERNAL', describeError(adoptError), { cause: adoptError });
    throw new RotateError(base.code, `${base.message}; the record holds the new, verified credential ${created.id}`, { cause: base, exitCode: ExitCode.CleanupIncomplete });
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
    throw new RotateError('CLEANUP_INCOMPLETE', `rotated to ${created.id} and saved it, but could not remove ${failed.join(', ')} (${firstFailure}); the next run retries`);
  }
  if (checkLeft !== undefined) {
    const base = isRotateError(checkLeft) ? checkLeft : new RotateError('INTERNAL', describeError(checkLeft), { cause: checkLeft });
    throw new RotateError(base.code, `rotated to ${created.id}, saved and delivered it, but: ${oneLine(base)}; until then other gateways are refused (KEEPER_TRANSACTION_OPEN)`, { cause: base, exitCode: ExitCode.CleanupIncomplete });
  }
  return { exitCode: ExitCode.Ok, outcome: 'rotated', message: `rotated to ${created.id}`, fields };
}

/** The resource the record names on the target, for the run's journal entries (machine.ts retargeted). */
function principalOf<K extends string, S extends K, C>(target: Target<K, S, C>, config: C): { principal?: string } {
  const principal = target.principal?.(config);
  return principal ? { principal } : {};
}

/** This record's sealed secret, before the target is connected (a self-rotating Wiz account signs in with it). */
async function storeOwn(ctx: RunContext, entry: JournalEntry, check: (data: VaultRecord['data']) => Promise<VerifyResult>): Promise<void> {
  ctx.log.info('recover', `storing the secret an earlier ${entry.target} run could not save in record ${entry.recordUid}`);
  try {
    if ((await storeSealed({ ctx }, entry, true, check)) === 'dropped') return;
  } catch (err) {
    if (isRotateError(err) && ['RECOVERY_STALE', 'RECOVERY_UNREADABLE', 'RECOVERY_PENDING'].includes(err.code)) throw err;
    throw new RotateError(
      'RECOVERY_PENDING',
      `the secret for record ${entry.recordUid} (an earlier ${entry.target} run) is still not in Keeper: ${redact(describeError(err))}; it stays sealed on this gateway and the next run retries`,
      { cause: err },
    );
  }
  ctx.log.info('recover', `stored it; record ${entry.recordUid} holds the secret its target uses`);
}

/**
 * Other records' sealed secrets on this gateway: stored first, by any script. A record another run is working on
 * right now is left to that run; one that cannot be opened, or whose record changed since, is left to its own
 * record's runs, which say so with exit 5.
 */
async function storeOthers(ctx: RunContext, own: string): Promise<boolean> {
  const { entries, unreadable } = ctx.journal.unsaved();
  let fetched = false;
  for (const uid of unreadable) if (uid !== own) ctx.log.warn('recover', `the journal of record ${uid} is unreadable; that record's runs report it`);
  for (const entry of entries) {
    if (entry.recordUid === own) continue;
    const lock = tryLock(ctx, entry.recordUid);
    if (!lock) continue;
    fetched = true;
    try {
      ctx.log.info('recover', `storing the secret an earlier ${entry.target} run could not save in record ${entry.recordUid}`);
      const outcome = await storeSealed({ ctx }, entry, false);
      if (outcome === 'stale') ctx.log.warn('recover', `record ${entry.recordUid} changed since, or has a transaction open that may be another gateway's; its own next run decides about the sealed secret`);
      else ctx.log.info('recover', `stored it; record ${entry.recordUid} holds the secret its target uses`);
    } catch (err) {
      if (isRotateError(err) && err.code === 'RECOVERY_UNREADABLE') {
        ctx.log.warn('recover', redact(err.message));
        continue;
      }
      throw new RotateError(
        'RECOVERY_PENDING',
        `the secret for record ${entry.recordUid} (an earlier ${entry.target} run) is still not in Keeper: ${redact(describeError(err))}; it stays sealed on this gateway and the next run retries`,
        { cause: err },
      );
    } finally {
      lock.release();
    }
  }
  return fetched;
}

function tryLock(ctx: RunContext, uid: string) {
  try {
    return lockRecord(ctx.stateDir, uid, ctx.deadline.endsAt() + 60_000);
  } catch (err) {
    if (isRotateError(err) && err.code === 'ROTATION_IN_PROGRESS') return undefined;
    throw err;
  }
}
