// Business impact: campaign rows and revenue per campaign and currency.
import type { BusinessImpactBody, Campaign, Money } from '../../api/types';
import { formatMoney, minorDigits } from './common';

/** "$60.00 · ₹2,000.00" for a list of per-currency amounts; "—" when empty. */
export function formatRevenue(list: readonly Money[]): string {
  if (!list.length) return '—';
  return [...list]
    .sort((a, b) => a.currency.localeCompare(b.currency))
    .map((m) => formatMoney(m.amount_minor, m.currency))
    .join(' · ');
}

/** Campaigns, most revenue-bearing deals first, then by leads and id. */
export function campaignRows(d: BusinessImpactBody): Campaign[] {
  return [...d.campaigns].sort(
    (a, b) => b.deals_won - a.deals_won || b.leads - a.leads || a.campaign_id.localeCompare(b.campaign_id),
  );
}

/** Revenue by campaign for one currency (charts cannot add up currencies). */
export function revenueByCampaign(d: BusinessImpactBody, currency: string): { campaigns: string[]; amounts: number[] } {
  const rows = d.campaigns
    .map((c) => ({ id: c.campaign_id, minor: c.revenue.find((r) => r.currency === currency)?.amount_minor ?? 0 }))
    .filter((r) => r.minor > 0)
    .sort((a, b) => b.minor - a.minor);
  const scale = 10 ** minorDigits(currency);
  return { campaigns: rows.map((r) => r.id), amounts: rows.map((r) => r.minor / scale) };
}

/** Currencies with revenue in the range, the largest total first. */
export function currencies(d: BusinessImpactBody): string[] {
  return [...d.revenue.current].sort((a, b) => b.amount_minor - a.amount_minor).map((m) => m.currency);
}
