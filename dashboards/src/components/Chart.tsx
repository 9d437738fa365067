import { useEffect, useRef, useState } from 'react';
import type { EChartsType } from 'echarts/core';
import { exportFileName, exportHeader, type ExportContext } from '../lib/csv';
import { downloadUrl } from './download';

// ECharts loads on demand, and each chart only once it scrolls near the viewport.
let echartsPromise: Promise<typeof import('./echartsFull')> | null = null;
const loadEcharts = () => (echartsPromise ??= import('./echartsFull'));

interface Props {
  /** Visible title; also the PNG's title. */
  title: string;
  /** ECharts option (without title). Updated in place, so live changes do not flicker. */
  option: Record<string, unknown>;
  /** One-sentence text alternative for screen readers (the numbers are also in tables). */
  summary: string;
  ctx: ExportContext;
  testId: string;
  height?: number;
}

/** A titled chart panel with a PNG download; the canvas is decorative for screen readers,
 *  `summary` carries the meaning. */
export function Chart({ title, option, summary, ctx, testId, height = 260 }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const chart = useRef<EChartsType | null>(null);
  const latest = useRef(option);
  latest.current = option;
  const [visible, setVisible] = useState(false);
  const [ready, setReady] = useState(false);

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    if (typeof IntersectionObserver === 'undefined') {
      setVisible(true);
      return;
    }
    const io = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) {
          setVisible(true);
          io.disconnect();
        }
      },
      { rootMargin: '200px' },
    );
    io.observe(el);
    return () => io.disconnect();
  }, []);

  useEffect(() => {
    if (!visible) return;
    let disposed = false;
    let ro: ResizeObserver | null = null;
    loadEcharts()
      .then(({ echarts }) => {
        if (disposed || !host.current) return;
        chart.current = echarts.init(host.current, null, { renderer: 'canvas' });
        chart.current.setOption({ animation: false, ...latest.current });
        ro = new ResizeObserver(() => chart.current?.resize());
        ro.observe(host.current);
        setReady(true);
      })
      .catch(() => {
        /* the numbers are in the tables and the summary; the chart is an extra */
      });
    return () => {
      disposed = true;
      ro?.disconnect();
      chart.current?.dispose();
      chart.current = null;
    };
  }, [visible]);

  useEffect(() => {
    // Replace series (their count may change) but keep the instance: no flicker.
    chart.current?.setOption(option, { replaceMerge: ['series', 'xAxis', 'yAxis'] });
  }, [option]);

  // The PNG is drawn by a second, off-screen instance at a fixed 1200 px width with the
  // export header as its title, so the on-screen chart never changes and the title fits.
  const savePng = async () => {
    const { echarts } = await loadEcharts();
    const [head, range, filters] = exportHeader(ctx, title);
    const o = latest.current as { grid?: { top?: number }; legend?: { top?: number; show?: boolean } };
    const width = 1200;
    const h = height + 70;
    const box = document.createElement('div');
    box.style.cssText = `position:fixed;left:-20000px;top:0;width:${width}px;height:${h}px`;
    document.body.appendChild(box);
    const png = echarts.init(box, null, { renderer: 'canvas', width, height: h });
    try {
      png.setOption({
        ...o,
        animation: false,
        title: { show: true, text: head, subtext: `${range} · ${filters}`, left: 12, top: 8, textStyle: { fontSize: 15 }, subtextStyle: { fontSize: 12 } },
        ...(o.grid ? { grid: { ...o.grid, top: (o.grid.top ?? 36) + 64 } } : {}),
        ...(o.legend && o.legend.top != null ? { legend: { ...o.legend, top: 62 } } : {}),
        ...(!o.grid ? { series: ((o as { series?: object[] }).series ?? []).map((x) => ({ ...x, top: 70 })) } : {}),
      });
      downloadUrl(png.getDataURL({ type: 'png', pixelRatio: 2, backgroundColor: '#ffffff' }), exportFileName(ctx, title, 'png'));
    } finally {
      png.dispose();
      box.remove();
    }
  };

  return (
    <figure className="panel chart" data-testid={testId}>
      <figcaption className="panel__head">
        <h3 className="panel__title">{title}</h3>
        <button type="button" className="btn btn--small" onClick={() => void savePng()} disabled={!ready} data-testid={`${testId}-png`}>
          PNG<span className="sr-only"> of {title}</span>
        </button>
      </figcaption>
      <p className="sr-only">{summary}</p>
      {/* ECharts owns everything inside `host`; React must not render children there. */}
      <div className="chart__canvas" style={{ height }} aria-hidden="true">
        <div ref={host} className="chart__host" />
        {!ready && <div className="skeleton chart__skeleton" />}
      </div>
    </figure>
  );
}
