// The `wiz-auth` sandbox service: Wiz's OAuth token endpoint (`POST /oauth/token` on auth.app.wiz.io), client
// credentials only. Errors are plain OAuth 2.0 JSON (`{error, error_description}`); Wiz's exact descriptions are
// not public, so the sandbox's say what went wrong in words a log reader can act on.
import type { Reply, Route, SandboxRequest, SandboxService } from '../service.js';
import { json } from '../service.js';
import type { WizTenant } from './tenant.js';
import { WIZ_API_AUDIENCE } from './tokens.js';

export const WIZ_AUTH_SERVICE = 'wiz-auth';
export const WIZ_AUTH_OPERATIONS = ['token'] as const;
export type WizAuthOperation = (typeof WIZ_AUTH_OPERATIONS)[number];

/** The audience of Wiz's legacy Auth0 hosts (auth.wiz.io): right for them, wrong for the Cognito host mimicked here. */
const LEGACY_AUDIENCE = 'beyond-api';

const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };

function oauthError(status: number, error: string, description: string, headers: Record<string, string> = {}): Reply {
  return json(status, { error, error_description: description }, { ...NO_STORE, ...headers });
}

function formBody(req: SandboxRequest): URLSearchParams | undefined {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  // Wiz documents a form body; a JSON body is refused rather than guessed at, so a client that sends one finds out here.
  if (type !== '' && type !== 'application/x-www-form-urlencoded') return undefined;
  return new URLSearchParams(req.body.toString('utf8'));
}

export class WizAuthService implements SandboxService {
  readonly name = WIZ_AUTH_SERVICE;

  constructor(readonly tenant: WizTenant) {}

  route(req: SandboxRequest): Route | undefined {
    if (!/^\/oauth\/token\/?$/.test(req.path)) return undefined;
    return { operation: 'token', handle: () => this.#token(req) };
  }

  /**
   * Cognito, behind auth.app.wiz.io, answers a throttled request with HTTP 429 (limits.ts); its body is not
   * documented, so this one is an OAuth-style error a client can log, with the wait in Retry-After.
   */
  throttleReply(retryAfterSeconds: number): Reply {
    return oauthError(429, 'too_many_requests', 'Rate limit exceeded; retry later.', { 'retry-after': String(retryAfterSeconds) });
  }

  #token(req: SandboxRequest): Reply {
    if (req.method !== 'POST') return oauthError(405, 'invalid_request', 'The token endpoint accepts POST only.', { allow: 'POST' });
    const form = formBody(req);
    if (!form) return oauthError(400, 'invalid_request', 'The body must be application/x-www-form-urlencoded.');
    const grantType = form.get('grant_type');
    if (!grantType) return oauthError(400, 'invalid_request', 'Missing grant_type.');
    if (grantType !== 'client_credentials') return oauthError(400, 'unsupported_grant_type', `Unsupported grant_type '${grantType}'; use client_credentials.`);
    const clientId = form.get('client_id');
    const clientSecret = form.get('client_secret');
    if (!clientId || !clientSecret) return oauthError(400, 'invalid_request', 'Missing client_id or client_secret.');
    // The token endpoint's budget (off unless a test or the control API sets one: limits.ts says why), counted per
    // client id before anything about the credentials is checked, as a throttling front end would.
    const budget = this.tenant.rateLimits.takeAuth(clientId);
    if (!budget.ok) return this.throttleReply(budget.retryAfterSeconds);
    // A wrong audience is a request error (400), not a credential error (401): answering invalid_client would send
    // a rotator hunting for a bad secret when its configuration names the wrong auth host or audience. The
    // audience is checked before the secret, so a misconfigured client learns nothing about the secret either.
    const audience = form.get('audience');
    if (!audience) return oauthError(400, 'invalid_request', `Missing audience; use '${WIZ_API_AUDIENCE}'.`);
    if (audience !== WIZ_API_AUDIENCE) {
      const hint = audience === LEGACY_AUDIENCE ? ` ('${LEGACY_AUDIENCE}' belongs to the legacy Auth0 hosts)` : '';
      return oauthError(400, 'invalid_request', `Unsupported audience '${audience}'${hint}; use '${WIZ_API_AUDIENCE}'.`);
    }
    const verdict = this.tenant.authenticate(clientId, clientSecret);
    if (!verdict.ok) {
      // An unknown client and a wrong secret read the same, as on any OAuth server; disabled and expired accounts
      // are told apart because a rotator's next step differs (re-enable or extend, not re-enter the secret).
      const description =
        verdict.reason === 'disabled' ? 'The service account is disabled.' : verdict.reason === 'expired' ? 'The service account has expired.' : 'Invalid client credentials.';
      return oauthError(401, 'invalid_client', description);
    }
    const host = typeof req.headers.host === 'string' && req.headers.host !== '' ? req.headers.host : 'localhost';
    const issued = this.tenant.issueAccessToken(clientId, `https://${host}/`);
    return json(200, { access_token: issued.accessToken, token_type: 'Bearer', expires_in: issued.expiresIn, scope: issued.scope }, NO_STORE);
  }
}
