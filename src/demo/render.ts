/** The demo's table, for people. */
import type {DemoResult} from './lisp-demo.js'

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`
const ms = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`)

export function renderDemo(r: DemoResult): string {
  const allSame = r.queries.every((q) => q.same)
  const rows: [string, string, string][] = [
    ['cold start (load world.lisp, build the world)', ms(r.coldStartMs), `${r.records} records, heap ${mib(r.heapBytes)}`],
    ['save image (generation 1, under imgdump run)', ms(r.saveMs), `image ${mib(r.imageBytes)}, ${r.saveMBps.toFixed(0)} MB/s`],
    ['restore (exec the image, first answer)', ms(r.restoreMs), `${r.speedup.toFixed(0)}x faster than the cold start`],
    ['same answers after restore', allSame ? 'yes' : 'NO', `${r.queries.filter((q) => q.same).length}/${r.queries.length} queries`],
    ["change + save generation 2 with 'exec", ms(r.generation2.saveMs), `(image-generation) = ${r.generation2.generation}, change ${r.generation2.changePresent ? 'present' : 'MISSING'}`],
  ]
  const w0 = Math.max(...rows.map((x) => x[0].length))
  const w1 = Math.max(...rows.map((x) => x[1].length))
  const lines = [`imgdump demo — the bundled Lisp persists a world of ${r.records} records`, '']
  for (const [a, b, c] of rows) lines.push(`  ${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`)
  lines.push('', 'queries (cold = restored):')
  for (const q of r.queries) lines.push(`  ${q.query} => ${q.restored.length > 90 ? q.restored.slice(0, 87) + '...' : q.restored}${q.same ? '' : `   (cold: ${q.cold})`}`)
  lines.push('', `images: ${r.images.join(', ')}`, `run one yourself: ${r.images[0]} -p '(world-summary)'`)
  return lines.join('\n')
}
