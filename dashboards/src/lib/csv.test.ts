import { describe, expect, it } from 'vitest';
import { csvField, exportFileName, exportHeader, toCsv, type ExportContext } from './csv';

const ctx: ExportContext = {
  section: 'conversation-effectiveness',
  range: { from: '2026-11-18', to: '2026-11-25' },
  filters: { agent_id: 'Agent 01', channel: 'whatsapp' },
  timezone: 'Asia/Kolkata',
};

describe('csv', () => {
  it('quotes fields with commas, quotes and newlines only', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField(null)).toBe('');
    expect(csvField(0.5)).toBe('0.5');
    expect(csvField(Number.NaN)).toBe('');
  });

  it('file names carry section, table, range and filters', () => {
    expect(exportFileName(ctx, 'Agent ranking', 'csv')).toBe(
      'crmpulse_conversation-effectiveness_agent-ranking_2026-11-18_2026-11-25_agent-agent-01_channel-whatsapp.csv',
    );
    expect(exportFileName({ ...ctx, filters: {} }, 'Weekday × hour', 'png')).toBe(
      'crmpulse_conversation-effectiveness_weekday-hour_2026-11-18_2026-11-25.png',
    );
  });

  it('header lines, column row and rows with CRLF', () => {
    const rows = [
      { agent: 'a1', n: 3 },
      { agent: 'b,2', n: 1 },
    ];
    const text = toCsv(ctx, 'Handled', [
      { label: 'Agent', value: (r: (typeof rows)[number]) => r.agent },
      { label: 'Conversations', value: (r: (typeof rows)[number]) => r.n },
    ], rows);
    expect(text).toBe(
      [
        '# crmpulse conversation-effectiveness: Handled',
        '# range: 2026-11-18 to 2026-11-25 (to exclusive, Asia/Kolkata)',
        '# filters: agent_id=Agent 01 channel=whatsapp',
        'Agent,Conversations',
        'a1,3',
        '"b,2",1',
        '',
      ].join('\r\n'),
    );
    expect(exportHeader({ ...ctx, filters: {}, timezone: null }, 'X')[2]).toBe('filters: none');
  });
});
