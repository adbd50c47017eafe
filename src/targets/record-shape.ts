// Which script a PAM User record was made for, from the fields it carries. A record editor can attach any of
// the scripts to any record (or the gateway owner can attach the wrong one): the Wiz script run on an Azure record
// would take the record's Azure client_secret as the Wiz account's own secret and send it to Wiz's token
// endpoint. So every script refuses a record that carries another script's fields before any admin credential is
// picked and before anything leaves the host. Only fields one script alone uses count: `client_secret` and
// `expires` are both Azure's and Wiz's, and a record with none of these fields (a login alone) belongs to none.
// An AWS key pair is both AWS scripts' (the IAM script rotates it, the ECR script may sign with it): it says IAM
// only on a record without the ECR script's own fields.
import { RotateError } from '../errors.js';
import type { RecordData } from '../keeper/record-data.js';
import { readText } from '../keeper/record.js';

export type ScriptName = 'azure-app-secret' | 'aws-iam-access-key' | 'aws-ecr-pull-secret' | 'wiz-service-account';

/** Fields that only that script reads or writes (the CSV templates put every one of them on a new record). */
const OWN_FIELDS: Record<Exclude<ScriptName, 'wiz-service-account'>, readonly string[]> = {
  'azure-app-secret': ['application_object_id', 'client_secret_id', 'previous_client_secret_ids'],
  'aws-iam-access-key': ['previous_aws_access_key_id', 'Access_Key_ID_Removed_during_previous_rotation', 'CreateDate'],
  'aws-ecr-pull-secret': ['ecr_docker_config_json', 'ecr_token_expires', 'ecr_token_id', 'ecr_registries', 'ecr_regions'],
};
/** The key pair both AWS scripts read: the IAM script's when the record carries no ECR field. */
const AWS_KEYS = ['aws_access_key_id', 'aws_secret_access_key'];
/** A Wiz record is a login and a client_secret with no other script's fields. */
const WIZ_SECRET = 'client_secret';

const KIND: Record<ScriptName, string> = {
  'azure-app-secret': 'an Azure app secret record',
  'aws-iam-access-key': 'an AWS IAM access key record',
  'aws-ecr-pull-secret': 'an AWS ECR pull secret record',
  'wiz-service-account': 'a Wiz service account record',
};

/** The scripts whose fields the record carries, each with the fields that say so. */
export function scriptsFor(data: RecordData): Map<ScriptName, string[]> {
  const found = new Map<ScriptName, string[]>();
  for (const [script, labels] of Object.entries(OWN_FIELDS) as Array<[ScriptName, readonly string[]]>) {
    const present = labels.filter((l) => readText(data, l) !== undefined);
    if (present.length > 0) found.set(script, present);
  }
  const keys = AWS_KEYS.filter((l) => readText(data, l) !== undefined);
  if (keys.length > 0 && !found.has('aws-ecr-pull-secret')) found.set('aws-iam-access-key', [...keys, ...(found.get('aws-iam-access-key') ?? [])]);
  if (found.size === 0 && readText(data, WIZ_SECRET) !== undefined) found.set('wiz-service-account', [WIZ_SECRET]);
  return found;
}

/**
 * Throws RECORD_WRONG_SCRIPT when the record carries another script's fields, naming the script that fits it. A
 * record that also carries this script's fields is refused too: which service its values are for is then a guess.
 */
export function checkRecordShape(script: ScriptName, uid: string, data: RecordData): void {
  const found = scriptsFor(data);
  const others = [...found].filter(([s]) => s !== script);
  if (others.length === 0) return;
  const which = others.map(([s, labels]) => `${KIND[s]} (${labels.join(', ')})`).join(' and ');
  const fits = others.map(([s]) => s);
  const advice =
    found.has(script) || others.length > 1
      ? `it mixes the fields of ${[...found.keys()].join(' and ')}: keep only the fields of the script it is for`
      : `attach ${fits[0]} to it instead, or remove those fields`;
  throw new RotateError('RECORD_WRONG_SCRIPT', `record ${uid} carries the fields of ${which}, not of a ${script} record; ${advice}`);
}
