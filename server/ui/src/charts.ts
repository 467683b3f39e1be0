// Every chart is uPlot: the jobs page's latency sparklines, and the job
// page's latency lines and stacked status-code bars. Each chart sits in an
// element with role="img" and an aria-label summarising what it shows, since
// a canvas says nothing to a screen reader.

import uPlot from "uplot";

import { intOf, millis } from "./format";
import type { LatencySample, MetricPoint } from "./types";

const seconds = (iso: string | undefined): number => Date.parse(iso ?? "") / 1000;

/** Keeps a chart as wide as its container. */
function fitWidth(chart: uPlot, container: HTMLElement, height: number): ResizeObserver {
  const observer = new ResizeObserver(() => {
    const width = Math.max(200, Math.floor(container.clientWidth));
    if (width !== chart.width) chart.setSize({ width, height });
  });
  observer.observe(container);
  return observer;
}

/** A 1-hour latency sparkline for one job row. */
export class Sparkline {
  private readonly plot: uPlot;
  private readonly host: HTMLElement;

  constructor(host: HTMLElement, samples: LatencySample[]) {
    this.host = host;
    this.plot = new uPlot(
      {
        width: 120,
        height: 30,
        pxAlign: false,
        cursor: { show: false },
        select: { show: false, left: 0, top: 0, width: 0, height: 0 },
        legend: { show: false },
        scales: {
          x: { time: true },
          y: { range: (_u, min, max) => [0, Math.max(max, min + 1) * 1.1] },
        },
        axes: [{ show: false }, { show: false }],
        series: [{}, { stroke: "#2b6cb0", width: 1.5, fill: "rgba(43, 108, 176, 0.12)", points: { show: false } }],
      },
      Sparkline.data(samples),
      host,
    );
    this.describe(samples);
  }

  private static data(samples: LatencySample[]): uPlot.AlignedData {
    return [samples.map((s) => seconds(s.dt)), samples.map((s) => s.rtAvg ?? null)];
  }

  private describe(samples: LatencySample[]): void {
    const values = samples.map((s) => s.rtAvg ?? 0);
    this.host.dataset.points = String(samples.length);
    if (values.length === 0) {
      this.host.setAttribute("aria-label", "No latency in the last hour");
      return;
    }
    const last = values[values.length - 1];
    this.host.setAttribute(
      "aria-label",
      `Average latency per minute over the last hour: ${millis(Math.min(...values))} to ${millis(Math.max(...values))}, latest ${millis(last)}`,
    );
  }

  update(samples: LatencySample[]): void {
    this.plot.setData(Sparkline.data(samples));
    this.describe(samples);
  }

  destroy(): void {
    this.plot.destroy();
  }
}

/** Points with a null inserted wherever buckets are missing, so lines break there. */
function withGaps(points: MetricPoint[], stepSeconds: number): (MetricPoint | null)[] {
  const out: (MetricPoint | null)[] = [];
  let previous: number | undefined;
  for (const point of points) {
    const at = seconds(point.dt);
    if (previous !== undefined && at - previous > stepSeconds * 1.5) out.push(null);
    out.push(point);
    previous = at;
  }
  return out;
}

const latencySeries = [
  { key: "rtMin", label: "min", stroke: "#2b6cb0", dash: [4, 3] },
  { key: "rtAvg", label: "avg", stroke: "#276749", dash: undefined },
  { key: "p95", label: "p95", stroke: "#b7410e", dash: undefined },
  { key: "rtMax", label: "max", stroke: "#9b2c2c", dash: [4, 3] },
] as const;

/** Latency over time: min, avg, p95 and max lines, in milliseconds. */
export class LatencyChart {
  private readonly plot: uPlot;
  private readonly observer: ResizeObserver;
  private readonly host: HTMLElement;
  private range: [number, number] = [0, 1];

