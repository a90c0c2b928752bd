#!/usr/bin/env node
// Writes schemas/job.schema.json from the client's zod JobFileSchema (run `pnpm build` first).
// A test fails when the committed file differs, so the schema is never edited by hand.
import { writeFileSync } from 'node:fs';
import { format } from 'prettier';
import { jobFileJsonSchema } from '../packages/client/dist/jobfile/schema.js';

const out = new URL('../schemas/job.schema.json', import.meta.url);
writeFileSync(out, await format(JSON.stringify(jobFileJsonSchema()), { parser: 'json' }));
console.log(`wrote ${out.pathname}`);
