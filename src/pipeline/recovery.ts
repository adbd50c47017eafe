// What a run finishes for the runs before it, from their journals (state/journal.ts), before it starts its own.
// Two kinds: a sealed secret Keeper refused to store (any target, any record: stored first, by any script), and
// this record's interrupted rotation (finalize it when it was verified, otherwise roll it back and remove the
// credential the record never got).
import { setTimeout as sleep } from 'node:timers/promises';
import { RotateError, describe as describeError, isRotateError } from '../errors.js';
import { cloneData, readText, writeText, type FieldRef } from '../keeper/record.js';
import type { VaultRecord } from '../keeper/vault.js';
import type { RunContext } from '../cli/main.js';
import { redact } from '../secret.js';
import { lockRecord } from '../state/lock.js';
import type { JournalEntry } from '../state/journal.js';
import type { PlanContext, TargetSession } from './target.js';
import { recordHolds, removeCredential, saveMayHaveOpened } from './undo.js';

const SAVE_ATTEMPTS = 3;
const SAVE_RETRY_MS = 500;

function holdsAll(record: VaultRecord, updates: Array<[FieldRef, string]>): boolean {
  return updates.every(([ref, value]) => readText(record.data, ref.label) === value);
}

/**
 * Saves updates into a record in a rotation transaction, fetching it afresh each attempt (a conflict or a lost
 * reply changes its revision). Leaves the transaction open; the caller finalizes. Throws the last error.
 */
export async function saveWithRetries(ctx: RunContext, uid: string, updates: Array<[FieldRef, string]>): Promise<VaultRecord> {
  let last: unknown;
  for (let attempt = 1; attempt <= SAVE_ATTEMPTS; attempt++) {
    let sent = false;
    try {
      ctx.deadline.check(`saving record ${uid}`);
      const record = (await ctx.vault.fetch([uid])).get(uid);
      if (!record) throw new RotateError('RECORD_NOT_FOUND', `record ${uid} is no longer shared with the gateway`, { exitCode: 5 });
      const data = cloneData(record.data);
      for (const [ref, value] of updates) writeText(data, ref, value);
      sent = true;
      await ctx.vault.saveInTransaction(record, data);
      return record;
    } catch (err) {
      last = err;
      if (isRotateError(err) && err.code === 'DEADLINE_EXCEEDED') break;
      ctx.log.warn('save', `attempt ${attempt} to save record ${uid} failed: ${redact(describeError(err))}`);
      // A reply lost after Keeper applied the save leaves our transaction open; closing it lets the retry in. A
      // failed read or a definite refusal opened nothing: a transaction in the way is another run's (another
      // gateway on this record), and rolling it back would discard that run's save and let ours overwrite it.
      if (sent && saveMayHaveOpened(err)) await ctx.vault.rollback(uid).catch(() => undefined);
      if (attempt < SAVE_ATTEMPTS) await sleep(Math.min(SAVE_RETRY_MS * 2 ** (attempt - 1), ctx.deadline.remaining()));
    }
  }
  throw last;
}

/** Stores one sealed secret: roll back whatever transaction the failed run left, then save and finalize. */
async function storeSealed(ctx: RunContext, entry: JournalEntry): Promise<void> {
  const updates = ctx.journal.unseal(entry);
  await ctx.vault.rollback(entry.recordUid).catch(() => undefined);
  const current = (await ctx.vault.fetch([entry.recordUid])).get(entry.recordUid);
  if (current && holdsAll(current, updates)) {
    ctx.journal.clear(entry.recordUid);
    return;
  }
  await saveWithRetries(ctx, entry.recordUid, updates);
  await ctx.vault.finalize(entry.recordUid);
  ctx.journal.clear(entry.recordUid);
}

/**
 * Stores every sealed secret this gateway holds, before anything else. A record another run is working on
 * right now is left to that run. Throws RECOVERY_PENDING when one cannot be stored: nothing new may start
 * while a secret that works only on its target sits outside Keeper.
 */
export async function storeUnsaved(ctx: RunContext, ownUid: string): Promise<boolean> {
  const entries = ctx.journal.unsaved();
  for (const entry of entries) {
    const lock = entry.recordUid === ownUid ? undefined : tryLock(ctx, entry.recordUid);
    if (entry.recordUid !== ownUid && !lock) continue;
    try {
      ctx.log.info('recover', `storing the secret an earlier ${entry.target} run could not save in record ${entry.recordUid}`);
      await storeSealed(ctx, entry);
      ctx.log.info('recover', `stored it; record ${entry.recordUid} holds the secret its target uses`);
    } catch (err) {
      throw new RotateError(
        'RECOVERY_PENDING',
        `the secret for record ${entry.recordUid} (an earlier ${entry.target} run) is still not in Keeper: ${redact(describeError(err))}; it stays sealed on this gateway and the next run retries`,
        { cause: err },
      );
    } finally {
      lock?.release();
    }
  }
  return entries.length > 0;
}

function tryLock(ctx: RunContext, uid: string) {
  try {
    return lockRecord(ctx.stateDir, uid, ctx.deadline.endsAt() + 60_000);
  } catch (err) {
    if (isRotateError(err) && err.code === 'ROTATION_IN_PROGRESS') return undefined;
    throw err;
  }
}

/**
 * Finishes or undoes this record's interrupted rotation and returns what the plan needs to know. The caller
 * fetches the record again afterwards: its revision may have moved.
 */
export async function recoverInterrupted(
  ctx: RunContext,
  session: TargetSession,
  user: VaultRecord,
  entry: JournalEntry,
  maxRunMs: number,
): Promise<PlanContext> {
  const { vault, log, journal } = ctx;
  log.info('recover', `an earlier run on record ${user.uid} stopped at "${entry.phase}"${entry.credentialId ? ` with ${entry.credentialId}` : ''}; finishing it first`);
  const plan: PlanContext = {};
  if (entry.phase === 'creating') {
    const from = new Date(entry.since);
    const resume = entry.resume ? journal.unsealText(entry.resume) : undefined;
    plan.interrupted = { from, to: new Date(from.getTime() + maxRunMs), ...(resume ? { resume } : {}) };
  } else if (entry.phase === 'saving' || entry.phase === 'verified') {
    // Verified: the new credential works and is saved, only finalize was missing. Otherwise undo the save.
    const finish = entry.phase === 'verified' ? vault.finalize(user.uid) : vault.rollback(user.uid);
    await finish.then(
      () => {
        log.info('recover', `${entry.phase === 'verified' ? 'finalized' : 'rolled back'} the transaction it left open`);
      },
      (err: unknown) => log.info('recover', `no open transaction to ${entry.phase === 'verified' ? 'finalize' : 'roll back'}: ${redact(describeError(err))}`),
    );
  }
  if (entry.credentialId && entry.idField) {
    if (await recordHolds(ctx, user.uid, entry.idField, entry.credentialId)) {
      log.info('recover', `record ${user.uid} holds ${entry.credentialId}; keeping it`);
    } else {
      await removeCredential(session, { id: entry.credentialId, reason: 'left by an interrupted run; the record does not hold it' });
      log.info('recover', `removed ${entry.credentialId}, which the record never got`);
    }
  }
  journal.clear(user.uid);
  return plan;
}
