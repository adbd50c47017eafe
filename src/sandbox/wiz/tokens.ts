// Access tokens the `wiz-auth` endpoint mints and `wiz-api` accepts. Clients decode them without verifying: the
// public rotators read the `dc` claim to build `https://api.<dc>.app.wiz.io/graphql`, so the claim set must be
// Wiz's (dc, client_id, scope, iat, exp). The signature is HMAC with a key each tenant draws at start, because
// only the sandbox itself ever verifies one.
import { randomBytes } from 'node:crypto';
import { HmacJwt, b64url } from '../jwt.js';

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

export class WizTokenSigner {
  readonly #jwt = new HmacJwt('keeper-rotate-wiz-sandbox');

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
    return this.#jwt.sign(claims);
  }

  verify(token: string, nowSeconds: number): TokenCheck {
    const opened = this.#jwt.open<WizAccessTokenClaims>(token);
    if (!opened.ok) return opened;
    const claims = opened.claims;
    if (claims.aud !== WIZ_API_AUDIENCE) return { ok: false, reason: 'audience' };
    if (typeof claims.exp !== 'number' || nowSeconds >= claims.exp) return { ok: false, reason: 'expired' };
    return { ok: true, claims };
  }
}
