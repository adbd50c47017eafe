// The awsQuery protocol IAM and STS share: `POST /` with a form body `Action=...&Version=...&Param=...` (GET with
// the same parameters in the query string also works), signed with SigV4; answers are XML in the service's
// namespace, errors an `<ErrorResponse>` whose Code the SDK turns into the exception's name. This module holds
// the XML writer and a base class that authenticates each call, dispatches on the Action and maps AwsErrors.
import type { Budget } from '../rate-limit.js';
import { RequestBudget, type Reply, type Route, type SandboxRequest, type SandboxService } from '../service.js';
import type { AwsAccount, Principal } from './account.js';
import { AwsError } from './errors.js';
import { newRequestId } from './formats.js';
import { verifySigV4 } from './sigv4.js';

/** An XML element: text, or child elements (undefined children are left out, which is how optional members go). */
export interface XmlElement {
  name: string;
  content: string | Array<XmlElement | undefined>;
}

export const el = (name: string, content: string | number | boolean | Array<XmlElement | undefined>): XmlElement => ({
  name,
  content: Array.isArray(content) ? content : String(content),
});

export function xmlEscape(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

// AWS pretty-prints with two-space indentation; the SDK ignores the whitespace between elements.
function render(node: XmlElement, depth: number, attributes = ''): string {
  const pad = '  '.repeat(depth);
  if (typeof node.content === 'string') return `${pad}<${node.name}${attributes}>${xmlEscape(node.content)}</${node.name}>`;
  const children = node.content.filter((c): c is XmlElement => c !== undefined);
  if (children.length === 0) return `${pad}<${node.name}${attributes}/>`;
  return `${pad}<${node.name}${attributes}>\n${children.map((c) => render(c, depth + 1)).join('\n')}\n${pad}</${node.name}>`;
}

export function xmlDocument(root: XmlElement, namespace: string): string {
  return render(root, 0, ` xmlns="${xmlEscape(namespace)}"`) + '\n';
}

export interface QueryContext {
  params: URLSearchParams;
  principal: Principal;
  account: AwsAccount;
  requestId: string;
  /** The region of the signature's credential scope. */
  region: string;
}

/** What an Action handler returns: the `<ActionResult>` children, or nothing for actions without a result. */
export type QueryHandler = (ctx: QueryContext) => XmlElement[] | undefined;

export interface QueryServiceOptions {
  name: string;
  namespace: string;
  version: string;
  /** The SigV4 signing name the credential scope must carry. */
  signingName: string;
  regionAllowed(region: string): boolean;
  handlers: Record<string, QueryHandler>;
  /** The service's documented (or stand-in) per-account budget, with its source. */
  defaultBudget: Budget;
}

export interface QueryBudgetOptions {
  /**
   * The per-account request budget: true for the service's default (IAM_DEFAULT_BUDGET, STS_DEFAULT_BUDGET),
   * a budget of its own, or false / absent for none (the sandbox's old behaviour).
   */
  budget?: boolean | Budget;
  /** The budget's clock (performance.now() by default); a test that stops it gets exactly `burst` calls. */
  budgetNow?: () => number;
}

/**
 * The access key ID and scope region a request is signed with, read without checking anything (the signature
 * check comes later, in the handler): from the Authorization header's Credential, or a presigned X-Amz-Credential.
 */
export function signingScope(req: SandboxRequest): { accessKeyId: string; region: string } | undefined {
  const auth = req.headers.authorization;
  const credential = (typeof auth === 'string' ? /\bCredential=([^,\s]+)/.exec(auth)?.[1] : undefined) ?? req.query.get('X-Amz-Credential') ?? '';
  const m = /^([A-Za-z0-9]+)\/\d{8}\/([a-z0-9-]+)\//.exec(credential);
  return m ? { accessKeyId: m[1]!, region: m[2]! } : undefined;
}

/** A SandboxService speaking awsQuery against one AwsAccount. */
export abstract class QueryService implements SandboxService {
  readonly name: string;
  readonly account: AwsAccount;
  readonly budget: RequestBudget | undefined;
  readonly #options: QueryServiceOptions;

  protected constructor(account: AwsAccount, options: QueryServiceOptions, budget: QueryBudgetOptions = {}) {
    this.name = options.name;
    this.account = account;
    this.#options = options;
    const chosen = budget.budget === true ? options.defaultBudget : budget.budget || undefined;
    this.budget = chosen ? new RequestBudget([{ name: 'requests', budget: chosen }], budget.budgetNow) : undefined;
  }

  route(req: SandboxRequest): Route | undefined {
    if (req.path !== '/' || (req.method !== 'POST' && req.method !== 'GET')) return undefined;
    const params = new URLSearchParams(req.query);
    const contentType = String(req.headers['content-type'] ?? '');
    if (req.method === 'POST' && contentType.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      for (const [k, v] of new URLSearchParams(req.body.toString('utf8'))) params.append(k, v);
    }
    const action = params.get('Action') ?? '';
    // IAM and STS rate-limit per account: "API calls from the AWS Management Console, the AWS CLI, and
    // applications contribute to a maximum rate quota for your AWS account" (https://repost.aws/knowledge-center/
    // iam-sts-throttling-error), and STS's quota is "per account, per Region" (https://docs.aws.amazon.com/IAM/
    // latest/UserGuide/reference_iam-quotas.html, "STS request quotas"). So every key of the account shares one
    // budget (STS's per region); a key the account does not know is not charged (it fails authentication anyway).
    const scope = signingScope(req);
    const perRegion = this.#options.signingName === 'sts' ? `/${scope?.region}` : '';
    const client = scope && this.account.knowsAccessKey(scope.accessKeyId) ? `account/${this.account.accountId}${perRegion}` : undefined;
    return { operation: action || '(no Action)', ...(client ? { client } : {}), handle: () => this.#handle(req, params, action) };
  }

  throttleReply(): Reply {
    // "Throttling: Rate exceeded, status code: 400" (https://repost.aws/knowledge-center/iam-sts-throttling-error):
    // a Sender error in the service's ErrorResponse. AWS sends no Retry-After: the SDK backs off on the code alone
    // (`Throttling` is in @smithy/service-error-classification's THROTTLING_ERROR_CODES).
    return this.errorReply(new AwsError(400, 'Throttling', 'Rate exceeded'), newRequestId());
  }

  /** An AWS error as this service writes it. */
  errorReply(err: AwsError, requestId: string): Reply {
    const body = xmlDocument(
      el('ErrorResponse', [el('Error', [el('Type', err.type), el('Code', err.code), el('Message', err.message)]), el('RequestId', requestId)]),
      this.#options.namespace,
    );
    return this.#reply(err.status, body, requestId);
  }

  #handle(req: SandboxRequest, params: URLSearchParams, action: string): Reply {
    const requestId = newRequestId();
    const { account } = this;
    try {
      let principal: Principal | undefined;
      const verified = verifySigV4(req, {
        service: this.#options.signingName,
        regionAllowed: (region) => this.#options.regionAllowed(region),
        nowMs: account.now(),
        secretFor: (accessKeyId, token) => {
          const resolved = account.resolveCredentials(accessKeyId, token);
          principal = resolved.principal;
          return resolved.secretAccessKey;
        },
      });
      if (!principal) throw new Error('the signature check passed without resolving a principal');
      account.recordKeyUse(verified.accessKeyId, this.#options.signingName, verified.region);
      const version = params.get('Version') ?? 'NO_VERSION_SPECIFIED';
      const handler = Object.hasOwn(this.#options.handlers, action) && version === this.#options.version ? this.#options.handlers[action] : undefined;
      if (!handler) throw new AwsError(400, 'InvalidAction', `Could not find operation ${action} for version ${version}`);
      const result = handler({ params, principal, account, requestId, region: verified.region });
      const body = xmlDocument(
        el(`${action}Response`, [result && el(`${action}Result`, result), el('ResponseMetadata', [el('RequestId', requestId)])]),
        this.#options.namespace,
      );
      return this.#reply(200, body, requestId);
    } catch (err) {
      if (err instanceof AwsError) return this.errorReply(err, requestId);
      throw err;
    }
  }

  #reply(status: number, body: string, requestId: string): Reply {
    return {
      status,
      headers: {
        'content-type': 'text/xml',
        'x-amzn-requestid': requestId,
        // The SDK corrects its clock from this header, so a sandbox clock moved by a test is followed like AWS's.
        date: new Date(this.account.now()).toUTCString(),
      },
      body,
    };
  }
}
