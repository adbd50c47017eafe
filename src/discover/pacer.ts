// Client-side pacing for a service that throttles per account but publishes no rate (IAM): a token bucket that
// keeps a discovery of a thousand users under the budget instead of running into throttling and leaning on the
// SDK's retries, whose own retry quota a long run of throttled calls would exhaust.
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A monotonic clock in milliseconds. Not `performance.now()`: every Wiz rotation makes a pacer, and the first touch
 * of the global `performance` loads Node's perf_hooks (eight modules, about 1 ms of a rotation's CPU; issue 19).
 */
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export class Pacer {
  #tokens: number;
  #last = nowMs();
  #queue: Promise<void> = Promise.resolve();
  sent = 0;

  constructor(
    readonly burst: number,
    readonly perSecond: number,
  ) {
    this.#tokens = burst;
  }

  /** Resolves when one more request may go; callers are served in the order they asked. */
  take(): Promise<void> {
    const turn = this.#queue.then(async () => {
      for (;;) {
        const now = nowMs();
        this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.perSecond);
        this.#last = now;
        if (this.#tokens >= 1) {
          this.#tokens -= 1;
          this.sent += 1;
          return;
        }
        await sleep(Math.ceil(((1 - this.#tokens) / this.perSecond) * 1000));
      }
    });
    this.#queue = turn;
    return turn;
  }
}

/** Runs `work` over `items` with at most `limit` at once; the first failure stops new work and is thrown. */
export async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const i = next++;
      try {
        await work(items[i]!, i);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed !== undefined) throw failed;
}
