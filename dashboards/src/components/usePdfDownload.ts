import { useCallback, useEffect, useRef, useState } from 'react';
import { authFetch, errorFromResponse } from '../lib/auth';
import { fileNameFromDisposition } from '../lib/reports';
import { downloadUrl } from './download';

export type DownloadState = { phase: 'idle' } | { phase: 'working' } | { phase: 'failed'; message: string };

/**
 * Fetches a file with the bearer token and saves it under the server's file name
 * (`Content-Disposition`) or `fallbackName`. `cancel` aborts the request (no file, back
 * to idle); a failure keeps the server's message. Used by the PDF exports and the
 * report history's downloads.
 */
export function usePdfDownload(token: string) {
  const [state, setState] = useState<DownloadState>({ phase: 'idle' });
  const ctl = useRef<AbortController | null>(null);
  useEffect(() => () => ctl.current?.abort(), []);

  const start = useCallback(
    async (url: string, fallbackName: string) => {
      ctl.current?.abort();
      const abort = new AbortController();
      ctl.current = abort;
      setState({ phase: 'working' });
      try {
        const res = await authFetch(url, token, { signal: abort.signal });
        if (!res.ok) throw await errorFromResponse(res);
        const blob = await res.blob();
        if (abort.signal.aborted) return;
        const name = fileNameFromDisposition(res.headers.get('content-disposition')) ?? fallbackName;
        const href = URL.createObjectURL(blob);
        downloadUrl(href, name);
        setTimeout(() => URL.revokeObjectURL(href), 10_000);
        setState({ phase: 'idle' });
      } catch (e) {
        if (abort.signal.aborted || (e as { name?: string })?.name === 'AbortError') {
          if (ctl.current === abort) setState({ phase: 'idle' });
          return;
        }
        setState({ phase: 'failed', message: (e as Error)?.message || 'Could not reach the server.' });
      } finally {
        if (ctl.current === abort) ctl.current = null;
      }
    },
    [token],
  );

  const cancel = useCallback(() => ctl.current?.abort(), []);
  return { state, start, cancel };
}
