/**
 * Concurrent connection setup with a server that speaks first: a real OpenSSH server on
 * loopback, 100 rounds of 10 parallel logins through a tunnel, and the same rounds straight to
 * sshd as a control (alternating, so both see the same machine load), so that a lost login can
 * be put down to mport or not. SSH is a good probe: the server's banner travels local → visitor
 * while the visitor's own banner is still on its way, on every one of hundreds of fresh streams.
 */
import t from 'tap'
import { type SshResult, findSshd, sshdTestOptions, startSshd } from '../helpers/sshd.js'
import { makeClient, startRelay, tcpSpec } from '../helpers/tunnel.js'

const ROUNDS = 100
const PARALLEL = 10
/** The whole run (both paths) must end within this; tap's file timeout is 180 s. */
const BUDGET_MS = 150_000
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

t.test(`${ROUNDS} rounds of ${PARALLEL} parallel SSH logins through a tunnel, and straight to sshd`, sshdTestOptions(), async t => {
  const sshd = await startSshd()
  t.teardown(() => sshd.stop())
  const relay = await startRelay()
  t.teardown(() => relay.close(100))
  const client = makeClient(relay, [tcpSpec(sshd.port)])
  t.teardown(() => client.close())
  const [status] = await client.start()
  const publicPort = status!.remotePort!
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
