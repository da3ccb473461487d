import {readFileSync} from 'node:fs'

import {describe, expect, it} from 'vitest'

import {checkConfigBytes} from '../../../src/encryption/config/load.js'
import type {EtcdKeyValue, EtcdReader} from '../../../src/etcd/etcd-reader.js'
import type {ApiResource, ObjectClient} from '../../../src/kube/types.js'
import {scanForStatus, scanPrefixes, scanTargets} from '../../../src/usecases/status/scan-targets.js'

const config = checkConfigBytes(
  readFileSync(new URL('../../fixtures/vectors/encryption-config.yaml', import.meta.url)),
  'vectors.yaml',
).config!
const vectors = JSON.parse(readFileSync(new URL('../../fixtures/vectors/vectors.json', import.meta.url), 'utf8')) as {
  vectors: Array<{id: string; stored: string}>
}
const stored = (id: string) => Buffer.from(vectors.vectors.find((v) => v.id === id)!.stored, 'base64')

const discovery = {
  resources: async (): Promise<ApiResource[]> => [
    {group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true, verbs: ['list']},
    {
      group: '',
      version: 'v1',
      resource: 'configmaps',
      kind: 'ConfigMap',
      namespaced: true,
      verbs: ['list'],
      shortNames: ['cm'],
    },
    {group: 'apps', version: 'v1', resource: 'deployments', kind: 'Deployment', namespaced: true, verbs: ['list']},
  ],
}

function reader(entries: EtcdKeyValue[], seen: string[]): EtcdReader {
  return {
    get: async () => undefined,
    async *range(prefix, options) {
      seen.push(prefix)
      const matching = entries.filter((e) => e.key.startsWith(prefix)).sort((a, b) => a.key.localeCompare(b.key))
      for (let i = 0; i < matching.length; i += options?.pageSize ?? 500)
        yield matching.slice(i, i + (options?.pageSize ?? 500))
    },
    describe: () => ({transport: 'direct', endpoint: 'https://127.0.0.1:2379'}),
    close: async () => {},
  }
}

const objects = {
  list: async () => ({items: [{apiVersion: 'v1', kind: 'Namespace', metadata: {name: 'default'}}]}),
} as unknown as ObjectClient

describe('status --scan', () => {
  it('scans what the config covers, expands wildcards through discovery, or the --resource list', async () => {
    expect(await scanTargets({config, discovery})).toEqual([
      {group: '', resource: 'secrets'},
      {group: 'example.com', resource: 'widgets'},
    ])
    const wildcard = checkConfigBytes(
      Buffer.from(
        'apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: ["*."]\n  providers: [{identity: {}}]\n',
      ),
      'w',
    ).config!
    expect((await scanTargets({config: wildcard, discovery})).map((t) => t.resource).sort()).toEqual([
      'configmaps',
      'secrets',
    ])
    expect(await scanTargets({resources: ['cm'], discovery})).toEqual([{group: '', resource: 'configmaps'}])
    await expect(scanTargets({resources: ['nothing'], discovery})).rejects.toThrow(/no resource "nothing"/)
    expect(await scanTargets({discovery})).toEqual([{group: '', resource: 'secrets'}])
    expect(
      scanPrefixes([
        {group: '', resource: 'secrets'},
        {group: '', resource: 'secrets'},
        {group: 'events.k8s.io', resource: 'events'},
        {group: '', resource: 'events'},
      ]),
    ).toEqual(['/registry/events/', '/registry/secrets/'])
  })

  it('counts per provider:key, plaintext, stale, undecryptable and orphans, in pages', async () => {
    const seen: string[] = []
    const entries: EtcdKeyValue[] = [
      {key: '/registry/secrets/default/mysecret', value: stored('aesgcm-256-secret'), modRevision: 1},
      {key: '/registry/secrets/default/cbc', value: stored('aescbc-256-secret'), modRevision: 2},
      {key: '/registry/secrets/gone/plain', value: stored('identity-secret-protobuf'), modRevision: 3},
      {key: '/registry/secrets/default/bad', value: stored('secretbox-tampered-NEGATIVE'), modRevision: 4},
      {key: '/registry/configmaps/default/not-scanned', value: Buffer.from('{}'), modRevision: 5},
    ]
    const progress: number[] = []
    const summary = await scanForStatus({
      reader: reader(entries, seen),
      config,
      objects,
      discovery,
      pageSize: 2,
      onProgress: (n) => progress.push(n),
    })
    expect(seen).toEqual(['/registry/example.com/widgets/', '/registry/secrets/'])
    expect(summary.keys).toBe(4)
    expect(progress).toEqual([2, 4])
    const secrets = summary.resources.find((r) => r.resource === 'secrets')!
    expect(secrets).toMatchObject({
      total: 4,
      plaintext: 1,
      stale: 2,
      undecryptable: 1,
      orphans: 1,
      writes: 'aesgcm:key2',
    })
    expect(secrets.byProvider).toEqual({'aesgcm:key2': 1, 'aescbc:key2': 1, identity: 1})
  })
})
