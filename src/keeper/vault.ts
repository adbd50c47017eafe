// Keeper vault access for a rotation: fetch the records a run needs in one call, and save through a rotation
// transaction that the server checks against the revision we read. Every SDK failure becomes a RotateError
// with a stable code; the SDK's messages (raw server bodies) are scrubbed and cut to one line.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  KeeperThrottleError,
  UpdateTransactionType,
  completeTransaction,
  createSecret2,
  getFolders,
  getSecrets,
  inMemoryStorage,
  updateSecret2,
  type KeeperRecord,
  type SecretManagerOptions,
} from '@keeper-security/secrets-manager-core';
import type { Deadline } from '../deadline.js';
import { RotateError, describe, type ErrorCode } from '../errors.js';
import { redact } from '../secret.js';
import type { GatewayConfig } from './config.js';
import type { RecordData } from './record-data.js';
import type { ThrottleGate } from './throttle-gate.js';
import { KsmTimeoutError, type KsmThrottle, createKsmTransport } from './transport.js';

/**
 * The shortest wait after a throttle without retry_after. Keeper's counter clears only once a client has sent the
 * endpoint nothing for 10 s, and every request before that restarts the count ("memcached TTL 10s that resets on
 * every request", KSM-876); the SDKs' first backoff is 11 s for that reason, but SDK 17.5.0 jitters it by ±25%,
 * down to 8.25 s, a retry Keeper would refuse again (secrets-manager PR #1054: "wasting the attempt and resetting
 * the counter"). Later backoffs (22 s and up, jittered) are already longer.
 */
const THROTTLE_QUIET_MS = 11_000;
/** SDK 17.5.0's first throttle back-off is 11 s with ±25% jitter: anything longer is a second or later attempt. */
const SDK_FIRST_BACKOFF_MAX_MS = 13_750;
/** A retry after a throttle wait needs time to be sent and answered; less than this left, the run gives up. */
const THROTTLE_RETRY_MARGIN_MS = 5_000;

export interface VaultRecord {
  readonly uid: string;
  readonly revision: number;
  readonly title: string;
  readonly type: string;
  /** The record as fetched. Treat as read-only: plan changes on a copy (record.ts `cloneData`). */
  readonly data: RecordData;
}

export interface VaultOptions {
  deadline: Deadline;
  /** Bound for one KSM request (default 30 s), shortened by the deadline. */
  requestTimeoutMs?: number;
  onRequest?: (endpoint: string) => void;
  /**
   * For callers that send requests side by side (discover's creates): a throttle pauses all of them together, and
   * every request, a retry or a new one, waits for the pause to end. Without it, each request backs off alone.
   */
  gate?: ThrottleGate;
}

/** What one failed KSM call means, judged from the error the SDK threw (it carries the server's body). */
export function classifyKsmError(err: unknown): ErrorCode {
  if (err instanceof KeeperThrottleError) return 'KEEPER_THROTTLED';
  if (err instanceof KsmTimeoutError) return 'KEEPER_TIMEOUT';
  const text = err instanceof Error ? err.message : String(err);
  let body: { error?: unknown; result_code?: unknown; message?: unknown } | undefined;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const code = String(body?.error ?? body?.result_code ?? '');
  const message = String(body?.message ?? '');
  if (/revision/i.test(code) || /revision/i.test(message)) return 'KEEPER_REVISION_CONFLICT';
  // Finalize or rollback with nothing open (someone else completed it, or a save that never landed) is not a
  // transaction in the way of a save.
  if (/no_?transaction/i.test(code)) return 'KEEPER_NO_TRANSACTION';
  if (/transaction/i.test(code)) return 'KEEPER_TRANSACTION_OPEN';
  if (code === 'throttled') return 'KEEPER_THROTTLED';
  if (code === 'access_denied') return 'KEEPER_ACCESS_DENIED';
  return 'KEEPER_REQUEST_FAILED';
}

/**
 * `status`: the HTTP status of the reply the SDK failed on, when there was one. A 4xx is Keeper refusing the call
 * (it was not applied: a save opened no transaction); a 5xx, a timeout or a lost connection leave it unknown.
 * Throttling is a refusal too (the SDK gives up only after every attempt was throttled).
 */
