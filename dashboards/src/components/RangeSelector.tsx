import { useId } from 'react';
import { addLocalDays, parseIsoDay, previousPeriod, RANGE_LABELS, RANGE_PRESETS, toLocalIsoDate, type DateRange, type RangePreset } from '../lib/range';

interface Props {
  value: RangePreset;
  /** Days currently shown (`to` exclusive). */
  dates: DateRange;
  compare: boolean;
  onChange: (preset: RangePreset, custom?: DateRange) => void;
  onCompare: (on: boolean) => void;
}

/** Inclusive last day for the "to" date input (the URL and API keep `to` exclusive). */
const lastDay = (r: DateRange): string => {
  const d = parseIsoDay(r.to);
  return d ? toLocalIsoDate(addLocalDays(d, -1)) : r.to;
};

/** Presets as native radio buttons, custom days as date inputs, and the comparison toggle. */
export function RangeSelector({ value, dates, compare, onChange, onCompare }: Props) {
  const id = useId();
  const prev = previousPeriod(dates);
  const setCustom = (from: string, toInclusive: string) => {
    const a = parseIsoDay(from);
    const b = parseIsoDay(toInclusive);
    if (!a || !b || b < a) return;
    onChange('custom', { from, to: toLocalIsoDate(addLocalDays(b, 1)) });
  };
  return (
    <div className="range-picker">
      <fieldset className="range" data-testid="range-selector">
        <legend className="sr-only">Date range</legend>
        {RANGE_PRESETS.map((preset) => (
          <label key={preset} className={`range__option${preset === value ? ' is-selected' : ''}`}>
            <input
              type="radio"
              name={`range-${id}`}
              value={preset}
              checked={preset === value}
              onChange={() => (preset === 'custom' ? onChange('custom', dates) : onChange(preset))}
              data-testid={`range-${preset}`}
            />
            <span>{RANGE_LABELS[preset]}</span>
          </label>
        ))}
      </fieldset>
      {value === 'custom' && (
        <span className="range__custom">
          <label>
            From{' '}
            <input type="date" value={dates.from} max={lastDay(dates)} onChange={(e) => setCustom(e.target.value, lastDay(dates))} data-testid="range-from" />
          </label>
          <label>
            To{' '}
            <input type="date" value={lastDay(dates)} min={dates.from} onChange={(e) => setCustom(dates.from, e.target.value)} data-testid="range-to" />
          </label>
        </span>
      )}
      <label className="compare" title={`Previous period: ${prev.from} to ${lastDay(prev)}`}>
        <input type="checkbox" checked={compare} onChange={(e) => onCompare(e.target.checked)} data-testid="compare-toggle" /> Compare with previous period
      </label>
    </div>
  );
}
