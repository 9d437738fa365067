import { useEffect, useState } from 'react';
import type { FilterRules } from '../lib/auth';
import { CHANNELS, FILTER_KEYS, type FilterKey, type Filters } from '../lib/viewState';

const LABELS: Record<FilterKey, string> = { agent_id: 'Agent', team_id: 'Team', inbox_id: 'Inbox', channel: 'Channel' };

interface Props {
  filters: Filters;
  onChange: (f: Filters) => void;
  /** Suggestions for the agent and team fields (ids seen in the data). */
  agents: string[];
  teams: string[];
  /** What the signed-in role may filter on (agent fixed for agents, own teams for supervisors). */
  rules?: FilterRules;
}

const FREE: FilterRules = { fixedAgent: null, hideAgent: false, teams: null };

/** Agent, team, inbox and channel filters. Text fields apply on Enter or when leaving them. */
export function FilterBar({ filters, onChange, agents, teams, rules = FREE }: Props) {
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
  // The fixed agent of an agent's token is not something to clear.
  const active = FILTER_KEYS.some((k) => filters[k] && !(k === 'agent_id' && rules.fixedAgent));
  const agentField = rules.fixedAgent ? (
    <label className="filter">
      <span>{LABELS.agent_id}</span>
      <input
        type="text"
        value={rules.fixedAgent}
        readOnly
        aria-describedby="filter-agent-fixed"
        className="filter__fixed"
        data-testid="filter-agent_id"
      />
      <span id="filter-agent-fixed" className="sr-only">
        Fixed: agents see their own data only.
      </span>
    </label>
  ) : rules.hideAgent ? null : (
    text('agent_id', 'known-agents')
  );
  const teamField = !rules.teams ? (
    text('team_id', 'known-teams')
  ) : rules.teams.length ? (
    <label className="filter">
      <span>{LABELS.team_id}</span>
      <select value={filters.team_id ?? ''} onChange={(e) => apply({ ...draft, team_id: e.target.value })} data-testid="filter-team_id">
        <option value="">{rules.teams.length > 1 ? 'all my teams' : 'all'}</option>
        {rules.teams.map((t) => (
          <option key={t} value={t}>
            {t}
          </option>
        ))}
      </select>
    </label>
  ) : null;
  return (
    <form className="filters" role="search" aria-label="Filters" onSubmit={(e) => (e.preventDefault(), apply(draft))}>
      {agentField}
      {teamField}
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