function ksmError(action: string, err: unknown, status?: number): RotateError {
  // Our own errors (a throttle wait the deadline cannot hold: KEEPER_THROTTLED) pass through the SDK unchanged.
  if (err instanceof RotateError) return err;
  const code = classifyKsmError(err);
  const refused = code === 'KEEPER_THROTTLED' || (status !== undefined && status >= 400 && status < 500 && status !== 408);
  const detail = redact(describe(err)).replace(/^Error: /, '');
  const what = status === undefined ? detail || 'no reply' : `HTTP ${status}${detail ? `: ${detail}` : ', empty body'}`;
  return new RotateError(code, `Keeper ${action} failed: ${what}`, { cause: err, refused, ...(status !== undefined ? { status } : {}) });
}

function throttledPastDeadline(throttle: KsmThrottle | undefined, waitMs: number, deadline: Deadline): RotateError {
  const what = throttle ? `${throttle.endpoint} (HTTP ${throttle.status})` : 'a request';
  const asked =
    throttle?.retryAfterMs !== undefined ? `asks for ${Math.ceil(throttle.retryAfterMs / 1000)} s before a retry` : 'gave no retry_after (its count clears after 10 s without a request)';
  return new RotateError(
    'KEEPER_THROTTLED',
    `Keeper throttled ${what} and ${asked}; waiting ${Math.ceil(waitMs / 1000)} s leaves less than ${THROTTLE_RETRY_MARGIN_MS / 1000} s of the ` +
      `${Math.floor(deadline.remaining() / 1000)} s left of the run's deadline of ${Math.round(deadline.totalMs / 1000)} s for the retry; the request was not applied`,
    { refused: true, ...(throttle ? { status: throttle.status } : {}) },
  );
}

export class KeeperVault {
  readonly #options: SecretManagerOptions;
  readonly #close: () => void;
  readonly #lastStatus: () => number | undefined;
  /** Record keys live only in the SDK's in-memory cache, which every getSecrets call clears. */
  #fetched = new Map<string, KeeperRecord>();

