// The IAM and STS calls a rotation makes, through the real SDK v3 clients. Every call is bounded by its own
// timeout and the run's deadline; SDK errors become RotateErrors with stable codes. Reads and deletes may be
// retried by the SDK; CreateAccessKey never is: a retry after a lost reply would make a second key, and the
// SDK counts IAM's quota error as throttling and would retry that too.
import {
  CreateAccessKeyCommand,
  DeleteAccessKeyCommand,
  GetUserCommand,
  IAMClient,
  ListAccessKeysCommand,
  ListUsersCommand,
  GetAccessKeyLastUsedCommand,
  UpdateAccessKeyCommand,
} from '@aws-sdk/client-iam';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { Readable } from 'node:stream';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Deadline } from '../../deadline.js';
import { RoutingAgent } from '../../http/agent.js';
import { capStream } from '../../http/reply-limit.js';
import { RotateError } from '../../errors.js';
import { Secret } from '../../secret.js';
import { NOT_YET, THROTTLED, awsError, type SdkError } from '../aws-sdk-errors.js';
import type { AccessKeyInfo } from './plan.js';

export { awsError } from '../aws-sdk-errors.js';


export interface AwsEndpoints {
  region: string;
  iam: string | undefined;
  sts: string | undefined;
}

export interface StaticKeys {
  accessKeyId: string;
  secretAccessKey: Secret;
  sessionToken?: Secret;
}

/** Credentials the SDK asks for as it signs, and again as they near expiry: the host's chain (host-credentials.ts). */
export type CredentialProvider = () => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date }>;

/**
 * What the admin signs with: keys, or a provider. Always given: a client left to its default chain would read the
 * host's identity behind the PAM configuration's back (and the built script does not carry that chain: the
 * host's is a module of its own, scripts/build.ts).
 */
export type Signer = StaticKeys | CredentialProvider;

interface BaseConfig {
  region: string;
  requestHandler: NodeHttpHandler;
  endpoint?: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | CredentialProvider;
}

/**
 * The SDK's own Node HTTP handler, with every reply body capped (src/http/reply-limit.ts): the SDK reads a body
 * whole before it parses it. A subclass rather than a wrapper, so the SDK's handler configuration still applies.
 * Its connections come from a RoutingAgent (src/http/agent.ts), one per handler as the SDK's own default agent
 * was (destroying a client destroys its handler's agent): direct, or through the gateway's proxy.
 */
type Handled = Awaited<ReturnType<NodeHttpHandler['handle']>>;

class CappedHttpHandler extends NodeHttpHandler {
  constructor() {
    const agent = new RoutingAgent({ keepAlive: true, maxSockets: 50 });
    super({ httpAgent: agent, httpsAgent: agent });
  }

  override async handle(...args: Parameters<NodeHttpHandler['handle']>): Promise<Handled> {
    const [request] = args;
    const out = await super.handle(...args);
    const body = out.response.body as Readable | undefined;
    if (body && typeof body.pipe === 'function') {
      const capped = capStream(`AWS ${request.hostname}`);
      body.on('error', (err) => capped.destroy(err));
      capped.on('error', () => body.destroy());
      out.response.body = body.pipe(capped);
    }
    return out;
  }
}

function baseConfig(endpoints: AwsEndpoints, service: 'iam' | 'sts', credentials: Signer): BaseConfig {
  const endpoint = endpoints[service];
  return {
    region: endpoints.region,
    requestHandler: new CappedHttpHandler(),
    ...(endpoint ? { endpoint } : {}),
    credentials:
      typeof credentials === 'function'
        ? credentials
        : {
            accessKeyId: credentials.accessKeyId,
            secretAccessKey: credentials.secretAccessKey.reveal(),
            ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken.reveal() } : {}),
          },
  };
}

