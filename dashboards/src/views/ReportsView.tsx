// The admins' "Reports" page: scheduled email reports (list, create, edit, pause and
// resume, delete, send now) and the history of runs with their PDFs. REST only
// (`/api/reports/schedules`, `/api/reports/runs`); every message of the server is
// shown as it came, since it names the field at fault.
import { useCallback, useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { DataTable, type Column } from '../components/DataTable';
import { usePdfDownload } from '../components/usePdfDownload';
import { ApiError, getJson, sendJson } from '../lib/auth';
import {
  cadenceText,
  coverageText,
  emptyForm,
  errorField,
  formatBytes,
  formatInstant,
  formatsText,
  formFromSchedule,
  inputFromForm,
  inputOfSchedule,
  isManual,
  MAX_RECIPIENTS,
  periodText,
  REPORT_PARTS,
  runPdfName,
  scheduleFiltersText,
  sectionsText,
  STATUS_LABELS,
  WEEKDAYS,
  type Run,
  type RunList,
  type Schedule,
  type ScheduleForm,
  type ScheduleList,
} from '../lib/reports';
import { CHANNELS, type FilterKey } from '../lib/viewState';

type Load<T> = { phase: 'loading' } | { phase: 'failed'; message: string; forbidden: boolean } | { phase: 'ready'; data: T };

const failed = (e: unknown): Load<never> => ({
  phase: 'failed',
  message: (e as Error)?.message || 'Could not reach the server.',
  forbidden: e instanceof ApiError && e.forbidden,
});

/** A run still `sending` is looked at again this often. */
const POLL_MS = 3_000;

export default function ReportsView({ token }: { token: string }) {
  const [list, setList] = useState<Load<ScheduleList>>({ phase: 'loading' });
  const [runs, setRuns] = useState<Load<RunList>>({ phase: 'loading' });
  const [runsOf, setRunsOf] = useState('');
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const [editing, setEditing] = useState<Schedule | null>(null);
  const [formKey, setFormKey] = useState(0);
  const formRef = useRef<HTMLElement>(null);

  const loadSchedules = useCallback(
    (signal?: AbortSignal) =>
      getJson<ScheduleList>('/api/reports/schedules', token, { signal }).then(
        (data) => setList({ phase: 'ready', data }),
        (e) => {
          if (!signal?.aborted) setList(failed(e));
        },
      ),
    [token],
  );
  const loadRuns = useCallback(
    (signal?: AbortSignal) =>
      getJson<RunList>(`/api/reports/runs${runsOf ? `?${new URLSearchParams({ schedule_id: runsOf })}` : ''}`, token, { signal }).then(
        (data) => setRuns({ phase: 'ready', data }),
        (e) => {
          if (!signal?.aborted) setRuns(failed(e));
        },
      ),
    [token, runsOf],
  );

  useEffect(() => {
    const ctl = new AbortController();
    void loadSchedules(ctl.signal);
    return () => ctl.abort();
  }, [loadSchedules]);
  useEffect(() => {
    const ctl = new AbortController();
    void loadRuns(ctl.signal);
    return () => ctl.abort();
  }, [loadRuns]);
  // A run being sent: look again until it has an outcome.
  const sending = runs.phase === 'ready' && runs.data.runs.some((r) => r.status === 'sending');
  useEffect(() => {
    if (!sending) return;
    const t = setTimeout(() => void loadRuns(), POLL_MS);
    return () => clearTimeout(t);
  }, [sending, runs, loadRuns]);

  const say = (text: string, error = false) => setMessage({ text, error });

  if (list.phase === 'loading') {
    return (
      <p className="empty" role="status" data-testid="reports-loading">
        Loading the report schedules…
      </p>
    );
  }
  if (list.phase === 'failed') {
    return (
      <div className="banner" role="alert" data-testid="reports-error" data-code={list.forbidden ? 'forbidden' : undefined}>
        <span>{list.forbidden ? `Scheduled reports are managed by admins: ${list.message}` : `Could not load the report schedules: ${list.message}`}</span>
        {!list.forbidden && (
          <button type="button" className="btn btn--small" onClick={() => void loadSchedules()}>
            Retry
          </button>
        )}
      </div>
    );
  }

  const { delivery, timezone, schedules } = list.data;
  const off = delivery !== 'smtp';

  const startEdit = (s: Schedule) => {
    setEditing(s);
    setFormKey((k) => k + 1);
    setMessage(null);
    requestAnimationFrame(() => {
      formRef.current?.scrollIntoView({ block: 'start' });
      formRef.current?.querySelector<HTMLInputElement>('input')?.focus();
    });
  };
  const saved = (s: Schedule, created: boolean) => {
    say(created ? `Created “${s.name}”.` : `Saved “${s.name}”.`);
    setEditing(null);
    setFormKey((k) => k + 1);
    void loadSchedules();
  };
  const setPaused = async (s: Schedule, paused: boolean) => {
    try {
      await sendJson<Schedule>('PUT', `/api/reports/schedules/${encodeURIComponent(s.id)}`, token, inputOfSchedule(s, { paused }));
      say(paused ? `Paused “${s.name}”: it sends nothing until resumed.` : `Resumed “${s.name}”.`);
      await loadSchedules();
    } catch (e) {
      say(`Could not ${paused ? 'pause' : 'resume'} “${s.name}”: ${(e as Error).message}`, true);
    }
  };
  const remove = async (s: Schedule) => {
    try {
      await sendJson('DELETE', `/api/reports/schedules/${encodeURIComponent(s.id)}`, token);
      say(`Deleted “${s.name}”; its history stays.`);
      if (editing?.id === s.id) {
        setEditing(null);
        setFormKey((k) => k + 1);
      }
      if (runsOf === s.id) setRunsOf('');
      await loadSchedules();
    } catch (e) {
      say(`Could not delete “${s.name}”: ${(e as Error).message}`, true);
    }
  };
  const sendNow = async (s: Schedule) => {
    try {
      const r = await sendJson<{ run_id: string }>('POST', `/api/reports/schedules/${encodeURIComponent(s.id)}/send`, token);
      say(`Sending “${s.name}” now (run ${r?.run_id ?? '?'}); the outcome appears in the history.`);
      await loadRuns();
    } catch (e) {
      say(`Could not send “${s.name}”: ${(e as Error).message}`, true);
    }
  };

  return (
    <div className="reports" data-testid="reports">
      <div className="reports__head">
        <h2 className="reports__title">Scheduled reports</h2>
        <p className="reports__about" data-testid="reports-timezone">
          Times are in the account's time zone, <strong>{timezone}</strong>. A daily report covers the day before its time, a weekly one the seven days before.
        </p>
      </div>
      {off && (
        <div className="banner banner--info" role="status" data-testid="reports-delivery-off" id="reports-delivery-off">
          <span>
            <strong>Mail delivery is off.</strong> No SMTP server is configured (<code>[reports] smtp_url</code> in the server's configuration), so schedules can be
            created and changed here but nothing is sent, and <em>Send now</em> is unavailable.
          </span>
        </div>
      )}
      {message && (
        <p className={message.error ? 'reports__message is-error' : 'reports__message'} role={message.error ? 'alert' : 'status'} data-testid="reports-message">
          {message.text}
        </p>
      )}
      <Schedules schedules={schedules} timezone={timezone} off={off} onEdit={startEdit} onPause={setPaused} onDelete={remove} onSend={sendNow} />
      <section className="panel" ref={formRef} aria-labelledby="schedule-form-title" data-testid="schedule-form-panel">
        <ScheduleEditor key={formKey} token={token} editing={editing} timezone={timezone} onSaved={saved} onCancel={() => (setEditing(null), setFormKey((k) => k + 1))} />
      </section>
      <History token={token} runs={runs} schedules={schedules} timezone={timezone} runsOf={runsOf} onRunsOf={setRunsOf} onRefresh={() => void loadRuns()} />
    </div>
  );
}

// ------------------------------------------------------------------ the list

interface SchedulesProps {
  schedules: Schedule[];
  timezone: string;
  off: boolean;
  onEdit: (s: Schedule) => void;
  onPause: (s: Schedule, paused: boolean) => Promise<void>;
  onDelete: (s: Schedule) => Promise<void>;
  onSend: (s: Schedule) => Promise<void>;
}

function Schedules({ schedules, timezone, off, onEdit, onPause, onDelete, onSend }: SchedulesProps) {
  const [confirm, setConfirm] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const run = (id: string, f: () => Promise<void>) => {
    setBusy(id);
    void f().finally(() => setBusy(null));
  };
  return (
    <section className="panel table-panel" aria-labelledby="schedules-title" data-testid="table-schedules">
      <div className="panel__head">
        <h3 className="panel__title" id="schedules-title">
          Schedules
        </h3>
      </div>
      {schedules.length === 0 ? (
        <p className="empty" data-testid="table-schedules-empty">
          No schedules yet: create one below.
        </p>
      ) : (
        <div className="table-scroll" tabIndex={0} role="region" aria-label="Schedules (scrollable)">
          <table className="table table--wrap">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">When ({timezone})</th>
                <th scope="col">Recipients</th>
                <th scope="col">Sections</th>
                <th scope="col">Filters</th>
                <th scope="col">Sends</th>
                <th scope="col">State</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {schedules.map((s) => (
                <tr key={s.id} data-testid={`schedule-${s.id}`} data-name={s.name} data-paused={s.paused ? 'true' : 'false'}>
                  <th scope="row" className="reports__name">
                    {s.name}
                  </th>
                  <td>
                    {cadenceText(s)}
                    <span className="reports__hint"> · covers {coverageText(s.cadence)}</span>
                  </td>
                  <td className="reports__recipients">{s.recipients.join(', ')}</td>
                  <td>{sectionsText(s.sections)}</td>
                  <td>{scheduleFiltersText(s.filters) || 'none'}</td>
                  <td>{formatsText(s.formats)}</td>
                  <td>
                    <span className={`state state--${s.paused ? 'paused' : 'active'}`} data-testid="schedule-state">
                      {s.paused ? 'Paused' : 'Active'}
                    </span>
                  </td>
                  <td className="reports__actions">
                    {confirm === s.id ? (
                      <span className="reports__confirm" data-testid="schedule-confirm">
                        Delete “{s.name}”? Its history stays.{' '}
                        <button type="button" className="btn btn--small btn--danger" disabled={busy === s.id} onClick={() => run(s.id, () => onDelete(s).finally(() => setConfirm(null)))} data-testid="schedule-delete-confirm">
                          Delete
                        </button>{' '}
                        <button type="button" className="btn btn--small" autoFocus onClick={() => setConfirm(null)} data-testid="schedule-delete-keep">
                          Keep
                        </button>
                      </span>
                    ) : (
                      <>
                        <button type="button" className="btn btn--small" onClick={() => onEdit(s)} data-testid="schedule-edit">
                          Edit<span className="sr-only"> {s.name}</span>
                        </button>
                        <button type="button" className="btn btn--small" disabled={busy === s.id} onClick={() => run(s.id, () => onPause(s, !s.paused))} data-testid="schedule-pause">
                          {s.paused ? 'Resume' : 'Pause'}
                          <span className="sr-only"> {s.name}</span>
                        </button>
                        <button
                          type="button"
                          className="btn btn--small"
                          disabled={off || busy === s.id}
                          aria-describedby={off ? 'reports-delivery-off' : undefined}
                          title={off ? 'Mail delivery is off ([reports] smtp_url)' : undefined}
                          onClick={() => run(s.id, () => onSend(s))}
                          data-testid="schedule-send"
                        >
                          Send now<span className="sr-only"> {s.name}</span>
                        </button>
                        <button type="button" className="btn btn--small" onClick={() => setConfirm(s.id)} data-testid="schedule-delete">
                          Delete<span className="sr-only"> {s.name}</span>
                        </button>
                      </>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

// ------------------------------------------------------------------ the form

interface EditorProps {
  token: string;
  /** The schedule being edited, or null for a new one. */
  editing: Schedule | null;
  timezone: string;
  onSaved: (s: Schedule, created: boolean) => void;
  onCancel: () => void;
}

const FILTER_LABELS: Record<Exclude<FilterKey, 'channel'>, string> = { inbox_id: 'Inbox', agent_id: 'Agent', team_id: 'Team' };

function ScheduleEditor({ token, editing, timezone, onSaved, onCancel }: EditorProps) {
  const [form, setForm] = useState<ScheduleForm>(() => (editing ? formFromSchedule(editing) : emptyForm()));
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const id = useId();
  const errId = `${id}-error`;
  const field = error ? errorField(error) : null;
  const set = (patch: Partial<ScheduleForm>) => setForm((f) => ({ ...f, ...patch }));
  /** aria attributes of an input the server's message names. */
  const invalid = (name: string) => (field === name ? { 'aria-invalid': true as const, 'aria-describedby': errId } : {});

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setSaving(true);
    setError(null);
    try {
      const input = inputFromForm(form);
      const s = editing
        ? await sendJson<Schedule>('PUT', `/api/reports/schedules/${encodeURIComponent(editing.id)}`, token, input)
        : await sendJson<Schedule>('POST', '/api/reports/schedules', token, input);
      onSaved(s!, !editing);
    } catch (err) {
      setError((err as Error)?.message || 'Could not reach the server.');
      setSaving(false);
    }
  };

  const toggleSection = (part: string, on: boolean) =>
    set({ sections: on ? [...form.sections.filter((p) => p !== part), part] : form.sections.filter((p) => p !== part) });

  return (
    <form className="schedule-form" onSubmit={submit} noValidate data-testid="schedule-form" aria-describedby={error ? errId : undefined}>
      <h3 className="panel__title" id="schedule-form-title">
        {editing ? `Edit “${editing.name}”` : 'New schedule'}
      </h3>
      <div className="schedule-form__grid">
        <Field id={`${id}-name`} label="Name">
          <input id={`${id}-name`} type="text" value={form.name} maxLength={200} onChange={(e) => set({ name: e.target.value })} {...invalid('name')} data-testid="schedule-name" />
        </Field>
        <fieldset className="schedule-form__group" {...(field === 'cadence' ? { 'aria-describedby': errId } : {})}>
          <legend>Cadence</legend>
          <label className="check">
            <input type="radio" name={`${id}-cadence`} checked={form.cadence === 'daily'} onChange={() => set({ cadence: 'daily' })} data-testid="schedule-daily" /> Daily
          </label>
          <label className="check">
            <input type="radio" name={`${id}-cadence`} checked={form.cadence === 'weekly'} onChange={() => set({ cadence: 'weekly' })} data-testid="schedule-weekly" /> Weekly
          </label>
        </fieldset>
        {form.cadence === 'weekly' && (
          <Field id={`${id}-weekday`} label="Weekday">
            <select id={`${id}-weekday`} value={form.weekday} onChange={(e) => set({ weekday: e.target.value })} {...invalid('weekday')} data-testid="schedule-weekday">
              {WEEKDAYS.map((w) => (
                <option key={w.id} value={w.id}>
                  {w.label}
                </option>
              ))}
            </select>
          </Field>
        )}
        <Field id={`${id}-time`} label={`Time (${timezone})`} hint={`Covers ${coverageText(form.cadence)}.`}>
          <input id={`${id}-time`} type="time" step={60} value={form.local_time} onChange={(e) => set({ local_time: e.target.value })} {...invalid('local_time')} data-testid="schedule-time" />
        </Field>
        <Field id={`${id}-recipients`} label="Recipients" hint={`Mail addresses, one per line or separated by commas; up to ${MAX_RECIPIENTS}.`} wide>
          <textarea id={`${id}-recipients`} rows={3} value={form.recipients} onChange={(e) => set({ recipients: e.target.value })} {...invalid('recipients')} data-testid="schedule-recipients" />
        </Field>
      </div>
      <fieldset className="schedule-form__group schedule-form__checks" {...(field === 'sections' ? { 'aria-describedby': errId } : {})}>
        <legend>Sections</legend>
        {REPORT_PARTS.map((p) => (
          <label key={p.id} className="check">
            <input type="checkbox" checked={form.sections.includes(p.id)} onChange={(e) => toggleSection(p.id, e.target.checked)} data-testid={`schedule-part-${p.id}`} /> {p.label}
          </label>
        ))}
      </fieldset>
      <fieldset className="schedule-form__group">
        <legend>Filters (optional)</legend>
        <div className="schedule-form__grid">
          <Field id={`${id}-channel`} label="Channel">
            <select id={`${id}-channel`} value={form.filters.channel} onChange={(e) => set({ filters: { ...form.filters, channel: e.target.value } })} {...invalid('filters.channel')} data-testid="schedule-channel">
              <option value="">Any channel</option>
              {CHANNELS.map((c) => (
                <option key={c} value={c}>
                  {c}
                </option>
              ))}
            </select>
          </Field>
          {(Object.keys(FILTER_LABELS) as (keyof typeof FILTER_LABELS)[]).map((k) => (
            <Field key={k} id={`${id}-${k}`} label={FILTER_LABELS[k]}>
              <input id={`${id}-${k}`} type="text" value={form.filters[k]} onChange={(e) => set({ filters: { ...form.filters, [k]: e.target.value } })} {...invalid(`filters.${k}`)} data-testid={`schedule-${k}`} />
            </Field>
          ))}
        </div>
      </fieldset>
      <fieldset className="schedule-form__group schedule-form__checks" {...(field === 'formats' ? { 'aria-describedby': errId } : {})}>
        <legend>Sends</legend>
        <label className="check">
          <input type="checkbox" checked={form.pdf} onChange={(e) => set({ pdf: e.target.checked })} data-testid="schedule-pdf" /> PDF attachment
        </label>
        <label className="check">
          <input type="checkbox" checked={form.html} onChange={(e) => set({ html: e.target.checked })} data-testid="schedule-html" /> HTML body with the executive summary
        </label>
        <label className="check">
          <input type="checkbox" checked={form.paused} onChange={(e) => set({ paused: e.target.checked })} data-testid="schedule-paused" /> Paused (sends nothing until resumed)
        </label>
      </fieldset>
      {error && (
        <p className="schedule-form__error" role="alert" id={errId} data-testid="schedule-error">
          Not saved: {error}
        </p>
      )}
      <div className="schedule-form__actions">
        <button type="submit" className="btn btn--primary" disabled={saving} data-testid="schedule-submit">
          {editing ? 'Save changes' : 'Create schedule'}
        </button>
        {editing && (
          <button type="button" className="btn" onClick={onCancel} data-testid="schedule-cancel">
            Cancel editing
          </button>
        )}
      </div>
    </form>
  );
}

function Field({ id, label, hint, wide, children }: { id: string; label: string; hint?: string; wide?: boolean; children: ReactNode }) {
  return (
    <div className={wide ? 'field field--wide' : 'field'}>
      <label htmlFor={id} className="field__label">
        {label}
      </label>
      {children}
      {hint && <span className="field__hint">{hint}</span>}
    </div>
  );
}

// ------------------------------------------------------------------ the history

interface HistoryProps {
  token: string;
  runs: Load<RunList>;
  schedules: Schedule[];
  timezone: string;
  runsOf: string;
  onRunsOf: (id: string) => void;
  onRefresh: () => void;
}

function History({ token, runs, schedules, timezone, runsOf, onRunsOf, onRefresh }: HistoryProps) {
  const { state, start, cancel } = usePdfDownload(token);
  const id = useId();
  const days = runs.phase === 'ready' ? runs.data.history_days : null;
  const columns: Column<Run>[] = [
    { key: 'schedule', label: 'Schedule', value: (r) => r.schedule_name, render: (r) => (isManual(r) ? <>{r.schedule_name} <span className="reports__hint">(sent by hand)</span></> : r.schedule_name) },
    { key: 'period', label: 'Period', value: (r) => r.period[0] ?? '', render: (r) => periodText(r.period) },
    { key: 'due', label: `Due (${timezone})`, value: (r) => r.due_at, render: (r) => formatInstant(r.due_at, timezone) },
    { key: 'recipients', label: 'Recipients', value: (r) => r.recipients.length, numeric: true, render: (r) => <span title={r.recipients.join(', ')}>{r.recipients.length}</span> },
    { key: 'status', label: 'Status', value: (r) => r.status, render: (r) => <span className={`state state--${r.status}`}>{STATUS_LABELS[r.status] ?? r.status}</span> },
    { key: 'attempts', label: 'Attempts', value: (r) => r.attempts, numeric: true },
    { key: 'error', label: 'Error', value: (r) => r.error ?? null, render: (r) => (r.error ? <span className="reports__run-error">{r.error}</span> : '—') },
    { key: 'size', label: 'Mail size', value: (r) => r.message_bytes, numeric: true, render: (r) => formatBytes(r.message_bytes) },
    {
      key: 'pdf',
      label: 'PDF',
      value: (r) => r.pdf_bytes,
      unsortable: true,
      render: (r) =>
        r.pdf_bytes > 0 ? (
          <button
            type="button"
            className="btn btn--small"
            disabled={state.phase === 'working'}
            onClick={() => start(`/api/reports/runs/${encodeURIComponent(r.run_id)}/pdf`, runPdfName(r))}
            data-testid="run-download"
          >
            Download<span className="sr-only"> the PDF of {r.schedule_name}, {periodText(r.period)},</span> ({formatBytes(r.pdf_bytes)})
          </button>
        ) : (
          'none'
        ),
    },
  ];
  const empty =
    runs.phase === 'ready'
      ? `No runs in the last ${runs.data.history_days} days${runsOf ? ' for this schedule' : ''}.`
      : runs.phase === 'loading'
        ? 'Loading the history…'
        : 'The history could not be loaded.';
  return (
    <>
      {runs.phase === 'failed' && (
        <div className="banner" role="alert" data-testid="runs-error">
          <span>Could not load the history: {runs.message}</span>
          <button type="button" className="btn btn--small" onClick={onRefresh}>
            Retry
          </button>
        </div>
      )}
      <DataTable
        title="History"
        columns={columns}
        rows={runs.phase === 'ready' ? runs.data.runs : []}
        rowKey={(r) => r.run_id}
        testId="table-runs"
        empty={empty}
        actions={
          <span className="reports__history-head">
            <span className="reports__hint">{days != null ? `Last ${days} days, newest first.` : 'Newest first.'}</span>
            <label className="field field--inline" htmlFor={`${id}-of`}>
              <span className="field__label">Runs of</span>
              <select id={`${id}-of`} value={runsOf} onChange={(e) => onRunsOf(e.target.value)} data-testid="runs-of">
                <option value="">all schedules</option>
                {schedules.map((s) => (
                  <option key={s.id} value={s.id}>
                    {s.name}
                  </option>
                ))}
              </select>
            </label>
            <button type="button" className="btn btn--small" onClick={onRefresh} data-testid="runs-refresh">
              Refresh<span className="sr-only"> the history</span>
            </button>
          </span>
        }
      />
      {state.phase === 'working' && (
        <p className="export" role="status" data-testid="run-download-progress">
          Downloading the PDF…{' '}
          <button type="button" className="btn btn--small" onClick={cancel}>
            Cancel
          </button>
        </p>
      )}
      {state.phase === 'failed' && (
        <p className="export__error" role="alert" data-testid="run-download-error">
          The download failed: {state.message}
        </p>
      )}
    </>
  );
}