  constructor(host: HTMLElement) {
    this.host = host;
    const height = 240;
    this.plot = new uPlot(
      {
        width: Math.max(200, host.clientWidth),
        height,
        scales: {
          x: { time: true, range: () => this.range },
          y: { range: (_u, _min, max) => [0, Math.max(1, (max ?? 1) * 1.1)] },
        },
        axes: [{}, { label: "ms", size: 56 }],
        series: [
          { label: "time" },
          ...latencySeries.map((s) => ({
            label: s.label,
            stroke: s.stroke,
            width: 2,
            spanGaps: false,
            points: { size: 6 },
            ...(s.dash ? { dash: [...s.dash] } : {}),
            value: (_u: uPlot, v: number | null) => (v === null ? "—" : millis(v)),
          })),
        ],
      },
      [[], [], [], [], []],
      host,
    );
    this.observer = fitWidth(this.plot, host, height);
  }

  update(points: MetricPoint[], stepSeconds: number, start: Date, end: Date): void {
    this.range = [start.getTime() / 1000, end.getTime() / 1000];
    const rows = withGaps(points, stepSeconds);
    let previous = 0;
    const xs = rows.map((p) => {
      previous = p ? seconds(p.dt) : previous + stepSeconds;
      return previous;
    });
    const data: uPlot.AlignedData = [
      xs,
      ...latencySeries.map((s) => rows.map((p) => (p ? (p[s.key] ?? null) : null))),
    ];
    this.plot.setData(data);
    const measured = points.filter((p) => p.rtAvg !== undefined);
    this.host.dataset.points = String(measured.length);
    if (measured.length === 0) {
      this.host.setAttribute("aria-label", "Latency chart: no response times in this range");
    } else {
      const avg = measured.reduce((sum, p) => sum + (p.rtAvg ?? 0), 0) / measured.length;
      const max = Math.max(...measured.map((p) => p.rtMax ?? 0));
      this.host.setAttribute(
        "aria-label",
        `Latency chart over ${measured.length} buckets: average ${millis(avg)}, highest ${millis(max)}`,
      );
    }
  }

  destroy(): void {
    this.observer.disconnect();
    this.plot.destroy();
  }
}

/** Colour of a status code (by class) or of a failed outcome. */
function statusColour(key: string, index: number): string {
  const shades: Record<string, string[]> = {
    "2": ["#2f855a", "#276749", "#48bb78"],
    "3": ["#2b6cb0", "#2c5282", "#4299e1"],
    "4": ["#c05621", "#9c4221", "#ed8936"],
    "5": ["#c53030", "#9b2c2c", "#f56565"],
    e: ["#553c9a", "#6b46c1", "#4a5568", "#805ad5"],
  };
  const family = /^\d/.test(key) ? (shades[key[0] ?? ""] ?? shades.e) : shades.e;
  const list = family ?? ["#4a5568"];
  return list[index % list.length] ?? "#4a5568";
}

/** Name of a series key: status codes as they are, outcomes ("error:CHECK_OUTCOME_TIMEOUT") readable. */
function seriesLabel(key: string): string {
  if (!key.startsWith("error:")) return key;
  return key.slice("error:".length).replace(/^CHECK_OUTCOME_/, "").toLowerCase().replace(/_/g, " ");
}

/**
 * Checks per bucket, stacked by HTTP status code and failed outcome. uPlot
 * has no stacking of its own: each series holds the running total up to it
 * and the tallest is drawn first, so each bar shows through above the ones
 * below it; the legend shows the series' own counts.
 */
export class StatusChart {
  private plot: uPlot | undefined;
  private observer: ResizeObserver | undefined;
  private readonly host: HTMLElement;
  private keys = "";
  private raw: number[][] = [];
  private range: [number, number] = [0, 1];
  private readonly height = 220;
  /** For each drawn series, the index of its key in `raw`. */
  private order: number[] = [];

  constructor(host: HTMLElement) {
    this.host = host;
  }

