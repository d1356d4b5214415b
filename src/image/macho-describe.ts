/**
 * `imgdump inspect` of Mach-O imgdump images: the Mach-O description (src/macho/describe.ts)
 * with, per slice, a summary of the image's manifest (generation, segments, payloads, the
 * libraries it was saved against), or why it does not decode. Display only.
 */
import {hex} from '../binary/hex.js'
import {describeMacho, renderMachoText, type DescribeOptions, type MachoDescription} from '../macho/describe.js'
import type {MachoFile} from '../macho/model.js'
import {decodeManifest} from './manifest.js'
import {manifestSection} from './macho-verify.js'

export interface MachoManifestSummary {
  manifest: {generation: string; segments: number; payloads: number; runtimePath: string | null
    libraries: {path: string | null; buildId: string | null; base: string}[]} | {error: string} | null
}
export type MachoImageDescription = MachoDescription<MachoManifestSummary>

function summarize(m: MachoFile, buf: Buffer): MachoManifestSummary {
  const sec = manifestSection(m)
  if (!sec) return {manifest: null}
  try {
    const man = decodeManifest(buf.subarray(sec.offset, sec.offset + Number(sec.size)), sec.offset)
    return {manifest: {generation: man.generation.toString(), segments: man.segments.length, payloads: man.payloads.length,
      runtimePath: man.runtimePath, libraries: man.libraries.map((l) => ({path: l.path, buildId: l.buildId, base: hex(l.base)}))}}
  } catch (e) {
    return {manifest: {error: (e as Error).message}}
  }
}

export function describeMachoImage(buf: Buffer, opts: DescribeOptions = {}): MachoImageDescription {
  return describeMacho(buf, opts, summarize)
}

export function renderMachoImageText(path: string, d: MachoImageDescription): string {
  return renderMachoText(path, d, (s) => {
    if (!s.manifest) return []
    if ('error' in s.manifest) return [`    manifest: ${s.manifest.error}`]
    return [`    manifest: generation ${s.manifest.generation}, ${s.manifest.segments} segments, ${s.manifest.payloads} payloads`,
      // The libraries (and the shared cache's UUID and base) the image was saved against: docs/macho.md.
      ...s.manifest.libraries.map((l) => `      saved with ${l.path ?? '?'} at ${l.base}${l.buildId ? ` (${l.buildId})` : ''}`)]
  })
}
