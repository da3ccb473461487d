import {KubeApiError} from '../../kube/types.js'

/** Why an object could not be rewritten; stable strings, shown in results and JSON. */
export type FailureReason =
  | 'AdmissionDenied'
  | 'Invalid'
  | 'Forbidden'
  | 'NamespaceGone'
  | 'Undecryptable'
  | 'Conflict'
  | 'Unavailable'
  | 'ServerError'
  | 'Error'
  /** --engine svm: the storage-version migrator set the migration's Failed condition. */
  | 'MigrationFailed'

/** What an operation should do with a failed API request. */
export type ErrorDisposition =
  | {kind: 'conflict'}
  | {kind: 'notFound'}
  | {kind: 'expired'; continueHint?: string}
  | {kind: 'transient'; retryAfterMs?: number}
  | {kind: 'fail'; reason: FailureReason}

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
])

/**
 * kube-apiserver's texts when no provider can read a stored value (docs/kubernetes-behaviour.md §4.3): GET/PUT answer 500
 * "Internal error occurred: <transformer error>", LIST names the key ("unable to transform key").
 */
const UNDECRYPTABLE =
  /no matching prefix found|no matching key was found|identity transformer tried to read encrypted data|unable to transform|not transformable|failed to decrypt|message authentication failed|invalid (padding|PKCS)/i

/**
 * kube-apiserver's texts when its KMS v2 plugin cannot be used (k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2/envelope.go,
 * .../server/options/encryptionconfig/config.go): a write after the cached DEK expired (3 minutes without a good
 * Status call), no DEK yet, or a DEK the plugin could not be reached to decrypt. The KMS is out, the value is not
 * lost: Unavailable, not Undecryptable.
 */
const KMS_UNAVAILABLE =
  /encryptedDEKSource with keyID hash .* expired at|got unexpected nil transformer|failed to (en|de)crypt DEK, error: rpc error: code = (Unavailable|DeadlineExceeded|Canceled)/

/** kube's texts for admission denials: webhooks ("admission webhook %q denied the request") and policies. */
const ADMISSION_DENIED =
  /admission webhook .* denied the request|ValidatingAdmissionPolicy .* denied request|denied the request/i

export function classifyApiError(error: unknown): ErrorDisposition {
  if (!(error instanceof KubeApiError)) {
    const code =
      (error as {code?: unknown; cause?: {code?: unknown}} | undefined)?.code ??
      (error as {cause?: {code?: unknown}})?.cause?.code
    if (typeof code === 'string' && (TRANSIENT_CODES.has(code) || code.startsWith('UND_ERR')))
      return {kind: 'transient'}
    return {kind: 'fail', reason: 'Error'}
  }
  const retryAfterMs = error.retryAfterSeconds === undefined ? undefined : error.retryAfterSeconds * 1000
  switch (error.status) {
    case 0:
      // A certificate that does not verify will not verify on the next try either.
      return error.reason === 'TLSError' ? {kind: 'fail', reason: 'Unavailable'} : {kind: 'transient', retryAfterMs}
    case 409:
      // AlreadyExists cannot happen on update; everything else 409 is a precondition conflict.
      return {kind: 'conflict'}
    case 404:
      return isNamespaceGone(error) ? {kind: 'fail', reason: 'NamespaceGone'} : {kind: 'notFound'}
    case 410:
      return {kind: 'expired', continueHint: error.continueHint || undefined}
    case 403:
      return {kind: 'fail', reason: ADMISSION_DENIED.test(error.message) ? 'AdmissionDenied' : 'Forbidden'}
    case 400:
    case 422:
      return {kind: 'fail', reason: ADMISSION_DENIED.test(error.message) ? 'AdmissionDenied' : 'Invalid'}
    case 429:
    case 502:
    case 503:
    case 504:
      return {kind: 'transient', retryAfterMs}
    case 500:
      // StorageReadError: values the server could not transform or decode (AllowUnsafeMalformedObjectDeletion).
      // The apiserver re-checks a failing plugin every 10 s and stays unable to encrypt until it answers:
      // the run's quick retries would only slow it down. The failure is reported; a second run writes it.
      if (KMS_UNAVAILABLE.test(error.message)) return {kind: 'fail', reason: 'Unavailable'}
      if (error.reason === 'StorageReadError' || UNDECRYPTABLE.test(error.message))
        return {kind: 'fail', reason: 'Undecryptable'}
      if (ADMISSION_DENIED.test(error.message)) return {kind: 'fail', reason: 'AdmissionDenied'}
      // e.g. "etcdserver: request timed out": worth a bounded retry
      return {kind: 'transient', retryAfterMs}
    default:
      if (ADMISSION_DENIED.test(error.message)) return {kind: 'fail', reason: 'AdmissionDenied'}
      return {kind: 'fail', reason: error.status >= 500 ? 'ServerError' : 'Error'}
  }
}

/**
 * NamespaceLifecycle admission refuses an update in a namespace that no longer exists with
 * 404 `namespaces "<ns>" not found` (details.kind "namespaces"): an orphan, not a deleted object.
 */
function isNamespaceGone(error: KubeApiError): boolean {
  if (error.details?.kind) return error.details.kind === 'namespaces'
  return /^namespaces? "[^"]*" not found/.test(error.message)
}

/** The reason a request that kept failing transiently finally gave up with. */
export function exhaustedReason(error: unknown): FailureReason {
  if (error instanceof KubeApiError && error.status === 500) return 'ServerError'
  return 'Unavailable'
}

export function errorMessage(error: unknown): string {
  if (error instanceof KubeApiError)
    return error.status ? `${error.status} ${error.reason}: ${error.message}` : error.message
  return error instanceof Error ? error.message : String(error)
}
