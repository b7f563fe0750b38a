/**
 * JWT authentication (placeholder until the JWT module lands): reports that it is unavailable.
 */
import type { AuthCompileResult, AuthEnvironment } from '../auth.js'

export async function compileJwtAuthentication(
  _config: unknown,
  path: string,
  _env: AuthEnvironment,
): Promise<AuthCompileResult> {
  return {
    ok: false,
    problems: [{ code: 'jwt_config', message: 'JWT authentication is not available yet', path }],
  }
}
