// One deadline for the whole run, so a hung service cannot hold the gateway's script slot: every network call
// gets the smaller of its own timeout and the time left, and every wait is cut short by it.
import { setTimeout as sleep } from 'node:timers/promises';
import { RotateError } from './errors.js';

export class Deadline {
  readonly #end: number;

  constructor(
    readonly totalMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#end = now() + totalMs;
  }

  /** When the run must be over, in ms since the epoch. */
  endsAt(): number {
    return this.#end;
  }

  remaining(): number {
    return Math.max(0, this.#end - this.now());
  }

  /** The timeout for one call: its own bound, or less when the run is nearly out of time. */
  timeout(perCallMs: number): number {
    return Math.max(1, Math.min(perCallMs, this.remaining()));
  }

  /** Throws DEADLINE_EXCEEDED when the run is out of time; call before starting a step. */
  check(step: string): void {
    if (this.remaining() <= 0) throw new RotateError('DEADLINE_EXCEEDED', `the run's deadline of ${Math.round(this.totalMs / 1000)} s passed before ${step}`);
  }

  /** Waits `ms`, or throws DEADLINE_EXCEEDED at once when the wait would outlast the run. */
  async wait(ms: number, step: string): Promise<void> {
    if (ms >= this.remaining()) throw new RotateError('DEADLINE_EXCEEDED', `waiting ${Math.round(ms / 1000)} s for ${step} would pass the run's deadline of ${Math.round(this.totalMs / 1000)} s`);
    await sleep(ms);
  }
}
