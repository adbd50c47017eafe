// Request budgets for the sandbox's services: a token bucket per caller (and, where the real service counts that
// way, per operation). Real services throttle whoever sends too much too fast; a sandbox that never does hides
// every client loop that would be throttled in production. Each service sets its own budget, with its source.

export interface Budget {
  /** Requests a caller may send at once before the bucket runs dry. */
  burst: number;
  /** Requests per second the bucket refills at (the sustained rate). */
  perSecond: number;
}

export type BudgetVerdict = { ok: true } | { ok: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  #buckets = new Map<string, Bucket>();
  #budget: Budget;
  #now: () => number;

  constructor(budget: Budget, now: () => number = () => performance.now()) {
    if (!(budget.burst >= 1) || !(budget.perSecond > 0)) throw new Error('a budget needs burst >= 1 and perSecond > 0');
    this.#budget = budget;
    this.#now = now;
  }

  get budget(): Budget {
    return this.#budget;
  }

  /** Replaces the budget (the control API and tests tune it); buckets keep what they hold, up to the new burst. */
  set budget(budget: Budget) {
    if (!(budget.burst >= 1) || !(budget.perSecond > 0)) throw new Error('a budget needs burst >= 1 and perSecond > 0');
    this.#budget = budget;
  }

  /** Spends one request of `key`'s budget, or says how long until one is available (whole seconds, at least 1). */
  take(key: string): BudgetVerdict {
    const now = this.#now();
    const { burst, perSecond } = this.#budget;
    const bucket = this.#buckets.get(key) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
    bucket.at = now;
    this.#buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    // Retry-After is whole seconds on the wire (RFC 9110 delay-seconds), so a caller that honours it is never early.
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond)) };
  }

  reset(): void {
    this.#buckets.clear();
  }
}
