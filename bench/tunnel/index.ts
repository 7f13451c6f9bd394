/**
 * `npm run bench:tunnel`: mport side by side with other tunnels, in one run (issue 4).
 *
 * load generator (own process) → contestant's processes → sink/echo service (own process),
 * all on 127.0.0.1. Rounds are interleaved: round 1 of every contestant, then round 2, …;
 * each contestant is started before and killed after each of its rounds. The table (medians
 * with min–max), ratios and target checks are printed and written to
 * bench/results/tunnel-<date>.{md,json}. Knobs (env): BENCH_ROUNDS, BENCH_BULK_MIB,
 * BENCH_BULK8_MIB, BENCH_RTT, BENCH_RTT_WARMUP, BENCH_RTT_WARMUP_CONNS, BENCH_CONNRATE_SECONDS, BENCH_IDLE_CONNS, BENCH_IDLE_ROUNDS (default 1:
 * sshd needs about 2 minutes per 10,000 connections), BENCH_IDLE_DEADLINE_S, BENCH_ONLY (contestant
 * keys), BENCH_CASES (bulk,latency,connrate,idle), BENCH_NO_BUILD, BENCH_MPORT_FROM_SOURCE,
 * BENCH_MPORT_NODE_FLAGS, BENCH_MPORT_B (other built checkouts, comma-separated, run as contestants mport-b, mport-c, … for an A/B), BENCH_MPORT_B_NODE_FLAGS (Node flags for those only), BENCH_SKIP_SSH, BENCH_OUT (results directory), BENCH_PROC_LOG (path prefix:
 * every line each process prints goes to <prefix>-<label>-<pid>.log, e.g. for --trace-gc).
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { LoadGen } from '../harness/load-gen.js'
import { buildMport, mportBins } from '../harness/mport.js'
import { portChild } from '../harness/port-child.js'
import { ROOT, cpuSeconds, killChild, peakRssBytes, resetPeakRss, rssBytes, sleep } from '../harness/procs.js'
import { envNumber as env, finishMachine, interleave, log, machine, runBench, writeResults } from '../harness/run.js'
import { sum } from '../harness/stats.js'
import {
  direct, tcpForwarder, tlsForwarder, sshStock, sshTty, libp2pYamux, mport, mportOthers, mportWs, prepareOpenSsh, opensshVersion, childFdLimit,
  type Contestant, type Running,
} from './contestants.js'
import { summarize, mainTable, splitTable, ratioTable, checkTargets, targetTable, type RoundFigures, type ContestantSummary } from './report.js'
import type { LoadRequest, BulkResult, LatencyResult, ConnRateResult, IdleResult } from './load.js'

const MiB = 1024 * 1024
const ROUNDS = Math.floor(env('BENCH_ROUNDS', 3))
const BULK1 = env('BENCH_BULK_MIB', 256) * MiB
const BULK8 = env('BENCH_BULK8_MIB', 256) * MiB
const RTT = Math.floor(env('BENCH_RTT', 20_000))
/** Unmeasured round trips before the latency case: V8 takes some 10,000 to optimise mport's path. */
const RTT_WARMUP = Math.floor(env('BENCH_RTT_WARMUP', 20_000))
/**
 * Connections the warm-up is spread over: each new connection brings new stream and socket
 * objects, and V8 deoptimises and recompiles the path on the first few (BENCHMARKS.md).
 */
const RTT_WARMUP_CONNS = Math.max(1, Math.floor(env('BENCH_RTT_WARMUP_CONNS', 4)))
const CONNRATE_S = env('BENCH_CONNRATE_SECONDS', 3)
const IDLE = Math.floor(env('BENCH_IDLE_CONNS', 10_000))
const FD_LIMIT_CHILD = childFdLimit()
const IDLE_ROUNDS = Math.floor(env('BENCH_IDLE_ROUNDS', 1))
const IDLE_DEADLINE_S = env('BENCH_IDLE_DEADLINE_S', 150)
const CASES = new Set((process.env.BENCH_CASES ?? 'bulk,latency,connrate,idle').split(','))
const ONLY = process.env.BENCH_ONLY?.split(',')

// ---- one round of one contestant ----

interface Usage { cpu: number, relayCpu: number, clientCpu: number, relayPeak: number, clientPeak: number }

function sample (run: Running): { relay: number[], client: number[] } { return run.pids() }

function resetPeaks (run: Running): void {
  const { relay, client } = sample(run)
  for (const pid of [...relay, ...client]) resetPeakRss(pid)
}

function cpuOf (run: Running): { relay: number, client: number } {
  const { relay, client } = sample(run)
  return { relay: sum(relay.map(cpuSeconds)), client: sum(client.map(cpuSeconds)) }
}

