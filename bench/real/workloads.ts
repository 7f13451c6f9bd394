/**
 * The real clients of `npm run bench:real` and how their output is read: redis-benchmark,
 * pgbench, wrk and curl, each pointed at a tunnel's public port on 127.0.0.1. Each returns its
 * figures, or throws with the client's own output when it failed or printed nothing readable.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

async function output (cmd: string, args: string[], timeoutMs: number): Promise<string> {
  try {
    const { stdout, stderr } = await run(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 })
    return `${stdout}\n${stderr}`
  } catch (err) {
    const e = err as { stdout?: string, stderr?: string, message: string }
    throw new Error(`${cmd} failed: ${e.message.split('\n')[0]}\n${(e.stderr ?? '').slice(-2000)}${(e.stdout ?? '').slice(-2000)}`)
  }
}

function number (text: string, re: RegExp, what: string): number {
  const m = re.exec(text)
  const n = m?.[1] !== undefined ? Number(m[1].replaceAll(',', '')) : NaN
  if (!Number.isFinite(n)) throw new Error(`no ${what} in the output:\n${text.slice(-2000)}`)
  return n
}

async function redisBenchmarkOutput (port: number, tests: string, requests: number, clients: number, pipeline: number): Promise<string> {
  return await output('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-t', tests, '-n', String(requests),
    '-c', String(clients), '-P', String(pipeline), '-q', '--csv'], 300_000)
}

export interface RedisFigures { setOps: number, getOps: number }

/** redis-benchmark SET and GET, `clients` connections, `pipeline` commands per round trip. */
export async function redisBenchmark (port: number, requests: number, clients: number, pipeline: number): Promise<RedisFigures> {
  const text = await redisBenchmarkOutput(port, 'set,get', requests, clients, pipeline)
  return {
    setOps: number(text, /^"SET","([\d.]+)"/m, 'SET requests per second'),
    getOps: number(text, /^"GET","([\d.]+)"/m, 'GET requests per second'),
  }
}

/** One redis-benchmark test (`set` or `get`) alone: its requests per second. */
export async function redisTest (port: number, test: 'set' | 'get', requests: number, clients: number, pipeline: number): Promise<number> {
  const text = await redisBenchmarkOutput(port, test, requests, clients, pipeline)
  return number(text, new RegExp(`^"${test.toUpperCase()}","([\\d.]+)"`, 'm'), `${test.toUpperCase()} requests per second`)
}

/** pgbench's TPB-B-like load: transactions per second and mean latency in ms. */
export async function pgbench (port: number, database: string, clients: number, threads: number, seconds: number): Promise<{ tps: number, latencyMs: number }> {
  const text = await output('pgbench', ['-c', String(clients), '-j', String(threads), '-T', String(seconds), '-h', '127.0.0.1',
    '-p', String(port), '-U', 'postgres', database], (seconds + 120) * 1000)
  return {
    tps: number(text, /tps = ([\d.]+)/, 'tps'),
    latencyMs: number(text, /latency average = ([\d.]+) ms/, 'average latency'),
  }
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 }

/** wrk against `/`: requests per second and the p99 latency in ms (from --latency). */
export async function wrk (port: number, threads: number, connections: number, seconds: number): Promise<{ rps: number, p99Ms: number, errors: number }> {
  const text = await output('wrk', [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}/`], (seconds + 60) * 1000)
  const p99 = /^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(text)
  if (p99 === null) throw new Error(`no 99% latency in wrk's output:\n${text.slice(-2000)}`)
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text)
  return {
    rps: number(text, /Requests\/sec:\s+([\d.]+)/, 'Requests/sec'),
    p99Ms: Number(p99[1]) * (UNIT_MS[p99[2] as string] as number),
    errors: (socketErrors === null ? 0 : socketErrors.slice(1).reduce((a, b) => a + Number(b), 0)) + (non2xx === null ? 0 : Number(non2xx[1])),
  }
}

/** curl downloads `/big` to /dev/null: bytes per second, and checks the size arrived whole. */
export async function curlDownload (port: number, bytes: number): Promise<{ bytesPerSecond: number }> {
  const text = await output('curl', ['-sS', '-o', '/dev/null', '-w', 'size=%{size_download} speed=%{speed_download}\\n', `http://127.0.0.1:${port}/big`], 300_000)
  const size = number(text, /size=(\d+)/, 'download size')
  if (size !== bytes) throw new Error(`curl downloaded ${size} bytes of ${bytes}`)
  return { bytesPerSecond: number(text, /speed=([\d.]+)/, 'download speed') }
}
