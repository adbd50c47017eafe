// The CSV format (RFC 4180, a header row, CRLF line ends), for spreadsheets. Values from records are made
// inert for them: control and bidi characters become visible escapes, and a text cell that starts with = + - @
// or a tab gets a leading apostrophe, so a spreadsheet shows it instead of running it as a formula.
import { escapeControls } from '../../log.js';
import type { ReportRow } from '../model.js';
import { TARGET_SHORT } from './cells.js';
import type { RenderInput } from './render.js';

type Cell = string | number | undefined;

const COLUMNS: Array<[string, (r: ReportRow) => Cell]> = [
  ['record_uid', (r) => r.recordUid],
  ['title', (r) => r.title],
  ['target', (r) => r.target ?? 'mixed'],
  ['target_short', (r) => (r.target ? TARGET_SHORT[r.target] : 'mixed')],
  ['principal', (r) => r.principal],
  ['credential_id', (r) => r.credentialId],
  ['created', (r) => r.created],
  ['expires', (r) => r.expires],
  ['expires_from', (r) => r.expiresFrom],
  ['age_days', (r) => r.ageDays],
  ['days_to_expiry', (r) => r.daysToExpiry],
  ['status', (r) => r.status],
  ['last_rotation_at', (r) => r.lastRotation?.at],
  ['last_rotation_exit', (r) => r.lastRotation?.exit],
  ['last_rotation_error', (r) => r.lastRotation?.error],
  ['last_rotation_message', (r) => r.lastRotation?.message],
  ['check', (r) => r.check?.state],
  ['check_findings', (r) => r.check?.findings.join('; ')],
  ['problems', (r) => r.problems.map((p) => `${p.status}: ${p.text}`).join('; ')],
];

export function csvCell(value: Cell): string {
  if (value === undefined) return '';
  if (typeof value === 'number') return String(value);
  let text = escapeControls(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\s]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function renderCsv({ rows }: RenderInput): string {
  const lines = [COLUMNS.map(([name]) => name).join(','), ...rows.map((r) => COLUMNS.map(([, get]) => csvCell(get(r))).join(','))];
  return lines.join('\r\n') + '\r\n';
}
