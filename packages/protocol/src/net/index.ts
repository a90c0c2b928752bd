export * from './trust.ts';
export * from './foreign.ts';
