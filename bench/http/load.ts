/**
 * The load generator of the HTTP bench: its own process, driven over IPC by bench/http/index.ts
 * (one request `{id, ...HttpLoadRequest}`, one reply `{id, result}` or `{id, error}`).
 *
 * `conns` keep-alive connections, each sending GETs one after the other (the next as soon as the
 * previous response is complete), for `warmupMs` and then `seconds`. Only responses completed
 * inside the measured window count towards req/s and the latency percentiles. Requests are
 * written by hand and responses parsed minimally (status line, Content-Length, body length
 * checked) so the generator costs little and the same for every contestant. A failed request
 * (bad status, wrong length, closed connection, timeout) is counted and its connection replaced.
 */
import type net from 'node:net'
import { connect } from '../harness/connect.js'
import { serveLoad } from '../harness/load-gen.js'

export interface HttpLoadRequest {
  port: number
  host: string
  path: string
  conns: number
  warmupMs: number
  seconds: number
  /** Body length every response must have. */
  bodyBytes: number
  /** Per request. */
  timeoutMs: number
}

export interface HttpLoadResult {
  conns: number
  /** Completed inside the measured window. */
  requests: number
  /** Every completed request, warm-up included (for CPU per request). */
  totalRequests: number
  failures: number
  /** Connections opened beyond the first `conns` (after failures or server closes). */
  reconnects: number
  seconds: number
  rps: number
  p50us: number
  p99us: number
  meanUs: number
  maxUs: number
  firstError?: string
}

const MAX_SAMPLES = 5_000_000
const MAX_RECONNECTS = 1000
const MAX_HEAD = 16 * 1024

class Stop extends Error {}


async function run (r: HttpLoadRequest): Promise<HttpLoadResult> {
  const request = Buffer.from(`GET ${r.path} HTTP/1.1\r\nHost: ${r.host}\r\nUser-Agent: mport-bench\r\nAccept: */*\r\n\r\n`)
  const start = Date.now()
  const measureFrom = process.hrtime.bigint() + BigInt(Math.round(r.warmupMs * 1e6))
  const measureTo = measureFrom + BigInt(Math.round(r.seconds * 1e9))
  const stopAt = start + r.warmupMs + r.seconds * 1000
  const samples: number[] = []
  let requests = 0
  let totalRequests = 0
  let failures = 0
  let reconnects = 0
  let firstError: string | undefined
  const fail = (msg: string): void => { failures++; firstError ??= msg }

  /** Sequential GETs on one connection until the window closes; resolves when the last is done. */
  const oneConnection = (s: net.Socket): Promise<void> => new Promise<void>((resolve, reject) => {
    let buf: Buffer | undefined
    let t0 = 0n
    let timer: NodeJS.Timeout | undefined
    const finish = (err?: Error): void => {
      clearTimeout(timer)
      s.removeAllListeners('data')
      s.removeAllListeners('close')
      s.destroy()
      if (err === undefined) resolve()
      else reject(err)
    }
    const send = (): void => {
      if (Date.now() >= stopAt) { finish(); return }
      buf = undefined
      t0 = process.hrtime.bigint()
      clearTimeout(timer)
      timer = setTimeout(() => finish(new Error(`no complete response within ${r.timeoutMs} ms`)), r.timeoutMs)
      s.write(request)
    }
    s.on('data', (d: Buffer) => {
      buf = buf === undefined ? d : Buffer.concat([buf, d])
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) {
        if (buf.length > MAX_HEAD) finish(new Error('response head too large'))
        return
      }
      const head = buf.toString('latin1', 0, end)
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]
      const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head)?.[1]
      if (length === undefined) { finish(new Error(`response without Content-Length: ${head.split('\r\n')[0] ?? ''}`)); return }
      const total = end + 4 + Number(length)
      if (buf.length < total) return
      if (buf.length > total) { finish(new Error(`${buf.length - total} bytes after the response`)); return }
      if (status !== '200') { finish(new Error(`status ${status ?? '?'}: ${head.split('\r\n')[0] ?? ''}`)); return }
      if (Number(length) !== r.bodyBytes) { finish(new Error(`body of ${length} bytes, expected ${r.bodyBytes}`)); return }
      const t1 = process.hrtime.bigint()
      totalRequests++
      if (t1 >= measureFrom && t1 <= measureTo) {
        requests++
        if (samples.length < MAX_SAMPLES) samples.push(Number(t1 - t0) / 1e3)
      }
      if (/\r\nconnection:[ \t]*close/i.test(head)) { finish(new Stop('server closed the connection')); return }
      send()
    })
    s.on('close', () => finish(new Error('connection closed by the peer')))
    s.on('error', () => {}) // 'close' follows
    send()
  })

  const worker = async (): Promise<void> => {
    // Bounded: by the clock, and by a reconnect cap shared by all workers.
    for (let k = 0; Date.now() < stopAt && k <= MAX_RECONNECTS; k++) {
      if (k > 0) {
        if (reconnects >= MAX_RECONNECTS) return
        reconnects++
      }
      try {
        await oneConnection(await connect(r.port, r.timeoutMs))
      } catch (err) {
        if (err instanceof Stop) continue // a clean close after a full response: reconnect, no failure
        fail((err as Error).message)
      }
    }
  }
  await Promise.all(Array.from({ length: r.conns }, worker))

  const sorted = Float64Array.from(samples).sort()
  const q = (p: number): number => sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number
  let sum = 0
  for (const x of sorted) sum += x
  const seconds = Number(measureTo - measureFrom) / 1e9
  return {
    conns: r.conns,
    requests,
    totalRequests,
    failures,
    reconnects,
    seconds,
    rps: requests / seconds,
    p50us: q(0.5),
    p99us: q(0.99),
    meanUs: sorted.length === 0 ? NaN : sum / sorted.length,
    maxUs: sorted.length === 0 ? NaN : sorted[sorted.length - 1] as number,
    ...(firstError === undefined ? {} : { firstError }),
  }
}

serveLoad<HttpLoadRequest>(run)
