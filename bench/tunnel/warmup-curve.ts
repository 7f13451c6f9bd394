/**
 * The CPU cost of a 64-byte round trip as a tunnel warms up: mport's relay and client against
 * the bare Node TLS forwarder, on one connection, the tunnel's CPU (both processes, from
 * /proc) per round trip in consecutive segments. It shows how many round trips V8 needs before
 * each contestant runs at its steady cost, which is what bench:tunnel's latency warm-up
 * (BENCH_RTT_WARMUP) has to cover. A probe, not a benchmark: the machine's load moves single
 * segments, so read the medians over rounds.
 *   npx tsx bench/tunnel/warmup-curve.ts [round trips per segment=4000] [segments=10] [rounds=3]
 * BENCH_MPORT_B_NODE_FLAGS adds this build under those Node flags as `mport-b`. Needs the
 * built bins (npm run build).
 */
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { startMport } from '../harness/mport.js'
import { withTimeout } from '../harness/procs.js'
import { stat } from '../harness/stats.js'
import { startTlsForwarder } from './contestants.js'

const [segment = 4000, segments = 10, rounds = 3] = process.argv.slice(2).map(Number)
const otherFlags = (process.env.BENCH_MPORT_B_NODE_FLAGS ?? '').split(' ').filter(Boolean)
const MESSAGE = Buffer.alloc(64, 0x61)
/** USER_HZ: /proc counts CPU time in ticks of 10 ms. */
const TICK_US = 10_000

const echo = net.createServer(s => { s.setNoDelay(true); s.on('error', () => {}); s.pipe(s) })
await new Promise<void>(resolve => echo.listen(0, '127.0.0.1', resolve))
const echoPort = (echo.address() as net.AddressInfo).port

function cpuTicks (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[11]) + Number(fields[12]) // utime, stime
}

/** CPU µs per round trip of `pids` in each segment of sequential round trips through `port`. */
async function curve (port: number, pids: number[]): Promise<number[]> {
  const s = net.connect({ host: '127.0.0.1', port, noDelay: true })
  s.on('error', () => {})
  await withTimeout(new Promise<void>(resolve => s.once('connect', resolve)), 10_000, 'connecting to the tunnel')
  const costs: number[] = []
  try {
    for (let seg = 0; seg < segments; seg++) {
      const before = pids.reduce((a, p) => a + cpuTicks(p), 0)
      for (let i = 0; i < segment; i++) {
        s.write(MESSAGE)
        let got = 0
        while (got < MESSAGE.length) {
          got += await withTimeout(new Promise<number>(resolve => s.once('data', (d: Buffer) => resolve(d.length))), 30_000, `round trip ${i} of segment ${seg}`)
        }
      }
      costs.push((pids.reduce((a, p) => a + cpuTicks(p), 0) - before) * TICK_US / segment)
    }
  } finally {
    s.destroy()
  }
  return costs
}

const results = new Map<string, number[][]>()
function record (name: string, costs: number[]): void {
  results.set(name, [...(results.get(name) ?? []), costs])
  console.log(`  ${name.padEnd(8)} ${costs.map(c => c.toFixed(0)).join(' ')}`)
}

console.log(`CPU µs per 64-byte round trip, segments of ${segment} round trips:`)
for (let r = 0; r < rounds; r++) {
  const f = await startTlsForwarder(echoPort)
  const { relay, client } = f.pids()
  try { record('node-tls', await curve(f.port, [relay[0]!, client[0]!])) } finally { await f.stop() }
  const builds: Array<[string, string[] | undefined]> = [['mport', undefined], ...(otherFlags.length > 0 ? [['mport-b', otherFlags] as [string, string[]]] : [])]
  for (const [name, flags] of builds) {
    const m = await startMport([], [String(echoPort)], undefined, undefined, flags)
    try {
      const port = m.tunnel.remotePort
      if (port === undefined) throw new Error('the client\'s tunnel event has no remotePort')
      record(name, await curve(port, [m.relay.pid!, m.client.pid!]))
    } finally { await m.stop() }
  }
}
console.log('medians over rounds:')
for (const [name, rows] of results) {
  console.log(`  ${name.padEnd(8)} ${rows[0]!.map((_, i) => stat(rows.map(row => row[i]!))!.median.toFixed(0)).join(' ')}`)
}
echo.close()
