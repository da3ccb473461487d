import {spawn} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {KubeApiError, type KubeObject} from '../../../src/kube/types.js'
import {serveFakeCluster} from '../helpers/fake-apiserver.js'
import {FakeCluster, SECRETS} from '../helpers/fake-cluster.js'
import {FakeMigrator} from '../usecases/fake-migrator.js'

const bin = new URL('../../../bin/run.js', import.meta.url).pathname

let dir: string
let migrator: FakeMigrator
let api: Awaited<ReturnType<typeof serveFakeCluster>>

/** The storagemigration.k8s.io API and the Secrets' list, answered by the FakeMigrator. */
function migratorRoutes(fake: FakeMigrator) {
  return async (method: string, url: URL, body: unknown) => {
    const version = fake.servedVersion
    const groupVersion = `storagemigration.k8s.io/${version}`
    try {
      if (url.pathname === '/apis' && version)
        return {
          status: 200,
          body: {
            kind: 'APIGroupList',
            groups: [
              {
                name: 'storagemigration.k8s.io',
                versions: [{groupVersion, version}],
                preferredVersion: {groupVersion, version},
              },
            ],
          },
        }
      if (url.pathname === `/apis/${groupVersion}`)
        return {
          status: 200,
          body: {
            kind: 'APIResourceList',
            groupVersion,
            resources: [
              {
                name: 'storageversionmigrations',
                namespaced: false,
                kind: 'StorageVersionMigration',
                verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
              },
            ],
          },
        }
      const m = /^\/apis\/storagemigration\.k8s\.io\/[^/]+\/storageversionmigrations(?:\/([^/]+))?$/.exec(url.pathname)
      if (m && method === 'POST')
        return {status: 201, body: await fake.create(fake.migrationsApi(), body as KubeObject)}
      if (m?.[1] && method === 'GET') return {status: 200, body: await fake.get(fake.migrationsApi(), m[1])}
      if (url.pathname === '/api/v1/secrets' && method === 'GET') {
        const page = await fake.list(SECRETS, {
          limit: Number(url.searchParams.get('limit') ?? 0) || undefined,
          continueToken: url.searchParams.get('continue') ?? undefined,
        })
        return {
          status: 200,
          body: {
            kind: 'PartialObjectMetadataList',
            apiVersion: 'meta.k8s.io/v1',
            metadata: {
              resourceVersion: page.resourceVersion,
              continue: page.continueToken,
              remainingItemCount: page.remainingItemCount,
            },
            items: page.items,
          },
        }
      }
      return undefined
    } catch (error) {
      if (!(error instanceof KubeApiError)) throw error
      return {
        status: error.status,
        body: {kind: 'Status', code: error.status, reason: error.reason, message: error.message},
      }
    }
  }
}

