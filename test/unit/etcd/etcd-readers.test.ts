import {ensureKubeBinaries} from '../../sandbox/kube-binaries.js'
import {execFile} from 'node:child_process'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {PluginError} from '../../../src/errors.js'
import {DirectEtcdReader} from '../../../src/etcd/direct-etcd-reader.js'
import {adaptivePageSize, type EtcdKeyValue, type EtcdReader, MAX_PAGE_KEYS} from '../../../src/etcd/etcd-reader.js'
import {EtcdctlReader, type EtcdctlRunner} from '../../../src/etcd/etcdctl-reader.js'
import {freePort, type LocalEtcd, startEtcd} from '../../helpers/local-etcd.js'
import {fileTempDir} from '../../helpers/temp-dir.js'
import {makeTls, type TlsFixture} from '../../helpers/tls.js'

const execFileAsync = promisify(execFile)

/** Runs etcdctl locally, as the pod or node would: argv only, no shell. */
/** Runs the argv here, as a node would; `etcdctl` is the sandbox's (built from source, as on a node). */
const localRunner: EtcdctlRunner = async (argv) => {
  const program = argv[0] === 'etcdctl' ? (await ensureKubeBinaries()).etcdctl : argv[0]
  try {
    const {stdout, stderr} = await execFileAsync(program, argv.slice(1), {
      encoding: 'buffer',
      maxBuffer: 256 * 1024 * 1024,
    })
    return {code: 0, stdout, stderr: stderr.toString()}
  } catch (error) {
    const e = error as {code: number; stdout: Buffer; stderr: Buffer}
    return {
      code: typeof e.code === 'number' ? e.code : 1,
      stdout: e.stdout ?? Buffer.alloc(0),
      stderr: e.stderr?.toString() ?? String(error),
    }
  }
}

async function collect(
  reader: EtcdReader,
  prefix: string,
  pageSize: number,
): Promise<{pages: number[]; kvs: EtcdKeyValue[]}> {
  const pages: number[] = []
  const kvs: EtcdKeyValue[] = []
  for await (const page of reader.range(prefix, {pageSize})) {
    pages.push(page.length)
    kvs.push(...page)
  }
  return {pages, kvs}
}

// A value with every byte 0x00-0xff, like an encrypted or protobuf value, and a NUL right after the magic.
const binary = Buffer.concat([Buffer.from('k8s\u0000', 'latin1'), Buffer.from(Array.from({length: 256}, (_, i) => i))])

async function seed(etcd: LocalEtcd) {
  await etcd.put('/registry/secrets/default/binary', binary)
  for (let i = 0; i < 23; i++)
    await etcd.put(`/registry/secrets/ns${String(i % 3)}/s${String(i).padStart(2, '0')}`, `value-${i}`)
  await etcd.put('/registry/secretsX/outside', 'not under the prefix /registry/secrets/')
  await etcd.put('/registry/configmaps/default/c', 'cm')
}

function readersFor(etcd: LocalEtcd, tls?: TlsFixture): Array<[string, EtcdReader]> {
  const certs = tls ? {cacert: tls.caCert, cert: tls.clientCert, key: tls.clientKey} : {}
  return [
    ['direct', new DirectEtcdReader({endpoints: [etcd.endpoint], ...certs})],
    [
      'etcdctl -w json',
      new EtcdctlReader(
        localRunner,
        {endpoint: etcd.endpoint, ...certs},
        {transport: 'exec', endpoint: etcd.endpoint, via: 'local'},
      ),
    ],
  ]
}

