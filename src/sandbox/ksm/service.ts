// The KSM sandbox service: answers POST /api/rest/sm/v1/{endpoint} the way keepersecurity.com does for the real
// @keeper-security/secrets-manager-core SDK, over the shared sandbox HTTP layer (faults, request log, TLS).
import { randomBytes } from 'node:crypto';
import type { RecordData } from '../../keeper/record-data.js';
import type { ControlApi } from '../control.js';
import type { Reply, Route, SandboxRequest, SandboxService } from '../service.js';
import { type ClientAccess, ClientRegistry, type GatewayConfig, folderEditable, hasDirectRecord, hasFolder, type AppClient } from './clients.js';
import { createSecret } from './create.js';
import { fromBase64, gcmDecrypt, generateServerKeyPair, type ServerKeyPair } from './crypto.js';
import { type KsmBudget, KsmBudgetGate, throttledReply } from './budget.js';
import { registerKsmControl } from './control-routes.js';
import { openRequest, sealResponse } from './envelope.js';
import { KsmError, badRequest, errorReply, recordNotAccessible, recordNotEditable } from './errors.js';
import { getFoldersResponse, getSecretResponse } from './responses.js';
import {
  type FolderView,
  KsmVault,
  type RecordView,
  type SeedRecordInput,
  type StoredRecord,
  type TransactionModel,
  type TransactionType,
  TRANSACTION_MODELS,
  isRecordData,
} from './vault.js';

export const KSM_ENDPOINTS = ['get_secret', 'get_folders', 'update_secret', 'finalize_secret_update', 'rollback_secret_update', 'create_secret'] as const;
export type KsmEndpoint = (typeof KSM_ENDPOINTS)[number];

const PATH_PREFIX = '/api/rest/sm/v1/';

export interface KsmServiceOptions {
  /** How update_secret with a transactionType behaves until finalize/rollback (default 'pending'). */
  transactionModel?: TransactionModel;
  /** The first record revision (default 1,000,000). */
  firstRevision?: number;
  /** The id clients must send in PublicKeyId (default "10"). */
  serverPublicKeyId?: string;
  /** The request budget per client and endpoint, over budget.ts `KSM_DEFAULT_BUDGET` (on, Keeper's 100 per 10 s). */
  budget?: Partial<KsmBudget>;
}

export class KsmService implements SandboxService {
  readonly name = 'ksm';
  readonly serverPublicKeyId: string;
  readonly #serverKey: ServerKeyPair;
  // The vault owner's key: configs carry its public half (appOwnerPublicKey) so that create_secret can wrap each
  // new record's key for the owner (create.ts).
  readonly #ownerKey: ServerKeyPair;
  readonly #vault: KsmVault;
  readonly #clients = new ClientRegistry();
  #transactionModel: TransactionModel;
  readonly #budget: KsmBudgetGate;

  constructor(options: KsmServiceOptions = {}) {
    this.serverPublicKeyId = options.serverPublicKeyId ?? '10';
    this.#serverKey = generateServerKeyPair();
    this.#ownerKey = generateServerKeyPair();
    this.#vault = new KsmVault(options.firstRevision !== undefined ? { firstRevision: options.firstRevision } : {});
    this.#transactionModel = checkModel(options.transactionModel ?? 'pending');
    this.#budget = new KsmBudgetGate(options.budget);
  }

  /**
   * The request budget as it stands (budget.ts). KSM charges it itself, once a request is open and names its
   * client, rather than through a budget the shared `serve` layer would charge before the service sees the call.
   */
  get budgetSettings(): KsmBudget {
    return this.#budget.budget;
  }

  /** Changes some budget settings (throws on a bad value); clients keep what their buckets hold. */
  setBudget(changes: Partial<KsmBudget>): KsmBudget {
    return this.#budget.set(changes);
  }

  /** The budget the service was made with, every client's bucket full and nobody throttled. */
  resetBudget(): KsmBudget {
    return this.#budget.reset();
  }

