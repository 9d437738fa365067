// Agent and team ids seen in any section body, offered as filter suggestions.

/** Collects `agent_id` / `team_id` string fields anywhere in `data` (depth-limited). */
export function collectIds(data: unknown, into: { agents: Set<string>; teams: Set<string> }, depth = 0): void {
  if (depth > 4 || data == null || typeof data !== 'object') return;
  if (Array.isArray(data)) {
    for (const v of data) collectIds(v, into, depth + 1);
    return;
  }
  for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
    if (k === 'agent_id' && typeof v === 'string') into.agents.add(v);
    else if (k === 'team_id' && typeof v === 'string') into.teams.add(v);
    else if (typeof v === 'object') collectIds(v, into, depth + 1);
  }
}