function plugin(...args: string[]): Promise<{code: number | null; stdout: string; stderr: string}> {
  const child = spawn(process.execPath, [bin, 'rewrite', '--kubeconfig', api.kubeconfig, '--no-ssh', ...args], {
    env: {...process.env, XDG_STATE_HOME: join(dir, 'state'), CI: '1'},
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  return new Promise((resolve) => child.on('close', (code) => resolve({code, stdout, stderr})))
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rewrite-svm-cmd-'))
  migrator = new FakeMigrator()
  migrator.pendingPolls = 1
  migrator.seed(SECRETS, 6, 4)
  api = await serveFakeCluster(new FakeCluster(), dir, migratorRoutes(migrator))
})

afterEach(async () => {
  await api.close()
  await rm(dir, {recursive: true, force: true})
})

describe('kubectl encryption rewrite --engine svm', {timeout: 60_000}, () => {
  it('prints the client engine table, then the migration; -o json has the same shape', async () => {
    const r = await plugin('-A', '--engine', 'svm', '--resource', 'secrets')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(
      /^Estimate: 6 objects in 1 resource; kube-controller-manager's storage-version migrator sets the pace\n$/,
    )
    expect(r.stdout).toMatch(
      /^RESOURCE\s+LISTED\s+REWRITTEN\s+ALREADY CURRENT\s+CONFLICTS RETRIED\s+SKIPPED\s+FAILED\nsecrets\s+6\s+4\s+2\s+0\s+0\s+0\n/,
    )
    expect(r.stdout).toMatch(/kubectl-encryption-[0-9a-f]{8}-secrets\s+secrets\s+Succeeded/)
    expect(r.stdout).toContain('all namespaces: 6 objects')
    expect(migrator.stale(SECRETS)).toBe(0)

    const json = await plugin('-A', '--engine', 'svm', '--resource', 'secrets', '-o', 'json')
    expect(json.code, json.stderr).toBe(0)
    const doc = JSON.parse(json.stdout)
    expect(doc).toMatchObject({
      engine: 'svm',
      dryRun: false,
      namespaces: 'all',
      totals: {listed: 6, rewritten: 0, alreadyCurrent: 6, failed: 0},
      failures: [],
      migrations: [{resource: 'secrets', state: 'Succeeded'}],
    })
    expect(doc.resources).toEqual([
      expect.objectContaining({resource: 'secrets', group: '', version: 'v1', complete: true}),
    ])
  })

  it('a Failed migration: exit 4 with the controller reason; --resume creates it anew and succeeds', async () => {
    migrator.failing.add('secrets')
    const failed = await plugin('-A', '--engine', 'svm', '--resource', 'secrets')
    expect(failed.code).toBe(4)
    expect(failed.stdout).toMatch(
      /storageversionmigration\/kubectl-encryption-[0-9a-f]{8}-secrets\s+MigrationFailed\s+StorageVersionMigrationFailed: 2\/6 not yet migrated\. migration encountered unhandled error: admission webhook "deny.example" denied the request/,
    )
    expect(failed.stderr).toMatch(/a migration failed; the run is saved in .*--resume/)

    migrator.failing.clear()
    const resumed = await plugin('-A', '--engine', 'svm', '--resource', 'secrets', '--resume')
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(resumed.stdout).toMatch(/kubectl-encryption-[0-9a-f]{8}-secrets-2\s+secrets\s+Succeeded/)
    expect(resumed.stdout).toContain(', resumed:')
    expect(migrator.stale(SECRETS)).toBe(0)
  })

  it('refuses, in one line and exit 2, what the migrator cannot honour; creates nothing', async () => {
    for (const [args, pattern] of [
      [['-A', '--only-stale'], /^error: --only-stale cannot be used with --engine svm: /],
      [['-n', 'alpha'], /^error: --namespace cannot be used with --engine svm: .*pass -A/],
      [['-A', '-l', 'app=web'], /^error: --selector cannot be used with --engine svm: /],
      [['-A', '--qps', '20'], /^error: --qps cannot be used with --engine svm: /],
      [['-A', '--concurrency', '4'], /^error: --concurrency cannot be used with --engine svm: /],
      [[], /^error: --engine svm rewrites every namespace: pass -A/],
      [['-A', '--engine', 'fast'], /^error: /],
    ] as const) {
      const r = await plugin('--engine', 'svm', '--resource', 'secrets', ...args)
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr, args.join(' ')).toMatch(pattern)
      if (!(args as readonly string[]).includes('fast'))
        expect(r.stderr.trimEnd().split('\n'), args.join(' ')).toHaveLength(1)
    }
    expect(migrator.creates).toEqual([])
  })

  it('exit 3 with the version, feature gate and runtime-config when the API is not served', async () => {
    migrator.servedVersion = null
    const r = await plugin('-A', '--engine', 'svm', '--resource', 'secrets')
    expect(r.code).toBe(3)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^error: the server does not serve storagemigration.k8s.io \(StorageVersionMigration\)/)
    expect(r.stderr).toMatch(
      /hint: .*storagemigration.k8s.io\/v1 .*StorageVersionMigrator.*--runtime-config=storagemigration.k8s.io\/v1beta1=true/,
    )
    expect(migrator.creates).toEqual([])
  })
})
