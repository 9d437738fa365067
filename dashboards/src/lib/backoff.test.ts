import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff';

const noJitter = { baseMs: 500, capMs: 10_000, jitter: 0 };

describe('backoffDelay', () => {
  it('doubles from the base delay and caps at 10 s', () => {
    const delays = Array.from({ length: 8 }, (_, i) => backoffDelay(i, noJitter));
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
  });
  it('never exceeds the cap, even for huge attempt numbers', () => {
    expect(backoffDelay(1000, noJitter)).toBe(10_000);
    expect(backoffDelay(-3, noJitter)).toBe(500);
  });
  it('applies jitter downwards only', () => {
    const opts = { baseMs: 500, capMs: 10_000, jitter: 0.2 };
    expect(backoffDelay(5, opts, () => 0)).toBe(10_000);
    expect(backoffDelay(5, opts, () => 1)).toBe(8000);
    expect(backoffDelay(2, opts, () => 0.5)).toBe(1800);
  });
});
