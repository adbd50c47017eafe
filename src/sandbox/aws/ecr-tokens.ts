// The registry logins ECR hands out (GetAuthorizationToken) and the registry checks (`/v2/` with Basic auth):
// one table both sides share, so a token the API issued is exactly what the registry accepts, until it expires
// or a test revokes it. Tokens live 12 hours: "The authorization token is valid for 12 hours"
// (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetAuthorizationToken.html). The table has a
// clock of its own, the account's plus an offset a test can advance, so a token can be made to expire without
// moving the clock SigV4 is checked against.
import { randomBytes } from 'node:crypto';
import type { AwsAccount } from './account.js';

export const ECR_TOKEN_LIFETIME_MS = 12 * 3600_000;

/** The user name every ECR registry login uses (`docker login -u AWS`). */
export const ECR_USER = 'AWS';

export type TokenVerdict = 'live' | 'expired' | 'revoked' | 'unknown';

export interface IssuedToken {
  /** What `aws ecr get-login-password` prints: the registry password. */
  password: string;
  /** base64("AWS:" + password), as GetAuthorizationToken answers it. */
  authorizationToken: string;
  /** When it expires, ms since the epoch on the table's clock. */
  expiresMs: number;
}

export interface TokenState {
  password: string;
  registryId: string;
  region: string;
  /** Who asked for it (the signer's ARN). */
  principal: string;
  issuedAt: string;
  expiresAt: string;
  revoked: boolean;
  state: TokenVerdict;
}

interface TokenRecord {
  password: string;
  registryId: string;
  region: string;
  principal: string;
  issuedMs: number;
  expiresMs: number;
  revoked: boolean;
}

export class EcrTokens {
  #offsetMs = 0;
  readonly #tokens = new Map<string, TokenRecord>();

  constructor(private readonly account: AwsAccount) {}

  /** The table's clock: the account's, moved on by `advance`. */
  now(): number {
    return this.account.now() + this.#offsetMs;
  }

  /** Moves the table's clock on (tokens expire; SigV4 still checks against the account's clock). */
  advance(ms: number): number {
    if (!Number.isFinite(ms) || ms < 0) throw new Error('advanceMs must be a number >= 0');
    this.#offsetMs += ms;
    return this.#offsetMs;
  }

  /**
   * A new login. The real password is an opaque base64 blob of a few kilobytes (an encrypted payload, its data
   * key and an expiry); clients must treat it as opaque, so the sandbox's is random bytes of a similar size.
   */
  issue(principal: string, registryId: string, region: string): IssuedToken {
    // Whole seconds, as ECR's expiresAt is (an epoch-seconds number).
    const expiresMs = Math.floor((this.now() + ECR_TOKEN_LIFETIME_MS) / 1000) * 1000;
    const password = Buffer.from(JSON.stringify({ payload: randomBytes(600).toString('base64'), datakey: randomBytes(180).toString('base64'), version: '2', type: 'DATA_KEY', expiration: expiresMs / 1000 })).toString('base64');
    const authorizationToken = Buffer.from(`${ECR_USER}:${password}`).toString('base64');
    this.#tokens.set(password, { password, registryId, region, principal, issuedMs: this.now(), expiresMs, revoked: false });
    this.account.issued.add(password).add(authorizationToken);
    return { password, authorizationToken, expiresMs };
  }

  check(password: string): TokenVerdict {
    const t = this.#tokens.get(password);
    if (!t) return 'unknown';
    if (t.revoked) return 'revoked';
    return this.now() >= t.expiresMs ? 'expired' : 'live';
  }

  /** Revokes one token (by password) or, with none named, every token; returns how many it revoked. */
  revoke(password?: string): number {
    let n = 0;
    for (const t of this.#tokens.values()) {
      if (password !== undefined && t.password !== password) continue;
      if (!t.revoked) n++;
      t.revoked = true;
    }
    return n;
  }

  /**
   * Whether a Docker config (`{"auths":{host:{username,password}}}`, as a pull secret holds it) opens the registry:
   * at least one entry, and every entry a live login of user AWS. How tests judge a record from the sandbox's state.
   */
  opens(dockerConfigJson: string | undefined): boolean {
    let auths: unknown;
    try {
      auths = (JSON.parse(dockerConfigJson ?? '') as { auths?: unknown }).auths;
    } catch {
      return false;
    }
    if (typeof auths !== 'object' || auths === null) return false;
    const entries = Object.values(auths as Record<string, { username?: unknown; password?: unknown } | null>);
    return entries.length > 0 && entries.every((e) => e?.username === ECR_USER && typeof e.password === 'string' && this.check(e.password) === 'live');
  }

  list(): TokenState[] {
    return [...this.#tokens.values()].map((t) => ({
      password: t.password,
      registryId: t.registryId,
      region: t.region,
      principal: t.principal,
      issuedAt: new Date(t.issuedMs).toISOString(),
      expiresAt: new Date(t.expiresMs).toISOString(),
      revoked: t.revoked,
      state: this.check(t.password),
    }));
  }
}
