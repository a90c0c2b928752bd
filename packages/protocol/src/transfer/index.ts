export * from './send.ts';
export * from './scan.ts';
