import { useEffect, useRef, useState } from 'react';
import { authFetch, errorFromResponse } from '../lib/auth';
import { downloadUrl } from './download';

type Phase = { phase: 'idle' } | { phase: 'working' } | { phase: 'failed'; message: string };

/** "Export summary (PDF)": the executive summary of the range and filters on screen, from
 *  `/api/reports/summary.pdf`. While the server renders it the button gives way to a
 *  progress note and a Cancel button; a failure says what the server answered. */
export function SummaryExport({ token, params }: { token: string; params: Record<string, string> }) {
  const [state, setState] = useState<Phase>({ phase: 'idle' });
  const ctl = useRef<AbortController | null>(null);
  useEffect(() => () => ctl.current?.abort(), []);

  const start = async () => {
    const abort = new AbortController();
    ctl.current = abort;
    setState({ phase: 'working' });
    try {
      const res = await authFetch(`/api/reports/summary.pdf?${new URLSearchParams(params)}`, token, { signal: abort.signal });
      if (!res.ok) throw await errorFromResponse(res);
      const blob = await res.blob();
      const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? `crmpulse-summary-${params.from ?? ''}.pdf`;
      const url = URL.createObjectURL(blob);
      downloadUrl(url, name);
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      setState({ phase: 'idle' });
    } catch (e) {
      if ((e as { name?: string })?.name === 'AbortError') {
        setState({ phase: 'idle' });
        return;
      }
      setState({ phase: 'failed', message: (e as Error)?.message || 'Could not reach the server.' });
    } finally {
      if (ctl.current === abort) ctl.current = null;
    }
  };

  if (state.phase === 'working') {
    return (
      <p className="export" role="status" data-testid="export-progress">
        Preparing the summary PDF…{' '}
        <button type="button" className="btn btn--small" onClick={() => ctl.current?.abort()} data-testid="export-cancel">
          Cancel
        </button>
      </p>
    );
  }
  return (
    <p className="export">
      <button type="button" className="btn btn--small" onClick={start} data-testid="export-summary">
        Export summary (PDF)
      </button>
      {state.phase === 'failed' && (
        <span role="alert" className="export__error" data-testid="export-error">
          {' '}
          The export failed: {state.message}
        </span>
      )}
    </p>
  );
}
