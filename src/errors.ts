// Typed errors with stable codes. The gateway keeps only the exit code and the output, so every failure ends
// as one line `keeper-rotate: CODE: message` and an exit code from the table below; the README lists every code
// (a test keeps the two in step). Messages never carry secret values: they are built from IDs and names only,
// and the logger scrubs any registered secret as a second line of defence. A RotateError never keeps an SDK's
// error as it was thrown: its cause is a scrubbed copy (secret.ts `scrubError`), because SDKs attach the bodies
// they sent and received to their errors, and anything that inspects the error would print them.
import { escapeControls } from './log.js';
import { redact, scrubError } from './secret.js';

/** What the exit code tells the gateway (and the person reading its log). */
export const ExitCode = {
  /** Rotated, saved and verified; or a deliberate no-op. */
  Ok: 0,
  /** A bug: an error this tool did not expect. The record is left as the steps before it left it. */
  Internal: 1,
  /**
   * Rejected before any change: bad input, settings or configuration, found before any network call, or what only
   * the target can tell (the admin's own user, a user outside the allow-list) found by reading it. Nothing was written.
   */
  Rejected: 2,
  /** The rotation did not happen or was undone; the record still holds the credential it held before. */
  Failed: 3,
  /**
   * The record holds a working, verified credential, but a follow-up did not finish: retiring old credentials, or
   * delivering the record's credential to a destination (which then still holds a previous one, kept valid).
   */
  CleanupIncomplete: 4,
  /** Failed and something needs a person: a credential this run created could not be removed, or a recovery is pending. */
  NeedsAttention: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const ERROR_CODES = {
  INPUT_EMPTY: ExitCode.Rejected,
  INPUT_NOT_PIPED: ExitCode.Rejected,
  INPUT_TIMEOUT: ExitCode.Rejected,
  INPUT_TOO_LARGE: ExitCode.Rejected,
  INPUT_NOT_BASE64: ExitCode.Rejected,
  INPUT_NOT_JSON: ExitCode.Rejected,
  INPUT_INVALID: ExitCode.Rejected,
  USAGE: ExitCode.Rejected,
  CONFIG_NOT_FOUND: ExitCode.Rejected,
  CONFIG_INVALID: ExitCode.Rejected,
  PROXY_INVALID: ExitCode.Rejected,
  RECORD_NOT_FOUND: ExitCode.Rejected,
  RECORD_WRONG_TYPE: ExitCode.Rejected,
  RECORD_FIELD_MISSING: ExitCode.Rejected,
  RECORD_FIELD_INVALID: ExitCode.Rejected,
  SETTING_INVALID: ExitCode.Rejected,
  ADMIN_CREDENTIALS_NOT_FOUND: ExitCode.Rejected,
  ADMIN_CREDENTIALS_INVALID: ExitCode.Rejected,
  RECORD_WRONG_SCRIPT: ExitCode.Rejected,
  TARGET_IS_ADMIN: ExitCode.Rejected,
  TARGET_NOT_ALLOWED: ExitCode.Rejected,
  ADOPTION_AMBIGUOUS: ExitCode.Rejected,
  KEEPER_REQUEST_FAILED: ExitCode.Failed,
  KEEPER_ACCESS_DENIED: ExitCode.Failed,
  KEEPER_THROTTLED: ExitCode.Failed,
  KEEPER_TIMEOUT: ExitCode.Failed,
  KEEPER_REVISION_CONFLICT: ExitCode.Failed,
  KEEPER_TRANSACTION_OPEN: ExitCode.Failed,
  KEEPER_NO_TRANSACTION: ExitCode.Failed,
  KEEPER_FINALIZE_UNCERTAIN: ExitCode.NeedsAttention,
  DEADLINE_EXCEEDED: ExitCode.Failed,
  VERIFY_FAILED: ExitCode.Failed,
  CLEANUP_INCOMPLETE: ExitCode.CleanupIncomplete,
  DELIVERY_INCOMPLETE: ExitCode.CleanupIncomplete,
  DELIVERY_FAILED: ExitCode.CleanupIncomplete,
  DESTINATION_NOT_ALLOWED: ExitCode.Rejected,
  TARGET_AUTH_FAILED: ExitCode.Failed,
  TARGET_PERMISSION_DENIED: ExitCode.Failed,
  TARGET_NOT_FOUND: ExitCode.Failed,
  TARGET_LIMIT_REACHED: ExitCode.Failed,
  TARGET_POLICY_REJECTED: ExitCode.Failed,
  TARGET_THROTTLED: ExitCode.Failed,
  TARGET_TIMEOUT: ExitCode.Failed,
  TARGET_REQUEST_FAILED: ExitCode.Failed,
  STATE_DIR_UNAVAILABLE: ExitCode.Rejected,
  ROTATION_IN_PROGRESS: ExitCode.Failed,
  ROTATION_SUPERSEDED: ExitCode.Failed,
  RECOVERY_PENDING: ExitCode.NeedsAttention,
  RECOVERY_UNREADABLE: ExitCode.NeedsAttention,
  RECOVERY_STALE: ExitCode.NeedsAttention,
  RECOVERY_RETARGETED: ExitCode.NeedsAttention,
  INTERNAL: ExitCode.Internal,
} as const satisfies Record<string, ExitCode>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface RotateErrorOptions {
  cause?: unknown;
  /** Override the code's usual exit code (e.g. a failure that left something for a person to clean up). */
  exitCode?: ExitCode;
  /**
   * The service answered with a definite refusal (a 4xx it explains): the request was not applied. Unset means
   * the outcome is unknown (a timeout, a dropped connection, a 5xx, an unreadable reply): a create may have
   * made a credential, a replace may have replaced it.
   */
  refused?: boolean;
  /** The HTTP status of the reply the call failed on; unset when no reply came (a timeout, a dropped connection). */
  status?: number;
}

export class RotateError extends Error {
  override readonly name = 'RotateError';
  readonly code: ErrorCode;
  readonly exitCode: ExitCode;
  readonly refused: boolean;
  readonly status: number | undefined;

  constructor(code: ErrorCode, message: string, options: RotateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause instanceof RotateError ? options.cause : scrubError(options.cause) });
    this.code = code;
    this.exitCode = options.exitCode ?? ERROR_CODES[code];
    this.refused = options.refused ?? false;
    this.status = options.status;
  }

  /**
   * The one line the gateway log gets: no raw line break or other control character, whatever the message held
   * (it may quote a record's type or a target's name), each written as a visible escape instead.
   */
  toLine(): string {
    return escapeControls(`keeper-rotate: ${this.code}: ${this.message.trim()}`);
  }
}

export function isRotateError(err: unknown): err is RotateError {
  return err instanceof RotateError;
}

/** Did a call certainly not take effect? Only when the service refused it in so many words. */
export function refusedOutright(err: unknown): boolean {
  return err instanceof RotateError && err.refused;
}

/**
 * Short, single-line description of any thrown value, for wrapping SDK errors; scrubbed of secrets before it is
 * cut short, since a cut through a secret leaves a piece `redact` cannot recognise.
 */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    const name = err.name && err.name !== 'Error' ? `${err.name}: ` : '';
    return redact(`${name}${err.message}`).replace(/\s+/g, ' ').slice(0, 300);
  }
  return redact(String(err)).replace(/\s+/g, ' ').slice(0, 300);
}
