/**
 * `npm run bench:http`: small keep-alive GETs through mport's HTTP tunnel, side by side in one
 * run with the same origin reached directly and through a plain Node reverse proxy (issue 5).
 *
 * load generator (own process) → contestant → origin (a Node `http` server, own process), all
 * on 127.0.0.1. Rounds are interleaved (round 1 of every contestant, then round 2, …); each
 * contestant is started before and killed after each of its rounds, and runs every connection
 * count of the round. Prints the table (medians with min–max over the rounds), the ratios and
 * whether the target is met, and writes bench/results/http-<date>.{md,json}.
 *
 * Knobs (env): BENCH_ROUNDS (3), BENCH_HTTP_CONNS (1,16), BENCH_HTTP_SECONDS (5),
 * BENCH_HTTP_WARMUP_S (2), BENCH_HTTP_BODY (64 bytes), BENCH_ONLY (direct,proxy,mport),
 * BENCH_NO_BUILD, BENCH_MPORT_FROM_SOURCE, BENCH_MPORT_NODE_FLAGS, BENCH_OUT.
 */
import path from 'node:path'
import { LoadGen } from '../harness/load-gen.js'
import { buildMport, mportBins } from '../harness/mport.js'
import { portChild } from '../harness/port-child.js'
import { ROOT, cpuSeconds, killChild } from '../harness/procs.js'
import { envNumber as num, finishMachine, interleave, log, machine, runBench, writeResults } from '../harness/run.js'
import { cell, fmt, stat, sum, type Stat } from '../harness/stats.js'
import { direct, proxy, mport, HOST, type Contestant, type Running } from './contestants.js'
import type { HttpLoadRequest, HttpLoadResult } from './load.js'

const ROUNDS = Math.floor(num('BENCH_ROUNDS', 3))
const SECONDS = num('BENCH_HTTP_SECONDS', 5)
const WARMUP_S = num('BENCH_HTTP_WARMUP_S', 2)
const BODY = Math.floor(num('BENCH_HTTP_BODY', 64))
const CONNS = (process.env.BENCH_HTTP_CONNS ?? '1,16').split(',').map(Number)
if (CONNS.some(n => !Number.isInteger(n) || n < 1 || n > 1000)) throw new Error(`BENCH_HTTP_CONNS=${process.env.BENCH_HTTP_CONNS} must list connection counts 1…1000`)
const ONLY = process.env.BENCH_ONLY?.split(',')
/** The target of issue 5: mport's p50 at most this many times the plain reverse proxy's. */
const TARGET_P50_FACTOR = 1.5

/** Bounds one load run: warm-up and measured time, the request timeout, and slack. */
const loadBound = (r: HttpLoadRequest): number => (r.warmupMs / 1000 + r.seconds) * 1000 + r.timeoutMs + 15_000

/** One contestant, one connection count, one round. */
interface Figures { rps?: number, p50us?: number, p99us?: number, failures?: number, cpuUsPerReq?: number, error?: string }
type Metric = 'rps' | 'p50us' | 'p99us' | 'failures' | 'cpuUsPerReq'
const METRICS: Metric[] = ['rps', 'p50us', 'p99us', 'failures', 'cpuUsPerReq']

async function oneRound (c: Contestant, originPort: number, load: LoadGen<HttpLoadRequest>): Promise<{ figures: Map<number, Figures>, raw: Record<string, unknown> }> {
  const figures = new Map<number, Figures>()
  const raw: Record<string, unknown> = {}
  let run: Running
  try {
    run = await c.start(originPort)
  } catch (err) {
    for (const n of CONNS) figures.set(n, { error: `start: ${(err as Error).message}` })
    log(`  ${c.key}: failed to start: ${(err as Error).message}`)
    return { figures, raw }
  }
  try {
    for (const conns of CONNS) {
      try {
        const cpu0 = sum(run.pids().map(cpuSeconds))
        const req: HttpLoadRequest = { port: run.port, host: HOST, path: '/', conns, warmupMs: WARMUP_S * 1000, seconds: SECONDS, bodyBytes: BODY, timeoutMs: 10_000 }
        const r = await load.request<HttpLoadResult>(req, loadBound(req), `load with ${conns} connection(s)`)
        const cpu = sum(run.pids().map(cpuSeconds)) - cpu0
        raw[`c${conns}`] = { ...r, cpuSeconds: cpu }
        figures.set(conns, {
          rps: r.rps,
          p50us: r.p50us,
          p99us: r.p99us,
          failures: r.failures,
          ...(c.key !== 'direct' && r.totalRequests > 0 ? { cpuUsPerReq: cpu / r.totalRequests * 1e6 } : {}),
          ...(r.firstError !== undefined ? { error: r.firstError } : {}),
        })
      } catch (err) {
        figures.set(conns, { error: (err as Error).message })
        log(`  ${c.key} ${conns} conn(s): FAILED: ${(err as Error).message}`)
      }
    }
  } finally {
    await run.stop()
  }
  return { figures, raw }
}

