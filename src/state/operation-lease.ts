import {randomUUID} from 'node:crypto'

import {preconditionError} from '../errors.js'
import type {KubeObject, ObjectClient} from '../kube/types.js'
import {KubeApiError} from '../kube/types.js'
import {CONFIGMAPS} from '../changes/kubeadm-config-sync.js'
import {STATE_CONFIGMAP} from './operation-state.js'

/**
 * The lock that keeps two mutating runs (enable, rotate, decrypt-all) off one cluster at the same
 * time: a lease under `data.lock` of the state ConfigMap kube-system/kubectl-encryption-state,
 * beside the operations' progress. It is taken with optimistic concurrency (the ConfigMap is
 * written with the resourceVersion it was read at, so of two runs that read the same free lock only
 * one write succeeds; the other gets 409 and reads the winner), renewed while the run lasts, and
 * released at the end. A lease not renewed within its TTL, or held by a process of this machine that
 * no longer exists (a SIGKILLed run), is stale: the next run takes it over with a warning.
 *
 * Staleness by time compares the holder's renewedAt with this machine's clock, so clocks that
 * disagree by more than the TTL can make a live lease look stale (or keep a dead one longer).
 */
export type LeaseOperation = 'enable' | 'rotate' | 'decrypt-all'

export const LEASE_KEY = 'lock'
export const LEASE_TTL_SECONDS = 60

/** Who runs this process. `machine` is an opaque id of the machine and process namespace (pids are only comparable within one). */
export interface LeaseHolder {
  user: string
  host: string
  pid: number
  machine?: string
}

export interface LeaseRecord extends LeaseHolder {
  /** `user@host pid N`, as messages show it. */
  holder: string
  operation: LeaseOperation
  acquiredAt: string
  renewedAt: string
  ttlSeconds: number
  /** Random per acquisition: tells this run's lease from another one by the same process. */
  id: string
}

export interface LeaseClock {
  now?: () => Date
  /** Whether a process of this machine is still running; a lease held by a gone local process is stale at once. */
  isAlive?: (pid: number) => boolean
  /** This machine's `machine` id (see LeaseHolder). */
  machine?: string
}

/** What `status` shows of the lock. */
export interface LeaseStatus {
  holder: string
  operation: LeaseOperation
  since: string
  renewedAt: string
  expiresAt: string
  /** Not renewed within the TTL, or its process is gone: the next run takes it over. */
  stale: boolean
}

export const holderName = (h: LeaseHolder) => `${h.user}@${h.host} pid ${h.pid}`

const expiresAt = (lease: LeaseRecord) => new Date(Date.parse(lease.renewedAt) + lease.ttlSeconds * 1000)

export function leaseIsStale(lease: LeaseRecord, clock: LeaseClock = {}): boolean {
  const now = clock.now?.() ?? new Date()
  if (!(expiresAt(lease).getTime() > now.getTime())) return true
  return Boolean(clock.machine && lease.machine === clock.machine && clock.isAlive && !clock.isAlive(lease.pid))
}

export function leaseStatus(lease: LeaseRecord, clock: LeaseClock = {}): LeaseStatus {
  return {
    holder: lease.holder,
    operation: lease.operation,
    since: lease.acquiredAt,
    renewedAt: lease.renewedAt,
    expiresAt: expiresAt(lease).toISOString(),
    stale: leaseIsStale(lease, clock),
  }
}

async function readConfigMap(objects: ObjectClient): Promise<KubeObject | undefined> {
  try {
    return await objects.get(CONFIGMAPS, STATE_CONFIGMAP.name, STATE_CONFIGMAP.namespace)
  } catch (error) {
    if (error instanceof KubeApiError && error.status === 404) return undefined
    throw error
  }
}

const dataOf = (cm: KubeObject | undefined) => (cm?.data as Record<string, string> | undefined) ?? {}

function leaseIn(cm: KubeObject | undefined): LeaseRecord | undefined {
  const text = dataOf(cm)[LEASE_KEY]
  if (!text) return undefined
  try {
    return JSON.parse(text) as LeaseRecord
  } catch {
    return undefined // unreadable: treated as no lock (it cannot name a holder to wait for)
  }
}

/** The lock as it is now (for `status`). */
export async function readLease(objects: ObjectClient): Promise<LeaseRecord | undefined> {
  return leaseIn(await readConfigMap(objects))
}

const isConflict = (error: unknown) => error instanceof KubeApiError && (error.status === 409 || error.status === 404)

export class OperationLease {
  private timer?: NodeJS.Timeout
  private released = false

  private constructor(
    private readonly objects: ObjectClient,
    private record: LeaseRecord,
    private readonly clock: LeaseClock,
  ) {}

  get lease(): LeaseRecord {
    return this.record
  }