async function measured<T> (run: Running, f: () => Promise<T>): Promise<{ result: T, usage: Usage }> {
  resetPeaks(run)
  const cpu0 = cpuOf(run)
  const result = await f()
  const cpu1 = cpuOf(run)
  const { relay, client } = sample(run)
  const relayCpu = cpu1.relay - cpu0.relay
  const clientCpu = cpu1.client - cpu0.client
  return { result, usage: { cpu: relayCpu + clientCpu, relayCpu, clientCpu, relayPeak: sum(relay.map(peakRssBytes)), clientPeak: sum(client.map(peakRssBytes)) } }
}

interface RawRound { figures: RoundFigures, raw: Record<string, unknown> }

async function oneRound (c: Contestant, sinkPort: number, load: LoadGen<LoadRequest>, round: number): Promise<RawRound> {
  const figures: RoundFigures = { errors: {} }
  const raw: Record<string, unknown> = {}
  let run: Running
  try {
    run = await c.start(sinkPort)
  } catch (err) {
    figures.errors.start = (err as Error).message
    log(`  ${c.key}: failed to start: ${(err as Error).message}`)
    return { figures, raw }
  }
  const attempt = async (name: string, f: () => Promise<void>): Promise<void> => {
    try {
      await f()
    } catch (err) {
      figures.errors[name] = (err as Error).message
      log(`  ${c.key} ${name}: FAILED: ${(err as Error).message}`)
    }
  }
  const tunnelled = c.key !== 'direct'
  try {
    // Warm-up: JIT, window auto-tuning, first connection set-up.
    await attempt('warmup', async () => {
      await load.request({ op: 'bulk', port: run.port, bytes: 16 * MiB, conns: 1, timeoutMs: 60_000 }, 70_000, 'warm-up')
    })
    if (CASES.has('bulk')) {
      let cpu = 0
      let relayCpu = 0
      let bytes = 0
      let relayPeak = 0
      let clientPeak = 0
      await attempt('bulk1', async () => {
        const m = await measured(run, () => load.request<BulkResult>({ op: 'bulk', port: run.port, bytes: BULK1, conns: 1, timeoutMs: 120_000 }, 130_000, 'bulk 1 conn'))
        raw.bulk1 = { ...m.result, ...m.usage }
        figures.bulk1MBps = m.result.mbps
        cpu += m.usage.cpu; relayCpu += m.usage.relayCpu; bytes += m.result.bytes
        relayPeak = Math.max(relayPeak, m.usage.relayPeak); clientPeak = Math.max(clientPeak, m.usage.clientPeak)
      })
      await attempt('bulk8', async () => {
        const m = await measured(run, () => load.request<BulkResult>({ op: 'bulk', port: run.port, bytes: BULK8, conns: 8, timeoutMs: 120_000 }, 130_000, 'bulk 8 conns'))
        raw.bulk8 = { ...m.result, ...m.usage }
        figures.bulk8MBps = m.result.mbps
        cpu += m.usage.cpu; relayCpu += m.usage.relayCpu; bytes += m.result.bytes
        relayPeak = Math.max(relayPeak, m.usage.relayPeak); clientPeak = Math.max(clientPeak, m.usage.clientPeak)
      })
      if (tunnelled && bytes > 0) {
        figures.cpuSecPerGB = cpu / (bytes / 1e9)
        figures.bulkPeakMiB = (relayPeak + clientPeak) / MiB
        // A contestant of one process (the Node TCP forwarder) has no sides to split.
        if (sample(run).client.length > 0) {
          figures.relayCpuSecPerGB = relayCpu / (bytes / 1e9)
          figures.clientCpuSecPerGB = (cpu - relayCpu) / (bytes / 1e9)
          figures.bulkRelayPeakMiB = relayPeak / MiB
          figures.bulkClientPeakMiB = clientPeak / MiB
        }
      }
    }
    if (CASES.has('latency')) {
      await attempt('latency', async () => {
        const perConn = Math.ceil(RTT_WARMUP / RTT_WARMUP_CONNS)
        for (let done = 0, c = 1; done < RTT_WARMUP; done += perConn, c++) {
          await load.request<LatencyResult>({ op: 'latency', port: run.port, roundTrips: Math.min(perConn, RTT_WARMUP - done), warmup: 0, size: 64, timeoutMs: 90_000 }, 100_000, `latency warm-up, connection ${c}`)
        }
        const warmup = Math.max(1000, Math.floor(RTT / 10))
        const m = await measured(run, () => load.request<LatencyResult>({ op: 'latency', port: run.port, roundTrips: RTT, warmup, size: 64, timeoutMs: 90_000 }, 100_000, 'latency'))
        const r = m.result
        raw.latency = { ...r, ...m.usage }
        figures.p50us = r.p50us
        figures.p99us = r.p99us
        if (m.usage.cpu > 0) figures.rttCpuUs = m.usage.cpu * 1e6 / (RTT + warmup)
      })
    }
    if (CASES.has('connrate')) {
      await attempt('connrate', async () => {
        const m = await measured(run, () => load.request<ConnRateResult>({ op: 'connrate', port: run.port, seconds: CONNRATE_S, inFlight: 50, timeoutMs: 10_000 }, CONNRATE_S * 1000 + 30_000, 'connection rate'))
        raw.connrate = { ...m.result, ...m.usage }
        figures.connPerSec = m.result.perSecond
        figures.connFailures = m.result.failures
      })
      await sleep(200) // let the last closes settle before the next case
    }
    if (CASES.has('idle') && round <= IDLE_ROUNDS && c.fdsFor(IDLE) > FD_LIMIT_CHILD) {
      figures.errors.idle = `skipped: one of its processes needs about ${c.fdsFor(IDLE)} file descriptors for ${IDLE} connections; the limit children get here is ${FD_LIMIT_CHILD} (ulimit -n could not raise it)`
      log(`  ${c.key} idle: ${figures.errors.idle}`)
    } else if (CASES.has('idle') && round <= IDLE_ROUNDS) {
      await attempt('idle', async () => {
        try {
          const r = await load.request<IdleResult>({ op: 'idleOpen', port: run.port, count: IDLE, concurrency: 200, timeoutMs: 30_000, deadlineMs: IDLE_DEADLINE_S * 1000 }, IDLE_DEADLINE_S * 1000 + 60_000, 'idle connections')
          await sleep(500) // let allocations settle: RSS of holding them, not of the burst
          const { relay, client } = sample(run)
          const relayRss = sum(relay.map(rssBytes))
          const clientRss = sum(client.map(rssBytes))
          raw.idle = { ...r, relayRss, clientRss }
          figures.idleOpen = r.open
          figures.idleFailures = IDLE - r.open // failed, or not attempted before the deadline
          if (tunnelled) {
            figures.idleRelayMiB = relayRss / MiB
            figures.idleClientMiB = clientRss / MiB
            figures.idleRssMiB = (relayRss + clientRss) / MiB
          }
        } finally {
          await load.request({ op: 'idleClose', timeoutMs: 30_000 }, 60_000, 'closing idle connections').catch(() => {})
        }
      })
    }
  } finally {
    await run.stop()
  }
  return { figures, raw }
}

