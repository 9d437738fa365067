import type { SlaStatus } from './types';

export interface SlaDisplay {
  status: SlaStatus | 'none';
  /** CSS colour for the badge background / dot. */
  color: string;
  /** Visible text, so the status never relies on colour alone. */
  label: string;
}

const SLA: Record<SlaStatus | 'none', SlaDisplay> = {
  green: { status: 'green', color: '#16a34a', label: 'Within SLA' },
  yellow: { status: 'yellow', color: '#ca8a04', label: 'At risk' },
  red: { status: 'red', color: '#dc2626', label: 'SLA breached' },
  none: { status: 'none', color: '#94a3b8', label: 'No data' },
};

/** Maps the server's `first_response.sla_status` to colour and label. Unknown -> "none". */
export function slaDisplay(status: string | null | undefined): SlaDisplay {
  if (status === 'green' || status === 'yellow' || status === 'red') return SLA[status];
  return SLA.none;
}