  /**
   * Takes the lock for `operation`, or throws OPERATION_LOCKED (exit 3) naming the live holder.
   * `tookOver` is the stale lease this run replaced, for a warning.
   */
  static async acquire(
    objects: ObjectClient,
    request: {holder: LeaseHolder; operation: LeaseOperation; ttlSeconds?: number},
    clock: LeaseClock = {},
  ): Promise<{lease: OperationLease; tookOver?: LeaseRecord}> {
    for (let attempt = 0; ; attempt++) {
      const cm = await readConfigMap(objects)
      const current = leaseIn(cm)
      if (current && !leaseIsStale(current, clock)) throw lockedError(current)
      const now = (clock.now?.() ?? new Date()).toISOString()
      const record: LeaseRecord = {
        holder: holderName(request.holder),
        ...request.holder,
        operation: request.operation,
        acquiredAt: now,
        renewedAt: now,
        ttlSeconds: request.ttlSeconds ?? LEASE_TTL_SECONDS,
        id: randomUUID(),
      }
      try {
        if (cm) {
          await objects.replace(CONFIGMAPS, {...cm, data: {...dataOf(cm), [LEASE_KEY]: JSON.stringify(record)}})
        } else {
          await objects.create(CONFIGMAPS, {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: {
              name: STATE_CONFIGMAP.name,
              namespace: STATE_CONFIGMAP.namespace,
              labels: {'app.kubernetes.io/managed-by': 'kubectl-encryption'},
            },
            data: {[LEASE_KEY]: JSON.stringify(record)},
          })
        }
        return {lease: new OperationLease(objects, record, clock), tookOver: current}
      } catch (error) {
        // 409: someone wrote the ConfigMap since we read it (another run taking the lock, or a
        // progress write); read again: a live winner is refused above. Bounded, never a busy loop.
        if (!isConflict(error) || attempt >= 4) throw error
      }
    }
  }

  /** Moves renewedAt on. Returns the lease found instead when this one was taken over (lost). */
  async renew(): Promise<{lost?: LeaseRecord | 'gone'}> {
    for (let attempt = 0; ; attempt++) {
      const cm = await readConfigMap(this.objects)
      const current = leaseIn(cm)
      if (!cm || current?.id !== this.record.id) return {lost: current ?? 'gone'}
      const record = {...this.record, renewedAt: (this.clock.now?.() ?? new Date()).toISOString()}
      try {
        await this.objects.replace(CONFIGMAPS, {...cm, data: {...dataOf(cm), [LEASE_KEY]: JSON.stringify(record)}})
        this.record = record
        return {}
      } catch (error) {
        // 409: a progress write of this run (or someone's) came between; read again.
        if (!isConflict(error) || attempt >= 4) throw error
      }
    }
  }

  /** Renews every `intervalMs` until released; `onLost` once if another run took the lock. Errors wait for the next tick. */
  keepAlive(intervalMs: number, onLost: (by: LeaseRecord | 'gone') => void): void {
    this.timer = setInterval(() => {
      this.renew().then(
        ({lost}) => {
          if (!lost || this.released) return
          this.stop()
          onLost(lost)
        },
        () => undefined, // the apiserver may be restarting (this very run restarts it); the TTL allows for that
      )
    }, intervalMs)
    this.timer.unref()
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }

  /**
   * Gives the lock back: `data.lock` removed (the ConfigMap deleted when nothing else is in it, so
   * a run leaves no trace but its progress). A lock that is no longer this run's is left alone.
   */
  async release(): Promise<void> {
    this.stop()
    if (this.released) return
    this.released = true
    for (let attempt = 0; ; attempt++) {
      const cm = await readConfigMap(this.objects)
      if (!cm || leaseIn(cm)?.id !== this.record.id) return
      const {[LEASE_KEY]: _mine, ...rest} = dataOf(cm)
      try {
        if (Object.keys(rest).length === 0)
          await this.objects.delete(CONFIGMAPS, STATE_CONFIGMAP.name, STATE_CONFIGMAP.namespace)
        else await this.objects.replace(CONFIGMAPS, {...cm, data: rest})
        return
      } catch (error) {
        if (!isConflict(error) || attempt >= 4) throw error
      }
    }
  }
}

function lockedError(lease: LeaseRecord) {
  return preconditionError(
    'OPERATION_LOCKED',
    `Another run is changing this cluster: ${lease.operation} by ${lease.holder}, since ${lease.acquiredAt} (lock in ${STATE_CONFIGMAP.namespace}/${STATE_CONFIGMAP.name}, last renewed ${lease.renewedAt}).`,
    {
      hint: `Wait until it finishes ('kubectl encryption status' shows the lock), then run the command again. If that run is gone, its lock expires at ${expiresAt(lease).toISOString()} and the next run takes it over.`,
    },
  )
}