// ---- machine, report ----

function fmtFigure (x: number | undefined): string {
  return x === undefined ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(2)
}

async function main (): Promise<void> {
  const t0 = Date.now()
  buildMport(log)
  const sshSkip = prepareOpenSsh(log)
  const all: Contestant[] = [direct, tcpForwarder, tlsForwarder, sshStock, sshTty, libp2pYamux, mport, ...mportOthers, mportWs]
  const contestants = all.filter(c => ONLY === undefined || ONLY.includes(c.key))
  for (const c of contestants) if (c.key.startsWith('ssh') && sshSkip !== undefined) c.skip = sshSkip
  for (const c of contestants) if (c.skip !== undefined) log(`SKIPPING ${c.name}: ${c.skip}`)

  const info = machine({
    openssh: opensshVersion(),
    libp2pYamux: (JSON.parse(readFileSync(path.join(ROOT, 'node_modules/@chainsafe/libp2p-yamux/package.json'), 'utf8')) as { version: string }).version,
    mportBins: mportBins().relay.replace(ROOT, ''),
    fdLimit: FD_LIMIT_CHILD,
  })
  log(`machine: ${info.cpu}, ${info.cores} cores, ${info.kernel}, node ${info.node}, ${info.openssh ?? 'no openssh'}`)
  log(`rounds ${ROUNDS}; bulk ${BULK1 / MiB} MiB (1 conn), ${BULK8 / MiB} MiB (8 conns); ${RTT} round trips; conn rate ${CONNRATE_S} s; ${IDLE} idle connections in ${IDLE_ROUNDS} round(s); cases ${[...CASES].join(',')}`)

  const sink = await portChild(new URL('./sink.ts', import.meta.url), [], 'sink')
  const load = new LoadGen<LoadRequest>(new URL('./load.ts', import.meta.url))
  let rounds: Map<string, RawRound[]>
  try {
    rounds = await interleave(contestants, ROUNDS, (c, round) => oneRound(c, sink.port, load, round), ({ figures: f }) =>
      `bulk1 ${fmtFigure(f.bulk1MBps)} MB/s, bulk8 ${fmtFigure(f.bulk8MBps)} MB/s, p50 ${fmtFigure(f.p50us)} µs, p99 ${fmtFigure(f.p99us)} µs, ` +
      `${fmtFigure(f.connPerSec)} conn/s (${f.connFailures ?? '–'} failed), idle ${f.idleOpen ?? '–'} open/${f.idleFailures ?? '–'} failed ${fmtFigure(f.idleRssMiB)} MiB, ` +
      `peak ${fmtFigure(f.bulkPeakMiB)} MiB, ${fmtFigure(f.cpuSecPerGB)} CPU-s/GB`)
  } finally {
    await load.stop()
    await killChild(sink.child)
  }

  const summaries: ContestantSummary[] = contestants.map(c => summarize(c.key, c.name, (rounds.get(c.key) ?? []).map(r => r.figures), c.skip))
  const by = new Map(summaries.map(s => [s.key, s]))
  const checks = checkTargets(by)
  const date = new Date().toISOString().slice(0, 10)
  const elapsed = (Date.now() - t0) / 1000
  finishMachine(info)
  const settings = { rounds: ROUNDS, bulk1MiB: BULK1 / MiB, bulk8MiB: BULK8 / MiB, roundTrips: RTT, connRateSeconds: CONNRATE_S, connRateInFlight: 50, idleConnections: IDLE, idleRounds: IDLE_ROUNDS, idleDeadlineSeconds: IDLE_DEADLINE_S, cases: [...CASES] }

  const md: string[] = [
    `# Tunnel benchmark, ${date}`,
    '',
    `Machine: ${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB, ${info.kernel}; Node ${info.node}; ${info.openssh ?? 'OpenSSH not available'}; @chainsafe/libp2p-yamux ${info.libp2pYamux}; mport ${info.mportCommit ?? '?'} (${info.mportBins}).`,
    `Settings: ${ROUNDS} interleaved rounds; bulk ${BULK1 / MiB} MiB over 1 connection and ${BULK8 / MiB} MiB over 8; ${RTT.toLocaleString('en-US')} round trips of 64 B after ${RTT_WARMUP.toLocaleString('en-US')} unmeasured ones on ${RTT_WARMUP_CONNS} connection(s); connection rate for ${CONNRATE_S} s with 50 in flight; ${IDLE.toLocaleString('en-US')} idle connections in the first ${IDLE_ROUNDS} round(s) (opening bounded to ${IDLE_DEADLINE_S} s). Whole run ${elapsed.toFixed(0)} s; load average (1/5/15 min) ${info.loadAverageAtStart} at the start, ${info.loadAverageAtEnd} at the end.`,
    '',
    'Medians over the rounds, (min–max) when they differ. MB = 10^6 bytes. RSS and CPU are of the tunnel\'s own processes (relay + client side; for ssh, sshd with its per-connection children + ssh).',
    '',
    mainTable(summaries),
    '',
    'Relay side and client side (medians; for ssh, sshd with its per-connection children, and ssh):',
    '',
    splitTable(summaries),
    '',
    '## Ratios to direct (medians)',
    '',
    ...(by.get('direct') !== undefined ? [ratioTable(by.get('direct') as ContestantSummary, summaries, false)] : ['direct was not run']),
    '',
    '## mport ÷ each other contestant (medians)',
    '',
    ...(by.get('mport') !== undefined ? [ratioTable(by.get('mport') as ContestantSummary, summaries, true)] : ['mport was not run']),
    '',
    '## Targets of issues 4 and 18',
    '',
    targetTable(checks),
    '',
  ]
  const failures = summaries.flatMap(s => s.rounds.flatMap((r, i) => Object.entries(r.errors).map(([k, v]) => `- ${s.key} round ${i + 1} ${k}: ${v.split('\n')[0]}`)))
  if (failures.length > 0) md.push('## Failures and skipped cases', '', ...failures, '')
  const text = md.join('\n')

  const base = writeResults('tunnel', date, text, {
    date: new Date().toISOString(),
    machine: info,
    settings,
    elapsedSeconds: elapsed,
    contestants: summaries.map(s => ({ ...s, raw: (rounds.get(s.key) ?? []).map(r => r.raw) })),
    targets: checks,
  })
  process.stdout.write(`\n${text}\nwritten to ${path.relative(ROOT, base)}.md and .json (${elapsed.toFixed(0)} s)\n`)
}

runBench('bench:tunnel', main)
