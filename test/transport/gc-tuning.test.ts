// tuneGcForForwarding(): after it, dead young ArrayBuffers are freed inside the scavenge itself,
// which is what keeps V8 from counting them against the old generation's limit, and its meter,
// given to a relay and a client through their options, asks for scavenges as fresh read
// buffers add up (see src/transport/gc-tuning.ts). Observed in child processes: the flags are
// process-wide.
import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { REPO_ROOT } from '../helpers/spawn.js'

const run = promisify(execFile)
const probe = path.join(REPO_ROOT, 'test/fixtures/array-buffer-sweep-probe.ts')

t.test('young ArrayBuffers are freed by the time the scavenge returns', async t => {
  const { stdout } = await run(process.execPath, ['--expose-gc', '--import', 'tsx', probe, '--tune'], { cwd: REPO_ROOT, timeout: 60_000 })
  const result = JSON.parse(stdout.trim()) as { rounds: number, freedInScavenge: number }
  t.equal(result.rounds, 10)
  t.equal(result.freedInScavenge, result.rounds, 'every round freed its 8 MiB within the scavenge')
})

const budgetProbe = path.join(REPO_ROOT, 'test/fixtures/young-buffer-budget-probe.ts')
const runBudgetProbe = async (...args: string[]): Promise<Record<string, number | boolean>> => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', budgetProbe, ...args], { cwd: REPO_ROOT, timeout: 60_000 })
  return JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, number | boolean>
}

t.test('the young-buffer budget frees dead read buffers every 2 MiB instead of at 32 MiB', async t => {
  // 400 reads of 64 KiB are 25 MiB: V8 alone lets them pile up (it scavenges for them at 32
  // MiB). A scavenge for other garbage may still free some on the way, but in so short a loop
  // at most one, which leaves well over 10 MiB.
  const untuned = await runBudgetProbe('reads')
  t.equal(untuned.collections, 0, 'no scavenge asked for without the tuning')
  t.ok((untuned.maxArrayBuffersMiB as number) > 10, `without it, dead buffers pile up (${String(untuned.maxArrayBuffersMiB)} MiB)`)
  const tuned = await runBudgetProbe('reads', '--tune')
  t.equal(tuned.collections, 12, 'one scavenge per 2 MiB counted')
  t.ok((tuned.maxArrayBuffersMiB as number) < 3.5, `with it, at most about the budget is alive (${String(tuned.maxArrayBuffersMiB)} MiB)`)
})

t.test('a tunnel given the meter counts the fresh buffers of every socket it reads', async t => {
  // 8 MiB each way through an echo service. Counted: the relay's reads of the visitor (8 MiB),
  // the client's reads of the local service (8 MiB) and the relay's reads of its TLS connection
  // (8 MiB of echoed data in frames). The client reads TLS into a reused buffer: not counted.
  const r = await runBudgetProbe('tunnel')
  t.equal(r.echoed, true, 'bytes came back intact')
  t.ok((r.collections as number) >= 20 && (r.collections as number) <= 25, `one scavenge per MiB of 24 MiB of fresh reads (${String(r.collections)})`)
})

t.test('an HTTP tunnel given the meter counts the fresh buffers of its visitors', async t => {
  // An 8 MiB POST: the relay's HTTP port reads it from the visitor (counted); the client gets it
  // through its reused TLS read buffer (not counted); the reply is a few bytes.
  const r = await runBudgetProbe('http')
  t.equal(r.delivered, true, 'the app got the whole body')
  t.ok((r.collections as number) >= 7 && (r.collections as number) <= 9, `one scavenge per MiB of 8 MiB of fresh reads (${String(r.collections)})`)
})

t.test('the library never imports the tuning: the data path only gets a meter through options', async t => {
  const entries = new Set(['src/gc-tuning.ts', 'src/transport/gc-tuning.ts'])
  const files = (await readdir(path.join(REPO_ROOT, 'src'), { recursive: true }))
    .map(f => path.join('src', f)).filter(f => f.endsWith('.ts') && !entries.has(f))
  t.ok(files.length > 20, `${files.length} modules checked`)
  const importers = []
  for (const f of files) if (/from '[^']*gc-tuning(\.js)?'/.test(await readFile(path.join(REPO_ROOT, f), 'utf8'))) importers.push(f)
  t.same(importers, [], 'no module of src/ but the opt-in entry imports gc-tuning')
})

t.test('tuneGcForForwarding() rejects a bad budget', async t => {
  const { tuneGcForForwarding } = await import('../../src/transport/gc-tuning.js')
  t.throws(() => tuneGcForForwarding({ youngBufferBudget: -1 }), RangeError)
  t.throws(() => tuneGcForForwarding({ youngBufferBudget: 1.5 }), RangeError)
})
