import type {KubeHttp} from './http.js'
import type {AccessCheck, AccessReviewer} from './types.js'

/** SelfSubjectAccessReview and SelfSubjectReview: what kubectl auth can-i and auth whoami ask. */
export class RestAccessReviewer implements AccessReviewer {
  constructor(private readonly http: KubeHttp) {}

  async canI(check: AccessCheck): Promise<{allowed: boolean; reason?: string}> {
    const review = await this.http.json<{status?: {allowed?: boolean; reason?: string}}>({
      method: 'POST',
      path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: {
          resourceAttributes: {
            verb: check.verb,
            group: check.group,
            resource: check.resource,
            namespace: check.namespace ?? '',
          },
        },
      },
      what: {verb: 'create', resource: 'selfsubjectaccessreviews.authorization.k8s.io'},
    })
    return {allowed: review.status?.allowed === true, reason: review.status?.reason || undefined}
  }

  async whoAmI(): Promise<string | undefined> {
    try {
      const review = await this.http.json<{status?: {userInfo?: {username?: string}}}>({
        method: 'POST',
        path: '/apis/authentication.k8s.io/v1/selfsubjectreviews',
        body: {apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview'},
        what: {verb: 'create', resource: 'selfsubjectreviews.authentication.k8s.io'},
      })
      return review.status?.userInfo?.username || undefined
    } catch {
      return undefined // only for a hint: a server without SelfSubjectReview is no reason to stop
    }
  }
}
