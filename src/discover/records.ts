// A discovered credential as a record: the target's CSV template row (src/templates) with the discovered values
// in place of the placeholders, so a CSV for Commander's import and a record created through KSM are the same
// record; the record data is what Commander's importer makes of that row (parseCommanderCsv, toRecordData).
import type { RecordData } from '../keeper/record-data.js';
import { readText } from '../keeper/record.js';
import type { VaultRecord } from '../keeper/vault.js';
import { DEFAULT_SHARED_FOLDER, FIXED_COLUMNS, csvLine, parseCommanderCsv, templateCells, toRecordData } from '../templates/csv.js';
import { TEMPLATES } from '../templates/targets.js';
import { scriptsFor } from '../targets/record-shape.js';
import type { Candidate, DiscoverTargetName } from './candidate.js';

const LOGIN = FIXED_COLUMNS.indexOf('login');
/** The templates' placeholder for what the first rotation writes: the only value discover puts in a secret field. */
export const SET_BY_ROTATION = 'set-by-rotation';
const NOTES = FIXED_COLUMNS.indexOf('notes');

/** Commander strips cells and reads a line break as the end of the row: keep one line of printable text. */
const oneLine = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, ' ').trim();

export function candidateCells(c: Candidate, sharedFolder = DEFAULT_SHARED_FOLDER): string[] {
  const spec = TEMPLATES.find((t) => t.target.name === c.target);
  if (!spec) throw new Error(`no template for ${c.target}`);
  const cells = templateCells(spec.target, { title: oneLine(c.title), sharedFolder });
  if (c.login !== undefined && spec.target.fields.some((f) => f.label === 'login')) cells[LOGIN] = oneLine(c.login);
  cells[NOTES] = oneLine(c.notes);
  const pending = new Map(Object.entries(c.values));
  for (let i = FIXED_COLUMNS.length; i + 1 < cells.length; i += 2) {
    const label = cells[i]!.replace(/^\$secret:/, '');
    const value = pending.get(label);
    if (value === undefined) continue;
    if (cells[i]!.startsWith('$secret:') && value !== SET_BY_ROTATION) throw new Error(`${c.target}: discover never fills a secret field (${label})`);
    cells[i + 1] = oneLine(value);
    pending.delete(label);
  }
  if (pending.size > 0) throw new Error(`${c.target}: the template has no field ${[...pending.keys()].join(', ')}`);
  return cells;
}

export const candidateCsv = (c: Candidate, sharedFolder?: string): string => csvLine(candidateCells(c, sharedFolder));

/** The record Commander would import from the candidate's row. */
export function candidateRecord(c: Candidate): RecordData {
  const parsed = parseCommanderCsv(candidateCsv(c) + '\n');
  if (parsed.length !== 1) throw new Error('a candidate is one CSV row');
  return toRecordData(parsed[0]!);
}

/**
 * The records already in the vault for a target, by what identifies their credential (lower-cased where the
 * service compares without case): the IAM user name, the application's object ID (or the client ID a record may
 * hold instead), the Wiz client ID. Only PAM User records that carry that target's fields count.
 */
export function existingIds(records: readonly VaultRecord[], target: DiscoverTargetName): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of records) {
    if (r.type !== 'pamUser' || !scriptsFor(r.data).has(target)) continue;
    const id =
      target === 'aws-iam-access-key'
        ? readText(r.data, 'login')?.toLowerCase()
        : target === 'azure-app-secret'
          ? readText(r.data, 'application_object_id')?.toLowerCase()
          : readText(r.data, 'login');
    if (id && !out.has(id)) out.set(id, r.uid);
  }
  return out;
}
