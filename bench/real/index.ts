/**
 * `npm run bench:real`: real clients through each tunnel, in one run (issue 18).
 *
 * redis-benchmark (SET/GET, pipelined and not) → redis-server, pgbench → PostgreSQL, wrk → nginx
 * (a small page) and curl → nginx (a large file), each through: direct (no tunnel), socat
 * (a plain forwarder), OpenSSH's ssh -R, the bare Node TLS forwarder (one TLS connection per
 * visitor: what Node itself costs per socket operation) and mport, all on 127.0.0.1. The servers run for the
 * whole run; each round starts every contestant's tunnels afresh. Rounds are interleaved
 * (round 1 of every contestant, then round 2, …). Medians with (min–max) and the tunnel's CPU
 * seconds per case go to bench/results/real-<date>.{md,json}, with the tunnel's CPU per request
 * and the machine's idle share during each case: a case whose machine is idle is bound by
 * latency, one with no idle left by the CPU every process on the path needs per request. A missing Debian package skips
 * its cases or contestant with a line saying what to install.
 *
 * Knobs (env): BENCH_ROUNDS (3), BENCH_ONLY (contestant keys), BENCH_CASES
 * (redis,redis-p1,pgbench,wrk,curl), BENCH_WARMUP (1; 0 skips the short unmeasured run each
 * contestant gets through its fresh tunnel before each case), BENCH_REDIS_N (100000), BENCH_REDIS_WARMUP (200000 per test,
 * pipelined), BENCH_PGBENCH_SECONDS (10),
 * BENCH_WRK_SECONDS (10), BENCH_DOWNLOAD_MIB (100), BENCH_NO_BUILD, BENCH_MPORT_FROM_SOURCE, BENCH_SKIP_SSH,
 * BENCH_MPORT_B (other built checkouts, comma-separated, run as contestants mport-b, mport-c, … for an A/B), BENCH_MPORT_B_NODE_FLAGS (Node flags for those only).
 */
import { buildMport } from '../harness/mport.js'
import { cpuSeconds, machineTicks } from '../harness/procs.js'
import { envNumber, finishMachine, interleave, log, machine, runBench, writeResults } from '../harness/run.js'
import { cell, fmt, stat, sum } from '../harness/stats.js'
import { direct, mport, mportOthers, prepareOpenSsh, sshStock, tlsForwarder, type Contestant, type Running } from '../tunnel/contestants.js'
import { missing, missingPostgres, startNginx, startPgbenchDatabase, startRedis, type PgService, type Service, type WebService } from './services.js'
import { socat } from './socat.js'
import { curlDownload, pgbench, redisBenchmark, wrk } from './workloads.js'

const ROUNDS = Math.floor(envNumber('BENCH_ROUNDS', 3))
const REDIS_N = Math.floor(envNumber('BENCH_REDIS_N', 100_000))
/**
 * Requests per test (SET, then GET) in the unmeasured pipelined warm-up. Pipelined, a JIT-compiled
 * tunnel reaches its steady cost per request only after some 300,000 requests (BENCHMARKS.md,
 * the redis warm-up curve); without pipelining each request is a message, and 20,000 suffice.
 */
const REDIS_WARMUP_N = Math.floor(envNumber('BENCH_REDIS_WARMUP', 200_000))
/** Requests per test without pipelining: those are slower, so half as many. */
const REDIS_P1_N = Math.max(1000, Math.floor(REDIS_N / 2))
const PG_SECONDS = Math.floor(envNumber('BENCH_PGBENCH_SECONDS', 10))
const WRK_SECONDS = Math.floor(envNumber('BENCH_WRK_SECONDS', 10))
const DOWNLOAD = Math.floor(envNumber('BENCH_DOWNLOAD_MIB', 100)) * 1024 * 1024
const CASES = new Set((process.env.BENCH_CASES ?? 'redis,redis-p1,pgbench,wrk,curl').split(','))
const ONLY = process.env.BENCH_ONLY?.split(',')
const WARMUP = process.env.BENCH_WARMUP !== '0'

/** One figure a case yields: its key, the row label, higher-is-better or not. */
interface Figure { key: string, label: string, higherIsBetter: boolean, digits?: number }

interface Servers { redis?: Service, pg?: PgService, web?: WebService }

/** A case: which server it needs, the figures it reports, and one measurement through `port`. */
interface Case {
  key: string
  server: keyof Servers
  figures: Figure[]
  run: (port: number, s: Servers) => Promise<Record<string, number>>
  /** A short unmeasured run through the fresh tunnel first, so that a JIT-compiled contestant is measured warm. */
  warm: (port: number, s: Servers) => Promise<unknown>
  /** What the tunnel's CPU is counted per (`request`, `MiB`), and how many of them the measured run carried. */
  unit: string
  count: (figures: Record<string, number>, s: Servers) => number
}

