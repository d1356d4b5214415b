/** Human-readable sizes and rates for session output (binary units, as `ls -h`). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`
}

/** Decimal megabytes per second, the unit disk benchmarks use. */
export function mbPerSecond(bytes: number, ms: number): number {
  return ms > 0 ? Math.round((bytes / 1e6 / (ms / 1000)) * 10) / 10 : 0
}
