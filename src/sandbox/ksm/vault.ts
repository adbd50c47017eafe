// The sandbox vault: shared folders, records with their keys and revisions, and the update transactions KSM
// opens for rotations. It knows nothing about the wire; the service decides who may see what.
import type { RecordData, RecordField } from '../../keeper/record-data.js';
import { newKey, newUid } from './crypto.js';
import { invalidRevision, noTransaction, transactionInProgress } from './errors.js';

/**
 * What an update with a transactionType does before it is finalized. Keeper does not document it, so both are
 * modelled: 'pending' keeps the change invisible until finalize; 'immediate' applies it and lets rollback undo it.
 */
export type TransactionModel = 'pending' | 'immediate';
export const TRANSACTION_MODELS: readonly TransactionModel[] = ['pending', 'immediate'];
/** The SDK's `UpdateTransactionType` values. */
export type TransactionType = 'general' | 'rotation';

export interface StoredFolder {
  uid: string;
  name: string;
  key: Buffer;
}

export interface OpenTransaction {
  type: TransactionType;
  /** Fixed when the transaction opens, so switching the service's model later cannot strand it. */
  model: TransactionModel;
  /** 'pending': the data waiting for finalize. 'immediate': the data rollback restores. */
  data: RecordData;
  /** 'pending': the revision the update was made against. 'immediate': the revision before the update. */
  revision: number;
}

export interface StoredRecord {
  uid: string;
  key: Buffer;
  data: RecordData;
  revision: number;
  folderUid?: string;
  editable: boolean;
  transaction?: OpenTransaction;
}

export interface RecordView {
  uid: string;
  data: RecordData;
  revision: number;
  folderUid?: string;
  editable: boolean;
  transaction?: { type: TransactionType; model: TransactionModel; data: RecordData; revision: number };
}

export interface FolderView {
  uid: string;
  name: string;
  records: string[];
}

export interface SeedRecordInput {
  uid?: string;
  data: RecordData;
  folderUid?: string;
  editable?: boolean;
}

export interface VaultOptions {
  /**
   * The first revision handed out. Real revisions are large account-wide counters (e.g. 1411018), and every write
   * takes the next one; starting high keeps anyone from mistaking them for per-record version numbers.
   */
  firstRevision?: number;
}

function isField(value: unknown): value is RecordField {
  if (!value || typeof value !== 'object') return false;
  const f = value as Record<string, unknown>;
  return typeof f.type === 'string' && Array.isArray(f.value) && (f.label === undefined || typeof f.label === 'string');
}

/** The shape every v3 record has; anything else is a client bug the service refuses as bad_request. */
export function isRecordData(value: unknown): value is RecordData {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r.title === 'string' &&
    typeof r.type === 'string' &&
    Array.isArray(r.fields) &&
    r.fields.every(isField) &&
    (r.custom === undefined || (Array.isArray(r.custom) && r.custom.every(isField))) &&
    (r.notes === undefined || typeof r.notes === 'string')
  );
}

export class KsmVault {
  #folders = new Map<string, StoredFolder>();
  #records = new Map<string, StoredRecord>();
  #lastRevision: number;

  constructor(options: VaultOptions = {}) {
    this.#lastRevision = (options.firstRevision ?? 1_000_000) - 1;
  }

