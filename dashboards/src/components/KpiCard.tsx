import type { ReactNode } from 'react';

interface Props {
  id: string;
  title: string;
  /** Small caption next to the title, e.g. "now" or the selected range. */
  badge?: string;
  tone?: 'default' | 'alert';
  /** aria-busy: content is loading or being replaced. */
  busy?: boolean;
  /** Fade the card (stale values while a new range loads); defaults to `busy`. */
  dim?: boolean;
  children: ReactNode;
}

export function KpiCard({ id, title, badge, tone = 'default', busy = false, dim = busy, children }: Props) {
  const titleId = `${id}-title`;
  return (
    <section
      className={`card${tone === 'alert' ? ' card--alert' : ''}${dim ? ' is-dim' : ''}`}
      aria-labelledby={titleId}
      aria-busy={busy || undefined}
      data-testid={id}
    >
      <header className="card__head">
        <h2 id={titleId} className="card__title">
          {title}
        </h2>
        {badge && <span className="card__badge">{badge}</span>}
      </header>
      {children}
    </section>
  );
}

/** Label/value rows of a card. */
export function Breakdown({ children }: { children: ReactNode }) {
  return <dl className="breakdown">{children}</dl>;
}

export function BreakdownItem({
  label,
  value,
  raw,
  testId,
  swatch,
  extra,
}: {
  label: string;
  value: string;
  raw?: number | null;
  testId?: string;
  swatch?: string;
  extra?: ReactNode;
}) {
  return (
    <div className="breakdown__row">
      <dt>
        {swatch && <span className="swatch" style={{ background: swatch }} aria-hidden="true" />}
        {label}
      </dt>
      <dd>
        <span data-testid={testId} data-value={raw ?? undefined}>
          {value}
        </span>
        {extra}
      </dd>
    </div>
  );
}

/** Proportional horizontal bar; purely decorative (numbers are in the breakdown list). */
export function StackedBar({ parts }: { parts: { value: number; color: string; key: string }[] }) {
  const total = parts.reduce((s, p) => s + Math.max(0, p.value), 0);
  return (
    <div className="stacked" aria-hidden="true">
      {total > 0 &&
        parts.map((p) =>
          p.value > 0 ? (
            <span key={p.key} style={{ flexGrow: p.value, background: p.color }} />
          ) : null,
        )}
    </div>
  );
}
