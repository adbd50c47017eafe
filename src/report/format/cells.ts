// How each value of a row reads in the table, CSV and HTML formats: the same words everywhere. Values are
// returned raw; each format escapes them for its own output (terminal, CSV, HTML).
import type { ScriptName } from '../../targets/record-shape.js';
import type { ReportRow } from '../model.js';

export const TARGET_SHORT: Record<ScriptName, string> = { 'aws-iam-access-key': 'aws', 'aws-ecr-pull-secret': 'ecr', 'azure-app-secret': 'azure', 'wiz-service-account': 'wiz' };

export const day = (iso: string | undefined): string => (iso ? iso.slice(0, 10) : '');

export function targetCell(row: ReportRow): string {
  return row.target ? TARGET_SHORT[row.target] : 'mixed';
}

/** "exit 3 TARGET_THROTTLED 2026-01-02", "exit 0 2026-01-02", or empty when the record holds no outcome. */
export function lastRunCell(row: ReportRow): string {
  const l = row.lastRotation;
  if (!l) return '';
  return [l.exit === undefined ? '' : `exit ${l.exit}`, l.error ?? '', day(l.at)].filter(Boolean).join(' ');
}

export function checkCell(row: ReportRow): string {
  const c = row.check;
  if (!c) return '';
  return c.state === 'unchecked' ? `unchecked (${c.code ?? 'error'})` : c.state;
}

export function expiresCell(row: ReportRow): string {
  return row.expires ? `${day(row.expires)}${row.expiresFrom === 'max-age' ? '*' : ''}` : '';
}

export const numberCell = (n: number | undefined): string => (n === undefined ? '' : String(n));

/** Cuts a value to `max` characters, marking the cut. */
export function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
