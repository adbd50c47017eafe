// Access tokens the sandbox's token endpoint mints and its Graph accepts. They are shaped like Entra's v1 app-only
// tokens (a JWT with tid, appid, roles, aud, exp) so a rotator that decodes them for logging sees familiar claims,
// signed by the sandbox's HMAC JWT signer (../jwt.ts): only this sandbox can verify them, which is all it needs.
import { randomBytes } from 'node:crypto';
import { HmacJwt, b64url } from '../jwt.js';

export const GRAPH_RESOURCE = 'https://graph.microsoft.com';
export const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';

export interface TokenClaims {
  aud: string;
  iss: string;
  iat: number;
  nbf: number;
  exp: number;
  tid: string;
  appid: string;
  /** The service principal's object id in real tokens; the app's object id here (the sandbox has no SPs). */
  oid: string;
  sub: string;
  roles: string[];
  idtyp: 'app';
  ver: '1.0';
  uti: string;
}

export type TokenCheck =
  | { ok: true; claims: TokenClaims }
  | { ok: false; reason: 'malformed' | 'signature' | 'expired' | 'audience' };

export class TokenIssuer {
  readonly #jwt = new HmacJwt('keeper-rotate-sandbox');

  issue(input: { tenantId: string; appId: string; objectId: string; roles: string[]; audience: string; nowSeconds: number; lifetimeSeconds: number }): string {
    const claims: TokenClaims = {
      aud: input.audience,
      iss: `https://sts.windows.net/${input.tenantId}/`,
      iat: input.nowSeconds,
      nbf: input.nowSeconds,
      exp: input.nowSeconds + input.lifetimeSeconds,
      tid: input.tenantId,
      appid: input.appId,
      oid: input.objectId,
      sub: input.objectId,
      roles: input.roles,
      idtyp: 'app',
      ver: '1.0',
      uti: b64url(randomBytes(16)),
    };
    return this.#jwt.sign(claims);
  }

  verify(token: string, nowSeconds: number): TokenCheck {
    const opened = this.#jwt.open<TokenClaims>(token);
    if (!opened.ok) return opened;
    const claims = opened.claims;
    if (claims.aud !== GRAPH_RESOURCE && claims.aud !== GRAPH_APP_ID) return { ok: false, reason: 'audience' };
    if (nowSeconds >= claims.exp) return { ok: false, reason: 'expired' };
    return { ok: true, claims };
  }
}
