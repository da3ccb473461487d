/**
 * metav1.Status failures shaped exactly as kube-apiserver sends them (k8s.io/apimachinery
 * pkg/api/errors facts: reasons, codes and message texts).
 */
export interface StatusDetails {
  name?: string
  group?: string
  kind?: string
  causes?: {message?: string; reason?: string; field?: string}[]
  retryAfterSeconds?: number
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
    readonly listContinue?: string,
  ) {
    super(message)
  }

  toStatus(): Record<string, unknown> {
    const status: Record<string, unknown> = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: this.listContinue ? {continue: this.listContinue} : {},
      status: 'Failure',
      message: this.message,
    }
    // a webhook denial without a status reason has none (apimachinery omits empty fields)
    if (this.reason) status.reason = this.reason
    if (this.details) status.details = this.details
    status.code = this.code
    return status
  }
}

/** `secrets`, or `pandas.awesome.bears.example` for a named group (schema.GroupResource.String()). */
export function qualified(group: string, resource: string): string {
  return group ? `${resource}.${group}` : resource
}

function details(group: string, resource: string, name?: string): StatusDetails {
  const d: StatusDetails = {}
  if (name !== undefined) d.name = name
  if (group) d.group = group
  d.kind = resource
  return d
}

export const errors = {
  notFound: (group: string, resource: string, name: string) =>
    new ApiError(404, 'NotFound', `${qualified(group, resource)} "${name}" not found`, details(group, resource, name)),
  alreadyExists: (group: string, resource: string, name: string) =>
    new ApiError(409, 'AlreadyExists', `${qualified(group, resource)} "${name}" already exists`, details(group, resource, name)),
  conflict: (group: string, resource: string, name: string, why = 'the object has been modified; please apply your changes to the latest version and try again') =>
    new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(group, resource)} "${name}": ${why}`, details(group, resource, name)),
  internal: (cause: string) =>
    new ApiError(500, 'InternalError', `Internal error occurred: ${cause}`, {causes: [{message: cause}]}),
  badRequest: (message: string) => new ApiError(400, 'BadRequest', message),
  unprocessable: (message: string) => new ApiError(422, 'Invalid', message),
  unsupportedMediaType: (type: string) => new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got ${type})`),
  unauthorized: () => new ApiError(401, 'Unauthorized', 'Unauthorized'),
  methodNotAllowed: () =>
    new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {}),
  notFoundPath: () => new ApiError(404, 'NotFound', 'the server could not find the requested resource', {}),
  invalid: (kind: string, group: string, name: string, causes: {field: string; type: string; detail: string; value?: string}[]) => {
    const text = causes.map((c) => `${c.field}: ${c.type}${c.value === undefined ? '' : `: ${c.value}`}: ${c.detail}`)
    const summary = text.length === 1 ? text[0] : `[${text.join(', ')}]`
    const d: StatusDetails = {name}
    if (group) d.group = group
    d.kind = kind
    d.causes = causes.map((c) => ({
      reason: c.type === 'Required value' ? 'FieldValueRequired' : 'FieldValueInvalid',
      message: `${c.type}${c.value === undefined ? '' : `: ${c.value}`}: ${c.detail}`,
      field: c.field,
    }))
    return new ApiError(422, 'Invalid', `${kind} "${name}" is invalid: ${summary}`, d)
  },
  expired: (message: string, freshContinue?: string) => new ApiError(410, 'Expired', message, undefined, freshContinue),
  /** The RBAC authorizer's text (k8s.io/apiserver authorization forbidden message). */
  forbidden: (user: string, verb: string, group: string, resource: string, subresource: string, namespace: string, name?: string) => {
    const resourceText = subresource ? `${resource}/${subresource}` : resource
    const subject = name ? `${qualified(group, resource)} "${name}"` : qualified(group, resource)
    const scope = namespace ? `in the namespace "${namespace}"` : 'at the cluster scope'
    const message = `${subject} is forbidden: User "${user}" cannot ${verb} resource "${resourceText}" in API group "${group}" ${scope}`
    return new ApiError(403, 'Forbidden', message, details(group, resource, name))
  },
  forbiddenPath: (user: string, verb: string, path: string) =>
    new ApiError(403, 'Forbidden', `forbidden: User "${user}" cannot ${verb} path "${path}"`, {}),
}