for (const mode of ['plain', 'mutual TLS'] as const) {
  describe(`etcd readers against a real etcd (${mode})`, () => {
    let etcd: LocalEtcd
    let readers: Array<[string, EtcdReader]>
    const tlsDir = mode === 'mutual TLS' ? fileTempDir('etcd-tls') : undefined
    beforeAll(async () => {
      const tls = tlsDir ? makeTls(tlsDir) : undefined
      etcd = await startEtcd(tls)
      await seed(etcd)
      readers = readersFor(etcd, tls)
    }, 30_000)
    afterAll(async () => {
      for (const [, reader] of readers ?? []) await reader.close()
      await etcd?.stop()
    })

    it('get returns the exact bytes and the mod revision; a missing key is undefined', async () => {
      for (const [name, reader] of readers) {
        const kv = await reader.get('/registry/secrets/default/binary')
        expect(kv?.value.equals(binary), name).toBe(true)
        expect(kv?.modRevision, name).toBeGreaterThan(0)
        expect(await reader.get('/registry/secrets/default/none'), name).toBeUndefined()
      }
    })

    it('range pages through exactly the keys under the prefix, in order, within the page size', async () => {
      for (const [name, reader] of readers) {
        const {pages, kvs} = await collect(reader, '/registry/secrets/', 5)
        expect(
          kvs.map((kv) => kv.key),
          name,
        ).toEqual([...kvs.map((kv) => kv.key)].sort())
        expect(kvs, name).toHaveLength(24)
        expect(new Set(kvs.map((kv) => kv.key)).size, name).toBe(24)
        expect(Math.max(...pages), name).toBeLessThanOrEqual(5)
        expect(pages.length, name).toBe(5)
        expect(
          kvs.some((kv) => kv.key.startsWith('/registry/secretsX')),
          name,
        ).toBe(false)
        expect(kvs.find((kv) => kv.key.endsWith('/binary'))?.value.equals(binary), name).toBe(true)
      }
    })

    it('an empty prefix yields no pages', async () => {
      for (const [name, reader] of readers)
        expect((await collect(reader, '/registry/nothing/', 5)).pages, name).toEqual([])
    })
  })
}

// A real etcd and dozens of etcdctl runs: the 20 s unit default is too short on a loaded machine.
describe('etcdctl pages grow while values are small (pageBytes), so exec and SSH pay fewer calls', {
  timeout: 180_000,
}, () => {
  it('aims at pageBytes from the last page, at most doubling, between pageSize and MAX_PAGE_KEYS', () => {
    // 1 KiB values: 8 KiB pages hold 8; a 1 MiB target is held back by the doubling
    expect(adaptivePageSize(5, 5, 8 * 1024, {values: 5, bytes: 5 * 1024})).toBe(8)
    expect(adaptivePageSize(5, 5, 1024 * 1024, {values: 5, bytes: 5 * 1024})).toBe(10)
    expect(adaptivePageSize(1600, 500, 1 << 30, {values: 1600, bytes: 1600})).toBe(MAX_PAGE_KEYS)
    // big values: back to pageSize at once
    expect(adaptivePageSize(2000, 500, 8 << 20, {values: 2000, bytes: 2000 * (1 << 20)})).toBe(500)
    expect(adaptivePageSize(40, 5, 8 << 20, {values: 0, bytes: 0})).toBe(40)
  })

  it('reads every key exactly once with fewer etcdctl runs for small values, and shrinks for big ones', async () => {
    const etcd = await startEtcd()
    try {
      for (let i = 0; i < 60; i++)
        await etcd.put(`/registry/secrets/small/s${String(i).padStart(2, '0')}`, 'x'.repeat(100))
      for (let i = 0; i < 12; i++)
        await etcd.put(`/registry/secrets/tbig/b${String(i).padStart(2, '0')}`, 'y'.repeat(64 * 1024))
      const limits: number[] = []
      const counting: EtcdctlRunner = (argv) => {
        limits.push(Number(argv.find((a) => a.startsWith('--limit='))?.slice('--limit='.length)))
        return localRunner(argv)
      }
      const reader = new EtcdctlReader(
        counting,
        {endpoint: etcd.endpoint},
        {transport: 'exec', endpoint: etcd.endpoint},
      )
      const pages: number[] = []
      const keys: string[] = []
      for await (const page of reader.range('/registry/secrets/', {pageSize: 4, pageBytes: 1000})) {
        pages.push(page.length)
        keys.push(...page.map((kv) => kv.key))
      }
      expect(keys).toHaveLength(72)
      expect(new Set(keys).size).toBe(72)
      expect(keys).toEqual([...keys].sort())
      // 100-byte values: 1000 bytes fit 10 keys; growth 4 -> 8 -> 10 (asked for one more to skip the key already read)
      expect(limits.slice(0, 3)).toEqual([4, 9, 11])
      // 64 KiB values: back to the 4 asked for
      expect(pages.at(-1)).toBeLessThanOrEqual(4)
      expect(Math.max(...pages)).toBeLessThanOrEqual(10)
      // without pageBytes: the page size as asked
      limits.length = 0
      for await (const page of reader.range('/registry/secrets/small/', {pageSize: 4}))
        expect(page.length).toBeLessThanOrEqual(4)
      expect(new Set(limits.slice(1))).toEqual(new Set([5]))
    } finally {
      await etcd.stop()
    }
  })
})

