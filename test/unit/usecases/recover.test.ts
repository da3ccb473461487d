/** `recover`: what is found, every refusal before any change, the backup before the deletes, partial failures. */
import {randomBytes} from 'node:crypto'
import {mkdtempSync, readFileSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import Recover from '../../../src/commands/recover.js'
import type {EncryptionConfiguration, ProviderSpec} from '../../../src/encryption/config/model.js'
import {ResourceTransformer} from '../../../src/encryption/transform/resource-transformer.js'
import type {EtcdKeyValue, EtcdReader} from '../../../src/etcd/etcd-reader.js'
import {EXIT, PluginError} from '../../../src/errors.js'
import {
  type AccessCheck,
  type ApiResource,
  type DeleteOptions,
  KubeApiError,
  type ObjectClient,
} from '../../../src/kube/types.js'
import {
  type RecoverBackup,
  type RecoverDeps,
  type RecoverResult,
  recoverUndecryptable,
} from '../../../src/usecases/recover.js'
import {b64, vectors} from '../encryption/vectors-helper.js'

const OBJECT = b64(vectors.find((v) => v.id === 'identity-secret-protobuf')!.plaintext!)
const KEY1_SECRET = randomBytes(32).toString('base64')
const key1: ProviderSpec = {aescbc: {keys: [{name: 'key1', secret: KEY1_SECRET}]}}
const config: EncryptionConfiguration = {
  apiVersion: 'apiserver.config.k8s.io/v1',
  kind: 'EncryptionConfiguration',
  resources: [{resources: ['secrets'], providers: [key1, {identity: {}}]}],
}
const readable = (key: string) => ResourceTransformer.fromProviders([key1], undefined).write(OBJECT, key)
/** Encrypted under a key the config no longer has. */
const gone = () => Buffer.concat([Buffer.from('k8s:enc:aescbc:v1:gone:'), randomBytes(48)])

const SECRETS: ApiResource = {
  group: '',
  version: 'v1',
  resource: 'secrets',
  kind: 'Secret',
  namespaced: true,
  verbs: ['list', 'delete'],
}
const CONFIGMAPS: ApiResource = {
  group: '',
  version: 'v1',
  resource: 'configmaps',
  kind: 'ConfigMap',
  namespaced: true,
  verbs: ['list', 'delete'],
}

const dir = mkdtempSync(join(tmpdir(), 'recover-unit-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

interface World {
  entries: Map<string, Buffer>
  /** Keys the fake API names in a StorageReadError (null: lists succeed; 'plain': a plain 500). */
  apiCauses: string[] | null | 'plain'
  metrics: string
  denied: Set<string>
  deleteFails: Map<string, KubeApiError>
  events: string[]
  deletes: Array<{name: string; namespace?: string; options?: DeleteOptions}>
  ranged: string[]
}

function world(overrides: Partial<World> = {}): World {
  const entries = new Map<string, Buffer>([
    ['/registry/secrets/team-a/ok', readable('/registry/secrets/team-a/ok')],
    ['/registry/secrets/team-a/lost-1', gone()],
    ['/registry/secrets/team-a/lost-2', gone()],
    ['/registry/secrets/team-b/lost-3', gone()],
    ['/registry/configmaps/team-a/cm', OBJECT],
  ])
  return {
    entries,
    apiCauses: null,
    metrics:
      '# TYPE kubernetes_feature_enabled gauge\nkubernetes_feature_enabled{name="AllowUnsafeMalformedObjectDeletion",stage="BETA"} 1\n',
    denied: new Set(),
    deleteFails: new Map(),
    events: [],
    deletes: [],
    ranged: [],
    ...overrides,
  }
}

function depsFor(w: World, extra: Partial<RecoverDeps> = {}): RecoverDeps {
  const reader: EtcdReader = {
    get: async (key) => (w.entries.has(key) ? {key, value: w.entries.get(key)!, modRevision: 7} : undefined),
    async *range(prefix) {
      w.ranged.push(prefix)
      const page: EtcdKeyValue[] = [...w.entries]
        .filter(([k]) => k.startsWith(prefix))
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([key, value], i) => ({key, value, modRevision: i + 1}))
      yield page
    },
    describe: () => ({transport: 'direct', endpoint: 'https://127.0.0.1:2379'}),
    close: async () => {},
  }
  const objects = {
    list: async (resource: ApiResource, options: {namespace?: string}) => {
      if (resource.resource === 'secrets' && w.apiCauses === 'plain')
        throw new KubeApiError(
          500,
          'InternalError',
          'Internal error occurred: unable to transform key "/registry/secrets/team-a/lost-1": no matching key was found for the provided AES transformer',
        )
      if (resource.resource === 'secrets' && Array.isArray(w.apiCauses)) {
        const causes = w.apiCauses.filter(
          (k) => options.namespace === undefined || k.startsWith(`/registry/secrets/${options.namespace}/`),
        )
        if (causes.length > 0)
          throw new KubeApiError(
            500,
            'StorageReadError',
            'failed to read one or more secrets from the storage',
            undefined,
            undefined,
            {verb: 'list'},
            {
              name: 'list',
              kind: 'secrets',
              causes: causes.map((field) => ({
                reason: 'UnexpectedServerResponse',
                field,
                message: `corrupt object: data from the storage is not transformable`,
              })),
            },
          )
      }
      return {items: []}
    },
    delete: async (_resource: ApiResource, name: string, namespace?: string, options?: DeleteOptions) => {
      w.events.push(`delete ${namespace}/${name}`)
      w.deletes.push({name, namespace, options})
      const failure = w.deleteFails.get(name)
      if (failure) throw failure
    },
  } as unknown as ObjectClient
  return {
    reader,
    config,
    configSource: 'cp-1:/etc/kubernetes/enc/enc.yaml',
    objects,
    discovery: {resources: async () => [SECRETS, CONFIGMAPS]},
    access: {
      canI: async (c: AccessCheck) => ({
        allowed: !w.denied.has(`${c.verb} ${c.resource} ${c.namespace ?? ''}`) && !w.denied.has(c.verb),
      }),
      whoAmI: async () => 'alice',
    },
    probe: {
      get: async (path: string) =>
        path === '/metrics'
          ? {status: 200, body: w.metrics}
          : {status: 200, body: '{"major":"1","minor":"37","gitVersion":"v1.37.2"}'},
    },
    writeBackup: async (path, data) => {
      w.events.push(`backup ${path}`)
      const {writePrivateFile} = await import('../../../src/state/private-file.js')
      await writePrivateFile(path, data)
    },
    now: () => new Date(`2026-12-05T06:00:0${w.events.length % 10}.000Z`),
    ...extra,
  }
}

const run = (
  w: World,
  options: Partial<Parameters<typeof recoverUndecryptable>[0]> = {},
  extra: Partial<RecoverDeps> = {},
) =>
  recoverUndecryptable(
    {dryRun: false, backupDir: mkdtempSync(join(dir, 'b-')), ...options},
    depsFor(w, extra),
    'kind-sandbox',
  )

async function refusal(promise: Promise<unknown>): Promise<PluginError & {partialResult?: RecoverResult}> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(PluginError)
  return error as PluginError & {partialResult?: RecoverResult}
}

describe('recover: what it finds', () => {
  it('dry run: the values no key reads, from the etcd scan, in every namespace with -A; no backup, no delete', async () => {
    const w = world()
    const r = await run(w, {dryRun: true})
    expect(r.objects.map((o) => [o.namespace, o.name, o.storedAs, o.status, o.foundBy])).toEqual([
      ['team-a', 'lost-1', 'aescbc:gone', 'listed', ['etcd']],
      ['team-a', 'lost-2', 'aescbc:gone', 'listed', ['etcd']],
      ['team-b', 'lost-3', 'aescbc:gone', 'listed', ['etcd']],
    ])
    expect(r.objects[0]!.error).toBe('no matching key was found for the provided AES transformer')
    expect(r.scope).toEqual({resources: ['secrets'], namespace: undefined})
    expect(w.ranged).toEqual(['/registry/secrets/'])
    expect(r.feature).toMatchObject({served: true})
    expect(r.access.every((a) => a.allowed)).toBe(true)
    expect(r.access.map((a) => `${a.verb} ${a.namespace}`)).toEqual([
      'delete team-a',
      'unsafe-delete-ignore-read-errors team-a',
      'delete team-b',
      'unsafe-delete-ignore-read-errors team-b',
    ])
    expect(w.events).toEqual([])
    expect(r.backupFile).toBeUndefined()
    expect(JSON.stringify(r)).not.toContain(KEY1_SECRET)
  })

  it("-n reads only that namespace's keys; the API's StorageReadError causes are merged (and one only the API names is read from etcd)", async () => {
    const w = world()
    w.entries.set('/registry/secrets/team-a/undecodable', Buffer.from('k8s\x00garbage'))
    w.apiCauses = ['/registry/secrets/team-a/lost-1', '/registry/secrets/team-a/undecodable']
    const r = await run(w, {dryRun: true, namespace: 'team-a'})
    expect(w.ranged).toEqual(['/registry/secrets/team-a/'])
    expect(r.objects.map((o) => [o.name, o.foundBy])).toEqual([
      ['lost-1', ['etcd', 'api']],
      ['lost-2', ['etcd']],
      ['undecodable', ['api']],
    ])
    expect(r.feature?.evidence).toContain('StorageReadError')
  })

  it('--resource picks the resources; nothing unreadable is exit 0 with nothing checked or asked', async () => {
    const w = world()
    let asked = false
    const r = await run(w, {resources: ['configmaps']}, {confirm: async () => (asked = true)})
    expect(r.scope.resources).toEqual(['configmaps'])
    expect(r.objects).toEqual([])
    expect(r.access).toEqual([])
    expect(asked).toBe(false)
    expect(w.events).toEqual([])
  })
})

describe('recover: refusals change nothing', () => {
  it('without the unsafe verb: exit 3 with the ClusterRole rule to add, before any question', async () => {
    const w = world({denied: new Set(['unsafe-delete-ignore-read-errors'])})
    let asked = false
    const e = await refusal(run(w, {}, {confirm: async () => (asked = true)}))
    expect(e.exitCode).toBe(EXIT.precondition)
    expect(e.code).toBe('UNSAFE_DELETE_FORBIDDEN')
    expect(e.message).toContain('not allowed to unsafe-delete-ignore-read-errors secrets in namespace team-a')
    expect(e.hint).toContain('verbs: ["delete", "unsafe-delete-ignore-read-errors"]')
    expect(e.hint).toContain(
      'kubectl create clusterrole kubectl-encryption-recover --verb=delete,unsafe-delete-ignore-read-errors --resource=secrets',
    )
    expect(e.hint).toContain('--user=alice')
    expect(e.partialResult?.objects).toHaveLength(3)
    expect(asked).toBe(false)
    expect(w.events).toEqual([])
  })

  it('in one namespace the hint is a Role and RoleBinding there; the dry run is refused the same way', async () => {
    const w = world({denied: new Set(['unsafe-delete-ignore-read-errors secrets team-a'])})
    const e = await refusal(run(w, {namespace: 'team-a', dryRun: true}))
    expect(e.exitCode).toBe(EXIT.precondition)
    expect(e.hint).toContain('kubectl create role kubectl-encryption-recover -n team-a')
    expect(e.hint).toContain(
      'kubectl create rolebinding kubectl-encryption-recover -n team-a --role=kubectl-encryption-recover --user=alice',
    )
  })

  it('a server without the feature (the gate reported off): exit 3, names the gate', async () => {
    const w = world({
      metrics: 'kubernetes_feature_enabled{name="AllowUnsafeMalformedObjectDeletion",stage="ALPHA"} 0\n',
    })
    const e = await refusal(run(w))
    expect(e.exitCode).toBe(EXIT.precondition)
    expect(e.code).toBe('UNSAFE_DELETE_NOT_SERVED')
    expect(e.hint).toContain('--feature-gates=AllowUnsafeMalformedObjectDeletion=true')
    expect(w.events).toEqual([])
  })

  it('a list that answers a plain 500 (not StorageReadError) means the gate is off: exit 3', async () => {
    const w = world({apiCauses: 'plain'})
    const e = await refusal(run(w))
    expect(e.code).toBe('UNSAFE_DELETE_NOT_SERVED')
    expect(e.message).toContain('not StorageReadError')
    expect(w.events).toEqual([])
  })

  it('1.36 without /metrics: cannot tell, so refused; 1.31: predates the option', async () => {
    for (const [minor, text] of [
      ['36', 'off by default'],
      ['31', 'predates'],
    ]) {
      const w = world()
      const e = await refusal(
        run(
          w,
          {},
          {
            probe: {
              get: async (path) =>
                path === '/metrics' ? {status: 403, body: ''} : {status: 200, body: `{"major":"1","minor":"${minor}"}`},
            },
          },
        ),
      )
      expect(e.code).toBe('UNSAFE_DELETE_NOT_SERVED')
      expect(e.message).toContain(text)
      expect(w.events).toEqual([])
    }
  })

  it('the wrong answer at the question: "Aborted", exit 3, no backup, no delete', async () => {
    const w = world()
    let question = ''
    const e = await refusal(
      run(
        w,
        {},
        {
          confirm: async (q) => {
            question = q
            return false
          },
        },
      ),
    )
    expect(e.exitCode).toBe(EXIT.precondition)
    expect(e.code).toBe('ABORTED')
    expect(question).toContain('secrets team-a/lost-1 (aescbc:gone)')
    expect(question).toContain('Delete these 3 objects that no configured key can read?')
    expect(w.events).toEqual([])
  })

  it('a backup that cannot be written: exit 3, nothing deleted', async () => {
    const w = world()
    const e = await refusal(
      run(
        w,
        {},
        {
          writeBackup: async () => {
            throw Object.assign(new Error('no space left on device'), {code: 'ENOSPC'})
          },
        },
      ),
    )
    expect(e.exitCode).toBe(EXIT.precondition)
    expect(e.code).toBe('BACKUP_FAILED')
    expect(e.message).toContain('ENOSPC')
    expect(e.message).toContain('nothing was deleted')
    expect(w.deletes).toEqual([])
  })

  it('a backup file that already exists is never replaced: exit 3, nothing deleted', async () => {
    const w = world()
    const backupDir = mkdtempSync(join(dir, 'exists-'))
    const now = () => new Date('2026-12-05T06:30:00.000Z')
    await run(world(), {backupDir}, {now})
    const e = await refusal(run(w, {backupDir}, {now}))
    expect(e.code).toBe('BACKUP_FAILED')
    expect(e.message).toContain('already exists')
    expect(w.deletes).toEqual([])
  })
})

describe('recover: the run', () => {
  it('confirmed: the 0600 backup is written before the first delete; each delete carries the option', async () => {
    const w = world()
    const backupDir = join(mkdtempSync(join(dir, 'run-')), 'new-dir')
    const r = await run(w, {backupDir}, {confirm: async () => true})
    expect(w.events[0]).toMatch(/^backup /)
    expect(w.events.slice(1)).toEqual(['delete team-a/lost-1', 'delete team-a/lost-2', 'delete team-b/lost-3'])
    expect(w.deletes.every((d) => d.options?.ignoreStoreReadErrorWithClusterBreakingPotential === true)).toBe(true)
    expect(r.totals).toEqual({found: 3, deleted: 3, gone: 0, readable: 0, failed: 0})
    expect(r.objects.every((o) => o.status === 'deleted')).toBe(true)
    expect(r.backupFile).toBe(join(backupDir, w.events[0]!.slice('backup '.length).split('/').pop()!))
    expect(statSync(r.backupFile!).mode & 0o777).toBe(0o600)
    expect(statSync(backupDir).mode & 0o777).toBe(0o700)
    const backup = JSON.parse(readFileSync(r.backupFile!, 'utf8')) as RecoverBackup
    expect(backup).toMatchObject({kind: 'KubectlEncryptionRecoverBackup', version: 1, context: 'kind-sandbox'})
    expect(backup.objects.map((o) => [o.etcdKey, o.resource, o.namespace, o.name])).toEqual([
      ['/registry/secrets/team-a/lost-1', 'secrets', 'team-a', 'lost-1'],
      ['/registry/secrets/team-a/lost-2', 'secrets', 'team-a', 'lost-2'],
      ['/registry/secrets/team-b/lost-3', 'secrets', 'team-b', 'lost-3'],
    ])
    for (const o of backup.objects)
      expect(Buffer.from(o.valueBase64, 'base64').equals(w.entries.get(o.etcdKey)!)).toBe(true)
    expect(readFileSync(r.backupFile!, 'utf8')).not.toContain(KEY1_SECRET)
    expect((Recover.prototype as unknown as {exitCodeFor(r: unknown): number}).exitCodeFor({...r, context: 'x'})).toBe(
      EXIT.ok,
    )
  })

  it('some deletes fail: the rest go on, exit 4; already gone and readable again are not failures', async () => {
    const w = world()
    w.entries.set('/registry/secrets/team-b/lost-4', gone())
    w.entries.set('/registry/secrets/team-b/lost-5', gone())
    w.deleteFails.set('lost-1', new KubeApiError(403, 'Forbidden', 'denied by policy'))
    w.deleteFails.set('lost-2', new KubeApiError(404, 'NotFound', 'secrets "lost-2" not found'))
    w.deleteFails.set('lost-4', new KubeApiError(409, 'Conflict', 'Operation cannot be fulfilled'))
    w.entries.set('/registry/secrets/team-b/lost-6', gone())
    // 1.32–1.36 answer a readable object with 422
    w.deleteFails.set(
      'lost-6',
      new KubeApiError(
        422,
        'Invalid',
        'secrets "lost-6" is invalid: ignoreStoreReadErrorWithClusterBreakingPotential: Invalid value: true: is exclusively used to delete corrupt object(s), try again by removing this option',
      ),
    )
    const r = await run(w)
    expect(r.objects.map((o) => [o.name, o.status])).toEqual([
      ['lost-1', 'failed'],
      ['lost-2', 'gone'],
      ['lost-3', 'deleted'],
      ['lost-4', 'readable'],
      ['lost-5', 'deleted'],
      ['lost-6', 'readable'],
    ])
    expect(r.objects[0]!.message).toContain('403 Forbidden: denied by policy')
    expect(r.totals).toEqual({found: 6, deleted: 2, gone: 1, readable: 2, failed: 1})
    expect((Recover.prototype as unknown as {exitCodeFor(r: unknown): number}).exitCodeFor({...r, context: 'x'})).toBe(
      EXIT.partial,
    )
  })

  it('Ctrl-C between deletes: exit 4 with what was done, the rest listed', async () => {
    const w = world()
    const stop = new AbortController()
    const deps = depsFor(w, {signal: stop.signal})
    const objects = deps.objects
    deps.objects = {
      ...objects,
      delete: async (...args: Parameters<ObjectClient['delete']>) => {
        await objects.delete(...args)
        stop.abort()
      },
    } as ObjectClient
    const e = await refusal(recoverUndecryptable({dryRun: false, backupDir: mkdtempSync(join(dir, 'int-'))}, deps))
    expect(e.exitCode).toBe(EXIT.partial)
    expect(e.partialResult?.objects.map((o) => o.status)).toEqual(['deleted', 'listed', 'listed'])
    expect(w.deletes).toHaveLength(1)
  })
})
