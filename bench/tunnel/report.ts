/**
 * Turns the raw figures of every round into medians (min–max), ratios and the issue's target
 * checks, as Markdown.
 */
import { cell, fmt, stat, type Stat } from '../harness/stats.js'

/** One contestant's figures from one round; a missing field means the case failed or was skipped. */
export interface RoundFigures {
  bulk1MBps?: number
  bulk8MBps?: number
  p50us?: number
  p99us?: number
  /** The tunnel's CPU (relay + client side) per 64-byte round trip, warm-up included, in µs. */
  rttCpuUs?: number
  connPerSec?: number
  connFailures?: number
  idleOpen?: number
  idleFailures?: number
  idleRssMiB?: number
  idleRelayMiB?: number
  idleClientMiB?: number
  bulkPeakMiB?: number
  bulkRelayPeakMiB?: number
  bulkClientPeakMiB?: number
  cpuSecPerGB?: number
  /** The relay side's share of cpuSecPerGB (for ssh: sshd and its children). */
  relayCpuSecPerGB?: number
  /** The client side's share (for ssh: ssh). */
  clientCpuSecPerGB?: number
  errors: Record<string, string>
}

export type Metric = Exclude<keyof RoundFigures, 'errors'>

export interface ContestantSummary {
  key: string
  name: string
  skipped?: string
  rounds: RoundFigures[]
  stats: Partial<Record<Metric, Stat>>
}

export function summarize (key: string, name: string, rounds: RoundFigures[], skipped?: string): ContestantSummary {
  const metrics: Metric[] = ['bulk1MBps', 'bulk8MBps', 'p50us', 'p99us', 'rttCpuUs', 'connPerSec', 'connFailures', 'idleOpen', 'idleFailures',
    'idleRssMiB', 'idleRelayMiB', 'idleClientMiB', 'bulkPeakMiB', 'bulkRelayPeakMiB', 'bulkClientPeakMiB', 'cpuSecPerGB', 'relayCpuSecPerGB', 'clientCpuSecPerGB']
  const stats: Partial<Record<Metric, Stat>> = {}
  for (const m of metrics) {
    const s = stat(rounds.map(r => r[m]))
    if (s !== undefined) stats[m] = s
  }
  return { key, name, rounds, stats, ...(skipped === undefined ? {} : { skipped }) }
}

interface Column { m: Metric, title: string, digits?: number }

const COLUMNS: Column[] = [
  { m: 'bulk1MBps', title: 'bulk 1 conn MB/s' },
  { m: 'bulk8MBps', title: 'bulk 8 conns MB/s' },
  { m: 'p50us', title: 'p50 µs' },
  { m: 'p99us', title: 'p99 µs' },
  { m: 'rttCpuUs', title: 'CPU µs per round trip' },
  { m: 'connPerSec', title: 'conn/s' },
  { m: 'connFailures', title: 'conn failures', digits: 0 },
  { m: 'idleOpen', title: '10k idle: open', digits: 0 },
  { m: 'idleFailures', title: '10k idle: failures', digits: 0 },
  { m: 'idleRssMiB', title: '10k idle: RSS MiB (relay+client)' },
  { m: 'bulkPeakMiB', title: 'bulk peak RSS MiB' },
  { m: 'cpuSecPerGB', title: 'CPU-s per GB' },
]

/** One row per contestant (skipped ones say why), one column per metric, medians with min–max. */
function figuresTable (columns: Column[], all: ContestantSummary[]): string {
  const head = `| contestant | ${columns.map(c => c.title).join(' | ')} |`
  const sep = `|---|${columns.map(() => '---:').join('|')}|`
  const rows = all.map(c => c.skipped !== undefined
    ? `| ${c.name} | skipped: ${c.skipped} |${columns.slice(1).map(() => '').join(' |')} |`
    : `| ${c.name} | ${columns.map(col => cell(c.stats[col.m], col.digits)).join(' | ')} |`)
  return [head, sep, ...rows].join('\n')
}

export function mainTable (all: ContestantSummary[]): string {
  return figuresTable(COLUMNS, all)
}

const SPLIT_COLUMNS: Column[] = [
  { m: 'relayCpuSecPerGB', title: 'CPU-s per GB: relay side' },
  { m: 'clientCpuSecPerGB', title: 'client side' },
  { m: 'bulkRelayPeakMiB', title: 'bulk peak RSS MiB: relay side' },
  { m: 'bulkClientPeakMiB', title: 'client side' },
  { m: 'idleRelayMiB', title: '10k idle RSS MiB: relay side' },
  { m: 'idleClientMiB', title: 'client side' },
]

/** The tunnels' own figures split between their relay side and their client side (direct has none). */
export function splitTable (all: ContestantSummary[]): string {
  return figuresTable(SPLIT_COLUMNS, all.filter(c => c.skipped !== undefined || SPLIT_COLUMNS.some(col => c.stats[col.m] !== undefined)))
}

const RATIO_METRICS: Array<{ m: Metric, title: string }> = [
  { m: 'bulk1MBps', title: 'bulk 1 conn' },
  { m: 'bulk8MBps', title: 'bulk 8 conns' },
  { m: 'connPerSec', title: 'conn/s' },
  { m: 'p50us', title: 'p50' },
  { m: 'p99us', title: 'p99' },
  { m: 'rttCpuUs', title: 'CPU/round trip' },
  { m: 'cpuSecPerGB', title: 'CPU-s/GB' },
  { m: 'bulkPeakMiB', title: 'bulk peak RSS' },
  { m: 'idleRssMiB', title: '10k idle RSS' },
]

