/**
 * A thin layer over benchmark.js (the ws way): one Suite per file, cases named by size,
 * a line per finished case, and results returned to bench/index.ts for the summary table.
 */
import { pathToFileURL } from 'node:url'
import Benchmark from 'benchmark'

export interface BenchCase {
  name: string
  fn: () => void
  /** Bytes processed by one call of fn, to report MB/s. */
  bytes?: number
  /** Builds the case's input just before it runs (large inputs are not all held at once). */
  prepare?: () => void
  /** Drops the case's input after it ran. */
  release?: () => void
}

export interface CaseResult {
  suite: string
  name: string
  /** Operations per second. */
  hz: number
  /** Relative margin of error, percent. */
  rme: number
  samples: number
  /** MB/s (10^6 bytes) when the case declares bytes per op. */
  mbps?: number
}

/**
 * Keeps the whole micro suite (frame + decoder, 14 cases) at roughly 30–60 s: about 2 s of
 * sampling per case plus calibration. BENCH_MAX_TIME (seconds) overrides it.
 */
export const microOptions = {
  maxTime: Number(process.env.BENCH_MAX_TIME ?? 1.5),
  minSamples: 5,
}

export function runSuite (title: string, cases: BenchCase[]): Promise<CaseResult[]> {
  const suite = new Benchmark.Suite(title)
  for (const c of cases) suite.add(c.name, c.fn, { ...microOptions })
  const results: CaseResult[] = []
  let index = 0
  console.log(`\n# ${title}`)
  return new Promise((resolve, reject) => {
    suite
      .on('start', () => cases[0]?.prepare?.())
      .on('cycle', (event: Benchmark.Event) => {
        const bench = event.target as unknown as Benchmark
        const c = cases[index]!
        c.release?.()
        cases[++index]?.prepare?.()
        if (bench.error !== undefined) return reject(bench.error)
        const r: CaseResult = { suite: title, name: c.name, hz: bench.hz, rme: bench.stats.rme, samples: bench.stats.sample.length }
        if (c.bytes !== undefined) r.mbps = (bench.hz * c.bytes) / 1e6
        results.push(r)
        console.log(formatCase(r))
      })
      .on('complete', () => resolve(results))
      .on('error', (event: Benchmark.Event) => reject((event.target as unknown as Benchmark).error))
      .run({ async: true })
  })
}

export function formatCase (r: CaseResult): string {
  const hz = r.hz >= 100 ? Math.round(r.hz).toLocaleString('en-US') : r.hz.toFixed(2)
  const mbps = r.mbps === undefined ? '' : `  ${formatMBps(r.mbps)}`
  return `${r.name.padEnd(52)} ${hz.padStart(14)} ops/sec ±${r.rme.toFixed(2)}% (${r.samples} runs)${mbps}`
}

export function formatMBps (mbps: number): string {
  return mbps >= 10_000 ? `${(mbps / 1000).toFixed(1)} GB/s` : `${mbps.toFixed(1)} MB/s`
}

/** True when `importMetaUrl` is the module node was asked to run (run-if-main, export otherwise). */
export function isMain (importMetaUrl: string): boolean {
  const entry = process.argv[1]
  return entry !== undefined && importMetaUrl === pathToFileURL(entry).href
}

/** Sizes as in the case names: 64 B, 1 KiB, 64 KiB, 1 MiB. */
export function formatSize (n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`
  return `${n} B`
}
