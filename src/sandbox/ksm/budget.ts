// The KSM request budget and what the server answers when a client goes past it. On by default: a sandbox that
// never throttles hides every client loop Keeper would throttle, and every client that would not survive it.
//
// What Keeper does, from public sources (Keeper's own SDKs and their pull requests, and Keeper's documentation):
//   - It counts per client and per endpoint: "The backend throttles HTTP 403 {"error":"throttled"} per
//     clientId+endpoint (100 requests / 10s window; memcached TTL 10s that resets on every request, so the counter
//     only clears after 10s of silence)" (Keeper-Security/secrets-manager: sdk/javascript/packages/core/src/keeper.ts,
//     sdk/python/core/keeper_secrets_manager_core/keeper_globals.py, sdk/java/core/src/main/kotlin/com/
//     keepersecurity/secretsManager/core/SecretsManager.kt, sdk/ruby/lib/keeper_secrets_manager/core.rb; KSM-876).
//     A retry inside those 10 s is "wasting the attempt and resetting the counter" (secrets-manager PR #1054,
//     KSM-883), which is why the SDKs back off 11 s, 22 s, 44 s, 88 s, 176 s. Keeper's documentation gives an
//     older, stricter figure: "a default limit of 10 requests per minute, per Client Device ID. If you are
//     throttled, the backoff time is 1 minute" (docs.keeper.io/secrets-manager/secrets-manager/about/rate-limits,
//     from the docs tree Keeper has since replaced, and matching the Ruby SDK's fixed 60 s sleep that KSM-883
//     removed). The SDKs' figure is the newer one, written from the backend's code, so it is the default here;
//     the documented one is close to `{ burst: 10, perSecond: 1 / 6, quietSeconds: 60 }` (counted per endpoint here).
//   - The status is now 429, not 403: "The backend returned 403 for a throttled Secrets Manager request. A fix
//     changed the shared response code to 429", which left the SDKs' 403-only retry "silently dead"
//     (secrets-manager PR #1161, KSM-1395, after @keeper-security/secrets-manager-core 17.5.0, the newest on npm;
//     Commander KC-1389, PR #2270, retries a 429 "throttled" for the same reason). 403 stays selectable: PR #1161
//     keeps it in case "a second rate limiter ... still returns 403".
//   - The body is {"error":"throttled", ...}; the SDKs read `error` or `result_code` and honour a numeric
//     `retry_after` (seconds) "when present" (keeper.ts parseThrottle, core.py _parse_throttle). No public source
//     shows Keeper sending one, and the SDKs' fixed backoff is built around the 10 s window rather than a hint,
//     so by default it is left out; `retryAfter: true` adds it (the sandbox's own `throttle` fault always sends the
//     value it was armed with). The message is the SDKs' test fixtures' ({"error":"throttled","message":
//     "throttled"}, sdk/javascript/packages/core/test/throttle.test.ts, ThrottleTest.kt, throttle_test.py).
//
// The model: the shared token bucket (rate-limit.ts) with Keeper's 100 requests per 10 s, burst 100 refilling at
// 10 a second, one bucket per client and endpoint; and Keeper's 10 s of silence: once a client is throttled on an
// endpoint, every request to it is refused until the client has sent that endpoint nothing for `quietSeconds`
// (each refused request starts the quiet period again, as each one renews the memcached entry). Kinder than
// Keeper in one respect, knowingly: a client that never pauses for 10 s but stays under 10 requests a second is
// never throttled here, where Keeper's counter, never left to expire, would throttle it after 100. A rotation run
// makes 3 to 10 KSM calls over several seconds, so neither it nor any test suite comes near either limit; a tight
// loop does.
import type { Reply } from '../service.js';
import { RateLimiter } from '../rate-limit.js';

export interface KsmBudget {
  /** Off: the budget never throttles (a `throttle` fault still does). */
  enabled: boolean;
  /** Requests a client may send one endpoint at once. */
  burst: number;
  /** Requests per second the bucket refills at. */
  perSecond: number;
  /** How long a throttled client must send the endpoint nothing before it is served again; 0: not at all. */
  quietSeconds: number;
  /** The status of every throttle reply, the budget's and the `throttle` fault's. */
  status: 403 | 429;
  /** Whether the budget's throttle reply carries `retry_after`: the seconds until the client would be served. */
  retryAfter: boolean;
}

