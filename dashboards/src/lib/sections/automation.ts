// Automation impact: bot vs human split and intents ordering.
import type { AutomationImpactBody } from '../../api/types';

/** Conversations in the range: bot only, with humans, and the rest (neither, e.g. still open). */
export function botHumanSlices(d: AutomationImpactBody): { name: string; value: number }[] {
  const c = d.conversations.current;
  return [
    { name: 'Bot only', value: c.bot_only },
    { name: 'With humans', value: c.with_humans },
    { name: 'Other', value: c.other },
  ];
}

/** Intents by conversations, most first, ties by name. */
export function intentRows(d: AutomationImpactBody) {
  return [...d.top_intents].sort((a, b) => b.conversations - a.conversations || a.intent.localeCompare(b.intent));
}
