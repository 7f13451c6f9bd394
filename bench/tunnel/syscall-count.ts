/**
 * Counts the syscalls mport's relay and client make per message under redis-benchmark
 * (strace -c on both processes), to see how many socket writes and TLS records a message costs.
 * Usage: npx tsx bench/tunnel/syscall-count.ts [pipeline=16] [requests=50000]. Needs strace,
 * redis-server and redis-benchmark. A probe, not a benchmark: strace slows the processes down.
 */
import { spawn, execFileSync } from 'node:child_process'
import { readFileSync, mkdtempSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { startMport } from '../harness/mport.js'
import { startRedis } from '../real/services.js'

const pipeline = Number(process.argv[2] ?? 16)
const requests = Number(process.argv[3] ?? 50_000)
const root = process.env.BENCH_MPORT_B
const redis = await startRedis()
const m = await startMport([], [String(redis.port)], root === undefined ? undefined : path.resolve(root))
const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-strace-'))
const traces = [['relay', m.relay.pid], ['client', m.client.pid]].map(([name, pid]) => {
  const out = path.join(dir, `${String(name)}.txt`)
  return { name, out, proc: spawn('strace', ['-c', '-f', '-o', out, '-p', String(pid)], { stdio: 'ignore' }) }
})
await new Promise(resolve => setTimeout(resolve, 1000))
execFileSync('redis-benchmark', ['-h', '127.0.0.1', '-p', String(m.tunnel.remotePort), '-n', String(requests), '-c', '50', '-P', String(pipeline), '-t', 'set', '-q'], { stdio: 'inherit' })
for (const t of traces) t.proc.kill('SIGINT')
await new Promise(resolve => setTimeout(resolve, 1000))
for (const t of traces) {
  const text = readFileSync(t.out, 'utf8')
  const rows = text.split('\n').filter(l => /\b(write|writev|read|epoll_wait|sendmsg|recvfrom|futex)\s*$/.test(l))
  console.log(`${String(t.name)} (per request: ${requests} requests, pipeline ${pipeline})`)
  for (const r of rows) {
    const f = r.trim().split(/\s+/)
    const calls = Number(f[3]); const name = f[f.length - 1] ?? '?'
    console.log(`  ${name.padEnd(12)} ${String(calls).padStart(9)} calls  ${(calls / requests).toFixed(3)}/request`)
  }
}
await m.stop()
await redis.stop()
