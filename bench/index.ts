/**
 * `npm run bench`: the codec micro-benchmarks, then mux throughput against a raw socket and
 * @chainsafe/libp2p-yamux, then one summary table. About 1–2 minutes on a 2-core machine.
 *
 * Env: BENCH_MAX_TIME (seconds of sampling per micro case), BENCH_MB, BENCH_ROUNDS,
 * BENCH_CHUNK_KB, BENCH_ONLY (see stream.bench.ts), BENCH_STRICT=1 (exit 1 when a target is missed).
 */
import os from 'node:os'
import { decoderBench } from './decoder.bench.js'
import { frameBench } from './frame.bench.js'
import { formatMBps, type CaseResult } from './helpers/suite.js'
import { printStreamResult, streamBench } from './stream.bench.js'

const started = Date.now()
console.log(`mport bench: ${os.cpus()[0]?.model ?? 'unknown cpu'} x${os.cpus().length}, node ${process.version}, load ${os.loadavg()[0]!.toFixed(2)}`)

const micro: CaseResult[] = [...await frameBench(), ...await decoderBench()]
const mux = await streamBench().catch((err: unknown) => {
  console.error(err)
  process.exit(1) // a stalled run may leave sockets open
})

console.log('\n==================== summary ====================')
console.log(`${'case'.padEnd(52)} ${'ops/sec'.padStart(14)} ${'throughput'.padStart(12)}`)
for (const r of micro) {
  const hz = r.hz >= 100 ? Math.round(r.hz).toLocaleString('en-US') : r.hz.toFixed(2)
  console.log(`${r.name.padEnd(52)} ${hz.padStart(14)} ${(r.mbps === undefined ? '' : formatMBps(r.mbps)).padStart(12)}`)
}
printStreamResult(mux)
console.log(`\ntotal ${((Date.now() - started) / 1000).toFixed(0)} s`)
if (process.env.BENCH_STRICT === '1' && mux.targets.some(t => !t.met)) process.exitCode = 1
