import type { ReactNode } from 'react';
import type { TrendPolarity } from '../lib/trend';
import { Trend } from './Trend';

interface Props {
  label: string;
  value: ReactNode;
  /** Raw number for tests and screen readers' sake. */
  raw?: number | null;
  current?: number | null;
  previous?: number | null;
  polarity?: TrendPolarity;
  testId: string;
  hint?: ReactNode;
  tone?: 'alert';
  /** Text rather than a number: a smaller font. */
  small?: boolean;
}

/** One headline number with its trend against the previous period. */
export function Stat({ label, value, raw, current, previous, polarity, testId, hint, tone, small }: Props) {
  return (
    <div className={`panel stat${tone === 'alert' ? ' stat--alert' : ''}`}>
      <p className="stat__label">{label}</p>
      <p className={`stat__value${small ? ' stat__value--small' : ''}`} data-testid={testId} data-value={raw ?? undefined}>
        {value}
      </p>
      <p className="stat__foot">
        {previous !== undefined && (
          <Trend current={current ?? null} previous={previous} polarity={polarity} testId={`${testId}-trend`} comparedTo="the previous period" />
        )}
        {hint && <span className="stat__hint">{hint}</span>}
      </p>
    </div>
  );
}
