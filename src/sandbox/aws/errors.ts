// AWS errors in AWS's own terms (code, HTTP status, Sender/Receiver, message), shared by the account rules, the
// signature check and both query services, so a rule broken anywhere answers the way IAM or STS would.

export class AwsError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly type: 'Sender' | 'Receiver' = status >= 500 ? 'Receiver' : 'Sender',
  ) {
    super(message);
  }
}

/** The access-key quota of an IAM user; AWS does not let it be raised. */
export const ACCESS_KEYS_PER_USER = 2;

export const limitExceeded = () => new AwsError(409, 'LimitExceeded', `Cannot exceed quota for AccessKeysPerUser: ${ACCESS_KEYS_PER_USER}`);
export const noSuchUser = (userName: string) => new AwsError(404, 'NoSuchEntity', `The user with name ${userName} cannot be found.`);
export const noSuchKey = (accessKeyId: string) => new AwsError(404, 'NoSuchEntity', `The Access Key with id ${accessKeyId} cannot be found.`);
export const entityExists = (kind: 'User' | 'Role', name: string) => new AwsError(409, 'EntityAlreadyExists', `${kind} with name ${name} already exists.`);
export const invalidClientTokenId = () => new AwsError(403, 'InvalidClientTokenId', 'The security token included in the request is invalid.');
export const expiredToken = () => new AwsError(403, 'ExpiredToken', 'The security token included in the request is expired');
export const validationError = (message: string) => new AwsError(400, 'ValidationError', message);

/**
 * Collects constraint violations the way AWS's request validation reports them: every failure of the request in
 * one `ValidationError`, "1 validation error detected: Value 'x' at 'userName' failed to satisfy constraint: ...".
 */
export class Validation {
  #failures: string[] = [];

  fail(field: string, value: string | number | null, constraint: string): this {
    const shown = value === null ? 'null' : `'${value}'`;
    this.#failures.push(`Value ${shown} at '${field}' failed to satisfy constraint: Member must ${constraint}`);
    return this;
  }

  required(field: string, value: string | null): value is string {
    if (value === null) this.fail(field, null, 'not be null');
    return value !== null;
  }

  length(field: string, value: string, min: number, max: number): this {
    if (value.length < min) this.fail(field, value, `have length greater than or equal to ${min}`);
    if (value.length > max) this.fail(field, value, `have length less than or equal to ${max}`);
    return this;
  }

  pattern(field: string, value: string, pattern: RegExp, shown: string): this {
    if (!pattern.test(value)) this.fail(field, value, `satisfy regular expression pattern: ${shown}`);
    return this;
  }

  throwIfFailed(): void {
    const n = this.#failures.length;
    if (n === 0) return;
    throw validationError(`${n} validation error${n === 1 ? '' : 's'} detected: ${this.#failures.join('; ')}`);
  }
}
