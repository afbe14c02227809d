export { createConnectionService, DEFAULT_BASE_URL } from './service.ts';
export type { ConnectionService, ConnectionServiceDeps, ConnectInput } from './service.ts';
export { cleanToken, cleanCaPem, cleanLabel } from './input.ts';
export { createDoctorService, diagnose } from './doctor.ts';
export type { DoctorReport, DoctorService, DoctorStep } from './doctor.ts';
