// A rotation as a state machine: one place to reason about every history. Each phase is written to the record's
// journal (state/journal.ts) before the step that enters it, and the same machine that takes a run forward is
// the one that settles it: when a step fails (`settle` from the phase the run is in), and when a later run finds
// the journal of one that was killed, timed out or lost a reply (`resume` at its start). There is no second copy
// of the forward path for recovery.
//
//   overlap (old and new side by side)          in-place (the target swaps its one credential)
//   [preparing: write check open, remove]        preparing: write check open
//   creating: create sent                        creating: replace sent (write check still open)
//   created: the credential exists               unsaved: the target switched; the secret sealed
//   saving: save sent, transaction may be open   unsaved + txn save: save sent
//   verified: saved and verified                 (verify, or yield to a newer secret)
//   finalize → clear → retire                    finalize → clear → adopt
//
// The rules every phase obeys:
// - Nothing destructive happens on the target before Keeper has accepted a write to this record in this run:
//   the write check (a rotation transaction holding the record's own data) stays open while the plan removes
//   credentials and while an in-place target replaces its one, so no other gateway can save in between, and a
//   record this run read while another run's transaction was open is never acted on.
// - Only a transaction this run can prove it may have opened (the journal's `txn`) is ever rolled back, and a
//   recovery step goes on only on a definite answer (done, or "no transaction"); any other error keeps the
//   journal as it is and stops the run, so the next one tries the same step again.
// - A call whose outcome is unknown (a timeout, a dropped connection, a 5xx) is treated as applied: a create
//   may have made a credential, a replace may have killed the old secret, a save may have opened a transaction.
import { setTimeout as sleep } from 'node:timers/promises';
import { HARD_STOP_GRACE_MS, type RunContext } from '../cli/main.js';
import { ExitCode, RotateError, describe as describeError, isRotateError, refusedOutright } from '../errors.js';
import { cloneData, readText, writeText, type FieldRef } from '../keeper/record.js';
import type { VaultRecord } from '../keeper/vault.js';
import { redact } from '../secret.js';
import { type JournalEntry, type JournalStep, noteFinalized } from '../state/journal.js';
import { sameBesidesOutcome } from './outcome.js';
import type { CredentialInfo, NewCredential, PlanContext, RotationPlan, TargetSession, VerifyResult } from './target.js';
import { VERIFY_POLICY, verifyGapMs, verifyWindowMs } from './verify-schedule.js';

const SAVE_ATTEMPTS = 3;
const SAVE_RETRY_MS = 500;

/** What every journal entry of one run shares. */
export interface RunStep {
  runId: string;
  target: string;
  recordUid: string;
  since: string;
  /** The resource the record names on the target (Target.principal), when the target has one. */
  principal?: string;
}

export interface Machine {
  ctx: RunContext;
  session: TargetSession;
  step: RunStep;
  /** The longest a run lasts (deadline and hard-stop grace): bounds the window of an interrupted create. */
  maxRunMs: number;
  /**
   * What the journal holds once the rotation is finalized, in the same write that ends the rotation's own
   * entry (no moment between them for a kill to fall in): `delivering` when the record has destinations.
   */
  afterFinalize?: JournalStep;
  /** Fields the rotation's save carries besides the credential's (the run's outcome: pipeline/outcome.ts). */
  alsoSave?: (created: NewCredential) => Array<[FieldRef, string]>;
}

/** The rotation is finalized: its entry gives way to what follows it, if anything. */
function finished(m: Machine, uid: string): void {
  if (m.afterFinalize) {
    try {
      m.ctx.journal.write(m.afterFinalize);
      return;
    } catch (err) {
      // The rotation is done: a journal that cannot say "delivering" must not make it look failed (exit 2 or 3).
      // Delivery does not depend on the entry: every run reads its destinations back (pipeline/deliver.ts).
      m.ctx.log.warn('save', `could not journal that delivery follows (${redact(describeError(err))}); delivering anyway`);
    }
  }
  m.ctx.journal.clear(uid);
}

const asRotateError = (err: unknown): RotateError => (isRotateError(err) ? err : new RotateError('INTERNAL', describeError(err), { cause: err }));
const withExit = (err: RotateError, exitCode: ExitCode, suffix: string) => new RotateError(err.code, err.message + suffix, { cause: err, exitCode });
const definite = (err: unknown) => isRotateError(err) && err.code === 'KEEPER_NO_TRANSACTION';

function holdsAll(data: VaultRecord['data'], updates: Array<[FieldRef, string]>): boolean {
  return updates.every(([ref, value]) => readText(data, ref.label) === value);
}

/**
 * A rotation-transaction save of `build(record data)`, checked against the revision `user` was read at. Refused for
 * a revision that moved only because another run wrote its outcome fields (pipeline/outcome.ts), it is made once
 * more on the fresh read; any other change stays a conflict. Returns the record the save was made from.
 */
async function saveAtRevision(m: Machine, user: VaultRecord, build: (data: VaultRecord['data']) => VaultRecord['data']): Promise<VaultRecord> {
  try {
    await m.ctx.vault.saveInTransaction(user, build(user.data));
    return user;
  } catch (err) {
    if (!isRotateError(err) || err.code !== 'KEEPER_REVISION_CONFLICT') throw err;
    let fresh: VaultRecord;
    try {
      fresh = await fetchOne(m.ctx, user.uid);
    } catch {
      throw err;
    }
    // Only a revision that really moved, and only in those fields: anything else stays the conflict Keeper said.
    if (fresh.revision === user.revision || !sameBesidesOutcome(fresh.data, user.data)) throw err;
    m.ctx.log.info('save', `record ${user.uid} changed only in another run's outcome fields since it was read; saving on the fresh read`);
    await m.ctx.vault.saveInTransaction(fresh, build(fresh.data));
    return fresh;
  }
}

