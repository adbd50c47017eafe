// The awsQuery protocol IAM and STS share: `POST /` with a form body `Action=...&Version=...&Param=...` (GET with
// the same parameters in the query string also works), signed with SigV4; answers are XML in the service's
// namespace, errors an `<ErrorResponse>` whose Code the SDK turns into the exception's name. This module holds
// the XML writer and a base class that authenticates each call, dispatches on the Action and maps AwsErrors.
import type { Reply, Route, SandboxRequest, SandboxService } from '../service.js';
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
}

/** A SandboxService speaking awsQuery against one AwsAccount. */
export abstract class QueryService implements SandboxService {
  readonly name: string;
  readonly account: AwsAccount;
  readonly #options: QueryServiceOptions;

  protected constructor(account: AwsAccount, options: QueryServiceOptions) {
    this.name = options.name;
    this.account = account;
    this.#options = options;
  }

  route(req: SandboxRequest): Route | undefined {
    if (req.path !== '/' || (req.method !== 'POST' && req.method !== 'GET')) return undefined;
    const params = new URLSearchParams(req.query);
    const contentType = String(req.headers['content-type'] ?? '');
    if (req.method === 'POST' && contentType.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      for (const [k, v] of new URLSearchParams(req.body.toString('utf8'))) params.append(k, v);
    }
    const action = params.get('Action') ?? '';
    return { operation: action || '(no Action)', handle: () => this.#handle(req, params, action) };
  }

  throttleReply(): Reply {
    // AWS sends no Retry-After: the SDK backs off on the Throttling code alone.
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
