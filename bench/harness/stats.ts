/** Medians with their spread over rounds, and how the reports print them. */

export interface Stat { median: number, min: number, max: number, n: number }

/** Median, min and max of the finite values (undefined when there are none). */
export function stat (xs: Array<number | undefined>): Stat | undefined {
  const v = xs.filter((x): x is number => x !== undefined && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return undefined
  const mid = Math.floor(v.length / 2)
  const median = v.length % 2 === 1 ? v[mid] as number : ((v[mid - 1] as number) + (v[mid] as number)) / 2
  return { median, min: v[0] as number, max: v[v.length - 1] as number, n: v.length }
}

export const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0)

/** A figure with 0–2 decimals by magnitude (or `digits`), thousands separated. */
export function fmt (x: number, digits?: number): string {
  const d = digits ?? (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2)
  return x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
}

/** A table cell: the median, with (min–max) when the rounds differ; '–' when not measured. */
export function cell (s: Stat | undefined, digits?: number): string {
  if (s === undefined) return '–'
  if (s.n === 1 || s.min === s.max) return fmt(s.median, digits)
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`
}
