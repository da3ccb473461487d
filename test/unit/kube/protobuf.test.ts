/**
 * The protobuf framing against bytes the real kube-apiserver (v1.37.2, the sandbox) sent:
 * test/fixtures/protobuf/ holds a page of a SecretList (limit 2 of 3 Secrets s-0..s-2 in namespace
 * pb-fixture, data v = alpha/beta/gamma), the same page's fields as the server answered them in JSON
 * (secretlist-page1.expected.json, captured right after), and the 409 Status of a PUT with a stale
 * resourceVersion.
 */
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {describe, expect, it} from 'vitest'

import {decodeList, decodeStatus, objectMeta, ProtobufDecodeError, unwrap, wrap} from '../../../src/kube/protobuf.js'

const dir = path.resolve('test/fixtures/protobuf')
const page = readFileSync(path.join(dir, 'secretlist-page1.bin'))
const expected = JSON.parse(readFileSync(path.join(dir, 'secretlist-page1.expected.json'), 'utf8')) as {
  resourceVersion: string
  continue: string
  remainingItemCount: number
  items: Array<{name: string; namespace: string; uid: string; resourceVersion: string; data: {v: string}}>
}
const conflict = readFileSync(path.join(dir, 'status-409.bin'))

describe('a SecretList page from kube-apiserver in protobuf', () => {
  it('starts with the magic k8s\\0 and a runtime.Unknown of kind SecretList', () => {
    expect([...page.subarray(0, 4)]).toEqual([0x6b, 0x38, 0x73, 0x00])
    const envelope = unwrap(page)
    expect(envelope).toMatchObject({apiVersion: 'v1', kind: 'SecretList'})
    // raw is a view into the body, not a copy
    expect(envelope.raw.buffer).toBe(page.buffer)
  })

  it('reads ListMeta and each item metadata as the JSON answer had them', () => {
    const list = decodeList(unwrap(page).raw)
    expect(list.resourceVersion).toBe(expected.resourceVersion)
    expect(list.continue).toBe(expected.continue)
    expect(list.remainingItemCount).toBe(1)
    expect(list.items.map(({raw: _, ...meta}) => meta)).toEqual(expected.items.map(({data: _, ...meta}) => meta))
    // hand-checked: two Secrets of the three, in key order, each carrying its own data value
    expect(list.items.map((i) => i.name)).toEqual(['s-0', 's-1'])
    expect(list.items[0]!.raw.includes(Buffer.from('alpha'))).toBe(true)
    expect(list.items[1]!.raw.includes(Buffer.from('beta'))).toBe(true)
    expect(list.items[0]!.raw.includes(Buffer.from('beta'))).toBe(false)
    expect(objectMeta(list.items[1]!.raw)).toEqual({...expected.items[1], data: undefined, raw: undefined})
  })

  it('wraps an item for a PUT as magic + Unknown{typeMeta {v1, Secret}, raw = the listed bytes}', () => {
    const item = decodeList(unwrap(page).raw).items[0]!
    const body = wrap({apiVersion: 'v1', kind: 'Secret'}, item.raw)
    // 0a 0c: typeMeta, 12 bytes = 0a 02 "v1" 12 06 "Secret"; then 12 <varint length>: raw
    const header = Buffer.from([0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0c, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x06])
    expect(body.subarray(0, header.length)).toEqual(header)
    expect(body.subarray(header.length, header.length + 6).toString()).toBe('Secret')
    expect(body.subarray(body.length - item.raw.length)).toEqual(item.raw)
    const back = unwrap(body)
    expect(back).toMatchObject({apiVersion: 'v1', kind: 'Secret'})
    expect(back.raw.equals(item.raw)).toBe(true)
    expect(objectMeta(back.raw).resourceVersion).toBe(expected.items[0]!.resourceVersion)
  })
})

describe('a Status in protobuf', () => {
  it("reads the apiserver's 409 for a stale resourceVersion", () => {
    expect(unwrap(conflict)).toMatchObject({apiVersion: 'v1', kind: 'Status'})
    const status = decodeStatus(unwrap(conflict).raw)
    expect(status).toMatchObject({
      code: 409,
      reason: 'Conflict',
      details: {name: 's-1', kind: 'secrets'},
    })
    expect(status.message).toContain('the object has been modified; please apply your changes to the latest version')
  })
})

describe('bodies that are not what the apiserver sends', () => {
  const fails = (f: () => unknown) => expect(f).toThrow(ProtobufDecodeError)

  it('refuses a body without the magic: JSON, empty, or another prefix', () => {
    fails(() => unwrap(Buffer.from('{"kind":"SecretList"}')))
    fails(() => unwrap(Buffer.alloc(0)))
    fails(() => unwrap(Buffer.from([0x6b, 0x38, 0x73])))
    fails(() => unwrap(Buffer.concat([Buffer.from('k8s\u0001'), page.subarray(4)])))
    expect(() => unwrap(Buffer.from('{}'))).toThrow(/does not start with the protobuf magic/)
  })

  it('refuses a magic with no object after it', () => {
    expect(() => unwrap(page.subarray(0, 4))).toThrow(/no raw object/)
  })

  it('refuses the page cut short anywhere before its last field', () => {
    // After raw the Unknown has only its empty contentEncoding and contentType (4 bytes).
    let refused = 0
    for (let n = 0; n < page.length - 4; n++) {
      const cut = page.subarray(0, n)
      expect(() => decodeList(unwrap(cut).raw), `cut at ${n} of ${page.length}`).toThrow(ProtobufDecodeError)
      refused++
    }
    expect(refused).toBe(page.length - 4)
  })

  it('refuses an item cut short inside the list, and an item without metadata.name', () => {
    const raw = unwrap(page).raw
    fails(() => decodeList(raw.subarray(0, raw.length - 3)))
    // a list whose one item is an empty message
    fails(() => decodeList(Buffer.from([0x12, 0x00])))
    fails(() => objectMeta(Buffer.alloc(0)))
  })

  it('refuses a compressed raw (contentEncoding set)', () => {
    const body = Buffer.concat([
      wrap({apiVersion: 'v1', kind: 'Secret'}, Buffer.alloc(0)),
      Buffer.from([0x1a, 0x04]),
      Buffer.from('gzip'),
    ])
    expect(() => unwrap(body)).toThrow(/contentEncoding "gzip"/)
  })
})
