import { useEffect, useState } from 'react';
import { CHANNELS, FILTER_KEYS, type FilterKey, type Filters } from '../lib/viewState';

const LABELS: Record<FilterKey, string> = { agent_id: 'Agent', team_id: 'Team', inbox_id: 'Inbox', channel: 'Channel' };

interface Props {
  filters: Filters;
  onChange: (f: Filters) => void;
  /** Suggestions for the agent and team fields (ids seen in the data). */
  agents: string[];
  teams: string[];
}

/** Agent, team, inbox and channel filters. Text fields apply on Enter or when leaving them. */
export function FilterBar({ filters, onChange, agents, teams }: Props) {
  const [draft, setDraft] = useState<Filters>(filters);
  useEffect(() => setDraft(filters), [filters]);
  const apply = (next: Filters) => {
    const clean: Filters = {};
    for (const k of FILTER_KEYS) if (next[k]?.trim()) clean[k] = next[k]!.trim();
    if (FILTER_KEYS.some((k) => (clean[k] ?? '') !== (filters[k] ?? ''))) onChange(clean);
  };
  const text = (k: 'agent_id' | 'team_id' | 'inbox_id', list?: string) => (
    <label className="filter">
      <span>{LABELS[k]}</span>
      <input
        type="text"
        value={draft[k] ?? ''}
        placeholder="all"
        list={list}
        onChange={(e) => setDraft({ ...draft, [k]: e.target.value })}
        onBlur={() => apply(draft)}
        onKeyDown={(e) => e.key === 'Enter' && apply(draft)}
        data-testid={`filter-${k}`}
      />
    </label>
  );
  const active = FILTER_KEYS.some((k) => filters[k]);
  return (
    <form className="filters" role="search" aria-label="Filters" onSubmit={(e) => (e.preventDefault(), apply(draft))}>
      {text('agent_id', 'known-agents')}
      {text('team_id', 'known-teams')}
      {text('inbox_id')}
      <label className="filter">
        <span>{LABELS.channel}</span>
        <select value={filters.channel ?? ''} onChange={(e) => apply({ ...draft, channel: e.target.value })} data-testid="filter-channel">
          <option value="">all</option>
          {CHANNELS.map((c) => (
            <option key={c} value={c}>
              {c}
            </option>
          ))}
        </select>
      </label>
      {active && (
        <button type="button" className="btn btn--small" onClick={() => onChange({})} data-testid="filters-clear">
          Clear filters
        </button>
      )}
      <datalist id="known-agents">
        {agents.map((a) => (
          <option key={a} value={a} />
        ))}
      </datalist>
      <datalist id="known-teams">
        {teams.map((t) => (
          <option key={t} value={t} />
        ))}
      </datalist>
    </form>
  );
}