describe('direct pages grow while values are small and the next one is asked for ahead', {timeout: 180_000}, () => {
  it('reads every key exactly once with growing pages, shrinks for big values, and stops cleanly mid-way', async () => {
    const etcd = await startEtcd()
    const reader = new DirectEtcdReader({endpoints: [etcd.endpoint]})
    try {
      for (let i = 0; i < 60; i++)
        await etcd.put(`/registry/secrets/small/s${String(i).padStart(2, '0')}`, 'x'.repeat(100))
      for (let i = 0; i < 12; i++)
        await etcd.put(`/registry/secrets/tbig/b${String(i).padStart(2, '0')}`, 'y'.repeat(64 * 1024))
      const pages: number[] = []
      const keys: string[] = []
      for await (const page of reader.range('/registry/secrets/', {pageSize: 4, pageBytes: 1000})) {
        pages.push(page.length)
        keys.push(...page.map((kv) => kv.key))
        expect(page.every((kv) => kv.value.length === (kv.key.includes('/small/') ? 100 : 64 * 1024))).toBe(true)
      }
      expect(keys).toHaveLength(72)
      expect(new Set(keys).size).toBe(72)
      expect(keys).toEqual([...keys].sort())
      // 100-byte values: 1000 bytes fit 10 keys; growth 4 -> 8 -> 10; 64 KiB values: back to 4
      expect(pages.slice(0, 3)).toEqual([4, 8, 10])
      expect(pages.at(-1)).toBeLessThanOrEqual(4)
      // leaving after the first page (a request for the next one is in flight) ends the listing quietly
      for await (const page of reader.range('/registry/secrets/', {pageSize: 4, pageBytes: 1000})) {
        expect(page).toHaveLength(4)
        break
      }
      // the values are the stored bytes, kept after later pages arrived
      const all = []
      for await (const page of reader.range('/registry/secrets/small/', {pageSize: 7})) all.push(...page)
      expect(all.map((kv) => kv.value.toString())).toEqual(Array.from({length: 60}, () => 'x'.repeat(100)))
    } finally {
      await reader.close()
      await etcd.stop()
    }
  })
})