export const KSM_DEFAULT_BUDGET: Readonly<KsmBudget> = Object.freeze({ enabled: true, burst: 100, perSecond: 10, quietSeconds: 10, status: 429, retryAfter: false });

/** Checks a budget change field by field; throws a message naming the first field that is wrong. */
export function checkBudget(budget: KsmBudget): KsmBudget {
  if (typeof budget.enabled !== 'boolean') throw new Error('"enabled" must be a boolean');
  if (typeof budget.burst !== 'number' || !Number.isInteger(budget.burst) || budget.burst < 1) throw new Error('"burst" must be an integer of at least 1');
  if (typeof budget.perSecond !== 'number' || !(budget.perSecond > 0) || !Number.isFinite(budget.perSecond)) throw new Error('"perSecond" must be a number above 0');
  if (typeof budget.quietSeconds !== 'number' || !(budget.quietSeconds >= 0) || !Number.isFinite(budget.quietSeconds)) throw new Error('"quietSeconds" must be a number of at least 0');
  if (budget.status !== 403 && budget.status !== 429) throw new Error('"status" must be 403 or 429');
  if (typeof budget.retryAfter !== 'boolean') throw new Error('"retryAfter" must be a boolean');
  return budget;
}

export function throttledReply(status: number, retryAfterSeconds?: number): Reply {
  const body = { error: 'throttled', message: 'throttled', ...(retryAfterSeconds !== undefined ? { retry_after: retryAfterSeconds } : {}) };
  return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

export class KsmBudgetGate {
  readonly #initial: KsmBudget;
  #budget: KsmBudget;
  readonly #limiter: RateLimiter;
  /** Per client and endpoint: when (performance.now() ms) a throttled client may be served again. */
  readonly #quietUntil = new Map<string, number>();
  readonly #now: () => number;

  constructor(budget: Partial<KsmBudget> = {}, now: () => number = () => performance.now()) {
    this.#initial = checkBudget({ ...KSM_DEFAULT_BUDGET, ...budget });
    this.#budget = { ...this.#initial };
    this.#now = now;
    this.#limiter = new RateLimiter({ burst: this.#budget.burst, perSecond: this.#budget.perSecond }, now);
  }

  get budget(): KsmBudget {
    return { ...this.#budget };
  }

  /** Changes some settings; clients keep what their buckets hold (up to a new burst) and any quiet period they owe. */
  set(changes: Partial<KsmBudget>): KsmBudget {
    const next = checkBudget({ ...this.#budget, ...changes });
    this.#limiter.budget = { burst: next.burst, perSecond: next.perSecond };
    this.#budget = next;
    return this.budget;
  }

  /** The budget the service was made with, every bucket full and no quiet period owed. */
  reset(): KsmBudget {
    this.#budget = { ...this.#initial };
    this.#limiter.budget = { burst: this.#budget.burst, perSecond: this.#budget.perSecond };
    this.#limiter.reset();
    this.#quietUntil.clear();
    return this.budget;
  }

  /** Charges one request; undefined when it may be served, else the throttle reply. */
  charge(clientId: string, endpoint: string): Reply | undefined {
    if (!this.#budget.enabled) return undefined;
    const key = `${clientId} ${endpoint}`;
    const now = this.#now();
    const quietMs = this.#budget.quietSeconds * 1000;
    const until = this.#quietUntil.get(key);
    if (until !== undefined && now < until) return this.#refuse(key, now, Math.max(until, now + quietMs));
    this.#quietUntil.delete(key);
    const verdict = this.#limiter.take(key);
    if (verdict.ok) return undefined;
    // Served again once the client has been quiet long enough and its bucket holds a request, whichever is later.
    return this.#refuse(key, now, now + Math.max(quietMs, verdict.retryAfterSeconds * 1000));
  }

  #refuse(key: string, now: number, until: number): Reply {
    this.#quietUntil.set(key, until);
    // Whole seconds, rounded up: a client that waits what it is told is never early.
    return throttledReply(this.#budget.status, this.#budget.retryAfter ? Math.max(1, Math.ceil((until - now) / 1000)) : undefined);
  }
}
