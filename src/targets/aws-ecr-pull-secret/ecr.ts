// ECR registry logins through the real SDK v3 client (GetAuthorizationToken), their check against the registry
// (`GET /v2/` with the login), and the Docker config a pull secret carries. Loaded by the target's `connect` only
// (a lazy chunk of its own, scripts/build.ts): the ECR client is most of this script.
//
// GetAuthorizationToken makes nothing on the service: a login is an encrypted, self-expiring blob, not a resource,
// so a call that fails or is repeated leaves nothing behind. That is why its errors are marked refused (below):
// the pipeline then never goes looking for a leftover, and a failed call is an honest exit 3.
import { ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import type { Readable } from 'node:stream';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Deadline } from '../../deadline.js';
import { RoutingAgent, sharedAgent } from '../../http/agent.js';
import { agentFetch, type Fetch } from '../../http/fetch.js';
import { capStream } from '../../http/reply-limit.js';
import { RotateError, describe as describeError } from '../../errors.js';
import { escapeControls } from '../../log.js';
import type { VerifyResult } from '../../pipeline/target.js';
import { Secret, redact } from '../../secret.js';
import { awsError } from '../aws-sdk-errors.js';
import type { Signer } from '../aws-iam-access-key/iam.js';
import { ECR_USER, dockerConfigJson, registerLoginForms, type RegistryLogin } from './docker-config.js';

export { dockerConfigJson, registerLoginForms, type RegistryLogin };

/**
 * The SDK's own Node HTTP handler with every reply body capped (src/http/reply-limit.ts), its connections from a
 * RoutingAgent (direct or through the gateway's proxy). The same few lines as iam.ts's: a chunk's direct imports of
 * our modules are shared with the main bundle (scripts/build.ts), and a shared module that imports the SDK's
 * handler would put it in every start of the script.
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

const PROXY_ENDPOINT = /^https:\/\/[a-z0-9.-]+(?::\d{1,5})?\/?$/i;

/** GetAuthorizationToken, one region at a time, with the admin's credentials. */
export class EcrLogins {
  readonly #handler = new CappedHttpHandler();
  readonly #clients = new Map<string, ECRClient>();

  constructor(
    /** AWS_ENDPOINT_URL_ECR (or AWS_ENDPOINT_URL), else the SDK's regional endpoint. */
    private readonly endpoint: string | undefined,
    private readonly credentials: Signer,
    private readonly deadline: Deadline,
  ) {}

  #client(region: string): ECRClient {
    let client = this.#clients.get(region);
    if (!client) {
      const c = this.credentials;
      client = new ECRClient({
        region,
        requestHandler: this.#handler,
        // Reads: the SDK's retries (3 attempts, its backoff on ThrottlingException) are safe, nothing is made.
        maxAttempts: 3,
        ...(this.endpoint ? { endpoint: this.endpoint } : {}),
        credentials:
          typeof c === 'function'
            ? c
            : { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey.reveal(), ...(c.sessionToken ? { sessionToken: c.sessionToken.reveal() } : {}) },
      });
      this.#clients.set(region, client);
    }
    return client;
  }

  /**
   * The logins for a region: the caller's own registry when `registryIds` is empty, else one per ID (the
   * deprecated parameter, which still names the proxyEndpoint of each). Every form of each token is registered
   * with redact before anything else happens to it.
   */
  async logins(region: string, registryIds: readonly string[]): Promise<RegistryLogin[]> {
    const what = `ECR GetAuthorizationToken in ${region}${registryIds.length ? ` for ${registryIds.join(', ')}` : ''}`;
    try {
      const out = await this.#client(region).send(new GetAuthorizationTokenCommand(registryIds.length ? { registryIds: [...registryIds] } : {}), {
        abortSignal: AbortSignal.timeout(this.deadline.timeout()),
      });
      const data = out.authorizationData;
      if (!Array.isArray(data) || data.length === 0) throw new RotateError('TARGET_REQUEST_FAILED', `${what}: HTTP 200, but the reply holds no authorizationData`, { status: 200, refused: true });
      return data.map((d) => {
        // Registered at once: a login that fails a check below must not reach a message whole.
        const token = d.authorizationToken ? new Secret(d.authorizationToken) : undefined;
        const password = token ? passwordOf(token) : undefined;
        if (!token || !password) throw new RotateError('TARGET_REQUEST_FAILED', `${what}: HTTP 200, but an entry holds no authorizationToken of the form base64("AWS:" + password)`, { status: 200, refused: true });
        if (!d.proxyEndpoint || !PROXY_ENDPOINT.test(d.proxyEndpoint)) {
          throw new RotateError('TARGET_REQUEST_FAILED', `${what}: HTTP 200, but an entry's proxyEndpoint is not an https:// origin (${escapeControls(String(d.proxyEndpoint).slice(0, 100))})`, { status: 200, refused: true });
        }
        if (!(d.expiresAt instanceof Date) || Number.isNaN(d.expiresAt.getTime())) throw new RotateError('TARGET_REQUEST_FAILED', `${what}: HTTP 200, but an entry has no expiresAt`, { status: 200, refused: true });
        const login: RegistryLogin = { region, proxyEndpoint: d.proxyEndpoint.replace(/\/+$/, ''), password, expiresAt: d.expiresAt };
        registerLoginForms([login]);
        return login;
      });
    } catch (err) {
      // Nothing is made by this call, whatever became of it (see the top of the file): refused, so nothing is looked for.
      const e = awsError(what, err);
      throw e.refused ? e : new RotateError(e.code, e.message, { cause: e, refused: true, ...(e.status ? { status: e.status } : {}) });
    }
  }

  destroy(): void {
    for (const c of this.#clients.values()) c.destroy();
    this.#clients.clear();
    this.#handler.destroy();
  }
}

