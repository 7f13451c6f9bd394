/**
 * Reading Prometheus text exposition in tests: every sample as name, labels and value, and the
 * value of one series (its labels matched exactly, or a subset of them summed).
 */

/** One sample line: `name{label="v",…} value`. */
export interface Sample { name: string, labels: Record<string, string>, value: number }

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

/** Every sample of a scrape (comments and blank lines skipped); throws on a line that is not one. */
export function parseSamples (text: string): Sample[] {
  const out: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = LINE.exec(line)
    if (m === null) throw new Error(`not a Prometheus sample line: ${JSON.stringify(line)}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_s, c: string) => c === 'n' ? '\n' : c)
    out.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return out
}

/** The sum of the samples named `name` whose labels include `labels`; undefined when there is none. */
export function sampleValue (text: string | Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const samples = typeof text === 'string' ? parseSamples(text) : text
  const hits = samples.filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  return hits.length === 0 ? undefined : hits.reduce((a, s) => a + s.value, 0)
}

/** The metric family names a scrape declares (its `# TYPE` lines). */
export function metricFamilies (text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, m[2]!)
  return out
}
