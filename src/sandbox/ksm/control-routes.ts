// The KSM part of the sandbox control API: seed and read the vault, hand out Gateway configs, switch the
// transaction model and tune the request budget, none of which the real service can do. Faults go through the generic POST /faults.
import { ControlError, type ControlApi } from '../control.js';
import { KSM_DEFAULT_BUDGET, type KsmBudget } from './budget.js';
import type { KsmService } from './service.js';
import { TRANSACTION_MODELS, type TransactionModel, isRecordData } from './vault.js';

function object(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ControlError(400, 'the body must be a JSON object');
  return body as Record<string, unknown>;
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !value) throw new ControlError(400, `"${key}" must be a non-empty string`);
  return value;
}

function optionalScope(body: Record<string, unknown>, key: string): string[] | 'all' | undefined {
  const value = body[key];
  if (value === undefined || value === 'all') return value;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new ControlError(400, `"${key}" must be "all" or an array of UIDs`);
  return value as string[];
}

export function registerKsmControl(api: ControlApi, ksm: KsmService): void {
  api.route('GET', '/ksm/records', () => ksm.listRecords());

  api.route('GET', '/ksm/records/:uid', ({ params }) => {
    const record = ksm.readRecord(params.uid!);
    if (!record) throw new ControlError(404, `no record ${params.uid}`);
    return record;
  });

  api.route('POST', '/ksm/records', ({ body }) => {
    const input = object(body);
    if (!isRecordData(input.data)) throw new ControlError(400, '"data" must be a record: {title, type, fields: [{type, value: []}], custom?, notes?}');
    const editable = input.editable;
    if (editable !== undefined && typeof editable !== 'boolean') throw new ControlError(400, '"editable" must be a boolean');
    const uid = optionalString(input, 'uid');
    const folderUid = optionalString(input, 'folderUid');
    if (folderUid !== undefined && !ksm.listFolders().some((f) => f.uid === folderUid)) throw new ControlError(404, `no folder ${folderUid}`);
    if (uid !== undefined && ksm.readRecord(uid)) throw new ControlError(409, `record ${uid} already exists`);
    return ksm.seedRecord({
      data: input.data,
      ...(uid !== undefined ? { uid } : {}),
      ...(folderUid !== undefined ? { folderUid } : {}),
      ...(editable !== undefined ? { editable } : {}),
    });
  });

  api.route('GET', '/ksm/folders', () => ksm.listFolders());

  api.route('POST', '/ksm/folders', ({ body }) => ({ uid: ksm.createFolder(optionalString(object(body), 'name')) }));

  api.route('GET', '/ksm/transaction-model', () => ({ model: ksm.transactionModel }));

  api.route('PUT', '/ksm/transaction-model', ({ body }) => {
    const model = object(body).model;
    if (!(TRANSACTION_MODELS as readonly unknown[]).includes(model)) throw new ControlError(400, `"model" must be one of ${TRANSACTION_MODELS.join(', ')}`);
    ksm.setTransactionModel(model as TransactionModel);
    return { model: ksm.transactionModel };
  });

  // The request budget (budget.ts): GET reads it, PUT changes the fields given (e.g. {"burst":1,"perSecond":1,
  // "quietSeconds":1,"retryAfter":true} for a test that wants to be throttled at once), DELETE restores the one the
  // sandbox started with and lets every client in again.
  api.route('GET', '/ksm/budget', () => ksm.budgetSettings);

  api.route('PUT', '/ksm/budget', ({ body }) => {
    const input = object(body);
    const unknown = Object.keys(input).filter((k) => !(k in KSM_DEFAULT_BUDGET));
    if (unknown.length > 0) throw new ControlError(400, `unknown budget field(s) ${unknown.join(', ')}; known: ${Object.keys(KSM_DEFAULT_BUDGET).join(', ')}`);
    try {
      return ksm.setBudget(input as Partial<KsmBudget>);
    } catch (err) {
      throw new ControlError(400, err instanceof Error ? err.message : String(err));
    }
  });

  api.route('DELETE', '/ksm/budget', () => ksm.resetBudget());

  api.route('POST', '/ksm/clients', ({ body }) => {
    const input = object(body);
    const hostname = optionalString(input, 'hostname');
    if (!hostname) throw new ControlError(400, '"hostname" is required, e.g. "localhost:8443"');
    const folders = optionalScope(input, 'folders');
    const records = optionalScope(input, 'records');
    const title = optionalString(input, 'title');
    const readOnly = optionalScope(input, 'readOnlyFolders');
    if (readOnly === 'all') throw new ControlError(400, '"readOnlyFolders" must be an array of folder UIDs');
    return ksm.createClient(hostname, {
      ...(readOnly !== undefined ? { readOnlyFolders: readOnly } : {}),
      ...(folders !== undefined ? { folders } : {}),
      ...(records !== undefined ? { records } : {}),
      ...(title !== undefined ? { title } : {}),
    });
  });
}
