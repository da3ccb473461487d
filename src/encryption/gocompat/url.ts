/**
 * Go's net/url `url.Parse`, as far as the KMS endpoint check needs it (docs/kubernetes-behaviour.md §6.5, §5.5): the
 * lowercased scheme, or the error text Go gives (`parse "…": <reason>`). Only the failures of
 * url.Parse are reproduced; the parsed parts are not needed. The query is not checked (Go keeps it raw).
 */
import {goQuote} from './format.js'

type Mode = 'host' | 'path' | 'userinfo' | 'fragment'

const isHex = (c: string) => /^[0-9A-Fa-f]$/.test(c)
const isAlnum = (c: string) => /^[A-Za-z0-9]$/.test(c)

/** Go's shouldEscape for the modes that can fail while unescaping a host (spec: only ASCII is checked). */
function hostCharInvalid(c: string): boolean {
  if (isAlnum(c)) return false
  if ('!$&\'()*+,;=:[]<>"'.includes(c)) return false
  if ('-_.~'.includes(c)) return false
  return true
}

/** Go's unescape: the first bad `%` escape (up to 3 bytes) or, in a host, a bad character. */
function unescapeError(s: string, mode: Mode): string | undefined {
  for (let i = 0; i < s.length; ) {
    const c = s[i] as string
    if (c === '%') {
      if (i + 2 >= s.length || !isHex(s[i + 1] as string) || !isHex(s[i + 2] as string)) {
        return `invalid URL escape ${goQuote(s.slice(i, i + 3))}`
      }
      // In a host, %-encoding is only for non-ASCII bytes (and %25 for IPv6 zones).
      if (mode === 'host' && Number.parseInt(s[i + 1] as string, 16) < 8 && s.slice(i, i + 3) !== '%25') {
        return `invalid URL escape ${goQuote(s.slice(i, i + 3))}`
      }
      i += 3
      continue
    }
    if (mode === 'host' && c.charCodeAt(0) < 0x80 && hostCharInvalid(c))
      return `invalid character ${goQuote(c)} in host name`
    i++
  }
  return undefined
}

function validOptionalPort(port: string): boolean {
  if (port === '') return true
  return port.startsWith(':') && /^[0-9]*$/.test(port.slice(1))
}

function hostError(host: string): string | undefined {
  if (host.startsWith('[')) {
    const end = host.lastIndexOf(']')
    if (end < 0) return "missing ']' in host"
    const colonPort = host.slice(end + 1)
    if (!validOptionalPort(colonPort)) return `invalid port ${goQuote(colonPort)} after host`
    const zone = host.slice(0, end).indexOf('%25')
    // An IPv6 zone (`[fe80::1%25en0]`): checked here only for bad escapes (Go also limits its characters).
    if (zone >= 0) {
      return (
        unescapeError(host.slice(0, zone), 'host') ??
        unescapeError(host.slice(zone, end), 'path') ??
        unescapeError(host.slice(end), 'host')
      )
    }
  } else {
    const colon = host.lastIndexOf(':')
    if (colon !== -1 && !validOptionalPort(host.slice(colon)))
      return `invalid port ${goQuote(host.slice(colon))} after host`
  }
  return unescapeError(host, 'host')
}

function authorityError(authority: string): string | undefined {
  const at = authority.lastIndexOf('@')
  const problem = hostError(at < 0 ? authority : authority.slice(at + 1))
  if (problem || at < 0) return problem
  const userinfo = authority.slice(0, at)
  if (![...userinfo].every((c) => isAlnum(c) || "-._:~!$&'()*+,;=%@".includes(c))) return 'net/url: invalid userinfo'
  const colon = userinfo.indexOf(':')
  const parts = colon < 0 ? [userinfo] : [userinfo.slice(0, colon), userinfo.slice(colon + 1)]
  return parts.map((part) => unescapeError(part, 'userinfo')).find((e) => e !== undefined)
}

/** Go's getScheme: letters, then letters/digits/`+-.`, up to the first `:`. */
function splitScheme(raw: string): {scheme: string; rest: string} | {error: string} {
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string
    if (/[A-Za-z]/.test(c)) continue
    if (/[0-9+\-.]/.test(c)) {
      if (i === 0) return {scheme: '', rest: raw}
      continue
    }
    if (c === ':')
      return i === 0 ? {error: 'missing protocol scheme'} : {scheme: raw.slice(0, i), rest: raw.slice(i + 1)}
    return {scheme: '', rest: raw}
  }
  return {scheme: '', rest: raw}
}

/** `url.Parse(raw)`: the lowercased scheme, or Go's error text. */
export function parseGoUrl(raw: string): {scheme: string} | {error: string} {
  const hash = raw.indexOf('#')
  const u = hash < 0 ? raw : raw.slice(0, hash)
  const fail = (reason: string, url = u) => ({error: `parse ${goQuote(url)}: ${reason}`})
  if ([...u].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f))
    return fail('net/url: invalid control character in URL')
  if (u === '*') return {scheme: ''}
  const split = splitScheme(u)
  if ('error' in split) return fail(split.error)
  const scheme = split.scheme.toLowerCase()
  let rest = split.rest
  rest = rest.endsWith('?') && rest.split('?').length === 2 ? rest.slice(0, -1) : (rest.split('?')[0] ?? '')
  if (!rest.startsWith('/')) {
    if (scheme !== '') return hash < 0 ? {scheme} : fragment(raw, raw.slice(hash + 1), scheme)
    if ((rest.split('/')[0] ?? '').includes(':')) return fail('first path segment in URL cannot contain colon')
  }
  if (rest.startsWith('//') && (scheme !== '' || !rest.startsWith('///'))) {
    let authority = rest.slice(2)
    const slash = authority.indexOf('/')
    rest = slash >= 0 ? authority.slice(slash) : ''
    authority = slash >= 0 ? authority.slice(0, slash) : authority
    const problem = authorityError(authority)
    if (problem) return fail(problem)
  }
  const problem = unescapeError(rest, 'path')
  if (problem) return fail(problem)
  return hash < 0 ? {scheme} : fragment(raw, raw.slice(hash + 1), scheme)
}

/** A bad escape in the fragment is reported with the whole URL, fragment included. */
function fragment(raw: string, frag: string, scheme: string): {scheme: string} | {error: string} {
  if (frag === '') return {scheme}
  const problem = unescapeError(frag, 'fragment')
  return problem ? {error: `parse ${goQuote(raw)}: ${problem}`} : {scheme}
}
