/**
 * `npm run bench:cluster`: what scaling out costs and gives, on loopback (issue 20).
 *
 * 1. The extra hop: two relay nodes (A binds 127.0.0.1, B binds ::1) on one PostgreSQL and one
 *    Redis; a client on A with an echo tunnel and a source tunnel. Round trips of 64 bytes and a
 *    bulk download, through A's port (direct) and through B's port (B forwards to A over its link).
 * 2. Workers: one relay with `--workers 1`, then `--workers 2`; an http tunnel; new connections
 *    per second (one GET per connection, several at once) and a bulk download through the shared
 *    HTTP port.
 *
 * Bounded loops, fixed counts; the figures are printed as a markdown table. Knobs (env):
 * BENCH_RTT_N (2000), BENCH_BULK_MIB (256), BENCH_CONNS (3000), BENCH_CONCURRENCY (16), BENCH_ROUNDS (3).
 */
import http from 'node:http'
import net from 'node:net'
import type { Writable } from 'node:stream'
import { Client } from '../../src/index.js'
import { startClusterBackends, startClusterRelay, type ClusterBackends } from '../../test/helpers/cluster.js'
import type { BinProcess } from '../../test/helpers/spawn.js'
import { certFingerprint } from '../../test/helpers/tunnel.js'
import { waitFor } from '../../test/helpers/wait.js'

const env = (k: string, d: number): number => Number(process.env[k] ?? d)
const RTT_N = env('BENCH_RTT_N', 2000)
const BULK = env('BENCH_BULK_MIB', 256) * 1024 * 1024
const CONNS = env('BENCH_CONNS', 3000)
const CONCURRENCY = env('BENCH_CONCURRENCY', 16)
const ROUNDS = env('BENCH_ROUNDS', 3)
const CHUNK = Buffer.alloc(64 * 1024, 7)

const rows: string[] = []
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const report = (what: string, unit: string, xs: number[], digits = 1): void => {
  const line = `| ${what} | ${median(xs).toFixed(digits)} ${unit} | ${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)} |`
  rows.push(line)
  console.log(line)
}

async function main (): Promise<void> {
  const backends = await startClusterBackends('bench')
  const procs: BinProcess[] = []
  const closers: Array<() => Promise<void>> = []
  try {
    const echo = net.createServer(s => s.pipe(s))
    const source = net.createServer(s => sendBulk(s))
    const web = http.createServer((req, res) => req.url === '/bulk' ? sendBulk(res) : res.end('ok'))
    for (const s of [echo, source, web]) await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
    closers.push(async () => { for (const s of [echo, source, web]) s.close() })
    const portOf = (s: net.Server): number => (s.address() as net.AddressInfo).port

    // ---- 1. The extra hop ----
    const a = startClusterRelay(backends, 'bench-a', { domain: 'bench.test' })
    const b = startClusterRelay(backends, 'bench-b', { bindHost: '::1', domain: 'bench.test' })
    procs.push(a, b)
    const aPort = (await a.waitEvent('listening')).port as number
    await b.waitEvent('listening')
    const client = attach(backends, aPort, [
      { name: 'echo', localHost: '127.0.0.1', localPort: portOf(echo), remotePort: 0 },
      { name: 'source', localHost: '127.0.0.1', localPort: portOf(source), remotePort: 0 },
    ])
    closers.push(() => client.close())
    const [e, s] = await client.start()
    await waitFor(async () => await rtt('::1', e!.remotePort!, 1).then(() => true, () => false), { what: 'node B forwarding the echo port', timeoutMs: 30_000 })
    await waitFor(async () => await download(() => net.connect({ host: '::1', port: s!.remotePort! })).then(() => true, () => false), { what: 'node B forwarding the source port', timeoutMs: 30_000 })
    for (const [label, host] of [['direct (node A)', '127.0.0.1'], ['via node B → A', '::1']] as const) {
      const us: number[] = []
      const mbs: number[] = []
      for (let r = 0; r < ROUNDS; r++) {
        us.push(await rtt(host, e!.remotePort!, RTT_N))
        mbs.push(await download(() => net.connect({ host, port: s!.remotePort! })))
      }
      report(`tcp round trip, 64 B, ${label}`, 'µs', us)
      report(`tcp bulk ${BULK / 1024 / 1024} MiB, ${label}`, 'MB/s', mbs)
    }
    await client.close()
    for (const p of procs.splice(0)) await p.kill()

    // ---- 2. Workers ----
    for (const workers of [1, 2]) {
      const relay = startClusterRelay(backends, `bench-w${workers}x`, { domain: 'bench.test', extra: ['--workers', String(workers)] })
      procs.push(relay)
      await waitFor(() => relay.jsonLines().filter(o => o.event === 'listening').length === workers, { what: `${workers} workers listening`, timeoutMs: 120_000 })
      const ev = relay.jsonLines().find(o => o.event === 'listening')!
      const c = attach(backends, ev.port as number, [{ name: 'web', kind: 'http', localHost: '127.0.0.1', localPort: portOf(web), remotePort: 0, subdomain: `orchard${workers}` }])
      await c.start()
      const httpPort = ev.httpPort as number
      const host = `orchard${workers}.bench.test`
      await waitFor(async () => await get(httpPort, host, '/').then(x => x === 'ok', () => false), { what: 'the name on every worker', timeoutMs: 30_000 })
      const cps: number[] = []
      const mbs: number[] = []
      for (let r = 0; r < ROUNDS; r++) {
        cps.push(await connectionsPerSecond(httpPort, host))
        mbs.push(await download(() => net.connect({ host: '127.0.0.1', port: httpPort }), `GET /bulk HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`))
      }
      report(`http, new connection per GET (${CONCURRENCY} at once), ${workers} worker${workers === 1 ? '' : 's'}`, 'conn/s', cps, 0)
      report(`http bulk ${BULK / 1024 / 1024} MiB, ${workers} worker${workers === 1 ? '' : 's'}`, 'MB/s', mbs)
      await c.close()
      await relay.kill()
      procs.splice(procs.indexOf(relay), 1)
    }
    console.log(['', '| case | median | min–max |', '|---|---|---|', ...rows].join('\n'))
  } finally {
    for (const p of procs) await p.kill()
    for (const c of closers) await c().catch(() => {})
    await backends.stop()
  }
}

