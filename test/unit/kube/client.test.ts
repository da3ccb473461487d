import {execFile} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import {type AddressInfo, createServer, type Socket} from 'node:net'
import {join} from 'node:path'
import {promisify} from 'node:util'

import protobuf from 'protobufjs/minimal.js'
import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest'

import {PluginError} from '../../../src/errors.js'
import {connectCluster} from '../../../src/kube/connect.js'
import {toPluginError} from '../../../src/kube/errors.js'
import {wrap} from '../../../src/kube/protobuf.js'
import {ResourceIndex} from '../../../src/kube/resource-index.js'
import {type ApiResource, type KubeCluster, KubeApiError} from '../../../src/kube/types.js'
import {FakeApiServer, status, writeKubeconfig} from '../../helpers/fake-apiserver.js'
import {fileTempDir, testTempDir} from '../../helpers/temp-dir.js'
import {makeTls, type TlsFixture} from '../../helpers/tls.js'

const secrets: ApiResource = {group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true}
const pandas: ApiResource = {
  group: 'awesome.bears.example',
  version: 'v1',
  resource: 'pandas',
  kind: 'Panda',
  namespaced: true,
}

const execFileAsync = promisify(execFile)

let tls: TlsFixture
let server: FakeApiServer
let other: FakeApiServer
let cluster: KubeCluster
const dir = fileTempDir('kube-client-test')

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a failure')
    },
    (e: unknown) => e,
  )
}

/**
 * A cluster (--request-timeout 2.5 s) whose server accepts connections and never says a word, not
 * even TLS; held = its connections.
 */
async function silentCluster(
  name: string,
): Promise<{hung: KubeCluster; endpoint: string; held: Socket[]; stop(): Promise<void>}> {
  const held: Socket[] = []
  const silent = createServer((socket) => void held.push(socket))
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  const endpoint = `127.0.0.1:${(silent.address() as AddressInfo).port}`
  const hung = await connectCluster({kubeconfig: writeKubeconfig(dir, tls, endpoint, {name}), requestTimeoutMs: 2500})
  return {
    hung,
    endpoint,
    held,
    async stop() {
      hung.close()
      for (const socket of held) socket.destroy()
      await new Promise((resolve) => silent.close(resolve))
    },
  }
}

beforeAll(async () => {
  tls = makeTls(dir)
  server = new FakeApiServer(tls)
  other = new FakeApiServer(tls)
  await server.start()
  await other.start()
  cluster = await connectCluster({kubeconfig: writeKubeconfig(dir, tls, server.endpoint, {namespace: 'team-a'})})
  // openssl key generation and the lazy client-node import are slow on a loaded 2-core machine
}, 120_000)

afterAll(async () => {
  cluster?.close()
  await server?.stop()
  await other?.stop()
})

beforeEach(() => {
  server.routes = []
  server.requests.length = 0
})

/** A Secret message {metadata {name, namespace, resourceVersion}, data {v: value}} as k8s.io/api encodes it. */
function secretMessage(name: string, resourceVersion: string, value: string): Buffer {
  const w = protobuf.Writer.create()
  w.uint32(0x0a)
    .fork()
    .uint32(0x0a)
    .string(name)
    .uint32(0x1a)
    .string('default')
    .uint32(0x32)
    .string(resourceVersion)
    .ldelim()
  w.uint32(0x12).fork().uint32(0x0a).string('v').uint32(0x12).bytes(Buffer.from(value)).ldelim()
  return Buffer.from(w.finish())
}

