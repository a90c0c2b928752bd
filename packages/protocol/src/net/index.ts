export * from './trust.ts';
export * from './foreign.ts';
export * from './buffer-churn.ts';
