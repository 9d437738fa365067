import { usePdfDownload } from './usePdfDownload';

/** "Export summary (PDF)": the executive summary of the range and filters on screen, from
 *  `/api/reports/summary.pdf`. While the server renders it the button gives way to a
 *  progress note and a Cancel button; a failure says what the server answered. */
export function SummaryExport({ token, params }: { token: string; params: Record<string, string> }) {
  const { state, start, cancel } = usePdfDownload(token);

  if (state.phase === 'working') {
    return (
      <p className="export" role="status" data-testid="export-progress">
        Preparing the summary PDF…{' '}
        <button type="button" className="btn btn--small" onClick={cancel} data-testid="export-cancel">
          Cancel
        </button>
      </p>
    );
  }
  return (
    <p className="export">
      <button
        type="button"
        className="btn btn--small"
        onClick={() => start(`/api/reports/summary.pdf?${new URLSearchParams(params)}`, `crmpulse-summary-${params.from ?? ''}.pdf`)}
        data-testid="export-summary"
      >
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