describe('RestObjectClient in protobuf (built-in resources) and JSON (custom resources)', () => {
  const PB = 'application/vnd.kubernetes.protobuf'
  const s1 = secretMessage('s1', '7', 'one')
  const s2 = secretMessage('s2', '8', 'two')
  const listBody = () => {
    const w = protobuf.Writer.create()
    w.uint32(0x0a).fork().uint32(0x12).string('42').uint32(0x1a).string('next').ldelim()
    w.uint32(0x12).bytes(s1).uint32(0x12).bytes(s2)
    return wrap({apiVersion: 'v1', kind: 'SecretList'}, w.finish())
  }

  it('asks for protobuf, lists metadata, and PUTs each item back as the bytes it was listed as', async () => {
    server.routes.push((r) => (r.method === 'GET' ? {body: listBody(), headers: {'Content-Type': PB}} : undefined))
    server.routes.push((r) =>
      r.method === 'PUT'
        ? {
            body: wrap({apiVersion: 'v1', kind: 'Secret'}, secretMessage('s1', '99', 'one')),
            headers: {'Content-Type': PB},
          }
        : undefined,
    )
    const page = await cluster.objects.list(secrets, {namespace: 'default', limit: 2, protobuf: true})
    expect(server.requests[0]!.headers.accept).toBe('application/vnd.kubernetes.protobuf, application/json')
    // what JSON would show of the items (their bytes ride along under a symbol)
    expect(JSON.parse(JSON.stringify(page))).toEqual({
      items: [
        {apiVersion: 'v1', kind: 'Secret', metadata: {name: 's1', namespace: 'default', resourceVersion: '7'}},
        {apiVersion: 'v1', kind: 'Secret', metadata: {name: 's2', namespace: 'default', resourceVersion: '8'}},
      ],
      continueToken: 'next',
      resourceVersion: '42',
      encoding: 'protobuf',
    })
    // a copy made by spreading (as the engine does) still writes the listed bytes
    const stored = await cluster.objects.replace(secrets, {...page.items[0]!})
    const put = server.requests[1]!
    expect(put.method).toBe('PUT')
    expect(put.url.pathname).toBe('/api/v1/namespaces/default/secrets/s1')
    expect(put.headers['content-type']).toBe(PB)
    expect(put.raw.equals(wrap({apiVersion: 'v1', kind: 'Secret'}, s1))).toBe(true)
    expect({...stored.metadata}).toEqual({name: 's1', namespace: 'default', resourceVersion: '99'})
  })

  it('reads a 409 and a 404 sent in protobuf as the same errors as in JSON', async () => {
    // metav1.Status {message = 3, reason = 4, details = 5 {name = 1, kind = 3}, code = 6}
    const w = protobuf.Writer.create()
    w.uint32(0x12).string('Failure')
    w.uint32(0x1a).string('Operation cannot be fulfilled on secrets "s-1": the object has been modified')
    w.uint32(0x22).string('Conflict')
    w.uint32(0x2a).fork().uint32(0x0a).string('s-1').uint32(0x1a).string('secrets').ldelim()
    w.uint32(0x30).int32(409)
    const conflictStatus = wrap({apiVersion: 'v1', kind: 'Status'}, w.finish())
    server.routes.push((r) =>
      r.method === 'GET' && r.url.pathname.endsWith('/secrets')
        ? {body: listBody(), headers: {'Content-Type': PB}}
        : undefined,
    )
    server.routes.push((r) =>
      r.method === 'PUT' ? {status: 409, body: conflictStatus, headers: {'Content-Type': PB}} : undefined,
    )
    server.routes.push(() => ({status: 404, body: Buffer.from('k8s\u0000'), headers: {'Content-Type': PB}}))
    const page = await cluster.objects.list(secrets, {namespace: 'default', protobuf: true})
    const conflict = (await rejection(cluster.objects.replace(secrets, page.items[0]!))) as KubeApiError
    expect(conflict).toBeInstanceOf(KubeApiError)
    expect(conflict).toMatchObject({status: 409, reason: 'Conflict', details: {name: 's-1', kind: 'secrets'}})
    expect(conflict.message).toContain('the object has been modified')
    // an undecodable error body still gives the status and its default reason
    const missing = (await rejection(cluster.objects.get(secrets, 'gone', 'default', {protobuf: true}))) as KubeApiError
    expect(missing).toMatchObject({status: 404, reason: 'NotFound'})
  })

  it('a server that answers JSON (custom resources) is read and written in JSON', async () => {
    server.routes.push((r) =>
      r.method === 'GET'
        ? {
            body: {
              kind: 'PandaList',
              metadata: {},
              items: [{metadata: {name: 'p1', namespace: 'zoo', resourceVersion: '3'}}],
            },
          }
        : undefined,
    )
    server.routes.push((r) => (r.method === 'PUT' ? {body: r.body} : undefined))
    const page = await cluster.objects.list(pandas, {namespace: 'zoo', protobuf: true})
    expect(page.encoding).toBe('json')
    await cluster.objects.replace(pandas, page.items[0]!)
    expect(server.requests[1]!.headers['content-type']).toBe('application/json')
    expect(server.requests[1]!.body).toMatchObject({apiVersion: 'awesome.bears.example/v1', kind: 'Panda'})
  })

  it('a body that claims protobuf but is not fails with a decode error', async () => {
    server.routes.push(() => ({body: Buffer.from('{"items":[]}'), headers: {'Content-Type': PB}}))
    await expect(cluster.objects.list(secrets, {namespace: 'default', protobuf: true})).rejects.toThrow(
      /cannot decode the API server's protobuf answer: the body does not start with the protobuf magic/,
    )
  })
})

