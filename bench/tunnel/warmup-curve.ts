/**
 * The CPU cost of a 64-byte round trip as a tunnel warms up: mport's relay and client against
 * the bare Node TLS forwarder, the tunnel's CPU (both processes) per round trip in consecutive
 * segments through one fresh tunnel, each segment a latency run of bench:tunnel's load
 * generator on a connection of its own. It shows how many round trips V8 needs before each
 * contestant runs at its steady cost, which is what bench:tunnel's latency warm-up
 * (BENCH_RTT_WARMUP) has to cover. A probe, not a benchmark: the machine's load moves single
 * segments, so read the medians over rounds.
 *   npx tsx bench/tunnel/warmup-curve.ts [round trips per segment=4000] [segments=10] [rounds=3]
 * BENCH_MPORT_B (and BENCH_MPORT_B_NODE_FLAGS) add other builds as in bench:tunnel. Needs the
 * built bins (npm run build).
 */
import { LoadGen } from '../harness/load-gen.js'
import { portChild } from '../harness/port-child.js'
import { cpuSeconds, killChild } from '../harness/procs.js'
import { stat, sum } from '../harness/stats.js'
import { mport, mportOthers, tlsForwarder, type Contestant, type Running } from './contestants.js'
import type { LatencyResult, LoadRequest } from './load.js'

const [segment = 4000, segments = 10, rounds = 3] = process.argv.slice(2).map(Number)
const contestants: Contestant[] = [tlsForwarder, mport, ...mportOthers]

const sink = await portChild(new URL('./sink.ts', import.meta.url), [], 'sink')
const load = new LoadGen<LoadRequest>(new URL('./load.ts', import.meta.url))

const tunnelCpu = (run: Running): number => { const { relay, client } = run.pids(); return sum([...relay, ...client].map(cpuSeconds)) }

/** CPU µs per round trip of the tunnel in each segment, from its first round trip on. */
async function curve (run: Running): Promise<number[]> {
  const costs: number[] = []
  for (let seg = 0; seg < segments; seg++) {
    const before = tunnelCpu(run)
    await load.request<LatencyResult>({ op: 'latency', port: run.port, roundTrips: segment, warmup: 0, size: 64, timeoutMs: 90_000 }, 100_000, `segment ${seg + 1}`)
    costs.push((tunnelCpu(run) - before) * 1e6 / segment)
  }
  return costs
}

const results = new Map<string, number[][]>()
try {
  console.log(`CPU µs per 64-byte round trip, segments of ${segment} round trips:`)
  for (let r = 0; r < rounds; r++) {
    for (const c of contestants) {
      const run = await c.start(sink.port)
      try {
        const costs = await curve(run)
        results.set(c.key, [...(results.get(c.key) ?? []), costs])
        console.log(`  ${c.key.padEnd(8)} ${costs.map(x => x.toFixed(0)).join(' ')}`)
      } finally {
        await run.stop()
      }
    }
  }
  console.log('medians over rounds:')
  for (const [key, rows] of results) {
    console.log(`  ${key.padEnd(8)} ${rows[0]!.map((_, i) => stat(rows.map(row => row[i]))!.median.toFixed(0)).join(' ')}`)
  }
} finally {
  await load.stop()
  await killChild(sink.child)
}
