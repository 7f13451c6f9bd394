/**
 * Mux throughput over one loopback TCP connection, each contestant measured in the same run:
 *
 *   raw         net.Socket, no multiplexer
 *   mport-1     mport Session, one stream
 *   mport-64    mport Session, 64 concurrent streams sharing the same total
 *   libp2p-1    @chainsafe/libp2p-yamux, one stream
 *   libp2p-64   @chainsafe/libp2p-yamux, 64 streams
 *
 * The sender is this process; the receiver is a child process (bench/helpers/mux-receiver.ts
 * under node --import tsx), so a 2-core machine runs one side per core. A run is timed from the
 * first write (session already up and its RTT ping answered) to the receiver's one-byte ack of
 * the last byte (sent on FIN). Rounds are interleaved (round 1 of each contestant, then round 2,
 * with the starting contestant rotated each round), after one untimed full-size warm-up round; the median
 * and min–max are reported.
 *
 * Env: BENCH_MB (MiB per run, default 256), BENCH_ROUNDS (default 7, at least 3),
 * BENCH_CHUNK_KB (application write size, default 64), BENCH_ONLY (comma-separated contestant
 * names), BENCH_RECEIVER_PROF (directory for a --cpu-prof profile of the receiver child).
 *
 * Run alone: npx tsx bench/stream.bench.ts
 */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import { performance } from 'node:perf_hooks'
