// CSV and file names for downloads. Every export says what it shows: the section, the
// range and the filters, in the file name and in `#` header lines above the column row.
import { FILTER_KEYS, type Filters } from './viewState';
import type { DateRange } from './range';

export interface ExportContext {
  section: string;
  range: DateRange;
  filters: Filters;
  timezone?: string | null;
}

/** RFC 4180 field: quoted when it holds a comma, quote, CR or LF; quotes doubled. */
export function csvField(v: unknown): string {
  if (v == null) return '';
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const slug = (s: string): string =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');

/** `crmpulse_<section>_<what>_<from>_<to>[_<filter>-<value>…].<ext>`, `to` exclusive. */
export function exportFileName(ctx: ExportContext, what: string, ext: 'csv' | 'png'): string {
  const parts = ['crmpulse', slug(ctx.section), slug(what), ctx.range.from, ctx.range.to];
  for (const k of FILTER_KEYS) {
    const v = ctx.filters[k];
    if (v) parts.push(`${slug(k.replace(/_id$/, ''))}-${slug(v)}`);
  }
  return `${parts.join('_')}.${ext}`;
}

/** Human header lines (also used as the PNG subtitle). */
export function exportHeader(ctx: ExportContext, title: string): string[] {
  const filters = FILTER_KEYS.filter((k) => ctx.filters[k]).map((k) => `${k}=${ctx.filters[k]}`);
  return [
    `crmpulse ${ctx.section}: ${title}`,
    `range: ${ctx.range.from} to ${ctx.range.to} (to exclusive${ctx.timezone ? `, ${ctx.timezone}` : ''})`,
    `filters: ${filters.length ? filters.join(' ') : 'none'}`,
  ];
}

export interface CsvColumn<R> {
  label: string;
  value: (row: R) => unknown;
}

/** `#` header lines, the column row, then one line per row; CRLF line ends (RFC 4180). */
export function toCsv<R>(ctx: ExportContext, title: string, columns: readonly CsvColumn<R>[], rows: readonly R[]): string {
  const lines = exportHeader(ctx, title).map((l) => `# ${l}`);
  lines.push(columns.map((c) => csvField(c.label)).join(','));
  for (const r of rows) lines.push(columns.map((c) => csvField(c.value(r))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
