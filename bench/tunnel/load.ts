/**
 * The load generator: a separate process from every tunnel process, driven over IPC by
 * bench/tunnel/index.ts. Each request `{id, op, ...}` gets one reply `{id, result}` or
 * `{id, error}`. Every wait is bounded; every socket has TCP_NODELAY.
 */
import type net from 'node:net'
import { connect } from '../harness/connect.js'
import { serveLoad } from '../harness/load-gen.js'

export type LoadRequest =
  | { op: 'bulk', port: number, bytes: number, conns: number, timeoutMs: number }
  | { op: 'latency', port: number, roundTrips: number, warmup: number, size: number, timeoutMs: number }
  | { op: 'connrate', port: number, seconds: number, inFlight: number, timeoutMs: number }
  | { op: 'idleOpen', port: number, count: number, concurrency: number, timeoutMs: number, deadlineMs: number }
  | { op: 'idleClose', timeoutMs: number }

export interface BulkResult { bytes: number, seconds: number, mbps: number }
export interface LatencyResult { roundTrips: number, p50us: number, p99us: number, meanUs: number }
export interface ConnRateResult { connections: number, failures: number, seconds: number, perSecond: number, firstError?: string }
export interface IdleResult { open: number, failures: number, seconds: number, firstError?: string }

const CHUNK = Buffer.alloc(64 * 1024, 0x61)


/** Reads exactly `n` bytes (resolving with them) within `timeoutMs`. */
function readExactly (s: net.Socket, n: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    let got = 0
    const done = (err?: Error): void => {
      clearTimeout(timer)
      s.off('data', onData)
      s.off('error', done)
      s.off('end', onEnd)
      s.pause()
      if (err !== undefined) reject(err)
      else resolve(parts.length === 1 ? parts[0] as Buffer : Buffer.concat(parts))
    }
    const onData = (d: Buffer): void => {
      parts.push(d)
      got += d.length
      if (got >= n) done()
    }
    const onEnd = (): void => done(new Error(`connection ended after ${got} of ${n} bytes`))
    const timer = setTimeout(() => done(new Error(`no answer within ${timeoutMs} ms (${got} of ${n} bytes)`)), timeoutMs)
    s.on('data', onData)
    s.once('error', done)
    s.once('end', onEnd)
    s.resume()
  })
}

async function bulkOne (port: number, bytes: number, timeoutMs: number): Promise<void> {
  const s = await connect(port, timeoutMs)
  try {
    s.on('error', () => {})
    const ack = readExactly(s, 1, timeoutMs)
    const head = Buffer.alloc(9)
    head[0] = 0x44 // 'D'
    head.writeBigUInt64BE(BigInt(bytes), 1)
    s.write(head)
    let left = bytes
    const deadline = Date.now() + timeoutMs
    while (left > 0) {
      const n = Math.min(left, CHUNK.length)
      left -= n
      if (!s.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error('bulk: no drain in time')), Math.max(1, deadline - Date.now()))
          s.once('drain', () => { clearTimeout(t); resolve() })
        })
      }
    }
    await ack
  } finally {
    s.destroy()
  }
}

async function bulk (r: Extract<LoadRequest, { op: 'bulk' }>): Promise<BulkResult> {
  const per = Math.floor(r.bytes / r.conns)
  const t0 = process.hrtime.bigint()
  await Promise.all(Array.from({ length: r.conns }, () => bulkOne(r.port, per, r.timeoutMs)))
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const total = per * r.conns
  return { bytes: total, seconds, mbps: total / 1e6 / seconds }
}

async function latency (r: Extract<LoadRequest, { op: 'latency' }>): Promise<LatencyResult> {
  const s = await connect(r.port, r.timeoutMs)
  s.on('error', () => {})
  try {
    s.write('E')
    const msg = Buffer.alloc(r.size, 0x62)
    const samples = new Float64Array(r.roundTrips)
    const deadline = Date.now() + r.timeoutMs
    // One 'data' listener for the whole run: no per-round-trip promise or listener churn in the generator.
    await new Promise<void>((resolve, reject) => {
      let i = 0
      let got = 0
      let t0 = process.hrtime.bigint()
      const send = (): void => { t0 = process.hrtime.bigint(); got = 0; s.write(msg) }
      s.on('data', (d: Buffer) => {
        got += d.length
        if (got < r.size) return
        if (got > r.size) { reject(new Error(`echo returned ${got} bytes for ${r.size}`)); return }
        const dt = Number(process.hrtime.bigint() - t0) / 1e3
        if (i >= r.warmup) samples[i - r.warmup] = dt
        i++
        if (i >= r.warmup + r.roundTrips) { resolve(); return }
        if ((i & 1023) === 0 && Date.now() > deadline) { reject(new Error(`latency: only ${i} round trips in ${r.timeoutMs} ms`)); return }
        send()
      })
      s.once('end', () => reject(new Error(`connection ended after ${i} round trips`)))
      s.once('error', reject)
      send()
    })
    samples.sort()
    const q = (p: number): number => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))] as number
    let total = 0
    for (const x of samples) total += x
    return { roundTrips: r.roundTrips, p50us: q(0.5), p99us: q(0.99), meanUs: total / samples.length }
  } finally {
    s.destroy()
  }
}

