import { useMemo, useRef, useState, type ReactNode } from 'react';
import { exportFileName, toCsv, type ExportContext } from '../lib/csv';
import { rowWindow } from '../lib/virtual';
import { downloadText } from './download';

export interface Column<R> {
  key: string;
  label: string;
  /** Raw value: sorting and CSV. */
  value: (row: R) => string | number | null;
  /** Display; defaults to the raw value. */
  render?: (row: R) => ReactNode;
  numeric?: boolean;
  /** A header without the sort button (e.g. a column of actions). */
  unsortable?: boolean;
}

interface Props<R> {
  title: string;
  columns: readonly Column<R>[];
  rows: readonly R[];
  rowKey: (row: R) => string;
  /** The range and filters the rows belong to; without it the table has no CSV button. */
  ctx?: ExportContext;
  testId: string;
  /** CSS class per row (threshold highlighting). */
  rowClass?: (row: R) => string | undefined;
  /** Makes rows activatable (drill-down); Enter/Space work too. */
  onRowClick?: (row: R) => void;
  empty?: string;
  /** More controls in the panel's head, before the CSV button. */
  actions?: ReactNode;
}

const ROW_H = 36;
/** Above this many rows only the visible window is rendered. */
const VIRTUAL_FROM = 60;
const VIEWPORT_H = 420;

export function DataTable<R>({ title, columns, rows, rowKey, ctx, testId, rowClass, onRowClick, empty = 'No rows for this range.', actions }: Props<R>) {
  const [sort, setSort] = useState<{ key: string; dir: 1 | -1 } | null>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const scroller = useRef<HTMLDivElement>(null);

  const sorted = useMemo(() => {
    if (!sort) return rows;
    const col = columns.find((c) => c.key === sort.key);
    if (!col) return rows;
    return [...rows].sort((a, b) => {
      const x = col.value(a);
      const y = col.value(b);
      if (x == null && y == null) return 0;
      if (x == null) return 1;
      if (y == null) return -1;
      return (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))) * sort.dir;
    });
  }, [rows, columns, sort]);

  const virtual = sorted.length > VIRTUAL_FROM;
  const win = virtual ? rowWindow(sorted.length, scrollTop, VIEWPORT_H, ROW_H) : { start: 0, end: sorted.length, padTop: 0, padBottom: 0 };

  const toggle = (key: string) =>
    setSort((s) => (s?.key === key ? (s.dir === 1 ? { key, dir: -1 } : null) : { key, dir: 1 }));

  const saveCsv = (ctx: ExportContext) =>
    downloadText(
      toCsv(ctx, title, columns.map((c) => ({ label: c.label, value: c.value })), sorted),
      exportFileName(ctx, title, 'csv'),
    );

  return (
    <section className="panel table-panel" data-testid={testId} aria-label={title}>
      <div className="panel__head">
        <h3 className="panel__title">{title}</h3>
        {actions}
        {ctx && (
          <button type="button" className="btn btn--small" onClick={() => saveCsv(ctx)} disabled={!rows.length} data-testid={`${testId}-csv`}>
            CSV<span className="sr-only"> of {title}</span>
          </button>
        )}
      </div>
      {rows.length === 0 ? (
        <p className="empty" data-testid={`${testId}-empty`}>
          {empty}
        </p>
      ) : (
        <div
          ref={scroller}
          className="table-scroll"
          style={virtual ? { maxHeight: VIEWPORT_H } : undefined}
          onScroll={virtual ? (e) => setScrollTop(e.currentTarget.scrollTop) : undefined}
          tabIndex={0}
          role="region"
          aria-label={`${title} (scrollable)`}
        >
          <table className="table" aria-rowcount={sorted.length + 1}>
            <thead>
              <tr>
                {columns.map((c) => (
                  <th
                    key={c.key}
                    scope="col"
                    className={c.numeric ? 'num' : undefined}
                    aria-sort={sort?.key === c.key ? (sort.dir === 1 ? 'ascending' : 'descending') : undefined}
                  >
                    {c.unsortable ? (
                      c.label
                    ) : (
                      <button type="button" className="th-sort" onClick={() => toggle(c.key)}>
                        {c.label}
                        <span aria-hidden="true">{sort?.key === c.key ? (sort.dir === 1 ? ' ▲' : ' ▼') : ''}</span>
                      </button>
                    )}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {win.padTop > 0 && <tr aria-hidden="true" style={{ height: win.padTop }} />}
              {sorted.slice(win.start, win.end).map((r, i) => (
                <tr
                  key={rowKey(r)}
                  aria-rowindex={win.start + i + 2}
                  className={[rowClass?.(r), onRowClick ? 'is-clickable' : undefined].filter(Boolean).join(' ') || undefined}
                  style={virtual ? { height: ROW_H } : undefined}
                  onClick={onRowClick ? () => onRowClick(r) : undefined}
                  onKeyDown={
                    onRowClick
                      ? (e) => {
                          if (e.key === 'Enter' || e.key === ' ') {
                            e.preventDefault();
                            onRowClick(r);
                          }
                        }
                      : undefined
                  }
                  tabIndex={onRowClick ? 0 : undefined}
                >
                  {columns.map((c) => (
                    <td key={c.key} className={c.numeric ? 'num' : undefined}>
                      {c.render ? c.render(r) : (c.value(r) ?? '—')}
                    </td>
                  ))}
                </tr>
              ))}
              {win.padBottom > 0 && <tr aria-hidden="true" style={{ height: win.padBottom }} />}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
