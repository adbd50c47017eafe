// One pause for every request a process sends Keeper side by side. Keeper counts per client and endpoint and
// clears its count only once the client has sent that endpoint nothing for 10 s (vault.ts THROTTLE_QUIET_MS); a
// request that retries on its own back-off while others still go out restarts that count for all of them. So
// when Keeper throttles one, none is sent until the quiet period since the last throttled reply has passed.
import { setTimeout as sleep } from 'node:timers/promises';

export class ThrottleGate {
  #resumeAt = 0;
  /** How many pauses began (a throttle during a pause extends it). */
  pauses = 0;

  /** Called as each pause begins, with its length. */
  onPause: ((waitMs: number) => void) | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  /** Keeper throttled a request: nothing is sent for `waitMs` from now, or longer if a pause already runs longer. */
  hold(waitMs: number): void {
    const now = this.now();
    if (this.#resumeAt <= now) {
      this.pauses += 1;
      this.onPause?.(waitMs);
    }
    this.#resumeAt = Math.max(this.#resumeAt, now + waitMs);
  }

  /** Milliseconds until requests may go again (0: now). */
  remaining(): number {
    return Math.max(0, this.#resumeAt - this.now());
  }

  /** Resolves once no pause is in force. */
  async open(): Promise<void> {
    for (let wait = this.remaining(); wait > 0; wait = this.remaining()) await sleep(wait);
  }
}
