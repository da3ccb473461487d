/** Issue 13 item 6: an etcd endpoint that accepts and never answers costs one timeout, the one --request-timeout sets. */
import net from 'node:net'
import type {AddressInfo} from 'node:net'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {DirectEtcdReader} from '../../../src/etcd/direct-etcd-reader.js'
import {etcdOptionsFromFlags} from '../../../src/flags/etcd.js'

let server: net.Server
const sockets: net.Socket[] = []
let endpoint: string

beforeAll(async () => {
  // accepts every connection and never writes a byte
  server = net.createServer((socket) => void sockets.push(socket))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  for (const s of sockets) s.destroy()
  await new Promise((resolve) => server.close(resolve))
})

describe('direct etcd reads against an endpoint that never answers', {timeout: 60_000}, () => {
  it('give up after --request-timeout, naming the endpoint (exit 3), instead of ~95 s of retries', async () => {
    const options = etcdOptionsFromFlags({'etcd-endpoints': endpoint, 'request-timeout': '2s'})
    expect(options.timeoutMs).toBe(2000)
    const reader = new DirectEtcdReader({endpoints: options.endpoints, timeoutMs: options.timeoutMs})
    const started = performance.now()
    const error = await reader.get('/registry/secrets/default/x').then(
      () => undefined,
      (e: unknown) => e,
    )
    const seconds = (performance.now() - started) / 1000
    await reader.close()
    expect(error).toMatchObject({exitCode: 3, code: 'ETCD_UNREACHABLE'})
    expect((error as Error).message).toContain(endpoint)
    // one timeout, not etcd3's retries; a loaded machine may add a little
    expect(seconds).toBeGreaterThanOrEqual(1.9)
    expect(seconds).toBeLessThan(15)
  })

  it('a range (the scans) is bounded the same way', async () => {
    const reader = new DirectEtcdReader({endpoints: [endpoint], timeoutMs: 1500})
    const started = performance.now()
    const pages = async () => {
      for await (const _ of reader.range('/registry/secrets/')) void _
    }
    await expect(pages()).rejects.toMatchObject({code: 'ETCD_UNREACHABLE'})
    await reader.close()
    expect((performance.now() - started) / 1000).toBeLessThan(15)
  })
})
