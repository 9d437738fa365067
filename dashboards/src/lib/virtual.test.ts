import { describe, expect, it } from 'vitest';
import { rowWindow } from './virtual';

describe('rowWindow', () => {
  it('renders the visible rows plus overscan, spacers cover the rest', () => {
    // 1000 rows of 36 px, 420 px viewport, scrolled to row 100.
    const w = rowWindow(1000, 3600, 420, 36, 6);
    expect(w).toEqual({ start: 94, end: 119, padTop: 94 * 36, padBottom: (1000 - 119) * 36 });
    expect(w.padTop + (w.end - w.start) * 36 + w.padBottom).toBe(1000 * 36);
  });
  it('clamps at both ends', () => {
    expect(rowWindow(10, 0, 420, 36, 6)).toEqual({ start: 0, end: 10, padTop: 0, padBottom: 0 });
    const last = rowWindow(100, 1e9, 420, 36, 2);
    expect(last.end).toBe(100);
    expect(last.start).toBe(99);
    expect(rowWindow(0, 0, 420, 36)).toEqual({ start: 0, end: 0, padTop: 0, padBottom: 0 });
  });
});
