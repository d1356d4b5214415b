/**
 * Signatures beyond the linker's shape, crafted here independently of src/macho's signer:
 * codesign-style special slots (Info.plist -1, requirements -2) and a CMS blob. The verifier
 * checks the special slots; stripping a CMS signature warns; re-signing is ad hoc.
 */
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {readSignature, setLinkeditSize, signAdhoc, signatureCommand, stripSignature, verifySignature} from '../../src/macho/code-signature.js'
import {editMacho} from '../../src/macho/edit-segments.js'
import {findSegment} from '../../src/macho/model.js'
import {readMacho} from '../../src/macho/read.js'
import {writeMacho} from '../../src/macho/write.js'
import {opensslPageHashes, readFixture, storedPageHashes} from './judges.js'

const sha = (b: Buffer) => createHash('sha256').update(b).digest()
const be32 = (...v: number[]) => { const b = Buffer.alloc(4 * v.length); v.forEach((x, i) => b.writeUInt32BE(x >>> 0, 4 * i)); return b }

/** A codesign-shaped SuperBlob: CodeDirectory with 2 special slots, requirements, optional CMS. */
function craft(name: string, cms: Buffer | null): Buffer {
  const m = readMacho(readFixture(name))
  signAdhoc(m, {identifier: 'placeholder'}) // adds LC_CODE_SIGNATURE; everything below is rewritten by hand
  const lc = signatureCommand(m)!
  const sigOff = lc.f.dataoff, page = 4096
  const ident = Buffer.from('com.example.crafted\0')
  const nCode = Math.ceil(sigOff / page)
  const requirements = be32(0xfade0c01, 12, 0)
  const cdFixed = 88, nSpecial = 2
  const hashOffset = cdFixed + ident.length + nSpecial * 32
  const cdLen = hashOffset + nCode * 32
  const blobs: [number, Buffer | null][] = [[0, null], [2, requirements], ...(cms ? [[0x10000, Buffer.concat([be32(0xfade0b01, 8 + cms.length), cms])] as [number, Buffer]] : [])]
  const headerLen = 12 + 8 * blobs.length
  const total = headerLen + cdLen + requirements.length + (cms ? 8 + cms.length : 0)
  lc.f.datasize = total
  setLinkeditSize(m, BigInt(sigOff + total) - findSegment(m, '__LINKEDIT')!.f.fileoff)
  const file = writeMacho(m)
  const text = findSegment(m, '__TEXT')!
  const cd = Buffer.alloc(cdLen)
  be32(0xfade0c02, cdLen, 0x20400, 0x2, hashOffset, cdFixed, nSpecial, nCode, sigOff).copy(cd, 0)
  cd[36] = 32; cd[37] = 2; cd[38] = 0; cd[39] = 12
  cd.writeBigUInt64BE(text.f.fileoff, 64); cd.writeBigUInt64BE(text.f.filesize, 72); cd.writeBigUInt64BE(1n, 80)
  ident.copy(cd, cdFixed)
  sha(requirements).copy(cd, hashOffset - 2 * 32) // slot -2; slot -1 (Info.plist) stays zero: no plist
  for (let i = 0; i < nCode; i++) sha(file.subarray(i * page, Math.min(sigOff, (i + 1) * page))).copy(cd, hashOffset + 32 * i)
  const parts: Buffer[] = [be32(0xfade0cc0, total, blobs.length)]
  let at = headerLen
  const bodies = [cd, ...blobs.slice(1).map(b => b[1]!)]
  blobs.forEach(([type], i) => { parts.push(be32(type, at)); at += bodies[i].length })
  Buffer.concat([...parts, ...bodies]).copy(file, sigOff)
  return file
}

describe('Mach-O signatures with special slots and CMS', () => {
  let dir: string
  before(() => { dir = mkdtempSync(join(tmpdir(), 'imgdump-sig-')) })
  after(() => rmSync(dir, {recursive: true, force: true}))

  for (const name of ['x86_64-classic-unsigned-pad', 'arm64-chained-unsigned-pad']) {
    it(`${name}: a codesign-shaped signature verifies (openssl agrees), its requirements slot is checked`, () => {
      const file = craft(name, null)
      const path = join(dir, name)
      writeFileSync(path, file)
      const {hashes, pageSize, codeLimit} = storedPageHashes(path, file)
      assert.deepEqual(opensslPageHashes(file, codeLimit, pageSize), hashes)
      assert.deepEqual(verifySignature(file, readMacho(file)), [])
      const sig = readSignature(readMacho(file))!
      assert.equal(sig.directories[0].identifier, 'com.example.crafted')
      assert.equal(sig.directories[0].specialHashes.length, 2)
      assert.equal(sig.hasCms, false)
      const bad = Buffer.from(file)
      const req = sig.blobs.find(b => b.type === 2)!
      bad[readMacho(file).commands.filter(c => c.kind === 'linkedit_data').pop()!.f.dataoff as number + req.offset + 8] ^= 1
      assert.deepEqual(verifySignature(bad, readMacho(bad)), ['CodeDirectory (slot 0x0): special slot -2 hash mismatch'])
    })
  }

  it('a CMS signature is stripped with a warning and replaced by an ad-hoc one; identifier kept', () => {
    const file = craft('x86_64-classic-unsigned-pad', Buffer.from('3082000a0609', 'hex'))
    const m = readMacho(file)
    assert.equal(readSignature(m)!.hasCms, true)
    assert.deepEqual(verifySignature(file, m), [])
    const r = editMacho(m, {segments: [{name: '__IMGHEAP0', address: 0x300000000n, memSize: 0x1000n, payload: Buffer.alloc(64, 1)}]})
    assert.match(r.warnings.join('\n'), /CMS signature .* stripped/)
    const out = writeMacho(m)
    const sig = readSignature(readMacho(out))!
    assert.equal(sig.hasCms, false)
    assert.equal(sig.blobs.length, 1)
    assert.equal(sig.directories[0].identifier, 'com.example.crafted')
    assert.deepEqual(verifySignature(out, readMacho(out)), [])
  })

  it('an empty CMS wrapper (as ad-hoc codesign leaves) is not a real identity', () => {
    const file = craft('x86_64-classic-unsigned-pad', Buffer.alloc(0))
    assert.equal(readSignature(readMacho(file))!.hasCms, false)
    const m = readMacho(file)
    assert.deepEqual(stripSignature(m).warnings, [])
  })
})
