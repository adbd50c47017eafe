// Typed access to a Keeper record's fields and custom fields by label. The JS SDK has no custom-field helpers,
// and Keeper's Python scripts break when a field is missing, so reads here say which field is missing and
// writes create the field with the right type (`secret` for hidden values, `text` otherwise).
import { RotateError } from '../errors.js';
import type { RecordData, RecordField } from './record-data.js';

export type FieldKind = 'text' | 'secret';

export interface FieldRef {
  /** Field label; for standard fields without a label, the field type (e.g. `login`). */
  label: string;
  kind: FieldKind;
}

function matches(field: RecordField, label: string): boolean {
  return field.label === label || (!field.label && field.type === label);
}

/** Finds a field by label (custom fields first: that is where our fields live), else by type when unlabelled. */
export function findField(data: RecordData, label: string): RecordField | undefined {
  return data.custom?.find((f) => matches(f, label)) ?? data.fields.find((f) => matches(f, label));
}

function textOf(field: RecordField | undefined): string | undefined {
  const value = field?.value?.[0];
  if (typeof value === 'string') return value.trim() === '' ? undefined : value.trim();
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

/** The field's first value as a trimmed string, or undefined when the field is absent or blank. */
export function readText(data: RecordData, label: string): string | undefined {
  return textOf(findField(data, label));
}

/**
 * readText for a value a run acts on (an ID, a setting), over every field by this label (a custom field and a
 * standard one, or two custom fields): when they hold different values, which one counts would be a guess, so
 * `code` is thrown naming the label. Blank duplicates do not count (`dry_run` blank, then `dry_run` = true, is true).
 */
export function readUnambiguous(data: RecordData, label: string, code: 'RECORD_FIELD_INVALID' | 'SETTING_INVALID'): string | undefined {
  const values = new Set([...(data.custom ?? []), ...data.fields].filter((f) => matches(f, label)).map(textOf));
  values.delete(undefined);
  if (values.size > 1) throw new RotateError(code, `"${label}" is set more than once on the record, with different values; keep one`);
  return values.values().next().value;
}

/** Sets the field's value, creating a custom field of the given kind when the record has none by that label. */
export function writeText(data: RecordData, ref: FieldRef, value: string): void {
  const field = findField(data, ref.label);
  if (field) {
    field.value = [value];
    return;
  }
  (data.custom ??= []).push({ type: ref.kind, label: ref.label, value: [value] });
}

/** A deep copy, so a planned change can be compared with, or rolled back to, what was fetched. */
export function cloneData(data: RecordData): RecordData {
  return structuredClone(data);
}