function ratio (a: Stat | undefined, b: Stat | undefined): string {
  if (a === undefined || b === undefined || b.median === 0) return '–'
  return `${fmt(a.median / b.median, 2)}×`
}

/**
 * Ratios of medians, metric by metric: each row's contestant ÷ `base` (invert = false), or
 * `base` ÷ each row's contestant (invert = true, used for mport ÷ the others).
 */
export function ratioTable (base: ContestantSummary, rows: ContestantSummary[], invert: boolean): string {
  const head = `| ${invert ? `${base.key} ÷ …` : `… ÷ ${base.key}`} | ${RATIO_METRICS.map(r => r.title).join(' | ')} |`
  const sep = `|---|${RATIO_METRICS.map(() => '---:').join('|')}|`
  const body = rows.filter(c => c.skipped === undefined && c.key !== base.key)
    .map(c => `| ${c.name} | ${RATIO_METRICS.map(r => invert ? ratio(base.stats[r.m], c.stats[r.m]) : ratio(c.stats[r.m], base.stats[r.m])).join(' | ')} |`)
  return [head, sep, ...body].join('\n')
}

export interface TargetCheck { target: string, mport?: number, bound?: number, met: boolean | undefined, note: string }

/** The targets of issues 4 and 18, on medians of this run. */
export function checkTargets (by: Map<string, ContestantSummary>): TargetCheck[] {
  const m = by.get('mport')
  const get = (key: string, metric: Metric): number | undefined => {
    const c = by.get(key)
    return c?.skipped === undefined ? c?.stats[metric]?.median : undefined
  }
  const out: TargetCheck[] = []
  const atLeast = (target: string, metric: Metric, other: string, factor: number): void => {
    const mine = get('mport', metric)
    const theirs = get(other, metric)
    const bound = theirs === undefined ? undefined : theirs * factor
    out.push({
      target,
      ...(mine === undefined ? {} : { mport: mine }),
      ...(bound === undefined ? {} : { bound }),
      met: mine === undefined || bound === undefined ? undefined : mine >= bound,
      note: mine === undefined || bound === undefined ? 'not measured' : `${fmt(mine)} vs ${fmt(bound)} (${fmt(mine / (theirs as number), 2)}× ${other})`,
    })
  }
  const atMost = (target: string, metric: Metric, other: string | number, factor: number): void => {
    const mine = get('mport', metric)
    const theirs = typeof other === 'number' ? other : get(other, metric)
    const bound = theirs === undefined ? undefined : theirs * factor
    out.push({
      target,
      ...(mine === undefined ? {} : { mport: mine }),
      ...(bound === undefined ? {} : { bound }),
      met: mine === undefined || bound === undefined ? undefined : mine <= bound,
      note: mine === undefined || bound === undefined ? 'not measured' : `${fmt(mine)} vs ≤ ${fmt(bound)}${typeof other === 'string' ? ` (${fmt(mine / (theirs as number), 2)}× ${other})` : ''}`,
    })
  }
  atLeast('bulk 1 conn ≥ 1.0× ssh -R', 'bulk1MBps', 'ssh-R', 1.0)
  atLeast('bulk 1 conn ≥ 1.2× libp2p-yamux', 'bulk1MBps', 'libp2p-yamux', 1.2)
  atLeast('bulk 8 conns ≥ 1.0× ssh -R', 'bulk8MBps', 'ssh-R', 1.0)
  atLeast('bulk 8 conns ≥ 1.2× libp2p-yamux', 'bulk8MBps', 'libp2p-yamux', 1.2)
  atMost('CPU-s per GB ≤ ssh -R', 'cpuSecPerGB', 'ssh-R', 1.0)
  atLeast('conn/s ≥ 3× ssh -R', 'connPerSec', 'ssh-R', 3.0)
  atLeast('conn/s ≥ 1.5× libp2p-yamux', 'connPerSec', 'libp2p-yamux', 1.5)
  atLeast('conn/s ≥ ssh -tt -R (stretch)', 'connPerSec', 'ssh-tt-R', 1.0)
  atMost('p50 ≤ ssh -R', 'p50us', 'ssh-R', 1.0)
  atMost('p99 ≤ 1.5× ssh -R', 'p99us', 'ssh-R', 1.5)
  atMost('CPU per 64-byte round trip ≤ 1.1× the bare Node TLS forwarder (issue 18)', 'rttCpuUs', 'node-tls', 1.1)
  atMost('bulk peak RSS (relay+client) ≤ 150 MiB', 'bulkPeakMiB', 150, 1)
  const idleOpen = m?.stats.idleOpen
  const idleFail = m?.stats.idleFailures
  out.push({
    target: '10,000 idle connections, no failures',
    ...(idleFail === undefined ? {} : { mport: idleFail.max }),
    met: idleFail === undefined || idleOpen === undefined ? undefined : idleFail.max === 0 && idleOpen.min >= Number(process.env.BENCH_IDLE_CONNS ?? 10000),
    note: idleFail === undefined ? 'not measured' : `open ${cell(idleOpen, 0)}, failures ${cell(idleFail, 0)} (worst round counts)`,
  })
  atMost('10,000 idle connections ≤ 300 MiB (relay+client)', 'idleRssMiB', 300, 1)
  return out
}

export function targetTable (checks: TargetCheck[]): string {
  return ['| target | result | mport vs bound (medians) |', '|---|---|---|',
    ...checks.map(c => `| ${c.target} | ${c.met === undefined ? 'not measured' : c.met ? 'met' : '**not met**'} | ${c.note} |`)].join('\n')
}