/** Reads one record afresh. */
async function fetchOne({ vault }: RunContext, uid: string): Promise<VaultRecord> {
  const record = (await vault.fetch([uid])).get(uid);
  if (!record) throw new RotateError('RECORD_NOT_FOUND', `record ${uid} is no longer shared with the gateway`, { exitCode: ExitCode.NeedsAttention });
  return record;
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

// ---------------------------------------------------------------------------------------------------------------
// Settling: from any phase to rest (journal cleared), or a coded stop with the journal kept for the next run.

type Settled = 'finished' | 'kept' | 'undone' | 'pending-create';

/**
 * Closes the transaction a journal entry says this run (or an earlier one) may hold open: finalize a verified
 * save, roll back anything else. Returns false when Keeper had none (it never opened, or someone completed it).
 * Throws, keeping the journal, on any answer that is not definite.
 */
async function closeTransaction(m: Machine, entry: JournalEntry, label?: string): Promise<boolean> {
  const { vault, log } = m.ctx;
  const finalize = entry.phase === 'verified';
  try {
    if (finalize) await vault.finalize(entry.recordUid);
    else await vault.rollback(entry.recordUid);
    log.info(label ?? (entry.runId === m.step.runId ? 'undo' : 'recover'), `${finalize ? 'finalized' : 'rolled back'} the ${entry.txn === 'probe' ? 'write check' : 'update'} of record ${entry.recordUid}`);
    return true;
  } catch (err) {
    if (definite(err)) {
      log.info('recover', `record ${entry.recordUid} has no open transaction to ${finalize ? 'finalize' : 'roll back'}`);
      return false;
    }
    throw err;
  }
}

/**
 * Drives a journaled state to rest. `cause`: the failure that stopped this run, when it is this run's own state
 * (it decides the late-save wait). Returns what became of the credential the entry names; throws a coded
 * error, with the journal kept (so the next run takes the same step again), when a step gets no definite answer.
 */
async function settle(m: Machine, entry: JournalEntry, cause?: RotateError): Promise<Settled> {
  const { journal, log, deadline } = m.ctx;
  // A write Keeper never answered (a timeout, a lost connection) may still land after the rollback and open a
  // transaction then: give it one request timeout first. If the rollback then finds nothing open, it may land
  // later still: its transaction stays in the journal, and so does the credential it names (removing it now
  // would leave a record that names a deleted credential the moment the save lands).
  const late = cause && entry.txn && cause.code.startsWith('KEEPER_') && !cause.refused && cause.status === undefined ? entry.txn : undefined;
  let finalized = false;
  if (late === 'probe') {
    // A write check whose reply was lost holds only the record's own data, so leaving it open costs nothing but a
    // wait for other writers; rolling back now could undo another gateway's transaction instead (Keeper does not
    // say whose is open, and other runs are most likely in flight exactly now). The next run of this gateway
    // rolls it back from the journal.
    return 'undone';
  }
  if (entry.txn) {
    if (late && deadline.requestTimeoutMs < deadline.remaining() - 5_000) {
      log.info('undo', `Keeper did not answer; waiting ${Math.round(deadline.requestTimeoutMs / 1000)} s for a late update to land before rolling it back`);
      await sleep(deadline.requestTimeoutMs);
    }
    const closed = await closeTransaction(m, entry);
    finalized = closed && entry.phase === 'verified';
    if (late && !closed) {
      // Nothing open yet: the write may still land. Keep everything; the next run settles it.
      if (entry.credentialId) {
        throw new RotateError(cause!.code, `Keeper did not confirm the save of ${entry.credentialId} and has not opened it yet, so it may still land: ${entry.credentialId} was kept (the record's credential and the new one both work), and the next run rolls back or settles it`, {
          exitCode: ExitCode.NeedsAttention,
        });
      }
      return 'undone';
    }
    const { txn: _txn, ...rest } = entry;
    entry = journal.write(entry.phase === 'verified' ? { ...rest, phase: 'created' } : rest);
  }
  if (entry.phase === 'creating') return 'pending-create';
  if (!entry.credentialId || !entry.idField) {
    // An earlier run's unknown create, carried by this one: the next run must still look for its leftover.
    if (entry.inherited) journal.write(inheritedEntry(entry));
    else journal.clear(entry.recordUid);
    return 'undone';
  }
  let holds: boolean;
  try {
    holds = readText((await fetchOne(m.ctx, entry.recordUid)).data, entry.idField) === entry.credentialId;
  } catch (err) {
    throw withExit(asRotateError(err), ExitCode.NeedsAttention, `; record ${entry.recordUid} could not be re-read, so ${entry.credentialId} was kept (old and new both work; the next run settles it)`);
  }
  if (holds) {
    journal.clear(entry.recordUid);
    return finalized ? 'finished' : 'kept';
  }
  try {
    await removeCredential(m.session, { id: entry.credentialId, reason: 'the record does not hold it' });
  } catch (err) {
    throw withExit(asRotateError(err), ExitCode.NeedsAttention, `; could not remove ${entry.credentialId}, which the record does not hold (the record keeps its previous credential, and the next run removes it)`);
  }
  log.info(entry.runId === m.step.runId ? 'undo' : 'recover', `removed ${entry.credentialId}, which the record does not hold`);
  journal.clear(entry.recordUid);
  return 'undone';
}

/** The earlier run's unknown create (or replace) that an entry carries, as that run's own entry again. */
function inheritedEntry(entry: JournalEntry): JournalStep {
  const i = entry.inherited!;
  return { ...stepOf(entry), since: i.since, phase: 'creating', ...windowOf(i) };
}

/** A create window's bounds besides its start: its end when the create was answered, and what was there before. */
function windowOf(w: { until?: string | undefined; existing?: string[] | undefined; resume?: string | undefined }): Pick<JournalEntry, 'until' | 'existing' | 'resume'> {
  return { ...(w.until ? { until: w.until } : {}), ...(w.existing ? { existing: w.existing } : {}), ...(w.resume ? { resume: w.resume } : {}) };
}

/** What an entry of an earlier unknown create (or replace) hands on, so a run that fails first does not forget it. */
function inheritFrom(pending: JournalEntry | undefined): JournalEntry['inherited'] {
  if (pending?.phase === 'creating') return { since: pending.since, ...windowOf(pending) };
  return pending?.inherited;
}

function stepOf(entry: JournalEntry): RunStep {
  return { runId: entry.runId, target: entry.target, recordUid: entry.recordUid, since: entry.since, ...(entry.principal ? { principal: entry.principal } : {}) };
}

/** This run failed in `entry`'s phase: settle it and say, in the exit code, what the record holds. */
async function fail(m: Machine, entry: JournalEntry, cause: unknown, removedBefore: string[]): Promise<RotateError> {
  const base = asRotateError(cause);
  const removed = removedBefore.length ? ` (${removedBefore.join(', ')} had been removed before creating, as planned)` : '';
  let settled: Settled;
  try {
    settled = await settle(m, entry, base);
  } catch (err) {
    const e = asRotateError(err);
    return new RotateError(base.code, `${base.message}; then ${e.message}`, { cause: err, exitCode: Math.max(e.exitCode, ExitCode.NeedsAttention) as ExitCode });
  }
  if (settled === 'kept' || settled === 'finished') {
    return withExit(base, ExitCode.NeedsAttention, `; record ${entry.recordUid} holds the new credential ${entry.credentialId} although this run failed, so it was kept (the next run re-checks it)`);
  }
  return withExit(base, ExitCode.Failed, `; undone: the record keeps its previous credential${removed}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Resuming an earlier run of this record, at the start of a run.

/**
 * The record names another resource than the one an earlier run's entry worked on (a person pointed it elsewhere
 * since, or changed the tenant): what that run made, or may have made, is on the old resource, and a session on
 * the new one must neither look for it there (AWS keys carry no name: any key made in the window would pass for
 * it) nor remove it. Nothing is done; a person checks the old resource. An entry that holds nothing on the target
 * (a bare write check) is no reason to stop, nor is one written before entries named their resource.
 */
export function retargeted(entry: JournalEntry, principal: string | undefined): RotateError | undefined {
  if (!entry.principal || !principal || entry.principal === principal) return undefined;
  const window = entry.phase === 'creating' ? entry : entry.inherited;
  const onOld = [
    ...(entry.credentialId ? [`${entry.credentialId}, which it made`] : []),
    ...(window ? [`whatever it made from ${window.since}${window.until ? ` to ${window.until}` : ''} (its create's outcome is unknown)`] : []),
    ...(entry.phase === 'unsaved' ? ['the new secret it made, sealed on this gateway (the old one no longer works)'] : []),
  ];
  if (onOld.length === 0) return undefined;
  const what = (p: string) => p.replace(/^[a-z-]+:/, '');
  return new RotateError(
    'RECOVERY_RETARGETED',
    `an earlier run on record ${entry.recordUid} stopped at "${entry.phase}" on ${what(entry.principal)}, and the record now names ${what(principal)}; on ${what(entry.principal)} it may have left ${onOld.join(' and ')}. Nothing was changed. Either point the record back at ${what(entry.principal)} (the next run settles it there), or check ${what(entry.principal)} by hand and then move record ${entry.recordUid}'s journal in this gateway's state folder aside`,
    { exitCode: ExitCode.NeedsAttention },
  );
}

/**
 * Finishes or undoes the rotation an earlier run left in its journal, and returns what this run's plan needs
 * to know. Throws (journal kept) when a step gets no definite answer: the run stops before changing anything.
 */
export async function resume(m: Machine, entry: JournalEntry): Promise<PlanContext> {
  const { log, journal } = m.ctx;
  log.info('recover', `an earlier run on record ${entry.recordUid} stopped at "${entry.phase}"${entry.credentialId ? ` with ${entry.credentialId}` : ''}; finishing it first`);
  if (entry.phase === 'unsaved') throw new RotateError('INTERNAL', 'a sealed secret is stored before the target is connected');
  const moved = retargeted(entry, m.step.principal);
  if (moved) throw moved;
  let settled: Settled;
  try {
    settled = await settle(m, entry);
  } catch (err) {
    const e = asRotateError(err);
    // Nothing of this run's own changed. A save of the earlier run's that stays open may hold a credential that
    // never verified, so that is 5; a write check or a verified save leaves a working credential either way.
    const exitCode = entry.txn === 'save' && entry.phase !== 'verified' ? ExitCode.NeedsAttention : Math.max(e.exitCode, ExitCode.Failed);
    throw new RotateError(e.code, `an earlier run on record ${entry.recordUid} stopped at "${entry.phase}" and finishing it failed: ${e.message}; nothing else was changed, and the next run tries again`, { cause: err, exitCode: exitCode as ExitCode });
  }
  if (settled === 'finished') log.info('recover', `finalized ${entry.credentialId}: the record holds it`);
  else if (settled === 'kept') log.info('recover', `record ${entry.recordUid} holds ${entry.credentialId}; keeping it`);
  const window = entry.phase === 'creating' ? entry : entry.inherited ? { ...entry.inherited } : undefined;
  if (settled !== 'pending-create' && !entry.inherited) return {};
  if (!window) return {};
  // The create's outcome was never known: a credential made in its window that was not there before and that
  // the record does not name is its leftover. The journal stays until this run's plan has removed it.
  const from = new Date(window.since);
  const sealedToken = entry.phase === 'creating' ? entry.resume : entry.inherited?.resume;
  const sealedResume = sealedToken ? journal.unsealText(entry.recordUid, sealedToken) : undefined;
  // A create that was answered made nothing after its answer; one that got none may land as late as its run
  // could have lasted. The wider the window, the likelier a credential someone else made in it is taken for ours.
  const until = window.until ? Date.parse(window.until) : NaN;
  return {
    interrupted: {
      from,
      to: new Date(Number.isFinite(until) ? until : from.getTime() + m.maxRunMs),
      ...(window.existing ? { existing: window.existing } : {}),
      ...(sealedResume ? { resume: sealedResume } : {}),
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The write check.

/**
 * Opens a rotation transaction holding the record's own data, checked against the revision this run read: it
 * proves that record is what Keeper holds now (no other run's transaction open, no edit since the read) and
 * keeps every other writer out until `releaseProbe`. A refusal leaves nothing to undo.
 */
async function openProbe(m: Machine, user: VaultRecord, inherited: JournalEntry['inherited'], restore: JournalEntry | undefined): Promise<JournalEntry> {
  const { vault, journal } = m.ctx;
  m.ctx.deadline.check('checking that Keeper accepts the write');
  const entry = m.ctx.journal.write({ ...m.step, phase: 'preparing', txn: 'probe', ...(inherited ? { inherited } : {}) });
  try {
    await saveAtRevision(m, user, (base) => base);
  } catch (err) {
    if (refusedOutright(err) || (isRotateError(err) && err.code === 'DEADLINE_EXCEEDED')) {
      // Nothing opened: leave the journal as it was before this run (an earlier run's leftover window included).
      if (restore) journal.write(restore);
      else journal.clear(user.uid);
      if (isRotateError(err) && err.code === 'KEEPER_TRANSACTION_OPEN') throw await othersTransaction(m, user, err);
      throw err;
    }
    throw await fail(m, entry, err, []);
  }
  return entry;
}

/**
 * Another run's open transaction on the record (another gateway's, e.g. another instance of a gateway pool): exit
 * 3 says the record's credential still works. For a target that replaces in place that is only so when the other
 * run has not replaced the secret yet, so the record's secret is asked before the 3 is given; a secret that does
 * not sign in, or cannot be checked, makes it 5 (the other gateway's journal holds the new secret sealed, and its
 * next run stores it). Overlap targets need no check: an open transaction has only added a credential.
 */
async function othersTransaction(m: Machine, user: VaultRecord, err: RotateError): Promise<RotateError> {
  return checkedExit(
    m.session,
    user.data,
    err,
    'the run that holds the transaction may have replaced it, and its gateway\'s next run stores the new secret (with a gateway pool, the instance that ran it); if none does, make a new secret in the target\'s console and save it in the record',
  );
}

/**
 * Exit 3 promises that the record's credential works. Where the target can tell (verifyRecord: an in-place
 * target, whose rotation kills the old credential), a failure this run did not cause is 3 only when the record's
 * secret signs in, and 5 (with `otherwise`) when it does not or cannot be told. Other targets return `err` as it
 * is: another run verifies a new credential before it finalizes, and retires the old one only after.
 */
export async function checkedExit(session: TargetSession, data: VaultRecord['data'], err: RotateError, otherwise: string): Promise<RotateError> {
  if (!session.verifyRecord) return err;
  let result: VerifyResult;
  try {
    result = await session.verifyRecord(data);
  } catch (checkError) {
    result = { ok: false, reason: redact(describeError(checkError)), throttled: true };
  }
  if (result.ok) return withExit(err, ExitCode.Failed, `; the record's secret signs in`);
  const why = result.throttled ? `whether the record's secret still signs in could not be checked (${result.reason})` : `the record's secret no longer signs in (${result.reason})`;
  return withExit(err, ExitCode.NeedsAttention, `; ${why}: ${otherwise}`);
}

/**
 * The write check held around a delivery at the start of a run (pipeline/deliver.ts catch-up): while it is open no
 * other run can save or finalize on the record, and opening it proves no other run's transaction is open now, so
 * what the record reads is committed data, not another run's save that may still be rolled back (Keeper's
 * immediate model shows an open save's data to every reader). Refused by another run's open transaction: the
 * caller delivers nothing (othersTransaction's exit code). `pending`: the journal entry to put back afterwards.
 */
export async function holdWriteCheck(m: Machine, record: VaultRecord, pending: JournalEntry | undefined): Promise<JournalEntry> {
  return openProbe(m, record, inheritFrom(pending), pending);
}

/** Closes holdWriteCheck's check and puts the journal back as it was; throws (journal kept) on no definite answer. */
export async function dropWriteCheck(m: Machine, entry: JournalEntry, pending: JournalEntry | undefined): Promise<void> {
  try {
    await closeTransaction(m, entry, 'deliver');
  } catch (err) {
    // The check holds the record's own data: the record's credential works either way. The next run rolls it back.
    throw withExit(asRotateError(err), ExitCode.Failed, `; the write check held while delivering could not be rolled back (the record's credential works; the next run rolls it back)`);
  }
  if (pending) m.ctx.journal.write(pending);
  else m.ctx.journal.clear(entry.recordUid);
}

/**
 * Rolls the write check back once what the plan removes first is gone (an earlier run's leftovers with it, so
 * nothing is inherited any more); the record's revision may move, so the caller fetches it again.
 */
async function releaseProbe(m: Machine, entry: JournalEntry): Promise<void> {
  await closeTransaction(m, entry, 'prepare');
  m.ctx.journal.clear(entry.recordUid);
}

// ---------------------------------------------------------------------------------------------------------------
// Old and new side by side.

/**
 * Overlap targets: [write check → remove what the plan removes first →] create → save in a transaction → verify
 * → finalize. Returns the new credential, saved, verified and finalized, with the journal cleared.
 */
export async function createAlongside(m: Machine, user: VaultRecord, plan: RotationPlan, pending: JournalEntry | undefined, verifyTimeoutMs: number): Promise<NewCredential> {
  const { ctx, session } = m;
  const { vault, log, deadline } = ctx;
  const inherited = inheritFrom(pending);
  const removed: string[] = [];
  let entry: JournalEntry | undefined;
  if (plan.removeBefore.length > 0) {
    entry = await openProbe(m, user, inherited, pending);
    try {
      for (const c of plan.removeBefore) {
        deadline.check(`removing ${c.id}`);
        await removeCredential(session, c);
        removed.push(c.id);
        log.info('prepare', `removed ${c.id} (${c.reason})`);
      }
      await releaseProbe(m, entry);
    } catch (err) {
      throw await fail(m, entry, err, removed);
    }
    user = await fetchOne(ctx, user.uid);
  }
  const present = (plan.present ?? []).filter((id) => !removed.includes(id));

  deadline.check('creating the new credential');
  try {
    entry = m.ctx.journal.write({ ...m.step, phase: 'creating', existing: present });
  } catch (err) {
    if (removed.length) throw withExit(asRotateError(err), ExitCode.Failed, `; nothing was created (${removed.join(', ')} had been removed before creating, as planned)`);
    throw err;
  }
  let created: NewCredential;
  try {
    created = await session.create();
  } catch (err) {
    const answeredAt = new Date().toISOString();
    const base = asRotateError(err);
    const before = removed.length ? ` (${removed.join(', ')} had been removed before creating, as planned)` : '';
    const leftovers = refusedOutright(err) ? 'settled' : await removeLeftovers(m, user, present, err, answeredAt);
    // An earlier run's unknown create that this run's plan found nothing of (no write check consumed it) may
    // still be unlisted (IAM's list lags): its window outlives this run's refused create, or the key it made
    // would be left for nobody to remove.
    const earlier = plan.removeBefore.length === 0 ? inheritFrom(pending) : undefined;
    if (leftovers === 'settled') {
      if (earlier) ctx.journal.write({ ...m.step, since: earlier.since, phase: 'creating', ...windowOf(earlier) });
      else ctx.journal.clear(user.uid);
      throw withExit(base, ExitCode.Failed, `; nothing of this run's remains on the target${before}: the record keeps its credential`);
    }
    if (leftovers === 'unseen') {
      // As with a create that got no reply: something of this run's may remain until the next run, so 5, not 3.
      throw withExit(base, ExitCode.NeedsAttention, `; the target lists nothing this run made, but its list can lag a create, so the next run looks again and removes what this one may have made${before}: the record keeps its credential`);
    }
    throw withExit(base, ExitCode.NeedsAttention, `; the target may have made a credential anyway (the call's outcome is unknown): the record keeps its credential, and the next run removes what this one may have made${before}`);
  }
  log.info('create', `created ${created.id}`, { expires: created.expires });
  const made = { ...m.step, credentialId: created.id, idField: created.idField };
  const createdEntry: JournalEntry = { version: 2, ...made, phase: 'created', at: new Date().toISOString() };
  try {
    entry = m.ctx.journal.write({ ...made, phase: 'created' });
    deadline.check('saving the record');
    entry = m.ctx.journal.write({ ...made, phase: 'saving', txn: 'save' });
    try {
      user = await saveAtRevision(m, user, (base) => {
        const next = cloneData(base);
        for (const [ref, value] of [...created.recordUpdates, ...(m.alsoSave?.(created) ?? [])]) writeText(next, ref, value);
        return next;
      });
    } catch (err) {
      // A definite refusal opened no transaction: only the credential is ours to undo.
      if (refusedOutright(err)) entry = m.ctx.journal.write({ ...made, phase: 'created' });
      throw err;
    }
  } catch (err) {
    throw await fail(m, entry.phase === 'creating' ? createdEntry : entry, err, removed);
  }
  log.info('save', `saved ${created.id} in record ${user.uid} (rotation transaction open)`);

  const verified = await verifyUntil(m, verifyTimeoutMs, created);
  if (!verified.ok) {
    throw await fail(m, entry, new RotateError('VERIFY_FAILED', `the new credential ${created.id} did not authenticate: ${verified.reason}`), removed);
  }
  log.info('verify', `${created.id} authenticates`, { attempts: verified.attempts });
  try {
    entry = m.ctx.journal.write({ ...made, phase: 'verified', txn: 'save' });
  } catch (err) {
    // Finalizing now matters more: should this run die first, the next one rolls the save back, which is safe.
    log.warn('save', `could not journal the verified state: ${redact(describeError(err))}`);
  }

  // A finalize that gets no definite answer is tried once more: the credential is saved and verified, and going
  // forward loses nothing. Still no answer: nothing is retired and the journal stays, so the next run finalizes.
  let finalized: boolean;
  try {
    finalized = await finalizeOnce(m);
  } catch (err) {
    log.warn('save', `finalizing record ${user.uid} failed (${redact(describeError(err))}); trying once more`);
    await sleep(Math.min(SAVE_RETRY_MS, deadline.remaining()));
    try {
      finalized = await finalizeOnce(m);
    } catch (again) {
      throw new RotateError(
        'KEEPER_FINALIZE_UNCERTAIN',
        `${asRotateError(again).message}; ${created.id} is saved and verified, so nothing was removed (old and new credentials both work; the next run finalizes it and retires the old ones)`,
        { cause: again },
      );
    }
  }
  if (finalized) noteFinalized();
  // No transaction: someone completed it. Whether the record holds ours decides.
  if (!finalized && (await settle(m, { ...createdEntry, at: new Date().toISOString() })) === 'undone') {
    throw new RotateError('KEEPER_NO_TRANSACTION', `the update of record ${user.uid} was completed by someone else without ${created.id}; it was removed, and the record keeps the credential it holds`);
  }
  finished(m, user.uid);
  log.info('save', `finalized record ${user.uid}`);
  return created;
}

/** Finalizes this run's transaction: true when done, false when Keeper had none open; throws on anything else. */
async function finalizeOnce(m: Machine): Promise<boolean> {
  try {
    await m.ctx.vault.finalize(m.step.recordUid);
    return true;
  } catch (err) {
    if (definite(err)) return false;
    throw err;
  }
}

/**
 * A create that failed with a reply (a 5xx, an unreadable body) has run its course on the server: whatever it
 * made is on the target now. Reads the target again and removes what is new since the plan's read and looks
 * like this run's: 'settled' when it removed something. 'unseen' when the read shows nothing new: the create
 * may have made nothing, or the target's list may not show it yet (IAM and Entra reads lag their writes), so the
 * journal keeps the window for the next run, which reads later (exit 5 meanwhile, as for a create with no
 * reply). A create that got no reply (a timeout, a dropped connection) may still land later, so it stays the
 * next run's to look for (false), as does anything that fails here.
 */
async function removeLeftovers(m: Machine, user: VaultRecord, present: string[], err: unknown, answeredAt: string): Promise<'settled' | 'unseen' | false> {
  if (!isRotateError(err) || err.status === undefined) return false;
  // A 502 or 504 comes from a gateway in front of the service, which may still be working on the create: its
  // window stays open as long as a run's (no `until`). Any other answer is the service's own, after its work.
  const until = err.status === 502 || err.status === 504 ? {} : { until: answeredAt };
  const creating = m.ctx.journal.read(user.uid);
  let probe: JournalEntry | undefined;
  try {
    // Another gateway may have made a credential in this same window and hold it in its open save: only under
    // this run's own write check is a credential that is new since the plan's list, and that the record does not
    // name, this run's to remove.
    probe = await openProbe(m, await fetchOne(m.ctx, user.uid), { since: m.step.since, existing: present }, creating);
    const again = await m.session.plan({ interrupted: { from: new Date(m.step.since), to: new Date(Date.now() + 60_000), existing: present } });
    let removed = 0;
    for (const c of again.removeBefore.filter((c) => c.leftover && !present.includes(c.id))) {
      await removeCredential(m.session, c);
      removed++;
      m.ctx.log.info('undo', `removed ${c.id}, which the failed create made after all`);
    }
    await releaseProbe(m, probe);
    if (removed > 0) return 'settled';
    m.ctx.journal.write({ ...m.step, phase: 'creating', existing: present, ...until });
    return 'unseen';
  } catch (e) {
    m.ctx.log.warn('undo', `could not check the target for what the failed create may have made: ${redact(describeError(e))}`);
    // Still open: roll the write check back; the journal keeps the window for the next run either way.
    if (probe && m.ctx.journal.read(user.uid)?.txn === 'probe') await fail(m, probe, e, []);
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// In place.

/**
 * The target swaps its one credential (no overlap, nothing to go back to): open the write check, replace while
 * it is open, seal the new secret into the journal with a digest of what the record held, release the check,
 * save with retries, verify, finalize. If Keeper refuses every save, the sealed secret waits on this gateway
 * and a later run stores it, but only while the record still holds what it held before this run's replace.
 */
export async function replaceInPlace(m: Machine, user: VaultRecord, pending: JournalEntry | undefined, verifyTimeoutMs: number): Promise<NewCredential> {
  const { ctx, session } = m;
  const { log, journal, deadline } = ctx;
  // An earlier replace whose outcome is unknown stays in the journal (with its sealed token) until this run's
  // own replace supersedes it: a write check that fails must not make the next run forget it.
  let entry = await openProbe(m, user, inheritFrom(pending), pending);
  const resumeText = session.resumeState?.();
  try {
    deadline.check('replacing the credential');
    entry = m.ctx.journal.write({ ...m.step, phase: 'creating', txn: 'probe', ...(resumeText ? { resume: journal.sealText(user.uid, resumeText) } : {}), ...(entry.inherited ? { inherited: entry.inherited } : {}) });
  } catch (err) {
    throw await fail(m, entry, err, []);
  }
  let created: NewCredential;
  try {
    created = await session.create();
  } catch (err) {
    const base = asRotateError(err);
    const released = await closeTransaction(m, entry).then(
      () => true,
      () => false,
    );
    if (refusedOutright(err)) {
      // Nothing replaced by this run; an earlier replace of unknown outcome stays for the next run.
      if (released) {
        if (entry.inherited) journal.write(inheritedEntry(entry));
        else journal.clear(user.uid);
      }
      throw withExit(base, released ? ExitCode.Failed : ExitCode.NeedsAttention, `; the credential was not replaced${released ? '' : ' (the write check could not be rolled back; the next run does)'}`);
    }
    if (released) {
      const { txn: _txn, ...rest } = entry;
      journal.write(rest);
    }
    throw withExit(
      base,
      ExitCode.NeedsAttention,
      `; the target may have replaced the credential anyway (the call's outcome is unknown), so the record's secret may no longer work: the next run replaces it again`,
    );
  }
  const labels = created.recordUpdates.map(([ref]) => ref.label);
  const before = journal.digest(user.uid, labels.map((l) => readText(user.data, l)));
  let sealed = true;
  const unsaved = { ...m.step, phase: 'unsaved' as const, credentialId: created.id, idField: created.idField, sealed: '', before };
  try {
    unsaved.sealed = journal.seal(user.uid, created.recordUpdates);
    entry = journal.write({ ...unsaved, txn: 'probe' });
  } catch (err) {
    // The secret already replaced the old one: saving it to Keeper matters more than the journal that failed.
    sealed = false;
    log.warn('save', `could not seal the new secret on this gateway (${redact(describeError(err))}); saving it to Keeper anyway`);
  }
  log.info('create', `replaced the credential of ${created.id}; the previous one no longer works`, { expires: created.expires });

  const pendingError = (err: unknown, what: string) => {
    const base = asRotateError(err);
    if (!sealed) return new RotateError(base.code, `${base.message}; the target's new secret could not be ${what} or sealed: make a new one in the target's console`, { cause: err, exitCode: ExitCode.NeedsAttention });
    return new RotateError('RECOVERY_PENDING', `${base.message}; the new secret is sealed on this gateway and the next run stores it in record ${user.uid}`, { cause: err });
  };
  try {
    await closeTransaction(m, { ...entry, txn: 'probe', phase: 'unsaved' });
    if (sealed) entry = journal.write(unsaved);
  } catch (err) {
    throw pendingError(err, 'saved');
  }

  let saved: VaultRecord;
  try {
    saved = await saveWithRetries(m, user.uid, created.recordUpdates, sealed ? unsaved : undefined, m.alsoSave?.(created));
  } catch (err) {
    throw pendingError(err, 'saved');
  }
  log.info('save', `saved the new secret in record ${user.uid} (rotation transaction open)`);

  // There is no old credential to return to, so a failed verification still finalizes: the record must hold
  // the one secret the target may accept. Unless another run replaced the credential after this one and saved
  // its own secret before this run's save: then that one works and ours never will, so ours is rolled back.
  const verified = await verifyUntil(m, verifyTimeoutMs, created);
  if (!verified.ok) await yieldToNewer(m, user, saved, created, verified.reason, sealed);
  try {
    await ctx.vault.finalize(user.uid);
  } catch (err) {
    if (!definite(err) || !holdsAll((await fetchOne(ctx, user.uid).catch(() => saved)).data, created.recordUpdates)) throw pendingError(err, 'finalized');
  }
  noteFinalized();
  finished(m, user.uid);
  log.info('save', `finalized record ${user.uid}`);
  if (!verified.ok) {
    throw new RotateError('VERIFY_FAILED', `the new secret for ${created.id} was saved but did not authenticate: ${verified.reason}`, { exitCode: ExitCode.NeedsAttention });
  }
  log.info('verify', `${created.id} authenticates`, { attempts: verified.attempts });
  return created;
}

/**
 * Saves updates into a record in a rotation transaction, fetching it afresh each attempt (a conflict or a lost
 * reply changes its revision). Leaves the transaction open; the caller finalizes. Returns the record as the
 * save found it; throws the last error. `unsaved`: the journal entry that marks the save as sent.
 *
 * An attempt whose outcome is unknown (no reply) may be applied by Keeper after its rollback found nothing open,
 * even after the next attempt was sent: from then on this run may hold a transaction it cannot see, so the
 * journal keeps `txn: 'save'` for the rest of the run (a later run rolls it back instead of being refused by it
 * for good). A later attempt refused with KEEPER_TRANSACTION_OPEN is then our late save only if a fresh read shows
 * our updates (Keeper's immediate model shows an open transaction's data): the save is done. Otherwise whose it
 * is cannot be told (the pending model shows nothing until finalize, and another gateway of a pool may hold
 * one right now, between its replace and its finalize): it is never rolled back here, which could undo the other
 * gateway's working secret. The run stops with the journal as it is, and the next one settles it.
 */
async function saveWithRetries(m: Machine, uid: string, updates: Array<[FieldRef, string]>, unsaved: JournalStep | undefined, also: Array<[FieldRef, string]> = []): Promise<VaultRecord> {
  const { ctx } = m;
  let last: unknown;
  let mayBeOpen: VaultRecord | undefined;
  let contestedAt = unsaved?.contestedAt;
  const { txn: _txn, contestedAt: _contested, ...step } = unsaved ?? ({} as JournalStep);
  const rest = () => {
    if (unsaved) ctx.journal.write(mayBeOpen ? { ...step, txn: 'save', ...(contestedAt ? { contestedAt } : {}) } : step);
  };
  for (let attempt = 1; attempt <= SAVE_ATTEMPTS; attempt++) {
    let sent = false;
    let record: VaultRecord | undefined;
    try {
      ctx.deadline.check(`saving record ${uid}`);
      record = await fetchOne(ctx, uid);
      // An earlier run's save that got no reply may be open still (storeSealed left a contested one alone).
      if (unsaved?.txn === 'save') mayBeOpen ??= record;
      if (mayBeOpen && holdsAll(record.data, updates)) {
        // Our late save, open and readable (immediate model): saved, as the read it was made from found the record.
        ctx.log.info('save', `an earlier attempt of this run was applied late; its transaction is open with this run's secret`);
        return mayBeOpen;
      }
      const data = cloneData(record.data);
      for (const [ref, value] of [...updates, ...also]) writeText(data, ref, value);
      if (unsaved) ctx.journal.write({ ...step, txn: 'save', ...(mayBeOpen && contestedAt ? { contestedAt } : {}) });
      sent = true;
      await ctx.vault.saveInTransaction(record, data);
      return record;
    } catch (err) {
      last = err;
      // KEEPER_THROTTLED comes after the transport waited as long as Keeper asked and the deadline allows: a quick
      // retry would only restart Keeper's count (src/keeper/transport.ts).
      if (isRotateError(err) && err.code === 'DEADLINE_EXCEEDED') break;
      if (isRotateError(err) && err.code === 'KEEPER_THROTTLED') {
        // Refused: nothing opened by this attempt, so the journal must not say it was (an earlier one still may).
        if (sent) rest();
        break;
      }
      ctx.log.warn('save', `attempt ${attempt} to save record ${uid} failed: ${redact(describeError(err))}`);
      if (mayBeOpen && isRotateError(err) && err.code === 'KEEPER_TRANSACTION_OPEN') {
        // Ours applied late, or another run's: the next attempt's read tells, where Keeper shows it. The first such
        // refusal is remembered: until a run's longest has passed, no later run rolls that transaction back.
        contestedAt ??= new Date().toISOString();
        if (sent) rest();
      } else if (sent && !refusedOutright(err)) {
        // A reply lost after Keeper applied the save leaves our transaction open; closing it lets the retry in.
        try {
          await ctx.vault.rollback(uid);
        } catch (rollbackError) {
          if (!definite(rollbackError)) {
            mayBeOpen ??= record;
            break;
          }
          // Nothing open (yet): the unanswered save may still land.
          mayBeOpen ??= record;
        }
        rest();
      } else if (sent) rest();
      if (attempt < SAVE_ATTEMPTS) await sleep(Math.min(SAVE_RETRY_MS * 2 ** (attempt - 1), ctx.deadline.remaining()));
    }
  }
  throw last;
}

/**
 * A save of ours got no reply and a later one was refused because a transaction was open: our save, applied
 * late, or another gateway's rotation between its save and its finalize (a gateway pool). Rolling back the other
 * gateway's transaction would undo its lock or its save while it still acts on them. True (leave it open) until
 * the open transaction is provably ours (Keeper's immediate model shows our updates) or a run's longest (this
 * gateway's deadline and hard-stop grace, taken as every gateway's) has passed since the refusal: any run that
 * held a transaction then has ended, so one still open is ours, or left by a run that died (whose own gateway
 * would roll it back too).
 */
async function leftOpen(ctx: RunContext, entry: JournalEntry, updates: Array<[FieldRef, string]>): Promise<boolean> {
  const since = Date.parse(entry.contestedAt ?? '');
  const until = since + ctx.deadline.totalMs + HARD_STOP_GRACE_MS;
  if (!Number.isFinite(since) || Date.now() >= until) return false;
  if (holdsAll((await fetchOne(ctx, entry.recordUid)).data, updates)) return false;
  ctx.log.warn(
    'recover',
    `record ${entry.recordUid} had a rotation transaction open at ${entry.contestedAt} (this gateway's save applied late, or another gateway's rotation); Keeper does not say whose, so it is not rolled back before ${new Date(until).toISOString()}`,
  );
  return true;
}

/** The stop for a sealed secret that cannot be settled while a transaction that may be another gateway's is open. */
function contestedPending(entry: JournalEntry, why: string): RotateError {
  return new RotateError(
    'RECOVERY_PENDING',
    `${why}, and a rotation transaction that may be another gateway's was open on record ${entry.recordUid} at ${entry.contestedAt}: the secret stays sealed on this gateway and the next run checks again`,
  );
}

/**
 * Stores a sealed secret an earlier run left (its target already switched to it), for any record: close the
 * transaction that run may have left, then save and finalize, but only while the record still holds what it
 * held before that run replaced the credential. If it does not, someone saved another secret since (by hand,
 * or another gateway's rotation), and storing ours blindly could overwrite the one that works. For another
 * record's sealed secret that is left to that record's own runs ('stale'). For this record, `check` (a sign-in
 * with record data, the target's verifyRecord) decides every time, since the sealed secret itself may have been
 * replaced since: it signs in, so it is stored; it does not and the record's does, so it is dropped ('dropped');
 * neither: RECOVERY_STALE (exit 5); no answer: RECOVERY_PENDING, kept. Returns 'stored', or 'held' when the
 * record already had it.
 */
export async function storeSealed(
  m: Pick<Machine, 'ctx'>,
  entry: JournalEntry,
  own: boolean,
  check?: (data: VaultRecord['data']) => Promise<VerifyResult>,
): Promise<'stored' | 'held' | 'stale' | 'dropped'> {
  const { ctx } = m;
  const { journal, vault, log } = ctx;
  const updates = journal.unseal(entry);
  const contested = entry.txn === 'save' && (await leftOpen(ctx, entry, updates));
  // Another record's: its own runs report it (exit 5); this record's run must not stop on it for the window.
  if (contested && !own) return 'stale';
  if (entry.txn && !contested) {
    try {
      await vault.rollback(entry.recordUid);
    } catch (err) {
      if (!definite(err)) throw err;
    }
    const { txn: _txn, contestedAt: _contested, ...rest } = entry;
    entry = journal.write(rest);
  }
  const current = await fetchOne(ctx, entry.recordUid);
  if (holdsAll(current.data, updates)) {
    journal.clear(entry.recordUid);
    return 'held';
  }
  const now = journal.digest(entry.recordUid, updates.map(([ref]) => readText(current.data, ref.label)));
  const changed = `record ${entry.recordUid} changed since an earlier ${entry.target} run replaced the credential and sealed the new secret (someone saved another secret, by hand or by another gateway's rotation)`;
  const stale = (why: string) =>
    new RotateError('RECOVERY_STALE', `${why}; check that the record's secret signs in, and if not, make a new one in the target's console and save it in the record`);
  if (own && check) {
    // The target says which secret is its own now: the sealed one may have been replaced since (another gateway
    // replaced again), and a digest of the record cannot tell.
    const candidate = cloneData(current.data);
    for (const [ref, value] of updates) writeText(candidate, ref, value);
    let sealed: VerifyResult;
    let record: VerifyResult = { ok: false, reason: 'not asked' };
    try {
      sealed = await check(candidate);
      if (!sealed.ok) record = await check(current.data);
    } catch (err) {
      // No answer either way: decide next time, with the sealed secret still here.
      throw new RotateError('RECOVERY_PENDING', `whether the secret sealed for record ${entry.recordUid} or the record's own signs in could not be checked (${redact(describeError(err))}); the next run checks again`, { cause: err });
    }
    // Throttled is no answer either: a secret the target would not even look at may well be the one that works.
    if (!sealed.ok && (sealed.throttled || (!record.ok && record.throttled))) {
      const why = sealed.throttled ? sealed.reason : !record.ok ? record.reason : '';
      throw new RotateError('RECOVERY_PENDING', `whether the secret sealed for record ${entry.recordUid} or the record's own signs in could not be checked (${why}); the next run checks again`);
    }
    if (!sealed.ok) {
      // Neither signs in: another gateway's rotation may be between its replace and its finalize right now.
      if (contested && !record.ok) throw contestedPending(entry, `neither the secret an earlier ${entry.target} run sealed for record ${entry.recordUid} (${sealed.reason}) nor the record's own (${record.reason}) signs in`);
      journal.clear(entry.recordUid);
      if (record.ok) {
        log.warn('recover', `the secret an earlier ${entry.target} run sealed for record ${entry.recordUid} no longer signs in (${sealed.reason}) and the record's does, so the sealed one was dropped`);
        return 'dropped';
      }
      throw stale(`neither the secret an earlier ${entry.target} run sealed for record ${entry.recordUid} (${sealed.reason}) nor the record's own (${record.reason}) signs in, so the sealed one was dropped`);
    }
    if (now !== entry.before) log.warn('recover', `${changed}; the sealed secret is the one that signs in, so it is stored`);
  } else if (now !== entry.before) {
    // Another record's run leaves it to that record's own runs, whose exit code is the one its owner reads.
    if (!own) return 'stale';
    if (contested) throw contestedPending(entry, changed);
    journal.clear(entry.recordUid);
    throw stale(`${changed}; the sealed secret was dropped rather than stored over it`);
  }
  // The entry has no txn here (closed above) unless it is contested: then a refusal keeps it in the journal.
  try {
    await saveWithRetries({ ctx } as Machine, entry.recordUid, updates, entry);
  } catch (err) {
    if (contested && isRotateError(err) && err.code === 'KEEPER_TRANSACTION_OPEN') throw contestedPending(entry, `Keeper refused to store the secret an earlier ${entry.target} run sealed for record ${entry.recordUid}`);
    throw err;
  }
  await vault.finalize(entry.recordUid);
  journal.clear(entry.recordUid);
  return 'stored';
}

/**
 * An in-place replacement that did not verify: did another run (another gateway) replace the credential after
 * this one and save its secret in the record before this run's save? `before` is the record as this run's save
 * found it (its committed data, whatever the transaction model). When that data holds a secret other than the
 * one this run started from (which this run replaced, so it cannot be the one Keeper should keep) and it signs
 * in, this run's save is rolled back and the journal dropped (our secret is dead: nothing to store later), and
 * the error thrown says the record keeps a working secret. When that secret cannot be checked (no answer, or
 * throttled) and ours is sealed, throws RECOVERY_PENDING with the save left open. Otherwise returns, and the
 * caller finalizes.
 */
async function yieldToNewer(m: Machine, user: VaultRecord, before: VaultRecord, created: NewCredential, reason: string, sealed: boolean): Promise<void> {
  const { ctx, session } = m;
  const { vault, log, journal } = ctx;
  if (!session.verifyRecord) return;
  const changed = created.recordUpdates.some(([ref]) => readText(before.data, ref.label) !== readText(user.data, ref.label));
  const ours = created.recordUpdates.every(([ref, value]) => readText(before.data, ref.label) === value);
  if (!changed || ours) return;
  // No answer is not "it does not sign in": finalizing now could bury the other run's working secret under our
  // dead one. With our secret sealed, the save stays open and the next run's recovery, which checks both before
  // it keeps one, decides. Unsealed, there is nothing for a later run to store, and ours is finalized as before.
  const unknown = (why: string): void => {
    log.warn('verify', `could not check the secret record ${user.uid} held before this run's save: ${why}`);
    if (!sealed) return;
    throw new RotateError(
      'RECOVERY_PENDING',
      `the new secret for ${created.id} did not authenticate (${reason}), and the secret record ${user.uid} held before this run's save, which another run saved, could not be checked (${why}): this run's save stays open and its secret sealed on this gateway, and the next run keeps whichever secret signs in`,
    );
  };
  let result: VerifyResult;
  try {
    result = await session.verifyRecord(before.data);
  } catch (err) {
    return unknown(redact(describeError(err)));
  }
  if (!result.ok) {
    if (result.throttled) return unknown(result.reason);
    log.info('verify', `the secret record ${user.uid} held before this run's save does not sign in either (${result.reason})`);
    return;
  }
  log.warn('verify', `another run replaced the credential of ${created.id} after this run did and saved its secret in record ${user.uid}; that secret signs in and this run's does not, so this run's save is rolled back`);
  try {
    // No sealed secret any more (ours is dead): if this run dies now, the next one only rolls the save back.
    journal.write({ ...m.step, phase: 'saving', txn: 'save' });
  } catch (err) {
    log.warn('save', `could not update the journal: ${redact(describeError(err))}`);
  }
  const superseded = `another run replaced the secret of ${created.id} after this run did and saved it in record ${user.uid}, so this run's secret no longer signs in (${reason})`;
  try {
    await vault.rollback(user.uid);
  } catch (err) {
    if (!definite(err)) {
      throw new RotateError(
        'ROTATION_SUPERSEDED',
        `${superseded}; rolling back this run's save failed (${redact(describeError(err))}): the record's open transaction holds this run's dead secret, and the next run on this gateway rolls it back`,
        { cause: err, exitCode: ExitCode.NeedsAttention },
      );
    }
  }
  journal.clear(user.uid);
  log.info('save', `rolled back the update of record ${user.uid}`);
  throw new RotateError('ROTATION_SUPERSEDED', `${superseded}; this run's save was rolled back and the record keeps the other run's secret, which signs in`);
}

async function verifyUntil(m: Machine, timeoutMs: number, created: NewCredential): Promise<{ ok: true; attempts: number } | { ok: false; reason: string }> {
  const { deadline, log } = m.ctx;
  const started = Date.now();
  // The deadline keeps room for undoing: a verification that ran to the very end would leave the new credential
  // behind and the save open, for the next run to clean up (exit 5 instead of 3).
  const giveUpAt = started + verifyWindowMs(timeoutMs, deadline);
  let throttled = 0;
  for (let attempt = 1; ; attempt++) {
    let result;
    try {
      result = await m.session.verify(created);
    } catch (err) {
      return { ok: false, reason: redact(describeError(err)) };
    }
    if (result.ok) return { ok: true, attempts: attempt };
    if (result.throttled) throttled++;
    if (result.throttled && throttled === 1) log.info('verify', `throttled (${result.reason}); waiting as the service asks, for up to ${Math.round(timeoutMs / 1000)} s in all`);
    else if (attempt === 1) log.info('verify', `not accepted yet (${result.reason}); retrying for up to ${Math.round(timeoutMs / 1000)} s`);
    const tried = `${attempt} attempt(s)${throttled ? `, ${throttled} throttled` : ''}`;
    if (attempt >= VERIFY_POLICY.maxAttempts) return { ok: false, reason: `${result.reason} (still after ${tried}, the most one verification makes)` };
    // A throttled reply's Retry-After is the floor: trying sooner only earns another refusal. The last try comes
    // at the timeout rather than a whole gap before it.
    const remaining = giveUpAt - Date.now();
    if (remaining <= 0 || (result.retryAfterMs ?? 0) > remaining) return { ok: false, reason: `${result.reason} (still after ${tried})` };
    await sleep(Math.min(remaining, Math.max(verifyGapMs(attempt, Date.now() - started), result.retryAfterMs ?? 0)));
  }
}