const CASE_LIST: Case[] = [
  {
    key: 'redis', server: 'redis',
    figures: [{ key: 'setP16', label: `redis-benchmark SET ops/s (-c 50 -P 16, ${REDIS_N})`, higherIsBetter: true }, { key: 'getP16', label: 'redis-benchmark GET ops/s (-c 50 -P 16)', higherIsBetter: true }],
    run: async port => { const r = await redisBenchmark(port, REDIS_N, 50, 16); return { setP16: r.setOps, getP16: r.getOps } },
    warm: port => redisBenchmark(port, REDIS_WARMUP_N, 50, 16),
    unit: 'request', count: () => 2 * REDIS_N, // SET and GET
  },
  {
    key: 'redis-p1', server: 'redis',
    figures: [{ key: 'setP1', label: 'redis-benchmark SET ops/s (-c 50, no pipelining)', higherIsBetter: true }, { key: 'getP1', label: 'redis-benchmark GET ops/s (-c 50, no pipelining)', higherIsBetter: true }],
    run: async port => { const r = await redisBenchmark(port, REDIS_P1_N, 50, 1); return { setP1: r.setOps, getP1: r.getOps } },
    warm: port => redisBenchmark(port, 20_000, 50, 1),
    unit: 'request', count: () => 2 * REDIS_P1_N,
  },
  {
    key: 'pgbench', server: 'pg',
    figures: [{ key: 'tps', label: `pgbench tps (-c 8 -j 2 -T ${PG_SECONDS}, scale 5)`, higherIsBetter: true }, { key: 'pgLatencyMs', label: 'pgbench mean latency ms', higherIsBetter: false, digits: 2 }],
    run: async (port, s) => { const r = await pgbench(port, (s.pg as PgService).database, 8, 2, PG_SECONDS); return { tps: r.tps, pgLatencyMs: r.latencyMs } },
    warm: (port, s) => pgbench(port, (s.pg as PgService).database, 8, 2, 2),
    unit: 'transaction', count: f => (f.tps ?? 0) * PG_SECONDS,
  },
  {
    key: 'wrk', server: 'web',
    figures: [{ key: 'rps', label: `wrk req/s (-t2 -c50 -d${WRK_SECONDS}s, small nginx page)`, higherIsBetter: true }, { key: 'p99Ms', label: 'wrk p99 latency ms', higherIsBetter: false, digits: 2 }, { key: 'wrkErrors', label: 'wrk socket errors + non-2xx', higherIsBetter: false, digits: 0 }],
    run: async port => { const r = await wrk(port, 2, 50, WRK_SECONDS); return { rps: r.rps, p99Ms: r.p99Ms, wrkErrors: r.errors } },
    warm: port => wrk(port, 2, 50, 2),
    unit: 'request', count: f => (f.rps ?? 0) * WRK_SECONDS,
  },
  {
    key: 'curl', server: 'web',
    figures: [{ key: 'downloadMBps', label: `curl ${DOWNLOAD / 1024 / 1024} MiB download MB/s`, higherIsBetter: true }],
    run: async (port, s) => { const r = await curlDownload(port, (s.web as WebService).bigBytes); return { downloadMBps: r.bytesPerSecond / 1e6 } },
    warm: (port, s) => curlDownload(port, (s.web as WebService).bigBytes),
    unit: 'MiB', count: () => DOWNLOAD / 1024 / 1024,
  },
]

type Round = Record<string, number>

/** The tunnel's CPU seconds (relay and client side) while `f` runs, and the machine's idle share (0–1) meanwhile. */
async function withCpu (run: Running, f: () => Promise<Round>): Promise<{ figures: Round, cpu: number, idle: number }> {
  const cpu = (): number => { const p = run.pids(); return sum([...p.relay, ...p.client].map(cpuSeconds)) }
  const c0 = cpu()
  const m0 = machineTicks()
  const figures = await f()
  const m1 = machineTicks()
  return { figures, cpu: cpu() - c0, idle: m1.total > m0.total ? (m1.idle - m0.idle) / (m1.total - m0.total) : 0 }
}

async function oneRound (c: Contestant, cases: Case[], servers: Servers): Promise<Round> {
  const out: Round = {}
  for (const k of cases) {
    const target = servers[k.server]
    if (target === undefined) continue
    let tunnel: Running | undefined
    try {
      tunnel = await c.start(target.port)
      const t = tunnel
      if (WARMUP) await k.warm(t.port, servers)
      const { figures, cpu, idle } = await withCpu(t, () => k.run(t.port, servers))
      Object.assign(out, figures)
      out[`${k.key}Cpu`] = cpu
      const n = k.count(figures, servers)
      if (n > 0) out[`${k.key}CpuPer`] = 1e6 * cpu / n
      out[`${k.key}Idle`] = 100 * idle
    } catch (err) {
      log(`  ${c.key} ${k.key}: ${(err as Error).message.split('\n').slice(0, 3).join(' | ')}`)
    } finally {
      await tunnel?.stop()
    }
  }
  return out
}

