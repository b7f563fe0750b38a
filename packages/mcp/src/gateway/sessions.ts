/**
 * Session binding: an MCP session id belongs to the principal whose request opened it (an
 * anonymous caller is the principal ''), and another caller presenting it is refused. The table
 * is bounded: past its size the oldest binding is forgotten.
 */
const MAX_SESSIONS = 10_000

export class SessionBindings {
  private readonly owners = new Map<string, string>()

  /** False when `session` was opened by another principal. */
  mayUse(session: string, principal: string | undefined): boolean {
    const owner = this.owners.get(session)
    return owner === undefined || owner === (principal ?? '')
  }

  /** The upstream answered `response` to a request of `principal`: bind a new session, forget an ended one. */
  record(
    method: string,
    session: string | undefined,
    response: Response,
    principal: string | undefined,
  ): void {
    const opened = response.headers.get('mcp-session-id')
    if (opened !== null && response.ok && !this.owners.has(opened)) {
      if (this.owners.size >= MAX_SESSIONS) this.owners.delete(this.owners.keys().next().value!)
      this.owners.set(opened, principal ?? '')
    }
    if (method === 'DELETE' && session !== undefined && response.ok) this.owners.delete(session)
  }
}
