// The `ecr` sandbox service: ECR's API in awsJson1.1, as the unmodified @aws-sdk/client-ecr speaks it, with the
// one operation a pull-secret refresher calls, GetAuthorizationToken. The wire format:
// - `POST /`, `Content-Type: application/x-amz-json-1.1`, `X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.
//   GetAuthorizationToken`, a JSON body (`{}` or `{"registryIds": [...]}`), SigV4 signed for `ecr` in a region of
//   the account's partition (the SDK's runtimeConfig.shared.js: protocol AwsJson1_1Protocol, serviceTarget
//   "AmazonEC2ContainerRegistry_V20150921"; botocore's ecr/2015-09-21/service-2.json: "jsonVersion":"1.1",
//   "targetPrefix":"AmazonEC2ContainerRegistry_V20150921", "signingName":"ecr").
// - The reply `{"authorizationData":[{"authorizationToken", "expiresAt", "proxyEndpoint"}]}`: the token is
//   base64("AWS:" + password), `expiresAt` a timestamp in awsJson's default form, epoch seconds as a JSON number
//   (the SDK's schema types it 4, a timestamp), and one entry per registry ID asked for, the caller's own
//   registry when none is (moto/ecr/responses.py get_authorization_token does the same). `registryIds` is
//   deprecated ("The returned authorization token can be used to access any Amazon ECR registry that the IAM
//   principal has access to") but still accepted: 1 to 10 twelve-digit IDs.
// - Errors `{"__type": "...", "message": "..."}` with the code in `__type`, which the SDK turns into the
//   exception's name: UnrecognizedClientException / InvalidSignatureException / ExpiredTokenException (the
//   JSON services' names for SigV4 failures, HTTP 400), AccessDeniedException (400) for a principal without
//   `ecr:GetAuthorizationToken`, InvalidParameterException (400) for a bad registryIds, ThrottlingException (400)
//   past the account's budget, UnknownOperationException for any other target.
import type { Budget } from '../rate-limit.js';
import { RequestBudget, type Reply, type Route, type SandboxRequest, type SandboxService } from '../service.js';
import type { AwsAccount, Principal } from './account.js';
import type { EcrTokens } from './ecr-tokens.js';
import { AwsError } from './errors.js';
import { newRequestId } from './formats.js';
import { signingScope, type QueryBudgetOptions } from './query.js';
import { verifySigV4 } from './sigv4.js';
import { regionInPartition } from './sts.js';

export const ECR_SERVICE = 'ecr';
export const ECR_TARGET_PREFIX = 'AmazonEC2ContainerRegistry_V20150921';
export const ECR_OPERATIONS = ['GetAuthorizationToken'] as const;
export type EcrOperation = (typeof ECR_OPERATIONS)[number];
export const ECR_ACTION = 'ecr:GetAuthorizationToken';

/**
 * "the throttle for the GetAuthorizationToken action is 20 transaction per second (TPS), with up to a 200 TPS
 * burst allowed. In each region, each account receives a bucket that can store up to 200 GetAuthorizationToken
 * credits" (https://docs.aws.amazon.com/AmazonECR/latest/userguide/common-errors.html, "HTTP 429: Too Many
 * Requests or ThrottleException").
 */
export const ECR_DEFAULT_BUDGET: Budget = { burst: 200, perSecond: 20 };

/** The codes the query services use for a bad signature, as the JSON services name them. */
const JSON_CODES: Record<string, string> = {
  InvalidClientTokenId: 'UnrecognizedClientException',
  SignatureDoesNotMatch: 'InvalidSignatureException',
  IncompleteSignature: 'IncompleteSignatureException',
  MissingAuthenticationToken: 'MissingAuthenticationTokenException',
  ExpiredToken: 'ExpiredTokenException',
  AccessDenied: 'AccessDeniedException',
};

const REGISTRY_ID = /^[0-9]{12}$/;

export class EcrService implements SandboxService {
  readonly name = ECR_SERVICE;
  readonly budget: RequestBudget | undefined;

  constructor(
    private readonly account: AwsAccount,
    private readonly tokens: EcrTokens,
    /** Where the registry listens (the proxyEndpoint of every login): known once it is served. */
    private readonly registryUrl: () => string,
    budget: QueryBudgetOptions = {},
  ) {
    const chosen = budget.budget === true ? ECR_DEFAULT_BUDGET : budget.budget || undefined;
    this.budget = chosen ? new RequestBudget([{ name: 'requests', budget: chosen }], budget.budgetNow) : undefined;
  }

