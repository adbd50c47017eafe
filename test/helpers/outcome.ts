// A run that fails after reading the record may write its outcome into it (src/pipeline/outcome.ts): what the
// tests compare to say "the record did not change" leaves those fields out.
import type { RecordData } from '../../src/keeper/record-data.js';
import { OUTCOME_FIELDS } from '../../src/pipeline/outcome.js';

const LABELS = new Set<string>(Object.values(OUTCOME_FIELDS).map((f) => f.label));

export function withoutOutcome(data: RecordData): RecordData {
  return { ...data, custom: (data.custom ?? []).filter((f) => !LABELS.has(String(f.label ?? ''))) };
}

/** Whether the outcome fields changed between two readings of a record. */
export function outcomeWritten(before: RecordData, after: RecordData): boolean {
  const pick = (d: RecordData) => JSON.stringify((d.custom ?? []).filter((f) => LABELS.has(String(f.label ?? ''))));
  return pick(before) !== pick(after);
}