// ---- report ----

type Summary = Map<string, Map<number, Partial<Record<Metric, Stat>>>>

function summarize (contestants: Contestant[], rounds: Map<string, Array<Map<number, Figures>>>): Summary {
  const out: Summary = new Map()
  for (const c of contestants) {
    const perConns = new Map<number, Partial<Record<Metric, Stat>>>()
    for (const n of CONNS) {
      const stats: Partial<Record<Metric, Stat>> = {}
      for (const m of METRICS) {
        const s = stat((rounds.get(c.key) ?? []).map(r => r.get(n)?.[m]))
        if (s !== undefined) stats[m] = s
      }
      perConns.set(n, stats)
    }
    out.set(c.key, perConns)
  }
  return out
}

function mainTable (contestants: Contestant[], s: Summary): string {
  const rows = ['| contestant | conns | req/s | p50 µs | p99 µs | failures | CPU µs per request (proxy/tunnel processes) |', '|---|---:|---:|---:|---:|---:|---:|']
  for (const n of CONNS) {
    for (const c of contestants) {
      const st = s.get(c.key)?.get(n) ?? {}
      rows.push(`| ${c.name} | ${n} | ${cell(st.rps)} | ${cell(st.p50us)} | ${cell(st.p99us)} | ${cell(st.failures, 0)} | ${cell(st.cpuUsPerReq)} |`)
    }
  }
  return rows.join('\n')
}

const med = (s: Summary, key: string, n: number, m: Metric): number | undefined => s.get(key)?.get(n)?.[m]?.median
const ratio = (a: number | undefined, b: number | undefined): string => a === undefined || b === undefined || b === 0 ? '–' : `${fmt(a / b, 2)}×`

function ratioTable (s: Summary): string {
  const pairs: Array<[string, string, string]> = [['mport', 'proxy', 'mport ÷ reverse proxy'], ['mport', 'direct', 'mport ÷ direct'], ['proxy', 'direct', 'reverse proxy ÷ direct']]
  const rows = ['| ratio of medians | conns | req/s | p50 | p99 | CPU µs per request |', '|---|---:|---:|---:|---:|---:|']
  for (const n of CONNS) {
    for (const [a, b, title] of pairs) {
      if (!s.has(a) || !s.has(b)) continue
      rows.push(`| ${title} | ${n} | ${ratio(med(s, a, n, 'rps'), med(s, b, n, 'rps'))} | ${ratio(med(s, a, n, 'p50us'), med(s, b, n, 'p50us'))} | ${ratio(med(s, a, n, 'p99us'), med(s, b, n, 'p99us'))} | ${b === 'direct' ? '–' : ratio(med(s, a, n, 'cpuUsPerReq'), med(s, b, n, 'cpuUsPerReq'))} |`)
    }
  }
  return rows.join('\n')
}

interface TargetCheck { conns: number, mportP50?: number, proxyP50?: number, bound?: number, met?: boolean, note: string }

function checkTargets (s: Summary): TargetCheck[] {
  return CONNS.map(n => {
    const mine = med(s, 'mport', n, 'p50us')
    const theirs = med(s, 'proxy', n, 'p50us')
    if (mine === undefined || theirs === undefined) return { conns: n, note: 'not measured' }
    const bound = theirs * TARGET_P50_FACTOR
    return { conns: n, mportP50: mine, proxyP50: theirs, bound, met: mine <= bound, note: `${fmt(mine)} µs vs ≤ ${fmt(bound)} µs (${fmt(mine / theirs, 2)}× the reverse proxy's ${fmt(theirs)} µs)` }
  })
}

function targetTable (checks: TargetCheck[]): string {
  return ['| target | conns | result | mport p50 vs bound (medians) |', '|---|---:|---|---|',
    ...checks.map(c => `| mport p50 ≤ ${TARGET_P50_FACTOR}× reverse proxy p50 | ${c.conns} | ${c.met === undefined ? 'not measured' : c.met ? 'met' : '**not met**'} | ${c.note} |`)].join('\n')
}

