// Reads a record's plain fields for the report, and nothing else. The records the report reads hold secrets
// (client_secret, aws_secret_access_key, the password field): the report never reads a field by a label it does
// not name, and never a field of a type that holds secrets, even under a label it does name. So an editor who
// turns `expires` into a Hidden Field, or names a hidden field `client_secret_id`, gets an empty cell, not a
// secret in a report that is attached to tickets.
import type { RecordData, RecordField } from '../keeper/record-data.js';

/** Field types whose values are shown in a vault as plain text; any other type may hold a secret. */
const PLAIN_TYPES: ReadonlySet<string> = new Set(['text', 'login', 'url', 'email', 'multiline', 'date']);

/** Longest value kept from a field: more is cut, so one editor cannot make a megabyte report. */
export const MAX_VALUE_CHARS = 300;

function matches(field: RecordField, label: string): boolean {
  return field.label === label || (!field.label && field.type === label);
}

/**
 * The first value of the plain field by this label (custom fields first, as the scripts read), trimmed, or
 * undefined when the field is absent, blank, or of a type that is not plain text.
 */
export function readPlain(data: RecordData, label: string): string | undefined {
  const field = (data.custom ?? []).find((f) => matches(f, label)) ?? data.fields.find((f) => matches(f, label));
  if (!field || !PLAIN_TYPES.has(field.type)) return undefined;
  const value = field.value?.[0];
  let text: string | undefined;
  if (typeof value === 'string') text = value.trim();
  else if (typeof value === 'number' && field.type === 'date') text = new Date(value).toISOString();
  else if (typeof value === 'number' || typeof value === 'boolean') text = String(value);
  if (text === undefined || text === '') return undefined;
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS)}…` : text;
}
