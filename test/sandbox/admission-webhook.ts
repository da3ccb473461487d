// A validating admission webhook the sandbox registers with the real kube-apiserver, so tests can
// make an update fail the way a cluster's policy webhook does:
//
//   ValidatingWebhookConfiguration deny-update.sandbox.kubectl-encryption.test
//     UPDATE of every resource; a matchCondition sends only objects carrying DENY_UPDATE_ANNOTATION,
//     so no other write pays for a webhook call; failurePolicy Fail.
//
// The webhook denies such an update with the annotation's value as its message; kube-apiserver then
// answers `admission webhook "<name>" denied the request: <message>`. Validating admission runs on
// every update, a no-op one too, before storage compares the bytes. Creating such an object is allowed.
import {readFileSync} from 'node:fs'
import https from 'node:https'

export const DENY_UPDATE_ANNOTATION = 'sandbox.kubectl-encryption.test/deny-update'
export const DENY_UPDATE_WEBHOOK = 'deny-update.sandbox.kubectl-encryption.test'

interface AdmissionReview {
  request?: {uid: string; operation: string; object?: {metadata?: {annotations?: Record<string, string>}}}
}

export function admissionResponse(review: AdmissionReview): Record<string, unknown> {
  const uid = review.request?.uid ?? ''
  const message =
    review.request?.operation === 'UPDATE'
      ? review.request.object?.metadata?.annotations?.[DENY_UPDATE_ANNOTATION]
      : undefined
  const response = message === undefined ? {uid, allowed: true} : {uid, allowed: false, status: {message}}
  return {apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response}
}

export class DenyUpdateWebhook {
  private server?: https.Server

  constructor(
    private readonly host: string,
    readonly port: number,
    private readonly tls: {cert: string; key: string},
  ) {}

  get url(): string {
    return `https://${this.host}:${this.port}/validate`
  }

  async start(): Promise<void> {
    const server = https.createServer(
      {cert: readFileSync(this.tls.cert), key: readFileSync(this.tls.key)},
      (req, res) => {
        let body = ''
        req.setEncoding('utf8')
        req.on('data', (chunk) => (body += chunk))
        req.on('end', () => {
          let review: AdmissionReview
          try {
            review = JSON.parse(body) as AdmissionReview
          } catch {
            res.writeHead(400).end('not an AdmissionReview')
            return
          }
          res.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify(admissionResponse(review)))
        })
      },
    )
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, this.host, () => resolve())
    })
    this.server = server
  }

  async stop(): Promise<void> {
    const server = this.server
    this.server = undefined
    server?.closeAllConnections()
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
  }

  /** The registration, as an operator would apply it. */
  configuration(caBundlePem: string): Record<string, unknown> {
    return {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: {name: DENY_UPDATE_WEBHOOK},
      webhooks: [
        {
          name: DENY_UPDATE_WEBHOOK,
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Fail',
          timeoutSeconds: 10,
          clientConfig: {url: this.url, caBundle: Buffer.from(caBundlePem).toString('base64')},
          rules: [{operations: ['UPDATE'], apiGroups: ['*'], apiVersions: ['*'], resources: ['*/*'], scope: '*'}],
          matchConditions: [
            {
              name: 'carries-deny-update-annotation',
              expression: `has(object.metadata.annotations) && '${DENY_UPDATE_ANNOTATION}' in object.metadata.annotations`,
            },
          ],
        },
      ],
    }
  }
}
