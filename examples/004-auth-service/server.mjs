// An existing Express service: verdict authorizes every route in-process, before the handlers.
import { fileURLToPath } from 'node:url'
import { createCelEvaluator } from '@verdict/cel-adapter'
import { createEngine, createEngineFromFile } from '@verdict/core'
import { createHttpMiddleware } from '@verdict/core/middleware'
import express from 'express'

/** Build the app around an engine (tests and the demo pass one with their own keys). */
export function createApp(engine) {
  const app = express()
  app.use(express.json({ limit: '1mb' }), createHttpMiddleware(engine))
  app.get('/public/status', (_req, res) => res.json({ status: 'ok' }))
  app.get('/reports', (req, res) => res.json({ reports: ['q3.pdf'], user: req.headers['x-user'] }))
  app.post('/admin/purge', (req, res) => res.json({ purged: true, by: req.verdict?.identity?.subject }))
  return app
}

export async function engineFor(policy) {
  const evaluators = [createCelEvaluator()]
  return typeof policy === 'string'
    ? createEngineFromFile(policy, { evaluators })
    : createEngine(policy, { evaluators })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const engine = await engineFor(fileURLToPath(new URL('./policy.yaml', import.meta.url)))
  const port = Number(process.env.PORT ?? 3004)
  createApp(engine).listen(port, '127.0.0.1', () =>
    console.log(`reports-service on http://127.0.0.1:${port}`),
  )
}
