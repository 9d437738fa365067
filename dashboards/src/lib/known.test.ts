import { describe, expect, it } from 'vitest';
import { collectIds } from './known';

describe('collectIds', () => {
  it('finds agent and team ids at any depth', () => {
    const into = { agents: new Set<string>(), teams: new Set<string>() };
    collectIds({ agents: [{ agent_id: 'a1', team_id: 't1' }, { agent_id: 'a2', team_id: null }], x: { handled_per_agent: [{ agent_id: 'a3' }] } }, into);
    expect([...into.agents].sort()).toEqual(['a1', 'a2', 'a3']);
    expect([...into.teams]).toEqual(['t1']);
  });
});
