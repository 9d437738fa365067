import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { Brand } from './Brand';
import { extractToken, type Me } from '../lib/auth';

interface SignInProps {
  /** Why the panel is shown (token refused or expired, signed out); null on a first visit. */
  reason: string | null;
  /** A pasted token is being checked against /api/me. */
  busy: boolean;
  onToken: (token: string) => void;
  /** Move focus to the heading when the panel replaces the dashboard. */
  focusOnMount: boolean;
}

/** The page without a usable token: what is needed, and a field to paste a token. */
export function SignIn({ reason, busy, onToken, focusOnMount }: SignInProps) {
  const [value, setValue] = useState('');
  const [invalid, setInvalid] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);
  const id = useId();
  const fieldId = `${id}-token`;
  const helpId = `${id}-help`;
  const errorId = `${id}-error`;

  useEffect(() => {
    document.title = 'crmpulse · Sign in';
    if (focusOnMount) heading.current?.focus();
  }, [focusOnMount]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const token = extractToken(value);
    if (!token) {
      setInvalid(true);
      return;
    }
    setInvalid(false);
    onToken(token);
  };

  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <div className="topbar__inner">
          <Brand sub="Sign in" />
        </div>
      </header>
      <main id="main" className="page" tabIndex={-1}>
        <section className="panel signin" aria-labelledby={`${id}-title`} data-testid="sign-in">
          <h2 id={`${id}-title`} className="signin__title" ref={heading} tabIndex={-1}>
            Sign in to the dashboard
          </h2>
          {reason && (
            <p className="banner" role="alert" data-testid="sign-in-reason">
              {reason}
            </p>
          )}
          <p id={helpId}>
            This dashboard needs an access token. Open the link printed by <code>crmpulse demo</code>, or ask an admin to run{' '}
            <code>crmpulse token --account N --role R</code>.
          </p>
          <form className="signin__form" onSubmit={submit} noValidate>
            <label htmlFor={fieldId} className="signin__label">
              Access token
            </label>
            <input
              id={fieldId}
              className="signin__input"
              type="text"
              name="token"
              autoComplete="off"
              autoCapitalize="off"
              spellCheck={false}
              placeholder="eyJ…"
              value={value}
              onChange={(e) => {
                setValue(e.target.value);
                if (invalid) setInvalid(false);
              }}
              aria-describedby={invalid ? `${helpId} ${errorId}` : helpId}
              aria-invalid={invalid || undefined}
              data-testid="sign-in-token"
            />
            {invalid && (
              <p id={errorId} className="signin__error" data-testid="sign-in-error">
                Paste a token first.
              </p>
            )}
            <div>
              <button type="submit" className="btn btn--primary" disabled={busy} data-testid="sign-in-submit">
                Use token
              </button>
            </div>
            <p role="status" className="signin__status">
              {busy ? 'Checking the token…' : ''}
            </p>
          </form>
        </section>
      </main>
    </>
  );
}

/** Shown while a stored token is checked, before the dashboard (no flash of the sign-in form). */
export function Checking({ notice, onRetry, onSignOut }: { notice: string | null; onRetry?: () => void; onSignOut: () => void }) {
  return (
    <>
      <header className="topbar">
        <div className="topbar__inner">
          <div className="brand">
            <span className="brand__logo" aria-hidden="true" />
            <h1>crmpulse</h1>
          </div>
        </div>
      </header>
      <main id="main" className="page" tabIndex={-1} data-testid="auth-checking">
        {notice ? (
          <div className="banner" role="alert" data-testid="auth-error">
            <span>{notice}</span>
            <span className="banner__actions">
              {onRetry && (
                <button type="button" className="btn btn--small" onClick={onRetry}>
                  Retry
                </button>
              )}
              <button type="button" className="btn btn--small" onClick={onSignOut}>
                Use another token
              </button>
            </span>
          </div>
        ) : (
          <p role="status" className="empty">
            Checking access…
          </p>
        )}
      </main>
    </>
  );
}

/** Who is signed in (from /api/me) and the "Sign out" button, for the header. */
export function SignedIn({ me, onSignOut }: { me: Me; onSignOut: () => void }) {
  const expires = new Date(me.exp * 1000);
  const details = [
    `account ${me.account_id}`,
    me.agent_id ? `agent ${me.agent_id}` : null,
    me.team_ids.length ? `teams ${me.team_ids.join(', ')}` : null,
    Number.isFinite(expires.getTime()) ? `token valid until ${expires.toLocaleString()}` : null,
  ]
    .filter(Boolean)
    .join(' · ');
  return (
    <div className="user" data-testid="signed-in">
      <p className="user__who" title={details}>
        <span className="sr-only">Signed in as </span>
        <span className="user__name" data-testid="signed-in-sub">
          {me.sub}
        </span>
        <span className="sr-only"> with the role</span>{' '}
        <span className={`role role--${me.role}`} data-testid="role-badge">
          {me.role}
        </span>
      </p>
      <button type="button" className="btn btn--small" onClick={onSignOut} data-testid="sign-out">
        Sign out
      </button>
    </div>
  );
}
