export interface HealthCheck {
  name: string
  ok: boolean
  /** For failed checks: the server's text after `failed:` (often `reason withheld`). */
  message?: string
}

export interface HealthReport {
  /** The HTTP status was 200. */
  ok: boolean
  checks: HealthCheck[]
}

/** Parses `/readyz?verbose` / `/livez?verbose` / `/healthz?verbose`: lines `[+]name ok`, `[-]name failed: …` (docs/kubernetes-behaviour.md §10). */
export function parseHealthReport(status: number, body: string): HealthReport {
  const checks: HealthCheck[] = []
  for (const line of body.split('\n')) {
    const match = /^\[([+-])\]([^\s]+)\s*(.*)$/.exec(line.trim())
    if (!match) continue
    const ok = match[1] === '+'
    const rest = match[3].trim()
    checks.push({name: match[2], ok, message: ok ? undefined : rest.replace(/^failed:?\s*/, '') || 'failed'})
  }
  return {ok: status === 200, checks}
}

/** The KMS checks of docs/kubernetes-behaviour.md §10: `kms-providers` or `kms-provider-<i>`. */
export function kmsChecks(report: HealthReport): HealthCheck[] {
  return report.checks.filter((c) => c.name === 'kms-providers' || /^kms-provider-\d+$/.test(c.name))
}
