// KSM error replies. The real service answers every failure with one JSON shape from its "api validation
// exception" handler; the SDK throws the first 1000 characters of that body as the Error message, so callers (and
// our scripts' error classification) see exactly this text. Codes and messages marked "observed" come from real
// responses quoted in public Keeper SDK issues and fixtures; the rest are our choice, explained where they are made.
import type { Reply } from '../service.js';

export class KsmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Extra top-level fields, e.g. `key_id` on a key-rotation hint. */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'KsmError';
  }
}

export interface ErrorContext {
  host: string;
  endpoint: string;
  userAgent: string;
}

/** `{"path":"https://<host>/api/rest/sm/v1/<endpoint>, POST, <User-Agent>","additional_info":"",...}` */
export function errorReply(err: KsmError, ctx: ErrorContext): Reply {
  const body = {
    path: `https://${ctx.host}/api/rest/sm/v1/${ctx.endpoint}, POST, ${ctx.userAgent}`,
    additional_info: '',
    location: 'default exception manager - api validation exception',
    error: err.code,
    message: err.message,
    ...err.extra,
  };
  return { status: err.status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

export const badRequest = (message: string) => new KsmError(400, 'bad_request', message);

// Observed: a token whose client id the backend does not know gets this (Keeper-Security/secrets-manager#278).
export const unknownClient = () => new KsmError(403, 'access_denied', 'Unable to validate application access');

// Observed: sdk/fake_data.json and secrets-manager#278.
export const invalidSignature = () => new KsmError(403, 'access_denied', 'Signature is invalid');

// Our choice: Keeper does not tell an app whether a record it cannot see exists, so unknown and unshared records
// get the same access_denied; the message is ours (no capture of the real one is public).
export const recordNotAccessible = (uid: string) => new KsmError(403, 'access_denied', `Record ${uid} is not shared with this application`);

// Our choice: a read-only share is an access problem, not a bad request, so it is access_denied too.
export const recordNotEditable = (uid: string) => new KsmError(403, 'access_denied', `Record ${uid} is read-only for this application`);

// Our choice: no public source shows the real body for a stale revision. The SDK sources and tests name no code for
// it either; `invalid_revision` with 400 says what went wrong, and the SDK treats every non-200 alike anyway.
export const invalidRevision = (uid: string, sent: number, current: number) =>
  new KsmError(400, 'invalid_revision', `Record ${uid} revision ${sent} does not match the current revision ${current}`);

// Our choice: a second writer while a rotation is open is a conflict on the record, reported like a revision
// problem (400, validation error) rather than a permission one.
export const transactionInProgress = (uid: string) =>
  new KsmError(400, 'transaction_in_progress', `Record ${uid} has an open update transaction; finalize or roll it back first`);

// Our choice: finalize/rollback with nothing to complete is a client bug, so a 400 naming the missing transaction.
export const noTransaction = (uid: string) => new KsmError(400, 'no_transaction', `Record ${uid} has no open update transaction`);

// Observed shape: the SDK switches to `key_id` and retries, or (with a custom serverPublicKey, as sandbox configs
// have) throws "Server rejected the custom server public key". The status is our choice; the SDK ignores it.
export const wrongServerKey = (keyId: string) => new KsmError(400, 'key', `Unknown public key id; use ${keyId}`, { key_id: Number(keyId) });
