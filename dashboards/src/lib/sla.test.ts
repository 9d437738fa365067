import { describe, expect, it } from 'vitest';
import { slaDisplay } from './sla';

describe('slaDisplay', () => {
  it('maps each server status to its colour and label', () => {
    expect(slaDisplay('green')).toEqual({ status: 'green', color: '#16a34a', label: 'Within SLA' });
    expect(slaDisplay('yellow')).toEqual({ status: 'yellow', color: '#ca8a04', label: 'At risk' });
    expect(slaDisplay('red')).toEqual({ status: 'red', color: '#dc2626', label: 'SLA breached' });
  });
  it('maps null (no data) and unknown values to a grey "No data"', () => {
    expect(slaDisplay(null)).toEqual({ status: 'none', color: '#94a3b8', label: 'No data' });
    expect(slaDisplay(undefined).status).toBe('none');
    expect(slaDisplay('purple').label).toBe('No data');
  });
});
