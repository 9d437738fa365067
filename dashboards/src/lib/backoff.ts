export interface BackoffOptions {
  /** First retry delay in ms. */
  baseMs: number;
  /** Upper bound for any delay in ms. */
  capMs: number;
  /** 0..1: fraction of the delay that is randomised (0 = deterministic). */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, capMs: 10_000, jitter: 0.2 };

/**
 * Delay before reconnect attempt number `attempt` (0-based): base * 2^attempt, capped,
 * then reduced by up to `jitter` of itself so that many tabs do not reconnect in step.
 * The result never exceeds `capMs`.
 */
export function backoffDelay(
  attempt: number,
  opts: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const exp = Math.min(Math.max(0, attempt), 30);
  const raw = Math.min(opts.capMs, opts.baseMs * 2 ** exp);
  const jitter = Math.min(Math.max(opts.jitter, 0), 1);
  return Math.round(raw * (1 - jitter * random()));
}
