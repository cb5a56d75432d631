/**
 * Prometheus text exposition (format 0.0.4), hand-written: a metric family is a name, a type, a help line and
 * samples with optional labels. `renderMetrics` writes them; `parseMetrics` reads the simple subset back (the
 * demo reads its nodes' byte counters from `/metrics` with it).
 */
export interface MetricSample {
  labels?: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: 'counter' | 'gauge';
  help: string;
  samples: MetricSample[];
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Render families in the given order. Throws on invalid metric or label names (a programming error). */
export function renderMetrics(families: MetricFamily[]): string {
  let out = '';
  for (const f of families) {
    if (!NAME_RE.test(f.name)) throw new Error(`invalid metric name ${f.name}`);
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) {
      let labels = '';
      if (s.labels) {
        const parts: string[] = [];
        for (const [k, v] of Object.entries(s.labels)) {
          if (!LABEL_RE.test(k)) throw new Error(`invalid label name ${k}`);
          parts.push(`${k}="${escapeLabel(v)}"`);
        }
        if (parts.length) labels = `{${parts.join(',')}}`;
      }
      out += `${f.name}${labels} ${num(s.value)}\n`;
    }
  }
  return out;
}

/** Parse exposition text into `name{labels}` -> value (labels rendered as in the text). Comments skipped. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    if (sp <= 0) continue;
    const v = line.slice(sp + 1);
    out.set(line.slice(0, sp), v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v));
  }
  return out;
}
