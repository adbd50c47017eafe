// The decrypted JSON of a Keeper record (v3), as the vault stores it and as KSM returns it in `data`.
// Every field value is an array, even for single values; a "Hidden Field" is type `secret`.

export interface RecordField {
  type: string;
  label?: string;
  value: unknown[];
  required?: boolean;
  privacyScreen?: boolean;
}

export interface RecordData {
  title: string;
  type: string;
  fields: RecordField[];
  custom?: RecordField[];
  notes?: string;
}
