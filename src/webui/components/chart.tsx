// A small live line chart on <canvas>: no chart library (the first load stays small) and no
// per-sample allocation that outlives the draw — the points live in the callers' fixed Series
// ring buffers, and the chart redraws only when `tick` changes (once per sample) or it resizes.
import type { JSX } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import type { Series } from '../lib/stats.ts';

export interface ChartLine {
  series: Series;
  label: string;
  /** A CSS custom property of the theme ('--accent'), read at draw time so light/dark both work. */
  color: string;
}

function cssVar(el: Element, name: string, fallback: string): string {
  return getComputedStyle(el).getPropertyValue(name).trim() || fallback;
}

export function Chart({ lines, tick, capacity, format, fixedMax, label }: {
  lines: ChartLine[];
  /** Changes once per sample: the signal to redraw. */
  tick: number;
  /** Points across the full width (the series' capacity). */
  capacity: number;
  /** Axis label for a value ('12 %', '3.4 MiB/s'). */
  format: (v: number) => string;
  /** A fixed top of the scale (memory limit, 100 % per CPU); else the visible maximum. */
  fixedMax?: number;
  label: string;
}): JSX.Element {
  const canvas = useRef<HTMLCanvasElement>(null);
  const draw = useRef<() => void>(() => {});

  draw.current = () => {
    const c = canvas.current;
    if (!c) return;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (!w || !h) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const ctx = c.getContext('2d');
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    let max = fixedMax ?? 0;
    if (!fixedMax) for (const l of lines) max = Math.max(max, l.series.max());
    if (!(max > 0)) max = 1;
    else if (!fixedMax) max *= 1.15;
    const grid = cssVar(c, '--border', '#ccc');
    const muted = cssVar(c, '--muted', '#888');
    const font = `11px ${cssVar(c, '--mono', 'monospace')}`;
    ctx.strokeStyle = grid;
    ctx.lineWidth = 1;
    ctx.fillStyle = muted;
    ctx.font = font;
    ctx.textBaseline = 'top';
    for (let i = 0; i <= 4; i++) {
      const y = Math.round(((h - 1) * i) / 4) + 0.5;
      ctx.beginPath();
      ctx.moveTo(0, y);
      ctx.lineTo(w, y);
      ctx.stroke();
    }
    ctx.fillText(format(max), 4, 3);
    const step = w / Math.max(1, capacity - 1);
    for (const l of lines) {
      const s = l.series;
      if (!s.length) continue;
      const color = cssVar(c, l.color, '#1f6feb');
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      // Right-aligned: the newest point at the right edge.
      const x0 = w - (s.length - 1) * step;
      for (let i = 0; i < s.length; i++) {
        const x = x0 + i * step;
        const y = h - 2 - (Math.min(s.at(i), max) / max) * (h - 18);
        if (i === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      }
      ctx.stroke();
      ctx.globalAlpha = 0.12;
      ctx.lineTo(w, h);
      ctx.lineTo(x0, h);
      ctx.closePath();
      ctx.fillStyle = color;
      ctx.fill();
      ctx.globalAlpha = 1;
    }
  };

  useEffect(() => { draw.current(); }, [tick, fixedMax]);

  useEffect(() => {
    const c = canvas.current;
    if (!c) return;
    const ro = new ResizeObserver(() => draw.current());
    ro.observe(c);
    // The theme can change without a new sample (the theme selector, the system's scheme).
    const mq = matchMedia('(prefers-color-scheme: dark)');
    const redraw = (): void => draw.current();
    mq.addEventListener('change', redraw);
    const mo = new MutationObserver(redraw);
    mo.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
    return () => { ro.disconnect(); mq.removeEventListener('change', redraw); mo.disconnect(); };
  }, []);

  return (
    <figure class="chart">
      <canvas ref={canvas} class="chart-canvas" role="img" aria-label={label} />
      <figcaption class="chart-legend">
        {lines.map((l) => <span key={l.label} class={`chart-key chart-key-${l.color.replace(/^--/, '')}`}>{l.label}</span>)}
      </figcaption>
    </figure>
  );
}
