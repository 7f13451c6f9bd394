// Account's live-connection tracking: bytes are reported as they flow and once more when a
// connection ends, the concurrent-connection limit counts tracked connections, and a monthly
// quota reached mid-transfer aborts every live connection (and none that already ended). Then
// the plan's limits: where each refuses, what the refusal says, null as unlimited, 0 as none.
import t from 'tap'
import { QuotaExceededError } from '../../src/errors.js'
import { Account, UNLIMITED, type LiveConnection, type PlanLimits, type RelayPolicy } from '../../src/tunnel/accounts.js'

const principal = { id: 'u1', name: 'alice' }

function live (tunnel: string): LiveConnection & { aborted: Error[] } {
  const aborted: Error[] = []
  return { tunnel, counters: { aToB: 0, bToA: 0 }, reportedIn: 0, reportedOut: 0, aborted, abort: err => { aborted.push(err) } }
}

/** A policy that only records what the account reports. */
function recorder (): { policy: RelayPolicy, records: Array<{ tunnel: string, usage: Record<string, number> }> } {
  const records: Array<{ tunnel: string, usage: Record<string, number> }> = []
  const policy = { record: (_p: unknown, tunnel: string, usage: Record<string, number>) => { records.push({ tunnel, usage }) } } as unknown as RelayPolicy
  return { policy, records }
}

t.test('usage is reported while a connection lives and when it ends', async t => {
  const account = new Account(principal, null)
  const { policy, records } = recorder()
  const c = live('web')
  account.track(c, policy)
  t.same(records, [{ tunnel: 'web', usage: { connections: 1 } }], 'the connection is counted')
  t.equal(account.connections, 1)
  c.counters.aToB = 100
  c.counters.bToA = 20
  t.equal(account.sample(policy), undefined, 'no quota: nothing to enforce')
  c.counters.aToB = 150
  account.untrack(c, policy)
  t.same(records.slice(1), [
    { tunnel: 'web', usage: { bytesIn: 100, bytesOut: 20 } },
    { tunnel: 'web', usage: { bytesIn: 50, bytesOut: 0 } },
  ], 'each byte reported once')
  t.equal(account.monthBytes, 170)
  t.equal(account.connections, 0, 'forgotten once ended')
})

t.test('a monthly quota reached mid-transfer aborts the live connections only', async t => {
  const account = new Account(principal, null)
  account.update({ ...UNLIMITED, monthlyBytes: 1000, maxConnections: 2 }, 0)
  const a = live('web')
  const b = live('ssh')
  const gone = live('web')
  account.track(a, undefined)
  account.track(gone, undefined)
  t.throws(() => account.checkConnection(), { code: 'MPORT_ERR_QUOTA_EXCEEDED' }, 'a third concurrent connection is over the plan')
  gone.counters.aToB = 400
  account.untrack(gone, undefined)
  account.track(b, undefined)
  a.counters.aToB = 700
  const err = account.sample(undefined)
  t.match(err, { code: 'MPORT_ERR_QUOTA_EXCEEDED' })
  t.equal(a.aborted[0], err, 'the live connection is aborted with the quota error')
  t.equal(b.aborted[0], err, 'every live connection is')
  t.same(gone.aborted, [], 'not one that already ended')
})

// ---- Plan limits: what a refusal says, and when it comes (these were QuotaGate's tests) ----

const GiB = 1024 ** 3

/** An account on a plan, with `monthBytes` already recorded this month. */
function onPlan (limits: Partial<PlanLimits>, monthBytes = 0): Account {
  const account = new Account(principal, null)
  account.update({ ...UNLIMITED, ...limits }, monthBytes)
  return account
}

t.test('concurrent connections: the one over the limit is refused; a lower limit ends none that are open', async t => {
  const account = onPlan({ maxConnections: 2 })
  const open = [live('web'), live('web')]
  t.doesNotThrow(() => account.checkConnection(), 'the first')
  account.track(open[0]!, undefined)
  t.doesNotThrow(() => account.checkConnection(), 'the second')
  account.track(open[1]!, undefined)
  t.throws(() => account.checkConnection(), {
    code: 'MPORT_ERR_QUOTA_EXCEEDED', limit: 'maxConnections', value: 2, message: 'your plan allows 2 concurrent connections',
  }, 'the third')
  account.update({ ...UNLIMITED, maxConnections: 1 }, 0)
  t.equal(account.sample(undefined), undefined, 'the connection limit is not enforced on live connections')
  t.same(open.map(c => c.aborted), [[], []], 'open connections are not ended by the connection limit')
})

