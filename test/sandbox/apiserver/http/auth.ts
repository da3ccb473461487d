/**
 * Authentication (x509 client certificates verified against --client-ca-file, bearer tokens from
 * --token-auth-file) and a small authorizer standing in for RBAC + the Node authorizer.
 */
import {readFileSync} from 'node:fs'
import type {IncomingMessage} from 'node:http'
import type {TLSSocket} from 'node:tls'

export interface UserInfo {
  name: string
  uid?: string
  groups: string[]
}

export const ANONYMOUS: UserInfo = {name: 'system:anonymous', groups: ['system:unauthenticated']}

/** Parses the static token file: token,user,uid,"group1,group2" (one per line). */
export function loadTokens(path: string | undefined): Map<string, UserInfo> {
  const tokens = new Map<string, UserInfo>()
  if (!path) return tokens
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue
    const cells: string[] = []
    const re = /"([^"]*)"|([^,]*)/g
    let m: RegExpExecArray | null
    let rest = line.trim()
    while (rest.length) {
      re.lastIndex = 0
      m = re.exec(rest)!
      cells.push(m[1] ?? m[2] ?? '')
      rest = rest.slice(m[0].length)
      if (rest.startsWith(',')) rest = rest.slice(1)
      else break
    }
    const [token, name, uid, groups] = cells
    if (token && name) tokens.set(token, {name, uid, groups: [...(groups ? groups.split(',').filter(Boolean) : []), 'system:authenticated']})
  }
  return tokens
}

export type AuthResult = {user: UserInfo} | {unauthorized: true}

export function authenticate(req: IncomingMessage, tokens: Map<string, UserInfo>): AuthResult {
  const header = req.headers.authorization
  if (header && /^bearer\s+/i.test(header)) {
    const user = tokens.get(header.replace(/^bearer\s+/i, '').trim())
    return user ? {user} : {unauthorized: true}
  }
  const socket = req.socket as TLSSocket
  if (socket.authorized) {
    const cert = socket.getPeerCertificate()
    if (cert?.subject?.CN) {
      const o = cert.subject.O
      const groups = Array.isArray(o) ? o : o ? [o] : []
      return {user: {name: String(cert.subject.CN), groups: [...groups, 'system:authenticated']}}
    }
  }
  return {user: ANONYMOUS}
}

export interface Attributes {
  verb: string
  group: string
  resource: string
  subresource: string
  namespace: string
  name: string
}

const READ = new Set(['get', 'list', 'watch'])

/** system:masters may do anything; nodes write nodes and pods; `viewer`-like users read all but secrets. */
export function authorize(user: UserInfo, a: Attributes): boolean {
  if (user.groups.includes('system:masters')) return true
  if (user.groups.includes('system:nodes')) {
    if (a.group === '' && (a.resource === 'nodes' || a.resource === 'pods') && a.subresource !== 'exec') return true
    if (a.group === '' && ['namespaces', 'configmaps', 'endpoints'].includes(a.resource) && READ.has(a.verb)) return true
    return false
  }
  if (user.groups.includes('system:authenticated')) {
    if (a.resource === 'secrets') return false
    return READ.has(a.verb) && a.subresource !== 'exec'
  }
  return false
}