function attach (b: ClusterBackends, port: number, tunnels: ConstructorParameters<typeof Client>[0]['tunnels']): Client {
  const c = new Client({ relay: `127.0.0.1:${port}`, token: b.token, fingerprint: certFingerprint, tunnels })
  c.on('error', () => {})
  return c
}

/** Writes BULK bytes with backpressure, then ends. */
function sendBulk (out: Writable): void {
  let left = BULK
  const pump = (): void => {
    while (left > 0) {
      left -= CHUNK.length
      if (!out.write(CHUNK)) { out.once('drain', pump); return }
    }
    out.end()
  }
  out.on('error', () => {})
  pump()
}

/** Mean microseconds per 64-byte round trip over one connection, `n` in a row. */
async function rtt (host: string, port: number, n: number): Promise<number> {
  const s = net.connect({ host, port, noDelay: true })
  await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
  const msg = Buffer.alloc(64, 1)
  let failed: Error | undefined
  s.on('error', err => { failed = err })
  const start = process.hrtime.bigint()
  for (let i = 0; i < n && failed === undefined; i++) {
    await new Promise<void>(resolve => {
      let got = 0
      const onData = (c: Buffer): void => { got += c.length; if (got >= msg.length) { s.off('data', onData); s.off('close', onClose); resolve() } }
      const onClose = (): void => { failed ??= new Error('connection closed mid-run'); resolve() }
      s.on('data', onData)
      s.once('close', onClose)
      s.write(msg)
    })
  }
  if (failed !== undefined) { s.destroy(); throw failed }
  const us = Number(process.hrtime.bigint() - start) / 1000 / n
  s.destroy()
  return us
}

/** MB/s (10^6 bytes) of one download until the other side ends. */
async function download (connect: () => net.Socket, request?: string): Promise<number> {
  const s = connect()
  const start = process.hrtime.bigint()
  let bytes = 0
  await new Promise<void>((resolve, reject) => {
    s.on('data', (c: Buffer) => { bytes += c.length })
    s.once('end', resolve)
    s.once('error', reject)
    if (request !== undefined) s.write(request)
  })
  s.destroy()
  if (bytes < BULK) throw new Error(`download ended after ${bytes} of ${BULK} bytes`)
  return bytes / 1e6 / (Number(process.hrtime.bigint() - start) / 1e9)
}

/** New connections per second: CONNS GETs, each on its own connection, CONCURRENCY at once. */
async function connectionsPerSecond (port: number, host: string): Promise<number> {
  let next = 0
  const start = process.hrtime.bigint()
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < CONNS) {
      next++
      const body = await get(port, host, '/')
      if (body !== 'ok') throw new Error(`unexpected answer: ${body.slice(0, 80)}`)
    }
  }))
  return CONNS / (Number(process.hrtime.bigint() - start) / 1e9)
}

function get (port: number, host: string, urlPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: urlPath, headers: { host }, agent: false }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => { body += c }).on('end', () => resolve(body))
    }).on('error', reject)
  })
}

await main()
process.exit(0)
