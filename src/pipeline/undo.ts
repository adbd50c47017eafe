// What a run does when it cannot finish: undo exactly what it did, and report with an exit code that tells the
// truth about what the record holds. Shared by the main flow (rotate.ts) and by recovery (recovery.ts).
import { setTimeout as sleep } from 'node:timers/promises';
import { ExitCode, RotateError, describe as describeError, isRotateError, type ErrorCode } from '../errors.js';
import { readText } from '../keeper/record.js';
import type { VaultRecord } from '../keeper/vault.js';
import type { RunContext } from '../cli/main.js';
import { redact } from '../secret.js';
import type { CredentialInfo, NewCredential, TargetSession } from './target.js';

/** Keeper answered these with a definite "no": the save did not open a transaction, so there is none of ours to roll back. */
const REFUSALS: readonly ErrorCode[] = ['KEEPER_REVISION_CONFLICT', 'KEEPER_TRANSACTION_OPEN', 'KEEPER_ACCESS_DENIED'];

/** Did a failed save perhaps open a transaction (the request reached Keeper but its reply was lost)? */
export function saveMayHaveOpened(err: unknown): boolean {
  return !(isRotateError(err) && (REFUSALS.includes(err.code) || err.code === 'INTERNAL' || err.code === 'DEADLINE_EXCEEDED'));
}

export function withExit(err: RotateError, exitCode: ExitCode, suffix: string): RotateError {
  return new RotateError(err.code, err.message + suffix, { cause: err, exitCode });
}

function asRotateError(cause: unknown): RotateError {
  return isRotateError(cause) ? cause : new RotateError('INTERNAL', describeError(cause), { cause });
}

/** Reads the record afresh: does it name the credential with this ID? */
export async function recordHolds({ vault }: RunContext, uid: string, idField: string, id: string): Promise<boolean> {
  const fresh = (await vault.fetch([uid])).get(uid);
  return fresh !== undefined && readText(fresh.data, idField) === id;
}

/** Removes a credential, counting "already gone" as removed. */
export async function removeCredential(session: TargetSession, credential: CredentialInfo): Promise<void> {
  try {
    await session.remove(credential);
  } catch (err) {
    if (isRotateError(err) && err.code === 'TARGET_NOT_FOUND') return;
    throw err;
  }
}

/**
 * Undoes a rotation that cannot be completed: roll back the Keeper transaction if this run may have opened one,
 * read the record afresh, and remove the new credential only when the record does not hold it. Returns the
 * error to report: the cause with exit 3 when everything was undone (the journal is cleared), 5 when something
 * is left for the next run (the journal stays, so that run knows what).
 */
export async function abandon(ctx: RunContext, session: TargetSession, user: VaultRecord, created: NewCredential, cause: unknown, transactionMayBeOpen: boolean): Promise<RotateError> {
  const { vault, log, journal, deadline } = ctx;
  const base = asRotateError(cause);
  // A save Keeper did not answer in time may still be applied after we give up on it, and would then open a
  // transaction on the record after our rollback. Give it one request timeout to land first; and keep the
  // journal, so the next run rolls back one that lands later still.
  const lateSave = transactionMayBeOpen && base.code === 'KEEPER_TIMEOUT';
  if (lateSave && deadline.requestTimeoutMs < deadline.remaining() - 5_000) {
    log.info('undo', `Keeper did not answer in time; waiting ${Math.round(deadline.requestTimeoutMs / 1000)} s for a late update to land before rolling it back`);
    await sleep(deadline.requestTimeoutMs);
  }
  if (transactionMayBeOpen) {
    try {
      await vault.rollback(user.uid);
      log.info('undo', `rolled back the update of record ${user.uid}`);
    } catch (err) {
      // Often "no transaction": the save never reached Keeper. Either way the re-read below decides.
      log.info('undo', `no rollback of record ${user.uid}: ${redact(describeError(err))}`);
    }
  }
  let holdsNew: boolean;
  try {
    holdsNew = await recordHolds(ctx, user.uid, created.idField, created.id);
  } catch (err) {
    log.warn('undo', `could not re-read record ${user.uid}, so ${created.id} is kept: ${redact(describeError(err))}`);
    return withExit(base, ExitCode.NeedsAttention, `; the new credential ${created.id} was kept because the record could not be re-read (both old and new work; the next run cleans up)`);
  }
  if (holdsNew) {
    return withExit(base, ExitCode.NeedsAttention, `; record ${user.uid} holds the new credential ${created.id} although its rotation failed, so it was kept (the next run re-checks it)`);
  }
  try {
    await removeCredential(session, { id: created.id, reason: 'created by this failed run' });
    log.info('undo', `removed the new credential ${created.id}; the record keeps its previous credential`);
  } catch (err) {
    journal.write({ ...(journal.read(user.uid) ?? { runId: 'unknown', target: '', recordUid: user.uid, since: new Date().toISOString() }), phase: 'created', credentialId: created.id, idField: created.idField });
    return withExit(base, ExitCode.NeedsAttention, `; could not remove the new credential ${created.id} (${redact(describeError(err))}); the record keeps its previous credential and the next run removes it`);
  }
  const entry = journal.read(user.uid);
  if (lateSave && entry) {
    // The credential is gone; the next run only has a transaction to roll back, should the save land late.
    const { credentialId: _id, idField: _field, ...rest } = entry;
    journal.write({ ...rest, phase: 'saving' });
  } else {
    journal.clear(user.uid);
  }
  return withExit(base, ExitCode.Failed, `; undone: the record keeps its previous credential`);
}

/** A failed finalize: read the record to learn whether it holds the new credential, then undo or report. */
export async function confirmFinalized(ctx: RunContext, session: TargetSession, user: VaultRecord, created: NewCredential, cause: unknown): Promise<never> {
  let holdsNew: boolean;
  try {
    holdsNew = await recordHolds(ctx, user.uid, created.idField, created.id);
  } catch {
    // Both credentials work and nothing was retired; which one the record holds is unknown.
    const base = isRotateError(cause) ? cause : new RotateError('KEEPER_REQUEST_FAILED', describeError(cause));
    throw new RotateError('KEEPER_FINALIZE_UNCERTAIN', `${base.message}; the record could not be re-read, so nothing was removed (old and new credentials both work; the next run finishes)`, { cause });
  }
  if (holdsNew) {
    ctx.log.warn('save', `finalize failed but record ${user.uid} holds ${created.id}: ${redact(describeError(cause))}`);
    throw new RotateError('KEEPER_FINALIZE_UNCERTAIN', `finalizing record ${user.uid} failed although it holds the new credential ${created.id}; old credentials were kept and the next run finalizes and retires them`, { cause });
  }
  throw await abandon(ctx, session, user, created, cause, true);
}
