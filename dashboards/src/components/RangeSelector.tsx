import { RANGE_LABELS, RANGE_PRESETS, type RangePreset } from '../lib/range';

/** Segmented control built from native radio buttons (keyboard and screen-reader friendly). */
export function RangeSelector({ value, onChange }: { value: RangePreset; onChange: (r: RangePreset) => void }) {
  return (
    <fieldset className="range" data-testid="range-selector">
      <legend className="sr-only">Date range</legend>
      {RANGE_PRESETS.map((preset) => (
        <label key={preset} className={`range__option${preset === value ? ' is-selected' : ''}`}>
          <input
            type="radio"
            name="range"
            value={preset}
            checked={preset === value}
            onChange={() => onChange(preset)}
            data-testid={`range-${preset}`}
          />
          <span>{RANGE_LABELS[preset]}</span>
        </label>
      ))}
    </fieldset>
  );
}