  update(points: MetricPoint[], stepSeconds: number, start: Date, end: Date): void {
    this.range = [start.getTime() / 1000, end.getTime() / 1000];
    const codes = new Set<string>();
    const errors = new Set<string>();
    for (const p of points) {
      Object.keys(p.statusCounts ?? {}).forEach((k) => codes.add(k));
      // Failed assertions got an HTTP answer: they are already counted by status.
      Object.keys(p.errorCounts ?? {})
        .filter((k) => !k.endsWith("ASSERTION_FAILED"))
        .forEach((k) => errors.add(k));
    }
    // Bottom of the stack first: 2xx up to 5xx, then errors without an answer.
    const series = [
      ...[...codes].sort().map((key) => ({ key, error: false })),
      ...[...errors].sort().map((key) => ({ key, error: true })),
    ];
    const keys = series.map((s) => (s.error ? `error:${s.key}` : s.key));
    const xs = points.map((p) => seconds(p.dt));
    this.raw = series.map((s) => points.map((p) => intOf(s.error ? p.errorCounts?.[s.key] : p.statusCounts?.[s.key])));
    const stacked = this.raw.map((_, i) => xs.map((_x, j) => this.raw.slice(0, i + 1).reduce((sum, s) => sum + (s[j] ?? 0), 0)));
    // Tallest (the whole stack) first, so it is drawn first and the lower ones on top.
    const order = keys.map((_, i) => keys.length - 1 - i);
    // The x range pads half a bucket each side, so a new width rebuilds too.
    const shape = `${keys.join(",")}@${stepSeconds}`;
    if (shape !== this.keys || !this.plot) {
      this.build(order.map((i) => keys[i] ?? ""), order, stepSeconds);
      this.keys = shape;
    }
    this.order = order;
    this.plot?.setData([xs, ...order.map((i) => stacked[i] ?? [])]);
    const total = points.reduce((sum, p) => sum + intOf(p.checks), 0);
    this.host.dataset.points = String(points.length);
    const parts = keys.map((key, i) => `${seriesLabel(key)}: ${(this.raw[i] ?? []).reduce((a, b) => a + b, 0)}`);
    this.host.setAttribute(
      "aria-label",
      points.length === 0
        ? "Status code chart: no checks in this range"
        : `Status codes of ${total} checks over ${points.length} buckets (${parts.join(", ")})`,
    );
  }

  private build(labels: string[], order: number[], stepSeconds: number): void {
    this.observer?.disconnect();
    this.plot?.destroy();
    this.order = order;
    // Shades within a family (2xx, 4xx, ...) in code order.
    const sorted = [...labels].sort();
    const family = (key: string) => (/^\d/.test(key) ? key[0] : "e");
    const familyIndex = (key: string) => sorted.filter((k) => family(k) === family(key)).indexOf(key);
    const bars = uPlot.paths.bars?.({ size: [0.8, 48], gap: 1 });
    const series: uPlot.Series[] = [
      { label: "time" },
      ...labels.map((key) => ({
        label: seriesLabel(key),
        stroke: statusColour(key, familyIndex(key)),
        fill: statusColour(key, familyIndex(key)),
        width: 0,
        ...(bars ? { paths: bars } : {}),
        points: { show: false },
        value: (_u: uPlot, _v: number | null, seriesIdx: number, idx: number | null) => {
          const rawIndex = this.order[seriesIdx - 1];
          if (idx === null || rawIndex === undefined) return "—";
          return String(this.raw[rawIndex]?.[idx] ?? 0);
        },
      })),
    ];
    this.plot = new uPlot(
      {
        width: Math.max(200, this.host.clientWidth),
        height: this.height,
        scales: {
          x: {
            time: true,
            range: () => [this.range[0] - stepSeconds / 2, this.range[1] + stepSeconds / 2],
          },
          y: { range: (_u, _min, max) => [0, Math.max(1, (max ?? 1) * 1.1)] },
        },
        axes: [{}, { label: "checks", size: 56 }],
        series,
      },
      [[], ...labels.map(() => [])],
      this.host,
    );
    this.observer = fitWidth(this.plot, this.host, this.height);
  }

  destroy(): void {
    this.observer?.disconnect();
    this.plot?.destroy();
  }
}
