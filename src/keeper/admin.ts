// Where a target's admin credentials come from, in the order Keeper's own scripts look:
//   1. a record attached to the script (in `records`, neither the PAM User nor the PAM configuration);
//   2. the PAM configuration's dictionary in `records`;
//   3. the PAM configuration record fetched through KSM (in the same request as the PAM User);
//   4. the PAM User record itself, for targets that can rotate their own credential.
// Each target declares the field names it needs for each place; the first place that has all of them wins.
// A target whose host has an identity of its own (AWS: the instance role) may use it only where the gateway owner
// says so: the PAM configuration, and only it, asking for that identity instead of keys (Keeper's
// USE_INSTANCE_ROLE), or an opt-in in the gateway's environment that lets any record fall back to it. Never a
// record editor's choice: they may attach records of their own, or clear the keys of the PAM User record.
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
   * What the target falls back to when no record has credentials (the values are then all undefined), and the
   * gateway owner's opt-in that allows it; omit for targets that need explicit credentials. The host's identity
   * is the gateway owner's, often worth more than any admin key: a record editor who could fall back to it by
   * leaving the keys out would pick the admin. So the fallback needs `optIn` in the gateway's environment.
   */
  ambient?: AmbientCredentials;
  /**
   * A value that, in `fields` of the PAM configuration, asks for the host's own credentials (`ambient`) instead of
   * keys, as Keeper's AWS guide has the PAM configuration say `USE_INSTANCE_ROLE` (compared without case). The
   * same value in an attached record or the PAM User record is refused: the host's identity is the gateway
   * owner's to hand out.
   */
  hostMarker?: { value: string; fields: readonly K[] };
}

export interface AmbientCredentials {
  /** What signs, e.g. "the gateway host's AWS credential chain". */
  description: string;
  /**
   * The environment variable, and the value (compared without case, blank counts as unset) by which the gateway
   * owner lets records use `description` without the PAM configuration asking for it.
   */
  optIn: { variable: string; value: string };
}

export type AdminValues<K extends string, S extends K> = { [P in K]: (P extends S ? Secret : string) | undefined };

export type AdminSource =
  | { kind: 'attached'; uid: string }
  | { kind: 'pam-configuration'; uid: string; via: 'records' | 'ksm' }
  | { kind: 'self'; uid: string }
  /** The host's own credentials for any record that holds none, as the gateway's environment allows. */
  | { kind: 'ambient'; description: string; optIn: string }
  /** The host's own credentials, because the PAM configuration asks for them (AdminFieldNames.hostMarker). */
  | { kind: 'host'; uid: string; via: 'records' | 'ksm'; description: string; marker: string };

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
      return `${source.description}, as the gateway's environment allows (${source.optIn})`;
    case 'host':
      return `${source.description}, as PAM configuration ${source.uid} asks (${source.marker})`;
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

/** Which of the marker's fields hold it; throws when it is mixed with keys (a half-edited configuration). */
function markedFields<K extends string, S extends K>(names: Record<K, string>, spec: AdminFieldNames<K, S>, read: (name: string) => string | undefined, where: string): K[] {
  const marker = spec.hostMarker;
  if (!marker) return [];
  const holds = (k: K) => read(names[k])?.toUpperCase() === marker.value.toUpperCase();
  const marked = marker.fields.filter(holds);
  if (marked.length === 0) return [];
  const mixed = marker.fields.filter((k) => !holds(k) && read(names[k]) !== undefined);
  if (mixed.length > 0) {
    throw new RotateError('ADMIN_CREDENTIALS_INVALID', `${where}: ${marked.map((k) => names[k]).join(', ')} says ${marker.value}, but ${mixed.map((k) => names[k]).join(', ')} holds a value: set both to ${marker.value} for the gateway host's own credentials, or both to a key`);
  }
  return marked;
}

/** The marker anywhere but in the PAM configuration: a record editor asking for the gateway owner's identity. */
function refuseMarker<K extends string, S extends K>(names: Record<K, string>, spec: AdminFieldNames<K, S>, read: (name: string) => string | undefined, where: string): void {
  const marker = spec.hostMarker;
  if (!marker || !marker.fields.some((k) => read(names[k])?.toUpperCase() === marker.value.toUpperCase())) return;
  throw new RotateError(
    'ADMIN_CREDENTIALS_INVALID',
    `${where} says ${marker.value}: only the PAM configuration the gateway input names may ask for the gateway host's own credentials (the gateway owner's identity); any other record must hold keys`,
  );
}

export interface AdminResolutionInput {
  input: GatewayInput;
  /** The PAM User record fetched through KSM. */
  user: VaultRecord;
  /** The PAM configuration record fetched through KSM, when the input names one and the app can read it. */
  provider: VaultRecord | undefined;
  /** The gateway's environment: only it may allow the fallback to the host's credentials (`ambient.optIn`). */
  env: NodeJS.ProcessEnv;
}

/**
 * Whether the gateway owner lets records use the host's credentials (`ambient.optIn`). Unset or blank: no. A value
 * other than the opt-in's is SETTING_INVALID rather than a silent no, so a misspelt opt-in is seen at once.
 */
export function ambientAllowed(ambient: AmbientCredentials, env: NodeJS.ProcessEnv): boolean {
  const { variable, value } = ambient.optIn;
  const raw = env[variable]?.trim() ?? '';
  if (raw === '') return false;
  if (raw.toLowerCase() === value.toLowerCase()) return true;
  throw new RotateError('SETTING_INVALID', `${variable} must be ${value}, or unset (blank counts as unset): it holds something else`);
}

