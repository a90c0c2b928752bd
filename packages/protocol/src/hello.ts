import { z } from 'zod';
import { AttemptSchema, RoleSchema, RunIdSchema, SeqSchema } from './common.ts';
import { ErrorBodySchema } from './client-messages.ts';
import { WorkerInfoSchema } from './worker-messages.ts';

/** First message on every connection. */
export const HelloSchema = z
  .object({
    type: z.literal('hello'),
    versions: z.array(z.number().int().positive()).min(1).max(16),
    role: z.enum(['worker', 'client']),
    token: z.string().min(1).max(512),
    worker: WorkerInfoSchema.optional(),
  })
  .refine((h) => h.role !== 'worker' || h.worker !== undefined, {
    message: 'a worker hello must describe the worker',
    path: ['worker'],
  });
export type Hello = z.infer<typeof HelloSchema>;

export const ReattachSchema = z.object({
  runId: RunIdSchema,
  attempt: AttemptSchema,
  /** continue: keep running and resend output after ackedSeq; kill: stop it, it is stale; forget: drop it, already recorded. */
  action: z.enum(['continue', 'kill', 'forget']),
  ackedSeq: SeqSchema,
});
export type Reattach = z.infer<typeof ReattachSchema>;

export const WelcomeSchema = z.object({
  type: z.literal('welcome'),
  version: z.number().int(),
  serverVersion: z.string(),
  role: RoleSchema,
  heartbeatMs: z.number().int().positive(),
  leaseMs: z.number().int().positive(),
  reattach: z.array(ReattachSchema).default([]),
});
export type Welcome = z.infer<typeof WelcomeSchema>;

/** A protocol error not tied to a request. After a hello error the server closes the connection. */
export const ErrorMessageSchema = z.object({ type: z.literal('error'), error: ErrorBodySchema });
export type ErrorMessage = z.infer<typeof ErrorMessageSchema>;
