import {describe, expect, it} from 'vitest'

import type {ApiResource, KubeObject} from '../../../src/kube/types.js'
import {
  type LeaseHolder,
  type LeaseRecord,
  leaseStatus,
  OperationLease,
  readLease,
} from '../../../src/state/operation-lease.js'
import {FakeObjects} from './fake-control-plane.js'

const KEY = 'configmaps/kube-system/kubectl-encryption-state'
const alice: LeaseHolder = {user: 'alice', host: 'laptop-a', pid: 4242, machine: 'm-a'}
const bob: LeaseHolder = {user: 'bob', host: 'laptop-b', pid: 777, machine: 'm-b'}
const at = (iso: string) => ({now: () => new Date(iso)})
const lockOf = (objects: FakeObjects) => {
  const text = (objects.store.get(KEY)?.data as Record<string, string> | undefined)?.lock
  return text ? (JSON.parse(text) as LeaseRecord) : undefined
}

describe('the cluster lock (a lease in kube-system/kubectl-encryption-state)', () => {
  it('is taken on a cluster without one, and a second run is refused naming the holder, operation and since (exit 3)', async () => {
    const objects = new FakeObjects()
    const {lease, tookOver} = await OperationLease.acquire(
      objects,
      {holder: alice, operation: 'rotate'},
      at('2026-11-28T03:00:00Z'),
    )
    expect(tookOver).toBeUndefined()
    expect(lockOf(objects)).toMatchObject({
      holder: 'alice@laptop-a pid 4242',
      operation: 'rotate',
      acquiredAt: '2026-11-28T03:00:00.000Z',
      renewedAt: '2026-11-28T03:00:00.000Z',
      ttlSeconds: 60,
    })
    expect(lease.lease.holder).toBe('alice@laptop-a pid 4242')
    const refused = OperationLease.acquire(objects, {holder: bob, operation: 'enable'}, at('2026-11-28T03:00:30Z'))
    await expect(refused).rejects.toMatchObject({code: 'OPERATION_LOCKED', exitCode: 3})
    const error = (await refused.catch((e: unknown) => e)) as Error & {hint?: string}
    expect(error.message).toContain('rotate by alice@laptop-a pid 4242, since 2026-11-28T03:00:00.000Z')
    expect(error.hint).toContain('expires at 2026-11-28T03:01:00.000Z')
    expect(lockOf(objects)?.holder).toBe('alice@laptop-a pid 4242')
  })

  it('a lease not renewed within its TTL is taken over, and reported', async () => {
    const objects = new FakeObjects()
    await OperationLease.acquire(objects, {holder: alice, operation: 'decrypt-all'}, at('2026-11-28T03:00:00Z'))
    const {tookOver} = await OperationLease.acquire(
      objects,
      {holder: bob, operation: 'rotate'},
      at('2026-11-28T03:01:01Z'),
    )
    expect(tookOver).toMatchObject({holder: 'alice@laptop-a pid 4242', operation: 'decrypt-all'})
    expect(lockOf(objects)).toMatchObject({holder: 'bob@laptop-b pid 777', operation: 'rotate'})
  })

  it("a lease of a process gone from this machine (SIGKILL) is stale at once; another machine's pid is never checked", async () => {
    const objects = new FakeObjects()
    await OperationLease.acquire(objects, {holder: alice, operation: 'rotate'}, at('2026-11-28T03:00:00Z'))
    const now = '2026-11-28T03:00:05Z'
    // bob on another machine: alice's pid means nothing there, the lease is live for its TTL
    await expect(
      OperationLease.acquire(
        objects,
        {holder: bob, operation: 'rotate'},
        {...at(now), machine: 'm-b', isAlive: () => false},
      ),
    ).rejects.toMatchObject({code: 'OPERATION_LOCKED'})
    // on alice's machine, with pid 4242 still running: live
    const sameMachine = {...bob, machine: 'm-a'}
    await expect(
      OperationLease.acquire(
        objects,
        {holder: sameMachine, operation: 'rotate'},
        {...at(now), machine: 'm-a', isAlive: (pid) => pid === 4242},
      ),
    ).rejects.toMatchObject({code: 'OPERATION_LOCKED'})
    // pid 4242 gone: taken over at once
    const {tookOver} = await OperationLease.acquire(
      objects,
      {holder: sameMachine, operation: 'rotate'},
      {...at(now), machine: 'm-a', isAlive: () => false},
    )
    expect(tookOver?.pid).toBe(4242)
    expect(leaseStatus(tookOver!, {...at(now), machine: 'm-a', isAlive: () => false}).stale).toBe(true)
  })

  it('two runs that read the same free lock: one write wins, the other gets 409, reads the winner and is refused cleanly', async () => {
    for (const existing of [false, true]) {
      const objects = new BarrierObjects(2)
      if (existing)
        objects.store.set(KEY, {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: {name: 'kubectl-encryption-state', namespace: 'kube-system', resourceVersion: 'seeded'},
          data: {rotate: '{"stage":"promote"}'},
        })
      const results = await Promise.allSettled([
        OperationLease.acquire(objects, {holder: alice, operation: 'rotate'}),
        OperationLease.acquire(objects, {holder: bob, operation: 'enable'}),
      ])
      const won = results.filter((r) => r.status === 'fulfilled')
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      expect(won).toHaveLength(1)
      expect(lost).toHaveLength(1)
      expect(objects.conflicts).toBeGreaterThan(0)
      const winner = (won[0] as PromiseFulfilledResult<{lease: OperationLease}>).value.lease.lease
      expect(lost[0]!.reason).toMatchObject({
        code: 'OPERATION_LOCKED',
        message: expect.stringContaining(`${winner.operation} by ${winner.holder}`),
      })
      expect(lockOf(objects)?.id).toBe(winner.id)
      // the progress recorded beside it is kept
      if (existing) expect((objects.store.get(KEY)!.data as Record<string, string>).rotate).toBe('{"stage":"promote"}')
    }
  })

  it('renews while held, reports a takeover as lost, and release gives back only its own lock', async () => {
    const objects = new FakeObjects()
    let clock = '2026-11-28T03:00:00Z'
    const {lease} = await OperationLease.acquire(
      objects,
      {holder: alice, operation: 'rotate'},
      {now: () => new Date(clock)},
    )
    clock = '2026-11-28T03:00:20Z'
    expect(await lease.renew()).toEqual({})
    expect(lockOf(objects)?.renewedAt).toBe('2026-11-28T03:00:20.000Z')
    // renewed: still live 50 s later for a run that reads it
    await expect(
      OperationLease.acquire(objects, {holder: bob, operation: 'enable'}, at('2026-11-28T03:01:10Z')),
    ).rejects.toMatchObject({code: 'OPERATION_LOCKED'})
    // bob takes alice's (expired) lease over: alice's renewal finds it lost; her release leaves bob's alone
    await OperationLease.acquire(objects, {holder: bob, operation: 'enable'}, at('2026-11-28T03:05:00Z'))
    expect((await lease.renew()).lost).toMatchObject({holder: 'bob@laptop-b pid 777'})
    await lease.release()
    expect(lockOf(objects)?.holder).toBe('bob@laptop-b pid 777')
  })

  it('release removes the lock; the ConfigMap goes when nothing else is in it, and stays with recorded progress', async () => {
    const objects = new FakeObjects()
    const first = await OperationLease.acquire(objects, {holder: alice, operation: 'enable'})
    await first.lease.release()
    expect(objects.store.has(KEY)).toBe(false)
    const second = await OperationLease.acquire(objects, {holder: alice, operation: 'rotate'})
    const cm = objects.store.get(KEY) as KubeObject
    objects.store.set(KEY, {...cm, data: {...(cm.data as Record<string, string>), rotate: '{"stage":"add-key"}'}})
    await second.lease.release()
    expect(objects.store.get(KEY)?.data).toEqual({rotate: '{"stage":"add-key"}'})
    expect(await readLease(objects)).toBeUndefined()
  })
})

/** FakeObjects whose writes wait until `readers` reads have happened: runs that start together both read the same state. */
class BarrierObjects extends FakeObjects {
  conflicts = 0
  private reads = 0
  private open?: () => void
  private readonly opened = new Promise<void>((resolve) => (this.open = resolve))
  constructor(private readonly readers: number) {
    super()
  }
  override async get(r: ApiResource, name: string, ns?: string) {
    if (++this.reads >= this.readers) this.open?.()
    return super.get(r, name, ns)
  }
  override async create(r: ApiResource, o: KubeObject) {
    await this.opened
    return super.create(r, o).catch((e) => {
      this.conflicts++
      throw e
    })
  }
  override async replace(r: ApiResource, o: KubeObject) {
    await this.opened
    return super.replace(r, o).catch((e) => {
      this.conflicts++
      throw e
    })
  }
}