/** Connect, one 32-byte echo, close (end and wait for the peer's close), `inFlight` at a time. */
async function connrate (r: Extract<LoadRequest, { op: 'connrate' }>): Promise<ConnRateResult> {
  const msg = Buffer.alloc(32, 0x63)
  const start = Date.now()
  const stopAt = start + r.seconds * 1000
  let connections = 0
  let failures = 0
  let firstError: string | undefined
  const one = async (): Promise<void> => {
    const s = await connect(r.port, r.timeoutMs)
    s.on('error', () => {})
    try {
      const back = readExactly(s, msg.length, r.timeoutMs)
      s.write('E')
      s.write(msg)
      await back
      const closed = new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('close not answered in time')), r.timeoutMs)
        s.once('close', () => { clearTimeout(t); resolve() })
      })
      s.resume() // read to the peer's FIN
      s.end()
      await closed
    } finally {
      s.destroy()
    }
  }
  const worker = async (): Promise<void> => {
    // Bounded: by time, and by a cap far above any rate this machine can reach.
    for (let k = 0; k < 1_000_000 && Date.now() < stopAt; k++) {
      try {
        await one()
        connections++
      } catch (err) {
        failures++
        firstError ??= (err as Error).message
      }
    }
  }
  await Promise.all(Array.from({ length: r.inFlight }, worker))
  const seconds = (Date.now() - start) / 1000
  return { connections, failures, seconds, perSecond: connections / seconds, ...(firstError === undefined ? {} : { firstError }) }
}

let idle: net.Socket[] = []

async function idleOpen (r: Extract<LoadRequest, { op: 'idleOpen' }>): Promise<IdleResult> {
  const start = Date.now()
  let next = 0
  let failures = 0
  let firstError: string | undefined
  const msg = Buffer.alloc(16, 0x64)
  const exchanged = new Set<net.Socket>()
  const worker = async (): Promise<void> => {
    while (next < r.count && Date.now() < start + r.deadlineMs) {
      next++
      try {
        const s = await connect(r.port, r.timeoutMs)
        s.on('error', () => {})
        idle.push(s)
        const back = readExactly(s, msg.length, r.timeoutMs)
        s.write('E')
        s.write(msg)
        await back
        exchanged.add(s)
      } catch (err) {
        failures++
        firstError ??= (err as Error).message
      }
    }
  }
  await Promise.all(Array.from({ length: r.concurrency }, worker))
  const open = idle.filter(s => exchanged.has(s) && !s.destroyed && s.readyState === 'open').length
  return { open, failures, seconds: (Date.now() - start) / 1000, ...(firstError === undefined ? {} : { firstError }) }
}

async function idleClose (r: Extract<LoadRequest, { op: 'idleClose' }>): Promise<{ closed: number }> {
  const all = idle
  idle = []
  const deadline = Date.now() + r.timeoutMs
  await Promise.all(all.map(s => new Promise<void>(resolve => {
    if (s.destroyed) { resolve(); return }
    s.once('close', () => resolve())
    s.resume()
    s.end()
    setTimeout(() => { s.destroy(); resolve() }, Math.max(1, deadline - Date.now())).unref()
  })))
  return { closed: all.length }
}

async function handle (r: LoadRequest): Promise<unknown> {
  switch (r.op) {
    case 'bulk': return await bulk(r)
    case 'latency': return await latency(r)
    case 'connrate': return await connrate(r)
    case 'idleOpen': return await idleOpen(r)
    case 'idleClose': return await idleClose(r)
  }
}

serveLoad<LoadRequest>(handle)