async function main (): Promise<void> {
  const t0 = Date.now()
  buildMport(log)
  const contestants = [direct, proxy, mport].filter(c => ONLY === undefined || ONLY.includes(c.key))
  const info = machine({ mportBins: mportBins().relay.replace(ROOT, '') })
  log(`machine: ${info.cpu}, ${info.cores} cores, ${info.kernel}, node ${info.node}; load average ${info.loadAverageAtStart}`)
  log(`rounds ${ROUNDS}; connections ${CONNS.join(', ')}; ${WARMUP_S} s warm-up + ${SECONDS} s measured; ${BODY}-byte bodies; contestants ${contestants.map(c => c.key).join(', ')}`)

  const origin = await portChild(new URL('./origin.ts', import.meta.url), [String(BODY)], 'origin')
  const load = new LoadGen<HttpLoadRequest>(new URL('./load.ts', import.meta.url))
  let results: Map<string, Array<{ figures: Map<number, Figures>, raw: Record<string, unknown> }>>
  try {
    results = await interleave(contestants, ROUNDS, c => oneRound(c, origin.port, load), r => CONNS.map(n => {
      const f = r.figures.get(n)
      return `${n} conn: ${f?.rps !== undefined ? fmt(f.rps) : '–'} req/s p50 ${f?.p50us !== undefined ? fmt(f.p50us) : '–'} µs p99 ${f?.p99us !== undefined ? fmt(f.p99us) : '–'} µs, ${f?.failures ?? '–'} failed${f?.cpuUsPerReq !== undefined ? `, ${fmt(f.cpuUsPerReq)} CPU-µs/req` : ''}${f?.error !== undefined ? ` (${f.error.split('\n')[0] ?? ''})` : ''}`
    }).join('; '))
  } finally {
    await load.stop()
    await killChild(origin.child)
  }
  const rounds = new Map([...results].map(([k, rs]) => [k, rs.map(r => r.figures)]))
  const raws = new Map([...results].map(([k, rs]) => [k, rs.map(r => r.raw)]))

  const summary = summarize(contestants, rounds)
  const checks = checkTargets(summary)
  const date = new Date().toISOString().slice(0, 10)
  const elapsed = (Date.now() - t0) / 1000
  finishMachine(info)
  const settings = { rounds: ROUNDS, conns: CONNS, warmupSeconds: WARMUP_S, seconds: SECONDS, bodyBytes: BODY, host: HOST, targetP50Factor: TARGET_P50_FACTOR }
  const failures = contestants.flatMap(c => (rounds.get(c.key) ?? []).flatMap((r, i) =>
    [...r].filter(([, f]) => f.error !== undefined).map(([n, f]) => `- ${c.key} round ${i + 1}, ${n} conn(s): ${(f.error ?? '').split('\n')[0] ?? ''}`)))
  const md = [
    `# HTTP tunnel benchmark, ${date}`,
    '',
    `Machine: ${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB, ${info.kernel}; Node ${info.node}; mport ${info.mportCommit ?? '?'} (${info.mportBins}).`,
    `Settings: ${ROUNDS} interleaved rounds; GET / with \`Host: ${HOST}\`, ${BODY}-byte response bodies (Content-Length), keep-alive; ${CONNS.join(' and ')} connection(s), each sending its next request as soon as the previous response is complete; ${WARMUP_S} s warm-up then ${SECONDS} s measured. Whole run ${elapsed.toFixed(0)} s; load average (1/5/15 min) ${info.loadAverageAtStart} at the start, ${info.loadAverageAtEnd} at the end.`,
    '',
    'Medians over the rounds, (min–max) when they differ. Latency is per request, from writing the request to the last byte of the response, at the load generator. CPU is user + system time of the proxy\'s or tunnel\'s own processes (for mport: relay + connect) over the whole run, warm-up included, per completed request.',
    '',
    mainTable(contestants, summary),
    '',
    '## Ratios (medians)',
    '',
    ratioTable(summary),
    '',
    '## Target of issue 5',
    '',
    targetTable(checks),
    '',
    ...(failures.length > 0 ? ['## Failures', '', ...failures, ''] : []),
  ]
  const text = md.join('\n')
  const base = writeResults('http', date, text, {
    date: new Date().toISOString(),
    machine: info,
    settings,
    elapsedSeconds: elapsed,
    contestants: contestants.map(c => ({
      key: c.key,
      name: c.name,
      stats: Object.fromEntries(CONNS.map(n => [n, summary.get(c.key)?.get(n) ?? {}])),
      rounds: (rounds.get(c.key) ?? []).map(r => Object.fromEntries(r)),
      raw: raws.get(c.key) ?? [],
    })),
    targets: checks,
  })
  const verdict = checks.every(c => c.met === true) ? 'TARGET MET' : checks.some(c => c.met === undefined) ? 'TARGET NOT MEASURED' : 'TARGET NOT MET'
  process.stdout.write(`\n${text}\n${verdict}: ${checks.map(c => `${c.conns} conn(s): ${c.met === undefined ? 'not measured' : c.met ? 'met' : 'not met'} (${c.note})`).join('; ')}\nwritten to ${path.relative(ROOT, base)}.md and .json (${elapsed.toFixed(0)} s)\n`)
}

runBench('bench:http', main)
