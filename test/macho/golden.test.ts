/**
 * Golden text dumps of `describeMachoImage` for every committed fixture (DESIGN §9 rule 8).
 * After an intended change, regenerate with:
 *   IMGDUMP_UPDATE_GOLDEN=1 npx mocha --no-config --node-option import=tsx test/macho/golden.test.ts
 * and review the diff of test/macho/golden/.
 */
import assert from 'node:assert/strict'
import {existsSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describeMachoImage, renderMachoImageText} from '../../src/image/macho-describe.js'
import {FIXTURES, readFixture} from './judges.js'

const GOLDEN = new URL('./golden/', import.meta.url).pathname
const update = process.env.IMGDUMP_UPDATE_GOLDEN === '1'

describe('Mach-O describe golden dumps', () => {
  for (const name of readdirSync(FIXTURES).sort()) {
    it(name, () => {
      const d = describeMachoImage(readFixture(name))
      const text = renderMachoImageText(name, d) + '\n' + JSON.stringify(d, null, 2) + '\n'
      const file = join(GOLDEN, `${name}.txt`)
      if (update) writeFileSync(file, text)
      assert.ok(existsSync(file), `missing ${file}: run with IMGDUMP_UPDATE_GOLDEN=1`)
      assert.equal(text, readFileSync(file, 'utf8'))
    })
  }
})
