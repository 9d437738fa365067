import { useId, useState } from 'react';
import { choiceParts, dashboardPdfName, dashboardPdfUrl, REPORT_PARTS, sectionPart, type PdfChoice } from '../lib/reports';
import { SECTIONS, type SectionId } from '../lib/viewState';
import { usePdfDownload } from './usePdfDownload';

type Kind = PdfChoice['kind'];

/**
 * "Export dashboard (PDF)": `/api/reports/dashboard.pdf` for the range and filters on
 * screen, of the whole dashboard (the server's seven sections), of the section in view,
 * or of sections ticked in a short list (the executive summary among them). Like the
 * summary export: a progress note with Cancel while the server renders, the server's
 * message on a failure. The server leaves out what the role may not see.
 */
export function DashboardExport({ token, params, section }: { token: string; params: Record<string, string>; section: SectionId }) {
  const { state, start, cancel } = usePdfDownload(token);
  const [kind, setKind] = useState<Kind>('whole');
  const [chosen, setChosen] = useState<string[] | null>(null);
  const id = useId();
  const label = SECTIONS.find((s) => s.id === section)!.label;
  // Until the list is touched it holds the section in view.
  const ticked = chosen ?? [sectionPart(section)];
  const choice: PdfChoice = kind === 'whole' ? { kind } : kind === 'section' ? { kind, section } : { kind, parts: ticked };
  const nothing = kind === 'chosen' && ticked.length === 0;

  if (state.phase === 'working') {
    return (
      <p className="export" role="status" data-testid="export-dashboard-progress">
        Preparing the dashboard PDF…{' '}
        <button type="button" className="btn btn--small" onClick={cancel} data-testid="export-dashboard-cancel">
          Cancel
        </button>
      </p>
    );
  }
  const toggle = (part: string, on: boolean) => setChosen((cur) => {
    const list = cur ?? [sectionPart(section)];
    return on ? [...list.filter((p) => p !== part), part] : list.filter((p) => p !== part);
  });
  return (
    <div className="export export--dashboard" data-testid="export-dashboard-control">
      <span className="export__row">
        <label className="export__choice" htmlFor={`${id}-kind`}>
          Dashboard PDF of
        </label>
        <select id={`${id}-kind`} className="export__select" value={kind} onChange={(e) => setKind(e.target.value as Kind)} data-testid="export-dashboard-choice">
          <option value="whole">the whole dashboard</option>
          <option value="section">this section ({label})</option>
          <option value="chosen">chosen sections</option>
        </select>
        <button
          type="button"
          className="btn btn--small"
          disabled={nothing}
          aria-describedby={nothing ? `${id}-none` : undefined}
          onClick={() => start(dashboardPdfUrl(params, choice), dashboardPdfName(choiceParts(choice), params.from))}
          data-testid="export-dashboard"
        >
          Export dashboard (PDF)
        </button>
      </span>
      {kind === 'chosen' && (
        <fieldset className="export__parts" data-testid="export-dashboard-parts">
          <legend>Sections in the PDF</legend>
          {REPORT_PARTS.map((p) => (
            <label key={p.id} className="check">
              <input type="checkbox" checked={ticked.includes(p.id)} onChange={(e) => toggle(p.id, e.target.checked)} data-testid={`export-part-${p.id}`} />{' '}
              {p.label}
            </label>
          ))}
          {nothing && (
            <span id={`${id}-none`} className="export__hint">
              Tick at least one.
            </span>
          )}
        </fieldset>
      )}
      {state.phase === 'failed' && (
        <p role="alert" className="export__error" data-testid="export-dashboard-error">
          The export failed: {state.message}
        </p>
      )}
    </div>
  );
}
