import type { ExportContext } from '../lib/csv';
import type { ViewState } from '../lib/viewState';

import type { RowScope } from '../lib/auth';

/** Suffix for figures derived from agent rows, by whose rows the section holds. */
export const ROW_SCOPE_LABEL: Record<RowScope, string> = { account: '', teams: ' (your teams)', self: ' (you)' };

export interface ViewProps<T> {
  data: T;
  ctx: ExportContext;
  view: ViewState;
  /** Replace part of the view state (URL). */
  update: (patch: Partial<ViewState>) => void;
}

export const COLORS = {
  primary: '#2563eb',
  previous: '#94a3b8',
  good: '#15803d',
  warn: '#b45309',
  bad: '#b91c1c',
  bot: '#7c3aed',
  human: '#0891b2',
};

export const TOOLTIP_AXIS = { trigger: 'axis', confine: true } as const;
export const TOOLTIP_ITEM = { trigger: 'item', confine: true } as const;
export const GRID = { left: 48, right: 16, top: 36, bottom: 56, containLabel: false };
export const LEGEND = { top: 4, left: 'center' } as const;
