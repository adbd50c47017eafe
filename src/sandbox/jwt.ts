// The sandbox's access tokens: JWTs signed with HMAC under a key drawn at start. Only the sandbox ever verifies
// one, so a shared secret is all it needs; the claims are each service's own (azure/tokens.ts, wiz/tokens.ts).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const b64url = (v: Buffer | string) => Buffer.from(v).toString('base64url');

export type JwtCheck<C> = { ok: true; claims: C } | { ok: false; reason: 'malformed' | 'signature' };

export class HmacJwt {
  readonly #key = randomBytes(32);

  constructor(private readonly kid: string) {}

  sign(claims: object): string {
    const head = b64url(JSON.stringify({ typ: 'JWT', alg: 'HS256', kid: this.kid }));
    const body = b64url(JSON.stringify(claims));
    return `${head}.${body}.${this.#mac(`${head}.${body}`)}`;
  }

  /** The claims of a token this signer made, untouched; the caller checks audience and expiry. */
  open<C>(token: string): JwtCheck<C> {
    const parts = token.split('.');
    if (parts.length !== 3) return { ok: false, reason: 'malformed' };
    const [head, body, signature] = parts as [string, string, string];
    const expected = Buffer.from(this.#mac(`${head}.${body}`));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'signature' };
    try {
      return { ok: true, claims: JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as C };
    } catch {
      return { ok: false, reason: 'malformed' };
    }
  }

  #mac(input: string): string {
    return createHmac('sha256', this.#key).update(input).digest('base64url');
  }
}