describe('RestObjectClient against an HTTPS API server with client certificates', () => {
  it('reads the context namespace and authenticates with the kubeconfig client certificate', async () => {
    expect(cluster.context.namespace).toBe('team-a')
    server.routes.push(() => ({body: {items: []}}))
    await cluster.objects.list(secrets, {namespace: 'team-a'})
    expect(server.requests[0].clientCN).toBe('kubernetes-admin')
  })

  it('lists with limit, continue and selectors and restores apiVersion/kind on items', async () => {
    server.routes.push((r) =>
      r.url.pathname === '/api/v1/namespaces/default/secrets'
        ? {
            body: {
              kind: 'SecretList',
              metadata: {continue: 'next-page', resourceVersion: '42'},
              items: [{metadata: {name: 's1', namespace: 'default', resourceVersion: '7'}}],
            },
          }
        : undefined,
    )
    const page = await cluster.objects.list(secrets, {
      namespace: 'default',
      limit: 2,
      continueToken: 'abc',
      labelSelector: 'a=b',
      fieldSelector: 'type=Opaque',
    })
    expect(page).toEqual({
      items: [{apiVersion: 'v1', kind: 'Secret', metadata: {name: 's1', namespace: 'default', resourceVersion: '7'}}],
      continueToken: 'next-page',
      resourceVersion: '42',
      encoding: 'json',
    })
    expect(Object.fromEntries(server.requests[0].url.searchParams)).toEqual({
      limit: '2',
      continue: 'abc',
      labelSelector: 'a=b',
      fieldSelector: 'type=Opaque',
    })
  })

  it('lists across all namespaces and addresses custom resources under /apis', async () => {
    server.routes.push((r) =>
      r.url.pathname === '/api/v1/secrets' ||
      r.url.pathname === '/apis/awesome.bears.example/v1/namespaces/zoo/pandas/p1'
        ? {body: {items: [], metadata: {name: 'p1'}}}
        : undefined,
    )
    await cluster.objects.list(secrets, {})
    const panda = await cluster.objects.get(pandas, 'p1', 'zoo')
    expect(panda).toMatchObject({apiVersion: 'awesome.bears.example/v1', kind: 'Panda'})
  })

  it('replace PUTs the object with its resourceVersion and refuses one without', async () => {
    server.routes.push((r) => (r.method === 'PUT' ? {body: r.body} : undefined))
    const object = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {name: 's1', namespace: 'default', resourceVersion: '9'},
    }
    await cluster.objects.replace(secrets, object)
    expect(server.requests[0]).toMatchObject({method: 'PUT', body: object})
    expect(server.requests[0].url.pathname).toBe('/api/v1/namespaces/default/secrets/s1')
    await expect(
      cluster.objects.replace(secrets, {...object, metadata: {name: 's1', namespace: 'default'}}),
    ).rejects.toThrow(/resourceVersion/)
  })

  it('create POSTs to the collection, delete DELETEs the object', async () => {
    server.routes.push((r) =>
      r.method === 'POST'
        ? {status: 201, body: {...(r.body as object), metadata: {name: 'n', namespace: 'default', uid: 'u1'}}}
        : {body: {kind: 'Status', status: 'Success'}},
    )
    const created = await cluster.objects.create(secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {name: 'n', namespace: 'default'},
    })
    expect(created.metadata.uid).toBe('u1')
    await cluster.objects.delete(secrets, 'n', 'default')
    expect(server.requests.map((r) => `${r.method} ${r.url.pathname}`)).toEqual([
      'POST /api/v1/namespaces/default/secrets',
      'DELETE /api/v1/namespaces/default/secrets/n',
    ])
  })

  it('410 Gone carries the continue hint; 429 carries Retry-After; 409 keeps reason Conflict', async () => {
    server.routes.push((r) =>
      r.url.searchParams.get('continue') === 'old'
        ? status(410, 'Expired', 'The provided continue parameter is too old', {metadata: {continue: 'fresh'}})
        : undefined,
    )
    server.routes.push((r) =>
      r.method === 'GET' && r.url.pathname.endsWith('/busy')
        ? {...status(429, 'TooManyRequests', 'slow down'), headers: {'Retry-After': '3'}}
        : undefined,
    )
    server.routes.push((r) =>
      r.method === 'PUT'
        ? status(409, 'Conflict', 'Operation cannot be fulfilled on secrets "s1": the object has been modified')
        : undefined,
    )
    const gone = (await rejection(
      cluster.objects.list(secrets, {namespace: 'default', continueToken: 'old'}),
    )) as KubeApiError
    expect(gone).toBeInstanceOf(KubeApiError)
    expect(gone).toMatchObject({status: 410, reason: 'Expired', continueHint: 'fresh'})
    const busy = (await rejection(cluster.objects.get(secrets, 'busy', 'default'))) as KubeApiError
    expect(busy).toMatchObject({status: 429, retryAfterSeconds: 3})
    const conflict = (await rejection(
      cluster.objects.replace(secrets, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {name: 's1', namespace: 'default', resourceVersion: '1'},
      }),
    )) as KubeApiError
    expect(conflict).toMatchObject({status: 409, reason: 'Conflict'})
  })

  it('403 becomes a precondition error naming verb, resource and RBAC', async () => {
    server.routes.push(() =>
      status(
        403,
        'Forbidden',
        'secrets is forbidden: User "viewer" cannot list resource "secrets" in API group "" in the namespace "default"',
      ),
    )
    const error = toPluginError(await rejection(cluster.objects.list(secrets, {namespace: 'default'}))) as PluginError
    expect(error).toBeInstanceOf(PluginError)
    expect(error.exitCode).toBe(3)
    expect(error.code).toBe('KUBE_FORBIDDEN')
    expect(error.message).toContain('list secrets in namespace default')
    expect(error.hint).toContain('kubectl auth can-i list secrets -n default')
  })

  it('a refused connection names the server and maps to exit 3', async () => {
    const dead = await connectCluster({kubeconfig: writeKubeconfig(dir, tls, '127.0.0.1:1', {name: 'dead'})})
    const raw = (await rejection(dead.objects.get(secrets, 'x', 'default'))) as KubeApiError
    expect(raw).toMatchObject({status: 0, reason: 'Unreachable'})
    const error = toPluginError(raw) as PluginError
    expect(error.exitCode).toBe(3)
    expect(error.message).toContain('127.0.0.1:1: connection refused')
    dead.close()
  })

  it('a server certificate the kubeconfig CA does not sign is a TLS error', async () => {
    const otherTls = makeTls(testTempDir('kube-client-other-ca'))
    const wrongCa = await connectCluster({
      kubeconfig: writeKubeconfig(
        dir,
        {...otherTls, clientCert: tls.clientCert, clientKey: tls.clientKey},
        server.endpoint,
        {name: 'wrong-ca'},
      ),
    })
    const error = toPluginError(await rejection(wrongCa.objects.get(secrets, 'x', 'default'))) as PluginError
    expect(error.code).toBe('KUBE_TLS')
    wrongCa.close()
  })

  it('--request-timeout bounds a request that never answers', async () => {
    const slow = await connectCluster({
      kubeconfig: writeKubeconfig(dir, tls, server.endpoint, {name: 'slow'}),
      requestTimeoutMs: 200,
    })
    server.routes.push(() => ({hang: true}))
    const error = (await rejection(slow.objects.get(secrets, 'x', 'default'))) as KubeApiError
    expect(error).toMatchObject({status: 0, reason: 'Timeout'})
    slow.close()
  })

  it('a server that accepts and never answers costs one --request-timeout, not one per request (issue 13)', async () => {
    const {hung, endpoint, held, stop} = await silentCluster('silent')
    try {
      const started = performance.now()
      const first = (await rejection(hung.objects.get(secrets, 'x', 'default'))) as KubeApiError
      // the whole request is bounded: node's socket idle timer, armed only after connect, took twice as long
      expect(performance.now() - started).toBeLessThan(4900)
      expect(first).toMatchObject({status: 0, reason: 'Timeout'})
      expect(first.message).toBe(`cannot reach the API server at ${endpoint}: no answer within 2500 ms`)
      const seen = held.length
      const next = (await rejection(hung.objects.list(secrets, {namespace: 'default'}))) as KubeApiError
      expect(next).toMatchObject({status: 0, reason: 'Timeout', message: first.message})
      expect(next.where).toMatchObject({verb: 'list'})
      expect(held.length).toBe(seen)
    } finally {
      await stop()
    }
  })

  it('a server that has answered once is waited for again after a timeout', async () => {
    const flaky = await connectCluster({
      kubeconfig: writeKubeconfig(dir, tls, server.endpoint, {name: 'flaky'}),
      requestTimeoutMs: 2000, // the first request (TLS set-up) must fit in it on a loaded machine
    })
    server.routes.push((req) => (req.url.pathname.endsWith('/first') ? {body: {metadata: {name: 'first'}}} : undefined))
    server.routes.push(() => ({hang: true}))
    try {
      await flaky.objects.get(secrets, 'first', 'default')
      expect(await rejection(flaky.objects.get(secrets, 'x', 'default'))).toMatchObject({reason: 'Timeout'})
      const before = server.requests.length
      expect(await rejection(flaky.objects.get(secrets, 'y', 'default'))).toMatchObject({reason: 'Timeout'})
      expect(server.requests.length).toBe(before + 1)
    } finally {
      flaky.close()
    }
  })
})

