// What an AWS SDK v3 error means for a rotation, shared by the IAM/STS target and the ECR target: a stable code
// (src/errors.ts), whether the service refused the call outright (so it was not applied), and a message scrubbed of
// secrets. No SDK import here: each target's SDK lives in a lazily loaded chunk of its own (scripts/build.ts), and
// this module sits beside the pipeline in the main bundle.
import { RotateError, type ErrorCode } from '../errors.js';
import { redact } from '../secret.js';

/** Errors that mean "this key does not (yet) authenticate": IAM's eventual consistency answers with these. */
export const NOT_YET = new Set(['InvalidClientTokenId', 'SignatureDoesNotMatch', 'InvalidAccessKeyId', 'AuthFailure']);
/** The JSON protocol services' (ECR's) names for a key or signature they refuse. */
const JSON_AUTH = new Set(['UnrecognizedClientException', 'InvalidSignatureException', 'IncompleteSignatureException', 'MissingAuthenticationTokenException']);
/**
 * Throttling error codes, as the SDK's own retry strategy knows them (@smithy/service-error-classification
 * THROTTLING_ERROR_CODES); STS answers `Throttling` (HTTP 400, no Retry-After) when a caller exceeds its rate.
 */
export const THROTTLED = new Set(['Throttling', 'ThrottlingException', 'ThrottledException', 'RequestThrottledException', 'TooManyRequestsException', 'ProvisionedThroughputExceededException', 'TransactionInProgressException', 'RequestLimitExceeded', 'BandwidthLimitExceeded', 'LimitExceededException', 'RequestThrottled', 'SlowDown', 'PriorRequestNotComplete', 'EC2ThrottledException']);

export interface SdkError {
  name?: string;
  message?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number };
}

function codeFor(err: SdkError): ErrorCode {
  const name = err.name ?? '';
  const status = err.$metadata?.httpStatusCode;
  if (name === 'TimeoutError' || name === 'AbortError' || name === 'RequestTimeout') return 'TARGET_TIMEOUT';
  if (name === 'NoSuchEntityException' || name === 'NoSuchEntity') return 'TARGET_NOT_FOUND';
  if (name === 'LimitExceededException' || name === 'LimitExceeded') return 'TARGET_LIMIT_REACHED';
  if (name === 'Throttling' || name === 'ThrottlingException' || status === 429) return 'TARGET_THROTTLED';
  if (NOT_YET.has(name) || JSON_AUTH.has(name) || name === 'ExpiredToken' || name === 'ExpiredTokenException' || name === 'CredentialsProviderError') return 'TARGET_AUTH_FAILED';
  if (name === 'AccessDenied' || name === 'AccessDeniedException' || status === 403) return 'TARGET_PERMISSION_DENIED';
  return 'TARGET_REQUEST_FAILED';
}

export function awsError(action: string, err: unknown): RotateError {
  if (err instanceof RotateError) return err;
  const e = (err ?? {}) as SdkError;
  const code = codeFor(e);
  const detail = `${e.name ?? 'Error'}: ${(e.message ?? String(err)).split('\n')[0]}`;
  const hint = code === 'TARGET_PERMISSION_DENIED' ? ' (see the README for the IAM permissions the admin needs)' : '';
  // A service exception the SDK parsed from a 4xx reply: the service refused the call, so it was not applied.
  // Writes are sent once (no SDK retries), so this one answer is the whole story.
  const status = e.$metadata?.httpStatusCode;
  const refused = e.$fault === 'client' && status !== undefined && status >= 400 && status < 500 && status !== 408;
  return new RotateError(code, `AWS ${action} failed: ${redact(detail).slice(0, 300)}${hint}`, { cause: err, refused, ...(status ? { status } : {}) });
}
