const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type ParsedRunRef = { kind: 'id'; id: string } | { kind: 'number'; job: string; number: number };

/** `UUID`, `JOB/NUMBER` or `JOB#NUMBER`; undefined when it is none of them. */
export function parseRunRef(ref: string): ParsedRunRef | undefined {
  if (UUID.test(ref)) return { kind: 'id', id: ref.toLowerCase() };
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)[/#]([1-9][0-9]{0,9})$/.exec(ref);
  if (m && m[1] && m[2]) return { kind: 'number', job: m[1], number: Number(m[2]) };
  return undefined;
}
