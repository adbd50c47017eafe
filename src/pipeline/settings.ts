// Optional settings live as custom fields on the PAM User record, so each record can differ and users edit
// them in the vault. Each target declares its settings here once: the parser, the help text, the README and
// the CSV templates all read the same declarations.
import { RotateError } from '../errors.js';
import type { RecordData } from '../keeper/record-data.js';
import { readUnambiguous } from '../keeper/record.js';

interface SettingBase<T> {
  label: string;
  description: string;
  default: T;
}

export type SettingSpec =
  | (SettingBase<number> & { kind: 'integer'; min: number; max: number })
  | (SettingBase<boolean> & { kind: 'boolean' })
  | (SettingBase<string | undefined> & {
      kind: 'https-url';
      /**
       * The hosts a record may name. Whoever can edit a PAM User record is not always trusted with the PAM
       * configuration's admin secret, and a token request to a host of their choosing would hand it over; so a
       * record may only pick among the service's own clouds. The environment (the gateway host's own admin)
       * may name any host, which is how the sandbox and private endpoints are reached.
       */
      hosts: RegExp;
      hostHint: string;
    })
  | (SettingBase<string | undefined> & { kind: 'pattern'; pattern: RegExp; hint: string })
  | (SettingBase<string> & { kind: 'choice'; choices: readonly string[] });

export type SettingValue<S extends SettingSpec> = S extends { kind: 'choice'; choices: readonly (infer C)[] } ? C : S['default'];

const TRUE = new Set(['true', 'yes', '1', 'on']);
const FALSE = new Set(['false', 'no', '0', 'off']);

export function parseSetting<S extends SettingSpec>(spec: S, data: RecordData): SettingValue<S> {
  const raw = readUnambiguous(data, spec.label, 'SETTING_INVALID');
  return (raw === undefined ? spec.default : parseValue(spec, raw)) as SettingValue<S>;
}

function parseValue(spec: SettingSpec, raw: string): string | number | boolean | undefined {
  switch (spec.kind) {
    case 'integer': {
      const n = /^-?\d+$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isSafeInteger(n) || n < spec.min || n > spec.max) {
        throw new RotateError('SETTING_INVALID', `setting "${spec.label}" must be a whole number from ${spec.min} to ${spec.max}`);
      }
      return n;
    }
    case 'boolean': {
      const v = raw.toLowerCase();
      if (TRUE.has(v)) return true;
      if (FALSE.has(v)) return false;
      throw new RotateError('SETTING_INVALID', `setting "${spec.label}" must be true or false`);
    }
    case 'https-url': {
      // The URL parser drops tabs and line breaks silently: the host used would not be the one the vault shows.
      if (/[\u0000-\u001f\u007f]/.test(raw)) throw new RotateError('SETTING_INVALID', `setting "${spec.label}" contains control characters`);
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw new RotateError('SETTING_INVALID', `setting "${spec.label}" must be an https:// URL`);
      }
      if (url.protocol !== 'https:' || url.username || url.password || url.search || url.hash) {
        throw new RotateError('SETTING_INVALID', `setting "${spec.label}" must be an https:// URL without credentials, query or fragment`);
      }
      if (!spec.hosts.test(url.hostname)) {
        throw new RotateError('SETTING_INVALID', `setting "${spec.label}" must name ${spec.hostHint}; other hosts can only be set in the gateway's environment`);
      }
      return url.origin + url.pathname.replace(/\/+$/, '');
    }
    case 'pattern':
      if (!spec.pattern.test(raw)) throw new RotateError('SETTING_INVALID', `setting "${spec.label}" must be ${spec.hint}`);
      return raw;
    case 'choice': {
      const v = raw.toLowerCase();
      if (!spec.choices.includes(v)) throw new RotateError('SETTING_INVALID', `setting "${spec.label}" must be one of ${spec.choices.join(', ')}`);
      return v;
    }
  }
}

/** Parses every declared setting; the first invalid one throws SETTING_INVALID. */
export function parseSettings<M extends Record<string, SettingSpec>>(specs: M, data: RecordData): { [K in keyof M]: SettingValue<M[K]> } {
  const out = {} as { [K in keyof M]: SettingValue<M[K]> };
  for (const key of Object.keys(specs) as Array<keyof M>) out[key] = parseSetting(specs[key]!, data);
  return out;
}
