// CSV record templates in Keeper Commander's import format, built from the same field and setting declarations
// the scripts read, and the inverse: a parser that reads a row the way Commander's importer does
// (keepercommander/importer/csv/csv.py, then _construct_record_v3_data in imp_exp.py), so tests can prove that
// what the template makes is a record the script rotates.
//
// The format: no header row; columns folder, title, login, password, url, notes, shared folder, then name,value
// pairs. `$type,<recordType>` sets the record type, `$<fieldType>:<label>` gives a field of that type (a Hidden
// Field is `$secret:<label>`), a plain name is a text custom field. Commander strips every cell and drops a pair
// whose name or value is empty, so every pair here carries a placeholder value.
import type { RecordData, RecordField } from '../keeper/record-data.js';
import type { SettingSpec } from '../pipeline/settings.js';
import type { RecordFieldSpec, Target } from '../pipeline/target.js';

/** The seven fixed columns, in order; the pairs follow. */
export const FIXED_COLUMNS = ['folder', 'title', 'login', 'password', 'url', 'notes', 'shared_folder'] as const;

export const RECORD_TYPE = 'pamUser';

/**
 * The password the gateway needs on a PAM User and never uses with these scripts (Keeper's guides: "a dummy
 * value"); also the login of a target that does not declare one (the Azure app has no user name).
 */
export const UNUSED_VALUE = 'not-used-by-this-script';

/** The shared folder the template puts the record in (`#edit`: users the folder is shared with may edit it). */
export const DEFAULT_SHARED_FOLDER = 'keeper-rotate#edit';

/** The fields that make the gateway skip its own rotation and run only the attached scripts (Keeper's guides list both). */
export const SCRIPT_ONLY_FIELDS: ReadonlyArray<{ label: string; value: string }> = [
  { label: 'NOOP', value: 'True' },
  { label: 'Private Key Type', value: 'rsa-ssh' },
];

/** Commander's name for a one-time-code column (it becomes a `oneTimeCode` field). */
const TWO_FACTOR_CODE = 'TFC:Keeper';

export interface TemplateOptions {
  title: string;
  /** Folder path inside the shared folder (`A\B` nests); default none. */
  folder?: string;
  /** Shared folder, with optional `#edit` / `#reshare`; default DEFAULT_SHARED_FOLDER. */
  sharedFolder?: string;
}

/**
 * A setting's default as the text the script's setting parser reads back to the same value, or undefined when
 * the setting has no default. Those settings are left out of the template rather than given a placeholder: any
 * placeholder would be a value the script must reject (SETTING_INVALID, e.g. "change-me" is not an https:// URL
 * or an AWS region), an empty value is dropped by Commander anyway, and leaving the field out is exactly how the
 * script is told "use the environment or the built-in default". The README lists them for users who need one.
 */
export function settingDefaultText(spec: SettingSpec): string | undefined {
  switch (spec.kind) {
    case 'integer':
      return String(spec.default);
    case 'boolean':
      return spec.default ? 'true' : 'false';
    case 'choice':
      return spec.default;
    case 'https-url':
    case 'pattern':
      return spec.default;
  }
}

function pairName(field: { label: string; kind: RecordFieldSpec['kind'] }): string {
  if (field.label.startsWith('$') || field.label === TWO_FACTOR_CODE || field.label.trim() !== field.label || field.label === '') {
    throw new Error(`field label "${field.label}" cannot be written as a Commander CSV column name`);
  }
  return field.kind === 'secret' ? `$secret:${field.label}` : field.label;
}

function checkValue(label: string, value: string): string {
  // Commander strips cells and drops empty pairs: such a value would silently not arrive.
  if (value.trim() === '' || value.trim() !== value) throw new Error(`the template value of "${label}" must be non-empty text without surrounding spaces`);
  return value;
}

