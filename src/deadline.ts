// One deadline for the whole run, so a hung service cannot hold the gateway's script slot: every network call
// gets the smaller of its own timeout and the time left, and every wait is cut short by it.
import { setTimeout as sleep } from 'node:timers/promises';
import { RotateError } from './errors.js';

/** Bound for one network call when nothing shorter applies (KEEPER_ROTATE_REQUEST_TIMEOUT_SECONDS overrides it). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export class Deadline {
  readonly #end: number;

  constructor(
    readonly totalMs: number,
    private readonly now: () => number = Date.now,
    /** The longest any one network call may take; every client reads it through `timeout()`. */
    readonly requestTimeoutMs: number = DEFAULT_REQUEST_TIMEOUT_MS,
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

  /** The timeout for one call: the per-call bound (or a shorter one of the caller's), less when the run is nearly out of time. */
  timeout(perCallMs: number = this.requestTimeoutMs): number {
    return Math.max(1, Math.min(perCallMs, this.requestTimeoutMs, this.remaining()));
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
