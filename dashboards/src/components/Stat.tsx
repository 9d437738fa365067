import { createContext, useContext, type ReactNode } from 'react';
import type { TrendPolarity } from '../lib/trend';
import type { RowScope } from '../lib/auth';
import { Trend } from './Trend';

/** True when the user asked to see the previous period next to the current one. */
export const CompareContext = createContext(false);
/** Whose agent rows the section holds (`RowScope`, lib/auth.ts). */
export const RowScopeContext = createContext<RowScope>('account');

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
  /** The previous period's value, formatted; shown when comparison is on. */
  previousText?: ReactNode;
  /** Text rather than a number: a smaller font. */
  small?: boolean;
}

/** One headline number with its trend against the previous period. */
export function Stat({ label, value, raw, current, previous, polarity, testId, hint, tone, small, previousText }: Props) {
  const compare = useContext(CompareContext);
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
      {compare && previousText !== undefined && (
        <p className="stat__prev" data-testid={`${testId}-previous`}>
          previous period: {previousText}
        </p>
      )}
    </div>
  );
}
