/** Hard limits of the wire, shared so both ends refuse the same things. */
export const LIMITS = {
  /** Largest WebSocket message either side accepts (ws maxPayload). */
  maxMessageBytes: 4 * 1024 * 1024,
  /** Largest console chunk (payload bytes) a worker sends in one output frame. */
  maxChunkBytes: 256 * 1024,
  /** Largest JSON header of an output frame. */
  maxOutputHeaderBytes: 1024,
  /** Largest script a job may carry. */
  maxScriptBytes: 1024 * 1024,
  maxNameLength: 128,
  maxParams: 64,
  maxParamValueLength: 4096,
  maxTemplateVars: 64,
  maxRunningPerWorker: 256,
  /** Largest secret value (a signing key, a token). */
  maxSecretBytes: 64 * 1024,
  maxSecretsPerJob: 32,
  /** Largest job summary (`$BUILDER_SUMMARY`, Markdown) a worker sends; longer ones are cut with a note. */
  maxSummaryBytes: 64 * 1024,
} as const;

/** Job, platform and worker names: safe in paths, URLs and log lines. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** Template variables (`{{NAME}}` placeholders): upper case, like the environment variables they often feed. */
export const TEMPLATE_VAR_PATTERN = /^[A-Z_][A-Z0-9_]*$/;
/** Parameter names become environment variables. */
export const PARAM_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