  #nextRevision(): number {
    this.#lastRevision += 1;
    return this.#lastRevision;
  }

  createFolder(name = 'Shared Folder'): string {
    const uid = newUid();
    this.#folders.set(uid, { uid, name, key: newKey() });
    return uid;
  }

  folder(uid: string): StoredFolder | undefined {
    return this.#folders.get(uid);
  }

  folderUids(): string[] {
    return [...this.#folders.keys()];
  }

  listFolders(): FolderView[] {
    return [...this.#folders.values()].map((f) => ({
      uid: f.uid,
      name: f.name,
      records: [...this.#records.values()].filter((r) => r.folderUid === f.uid).map((r) => r.uid),
    }));
  }

  seedRecord(input: SeedRecordInput): { uid: string; revision: number } {
    if (!isRecordData(input.data)) throw new Error('record data needs title, type and fields[] of {type, value[]}');
    if (input.folderUid !== undefined && !this.#folders.has(input.folderUid)) throw new Error(`no folder ${input.folderUid}`);
    const uid = input.uid ?? newUid();
    if (!uid) throw new Error('a record uid cannot be empty');
    if (this.#records.has(uid)) throw new Error(`record ${uid} already exists`);
    const record: StoredRecord = {
      uid,
      key: newKey(),
      data: structuredClone(input.data),
      revision: this.#nextRevision(),
      editable: input.editable ?? true,
      ...(input.folderUid !== undefined ? { folderUid: input.folderUid } : {}),
    };
    this.#records.set(uid, record);
    return { uid, revision: record.revision };
  }

  /** create_secret once access and keys are settled (create.ts): the client chose the UID and the key. */
  createRecord(input: { uid: string; key: Buffer; data: RecordData; folderUid: string }): { uid: string; revision: number } {
    if (this.#records.has(input.uid)) throw new Error(`record ${input.uid} already exists`);
    if (!this.#folders.has(input.folderUid)) throw new Error(`no folder ${input.folderUid}`);
    const record: StoredRecord = { uid: input.uid, key: Buffer.from(input.key), data: structuredClone(input.data), revision: this.#nextRevision(), editable: true, folderUid: input.folderUid };
    this.#records.set(input.uid, record);
    return { uid: input.uid, revision: record.revision };
  }

  /** Someone edits the record in the vault (a person, another tool): new data and a new revision, as a plain update would. */
  editRecord(uid: string, data: RecordData): { uid: string; revision: number } {
    const record = this.#records.get(uid);
    if (!record) throw new Error(`no record ${uid}`);
    if (!isRecordData(data)) throw new Error('record data needs title, type and fields[] of {type, value[]}');
    this.update(record, data, record.revision);
    return { uid, revision: record.revision };
  }

  /** The service's handle on a record; callers outside the sandbox use readRecord, which copies. */
  record(uid: string): StoredRecord | undefined {
    return this.#records.get(uid);
  }

  records(): StoredRecord[] {
    return [...this.#records.values()];
  }

  readRecord(uid: string): RecordView | undefined {
    const r = this.#records.get(uid);
    return r ? view(r) : undefined;
  }

  listRecords(): RecordView[] {
    return [...this.#records.values()].map(view);
  }

  /**
   * update_secret once access is settled. An open transaction blocks every other write, plain or transactional:
   * otherwise a rollback would silently discard the plain write made after it.
   */
  update(record: StoredRecord, data: RecordData, revision: number, transaction?: { type: TransactionType; model: TransactionModel }): void {
    if (record.transaction) throw transactionInProgress(record.uid);
    if (revision !== record.revision) throw invalidRevision(record.uid, revision, record.revision);
    if (!transaction) {
      record.data = structuredClone(data);
      record.revision = this.#nextRevision();
      return;
    }
    if (transaction.model === 'pending') {
      record.transaction = { ...transaction, data: structuredClone(data), revision: record.revision };
      return;
    }
    record.transaction = { ...transaction, data: record.data, revision: record.revision };
    record.data = structuredClone(data);
    record.revision = this.#nextRevision();
  }

  finalize(record: StoredRecord): void {
    const tx = record.transaction;
    if (!tx) throw noTransaction(record.uid);
    delete record.transaction;
    if (tx.model === 'pending') {
      record.data = tx.data;
      record.revision = this.#nextRevision();
    }
  }

  rollback(record: StoredRecord): void {
    const tx = record.transaction;
    if (!tx) throw noTransaction(record.uid);
    delete record.transaction;
    if (tx.model === 'immediate') {
      record.data = tx.data;
      // A new revision rather than the old one: revisions only ever move forward, so anyone who read the
      // rolled-back data sees that the record changed again.
      record.revision = this.#nextRevision();
    }
  }
}

function view(r: StoredRecord): RecordView {
  return {
    uid: r.uid,
    data: structuredClone(r.data),
    revision: r.revision,
    editable: r.editable,
    ...(r.folderUid !== undefined ? { folderUid: r.folderUid } : {}),
    ...(r.transaction
      ? { transaction: { type: r.transaction.type, model: r.transaction.model, data: structuredClone(r.transaction.data), revision: r.transaction.revision } }
      : {}),
  };
}
