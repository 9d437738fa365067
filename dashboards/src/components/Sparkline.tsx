import { useEffect, useRef } from 'react';
import type { EChartsType } from 'echarts/core';

// ECharts is loaded on demand so it stays out of the initial chunk.
let echartsPromise: Promise<typeof import('./echartsLite')> | null = null;
const loadEcharts = () => (echartsPromise ??= import('./echartsLite'));

function option(values: number[], color: string) {
  return {
    animation: false,
    grid: { left: 2, right: 2, top: 4, bottom: 2 },
    xAxis: { type: 'category' as const, show: false, boundaryGap: false, data: values.map((_, i) => i) },
    yAxis: {
      type: 'value' as const,
      show: false,
      // Pad around the data so a flat series sits mid-height instead of on the edge.
      min: (v: { min: number; max: number }) => v.min - Math.max(1, (v.max - v.min) * 0.25),
      max: (v: { min: number; max: number }) => v.max + Math.max(1, (v.max - v.min) * 0.25),
    },
    series: [
      {
        type: 'line' as const,
        data: values,
        showSymbol: false,
        smooth: false,
        lineStyle: { width: 1.5, color },
        areaStyle: { color, opacity: 0.12 },
        silent: true,
      },
    ],
  };
}

/** Tiny line chart of recent values; the accessible name summarises it. */
export function Sparkline({ values, label, color = '#2563eb' }: { values: number[]; label: string; color?: string }) {
  const el = useRef<HTMLDivElement>(null);
  const chart = useRef<EChartsType | null>(null);
  const latest = useRef(values);
  latest.current = values;

  useEffect(() => {
    let disposed = false;
    let ro: ResizeObserver | null = null;
    loadEcharts()
      .then(({ echarts }) => {
        if (disposed || !el.current) return;
        chart.current = echarts.init(el.current, null, { renderer: 'svg' });
        chart.current.setOption(option(latest.current, color));
        ro = new ResizeObserver(() => chart.current?.resize());
        ro.observe(el.current);
      })
      .catch(() => {
        /* the sparkline is decorative; the numbers are shown anyway */
      });
    return () => {
      disposed = true;
      ro?.disconnect();
      chart.current?.dispose();
      chart.current = null;
    };
  }, [color]);

  useEffect(() => {
    chart.current?.setOption(option(values, color));
  }, [values, color]);

  return <div ref={el} className="sparkline" role="img" aria-label={label} data-testid="kpi-active-sparkline" />;
}
