// Seeded randomness for the sandbox's timing (how long a new credential takes to propagate, how long a fresh
// write stays out of reads). A draw is a pure function of the seed and a label that names what is drawn for
// (`aws/propagation/alice/3`: the third key made for user alice), not of how many draws came before it: two
// runs with one seed give each credential the same delays even when unrelated calls interleave differently.

import { createHash } from 'node:crypto';

/** The seed a sandbox uses when none is given: fixed, so an unseeded run reproduces too. */
export const DEFAULT_SEED = 1;

/** How far a spread factor may stray from the median, in standard deviations (about 95% of the mass). */
const CLAMP_SIGMAS = 2;

export function checkSeed(seed: unknown): number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) throw new Error('a seed is an integer');
  return seed;
}

export function checkSpread(sigma: unknown): number {
  if (typeof sigma !== 'number' || !Number.isFinite(sigma) || sigma < 0 || sigma > 3) throw new Error('a spread (sigma) is a number from 0 to 3');
  return sigma;
}

export class SeededRandom {
  #seed: number;

  constructor(seed: number = DEFAULT_SEED) {
    this.#seed = checkSeed(seed);
  }

  get seed(): number {
    return this.#seed;
  }

  /** Draws made after this use the new seed; what was drawn before stays drawn. */
  set seed(seed: number) {
    this.#seed = checkSeed(seed);
  }

  /** Uniform in (0, 1): 48 bits of SHA-256 over the seed and the label, never exactly 0 or 1. */
  uniform(label: string): number {
    const digest = createHash('sha256').update(`${this.#seed}\u0000${label}`, 'utf8').digest();
    return (digest.readUIntBE(0, 6) + 0.5) / 2 ** 48;
  }

  /** Standard normal (Box-Muller over two labelled uniforms). */
  normal(label: string): number {
    const u1 = this.uniform(`${label}#1`);
    const u2 = this.uniform(`${label}#2`);
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /**
   * A multiplier for a configured median: log-normal with median 1 and shape `sigma` (exp(sigma * z)), z clamped
   * to ±2 so that no draw is absurd (sigma 0.5 gives 0.37x to 2.7x the median). Delays of real distributed
   * systems are skewed this way: most land near the median, a long tail lands well after it, none before zero.
   * Sigma 0 is exactly 1, the old fixed delay.
   */
  spread(label: string, sigma: number): number {
    if (sigma === 0) return 1;
    const z = Math.max(-CLAMP_SIGMAS, Math.min(CLAMP_SIGMAS, this.normal(label)));
    return Math.exp(sigma * z);
  }
}
