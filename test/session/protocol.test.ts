import assert from 'node:assert/strict'
import {ImgdumpError} from '../../src/errors.js'
import {LineReader} from '../../src/session/line-reader.js'
import {decodeAs, decodeMessage, encodeMessage, frameMessage, MAX_LINE, type Message} from '../../src/session/protocol.js'

const save: Message = {
  t: 'save', id: 3, path: '/tmp/out.img', mode: 'exec', generation: 4n, exe: '/usr/bin/rt',
  loadBias: 0x555555554000n, phdr: 0x555555554040n,
  heap: {base: 0x600000000000n, brk: 0x600000123000n, reserve: 0x1000000000n, header: 0x600000000000n},
  regions: [{addr: 0x700000000000n, size: 0x100000n}],
  libraries: [{path: '/lib/x86_64-linux-gnu/libc.so.6', base: 0x7ffff7d8a000n, buildId: 'deadbeef'},
    {path: '/lib/libm.so.6', base: 0x7ffff7c00000n, buildId: null}],
  pinning: {noRandomize: true, stack: 'unlimited', stackLimit: 0xffffffffffffffffn},
  origin: '/tmp/prev.img',
}

const every: Message[] = [
  {t: 'hello', v: 1, pid: 1234, exe: '/abs/rt', api: 1},
  {t: 'welcome', v: 1},
  save,
  {t: 'plan', id: 3, writes: [{addr: 0x600000000000n, size: 0x1000n, offset: 0x3000n}, {addr: 0x601000000000n, size: 0n, offset: 0x4000n}], headerCopy: 0x600000000000n, flush: true},
  {t: 'written', id: 3, crc32c: [0, 0xffffffff, 123456], bytes: 0x1000n},
  {t: 'failed', id: 3, errno: 27, message: 'File too large'},
  {t: 'refused', id: 1048576, code: -3, message: 'more than one thread is running'},
  {t: 'done', id: 3, path: '/tmp/out.img', bytes: 0x10000n, pages: 16, ms: 12.5},
  {t: 'error', id: 3, code: 'ELF_TRUNCATED', message: 'bad'},
  {t: 'error', code: 'PROTO_VERSION', message: 'no'},
  {t: 'request-save', id: 7, path: '/x/y.img', mode: 'continue'},
]

function expectProto(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof ImgdumpError && err.phase === 'session' && err.code === code)
}

describe('session protocol codec', () => {
  for (const m of every) {
    it(`round-trips ${m.t}${m.t === 'error' && m.id === undefined ? ' (no id)' : ''}`, () => {
      const line = encodeMessage(m)
      assert.ok(!line.includes('\n'))
      assert.deepEqual(decodeMessage(line), m)
    })
  }

  it('encodes 64-bit fields as lower-case 0x hex strings and counts as numbers', () => {
    const o = JSON.parse(encodeMessage(save))
    assert.equal(o.loadBias, '0x555555554000')
    assert.equal(o.pinning.stackLimit, '0xffffffffffffffff')
    assert.equal(o.heap.brk, '0x600000123000')
    assert.equal(o.generation, 4)
    assert.equal(o.id, 3)
  })

  it('ignores unknown keys and accepts upper-case hex', () => {
    const m = decodeMessage('{"t":"written","id":1,"crc32c":[1],"bytes":"0xABC","extra":{"x":1}}')
    assert.deepEqual(m, {t: 'written', id: 1, crc32c: [1], bytes: 0xabcn})
  })

  it('rejects malformed lines with typed errors', () => {
    expectProto(() => decodeMessage('{"t":"hello"'), 'PROTO_BAD_JSON')
    expectProto(() => decodeMessage('[1,2]'), 'PROTO_BAD_JSON')
    expectProto(() => decodeMessage('{"t":"bogus"}'), 'PROTO_UNKNOWN_TYPE')
    expectProto(() => decodeMessage('{"t":"toString"}'), 'PROTO_UNKNOWN_TYPE')
    expectProto(() => decodeMessage('{"v":1}'), 'PROTO_UNKNOWN_TYPE')
    expectProto(() => decodeMessage('{"t":"hello","v":1,"pid":-1,"exe":"/x","api":1}'), 'PROTO_BAD_FIELD')
    expectProto(() => decodeMessage('{"t":"written","id":1,"crc32c":[4294967296],"bytes":"0x0"}'), 'PROTO_BAD_FIELD')
    expectProto(() => decodeMessage('{"t":"written","id":1,"crc32c":[],"bytes":"12"}'), 'PROTO_BAD_FIELD')
    expectProto(() => decodeMessage('{"t":"written","id":1,"crc32c":[],"bytes":"0x10000000000000000"}'), 'PROTO_BAD_FIELD')
    expectProto(() => decodeMessage('{"t":"request-save","id":1,"path":"relative.img","mode":"continue"}'), 'PROTO_BAD_FIELD')
    expectProto(() => decodeMessage('{"t":"request-save","id":1,"path":"/a","mode":"later"}'), 'PROTO_BAD_FIELD')
  })

  it('names the field in a save that is wrong and checks heap ranges', () => {
    const o = JSON.parse(encodeMessage(save))
    o.heap.brk = '0x5fffffffffff'
    assert.throws(() => decodeMessage(JSON.stringify(o)), /heap break/)
    const o2 = JSON.parse(encodeMessage(save))
    delete o2.pinning.stack
    assert.throws(() => decodeMessage(JSON.stringify(o2)), /save\.pinning: field "stack"/)
    const o3 = JSON.parse(encodeMessage(save))
    o3.libraries[0].buildId = 'XYZ'
    assert.throws(() => decodeMessage(JSON.stringify(o3)), /buildId/)
  })

  it('decodeAs refuses a message of the wrong direction', () => {
    expectProto(() => decodeAs(encodeMessage({t: 'welcome', v: 1}), ['hello', 'save']), 'PROTO_UNEXPECTED')
  })

  it('frames with a newline and refuses lines over 1 MiB', () => {
    assert.equal(frameMessage({t: 'welcome', v: 1}).toString(), '{"t":"welcome","v":1}\n')
    const big: Message = {t: 'error', code: 'X', message: 'a'.repeat(MAX_LINE)}
    expectProto(() => frameMessage(big), 'PROTO_LINE_TOO_LONG')
  })
})

describe('session line reader', () => {
  it('splits chunks at newlines, across chunk boundaries', () => {
    const r = new LineReader()
    assert.deepEqual(r.push(Buffer.from('{"a":1}\n{"b"')), ['{"a":1}'])
    assert.equal(r.buffered, 4)
    assert.deepEqual(r.push(Buffer.from(':2}\n\n{"c":3}\n')), ['{"b":2}', '', '{"c":3}'])
    assert.equal(r.buffered, 0)
  })

  it('keeps multi-byte UTF-8 split across chunks intact', () => {
    const r = new LineReader()
    const bytes = Buffer.from('"é€"\n')
    assert.deepEqual([...r.push(bytes.subarray(0, 2)), ...r.push(bytes.subarray(2))], ['"é€"'])
  })

  it('fails as soon as an unterminated line exceeds the limit', () => {
    const r = new LineReader(16)
    assert.deepEqual(r.push(Buffer.from('0123456789abcdef\n')), ['0123456789abcdef'])
    r.push(Buffer.from('0123456789'))
    expectProto(() => r.push(Buffer.from('abcdefg')), 'PROTO_LINE_TOO_LONG')
  })
})
