// the server logs like every program: the one logger lives in protocol
export { createLogger, silentLogger, type LogFields, type Logger, type LogLevel } from '@builder/protocol';