/** A role to assume with the admin keys: temporary credentials for this run only. */
export async function assumeRole(endpoints: AwsEndpoints, keys: Signer, roleArn: string, deadline: Deadline): Promise<StaticKeys> {
  const sts = new STSClient({ ...baseConfig(endpoints, 'sts', keys), maxAttempts: 2 });
  try {
    const out = await sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'keeper-rotate', DurationSeconds: 900 }), {
      abortSignal: AbortSignal.timeout(deadline.timeout()),
    });
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken) throw new RotateError('TARGET_REQUEST_FAILED', `AssumeRole for ${roleArn} returned no credentials`);
    return { accessKeyId: c.AccessKeyId, secretAccessKey: new Secret(c.SecretAccessKey), sessionToken: new Secret(c.SessionToken) };
  } catch (err) {
    throw awsError(`AssumeRole ${roleArn}`, err);
  } finally {
    sts.destroy();
  }
}

export class IamAccessKeys {
  readonly #reads: IAMClient;
  readonly #writes: IAMClient;

  constructor(
    endpoints: AwsEndpoints,
    credentials: Signer,
    private readonly deadline: Deadline,
    /** Attempts per read, the SDK's retries of throttled and failed reads included (3 for a rotation). */
    readAttempts = 3,
  ) {
    this.#reads = new IAMClient({ ...baseConfig(endpoints, 'iam', credentials), maxAttempts: readAttempts });
    // Same connection pool for both clients: one TLS handshake per host per run.
    this.#writes = new IAMClient({ ...baseConfig(endpoints, 'iam', credentials), maxAttempts: 1, requestHandler: this.#reads.config.requestHandler });
  }

  #signal(): { abortSignal: AbortSignal } {
    return { abortSignal: AbortSignal.timeout(this.deadline.timeout()) };
  }

  async list(userName: string): Promise<AccessKeyInfo[]> {
    try {
      const out = await this.#reads.send(new ListAccessKeysCommand({ UserName: userName }), this.#signal());
      // A user with no keys still gets an (empty) AccessKeyMetadata element. A 200 without one is not IAM's
      // answer (an error body, a proxy's page): read as "no keys", it would orphan CURRENT and LAST.
      if (!Array.isArray(out.AccessKeyMetadata) || out.AccessKeyMetadata.some((k) => !k.AccessKeyId)) {
        throw new RotateError('TARGET_REQUEST_FAILED', `AWS ListAccessKeys for user ${userName}: HTTP 200, but the reply lists no AccessKeyMetadata`, { status: 200 });
      }
      return out.AccessKeyMetadata.map((k) => ({ accessKeyId: k.AccessKeyId!, status: k.Status ?? 'Active', createDate: k.CreateDate }));
    } catch (err) {
      throw awsError(`ListAccessKeys for user ${userName}`, err);
    }
  }

  /**
   * One page of ListUsers under a path: IAM pages every list (MaxItems, default 100) and may return fewer than
   * asked with more to come, so the caller follows `marker` until it is undefined.
   */
  async usersPage(pathPrefix: string, marker: string | undefined, maxItems = 100): Promise<{ users: Array<{ userName: string; path: string; createDate: Date | undefined }>; marker: string | undefined }> {
    try {
      const out = await this.#reads.send(new ListUsersCommand({ PathPrefix: pathPrefix, MaxItems: maxItems, ...(marker ? { Marker: marker } : {}) }), this.#signal());
      if (!Array.isArray(out.Users)) throw new RotateError('TARGET_REQUEST_FAILED', `AWS ListUsers under ${pathPrefix}: HTTP 200, but the reply lists no Users`, { status: 200 });
      const users = out.Users.filter((u) => u.UserName).map((u) => ({ userName: u.UserName!, path: u.Path ?? '/', createDate: u.CreateDate }));
      if (out.IsTruncated && !out.Marker) throw new RotateError('TARGET_REQUEST_FAILED', `AWS ListUsers under ${pathPrefix}: a truncated page without a Marker`, { status: 200 });
      return { users, marker: out.IsTruncated ? out.Marker : undefined };
    } catch (err) {
      throw awsError(`ListUsers under ${pathPrefix}`, err);
    }
  }

  /** When the key last signed a request (undefined: never, or before IAM began tracking in 2015). */
  async lastUsed(accessKeyId: string): Promise<{ date: Date | undefined; serviceName: string | undefined }> {
    try {
      const out = await this.#reads.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: accessKeyId }), this.#signal());
      const used = out.AccessKeyLastUsed;
      return { date: used?.LastUsedDate, serviceName: used?.ServiceName && used.ServiceName !== 'N/A' ? used.ServiceName : undefined };
    } catch (err) {
      throw awsError(`GetAccessKeyLastUsed ${accessKeyId}`, err);
    }
  }

  /** GetUser: where the user sits in IAM's path hierarchy (ListAccessKeys does not say). */
  async userPath(userName: string): Promise<string> {
    try {
      const out = await this.#reads.send(new GetUserCommand({ UserName: userName }), this.#signal());
      return out.User?.Path ?? '/';
    } catch (err) {
      throw awsError(`GetUser ${userName}`, err);
    }
  }

  async create(userName: string): Promise<{ accessKeyId: string; secret: Secret; createDate: Date }> {
    try {
      const out = await this.#writes.send(new CreateAccessKeyCommand({ UserName: userName }), this.#signal());
      const k = out.AccessKey;
      // Answered, so whatever IAM made is on the user now: the caller looks for it (status set).
      if (!k?.AccessKeyId || !k.SecretAccessKey) throw new RotateError('TARGET_REQUEST_FAILED', `AWS CreateAccessKey for user ${userName}: HTTP 200, but the reply holds no key; IAM may have made one anyway`, { status: 200 });
      return { accessKeyId: k.AccessKeyId, secret: new Secret(k.SecretAccessKey), createDate: k.CreateDate ?? new Date() };
    } catch (err) {
      throw awsError(`CreateAccessKey for user ${userName}`, err);
    }
  }

  async delete(userName: string, accessKeyId: string): Promise<void> {
    try {
      await this.#reads.send(new DeleteAccessKeyCommand({ UserName: userName, AccessKeyId: accessKeyId }), this.#signal());
    } catch (err) {
      throw awsError(`DeleteAccessKey ${accessKeyId}`, err);
    }
  }

  async deactivate(userName: string, accessKeyId: string): Promise<void> {
    try {
      await this.#reads.send(new UpdateAccessKeyCommand({ UserName: userName, AccessKeyId: accessKeyId, Status: 'Inactive' }), this.#signal());
    } catch (err) {
      throw awsError(`UpdateAccessKey ${accessKeyId} to Inactive`, err);
    }
  }

  destroy(): void {
    this.#writes.destroy();
    this.#reads.destroy();
  }
}