  route(req: SandboxRequest): Route | undefined {
    if (req.path !== '/' || req.method !== 'POST') return undefined;
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.startsWith(`${ECR_TARGET_PREFIX}.`) ? target.slice(ECR_TARGET_PREFIX.length + 1) : '';
    // Per account and region, as the quota is counted; a key the account does not know fails authentication anyway.
    const scope = signingScope(req);
    const client = scope && this.account.knowsAccessKey(scope.accessKeyId) ? `account/${this.account.accountId}/${scope.region}` : undefined;
    return { operation: operation || '(no target)', ...(client ? { client } : {}), handle: () => this.#handle(req, operation) };
  }

  throttleReply(): Reply {
    return this.errorReply(new AwsError(400, 'ThrottlingException', 'Rate exceeded'), newRequestId());
  }

  errorReply(err: AwsError, requestId: string): Reply {
    const type = JSON_CODES[err.code] ?? err.code;
    // ECR answers every client error with 400 (a bad signature and AccessDenied too, where the query services say
    // 403); a server error keeps its 5xx.
    const status = err.status >= 500 ? err.status : 400;
    return this.#reply(status, { __type: type, message: err.message }, requestId);
  }

  #handle(req: SandboxRequest, operation: string): Reply {
    const requestId = newRequestId();
    try {
      let principal: Principal | undefined;
      const verified = verifySigV4(req, {
        service: 'ecr',
        regionAllowed: (region) => regionInPartition(region, this.account.partition),
        nowMs: this.account.now(),
        secretFor: (accessKeyId, token) => {
          const resolved = this.account.resolveCredentials(accessKeyId, token);
          principal = resolved.principal;
          return resolved.secretAccessKey;
        },
      });
      if (!principal) throw new Error('the signature check passed without resolving a principal');
      this.account.recordKeyUse(verified.accessKeyId, 'ecr', verified.region);
      if (!(ECR_OPERATIONS as readonly string[]).includes(operation)) throw new AwsError(400, 'UnknownOperationException', '');
      const contentType = String(req.headers['content-type'] ?? '').toLowerCase();
      if (!contentType.startsWith('application/x-amz-json-1.1')) throw new AwsError(400, 'SerializationException', `Unsupported content type: ${contentType || '(none)'}`);
      let body: unknown;
      try {
        body = req.body.length === 0 ? {} : JSON.parse(req.body.toString('utf8'));
      } catch {
        throw new AwsError(400, 'SerializationException', 'Start of structure or map found where not expected.');
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AwsError(400, 'SerializationException', 'Start of list found where not expected');
      return this.#getAuthorizationToken(body as Record<string, unknown>, principal, verified.region, requestId);
    } catch (err) {
      if (err instanceof AwsError) return this.errorReply(err, requestId);
      throw err;
    }
  }

  #getAuthorizationToken(body: Record<string, unknown>, principal: Principal, region: string, requestId: string): Reply {
    const ids = body.registryIds;
    let registryIds: string[];
    if (ids === undefined || ids === null) registryIds = [this.account.accountId];
    else {
      if (!Array.isArray(ids) || ids.length < 1 || ids.length > 10) {
        throw new AwsError(400, 'InvalidParameterException', "Invalid parameter at 'registryIds' failed to satisfy constraint: 'Member must have length less than or equal to 10 and greater than or equal to 1'");
      }
      for (const id of ids) {
        if (typeof id !== 'string' || !REGISTRY_ID.test(id)) {
          throw new AwsError(400, 'InvalidParameterException', `Invalid parameter at 'registryIds' failed to satisfy constraint: 'Member must satisfy regular expression pattern: [0-9]{12}'`);
        }
      }
      registryIds = ids as string[];
    }
    this.account.authorize(principal, ECR_ACTION, { arn: '*', text: '*' });
    const proxyEndpoint = this.registryUrl();
    const authorizationData = registryIds.map((id) => {
      const t = this.tokens.issue(principal.arn, id, region);
      return { authorizationToken: t.authorizationToken, expiresAt: t.expiresMs / 1000, proxyEndpoint };
    });
    return this.#reply(200, { authorizationData }, requestId);
  }

  #reply(status: number, value: unknown, requestId: string): Reply {
    return {
      status,
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amzn-requestid': requestId,
        // The SDK corrects its clock skew from this header, as against AWS.
        date: new Date(this.account.now()).toUTCString(),
      },
      body: JSON.stringify(value),
    };
  }
}
