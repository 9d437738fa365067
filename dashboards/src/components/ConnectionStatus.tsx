import { useEffect, useState } from 'react';
import type { ConnectionStatus as Status } from '../lib/types';

const TEXT: Record<Status, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
};

/** Connection indicator. The visible text is the state; the retry countdown is in the tooltip
 *  so screen readers are not told about it every second. */
export function ConnectionStatus({ status, retryAt }: { status: Status; retryAt: number | null }) {
  // Re-render every second while a retry is pending so the countdown stays current.
  const [, setTick] = useState(0);
  useEffect(() => {
    if (retryAt == null) return;
    const t = setInterval(() => setTick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [retryAt]);
  const secs = retryAt != null ? Math.max(0, Math.ceil((retryAt - Date.now()) / 1000)) : null;
  const title =
    status === 'live'
      ? 'Receiving live updates'
      : secs != null
        ? `Not connected; next attempt in ${secs} s`
        : 'Connecting to the live feed';
  return (
    <p role="status" className={`conn conn--${status}`} data-testid="connection-status" data-state={status} title={title}>
      <span className="conn__dot" aria-hidden="true" />
      {TEXT[status]}
    </p>
  );
}
