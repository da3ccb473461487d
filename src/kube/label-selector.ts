/**
 * A label selector checked as kube-apiserver parses it (k8s.io/apimachinery/pkg/labels: Parse), so a
 * bad `-l` is a usage error before any request, not a run of failed listings. Grammar:
 *   selector    := "" | requirement ("," requirement)*
 *   requirement := ["!"] key | key ("=" | "==" | "!=") value | key ("in" | "notin") "(" values ")"
 *                | key ("<" | ">") integer
 * Keys are qualified names ([prefix/]name), values label values (63 characters at most).
 */

const NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

type Token = {kind: 'op' | 'word'; text: string}

function tokens(selector: string): Token[] {
  const out: Token[] = []
  for (let i = 0; i < selector.length; ) {
    const c = selector[i]!
    if (/\s/.test(c)) {
      i++
      continue
    }
    const two = selector.slice(i, i + 2)
    if (two === '==' || two === '!=') {
      out.push({kind: 'op', text: two})
      i += 2
    } else if ('!=,()<>'.includes(c)) {
      out.push({kind: 'op', text: c})
      i++
    } else {
      let j = i
      while (j < selector.length && !/\s/.test(selector[j]!) && !'!=,()<>'.includes(selector[j]!)) j++
      out.push({kind: 'word', text: selector.slice(i, j)})
      i = j
    }
  }
  return out
}

function keyProblem(key: string): string | undefined {
  const slash = key.indexOf('/')
  const [prefix, name] = slash === -1 ? [undefined, key] : [key.slice(0, slash), key.slice(slash + 1)]
  if (prefix !== undefined && (prefix === '' || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)))
    return `key ${JSON.stringify(key)} has an invalid prefix (a lowercase DNS subdomain)`
  if (name.length === 0 || name.length > 63 || !NAME.test(name))
    return `key ${JSON.stringify(key)} is not a label name (alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric, at most 63 characters)`
  return undefined
}

function valueProblem(value: string): string | undefined {
  if (value === '') return undefined
  if (value.length > 63 || !NAME.test(value))
    return `value ${JSON.stringify(value)} is not a label value (alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric, at most 63 characters)`
  return undefined
}

/** Why kube-apiserver would refuse `selector`, or undefined when it is valid. */
export function labelSelectorProblem(selector: string): string | undefined {
  const t = tokens(selector)
  let i = 0
  const peek = () => t[i]
  const expected = (what: string) => {
    const found = peek()
    return `expected ${what} ${found ? `but found ${JSON.stringify(found.text)}` : 'at the end'}`
  }
  if (t.length === 0) return undefined
  for (;;) {
    const negated = peek()?.kind === 'op' && peek()!.text === '!'
    if (negated) i++
    const key = peek()
    if (key?.kind !== 'word') return expected('a label key')
    i++
    const bad = keyProblem(key.text)
    if (bad) return bad
    const op = peek()
    if (!negated && op && (op.text === '=' || op.text === '==' || op.text === '!=') && op.kind === 'op') {
      i++
      const value = peek()?.kind === 'word' ? t[i++]!.text : ''
      const badValue = valueProblem(value)
      if (badValue) return badValue
    } else if (!negated && op && op.kind === 'word' && (op.text === 'in' || op.text === 'notin')) {
      i++
      if (peek()?.text !== '(') return expected(`'(' after ${op.text}`)
      i++
      for (;;) {
        const value = peek()?.kind === 'word' ? t[i++]!.text : ''
        const badValue = valueProblem(value)
        if (badValue) return badValue
        if (peek()?.text === ',') {
          i++
          continue
        }
        if (peek()?.text === ')') {
          i++
          break
        }
        return expected("',' or ')'")
      }
    } else if (!negated && op && op.kind === 'op' && (op.text === '<' || op.text === '>')) {
      i++
      const value = peek()
      if (value?.kind !== 'word' || !/^-?\d+$/.test(value.text)) return expected(`an integer after ${op.text}`)
      i++
    }
    if (i === t.length) return undefined
    if (peek()!.text !== ',') return expected("',' between requirements")
    i++
  }
}
