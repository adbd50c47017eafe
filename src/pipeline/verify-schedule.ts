// When to try a new credential again while the service propagates it. Propagation takes anything from no time
// (the sandbox, a quiet region) to minutes (Entra replication, IAM under load), so the first tries are quick and
// the gaps then grow with the time already waited: the wait past the moment the credential works stays a roughly
// constant share of the delay, and the number of requests grows with the logarithm of the delay, not linearly.
//
// The trade-off, measured by `npm run bench` (verify figures for delays of 3, 30 and 120 s): with gaps of 0.38 of
// the time waited, a 120 s propagation costs at most 20 token or STS requests even when every jitter draw is the
// shortest (test/pipeline/verify-schedule.test.ts), and the run notices the credential working ~19 % of the delay
// late on average (at worst ~45 %, one gap). Noticing within 10 % at worst needs gaps of 10 %: at least 37
// requests by 120 s (1 s gaps to 10 s, then ×1.1), the tight client loop Entra answers with AADSTS50196 (20
// identical requests a minute). Politeness is the hard bound here, promptness the soft one (README, "How
// verification waits").

/** Gaps between tries: the first few fixed, then `growth` × the time since the first try, within [min, max]. */
export const VERIFY_POLICY = {
  firstGapsMs: [250, 500],
  minGapMs: 1_000,
  growth: 0.38,
  maxGapMs: 60_000,
  /** Each gap is scaled by a random factor in [1 − jitter, 1 + jitter]: gateways rotating at once spread out. */
  jitter: 0.2,
  /**
   * Tries per verification at most, whatever the timeout: never hundreds. Set above what the longest timeout a
   * record may ask for (3600 s) takes at the shortest jittered gaps (94 tries), so the timeout, which the admin
   * chose, is what ends a verification; the cap only guards a schedule bug.
   */
  maxAttempts: 100,
  /**
   * Time kept back from the run's deadline for what a failed verification must do next (remove the new
   * credential, roll the save back): two requests' timeouts, but never more than a quarter of the run.
   */
  undoReserveRequests: 2,
  undoReserveShare: 0.25,
} as const;

/**
 * The pause before try `attempt + 1`, after `attempt` tries spanning `elapsedMs`. `random` is injectable so the
 * bench and tests can replay a schedule; the product uses Math.random (jitter needs no secrecy).
 */
export function verifyGapMs(attempt: number, elapsedMs: number, random: () => number = Math.random): number {
  const p = VERIFY_POLICY;
  const nominal = attempt <= p.firstGapsMs.length ? p.firstGapsMs[attempt - 1]! : Math.min(p.maxGapMs, Math.max(p.minGapMs, p.growth * elapsedMs));
  return Math.round(nominal * (1 - p.jitter + 2 * p.jitter * random()));
}

/** The moments (ms after the first try) a verification would try at, for `durationMs`: what the bench reports. */
export function verifyTimes(durationMs: number, random: () => number = Math.random): number[] {
  const times = [0];
  for (let attempt = 1; times.length < VERIFY_POLICY.maxAttempts; attempt++) {
    const next = times[times.length - 1]! + verifyGapMs(attempt, times[times.length - 1]!, random);
    if (next > durationMs) break;
    times.push(next);
  }
  return times;
}

/** How long a verification may last: the record's timeout, within the run's deadline less the undo reserve. */
export function verifyWindowMs(timeoutMs: number, deadline: { remaining(): number; totalMs: number; requestTimeoutMs: number }): number {
  const p = VERIFY_POLICY;
  const reserve = Math.min(p.undoReserveRequests * deadline.requestTimeoutMs, p.undoReserveShare * deadline.totalMs);
  return Math.max(0, Math.min(timeoutMs, deadline.remaining() - reserve));
}
