// Access tokens the sandbox's token endpoint mints and its Graph accepts. They are shaped like Entra's v1 app-only
// tokens (a JWT with tid, appid, roles, aud, exp) so a rotator that decodes them for logging sees familiar claims,
// signed by the sandbox's HMAC JWT signer (../jwt.ts): only this sandbox can verify them, which is all it needs.
import { randomBytes } from 'node:crypto';
import { HmacJwt, b64url } from '../jwt.js';

export const GRAPH_RESOURCE = 'https://graph.microsoft.com';
export const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';

/**
 * The clouds the sandbox can serve as, with the Graph resource each one's Entra issues tokens for (Microsoft's
 * "national cloud deployments" page): a sandbox serving as US Government refuses a token for the global Graph
 * (AADSTS500011) and its Graph refuses a global token (invalid audience), as the real ones do.
 */
export const SANDBOX_CLOUDS = {
  public: { graph: 'https://graph.microsoft.com', instance: 'microsoftonline.com' },
  usgov: { graph: 'https://graph.microsoft.us', instance: 'microsoftonline.us' },
  'usgov-dod': { graph: 'https://dod-graph.microsoft.us', instance: 'microsoftonline.us' },
  china: { graph: 'https://microsoftgraph.chinacloudapi.cn', instance: 'partner.microsoftonline.cn' },
} as const;
export type SandboxCloud = keyof typeof SANDBOX_CLOUDS;

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

  /** The Graph resource of the cloud this sandbox serves as: the only audience it issues and accepts. */
  constructor(readonly resource: string = GRAPH_RESOURCE) {}

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
    if (claims.aud !== this.resource && claims.aud !== GRAPH_APP_ID) return { ok: false, reason: 'audience' };
    if (nowSeconds >= claims.exp) return { ok: false, reason: 'expired' };
    return { ok: true, claims };
  }
}
