// Automation impact: bot vs human split and intents ordering.
import type { AutomationImpactBody } from '../../api/pending';

export function botHumanSlices(d: AutomationImpactBody): { name: string; value: number }[] {
  return [
    { name: 'Bot only', value: d.conversations.bot_only },
    { name: 'With humans', value: d.conversations.with_humans },
  ];
}

export function intentRows(d: AutomationImpactBody) {
  return [...d.intents].sort((a, b) => b.count - a.count || a.intent.localeCompare(b.intent));
}
