// Agent productivity: table rows, active/idle breakdown and workload distribution.
import type { AgentProductivityBody, AgentRow } from '../../api/types';

export const STATUS_LABEL: Record<string, string> = {
  online: 'Online',
  busy: 'Busy',
  away: 'Away',
  offline: 'Offline',
};

/** Active (online + busy), idle (away) and offline hours per agent, for a stacked bar. */
export function timeBreakdown(d: AgentProductivityBody): { agents: string[]; active: number[]; idle: number[]; offline: number[] } {
  const h = (s: number) => Math.round((s / 3600) * 10) / 10;
  return {
    agents: d.agents.map((a) => a.agent_id),
    active: d.agents.map((a) => h(a.active_s)),
    idle: d.agents.map((a) => h(a.idle_s)),
    offline: d.agents.map((a) => h(a.time_in_status_s.offline)),
  };
}

/**
 * Open conversations per agent, most loaded first, with the server's mean over agents on
 * duty for a reference line (null when nobody is online or busy: no line then).
 */
export function workloadBars(d: AgentProductivityBody): { agents: string[]; open: number[]; mean: number | null } {
  const rows = [...d.agents].sort((a, b) => b.open_conversations - a.open_conversations || a.agent_id.localeCompare(b.agent_id));
  return { agents: rows.map((a) => a.agent_id), open: rows.map((a) => a.open_conversations), mean: d.workload.mean ?? null };
}

/** Current status; agents never seen changing status count as offline. */
export function agentStatus(a: AgentRow): string {
  return a.status_now?.status ?? 'offline';
}

/** Current status counts (how many agents are online, busy, away, offline now). */
export function statusCounts(d: AgentProductivityBody): Record<string, number> {
  const out: Record<string, number> = { online: 0, busy: 0, away: 0, offline: 0 };
  for (const a of d.agents) {
    const s = agentStatus(a);
    out[s] = (out[s] ?? 0) + 1;
  }
  return out;
}

/** Workload spread in words: coefficient of variation ≤ 0.25 even, ≤ 0.5 uneven, beyond skewed. */
export function spreadLabel(cv: number | null | undefined): string {
  if (cv == null || !Number.isFinite(cv)) return 'No data';
  if (cv <= 0.25) return 'Even';
  if (cv <= 0.5) return 'Uneven';
  return 'Skewed';
}

export function findAgent(d: AgentProductivityBody, id: string | null): AgentRow | null {
  return id ? (d.agents.find((a) => a.agent_id === id) ?? null) : null;
}