  constructor(config: GatewayConfig, options: VaultOptions) {
    const transport = createKsmTransport({
      deadline: options.deadline,
      requestTimeoutMs: options.requestTimeoutMs ?? options.deadline.requestTimeoutMs,
      ...(options.onRequest ? { onRequest: options.onRequest } : {}),
    });
    this.#close = transport.close;
    this.#lastStatus = transport.lastStatus;
    const deadline = options.deadline;
    const gate = options.gate;
    this.#options = {
      // In memory only: nothing the SDK decides to save may reach the gateway's config file.
      storage: inMemoryStorage({ ...config.values }),
      queryFunction: gate
        ? async (url, transmissionKey, payload) => {
            await gate.open();
            return transport.query(url, transmissionKey, payload);
          }
        : transport.query,
      // The SDK retries a throttled request five times, backing off 11 s to 176 s (or retry_after), and calls this
      // to wait. The wait is never shorter than Keeper asked for, and a wait the run's deadline cannot hold (with
      // time left for the retry) ends the run with KEEPER_THROTTLED at once: the request was refused, not applied.
      throttleSleep: async (ms: number) => {
        const throttle = transport.lastThrottle();
        const wait = Math.max(ms, throttle?.retryAfterMs ?? THROTTLE_QUIET_MS, gate?.remaining() ?? 0);
        if (wait + THROTTLE_RETRY_MARGIN_MS > deadline.remaining()) throw throttledPastDeadline(throttle, wait, deadline);
        if (!gate) return sleep(wait);
        // Measured from the last throttled reply of all the requests in flight: each one restarted Keeper's count.
        // The SDK's first back-off (11 s, jittered to spread independent clients) becomes the quiet period itself;
        // a request throttled again gets the SDK's longer ones (22 s and up), in case Keeper's limit is stricter.
        const escalated = ms > SDK_FIRST_BACKOFF_MAX_MS ? ms : 0;
        gate.hold(Math.max(throttle?.retryAfterMs ?? THROTTLE_QUIET_MS, escalated));
        await gate.open();
      },
    };
  }

  /**
   * Fetches records in one request. A second fetch makes records from the first unsaveable (the SDK drops
   * their keys), so a run asks for everything it needs at once; `save` refuses records from an older fetch.
   */
  async fetch(uids: string[]): Promise<Map<string, VaultRecord>> {
    const wanted = [...new Set(uids)];
    let records: KeeperRecord[];
    try {
      records = (await getSecrets(this.#options, wanted)).records;
    } catch (err) {
      throw ksmError('fetching records', err, this.#lastStatus());
    }
    this.#fetched = new Map(records.map((r) => [r.recordUid, r]));
    const out = new Map<string, VaultRecord>();
    for (const r of records) {
      if (!wanted.includes(r.recordUid)) continue;
      const data = r.data as RecordData;
      out.set(r.recordUid, { uid: r.recordUid, revision: Number(r.revision ?? 0), title: String(data.title ?? ''), type: String(data.type ?? ''), data });
    }
    return out;
  }

  /**
   * Opens a rotation transaction: the server accepts the new data only if the record is still at the revision
   * we read, so a concurrent edit fails here instead of being overwritten. Finish with `finalize` or `rollback`.
   */
  async saveInTransaction(record: VaultRecord, data: RecordData): Promise<void> {
    const raw = this.#fetched.get(record.uid);
    if (!raw || Number(raw.revision) !== record.revision) {
      // Never sent, so certainly not applied.
      throw new RotateError('INTERNAL', `record ${record.uid} must be saved from the latest fetch`, { refused: true });
    }
    try {
      await updateSecret2(this.#options, { ...raw, data }, { transactionType: UpdateTransactionType.Rotation });
    } catch (err) {
      throw ksmError(`saving record ${record.uid}`, err, this.#lastStatus());
    }
  }

  /**
   * A plain update (no rotation transaction), checked against the revision we read: for fields that hold no
   * credential (a run's outcome). Keeper refuses it while any transaction is open on the record.
   */
  async savePlain(record: VaultRecord, data: RecordData): Promise<void> {
    const raw = this.#fetched.get(record.uid);
    if (!raw || Number(raw.revision) !== record.revision) {
      throw new RotateError('INTERNAL', `record ${record.uid} must be saved from the latest fetch`, { refused: true });
    }
    try {
      await updateSecret2(this.#options, { ...raw, data });
    } catch (err) {
      throw ksmError(`saving record ${record.uid}`, err, this.#lastStatus());
    }
  }

  async finalize(uid: string): Promise<void> {
    try {
      await completeTransaction(this.#options, uid, false);
    } catch (err) {
      throw ksmError(`finalizing the update of record ${uid}`, err, this.#lastStatus());
    }
  }

  async rollback(uid: string): Promise<void> {
    try {
      await completeTransaction(this.#options, uid, true);
    } catch (err) {
      throw ksmError(`rolling back the update of record ${uid}`, err, this.#lastStatus());
    }
  }

  /**
   * Every record shared with the application, in one get_secret request with no filter (the protocol's all-records
   * form): discover's idempotency check and the fleet report read them all this way, not a request per record.
   */
  async fetchAll(): Promise<VaultRecord[]> {
    let records: KeeperRecord[];
    try {
      records = (await getSecrets(this.#options)).records;
    } catch (err) {
      throw ksmError('fetching records', err, this.#lastStatus());
    }
    this.#fetched = new Map(records.map((r) => [r.recordUid, r]));
    return records.map((r) => {
      const data = r.data as RecordData;
      return { uid: r.recordUid, revision: Number(r.revision ?? 0), title: String(data.title ?? ''), type: String(data.type ?? ''), data };
    });
  }

  /**
   * The application's shared folders (get_folders), which also puts their keys in the SDK's cache for `create`:
   * get_secret would leave out a folder that holds no record yet (Keeper's SDK guides: "there must be at least one
   * record in the shared folder" for createSecret, which warms its keys with get_secret).
   */
  async sharedFolders(): Promise<Array<{ uid: string; name: string }>> {
    try {
      return (await getFolders(this.#options)).map((f) => ({ uid: f.folderUid, name: f.name ?? '' }));
    } catch (err) {
      throw ksmError('listing shared folders', err, this.#lastStatus());
    }
  }

  /** create_secret in a shared folder (call `sharedFolders` first: it loads the folder keys); returns the new UID. */
  async create(folderUid: string, data: RecordData): Promise<string> {
    try {
      return await createSecret2(this.#options, { folderUid }, data);
    } catch (err) {
      throw ksmError(`creating a record in folder ${folderUid}`, err, this.#lastStatus());
    }
  }

  close(): void {
    this.#close();
  }
}
