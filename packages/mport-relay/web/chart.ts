/** Time-series charts with uPlot (bundled, no CDN): bytes per second in and out, or per bucket. */
import uPlot from 'uplot'
import { bytes } from './dom.js'

export interface Series { label: string, stroke: string }

/** A chart in `parent` sized to it; update() replaces the data. The container carries the point count and max for tests and screen readers. */
export function timeChart (parent: HTMLElement, title: string, series: Series[], unit: (v: number) => string = bytes): { update (data: number[][], range?: [number, number]): void, destroy (): void } {
  const width = (): number => Math.max(280, parent.clientWidth - 8)
  const plot = new uPlot({
    title,
    width: width(),
    height: 220,
    series: [{}, ...series.map(s => ({ label: s.label, stroke: s.stroke, width: 2, value: (_u: uPlot, v: number | null) => v === null ? '—' : unit(v) }))],
    axes: [{}, { values: (_u: uPlot, vals: number[]) => vals.map(v => unit(v)), size: 96 }],
    scales: { x: { time: true } },
  }, [[], ...series.map(() => [])], parent)
  const resize = (): void => plot.setSize({ width: width(), height: 220 })
  window.addEventListener('resize', resize)
  return {
    /** `range`: the x axis' span in seconds (a history's query range), else the data's. */
    update (data: number[][], range?: [number, number]) {
      plot.setData(data as uPlot.AlignedData)
      if (range !== undefined) plot.setScale('x', { min: range[0], max: range[1] })
      const ys = data.slice(1).flat()
      parent.dataset.points = String(data[0]?.length ?? 0)
      parent.dataset.max = String(ys.length === 0 ? 0 : Math.max(...ys))
    },
    destroy () { window.removeEventListener('resize', resize); plot.destroy() },
  }
}
