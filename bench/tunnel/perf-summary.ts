/**
 * Where the CPU of a tunnel's processes goes, kernel included, from a system-wide `perf record`
 * taken while a bench case runs (the cpu profiles of `--cpu-prof` see only one process's user
 * space and show a syscall as one opaque native call):
 *
 *   BENCH_ONLY=mport BENCH_CASES=bulk BENCH_ROUNDS=1 BENCH_BULK_MIB=3072 npm run bench:tunnel &
 *   sleep 8; perf record -a -e cpu-clock -F 1999 -o /tmp/bulk.data -- sleep 4
 *   perf script -i /tmp/bulk.data -F pid,ip,sym,dso -G > /tmp/bulk.txt   # -G: no call chains
 *   npx tsx bench/tunnel/perf-summary.ts /tmp/bulk.txt <pid> [<pid> …]
 *
 * Prints, per process and for all given processes together, the samples in each category
 * (AES, kernel copies to/from user space, the rest of the kernel, memmove, the JS engine and
 * Node's runtime, libc's allocator, …). Divide by the bytes moved in the window for a per-GB
 * figure that compares processes of different tunnels.
 */
import { readFileSync } from 'node:fs'

const [file, ...pidArgs] = process.argv.slice(2)
if (file === undefined || pidArgs.length === 0) {
  process.stderr.write('usage: perf-summary.ts <perf script -F pid,ip,sym,dso output> <pid> [<pid> …]\n')
  process.exit(2)
}
const pids = new Set(pidArgs)

function category (sym: string, dso: string): string {
  if (/aesni|ghash|gcm|libcrypto/.test(sym) || /libcrypto/.test(dso)) return 'AES-GCM (OpenSSL)'
  if (/copy_(from|to)_iter|copy_user/.test(sym)) return 'kernel: copy to/from user space'
  if (dso.includes('kallsyms')) return 'kernel: TCP/IP, syscalls, wakeups'
  if (/memmove|memcpy|memset/.test(sym)) return 'memmove/memcpy (user space)'
  if (/^JS:|^LazyCompile:|^Function:/.test(sym) || /perf-\d+\.map/.test(dso)) return 'JavaScript (JIT code)'
  if (/Scaveng|Marking|Sweep|ConcurrentMarking|Evacuat|ArrayBufferSweeper|MinorGC|Heap::/.test(sym)) return 'V8 garbage collection'
  if (/^Builtins_|v8::/.test(sym)) return 'V8 (builtins, API calls)'
  if (/node::|uv_|uv__/.test(sym)) return 'Node runtime and libuv'
  if (/malloc|free|_int_|unlink_chunk|consolidate/.test(sym)) return 'libc allocator'
  if (/ssl|SSL|tls|EVP_|WPACKET|BIO/.test(sym)) return 'OpenSSL record layer'
  return 'other'
}

const perPid = new Map<string, Map<string, number>>()
for (const line of readFileSync(file, 'utf8').split('\n')) {
  // "  4388  _aesni_ctr32_ghash_6x (/usr/bin/node)" or with an address column before the symbol
  const m = /^\s*(\d+)\s+(?:[0-9a-f]+\s+)?(.*?)\s+\((.*)\)\s*$/.exec(line)
  if (m === null || !pids.has(m[1]!)) continue
  const cat = category(m[2]!, m[3]!)
  const counts = perPid.get(m[1]!) ?? new Map<string, number>()
  counts.set(cat, (counts.get(cat) ?? 0) + 1)
  perPid.set(m[1]!, counts)
}

const all = new Map<string, number>()
for (const [pid, counts] of perPid) {
  print(`pid ${pid}`, counts)
  for (const [k, v] of counts) all.set(k, (all.get(k) ?? 0) + v)
}
if (perPid.size > 1) print('all given processes', all)

function print (title: string, counts: Map<string, number>): void {
  const total = [...counts.values()].reduce((a, b) => a + b, 0)
  process.stdout.write(`-- ${title}: ${total} samples\n`)
  for (const [k, v] of [...counts].sort((a, b) => b[1] - a[1])) {
    process.stdout.write(`${String(v).padStart(8)}  ${(100 * v / total).toFixed(1).padStart(5)}%  ${k}\n`)
  }
}
