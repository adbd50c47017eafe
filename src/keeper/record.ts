// Typed access to a Keeper record's fields and custom fields by label. The JS SDK has no custom-field helpers,
// and Keeper's Python scripts break when a field is missing, so reads here say which field is missing and
// writes create the field with the right type (`secret` for hidden values, `text` otherwise).
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

/** The field's first value as a trimmed string, or undefined when the field is absent or blank. */
export function readText(data: RecordData, label: string): string | undefined {
  const value = findField(data, label)?.value?.[0];
  if (typeof value === 'string') return value.trim() === '' ? undefined : value.trim();
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
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
