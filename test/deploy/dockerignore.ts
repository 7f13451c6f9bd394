/**
 * Whether a path of the build context is dropped by a .dockerignore, for the pattern shapes
 * ours uses: `name`, `dir/name`, `**` for any number of folders, `*` within one name, and `!`
 * exceptions (the last matching line wins, as in Docker). A pattern that names a folder drops
 * everything under it.
 */
function patternToRegExp (pattern: string): RegExp {
  let re = ''
  const p = pattern.replace(/^\/+|\/+$/g, '')
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!
    if (c === '*' && p[i + 1] === '*') {
      // `**/` matches zero or more folders; a trailing `**` anything.
      if (p[i + 2] === '/') { re += '(?:.*/)?'; i += 2 } else { re += '.*'; i += 1 }
    } else if (c === '*') re += '[^/]*'
    else if (c === '?') re += '[^/]'
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${re}(?:/.*)?$`)
}

/** True when `file` (relative to the context, `/`-separated) is excluded by these rules. */
export function dockerIgnored (rules: string, file: string): boolean {
  let ignored = false
  for (const raw of rules.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const negate = line.startsWith('!')
    if (patternToRegExp(negate ? line.slice(1) : line).test(file)) ignored = !negate
  }
  return ignored
}
