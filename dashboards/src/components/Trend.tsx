import { computeTrend, type TrendPolarity } from '../lib/trend';

interface Props {
  current: number | null | undefined;
  previous: number | null | undefined;
  polarity?: TrendPolarity;
  testId?: string;
  /** Completes "Up 5% vs …" for screen readers. */
  comparedTo?: string;
}

/** "▲ 6.9%" coloured by whether the change is good news; "—" when there is no baseline. */
export function Trend({ current, previous, polarity = 'neutral', testId, comparedTo }: Props) {
  const t = computeTrend(current, previous, polarity, comparedTo);
  return (
    <span
      className={`trend trend--${t.tone}`}
      data-testid={testId}
      data-direction={t.direction ?? 'none'}
      title={t.label}
    >
      <span aria-hidden="true">{t.text}</span>
      <span className="sr-only">{t.label}</span>
    </span>
  );
}