/** The key a provider gives now (the host's chain): for the admin check, which compares key IDs. */
export async function resolveSigner(provider: CredentialProvider): Promise<StaticKeys> {
  const c = await provider();
  return { accessKeyId: c.accessKeyId, secretAccessKey: new Secret(c.secretAccessKey), ...(c.sessionToken ? { sessionToken: new Secret(c.sessionToken) } : {}) };
}

/**
 * Signs one GetCallerIdentity with the new key through a fresh client. `not-yet` while IAM propagates it;
 * the ARN it answers with, once it works.
 */
export async function callerIdentity(endpoints: AwsEndpoints, keys: StaticKeys, deadline: Deadline): Promise<{ ok: true; arn: string } | { ok: false; reason: string; throttled?: boolean }> {
  const sts = new STSClient({ ...baseConfig(endpoints, 'sts', keys), maxAttempts: 1 });
  try {
    const out = await sts.send(new GetCallerIdentityCommand({}), { abortSignal: AbortSignal.timeout(deadline.timeout()) });
    if (!out.Arn) throw new RotateError('TARGET_REQUEST_FAILED', 'AWS STS GetCallerIdentity with the new key: HTTP 200, but the reply names no Arn', { status: 200 });
    return { ok: true, arn: out.Arn };
  } catch (err) {
    const name = (err as SdkError).name ?? '';
    if (NOT_YET.has(name)) return { ok: false, reason: `STS does not accept it yet (${name})` };
    // Throttled says nothing about the key: not yet. AWS sends no Retry-After; the verify loop's schedule paces.
    if (THROTTLED.has(name) || (err as SdkError).$metadata?.httpStatusCode === 429) return { ok: false, throttled: true, reason: `STS throttled the request (${name || 'HTTP 429'})` };
    throw awsError('GetCallerIdentity with the new key', err);
  } finally {
    sts.destroy();
  }
}
