// Access tokens the `wiz-auth` endpoint mints and `wiz-api` accepts. Clients decode them without verifying: the
// public rotators read the `dc` claim to build `https://api.<dc>.app.wiz.io/graphql`, so the claim set must be
// Wiz's (dc, client_id, scope, iat, exp). The signature is HMAC with a key each tenant draws at start, because
// only the sandbox itself ever verifies one.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The audience Wiz's Cognito-backed auth hosts (auth.app.wiz.io and friends) issue API tokens for. */
export const WIZ_API_AUDIENCE = 'wiz-api';

export interface WizAccessTokenClaims {
  iss: string;
  aud: string;
  /** The client id: client-credentials tokens are about the client itself. */
  sub: string;
  client_id: string;
  /** The tenant's data centre, e.g. `us17`. */
  dc: string;
  /** Space-separated, as OAuth writes scopes. */
  scope: string;
  token_use: 'access';
  iat: number;
  exp: number;
  jti: string;
}

export type TokenCheck = { ok: true; claims: WizAccessTokenClaims } | { ok: false; reason: 'malformed' | 'signature' | 'audience' | 'expired' };

const b64url = (v: Buffer | string) => Buffer.from(v).toString('base64url');

export class WizTokenSigner {
  readonly #key = randomBytes(32);

  issue(input: Omit<WizAccessTokenClaims, 'aud' | 'token_use' | 'jti' | 'exp' | 'sub'> & { lifetimeSeconds: number }): string {
    const claims: WizAccessTokenClaims = {
      iss: input.iss,
      aud: WIZ_API_AUDIENCE,
      sub: input.client_id,
      client_id: input.client_id,
      dc: input.dc,
      scope: input.scope,
      token_use: 'access',
      iat: input.iat,
      exp: input.iat + input.lifetimeSeconds,
      jti: b64url(randomBytes(16)),
    };
    const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'keeper-rotate-wiz-sandbox' }));
    const body = b64url(JSON.stringify(claims));
    return `${head}.${body}.${this.#sign(`${head}.${body}`)}`;
  }

  verify(token: string, nowSeconds: number): TokenCheck {
    const parts = token.split('.');
    if (parts.length !== 3) return { ok: false, reason: 'malformed' };
    const [head, body, signature] = parts as [string, string, string];
    const expected = Buffer.from(this.#sign(`${head}.${body}`));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'signature' };
    let claims: WizAccessTokenClaims;
    try {
      claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as WizAccessTokenClaims;
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    if (claims.aud !== WIZ_API_AUDIENCE) return { ok: false, reason: 'audience' };
    if (typeof claims.exp !== 'number' || nowSeconds >= claims.exp) return { ok: false, reason: 'expired' };
    return { ok: true, claims };
  }

  #sign(input: string): string {
    return createHmac('sha256', this.#key).update(input).digest('base64url');
  }
}