runBench('bench:real', async () => {
  const info = machine()
  buildMport(log)
  const sshSkip = prepareOpenSsh(log)
  const contestants: Contestant[] = [direct, socat, { ...sshStock, ...(sshSkip !== undefined ? { skip: sshSkip } : {}) }, tlsForwarder, mport, ...mportOthers]
    .filter(c => ONLY === undefined || ONLY.includes(c.key))
  for (const c of contestants) if (c.skip !== undefined) log(`skipping ${c.key}: ${c.skip}`)

  const skipCase: Record<keyof Servers, string | undefined> = {
    redis: missing('redis-server', 'redis-server') ?? missing('redis-benchmark', 'redis-tools'),
    pg: missingPostgres(),
    web: missing('nginx', 'nginx-light') ?? missing('wrk', 'wrk') ?? missing('curl', 'curl'),
  }
  const cases = CASE_LIST.filter(k => CASES.has(k.key)).filter(k => {
    const why = skipCase[k.server]
    if (why !== undefined) log(`skipping ${k.key}: ${why}`)
    return why === undefined
  })
  const servers: Servers = {}
  const stops: Array<() => Promise<void>> = []
  try {
    if (cases.some(k => k.server === 'redis')) { servers.redis = await startRedis(); stops.push(servers.redis.stop) }
    if (cases.some(k => k.server === 'pg')) { log('initialising pgbench (scale 5) …'); servers.pg = await startPgbenchDatabase(5); stops.push(servers.pg.stop) }
    if (cases.some(k => k.server === 'web')) { servers.web = await startNginx(DOWNLOAD); stops.push(servers.web.stop) }
    const results = await interleave(contestants, ROUNDS, c => oneRound(c, cases, servers),
      r => Object.entries(r).filter(([k]) => !/(Cpu|CpuPer|Idle)$/.test(k)).map(([k, v]) => `${k} ${fmt(v)}`).join(', '))
    finishMachine(info)
    const ran = contestants.filter(c => c.skip === undefined)
    const figures = cases.flatMap(k => [
      ...k.figures,
      { key: `${k.key}Cpu`, label: `tunnel CPU seconds during ${k.key}`, higherIsBetter: false, digits: 2 },
      { key: `${k.key}CpuPer`, label: `tunnel CPU µs per ${k.unit} during ${k.key}`, higherIsBetter: false, digits: 1 },
      { key: `${k.key}Idle`, label: `machine idle % during ${k.key}`, higherIsBetter: false, digits: 0 },
    ])
    const rows = figures.map(f => `| ${f.label} | ${ran.map(c => cell(stat((results.get(c.key) ?? []).map(r => r[f.key])), f.digits)).join(' | ')} |`)
    const ratio = (f: Figure, a: string, b: string): string => {
      const x = stat((results.get(a) ?? []).map(r => r[f.key]))?.median
      const y = stat((results.get(b) ?? []).map(r => r[f.key]))?.median
      return x === undefined || y === undefined || y === 0 ? '–' : `${fmt(x / y, 2)}×`
    }
    const date = new Date().toISOString().slice(0, 10)
    const refs = [['ssh-R', 'ssh -R'], ['node-tls', 'Node TLS forwarder']].filter(([k]) => ran.some(c => c.key === k))
    const ratioRows = refs.length > 0 && ran.some(c => c.key === 'mport')
      ? ['', `| figure | ${refs.map(([, n]) => `mport ÷ ${n}`).join(' | ')} | better when |`, `|---|${refs.map(() => '---:').join('|')}|---|`,
          ...figures.filter(f => !/(Cpu|Idle)$/.test(f.key)).map(f => `| ${f.label} | ${refs.map(([k]) => ratio(f, 'mport', k!)).join(' | ')} | ${f.higherIsBetter ? 'above 1' : 'below 1'} |`)]
      : []
    const others = ran.filter(c => mportOthers.includes(c))
    const abRows = others.length > 0
      ? ['', `| figure | ${others.map(o => `mport ÷ ${o.key}`).join(' | ')} | better when |`, `|---|${others.map(() => '---:').join('|')}|---|`,
          ...figures.map(f => `| ${f.label} | ${others.map(o => ratio(f, 'mport', o.key)).join(' | ')} | ${f.higherIsBetter ? 'above 1' : 'below 1'} |`)]
      : []
    const text = [
      `# Real workloads through each tunnel, ${date}`, '',
      `${ROUNDS} interleaved rounds${WARMUP ? ', each case after a short unmeasured warm-up through the same tunnel' : ''}; median (min–max). Machine: ${info.cores} cores, ${String(info.cpu)}, ${String(info.node)}, mport ${String(info.mportCommit)}; load average ${String(info.loadAverageAtStart)} → ${String(info.loadAverageAtEnd)}.`, '',
      `| figure | ${ran.map(c => c.name).join(' | ')} |`, `|---|${ran.map(() => '---:').join('|')}|`, ...rows, ...ratioRows, ...abRows, '',
    ].join('\n')
    process.stdout.write(text)
    const base = writeResults(mportOthers.length > 0 ? 'real-ab' : 'real', date, text, { date: new Date().toISOString(), machine: info, rounds: ROUNDS, results: Object.fromEntries(results) })
    log(`written ${base}.md and .json`)
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {})
  }
})