/** The two ways the gateway owner can let a run sign with the host's credentials, for messages. */
export function hostOptIns<K extends string, S extends K>(names: AdminFieldNames<K, S>): string {
  const ways = [
    ...(names.hostMarker ? [`${names.hostMarker.value} in the PAM configuration's ${names.hostMarker.fields.map((k) => names.pamConfiguration[k]).join(' and ')}`] : []),
    ...(names.ambient ? [`${names.ambient.optIn.variable}=${names.ambient.optIn.value} in the gateway's environment (for every record)`] : []),
  ];
  return ways.join(', or ');
}

/** Resolves admin credentials for one target, or throws ADMIN_CREDENTIALS_NOT_FOUND naming every place it looked. */
export function resolveAdmin<K extends string, S extends K = never>(
  names: AdminFieldNames<K, S>,
  { input, user, provider, env }: AdminResolutionInput,
): ResolvedAdmin<K, S> {
  names.checkRecord?.(user);
  // Read first, whatever this run uses: a misspelt opt-in fails every run of the target, not only the fallback.
  const hostAllowed = names.ambient ? ambientAllowed(names.ambient, env) : false;
  const optional = names.optional ?? [];
  const providerUid = input.providerRecordUid;
  for (const record of input.records) {
    if (record.uid === input.userRecordUid || record.uid === providerUid) continue;
    refuseMarker(names.attached, names, (n) => dictValue(record, n), `attached record ${record.uid}`);
    const values = pick(names.attached, names, (n) => dictValue(record, n));
    if (values) return { source: { kind: 'attached', uid: record.uid }, values };
  }
  // The PAM configuration is the record the input names; without a name, any other record with its keys
  // (Keeper's own scripts recognise it by its keys alone).
  const configDicts = input.records.filter((r) => (providerUid ? r.uid === providerUid : r.uid !== input.userRecordUid));
  for (const dict of configDicts) {
    const read = (n: string) => dictValue(dict, n);
    // Only the PAM configuration the input names: without a name, any record shaped like one is taken for it,
    // and a record editor can attach a record of any shape.
    if (!providerUid) refuseMarker(names.pamConfiguration, names, read, `record ${dict.uid} (the gateway input names no PAM configuration)`);
    const host = hostFromConfiguration(names, read, dict.uid, 'records');
    if (host) return host;
    const values = pick(names.pamConfiguration, names, read);
    if (values) return { source: { kind: 'pam-configuration', uid: dict.uid, via: 'records' }, values };
  }
  if (provider) {
    const read = (n: string) => readText(provider.data, n);
    const host = hostFromConfiguration(names, read, provider.uid, 'ksm');
    if (host) return host;
    const values = pick(names.pamConfiguration, names, read);
    if (values) return { source: { kind: 'pam-configuration', uid: provider.uid, via: 'ksm' }, values };
  }
  if (names.self) {
    refuseMarker(names.self, names, (n) => readText(user.data, n), `the PAM User record ${user.uid}`);
    const values = pick(names.self, names, (n) => readText(user.data, n));
    if (values) return { source: { kind: 'self', uid: user.uid }, values };
  }
  if (names.ambient && hostAllowed) return ambient(names.ambient, names);
  const required = (m: Record<K, string>) => (Object.keys(m) as K[]).filter((k) => !optional.includes(k)).map((k) => m[k]);
  const looked = [
    `an attached record with ${required(names.attached).join(', ')}`,
    `the PAM configuration${providerUid ? ` ${providerUid}` : ''} with ${required(names.pamConfiguration).join(', ')} (in the gateway input${providerUid ? ' and in Keeper' : ''})`,
    ...(names.self ? [`the PAM User record with ${required(names.self).join(', ')}`] : []),
  ];
  // Leaving every key out must not hand a record editor the gateway owner's identity.
  const host = names.ambient ? `. Not ${names.ambient.description}: only the gateway owner allows it, with ${hostOptIns(names)}` : '';
  throw new RotateError('ADMIN_CREDENTIALS_NOT_FOUND', `no admin credentials found; looked for ${looked.join('; ')}${host}`);
}

/**
 * The host's credentials, when this PAM configuration asks for them; its other values (an optional role to
 * assume) come along, its marked fields are left out.
 */
function hostFromConfiguration<K extends string, S extends K>(names: AdminFieldNames<K, S>, read: (name: string) => string | undefined, uid: string, via: 'records' | 'ksm'): ResolvedAdmin<K, S> | undefined {
  const marked = markedFields(names.pamConfiguration, names, read, `PAM configuration ${uid}`);
  if (marked.length === 0 || !names.hostMarker) return undefined;
  const values = {} as Record<K, string | Secret | undefined>;
  for (const key of Object.keys(names.pamConfiguration) as K[]) {
    const v = names.hostMarker.fields.includes(key) ? undefined : read(names.pamConfiguration[key]);
    values[key] = v !== undefined && (names.secrets as readonly K[] | undefined)?.includes(key) ? new Secret(v) : v;
  }
  return { source: { kind: 'host', uid, via, description: names.ambient?.description ?? 'the host', marker: names.hostMarker.value }, values: values as AdminValues<K, S> };
}

/** The fallback source of a target that can work without explicit credentials, once the gateway owner allowed it. */
function ambient<K extends string, S extends K>(host: AmbientCredentials, names: AdminFieldNames<K, S>): ResolvedAdmin<K, S> {
  const values = Object.fromEntries(Object.keys(names.attached).map((k) => [k, undefined])) as AdminValues<K, S>;
  return { source: { kind: 'ambient', description: host.description, optIn: `${host.optIn.variable}=${host.optIn.value}` }, values };
}