/** The cells of a target's template row, before CSV quoting. */
export function templateCells(target: Pick<Target, 'name' | 'fields' | 'settings'>, options: TemplateOptions): string[] {
  let login: string | undefined;
  let password: string | undefined;
  const pairs: Array<[string, string]> = [['$type', RECORD_TYPE]];
  const labels = new Set<string>();
  const claim = (label: string) => {
    if (labels.has(label)) throw new Error(`${target.name}: the label "${label}" is declared twice`);
    labels.add(label);
  };
  for (const field of target.fields) {
    claim(field.label);
    if (field.standard) {
      if (field.label === 'login') login = checkValue(field.label, field.example);
      else if (field.label === 'password') password = checkValue(field.label, field.example);
      else throw new Error(`${target.name}: standard field "${field.label}" has no column in a Commander CSV`);
      continue;
    }
    pairs.push([pairName(field), checkValue(field.label, field.example)]);
  }
  for (const { label, value } of SCRIPT_ONLY_FIELDS) {
    claim(label);
    pairs.push([label, value]);
  }
  for (const spec of Object.values(target.settings)) {
    claim(spec.label);
    const value = settingDefaultText(spec);
    if (value !== undefined) pairs.push([pairName({ label: spec.label, kind: 'text' }), checkValue(spec.label, value)]);
  }
  return [
    options.folder ?? '',
    checkValue('title', options.title),
    login ?? UNUSED_VALUE,
    password ?? UNUSED_VALUE,
    '',
    '',
    options.sharedFolder ?? DEFAULT_SHARED_FOLDER,
    ...pairs.flat(),
  ];
}