/** The password inside an authorizationToken, base64("AWS:" + password); undefined when it is not that. */
export function passwordOf(token: Secret): Secret | undefined {
  const decoded = Buffer.from(token.reveal(), 'base64').toString('utf8');
  if (!decoded.startsWith(`${ECR_USER}:`) || decoded.length <= ECR_USER.length + 1) return undefined;
  return new Secret(decoded.slice(ECR_USER.length + 1));
}

let registryFetch: Fetch | undefined;

/**
 * Whether the login opens the registry: `GET <proxyEndpoint>/v2/` with Basic auth, through our agents (proxy
 * rules, reply cap), no redirect followed (it would carry the login elsewhere). 200: it works. 401: not (expired,
 * revoked, not yet known to the registry). 429 and 503: throttled, try again later (Retry-After honoured). Anything
 * else is not the registry's answer to a login and throws.
 */
export async function verifyRegistry(proxyEndpoint: string, password: Secret, deadline: Deadline, fetcher?: Fetch): Promise<VerifyResult> {
  const send = fetcher ?? (registryFetch ??= agentFetch(sharedAgent()));
  const host = new URL(proxyEndpoint).host;
  const auth = Buffer.from(`${ECR_USER}:${password.reveal()}`).toString('base64');
  let status: number;
  let retryAfter: string | null;
  let code = '';
  try {
    const reply = await send(`${proxyEndpoint}/v2/`, { method: 'GET', headers: { authorization: `Basic ${auth}`, accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(deadline.timeout()) });
    status = reply.status;
    retryAfter = reply.headers.get('retry-after');
    const text = await reply.text();
    if (status !== 200) code = registryErrorCode(text);
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    throw new RotateError(timedOut ? 'TARGET_TIMEOUT' : 'TARGET_REQUEST_FAILED', `registry ${host} GET /v2/: ${redact(describeError(err))}`, { cause: err });
  }
  if (status === 200) return { ok: true };
  if (status === 401) return { ok: false, reason: `registry ${host} refused the login (HTTP 401${code ? ` ${code}` : ''})` };
  if (status === 429 || status === 503) {
    const seconds = retryAfter !== null && /^\d{1,5}$/.test(retryAfter.trim()) ? Number(retryAfter.trim()) : undefined;
    return { ok: false, throttled: true, reason: `registry ${host} throttled the check (HTTP ${status})`, ...(seconds !== undefined ? { retryAfterMs: seconds * 1000 } : {}) };
  }
  throw new RotateError('TARGET_REQUEST_FAILED', `registry ${host} GET /v2/: HTTP ${status}${code ? ` ${code}` : ''}, not a registry's answer to a login`, { status });
}

/** The first error code of a registry error body (`{"errors":[{"code":"DENIED",...}]}`), escaped; '' when none. */
function registryErrorCode(text: string): string {
  try {
    const code = (JSON.parse(text) as { errors?: Array<{ code?: unknown }> }).errors?.[0]?.code;
    return typeof code === 'string' && /^[A-Z_]{1,40}$/.test(code) ? code : '';
  } catch {
    return '';
  }
}
