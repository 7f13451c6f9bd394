// Account's live-connection tracking: bytes are reported as they flow and once more when a
// connection ends, the concurrent-connection limit counts tracked connections, and a monthly
// quota reached mid-transfer aborts every live connection (and none that already ended).
import t from 'tap'
import { Account, UNLIMITED, type LiveConnection, type RelayPolicy } from '../../src/tunnel/accounts.js'

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
