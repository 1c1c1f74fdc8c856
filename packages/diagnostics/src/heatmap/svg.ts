import { ForgeError } from '@forgeone/common';
import { HEATMAP_FORMAT } from './build.js';
import type { Heatmap, HeatmapCell, HeatmapGrid } from './build.js';

/** Options of {@link renderHeatmapSvg}. */
export interface HeatmapSvgOptions {
  /** The title (default `ForgeOne heatmap`). */
  readonly title?: string;
  /** Most rows drawn per grid, the hottest first (default 60). */
  readonly maxRows?: number;
  /** Most columns drawn per grid, the hottest first (default 60). */
  readonly maxCols?: number;
}

const CELL_W = 36;
const CELL_H = 22;
const CHAR_W = 6.7;
const PAD = 16;
const FONT = 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';
const MAX_LABEL = 44;

const STOPS: readonly [number, readonly [number, number, number]][] = [
  [0, [255, 247, 188]],
  [0.5, [253, 141, 60]],
  [1, [189, 0, 38]],
];

/**
 * The colour of a heat in [0, 1]: pale yellow through orange to dark red.
 * @param score - the heat
 * @returns `#rrggbb`
 */
export function heatColor(score: number): string {
  const s = Math.min(1, Math.max(0, Number.isFinite(score) ? score : 0));
  let i = 0;
  while (i < STOPS.length - 2 && s > STOPS[i + 1]![0]) i++;
  const [a, ca] = STOPS[i]!;
  const [b, cb] = STOPS[i + 1]!;
  const t = (s - a) / (b - a);
  const hex = (k: number): string =>
    Math.round(ca[k]! + (cb[k]! - ca[k]!) * t)
      .toString(16)
      .padStart(2, '0');
  return `#${hex(0)}${hex(1)}${hex(2)}`;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function short(text: string, max = MAX_LABEL): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function pick(labels: readonly string[], heat: Map<string, number>, max: number): string[] {
  if (labels.length <= max) return [...labels];
  const keep = new Set([...labels].sort((a, b) => (heat.get(b) ?? 0) - (heat.get(a) ?? 0)).slice(0, max));
  return labels.filter((l) => keep.has(l));
}

interface Panel {
  readonly svg: string;
  readonly width: number;
  readonly height: number;
}

function panel(title: string, g: HeatmapGrid, y0: number, colText: (col: string) => string, maxRows: number, maxCols: number): Panel {
  const rowHeat = new Map<string, number>();
  const colHeat = new Map<string, number>();
  for (const c of g.cells) {
    const h = c.score + c.calls * 1e-9;
    rowHeat.set(c.row, Math.max(rowHeat.get(c.row) ?? 0, h));
    colHeat.set(c.col, Math.max(colHeat.get(c.col) ?? 0, h));
  }
  const rows = pick(g.rows, rowHeat, maxRows);
  const cols = pick(g.cols, colHeat, maxCols);
  const cells = new Map<string, HeatmapCell>();
  for (const c of g.cells) cells.set(`${c.row}\u0000${c.col}`, c);
  const left = Math.round(PAD + Math.max(8, ...rows.map((r) => short(r).length)) * CHAR_W + 8);
  const colLabels = cols.map((c) => short(colText(c)));
  const top = Math.round(y0 + 28 + Math.max(4, ...colLabels.map((l) => l.length)) * CHAR_W * 0.72 + 12);
  // Column labels lean right (rotated -45°): leave room for the last one.
  const width = left + Math.max(1, cols.length) * CELL_W + PAD + Math.max(40, (colLabels.at(-1)?.length ?? 0) * CHAR_W * 0.72);
  const out: string[] = [];
  const hidden = g.rows.length - rows.length + (g.cols.length - cols.length);
  out.push(
    `<text x="${PAD}" y="${y0 + 18}" font-size="14" font-weight="bold">${esc(title)}</text>` +
      `<text x="${PAD}" y="${y0 + 34}" font-size="11" fill="#555">${esc(`${g.rows.length} ${g.rowLabel} × ${g.cols.length} ${g.colLabel}${hidden > 0 ? ` (showing the hottest ${rows.length} × ${cols.length})` : ''}`)}</text>`,
  );
  if (rows.length === 0) {
    out.push(`<text x="${PAD}" y="${y0 + 56}" font-size="12" fill="#777">no calls</text>`);
    return { svg: out.join('\n'), width: 360, height: 72 };
  }
  cols.forEach((c, j) => {
    const x = left + j * CELL_W + CELL_W / 2;
    out.push(`<text transform="translate(${x.toFixed(1)},${(top - 6).toFixed(1)}) rotate(-45)" font-size="11"><title>${esc(c)}</title>${esc(colLabels[j]!)}</text>`);
  });
  rows.forEach((r, i) => {
    const y = top + i * CELL_H;
    out.push(`<text x="${(left - 8).toFixed(1)}" y="${(y + CELL_H / 2 + 4).toFixed(1)}" font-size="11" text-anchor="end"><title>${esc(r)}</title>${esc(short(r))}</text>`);
    cols.forEach((c, j) => {
      const x = left + j * CELL_W;
      const cell = cells.get(`${r}\u0000${c}`);
      if (cell === undefined) {
        out.push(`<rect x="${x.toFixed(1)}" y="${y}" width="${CELL_W}" height="${CELL_H}" fill="#ffffff" stroke="#eeeeee"/>`);
        return;
      }
      const hot = cell.denials > 0 || cell.anomalies > 0;
      const fill = hot ? heatColor(cell.score) : '#e3f1e6';
      const tip = `${r} × ${colText(c)}: ${cell.calls} call(s), ${cell.denials} refused, ${cell.anomalies} flag(s)${cell.severity === null ? '' : ` (strongest ${cell.severity})`}, heat ${cell.score.toFixed(2)}`;
      out.push(`<g><title>${esc(tip)}</title><rect x="${x.toFixed(1)}" y="${y}" width="${CELL_W}" height="${CELL_H}" fill="${fill}" stroke="#ffffff"/>`);
      if (hot) {
        const ink = cell.score > 0.6 ? '#ffffff' : '#222222';
        out.push(`<text x="${(x + CELL_W / 2).toFixed(1)}" y="${y + 15}" font-size="10" text-anchor="middle" fill="${ink}">${cell.denials}/${cell.anomalies}</text>`);
      }
      out.push('</g>');
    });
  });
  return { svg: out.join('\n'), width, height: top - y0 + rows.length * CELL_H + PAD };
}

function timeText(iso: string, sameDay: boolean): string {
  return sameDay ? iso.slice(11, 19) : `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
}

/**
 * Draw a heatmap as a self-contained SVG document: the identity × syscall grid, the container × time grid, a
 * legend (the colour scale, what the numbers mean, the heat formula) and the containers' integrity. Every
 * cell has a tooltip with its counts. Labels are escaped; long ones are shortened (the tooltip has them whole).
 * @param heatmap - a heatmap from {@link buildHeatmap} (or its JSON, parsed)
 * @param options - title, row and column limits
 * @returns the SVG text
 * @throws ForgeError `INVALID_ARGUMENT` when `heatmap` is not a heatmap
 * @example
 * ```ts
 * await writeFile('heatmap.svg', renderHeatmapSvg(buildHeatmap(runs)));
 * ```
 */
export function renderHeatmapSvg(heatmap: Heatmap, options: HeatmapSvgOptions = {}): string {
  if (typeof heatmap !== 'object' || heatmap === null || heatmap.format !== HEATMAP_FORMAT) {
    throw new ForgeError('INVALID_ARGUMENT', `not a heatmap (format ${HEATMAP_FORMAT})`, { details: { field: 'heatmap' } });
  }
  const maxRows = options.maxRows ?? 60;
  const maxCols = options.maxCols ?? 60;
  for (const [field, v] of [['maxRows', maxRows], ['maxCols', maxCols]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new ForgeError('INVALID_ARGUMENT', `${field} must be a positive integer`, { details: { field } });
  }
  const title = options.title ?? 'ForgeOne heatmap';
  const t = heatmap.totals;
  const starts = heatmap.containerTime.colStarts;
  const sameDay = starts.length === 0 || new Date(starts[0]!).toISOString().slice(0, 10) === new Date(starts[starts.length - 1]!).toISOString().slice(0, 10);
  let y = 8;
  const header = `<text x="${PAD}" y="${y + 20}" font-size="18" font-weight="bold">${esc(title)}</text>\n<text x="${PAD}" y="${y + 40}" font-size="12" fill="#444">${esc(
    `${t.runs} run(s), ${t.records} call(s), ${t.denials} refused, ${t.anomalies} anomaly flag(s)`,
  )}</text>`;
  y += 52;
  const p1 = panel('Identity × syscall', heatmap.identitySyscall, y, (c) => c, maxRows, maxCols);
  y += p1.height + 8;
  const bucket = heatmap.containerTime.bucketMs;
  const p2 = panel(`Container × time (${bucket >= 60_000 ? `${bucket / 60_000} min` : `${bucket / 1000} s`} buckets, UTC)`, heatmap.containerTime, y, (c) => timeText(c, sameDay), maxRows, maxCols);
  y += p2.height + 8;

  // Legend.
  const legend: string[] = [];
  legend.push(`<text x="${PAD}" y="${y + 14}" font-size="13" font-weight="bold">Legend</text>`);
  const gy = y + 24;
  legend.push(`<rect x="${PAD}" y="${gy}" width="240" height="14" fill="url(#heat)" stroke="#999"/>`);
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    legend.push(`<text x="${(PAD + v * 240).toFixed(1)}" y="${gy + 28}" font-size="10" text-anchor="middle">${v.toFixed(2)}</text>`);
  }
  legend.push(`<rect x="${PAD + 270}" y="${gy}" width="${CELL_W}" height="14" fill="#e3f1e6"/><text x="${PAD + 270 + CELL_W + 6}" y="${gy + 11}" font-size="11">calls, nothing refused or flagged</text>`);
  legend.push(`<text x="${PAD}" y="${gy + 48}" font-size="11">${esc('Cell text: refused calls / anomaly flags. Hover a cell for its counts.')}</text>`);
  legend.push(`<text x="${PAD}" y="${gy + 64}" font-size="11">${esc('Heat = 1 − (1 − d/(d+2)) · (1 − w): d refused calls, w the strongest flag (low 0.3, medium 0.6, high 1).')}</text>`);
  let ly = gy + 88;
  if (heatmap.integrity.length > 0) {
    legend.push(`<text x="${PAD}" y="${ly}" font-size="13" font-weight="bold">Integrity (lowest first)</text>`);
    ly += 16;
    for (const c of heatmap.integrity.slice(0, 12)) {
      legend.push(`<text x="${PAD}" y="${ly}" font-size="11">${esc(`${c.integrity.toFixed(3)}  ${short(c.containerId, 40)} (${short(c.subject, 40)}): ${c.denials} refused, ${c.anomalies} flag(s)`)}</text>`);
      ly += 15;
    }
    if (heatmap.integrity.length > 12) {
      legend.push(`<text x="${PAD}" y="${ly}" font-size="11" fill="#777">… and ${heatmap.integrity.length - 12} more</text>`);
      ly += 15;
    }
  }
  const height = Math.ceil(ly + PAD);
  const longest = Math.max(...legend.map((l) => l.replace(/<[^>]*>/g, '').length));
  const width = Math.ceil(Math.max(680, p1.width, p2.width, PAD * 2 + longest * CHAR_W * 1.05));
  const gradient = STOPS.map(([o]) => `<stop offset="${o}" stop-color="${heatColor(o)}"/>`).join('');
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
    `<title>${esc(title)}</title>`,
    `<defs><linearGradient id="heat" x1="0" x2="1" y1="0" y2="0">${gradient}</linearGradient></defs>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    header,
    p1.svg,
    p2.svg,
    legend.join('\n'),
    `</svg>`,
    '',
  ].join('\n');
}
