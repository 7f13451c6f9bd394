/**
 * Concurrent connection setup with a server that speaks first: a real OpenSSH server on
 * loopback, 100 rounds of 10 parallel logins through a tunnel, and the same rounds straight to
 * sshd as a control (alternating, so both see the same machine load), so that a lost login can
 * be put down to mport or not. SSH is a good probe: the server's banner travels local → visitor
 * while the visitor's own banner is still on its way, on every one of hundreds of fresh streams.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { listen } from '../helpers/ports.js'
import { type SshResult, type SshServer, findSshd, sshdTestOptions, startSshd } from '../helpers/sshd.js'
import { makeClient, startRelay, tcpSpec } from '../helpers/tunnel.js'
import { withTimeout } from '../helpers/wait.js'
import type { Client } from '../../src/index.js'

const ROUNDS = 100
const PARALLEL = 10
/** The rounds (both paths) must end within this (about 60-85 s alone on 2 shared cores); the file may take 240 s. */
const BUDGET_MS = 170_000
const LOGIN_TIMEOUT_MS = 20_000

t.setTimeout(240_000)

t.test('without OpenSSH the test skips locally and fails under CI', async t => {
  t.match(sshdTestOptions({}, '/nonexistent/sshd'), { skip: /OpenSSH is not installed.*\/nonexistent\/sshd/ })
  t.same(sshdTestOptions({ CI: 'true' }, '/nonexistent/sshd'), {}, 'under CI the test runs, and fails in startSshd()')
  t.match(findSshd('/nonexistent/sshd'), { missing: /apt-get install -y openssh-server openssh-client/ })
})

interface PathStats { name: string, lost: Array<{ round: number, result: SshResult }>, roundMs: number[], loginMs: number[] }

const newStats = (name: string): PathStats => ({ name, lost: [], roundMs: [], loginMs: [] })

function pct (sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
}

function summary (s: PathStats): string {
  const rounds = [...s.roundMs].sort((a, b) => a - b)
  const logins = [...s.loginMs].sort((a, b) => a - b)
  const total = s.roundMs.reduce((a, b) => a + b, 0)
  return `${s.name}: ${s.loginMs.length} logins in ${s.roundMs.length} rounds, ${s.lost.length} lost; ` +
    `rounds ${(total / 1000).toFixed(1)} s in all, per round min ${rounds[0] ?? 0} / median ${pct(rounds, 0.5)} / p95 ${pct(rounds, 0.95)} / max ${rounds.at(-1) ?? 0} ms; ` +
    `per login median ${pct(logins, 0.5)} / p99 ${pct(logins, 0.99)} / max ${logins.at(-1) ?? 0} ms`
}

function describeLost (s: PathStats): string {
  return s.lost.slice(0, 10).map(({ round, result: r }) =>
    `round ${round}: exit ${r.code ?? r.signal} after ${r.ms} ms, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr.trim())}`).join('\n')
}

/** A throwaway sshd, and a relay and client exposing it; all stopped in teardown. */
async function sshdBehindTunnel (t: Test, config?: string[]): Promise<{ sshd: SshServer, client: Client, publicPort: number }> {
  const sshd = await startSshd({ config })
  t.teardown(() => sshd.stop())
  const relay = await startRelay()
  t.teardown(() => relay.close(100))
  const client = makeClient(relay, [tcpSpec(sshd.port)])
  t.teardown(() => client.close())
  const [status] = await client.start()
  return { sshd, client, publicPort: status!.remotePort! }
}

t.test(`${ROUNDS} rounds of ${PARALLEL} parallel SSH logins through a tunnel, and straight to sshd`, sshdTestOptions(), async t => {
  const { sshd, client, publicPort } = await sshdBehindTunnel(t)
  t.comment(`${sshd.version}; sshd on 127.0.0.1:${sshd.port}, tunnel at 127.0.0.1:${publicPort}`)

  // One login each way first: a setup problem fails here, with its stderr, not as 2000 losses.
  for (const [name, port] of [['direct', sshd.port], ['tunnel', publicPort]] as const) {
    const r = await sshd.login(port)
    t.ok(r.ok, `a first login ${name} works`, { stderr: r.stderr, code: r.code, sshdLog: r.ok ? undefined : sshd.log().slice(-2000) })
    if (!r.ok) return
  }

  const direct = newStats('direct')
  const tunnel = newStats('tunnel')
  const round = async (s: PathStats, port: number, i: number): Promise<void> => {
    const started = Date.now()
    const results = await Promise.all(Array.from({ length: PARALLEL }, () => sshd.login(port, { timeoutMs: LOGIN_TIMEOUT_MS })))
    s.roundMs.push(Date.now() - started)
    for (const r of results) {
      s.loginMs.push(r.ms)
      if (!r.ok) s.lost.push({ round: i, result: r })
    }
  }
  const started = Date.now()
  let i = 0
  for (; i < ROUNDS && Date.now() - started < BUDGET_MS; i++) {
    // Alternating, and which goes first alternates too: neither path always follows the other.
    if (i % 2 === 0) { await round(direct, sshd.port, i); await round(tunnel, publicPort, i) } else { await round(tunnel, publicPort, i); await round(direct, sshd.port, i) }
  }
  const totalMs = Date.now() - started
  t.comment(`${i} rounds each way in ${(totalMs / 1000).toFixed(1)} s`)
  t.comment(summary(direct))
  t.comment(summary(tunnel))
  if (direct.lost.length > 0) t.comment(`lost directly:\n${describeLost(direct)}`)
  if (tunnel.lost.length > 0) t.comment(`lost through the tunnel:\n${describeLost(tunnel)}`)

  t.equal(i, ROUNDS, `all ${ROUNDS} rounds ran within the ${BUDGET_MS / 1000} s budget`)
  t.equal(direct.lost.length, 0, 'no login straight to sshd is lost (the control)', { lost: describeLost(direct), sshdLog: direct.lost.length > 0 ? sshd.log().slice(-4000) : undefined })
  t.equal(tunnel.lost.length, 0, 'no login through the tunnel is lost', { lost: describeLost(tunnel), sshdLog: tunnel.lost.length > 0 ? sshd.log().slice(-4000) : undefined })
  t.equal(client.tunnels[0]!.totalConnections, ROUNDS * PARALLEL + 1, 'the client dialed sshd once per tunnelled login')
})