describe('basic auth (kubeconfig username and password)', () => {
  it('is sent as an Authorization header over HTTP/1.1 and HTTP/2', async () => {
    const file = writeKubeconfig(dir, tls, server.endpoint, {name: 'basic'})
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace(
        '    client-key:',
        '    username: alice\n    password: s3cret\n    client-key:',
      ),
    )
    server.routes.push(() => ({body: {metadata: {name: 'x'}}}))
    try {
      for (const http2 of ['', '1']) {
        process.env.KUBECTL_ENCRYPTION_HTTP2 = http2
        const client = await connectCluster({kubeconfig: file})
        try {
          await client.objects.get(secrets, 'x', 'default')
        } finally {
          client.close()
        }
      }
    } finally {
      delete process.env.KUBECTL_ENCRYPTION_HTTP2
    }
    const basic = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`
    expect(server.requests.map((r) => [r.httpVersion, r.headers.authorization])).toEqual([
      ['1.1', basic],
      ['2.0', basic],
    ])
  })
})

describe('KUBECTL_ENCRYPTION_HTTP2: HTTP/2 where the server offers it, HTTP/1.1 where not', () => {
  const get = (client: KubeCluster, name: string) => client.objects.get(secrets, name, 'default')
  const named = (r: {url: URL}) => ({body: {metadata: {name: r.url.pathname.split('/').at(-1)}}})

  it('without it, HTTP/1.1 also to a server that offers h2', async () => {
    server.routes.push(named)
    const client = await connectCluster({kubeconfig: writeKubeconfig(dir, tls, server.endpoint, {name: 'default-h1'})})
    try {
      await Promise.all([get(client, 'a'), get(client, 'b')])
      expect(server.requests.map((r) => r.httpVersion)).toEqual(['1.1', '1.1'])
    } finally {
      client.close()
    }
  })

  describe('with it', () => {
    beforeAll(() => {
      process.env.KUBECTL_ENCRYPTION_HTTP2 = '1'
    })
    afterAll(() => {
      delete process.env.KUBECTL_ENCRYPTION_HTTP2
    })

    it('multiplexes concurrent requests over one HTTP/2 connection, as client-go does', async () => {
      const h2 = await connectCluster({kubeconfig: writeKubeconfig(dir, tls, server.endpoint, {name: 'h2'})})
      server.routes.push(named)
      const before = server.connections
      try {
        const names = Array.from({length: 40}, (_, i) => `s${i}`)
        const objects = await Promise.all(names.map((name) => get(h2, name)))
        expect(objects.map((o) => o.metadata.name)).toEqual(names)
        expect(server.requests.map((r) => r.httpVersion)).toEqual(names.map(() => '2.0'))
        expect(server.requests.map((r) => r.clientCN)).toEqual(names.map(() => 'kubernetes-admin'))
        expect(server.connections - before).toBe(1)
      } finally {
        h2.close()
      }
    })

    it('speaks HTTP/1.1 to a server that does not offer h2: reads, writes and errors as over HTTP/2', async () => {
      const h1 = new FakeApiServer(tls, {http2: false})
      await h1.start()
      const client = await connectCluster({kubeconfig: writeKubeconfig(dir, tls, h1.endpoint, {name: 'h1'})})
      h1.routes.push((r) =>
        r.url.pathname.endsWith('/taken')
          ? status(409, 'Conflict', 'Operation cannot be fulfilled on secrets "taken": the object has been modified')
          : undefined,
      )
      h1.routes.push(named)
      const secret = (name: string) => ({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {name, namespace: 'default', resourceVersion: '5'},
      })
      try {
        expect((await get(client, 'a')).metadata.name).toBe('a')
        expect((await client.objects.replace(secrets, secret('b'))).metadata.name).toBe('b')
        const conflict = await rejection(client.objects.replace(secrets, secret('taken')))
        expect(conflict).toMatchObject({status: 409, reason: 'Conflict'})
        expect(h1.requests.map((r) => [r.method, r.httpVersion, r.clientCN])).toEqual([
          ['GET', '1.1', 'kubernetes-admin'],
          ['PUT', '1.1', 'kubernetes-admin'],
          ['PUT', '1.1', 'kubernetes-admin'],
        ])
        expect(h1.requests[1].body).toMatchObject(secret('b'))
      } finally {
        client.close()
        await h1.stop()
      }
    })

    it('connects again after the server cut its connections (an apiserver restart)', async () => {
      const client = await connectCluster({kubeconfig: writeKubeconfig(dir, tls, server.endpoint, {name: 'restart'})})
      server.routes.push(named)
      try {
        await get(client, 'before')
        const before = server.connections
        server.dropConnections()
        // The cut may reach the client before or after its next request: that one may fail as a
        // network error (status 0, which rewrite retries); the one after it must succeed.
        const next = await get(client, 'after').catch((error: unknown) => error)
        if (next instanceof Error) expect(next).toMatchObject({status: 0})
        expect((await get(client, 'again')).metadata.name).toBe('again')
        expect(server.connections - before).toBe(1)
      } finally {
        client.close()
      }
    })

    it('a request in flight when the connection is cut fails as a network error, not a hang', async () => {
      const client = await connectCluster({kubeconfig: writeKubeconfig(dir, tls, server.endpoint, {name: 'cut'})})
      server.routes.push(() => ({hang: true}))
      try {
        const pending = rejection(get(client, 'held'))
        while (server.requests.length === 0) await new Promise((resolve) => setImmediate(resolve))
        server.dropConnections()
        const error = (await pending) as KubeApiError
        expect(error).toBeInstanceOf(KubeApiError)
        expect(error).toMatchObject({status: 0, reason: 'Unreachable'})
        expect(error.message).toMatch(new RegExp(`^cannot reach the API server at ${server.endpoint}: `))
      } finally {
        client.close()
      }
    })

    it('an idle HTTP/2 connection does not keep a finished command alive', async () => {
      server.routes.push(named)
      // A child with KubeHttp alone (no client-node, which is slow to compile on a loaded machine).
      const script = join(dir, 'idle-session.mts')
      const files = {ca: tls.caCert, cert: tls.clientCert, key: tls.clientKey}
      writeFileSync(
        script,
        `import {readFileSync} from 'node:fs'
import {KubeHttp} from ${JSON.stringify(join(process.cwd(), 'src/kube/http.js'))}
const files = ${JSON.stringify(files)}
const kc = {applyToHTTPSOptions: async (opts) => Object.assign(opts, {ca: readFileSync(files.ca), cert: readFileSync(files.cert), key: readFileSync(files.key)})}
const http = new KubeHttp({kc, user: {}, context: {server: 'https://${server.endpoint}'}})
const answer = await http.json({method: 'GET', path: '/api/v1/namespaces/default/secrets/one'})
console.log(answer.metadata.name) // no close(): the process must still end
`,
      )
      // the test's timeout is what fails if the child hangs
      const {stdout} = await execFileAsync(process.execPath, ['--import', 'tsx', script], {cwd: process.cwd()})
      expect(stdout.trim()).toBe('one')
      expect(server.requests.map((r) => r.httpVersion)).toEqual(['2.0'])
    }, 120_000)

    it('a server that accepts and never finishes TLS costs one --request-timeout', async () => {
      const {hung, held, stop} = await silentCluster('silent-h2')
      try {
        const started = performance.now()
        const first = await rejection(get(hung, 'x'))
        expect(performance.now() - started).toBeLessThan(4900)
        expect(first).toMatchObject({status: 0, reason: 'Timeout'})
        const seen = held.length
        expect(await rejection(get(hung, 'y'))).toMatchObject({status: 0, reason: 'Timeout'})
        expect(held.length).toBe(seen)
      } finally {
        await stop()
      }
    })
  })
})

describe('discovery', () => {
  it('lists core and group resources, skips subresources and groups whose discovery fails', async () => {
    server.routes.push((r) => {
      switch (r.url.pathname) {
        case '/api/v1':
          return {
            body: {
              groupVersion: 'v1',
              resources: [
                {
                  name: 'secrets',
                  singularName: 'secret',
                  namespaced: true,
                  kind: 'Secret',
                  verbs: ['list', 'create'],
                  shortNames: [],
                },
                {name: 'pods/exec', namespaced: true, kind: 'PodExecOptions', verbs: ['create']},
                {
                  name: 'configmaps',
                  singularName: 'configmap',
                  namespaced: true,
                  kind: 'ConfigMap',
                  verbs: ['list'],
                  shortNames: ['cm'],
                },
              ],
            },
          }
        case '/apis':
          return {
            body: {
              groups: [
                {name: 'apps', preferredVersion: {groupVersion: 'apps/v1', version: 'v1'}},
                {
                  name: 'awesome.bears.example',
                  preferredVersion: {groupVersion: 'awesome.bears.example/v1', version: 'v1'},
                },
                {name: 'broken.example', preferredVersion: {groupVersion: 'broken.example/v1', version: 'v1'}},
              ],
            },
          }
        case '/apis/apps/v1':
          return {
            body: {
              groupVersion: 'apps/v1',
              resources: [
                {
                  name: 'deployments',
                  singularName: 'deployment',
                  namespaced: true,
                  kind: 'Deployment',
                  verbs: ['list'],
                  shortNames: ['deploy'],
                },
              ],
            },
          }
        case '/apis/awesome.bears.example/v1':
          return {
            body: {
              groupVersion: 'awesome.bears.example/v1',
              resources: [{name: 'pandas', singularName: 'panda', namespaced: true, kind: 'Panda', verbs: ['list']}],
            },
          }
        case '/apis/broken.example/v1':
          return status(503, 'ServiceUnavailable', 'the server is currently unable to handle the request')
        default:
          return undefined
      }
    })
    const fresh = await connectCluster({kubeconfig: writeKubeconfig(dir, tls, server.endpoint, {name: 'disc'})})
    const index = new ResourceIndex(await fresh.discovery.resources())
    expect(
      index
        .all()
        .map((r) => `${r.resource}.${r.group}`)
        .sort(),
    ).toEqual(['configmaps.', 'deployments.apps', 'pandas.awesome.bears.example', 'secrets.'])
    expect(index.resolve('secret')?.resource).toBe('secrets')
    expect(index.resolve('cm')?.resource).toBe('configmaps')
    expect(index.resolve('deploy')?.group).toBe('apps')
    expect(index.resolve('pandas.awesome.bears.example')?.kind).toBe('Panda')
    expect(index.resolve('nothing')).toBeUndefined()
    expect(
      index
        .expand('*.')
        .map((r) => r.resource)
        .sort(),
    ).toEqual(['configmaps', 'secrets'])
    expect(index.expand('*.apps').map((r) => r.resource)).toEqual(['deployments'])
    expect(index.expand('*.*')).toHaveLength(4)
    expect(index.expand('pandas.awesome.bears.example')[0].kind).toBe('Panda')
    expect(index.expand('widgets.example.com')).toEqual([])
    fresh.close()
  })
})

describe('pods/exec over the v4 channel protocol', () => {
  it('passes argv as command parameters, captures stdout/stderr and the exit code', async () => {
    server.exec = (url, socket) => {
      const argv = url.searchParams.getAll('command')
      socket.send(Buffer.concat([Buffer.from([1]), Buffer.from(JSON.stringify(argv))]))
      socket.send(Buffer.concat([Buffer.from([2]), Buffer.from('warning on stderr')]))
      const exitCode = argv.includes('fail') ? '3' : undefined
      const done = exitCode
        ? {
            status: 'Failure',
            reason: 'NonZeroExitCode',
            message: 'command terminated with non-zero exit code',
            details: {causes: [{reason: 'ExitCode', message: exitCode}]},
          }
        : {status: 'Success'}
      socket.send(Buffer.concat([Buffer.from([3]), Buffer.from(JSON.stringify(done))]))
      socket.close()
    }
    const ok = await cluster.exec.exec({namespace: 'kube-system', name: 'etcd-cp1', container: 'etcd'}, [
      'etcdctl',
      'get',
      '/registry/a b',
      '--prefix',
    ])
    expect(JSON.parse(ok.stdout.toString())).toEqual(['etcdctl', 'get', '/registry/a b', '--prefix'])
    expect(ok.stderr.toString()).toBe('warning on stderr')
    expect(ok.code).toBe(0)
    const failed = await cluster.exec.exec({namespace: 'kube-system', name: 'etcd-cp1'}, ['etcdctl', 'fail'])
    expect(failed.code).toBe(3)
  })

  it('a failure that is not an exit code (no such executable) is thrown', async () => {
    server.exec = (_url, socket) => {
      socket.send(
        Buffer.concat([
          Buffer.from([3]),
          Buffer.from(
            JSON.stringify({
              status: 'Failure',
              reason: 'InternalError',
              message: 'exec: "etcdctl": executable file not found in $PATH',
            }),
          ),
        ]),
      )
      socket.close()
    }
    await expect(cluster.exec.exec({namespace: 'kube-system', name: 'etcd-cp1'}, ['etcdctl'])).rejects.toThrow(
      /executable file not found/,
    )
  })

  it('RBAC 403 on pods/exec keeps the apiserver message and the resource', async () => {
    server.routes.push((r) =>
      r.method === 'UPGRADE'
        ? status(403, 'Forbidden', 'pods "etcd-cp1" is forbidden: User "viewer" cannot create resource "pods/exec"')
        : undefined,
    )
    const error = (await rejection(
      cluster.exec.exec({namespace: 'kube-system', name: 'etcd-cp1'}, ['etcdctl']),
    )) as KubeApiError
    expect(error).toMatchObject({status: 403, reason: 'Forbidden'})
    const plugin = toPluginError(error) as PluginError
    expect(plugin.hint).toContain("'create' on 'pods/exec'")
  })
})

describe('endpoint probe', () => {
  it('GETs a path on one specific apiserver endpoint with the same credentials, and returns non-2xx as data', async () => {
    other.routes = [
      (r) => (r.url.pathname === '/readyz' ? {status: 500, body: '[-]etcd failed\nreadyz check failed'} : undefined),
    ]
    const answer = await cluster.probe.get('/readyz?verbose', {endpoint: other.endpoint})
    expect(answer.status).toBe(500)
    expect(answer.body).toContain('[-]etcd failed')
    expect(other.requests.at(-1)?.url.search).toBe('?verbose=')
    expect(other.requests.at(-1)?.clientCN).toBe('kubernetes-admin')
  })
})
