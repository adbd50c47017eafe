// Request budgets of the Wiz sandbox, one token bucket per service account (the shared RateLimiter), for the
// GraphQL API and for the token endpoint.
//
// The API's budget is on by default, at 3 requests per second per service account. Sources (Wiz's own rate-limit
// page sits behind the customer login, so these are what public integrations say about it):
//   - sullivtr/terraform-provider-graphql issue #125 ("Support for rate limiting and/or respecting 429 error codes
//     w/automatic retry"): a user driving the Wiz GraphQL API from Terraform "found at apply time it only has a 3
//     requests per second rate limit", throttled even at -parallelism=1.
//   - paramify/paramify-fetchers, fetchers/wiz/_shared/wiz_client.py (DEFAULT_MIN_INTERVAL, written against a live
//     Wiz for Gov tenant): "Public guidance is 'no more than 3 requests per second' per tenant".
// Neither names a burst, so the bucket holds 3 (one second's worth). Wiz's throttled reply is RATE_LIMIT_EXCEEDED
// ("The client is being rate limited", the code list of docs.wiz.io/wiz-docs/docs/handling-api-errors as quoted by
// the `wizapi` package on PyPI) with HTTP 429; Retry-After is sent because the bucket knows the wait, and the
// client copes without one (a public guide, stitchflow.com's Wiz API page, says Wiz exposes no Retry-After).
//
// The token endpoint's budget is off by default: Wiz documents no limit there. auth.app.wiz.io is an Amazon
// Cognito user pool (public integrations list it among their COGNITO_URLS, e.g. RegScale CLI's
// integrations/commercial/wizv2/wiz_auth.py), and
// Cognito answers a throttled request with HTTP 429; its quota is the pool's (Wiz's), not an account's, and its
// size is not public. Tests switch it on with a tiny budget to see throttled verification.
import { type Budget, type BudgetVerdict, RateLimiter } from '../rate-limit.js';

export const DEFAULT_API_BUDGET: Readonly<Budget> = Object.freeze({ burst: 3, perSecond: 3 });

/** A budget, or null for no limit. */
export interface WizRateLimitSettings {
  api: Budget | null;
  auth: Budget | null;
}

export type WizRateLimitOptions = Partial<WizRateLimitSettings>;

function checkBudget(name: string, value: unknown): Budget | null {
  if (value === null) return null;
  const b = value as Partial<Budget> | undefined;
  if (!b || typeof b !== 'object' || typeof b.burst !== 'number' || typeof b.perSecond !== 'number' || !(b.burst >= 1) || !(b.perSecond > 0) || !Number.isFinite(b.burst) || !Number.isFinite(b.perSecond)) {
    throw new Error(`${name} must be null (no limit) or { burst >= 1, perSecond > 0 }`);
  }
  return { burst: b.burst, perSecond: b.perSecond };
}

export class WizRateLimits {
  #api: RateLimiter | undefined;
  #auth: RateLimiter | undefined;

  constructor(options: WizRateLimitOptions = {}) {
    this.set({ api: options.api === undefined ? { ...DEFAULT_API_BUDGET } : options.api, auth: options.auth ?? null });
  }

  settings(): WizRateLimitSettings {
    return { api: this.#api ? { ...this.#api.budget } : null, auth: this.#auth ? { ...this.#auth.budget } : null };
  }

  /**
   * Changes the budgets named (null: no limit). A limiter that stays on keeps its buckets, up to the new burst (the
   * RateLimiter's rule); one switched on starts with full buckets. Everything is checked before anything changes.
   */
  set(options: WizRateLimitOptions): WizRateLimitSettings {
    const api = options.api === undefined ? undefined : checkBudget('api', options.api);
    const auth = options.auth === undefined ? undefined : checkBudget('auth', options.auth);
    if (api !== undefined) this.#api = WizRateLimits.#apply(this.#api, api);
    if (auth !== undefined) this.#auth = WizRateLimits.#apply(this.#auth, auth);
    return this.settings();
  }

  static #apply(limiter: RateLimiter | undefined, budget: Budget | null): RateLimiter | undefined {
    if (budget === null) return undefined;
    if (!limiter) return new RateLimiter(budget);
    limiter.budget = budget;
    return limiter;
  }

  /** Spends one GraphQL request of this service account's budget. */
  takeApi(clientId: string): BudgetVerdict {
    return this.#api ? this.#api.take(clientId) : { ok: true };
  }

  /** Spends one token request of this client id's budget. */
  takeAuth(clientId: string): BudgetVerdict {
    return this.#auth ? this.#auth.take(clientId) : { ok: true };
  }

  /** Refills every bucket. */
  reset(): void {
    this.#api?.reset();
    this.#auth?.reset();
  }
}
