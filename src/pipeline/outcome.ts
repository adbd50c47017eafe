// Each run's outcome, written into the PAM User record (issue 18), so the vault and `report` show the last result
// without the gateway's logs. Four text fields, never a secret:
//   last_rotation_at       when the run ended (ISO-8601 UTC; for a success, when the rotation was saved)
//   last_rotation_exit     the exit code, 0 to 5
//   last_rotation_error    the error code (DELIVERY_INCOMPLETE, ...), empty on success
//   last_rotation_message  one line: what was rotated to, or the error message, cut to 300 characters
//
// When they are written, and when not (each a promise the exit codes already make, kept):
// - A rotation carries them in its own save (the rotation transaction): no request of its own.
// - A run that ends otherwise after the save (exit 4) or fails (exit 1, 3, 5) writes them afterwards with a plain
//   update of the record as it is then, best effort: one read and one write, only when no transaction of this
//   run's may be open on the record (Keeper refuses every write then, and the journal's transaction must be the
//   next run's to close), and only with time left. A write that fails is logged and changes no exit code.
// - Exit 2 writes nothing: it promises that nothing was written. A dry run, a skipped run and `--doctor` neither.
// The plain write moves the record's revision, so another gateway's run reading the record at that moment is
// refused at its save and undoes its work (exit 3); nothing is lost, and it is rare: two runs on one record.
import type { Deadline } from '../deadline.js';
import { ExitCode, describe as describeError } from '../errors.js';
import { escapeControls, type Logger } from '../log.js';
import { cloneData, writeText, type FieldRef } from '../keeper/record.js';
import type { KeeperVault } from '../keeper/vault.js';
import type { RecordData } from '../keeper/record-data.js';
import { redact } from '../secret.js';

export const OUTCOME_FIELDS = {
  at: { label: 'last_rotation_at', kind: 'text' },
  exit: { label: 'last_rotation_exit', kind: 'text' },
  error: { label: 'last_rotation_error', kind: 'text' },
  message: { label: 'last_rotation_message', kind: 'text' },
} as const satisfies Record<string, FieldRef>;

const MAX_MESSAGE = 300;
const MIN_LEFT_MS = 5_000;

export interface Outcome {
  exit: ExitCode;
  error: string;
  message: string;
}

const LABELS: ReadonlySet<string> = new Set(Object.values(OUTCOME_FIELDS).map((f) => f.label));

/**
 * Whether two readings of a record differ in nothing but the outcome fields: another run's outcome write moved the
 * revision, and nothing a rotation reads or writes changed, so a save refused for that revision may be made again
 * on the fresh read. Without this, a run that failed before touching anything would, by recording its failure,
 * make a concurrent run on the same record fail too.
 */
export function sameBesidesOutcome(a: RecordData, b: RecordData): boolean {
  const strip = (d: RecordData) => JSON.stringify({ ...d, custom: (d.custom ?? []).filter((f) => !LABELS.has(String(f.label ?? ''))) });
  return strip(a) === strip(b);
}

/** The field updates for an outcome: scrubbed, one line, bounded. */
export function outcomeUpdates(outcome: Outcome, at = new Date()): Array<[FieldRef, string]> {
  let message = escapeControls(redact(outcome.message)).replace(/\s+/g, ' ').trim();
  if (message.length > MAX_MESSAGE) message = `${message.slice(0, MAX_MESSAGE - 1)}…`;
  return [
    [OUTCOME_FIELDS.at, at.toISOString().replace(/\.\d{3}Z$/, 'Z')],
    [OUTCOME_FIELDS.exit, String(outcome.exit)],
    [OUTCOME_FIELDS.error, outcome.error],
    [OUTCOME_FIELDS.message, message],
  ];
}

/** Best effort, after the run's own work: see the header for when it is called. Never throws. */
export async function writeOutcome(ctx: { vault: KeeperVault; log: Logger; deadline: Deadline }, uid: string, outcome: Outcome): Promise<void> {
  const { vault, log, deadline } = ctx;
  // Two requests, each cut short by the deadline: with less than this left the run's own exit matters more.
  if (deadline.remaining() < MIN_LEFT_MS) return;
  try {
    const record = (await vault.fetch([uid])).get(uid);
    if (!record) return;
    const data = cloneData(record.data);
    for (const [ref, value] of outcomeUpdates(outcome)) writeText(data, ref, value);
    await vault.savePlain(record, data);
  } catch (err) {
    log.warn('outcome', `could not record this run's outcome in record ${uid}: ${redact(describeError(err))}`);
  }
}
