/**
 * Counts the user-space instructions mport's relay and client execute per 64-byte round trip
 * (valgrind's callgrind on both processes; counters zeroed after a warm-up). Unlike CPU time,
 * an instruction count hardly moves with the machine's load, so an A/B of a small-message
 * change shows through it on a shared machine. A probe, not a benchmark: the kernel's part is
 * not counted, and valgrind runs the processes some 50× slower.
 *   npx tsx bench/tunnel/instruction-count.ts [round trips=3000] [warm-up=3000] [connections=1]
 * The bare two-process Node TLS forwarder (forwarder.ts, the target's reference) is counted
 * beside mport; BENCH_MPORT_B=<built checkout>[,<another>…] counts those builds too, all
 * interleaved, each probed `BENCH_ROUNDS` times (default 2); BENCH_CALLGRIND_DIR keeps the
 * dumps there (for callgrind_annotate). Needs valgrind.
 *
 * Node runs with --single-threaded: valgrind runs one thread at a time, so V8's background
 * compiler lags far behind and is still optimising long after the warm-up; single-threaded,
 * that work is counted with the rest instead of landing on whichever thread, so compare
 * builds probed with the same settings.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { startMport } from '../harness/mport.js'
import type { NodeWrapper } from '../harness/procs.js'
import { startTlsForwarder } from './contestants.js'

const [trips = 3000, warmup = 3000, connections = 1] = process.argv.slice(2).map(Number)
const NODE_TLS = 'node-tls'
/** What is probed: this checkout (undefined), the bare Node TLS forwarder, other builds. */
const contestants: Array<string | undefined> = [undefined, NODE_TLS, ...(process.env.BENCH_MPORT_B ?? '').split(',').filter(Boolean).map(p => path.resolve(p))]
const rounds = Number(process.env.BENCH_ROUNDS ?? 2)
const MESSAGE = Buffer.alloc(64, 0x61)

const echo = net.createServer(s => { s.setNoDelay(true); s.on('error', () => {}); s.pipe(s) })
await new Promise<void>(resolve => echo.listen(0, '127.0.0.1', resolve))
const echoPort = (echo.address() as net.AddressInfo).port

/** `n` sequential 64-byte round trips on each of `conns` connections at once. */
async function roundTrips (port: number, n: number, conns: number): Promise<void> {
  await Promise.all(Array.from({ length: conns }, async () => {
    const s = net.connect({ host: '127.0.0.1', port, noDelay: true })
    await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
    for (let i = 0; i < n; i++) {
      s.write(MESSAGE)
      let got = 0
      while (got < MESSAGE.length) {
        got += await new Promise<number>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`round trip ${i} got no answer within 60 s`)), 60_000)
          s.once('data', (d: Buffer) => { clearTimeout(timer); resolve(d.length) })
        })
      }
    }
    s.destroy()
  }))
}

interface Counted { main: number, others: number }

/**
 * Instructions counted since the last zeroing, from a fresh callgrind dump of `pid`: its main
 * thread (the event loop, where mport runs) and its other threads (V8's compiler and GC helpers).
 */
function dumpedInstructions (pid: number, dir: string): Counted {
  execFileSync('callgrind_control', ['-d', String(pid)], { stdio: 'ignore' })
  const dumps = readdirSync(dir).map(f => /^cg\.(\d+)\.(\d+)-(\d+)$/.exec(f)).filter(m => m !== null && Number(m[1]) === pid) as RegExpExecArray[]
  const lastDump = Math.max(...dumps.map(m => Number(m[2])))
  if (!Number.isFinite(lastDump)) throw new Error(`callgrind wrote no dump for process ${pid} in ${dir}`)
  const counted: Counted = { main: 0, others: 0 }
  for (const d of dumps.filter(m => Number(m[2]) === lastDump)) {
    const m = /^(?:summary|totals): (\d+)/m.exec(readFileSync(path.join(dir, d[0]), 'utf8'))
    if (m === null) throw new Error(`no instruction total in ${d[0]}`)
    if (Number(d[3]) === 1) counted.main += Number(m[1])
    else counted.others += Number(m[1])
  }
  return counted
}

interface Tunnel { port: number, relay: number, client: number, stop (): Promise<void> }

async function startContestant (who: string | undefined, wrapper: NodeWrapper): Promise<Tunnel> {
  if (who === NODE_TLS) {
    const f = await startTlsForwarder(echoPort, wrapper)
    const { relay, client } = f.pids()
    return { port: f.port, relay: relay[0]!, client: client[0]!, stop: f.stop }
  }
  const m = await startMport([], [String(echoPort)], who, wrapper)
  const port = m.tunnel.remotePort
  if (port === undefined) {
    await m.stop()
    throw new Error('the client\'s tunnel event has no remotePort')
  }
  return { port, relay: m.relay.pid!, client: m.client.pid!, stop: m.stop }
}

async function probe (who: string | undefined): Promise<{ relay: Counted, client: Counted }> {
  const keep = process.env.BENCH_CALLGRIND_DIR
  const dir = mkdtempSync(path.join(keep ?? os.tmpdir(), 'mport-callgrind-'))
  const m = await startContestant(who, {
    command: ['valgrind', '--tool=callgrind', '--separate-threads=yes', `--callgrind-out-file=${dir}/cg.%p`],
    nodeFlags: ['--single-threaded'],
    startTimeoutMs: 180_000,
  })
  try {
    const port = m.port
    await roundTrips(port, warmup, connections)
    for (const pid of [m.relay, m.client]) execFileSync('callgrind_control', ['-z', String(pid)], { stdio: 'ignore' })
    await roundTrips(port, trips, connections)
    const total = trips * connections
    const per = (c: Counted): Counted => ({ main: c.main / total, others: c.others / total })
    return { relay: per(dumpedInstructions(m.relay, dir)), client: per(dumpedInstructions(m.client, dir)) }
  } finally {
    await m.stop()
    if (keep === undefined) rmSync(dir, { recursive: true, force: true })
  }
}

console.log(`instructions per 64-byte round trip (${trips} round trips on ${connections} connection(s) after ${warmup} of warm-up); main thread, and other threads in brackets:`)
const results = new Map<string, { main: number[], others: number[] }>()
const k = (n: number): string => `${(n / 1000).toFixed(1)}k`
for (let r = 0; r < rounds; r++) {
  for (const who of contestants) {
    const name = who ?? 'this checkout'
    const { relay, client } = await probe(who)
    console.log(`  ${name}: relay side ${k(relay.main)} [${k(relay.others)}], client side ${k(client.main)} [${k(client.others)}], both ${k(relay.main + client.main)} [${k(relay.others + client.others)}]`)
    const v = results.get(name) ?? { main: [], others: [] }
    v.main.push(relay.main + client.main)
    v.others.push(relay.others + client.others)
    results.set(name, v)
  }
}
const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length
const base = results.get('this checkout')!
for (const [name, v] of results) {
  console.log(`${name}: main threads ${k(mean(v.main))} per round trip (${v.main.map(k).join(', ')}), ${(mean(v.main) / mean(base.main)).toFixed(3)}× this checkout; other threads ${k(mean(v.others))}`)
}
echo.close()
