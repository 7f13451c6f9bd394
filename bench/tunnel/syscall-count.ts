/**
 * Counts the syscalls mport's relay and client make per request (strace -c on both processes)
 * under redis-benchmark (-c 50, pipelined or not) or wrk (-c 50 against a small nginx page), to
 * see how many socket writes a message costs. A probe, not a benchmark: strace slows the
 * processes down, so compare counts, never rates.
 *   npx tsx bench/tunnel/syscall-count.ts redis [pipeline=16] [requests=50000]
 *   npx tsx bench/tunnel/syscall-count.ts wrk [seconds=5]
 * BENCH_MPORT_B=<built checkout> probes that checkout's build instead. Needs strace, and
 * redis-server and redis-benchmark, or nginx and wrk.
 */
import { spawn, execFileSync } from 'node:child_process'
import { readFileSync, mkdtempSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { startMport } from '../harness/mport.js'
import { startNginx, startRedis, type Service } from '../real/services.js'

const [workload = 'redis', a1, a2] = process.argv.slice(2)
const root = process.env.BENCH_MPORT_B === undefined ? undefined : path.resolve(process.env.BENCH_MPORT_B)

interface Probe { service: Service, label: string, run: (port: number) => number }

function redisProbe (service: Service): Probe {
  const pipeline = Number(a1 ?? 16)
  const requests = Number(a2 ?? 50_000)
  return {
    service,
    label: `redis-benchmark SET -c 50 -P ${pipeline}`,
    run: port => {
      execFileSync('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-n', String(requests), '-c', '50', '-P', String(pipeline), '-t', 'set', '-q'], { stdio: 'ignore' })
      return requests
    },
  }
}

function wrkProbe (service: Service): Probe {
  const seconds = Number(a1 ?? 5)
  return {
    service,
    label: `wrk -t2 -c50 -d${seconds}s`,
    run: port => {
      const out = execFileSync('wrk', ['-t2', '-c50', `-d${seconds}s`, `http://127.0.0.1:${port}/`], { encoding: 'utf8' })
      const m = /(\d+) requests in/.exec(out)
      if (m === null) throw new Error(`no request count in wrk's output:\n${out}`)
      return Number(m[1])
    },
  }
}

const probe = workload === 'wrk' ? wrkProbe(await startNginx(1024)) : redisProbe(await startRedis())
const m = await startMport([], [String(probe.service.port)], root)
const port = m.tunnel.remotePort
if (port === undefined) throw new Error('the client\'s tunnel event has no remotePort')
probe.run(port) // warm-up, not traced
const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-strace-'))
const traces = [{ name: 'relay', pid: m.relay.pid }, { name: 'client', pid: m.client.pid }].map(({ name, pid }) => {
  const out = path.join(dir, `${name}.txt`)
  return { name, out, proc: spawn('strace', ['-c', '-f', '-o', out, '-p', String(pid)], { stdio: 'ignore' }) }
})
await new Promise(resolve => setTimeout(resolve, 1000))
const requests = probe.run(port)
for (const t of traces) t.proc.kill('SIGINT')
await Promise.all(traces.map(t => new Promise(resolve => t.proc.once('exit', resolve))))
console.log(`${probe.label}: ${requests} requests through mport${root === undefined ? '' : ` from ${root}`}`)
for (const t of traces) {
  const rows = readFileSync(t.out, 'utf8').split('\n').filter(l => /\b(write|writev|read|readv|epoll_wait|epoll_pwait)\s*$/.test(l))
  const calls = rows.map(r => { const f = r.trim().split(/\s+/); return { name: f[f.length - 1] ?? '?', calls: Number(f[3]) } })
  console.log(`  ${t.name}: ${calls.map(c => `${c.name} ${(c.calls / requests).toFixed(3)}`).join(', ')} per request`)
}
await m.stop()
await probe.service.stop()
