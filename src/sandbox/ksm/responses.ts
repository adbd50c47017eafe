// The decrypted JSON of get_secret and get_folders replies, in the shape the real service sends (see
// keeper.ts `SecretsManagerResponse`): what each app may see, with every key wrapped the way the SDK unwraps it.
import { type AppClient, folderEditable, hasDirectRecord, hasFolder } from './clients.js';
import { cbcEncrypt, gcmEncrypt, toBase64, toWebSafe64 } from './crypto.js';
import type { KsmVault, StoredRecord } from './vault.js';

export interface GetSecretFilter {
  requestedRecords?: string[];
  requestedFolders?: string[];
}

/**
 * The real service pads record JSON with trailing spaces, so a client must not assume the plaintext ends at `}`.
 * The exact padding rule is not public; a 16-byte boundary keeps the length from giving the content away.
 */
export function padRecordJson(data: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(data), 'utf8');
  const pad = (16 - (json.length % 16)) % 16;
  return Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
}

function recordEntry(record: StoredRecord, wrappingKey: Buffer, innerFolderUid: string | null, folderWritable = true) {
  // In 'pending' transactions the stored data is still the pre-update data: reads see nothing until finalize.
  return {
    recordUid: record.uid,
    recordKey: toBase64(gcmEncrypt(wrappingKey, record.key)),
    data: toBase64(gcmEncrypt(record.key, padRecordJson(record.data))),
    revision: record.revision,
    isEditable: record.editable && folderWritable,
    files: null,
    folderUid: null,
    innerFolderUid,
  };
}

export function getSecretResponse(vault: KsmVault, client: AppClient, filter: GetSecretFilter) {
  const wanted = filter.requestedRecords ? new Set(filter.requestedRecords) : undefined;
  const wantedFolders = filter.requestedFolders ? new Set(filter.requestedFolders) : undefined;
  const include = (uid: string) => !wanted || wanted.has(uid);

  const folders = [];
  for (const folderUid of vault.folderUids()) {
    const folder = vault.folder(folderUid)!;
    if (!hasFolder(client, folderUid) || (wantedFolders && !wantedFolders.has(folderUid))) continue;
    const records = vault
      .records()
      .filter((r) => r.folderUid === folderUid && include(r.uid))
      .map((r) => recordEntry(r, folder.key, folderUid, folderEditable(client, folderUid)));
    // A filtered request only gets the folders that hold what it asked for; an unfiltered one gets every share.
    if (wanted && records.length === 0) continue;
    folders.push({
      folderUid,
      folderKey: toBase64(gcmEncrypt(client.appKey, folder.key)),
      data: null,
      parent: null,
      isEditable: folderEditable(client, folderUid),
      records,
    });
  }

  const direct = wantedFolders
    ? []
    : vault
        .records()
        .filter((r) => {
          const viaFolder = r.folderUid !== undefined && hasFolder(client, r.folderUid);
          return !viaFolder && hasDirectRecord(client, r.uid, r.folderUid !== undefined) && include(r.uid);
        })
        .map((r) => recordEntry(r, client.appKey, null));

  return {
    appData: toWebSafe64(gcmEncrypt(client.appKey, Buffer.from(JSON.stringify({ title: client.title, type: 'app' }), 'utf8'))),
    // Only a binding call gets these; sandbox clients are bound from the start.
    encryptedAppKey: null,
    appOwnerPublicKey: null,
    folders: folders.length > 0 ? folders : null,
    records: direct.length > 0 ? direct : null,
    expiresOn: 0,
    warnings: null,
    extra: null,
  };
}

/** get_folders: the app's shared folders with their names (the last place KSM still uses AES-CBC). */
export function getFoldersResponse(vault: KsmVault, client: AppClient) {
  const folders = vault
    .folderUids()
    .filter((uid) => hasFolder(client, uid))
    .map((uid) => {
      const folder = vault.folder(uid)!;
      return {
        folderUid: uid,
        // The SDK unwraps with the app key using GCM even when asked for CBC (nodePlatform.unwrap special-cases appKey).
        folderKey: toBase64(gcmEncrypt(client.appKey, folder.key)),
        data: toBase64(cbcEncrypt(folder.key, Buffer.from(JSON.stringify({ name: folder.name }), 'utf8'))),
        parent: null,
        records: [],
      };
    });
  return { folders: folders.length > 0 ? folders : null };
}
