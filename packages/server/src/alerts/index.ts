export { Alerts, type AlertOptions } from './alerts.ts';
export type { AlertEvent, AlertEventName, AlertRun } from './events.ts';
export { DEFAULT_DELIVERY, type DeliveryOptions } from './queue.ts';