  /** The server's 65-byte public point (what configs carry web-safe encoded as serverPublicKey). */
  get serverPublicKey(): Buffer {
    return Buffer.from(this.#serverKey.publicKey);
  }

  get transactionModel(): TransactionModel {
    return this.#transactionModel;
  }

  /** Applies to transactions opened from now on; an open one finishes under the model it started with. */
  setTransactionModel(model: TransactionModel): void {
    this.#transactionModel = checkModel(model);
  }

  /** Registers a bound app client and returns its Gateway config (`hostname` as the SDK should dial it, e.g. `localhost:PORT`). */
  createClient(hostname: string, options?: ClientAccess): GatewayConfig {
    if (!hostname) throw new Error('a client needs the hostname it will dial');
    return this.#clients.create(
      hostname,
      { publicKey: this.#serverKey.publicKey, publicKeyId: this.serverPublicKeyId, ownerPublicKey: this.#ownerKey.publicKey },
      options,
    );
  }

  createFolder(name?: string): string {
    return this.#vault.createFolder(name);
  }

  listFolders(): FolderView[] {
    return this.#vault.listFolders();
  }

  seedRecord(input: SeedRecordInput): { uid: string; revision: number } {
    return this.#vault.seedRecord(input);
  }

  editRecord(uid: string, data: RecordData): { uid: string; revision: number } {
    return this.#vault.editRecord(uid, data);
  }

  readRecord(uid: string): RecordView | undefined {
    return this.#vault.readRecord(uid);
  }

  listRecords(): RecordView[] {
    return this.#vault.listRecords();
  }

  /** Adds the /ksm/* routes (records, folders, clients, transaction model) to the sandbox control API. */
  registerControl(api: ControlApi): void {
    registerKsmControl(api, this);
  }

  route(req: SandboxRequest): Route | undefined {
    if (req.method !== 'POST' || !req.path.startsWith(PATH_PREFIX)) return undefined;
    const endpoint = req.path.slice(PATH_PREFIX.length);
    if (!(KSM_ENDPOINTS as readonly string[]).includes(endpoint)) return undefined;
    return { operation: endpoint, handle: () => this.#handle(endpoint as KsmEndpoint, req) };
  }

  /** A `throttle` fault: Keeper's throttle reply (budget.ts), with the retry_after the fault was armed with. */
  throttleReply(retryAfterSeconds: number): Reply {
    return throttledReply(this.#budget.budget.status, retryAfterSeconds);
  }

  /**
   * A 200 whose bytes fail GCM authentication. The generic corruption truncates the body, which leaves an empty
   * update_secret reply empty, and the SDK accepts an empty 200 as success: the fault would not be a fault.
   */
  corruptReply(reply: Reply): Reply {
    const body = Buffer.from(reply.body ?? '');
    const noise = body.length >= 28 ? Buffer.from(body) : randomBytes(48);
    for (let i = 12; i < noise.length; i += 7) noise[i] = noise[i]! ^ 0xa5;
    return { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: noise };
  }

  #handle(endpoint: KsmEndpoint, req: SandboxRequest): Reply {
    const ctx = {
      endpoint,
      host: headerValue(req, 'host') ?? 'localhost',
      userAgent: headerValue(req, 'user-agent') ?? '',
    };
    try {
      const { transmissionKey, payload, client } = openRequest(req, { privateKey: this.#serverKey.privateKey, publicKeyId: this.serverPublicKeyId }, this.#clients);
      // Keeper counts per client and endpoint, so it can only charge a request once the body naming the client is
      // open; a request it cannot authenticate is refused before it is counted.
      const throttled = this.#budget.charge(client.clientId, endpoint);
      if (throttled) return throttled;
      const result = this.#dispatch(endpoint, payload, client);
      if (result === undefined) return { status: 200, body: Buffer.alloc(0) };
      return { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: sealResponse(transmissionKey, result) };
    } catch (err) {
      if (err instanceof KsmError) return errorReply(err, ctx);
      throw err;
    }
  }

  #dispatch(endpoint: KsmEndpoint, payload: Record<string, unknown>, client: AppClient): unknown {
    switch (endpoint) {
      case 'get_secret':
        // publicKey only matters when binding (sandbox clients are bound from the start) and requestLinks asks for
        // linked records, which sandbox records do not have; both are still checked for type.
        optionalField(payload, 'publicKey', 'a string', (v) => typeof v === 'string');
        optionalField(payload, 'requestLinks', 'a boolean', (v) => typeof v === 'boolean');
        return getSecretResponse(this.#vault, client, {
          ...optionalUidList(payload, 'requestedRecords'),
          ...optionalUidList(payload, 'requestedFolders'),
        });
      case 'get_folders':
        return getFoldersResponse(this.#vault, client);
      case 'update_secret':
        this.#updateSecret(payload, client);
        return undefined;
      case 'finalize_secret_update':
        this.#vault.finalize(this.#editableRecord(payload, client));
        return undefined;
      case 'rollback_secret_update':
        this.#vault.rollback(this.#editableRecord(payload, client));
        return undefined;
      case 'create_secret':
        // The SDK ignores the body of a successful create (it returns the UID it chose), and Keeper sends none.
        createSecret(payload, client, { vault: this.#vault, ownerPrivateKey: this.#ownerKey.privateKey });
        return undefined;
    }
  }

  #editableRecord(payload: Record<string, unknown>, client: AppClient): StoredRecord {
    const uid = payload.recordUid;
    if (typeof uid !== 'string' || !uid) throw badRequest('recordUid is required');
    const record = this.#vault.record(uid);
    if (!record || !canSee(client, record)) throw recordNotAccessible(uid);
    if (!record.editable) throw recordNotEditable(uid);
    // A record reached through a read-only share of its folder is read-only to this app.
    if (record.folderUid !== undefined && hasFolder(client, record.folderUid) && !folderEditable(client, record.folderUid)) throw recordNotEditable(uid);
    return record;
  }

  #updateSecret(payload: Record<string, unknown>, client: AppClient): void {
    const { data, revision } = payload;
    if (typeof data !== 'string' || !data) throw badRequest('data is required');
    if (typeof revision !== 'number' || !Number.isSafeInteger(revision)) throw badRequest('revision must be an integer');
    // Absent and null both mean "no transaction": the Python SDK sends null for every option it was not given.
    const transactionType = optionalField(payload, 'transactionType', '"general" or "rotation"', (v) => v === 'general' || v === 'rotation');
    // File links to drop from the record (the SDKs send the fileRef UIDs they also removed from the data).
    // Sandbox records carry no file attachments, so there is nothing to unlink; the shape is still checked.
    optionalUidList(payload, 'links2Remove');
    const record = this.#editableRecord(payload, client);
    let recordData: unknown;
    try {
      recordData = JSON.parse(gcmDecrypt(record.key, fromBase64(data)).toString('utf8'));
    } catch {
      throw badRequest('Unable to decrypt the record data with the record key');
    }
    if (!isRecordData(recordData)) throw badRequest('The record data is not a record');
    this.#vault.update(
      record,
      recordData as RecordData,
      revision,
      transactionType ? { type: transactionType as TransactionType, model: this.#transactionModel } : undefined,
    );
  }
}

function canSee(client: AppClient, record: StoredRecord): boolean {
  if (record.folderUid !== undefined && hasFolder(client, record.folderUid)) return true;
  return hasDirectRecord(client, record.uid, record.folderUid !== undefined);
}

function checkModel(model: string): TransactionModel {
  if (!(TRANSACTION_MODELS as readonly string[]).includes(model)) throw new Error(`transaction model must be one of ${TRANSACTION_MODELS.join(', ')}`);
  return model as TransactionModel;
}

/*
 * Payload fields. Every official SDK sends the same JSON names, but not the same shape for what it leaves out:
 *   - Python sends every optional field as null and indents its JSON: GetPayload {publicKey, requestedRecords,
 *     requestedFolders, requestLinks} and UpdatePayload {transactionType, links2Remove} start as None and are
 *     serialized as they are (sdk/python/core/keeper_secrets_manager_core/dto/payload.py; core.py
 *     prepare_get_payload, prepare_update_payload, encrypt_and_sign_payload; utils.py dict_to_json).
 *   - Rust sends GetPayload's optionals as null (no skip_serializing_if) and omits UpdatePayload's
 *     (sdk/rust/src/dto/payload.rs).
 *   - Go sends requestedRecords/requestedFolders as null when unset, omits an empty transactionType (omitempty) and
 *     encodes data URL-safe without padding (secrets-manager-go core/payload.go, core/core.go prepareUpdatePayload).
 *   - Java omits unset optionals (kotlinx.serialization leaves defaults out) but sends links2Remove as given, an
 *     empty list included, and requestLinks false; it encodes data URL-safe (sdk/java/core/src/main/kotlin/com/
 *     keepersecurity/secretsManager/core/SecretsManager.kt GetPayload, UpdatePayload, prepareUpdatePayload).
 *   - .NET omits nulls (JsonIgnoreCondition.WhenWritingDefault) and may send requestLinks false
 *     (sdk/dotNet/SecretsManager/JsonUtils.cs, SecretsManagerClient.cs GetPayload, UpdatePayload).
 *   - JavaScript and Ruby omit what they do not set (sdk/javascript/packages/core/src/keeper.ts prepareGetPayload,
 *     prepareUpdatePayload, prepareCompleteTransactionPayload; sdk/ruby/lib/keeper_secrets_manager/dto/payload.rb).
 * (Keeper-Security/secrets-manager at 8a93aa7, Keeper-Security/secrets-manager-go at c7603d6.) So absent and null
 * are the same here, as they are to the real server, which the Python SDK's ordinary save proves; a value of the
 * wrong type is still a bad request.
 */

/** An optional field: undefined when absent or null, else the value if `ok` accepts it, else a 400. */
function optionalField(payload: Record<string, unknown>, key: string, what: string, ok: (value: unknown) => boolean): unknown {
  const value = payload[key];
  if (value === undefined || value === null) return undefined;
  if (!ok(value)) throw badRequest(`${key} must be ${what}`);
  return value;
}

function optionalUidList<K extends 'requestedRecords' | 'requestedFolders' | 'links2Remove'>(payload: Record<string, unknown>, key: K): Partial<Record<K, string[]>> {
  const value = optionalField(payload, key, 'an array of UIDs', (v) => Array.isArray(v) && v.every((uid) => typeof uid === 'string'));
  return value === undefined ? {} : ({ [key]: value as string[] } as Partial<Record<K, string[]>>);
}

function headerValue(req: SandboxRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