/** One CSV cell, quoted per RFC 4180 when it holds a comma, a quote or a line break. */
export function csvCell(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function csvLine(cells: readonly string[]): string {
  return cells.map(csvCell).join(',');
}

/** The whole template file: one row, ending with a newline. */
export function templateCsv(target: Pick<Target, 'name' | 'fields' | 'settings'>, options: TemplateOptions): string {
  return csvLine(templateCells(target, options)) + '\n';
}

// ---------------------------------------------------------------------------------------------------------------
// Reading, the way Commander does.

/**
 * Splits CSV text into rows the way Python's csv.reader (excel dialect, strict off) does on a file opened in
 * text mode: a BOM is dropped (utf-8-sig), CRLF and CR become LF even inside quotes (universal newlines), a quote
 * opens a quoted cell only at the start of a cell, `""` inside one is a quote, text after a closing quote is kept,
 * a quote in the middle of an unquoted cell is literal, and an unterminated quote runs to the end of the file.
 */
export function parseCsvRows(text: string): string[][] {
  const src = text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let state: 'start' | 'unquoted' | 'quoted' | 'quote-in-quoted' = 'start';
  let rowStarted = false;
  const endCell = () => {
    row.push(cell);
    cell = '';
    state = 'start';
  };
  const endRow = () => {
    if (rowStarted) endCell();
    rows.push(row);
    row = [];
    rowStarted = false;
    state = 'start';
  };
  for (const ch of src) {
    switch (state) {
      case 'start':
        if (ch === '\n') {
          endRow();
        } else if (ch === '"') {
          rowStarted = true;
          state = 'quoted';
        } else if (ch === ',') {
          rowStarted = true;
          endCell();
        } else {
          rowStarted = true;
          cell += ch;
          state = 'unquoted';
        }
        break;
      case 'unquoted':
        if (ch === ',') endCell();
        else if (ch === '\n') endRow();
        else cell += ch;
        break;
      case 'quoted':
        if (ch === '"') state = 'quote-in-quoted';
        else cell += ch;
        break;
      case 'quote-in-quoted':
        if (ch === '"') {
          cell += '"';
          state = 'quoted';
        } else if (ch === ',') {
          endCell();
        } else if (ch === '\n') {
          endRow();
        } else {
          cell += ch;
          state = 'unquoted';
        }
        break;
    }
  }
  if (rowStarted) endRow();
  // Python yields [] for a blank line; Commander skips it like any row shorter than six cells.
  return rows;
}

export interface CommanderField {
  /** The field type: `text` for a plain name, else what `$<type>:` said (`secret` for a Hidden Field). */
  type: string;
  label: string;
  value: string;
}

/** A record as Commander's CSV importer reads it from one row. */
export interface CommanderRecord {
  /** Folder path inside the shared folder (column 1). */
  folder: string;
  /** Shared folder name, without the `#edit` / `#reshare` flags (column 7). */
  sharedFolder: string;
  canEdit: boolean;
  canShare: boolean;
  title: string;
  login: string;
  password: string;
  url: string;
  notes: string;
  /** From `$type`; undefined means Commander would make a legacy (v2) record. */
  type: string | undefined;
  /** From `$record_uid`. */
  uid: string | undefined;
  custom: CommanderField[];
}

/** Reads every record in CSV text the way `import --format csv` does. Rows with fewer than six cells are skipped. */
export function parseCommanderCsv(text: string): CommanderRecord[] {
  const records: CommanderRecord[] = [];
  for (const row of parseCsvRows(text)) {
    if (row.length < 6) continue;
    const cell = (i: number) => (row[i] ?? '').trim();
    let sharedFolder = cell(6);
    let canEdit = false;
    let canShare = false;
    for (let found = true; found; ) {
      found = false;
      for (const flag of ['reshare', 'edit'] as const) {
        if (sharedFolder.endsWith(`#${flag}`)) {
          found = true;
          if (flag === 'reshare') canShare = true;
          else canEdit = true;
          sharedFolder = sharedFolder.slice(0, -(flag.length + 1));
        }
      }
    }
    const record: CommanderRecord = {
      folder: cell(0),
      sharedFolder,
      canEdit,
      canShare,
      title: cell(1),
      login: cell(2),
      password: cell(3),
      url: cell(4),
      notes: cell(5),
      type: undefined,
      uid: undefined,
      custom: [],
    };
    // Pairs start at column 8; a name left without a value at the end of the row is ignored.
    for (let i = 7; i + 1 < row.length; i += 2) {
      const key = cell(i);
      const value = cell(i + 1);
      if (!key || !value) continue;
      if (key === '$record_uid') record.uid = value;
      else if (key === '$type') record.type = value;
      else if (key === TWO_FACTOR_CODE) record.custom.push({ type: 'oneTimeCode', label: '', value });
      else if (key.startsWith('$')) {
        const rest = key.slice(1);
        const colon = rest.indexOf(':');
        const type = colon < 0 ? rest : rest.slice(0, colon);
        record.custom.push({ type: type || 'text', label: colon < 0 ? '' : rest.slice(colon + 1), value });
      } else {
        record.custom.push({ type: 'text', label: key, value });
      }
    }
    records.push(record);
  }
  return records;
}

/**
 * The record data Commander creates from a parsed row of a typed record: login and password go into the PAM
 * User's standard `login` and `password` fields, a website address with no schema field into a custom `url`,
 * and every pair into a custom field with its type and label. Values stay text (the templates use only text
 * and secret fields; Commander would parse structured types such as `$name:` further). The other, empty
 * fields of the PAM User schema (rotationScripts, privatePEMKey, ...) are left out: no script reads them.
 */
export function toRecordData(parsed: CommanderRecord): RecordData {
  if (!parsed.type) throw new Error(`row "${parsed.title}" has no $type: Commander would import it as a legacy (v2) record`);
  if (!parsed.title) throw new Error('Commander refuses a record without a title');
  const custom: RecordField[] = [];
  if (parsed.url) custom.push({ type: 'url', value: [parsed.url] });
  for (const f of parsed.custom) custom.push({ type: f.type, ...(f.label ? { label: f.label } : {}), value: [f.value] });
  return {
    title: parsed.title,
    type: parsed.type,
    fields: [
      { type: 'login', value: parsed.login ? [parsed.login] : [] },
      { type: 'password', value: parsed.password ? [parsed.password] : [] },
    ],
    custom,
    ...(parsed.notes ? { notes: parsed.notes } : {}),
  };
}