t.test('monthly bytes: at the quota new connections are refused and live ones are ended', async t => {
  const under = onPlan({ monthlyBytes: 10 * GiB }, 10 * GiB - 1)
  const a = live('web')
  under.track(a, undefined)
  t.doesNotThrow(() => under.checkConnection(), 'one byte under: a new connection passes')
  t.doesNotThrow(() => under.checkMonth())
  t.equal(under.sample(undefined), undefined, 'and live ones go on')
  t.same(a.aborted, [])

  const at = onPlan({ monthlyBytes: 10 * GiB }, 10 * GiB)
  const b = live('web')
  at.track(b, undefined)
  const expected = { code: 'MPORT_ERR_QUOTA_EXCEEDED', limit: 'monthlyBytes', value: 10 * GiB, message: 'monthly transfer quota of 10.0 GiB reached' }
  t.throws(() => at.checkConnection(), expected, 'at the quota: a new connection is refused')
  t.throws(() => at.checkMonth(), expected)
  const err = at.sample(undefined)
  t.match(err, expected, 'the round finds the quota reached')
  t.equal(b.aborted[0], err, 'and the live connection is ended with that error')
})

t.test('tunnels: the one over the plan is refused', async t => {
  const account = onPlan({ maxTunnels: 1 })
  t.doesNotThrow(() => account.checkTunnel(), 'the first')
  account.tunnels = 1
  t.throws(() => account.checkTunnel(), { code: 'MPORT_ERR_QUOTA_EXCEEDED', limit: 'maxTunnels', value: 1, message: 'your plan allows 1 tunnel' })
})

t.test('null limits are unlimited, and 0 refuses', async t => {
  const unlimited = onPlan({}, 1e18)
  for (let i = 0; i < 1000; i++) unlimited.track(live('web'), undefined)
  unlimited.tunnels = 1e9
  t.doesNotThrow(() => unlimited.checkConnection(), 'connections and bytes')
  t.doesNotThrow(() => unlimited.checkTunnel(), 'tunnels')
  t.equal(unlimited.sample(undefined), undefined, 'live connections')
  t.throws(() => onPlan({ maxConnections: 0 }).checkConnection(), { code: 'MPORT_ERR_QUOTA_EXCEEDED', limit: 'maxConnections', value: 0 })
  t.throws(() => onPlan({ maxTunnels: 0 }).checkTunnel(), { code: 'MPORT_ERR_QUOTA_EXCEEDED', limit: 'maxTunnels', value: 0 })
  t.match(onPlan({ monthlyBytes: 0 }).sample(undefined), { limit: 'monthlyBytes', value: 0, message: 'monthly transfer quota of 0.0 MiB reached' })
})

t.test('update() replaces the plan: the next check follows it', async t => {
  const account = onPlan({ maxConnections: 1 })
  account.track(live('web'), undefined)
  t.throws(() => account.checkConnection(), { code: 'MPORT_ERR_QUOTA_EXCEEDED', limit: 'maxConnections' })
  account.update({ ...UNLIMITED, maxConnections: 5 }, 0)
  t.doesNotThrow(() => account.checkConnection(), 'a larger plan lets the next one in')
  const smaller = { ...UNLIMITED, maxConnections: 1 }
  account.update(smaller, 0)
  t.same(account.limits, smaller, 'the limits in force are the new plan')
  t.throws(() => account.checkConnection(), { code: 'MPORT_ERR_QUOTA_EXCEEDED', limit: 'maxConnections' })
})

t.test('a refusal is a QuotaExceededError naming the limit and its value', async t => {
  const account = onPlan({ monthlyBytes: 1.5 * 1024 * 1024 }, 2 * 1024 * 1024)
  const err = account.sample(undefined)
  t.ok(err instanceof QuotaExceededError)
  t.match(err, { code: 'MPORT_ERR_QUOTA_EXCEEDED', limit: 'monthlyBytes', value: 1.5 * 1024 * 1024, message: 'monthly transfer quota of 1.5 MiB reached' })
})
