// KSM applications as the sandbox knows them: one bound client device per app, with the keys a bound Keeper
// Gateway config carries. Binding (the one-time-token exchange) is skipped: createClient hands out the config
// the Gateway would hold after it, and registers the device's public key as binding would.
import { clientIdFromClientKey, generateClientKeyPair, newKey, toBase64, toWebSafe64 } from './crypto.js';

/** A bound KSM config, the JSON object in /etc/keeper-gateway/gateway-config.json. */
export interface GatewayConfig {
  hostname: string;
  /** Standard base64 of 64 bytes. */
  clientId: string;
  /** Standard base64 of the 138-byte PKCS#8 DER P-256 key. */
  privateKey: string;
  /** Standard base64 of 32 bytes. */
  appKey: string;
  serverPublicKeyId: string;
  /** Web-safe base64 (no padding) of the server's 65-byte point; makes the SDK skip its built-in Keeper keys. */
  serverPublicKey: string;
  /** Standard base64 of a 65-byte point. */
  appOwnerPublicKey: string;
}

/**
 * Which records an app sees. Without `folders` and `records` it sees everything; once either list is given, the
 * missing one shares nothing, so a restricted app cannot see more than it was given by accident.
 */
export interface ClientAccess {
  /** Shared folders the app has; their records come wrapped by the folder key. */
  folders?: string[] | 'all';
  /** Records shared to the app directly, wrapped by the app key. 'all' means every record outside a folder. */
  records?: string[] | 'all';
  /** The app's title, returned in appData. */
  title?: string;
  /**
   * Shared folders the app has read-only ("Can Edit" off in the app's share): it reads their records but may
   * neither change them nor create records in them.
   */
  readOnlyFolders?: string[];
}

export interface AppClient {
  clientId: string;
  publicKey: Buffer;
  appKey: Buffer;
  title: string;
  folders: ReadonlySet<string> | 'all';
  records: ReadonlySet<string> | 'all';
  readOnlyFolders: ReadonlySet<string>;
}

export interface ServerIdentity {
  publicKey: Buffer;
  publicKeyId: string;
  ownerPublicKey: Buffer;
}

export class ClientRegistry {
  #clients = new Map<string, AppClient>();

  create(hostname: string, server: ServerIdentity, access?: ClientAccess): GatewayConfig {
    const { pkcs8, publicKey } = generateClientKeyPair();
    // Derived as the SDK derives it from a one-time token, so ids look like real ones (64-byte HMAC, base64).
    const clientId = clientIdFromClientKey(newKey());
    const appKey = newKey();
    const restricted = access?.folders !== undefined || access?.records !== undefined;
    const scope = (list: string[] | 'all' | undefined) => (!restricted || list === 'all' ? 'all' : new Set(list ?? []));
    this.#clients.set(clientId, {
      clientId,
      publicKey,
      appKey,
      title: access?.title ?? 'keeper-rotate sandbox',
      folders: scope(access?.folders),
      records: scope(access?.records),
      readOnlyFolders: new Set(access?.readOnlyFolders ?? []),
    });
    return {
      hostname,
      clientId,
      privateKey: toBase64(pkcs8),
      appKey: toBase64(appKey),
      serverPublicKeyId: server.publicKeyId,
      serverPublicKey: toWebSafe64(server.publicKey),
      appOwnerPublicKey: toBase64(server.ownerPublicKey),
    };
  }

  get(clientId: string): AppClient | undefined {
    return this.#clients.get(clientId);
  }
}

export function hasFolder(client: AppClient, folderUid: string): boolean {
  return client.folders === 'all' || client.folders.has(folderUid);
}

/** Whether the app's share of the folder lets it write there (it must have the folder at all). */
export function folderEditable(client: AppClient, folderUid: string): boolean {
  return hasFolder(client, folderUid) && !client.readOnlyFolders.has(folderUid);
}

export function hasDirectRecord(client: AppClient, recordUid: string, inFolder: boolean): boolean {
  return client.records === 'all' ? !inFolder : client.records.has(recordUid);
}
