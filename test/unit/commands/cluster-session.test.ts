// withCluster, the session of the read-only commands (src/cli/cluster-session.ts): it always ends the
// same way (errors translated, signal handlers off, progress stopped, cluster closed), and
// clusterOptions raises every flag's usage error before anything is contacted.
import {afterEach, describe, expect, it, vi} from 'vitest'

import {clusterOptions, withCluster} from '../../../src/cli/cluster-session.js'
import {isPluginError} from '../../../src/errors.js'
import {KubeApiError, type KubeCluster} from '../../../src/kube/types.js'
import type {Progress} from '../../../src/output/progress.js'

const connect = vi.hoisted(() => ({calls: 0, fail: undefined as Error | undefined, closed: 0}))

vi.mock('../../../src/kube/connect.js', () => ({
  connectCluster: async () => {
    connect.calls++
    if (connect.fail) throw connect.fail
    return {
      context: {contextName: 'fake-ctx', namespace: 'default'},
      objects: {},
      close: () => {
        connect.closed++
      },
    } as unknown as KubeCluster
  },
}))

function fakeProgress() {
  const seen = {updates: [] as string[], stopped: 0}
  const progress: Progress = {
    update: (t) => seen.updates.push(t),
    succeed: () => {},
    fail: () => {},
    stop: () => {
      seen.stopped++
    },
    pause: () => () => {},
    warn: () => {},
  }
  return {progress, seen}
}

afterEach(() => {
  connect.calls = 0
  connect.closed = 0
  connect.fail = undefined
})

describe('clusterOptions', () => {
  it('refuses bad kube, etcd and ssh flags as usage errors (exit 2) without connecting', () => {
    for (const flags of [
      {'request-timeout': 'soon'},
      {'etcd-via': 'direct' as const},
      {'etcd-cert': '/tmp/c.crt'},
      {'ssh-identity': '/nonexistent/id'},
    ]) {
      let error: unknown
      try {
        clusterOptions(flags)
      } catch (e) {
        error = e
      }
      expect(isPluginError(error) && error.exitCode, JSON.stringify(flags)).toBe(2)
    }
    expect(connect.calls).toBe(0)
  })

  it('--no-ssh stops reading node files; with noSsh "all" it also drops SSH and its flag checks', () => {
    expect(clusterOptions({}).nodeFiles).toBe(true)
    const files = clusterOptions({ssh: false})
    expect(files.nodeFiles).toBe(false)
    expect(files.ssh).toBeDefined()
    const all = clusterOptions({ssh: false, 'ssh-identity': '/nonexistent/id'}, 'all')
    expect(all.ssh).toBeUndefined()
    expect(all.nodeFiles).toBe(false)
  })
})

describe('withCluster', () => {
  it('gives the body the cluster and ends cleanly: progress stopped, cluster closed, no signal handler left', async () => {
    const {progress, seen} = fakeProgress()
    const before = process.listenerCount('SIGINT')
    const context = await withCluster(
      clusterOptions({ssh: false}),
      progress,
      async ({cluster, nodeFiles, configFromNodes, signal}) => {
        expect(process.listenerCount('SIGINT')).toBe(before + 1)
        expect(signal.aborted).toBe(false)
        expect(nodeFiles).toBeUndefined()
        expect(await configFromNodes()).toBeUndefined()
        return cluster.context.contextName
      },
      {interruptible: true},
    )
    expect(context).toBe('fake-ctx')
    expect(seen.stopped).toBe(1)
    expect(seen.updates).toEqual([])
    expect(connect.closed).toBe(1)
    expect(process.listenerCount('SIGINT')).toBe(before)
  })

  it('a session that is not interruptible leaves Ctrl-C alone', async () => {
    const before = process.listenerCount('SIGINT')
    await withCluster(clusterOptions({}), undefined, async () => {
      expect(process.listenerCount('SIGINT')).toBe(before)
    })
    expect(connect.closed).toBe(1)
  })

  it("translates the body's API errors (403 is exit 3) and still closes the cluster", async () => {
    const {progress, seen} = fakeProgress()
    const error = await withCluster(clusterOptions({}), progress, async () => {
      throw new KubeApiError(403, 'Forbidden', 'secrets is forbidden')
    }).catch((e: unknown) => e)
    expect(isPluginError(error) && error.exitCode).toBe(3)
    expect(seen.stopped).toBe(1)
    expect(connect.closed).toBe(1)
  })

  it('a failed connection stops the progress and never runs the body', async () => {
    const {progress, seen} = fakeProgress()
    connect.fail = new KubeApiError(0, 'ECONNREFUSED', 'connection refused')
    const body = vi.fn()
    const error = await withCluster(clusterOptions({}), progress, body).catch((e: unknown) => e)
    expect(isPluginError(error) && error.code).toBe('KUBE_UNREACHABLE')
    expect(body).not.toHaveBeenCalled()
    expect(seen.stopped).toBe(1)
    expect(connect.closed).toBe(0)
  })
})
