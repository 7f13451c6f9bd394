/**
 * How a tunnel warms up under pipelined redis traffic: redis-benchmark runs one test (SET by
 * default) in consecutive segments through one fresh tunnel, and each segment reports its rate
 * and the tunnel's CPU per request on the relay side and on the client side. It shows how many
 * requests V8 needs before a JIT-compiled tunnel runs at its steady cost, which is what
 * bench:real's redis warm-up (BENCH_REDIS_WARMUP) has to cover; OpenSSH, compiled ahead of time,
 * is the flat line to compare with. A probe, not a benchmark: read the medians over rounds.
 *   npx tsx bench/real/warmup-curve.ts [requests per segment=100000] [segments=10] [rounds=3]
 * Env: BENCH_ONLY (ssh-R,node-tls,mport), BENCH_REDIS_TEST (set|get), BENCH_REDIS_PIPELINE (16),
 * BENCH_MPORT_B as in bench:real. Needs redis-server, redis-benchmark and the built bins.
 */
import { cpuSeconds } from '../harness/procs.js'
import { interleave } from '../harness/run.js'
import { stat, sum } from '../harness/stats.js'
import { mport, mportOthers, prepareOpenSsh, sshStock, tlsForwarder, type Contestant, type Running } from '../tunnel/contestants.js'
import { startRedis } from './services.js'
import { redisTest } from './workloads.js'

const [segment = 100_000, segments = 10, rounds = 3] = process.argv.slice(2).map(Number)
const test = process.env.BENCH_REDIS_TEST === 'get' ? 'get' : 'set'
const pipeline = Number(process.env.BENCH_REDIS_PIPELINE ?? 16)
const only = process.env.BENCH_ONLY?.split(',')
const sshSkip = prepareOpenSsh(s => { console.log(s) })
const contestants: Contestant[] = [...(sshSkip === undefined ? [sshStock] : []), tlsForwarder, mport, ...mportOthers]
  .filter(c => only === undefined || only.includes(c.key))
if (sshSkip !== undefined) console.log(`skipping ssh-R: ${sshSkip}`)

interface Segment { rate: number, relay: number, client: number }

const cpuOf = (pids: number[]): number => sum(pids.map(cpuSeconds))

/** Each segment's rate and CPU µs per request on either side, from the tunnel's first request on. */
async function curve (run: Running): Promise<Segment[]> {
  const out: Segment[] = []
  for (let seg = 0; seg < segments; seg++) {
    const { relay, client } = run.pids()
    const r0 = cpuOf(relay)
    const c0 = cpuOf(client)
    const rate = await redisTest(run.port, test, segment, 50, pipeline)
    out.push({ rate, relay: (cpuOf(relay) - r0) * 1e6 / segment, client: (cpuOf(client) - c0) * 1e6 / segment })
  }
  return out
}

const show = (s: Segment): string => `${(s.rate / 1000).toFixed(0)}k ${s.relay.toFixed(2)}+${s.client.toFixed(2)}`
const redis = await startRedis()
try {
  console.log(`redis ${test.toUpperCase()} -c 50 -P ${pipeline}, segments of ${segment} requests: kreq/s relay+client CPU µs per request`)
  const results = await interleave(contestants, rounds, async c => {
    const run = await c.start(redis.port)
    try { return await curve(run) } finally { await run.stop() }
  }, segs => segs.map(show).join(' | '))
  console.log('medians over rounds:')
  for (const [key, rows] of results) {
    if (rows.length === 0) continue
    const median = (i: number, f: (s: Segment) => number): number => stat(rows.map(row => f(row[i]!)))!.median
    console.log(`  ${key.padEnd(8)} ${rows[0]!.map((_, i) => show({ rate: median(i, s => s.rate), relay: median(i, s => s.relay), client: median(i, s => s.client) })).join(' | ')}`)
  }
} finally {
  await redis.stop()
}