describe('etcd readers: failures name the transport and what to try', () => {
  it('an unreachable endpoint is a precondition error (exit 3) for direct and etcdctl', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`
    const direct = new DirectEtcdReader({endpoints: [endpoint], dialTimeoutMs: 500, callTimeoutMs: 1500})
    const error = await direct.get('/registry/x').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PluginError)
    expect((error as PluginError).exitCode).toBe(3)
    expect((error as PluginError).message).toContain(`direct (${endpoint})`)
    expect((error as PluginError).hint).toContain('--etcd-cacert')
    await direct.close()
    const viaEtcdctl = new EtcdctlReader(
      localRunner,
      {endpoint, binary: 'etcdctl', commandTimeoutSeconds: 2},
      {transport: 'ssh', endpoint, via: 'cp1'},
    )
    const failed = (await viaEtcdctl.get('/registry/x').catch((e: unknown) => e)) as PluginError
    expect(failed.code).toBe('ETCD_UNREACHABLE')
    expect(failed.message).toContain('ssh (cp1 -> ')
    expect(failed.hint).toContain('--ssh-config')
  }, 30_000)

  it('an unreadable certificate file is a usage error naming the flag', async () => {
    const reader = new DirectEtcdReader({endpoints: ['127.0.0.1:2379'], cacert: '/nonexistent/ca.crt'})
    const error = (await reader.get('/x').catch((e: unknown) => e)) as PluginError
    expect(error.exitCode).toBe(2)
    expect(error.message).toContain('--etcd-cacert /nonexistent/ca.crt')
  })

  it('prepare() (status --scan loads the client early) leaves the failure to the first read, not an unhandled rejection', async () => {
    const reader = new DirectEtcdReader({endpoints: ['127.0.0.1:2379'], cacert: '/nonexistent/ca.crt'})
    reader.prepare()
    await new Promise((resolve) => setImmediate(resolve))
    const error = (await reader.get('/x').catch((e: unknown) => e)) as PluginError
    expect(error.exitCode).toBe(2)
    expect(error.message).toContain('--etcd-cacert /nonexistent/ca.crt')
  })
})

describe('ExecEtcdReader (pods/exec) and SshEtcdReader wrap the same etcdctl reader', () => {
  let etcd: LocalEtcd
  beforeAll(async () => {
    etcd = await startEtcd()
    await etcd.put('/registry/secrets/default/a', binary)
  }, 30_000)
  afterAll(async () => etcd?.stop())

  it('runs etcdctl as argv in the named pod and container, and reads the value', async () => {
    const {ExecEtcdReader} = await import('../../../src/etcd/exec-etcd-reader.js')
    const calls: Array<{pod: unknown; argv: string[]}> = []
    const reader = new ExecEtcdReader(
      {
        async exec(pod, argv) {
          calls.push({pod, argv})
          const result = await localRunner(argv)
          return {stdout: result.stdout, stderr: Buffer.from(result.stderr), code: result.code}
        },
      },
      {namespace: 'kube-system', name: 'etcd-cp1', container: 'etcd'},
      {endpoint: etcd.endpoint},
    )
    expect((await reader.get('/registry/secrets/default/a'))?.value.equals(binary)).toBe(true)
    expect(calls[0].pod).toEqual({namespace: 'kube-system', name: 'etcd-cp1', container: 'etcd'})
    expect(calls[0].argv[0]).toBe('etcdctl')
    expect(calls[0].argv).toContain('/registry/secrets/default/a')
    expect(reader.describe()).toEqual({transport: 'exec', endpoint: etcd.endpoint, via: 'kube-system/etcd-cp1'})
  })

  it('an RBAC 403 on pods/exec says which transport failed and what to try', async () => {
    const {ExecEtcdReader} = await import('../../../src/etcd/exec-etcd-reader.js')
    const {KubeApiError} = await import('../../../src/kube/types.js')
    const reader = new ExecEtcdReader(
      {
        async exec() {
          throw new KubeApiError(
            403,
            'Forbidden',
            'pods "etcd-cp1" is forbidden: User "viewer" cannot create resource "pods/exec"',
            undefined,
            undefined,
            {verb: 'create', resource: 'pods/exec', namespace: 'kube-system', name: 'etcd-cp1'},
          )
        },
      },
      {namespace: 'kube-system', name: 'etcd-cp1'},
      {endpoint: 'https://127.0.0.1:2379'},
    )
    const error = (await reader.get('/registry/x').catch((e: unknown) => e)) as PluginError
    expect(error.exitCode).toBe(3)
    expect(error.message).toContain('exec (kube-system/etcd-cp1 -> https://127.0.0.1:2379)')
    expect(error.message).toContain('cannot create resource "pods/exec"')
    expect(error.hint).toContain('kubectl auth can-i create pods/exec -n kube-system')
  })

  it('SshEtcdReader runs the argv through the session and reports the node', async () => {
    const {SshEtcdReader} = await import('../../../src/etcd/ssh-etcd-reader.js')
    const seen: string[][] = []
    const session = {
      node: 'cp2',
      address: 'cp2',
      async run(argv: readonly string[]) {
        seen.push([...argv])
        const result = await localRunner([...argv])
        return {exitCode: result.code, stdout: result.stdout, stderr: result.stderr}
      },
    }
    const reader = new SshEtcdReader(session, {endpoint: etcd.endpoint})
    const {kvs} = await collect(reader, '/registry/secrets/', 10)
    expect(kvs.map((kv) => kv.key)).toEqual(['/registry/secrets/default/a'])
    expect(reader.describe().via).toBe('cp2')
    expect(seen[0].slice(0, 2)).toEqual(['etcdctl', `--endpoints=${etcd.endpoint}`])
  })
})
