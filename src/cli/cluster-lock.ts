import {createHash} from 'node:crypto'
import {readFileSync, readlinkSync} from 'node:fs'
import {hostname, userInfo} from 'node:os'

import type {ObjectClient} from '../kube/types.js'
import {
  holderName,
  type LeaseClock,
  type LeaseHolder,
  type LeaseOperation,
  type LeaseRecord,
  LEASE_TTL_SECONDS,
  OperationLease,
} from '../state/operation-lease.js'

/**
 * This machine and process namespace, as an opaque id: the pid of a lease is only checked for
 * liveness when the lease was taken here (same boot, same pid namespace); elsewhere only its TTL counts.
 */
function machineId(): string | undefined {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    const pidNamespace = readlinkSync('/proc/self/ns/pid')
    return createHash('sha256').update(`${boot}|${pidNamespace}`).digest('hex').slice(0, 16)
  } catch {
    return undefined // not Linux: staleness by TTL only
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function thisProcess(): LeaseHolder {
  let user: string
  try {
    user = userInfo().username
  } catch {
    user = process.env.USER ?? 'unknown'
  }
  return {user, host: hostname(), pid: process.pid, machine: machineId()}
}

/** Staleness as seen from this process: the TTL, and the liveness of a holder on this machine. */
export function localLeaseClock(): LeaseClock {
  return {machine: machineId(), isAlive: processAlive}
}

const describe = (l: LeaseRecord) =>
  `${l.operation} by ${l.holder} (since ${l.acquiredAt}, last renewed ${l.renewedAt})`

export interface HeldLock {
  release(): Promise<void>
}

/**
 * Takes the cluster's lock for a mutating command (see operation-lease.ts) and holds it until
 * release(): renewed every quarter TTL. Signals are the caller's (withControlPlane): it finishes the
 * step in progress and releases, so the lock never ends a run in the middle of a node. A stale lock
 * is taken over with a warning; a live one throws OPERATION_LOCKED (exit 3).
 */
export async function lockCluster(
  objects: ObjectClient,
  operation: LeaseOperation,
  warn: (message: string) => void,
): Promise<HeldLock> {
  const holder = thisProcess()
  const {lease, tookOver} = await OperationLease.acquire(objects, {holder, operation}, localLeaseClock())
  if (tookOver) {
    warn(
      `took over the cluster's lock from ${describe(tookOver)}: that run is gone (not renewed within ${tookOver.ttlSeconds}s, or its process has exited); its work is continued from the recorded state.`,
    )
  }
  lease.keepAlive((LEASE_TTL_SECONDS * 1000) / 4, (by) =>
    warn(
      by === 'gone'
        ? `the cluster's lock of this run (${holderName(holder)}) was removed by someone else.`
        : `another run took over the cluster's lock: ${describe(by)}.`,
    ),
  )
  return {
    release: () => lease.release(),
  }
}
