// Where a target's admin credentials come from, in the order Keeper's own scripts look:
//   1. a record attached to the script (in `records`, neither the PAM User nor the PAM configuration);
//   2. the PAM configuration's dictionary in `records`;
//   3. the PAM configuration record fetched through KSM (in the same request as the PAM User);
//   4. the PAM User record itself, for targets that can rotate their own credential.
// Each target declares the field names it needs for each place; the first place that has all of them wins.
import { RotateError } from '../errors.js';
import type { GatewayInput, GatewayRecord } from '../gateway/input.js';
import { Secret } from '../secret.js';
import { readText } from './record.js';
import type { VaultRecord } from './vault.js';

export interface AdminFieldNames<K extends string, S extends K = never> {
  /** Field labels on an attached Rotation Credential record, e.g. `{ clientId: 'application_client_id' }`. */
  attached: Record<K, string>;
  /** Keys in the PAM configuration (the dictionary in `records`, and the record's field labels or types). */
  pamConfiguration: Record<K, string>;
  /** Field labels on the PAM User record when it rotates itself; omit for targets that cannot. */
  self?: Record<K, string>;
  /** Keys that may be absent (e.g. an optional role to assume). */
  optional?: readonly K[];
  /** Keys whose values are secrets: they are handed over as `Secret`, never as strings. */
  secrets?: readonly S[];
  /**
   * Checks that the PAM User record was made for this target before any place is searched: the record's own
   * fields are one of the places, and a record made for another target must never lend its secret as this
   * target's admin credentials (the Wiz script would send an Azure record's client_secret to Wiz).
   */
  checkRecord?: (user: VaultRecord) => void;
  /**
   * What the target falls back to when no record has credentials, e.g. "the gateway host's AWS credential
   * chain"; omit for targets that need explicit credentials. The values are then all undefined.
   */
  ambient?: string;
}

export type AdminValues<K extends string, S extends K> = { [P in K]: (P extends S ? Secret : string) | undefined };

export type AdminSource =
  | { kind: 'attached'; uid: string }
  | { kind: 'pam-configuration'; uid: string; via: 'records' | 'ksm' }
  | { kind: 'self'; uid: string }
  | { kind: 'ambient'; description: string };

export interface ResolvedAdmin<K extends string, S extends K = never> {
  source: AdminSource;
  values: AdminValues<K, S>;
}

export function describeSource(source: AdminSource): string {
  switch (source.kind) {
    case 'attached':
      return `attached record ${source.uid}`;
    case 'pam-configuration':
      return source.via === 'records' ? `PAM configuration ${source.uid} (from the gateway input)` : `PAM configuration ${source.uid} (fetched from Keeper)`;
    case 'self':
      return `the PAM User record ${source.uid} itself`;
    case 'ambient':
      return source.description;
  }
}

function dictValue(record: GatewayRecord, key: string): string | undefined {
  const v = record.fields[key];
  const first = Array.isArray(v) ? v[0] : v;
  if (typeof first !== 'string') return undefined;
  return first.trim() === '' ? undefined : first.trim();
}

function pick<K extends string, S extends K>(
  names: Record<K, string>,
  spec: AdminFieldNames<K, S>,
  read: (name: string) => string | undefined,
): AdminValues<K, S> | undefined {
  const raw = {} as Record<K, string | undefined>;
  for (const key of Object.keys(names) as K[]) {
    const v = read(names[key]);
    if (v === undefined && !(spec.optional ?? []).includes(key)) return undefined;
    raw[key] = v;
  }
  const values = {} as Record<K, string | Secret | undefined>;
  for (const key of Object.keys(raw) as K[]) {
    const v = raw[key];
    values[key] = v !== undefined && (spec.secrets as readonly K[] | undefined)?.includes(key) ? new Secret(v) : v;
  }
  return values as AdminValues<K, S>;
}

export interface AdminResolutionInput {
  input: GatewayInput;
  /** The PAM User record fetched through KSM. */
  user: VaultRecord;
  /** The PAM configuration record fetched through KSM, when the input names one and the app can read it. */
  provider: VaultRecord | undefined;
}

/** Resolves admin credentials for one target, or throws ADMIN_CREDENTIALS_NOT_FOUND naming every place it looked. */
export function resolveAdmin<K extends string, S extends K = never>(
  names: AdminFieldNames<K, S>,
  { input, user, provider }: AdminResolutionInput,
): ResolvedAdmin<K, S> {
  names.checkRecord?.(user);
  const optional = names.optional ?? [];
  const providerUid = input.providerRecordUid;
  for (const record of input.records) {
    if (record.uid === input.userRecordUid || record.uid === providerUid) continue;
    const values = pick(names.attached, names, (n) => dictValue(record, n));
    if (values) return { source: { kind: 'attached', uid: record.uid }, values };
  }
  // The PAM configuration is the record the input names; without a name, any other record with its keys
  // (Keeper's own scripts recognise it by its keys alone).
  const configDicts = input.records.filter((r) => (providerUid ? r.uid === providerUid : r.uid !== input.userRecordUid));
  for (const dict of configDicts) {
    const values = pick(names.pamConfiguration, names, (n) => dictValue(dict, n));
    if (values) return { source: { kind: 'pam-configuration', uid: dict.uid, via: 'records' }, values };
  }
  if (provider) {
    const values = pick(names.pamConfiguration, names, (n) => readText(provider.data, n));
    if (values) return { source: { kind: 'pam-configuration', uid: provider.uid, via: 'ksm' }, values };
  }
  if (names.self) {
    const values = pick(names.self, names, (n) => readText(user.data, n));
    if (values) return { source: { kind: 'self', uid: user.uid }, values };
  }
  if (names.ambient) return ambient(names);
  const required = (m: Record<K, string>) => (Object.keys(m) as K[]).filter((k) => !optional.includes(k)).map((k) => m[k]);
  const looked = [
    `an attached record with ${required(names.attached).join(', ')}`,
    `the PAM configuration${providerUid ? ` ${providerUid}` : ''} with ${required(names.pamConfiguration).join(', ')} (in the gateway input${providerUid ? ' and in Keeper' : ''})`,
    ...(names.self ? [`the PAM User record with ${required(names.self).join(', ')}`] : []),
  ];
  throw new RotateError('ADMIN_CREDENTIALS_NOT_FOUND', `no admin credentials found; looked for ${looked.join('; ')}`);
}

/** The fallback source of a target that can work without explicit credentials. */
export function ambient<K extends string, S extends K>(names: AdminFieldNames<K, S>): ResolvedAdmin<K, S> {
  const values = Object.fromEntries(Object.keys(names.attached).map((k) => [k, undefined])) as AdminValues<K, S>;
  return { source: { kind: 'ambient', description: names.ambient ?? 'the host' }, values };
}
