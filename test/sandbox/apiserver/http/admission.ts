/**
 * The admission the stand-in plays (test infrastructure):
 *
 * - NamespaceLifecycle: no create, update or patch of a namespaced object whose namespace does not
 *   exist; kube-apiserver answers 404 `namespaces "<ns>" not found` (details.kind "namespaces"). This
 *   is what a rewrite meets on an orphan: a value left in etcd under a namespace that is gone.
 * - One validating admission webhook, `deny-update.sandbox.kubectl-encryption.test`, registered for
 *   UPDATE of every resource, that denies objects carrying the annotation below, with the
 *   annotation's value as its message. kube-apiserver turns a webhook's `allowed: false` without a
 *   status code into 400 `admission webhook "<name>" denied the request: <message>` (no reason).
 *   Validating admission runs on every update, a no-op one too, before storage compares bytes.
 */
import {ApiError} from './status.js'

export const DENY_UPDATE_ANNOTATION = 'sandbox.kubectl-encryption.test/deny-update'
export const DENY_UPDATE_WEBHOOK = 'deny-update.sandbox.kubectl-encryption.test'

export function validateUpdate(object: {metadata?: {annotations?: Record<string, string>}} | undefined): void {
  const message = object?.metadata?.annotations?.[DENY_UPDATE_ANNOTATION]
  if (message === undefined) return
  const deniedBy = `admission webhook "${DENY_UPDATE_WEBHOOK}" denied the request`
  throw new ApiError(400, '', message ? `${deniedBy}: ${message}` : `${deniedBy} without explanation`)
}
