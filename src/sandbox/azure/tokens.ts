// Access tokens the sandbox's token endpoint mints and its Graph accepts. They are shaped like Entra's v1 app-only
// tokens (a JWT with tid, appid, roles, aud, exp) so a rotator that decodes them for logging sees familiar claims,
// but they are signed with a per-process HMAC key: only this sandbox can verify them, which is all it needs.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

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

const b64url = (v: Buffer | string) => Buffer.from(v).toString('base64url');

export class TokenIssuer {
  readonly #key = randomBytes(32);

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
    const head = b64url(JSON.stringify({ typ: 'JWT', alg: 'HS256', kid: 'keeper-rotate-sandbox' }));
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
    let claims: TokenClaims;
    try {
      claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as TokenClaims;
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    if (claims.aud !== GRAPH_RESOURCE && claims.aud !== GRAPH_APP_ID) return { ok: false, reason: 'audience' };
    if (nowSeconds >= claims.exp) return { ok: false, reason: 'expired' };
    return { ok: true, claims };
  }

  #sign(input: string): string {
    return createHmac('sha256', this.#key).update(input).digest('base64url');
  }
}
