// create_secret: a new record in a shared folder, as the real SDKs send it (createSecret and createSecret2 in
// sdk/javascript/packages/core/src/keeper.ts, prepareCreatePayload; Python core.py prepare_create_payload; at
// Keeper-Security/secrets-manager 8a93aa7). The client makes the record's key and UID itself and sends:
//   recordUid  16 random bytes, web-safe base64;
//   recordKey  the record key encrypted for the app owner's public key (ECIES, as the transmission key is), so
//              the owner's vault can open the record;
//   folderUid  the shared folder;
//   folderKey  the record key wrapped with the shared folder's key (AES-GCM), which is how the app and everyone
//              else who has the folder open it;
//   data       the record JSON, AES-GCM under the record key, web-safe base64;
//   subFolderUid (createSecret2 only) a folder inside the shared folder.
// Keeper's server cannot check the owner-wrapped key (it holds no private key); the sandbox can, and refuses a key
// the owner could never open, since a record its owner cannot read is a broken record in production too.
import type { RecordData } from '../../keeper/record-data.js';
import { type AppClient, folderEditable, hasFolder } from './clients.js';
import { decryptTransmissionKey, fromBase64, gcmDecrypt } from './crypto.js';
import { KsmError, badRequest } from './errors.js';
import { type KsmVault, isRecordData } from './vault.js';

/** A UID as the SDKs make it: 16 bytes, web-safe base64 without padding (22 characters). */
const UID = /^[A-Za-z0-9_-]{22}$/;

// Observed: Keeper answers a folder the app has no share of with this (create_folder, secrets-manager#637:
// `"error":"access_denied","message":"Folder lgmDBcTT1KEMDdNgA92h6Q is not accessible"`). No capture of
// create_secret's own refusal is public; the same handler checks the same share, so the same answer.
export const folderNotAccessible = (uid: string) => new KsmError(403, 'access_denied', `Folder ${uid} is not accessible`);

// Our choice of message: Keeper's SDK guides require that "you and the Secrets Manager application must have edit
// permission" on the shared folder to create a record in it (sdk/rust/docs/developer_docs.md, "Create a Secret").
// A read-only share is an access problem, so access_denied like the other refusals.
export const folderNotEditable = (uid: string) => new KsmError(403, 'access_denied', `Folder ${uid} is read-only for this application`);

// Our choice: a UID that already names a record is a client bug (UIDs are random 16 bytes), refused as a bad request.
export const recordExists = (uid: string) => new KsmError(400, 'bad_request', `Record ${uid} already exists`);

export interface CreateSecretDeps {
  vault: KsmVault;
  /** The app owner's private key: what opens `recordKey`. */
  ownerPrivateKey: Buffer;
}

function requiredString(payload: Record<string, unknown>, key: string): string {
  const v = payload[key];
  if (typeof v !== 'string' || v === '') throw badRequest(`${key} is required`);
  return v;
}

/** Validates and stores a create_secret payload; returns the new record's UID. */
export function createSecret(payload: Record<string, unknown>, client: AppClient, deps: CreateSecretDeps): string {
  const recordUid = requiredString(payload, 'recordUid');
  const wrappedForOwner = requiredString(payload, 'recordKey');
  const folderUid = requiredString(payload, 'folderUid');
  const wrappedForFolder = requiredString(payload, 'folderKey');
  const data = requiredString(payload, 'data');
  const sub = payload.subFolderUid;
  if (sub !== undefined && sub !== null && typeof sub !== 'string') throw badRequest('subFolderUid must be a string');
  if (!UID.test(recordUid)) throw badRequest('recordUid must be 16 bytes, web-safe base64');
  const folder = deps.vault.folder(folderUid);
  // Unknown and unshared folders look the same to an app, as records do.
  if (!folder || !hasFolder(client, folderUid)) throw folderNotAccessible(folderUid);
  // The sandbox's shared folders have no folders inside them: any subfolder is one the app cannot reach.
  if (typeof sub === 'string' && sub !== '' && sub !== folderUid) throw folderNotAccessible(sub);
  if (!folderEditable(client, folderUid)) throw folderNotEditable(folderUid);
  if (deps.vault.record(recordUid)) throw recordExists(recordUid);
  let recordKey: Buffer;
  try {
    recordKey = gcmDecrypt(folder.key, fromBase64(wrappedForFolder));
  } catch {
    throw badRequest('Unable to decrypt the record key with the folder key');
  }
  if (recordKey.length !== 32) throw badRequest('The record key must be 32 bytes');
  let ownerCopy: Buffer;
  try {
    // The SDK's publicEncrypt with no id, the same ECIES as the transmission key.
    ownerCopy = decryptTransmissionKey(deps.ownerPrivateKey, fromBase64(wrappedForOwner));
  } catch {
    throw badRequest("Unable to decrypt the record key with the owner's key");
  }
  if (!ownerCopy.equals(recordKey)) throw badRequest("The record key for the owner differs from the folder's");
  let parsed: unknown;
  try {
    parsed = JSON.parse(gcmDecrypt(recordKey, fromBase64(data)).toString('utf8'));
  } catch {
    throw badRequest('Unable to decrypt the record data with the record key');
  }
  if (!isRecordData(parsed)) throw badRequest('The record data is not a record');
  deps.vault.createRecord({ uid: recordUid, key: recordKey, data: parsed as RecordData, folderUid });
  return recordUid;
}