import type { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { defaultMuxConfig } from '../src/mux/config.js'
import { Session } from '../src/mux/session.js'
import { libp2pBenchConfig, libp2pYamuxOverSocket, type Libp2pMuxer, type Libp2pStream } from './helpers/libp2p-yamux.js'
import type { ReceiverMessage, ReceiverPorts } from './helpers/mux-receiver.js'
import { formatMBps, isMain } from './helpers/suite.js'

const MiB = 1024 * 1024
const RUN_TIMEOUT = 180_000 // ms; a stalled contestant fails the bench with its name
const STREAMS = 64

export interface StreamBenchOptions {
  megabytes: number
  rounds: number
  chunkBytes: number
  /** Contestant names to run (all when empty); ratios and targets need both sides present. */
  only: string[]
}

export interface ContestantResult {
  name: string
  /** MB/s (10^6 bytes per second) of each timed round, in round order. */
  runs: number[]
  median: number
  min: number
  max: number
  /** Median CPU use of the sender and receiver processes during a run, in percent of one core. */
  senderCpu: number
  receiverCpu: number
}

export interface TargetResult { name: string, ratio: number, target: number, met: boolean }

export interface StreamBenchResult {
  date: string
  machine: { cpu: string, cores: number, node: string, platform: string, memoryGiB: number }
  setup: Record<string, unknown>
  contestants: ContestantResult[]
  ratios: Record<string, number>
  targets: TargetResult[]
  file: string
}

export function streamBenchOptions (): StreamBenchOptions {
  const megabytes = Number(process.env.BENCH_MB ?? 256)
  const rounds = Math.max(3, Math.floor(Number(process.env.BENCH_ROUNDS ?? 7)))
  const chunkBytes = Number(process.env.BENCH_CHUNK_KB ?? 64) * 1024
  if (!(megabytes >= 1 && Number.isInteger(megabytes)) || !(chunkBytes >= 1024)) throw new Error('BENCH_MB must be a positive integer and BENCH_CHUNK_KB at least 1')
  const only = (process.env.BENCH_ONLY ?? '').split(',').map(x => x.trim()).filter(x => x !== '')
  return { megabytes, rounds, chunkBytes, only }
}

// ---- the receiver child ----

class Receiver {
  readonly #child: ChildProcess
  readonly #cpuWaiters: Array<(u: NodeJS.CpuUsage) => void> = []
  ports!: ReceiverPorts

  constructor () {
    const entry = fileURLToPath(new URL('./helpers/mux-receiver.ts', import.meta.url))
    // BENCH_RECEIVER_PROF=<dir> writes a .cpuprofile of the receiver (NODE_OPTIONS cannot carry --cpu-prof).
    const prof = process.env.BENCH_RECEIVER_PROF
    const execArgv = ['--import', 'tsx', ...(prof === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${prof}`])]
    this.#child = fork(entry, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.#child.on('message', (m: ReceiverMessage) => { if (m.type === 'cpu') this.#cpuWaiters.shift()?.(m.usage) })
  }

  async start (): Promise<void> {
    const exited = once(this.#child, 'exit').then(([code]) => { throw new Error(`receiver exited early (code ${String(code)})`) })
    const ready = new Promise<ReceiverPorts>(resolve => {
      const onMessage = (m: ReceiverMessage): void => {
        if (m.type !== 'ports') return
        this.#child.off('message', onMessage)
        resolve(m.ports)
      }
      this.#child.on('message', onMessage)
    })
    this.ports = await bounded(Promise.race([ready, exited]), 30_000, 'receiver child did not report its ports within 30 s')
  }

  cpuUsage (): Promise<NodeJS.CpuUsage> {
    return bounded(new Promise<NodeJS.CpuUsage>(resolve => {
      this.#cpuWaiters.push(resolve)
      this.#child.send({ cmd: 'cpu' })
    }), 10_000, 'receiver child did not answer a cpu query within 10 s')
  }

  stop (): void {
    if (this.#child.connected) this.#child.disconnect()
  }
}

// ---- contestants: each returns the elapsed time in ms for `total` bytes ----

type Contestant = { name: string, run (ports: ReceiverPorts, total: number, chunk: Buffer): Promise<number> }

const allContestants: Contestant[] = [
  { name: 'raw', run: runRaw },
  { name: 'mport-1', run: (p, total, chunk) => runMport(p, total, chunk, 1) },
  { name: `mport-${STREAMS}`, run: (p, total, chunk) => runMport(p, total, chunk, STREAMS) },
  { name: 'libp2p-1', run: (p, total, chunk) => runLibp2p(p, total, chunk, 1) },
  { name: `libp2p-${STREAMS}`, run: (p, total, chunk) => runLibp2p(p, total, chunk, STREAMS) },
]

async function connect (port: number): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true, allowHalfOpen: true })
  await bounded(once(socket, 'connect'), 10_000, `connect to 127.0.0.1:${port} timed out`)
  return socket
}

/** Writes `total` bytes in `chunk`-sized writes, honouring backpressure, then ends. */
function pump (w: Writable, total: number, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let left = total
    const onError = (err: Error): void => reject(err)
    w.once('error', onError)
    const go = (): void => {
      while (left > 0) {
        const n = Math.min(left, chunk.length)
        left -= n
        if (!w.write(n === chunk.length ? chunk : chunk.subarray(0, n))) { w.once('drain', go); return }
      }
      w.end()
      w.off('error', onError)
      resolve()
    }
    go()
  })
}

/** Resolves on the first byte the peer sends back (the ack of the last byte). */
async function ack (r: NodeJS.EventEmitter): Promise<void> {
  await once(r, 'data')
}

async function runRaw (ports: ReceiverPorts, total: number, chunk: Buffer): Promise<number> {
  const socket = await connect(ports.raw)
  try {
    const acked = ack(socket)
    const t0 = performance.now()
    await pump(socket, total, chunk)
    await acked
    return performance.now() - t0
  } finally {
    socket.destroy()
  }
}

async function runMport (ports: ReceiverPorts, total: number, chunk: Buffer, streams: number): Promise<number> {
  const socket = await connect(ports.mport)
  const session = new Session(socket, { client: true })
  try {
    await session.ping() // session up and RTT known (window auto-tuning), as in a long-lived tunnel
    const per = total / streams
    const t0 = performance.now()
    await Promise.all(Array.from({ length: streams }, async () => {
      const stream = session.open()
      const acked = ack(stream)
      await pump(stream, per, chunk)
      await acked
    }))
    return performance.now() - t0
  } finally {
    session.destroy()
  }
}

async function runLibp2p (ports: ReceiverPorts, total: number, chunk: Buffer, streams: number): Promise<number> {
  const socket = await connect(ports.libp2p)
  const { muxer } = libp2pYamuxOverSocket(socket, true)
  try {
    await (muxer as Libp2pMuxer & { ping (): Promise<number> }).ping() // same warm start as mport
    const per = total / streams
    const t0 = performance.now()
    await Promise.all(Array.from({ length: streams }, async () => {
      const stream: Libp2pStream = await muxer.newStream()
      await Promise.all([stream.sink(chunks(per, chunk)), firstChunk(stream.source)])
    }))
    return performance.now() - t0
  } finally {
    muxer.abort(new Error('bench run over'))
    socket.destroy()
  }
}

async function * chunks (total: number, chunk: Buffer): AsyncGenerator<Uint8Array> {
  for (let left = total; left > 0; left -= chunk.length) yield left >= chunk.length ? chunk : chunk.subarray(0, left)
}

async function firstChunk (source: AsyncIterable<unknown>): Promise<void> {
  for await (const c of source) { void c; return }
  throw new Error('stream ended without an ack')
}

// ---- the run ----

export async function streamBench (opts: StreamBenchOptions = streamBenchOptions()): Promise<StreamBenchResult> {
  const total = opts.megabytes * MiB
  const chunk = Buffer.alloc(opts.chunkBytes, 0x6d)
  const contestants = allContestants.filter(c => opts.only.length === 0 || opts.only.includes(c.name))
  if (contestants.length === 0) throw new Error(`BENCH_ONLY matches none of ${allContestants.map(c => c.name).join(', ')}`)
  const loadBefore = os.loadavg()
  const receiver = new Receiver()
  console.log(`\n# mux throughput: ${opts.megabytes} MiB per run over one loopback TCP connection, ${opts.chunkBytes / 1024} KiB writes, ${opts.rounds} interleaved rounds (+1 warm-up)`)
  console.log('# sender: this process; receiver: child process (node --import tsx bench/helpers/mux-receiver.ts)')
  const samples = new Map<string, { mbps: number[], senderCpu: number[], receiverCpu: number[] }>()
  for (const c of contestants) samples.set(c.name, { mbps: [], senderCpu: [], receiverCpu: [] })
  try {
    await receiver.start()
    // One untimed full-size run each: JIT, heap growth and TCP autotuning settle first.
    for (const c of contestants) await bounded(c.run(receiver.ports, total, chunk), RUN_TIMEOUT, `${c.name} warm-up did not finish within ${RUN_TIMEOUT / 1000} s`)
    for (let round = 0; round < opts.rounds; round++) {
      const line: string[] = []
      for (let k = 0; k < contestants.length; k++) {
        const c = contestants[(round + k) % contestants.length]!
        const cpu0 = process.cpuUsage()
        const rcpu0 = await receiver.cpuUsage()
        const ms = await bounded(c.run(receiver.ports, total, chunk), RUN_TIMEOUT, `${c.name} round ${round + 1} did not finish within ${RUN_TIMEOUT / 1000} s`)
        const cpu = process.cpuUsage(cpu0)
        const rcpu1 = await receiver.cpuUsage()
        const s = samples.get(c.name)!
        const mbps = total / 1e6 / (ms / 1000)
        s.mbps.push(mbps)
        s.senderCpu.push((cpu.user + cpu.system) / 10 / ms)
        s.receiverCpu.push((rcpu1.user - rcpu0.user + rcpu1.system - rcpu0.system) / 10 / ms)
        line.push(`${c.name} ${mbps.toFixed(0)}`)
      }
      console.log(`round ${round + 1}: ${line.join(', ')} MB/s`)
    }
  } finally {
    receiver.stop()
  }

  const results: ContestantResult[] = contestants.map(c => {
    const s = samples.get(c.name)!
    return { name: c.name, runs: s.mbps, median: median(s.mbps), min: Math.min(...s.mbps), max: Math.max(...s.mbps), senderCpu: median(s.senderCpu), receiverCpu: median(s.receiverCpu) }
  })
  const loadAfter = os.loadavg()
  const m = (name: string): number => results.find(r => r.name === name)?.median ?? NaN
  const ratios: Record<string, number> = {}
  const pairs: Array<[string, string]> = [['mport-1', 'raw'], [`mport-${STREAMS}`, 'raw'], ['mport-1', 'libp2p-1'], [`mport-${STREAMS}`, `libp2p-${STREAMS}`]]
  for (const [a, b] of pairs) {
    const v = m(a) / m(b)
    if (!Number.isNaN(v)) ratios[`${a} / ${b}`] = v
  }
  const targets: TargetResult[] = [
    { name: 'one stream >= 80% of raw', ratio: ratios['mport-1 / raw'], target: 0.8 },
    { name: 'one stream >= 2x libp2p', ratio: ratios['mport-1 / libp2p-1'], target: 2 },
    { name: `${STREAMS} streams >= 70% of raw`, ratio: ratios[`mport-${STREAMS} / raw`], target: 0.7 },
  ].filter((t): t is Omit<TargetResult, 'met'> => t.ratio !== undefined).map(t => ({ ...t, met: t.ratio >= t.target }))

  const date = new Date().toISOString().slice(0, 10)
  // Runs of a subset (BENCH_ONLY) never overwrite the full result of the day.
  const file = fileURLToPath(new URL(`./results/mux-${date}${opts.only.length === 0 ? '' : '-partial'}.json`, import.meta.url))
  const result: StreamBenchResult = {
    date: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version, platform: `${os.platform()} ${os.release()}`, memoryGiB: Math.round(os.totalmem() / 2 ** 30) },
    setup: {
      megabytesPerRun: opts.megabytes,
      rounds: opts.rounds,
      warmupMegabytes: opts.megabytes,
      writeBytes: opts.chunkBytes,
      streams: STREAMS,
      transport: 'one TCP connection on 127.0.0.1, noDelay',
      only: opts.only.length === 0 ? 'all' : opts.only,
      loadAverage1m: { before: loadBefore[0], after: loadAfter[0] },
      processes: 'sender in the bench process, receiver in a child process (child_process.fork with --import tsx)',
      unit: 'MB/s = 10^6 bytes per second of stream payload, from first write to the ack of the last byte',
      mport: { ...defaultMuxConfig },
      libp2p: { version: libp2pVersion(), ...libp2pBenchConfig },
    },
    contestants: results,
    ratios,
    targets,
    file,
  }
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n')
  printStreamResult(result)
  return result
}

export function printStreamResult (r: StreamBenchResult): void {
  console.log(`\n${'contestant'.padEnd(12)} ${'median'.padStart(12)} ${'min–max'.padStart(22)} ${'sender CPU'.padStart(11)} ${'receiver CPU'.padStart(13)}`)
  for (const c of r.contestants) {
    const range = `${c.min.toFixed(0)}–${c.max.toFixed(0)} MB/s`
    console.log(`${c.name.padEnd(12)} ${formatMBps(c.median).padStart(12)} ${range.padStart(22)} ${`${c.senderCpu.toFixed(0)}%`.padStart(11)} ${`${c.receiverCpu.toFixed(0)}%`.padStart(13)}`)
  }
  console.log('')
  for (const [name, v] of Object.entries(r.ratios)) console.log(`${name.padEnd(22)} ${v.toFixed(2)}`)
  console.log('')
  for (const t of r.targets) console.log(`target ${t.name.padEnd(26)} ${t.ratio.toFixed(2)} vs ${t.target}: ${t.met ? 'met' : 'MISSED'}`)
  console.log(`\nwrote ${r.file}`)
}

function libp2pVersion (): string {
  const pkg = new URL('../node_modules/@chainsafe/libp2p-yamux/package.json', import.meta.url)
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

async function bounded<T> (p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(message)), ms) })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

if (isMain(import.meta.url)) {
  await streamBench().catch((err: unknown) => {
    console.error(err)
    process.exit(1) // a stalled run may leave sockets open
  })
}