t.test('the count sees a login sshd refuses, on both paths, with ssh\'s own message', sshdTestOptions(), async t => {
  // MaxStartups 1:100:100 refuses every connection while another is before authentication:
  // what the default 10:30:100 does at random beyond 10, forced. A lost login must show up.
  const { sshd, publicPort } = await sshdBehindTunnel(t, ['MaxStartups 1:100:100'])
  const lost: Record<'direct' | 'tunnel', SshResult[]> = { direct: [], tunnel: [] }
  for (let i = 0; i < 10 && (lost.direct.length === 0 || lost.tunnel.length === 0); i++) {
    for (const [name, port] of [['direct', sshd.port], ['tunnel', publicPort]] as const) {
      const results = await Promise.all(Array.from({ length: PARALLEL }, () => sshd.login(port, { timeoutMs: LOGIN_TIMEOUT_MS })))
      lost[name].push(...results.filter(r => !r.ok))
    }
  }
  t.ok(lost.direct.length > 0, `refused directly: ${lost.direct.length}`)
  t.ok(lost.tunnel.length > 0, `refused through the tunnel: ${lost.tunnel.length}`)
  for (const [name, results] of Object.entries(lost)) {
    t.ok(results.every(r => r.code === 255 && /kex_exchange_identification/.test(r.stderr)), `${name}: each refusal is ssh's "kex_exchange_identification" (exit 255)`,
      { stderr: results.map(r => r.stderr.trim()) })
  }
})

t.test('a server that speaks first, 10 rounds of 200 parallel connections: every byte both ways', async t => {
  // What an SSH login does at the start, without sshd's cost: the service sends its banner at
  // once (or a moment later), the visitor sends its own without waiting, the service answers
  // once it has the visitor's and closes first. Exact bytes checked on both sides.
  const visitorBanner = Buffer.from('SSH-2.0-visitor\r\n')
  const serverBanner = Buffer.from('SSH-2.0-service\r\n')
  let wrongAtService = 0
  const server = net.createServer({ noDelay: true }, s => {
    s.on('error', () => {})
    const reply = randomBytes(1 + Math.floor(Math.random() * 4000))
    let said = false
    let heard = false
    const answer = (): void => { if (said && heard) s.end(Buffer.concat([Buffer.from(`${reply.length}:`), reply])) }
    const hello = (): void => { s.write(serverBanner); said = true; answer() }
    const when = Math.floor(Math.random() * 3)
    if (when === 0) hello(); else if (when === 1) setImmediate(hello); else setTimeout(hello, Math.random() * 3)
    const got: Buffer[] = []
    let n = 0
    s.on('data', (c: Buffer) => {
      got.push(c)
      n += c.length
      if (n < visitorBanner.length || heard) return
      heard = true
      if (!Buffer.concat(got).equals(visitorBanner)) wrongAtService++
      answer()
    })
  })
  const port = await listen(server)
  const relay = await startRelay()
  const client = makeClient(relay, [tcpSpec(port)])
  t.teardown(async () => { await client.close(); await relay.close(100); server.close() })
  const [status] = await client.start()
  const visit = (): Promise<string | undefined> => withTimeout(new Promise<string | undefined>(resolve => {
    const s = net.connect({ host: '127.0.0.1', port: status!.remotePort!, noDelay: true })
    const chunks: Buffer[] = []
    s.on('connect', () => s.write(visitorBanner))
    s.on('data', (c: Buffer) => chunks.push(c))
    s.on('error', err => resolve(`${err.message} after ${Buffer.concat(chunks).length} bytes`))
    s.on('end', () => {
      const all = Buffer.concat(chunks)
      if (!all.subarray(0, serverBanner.length).equals(serverBanner)) return resolve(`banner missing or wrong (${all.length} bytes)`)
      const rest = all.subarray(serverBanner.length).toString('latin1')
      const length = Number(rest.slice(0, rest.indexOf(':')))
      resolve(rest.length === rest.indexOf(':') + 1 + length ? undefined : `answer short: ${rest.length} bytes of ${length}`)
    })
  }), { what: 'a visitor\'s exchange', timeoutMs: 30_000 })
  const failures: string[] = []
  for (let i = 0; i < 10; i++) {
    for (const f of await Promise.all(Array.from({ length: 200 }, visit))) if (f !== undefined) failures.push(f)
  }
  t.same(failures, [], 'every visitor got the banner and the whole answer, then EOF')
  t.equal(wrongAtService, 0, 'the service got every visitor\'s banner intact')
})
